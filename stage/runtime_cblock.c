/* SPDX-License-Identifier: Apache-2.0 */
/* runtime configure --containerd, for a main config.toml that configures
 * the CRI plugin itself (Debian 12's default file does: cni bin_dir and
 * conf_dir).  An imported drop-in cannot serve there, since containerd 1.6
 * replaces the whole CRI section with an imported one (containerd issue
 * 5837), so the handler's tables go into the main file, as one marked
 * block appended at its end:
 *
 *   # BEGIN gpu-stage runtime NAME (gpu-stage runtime configure --undo removes it)
 *   [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.NAME]
 *     runtime_type = "io.containerd.runc.v2"
 *   [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.NAME.options]
 *     BinaryName = "/usr/local/bin/gpu-runtime"
 *   # END gpu-stage runtime NAME
 *
 * TOML lets a table stand anywhere as long as it is defined once, so the
 * file is read line by line (the rules of runtime_containerd.c's reader:
 * no multi-line or escaped string) for the key path of every table header
 * and key, and refused when it defines that handler already, holds one of
 * the tables the block extends in a value (an inline table) or through a
 * dotted key, or has a line this reader cannot place.  A go-toml map that
 * a file names replaces containerd's default one, so when the file defines
 * no handler at all the block declares containerd's own runc again.
 *
 * --set-default: a file without default_runtime_name gets it in the block
 * (or, when the file has its own [plugins."...cri".containerd] table, as a
 * marked line right under that header); a file whose default_runtime_name
 * is "runc" (containerd's own) or, with --force, anything else keeps the
 * line as a marked comment above the new one, which --undo puts back.
 * --undo removes the block and the marked lines: the original, byte for
 * byte.  Configure is undo followed by the addition, so a second run
 * changes nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gs/cleanup.h"
#include "runtime.h"

#define CRI "io.containerd.grpc.v1.cri"
#define MAX_SEGS 16
#define DEF_KEY "default_runtime_name"

/* The block's lines and the marked ones, NAME in each. */
#define BEGIN_FMT "# BEGIN gpu-stage runtime %s (gpu-stage runtime configure --undo removes it%s)\n"
#define BEGIN_NL ", and the newline before it"
#define END_FMT "# END gpu-stage runtime %s"
#define ADDED_FMT " # gpu-stage runtime %s: --undo removes this line"
#define SET_FMT " # gpu-stage runtime %s: --undo puts back the line above"
#define WAS_FMT "#gpu-stage runtime %s replaced: "

struct seg {
	const char *p;
	size_t n;
};

struct tpath {
	struct seg s[MAX_SEGS];
	size_t n;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static size_t line_end(const char *t, size_t len, size_t s)
{
	const char *nl = memchr(t + s, '\n', len - s);
	return nl ? (size_t)(nl - t) + 1 : len;
}

/* [S, E) without its newline (and a '\r' before it). */
static size_t trim_nl(const char *t, size_t s, size_t e)
{
	if (e > s && t[e - 1] == '\n')
		e--;
	if (e > s && t[e - 1] == '\r')
		e--;
	return e;
}

static bool line_is(const char *t, size_t s, size_t e, const char *want)
{
	size_t n = strlen(want);
	return trim_nl(t, s, e) - s == n && !memcmp(t + s, want, n);
}

static bool ends_with(const char *t, size_t s, size_t e, const char *want)
{
	size_t n = strlen(want), x = trim_nl(t, s, e);
	return x - s >= n && !memcmp(t + x - n, want, n);
}

static bool starts_with(const char *t, size_t s, size_t e, const char *want)
{
	size_t n = strlen(want);
	return e - s >= n && !memcmp(t + s, want, n);
}

/* ---- taking the block out ----------------------------------------------------------- */

/* Each format's length with a name of RT_NAME_MAX bytes, and its NUL. */
struct strip {
	const char *name, *file;
	char begin[sizeof("# BEGIN gpu-stage runtime %s (") + RT_NAME_MAX];
	char end[sizeof(END_FMT) + RT_NAME_MAX], added[sizeof(ADDED_FMT) + RT_NAME_MAX];
	char set[sizeof(SET_FMT) + RT_NAME_MAX], was[sizeof(WAS_FMT) + RT_NAME_MAX];
};

static void strip_marks(struct strip *m, const struct rt_opts *o, const char *file)
{
	m->name = o->name;
	m->file = file;
	snprintf(m->begin, sizeof(m->begin), "# BEGIN gpu-stage runtime %s (", o->name);
	snprintf(m->end, sizeof(m->end), END_FMT, o->name);
	snprintf(m->added, sizeof(m->added), ADDED_FMT, o->name);
	snprintf(m->set, sizeof(m->set), SET_FMT, o->name);
	snprintf(m->was, sizeof(m->was), WAS_FMT, o->name); /* name_ok: at most RT_NAME_MAX bytes */
}

/* The block whose BEGIN line starts at S: *AFTER becomes the offset after
 * its END line, *LINES the number of lines it has.  *DROP_NL: the BEGIN
 * line says that the newline before it was added with it. */
static int skip_block(const struct strip *m, const char *t, size_t len, size_t s, int line,
		      size_t *after, int *lines, bool *drop_nl, bool *had_default, struct gs_err *err)
{
	size_t e = line_end(t, len, s);
	*drop_nl = memmem(t + s, e - s, BEGIN_NL, strlen(BEGIN_NL)) != NULL;
	*lines = 1;
	for (size_t q = e; q < len; q = e) {
		e = line_end(t, len, q);
		++*lines;
		if (line_is(t, q, e, m->end)) {
			*after = e;
			return 0;
		}
		if (starts_with(t, q, e, m->begin))
			break;
		if (starts_with(t, q, e, "[plugins.\"" CRI "\".containerd]"))
			*had_default = true;
	}
	return gs_err_setx(err, EBADMSG,
			   "%s: line %d: gpu-stage's block for %s has no line `%s` before the next BEGIN or the end (not changed; mend it by hand)",
			   m->file, line, m->name, m->end);
}

int rt_cblock_strip(const struct rt_opts *o, const char *file, const char *text, size_t len,
		    char **out, size_t *out_len, struct rt_cblock *info, struct gs_err *err)
{
	struct strip m;
	strip_marks(&m, o, file);
	*info = (struct rt_cblock){0};
	_cleanup_free_ char *t = malloc(len + 1);
	if (!t)
		return gs_err_setx(err, ENOMEM, "out of memory");
	bool block = false;
	size_t n = 0, prev = 0; /* prev: where the kept line before starts in T */
	int line = 1;
	for (size_t s = 0; s < len; line++) {
		size_t e = line_end(text, len, s);
		bool drop_nl = false;
		if (starts_with(text, s, e, m.begin)) {
			if (block)
				return gs_err_setx(err, EBADMSG, "%s: line %d: a second block of gpu-stage's for %s (not changed; mend it by hand)",
						   file, line, o->name);
			size_t after = 0;
			int lines = 0;
			int r = skip_block(&m, text, len, s, line, &after, &lines, &drop_nl,
					   &info->had_default, err);
			if (r < 0)
				return r;
			if (drop_nl && n > 0 && t[n - 1] == '\n')
				n--;
			info->found = block = true;
			line += lines - 1;
			s = after;
			continue;
		}
		if (ends_with(text, s, e, m.added)) { /* a marked line: dropped */
			info->found = info->had_default = true;
		} else if (ends_with(text, s, e, m.set)) { /* the line above comes back */
			if (n == 0 || !starts_with(t, prev, n, m.was))
				return gs_err_setx(err, EBADMSG, "%s: line %d: the line above is not `%s...` (not changed; mend it by hand)",
						   file, line, m.was);
			size_t w = strlen(m.was);
			memmove(t + prev, t + prev + w, n - prev - w);
			n -= w + 1; /* its newline too: the restored line ends as this one did */
			memcpy(t + n, text + trim_nl(text, s, e), e - trim_nl(text, s, e));
			n += e - trim_nl(text, s, e);
			info->found = info->had_default = info->had_replaced = true;
		} else {
			prev = n;
			memcpy(t + n, text + s, e - s);
			n += e - s;
		}
		s = e;
	}
	t[n] = '\0';
	*out = steal_ptr(&t);
	*out_len = n;
	return 0;
}

/* ---- reading the key paths ---------------------------------------------------------- */

/* What the file says about the tables the block goes into. */
struct scan {
	const char *file, *name, *t;
	size_t len;
	const char *want[5]; /* plugins, CRI, containerd, runtimes, NAME */
	bool has_runtimes;   /* some handler is defined: containerd's defaults are gone */
	int hdr_line;        /* [plugins."CRI".containerd] (0: none) */
	size_t hdr_a, hdr_end;
	int def_line;        /* its default_runtime_name (0: none) */
	size_t def_a, def_e;
	struct seg def_val;  /* the name, without quotes */
};

/* Leading segments of P equal to the wanted path. */
static size_t match(const struct scan *sc, const struct tpath *p)
{
	size_t k = 0;
	while (k < p->n && k < 5 && p->s[k].n == strlen(sc->want[k]) &&
	       !memcmp(p->s[k].p, sc->want[k], p->s[k].n))
		k++;
	return k;
}

static bool bare(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-';
}

/* A dotted key at T[*I, E) appended to P; *I moves past it.  -1: not a key. */
static int parse_key(const char *t, size_t *i, size_t e, struct tpath *p)
{
	size_t q = *i;
	for (;;) {
		while (q < e && is_ws(t[q]))
			q++;
		if (q >= e || p->n >= MAX_SEGS)
			return -1;
		size_t a = q;
		if (t[q] == '"' || t[q] == '\'') {
			const char *c = memchr(t + q + 1, t[q], e - q - 1);
			if (!c || (t[q] == '"' && memchr(t + q + 1, '\\', (size_t)(c - t) - q - 1)))
				return -1;
			p->s[p->n++] = (struct seg){t + a + 1, (size_t)(c - t) - a - 1};
			q = (size_t)(c - t) + 1;
		} else {
			while (q < e && bare(t[q]))
				q++;
			if (q == a)
				return -1;
			p->s[p->n++] = (struct seg){t + a, q - a};
		}
		while (q < e && is_ws(t[q]))
			q++;
		if (q >= e || t[q] != '.')
			break;
		q++;
	}
	*i = q;
	return 0;
}

/* Brackets of T[A, B) outside strings, added to *SQ and *CURLY. */
static void brackets(const char *t, size_t a, size_t b, int *sq, int *curly)
{
	char q = 0;
	for (size_t i = a; i < b; i++) {
		if (q) {
			q = t[i] == q ? 0 : q;
			continue;
		}
		switch (t[i]) {
		case '"': case '\'': q = t[i]; break;
		case '[': ++*sq; break;
		case ']': --*sq; break;
		case '{': ++*curly; break;
		case '}': --*curly; break;
		}
	}
}

static int uncertain(const struct scan *sc, int line, const char *why, struct gs_err *err)
{
	return gs_err_setx(err, EBADMSG, "%s: line %d: %s (not changed)", sc->file, line, why);
}

static int defined_already(const struct scan *sc, int line, struct gs_err *err)
{
	return gs_err_setx(err, EEXIST,
			   "%s: line %d defines the runtime handler %s already (plugins.\"" CRI "\".containerd.runtimes.%s), outside gpu-stage's block (not changed; choose another --name, or take it out)",
			   sc->file, line, sc->name, sc->name);
}

static int on_header(struct scan *sc, const struct tpath *h, bool array, int line, size_t s,
		     size_t e, struct gs_err *err)
{
	size_t k = match(sc, h);
	if (k == 5)
		return defined_already(sc, line, err);
	if (array && k == h->n)
		return uncertain(sc, line, "an array of tables where the runtime handler's tables go", err);
	sc->has_runtimes |= k >= 4;
	if (!array && k == 3 && h->n == 3) {
		sc->hdr_line = line;
		sc->hdr_a = s;
		sc->hdr_end = e;
	}
	return 0;
}

static int on_key(struct scan *sc, const struct tpath *f, size_t table_n, int line, size_t s,
		  size_t e, size_t v, size_t cend, struct gs_err *err)
{
	size_t k = match(sc, f);
	if (k == 5)
		return defined_already(sc, line, err);
	if (k == f->n)
		return uncertain(sc, line, "a value (an inline table?) holding the tables the runtime handler goes into", err);
	if (k > table_n && f->n - 1 > table_n)
		return uncertain(sc, line, "a dotted key through the tables the runtime handler goes into", err);
	sc->has_runtimes |= k >= 4;
	if (k == 3 && f->n == 4 && f->s[3].n == strlen(DEF_KEY) && !memcmp(f->s[3].p, DEF_KEY, f->s[3].n)) {
		const char *t = sc->t;
		size_t b = cend;
		while (b > v && is_ws(t[b - 1]))
			b--;
		if (b - v < 2 || (t[v] != '"' && t[v] != '\'') || t[b - 1] != t[v] ||
		    memchr(t + v + 1, t[v], b - v - 2))
			return uncertain(sc, line, DEF_KEY " is not one plain string", err);
		sc->def_line = line;
		sc->def_a = s;
		sc->def_e = e;
		sc->def_val = (struct seg){t + v + 1, b - v - 2};
	}
	return 0;
}

/* One line that is not blank or a comment, inside no multi-line value. */
static int scan_line(struct scan *sc, struct tpath *table, int line, size_t s, size_t e, size_t b,
		     size_t cend, int *sq, int *curly, struct gs_err *err)
{
	const char *t = sc->t;
	size_t i = b;
	if (t[b] == '[') {
		bool array = b + 1 < cend && t[b + 1] == '[';
		i = b + 1 + array;
		table->n = 0;
		if (parse_key(t, &i, cend, table) < 0 || i + array >= cend || t[i] != ']' ||
		    (array && t[i + 1] != ']'))
			return uncertain(sc, line, "a table header this reader cannot read", err);
		for (i += 1 + array; i < cend && is_ws(t[i]);)
			i++;
		if (i != cend)
			return uncertain(sc, line, "text after a table header", err);
		return on_header(sc, table, array, line, s, e, err);
	}
	struct tpath f = *table;
	if (parse_key(t, &i, cend, &f) < 0 || i >= cend || t[i] != '=')
		return uncertain(sc, line, "not a `key = value` line this reader can read", err);
	size_t v = i + 1;
	while (v < cend && is_ws(t[v]))
		v++;
	if (v == cend)
		return uncertain(sc, line, "a key without a value", err);
	brackets(t, v, cend, sq, curly);
	if (*curly || *sq < 0)
		return uncertain(sc, line, "an inline table over more than one line", err);
	return on_key(sc, &f, table->n, line, s, e, v, cend, err);
}

static int scan_all(struct scan *sc, struct gs_err *err)
{
	const char *t = sc->t;
	struct tpath table = {.n = 0};
	int sq = 0, curly = 0, line = 1; /* sq > 0: inside an array over several lines */
	for (size_t s = 0, e; s < sc->len; s = e, line++) {
		e = line_end(t, sc->len, s);
		size_t b = s, x = trim_nl(t, s, e);
		while (b < x && is_ws(t[b]))
			b++;
		if (b == x || t[b] == '#')
			continue;
		long c = rt_toml_comment_at(t, b, x);
		if (c < 0)
			return uncertain(sc, line, "a string this reader cannot be certain of (escapes, multi-line)", err);
		int r = 0;
		if (sq > 0) {
			brackets(t, b, (size_t)c, &sq, &curly);
			if (curly || sq < 0)
				r = uncertain(sc, line, "an inline table over more than one line", err);
		} else {
			r = scan_line(sc, &table, line, s, e, b, (size_t)c, &sq, &curly, err);
		}
		if (r < 0)
			return r;
	}
	return sq ? uncertain(sc, line - 1, "an array that is not closed", err) : 0;
}

/* ---- adding the block ------------------------------------------------------------- */

static bool seg_is(const struct seg *s, const char *v)
{
	return s->n == strlen(v) && !memcmp(s->p, v, s->n);
}

/* The edit for --set-default outside the block, in *INS replacing [*A, *B);
 * *IN_BLOCK when the block is to hold it. */
static int default_edit(const struct rt_opts *o, const struct scan *sc, const struct rt_cblock *info,
			struct rt_plan *p, size_t *a, size_t *b, char **ins, bool *in_block,
			struct gs_err *err)
{
	const char *t = sc->t;
	if (!sc->def_line && !sc->hdr_line) {
		*in_block = true;
		return info->had_default ? 0 : rt_plan_note(p, err, DEF_KEY " is now \"%s\" (set in gpu-stage's block)", o->name);
	}
	if (!sc->def_line) { /* a line right under the file's own [plugins."CRI".containerd] */
		size_t ind = sc->hdr_a;
		while (is_ws(t[ind]))
			ind++;
		if (t[sc->hdr_end - 1] != '\n')
			return uncertain(sc, sc->hdr_line, "the file ends in the [plugins.\"" CRI "\".containerd] header without a newline", err);
		*a = *b = sc->hdr_end;
		if (asprintf(ins, "%.*s  " DEF_KEY " = \"%s\"" ADDED_FMT "\n", (int)(ind - sc->hdr_a),
			     t + sc->hdr_a, o->name, o->name) < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
		return info->had_default ? 0 : rt_plan_note(p, err, DEF_KEY " is now \"%s\" (a marked line under line %d)",
							    o->name, sc->hdr_line);
	}
	if (seg_is(&sc->def_val, o->name))
		return 0;
	/* runc is containerd's own default: naming it says nothing undo would lose */
	if (!seg_is(&sc->def_val, "runc") && !o->force && !info->had_replaced)
		return gs_err_setx(err, EEXIST,
				   "%s: line %d: " DEF_KEY " is \"%.*s\" (not changed; --force replaces it, and --undo puts it back)",
				   sc->file, sc->def_line, (int)sc->def_val.n, sc->def_val.p);
	size_t ind = sc->def_a, x = trim_nl(t, sc->def_a, sc->def_e);
	while (is_ws(t[ind]))
		ind++;
	*a = sc->def_a;
	*b = x;
	if (asprintf(ins, WAS_FMT "%.*s\n%.*s" DEF_KEY " = \"%s\"" SET_FMT, o->name, (int)(x - sc->def_a),
		     t + sc->def_a, (int)(ind - sc->def_a), t + sc->def_a, o->name, o->name) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (info->had_default)
		return 0;
	return rt_plan_note(p, err, DEF_KEY " is now \"%s\" (was \"%.*s\" at line %d, kept there as a comment for --undo)",
			    o->name, (int)sc->def_val.n, sc->def_val.p, sc->def_line);
}

static int block_text(const struct rt_opts *o, bool nl, bool def, bool runc, char **out,
		      struct gs_err *err)
{
	_cleanup_free_ char *d = NULL;
	if (def && asprintf(&d, "[plugins.\"" CRI "\".containerd]\n  " DEF_KEY " = \"%s\"\n\n", o->name) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (asprintf(out,
		     "%s" BEGIN_FMT "%s%s"
		     "[plugins.\"" CRI "\".containerd.runtimes.%s]\n"
		     "  runtime_type = \"io.containerd.runc.v2\"\n\n"
		     "[plugins.\"" CRI "\".containerd.runtimes.%s.options]\n"
		     "  BinaryName = \"%s\"\n" END_FMT "\n",
		     nl ? "\n" : "", o->name, nl ? BEGIN_NL : "", d ? d : "",
		     runc ? "# containerd's own runc again: a file that names runtime handlers replaces its defaults\n"
			    "[plugins.\"" CRI "\".containerd.runtimes.runc]\n"
			    "  runtime_type = \"io.containerd.runc.v2\"\n\n"
			  : "",
		     o->name, o->name, o->runtime, o->name) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	return 0;
}

int rt_cblock_add(const struct rt_opts *o, const char *file, const char *text, size_t len,
		  const struct rt_cblock *info, struct rt_plan *p, char **out, size_t *out_len,
		  struct gs_err *err)
{
	struct scan sc = {.file = file, .name = o->name, .t = text, .len = len,
			  .want = {"plugins", CRI, "containerd", "runtimes", o->name}};
	int r = scan_all(&sc, err);
	size_t a = len, b = len;
	_cleanup_free_ char *ins = NULL, *blk = NULL;
	bool in_block = false;
	if (r >= 0 && (o->set_default || info->had_default))
		r = default_edit(o, &sc, info, p, &a, &b, &ins, &in_block, err);
	if (r < 0)
		return r;
	size_t n_ins = ins ? strlen(ins) : 0;
	bool ends_nl = b < len ? text[len - 1] == '\n' : n_ins ? ins[n_ins - 1] == '\n' : len == 0 || text[len - 1] == '\n';
	if ((r = block_text(o, !ends_nl, in_block, !sc.has_runtimes, &blk, err)) < 0)
		return r;
	size_t n_blk = strlen(blk), n = a + n_ins + (len - b) + n_blk;
	char *t = malloc(n + 1);
	if (!t)
		return gs_err_setx(err, ENOMEM, "out of memory");
	memcpy(t, text, a);
	memcpy(t + a, ins ? ins : "", n_ins);
	memcpy(t + a + n_ins, text + b, len - b);
	memcpy(t + a + n_ins + (len - b), blk, n_blk + 1);
	*out = t;
	*out_len = n;
	return 0;
}
