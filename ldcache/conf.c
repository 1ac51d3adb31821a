/* SPDX-License-Identifier: Apache-2.0 */
/* ld.so.conf, read the way ldconfig reads it: one directory per line
 * ("DIR" or "DIR=TYPE"), '#' comments, "include PATTERN..." (relative
 * patterns are relative to the including file's directory; a glob in the
 * last component, matched in sorted order), "hwcap" lines ignored.  Every
 * file is opened inside the root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "internal.h"

#define MAX_INCLUDE_DEPTH 16

struct strv {
	char **v;
	size_t n;
};

void ldc_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static int strv_push(struct strv *s, const char *str, size_t len)
{
	char **v = realloc(s->v, (s->n + 2) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	if (!(v[s->n] = strndup(str, len)))
		return -ENOMEM;
	v[++s->n] = NULL;
	return 0;
}

static int parse_file(int rootfd, const char *file, struct strv *out, int depth,
		      struct gs_err *err);

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expands PATTERN (glob in its last component only) inside the root. */
static int include_glob(int rootfd, const char *pattern, struct strv *out, int depth,
			struct gs_err *err)
{
	_cleanup_free_ char *copy = strdup(pattern);
	_cleanup_free_ char *copy2 = strdup(pattern);
	if (!copy || !copy2)
		return gs_err_set(err, ENOMEM, "%s", pattern);
	const char *dir = dirname(copy), *base = basename(copy2);
	struct gs_err ignored = GS_ERR_INIT;
	int dfd = gs_open_in_root(rootfd, dir, O_RDONLY | O_DIRECTORY, &ignored);
	_cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return 0; /* like glob(): no match, nothing included */
	}
	struct strv names = {0};
	struct dirent *de;
	int r = 0;
	while (r >= 0 && (de = readdir(d)) != NULL)
		if (fnmatch(base, de->d_name, FNM_PERIOD) == 0)
			r = strv_push(&names, de->d_name, strlen(de->d_name));
	if (names.n)
		qsort(names.v, names.n, sizeof(char *), cmp_names);
	for (size_t i = 0; r >= 0 && i < names.n; i++) {
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/%s", strcmp(dir, "/") ? dir : "", names.v[i]) < 0)
			r = -ENOMEM;
		else
			r = parse_file(rootfd, path, out, depth + 1, err);
	}
	ldc_strv_free(names.v);
	if (r == -ENOMEM)
		return gs_err_set(err, ENOMEM, "%s", pattern);
	return r;
}

static int parse_include(int rootfd, const char *file, char *args, struct strv *out, int depth,
			 struct gs_err *err)
{
	char *save = NULL;
	for (char *tok = strtok_r(args, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		_cleanup_free_ char *pattern = NULL;
		_cleanup_free_ char *fcopy = strdup(file);
		if (!fcopy)
			return gs_err_set(err, ENOMEM, "%s", file);
		if (tok[0] == '/')
			pattern = strdup(tok);
		else if (asprintf(&pattern, "%s/%s", dirname(fcopy), tok) < 0)
			pattern = NULL;
		if (!pattern)
			return gs_err_set(err, ENOMEM, "%s", file);
		int r = include_glob(rootfd, pattern, out, depth, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_line(int rootfd, const char *file, char *line, struct strv *out, int depth,
		      struct gs_err *err)
{
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	while (*line == ' ' || *line == '\t')
		line++;
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\n' ||
			 line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0)
		return 0;
	if (!strncmp(line, "include", 7) && (line[7] == ' ' || line[7] == '\t'))
		return parse_include(rootfd, file, line + 8, out, depth, err);
	if (!strncasecmp(line, "hwcap", 5) && (line[5] == ' ' || line[5] == '\t'))
		return 0;
	char *eq = strchr(line, '=');
	if (eq)
		*eq = '\0';
	n = strlen(line);
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	while (n > 0 && line[n - 1] == '/')
		n--;
	if (n == 0)
		return 0;
	if (strv_push(out, line, n) < 0)
		return gs_err_set(err, ENOMEM, "%s", file);
	return 0;
}

static int parse_file(int rootfd, const char *file, struct strv *out, int depth,
		      struct gs_err *err)
{
	if (depth > MAX_INCLUDE_DEPTH)
		return gs_err_setx(err, ELOOP, "%s: includes nested deeper than %d", file,
				   MAX_INCLUDE_DEPTH);
	struct gs_err ignored = GS_ERR_INIT;
	int fd = gs_open_in_root(rootfd, file, O_RDONLY | O_NONBLOCK | O_NOCTTY, &ignored);
	if (fd < 0)
		return 0; /* ldconfig ignores configuration files it cannot open */
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0; /* a directory, FIFO or device is not a configuration file */
	}
	_cleanup_fclose_ FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return gs_err_set(err, errno, "%s", file);
	}
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	int r = 0;
	while (r >= 0 && getline(&line, &cap, f) >= 0)
		r = parse_line(rootfd, file, line, out, depth, err);
	return r;
}

/* The directories ldconfig always scans after the configured ones: Debian's
 * ldconfig (glibc 2.36) has the multiarch directories before /lib and
 * /usr/lib ("/lib/x86_64-linux-gnu: (from <builtin>:0)" in ldconfig -v),
 * so a root whose ld.so.conf does not name them still gets their libraries. */
#if defined(__x86_64__) && defined(__ILP32__)
#define LDC_MULTIARCH "x86_64-linux-gnux32"
#elif defined(__x86_64__)
#define LDC_MULTIARCH "x86_64-linux-gnu"
#elif defined(__i386__)
#define LDC_MULTIARCH "i386-linux-gnu"
#elif defined(__aarch64__)
#define LDC_MULTIARCH "aarch64-linux-gnu"
#endif
static const char *const builtin_dirs[] = {
#ifdef LDC_MULTIARCH
	"/lib/" LDC_MULTIARCH,
	"/usr/lib/" LDC_MULTIARCH,
#endif
	"/lib",
	"/usr/lib",
};

int ldc_conf_dirs(int rootfd, char ***dirs, size_t *n, struct gs_err *err)
{
	struct strv out = {0};
	int r = parse_file(rootfd, "/etc/ld.so.conf", &out, 0, err);
	for (size_t i = 0; r >= 0 && i < sizeof(builtin_dirs) / sizeof(builtin_dirs[0]); i++)
		if (strv_push(&out, builtin_dirs[i], strlen(builtin_dirs[i])) < 0)
			r = gs_err_set(err, ENOMEM, "/etc/ld.so.conf");
	if (r < 0) {
		ldc_strv_free(out.v);
		return r;
	}
	*dirs = out.v;
	*n = out.n;
	return 0;
}
