/* SPDX-License-Identifier: Apache-2.0 */
/* A unified diff (the format of `diff -u`, 3 lines of context) for
 * --dry-run: the common first and last lines are set aside, the lines
 * between them are matched by a longest common subsequence (when both
 * sides are small enough for its table; otherwise every line between is
 * shown as removed and added, which is still a correct diff). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gs/cleanup.h"
#include "runtime.h"

#define CONTEXT 3
#define LCS_CELLS (1u << 20) /* the middle's table: at most this many cells */

struct line {
	const char *p;
	size_t n; /* with its '\n', if it has one */
};

struct side {
	struct line *l;
	size_t n;
};

static int split(const char *text, size_t len, struct side *s)
{
	size_t cap = 0;
	s->l = NULL;
	s->n = 0;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (text + i)) + 1 : len - i;
		if (s->n == cap) {
			cap = cap ? cap * 2 : 64;
			struct line *v = realloc(s->l, cap * sizeof(*v));
			if (!v)
				return -1;
			s->l = v;
		}
		s->l[s->n++] = (struct line){text + i, n};
		i += n;
	}
	return 0;
}

static bool same(const struct line *a, const struct line *b)
{
	return a->n == b->n && !memcmp(a->p, b->p, a->n);
}

/* One step of the edit script: ' ' both sides, '-' old only, '+' new only. */
struct op {
	char kind;
	size_t a, b; /* line indices in old and new (the next ones, for + and -) */
};

/* The middle A[a0,a1) -> B[b0,b1) as ops appended to OPS. */
static int middle(const struct side *A, size_t a0, size_t a1, const struct side *B, size_t b0,
		  size_t b1, struct op *ops, size_t *n)
{
	size_t na = a1 - a0, nb = b1 - b0;
	_cleanup_free_ uint32_t *t = NULL;
	if (na && nb && (na + 1) <= LCS_CELLS / (nb + 1))
		t = calloc((na + 1) * (nb + 1), sizeof(*t));
	if (!t) { /* too large (or no memory): all removed, then all added */
		for (size_t i = a0; i < a1; i++)
			ops[(*n)++] = (struct op){'-', i, b0};
		for (size_t j = b0; j < b1; j++)
			ops[(*n)++] = (struct op){'+', a1, j};
		return 0;
	}
#define T(i, j) t[(size_t)(i) * (nb + 1) + (j)]
	for (size_t i = na; i-- > 0;)
		for (size_t j = nb; j-- > 0;)
			T(i, j) = same(&A->l[a0 + i], &B->l[b0 + j])
					  ? T(i + 1, j + 1) + 1
					  : (T(i + 1, j) >= T(i, j + 1) ? T(i + 1, j) : T(i, j + 1));
	size_t i = 0, j = 0;
	while (i < na || j < nb) {
		if (i < na && j < nb && same(&A->l[a0 + i], &B->l[b0 + j])) {
			ops[(*n)++] = (struct op){' ', a0 + i, b0 + j};
			i++, j++;
		} else if (i < na && (j == nb || T(i + 1, j) >= T(i, j + 1))) {
			ops[(*n)++] = (struct op){'-', a0 + i, b0 + j}; /* removals first, as diff */
			i++;
		} else {
			ops[(*n)++] = (struct op){'+', a0 + i, b0 + j};
			j++;
		}
	}
#undef T
	return 0;
}

static void put_line(FILE *f, char kind, const struct line *l)
{
	fputc(kind, f);
	fwrite(l->p, 1, l->n, f);
	if (l->n == 0 || l->p[l->n - 1] != '\n')
		fputs("\n\\ No newline at end of file\n", f);
}

/* "start,count" as diff -u writes it: an empty range names the line before. */
static void range(FILE *f, size_t first, size_t count)
{
	size_t start = count ? first + 1 : first;
	if (count == 1)
		fprintf(f, "%zu", start);
	else
		fprintf(f, "%zu,%zu", start, count);
}

static void hunk(FILE *f, const struct op *ops, size_t from, size_t to, const struct side *A,
		 const struct side *B)
{
	size_t ca = 0, cb = 0;
	for (size_t k = from; k < to; k++) {
		ca += ops[k].kind != '+';
		cb += ops[k].kind != '-';
	}
	fputs("@@ -", f);
	range(f, ops[from].a, ca);
	fputs(" +", f);
	range(f, ops[from].b, cb);
	fputs(" @@\n", f);
	for (size_t k = from; k < to; k++)
		put_line(f, ops[k].kind, ops[k].kind == '+' ? &B->l[ops[k].b] : &A->l[ops[k].a]);
}

static void hunks(FILE *f, const struct op *ops, size_t n, const struct side *A,
		  const struct side *B)
{
	size_t k = 0;
	while (k < n) {
		while (k < n && ops[k].kind == ' ')
			k++;
		if (k == n)
			return;
		size_t from = k > CONTEXT ? k - CONTEXT : 0, last = k; /* last change */
		for (size_t q = k; q < n && q <= last + 2 * CONTEXT; q++)
			if (ops[q].kind != ' ')
				last = q;
		size_t to = last + 1 + CONTEXT < n ? last + 1 + CONTEXT : n;
		hunk(f, ops, from, to, A, B);
		k = to;
	}
}

int rt_diff(FILE *f, const char *old_name, const char *old, size_t old_len, const char *new_name,
	    const char *new, size_t new_len)
{
	struct side A, B;
	if (split(old ? old : "", old ? old_len : 0, &A) < 0)
		return -1;
	if (split(new ? new : "", new ? new_len : 0, &B) < 0) {
		free(A.l);
		return -1;
	}
	size_t pre = 0, suf = 0;
	while (pre < A.n && pre < B.n && same(&A.l[pre], &B.l[pre]))
		pre++;
	while (suf < A.n - pre && suf < B.n - pre && same(&A.l[A.n - 1 - suf], &B.l[B.n - 1 - suf]))
		suf++;
	struct op *ops = malloc((A.n + B.n + 1) * sizeof(*ops));
	int r = -1;
	if (ops) {
		size_t n = 0;
		for (size_t i = 0; i < pre; i++)
			ops[n++] = (struct op){' ', i, i};
		middle(&A, pre, A.n - suf, &B, pre, B.n - suf, ops, &n);
		for (size_t i = suf; i-- > 0;)
			ops[n++] = (struct op){' ', A.n - 1 - i, B.n - 1 - i};
		fprintf(f, "--- %s\n+++ %s\n", old_name, new_name);
		hunks(f, ops, n, &A, &B);
		r = 0;
	}
	free(ops);
	free(A.l);
	free(B.l);
	return r;
}
