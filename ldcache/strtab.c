/* SPDX-License-Identifier: Apache-2.0 */
/* The string table of a cache being written: every distinct string once,
 * and a string that ends another one (a SONAME at the end of its path, the
 * same name in two entries) pointed into that one, as ldconfig's tail
 * merging does.  The bytes depend only on the entries, not on where their
 * strings live in memory, so a cache rebuilt from scratch and the same
 * cache merged from a parsed file are identical.
 *
 * Cost stays proportional to the input, however it is crafted: addresses
 * are made unique first (entries sharing one string cost one slot);
 * strings ending at the same NUL are suffixes of one another, so only the
 * longest of those ("lead", at most LDC_VALUE_MAX bytes) takes part in the
 * comparison by content, and the leads of a parsed cache are disjoint
 * pieces of its file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gs/cleanup.h"
#include "internal.h"

#define UNPLACED UINT32_MAX

static int cmp_raw(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (const char *const *)a, y = (uintptr_t) * (const char *const *)b;
	return x < y ? -1 : x > y;
}

static int cmp_ptr(const void *a, const void *b)
{
	return cmp_raw(&((const struct ldc_sref *)a)->p, &((const struct ldc_sref *)b)->p);
}

/* By where the string ends (kept in HOST while building), then address. */
static int cmp_end(const void *a, const void *b)
{
	const struct ldc_sref *x = a, *y = b;
	int r = cmp_raw(&x->host, &y->host);
	return r ? r : cmp_ptr(a, b);
}

/* Compared from their last byte: a string that ends another one sorts
 * right after the longest that ends with it. */
static int cmp_tail(const void *a, const void *b)
{
	const struct ldc_sref *x = *(const struct ldc_sref *const *)a;
	const struct ldc_sref *y = *(const struct ldc_sref *const *)b;
	size_t i = x->len, j = y->len;
	while (i > 0 && j > 0) {
		unsigned char cx = (unsigned char)x->p[--i], cy = (unsigned char)y->p[--j];
		if (cx != cy)
			return cx < cy ? -1 : 1;
	}
	if (i == 0 && j == 0)
		return cmp_ptr(x, y); /* equal strings: a fixed order */
	return i == 0 ? 1 : -1;
}

/* Unique addresses of C's keys and values. */
static int unique_strings(const struct ldc_cache *c, struct ldc_strtab *t, struct gs_err *err)
{
	size_t cap;
	if (__builtin_mul_overflow(c->n ? c->n : 1, 2 * sizeof(const char *), &cap))
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	_cleanup_free_ const char **ptrs = malloc(cap);
	if (!ptrs)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++) {
		ptrs[n++] = c->entries[i].key;
		ptrs[n++] = c->entries[i].value;
	}
	qsort(ptrs, n, sizeof(*ptrs), cmp_raw);
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (w == 0 || ptrs[w - 1] != ptrs[i])
			ptrs[w++] = ptrs[i];
	t->v = calloc(w ? w : 1, sizeof(*t->v));
	if (!t->v)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	t->n = w;
	for (size_t i = 0; i < w; i++)
		t->v[i] = (struct ldc_sref){.p = ptrs[i], .off = UNPLACED};
	return 0;
}

/* Groups by NUL: the first of each group (the lowest address) is the
 * longest; the others are placed inside it. */
static void group_by_end(struct ldc_strtab *t)
{
	/* every string of a cache is at most LDC_VALUE_MAX bytes (parse.c,
	 * ldc_cache_add): strlen costs at most that much per distinct one */
	for (size_t i = 0; i < t->n; i++)
		t->v[i].host = t->v[i].p + strlen(t->v[i].p);
	qsort(t->v, t->n, sizeof(*t->v), cmp_end);
	const char *end = NULL, *lead = NULL;
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].host != end) {
			end = t->v[i].host;
			lead = t->v[i].p;
		}
		t->v[i].len = (size_t)(end - t->v[i].p);
		t->v[i].host = lead; /* for now: the lead */
		t->v[i].at = (uint32_t)(t->v[i].p - lead);
	}
	qsort(t->v, t->n, sizeof(*t->v), cmp_ptr);
}

static struct ldc_sref *find(const struct ldc_strtab *t, const char *p)
{
	struct ldc_sref key = {.p = p};
	return bsearch(&key, t->v, t->n, sizeof(*t->v), cmp_ptr);
}

/* Merges the leads by content: each that ends the one before it in tail
 * order lives in that one's host. */
static int merge_tails(struct ldc_strtab *t, struct gs_err *err)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += t->v[i].host == t->v[i].p;
	_cleanup_free_ struct ldc_sref **leads = malloc((n ? n : 1) * sizeof(*leads));
	if (!leads)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	n = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].host == t->v[i].p)
			leads[n++] = &t->v[i];
	qsort(leads, n, sizeof(*leads), cmp_tail);
	t->bytes = 0;
	for (size_t k = 0; k < n; k++) {
		struct ldc_sref *l = leads[k], *prev = k ? leads[k - 1] : NULL;
		if (prev && l->len <= prev->len &&
		    !memcmp(prev->p + prev->len - l->len, l->p, l->len)) {
			l->host = prev->host;
			l->at = prev->at + (uint32_t)(prev->len - l->len);
		} else {
			l->host = l->p;
			l->at = 0;
			t->bytes += l->len + 1;
		}
	}
	/* the others follow their lead (leads come first at their address) */
	for (size_t i = 0; i < t->n; i++) {
		struct ldc_sref *s = &t->v[i];
		if (s->host == s->p && s->at == 0)
			continue;
		struct ldc_sref *l = find(t, s->host);
		if (!l || l->host == s->host) /* S is a lead placed in its host */
			continue;
		s->at += l->at;
		s->host = l->host;
	}
	return 0;
}

int ldc_strtab_build(const struct ldc_cache *c, struct ldc_strtab *t, struct gs_err *err)
{
	*t = (struct ldc_strtab){0};
	int r = unique_strings(c, t, err);
	if (r < 0)
		return r;
	group_by_end(t);
	return merge_tails(t, err);
}

int ldc_strtab_place(struct ldc_strtab *t, const char *p, size_t next, const char **write,
		     size_t *wlen, uint32_t *off, struct gs_err *err)
{
	struct ldc_sref *s = find(t, p);
	struct ldc_sref *h = s ? find(t, s->host) : NULL;
	if (!h || h->host != h->p)
		return gs_err_setx(err, EINVAL, "ld.so.cache: string table out of step");
	*write = NULL;
	if (h->off == UNPLACED) {
		h->off = (uint32_t)next;
		*write = h->p;
		*wlen = h->len + 1;
	}
	*off = h->off + s->at;
	return 0;
}

void ldc_strtab_clear(struct ldc_strtab *t)
{
	free(t->v);
	*t = (struct ldc_strtab){0};
}
