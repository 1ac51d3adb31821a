/* SPDX-License-Identifier: Apache-2.0 */
/* The record NVIDIA's .run installer (nvidia-installer, backup.c) keeps of
 * what it installed, ROOT/var/lib/nvidia/log, the list `nvidia-installer
 * --uninstall` works from.  Its format, as backup.c writes it:
 *
 *   1.0-53526103 (535.261.03)      the version: digits only, then the real one
 *   NVIDIA Accelerated Graphics Driver for Linux-x86_64      the description
 *   1: /usr/bin/nvidia-cuda-mps-server      INSTALLED_FILE
 *   3057285343                              its CRC (crc.c) as installed
 *   0: /usr/lib/x86_64-linux-gnu/libcuda.so.1      INSTALLED_SYMLINK
 *   libcuda.so.535.261.03                          its target
 *   2: /path                                BACKED_UP_SYMLINK: target, then
 *   target                                  "mode uid gid"
 *   0755 0 0
 *   100: /path                              BACKED_UP_FILE_NUM (100, 101, ...):
 *   3057285343 0100644 0 0                  "crc mode uid gid"
 *
 * Every run of the installer removes /var/lib/nvidia and starts a new log,
 * so it describes the last installation only.  /var/log/nvidia-installer.log
 * is not used: it names the installed files only under --expert and is
 * rewritten by every run of the installer, --uninstall included. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/version.h"
#include "nvinst.h"

#define NVINST_MAX (4u << 20) /* a whole driver's record is about 100 KiB */
#define LINE_MAX_LEN PATH_MAX

enum { INSTALLED_SYMLINK = 0, INSTALLED_FILE = 1, BACKED_UP_SYMLINK = 2, BACKED_UP_FILE_NUM = 100 };

struct cursor {
	char *next; /* the rest of the text, NULL at the end */
	size_t line;
	const char *name;
};

/* The next line (NUL-terminated in place), or NULL at the end; an over-long
 * line is an error. */
static int next_line(struct cursor *c, char **line, struct gs_err *err)
{
	*line = NULL;
	if (!c->next || !*c->next)
		return 0;
	char *s = c->next, *nl = strchr(s, '\n');
	size_t n = nl ? (size_t)(nl - s) : strlen(s);
	c->line++;
	if (n > LINE_MAX_LEN)
		return gs_err_setx(err, EBADMSG, "%s: line %zu: longer than %d bytes", c->name, c->line,
				   LINE_MAX_LEN);
	c->next = nl ? nl + 1 : NULL;
	if (nl)
		*nl = '\0';
	*line = s;
	return 1;
}

static int need_line(struct cursor *c, char **line, const char *what, struct gs_err *err)
{
	int r = next_line(c, line, err);
	if (r == 0)
		return gs_err_setx(err, EBADMSG, "%s: line %zu: the record ends before %s", c->name,
				   c->line + 1, what);
	return r;
}

static int bad(const struct cursor *c, const char *why, struct gs_err *err)
{
	return gs_err_setx(err, EBADMSG, "%s: line %zu: %s", c->name, c->line, why);
}

/* "1.0-53526103 (535.261.03)": the real version in parentheses. */
static int parse_version(struct cursor *c, char *line, struct gs_nvinst *rec, struct gs_err *err)
{
	char *open = strchr(line, '('), *close = open ? strchr(open, ')') : NULL;
	if (strncmp(line, "1.0-", 4) || !close || close[1] != '\0')
		return bad(c, "not an nvidia-installer version line (like \"1.0-53526103 (535.261.03)\")", err);
	*close = '\0';
	if (!gs_version_valid(open + 1))
		return bad(c, "not a driver version", err);
	rec->version = strdup(open + 1);
	return rec->version ? 0 : -ENOMEM;
}

/* An absolute path with no "." or ".." component (the installer writes
 * them so; anything else is not its record). */
static bool clean_path(const char *p)
{
	if (p[0] != '/')
		return false;
	for (const char *s = p; s; s = strchr(s + 1, '/')) {
		size_t n = strcspn(s + 1, "/");
		if ((n == 1 && s[1] == '.') || (n == 2 && s[1] == '.' && s[2] == '.'))
			return false;
	}
	return true;
}

static bool parse_u32(const char *s, int base, uint32_t *out)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return false;
	unsigned long v = strtoul(s, &end, base);
	if (errno || end == s || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return *end == '\0' || *end == ' ';
}

static int add_file(struct gs_nvinst *rec, const char *path, uint32_t crc)
{
	struct gs_nvinst_file *v = realloc(rec->files, (rec->n_files + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	rec->files = v;
	v[rec->n_files].crc = crc;
	v[rec->n_files].path = strdup(path);
	return v[rec->n_files++].path ? 0 : -ENOMEM;
}

/* One entry: "N: PATH" and the lines its type has after it. */
static int parse_entry(struct cursor *c, char *line, struct gs_nvinst *rec, struct gs_err *err)
{
	char *colon = strchr(line, ':'), *more;
	uint32_t num, crc;
	if (!colon || colon[1] != ' ')
		return bad(c, "not an entry (\"NUMBER: PATH\")", err);
	*colon = '\0';
	const char *path = colon + 2;
	if (!parse_u32(line, 10, &num) || strchr(line, ' ') ||
	    (num > BACKED_UP_SYMLINK && num < BACKED_UP_FILE_NUM))
		return bad(c, "not an entry type nvidia-installer writes", err);
	if (!clean_path(path))
		return bad(c, "not an absolute path without . or .. components", err);
	int r = need_line(c, &more, "the entry's data", err);
	if (r < 0)
		return r;
	if (num == INSTALLED_FILE) {
		if (!parse_u32(more, 10, &crc) || strchr(more, ' '))
			return bad(c, "not a CRC", err);
		return add_file(rec, path, crc);
	}
	if (num == BACKED_UP_SYMLINK) { /* target, then "mode uid gid" */
		r = need_line(c, &more, "the backed-up link's mode", err);
		return r < 0 ? r : 0;
	}
	if (num >= BACKED_UP_FILE_NUM && !parse_u32(more, 10, &crc))
		return bad(c, "not \"CRC MODE UID GID\"", err);
	return 0;
}

int gs_nvinst_parse(char *text, const char *name, struct gs_nvinst *rec, struct gs_err *err)
{
	struct cursor c = {text, 0, name};
	char *line;
	*rec = (struct gs_nvinst){0};
	int r = need_line(&c, &line, "the version line", err);
	if (r >= 0)
		r = parse_version(&c, line, rec, err);
	if (r >= 0)
		r = need_line(&c, &line, "the description line", err);
	while (r >= 0 && (r = next_line(&c, &line, err)) > 0)
		r = parse_entry(&c, line, rec, err);
	if (r < 0) {
		gs_nvinst_clear(rec);
		return r == -ENOMEM ? gs_err_set(err, ENOMEM, "%s", name) : r;
	}
	rec->present = true;
	return 0;
}

int gs_nvinst_load(const struct gs_root *root, struct gs_nvinst *rec, struct gs_err *err)
{
	_cleanup_free_ char *text = NULL;
	struct gs_err open_err = GS_ERR_INIT;
	*rec = (struct gs_nvinst){0};
	_cleanup_close_ int fd = gs_root_open_file(root, GS_NVINST_LOG, O_RDONLY | O_NONBLOCK, NULL,
						   &open_err);
	if (fd == -ENOENT)
		return 0; /* not installed by nvidia-installer */
	if (fd < 0) {
		*err = open_err;
		return fd;
	}
	int r = gs_read_all_fd(fd, NVINST_MAX, GS_NVINST_LOG, &text, NULL, err);
	return r < 0 ? r : gs_nvinst_parse(text, GS_NVINST_LOG, rec, err);
}

const struct gs_nvinst_file *gs_nvinst_find(const struct gs_nvinst *rec, const char *path,
					    const char *also)
{
	for (size_t i = 0; i < rec->n_files; i++)
		if (gs_same_merged_path(rec->files[i].path, path) || (also && gs_same_merged_path(rec->files[i].path, also)))
			return &rec->files[i];
	return NULL;
}

static const uint32_t *crc_table(void)
{
	static uint32_t t[256];
	static bool made;
	for (uint32_t i = 0; !made && i < 256; i++) {
		uint32_t v = i << 24;
		for (int b = 0; b < 8; b++)
			v = v & 0x80000000u ? (v << 1) ^ 0x04c11db7u : v << 1;
		t[i] = v;
	}
	made = true;
	return t;
}

int gs_nvinst_crc_fd(int fd, uint32_t *crc, struct gs_err *err)
{
	enum { CHUNK = 1 << 16 };
	const uint32_t *t = crc_table();
	_cleanup_free_ unsigned char *buf = malloc(CHUNK);
	uint32_t c = ~0u;
	off_t off = 0;
	if (!buf)
		return gs_err_set(err, ENOMEM, "CRC");
	for (;;) {
		ssize_t n = gs_pread_retry(fd, buf, CHUNK, off);
		if (n < 0)
			return gs_err_set(err, (int)-n, "reading");
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			c = t[buf[i] ^ (c >> 24)] ^ (c << 8);
		off += n;
	}
	*crc = off == 0 ? 0 : c; /* crc.c: an empty file is 0 */
	return 0;
}

void gs_nvinst_clear(struct gs_nvinst *rec)
{
	for (size_t i = 0; i < rec->n_files; i++)
		free(rec->files[i].path);
	free(rec->files);
	free(rec->version);
	*rec = (struct gs_nvinst){0};
}
