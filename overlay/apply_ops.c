/* SPDX-License-Identifier: Apache-2.0 */
/* One function per operation type.  Mount targets come from target.c (fds
 * resolved inside the root); mounts are attached onto those fds and the
 * result is reopened and compared with the source afterwards. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "internal.h"

#define MIRROR_MAX 64

static int beneath(int dirfd, const char *name, int flags)
{
	return gs_open_beneath(dirfd, name, flags, 0);
}

static int remember_tmpfs(struct ovl_ctx *c, int mnt, const char *dest, struct gs_err *err)
{
	uint64_t id = 0;
	if (c->n_tmpfs >= OVL_MAX_TMPFS) {
		close(mnt);
		return gs_err_setx(err, E2BIG, "%s: too many tmpfs mounts", dest);
	}
	if (ovl_mnt_id(mnt, &id, err) < 0 || ovl_ids_add(&c->tmpfs_ids, &c->n_tmpfs_ids, id, err) < 0) {
		close(mnt);
		return gs_err_wrap(err, "%s", dest);
	}
	c->tmpfs[c->n_tmpfs] = mnt;
	snprintf(c->tmpfs_dest[c->n_tmpfs], sizeof(c->tmpfs_dest[0]), "%s", dest);
	c->n_tmpfs++;
	return 0;
}

/* Mounts a fresh tmpfs onto TARGET; returns its root fd (kept by C). */
static int tmpfs_onto(struct ovl_ctx *c, int target, uint32_t mode, const char *dest,
		      struct gs_err *err)
{
	int r = ovl_check_private(c, target, dest, err);
	if (r < 0)
		return r;
	int mnt = ovl_tmpfs_new(mode, err);
	if (mnt < 0)
		return gs_err_wrap(err, "%s", dest);
	r = ovl_attach(mnt, target, dest, err);
	if (r < 0) {
		close(mnt);
		return r;
	}
	r = remember_tmpfs(c, mnt, dest, err);
	return r < 0 ? r : mnt;
}

/* Whether entry NAME of DIRFD is a mount point (another mount than
 * DIRFD's): a tmpfs over DIRFD would hide what the runtime mounted there. */
static bool is_mountpoint(int dirfd, const char *name)
{
	uint64_t parent = 0, child = 0;
	struct gs_err e = GS_ERR_INIT;
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool r = ovl_mnt_id(dirfd, &parent, &e) == 0 && ovl_mnt_id(fd, &child, &e) == 0 &&
		 parent != child;
	close(fd);
	return r;
}

/* chmod of the object an O_PATH fd holds (fchmod refuses O_PATH fds):
 * through its /proc/self/fd link, which names exactly that inode. */
int ovl_chmod_fd(int fd, mode_t mode, const char *dest, struct gs_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (chmod(path, mode) < 0)
		return gs_err_set(err, errno, "chmod %s", dest);
	return 0;
}

#define HIDE_REMEDY                                                                          \
	"; refusing rather than hiding anything: declare a tmpfs mount at " OVL_ANCHOR       \
	" in config.json (gpu-runtime does this), or give the container a writable root"

/* Entry NAME (ST) of DIRFD, to be covered by a tmpfs over DEST: refused
 * unless it is a symlink or an empty directory and no mount point.  1 when
 * it is to be recreated, 0 when not (our own anchor name, replaced). */
static int may_cover(int dirfd, const char *name, const struct stat *st, const char *dest,
		     const char *anchor, struct gs_err *err)
{
	if (is_mountpoint(dirfd, name))
		return gs_err_setx(err, EBUSY,
				   "%s/%s is a mount point: a tmpfs over %s (read-only root without %s/%s) would hide it" HIDE_REMEDY,
				   dest, name, dest, dest, anchor);
	if (S_ISLNK(st->st_mode))
		return strcmp(name, anchor) != 0;
	if (S_ISDIR(st->st_mode)) {
		_cleanup_close_ int fd = beneath(dirfd, name, O_PATH | O_DIRECTORY);
		int r = fd < 0 ? gs_err_set(err, errno, "%s/%s", dest, name)
			       : ovl_dir_is_empty(fd, name, err);
		if (r < 0)
			return r;
		if (r == 1)
			return 1;
	}
	return gs_err_setx(err, EBUSY,
			   "%s/%s is %s: a tmpfs over %s (read-only root without %s/%s) would hide it" HIDE_REMEDY,
			   dest, name, S_ISDIR(st->st_mode) ? "a directory that is not empty" : "not a directory or symlink",
			   dest, dest, anchor);
}

/* Recreates entry NAME (ST) of DIRFD in MNT exactly: a directory with its
 * mode and owner, a symlink with its target and owner. */
static int recreate(int dirfd, int mnt, const char *name, const struct stat *st,
		    const char *dest, struct gs_err *err)
{
	char t[4096];
	if (S_ISLNK(st->st_mode)) {
		ssize_t l = readlinkat(dirfd, name, t, sizeof(t));
		if (l < 0)
			return gs_err_set(err, errno, "%s/%s: readlink", dest, name);
		if ((size_t)l >= sizeof(t))
			return gs_err_setx(err, ENAMETOOLONG, "%s/%s: symlink target too long", dest, name);
		t[l] = '\0';
		if (symlinkat(t, mnt, name) < 0)
			return gs_err_set(err, errno, "%s/%s: recreating the symlink", dest, name);
		if (fchownat(mnt, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
			return gs_err_set(err, errno, "%s/%s: chown", dest, name);
		return 0;
	}
	if (mkdirat(mnt, name, 0700) < 0)
		return gs_err_set(err, errno, "%s/%s: recreating the directory", dest, name);
	_cleanup_close_ int fd = beneath(mnt, name, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return gs_err_set(err, errno, "%s/%s", dest, name);
	/* mode first, while the group is ours (a setgid bit set on a directory
	 * of another group would be dropped without CAP_FSETID); chown keeps
	 * a directory's setgid bit */
	struct stat now;
	int r = ovl_chmod_fd(fd, st->st_mode & 07777, name, err);
	if (r >= 0 && fchownat(fd, "", st->st_uid, st->st_gid, AT_EMPTY_PATH) < 0)
		r = gs_err_set(err, errno, "%s/%s: chown", dest, name);
	if (r >= 0 && (fstat(fd, &now) < 0 || (now.st_mode & 07777) != (st->st_mode & 07777)))
		r = gs_err_setx(err, EPERM, "%s/%s: mode %o could not be recreated", dest, name,
				(unsigned int)(st->st_mode & 07777));
	return r;
}

/* Recreates the image's entries of DIRFD inside the tmpfs MNT that is
 * about to cover it, when that hides nothing (may_cover): at most
 * MIRROR_MAX entries, empty directories and symlinks only, no mount
 * point.  ANCHOR, a symlink there, is left out (our directory replaces
 * it).  Refuses (EBUSY) naming the first entry that would be hidden. */
static int mirror_entries(int dirfd, int mnt, const char *dest, const char *anchor,
			  struct gs_err *err)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return gs_err_set(err, errno, "%s", dest);
	}
	struct dirent *de;
	int n = 0;
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (++n > MIRROR_MAX)
			return gs_err_setx(err, EBUSY,
					   "%s holds more than %d entries: a tmpfs over it (read-only root without %s/%s) would hide them" HIDE_REMEDY,
					   dest, MIRROR_MAX, dest, anchor);
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return gs_err_set(err, errno, "%s/%s", dest, de->d_name);
		int r = may_cover(dirfd, de->d_name, &st, dest, anchor, err);
		if (r > 0)
			r = recreate(dirfd, mnt, de->d_name, &st, dest, err);
		if (r < 0)
			return r;
	}
	return errno ? gs_err_set(err, errno, "%s: readdir", dest) : 0;
}

/* Read-only root without /run/gpu-stage: a tmpfs over /run itself (mode
 * and owner of /run), holding the image's /run entries recreated and
 * gpu-stage/, when that hides nothing of the image's or the runtime's. */
static int anchor_over_parent(struct ovl_ctx *c, size_t i, int parent, const char *pdest,
			      const char *name, struct gs_err *err)
{
	struct stat st;
	if (fstat(parent, &st) < 0)
		return gs_err_set(err, errno, "%s", pdest);
	int mnt = ovl_tmpfs_new(st.st_mode & 07777, err);
	if (mnt < 0)
		return gs_err_wrap(err, "%s", pdest);
	int r = fchownat(mnt, "", st.st_uid, st.st_gid, AT_EMPTY_PATH) < 0
			? gs_err_set(err, errno, "%s: chown", pdest)
			: mirror_entries(parent, mnt, pdest, name, err);
	if (r >= 0 && mkdirat(mnt, name, 0755) < 0)
		r = gs_err_set(err, errno, "%s/%s", pdest, name);
	if (r >= 0)
		r = ovl_attach_private(c, mnt, parent, pdest, err);
	if (r < 0) {
		close(mnt);
		return r;
	}
	r = remember_tmpfs(c, mnt, pdest, err);
	if (r < 0)
		return r;
	c->anchorfd = beneath(mnt, name, O_PATH | O_DIRECTORY);
	if (c->anchorfd < 0)
		return gs_err_set(err, errno, "%s/%s", pdest, name);
	snprintf(c->res->ops[i].where, sizeof(c->res->ops[i].where), "%s", pdest);
	snprintf(c->res->ops[i].note, sizeof(c->res->ops[i].note),
		 "read-only root without %s: tmpfs over %s, whose entries (empty directories and symlinks only) were recreated",
		 c->plan->ops[i].dest, pdest);
	return 0;
}

/* The anchor directory itself: created (writable root, or a runtime mount),
 * replaced when it is anything but a directory (a symlink is never
 * followed), or taken over from its parent (read-only root: *OVER set). */
static int anchor_target(struct ovl_ctx *c, size_t i, int parent, const char *pdest,
			 const char *name, bool *over, struct gs_err *err)
{
	const char *dest = c->plan->ops[i].dest;
	*over = false;
	int t = beneath(parent, name, O_PATH | O_DIRECTORY);
	if (t >= 0)
		return t;
	int why = errno;
	if (why != ENOENT && why != ELOOP && why != ENOTDIR)
		return gs_err_set(err, why, "%s", dest);
	struct gs_err e = GS_ERR_INIT;
	if (ovl_may_create(c, parent, dest, &e) < 0) {
		if (e.code != EROFS) { /* a volume: neither changed nor covered */
			*err = e;
			return -e.code;
		}
		*over = true;
		return anchor_over_parent(c, i, parent, pdest, name, err);
	}
	if (why != ENOENT && unlinkat(parent, name, 0) < 0)
		return gs_err_set(err, errno, "%s: removing what the image has there", dest);
	if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
		return gs_err_set(err, errno, "creating %s", dest);
	t = beneath(parent, name, O_PATH | O_DIRECTORY);
	return t >= 0 ? t : gs_err_set(err, errno, "%s", dest);
}

static int apply_anchor(struct ovl_ctx *c, size_t i, struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	const char *name;
	char pdest[256];
	bool over;
	_cleanup_close_ int parent = ovl_parent_open(c, o->dest, c->plan->no_write, &name, err);
	if (parent < 0)
		return parent;
	snprintf(pdest, sizeof(pdest), "%.*s", (int)(name - 1 - o->dest), o->dest);
	int t = anchor_target(c, i, parent, pdest, name, &over, err);
	if (t < 0 || over)
		return t < 0 ? t : 0;
	int mnt = tmpfs_onto(c, t, o->mode, o->dest, err);
	close(t);
	if (mnt < 0)
		return mnt;
	c->anchorfd = fcntl(mnt, F_DUPFD_CLOEXEC, 3);
	return c->anchorfd < 0 ? gs_err_set(err, errno, "%s", o->dest) : 0;
}

int ovl_apply_tmpfs(struct ovl_ctx *c, size_t i, struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	if (o->flags & OVL_F_ANCHOR)
		return apply_anchor(c, i, err);
	struct gs_err e = GS_ERR_INIT;
	_cleanup_close_ int t = gs_open_in_root(c->rootfd, o->dest, O_PATH | O_DIRECTORY, &e);
	if (t < 0) {
		*err = e;
		return (o->flags & OVL_F_OPTIONAL) ? ovl_skip(c, i, "%s", e.msg) : t;
	}
	if (o->flags & OVL_F_IF_EMPTY) {
		int r = ovl_dir_is_empty(t, o->dest, err);
		if (r < 0)
			return r;
		if (r == 0)
			return ovl_skip(c, i, "%s is not empty in the image: left alone", o->dest);
	}
	int r = ovl_check_private(c, t, o->dest, err);
	if (r < 0)
		return (o->flags & OVL_F_OPTIONAL) ? ovl_skip(c, i, "%s", err->msg) : r;
	int mnt = tmpfs_onto(c, t, o->mode, o->dest, err);
	return mnt < 0 ? mnt : 0;
}

/* ---- binds ---------------------------------------------------------------------- */

/* DEST inside the anchor: "lib/compute" etc. made in our own tmpfs. */
static int anchor_prepare(struct ovl_ctx *c, const char *rel, bool dir, struct gs_err *err)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", rel);
	_cleanup_close_ int cur = fcntl(c->anchorfd, F_DUPFD_CLOEXEC, 3);
	for (char *p = buf; cur >= 0 && p;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		bool last = !slash;
		if (!gs_name_ok(p))
			return gs_err_setx(err, EINVAL, "%s: bad component", rel);
		if (last && !dir) {
			int fd = openat(cur, p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (fd < 0)
				return gs_err_set(err, errno, OVL_ANCHOR "/%s", rel);
			close(fd);
		} else if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST) {
			return gs_err_set(err, errno, OVL_ANCHOR "/%s", rel);
		}
		int next = beneath(cur, p, O_PATH | (last && !dir ? 0 : O_DIRECTORY));
		if (next < 0)
			return gs_err_set(err, errno, OVL_ANCHOR "/%s", rel);
		close(cur);
		cur = next;
		p = slash ? slash + 1 : NULL;
	}
	return cur >= 0 ? steal_fd(&cur) : gs_err_set(err, errno, OVL_ANCHOR);
}

/* A file target outside the anchor: an existing regular file is covered;
 * a symlink (never followed) is replaced on a writable root. */
static int file_target(struct ovl_ctx *c, size_t i, int parent, const char *name,
		       struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	int t = beneath(parent, name, O_PATH);
	struct stat st;
	if (t >= 0 && fstat(t, &st) == 0 && S_ISREG(st.st_mode))
		return t;
	if (t >= 0) {
		close(t);
		return gs_err_setx(err, EEXIST, "%s: exists and is not a regular file", o->dest);
	}
	int why = errno;
	if (why != ENOENT && why != ELOOP)
		return gs_err_set(err, why, "%s", o->dest);
	int r = ovl_may_create(c, parent, o->dest, err);
	if (r < 0)
		return r;
	if (why == ELOOP && unlinkat(parent, name, 0) < 0)
		return gs_err_set(err, errno, "%s: removing the image's symlink", o->dest);
	mode_t mode = !strncmp(o->source, "bin/", 4) ? 0755 : 0644;
	int fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return gs_err_set(err, errno, "creating %s", o->dest);
	close(fd);
	t = beneath(parent, name, O_PATH);
	return t >= 0 ? t : gs_err_set(err, errno, "%s", o->dest);
}

static bool in_anchor(const char *dest)
{
	size_t n = strlen(OVL_ANCHOR);
	return !strncmp(dest, OVL_ANCHOR, n) && dest[n] == '/';
}

/* Why mount point T (O_PATH) does not fit a host source of mode MODE (a
 * directory for a directory, a file or socket for a socket), or NULL. */
static const char *host_misfit(int t, uint32_t mode)
{
	struct stat st;
	if (fstat(t, &st) < 0)
		return "unreadable";
	if (S_ISLNK(st.st_mode))
		return "a symlink (never followed)";
	if (S_ISDIR(mode) ? S_ISDIR(st.st_mode) : (S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode)))
		return NULL;
	return S_ISDIR(st.st_mode) ? "a directory" : "not a directory";
}

/* A host path's mount point (BIND_HOST): its last component is never
 * followed (an image's symlink there is refused, never replaced); when
 * missing it is made (a directory, or an empty file for a socket) where
 * the container's own files may be created. */
static int host_target(struct ovl_ctx *c, size_t i, int *parent, const char **name,
		       struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	struct stat st;
	*parent = ovl_parent_open(c, o->dest, c->plan->no_write, name, err);
	if (*parent < 0)
		return *parent;
	if (fstatat(*parent, *name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return gs_err_set(err, errno, "%s", o->dest);
		int r = ovl_may_create(c, *parent, o->dest, err);
		if (r < 0)
			return r;
		int fd = S_ISDIR(o->mode) ? mkdirat(*parent, *name, 0755)
					  : openat(*parent, *name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			return gs_err_set(err, errno, "creating %s", o->dest);
		if (!S_ISDIR(o->mode))
			close(fd);
	}
	int t = beneath(*parent, *name, O_PATH | O_NOFOLLOW);
	const char *why = t < 0 ? (errno == ELOOP ? "a symlink (never followed)" : strerror(errno))
				: host_misfit(t, o->mode);
	if (!why)
		return t;
	if (t >= 0)
		close(t);
	return gs_err_setx(err, EEXIST, "%s is %s in the image: the host's %s is not bound there",
			   o->dest, why, S_ISDIR(o->mode) ? "directory" : "socket");
}

static int bind_target(struct ovl_ctx *c, size_t i, int *parent, const char **name,
		       struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	if (o->type == OVL_OP_BIND_HOST)
		return host_target(c, i, parent, name, err);
	bool dir = o->type == OVL_OP_BIND_DIR, no_mkdir = o->flags & OVL_F_NO_MKDIR;
	*parent = -1;
	if (in_anchor(o->dest)) {
		if (c->anchorfd < 0)
			return gs_err_setx(err, EINVAL, "%s: no anchor mounted", o->dest);
		return anchor_prepare(c, o->dest + strlen(OVL_ANCHOR) + 1, dir, err);
	}
	if (dir)
		return ovl_dir_open(c, o->dest, no_mkdir || c->plan->no_write, err);
	*parent = ovl_parent_open(c, o->dest, no_mkdir, name, err);
	return *parent < 0 ? *parent : file_target(c, i, *parent, *name, err);
}

/* After the mount: DEST must now show the source (same dev/ino). */
static int verify_bind(struct ovl_ctx *c, size_t i, int parent, const char *name,
		       struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	const struct stat *want = ovl_sources_stat(c->src, i);
	struct gs_err e = GS_ERR_INIT;
	int fd = parent >= 0 ? beneath(parent, name, O_PATH)
			     : in_anchor(o->dest)
				       ? beneath(c->anchorfd, o->dest + strlen(OVL_ANCHOR) + 1, O_PATH)
				       : gs_open_in_root(c->rootfd, o->dest, O_PATH, &e);
	struct stat st;
	int ok = fd >= 0 && fstat(fd, &st) == 0 && want && st.st_dev == want->st_dev &&
		 st.st_ino == want->st_ino;
	if (fd >= 0)
		close(fd);
	return ok ? 0 : gs_err_setx(err, EIO, "%s: after the mount it does not show the staged %s",
				    o->dest, o->source);
}

int ovl_apply_bind(struct ovl_ctx *c, size_t i, struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	int tree = ovl_sources_tree(c->src, i);
	if (tree < 0 && o->type == OVL_OP_BIND_HOST && (o->flags & OVL_F_OPTIONAL))
		return ovl_skip(c, i, "%s: gone or no longer a %s on the host (no symlink followed)",
				o->source, S_ISDIR(o->mode) ? "directory" : "socket");
	if (tree < 0)
		return gs_err_setx(err, EBADF, "%s: source was not opened", o->dest);
	_cleanup_close_ int parent = -1;
	const char *name = NULL;
	_cleanup_close_ int t = bind_target(c, i, &parent, &name, err);
	if (t >= 0 && ovl_check_private(c, t, o->dest, err) < 0) {
		close(t);
		t = -err->code;
	}
	if (t < 0)
		return (o->flags & OVL_F_OPTIONAL) ? ovl_skip(c, i, "%s", err->msg) : t;
	int r = ovl_attach(tree, t, o->dest, err);
	return r < 0 ? r : verify_bind(c, i, parent, name, err);
}

/* ---- devices, symlinks, files ------------------------------------------------------ */

int ovl_apply_mknod(struct ovl_ctx *c, size_t i, struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	const char *name;
	_cleanup_close_ int parent = ovl_parent_open(c, o->dest, false, &name, err);
	if (parent < 0)
		return parent;
	dev_t dev = makedev(o->major, o->minor);
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISCHR(st.st_mode) && st.st_rdev == dev) {
			snprintf(c->res->ops[i].note, sizeof(c->res->ops[i].note),
				 "already present (made by the runtime)");
			return 0;
		}
		return gs_err_setx(err, EEXIST, "%s exists and is not character device %u:%u",
				   o->dest, (unsigned int)o->major, (unsigned int)o->minor);
	}
	int r = ovl_may_create(c, parent, o->dest, err);
	if (r < 0)
		return r;
	if (mknodat(parent, name, S_IFCHR | (o->mode & 0777), dev) < 0) {
		if (errno == EOVERFLOW) /* the hook's uid 0 has no id in that fs's user ns */
			return gs_err_set(err, errno,
					  "mknod %s: the container's /dev belongs to a user namespace, where device nodes cannot be made (nor opened); list the devices in config.json's linux.devices (the runtime binds them from the host) or use NVIDIA_VISIBLE_DEVICES=none",
					  o->dest);
		return gs_err_set(err, errno, "mknod %s", o->dest);
	}
	/* The node is reopened without following anything before its mode is
	 * fixed (the umask may have cut it): by name, a concurrent process in
	 * the rootfs could have swapped it for a symlink, and fchmodat follows
	 * symlinks from the hook's own "/" (the host's, before pivot_root). */
	_cleanup_close_ int fd = beneath(parent, name, O_PATH);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != dev)
		return gs_err_setx(err, EEXIST, "%s was replaced while it was being created",
				   o->dest);
	if ((st.st_mode & 07777) == (o->mode & 0777))
		return 0;
	return ovl_chmod_fd(fd, o->mode & 0777, o->dest, err);
}

int ovl_apply_symlink(struct ovl_ctx *c, size_t i, struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	const char *name;
	bool opt = o->flags & OVL_F_OPTIONAL;
	_cleanup_close_ int parent = ovl_parent_open(c, o->dest, o->flags & OVL_F_NO_MKDIR, &name, err);
	if (parent < 0)
		return opt ? ovl_skip(c, i, "%s", err->msg) : parent;
	char t[4096];
	ssize_t l = readlinkat(parent, name, t, sizeof(t) - 1);
	if (l >= 0) {
		t[l] = '\0';
		if (!strcmp(t, o->source))
			return 0;
	}
	if (l >= 0 || errno != ENOENT) {
		gs_err_setx(err, EEXIST, "%s exists in the image: left alone", o->dest);
		return opt ? ovl_skip(c, i, "%s", err->msg) : -EEXIST;
	}
	int r = ovl_may_create(c, parent, o->dest, err);
	if (r < 0)
		return opt ? ovl_skip(c, i, "%s", err->msg) : r;
	if (symlinkat(o->source, parent, name) < 0)
		return gs_err_set(err, errno, "symlink %s", o->dest);
	return 0;
}

/* The ld.so.conf.d entry with the image's CUDA compat directory first,
 * when the cache put its libraries first (c->compat_first), so that a
 * later ldconfig in the container keeps that order; else *TEXT stays NULL. */
static int conf_content(const struct ovl_ctx *c, const struct ovl_op *o, char **text, size_t *len,
			struct gs_err *err)
{
	if (!c->compat_first || !c->plan->cuda_compat_dir || strcmp(o->dest, OVL_CONF_DIR "/" OVL_CONF_NAME))
		return 0;
	int n = asprintf(text, "# The image's CUDA forward-compatibility libraries (newer than the driver) first.\n%s\n%.*s",
			 c->plan->cuda_compat_dir, (int)o->content_len, o->content);
	if (n < 0) {
		*text = NULL;
		return gs_err_setx(err, ENOMEM, "%s: out of memory", o->dest);
	}
	*len = (size_t)n;
	return 0;
}

int ovl_apply_write(struct ovl_ctx *c, size_t i, struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	const char *name;
	bool opt = o->flags & OVL_F_OPTIONAL;
	_cleanup_close_ int parent = ovl_parent_open(c, o->dest, o->flags & OVL_F_NO_MKDIR, &name, err);
	if (parent < 0)
		return opt ? ovl_skip(c, i, "%s", err->msg) : parent;
	int r = ovl_may_create(c, parent, o->dest, err);
	if (r < 0)
		return opt ? ovl_skip(c, i, "%s", err->msg) : r;
	r = ovl_on_root(c, parent, o->dest, err);
	if (r == 0) /* a volume: a file of the host's could be replaced there */
		gs_err_setx(err, EXDEV, "%s: not on the container's root file system (a volume?): left alone",
			    o->dest);
	if (r <= 0)
		return opt ? ovl_skip(c, i, "%s", err->msg) : (r < 0 ? r : -EXDEV);
	_cleanup_free_ char *text = NULL;
	size_t len = o->content_len;
	r = conf_content(c, o, &text, &len, err);
	if (r < 0)
		return r;
	r = gs_write_atomic_at(parent, name, text ? text : o->content, len, o->mode, GS_WRITE_NEW_IN_PLACE, err);
	return r < 0 && opt ? ovl_skip(c, i, "%s", err->msg) : r;
}
