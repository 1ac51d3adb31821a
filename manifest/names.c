/* SPDX-License-Identifier: Apache-2.0 */
/* The name rules for what may live under STORE/VER (paths, link targets,
 * kinds), and the whole-manifest check used before staging and after
 * reading. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs/cleanup.h"
#include "gs/manifest.h"
#include "gs/version.h"

bool gs_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n > 0 && n <= 255 && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

bool gs_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

const char *gs_store_path_check(const char *path)
{
	if (!path || !*path)
		return "empty path";
	if (strlen(path) > GS_PATH_MAX)
		return "path too long";
	if (path[0] == '/')
		return "absolute path (must be relative to the version directory)";
	if (gs_has_control(path))
		return "control character in path";
	int depth = 0;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 0)
			return "empty path component";
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return "'.' or '..' component";
		if (n > 255)
			return "path component too long";
		if (++depth > GS_PATH_DEPTH_MAX)
			return "path too deep (more than " GS_STR(GS_PATH_DEPTH_MAX) " components)";
		p += n;
		if (*p == '/' && !*++p)
			return "trailing '/'";
	}
	return NULL;
}

const char *gs_store_target_check(const char *path, const char *target)
{
	if (!target || !*target)
		return "empty link target";
	if (strlen(target) > GS_PATH_MAX)
		return "link target too long";
	if (target[0] == '/')
		return "absolute link target";
	if (gs_has_control(target))
		return "control character in link target";
	long depth = 0;
	for (const char *s = path; *s; s++)
		depth += *s == '/';
	bool leading = true; /* ".." only before every other component */
	for (const char *p = target; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 0)
			return "empty component in link target";
		if (n == 1 && p[0] == '.')
			return "'.' component in link target";
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (!leading)
				return "'..' after a name in link target";
			if (--depth < 0)
				return "link target leaves the version directory";
		} else {
			leading = false;
		}
		p += n;
		if (*p == '/' && !*++p)
			return "trailing '/' in link target";
	}
	return leading ? "link target names no file" : NULL;
}

static const char *const kind_names[] = {
	[GS_KIND_LIB] = "lib",		 [GS_KIND_LIB32] = "lib32",   [GS_KIND_BIN] = "bin",
	[GS_KIND_FIRMWARE] = "firmware", [GS_KIND_CONFIG] = "config",
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *gs_kind_name(enum gs_kind k)
{
	return (unsigned int)k < N_KINDS ? kind_names[k] : "?";
}

int gs_kind_parse(const char *s, enum gs_kind *k)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		if (!strcmp(s, kind_names[i])) {
			*k = (enum gs_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Orders paths component by component ('/' sorts before every other byte),
 * so that "a" is immediately followed by "a/..." entries. */
static int path_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned int ca = *a == '/' ? 1u : *a ? (unsigned char)*a + 1u : 0u;
		unsigned int cb = *b == '/' ? 1u : *b ? (unsigned char)*b + 1u : 0u;
		if (ca != cb || !ca)
			return (int)ca - (int)cb;
	}
}

struct named {
	const char *path;
	char what;    /* 'f' file, 'l' link */
	size_t index;
};

static int named_cmp(const void *a, const void *b)
{
	return path_cmp(((const struct named *)a)->path, ((const struct named *)b)->path);
}

static int check_collisions(struct named *v, size_t n, struct gs_err *err)
{
	qsort(v, n, sizeof(*v), named_cmp);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i].path, GS_MANIFEST_NAME) || !strcmp(v[i].path, GS_INDEX_NAME))
			return gs_err_setx(err, EINVAL, "%s[%zu]: path %s is reserved",
					   v[i].what == 'f' ? "files" : "links", v[i].index,
					   v[i].path);
		if (i + 1 == n)
			break;
		size_t len = strlen(v[i].path);
		if (!strcmp(v[i].path, v[i + 1].path))
			return gs_err_setx(err, EINVAL, "%s: path used twice", v[i].path);
		if (!strncmp(v[i].path, v[i + 1].path, len) && v[i + 1].path[len] == '/')
			return gs_err_setx(err, EINVAL, "%s: is a %s and also a directory of %s",
					   v[i].path, v[i].what == 'f' ? "file" : "link",
					   v[i + 1].path);
	}
	return 0;
}

static int check_entries(const struct gs_manifest *p, struct named *v, struct gs_err *err)
{
	const char *why;
	for (size_t i = 0; i < p->n_files; i++) {
		const struct gs_file *f = &p->files[i];
		if ((why = gs_store_path_check(f->path)))
			return gs_err_setx(err, EINVAL, "files[%zu]: %s: %s", i,
					   f->path ? f->path : "(null)", why);
		if (!f->source || f->source[0] != '/' || gs_has_control(f->source))
			return gs_err_setx(err, EINVAL, "files[%zu]: %s: source must be an absolute path",
					   i, f->path);
		if (strlen(f->source) >= GS_SOURCE_MAX)
			return gs_err_setx(err, EINVAL, "files[%zu]: %s: source longer than %d bytes", i,
					   f->path, GS_SOURCE_MAX - 1);
		if ((unsigned int)f->kind >= N_KINDS)
			return gs_err_setx(err, EINVAL, "files[%zu]: %s: unknown kind %d", i, f->path,
					   (int)f->kind);
		for (size_t k = 0; k < f->n_needed; k++)
			if (!f->needed || !f->needed[k])
				return gs_err_setx(err, EINVAL, "files[%zu]: %s: needed[%zu] is NULL",
						   i, f->path, k);
		v[i] = (struct named){f->path, 'f', i};
	}
	for (size_t i = 0; i < p->n_links; i++) {
		const struct gs_link *l = &p->links[i];
		if ((why = gs_store_path_check(l->path)))
			return gs_err_setx(err, EINVAL, "links[%zu]: %s: %s", i,
					   l->path ? l->path : "(null)", why);
		if ((why = gs_store_target_check(l->path, l->target)))
			return gs_err_setx(err, EINVAL, "links[%zu]: %s -> %s: %s", i, l->path,
					   l->target ? l->target : "(null)", why);
		v[p->n_files + i] = (struct named){l->path, 'l', i};
	}
	return 0;
}

int gs_manifest_check(const struct gs_manifest *p, struct gs_err *err)
{
	if (!gs_version_valid(p->driver))
		return gs_err_setx(err, EINVAL, "driver version '%s' is not usable as a directory name",
				   p->driver ? p->driver : "(null)");
	if (!p->arch || !*p->arch || gs_has_control(p->arch))
		return gs_err_setx(err, EINVAL, "driver %s: no architecture", p->driver);
	if ((p->n_files && !p->files) || (p->n_links && !p->links))
		return gs_err_setx(err, EINVAL, "driver %s: malformed plan", p->driver);
	if (p->n_files > GS_MANIFEST_MAX_ENTRIES || p->n_links > GS_MANIFEST_MAX_ENTRIES - p->n_files)
		return gs_err_setx(err, EINVAL, "driver %s: %zu files and %zu links (more than %d entries)",
				   p->driver, p->n_files, p->n_links, GS_MANIFEST_MAX_ENTRIES);
	size_t n = p->n_files + p->n_links;
	_cleanup_free_ struct named *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return gs_err_setx(err, ENOMEM, "checking plan: out of memory");
	int r = check_entries(p, v, err);
	return r < 0 ? r : check_collisions(v, n, err);
}
