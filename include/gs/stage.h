/* SPDX-License-Identifier: Apache-2.0 */
/* Driver discovery (what belongs to one driver version) and the store
 * (STORE/VER/: read-only staged copy + manifest.json).
 *
 * Discovery produces a plan: a plain list of files and links, relative to
 * STORE/VER, each file with the host path it comes from.  The store turns a
 * plan into STORE/VER atomically, and reads manifests back for list,
 * verify, diff and remove.  Libraries never print: progress goes through a
 * callback the main provides. */
#ifndef GS_STAGE_H
#define GS_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gs/err.h"

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

struct gs_plan {
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

void gs_plan_free(struct gs_plan *p);
static inline void gs_plan_freep(struct gs_plan **p)
{
	if (*p)
		gs_plan_free(*p);
}

/* Capability names <-> bits.  "all" is every capability. */
int gs_caps_parse(const char *list, unsigned int *caps, struct gs_err *err);
/* Comma-separated names into BUF ("compute,utility"). */
const char *gs_caps_format(unsigned int caps, char *buf, size_t len);

/* ---- discovery ----------------------------------------------------------- */

struct gs_discover_opts {
	const char *root;     /* host root, "/" by default */
	const char *driver;   /* version, or NULL to detect */
	char *const *libdirs; /* extra directories (inside root) to search */
	size_t n_libdirs;
	unsigned int caps;    /* capabilities to include (GS_CAP_ALL by default) */
};

/* Detects the driver version under ROOT: /proc/driver/nvidia/version, then
 * /sys/module/nvidia/version, then what libcuda.so.1 / libnvidia-ml.so.1
 * resolve to in ROOT's ld.so.cache.  Ambiguity is an error listing the
 * candidates.  *OUT is malloc'd. */
int gs_driver_detect(const char *root, char **out, struct gs_err *err);

/* Computes the plan for one driver version. */
int gs_discover(const struct gs_discover_opts *o, struct gs_plan **out, struct gs_err *err);

/* ---- the store ------------------------------------------------------------ */

struct gs_progress {
	/* called after each file; may be NULL */
	void (*fn)(void *data, size_t done_files, size_t total_files, uint64_t done_bytes,
		   uint64_t total_bytes, const char *current);
	void *data;
};

enum gs_stage_result {
	GS_STAGE_CREATED = 0,   /* STORE/VER did not exist */
	GS_STAGE_REPLACED = 1,  /* STORE/VER existed and differed: replaced atomically */
	GS_STAGE_UNCHANGED = 2, /* STORE/VER matched the plan: nothing copied */
};

/* Stages PLAN into STORE/PLAN->driver.  Sources are opened inside ROOTFD
 * (the root the plan was discovered under).  Takes STORE/.lock (flock);
 * builds in STORE/.tmp-VER-XXXXXX, fsyncs, then renames into place
 * (renameat2 RENAME_EXCHANGE when replacing, then removes the old tree), so
 * a crash at any moment leaves either the old or the new STORE/VER, never a
 * partial one under that name.  Fills every file's sha256 and writes
 * manifest.json.  FORCE re-copies even when unchanged. */
int gs_store_stage(const char *store, int rootfd, struct gs_plan *plan, bool force,
		   const struct gs_progress *progress, enum gs_stage_result *result,
		   struct gs_err *err);

/* Reads STORE/VER/manifest.json back into a plan (strictly validated). */
int gs_store_load(const char *store, const char *ver, struct gs_plan **out, struct gs_err *err);

/* Staged versions (sorted by version), ignoring temporary directories. */
int gs_store_list(const char *store, char ***versions, size_t *n, struct gs_err *err);

/* Checks that STORE/VER holds exactly what its manifest says: every file's
 * bytes (sha256), size and mode, every link's target, directory modes, and
 * nothing else.  Returns 0 when it matches; -EBADMSG with every mismatch
 * reported through REPORT (one line each) otherwise. */
int gs_store_verify(const char *store, const char *ver,
		    void (*report)(void *data, const char *line), void *data,
		    struct gs_err *err);

/* Removes STORE/VER (under the lock; renamed away first so no half tree
 * remains under its name). */
int gs_store_remove(const char *store, const char *ver, struct gs_err *err);

#endif
