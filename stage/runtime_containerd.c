/* SPDX-License-Identifier: Apache-2.0 */
/* runtime configure --containerd: a CRI runtime handler NAME (runtime_type
 * io.containerd.runc.v2, options.BinaryName = gpu-runtime), in one of two
 * places:
 *
 * - a main config.toml that configures the CRI plugin itself
 *   (io.containerd.grpc.v1.cri; Debian 12's default file does) gets it as
 *   gpu-stage's marked block at its end (runtime_cblock.c): containerd 1.6
 *   merges an imported file by replacing each whole plugin section it names
 *   (containerd issue 5837), so a drop-in there would drop those settings;
 * - any other gets the drop-in DIR/conf.d/gpu-stage.toml, DIR being the
 *   main config's directory (/etc/containerd), and the main file's
 *   top-level `imports = [...]` naming it (the line added, or the path
 *   added to it); the drop-in declares containerd's own "runc" handler
 *   again (a runtimes table replaces the default one).  A file it already
 *   imports that configures the CRI plugin is refused (in both cases: its
 *   section would replace the main file's and the block's).
 *
 * There is no C TOML library in Debian 12, so the main file is read line by
 * line, and refused unless it can be read with certainty: `version = 2`
 * (a file without it is read as version 1, whose plugin names differ), no
 * multi-line string, an `imports` that is a one-line array of plain
 * strings.  --undo takes out the block and the import (and removes the
 * drop-in): each file as it was. */
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gs/cleanup.h"
#include "runtime.h"

#define DROPIN_DIR "conf.d"
#define DROPIN_NAME "gpu-stage.toml"
#define CRI "io.containerd.grpc.v1.cri"
#define MARK "# gpu-stage" /* on an imports line gpu-stage added */
#define DROPIN_HEAD "# Written by `gpu-stage runtime configure --containerd`; removed by --undo.\n"
#define MAX_IMPORTS 64

struct span {
	size_t a, b; /* [a, b) in the text */
};

/* What the main file says, as far as it matters here. */
struct main_scan {
	int version;           /* 0: no version key */
	size_t version_end;    /* offset after the version line */
	int imports_line;      /* 0: none */
	struct span imports;   /* the whole imports line, with its newline */
	size_t open;           /* offset of its '[' */
	struct span item[MAX_IMPORTS]; /* each string, quotes included */
	size_t n_items;
	bool marked;           /* the line ends with MARK */
	int cri_line;          /* a line that configures the CRI plugin */
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

long rt_toml_comment_at(const char *t, size_t s, size_t e)
{
	char q = 0;
	for (size_t i = s; i < e; i++) {
		if (q) {
			if (t[i] == '\\' && q == '"')
				return -1;
			if (t[i] == q)
				q = 0;
		} else if (t[i] == '"' || t[i] == '\'') {
			q = t[i];
		} else if (t[i] == '#') {
			return (long)i;
		}
	}
	return q ? -1 : (long)e;
}

/* The imports array at T[P, E): strings separated by commas, ']' last. */
static int scan_imports(const char *t, size_t p, size_t e, struct main_scan *m)
{
	if (p >= e || t[p] != '[')
		return -1;
	m->open = p++;
	for (;;) {
		while (p < e && is_ws(t[p]))
			p++;
		if (p < e && t[p] == ']')
			break;
		if (p >= e || (t[p] != '"' && t[p] != '\'') || m->n_items >= MAX_IMPORTS)
			return -1;
		char q = t[p];
		const char *close = memchr(t + p + 1, q, e - p - 1);
		if (!close)
			return -1;
		m->item[m->n_items++] = (struct span){p, (size_t)(close - t) + 1};
		p = (size_t)(close - t) + 1;
		while (p < e && is_ws(t[p]))
			p++;
		if (p < e && t[p] == ',') {
			p++;
			continue;
		}
		if (p < e && t[p] == ']')
			break;
		return -1;
	}
	for (p++; p < e; p++)
		if (!is_ws(t[p]))
			return -1;
	return 0;
}

/* One key = value line of the top level. */
static int top_key(const char *t, size_t s, size_t e, size_t nl, size_t cend,
		   struct main_scan *m, int line)
{
	const char *eq = memchr(t + s, '=', e - s);
	if (!eq)
		return -1;
	size_t k1 = (size_t)(eq - t);
	while (k1 > s && is_ws(t[k1 - 1]))
		k1--;
	size_t v = (size_t)(eq - t) + 1;
	while (v < e && is_ws(t[v]))
		v++;
	size_t klen = k1 - s;
	bool quoted = klen >= 2 && (t[s] == '"' || t[s] == '\'') && t[k1 - 1] == t[s];
	const char *key = t + s + quoted;
	klen -= quoted ? 2 : 0;
	if (klen == 7 && !memcmp(key, "version", 7)) {
		m->version = (int)strtol(t + v, NULL, 10);
		m->version_end = nl;
		if (e - v != 1 || t[v] < '0' || t[v] > '9')
			return -1;
	} else if (klen == 7 && !memcmp(key, "imports", 7)) {
		if (m->imports_line)
			return -1;
		m->imports_line = line;
		m->imports = (struct span){s, nl};
		if (scan_imports(t, v, e, m) < 0)
			return -1;
		size_t ml = strlen(MARK), ce = nl;
		while (ce > cend && (t[ce - 1] == '\n' || is_ws(t[ce - 1])))
			ce--;
		m->marked = ce - cend == ml && !memcmp(t + cend, MARK, ml);
	}
	return 0;
}

static int scan_main(const char *path, const char *t, size_t len, struct main_scan *m,
		     struct gs_err *err)
{
	*m = (struct main_scan){0};
	bool top = true;
	int line = 0;
	for (size_t s = 0; s < len; line++) {
		const char *nlp = memchr(t + s, '\n', len - s);
		size_t nl = nlp ? (size_t)(nlp - t) + 1 : len, b = s;
		while (b < nl && is_ws(t[b]))
			b++;
		long c = b < nl && t[b] != '\n' && t[b] != '#' ? rt_toml_comment_at(t, b, nlp ? nl - 1 : nl) : -2;
		if (c != -2) {
			if (c < 0 || memmem(t + b, nl - b, "\"\"\"", 3) || memmem(t + b, nl - b, "'''", 3))
				return gs_err_setx(err, EBADMSG,
						   "%s: line %d: a string this reader cannot be certain of (escapes, multi-line): not changed",
						   path, line + 1);
			size_t e = (size_t)c;
			while (e > b && is_ws(t[e - 1]))
				e--;
			if (!m->cri_line && memmem(t + b, e - b, CRI, strlen(CRI)))
				m->cri_line = line + 1;
			if (t[b] == '[')
				top = false;
			else if (top && top_key(t, b, e, nl, (size_t)c, m, line + 1) < 0)
				return gs_err_setx(err, EBADMSG,
						   "%s: line %d: not a one-line value this reader can be certain of (imports must be a one-line array of strings): not changed",
						   path, line + 1);
		}
		s = nl;
	}
	if (m->version != 2)
		return gs_err_setx(err, EBADMSG,
				   "%s: %s: containerd reads it as a version %d file, whose plugin names differ; add `version = 2` if it is one (not changed)",
				   path, m->version ? "not version 2" : "no `version = 2`",
				   m->version ? m->version : 1);
	return 0;
}

/* ---- the CRI section check ----------------------------------------------------------- */

/* LOST: what containerd 1.6's merge would lose, "the drop-in X would drop
 * those settings" or "its CRI section would replace the main file's". */
static int cri_refusal(const char *file, int line, const char *lost, struct gs_err *err)
{
	return gs_err_setx(err, EEXIST,
			   "%s: line %d configures the CRI plugin (" CRI "), and containerd 1.6 replaces a whole plugin section with an imported one: %s (not changed; add the runtime to that section by hand, see gpu-stage(1), RUNTIME CONFIGURE)",
			   file, line, lost);
}

/* PATH is DROPIN, in any spelling ("conf.d//gpu-stage.toml", a glob, a
 * link): the same file. */
static bool is_dropin(const char *path, const char *dropin, const struct stat *ds)
{
	struct stat st;
	if (!strcmp(path, dropin))
		return true;
	return ds && stat(path, &st) == 0 && st.st_dev == ds->st_dev && st.st_ino == ds->st_ino;
}

/* Whether an import of M names DROPIN in a spelling of its own (a glob,
 * "//", ".."), expanded relative to DIR. */
static bool imports_other_spelling(const char *dir, const char *text, const struct main_scan *m,
				   const char *dropin)
{
	struct stat ds;
	if (stat(dropin, &ds) < 0)
		return false;
	bool found = false;
	for (size_t i = 0; i < m->n_items && !found; i++) {
		_cleanup_free_ char *pat = NULL;
		const char *s = text + m->item[i].a + 1;
		int n = (int)(m->item[i].b - m->item[i].a - 2);
		glob_t g;
		if (asprintf(&pat, "%s%s%.*s", s[0] == '/' ? "" : dir, s[0] == '/' ? "" : "/", n, s) < 0 ||
		    glob(pat, 0, NULL, &g) != 0)
			continue;
		for (size_t k = 0; k < g.gl_pathc && !found; k++)
			found = is_dropin(g.gl_pathv[k], dropin, &ds);
		globfree(&g);
	}
	return found;
}

/* Every file the main one imports (globs expanded, relative to its
 * directory) must not name the CRI plugin either; ours (DROPIN, "" for
 * none) is skipped, however the imports spell it. */
static int check_imports(const char *main_path, const char *dir, const char *text,
			 const struct main_scan *m, const char *dropin, const char *lost,
			 struct gs_err *err)
{
	struct stat dst;
	const struct stat *ds = dropin[0] && stat(dropin, &dst) == 0 ? &dst : NULL;
	for (size_t i = 0; i < m->n_items; i++) {
		_cleanup_free_ char *pat = NULL;
		const char *s = text + m->item[i].a + 1;
		int n = (int)(m->item[i].b - m->item[i].a - 2);
		if (asprintf(&pat, "%s%s%.*s", s[0] == '/' ? "" : dir, s[0] == '/' ? "" : "/", n, s) < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
		glob_t g;
		if (glob(pat, 0, NULL, &g) != 0)
			continue;
		int r = 0;
		for (size_t k = 0; r == 0 && k < g.gl_pathc; k++) {
			if (is_dropin(g.gl_pathv[k], dropin, ds))
				continue;
			struct rt_change c = {.path = g.gl_pathv[k]};
			if (rt_read_old(&c, err) < 0) {
				r = gs_err_wrap(err, "imported by the containerd config");
				break;
			}
			struct main_scan sub;
			struct gs_err e2 = GS_ERR_INIT;
			_cleanup_free_ char *label = NULL;
			if (asprintf(&label, "%s (imported by %s)", c.path, main_path) < 0)
				r = gs_err_setx(err, ENOMEM, "out of memory");
			else if (c.existed && scan_main(c.path, c.old, c.old_len, &sub, &e2) >= 0 && sub.cri_line)
				r = cri_refusal(label, sub.cri_line, lost, err);
			else if (c.existed && memmem(c.old, c.old_len, CRI, strlen(CRI)))
				r = cri_refusal(label, 0, lost, err);
			free(c.old);
		}
		globfree(&g);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the two files ----------------------------------------------------------------- */

/* What gpu-stage's drop-in holds: the handlers of every --name configured
 * so far (one file: containerd 1.6 lets an imported plugin section replace
 * another's whole, so two drop-ins would drop each other's handlers), in
 * the order they came, and the default one of them, if any. */
#define DROPIN_HANDLERS_MAX 16
#define HANDLER_RUNTIMES "[plugins.\"" CRI "\".containerd.runtimes."
#define DROPIN_DEFAULT "  default_runtime_name = \""
#define DROPIN_BINARY "  BinaryName = \""

struct dropin_set {
	struct {
		char *name, *binary;
	} h[DROPIN_HANDLERS_MAX];
	size_t n;
	char *def; /* NULL: no default set here */
};

static void dropin_set_clear(struct dropin_set *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->h[i].name);
		free(d->h[i].binary);
	}
	free(d->def);
	*d = (struct dropin_set){0};
}

static int dropin_text(const struct dropin_set *d, char **out, struct gs_err *err)
{
	_cleanup_fclose_ FILE *f = NULL;
	size_t len = 0;
	*out = NULL;
	if (!(f = open_memstream(out, &len)))
		return gs_err_setx(err, ENOMEM, "out of memory");
	fputs(DROPIN_HEAD
	      "# containerd 1.6 replaces a whole plugin section with an imported one, so\n"
	      "# containerd's own runc handler is declared again here.\n"
	      "version = 2\n\n", f);
	if (d->def)
		fprintf(f, "[plugins.\"" CRI "\".containerd]\n" DROPIN_DEFAULT "%s\"\n\n", d->def);
	fputs(HANDLER_RUNTIMES "runc]\n  runtime_type = \"io.containerd.runc.v2\"\n", f);
	for (size_t i = 0; i < d->n; i++)
		fprintf(f, "\n" HANDLER_RUNTIMES "%s]\n  runtime_type = \"io.containerd.runc.v2\"\n\n"
			   HANDLER_RUNTIMES "%s.options]\n" DROPIN_BINARY "%s\"\n",
			d->h[i].name, d->h[i].name, d->h[i].binary);
	if (fflush(f) != 0 || ferror(f))
		return gs_err_setx(err, ENOMEM, "out of memory");
	return 0;
}

/* The quoted value after PREFIX on the line at T (to E), malloc'd; NULL
 * when the line is not PREFIX"VALUE" or out of memory. */
static char *line_value(const char *t, const char *e, const char *prefix, const char *close)
{
	size_t n = strlen(prefix), c = strlen(close);
	if ((size_t)(e - t) < n + c || memcmp(t, prefix, n) || memcmp(e - c, close, c))
		return NULL;
	return strndup(t + n, (size_t)(e - c - t - n));
}

/* Reads gpu-stage's drop-in TEXT into D.  1 when TEXT is exactly what
 * gpu-stage writes for D, 0 when it was edited (D then empty), -ENOMEM. */
static int dropin_read(const char *text, size_t len, struct dropin_set *d)
{
	*d = (struct dropin_set){0};
	const char *end = text + len;
	for (const char *t = text; t < end;) {
		const char *e = memchr(t, '\n', (size_t)(end - t));
		if (!e)
			e = end;
		char *v = NULL;
		if (!d->def && (v = line_value(t, e, DROPIN_DEFAULT, "\""))) {
			d->def = v;
		} else if ((v = line_value(t, e, HANDLER_RUNTIMES, ".options]"))) {
			const char *b = e < end ? e + 1 : end, *be = memchr(b, '\n', (size_t)(end - b));
			char *bin = line_value(b, be ? be : end, DROPIN_BINARY, "\"");
			if (!bin || d->n == DROPIN_HANDLERS_MAX) {
				free(v);
				free(bin);
				break; /* not ours as written: the comparison below says so */
			}
			d->h[d->n].name = v;
			d->h[d->n++].binary = bin;
		}
		t = e < end ? e + 1 : end;
	}
	_cleanup_free_ char *again = NULL;
	struct gs_err ignored = GS_ERR_INIT;
	if (dropin_text(d, &again, &ignored) < 0) {
		dropin_set_clear(d);
		return -ENOMEM;
	}
	if (strlen(again) == len && !memcmp(again, text, len))
		return 1;
	dropin_set_clear(d);
	return 0;
}

static bool dropin_holds(const struct dropin_set *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->h[i].name, name))
			return true;
	return false;
}

/* Puts handler NAME (BINARY) into D, or takes it out (BINARY NULL). */
static int dropin_set_handler(struct dropin_set *d, const char *name, const char *binary,
			      struct gs_err *err)
{
	size_t i = 0;
	while (i < d->n && strcmp(d->h[i].name, name))
		i++;
	if (!binary) {
		if (i == d->n)
			return 0;
		free(d->h[i].name);
		free(d->h[i].binary);
		memmove(&d->h[i], &d->h[i + 1], (d->n - i - 1) * sizeof(d->h[0]));
		d->n--;
		if (d->def && !strcmp(d->def, name)) {
			free(d->def);
			d->def = NULL;
		}
		return 0;
	}
	if (i == DROPIN_HANDLERS_MAX)
		return gs_err_setx(err, E2BIG, "gpu-stage's drop-in holds %d handlers already", DROPIN_HANDLERS_MAX);
	char *b = strdup(binary), *n = i == d->n ? strdup(name) : NULL;
	if (!b || (i == d->n && !n)) {
		free(b);
		free(n);
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	if (i == d->n) {
		d->h[d->n].name = n;
		d->h[d->n++].binary = b;
	} else {
		free(d->h[i].binary);
		d->h[i].binary = b;
	}
	return 0;
}

/* The main file as gpu-stage creates it when there is none. */
static int fresh_main(const char *dropin, char **out)
{
	return asprintf(out,
			"# Written by `gpu-stage runtime configure --containerd` (there was no\n"
			"# file): containerd's defaults hold for everything it does not set.\n"
			"version = 2\nimports = [\"%s\"] " MARK "\n",
			dropin);
}

static bool item_is(const char *t, const struct span *s, const char *path)
{
	size_t n = s->b - s->a - 2;
	return strlen(path) == n && !memcmp(t + s->a + 1, path, n);
}

/* The main file's text as planned so far (gpu-stage's block taken out). */
struct text {
	const char *t;
	size_t len;
};

/* C->new: X with [A, B) replaced by INS. */
static int splice(struct rt_change *c, const struct text *x, size_t a, size_t b, const char *ins,
		  struct gs_err *err)
{
	size_t n = strlen(ins), len = x->len - (b - a) + n;
	char *t = malloc(len + 1);
	if (!t)
		return gs_err_setx(err, ENOMEM, "out of memory");
	memcpy(t, x->t, a);
	memcpy(t + a, ins, n);
	memcpy(t + a + n, x->t + b, x->len - b);
	t[len] = '\0';
	c->new = t;
	c->new_len = len;
	return 0;
}

static int add_import(struct rt_change *c, const struct text *x, const struct main_scan *m,
		      const char *dropin, struct gs_err *err)
{
	_cleanup_free_ char *ins = NULL;
	size_t at;
	if (!m->imports_line) {
		at = m->version_end;
		/* after a last line with no newline: the line goes after a newline
		 * and ends the file without one, as the file did (undo takes both) */
		bool last = at && x->t[at - 1] != '\n';
		if (asprintf(&ins, "%simports = [\"%s\"] " MARK "%s", last ? "\n" : "", dropin,
			     last ? "" : "\n") < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
	} else {
		at = m->n_items ? m->item[m->n_items - 1].b : m->open + 1;
		if (asprintf(&ins, "%s\"%s\"", m->n_items ? ", " : "", dropin) < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return splice(c, x, at, at, ins, err);
}

static int remove_import(struct rt_change *c, const struct text *x, const struct main_scan *m,
			 size_t k, struct gs_err *err)
{
	if (m->n_items == 1 && m->marked) { /* the line gpu-stage added */
		size_t a = m->imports.a;
		if (m->imports.b == x->len && a > 0 && x->t[x->len - 1] != '\n')
			a--; /* the file's last line, unterminated: with the newline before it */
		return splice(c, x, a, m->imports.b, "", err);
	}
	if (k > 0) /* from the end of the one before */
		return splice(c, x, m->item[k - 1].b, m->item[k].b, "", err);
	if (m->n_items > 1) /* up to the next one */
		return splice(c, x, m->item[0].a, m->item[1].a, "", err);
	return splice(c, x, m->item[0].a, m->item[0].b, "", err);
}

/* A main file that configures the CRI plugin: the handler goes into it, as
 * gpu-stage's marked block (runtime_cblock.c), since a drop-in would drop
 * those settings; one that imports gpu-stage's drop-in (an earlier
 * configure, before the file had its CRI section) is refused. */
static int plan_block(const struct rt_opts *o, struct rt_change *c, const struct text *x,
		      const char *dir, const struct main_scan *m, size_t k,
		      const struct rt_cblock *info, struct rt_plan *p, struct gs_err *err)
{
	if (k < m->n_items)
		return gs_err_setx(err, EEXIST,
				   "%s: line %d imports gpu-stage's drop-in, and line %d configures the CRI plugin (" CRI "), whose settings that drop-in replaces (containerd 1.6 replaces a whole plugin section with an imported one): run `gpu-stage runtime configure --containerd --undo`, then configure again (not changed)",
				   c->path, m->imports_line, m->cri_line);
	_cleanup_free_ char *lost = NULL;
	if (asprintf(&lost, "its CRI section would replace the one in %s, the runtime handler with it", c->path) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	int r = check_imports(c->path, dir, x->t, m, "", lost, err);
	if (r < 0)
		return r;
	return rt_cblock_add(o, c->path, x->t, x->len, info, p, &c->new, &c->new_len, err);
}

/* C->new: the main file.  *BLOCK: the handler goes into it (plan_block). */
/* TOML allows no control character but tab, and a carriage return only
 * before a newline: a file with one is refused (containerd refuses it
 * too), never read past it (a NUL would end a kept line early). */
static int toml_chars_ok(const char *file, const char *t, size_t len, struct gs_err *err)
{
	int line = 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)t[i];
		if (ch == '\n')
			line++;
		else if ((ch < 0x20 && ch != '\t' && !(ch == '\r' && i + 1 < len && t[i + 1] == '\n')) ||
			 ch == 0x7f)
			return gs_err_setx(err, EBADMSG,
					   "%s: line %d: a control character (0x%02x), which TOML does not allow (not changed)",
					   file, line, ch);
	}
	return 0;
}

static int plan_main(const struct rt_opts *o, struct rt_change *c, const char *dir,
		     const char *dropin, bool keep_import, struct rt_plan *p, bool *block,
		     bool *imported, struct gs_err *err)
{
	*imported = false;
	_cleanup_free_ char *fresh = NULL;
	if (fresh_main(dropin, &fresh) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (!c->existed) {
		if (o->undo) {
			c->remove = true; /* nothing there: nothing to do */
			return 0;
		}
		c->new = steal_ptr(&fresh);
		c->new_len = strlen(c->new);
		return 0;
	}
	if (o->undo && !keep_import && c->old_len == strlen(fresh) && !memcmp(c->old, fresh, c->old_len)) {
		c->remove = true; /* the file gpu-stage created */
		return 0;
	}
	_cleanup_free_ char *base = NULL;
	struct text x = {0};
	struct rt_cblock info;
	int r = toml_chars_ok(c->path, c->old, c->old_len, err);
	if (r >= 0)
		r = rt_cblock_strip(o, c->path, c->old, c->old_len, &base, &x.len, &info, err);
	x.t = base;
	struct main_scan m;
	if (r >= 0)
		r = scan_main(c->path, x.t, x.len, &m, err);
	if (r < 0)
		return r;
	size_t k = 0; /* our import's index; n_items: none */
	while (k < m.n_items && !item_is(x.t, &m.item[k], dropin))
		k++;
	*imported = k < m.n_items || imports_other_spelling(dir, x.t, &m, dropin);
	if (o->undo)
		return k < m.n_items && !keep_import ? remove_import(c, &x, &m, k, err)
						     : splice(c, &x, 0, 0, "", err);
	*block = m.cri_line != 0;
	if (*block)
		return plan_block(o, c, &x, dir, &m, k, &info, p, err);
	_cleanup_free_ char *lost = NULL;
	if (asprintf(&lost, "the drop-in %s would drop those settings", dropin) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if ((r = check_imports(c->path, dir, x.t, &m, dropin, lost, err)) < 0)
		return r;
	return k < m.n_items ? splice(c, &x, 0, 0, "", err) : add_import(c, &x, &m, dropin, err);
}

static void change_clear(struct rt_change *c)
{
	free(c->path);
	free(c->old);
	free(c->new);
}

/* Moves C (with its texts) into P as the next change. */
static int plan_move(struct rt_plan *p, struct rt_change *c, struct gs_err *err)
{
	struct rt_change *d = rt_plan_add(p, RT_FILE, c->path, err);
	if (!d)
		return -ENOMEM;
	free(d->path);
	*d = *c;
	*c = (struct rt_change){0};
	return 0;
}

/* Reads the drop-in (C->path) and what it holds into D: gpu-stage's, as
 * gpu-stage writes it (else refused; --force: D empty, the file replaced or
 * removed), or no file. */
static int dropin_load(const struct rt_opts *o, struct rt_change *c, struct dropin_set *d,
		       struct gs_err *err)
{
	int r = rt_read_old(c, err);
	if (r < 0)
		return r;
	bool ours = c->existed && c->old_len >= strlen(DROPIN_HEAD) &&
		    !memcmp(c->old, DROPIN_HEAD, strlen(DROPIN_HEAD));
	if (c->existed && !ours && !o->force)
		return gs_err_setx(err, EEXIST,
				   "%s: there already, and not written by gpu-stage (not changed; --force %s it)",
				   c->path, o->undo ? "removes" : "replaces");
	if (ours && (r = dropin_read(c->old, c->old_len, d)) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (ours && r == 0 && !o->force)
		return gs_err_setx(err, EEXIST,
				   "%s: gpu-stage's, but edited since (not changed; --force %s)", c->path,
				   o->undo ? "removes it" : "replaces it with one holding only this handler");
	return 0;
}

/* The drop-in's change for O into C, from D (what it holds).  One the main
 * file does not import (IMPORTED false) is in effect for nothing: replaced
 * (configure) or removed (--undo) whole.  *KEPT: the handlers it still
 * holds. */
static int dropin_plan(const struct rt_opts *o, struct rt_change *c, struct dropin_set *d,
		       bool imported, size_t *kept, struct gs_err *err)
{
	if (!imported)
		dropin_set_clear(d);
	int r = dropin_set_handler(d, o->name, o->undo ? NULL : o->runtime, err);
	if (r < 0)
		return r;
	if (!o->undo && o->set_default) {
		free(d->def);
		if (!(d->def = strdup(o->name)))
			return gs_err_setx(err, ENOMEM, "out of memory");
	}
	*kept = d->n;
	if (d->n == 0) {
		c->remove = true;
		return 0;
	}
	if ((r = dropin_text(d, &c->new, err)) >= 0)
		c->new_len = strlen(c->new);
	return r;
}

static bool toml_safe(const char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int rt_plan_containerd(const struct rt_opts *o, struct rt_plan *p, struct gs_err *err)
{
	const char *file = o->config ? o->config : RT_CONTAINERD_DEFAULT;
	if (file[0] != '/')
		return gs_err_setx(err, EINVAL, "%s: the containerd config must be an absolute path", file);
	if (!strcmp(o->name, "runc"))
		return gs_err_setx(err, EINVAL, "--name runc: that is containerd's own handler");
	if (!toml_safe(o->runtime))
		return gs_err_setx(err, EINVAL, "%s: a path this TOML writer does not quote", o->runtime);
	_cleanup_free_ char *real = realpath(file, NULL);
	_cleanup_free_ char *dir = strndup(real ? real : file, (size_t)(strrchr(real ? real : file, '/') - (real ? real : file)));
	_cleanup_free_ char *dropin = NULL;
	if (!dir || asprintf(&dropin, "%s/" DROPIN_DIR "/" DROPIN_NAME, dir) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (!toml_safe(dropin))
		return gs_err_setx(err, EINVAL, "%s: a path this TOML writer does not quote", dropin);
	_cleanup_(change_clear) struct rt_change mc = {.kind = RT_FILE, .path = strdup(real ? real : file)};
	bool block = false;
	if (!mc.path)
		return gs_err_setx(err, ENOMEM, "out of memory");
	_cleanup_(change_clear) struct rt_change dc = {.kind = RT_FILE, .path = strdup(dropin)};
	_cleanup_(dropin_set_clear) struct dropin_set d = {0};
	size_t kept = 0;
	bool imported = false;
	if (!dc.path)
		return gs_err_setx(err, ENOMEM, "out of memory");
	/* the drop-in read first: an undo keeps the import while it holds
	 * another handler */
	int r = rt_read_old(&mc, err);
	struct gs_err derr = GS_ERR_INIT;
	int dr = dropin_load(o, &dc, &d, &derr);
	bool others = d.n > (dropin_holds(&d, o->name) ? 1u : 0u);
	if (r >= 0)
		r = plan_main(o, &mc, dir, dropin, o->undo && dr >= 0 && others, p, &block, &imported, err);
	if (r >= 0 && dr < 0 && (o->undo || !block)) { /* the drop-in's own refusal */
		*err = derr;
		r = dr;
	}
	if (r >= 0 && (o->undo || !block))
		r = dropin_plan(o, &dc, &d, imported, &kept, err);
	/* configure: the drop-in first (harmless until imported); undo: the import first */
	if (r >= 0 && !o->undo && !block)
		r = plan_move(p, &dc, err);
	if (r >= 0)
		r = plan_move(p, &mc, err);
	if (r >= 0 && o->undo)
		r = plan_move(p, &dc, err);
	if (r < 0)
		return r;
	p->after = "restart containerd for it to take effect (ctr run --runc-binary needs no configuration)";
	if (o->undo && kept)
		r = rt_set_text(&p->summary, err, "removed gpu-stage's CRI runtime handler %s from %s (it keeps %zu other handler%s of gpu-stage's, and its import)",
				o->name, dropin, kept, kept == 1 ? "" : "s");
	else if (o->undo)
		r = rt_set_text(&p->summary, err, "removed gpu-stage's CRI runtime handler %s from %s and %s",
				o->name, p->ch[0].path, dropin);
	else if (block)
		r = rt_set_text(&p->summary, err, "added CRI runtime handler %s (BinaryName %s) in %s, as gpu-stage's marked block (the file configures the CRI plugin itself, which a drop-in would undo)",
				o->name, o->runtime, p->ch[0].path);
	else
		r = rt_set_text(&p->summary, err, "added CRI runtime handler %s (BinaryName %s) in %s",
				o->name, o->runtime, dropin);
	if (r >= 0 && o->undo)
		r = rt_set_text(&p->unchanged, err, "no handler %s of gpu-stage's in %s or %s", o->name,
				p->ch[0].path, dropin);
	else if (r >= 0)
		r = rt_set_text(&p->unchanged, err, block ? "%s has gpu-stage's block for %s" : "%s is in place and imported",
				block ? p->ch[0].path : dropin, o->name);
	return r;
}
