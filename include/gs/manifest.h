/* SPDX-License-Identifier: Apache-2.0 */
/* The manifest module: the record of one staged driver (STORE/VER/) and
 * everything that reads or writes it -- types, the capability table and
 * the staged layout, the name rules, manifest.json's codec, the index, the
 * tree check behind verify, and the read side of the store (opening
 * STORE/VER under the store's shared lock).  It sits below the stager
 * (stage/), the overlay (overlay/) and the hook (hook/), and includes
 * none of them.
 *
 * Discovery produces a struct gs_manifest without digests; the store
 * fills every file's sha256 while copying and writes it as manifest.json.
 * Libraries here never print. */
#ifndef GS_MANIFEST_H
#define GS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "gs/err.h"
#include "gs/version.h"

#define GS_MANIFEST_SCHEMA "gpu-stage/manifest/v1"
#define GS_DEFAULT_STORE "/var/lib/gpu-stage"

enum gs_kind {
	GS_KIND_LIB = 0,  /* x86-64 shared library */
	GS_KIND_LIB32,    /* i386 shared library */
	GS_KIND_BIN,      /* executable */
	GS_KIND_FIRMWARE, /* GSP firmware */
	GS_KIND_CONFIG,   /* ICD / vendor JSON, nvoptix.bin, ... */
};

/* Capabilities, as NVIDIA_DRIVER_CAPABILITIES names them. */
enum gs_cap {
	GS_CAP_UTILITY = 1u << 0,
	GS_CAP_COMPUTE = 1u << 1,
	GS_CAP_VIDEO = 1u << 2,
	GS_CAP_GRAPHICS = 1u << 3,
	GS_CAP_DISPLAY = 1u << 4,
	GS_CAP_NGX = 1u << 5,
	GS_CAP_COMPAT32 = 1u << 6,
	GS_CAP_ALL = (1u << 7) - 1,
};

struct gs_file {
	char *path;     /* relative to STORE/VER, e.g. "lib/compute/libcuda.so.535.261.03" */
	char *source;   /* absolute host path as resolved inside the root (no root prefix) */
	enum gs_kind kind;
	unsigned int caps; /* enum gs_cap bits */
	char *soname;   /* libraries: DT_SONAME, else NULL */
	char *evidence; /* why it belongs to the driver version, for audit: "name",
			 * "content", "folder", "dpkg:PKG=VERSION", "own-version",
			 * "firmware-folder", "names-staged-library", "companion" */
	char **needed;  /* libraries: DT_NEEDED */
	size_t n_needed;
	uint32_t mode;  /* staged mode: 0444, or 0555 for executables */
	uint32_t glibc; /* libraries: the highest GLIBC_x.y it needs of libc.so.6
			 * (GS_GLIBC), 0 none; manifest key "glibc" (optional) */
	uint64_t size;
	/* identity of the source when discovered: a re-run compares these to
	 * skip copying an unchanged driver */
	uint64_t src_dev, src_ino;
	int64_t src_mtime_ns;
	char sha256[65]; /* hex; filled by the store while copying ("" before) */
};

struct gs_link {
	char *path;   /* relative to STORE/VER */
	char *target; /* relative symlink target, e.g. "libcuda.so.535.261.03" */
};

struct gs_manifest {
	char *driver; /* "535.261.03" */
	char *arch;   /* "x86_64" */
	char *root;   /* host root it was discovered under */
	struct gs_file *files;
	size_t n_files;
	struct gs_link *links;
	size_t n_links;
	char **warnings; /* e.g. unresolved DT_NEEDED; n_warnings strings */
	size_t n_warnings;
};

void gs_manifest_free(struct gs_manifest *p);
static inline void gs_manifest_freep(struct gs_manifest **p)
{
	if (*p)
		gs_manifest_free(*p);
}

/* Capability names <-> bits.  "all" is every capability. */
int gs_caps_parse(const char *list, unsigned int *caps, struct gs_err *err);
/* Comma-separated names into BUF ("compute,utility"). */
const char *gs_caps_format(unsigned int caps, char *buf, size_t len);

/* The capability a staged directory name stands for ("compute" ->
 * GS_CAP_COMPUTE), 0 when none; and the name of one capability bit. */
unsigned int gs_cap_bit(const char *name, size_t len);
const char *gs_cap_name(unsigned int bit);
/* Every capability bit in the order the staged layout lists them
 * (utility, compute, video, graphics, display, ngx, compat32). */
extern const unsigned int gs_cap_order[7];
#define GS_N_CAPS 7

#define GS_MANIFEST_NAME "manifest.json"
#define GS_MANIFEST_MAX (64u << 20) /* refuse to parse manifests larger than this */
#define GS_PATH_MAX 1024            /* longest relative path under STORE/VER */
/* most components in one: the store's tree walks (removal, verify) go to
 * 64 levels, so nothing accepted can be deeper than they reach */
#define GS_PATH_DEPTH_MAX 32
/* files + links in one manifest (a full driver has a few hundred): what
 * building and checking the index costs grows with its square */
#define GS_MANIFEST_MAX_ENTRIES 8192
#define GS_SOURCE_MAX 4096          /* longest files[].source (PATH_MAX) */

/* What a manifest holds beyond a gs_plan. */
struct gs_manifest_info {
	char created[32];  /* RFC 3339 UTC, "2025-01-31T12:00:00Z" */
	bool digest_ok;    /* manifest_sha256 matches the rest of the document */
	/* gs_manifest_read_at only: the file's size and SHA-256 (what the
	 * index records of it) */
	uint64_t size;
	char file_sha256[65];
};

/* ---- names (names.c; driver versions: gs/version.h) -------------------------- */

/* Whether S holds a control character (< 0x20 or 0x7f). */
bool gs_has_control(const char *s);
/* One path component: 1..255 bytes, no '/', not "." or "..". */
bool gs_name_ok(const char *name);

/* A path relative to STORE/VER: no leading or trailing '/', no empty, "."
 * or ".." components, components of at most 255 bytes, at most
 * GS_PATH_DEPTH_MAX of them, at most GS_PATH_MAX bytes.  NULL when valid,
 * else the reason. */
const char *gs_store_path_check(const char *path);

/* A symlink target for a link at PATH: relative, no empty components, and
 * its ".." never climbs above STORE/VER.  NULL when valid, else the reason. */
const char *gs_store_target_check(const char *path, const char *target);

/* The whole plan: driver/arch set, every path and link target valid, no
 * path used twice, no path that is also another path's directory, nothing
 * named manifest.json or index at the top.  Messages name the entry ("files[3]"). */
int gs_manifest_check(const struct gs_manifest *p, struct gs_err *err);

const char *gs_kind_name(enum gs_kind k);
int gs_kind_parse(const char *s, enum gs_kind *k);

/* ---- manifest.json (json.c) -------------------------------------------- */

/* CAPS as a JSON array of names ["utility","compute"], or NULL (out of
 * memory).  A json_t *: the caller includes jansson.h. */
struct json_t;
struct json_t *gs_caps_json(unsigned int caps);

/* The first member name of the JSON object OBJ that is not one of KEYS
 * (NULL-terminated), or NULL: the one check of every strict reader. */
const char *gs_json_unknown_key(struct json_t *obj, const char *const *keys);

/* Serialises PLAN (sha256 filled) as manifest.json text with CREATED as
 * its creation time.  *OUT is malloc'd, NUL-terminated. */
int gs_manifest_dump(const struct gs_manifest *p, time_t created, char **out, size_t *len,
		     struct gs_err *err);

/* Parses and strictly validates manifest text.  NAME (the file) prefixes
 * every message.  INFO may be NULL. */
int gs_manifest_parse(const char *text, size_t len, const char *name, struct gs_manifest **out,
		      struct gs_manifest_info *info, struct gs_err *err);

/* Reads VERFD/manifest.json (never through a symlink).  NAME is the file
 * as shown in messages. */
int gs_manifest_read_at(int verfd, const char *name, struct gs_manifest **out,
			struct gs_manifest_info *info, struct gs_err *err);

/* Checks the tree at VERFD against P: every file's type, mode, size, link
 * count and sha256, every link's target, directory modes, manifest.json's
 * mode, the index (byte for byte what gs_index_format makes of P and
 * INFO's size and digest), and that nothing else is there.  Each mismatch
 * goes to REPORT as "PATH: reason", sorted; *BAD counts them.  A manifest
 * digest that does not match (!INFO->digest_ok) adds one for
 * manifest.json.  Fails only when it cannot run (out of memory). */
int gs_manifest_check_tree(int verfd, const struct gs_manifest *p,
			   const struct gs_manifest_info *info,
			   void (*report)(void *data, const char *line), void *data,
			   size_t *bad, struct gs_err *err);
/* gs_manifest_check_tree without reading any file's content: everything
 * but the files' and the index's bytes (what a re-stage looks at before it
 * says "unchanged").  1 intact, 0 not, -ENOMEM. */
int gs_manifest_tree_intact(int verfd, const struct gs_manifest *p,
			    const struct gs_manifest_info *info, struct gs_err *err);

/* ---- hashing (sha256.c) -------------------------------------------------- */

struct gs_sha256;
int gs_sha256_new(struct gs_sha256 **h, struct gs_err *err);
int gs_sha256_update(struct gs_sha256 *h, const void *p, size_t n, struct gs_err *err);
/* Writes 64 lowercase hex digits and a NUL into HEX. */
int gs_sha256_final(struct gs_sha256 *h, char hex[65], struct gs_err *err);
void gs_sha256_free(struct gs_sha256 *h);
/* The SHA-256 of FD from its offset to EOF, read BUFSIZE bytes at a time
 * into BUF (EINTR retried GS_EINTR_TRIES times in a row): 0, or -errno
 * ("read: reason"; -ENOMEM). */
int gs_sha256_fd(int fd, void *buf, size_t bufsize, char hex[65], struct gs_err *err);
static inline void gs_sha256_freep(struct gs_sha256 **h)
{
	if (*h)
		gs_sha256_free(*h);
}

/* ---- the index (index.c) --------------------------------------------------------- */

#define GS_INDEX_NAME "index"
#define GS_INDEX_FORMAT 2
#define GS_STR_(x) #x
#define GS_STR(x) GS_STR_(x)
#define GS_INDEX_MAX (16u << 20) /* refuse to read an index larger than this */

/* What a container start needs of a staged driver (format: index.c). */
struct gs_index_file {
	const char *path;   /* relative to STORE/VER */
	const char *soname; /* or NULL */
	const char *sha256; /* 64 hex digits */
	const char *source; /* host path it was staged from */
	uint64_t size;
	enum gs_kind kind;
	unsigned int caps;
};
/* One ld.so.cache entry a staged library directory gives. */
struct gs_index_entry {
	const char *dir;  /* "lib/compute", "lib32/compute" */
	const char *key;  /* SONAME or development-link name */
	const char *file; /* name inside DIR the entry points at */
	int32_t flags;    /* enum ldc_flag bits */
	uint32_t glibc;   /* highest GLIBC_x.y its library needs (GS_GLIBC), 0 none */
};
struct gs_index {
	char *buf; /* the text; every string below points into it */
	size_t len;
	const char *driver, *arch;
	uint64_t manifest_size;
	const char *manifest_sha256; /* of manifest.json's bytes */
	struct gs_index_file *files; /* manifest order: same indices */
	size_t n_files;
	struct gs_index_entry *cache; /* in ldconfig's order */
	size_t n_cache;
	uint32_t glibc_max; /* the highest glibc of the entries */
};
void gs_index_free(struct gs_index *x);
static inline void gs_index_freep(struct gs_index **x)
{
	if (*x)
		gs_index_free(*x);
}

/* The index of manifest M, whose manifest.json is MANIFEST_SIZE bytes with
 * SHA-256 MANIFEST_SHA256 (hex): deterministic, so verify can rebuild it
 * and compare.  *OUT malloc'd. */
int gs_index_format(const struct gs_manifest *m, uint64_t manifest_size,
		    const char *manifest_sha256, char **out, size_t *len, struct gs_err *err);
/* Parses index text BUF (LEN bytes; ownership passes to *OUT, or BUF is
 * freed on error): checksum first, then every line strictly; another
 * format is -EPROTO.  NAME prefixes messages. */
int gs_index_parse(char *buf, size_t len, const char *name, struct gs_index **out,
		   struct gs_err *err);
/* Reads VERFD/index (DIR is STORE/VER, for messages) of version VER:
 * never through a symlink, at most GS_INDEX_MAX bytes, its driver VER, and
 * manifest.json beside it of the size it records.  Every refusal says to
 * run gpu-stage --driver VER, which rebuilds it. */
int gs_index_read_at(int verfd, const char *dir, const char *ver, struct gs_index **out,
		     struct gs_err *err);
/* Whether VERFD/index is exactly the index of M (INFO from
 * gs_manifest_read_at of VERFD): 1 yes; 0 no, *WHY saying how ("missing",
 * "differs from its manifest", ...); < 0 when it cannot tell. */
int gs_index_matches_at(int verfd, const struct gs_manifest *m,
			const struct gs_manifest_info *info, const char **why, struct gs_err *err);

/* ---- the store, read side (store.c) ------------------------------------------- */

#define GS_READERS_LOCK ".readers"

/* Takes STORE/.readers (STOREFD) shared into *FD.  A missing lock file is
 * no error (*FD = -1: a store staged before it existed; staging creates
 * it before anything else). */
int gs_store_readers_lock(int storefd, int *fd, struct gs_err *err);
/* Waits until no reader holds STORE/.readers (takes it exclusively and
 * lets go): call between swapping a tree away and deleting it.  0 passed;
 * 1 readers still hold it after GS_BARRIER_WAIT_MS (a hung hook): keep
 * the old tree; < 0 error. */
#define GS_BARRIER_WAIT_MS 10000
int gs_store_readers_barrier(int storefd, struct gs_err *err);

/* One staged version, opened once: everything is read through VERFD. */
struct gs_store_ver {
	int verfd;  /* STORE/VER, O_DIRECTORY */
	int lockfd; /* STORE/.readers held shared, or -1 */
	char *dir;  /* "STORE/VER", for messages */
};
/* Takes the readers' lock, then opens STORE/VER (never through a symlink;
 * VER must be a valid version).  -ENOENT when it is not staged. */
int gs_store_ver_open(const char *store, const char *ver, struct gs_store_ver *out,
		      struct gs_err *err);
void gs_store_ver_close(struct gs_store_ver *v);
static inline void gs_store_ver_closep(struct gs_store_ver *v)
{
	gs_store_ver_close(v);
}
/* V's manifest.json, strictly parsed; its driver must be VER. */
int gs_store_ver_manifest(const struct gs_store_ver *v, const char *ver,
			  struct gs_manifest **out, struct gs_manifest_info *info,
			  struct gs_err *err);
/* Reads STORE/VER/manifest.json back (strictly validated; a digest
 * mismatch is -EBADMSG). */
int gs_store_load(const char *store, const char *ver, struct gs_manifest **out,
		  struct gs_err *err);
/* gs_store_load() plus the creation time and digest state; a digest
 * mismatch is not an error here (INFO says so). */
int gs_store_load_info(const char *store, const char *ver, struct gs_manifest **out,
		       struct gs_manifest_info *info, struct gs_err *err);

#endif
