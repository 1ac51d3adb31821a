/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log: one JSON line per container start, appended with a single
 * write(2) on an O_APPEND fd under an exclusive flock, so concurrent hooks
 * never interleave records; bounded by rotation done here, under that
 * same flock (no logrotate needed).
 *
 * Rotation: a writer holding the lock of the current file (the inode the
 * log's name points at) that would grow it past MAX renames NAME.(i) to
 * NAME.(i+1) for i = KEEP-1 .. 1 (NAME.KEEP, the oldest, is replaced) and
 * NAME to NAME.1, then opens a fresh NAME.  A writer that opened the old
 * inode before that waits on the old inode's lock; once it has the lock it
 * checks that the name still points at its inode and reopens the name when
 * not, so its record lands in the current file.  Only a holder of the
 * current inode's lock renames it, so "the name points at my inode" stays
 * true while a writer holds that lock. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/manifest.h"
#include "hook.h"

/* Reopens A->name in A->dirfd (created 0600 when missing) into A->fd. */
static int reopen(struct hk_audit *a, struct gs_err *err)
{
	int fd = openat(a->dirfd, a->name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			0600);
	if (fd < 0)
		return gs_err_set(err, errno, "audit log %s", a->path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return gs_err_setx(err, EINVAL, "audit log %s: not a regular file", a->path);
	}
	if (a->fd >= 0)
		close(a->fd);
	a->fd = fd;
	return 0;
}

int hk_audit_open(const char *path, uint64_t max, unsigned int keep, struct hk_audit *a,
		  struct gs_err *err)
{
	*a = (struct hk_audit){.fd = -1, .dirfd = -1, .max = max, .keep = keep ? keep : 1};
	_cleanup_free_ char *dir = strdup(path), *base = strdup(path);
	if (!dir || !base || !(a->path = strdup(path)))
		return gs_err_setx(err, ENOMEM, "out of memory");
	char *d = dirname(dir), *b = basename(base);
	if (!gs_name_ok(b))
		return gs_err_setx(err, EINVAL, "audit log %s: not a file name", path);
	if (!(a->name = strdup(b)))
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (mkdir(d, 0700) < 0 && errno != EEXIST)
		return gs_err_set(err, errno, "audit log directory %s", d);
	a->dirfd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (a->dirfd < 0)
		return gs_err_set(err, errno, "audit log directory %s", d);
	return reopen(a, err);
}

void hk_audit_close(struct hk_audit *a)
{
	if (a->fd >= 0)
		close(a->fd);
	if (a->dirfd >= 0)
		close(a->dirfd);
	free(a->name);
	free(a->path);
	*a = (struct hk_audit){.fd = -1, .dirfd = -1};
}

static int lock(int fd, struct gs_err *err)
{
	for (int eintr = 0; flock(fd, LOCK_EX) < 0;)
		if (errno != EINTR || ++eintr >= GS_EINTR_TRIES)
			return gs_err_set(err, errno, "audit log: flock");
	return 0;
}

/* Whether A->fd is still the file A->name names (1), or was rotated away
 * (0); its size in *SIZE. */
static int current(const struct hk_audit *a, off_t *size, struct gs_err *err)
{
	struct stat mine, named;
	if (fstat(a->fd, &mine) < 0)
		return gs_err_set(err, errno, "audit log %s", a->path);
	*size = mine.st_size;
	if (fstatat(a->dirfd, a->name, &named, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : gs_err_set(err, errno, "audit log %s", a->path);
	return named.st_dev == mine.st_dev && named.st_ino == mine.st_ino;
}

/* NAME.(i) -> NAME.(i+1) for i = keep-1 .. 1, then NAME -> NAME.1 (the
 * caller holds the current file's lock). */
static int rotate(const struct hk_audit *a, struct gs_err *err)
{
	size_t n = strlen(a->name) + 16;
	_cleanup_free_ char *from = malloc(n), *to = malloc(n);
	if (!from || !to)
		return gs_err_setx(err, ENOMEM, "out of memory");
	for (unsigned int i = a->keep; i-- > 1;) {
		snprintf(from, n, "%s.%u", a->name, i);
		snprintf(to, n, "%s.%u", a->name, i + 1);
		if (renameat(a->dirfd, from, a->dirfd, to) < 0 && errno != ENOENT)
			return gs_err_set(err, errno, "audit log: rotating %s to %s", from, to);
	}
	snprintf(to, n, "%s.1", a->name);
	if (renameat(a->dirfd, a->name, a->dirfd, to) < 0)
		return gs_err_set(err, errno, "audit log: rotating %s to %s", a->path, to);
	return 0;
}

/* How many times a writer follows a rotation before it writes where it is
 * (still one of the files): 50 writers each rotating once cannot starve it. */
#define ROTATE_FOLLOW_MAX 256

/* Under A->fd's lock: 0 written, 1 the file was rotated (by us or another
 * writer): reopen and try again. */
static int append_locked(struct hk_audit *a, const char *line, size_t len, bool last,
			 struct gs_err *err)
{
	off_t size = 0;
	int r = current(a, &size, err);
	if (r < 0 || (r == 0 && !last))
		return r < 0 ? r : 1;
	if (!last && a->max && size > 0 && (uint64_t)size + len > a->max)
		return (r = rotate(a, err)) < 0 ? r : 1;
	r = gs_write_full(a->fd, line, len);
	return r < 0 ? gs_err_set(err, -r, "audit log %s: write", a->path) : 0;
}

int hk_audit_append(struct hk_audit *a, const char *record, struct gs_err *err)
{
	size_t len = strlen(record);
	_cleanup_free_ char *line = malloc(len + 2);
	if (!line)
		return gs_err_setx(err, ENOMEM, "out of memory");
	memcpy(line, record, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	for (int i = 0;; i++) {
		int r = lock(a->fd, err);
		if (r < 0)
			return r;
		r = append_locked(a, line, len + 1, i == ROTATE_FOLLOW_MAX, err);
		flock(a->fd, LOCK_UN);
		if (r <= 0)
			return r;
		if ((r = reopen(a, err)) < 0)
			return r;
	}
}
