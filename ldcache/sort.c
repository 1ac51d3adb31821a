/* SPDX-License-Identifier: Apache-2.0 */
/* ldconfig's entry order.  ld.so binary-searches the cache with
 * _dl_cache_libcmp, so a cache in any other order silently loses entries. */
#include <stdlib.h>

#include "internal.h"

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Digit runs compare as numbers (with glibc's int wrap-around on absurdly
 * long runs), everything else bytewise; a digit sorts after a non-digit. */
int ldc_libcmp(const char *p1, const char *p2)
{
	/* The common prefix compares equal either way, so it is skipped
	 * bytewise (the cost of checking a 2,000-entry cache's order, whose
	 * neighbours share long prefixes) unless the first difference is a
	 * digit: then the digit run it lies in is compared as a number, from
	 * the run's start. */
	size_t d = 0;
	while (p1[d] == p2[d] && p1[d] != '\0')
		d++;
	if (!is_digit(p1[d]) && !is_digit(p2[d]))
		return p1[d] - p2[d];
	while (d > 0 && is_digit(p1[d - 1]))
		d--;
	p1 += d;
	p2 += d;
	while (*p1 != '\0') {
		if (is_digit(*p1)) {
			if (!is_digit(*p2))
				return 1;
			unsigned int v1 = (unsigned int)(*p1++ - '0');
			unsigned int v2 = (unsigned int)(*p2++ - '0');
			while (is_digit(*p1))
				v1 = v1 * 10u + (unsigned int)(*p1++ - '0');
			while (is_digit(*p2))
				v2 = v2 * 10u + (unsigned int)(*p2++ - '0');
			if (v1 != v2)
				return (int)(v1 - v2);
		} else if (is_digit(*p2)) {
			return -1;
		} else if (*p1 != *p2) {
			return *p1 - *p2;
		} else {
			p1++;
			p2++;
		}
	}
	return *p1 - *p2;
}

/* The hwcap value ldconfig compares: zero for glibc-hwcaps entries. */
static uint64_t cmp_hwcap(const struct ldc_entry *e)
{
	return e->hwcaps ? 0 : e->hwcap;
}

/* < 0: A goes before B.  Mirrors ldconfig's compare(). */
int ldc_entry_cmp(const struct ldc_entry *a, const struct ldc_entry *b)
{
	int res = ldc_libcmp(b->key, a->key);
	if (res != 0)
		return res;
	if (a->flags != b->flags)
		return a->flags < b->flags ? 1 : -1;
	if (a->hwcaps && !b->hwcaps)
		return -1;
	if (!a->hwcaps && b->hwcaps)
		return 1;
	if (a->hwcaps && b->hwcaps) {
		res = strcmp(a->hwcaps, b->hwcaps);
		if (res != 0)
			return res;
	}
	uint64_t ha = cmp_hwcap(a), hb = cmp_hwcap(b);
	int ba = __builtin_popcountll(ha), bb = __builtin_popcountll(hb);
	if (ba != bb)
		return bb > ba ? 1 : -1;
	if (ha != hb)
		return hb > ha ? 1 : -1;
	if (a->osversion != b->osversion)
		return b->osversion > a->osversion ? 1 : -1;
	return 0;
}

/* Stable merge sort: equal entries keep their insertion order, as ldconfig's
 * sorted-list insertion keeps the order in which directories were scanned. */
static void merge_sort(struct ldc_entry *v, struct ldc_entry *tmp, size_t n)
{
	if (n < 2)
		return;
	size_t mid = n / 2;
	merge_sort(v, tmp, mid);
	merge_sort(v + mid, tmp, n - mid);
	if (ldc_entry_cmp(&v[mid - 1], &v[mid]) <= 0)
		return;
	size_t i = 0, j = mid, k = 0;
	while (i < mid && j < n)
		tmp[k++] = ldc_entry_cmp(&v[j], &v[i]) < 0 ? v[j++] : v[i++];
	while (i < mid)
		tmp[k++] = v[i++];
	memcpy(v, tmp, k * sizeof(*v));
}

static void insertion_sort(struct ldc_entry *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct ldc_entry e = v[i];
		size_t j = i;
		while (j > 0 && ldc_entry_cmp(&v[j - 1], &e) > 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = e;
	}
}

/* Where the first descent is (N when V is sorted). */
static size_t sorted_prefix(const struct ldc_entry *v, size_t n)
{
	size_t i = 1;
	while (i < n && ldc_entry_cmp(&v[i - 1], &v[i]) <= 0)
		i++;
	return i;
}

void ldc_cache_sort(struct ldc_cache *c)
{
	if (c->n < 2) {
		c->sorted = true;
		return;
	}
	/* the common case (the hook: staged entries, sorted, then the image's,
	 * sorted by ldconfig): at most two sorted runs, one linear merge */
	size_t mid = sorted_prefix(c->entries, c->n);
	if (mid == c->n) {
		c->sorted = true;
		return;
	}
	size_t run2 = mid + sorted_prefix(c->entries + mid, c->n - mid);
	struct ldc_entry *tmp = malloc(c->n * sizeof(*tmp));
	if (tmp && run2 == c->n) {
		struct ldc_entry *v = c->entries;
		size_t i = 0, j = mid, k = 0;
		while (i < mid && j < c->n) /* ties: the first run's first, as a stable sort */
			tmp[k++] = ldc_entry_cmp(&v[j], &v[i]) < 0 ? v[j++] : v[i++];
		while (i < mid)
			tmp[k++] = v[i++];
		while (j < c->n)
			tmp[k++] = v[j++];
		memcpy(v, tmp, c->n * sizeof(*v));
		free(tmp);
		c->sorted = true;
		return;
	}
	if (tmp) {
		merge_sort(c->entries, tmp, c->n);
		free(tmp);
	} else {
		insertion_sort(c->entries, c->n); /* no memory: slower, same order */
	}
	c->sorted = true;
}

bool ldc_entries_sorted(const struct ldc_entry *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (ldc_entry_cmp(&v[i - 1], &v[i]) > 0)
			return false;
	return true;
}

bool ldc_cache_is_sorted(const struct ldc_cache *c)
{
	return c->sorted;
}
