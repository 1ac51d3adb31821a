/* SPDX-License-Identifier: Apache-2.0 */
/* manifest.json: writing it, and reading it back strictly.
 *
 * The document (schema gpu-stage/manifest/v1):
 *   { "schema", "driver", "arch", "root", "created" (RFC 3339 UTC),
 *     "files": [ { "path", "source", "kind", "caps": [..], "soname" (or null),
 *                  "needed": [..], "sha256", "size", "mode",
 *                  "src": { "dev", "ino", "mtime_ns" } } ],
 *     "links": [ { "path", "target" } ],
 *     "warnings": [..],
 *     "manifest_sha256" }
 * manifest_sha256 is the SHA-256 of the document without that key, dumped
 * compact with sorted keys: verify uses it to notice a manifest edited
 * after staging.  Reading rejects duplicate and unknown keys, wrong types,
 * and any path that could leave STORE/VER. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "store_internal.h"

#define DIGEST_KEY "manifest_sha256"
#define HASH_CHUNK (1u << 20)
#define WALK_DEPTH_MAX 64

#define _cleanup_json_ _cleanup_(json_decrefp)

/* ---- names ------------------------------------------------------------------ */

bool gs_store_version_valid(const char *ver)
{
	size_t n = ver ? strlen(ver) : 0;
	if (n == 0 || n > 64 || strstr(ver, ".."))
		return false;
	if (!((ver[0] >= '0' && ver[0] <= '9') || (ver[0] >= 'a' && ver[0] <= 'z') ||
	      (ver[0] >= 'A' && ver[0] <= 'Z')))
		return false;
	return strspn(ver, "0123456789abcdefghijklmnopqrstuvwxyz"
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZ._+~-") == n;
}

static bool has_control(const char *s)
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
	if (has_control(path))
		return "control character in path";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 0)
			return "empty path component";
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return "'.' or '..' component";
		if (n > 255)
			return "path component too long";
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
	if (has_control(target))
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
		if (!strcmp(v[i].path, GS_MANIFEST_NAME))
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

static int check_entries(const struct gs_plan *p, struct named *v, struct gs_err *err)
{
	const char *why;
	for (size_t i = 0; i < p->n_files; i++) {
		const struct gs_file *f = &p->files[i];
		if ((why = gs_store_path_check(f->path)))
			return gs_err_setx(err, EINVAL, "files[%zu]: %s: %s", i,
					   f->path ? f->path : "(null)", why);
		if (!f->source || f->source[0] != '/' || has_control(f->source))
			return gs_err_setx(err, EINVAL, "files[%zu]: %s: source must be an absolute path",
					   i, f->path);
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

int gs_plan_check(const struct gs_plan *p, struct gs_err *err)
{
	if (!gs_store_version_valid(p->driver))
		return gs_err_setx(err, EINVAL, "driver version '%s' is not usable as a directory name",
				   p->driver ? p->driver : "(null)");
	if (!p->arch || !*p->arch || has_control(p->arch))
		return gs_err_setx(err, EINVAL, "driver %s: no architecture", p->driver);
	if ((p->n_files && !p->files) || (p->n_links && !p->links))
		return gs_err_setx(err, EINVAL, "driver %s: malformed plan", p->driver);
	size_t n = p->n_files + p->n_links;
	_cleanup_free_ struct named *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return gs_err_setx(err, ENOMEM, "checking plan: out of memory");
	int r = check_entries(p, v, err);
	return r < 0 ? r : check_collisions(v, n, err);
}

static int sha256_buf(const void *p, size_t n, char hex[65], struct gs_err *err)
{
	_cleanup_(gs_sha256_freep) struct gs_sha256 *h = NULL;
	int r = gs_sha256_new(&h, err);
	if (r >= 0)
		r = gs_sha256_update(h, p, n, err);
	return r < 0 ? r : gs_sha256_final(h, hex, err);
}

/* The digest of ROOT without its DIGEST_KEY member. */
static int document_digest(json_t *root, char hex[65], struct gs_err *err)
{
	_cleanup_json_ json_t *copy = json_copy(root);
	if (!copy)
		return gs_err_setx(err, ENOMEM, "manifest digest: out of memory");
	json_object_del(copy, DIGEST_KEY);
	_cleanup_free_ char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return gs_err_setx(err, ENOMEM, "manifest digest: out of memory");
	return sha256_buf(text, strlen(text), hex, err);
}

/* ---- writing ------------------------------------------------------------------ */

static json_t *strv_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *caps_json(unsigned int caps)
{
	char buf[128];
	json_t *a = json_array();
	const char *p = gs_caps_format(caps, buf, sizeof(buf));
	while (a && *p) {
		size_t n = strcspn(p, ",");
		if (json_array_append_new(a, json_stringn(p, n)) < 0) {
			json_decref(a);
			return NULL;
		}
		p += n + (p[n] == ',');
	}
	return a;
}

static json_t *file_json(const struct gs_file *f)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:s?, s:s?, s:o, s:s, s:I, s:i, s:{s:I, s:I, s:I}}",
			 "path", f->path, "source", f->source, "kind", gs_kind_name(f->kind), "caps",
			 caps_json(f->caps), "soname", f->soname, "evidence", f->evidence, "needed",
			 strv_json(f->needed, f->n_needed), "sha256", f->sha256, "size",
			 (json_int_t)f->size, "mode", (int)f->mode, "src", "dev",
			 (json_int_t)f->src_dev, "ino", (json_int_t)f->src_ino, "mtime_ns",
			 (json_int_t)f->src_mtime_ns);
}

static json_t *plan_json(const struct gs_plan *p, const char *created)
{
	_cleanup_json_ json_t *files = json_array(), *links = json_array();
	if (!files || !links)
		return NULL;
	for (size_t i = 0; i < p->n_files; i++)
		if (json_array_append_new(files, file_json(&p->files[i])) < 0)
			return NULL;
	for (size_t i = 0; i < p->n_links; i++)
		if (json_array_append_new(links, json_pack("{s:s, s:s}", "path", p->links[i].path,
							   "target", p->links[i].target)) < 0)
			return NULL;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:o}", "schema", GS_MANIFEST_SCHEMA,
			 "driver", p->driver, "arch", p->arch, "root", p->root ? p->root : "/",
			 "created", created, "files", files, "links", links, "warnings",
			 strv_json(p->warnings, p->n_warnings));
}

int gs_manifest_dump(const struct gs_plan *p, time_t created, char **out, size_t *len,
		     struct gs_err *err)
{
	char when[32];
	struct tm tm;
	if (!gmtime_r(&created, &tm) ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return gs_err_setx(err, EINVAL, "manifest: cannot format the creation time");
	_cleanup_json_ json_t *root = plan_json(p, when);
	if (!root)
		return gs_err_setx(err, EINVAL,
				   "manifest for %s: cannot encode (out of memory, or a name is not valid UTF-8)",
				   p->driver);
	char digest[65];
	int r = document_digest(root, digest, err);
	if (r < 0)
		return r;
	if (json_object_set_new(root, DIGEST_KEY, json_string(digest)) < 0)
		return gs_err_setx(err, ENOMEM, "manifest: out of memory");
	char *text = json_dumps(root, JSON_INDENT(2));
	if (!text)
		return gs_err_setx(err, ENOMEM, "manifest: out of memory");
	size_t n = strlen(text);
	char *grown = realloc(text, n + 2);
	if (!grown) {
		free(text);
		return gs_err_setx(err, ENOMEM, "manifest: out of memory");
	}
	memcpy(grown + n, "\n", 2);
	*out = grown;
	*len = n + 1;
	return 0;
}

/* ---- reading ------------------------------------------------------------------ */

struct pctx {
	const char *name; /* the file, for messages */
	struct gs_err *err;
};

__attribute__((format(printf, 3, 4))) static int bad(struct pctx *c, const char *where,
						      const char *fmt, ...)
{
	char reason[GS_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return gs_err_setx(c->err, EBADMSG, "%s: %s%s%s", c->name, where, *where ? ": " : "",
			   reason);
}

/* Every key of OBJ is one of KEYS (NULL-terminated). */
static int only_keys(struct pctx *c, const char *where, json_t *obj, const char *const *keys)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		size_t i = 0;
		while (keys[i] && strcmp(keys[i], key))
			i++;
		if (!keys[i])
			return bad(c, where, "unknown key \"%s\"", key);
	}
	return 0;
}

static int get_str(struct pctx *c, const char *where, json_t *obj, const char *key, bool null_ok,
		   const char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v)
		return bad(c, where, "missing \"%s\"", key);
	if (json_is_null(v) && null_ok)
		return 0;
	if (!json_is_string(v))
		return bad(c, where, "\"%s\" must be a string%s", key, null_ok ? " or null" : "");
	*out = json_string_value(v);
	if (strlen(*out) != json_string_length(v))
		return bad(c, where, "\"%s\" contains a NUL byte", key);
	return 0;
}

static int get_int(struct pctx *c, const char *where, json_t *obj, const char *key,
		   json_int_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return bad(c, where, "missing \"%s\"", key);
	if (!json_is_integer(v))
		return bad(c, where, "\"%s\" must be an integer", key);
	*out = json_integer_value(v);
	return 0;
}

static int get_array(struct pctx *c, const char *where, json_t *obj, const char *key,
		     json_t **out)
{
	*out = json_object_get(obj, key);
	if (!*out)
		return bad(c, where, "missing \"%s\"", key);
	if (!json_is_array(*out))
		return bad(c, where, "\"%s\" must be an array", key);
	return 0;
}

static int dup_str(struct pctx *c, const char *s, char **out)
{
	*out = s ? strdup(s) : NULL;
	if (s && !*out)
		return gs_err_setx(c->err, ENOMEM, "%s: out of memory", c->name);
	return 0;
}

/* An array of strings into a malloc'd vector (its length is set first, so
 * a failure half-way leaves something gs_plan_free can free). */
static int get_strv(struct pctx *c, const char *where, json_t *obj, const char *key,
		    char ***v, size_t *n)
{
	json_t *a;
	int r = get_array(c, where, obj, key, &a);
	if (r < 0)
		return r;
	*v = calloc(json_array_size(a) + 1, sizeof(**v));
	if (!*v)
		return gs_err_setx(c->err, ENOMEM, "%s: out of memory", c->name);
	*n = json_array_size(a);
	for (size_t i = 0; i < *n; i++) {
		json_t *s = json_array_get(a, i);
		if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
			return bad(c, where, "\"%s\"[%zu] must be a string without NUL", key, i);
		if ((r = dup_str(c, json_string_value(s), &(*v)[i])) < 0)
			return r;
	}
	return 0;
}

static int get_caps(struct pctx *c, const char *where, json_t *obj, unsigned int *caps)
{
	json_t *a;
	int r = get_array(c, where, obj, "caps", &a);
	*caps = 0;
	for (size_t i = 0; r >= 0 && i < json_array_size(a); i++) {
		json_t *s = json_array_get(a, i);
		const char *name = json_is_string(s) ? json_string_value(s) : NULL;
		unsigned int bit = 0;
		struct gs_err ignored = GS_ERR_INIT;
		if (!name || !*name || strchr(name, ',') || !strcmp(name, "all") ||
		    gs_caps_parse(name, &bit, &ignored) < 0 || bit == 0)
			return bad(c, where, "\"caps\"[%zu] is not a capability name", i);
		if (*caps & bit)
			return bad(c, where, "capability %s listed twice", name);
		*caps |= bit;
	}
	return r;
}

static bool is_hex64(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int parse_src(struct pctx *c, const char *where, json_t *obj, struct gs_file *f)
{
	static const char *const keys[] = {"dev", "ino", "mtime_ns", NULL};
	json_t *src = json_object_get(obj, "src");
	json_int_t dev = 0, ino = 0, mtime = 0;
	if (!src || !json_is_object(src))
		return bad(c, where, "\"src\" must be an object");
	int r = only_keys(c, where, src, keys);
	if (r >= 0)
		r = get_int(c, where, src, "dev", &dev);
	if (r >= 0)
		r = get_int(c, where, src, "ino", &ino);
	if (r >= 0)
		r = get_int(c, where, src, "mtime_ns", &mtime);
	f->src_dev = (uint64_t)dev; /* written as the same 64 bits, read back as such */
	f->src_ino = (uint64_t)ino;
	f->src_mtime_ns = (int64_t)mtime;
	return r;
}

static int parse_file_strings(struct pctx *c, const char *where, json_t *j, struct gs_file *f)
{
	const char *path, *source, *kind, *soname, *evidence, *sha;
	int r = get_str(c, where, j, "path", false, &path);
	if (r >= 0)
		r = get_str(c, where, j, "source", false, &source);
	if (r >= 0)
		r = get_str(c, where, j, "kind", false, &kind);
	if (r >= 0)
		r = get_str(c, where, j, "soname", true, &soname);
	if (r >= 0)
		r = get_str(c, where, j, "evidence", true, &evidence);
	if (r >= 0)
		r = get_str(c, where, j, "sha256", false, &sha);
	if (r < 0)
		return r;
	const char *why = gs_store_path_check(path);
	if (why)
		return bad(c, where, "\"path\" %s: %s", path, why);
	if (source[0] != '/' || has_control(source))
		return bad(c, where, "\"source\" must be an absolute path");
	if (gs_kind_parse(kind, &f->kind) < 0)
		return bad(c, where, "unknown kind \"%s\"", kind);
	if (soname && (!*soname || strchr(soname, '/') || has_control(soname)))
		return bad(c, where, "\"soname\" is not a file name");
	if (evidence && (!*evidence || has_control(evidence)))
		return bad(c, where, "\"evidence\" is empty or not printable");
	if (!is_hex64(sha))
		return bad(c, where, "\"sha256\" must be 64 lowercase hex digits");
	memcpy(f->sha256, sha, 65);
	if ((r = dup_str(c, path, &f->path)) < 0 || (r = dup_str(c, source, &f->source)) < 0)
		return r;
	if ((r = dup_str(c, soname, &f->soname)) < 0)
		return r;
	return dup_str(c, evidence, &f->evidence);
}

static int parse_file(struct pctx *c, json_t *j, size_t i, struct gs_file *f)
{
	static const char *const keys[] = {"path", "source", "kind", "caps", "soname", "evidence",
					   "needed", "sha256", "size", "mode", "src", NULL};
	char where[48];
	snprintf(where, sizeof(where), "files[%zu]", i);
	if (!json_is_object(j))
		return bad(c, where, "must be an object");
	json_int_t size = 0, mode = 0;
	int r = only_keys(c, where, j, keys);
	if (r >= 0)
		r = parse_file_strings(c, where, j, f);
	if (r >= 0)
		r = get_caps(c, where, j, &f->caps);
	if (r >= 0)
		r = get_strv(c, where, j, "needed", &f->needed, &f->n_needed);
	if (r >= 0)
		r = get_int(c, where, j, "size", &size);
	if (r >= 0)
		r = get_int(c, where, j, "mode", &mode);
	if (r >= 0)
		r = parse_src(c, where, j, f);
	if (r < 0)
		return r;
	if (size < 0)
		return bad(c, where, "\"size\" is negative");
	if (mode != 0444 && mode != 0555)
		return bad(c, where, "\"mode\" is %#llo, expected 0444 or 0555", (long long)mode);
	f->size = (uint64_t)size;
	f->mode = (uint32_t)mode;
	return 0;
}

static int parse_link(struct pctx *c, json_t *j, size_t i, struct gs_link *l)
{
	static const char *const keys[] = {"path", "target", NULL};
	char where[48];
	const char *path, *target, *why;
	snprintf(where, sizeof(where), "links[%zu]", i);
	if (!json_is_object(j))
		return bad(c, where, "must be an object");
	int r = only_keys(c, where, j, keys);
	if (r >= 0)
		r = get_str(c, where, j, "path", false, &path);
	if (r >= 0)
		r = get_str(c, where, j, "target", false, &target);
	if (r < 0)
		return r;
	if ((why = gs_store_path_check(path)))
		return bad(c, where, "\"path\" %s: %s", path, why);
	if ((why = gs_store_target_check(path, target)))
		return bad(c, where, "%s -> %s: %s", path, target, why);
	if ((r = dup_str(c, path, &l->path)) < 0)
		return r;
	return dup_str(c, target, &l->target);
}

static int parse_lists(struct pctx *c, json_t *root, struct gs_plan *p)
{
	json_t *files, *links;
	int r = get_array(c, "", root, "files", &files);
	if (r >= 0)
		r = get_array(c, "", root, "links", &links);
	if (r < 0)
		return r;
	p->files = calloc(json_array_size(files) + 1, sizeof(*p->files));
	p->links = calloc(json_array_size(links) + 1, sizeof(*p->links));
	if (!p->files || !p->links)
		return gs_err_setx(c->err, ENOMEM, "%s: out of memory", c->name);
	p->n_files = json_array_size(files);
	p->n_links = json_array_size(links);
	for (size_t i = 0; r >= 0 && i < p->n_files; i++)
		r = parse_file(c, json_array_get(files, i), i, &p->files[i]);
	for (size_t i = 0; r >= 0 && i < p->n_links; i++)
		r = parse_link(c, json_array_get(links, i), i, &p->links[i]);
	return r;
}

static bool created_valid(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strlen(s) == 20 ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
	return end && !*end;
}

static int parse_top(struct pctx *c, json_t *root, struct gs_plan *p,
		     struct gs_manifest_info *info)
{
	static const char *const keys[] = {"schema", "driver", "arch",     "root",   "created",
					   DIGEST_KEY, "files", "links", "warnings", NULL};
	enum { SCHEMA, DRIVER, ARCH, ROOT, CREATED, DIGEST, N_STR };
	const char *v[N_STR];
	int r = only_keys(c, "", root, keys);
	for (int i = 0; r >= 0 && i < N_STR; i++)
		r = get_str(c, "", root, keys[i], false, &v[i]);
	if (r < 0)
		return r;
	if (strcmp(v[SCHEMA], GS_MANIFEST_SCHEMA))
		return bad(c, "", "schema \"%s\" is not " GS_MANIFEST_SCHEMA, v[SCHEMA]);
	if (!gs_store_version_valid(v[DRIVER]))
		return bad(c, "", "\"driver\" is not a valid version");
	if (!*v[ARCH] || has_control(v[ARCH]))
		return bad(c, "", "\"arch\" is empty or not printable");
	if (!created_valid(v[CREATED]))
		return bad(c, "", "\"created\" is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)");
	if (!is_hex64(v[DIGEST]))
		return bad(c, "", "\"" DIGEST_KEY "\" must be 64 lowercase hex digits");
	if (info)
		snprintf(info->created, sizeof(info->created), "%s", v[CREATED]);
	if ((r = dup_str(c, v[DRIVER], &p->driver)) < 0 || (r = dup_str(c, v[ARCH], &p->arch)) < 0 ||
	    (r = dup_str(c, v[ROOT], &p->root)) < 0)
		return r;
	return get_strv(c, "", root, "warnings", &p->warnings, &p->n_warnings);
}

static int check_digest(struct pctx *c, json_t *root, bool *ok)
{
	char want[65];
	int r = document_digest(root, want, c->err);
	if (r < 0)
		return r;
	*ok = !strcmp(want, json_string_value(json_object_get(root, DIGEST_KEY)));
	return 0;
}

int gs_manifest_parse(const char *text, size_t len, const char *name, struct gs_plan **out,
		      struct gs_manifest_info *info, struct gs_err *err)
{
	struct pctx c = {name, err};
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return bad(&c, "", "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root))
		return bad(&c, "", "top level must be an object");
	_cleanup_(gs_plan_freep) struct gs_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return gs_err_setx(err, ENOMEM, "%s: out of memory", name);
	struct gs_manifest_info local;
	int r = parse_top(&c, root, p, info ? info : &local);
	if (r >= 0)
		r = parse_lists(&c, root, p);
	if (r >= 0 && (r = gs_plan_check(p, err)) < 0) {
		err->code = EBADMSG;
		return gs_err_wrap(err, "%s", name);
	}
	if (r >= 0 && info)
		r = check_digest(&c, root, &info->digest_ok);
	if (r < 0)
		return r;
	*out = steal_ptr(&p);
	return 0;
}

static int read_all(int fd, const char *name, char **out, size_t *len, struct gs_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", name);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EBADMSG, "%s: not a regular file", name);
	if ((uint64_t)st.st_size > GS_MANIFEST_MAX)
		return gs_err_setx(err, EFBIG, "%s: larger than %u MiB", name, GS_MANIFEST_MAX >> 20);
	size_t cap = (size_t)st.st_size + 1, n = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return gs_err_setx(err, ENOMEM, "%s: out of memory", name);
	for (;;) {
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return gs_err_set(err, errno, "reading %s", name);
		if (got == 0)
			break;
		n += (size_t)got;
		if (n == cap)
			return gs_err_setx(err, EBADMSG, "%s: changed while being read", name);
	}
	*out = steal_ptr(&buf);
	*len = n;
	return 0;
}

int gs_manifest_read_at(int verfd, const char *name, struct gs_plan **out,
			struct gs_manifest_info *info, struct gs_err *err)
{
	_cleanup_close_ int fd =
		openat(verfd, GS_MANIFEST_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return gs_err_setx(err, EBADMSG, "%s: is a symlink, not followed", name);
	if (fd < 0)
		return gs_err_set(err, errno, "%s", name);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_all(fd, name, &text, &len, err);
	return r < 0 ? r : gs_manifest_parse(text, len, name, out, info, err);
}

/* ---- checking a staged tree against its manifest --------------------------------- */

enum expect_type { EXP_FILE, EXP_LINK, EXP_MANIFEST };

struct expect {
	const char *path;
	enum expect_type type;
	size_t index; /* into files or links */
	bool seen;
};

struct verify {
	const struct gs_plan *p;
	struct expect *v; /* sorted by strcmp: a directory's entries are contiguous */
	size_t n;
	char **lines;     /* mismatches, sorted before they are reported */
	size_t n_lines;
	bool oom;
	unsigned char *buf;
};

__attribute__((format(printf, 3, 4))) static void mismatch(struct verify *c, const char *path,
							   const char *fmt, ...)
{
	char reason[512];
	char *line = NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	char **v = realloc(c->lines, (c->n_lines + 1) * sizeof(*v));
	if (v)
		c->lines = v;
	if (!v || asprintf(&line, "%s: %s", path, reason) < 0) {
		c->oom = true;
		return;
	}
	c->lines[c->n_lines++] = line;
}

static int expect_cmp(const void *a, const void *b)
{
	return strcmp(((const struct expect *)a)->path, ((const struct expect *)b)->path);
}

static int expect_build(struct verify *c)
{
	const struct gs_plan *p = c->p;
	c->v = calloc(p->n_files + p->n_links + 1, sizeof(*c->v));
	if (!c->v)
		return -ENOMEM;
	c->v[c->n++] = (struct expect){GS_MANIFEST_NAME, EXP_MANIFEST, 0, false};
	for (size_t i = 0; i < p->n_files; i++)
		c->v[c->n++] = (struct expect){p->files[i].path, EXP_FILE, i, false};
	for (size_t i = 0; i < p->n_links; i++)
		c->v[c->n++] = (struct expect){p->links[i].path, EXP_LINK, i, false};
	qsort(c->v, c->n, sizeof(*c->v), expect_cmp);
	return 0;
}

static struct expect *expect_find(struct verify *c, const char *path)
{
	struct expect key = {.path = path};
	return bsearch(&key, c->v, c->n, sizeof(*c->v), expect_cmp);
}

/* Whether some expected path lies under directory DIR. */
static bool expect_dir(const struct verify *c, const char *dir)
{
	size_t lo = 0, hi = c->n, len = strlen(dir);
	while (lo < hi) { /* first path >= DIR */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(c->v[mid].path, dir) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < c->n && !strncmp(c->v[lo].path, dir, len); lo++)
		if (c->v[lo].path[len] == '/')
			return true;
	return false;
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "regular file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	default: return "special file";
	}
}

static int hash_file(struct verify *c, int dirfd, const char *name, char hex[65], int *err_no)
{
	struct gs_err e = GS_ERR_INIT;
	_cleanup_(gs_sha256_freep) struct gs_sha256 *h = NULL;
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		*err_no = errno;
		return -1;
	}
	if (gs_sha256_new(&h, &e) < 0)
		return -2;
	for (;;) {
		ssize_t n = read(fd, c->buf, HASH_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err_no = errno;
			return -1;
		}
		if (n == 0)
			break;
		if (gs_sha256_update(h, c->buf, (size_t)n, &e) < 0)
			return -2;
	}
	return gs_sha256_final(h, hex, &e) < 0 ? -2 : 0;
}

static int check_file(struct verify *c, int dirfd, const char *name, const char *rel,
		      const struct stat *st, const struct gs_file *f)
{
	if (!S_ISREG(st->st_mode)) {
		mismatch(c, rel, "expected a regular file, found a %s", type_name(st->st_mode));
		return 0;
	}
	if ((st->st_mode & 07777) != f->mode)
		mismatch(c, rel, "mode %04o, expected %04o", (unsigned int)(st->st_mode & 07777),
			 (unsigned int)f->mode);
	if (st->st_nlink != 1)
		mismatch(c, rel, "has %ju hard links, expected 1", (uintmax_t)st->st_nlink);
	if ((uint64_t)st->st_size != f->size) {
		mismatch(c, rel, "size %jd, expected %ju", (intmax_t)st->st_size, (uintmax_t)f->size);
		return 0;
	}
	char hex[65];
	int e = 0, r = hash_file(c, dirfd, name, hex, &e);
	if (r == -2)
		return -ENOMEM;
	if (r < 0)
		mismatch(c, rel, "cannot read: %s", strerror(e));
	else if (strcmp(hex, f->sha256))
		mismatch(c, rel, "content differs (sha256 %s, expected %s)", hex, f->sha256);
	return 0;
}

static void check_link(struct verify *c, int dirfd, const char *name, const char *rel,
		       const struct stat *st, const struct gs_link *l)
{
	char buf[GS_PATH_MAX + 2];
	if (!S_ISLNK(st->st_mode)) {
		mismatch(c, rel, "expected a symlink, found a %s", type_name(st->st_mode));
		return;
	}
	ssize_t n = readlinkat(dirfd, name, buf, sizeof(buf) - 1);
	if (n < 0) {
		mismatch(c, rel, "cannot read link: %s", strerror(errno));
		return;
	}
	buf[n] = '\0';
	if ((size_t)n >= sizeof(buf) - 1 || strcmp(buf, l->target))
		mismatch(c, rel, "link target \"%.*s\", expected \"%s\"", 200, buf, l->target);
}

static void check_manifest(struct verify *c, const char *rel, const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		mismatch(c, rel, "expected a regular file, found a %s", type_name(st->st_mode));
	else if ((st->st_mode & 07777) != 0444)
		mismatch(c, rel, "mode %04o, expected 0444", (unsigned int)(st->st_mode & 07777));
	else if (st->st_nlink != 1)
		mismatch(c, rel, "has %ju hard links, expected 1", (uintmax_t)st->st_nlink);
}

static int walk(struct verify *c, int dirfd, const char *rel, unsigned int depth);

static int check_entry(struct verify *c, int dirfd, const char *name, const char *rel,
		       unsigned int depth)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		mismatch(c, rel, "cannot stat: %s", strerror(errno));
		return 0;
	}
	struct expect *e = expect_find(c, rel);
	if (e) {
		e->seen = true;
		switch (e->type) {
		case EXP_FILE:
			return check_file(c, dirfd, name, rel, &st, &c->p->files[e->index]);
		case EXP_LINK:
			check_link(c, dirfd, name, rel, &st, &c->p->links[e->index]);
			return 0;
		case EXP_MANIFEST:
			check_manifest(c, rel, &st);
			return 0;
		}
	}
	if (!expect_dir(c, rel)) {
		mismatch(c, rel, "unexpected %s", type_name(st.st_mode));
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		mismatch(c, rel, "expected a directory, found a %s", type_name(st.st_mode));
		return 0;
	}
	if ((st.st_mode & 07777) != 0555)
		mismatch(c, rel, "mode %04o, expected 0555", (unsigned int)(st.st_mode & 07777));
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		mismatch(c, rel, "cannot open: %s", strerror(errno));
		return 0;
	}
	int r = walk(c, fd, rel, depth + 1);
	close(fd);
	return r;
}

/* Checks every entry of DIRFD (REL is its path, "" at the top). */
static int walk(struct verify *c, int dirfd, const char *rel, unsigned int depth)
{
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		mismatch(c, *rel ? rel : ".", "cannot list: %s", strerror(errno));
		return 0;
	}
	int r = 0;
	struct dirent *e;
	while (r >= 0 && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char path[GS_PATH_MAX + 512];
		snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		if (depth > WALK_DEPTH_MAX || strlen(path) > GS_PATH_MAX)
			mismatch(c, path, "unexpected entry (too deep or too long)");
		else
			r = check_entry(c, dirfd, e->d_name, path, depth);
	}
	closedir(d);
	return r;
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int verify_tree(struct verify *c, int verfd, struct gs_err *err)
{
	struct stat st;
	if (expect_build(c) < 0)
		return gs_err_setx(err, ENOMEM, "verify: out of memory");
	if (fstat(verfd, &st) < 0)
		return gs_err_set(err, errno, "verify");
	if ((st.st_mode & 07777) != 0555)
		mismatch(c, ".", "mode %04o, expected 0555", (unsigned int)(st.st_mode & 07777));
	if (walk(c, verfd, "", 0) < 0)
		return gs_err_setx(err, ENOMEM, "verify: out of memory");
	for (size_t i = 0; i < c->n; i++)
		if (!c->v[i].seen)
			mismatch(c, c->v[i].path, "missing");
	if (c->oom)
		return gs_err_setx(err, ENOMEM, "verify: out of memory");
	if (c->n_lines)
		qsort(c->lines, c->n_lines, sizeof(*c->lines), line_cmp);
	return 0;
}

int gs_manifest_check_tree(int verfd, const struct gs_plan *p, bool digest_ok,
			   void (*report_fn)(void *data, const char *line), void *data,
			   size_t *bad, struct gs_err *err)
{
	struct verify c = {.p = p};
	c.buf = malloc(HASH_CHUNK);
	int r = c.buf ? verify_tree(&c, verfd, err)
		      : gs_err_setx(err, ENOMEM, "verify: out of memory");
	if (r >= 0 && !digest_ok)
		mismatch(&c, GS_MANIFEST_NAME, "edited after staging (manifest_sha256 does not match)");
	if (r >= 0 && c.oom)
		r = gs_err_setx(err, ENOMEM, "verify: out of memory");
	for (size_t i = 0; i < c.n_lines; i++) {
		if (r >= 0 && report_fn)
			report_fn(data, c.lines[i]);
		free(c.lines[i]);
	}
	*bad = c.n_lines;
	free(c.lines);
	free(c.v);
	free(c.buf);
	return r;
}
