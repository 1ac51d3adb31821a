/* SPDX-License-Identifier: Apache-2.0 */
#include "gs/fsx.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

long gs_sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
	struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
	return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

#define OPENAT2_TRIES 64

int gs_open_beneath(int dirfd, const char *name, int flags, uint64_t extra)
{
	uint64_t resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | extra;
	for (int i = 0; i < OPENAT2_TRIES; i++) {
		long fd = gs_sys_openat2(dirfd, name, (uint64_t)(flags | O_CLOEXEC), 0, resolve);
		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
	errno = EAGAIN;
	return -1;
}

int gs_open_in_root(int rootfd, const char *path, int flags, struct gs_err *err)
{
	uint64_t resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	for (int i = 0; i < OPENAT2_TRIES; i++) {
		long fd = gs_sys_openat2(rootfd, path, (uint64_t)(flags | O_CLOEXEC), 0, resolve);
		if (fd >= 0)
			return (int)fd;
		if (errno == EAGAIN || errno == EINTR)
			continue;
		if (errno == ENOSYS || errno == EINVAL)
			return gs_err_set(err, errno,
					  "%s: openat2 with RESOLVE_IN_ROOT is unavailable (Linux >= 5.6 needed); refusing to resolve paths in an untrusted root without it",
					  path);
		return gs_err_set(err, errno, "%s", path);
	}
	return gs_err_setx(err, EAGAIN, "%s: path resolution kept racing with renames; giving up",
			   path);
}

int gs_write_full(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void gs_malloc_init(void)
{
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}
