/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log: one JSON line per container start, appended with a single
 * write(2) on an O_APPEND fd under an exclusive flock, so concurrent hooks
 * never interleave records. */
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
#include "hook.h"

int hk_audit_open(const char *path, struct gs_err *err)
{
	_cleanup_free_ char *dir = strdup(path);
	if (!dir)
		return gs_err_setx(err, ENOMEM, "out of memory");
	char *d = dirname(dir);
	if (mkdir(d, 0700) < 0 && errno != EEXIST)
		return gs_err_set(err, errno, "audit log directory %s", d);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return gs_err_set(err, errno, "audit log %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return gs_err_setx(err, EINVAL, "audit log %s: not a regular file", path);
	}
	return fd;
}

int hk_audit_append(int fd, const char *record, struct gs_err *err)
{
	size_t len = strlen(record);
	_cleanup_free_ char *line = malloc(len + 2);
	if (!line)
		return gs_err_setx(err, ENOMEM, "out of memory");
	memcpy(line, record, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	for (int eintr = 0; flock(fd, LOCK_EX) < 0;)
		if (errno != EINTR || ++eintr >= GS_EINTR_TRIES)
			return gs_err_set(err, errno, "audit log: flock");
	ssize_t w;
	int eintr = 0;
	do
		w = write(fd, line, len + 1);
	while (w < 0 && errno == EINTR && ++eintr < GS_EINTR_TRIES);
	int e = errno;
	flock(fd, LOCK_UN);
	if (w < 0)
		return gs_err_set(err, e, "audit log: write");
	if ((size_t)w != len + 1)
		return gs_err_setx(err, EIO, "audit log: short write");
	return 0;
}
