/* SPDX-License-Identifier: Apache-2.0 */
#include "gs/fsx.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gs/cleanup.h"

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
	int eintr = 0;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR && ++eintr < GS_EINTR_TRIES)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		eintr = 0;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

#define READ_FIRST 4096 /* first allocation when the size is unknown */

/* Milliseconds left until DEADLINE (CLOCK_MONOTONIC), 0 when past. */
static int ms_left(const struct timespec *deadline)
{
	struct timespec now = {0, 0};
	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
		       (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms <= 0 ? 0 : ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Waits until FD is readable (or at its end) or DEADLINE has passed. */
static int wait_readable(int fd, const struct timespec *deadline, int timeout_ms, const char *name,
			 struct gs_err *err)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	for (int eintr = 0;;) {
		int r = poll(&p, 1, ms_left(deadline));
		if (r > 0)
			return 0;
		if (r == 0)
			return gs_err_setx(err, ETIMEDOUT, "%s: no end of output within %d ms", name,
					   timeout_ms);
		if (errno != EINTR || ++eintr >= GS_EINTR_TRIES)
			return gs_err_set(err, errno, "waiting for %s", name);
	}
}

int gs_read_all_fd(int fd, size_t max, const char *name, char **out, size_t *len,
		   struct gs_err *err)
{
	return gs_read_all_fd_within(fd, max, -1, name, out, len, err);
}

int gs_read_all_fd_within(int fd, size_t max, int timeout_ms, const char *name, char **out,
			  size_t *len, struct gs_err *err)
{
	struct timespec deadline = {0, 0};
	if (timeout_ms >= 0) {
		(void)clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", name);
	if (max > SIZE_MAX - 2)
		max = SIZE_MAX - 2;
	/* room for CAP bytes of data (at most MAX + 1: one more than may be
	 * read shows there is more), plus the NUL */
	size_t cap;
	if (S_ISREG(st.st_mode) && st.st_size > 0) {
		if ((uint64_t)st.st_size > max)
			return gs_err_setx(err, EFBIG, "%s: larger than %zu bytes (%lld bytes)", name,
					   max, (long long)st.st_size);
		cap = (size_t)st.st_size + 1; /* EOF is seen without growing */
	} else {
		cap = max < READ_FIRST ? max + 1 : READ_FIRST;
	}
	_cleanup_free_ char *buf = malloc(cap + 1);
	if (!buf)
		return gs_err_setx(err, ENOMEM, "%s: out of memory", name);
	size_t n = 0;
	int eintr = 0;
	for (;;) {
		if (n == cap) {
			if (cap > max)
				return gs_err_setx(err, EFBIG, "%s: larger than %zu bytes", name, max);
			size_t next = cap > (max + 1) / 2 ? max + 1 : cap * 2;
			char *grown = realloc(buf, next + 1);
			if (!grown)
				return gs_err_setx(err, ENOMEM, "%s: out of memory", name);
			buf = grown;
			cap = next;
		}
		if (timeout_ms >= 0 && wait_readable(fd, &deadline, timeout_ms, name, err) < 0)
			return -err->code;
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR && ++eintr < GS_EINTR_TRIES)
			continue;
		if (got < 0 && errno == EINTR)
			return gs_err_set(err, EINTR, "reading %s: interrupted %d times in a row, giving up",
					  name, GS_EINTR_TRIES);
		if (got < 0)
			return gs_err_set(err, errno, "reading %s", name);
		if (got == 0)
			break;
		eintr = 0;
		n += (size_t)got;
	}
	buf[n] = '\0';
	*out = steal_ptr(&buf);
	if (len)
		*len = n;
	return 0;
}

/* ".NAME.gs-XXXXXXXX" (NAME cut to 200 bytes, so any valid NAME fits). */
static void tmp_name(const char *name, int tries, char *tmp, size_t size)
{
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd)) {
		struct timespec ts = {0, 0};
		(void)clock_gettime(CLOCK_MONOTONIC, &ts);
		rnd = ((uint32_t)getpid() * 2654435761u) ^ (uint32_t)ts.tv_nsec ^
		      ((uint32_t)tries << 24);
	}
	snprintf(tmp, size, ".%.200s.gs-%08x", name, rnd);
}

/* Syncs the directory DIRFD (reopened when it is O_PATH or AT_FDCWD). */
static int sync_dir(int dirfd)
{
	if (fsync(dirfd) == 0 || errno == EINVAL)
		return 0;
	if (errno != EBADF)
		return -errno;
	_cleanup_close_ int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) == 0 || errno == EINVAL ? 0 : -errno;
}

/* GS_WRITE_NEW_IN_PLACE: 1 written, 0 NAME exists (the caller replaces
 * it), < 0 error. */
static int write_new(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
		     unsigned flags, struct gs_err *err)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : gs_err_set(err, errno, "creating %s", name);
	int r = gs_write_full(fd, buf, len);
	if (r == 0 && fchmod(fd, mode & 07777) < 0)
		r = -errno;
	if (r == 0 && (flags & GS_WRITE_FSYNC) && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && (flags & GS_WRITE_FSYNC_DIR))
		r = sync_dir(dirfd);
	if (r < 0) {
		unlinkat(dirfd, name, 0);
		return gs_err_set(err, -r, "writing %s", name);
	}
	return 1;
}

int gs_tmpfile_at(int dirfd, const char *name, char tmp[NAME_MAX + 1], struct gs_err *err)
{
	int fd = -1;
	for (int tries = 0; fd < 0; tries++) {
		if (tries == GS_WRITE_TMP_TRIES) /* errno: EEXIST or EINTR */
			return gs_err_set(err, errno,
					  "%s: no temporary file could be created next to it in %d tries",
					  name, tries);
		tmp_name(name, tries, tmp, NAME_MAX + 1);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST && errno != EINTR)
			return gs_err_set(err, errno, "%s: creating a temporary file next to it", name);
	}
	return fd;
}

int gs_write_atomic_at(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
		       unsigned flags, struct gs_err *err)
{
	if (!name || !*name || strlen(name) > NAME_MAX || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return gs_err_setx(err, EINVAL, "%s: not a single file name", name ? name : "(null)");
	if (flags & ~(GS_WRITE_FSYNC | GS_WRITE_FSYNC_DIR | GS_WRITE_KEEP_OWNER | GS_WRITE_NEW_IN_PLACE))
		return gs_err_setx(err, EINVAL, "%s: unknown write flags %#x", name, flags);
	if (flags & GS_WRITE_NEW_IN_PLACE) {
		int r = write_new(dirfd, name, buf, len, mode, flags, err);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	char tmp[NAME_MAX + 1];
	int fd = gs_tmpfile_at(dirfd, name, tmp, err);
	if (fd < 0)
		return fd;
	int r = gs_write_full(fd, buf, len);
	if (r < 0) {
		r = gs_err_set(err, -r, "writing %s", name);
		goto fail;
	}
	struct stat st;
	if (flags & GS_WRITE_KEEP_OWNER) {
		bool there = fstatat(dirfd, name, &st, 0) == 0;
		if (!there && errno != ENOENT) {
			r = gs_err_set(err, errno, "%s: reading its owner", name);
			goto fail;
		}
		if (there && fchown(fd, st.st_uid, st.st_gid) < 0 && errno != EPERM) {
			r = gs_err_set(err, errno, "%s: giving the new file its owner", name);
			goto fail;
		}
	}
	if (fchmod(fd, mode & 07777) < 0) {
		r = gs_err_set(err, errno, "%s: setting mode %04o", name, (unsigned int)(mode & 07777));
		goto fail;
	}
	if ((flags & GS_WRITE_FSYNC) && fsync(fd) < 0) {
		r = gs_err_set(err, errno, "writing %s: fsync", name);
		goto fail;
	}
	r = close(fd);
	fd = -1;
	if (r < 0) {
		r = gs_err_set(err, errno, "writing %s", name);
		goto fail;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		r = gs_err_set(err, errno, "replacing %s", name);
		goto fail;
	}
	if ((flags & GS_WRITE_FSYNC_DIR) && (r = sync_dir(dirfd)) < 0)
		return gs_err_set(err, -r, "%s: replaced, but syncing its directory failed", name);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlinkat(dirfd, tmp, 0);
	return r;
}

int gs_exe_sibling(const char *name, char **out, struct gs_err *err)
{
	char exe[PATH_MAX];
	*out = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe));
	if (n < 0)
		return gs_err_set(err, errno, "/proc/self/exe");
	if ((size_t)n >= sizeof(exe))
		return gs_err_setx(err, ENAMETOOLONG, "/proc/self/exe: longer than %zu bytes",
				   sizeof(exe) - 1);
	exe[n] = '\0';
	if (asprintf(out, "%s/%s", dirname(exe), name) < 0) {
		*out = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return 0;
}

void gs_malloc_init(void)
{
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

int gs_reopen(int pathfd, int flags)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pathfd);
	return open(path, flags | O_CLOEXEC | O_NOCTTY);
}
