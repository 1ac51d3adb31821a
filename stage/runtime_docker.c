/* SPDX-License-Identifier: Apache-2.0 */
/* runtime configure --docker: daemon.json's "runtimes" entry NAME with
 * "path" = gpu-runtime, "default-runtime" with --set-default, and with
 * --gpus-flag the link nvidia-container-runtime-hook -> gpu-stage-hook
 * next to gpu-stage (dockerd enables `docker run --gpus` only when a
 * program of that name is on its PATH when it starts; it then adds it as
 * a prestart hook itself, with NVIDIA_VISIBLE_DEVICES from --gpus).
 * With --cdi, instead of all that: "features": {"cdi": true}, which Docker
 * 25 to 28.1 need to read CDI specs (`docker run --device
 * nvidia.com/gpu=all` from the spec `gpu-stage cdi` writes).
 *
 * The "default-runtime" that --set-default replaces is kept beside the
 * file, in FILE.gpu-stage.default (daemon.json holds no comment, and
 * dockerd refuses a key it does not know), and --undo puts it back.
 *
 * daemon.json is read with jansson (duplicate keys refused: dockerd would
 * read the last, jansson cannot keep both) and written back with every
 * other key and their order kept (jansson keeps insertion order), indented
 * as the file was: the first indented line's spaces (1 to 31; a tab gives
 * 4 spaces), one line when the file was one line, 4 spaces for a new
 * file; its final newline kept.  A file already in that form (as Go's
 * json.MarshalIndent and jansson write it) keeps every untouched byte. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "gs/cleanup.h"
#include "runtime.h"

#define DEFAULT_INDENT 4
/* the PATH a systemd service gets (dockerd's, as packaged) */
#define SERVICE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct layout {
	int indent;        /* JSON_INDENT(n); 0: one line */
	bool final_newline;
	bool tab;          /* the file was indented with tabs */
};

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

static struct layout layout_of(const char *s, size_t n)
{
	struct layout l = {.indent = DEFAULT_INDENT, .final_newline = true};
	if (!s || blank(s, n))
		return l;
	size_t end = n;
	while (end && (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\r'))
		end--;
	l.final_newline = end && s[end - 1] == '\n';
	const char *nl = memchr(s, '\n', end);
	/* a newline only at the end: the document is one line */
	if (!nl || blank(nl, (size_t)(s + end - nl))) {
		l.indent = 0;
		return l;
	}
	for (const char *p = nl; p && p < s + end; p = memchr(p + 1, '\n', (size_t)(s + end - p - 1))) {
		size_t sp = 0;
		while (p + 1 + sp < s + end && p[1 + sp] == ' ')
			sp++;
		if (p + 1 + sp < s + end && p[1 + sp] == '\t') {
			l.tab = true;
			return l;
		}
		if (sp > 0 && p + 1 + sp < s + end && p[1 + sp] != '\n') {
			l.indent = sp > JSON_MAX_INDENT ? DEFAULT_INDENT : (int)sp;
			return l;
		}
	}
	return l;
}

static int parse(const struct rt_change *c, json_t **root, struct gs_err *err)
{
	if (!c->existed || blank(c->old, c->old_len)) {
		*root = json_object();
		return *root ? 0 : gs_err_setx(err, ENOMEM, "out of memory");
	}
	json_error_t je;
	*root = json_loadb(c->old, c->old_len, JSON_REJECT_DUPLICATES, &je);
	if (!*root)
		return gs_err_setx(err, EBADMSG, "%s: line %d, column %d: %s (not changed)", c->path,
				   je.line, je.column, je.text);
	if (!json_is_object(*root))
		return gs_err_setx(err, EBADMSG, "%s: not a JSON object (not changed)", c->path);
	return 0;
}

static int dump(json_t *root, const struct layout *l, struct rt_change *c, struct gs_err *err)
{
	char *text = json_dumps(root, JSON_INDENT(l->indent));
	if (!text)
		return gs_err_setx(err, ENOMEM, "%s: cannot encode (out of memory)", c->path);
	size_t n = strlen(text);
	if (l->final_newline) {
		char *t = realloc(text, n + 2);
		if (!t) {
			free(text);
			return gs_err_setx(err, ENOMEM, "out of memory");
		}
		text = t;
		text[n++] = '\n';
		text[n] = '\0';
	}
	c->new = text;
	c->new_len = n;
	return 0;
}

/* Nothing to change: the file stays byte for byte as it is (never
 * re-encoded, never created by an --undo with nothing to take out). */
static int keep_as_is(struct rt_change *c, struct gs_err *err)
{
	if (!c->existed) {
		c->remove = true; /* removing what is not there: nothing to do */
		return 0;
	}
	if (!(c->new = malloc(c->old_len + 1)))
		return gs_err_setx(err, ENOMEM, "out of memory");
	memcpy(c->new, c->old, c->old_len);
	c->new[c->old_len] = '\0';
	c->new_len = c->old_len;
	return 0;
}

static bool is_gpu_runtime(const char *path)
{
	const char *slash = strrchr(path, '/');
	return !strcmp(slash ? slash + 1 : path, "gpu-runtime");
}

/* The "path" of runtimes[NAME], or NULL. */
static const char *entry_path(json_t *runtimes, const char *name)
{
	return json_string_value(json_object_get(json_object_get(runtimes, name), "path"));
}

static int add_runtime(const struct rt_opts *o, const char *file, json_t *root, char **what,
		       struct gs_err *err)
{
	json_t *runtimes = json_object_get(root, "runtimes");
	if (runtimes && !json_is_object(runtimes))
		return gs_err_setx(err, EBADMSG, "%s: \"runtimes\" is not an object (not changed)", file);
	json_t *have = json_object_get(runtimes, o->name);
	const char *path = entry_path(runtimes, o->name);
	if (have && path && !strcmp(path, o->runtime))
		return 0; /* there already (other keys in it, runtimeArgs, kept) */
	if (have && !o->force && !(path && is_gpu_runtime(path)))
		return gs_err_setx(err, EEXIST,
				   "%s: runtime \"%s\" is there already and runs %s, not %s (not changed; --force replaces it, or choose another --name)",
				   file, o->name, path ? path : "(no \"path\")", o->runtime);
	if (!runtimes) {
		runtimes = json_object();
		if (!runtimes || json_object_set_new(root, "runtimes", runtimes) < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
	}
	json_t *entry = json_pack("{s:s}", "path", o->runtime);
	if (!entry || json_object_set_new(runtimes, o->name, entry) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	return rt_set_text(what, err, "%s runtime %s (%s) in %s", have ? "replaced" : "added", o->name,
			   o->runtime, file);
}

/* ---- FILE.gpu-stage.default: the default --set-default replaced ------------------- */

#define SAVED_NOTE "gpu-stage runtime configure --docker --set-default replaced this default-runtime; --undo puts it back and removes this file"

/* The file, and what it says when it is gpu-stage's. */
struct saved {
	struct rt_change c;  /* path, old text */
	const char *runtime; /* the runtime whose --set-default replaced it (in DOC) */
	json_t *value;       /* the replaced "default-runtime" (in DOC); NULL: not valid */
	json_t *doc;
	json_t *put;         /* configure: the value to keep now; NULL: none */
	bool planned;        /* put, or remove the file */
	size_t at;           /* its change in the plan */
};

static void saved_clear(struct saved *s)
{
	free(s->c.path);
	free(s->c.old);
	json_decref(s->doc);
	json_decref(s->put);
}

/* Reads FILE.gpu-stage.default.  One that is not what gpu-stage writes is
 * refused, unless --force (which replaces or removes it). */
static int saved_read(const struct rt_opts *o, const char *file, struct saved *s, struct gs_err *err)
{
	if (asprintf(&s->c.path, "%s" RT_DEFAULT_SUFFIX, file) < 0) {
		s->c.path = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	int r = rt_read_old(&s->c, err);
	if (r < 0 || !s->c.existed)
		return r;
	json_error_t je;
	s->doc = json_loadb(s->c.old, s->c.old_len, JSON_REJECT_DUPLICATES, &je);
	s->runtime = json_string_value(json_object_get(s->doc, "runtime"));
	s->value = json_object_get(s->doc, "default-runtime");
	if (s->runtime && s->value)
		return 0;
	s->value = NULL;
	if (o->force)
		return 0;
	const char *verb = o->undo ? "removes" : "replaces";
	if (!s->doc)
		return gs_err_setx(err, EBADMSG,
				   "%s: line %d, column %d: %s (not what gpu-stage keeps there; not changed, --force %s it)",
				   s->c.path, je.line, je.column, je.text, verb);
	return gs_err_setx(err, EBADMSG,
			   "%s: no \"runtime\" string and \"default-runtime\" (not what gpu-stage keeps there; not changed, --force %s it)",
			   s->c.path, verb);
}

/* Configure: keep VALUE, the default NAME replaces (NULL: nothing replaced,
 * so an older file goes, lest undo put back what is no longer there). */
static int saved_keep(const struct rt_opts *o, struct saved *s, json_t *value, struct gs_err *err)
{
	s->planned = value || s->c.existed;
	if (!value)
		return 0;
	s->put = json_pack("{s:s,s:s,s:O}", "comment", SAVED_NOTE, "runtime", o->name,
			   "default-runtime", value);
	return s->put ? 0 : gs_err_setx(err, ENOMEM, "out of memory");
}

/* The planned change, into P (saved_order puts it in its place). */
static int saved_plan(struct saved *s, struct rt_plan *p, struct gs_err *err)
{
	if (!s->planned)
		return 0;
	char *text = s->put ? json_dumps(s->put, JSON_INDENT(4)) : NULL;
	if (s->put && !text)
		return gs_err_setx(err, ENOMEM, "out of memory");
	struct rt_change *c = rt_plan_add(p, RT_FILE, s->c.path, err);
	if (!c) {
		free(text);
		return -ENOMEM;
	}
	c->existed = s->c.existed;
	c->old = steal_ptr(&s->c.old);
	c->old_len = s->c.old_len;
	c->mode = s->c.mode;
	c->no_backup = true;
	c->remove = !text;
	if (text) {
		size_t n = strlen(text);
		char *t = realloc(text, n + 2);
		if (!t) {
			free(text);
			return gs_err_setx(err, ENOMEM, "out of memory");
		}
		t[n] = '\n';
		t[n + 1] = '\0';
		c->new = t;
		c->new_len = n + 1;
	}
	s->at = p->n - 1;
	return 0;
}

/* A file written goes first, before the daemon.json that needs it (an
 * interrupted configure then leaves a file undo ignores); one removed
 * goes after it. */
static void saved_order(const struct saved *s, struct rt_plan *p)
{
	if (!s->planned || !s->put)
		return;
	struct rt_change c = p->ch[s->at];
	memmove(p->ch + 1, p->ch, s->at * sizeof(*p->ch));
	p->ch[0] = c;
}

static int set_default(const struct rt_opts *o, const char *file, json_t *root, struct rt_plan *p,
		       struct saved *saved, struct gs_err *err)
{
	/* a reference of our own: setting the new value frees the old one,
	 * which CUR points into (the note below names it) */
	_cleanup_(gs_json_decrefp) json_t *have = json_incref(json_object_get(root, "default-runtime"));
	const char *cur = json_string_value(have);
	if (cur && !strcmp(cur, o->name))
		return 0;
	/* runc is dockerd's own default: naming it says nothing undo would lose */
	if (have && !o->force && !(cur && !strcmp(cur, "runc")))
		return gs_err_setx(err, EEXIST,
				   "%s: \"default-runtime\" is %s%s%s (not changed; --force replaces it)", file,
				   cur ? "\"" : "", cur ? cur : "not a string", cur ? "\"" : "");
	int r = saved_read(o, file, saved, err);
	if (r < 0)
		return r;
	if (saved_keep(o, saved, have, err) < 0)
		return -ENOMEM;
	if (json_object_set_new(root, "default-runtime", json_string(o->name)) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (!have)
		return rt_plan_note(p, err, "\"default-runtime\" is now \"%s\"", o->name);
	return rt_plan_note(p, err, "\"default-runtime\" is now \"%s\" (was %s%s%s; kept in %s for --undo)",
			    o->name, cur ? "\"" : "", cur ? cur : "not a string", cur ? "\"" : "",
			    saved->c.path);
}

/* Undo: "default-runtime" naming NAME gets back the value SAVED kept for
 * NAME (in its place in the file), or goes; SAVED goes when it is NAME's. */
static int undo_default(const struct rt_opts *o, json_t *root, struct saved *saved,
			struct rt_plan *p, struct gs_err *err)
{
	const char *def = json_string_value(json_object_get(root, "default-runtime"));
	bool named = def && !strcmp(def, o->name);
	bool ours = saved->c.existed && (!saved->value || !strcmp(saved->runtime, o->name));
	saved->planned = ours;
	if (!named)
		return ours && saved->value
			       ? rt_plan_note(p, err, "\"default-runtime\" is not %s now: left as it is (%s is removed)",
					      o->name, saved->c.path)
			       : 0;
	if (!ours || !saved->value) {
		json_object_del(root, "default-runtime");
		return 0;
	}
	if (json_object_set(root, "default-runtime", saved->value) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	const char *back = json_string_value(saved->value);
	return rt_plan_note(p, err, "\"default-runtime\" is %s%s%s again (from %s)", back ? "\"" : "",
			    back ? back : "the value it had", back ? "\"" : "", saved->c.path);
}

static int remove_runtime(const struct rt_opts *o, const char *file, json_t *root, char **what,
			  struct saved *saved, struct rt_plan *p, struct gs_err *err)
{
	json_t *runtimes = json_object_get(root, "runtimes");
	if (runtimes && !json_is_object(runtimes))
		return gs_err_setx(err, EBADMSG, "%s: \"runtimes\" is not an object (not changed)", file);
	if (!json_object_get(runtimes, o->name))
		return 0;
	const char *path = entry_path(runtimes, o->name);
	if (!o->force && !(path && is_gpu_runtime(path)))
		return gs_err_setx(err, EEXIST,
				   "%s: runtime \"%s\" runs %s, not gpu-runtime: not gpu-stage's, left alone (--force removes it)",
				   file, o->name, path ? path : "(no \"path\")");
	int r = rt_set_text(what, err, "removed runtime %s (%s) from %s", o->name,
			    path ? path : "?", file);
	if (r >= 0)
		r = saved_read(o, file, saved, err);
	if (r < 0)
		return r;
	json_object_del(runtimes, o->name);
	if (json_object_size(runtimes) == 0)
		json_object_del(root, "runtimes");
	return undo_default(o, root, saved, p, err);
}

/* ---- "features": {"cdi": true} (--cdi) ----------------------------------------------- */

/* FEATURES (NULL when absent) and its "cdi" (NULL when absent); an
 * object that is not one, or a "cdi" that is not a boolean (dockerd would
 * not start), is refused. */
static int features_cdi(const char *file, json_t *root, json_t **features, json_t **cdi,
			struct gs_err *err)
{
	*features = json_object_get(root, "features");
	*cdi = NULL;
	if (*features && !json_is_object(*features))
		return gs_err_setx(err, EBADMSG, "%s: \"features\" is not an object (not changed)", file);
	*cdi = json_object_get(*features, "cdi");
	if (*cdi && !json_is_boolean(*cdi))
		return gs_err_setx(err, EBADMSG, "%s: \"features\": \"cdi\" is not true or false (not changed)",
				   file);
	return 0;
}

/* Docker 25 to 28.1 read CDI specs only with this feature on (28.2 turns
 * it on by default); an explicit false is the admin's, kept without --force. */
static int enable_cdi(const struct rt_opts *o, const char *file, json_t *root, char **what,
		      struct gs_err *err)
{
	json_t *features, *cdi;
	int r = features_cdi(file, root, &features, &cdi, err);
	if (r < 0 || json_is_true(cdi))
		return r;
	if (cdi && !o->force)
		return gs_err_setx(err, EEXIST,
				   "%s: \"features\": \"cdi\" is false (not changed; --force sets it to true)",
				   file);
	if (!features) {
		features = json_object();
		if (!features || json_object_set_new(root, "features", features) < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
	}
	if (json_object_set_new(features, "cdi", json_true()) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	return rt_set_text(what, err, "%s CDI (\"features\": {\"cdi\": true}) in %s",
			   cdi ? "turned on" : "enabled", file);
}

/* Removes "cdi": true (and "features" when nothing else is in it); a
 * false is left alone. */
static int disable_cdi(const char *file, json_t *root, char **what, struct gs_err *err)
{
	json_t *features, *cdi;
	int r = features_cdi(file, root, &features, &cdi, err);
	if (r < 0 || !json_is_true(cdi))
		return r;
	json_object_del(features, "cdi");
	if (json_object_size(features) == 0)
		json_object_del(root, "features");
	return rt_set_text(what, err, "removed \"features\": {\"cdi\": true} from %s", file);
}

/* What --cdi says: the change, or that there is none, and (configuring)
 * that the spec comes from `gpu-stage cdi`, in a directory dockerd reads. */
static int cdi_texts(const struct rt_opts *o, const char *file, json_t *root, const char *what,
		     struct rt_plan *p, struct gs_err *err)
{
	int r = rt_set_text(&p->unchanged, err, "%s %s \"features\": {\"cdi\": true}", file,
			    o->undo ? "has no" : "already has");
	if (r >= 0)
		r = rt_set_text(&p->summary, err, "%s", what ? what : "");
	if (r < 0 || o->undo)
		return r;
	r = rt_plan_note(p, err,
			 "docker run --device nvidia.com/gpu=all needs the CDI spec: write it with `gpu-stage cdi` (/etc/cdi/nvidia.com-gpu.json)");
	if (r >= 0 && json_object_get(root, "cdi-spec-dirs"))
		r = rt_plan_note(p, err,
				 "%s sets \"cdi-spec-dirs\": dockerd reads specs there only, so write the spec into one of them (cdi_dir in gpu-stage's configuration, or gpu-stage cdi --output)",
				 file);
	return r;
}

/* ---- nvidia-container-runtime-hook ------------------------------------------------ */

/* Is the link at PATH gpu-stage's (-> gpu-stage-hook next to it, or O->hook)? */
static bool link_is_ours(const struct rt_opts *o, const char *path, char *target, size_t size)
{
	ssize_t n = readlink(path, target, size - 1);
	if (n < 0 || (size_t)n >= size - 1)
		return false;
	target[n] = '\0';
	return !strcmp(target, "gpu-stage-hook") || !strcmp(target, o->hook);
}

/* Whether DIR is one of the directories of the ':'-list LIST. */
static bool on_path(const char *list, const char *dir)
{
	size_t n = strlen(dir);
	for (const char *p = list; p; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL)
		if (!strncmp(p, dir, n) && (p[n] == ':' || p[n] == '\0'))
			return true;
	return false;
}

/* Other programs of that name on dockerd's PATH: what the link shadows, or
 * what shadows it. */
static int note_shadows(const struct rt_opts *o, const char *link, struct rt_plan *p,
			struct gs_err *err)
{
	const char *env = getenv("PATH");
	_cleanup_free_ char *dirs = NULL;
	if (asprintf(&dirs, "%s:%s", SERVICE_PATH, env ? env : "") < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	bool before = true; /* still before BINDIR in the service's PATH */
	if (!on_path(SERVICE_PATH, o->bindir)) {
		int r = rt_plan_note(p, err,
				     "%s is not on the PATH of a packaged dockerd (" SERVICE_PATH "): `docker run --gpus` will not find %s there; link it into /usr/local/bin, or set PATH in dockerd's service",
				     o->bindir, RT_NVIDIA_HOOK);
		if (r < 0)
			return r;
	}
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (!strcmp(d, o->bindir)) {
			before = false;
			continue;
		}
		_cleanup_free_ char *other = NULL;
		if (d[0] != '/' || asprintf(&other, "%s/" RT_NVIDIA_HOOK, d) < 0)
			continue;
		struct stat a, b;
		if (stat(other, &a) < 0 || (stat(link, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev))
			continue;
		if (access(other, X_OK) < 0 || strstr(d, o->bindir) == d)
			continue;
		int r = rt_plan_note(p, err,
				     before ? "%s comes before %s on the PATH of a packaged dockerd: `docker run --gpus` would run it, not gpu-stage-hook"
					    : "%s is shadowed by %s on dockerd's PATH (NVIDIA's hook, if it is theirs: `docker run --gpus` now runs gpu-stage-hook)",
				     before ? other : link, before ? link : other);
		if (r < 0)
			return r;
		if (p->n_notes >= 4)
			break;
	}
	return 0;
}

static int plan_link(const struct rt_opts *o, struct rt_plan *p, bool *added, struct gs_err *err)
{
	_cleanup_free_ char *link = NULL;
	if (asprintf(&link, "%s/" RT_NVIDIA_HOOK, o->bindir) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	char target[PATH_MAX];
	struct stat st;
	bool there = lstat(link, &st) == 0;
	if (!there && errno != ENOENT)
		return gs_err_set(err, errno, "%s", link);
	bool ours = there && S_ISLNK(st.st_mode) && link_is_ours(o, link, target, sizeof(target));
	if (o->undo && there && !ours)
		return rt_plan_note(p, err, "%s is not gpu-stage's link: left alone", link);
	if (o->undo && !there)
		return 0;
	if (!o->undo && there && !ours)
		return gs_err_setx(err, EEXIST,
				   "%s exists and is not gpu-stage's link (NVIDIA Container Toolkit's hook?): not replaced; remove it first, or leave --gpus to it",
				   link);
	/* checked before anything is written: daemon.json is written first */
	if (!o->undo && !there && access(o->bindir, W_OK) < 0)
		return gs_err_set(err, errno, "%s: the link %s cannot be made there (nothing written)",
				  o->bindir, RT_NVIDIA_HOOK);
	struct rt_change *c = rt_plan_add(p, RT_LINK, link, err);
	if (!c || !(c->target = strdup(ours ? target : "gpu-stage-hook")))
		return gs_err_setx(err, ENOMEM, "out of memory");
	c->existed = there;
	c->remove = o->undo;
	*added = o->undo ? there : !there;
	return o->undo ? 0 : note_shadows(o, link, p, err);
}

int rt_plan_docker(const struct rt_opts *o, struct rt_plan *p, struct gs_err *err)
{
	const char *file = o->config ? o->config : RT_DOCKER_DEFAULT;
	_cleanup_free_ char *real = realpath(file, NULL); /* a symlinked daemon.json: its target */
	struct rt_change *c = rt_plan_add(p, RT_FILE, real ? real : file, err);
	if (!c)
		return -ENOMEM;
	int r = rt_read_old(c, err);
	_cleanup_(gs_json_decrefp) json_t *root = NULL;
	if (r >= 0)
		r = parse(c, &root, err);
	if (r < 0)
		return r;
	struct layout l = layout_of(c->old, c->old_len);
	_cleanup_free_ char *what = NULL;
	_cleanup_(saved_clear) struct saved saved = {0};
	_cleanup_(gs_json_decrefp) json_t *before = json_deep_copy(root);
	if (!before)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (o->cdi)
		r = o->undo ? disable_cdi(c->path, root, &what, err)
			    : enable_cdi(o, c->path, root, &what, err);
	else
		r = o->undo ? remove_runtime(o, c->path, root, &what, &saved, p, err)
			    : add_runtime(o, c->path, root, &what, err);
	if (r >= 0 && o->set_default && !o->undo)
		r = set_default(o, c->path, root, p, &saved, err);
	if (r >= 0)
		r = json_equal(before, root) ? keep_as_is(&p->ch[0], err) : dump(root, &l, &p->ch[0], err);
	if (r >= 0)
		r = saved_plan(&saved, p, err);
	bool linked = false;
	if (r >= 0 && !o->cdi && (o->gpus_flag || o->undo))
		r = plan_link(o, p, &linked, err);
	if (r < 0)
		return r;
	c = &p->ch[0]; /* rt_plan_add may have moved it */
	if (l.tab && !rt_change_is_noop(c))
		rt_plan_note(p, err, "%s was indented with tabs: written with %d spaces", c->path,
			     DEFAULT_INDENT);
	p->after = "restart dockerd (systemctl restart docker) for it to take effect";
	if (o->cdi)
		return cdi_texts(o, c->path, root, what, p, err);
	r = rt_set_text(&p->unchanged, err, "%s %s runtime %s", c->path,
			o->undo ? "has no gpu-stage" : "already has", o->name);
	const char *link_what = !linked ? ""
				: o->undo ? "removed the link " RT_NVIDIA_HOOK
					  : "linked " RT_NVIDIA_HOOK " -> gpu-stage-hook for docker run --gpus";
	if (r >= 0)
		r = rt_set_text(&p->summary, err, "%s%s%s%s", what ? what : "",
				o->set_default && !o->undo ? ", made it the default runtime" : "",
				what && linked ? ", " : "", link_what);
	if (r >= 0 && !p->summary[0])
		r = rt_set_text(&p->summary, err, "updated %s", c->path);
	saved_order(&saved, p);
	return r;
}
