/* SPDX-License-Identifier: Apache-2.0 */
/* The string table of a cache being written: every distinct string once,
 * and a string that ends another one (a SONAME at the end of its path, the
 * same name in two entries) pointed into that one, as ldconfig's tail
 * merging does.  The bytes depend only on the entries, not on where their
 * strings live in memory, so a cache rebuilt from scratch and the same
 * cache merged from a parsed file are identical.
 *
 * Cost stays proportional to the input, however it is crafted: addresses
 * are made unique first (entries sharing one string cost one slot; a hash
 * table on the address, so that writing a cache of thousands of entries
 * at every container start costs no sorting by address);
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

/* ---- the address table ------------------------------------------------------- */

static size_t slot_of(const struct ldc_strtab *t, const char *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 32) & t->mask;
}

/* The string at address P, or NULL. */
static struct ldc_sref *find(const struct ldc_strtab *t, const char *p)
{
	for (size_t i = slot_of(t, p);; i = (i + 1) & t->mask) {
		uint32_t k = t->slot[i];
		if (k == 0)
			return NULL;
		if (t->v[k - 1].p == p)
			return &t->v[k - 1];
	}
}

/* Adds P unless it is there (the table has room: at least 2n slots). */
static void add(struct ldc_strtab *t, const char *p)
{
	size_t i = slot_of(t, p);
	for (; t->slot[i]; i = (i + 1) & t->mask)
		if (t->v[t->slot[i] - 1].p == p)
			return;
	t->v[t->n] = (struct ldc_sref){.p = p, .off = UNPLACED};
	t->slot[i] = (uint32_t)++t->n;
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

/* Unique addresses of C's keys and values, in the table. */
static int unique_strings(const struct ldc_cache *c, struct ldc_strtab *t, struct gs_err *err)
{
	size_t n, size = 2;
	if (__builtin_mul_overflow(c->n, 2, &n) || n >= UINT32_MAX / 4)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	while (size < 2 * n)
		size *= 2;
	t->v = calloc(n ? n : 1, sizeof(*t->v));
	t->slot = calloc(size, sizeof(*t->slot));
	if (!t->v || !t->slot)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	t->mask = size - 1;
	for (size_t i = 0; i < c->n; i++) {
		add(t, c->entries[i].key);
		add(t, c->entries[i].value);
	}
	return 0;
}

/* Groups by NUL: strings ending at the same NUL are suffixes of one
 * another; the one at the lowest address (the longest) leads and the
 * others are placed inside it.  A second table, on the end address,
 * finds each group's lead. */
static int group_by_end(struct ldc_strtab *t, struct gs_err *err)
{
	_cleanup_free_ uint32_t *lead = calloc(t->mask + 1, sizeof(*lead));
	if (!lead)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	/* every string of a cache is at most LDC_VALUE_MAX bytes (parse.c,
	 * ldc_cache_add): strlen costs at most that much per distinct one */
	for (size_t i = 0; i < t->n; i++) {
		struct ldc_sref *s = &t->v[i];
		s->len = strlen(s->p);
		const char *end = s->p + s->len;
		size_t k = slot_of(t, end);
		for (; lead[k] && t->v[lead[k] - 1].p + t->v[lead[k] - 1].len != end;
		     k = (k + 1) & t->mask)
			;
		if (!lead[k] || s->p < t->v[lead[k] - 1].p)
			lead[k] = (uint32_t)(i + 1);
	}
	for (size_t i = 0; i < t->n; i++) {
		struct ldc_sref *s = &t->v[i];
		const char *end = s->p + s->len;
		size_t k = slot_of(t, end);
		while (t->v[lead[k] - 1].p + t->v[lead[k] - 1].len != end)
			k = (k + 1) & t->mask;
		s->host = t->v[lead[k] - 1].p; /* for now: the lead */
		s->at = (uint32_t)(s->p - s->host);
	}
	return 0;
}

/* ---- tail order, fast ------------------------------------------------------------
 * cmp_tail's order, without a comparison call per step for most pairs: a
 * 63-bit key holds the last 7 bytes (last first, 9 bits each; a byte past
 * the start of a shorter string is 256, after every real byte, as
 * cmp_tail puts an exhausted string after the longer one), so comparing
 * keys is comparing those bytes in cmp_tail's order; a stable radix sort
 * on the key, then cmp_tail only inside runs of equal keys (strings that
 * share their last 7 bytes, or equal short ones). */

#define TAIL_BYTES 7

struct tail_item {
	uint64_t key;
	struct ldc_sref *s;
};

static uint64_t tail_key(const struct ldc_sref *s)
{
	uint64_t k = 0;
	for (size_t j = 0; j < TAIL_BYTES; j++) {
		unsigned int d = j < s->len ? (unsigned char)s->p[s->len - 1 - j] : 256u;
		k = k << 9 | d;
	}
	return k;
}

static int cmp_item(const void *a, const void *b)
{
	return cmp_tail(&((const struct tail_item *)a)->s, &((const struct tail_item *)b)->s);
}

/* LEADS (N) into tail order, with the help of V (N items). */
static void sort_tails(struct ldc_sref **leads, struct tail_item *v, struct tail_item *tmp,
		       size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (struct tail_item){tail_key(leads[i]), leads[i]};
	size_t count[257];
	struct tail_item *src = v, *dst = tmp;
	for (unsigned int shift = 0; shift < 64; shift += 8) {
		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[((src[i].key >> shift) & 0xff) + 1]++;
		bool uniform = false;
		for (size_t d = 1; d <= 256 && !uniform; d++)
			uniform = count[d] == n;
		if (uniform)
			continue;
		for (size_t d = 1; d <= 256; d++)
			count[d] += count[d - 1];
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].key >> shift) & 0xff]++] = src[i];
		struct tail_item *t = src;
		src = dst;
		dst = t;
	}
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && src[j].key == src[i].key)
			j++;
		if (j - i > 1)
			qsort(src + i, j - i, sizeof(*src), cmp_item);
		i = j;
	}
	for (size_t i = 0; i < n; i++)
		leads[i] = src[i].s;
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
	_cleanup_free_ struct tail_item *items = malloc((n ? 2 * n : 1) * sizeof(*items));
	if (!items)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	sort_tails(leads, items, items + n, n);
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
	r = group_by_end(t, err);
	return r < 0 ? r : merge_tails(t, err);
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
	free(t->slot);
	*t = (struct ldc_strtab){0};
}
