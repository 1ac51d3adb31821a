/* SPDX-License-Identifier: Apache-2.0 */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"

int gs_root_open(const char *path, struct gs_root *r, struct gs_err *err)
{
	r->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->fd < 0)
		return gs_err_set(err, errno, "root %s", path);
	r->real = realpath(path, NULL);
	if (!r->real) {
		int e = errno;
		close(r->fd);
		return gs_err_set(err, e, "root %s", path);
	}
	r->real_len = strcmp(r->real, "/") ? strlen(r->real) : 0;
	return 0;
}

void gs_root_close(struct gs_root *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->real);
	r->fd = -1;
	r->real = NULL;
}

/* The path of FD inside the root, from /proc/self/fd (trusted procfs). */
static int fd_path_in_root(const struct gs_root *r, int fd, const char *what, char **out,
			   struct gs_err *err)
{
	char link[64], buf[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return gs_err_set(err, errno, "%s: resolving the path of the opened file", what);
	buf[n] = '\0';
	if (strncmp(buf, r->real, r->real_len) != 0 || (buf[r->real_len] != '/' && r->real_len))
		return gs_err_setx(err, EXDEV, "%s: resolved to %s, outside the root %s", what, buf,
				   r->real);
	*out = strdup(buf + r->real_len);
	return *out ? 0 : gs_err_set(err, ENOMEM, "%s", what);
}

int gs_root_open_file(const struct gs_root *r, const char *path, int flags, char **resolved,
		      struct gs_err *err)
{
	_cleanup_close_ int fd = gs_open_in_root(r->fd, path, flags | O_NOCTTY, err);
	if (fd < 0)
		return fd;
	if (resolved) {
		int rr = fd_path_in_root(r, fd, path, resolved, err);
		if (rr < 0)
			return rr;
	}
	return steal_fd(&fd);
}

int gs_root_read_text(const struct gs_root *r, const char *path, size_t max, char **out,
		      struct gs_err *err)
{
	_cleanup_close_ int fd = gs_root_open_file(r, path, O_RDONLY | O_NONBLOCK, NULL, err);
	if (fd < 0)
		return fd;
	return gs_read_all_fd(fd, max, path, out, NULL, err);
}

ssize_t gs_pread_retry(int fd, void *buf, size_t n, off_t off)
{
	for (int eintr = 0;;) {
		ssize_t got = pread(fd, buf, n, off);
		if (got >= 0)
			return got;
		if (errno != EINTR || ++eintr >= GS_EINTR_TRIES)
			return -errno;
	}
}

int gs_fd_contains(int fd, const char *needle, struct gs_err *err)
{
	size_t nlen = strlen(needle);
	enum { CHUNK = 1 << 20 };
	_cleanup_free_ char *buf = malloc(CHUNK + nlen);
	if (!buf || nlen == 0 || nlen > 256)
		return gs_err_setx(err, EINVAL, "search for '%s'", needle);
	size_t keep = 0;
	off_t off = 0;
	for (;;) {
		ssize_t n = gs_pread_retry(fd, buf + keep, CHUNK, off);
		if (n < 0)
			return gs_err_set(err, (int)-n, "reading");
		if (n == 0)
			return 0;
		off += n;
		size_t have = keep + (size_t)n;
		if (memmem(buf, have, needle, nlen))
			return 1;
		keep = have < nlen - 1 ? have : nlen - 1;
		memmove(buf, buf + have - keep, keep);
	}
}

const char *gs_name_version(const char *name)
{
	const char *p = strstr(name, ".so.");
	while (p) {
		if (gs_version_valid(p + 4))
			return p + 4;
		p = strstr(p + 1, ".so.");
	}
	return NULL;
}

bool gs_same_merged_path(const char *listed, const char *path)
{
	if (!strcmp(listed, path))
		return true;
	if (!strncmp(listed, "/usr/", 5) && !strcmp(listed + 4, path))
		return true;
	return !strncmp(path, "/usr/", 5) && !strcmp(path + 4, listed);
}
