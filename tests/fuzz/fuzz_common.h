/* SPDX-License-Identifier: Apache-2.0 */
/* What every libFuzzer harness here checks besides "no crash, no sanitizer
 * report": a refusal says why (a code and a message), as every error of
 * the project must.  A broken promise aborts, which libFuzzer reports as a
 * crash with the input that caused it. */
#ifndef GS_FUZZ_COMMON_H
#define GS_FUZZ_COMMON_H

#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fz_refused(int r, const struct gs_err *err)
{
	if (r < 0 && (err->code <= 0 || err->msg[0] == '\0'))
		abort(); /* an error must name its reason */
}

/* DATA as a NUL-terminated string (the parsers that take text). */
static inline char *fz_text(const uint8_t *data, size_t size)
{
	char *t = malloc(size + 1);
	if (!t)
		abort();
	memcpy(t, data, size);
	t[size] = '\0';
	return t;
}

/* The harnesses that read files: one scratch directory a process, under
 * TMPDIR, else /dev/shm (a tmpfs: no disk writes, fsync free), else /tmp;
 * removed at exit. */
static char fz_dir[64];

static inline int fz_rm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return remove(p) < 0 ? -1 : 0;
}

/* Removes PATH and everything under it (not following links). */
static inline void fz_rm_tree(const char *path)
{
	nftw(path, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void fz_rm_dir(void)
{
	fz_rm_tree(fz_dir);
}

static inline const char *fz_scratch(void)
{
	if (!fz_dir[0]) {
		const char *t = getenv("TMPDIR");
		struct stat st;
		if (!t || t[0] != '/')
			t = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
		snprintf(fz_dir, sizeof(fz_dir), "%.40s/gs-fuzz-XXXXXX", t);
		if (!mkdtemp(fz_dir))
			abort();
		atexit(fz_rm_dir);
	}
	return fz_dir;
}

/* Writes LEN bytes of DATA to PATH (created or replaced, its directory
 * there already); any failure aborts (the harness, not the input). */
static inline void fz_write(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd) < 0)
		abort();
}

/* The part of DATA before the first occurrence of SEP (the whole of it
 * when none): *LEN; the rest after SEP in *REST, *REST_LEN (0 when none). */
static inline void fz_split(const uint8_t *data, size_t size, const char *sep, size_t *len,
			    const uint8_t **rest, size_t *rest_len)
{
	const uint8_t *p = memmem(data, size, sep, strlen(sep));
	*len = p ? (size_t)(p - data) : size;
	*rest = p ? p + strlen(sep) : data + size;
	*rest_len = p ? size - *len - strlen(sep) : 0;
}

/* BASE (a new directory under the scratch one, "NAME") and DIRS under it,
 * in order (parents first); BASE's path in OUT. */
static inline void fz_mkdirs(char *out, size_t len, const char *name, const char *const *dirs,
			     size_t n)
{
	snprintf(out, len, "%s/%s", fz_scratch(), name);
	if (mkdir(out, 0755) < 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", out, dirs[i]);
		if (mkdir(p, 0755) < 0)
			abort();
	}
}

/* Writes the parts of *DATA split at SEP to BASE/FILES[i] (an empty file
 * for a part that is not there); *DATA, *SIZE: what follows the last. */
static inline void fz_write_parts(const char *base, const char *const *files, size_t n,
				  const char *sep, const uint8_t **data, size_t *size)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *rest;
		size_t len, rest_len;
		fz_split(*data, *size, sep, &len, &rest, &rest_len);
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", base, files[i]);
		fz_write(p, *data, len);
		*data = rest;
		*size = rest_len;
	}
}

#define FZ_N(a) (sizeof(a) / sizeof((a)[0]))

#endif
