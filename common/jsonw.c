/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs/jsonw.h"

int gs_jw_start(struct gs_jw *w, struct gs_err *err)
{
	*w = (struct gs_jw){0};
	w->cap = 4096;
	w->buf = malloc(w->cap);
	return w->buf ? 0 : gs_err_setx(err, ENOMEM, "out of memory");
}

/* Appends N bytes (growing the buffer; failure is sticky). */
static void put(struct gs_jw *w, const void *p, size_t n)
{
	if (w->failed)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap;
		while (cap < w->len + n + 1)
			cap *= 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			w->failed = true;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void putch(struct gs_jw *w, char ch)
{
	put(w, &ch, 1);
}

static void putstr(struct gs_jw *w, const char *s)
{
	put(w, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at S (at most N bytes), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (s[0] >= 0xf8 || len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	uint32_t cp = len == 2 ? (s[0] & 0x1fu) : len == 3 ? (s[0] & 0x0fu) : (s[0] & 0x07u);
	for (size_t i = 1; i < len; i++)
		cp = cp << 6 | (s[i] & 0x3fu);
	bool shortest = len == 2 ? cp >= 0x80 : len == 3 ? cp >= 0x800 : cp >= 0x10000;
	bool ok = shortest && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
	return ok ? len : 0;
}

static bool plain(unsigned char ch)
{
	return ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
}

static void put_string(struct gs_jw *w, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	putch(w, '"');
	for (size_t i = 0; i < n;) {
		size_t run = 0;
		while (i + run < n && plain(s[i + run]))
			run++;
		if (run) { /* the common case: one copy for the whole run */
			put(w, s + i, run);
			i += run;
			continue;
		}
		unsigned char ch = s[i];
		size_t l = ch >= 0x80 ? utf8_len(s + i, n - i) : 0;
		if (ch == '"' || ch == '\\') {
			putch(w, '\\');
			putch(w, (char)ch);
		} else if (ch < 0x80) {
			char esc[8];
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			putstr(w, esc);
		} else if (l == 0) {
			putstr(w, "\\ufffd");
		} else {
			put(w, s + i, l);
			i += l;
			continue;
		}
		i++;
	}
	putch(w, '"');
}

/* The separator and the member name before a value. */
static bool begin_value(struct gs_jw *w, const char *key)
{
	if (w->failed)
		return false;
	if (w->more[w->depth])
		putch(w, ',');
	w->more[w->depth] = true;
	if (key) {
		put_string(w, key, strlen(key));
		putch(w, ':');
	}
	return true;
}

static void open_nested(struct gs_jw *w, const char *key, char ch)
{
	if (!begin_value(w, key))
		return;
	if (w->depth == GS_JW_DEPTH) {
		w->failed = true;
		return;
	}
	putch(w, ch);
	w->more[++w->depth] = false;
	w->closer[w->depth] = ch == '{' ? '}' : ']';
}

void gs_jw_object(struct gs_jw *w, const char *key)
{
	open_nested(w, key, '{');
}

void gs_jw_array(struct gs_jw *w, const char *key)
{
	open_nested(w, key, '[');
}

void gs_jw_end(struct gs_jw *w)
{
	if (w->failed || w->depth == 0) {
		w->failed = true;
		return;
	}
	putch(w, w->closer[w->depth]);
	w->depth--;
}

void gs_jw_stringn(struct gs_jw *w, const char *key, const char *s, size_t n)
{
	if (begin_value(w, key))
		put_string(w, s, n);
}

void gs_jw_string(struct gs_jw *w, const char *key, const char *s)
{
	if (!s) {
		if (begin_value(w, key))
			putstr(w, "null");
		return;
	}
	gs_jw_stringn(w, key, s, strlen(s));
}

void gs_jw_int(struct gs_jw *w, const char *key, long long v)
{
	if (begin_value(w, key))
		{
			char num[24];
			snprintf(num, sizeof(num), "%lld", v);
			putstr(w, num);
		}
}

void gs_jw_bool(struct gs_jw *w, const char *key, bool v)
{
	if (begin_value(w, key))
		putstr(w, v ? "true" : "false");
}

int gs_jw_finish(struct gs_jw *w, char **out, size_t *len, struct gs_err *err)
{
	bool ok = !w->failed && w->depth == 0;
	if (!ok) {
		free(w->buf);
		*w = (struct gs_jw){0};
		return gs_err_setx(err, ENOMEM, "writing JSON: out of memory or unbalanced nesting");
	}
	w->buf[w->len] = '\0'; /* put() keeps room for it */
	*out = w->buf;
	*len = w->len;
	*w = (struct gs_jw){0};
	return 0;
}
