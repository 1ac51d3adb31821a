/* SPDX-License-Identifier: Apache-2.0 */
/* Mount targets inside an untrusted root: every lookup goes through
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the root fd; a
 * missing component is created with mkdirat() in the fd of its parent and
 * reopened from that fd with RESOLVE_NO_SYMLINKS, so nothing is ever
 * created or opened outside the root, whatever links the image holds. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "internal.h"

#define PATH_MAX_DEST 1024

int ovl_may_create(struct ovl_ctx *c, int dirfd, const char *dest, struct gs_err *err)
{
	uint64_t id = 0;
	int r = ovl_mnt_id(dirfd, &id, err);
	if (r < 0)
		return gs_err_wrap(err, "%s", dest);
	if (id == c->root_mnt && c->plan->no_write)
		return gs_err_setx(err, EROFS,
				   "%s: not created: the container's root is read-only and the image is left untouched",
				   dest);
	if (id == c->root_mnt)
		return 0;
	for (size_t k = 0; k < c->n_tmpfs_ids; k++)
		if (c->tmpfs_ids[k] == id)
			return 0;
	return gs_err_setx(err, EXDEV,
			   "%s: not created, removed or replaced: on a volume (neither the container's root file system nor a tmpfs of its own: the hook's, or a mounts[] entry of type tmpfs in config.json; a host tmpfs bound in is a volume)",
			   dest);
}

int ovl_on_root(struct ovl_ctx *c, int dirfd, const char *dest, struct gs_err *err)
{
	uint64_t id = 0;
	int r = ovl_mnt_id(dirfd, &id, err);
	if (r < 0)
		return gs_err_wrap(err, "%s", dest);
	return id == c->root_mnt;
}

/* Opens NAME in DIRFD without following any symlink (our own creation). */
static int open_beneath(int dirfd, const char *name, int flags)
{
	return gs_open_beneath(dirfd, name, flags, 0);
}

static int mkdir_step(struct ovl_ctx *c, int cur, const char *prefix, const char *comp,
		      struct gs_err *err)
{
	int r = ovl_may_create(c, cur, prefix, err);
	if (r < 0)
		return r;
	if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST)
		return gs_err_set(err, errno, "creating %s", prefix);
	int fd = open_beneath(cur, comp, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return gs_err_set(err, errno == ELOOP ? ENOTDIR : errno,
				  "%s: exists and is not a directory (a symlink is never followed)",
				  prefix);
	return fd;
}

/* The slow path: one component at a time from the root. */
static int walk_create(struct ovl_ctx *c, const char *dest, struct gs_err *err)
{
	char prefix[PATH_MAX_DEST + 1];
	_cleanup_close_ int cur = gs_open_in_root(c->rootfd, "/", O_PATH | O_DIRECTORY, err);
	if (cur < 0)
		return cur;
	for (const char *p = dest; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n == 0)
			break;
		char comp[256];
		if (n >= sizeof(comp))
			return gs_err_setx(err, ENAMETOOLONG, "%s: component too long", dest);
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (!gs_name_ok(comp))
			return gs_err_setx(err, EINVAL, "%s: bad component '%s'", dest, comp);
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(p + n - dest), dest);
		struct gs_err e = GS_ERR_INIT;
		int next = gs_open_in_root(c->rootfd, prefix, O_PATH | O_DIRECTORY, &e);
		if (next < 0 && e.code != ENOENT) {
			*err = e;
			return next;
		}
		if (next < 0)
			next = mkdir_step(c, cur, prefix, comp, err);
		if (next < 0)
			return next;
		close(cur);
		cur = next;
		p += n;
	}
	return steal_fd(&cur);
}

int ovl_dir_open(struct ovl_ctx *c, const char *dest, bool no_mkdir, struct gs_err *err)
{
	if (dest[0] != '/' || strlen(dest) > PATH_MAX_DEST)
		return gs_err_setx(err, EINVAL, "%s: not an absolute path", dest);
	struct gs_err e = GS_ERR_INIT;
	int fd = gs_open_in_root(c->rootfd, dest, O_PATH | O_DIRECTORY, &e);
	if (fd >= 0)
		return fd;
	if (e.code != ENOENT || no_mkdir) {
		*err = e;
		return -e.code;
	}
	return walk_create(c, dest, err);
}

int ovl_parent_open(struct ovl_ctx *c, const char *dest, bool no_mkdir, const char **name,
		    struct gs_err *err)
{
	char parent[PATH_MAX_DEST + 1];
	const char *slash = strrchr(dest, '/');
	if (dest[0] != '/' || !slash || strlen(dest) > PATH_MAX_DEST || !gs_name_ok(slash + 1))
		return gs_err_setx(err, EINVAL, "%s: not an absolute path to a file", dest);
	snprintf(parent, sizeof(parent), "%.*s", slash == dest ? 1 : (int)(slash - dest), dest);
	*name = slash + 1;
	return ovl_dir_open(c, parent, no_mkdir, err);
}

int ovl_dir_is_empty(int dirfd, const char *dest, struct gs_err *err)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return gs_err_set(err, errno, "%s", dest);
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return gs_err_set(err, errno, "%s", dest);
	}
	struct dirent *de;
	while ((errno = 0, de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return 0;
	return errno ? gs_err_set(err, errno, "%s: readdir", dest) : 1;
}
