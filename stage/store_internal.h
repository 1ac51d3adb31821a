/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the store (stage/store.c, stage/manifest.c) and its commands
 * (stage/cmd_store.c): the manifest codec, the name rules for what may
 * live under STORE/VER, and the SHA-256 helper. */
#ifndef GS_STAGE_STORE_INTERNAL_H
#define GS_STAGE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gs/err.h"
#include "gs/stage.h"

#define GS_MANIFEST_NAME "manifest.json"
#define GS_MANIFEST_MAX (64u << 20) /* refuse to parse manifests larger than this */
#define GS_PATH_MAX 1024            /* longest relative path under STORE/VER */

/* What a manifest holds beyond a gs_plan. */
struct gs_manifest_info {
	char created[32];  /* RFC 3339 UTC, "2025-01-31T12:00:00Z" */
	bool digest_ok;    /* manifest_sha256 matches the rest of the document */
};

/* ---- names (manifest.c) ---------------------------------------------------- */

/* A driver version usable as a directory name: 1-64 characters from
 * [0-9A-Za-z._+~-], starting with a letter or digit, no "..". */
bool gs_store_version_valid(const char *ver);

/* A path relative to STORE/VER: no leading or trailing '/', no empty, "."
 * or ".." components, components of at most 255 bytes, at most
 * GS_PATH_MAX bytes.  NULL when valid, else the reason. */
const char *gs_store_path_check(const char *path);

/* A symlink target for a link at PATH: relative, no empty components, and
 * its ".." never climbs above STORE/VER.  NULL when valid, else the reason. */
const char *gs_store_target_check(const char *path, const char *target);

/* The whole plan: driver/arch set, every path and link target valid, no
 * path used twice, no path that is also another path's directory, nothing
 * named manifest.json at the top.  Messages name the entry ("files[3]"). */
int gs_plan_check(const struct gs_plan *p, struct gs_err *err);

const char *gs_kind_name(enum gs_kind k);
int gs_kind_parse(const char *s, enum gs_kind *k);

/* ---- manifest.json (manifest.c) -------------------------------------------- */

/* Serialises PLAN (sha256 filled) as manifest.json text with CREATED as
 * its creation time.  *OUT is malloc'd, NUL-terminated. */
int gs_manifest_dump(const struct gs_plan *p, time_t created, char **out, size_t *len,
		     struct gs_err *err);

/* Parses and strictly validates manifest text.  NAME (the file) prefixes
 * every message.  INFO may be NULL. */
int gs_manifest_parse(const char *text, size_t len, const char *name, struct gs_plan **out,
		      struct gs_manifest_info *info, struct gs_err *err);

/* Reads VERFD/manifest.json (never through a symlink).  NAME is the file
 * as shown in messages. */
int gs_manifest_read_at(int verfd, const char *name, struct gs_plan **out,
			struct gs_manifest_info *info, struct gs_err *err);

/* gs_store_load() plus the creation time and digest state.  Unlike
 * gs_store_load(), a digest mismatch is not an error here (INFO says so). */
int gs_store_load_info(const char *store, const char *ver, struct gs_plan **out,
		       struct gs_manifest_info *info, struct gs_err *err);

/* Checks the tree at VERFD against P: every file's type, mode, size, link
 * count and sha256, every link's target, directory modes, manifest.json's
 * mode, and that nothing else is there.  Each mismatch goes to REPORT as
 * "PATH: reason", sorted; *BAD counts them.  !DIGEST_OK adds one for
 * manifest.json.  Fails only when it cannot run (out of memory). */
int gs_manifest_check_tree(int verfd, const struct gs_plan *p, bool digest_ok,
			   void (*report)(void *data, const char *line), void *data,
			   size_t *bad, struct gs_err *err);

/* ---- hashing (store.c) -------------------------------------------------- */

struct gs_sha256;
int gs_sha256_new(struct gs_sha256 **h, struct gs_err *err);
int gs_sha256_update(struct gs_sha256 *h, const void *p, size_t n, struct gs_err *err);
/* Writes 64 lowercase hex digits and a NUL into HEX. */
int gs_sha256_final(struct gs_sha256 *h, char hex[65], struct gs_err *err);
void gs_sha256_free(struct gs_sha256 *h);
static inline void gs_sha256_freep(struct gs_sha256 **h)
{
	if (*h)
		gs_sha256_free(*h);
}

#endif
