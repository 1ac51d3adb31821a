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
#include "gs/manifest.h"

/* ---- discovery ----------------------------------------------------------- */

struct gs_discover_opts {
	const char *root;     /* host root, "/" by default */
	const char *driver;   /* version, or NULL to detect */
	char *const *libdirs; /* extra directories (inside root) to search */
	size_t n_libdirs;
	unsigned int caps;    /* capabilities to include (GS_CAP_ALL by default) */
};

/* Where gs_driver_detect looks. */
enum gs_detect {
	GS_DETECT_ANY = 0,   /* the loaded module, else the installed libraries */
	GS_DETECT_LOADED,    /* the loaded module only: 0 with *OUT NULL when none is */
	GS_DETECT_INSTALLED, /* the installed libraries only (after an upgrade, before reboot) */
};

/* Detects the driver version under ROOT: the loaded module's
 * (/proc/driver/nvidia/version, then /sys/module/nvidia/version), then
 * what libcuda.so.1 / libnvidia-ml.so.1 resolve to in ROOT's ld.so.cache,
 * as HOW says.  Ambiguity is an error listing the candidates.  *OUT is
 * malloc'd (NULL only for GS_DETECT_LOADED without a loaded module). */
int gs_driver_detect(const char *root, enum gs_detect how, char **out, struct gs_err *err);

/* Computes the plan for one driver version. */
int gs_discover(const struct gs_discover_opts *o, struct gs_manifest **out, struct gs_err *err);

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
	GS_STAGE_REINDEXED = 3, /* it matched, but its index was missing or stale
				 * (an older gpu-stage): only the index rewritten */
};

/* Stages PLAN into STORE/PLAN->driver.  Sources are opened inside ROOTFD
 * (the root the plan was discovered under).  Takes STORE/.lock (flock);
 * builds in STORE/.tmp-VER-XXXXXX, fsyncs, then renames into place
 * (renameat2 RENAME_EXCHANGE when replacing, then removes the old tree), so
 * a crash at any moment leaves either the old or the new STORE/VER, never a
 * partial one under that name.  Fills every file's sha256 and writes
 * manifest.json.  FORCE re-copies even when unchanged. */
int gs_store_stage(const char *store, int rootfd, struct gs_manifest *plan, bool force,
		   const struct gs_progress *progress, enum gs_stage_result *result,
		   struct gs_err *err);

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
 * remains under its name).  Returns 0 when its files are deleted, 1 when a
 * running container still mounts the tree, or deleting them failed
 * (*RM_ERR: the errno, else 0): it then stays, hidden as
 * STORE/.tmp-rm-VER-*, and a later gpu-stage run deletes it once it can
 * (the same holds for the copy a re-stage replaces). */
int gs_store_remove(const char *store, const char *ver, int *rm_err, struct gs_err *err);

#endif
