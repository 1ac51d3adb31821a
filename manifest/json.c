/* SPDX-License-Identifier: Apache-2.0 */
/* manifest.json: writing it, and reading it back strictly.
 *
 * The document (schema gpu-stage/manifest/v1):
 *   { "schema", "driver", "arch", "root", "created" (RFC 3339 UTC),
 *     "files": [ { "path", "source", "kind", "caps": [..], "soname" (or null),
 *                  "needed": [..], "glibc" (optional: "GLIBC_2.34", the
 *                  highest version the library needs of libc.so.6; absent
 *                  in manifests of older gpu-stage), "sha256", "size", "mode",
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
#include "gs/elfinfo.h"
#include "gs/fsx.h"
#include "gs/manifest.h"

#define DIGEST_KEY "manifest_sha256"

#define _cleanup_json_ _cleanup_(json_decrefp)


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

json_t *gs_caps_json(unsigned int caps)
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

static json_t *file_json_base(const struct gs_file *f);

static json_t *file_json(const struct gs_file *f)
{
	json_t *j = file_json_base(f);
	char v[16] = "GLIBC_";
	if (j && f->glibc) {
		gs_glibc_format(f->glibc, v + 6, sizeof(v) - 6);
		if (json_object_set_new(j, "glibc", json_string(v)) < 0) {
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

static json_t *file_json_base(const struct gs_file *f)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:s?, s:s?, s:o, s:s, s:I, s:i, s:{s:I, s:I, s:I}}",
			 "path", f->path, "source", f->source, "kind", gs_kind_name(f->kind), "caps",
			 gs_caps_json(f->caps), "soname", f->soname, "evidence", f->evidence, "needed",
			 strv_json(f->needed, f->n_needed), "sha256", f->sha256, "size",
			 (json_int_t)f->size, "mode", (int)f->mode, "src", "dev",
			 (json_int_t)f->src_dev, "ino", (json_int_t)f->src_ino, "mtime_ns",
			 (json_int_t)f->src_mtime_ns);
}

static json_t *plan_json(const struct gs_manifest *p, const char *created)
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

int gs_manifest_dump(const struct gs_manifest *p, time_t created, char **out, size_t *len,
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
	const char *key = gs_json_unknown_key(obj, keys);
	return key ? bad(c, where, "unknown key \"%s\"", key) : 0;
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
 * a failure half-way leaves something gs_manifest_free can free). */
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

/* The optional "glibc": "GLIBC_x.y[.z]". */
static int get_glibc(struct pctx *c, const char *where, json_t *obj, uint32_t *v)
{
	json_t *g = json_object_get(obj, "glibc");
	*v = 0;
	if (!g)
		return 0;
	if (!json_is_string(g) || strlen(json_string_value(g)) != json_string_length(g) ||
	    !gs_glibc_parse(json_string_value(g), v) || !*v)
		return bad(c, where, "\"glibc\" must be a version string like \"GLIBC_2.34\"");
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
	if (source[0] != '/' || gs_has_control(source))
		return bad(c, where, "\"source\" must be an absolute path");
	if (gs_kind_parse(kind, &f->kind) < 0)
		return bad(c, where, "unknown kind \"%s\"", kind);
	if (soname && (!*soname || strchr(soname, '/') || gs_has_control(soname)))
		return bad(c, where, "\"soname\" is not a file name");
	if (evidence && (!*evidence || gs_has_control(evidence)))
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
					   "needed", "glibc", "sha256", "size", "mode", "src", NULL};
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
		r = get_glibc(c, where, j, &f->glibc);
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

static int parse_lists(struct pctx *c, json_t *root, struct gs_manifest *p)
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

static int parse_top(struct pctx *c, json_t *root, struct gs_manifest *p,
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
	if (!gs_version_valid(v[DRIVER]))
		return bad(c, "", "\"driver\" is not a valid version");
	if (!*v[ARCH] || gs_has_control(v[ARCH]))
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

int gs_manifest_parse(const char *text, size_t len, const char *name, struct gs_manifest **out,
		      struct gs_manifest_info *info, struct gs_err *err)
{
	struct pctx c = {name, err};
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return bad(&c, "", "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root))
		return bad(&c, "", "top level must be an object");
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = calloc(1, sizeof(*p));
	if (!p)
		return gs_err_setx(err, ENOMEM, "%s: out of memory", name);
	struct gs_manifest_info local;
	int r = parse_top(&c, root, p, info ? info : &local);
	if (r >= 0)
		r = parse_lists(&c, root, p);
	if (r >= 0 && (r = gs_manifest_check(p, err)) < 0) {
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

/* A regular file only, read whole (gs_read_all_fd); a file whose size
 * changes while it is read is refused. */
static int read_all(int fd, const char *name, char **out, size_t *len, struct gs_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", name);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EBADMSG, "%s: not a regular file", name);
	_cleanup_free_ char *buf = NULL;
	size_t n = 0;
	int r = gs_read_all_fd(fd, GS_MANIFEST_MAX, name, &buf, &n, err);
	if (r < 0)
		return r;
	if (n != (uint64_t)st.st_size)
		return gs_err_setx(err, EBADMSG, "%s: changed while being read", name);
	*out = steal_ptr(&buf);
	*len = n;
	return 0;
}

int gs_manifest_read_at(int verfd, const char *name, struct gs_manifest **out,
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
	if (r >= 0 && info) {
		info->size = len;
		r = sha256_buf(text, len, info->file_sha256, err);
	}
	return r < 0 ? r : gs_manifest_parse(text, len, name, out, info, err);
}

