/* SPDX-License-Identifier: Apache-2.0 */
/* Reading /proc files line by line, and /proc/.../mountinfo: one parser
 * for the hook and the overlay. */
#ifndef GS_MOUNTINFO_H
#define GS_MOUNTINFO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "gs/err.h"

/* One entry: "ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE
 * SOURCE SUPEROPTS".  The strings point into the line, with the \ooo
 * escapes of ROOT, POINT and SOURCE decoded. */
struct gs_mountinfo {
	uint64_t id, parent;
	unsigned int major, minor; /* the superblock */
	char *root, *point, *fstype, *source, *superopts;
	bool shared; /* optional field "shared:N": mounts here propagate */
};

#define GS_MOUNTINFO_LINE_MAX (1 << 20)

/* One line of F (named WHAT in errors) with getline into *LINE / *CAP,
 * newline stripped: 1 a line, 0 the end.  A line over MAX bytes, holding
 * a NUL or without a newline is an error (a /proc file is never read in
 * pieces or cut short). */
int gs_read_line(FILE *f, const char *what, size_t max, char **line, size_t *cap,
		 struct gs_err *err);

/* Reads the next entry of F (named WHAT in errors) into M, with getline
 * into *LINE / *CAP (the caller frees *LINE): 1 an entry, 0 the end.  A
 * line over GS_MOUNTINFO_LINE_MAX bytes, holding a NUL, without a newline
 * or otherwise malformed is an error naming WHAT: never skipped, never
 * cut short. */
int gs_mountinfo_next(FILE *f, const char *what, char **line, size_t *cap,
		      struct gs_mountinfo *m, struct gs_err *err);

/* Reads mountinfo FILE, calling FN for each entry until it returns
 * non-zero: < 0 (an error, returned as is) or > 0 (done: 0 is returned).
 * A read or parse error is returned as gs_mountinfo_next gives it. */
int gs_mountinfo_each(const char *file, int (*fn)(const struct gs_mountinfo *m, void *data),
		      void *data, struct gs_err *err);
/* The same over a table read earlier: TEXT (LEN bytes, WHAT in errors). */
int gs_mountinfo_each_text(const char *text, size_t len, const char *what,
			   int (*fn)(const struct gs_mountinfo *m, void *data), void *data,
			   struct gs_err *err);

/* The device number mountinfo shows for the file system FD (named WHAT
 * in errors) is on: its mount's line in /proc/self/mountinfo (the mount
 * of FD's, from statx).  That is the superblock's, the one every other
 * mount namespace's table shows for it too; st_dev is not on btrfs (a
 * subvolume's own number). */
int gs_mountinfo_dev(int fd, const char *what, dev_t *dev, struct gs_err *err);

#endif
