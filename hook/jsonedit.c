/* SPDX-License-Identifier: Apache-2.0 */
/* A splice editor for JSON texts (jsonedit.h).  It walks the text only as
 * far as the path needs (skipping values by their brackets and strings),
 * and writes one new buffer: the bytes before the edit, the inserted
 * text, the bytes after it. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"
#include "jsonedit.h"

static bool may_want_gpu(const char *text, size_t len)
{
	/* the variable, the annotation (the one way to ask under "requests":
	 * "orchestrator"), or an escape that could spell either */
	static const char name[] = "NVIDIA_VISIBLE_DEVICES", ann[] = HK_ANNOT_DEVICES, esc[] = "\\u";
	return memmem(text, len, name, sizeof(name) - 1) || memmem(text, len, ann, sizeof(ann) - 1) ||
	       memmem(text, len, esc, sizeof(esc) - 1);
}

int je_load_oci(const char *text, size_t len, const char *name, json_t **out,
		struct gs_err *err)
{
	json_error_t je;
	/* a raw NUL byte is never JSON (runc refuses it); jansson may stop
	 * at one and accept what precedes */
	const char *nul = memchr(text, '\0', len);
	*out = len && !nul ? json_loadb(text, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je) : NULL;
	if (!*out && !len)
		return gs_err_setx(err, EBADMSG, "%s: empty file", name);
	if (nul) {
		int line = 1;
		for (const char *p = text; p < nul; p++)
			line += *p == '\n';
		je.line = line;
		je.column = 0;
		snprintf(je.text, sizeof(je.text), "a NUL byte at offset %zu", (size_t)(nul - text));
	}
	if (!*out)
		return may_want_gpu(text, len)
			       ? gs_err_setx(err, EBADMSG, "%s: line %d column %d: %s", name, je.line,
					     je.column, je.text)
			       : 0;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return gs_err_setx(err, EBADMSG, "%s: not a JSON object", name);
	}
	return 0;
}

/* ---- editing ------------------------------------------------------------------ */

#define BAD SIZE_MAX
#define KEY_MAX 64 /* longer member names never match one of ours */

struct text {
	const char *s;
	size_t n;
};

static size_t ws(const struct text *t, size_t p)
{
	while (p < t->n && (t->s[p] == ' ' || t->s[p] == '\t' || t->s[p] == '\n' || t->s[p] == '\r'))
		p++;
	return p;
}

/* P at a '"': the index after the closing quote. */
static size_t skip_string(const struct text *t, size_t p)
{
	for (p++; p < t->n; p++) {
		if (t->s[p] == '\\')
			p++;
		else if (t->s[p] == '"')
			return p + 1;
	}
	return BAD;
}

/* P at a value: the index after it. */
static size_t skip_value(const struct text *t, size_t p)
{
	if (p >= t->n)
		return BAD;
	char c = t->s[p];
	if (c == '"')
		return skip_string(t, p);
	if (c == '{' || c == '[') {
		size_t depth = 0;
		do {
			c = t->s[p];
			if (c == '"') {
				p = skip_string(t, p);
				if (p == BAD)
					return BAD;
				continue;
			}
			depth += c == '{' || c == '[';
			depth -= c == '}' || c == ']';
			p++;
		} while (depth > 0 && p < t->n);
		return depth ? BAD : p;
	}
	size_t q = p;
	while (q < t->n && !strchr(",]} \t\r\n", t->s[q]))
		q++;
	return q > p ? q : BAD;
}

/* Four hex digits at S: their value, or -1. */
static int hex4(const char *s)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Whether the string token [A, B) (quotes included) decodes to KEY (ASCII). */
static bool key_is(const struct text *t, size_t a, size_t b, const char *key)
{
	char dec[KEY_MAX];
	size_t n = 0;
	for (size_t p = a + 1; p + 1 < b; p++) {
		char c = t->s[p];
		if (c == '\\') {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			const char *e = strchr(from, t->s[p + 1]);
			if (t->s[p + 1] == 'u' && p + 5 < b) {
				int v = hex4(t->s + p + 2);
				if (v < 0 || v >= 0x80)
					return false; /* not one of our (ASCII) names */
				c = (char)v;
				p += 5;
			} else if (e && *e) {
				c = to[e - from];
				p++;
			} else {
				return false;
			}
		}
		if (n == sizeof(dec))
			return false;
		dec[n++] = c;
	}
	return n == strlen(key) && !memcmp(dec, key, n);
}

struct member {
	size_t val;   /* where the last member KEY's value begins; BAD: none */
	size_t close; /* the object's '}' */
	bool empty;
};

/* The object whose '{' is at P. */
static int obj_lookup(const struct text *t, size_t p, const char *key, struct member *m)
{
	m->val = BAD;
	p = ws(t, p + 1);
	m->empty = p < t->n && t->s[p] == '}';
	while (p < t->n && t->s[p] != '}') {
		size_t k = p, e = t->s[p] == '"' ? skip_string(t, p) : BAD;
		if (e == BAD)
			return -1;
		bool hit = key_is(t, k, e, key);
		p = ws(t, e);
		if (p >= t->n || t->s[p] != ':')
			return -1;
		size_t v = ws(t, p + 1);
		p = skip_value(t, v);
		if (p == BAD)
			return -1;
		if (hit)
			m->val = v;
		p = ws(t, p);
		if (p < t->n && t->s[p] == ',')
			p = ws(t, p + 1);
	}
	if (p >= t->n)
		return -1;
	m->close = p;
	return 0;
}

struct slot {
	size_t at;   /* where the new element goes */
	bool at_end; /* at the ']' (a comma before it when !empty) */
	bool empty;
};

/* The array whose '[' is at P: where the element of index AT begins. */
static int arr_slot(const struct text *t, size_t p, ssize_t at, struct slot *s)
{
	p = ws(t, p + 1);
	s->empty = p < t->n && t->s[p] == ']';
	for (ssize_t i = 0; p < t->n && t->s[p] != ']'; i++) {
		if (i == at) {
			s->at = p;
			s->at_end = false;
			return 0;
		}
		p = skip_value(t, p);
		if (p == BAD)
			return -1;
		p = ws(t, p);
		if (p < t->n && t->s[p] == ',')
			p = ws(t, p + 1);
	}
	if (p >= t->n)
		return -1;
	s->at = p;
	s->at_end = true;
	return 0;
}

/* A growing string; ok turns false on the first allocation failure. */
struct buf {
	char *s;
	size_t len, cap;
	bool ok;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (!b->ok)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->ok = false;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* {"k1":{"k2":[ELEM]}} for the names KEYS, [ELEM] for none. */
static void nest(struct buf *b, const char *const *keys, const char *elem)
{
	if (!*keys) {
		puts_(b, "[");
		puts_(b, elem);
		puts_(b, "]");
		return;
	}
	puts_(b, "{\"");
	puts_(b, *keys);
	puts_(b, "\":");
	nest(b, keys + 1, elem);
	puts_(b, "}");
}

/* D's text with [A, B) replaced by INS. */
static int splice(struct je_doc *d, size_t a, size_t b, const struct buf *ins, struct gs_err *err)
{
	struct buf out = {.ok = true};
	put(&out, d->text, a);
	put(&out, ins->s, ins->len);
	put(&out, d->text + b, d->len - b);
	if (!out.ok) {
		free(out.s);
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	free(d->text);
	d->text = out.s;
	d->len = out.len;
	return 0;
}

/* "a.b.c" for PATH[0..N] in MSG. */
static const char *dotted(char *msg, size_t size, const char *const *path, size_t n)
{
	size_t used = 0;
	msg[0] = '\0';
	for (size_t i = 0; i <= n && used < size; i++)
		used += (size_t)snprintf(msg + used, size - used, "%s%s", i ? "." : "", path[i]);
	return msg;
}

static int malformed(struct gs_err *err)
{
	return gs_err_setx(err, EBADMSG, "not a well-formed JSON object (cannot be edited)");
}

int je_array_insert(struct je_doc *d, const char *const *path, ssize_t at, const char *elem,
		    struct gs_err *err)
{
	const struct text t = {d->text, d->len};
	struct buf ins = {.ok = true};
	size_t p = ws(&t, 0);
	char name[256];
	if (p >= t.n || t.s[p] != '{')
		return malformed(err);
	for (size_t i = 0; path[i]; i++) {
		struct member m;
		if (obj_lookup(&t, p, path[i], &m) < 0)
			return malformed(err);
		if (m.val == BAD || (t.n - m.val >= 4 && !memcmp(t.s + m.val, "null", 4))) {
			size_t a = m.val == BAD ? m.close : m.val, b = m.val == BAD ? a : a + 4;
			if (m.val == BAD) {
				puts_(&ins, m.empty ? "\"" : ",\"");
				puts_(&ins, path[i]);
				puts_(&ins, "\":");
			}
			nest(&ins, path + i + 1, elem);
			int r = ins.ok ? splice(d, a, b, &ins, err) : gs_err_setx(err, ENOMEM, "out of memory");
			free(ins.s);
			return r;
		}
		char want = path[i + 1] ? '{' : '[';
		if (t.s[m.val] != want)
			return gs_err_setx(err, EBADMSG, "\"%s\" must be %s",
					   dotted(name, sizeof(name), path, i),
					   want == '{' ? "an object" : "an array");
		p = m.val;
	}
	struct slot s;
	if (arr_slot(&t, p, at, &s) < 0)
		return malformed(err);
	if (s.at_end && !s.empty)
		puts_(&ins, ",");
	puts_(&ins, elem);
	if (!s.at_end)
		puts_(&ins, ",");
	int r = ins.ok ? splice(d, s.at, s.at, &ins, err) : gs_err_setx(err, ENOMEM, "out of memory");
	free(ins.s);
	return r;
}
