/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel's fd-based mount API (Linux >= 5.12 for mount_setattr), called
 * through syscall() so that no libmount is needed and the hook can be a
 * static executable. */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

int gs_sys_open_tree(int dfd, const char *path, unsigned int flags)
{
	return (int)syscall(SYS_open_tree, dfd, path, flags);
}

int gs_sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to,
		      unsigned int flags)
{
	return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

int gs_sys_mount_setattr(int dfd, const char *path, unsigned int flags, uint64_t attr_set,
			 uint64_t attr_clr, uint64_t propagation)
{
	struct mount_attr a = {.attr_set = attr_set, .attr_clr = attr_clr,
			       .propagation = propagation};
	return (int)syscall(SYS_mount_setattr, dfd, path, flags, &a, sizeof(a));
}

int gs_sys_fsopen(const char *fs, unsigned int flags)
{
	return (int)syscall(SYS_fsopen, fs, flags);
}

int gs_sys_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux)
{
	return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

int gs_sys_fsmount(int fd, unsigned int flags, unsigned int attr)
{
	return (int)syscall(SYS_fsmount, fd, flags, attr);
}

static int api_missing(struct gs_err *err, const char *call, const char *what)
{
	return gs_err_set(err, errno,
			  "%s: %s (the kernel's mount API, Linux >= 5.12, is required; there is no fallback)",
			  what, call);
}

int ovl_clone(int fd, uint64_t attrs, const char *what, struct gs_err *err)
{
	int tree = gs_sys_open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0)
		return errno == ENOSYS ? api_missing(err, "open_tree", what)
				       : gs_err_set(err, errno, "%s: open_tree", what);
	if (gs_sys_mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, attrs, 0, MS_PRIVATE) < 0) {
		int e = errno;
		close(tree);
		errno = e;
		return e == ENOSYS ? api_missing(err, "mount_setattr", what)
				   : gs_err_set(err, e, "%s: mount_setattr", what);
	}
	return tree;
}

int ovl_clone_ro(int fd, const char *what, struct gs_err *err)
{
	return ovl_clone(fd, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, what, err);
}

int ovl_tmpfs_new(uint32_t mode, struct gs_err *err)
{
	char m[16];
	int fs = gs_sys_fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return errno == ENOSYS ? api_missing(err, "fsopen", "tmpfs")
				       : gs_err_set(err, errno, "tmpfs: fsopen");
	snprintf(m, sizeof(m), "%o", (unsigned int)(mode & 07777));
	int r = 0;
	if (gs_sys_fsconfig(fs, FSCONFIG_SET_STRING, "mode", m, 0) < 0 ||
	    gs_sys_fsconfig(fs, FSCONFIG_SET_STRING, "size", "16m", 0) < 0 ||
	    gs_sys_fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", "4096", 0) < 0 ||
	    gs_sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		r = gs_err_set(err, errno, "tmpfs: fsconfig");
	int mnt = r < 0 ? -1
			: gs_sys_fsmount(fs, FSMOUNT_CLOEXEC,
					 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (r >= 0 && mnt < 0)
		r = gs_err_set(err, errno, "tmpfs: fsmount");
	close(fs);
	return r < 0 ? r : mnt;
}

int ovl_attach(int tree, int target, const char *dest, struct gs_err *err)
{
	if (gs_sys_move_mount(tree, "", target, "",
			      MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return gs_err_set(err, errno, "%s: move_mount", dest);
	return 0;
}

int ovl_seal(int mntfd, const char *dest, struct gs_err *err)
{
	if (gs_sys_mount_setattr(mntfd, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY, 0, 0) < 0)
		return gs_err_set(err, errno, "%s: making it read-only", dest);
	return 0;
}

int ovl_mnt_id(int fd, uint64_t *id, struct gs_err *err)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0)
		return gs_err_set(err, errno, "statx");
	if (!(stx.stx_mask & STATX_MNT_ID))
		return gs_err_setx(err, ENOSYS, "statx: no mount id (Linux >= 5.8 needed)");
	*id = stx.stx_mnt_id;
	return 0;
}
