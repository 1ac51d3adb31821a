/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log as gpu-stage-hook writes it (hook/audit.c): one JSON
 * record a line in PATH, older ones in PATH.1 (newest) .. PATH.N, each of
 * them possibly gzip'ed by logrotate (PATH.N.gz: compress, delaycompress
 * in hook/gpu-stage.logrotate). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "audit.h"
#include "gs/cleanup.h"
#include "gs/config.h"
#include "gs/mountinfo.h"

#define AU_LINE_MAX (16u << 20) /* a longer line is not a record of ours */

/* Every line of F (WHAT in errors) into LATEST. */
static int read_file(FILE *f, const char *what, json_t *latest, size_t *n_bad,
		     struct gs_err *err)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	int r;
	for (;;) {
		struct gs_err e = GS_ERR_INIT;
		r = gs_read_line(f, what, AU_LINE_MAX, &line, &cap, &e);
		if (r == 0)
			return 0;
		if (r < 0 && e.code != EBADMSG && e.code != E2BIG) {
			*err = e;
			return r;
		}
		json_t *rec = r < 0 ? NULL : json_loads(line, JSON_REJECT_DUPLICATES, NULL);
		const char *id = json_string_value(json_object_get(rec, "container"));
		if (!rec || !json_is_object(rec) || !id) {
			++*n_bad;
			json_decref(rec);
			if (r < 0 && e.code == E2BIG)
				return gs_err_setx(err, E2BIG, "%s: a line is longer than %u bytes", what,
						   AU_LINE_MAX);
			continue;
		}
		/* "ignored" records (no plan) say nothing was given: the previous
		 * start's record still describes the container, if any */
		r = json_is_object(json_object_get(rec, "plan")) ? json_object_set(latest, id, rec) : 0;
		json_decref(rec);
		if (r < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
	}
}

/* A gzip'ed rotation read through zlib as a stdio stream; what went
 * wrong (not gzip, corrupt, cut short) kept for the message. */
struct gz_stream {
	gzFile z;
	char why[128]; /* "" while all is well */
};

static ssize_t gz_read(void *cookie, char *buf, size_t n)
{
	struct gz_stream *g = cookie;
	int got = gzread(g->z, buf, n > INT_MAX ? INT_MAX : (unsigned int)n);
	int zerr = Z_OK;
	const char *msg = gzerror(g->z, &zerr);
	if (got > 0 || (got == 0 && zerr == Z_OK))
		return got;
	/* at its end a stream cut short reads 0 with Z_BUF_ERROR */
	snprintf(g->why, sizeof(g->why), "%s", zerr == Z_BUF_ERROR ? "cut short" : msg);
	errno = zerr == Z_ERRNO && errno ? errno : EIO;
	return -1;
}

static int gz_close(void *cookie)
{
	struct gz_stream *g = cookie;
	int r = gzclose_r(g->z) == Z_OK ? 0 : -1;
	free(g);
	return r;
}

/* FD as a stream, through zlib when GZ (*G then holds the gzip side). */
static FILE *open_stream(int fd, bool gz, struct gz_stream **g)
{
	*g = NULL;
	if (!gz)
		return fdopen(fd, "re");
	struct gz_stream *s = calloc(1, sizeof(*s));
	if (!s || !(s->z = gzdopen(fd, "rb"))) {
		free(s);
		return NULL;
	}
	FILE *f = fopencookie(s, "r", (cookie_io_functions_t){.read = gz_read, .close = gz_close});
	if (!f) {
		gzclose_r(s->z); /* closes FD */
		free(s);
		return NULL;
	}
	*g = s;
	return f;
}

static bool is_gz(const char *path)
{
	size_t n = strlen(path);
	return n > 3 && !strcmp(path + n - 3, ".gz");
}

static int read_one(const char *path, json_t *latest, size_t *n_bad, struct gs_err *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : gs_err_set(err, errno, "audit log %s", path);
	bool gz = is_gz(path);
	struct gz_stream *g;
	errno = 0;
	FILE *f = open_stream(fd, gz, &g);
	if (!f) {
		int e = errno ? errno : ENOMEM;
		if (!gz)
			close(fd);
		return gs_err_set(err, e, "audit log %s", path);
	}
	int r = read_file(f, path, latest, n_bad, err);
	if (r < 0 && g && g->why[0])
		r = gs_err_setx(err, EBADMSG, "audit log %s: not a whole gzip file (%s)", path, g->why);
	fclose(f); /* frees G */
	return r;
}

/* PATH's inode, 0 when it is missing. */
static ino_t log_ino(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? st.st_ino : 0;
}

#define AU_ROTATED_RETRIES 4

/* NAME := rotation I of PATH: PATH.I, else PATH.I.gz (logrotate writes
 * the .gz whole before it removes PATH.I); false when neither exists. */
static bool rotation(const char *path, unsigned int i, char *name, size_t len)
{
	struct stat st;
	snprintf(name, len, "%s.%u", path, i);
	if (lstat(name, &st) == 0)
		return true;
	snprintf(name, len, "%s.%u.gz", path, i);
	return lstat(name, &st) == 0;
}

/* How many rotations PATH has: rotations 1 .. N exist (they are renamed
 * in a row, so the first missing one ends them). */
static unsigned int rotations(const char *path, char *name, size_t len)
{
	unsigned int n = 0;
	while (n < GS_AUDIT_LOG_KEEP_MAX && rotation(path, n + 1, name, len))
		n++;
	return n;
}

/* The rotations oldest first, then PATH.  A rotation by a hook while they
 * are read (PATH's inode changed) could hide a record: read again. */
int au_log_read(const char *path, json_t **latest, size_t *n_bad, struct gs_err *err)
{
	size_t len = strlen(path) + 16;
	_cleanup_free_ char *name = malloc(len);
	if (!name)
		return gs_err_setx(err, ENOMEM, "out of memory");
	for (int tries = 0;; tries++) {
		_cleanup_(json_decrefp) json_t *l = json_object();
		if (!l)
			return gs_err_setx(err, ENOMEM, "out of memory");
		ino_t before = log_ino(path);
		*n_bad = 0;
		for (unsigned int i = rotations(path, name, len) + 1; i-- > 0;) {
			if (i && !rotation(path, i, name, len))
				continue; /* renamed meanwhile: the inode check reads again */
			int r = read_one(i ? name : path, l, n_bad, err);
			if (r < 0)
				return r;
		}
		if (log_ino(path) == before || tries == AU_ROTATED_RETRIES) {
			*latest = steal_ptr(&l);
			return 0;
		}
	}
}
