/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for reading a host root (trusted, but possibly not "/"): every
 * path is resolved inside it with openat2 RESOLVE_IN_ROOT, so Debian's
 * absolute alternatives links resolve relative to the root. */
#ifndef GS_STAGE_ROOTFS_H
#define GS_STAGE_ROOTFS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "gs/err.h"
#include "gs/version.h"

struct gs_root {
	int fd;           /* O_PATH of the root */
	char *real;       /* realpath of the root, for turning fds into paths */
	size_t real_len;
};

int gs_root_open(const char *path, struct gs_root *r, struct gs_err *err);
void gs_root_close(struct gs_root *r);

/* Opens PATH (inside the root) for reading; returns the fd and, when
 * RESOLVED is not NULL, the final path inside the root after every symlink
 * (malloc'd, absolute). */
int gs_root_open_file(const struct gs_root *r, const char *path, int flags, char **resolved,
		      struct gs_err *err);

/* Reads a small text file inside the root into a NUL-terminated buffer
 * (gs_read_all_fd): more than MAX bytes is -EFBIG, never a shortened text. */
int gs_root_read_text(const struct gs_root *r, const char *path, size_t max, char **out,
		      struct gs_err *err);

/* pread(2), EINTR retried GS_EINTR_TRIES times in a row: bytes read, or
 * -errno. */
ssize_t gs_pread_retry(int fd, void *buf, size_t n, off_t off);

/* Whether the file FD contains the bytes NEEDLE (streamed, any size). */
int gs_fd_contains(int fd, const char *needle, struct gs_err *err);

/* A driver version inside a file name: the part after ".so." when it looks
 * like one (digits and dots with at least one dot: "535.261.03", "550.54"),
 * else NULL.  Returns a pointer into NAME. */
const char *gs_name_version(const char *name);

/* Whether LISTED (a path as a package database or installer recorded it)
 * names PATH: on a merged-/usr host /bin/x is /usr/bin/x and the other way
 * round. */
bool gs_same_merged_path(const char *listed, const char *path);

#endif
