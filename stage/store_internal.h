/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the store (stage/store.c, store_dir.c, store_gc.c, archive.c)
 * and its commands (stage/cmd_store.c, stage/cmd_archive.c). */
#ifndef GS_STAGE_STORE_INTERNAL_H
#define GS_STAGE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "gs/err.h"
#include "gs/stage.h"

/* ---- the store directory (store_dir.c), for store.c and gc ---------------- */

/* Opens STORE (creating it and its parents 0755 when CREATE).  Returns the fd. */
int gs_store_dir_open(const char *store, bool create, struct gs_err *err);
/* Takes STORE/.lock (exclusive or shared).  SHARED never creates it and
 * gives -1 without error when it is missing. */
int gs_store_dir_lock(int storefd, const char *store, bool shared, struct gs_err *err);
/* rm -rf DIRFD/NAME without following symlinks (0555 directories made
 * writable first).  0 or -errno. */
int gs_store_rm_tree(int dirfd, const char *name);
/* Deletes the tree STORE/NAME unless a mount still shows it: 1 deleted, 0
 * kept, -errno when deleting failed. */
int gs_store_remove_unused(int storefd, const char *name);
/* Removes the .tmp-* trees left behind (the caller holds the lock), once
 * readers are done, unless mounted. */
void gs_store_remove_stale(int storefd);
/* A fresh name "PREFIX-XXXXXX" in STOREFD that nothing uses yet. */
int gs_store_fresh_name(int storefd, const char *prefix, char *name, size_t len,
			struct gs_err *err);
/* Whether STORE/VER exists (as a directory; anything else is an error). */
int gs_store_staged_exists(int storefd, const char *store, const char *ver, bool *exists,
			   struct gs_err *err);

/* ---- filling a new STORE/VER from something else than a host root -------- */

/* The temporary tree STORE/.tmp-VER-XXXXXX being built (store.c). */
struct gs_tree;
/* Creates PATH (valid: gs_store_path_check) in T, its parent directories
 * made as needed, for writing (O_EXCL, 0600).  Returns the fd. */
int gs_tree_create(struct gs_tree *t, const char *path, struct gs_err *err);
/* FD (of PATH) is written in full: gives it MODE and starts its writeback. */
int gs_tree_seal(struct gs_tree *t, int fd, const char *path, uint32_t mode, struct gs_err *err);
/* PATH -> TARGET (both checked by the caller against the manifest). */
int gs_tree_symlink(struct gs_tree *t, const char *path, const char *target, struct gs_err *err);

/* What writes every file and link of the manifest into T.  T is NULL when
 * STORE/VER already holds exactly that manifest: the filler then checks
 * everything it would write and writes nothing. */
struct gs_tree_filler {
	int (*fn)(void *data, struct gs_tree *t, struct gs_err *err);
	void *data;
};

/* Puts the version M (whose manifest.json is the LEN bytes at TEXT, kept
 * as they are) into STORE as staging does: under STORE/.lock, in a
 * temporary tree FILL fills, fsynced, sealed read-only (index written from
 * TEXT) and renamed into place; any failure leaves STORE as it was (and a
 * kill only .tmp-* debris the next run removes).  An existing STORE/VER
 * with exactly this manifest and its files: GS_STAGE_UNCHANGED (FILL still
 * runs, with no tree); another one: -EEXIST unless FORCE, which swaps it
 * like a re-stage (GS_STAGE_REPLACED). */
int gs_store_import(const char *store, const struct gs_manifest *m, const char *text, size_t len,
		    bool force, const struct gs_tree_filler *fill, enum gs_stage_result *result,
		    struct gs_err *err);

/* ---- for gc (store_dir.c) ------------------------------------------------ */

/* Temporary and old trees: STORE/.tmp-VER-XXXXXX (being built, or swapped
 * out by a re-stage), STORE/.tmp-rm-VER-XXXXXX (removed). */
#define GS_STORE_TMP_PREFIX ".tmp-"

/* Opens the existing STORE and takes its lock (*LOCKFD).  Returns the fd. */
int gs_store_open_locked(const char *store, int *lockfd, struct gs_err *err);
/* 0 when no mount table of any process shows a directory or file of the
 * tree STOREFD/NAME; else the pid of one whose does, or -1 when that
 * cannot be told (/proc unreadable): in use all the same. */
pid_t gs_store_tree_user(int storefd, const char *name);
/* Removes STOREFD/VER under the lock held: renamed away, then deleted
 * unless a container mounts it meanwhile (1: kept for a later run; *RM_ERR
 * the errno when deleting failed instead, else 0). */
int gs_store_remove_locked(int storefd, const char *store, const char *ver, int *rm_err,
			   struct gs_err *err);
/* Deletes the old tree STOREFD/NAME (.tmp-*) once readers are done, unless
 * something mounts it: 1 deleted, 0 kept, -errno deleting failed. */
int gs_store_remove_old(int storefd, const char *name);

/* ---- gc (store_gc.c) ------------------------------------------------------ */

enum gs_gc_verdict {
	GS_GC_REMOVE = 0,  /* neither kept nor in use: removed (dry run: would be) */
	GS_GC_KEEP,        /* named by the caller (KEEP[i].why) */
	GS_GC_IN_USE,      /* a mount table shows it (pid, or -1: /proc unreadable) */
	GS_GC_KEPT_MOUNTED, /* removed from view, but mounted meanwhile: deleted later */
	GS_GC_RM_FAILED,   /* removed from view, but deleting failed (err_no): later */
};

struct gs_gc_keep {
	const char *ver;
	const char *why; /* "the loaded kernel module's", "the configuration's driver" */
};

struct gs_gc_item {
	const char *name;  /* VER, or .tmp-* for an old tree */
	bool old_tree;     /* a tree swapped out or removed earlier (.tmp-*) */
	enum gs_gc_verdict verdict;
	const char *why;   /* GS_GC_KEEP */
	pid_t pid;         /* GS_GC_IN_USE */
	int err_no;        /* GS_GC_RM_FAILED */
};

/* Removes every staged version of STORE not in KEEP and not in use, and
 * every old tree no longer in use, under the store lock; DRY_RUN removes
 * nothing.  REPORT gets each version and old tree with its verdict.
 * Returns the number removed (or that would be); no STORE at all: 0. */
int gs_store_gc(const char *store, const struct gs_gc_keep *keep, size_t n_keep, bool dry_run,
		void (*report)(void *data, const struct gs_gc_item *item), void *data,
		struct gs_err *err);

/* ---- archives (archive.c) -------------------------------------------------- */

#define GS_ARCHIVE_FILE_MAX (4ull << 30)   /* the largest file an archive may carry */
#define GS_ARCHIVE_TOTAL_MAX (64ull << 30) /* and all of them together */

struct gs_export_info {
	uint64_t bytes;   /* of the archive */
	char sha256[65];  /* of the archive */
	size_t entries;   /* manifest.json, files, links */
	uint64_t data;    /* file bytes carried */
};

/* Writes STORE/VER as one deterministic tar (pax) + zstd stream to OUTFD:
 * "VER/manifest.json" first, then every file and link of the manifest
 * sorted by path, modes the manifest's, mtime 0, owner 0:0 root:root, no
 * other metadata.  Every file is hashed as it is read and must match the
 * manifest.  Holds STORE/.readers shared while it reads. */
int gs_archive_export(const char *store, const char *ver, int outfd,
		      const struct gs_progress *progress, struct gs_export_info *info,
		      struct gs_err *err);

/* Imports the archive at FD (NAME for messages) into STORE: reads it with
 * libarchive's reader only, checks every entry against its manifest (see
 * archive.c) and puts the version in place with gs_store_import.  *VER
 * (malloc'd) is the version, also on failure once known. */
int gs_archive_import(const char *store, int fd, const char *name, bool force, char **ver,
		      enum gs_stage_result *result, struct gs_err *err);

/* The path inside STORE/VER that archive entry NAME stands for: NAME must
 * be "VER/" followed by a valid store path (gs_store_path_check).  NULL
 * when not, *WHY saying why. */
const char *gs_archive_entry_path(const char *ver, const char *name, const char **why);

#endif
