/* SPDX-License-Identifier: Apache-2.0 */
#include "gs/mountinfo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

/* A field with its \ooo escapes (space, tab, newline, backslash) decoded
 * in place; false when an escape decodes to NUL (the value would be cut
 * short). */
static bool unescape(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			if (*w++ == '\0')
				return false;
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return true;
}

/* A decimal number that is all of S up to STOP (strictly: digits only,
 * at least one, no overflow) into *OUT; the end is returned in *REST. */
static bool decimal(const char *s, char stop, uint64_t max, uint64_t *out, const char **rest)
{
	uint64_t v = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned int d = (unsigned int)(*p - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (p == s || *p != stop)
		return false;
	*out = v;
	*rest = p;
	return true;
}

/* "MAJOR:MINOR" into M. */
static bool devnum(const char *s, struct gs_mountinfo *m)
{
	uint64_t a, b;
	const char *p;
	if (!decimal(s, ':', UINT32_MAX, &a, &p) || !decimal(p + 1, '\0', UINT32_MAX, &b, &p))
		return false;
	m->major = (unsigned int)a;
	m->minor = (unsigned int)b;
	return true;
}

/* The fields of the NUL-terminated LINE into M. */
static bool split(char *line, struct gs_mountinfo *m)
{
	char *p = line, *fld[6], *t = NULL;
	const char *rest;
	for (int i = 0; i < 6; i++)
		if (!(fld[i] = strsep(&p, " ")))
			return false;
	m->shared = false;
	while ((t = strsep(&p, " ")) && strcmp(t, "-"))
		m->shared = m->shared || !strncmp(t, "shared:", 7);
	if (!t || !decimal(fld[0], '\0', UINT64_MAX, &m->id, &rest) ||
	    !decimal(fld[1], '\0', UINT64_MAX, &m->parent, &rest) || !devnum(fld[2], m))
		return false;
	m->root = fld[3];
	m->point = fld[4];
	m->fstype = strsep(&p, " ");
	m->source = strsep(&p, " ");
	m->superopts = p;
	/* the kernel writes every mount point as an absolute path (one
	 * outside the reader's root is left out of the table, not shown) */
	return m->fstype && m->source && m->superopts && unescape(m->root) &&
	       unescape(m->point) && unescape(m->source) && m->point[0] == '/';
}

int gs_read_line(FILE *f, const char *what, size_t max, char **line, size_t *cap,
		 struct gs_err *err)
{
	errno = 0;
	ssize_t len = getline(line, cap, f);
	if (len < 0)
		return ferror(f) || errno ? gs_err_set(err, errno ? errno : EIO, "reading %s", what) : 0;
	if ((size_t)len > max)
		return gs_err_setx(err, E2BIG, "%s: a line is longer than %zu bytes", what, max);
	if (strlen(*line) != (size_t)len || (*line)[len - 1] != '\n')
		return gs_err_setx(err, EBADMSG, "%s: a line holds a NUL byte or has no newline", what);
	(*line)[len - 1] = '\0';
	return 1;
}

int gs_mountinfo_next(FILE *f, const char *what, char **line, size_t *cap,
		      struct gs_mountinfo *m, struct gs_err *err)
{
	int r = gs_read_line(f, what, GS_MOUNTINFO_LINE_MAX, line, cap, err);
	if (r <= 0)
		return r;
	if (!split(*line, m))
		return gs_err_setx(err, EBADMSG, "%s: malformed line", what);
	return 1;
}

static int each(FILE *f, const char *what, int (*fn)(const struct gs_mountinfo *m, void *data),
		void *data, struct gs_err *err)
{
	char *line = NULL;
	size_t cap = 0;
	struct gs_mountinfo m;
	int r;
	while ((r = gs_mountinfo_next(f, what, &line, &cap, &m, err)) > 0)
		if ((r = fn(&m, data)) != 0)
			break;
	free(line);
	fclose(f);
	return r < 0 ? r : 0;
}

int gs_mountinfo_each(const char *file, int (*fn)(const struct gs_mountinfo *m, void *data),
		      void *data, struct gs_err *err)
{
	FILE *f = fopen(file, "re");
	if (!f)
		return gs_err_set(err, errno, "%s", file);
	return each(f, file, fn, data, err);
}

int gs_mountinfo_each_text(const char *text, size_t len, const char *what,
			   int (*fn)(const struct gs_mountinfo *m, void *data), void *data,
			   struct gs_err *err)
{
	if (len == 0)
		return 0;
	FILE *f = fmemopen((void *)text, len, "r");
	if (!f)
		return gs_err_set(err, errno, "%s", what);
	return each(f, what, fn, data, err);
}

struct dev_find {
	uint64_t id;
	dev_t dev;
	bool found;
};

static int dev_each(const struct gs_mountinfo *m, void *data)
{
	struct dev_find *d = data;
	if (m->id != d->id)
		return 0;
	d->dev = makedev(m->major, m->minor);
	d->found = true;
	return 1;
}

int gs_mountinfo_dev(int fd, const char *what, dev_t *dev, struct gs_err *err)
{
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_MNT_ID, &sx) < 0)
		return gs_err_set(err, errno, "%s", what);
	*dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	if (!(sx.stx_mask & STATX_MNT_ID))
		return 0; /* before Linux 5.8: st_dev, right but on btrfs */
	struct dev_find d = {.id = sx.stx_mnt_id};
	int r = gs_mountinfo_each("/proc/self/mountinfo", dev_each, &d, err);
	if (r < 0)
		return r;
	if (!d.found)
		return gs_err_setx(err, ENOENT, "%s: its mount (id %" PRIu64 ") is not in /proc/self/mountinfo",
				   what, d.id);
	*dev = d.dev;
	return 0;
}
