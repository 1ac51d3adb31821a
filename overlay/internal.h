/* SPDX-License-Identifier: Apache-2.0 */
/* Private to overlay/. */
#ifndef GS_OVERLAY_INTERNAL_H
#define GS_OVERLAY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "gs/err.h"
#include "gs/overlay.h"

/* ---- plan helpers (plan.c, plan_ldcache.c) ---- */

/* Adds the ldcache op (entries for every lib dir already bound) and, on a
 * writable root, the ld.so.conf.d entry. */
int ovl_plan_add_ldcache(struct ovl_plan *p, const struct gs_index *m, bool no_write,
			 struct gs_err *err);
int ovl_plan_add_firmware(struct ovl_plan *p, const struct gs_index *m, struct gs_err *err);

/* ---- the new mount API (mountapi.c): thin wrappers, tests may --wrap ---- */

int gs_sys_open_tree(int dfd, const char *path, unsigned int flags);
int gs_sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to,
		      unsigned int flags);
int gs_sys_mount_setattr(int dfd, const char *path, unsigned int flags, uint64_t attr_set,
			 uint64_t attr_clr, uint64_t propagation);
int gs_sys_fsopen(const char *fs, unsigned int flags);
int gs_sys_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux);
int gs_sys_fsmount(int fd, unsigned int flags, unsigned int attr);

/* A detached clone of the tree at FD ("" + AT_EMPTY_PATH), made read-only,
 * nosuid, nodev and private before anyone can see it. */
int ovl_clone_ro(int fd, const char *what, struct gs_err *err);
/* The same with the mount attributes ATTRS (MOUNT_ATTR_*) set. */
int ovl_clone(int fd, uint64_t attrs, const char *what, struct gs_err *err);
/* A fresh detached tmpfs (nosuid,nodev,noexec; MODE). */
int ovl_tmpfs_new(uint32_t mode, struct gs_err *err);
/* Attaches the detached mount TREE onto the object TARGET (an fd). */
int ovl_attach(int tree, int target, const char *dest, struct gs_err *err);
/* Makes the mount whose root is MNTFD read-only (MOUNT_ATTR_RDONLY). */
int ovl_seal(int mntfd, const char *dest, struct gs_err *err);
/* The mount id of FD (statx STATX_MNT_ID). */
int ovl_mnt_id(int fd, uint64_t *id, struct gs_err *err);

/* ---- paths inside the root (target.c) ---- */

struct ovl_ctx;

/* Whether creating (or removing, replacing, mknod'ing) entries in the
 * directory DIRFD is allowed: on the rootfs mount unless in no-write mode
 * (EROFS), and on a tmpfs of ours or one the runtime made from config.json
 * (c->tmpfs_ids: a mount found at one of plan->tmpfs_dests that is a whole
 * tmpfs whose superblock shows on no other mount); never on any other
 * mount (EXDEV): a volume, i.e. a host directory or a host tmpfs (bound
 * in) that the image's symlinks may point into. */
int ovl_may_create(struct ovl_ctx *c, int dirfd, const char *dest, struct gs_err *err);

/* Whether DIRFD lies on the rootfs mount itself (the image's own files),
 * rather than on a volume or other mount the runtime put in the container:
 * files that exist already are replaced only there. */
int ovl_on_root(struct ovl_ctx *c, int dirfd, const char *dest, struct gs_err *err);

/* Opens (O_PATH) the directory DEST inside the root, creating missing
 * components one at a time (never through a symlink) unless NO_MKDIR. */
int ovl_dir_open(struct ovl_ctx *c, const char *dest, bool no_mkdir, struct gs_err *err);

/* Splits absolute DEST into its parent directory fd (opened or created as
 * ovl_dir_open does) and the last component. */
int ovl_parent_open(struct ovl_ctx *c, const char *dest, bool no_mkdir, const char **name,
		    struct gs_err *err);

/* chmod of the object an O_PATH fd holds (fchmod refuses O_PATH fds),
 * through its /proc/self/fd link, which names exactly that inode. */
int ovl_chmod_fd(int fd, mode_t mode, const char *dest, struct gs_err *err);

/* Whether directory DIRFD (O_PATH ok) has no entries but . and .. */
int ovl_dir_is_empty(int dirfd, const char *dest, struct gs_err *err);

/* ---- the apply context (apply.c) ---- */

#define OVL_MAX_TMPFS 4

struct ovl_ctx {
	const struct ovl_plan *plan;
	struct ovl_sources *src;
	struct ovl_result *res;
	int rootfd;
	uint64_t root_mnt;        /* mount id of the rootfs mount */
	int anchorfd;             /* O_PATH root of our anchor tmpfs, -1 before */
	char anchor_dest[256];    /* where the anchor went */
	int tmpfs[OVL_MAX_TMPFS]; /* our tmpfs mounts, sealed read-only at the end */
	char tmpfs_dest[OVL_MAX_TMPFS][256];
	size_t n_tmpfs;
	uint64_t *shared;         /* ids of the shared mounts of the namespace */
	size_t n_shared;
	uint64_t *tmpfs_ids;      /* ids of the container's own tmpfs mounts: ours, and
				   * the runtime's from config.json (apply.c) */
	size_t n_tmpfs_ids;
	bool compat_first;        /* the image's CUDA compat directory goes first in
				   * the ld.so.conf.d entry (ldcache.c found it newer) */
};

/* Records mount id ID in *V (N entries). */
int ovl_ids_add(uint64_t **v, size_t *n, uint64_t id, struct gs_err *err);

/* Refuses (EXDEV) a mount target TARGET that lies on a shared mount: a
 * mount attached there would propagate to its peers, e.g. the host's mount
 * table (a volume with shared propagation that the image's symlinks point
 * into).  Then attaches TREE onto it (ovl_attach). */
int ovl_check_private(struct ovl_ctx *c, int target, const char *dest, struct gs_err *err);
int ovl_attach_private(struct ovl_ctx *c, int tree, int target, const char *dest,
		       struct gs_err *err);

/* Applies op I of the plan (apply_ops.c). */
int ovl_apply_tmpfs(struct ovl_ctx *c, size_t i, struct gs_err *err);
int ovl_apply_bind(struct ovl_ctx *c, size_t i, struct gs_err *err);
int ovl_apply_mknod(struct ovl_ctx *c, size_t i, struct gs_err *err);
int ovl_apply_symlink(struct ovl_ctx *c, size_t i, struct gs_err *err);
int ovl_apply_write(struct ovl_ctx *c, size_t i, struct gs_err *err);
/* ldcache.c */
int ovl_apply_ldcache(struct ovl_ctx *c, size_t i, struct gs_err *err);
/* The image's new /etc/ld-musl-x86_64.path (ETCFD: its /etc) for the
 * LDCACHE op O: *OUT malloc'd, *LEN bytes; WHY says what was kept. */
int ovl_musl_build(const struct ovl_op *o, int etcfd, char **out, size_t *len, char *why,
		   size_t whylen, struct gs_err *err);

/* The detached clone prepared for op I, or -1 (sources.c). */
int ovl_sources_tree(struct ovl_sources *s, size_t i);
/* dev/ino of the host source of op I. */
const struct stat *ovl_sources_stat(struct ovl_sources *s, size_t i);

/* Records a skip with a note for op I; returns 0. */
int ovl_skip(struct ovl_ctx *c, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
