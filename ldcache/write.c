/* SPDX-License-Identifier: Apache-2.0 */
/* Writing the new format, laid out as ldconfig lays it out: header, entry
 * table, string table, extension directory (generator string and, when
 * used, the glibc-hwcaps names), and an atomic replace in a directory fd. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "internal.h"

struct hwcaps_names {
	const char **v; /* sorted, unique */
	size_t n;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int collect_hwcaps(const struct ldc_cache *c, struct hwcaps_names *h, struct gs_err *err)
{
	h->n = 0;
	h->v = malloc((c->n ? c->n : 1) * sizeof(*h->v));
	if (!h->v)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	for (size_t i = 0; i < c->n; i++)
		if (c->entries[i].hwcaps)
			h->v[h->n++] = c->entries[i].hwcaps;
	qsort(h->v, h->n, sizeof(*h->v), cmp_str);
	size_t w = 0;
	for (size_t i = 0; i < h->n; i++)
		if (w == 0 || strcmp(h->v[w - 1], h->v[i]) != 0)
			h->v[w++] = h->v[i];
	h->n = w;
	return 0;
}

static uint32_t hwcaps_index(const struct hwcaps_names *h, const char *name)
{
	const char **p = bsearch(&name, h->v, h->n, sizeof(*h->v), cmp_str);
	return (uint32_t)(p - h->v);
}

/* A growing output buffer; sizes are checked to stay below 4 GiB since the
 * format stores 32-bit offsets. */
struct out {
	unsigned char *buf;
	size_t len, cap;
};

static int out_put(struct out *o, const void *p, size_t n, struct gs_err *err)
{
	size_t need;
	if (__builtin_add_overflow(o->len, n, &need) || need > UINT32_MAX)
		return gs_err_setx(err, EFBIG, "ld.so.cache would exceed 4 GiB");
	if (need > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < need)
			cap *= 2;
		unsigned char *b = realloc(o->buf, cap);
		if (!b)
			return gs_err_set(err, ENOMEM, "ld.so.cache");
		o->buf = b;
		o->cap = cap;
	}
	if (p)
		memcpy(o->buf + o->len, p, n);
	else
		memset(o->buf + o->len, 0, n);
	o->len = need;
	return 0;
}

static int out_str(struct out *o, const char *s, uint32_t *off, struct gs_err *err)
{
	*off = (uint32_t)o->len;
	return out_put(o, s, strlen(s) + 1, err);
}

static void put32(struct out *o, size_t at, uint32_t v)
{
	memcpy(o->buf + at, &v, sizeof(v));
}

/* Writes string P (its host, on first use: strings come in entry order,
 * as ldconfig writes them) and gives its offset. */
static int put_string(struct ldc_strtab *t, struct out *o, const char *p, uint32_t *off,
		      struct gs_err *err)
{
	const char *w = NULL;
	size_t wlen = 0;
	int r = ldc_strtab_place(t, p, o->len, &w, &wlen, off, err);
	return r < 0 || !w ? r : out_put(o, w, wlen, err);
}

static int write_strings(const struct ldc_cache *c, struct ldc_strtab *t,
			 const struct hwcaps_names *h, struct out *o, uint32_t *hw_off,
			 struct gs_err *err)
{
	int r = 0;
	for (size_t i = 0; r >= 0 && i < c->n; i++) {
		const struct ldc_entry *e = &c->entries[i];
		struct ldc_new_entry ne = {.flags = e->flags, .osversion = e->osversion, .hwcap = e->hwcap};
		r = put_string(t, o, e->key, &ne.key, err);
		if (r >= 0)
			r = put_string(t, o, e->value, &ne.value, err);
		if (e->hwcaps) {
			uint64_t isa = (e->hwcap >> 32) & LDC_HWCAP_ISA_LEVEL_MASK;
			ne.hwcap = LDC_HWCAP_EXTENSION | (isa << 32) | hwcaps_index(h, e->hwcaps);
		}
		memcpy(o->buf + LDC_NEW_HDR_SIZE + i * LDC_NEW_ENTRY_SIZE, &ne, sizeof(ne));
	}
	for (size_t i = 0; r >= 0 && i < h->n; i++)
		r = out_str(o, h->v[i], &hw_off[i], err);
	return r;
}

static int write_extensions(struct out *o, const struct hwcaps_names *h, const uint32_t *hw_off,
			    const char *generator, struct gs_err *err)
{
	uint32_t count = h->n ? 2 : 1;
	size_t dir = o->len;
	size_t hw_array = dir + LDC_EXT_HDR_SIZE + count * LDC_EXT_SECTION_SIZE;
	size_t gen = hw_array + h->n * 4;
	size_t genlen = strlen(generator);
	int r = out_put(o, NULL, gen + genlen - dir, err);
	if (r < 0)
		return r;
	put32(o, dir, LDC_EXT_MAGIC);
	put32(o, dir + 4, count);
	size_t s = dir + LDC_EXT_HDR_SIZE;
	put32(o, s, LDC_EXT_TAG_GENERATOR);
	put32(o, s + 4, 0);
	put32(o, s + 8, (uint32_t)gen);
	put32(o, s + 12, (uint32_t)genlen);
	if (h->n) {
		s += LDC_EXT_SECTION_SIZE;
		put32(o, s, LDC_EXT_TAG_GLIBC_HWCAPS);
		put32(o, s + 4, 0);
		put32(o, s + 8, (uint32_t)hw_array);
		put32(o, s + 12, (uint32_t)(h->n * 4));
		for (size_t i = 0; i < h->n; i++)
			put32(o, hw_array + i * 4, hw_off[i]);
	}
	memcpy(o->buf + gen, generator, genlen);
	return 0;
}

/* The exact size of the file, so that the buffer is allocated once (no
 * doubling: the output never costs more than itself). */
static int total_size(const struct ldc_cache *c, const struct ldc_strtab *t,
		      const struct hwcaps_names *h, const char *generator, size_t *out,
		      struct gs_err *err)
{
	size_t n = LDC_NEW_HDR_SIZE + c->n * LDC_NEW_ENTRY_SIZE + t->bytes + 3;
	for (size_t i = 0; i < h->n; i++)
		n += strlen(h->v[i]) + 1;
	n += LDC_EXT_HDR_SIZE + 2 * LDC_EXT_SECTION_SIZE + h->n * 4 + strlen(generator);
	/* what we write, we (and every later run) must be able to read */
	if (n > LDC_FILE_MAX)
		return gs_err_setx(err, EFBIG,
				   "ld.so.cache would be %zu bytes (%zu entries), more than the %u bytes a cache may have",
				   n, c->n, LDC_FILE_MAX);
	*out = n;
	return 0;
}

static int serialize(const struct ldc_cache *c, const struct hwcaps_names *h,
		     const char *generator, struct out *o, struct gs_err *err)
{
	struct ldc_new_header hdr = {0};
	struct ldc_strtab t = {0};
	_cleanup_free_ uint32_t *hw_off = calloc(h->n ? h->n : 1, sizeof(*hw_off));
	if (!hw_off)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	if (c->n > (UINT32_MAX - LDC_NEW_HDR_SIZE) / LDC_NEW_ENTRY_SIZE)
		return gs_err_setx(err, EFBIG, "ld.so.cache: too many entries (%zu)", c->n);
	int r = ldc_strtab_build(c, &t, err);
	size_t total = 0;
	if (r >= 0)
		r = total_size(c, &t, h, generator, &total, err);
	if (r >= 0 && !(o->buf = malloc(total)))
		r = gs_err_set(err, ENOMEM, "ld.so.cache");
	o->cap = total;
	if (r >= 0)
		r = out_put(o, NULL, LDC_NEW_HDR_SIZE + c->n * LDC_NEW_ENTRY_SIZE, err);
	size_t strings = o->len;
	if (r >= 0)
		r = write_strings(c, &t, h, o, hw_off, err);
	ldc_strtab_clear(&t);
	if (r < 0)
		return r;
	memcpy(hdr.magic, LDC_MAGIC_NEW, LDC_MAGIC_NEW_LEN);
	memcpy(hdr.version, LDC_VERSION_NEW, LDC_VERSION_NEW_LEN);
	hdr.nlibs = (uint32_t)c->n;
	hdr.len_strings = (uint32_t)(o->len - strings);
	hdr.flags = LDC_ENDIAN_LITTLE;
	r = out_put(o, NULL, (4 - o->len % 4) % 4, err);
	if (r < 0)
		return r;
	hdr.extension_offset = (uint32_t)o->len;
	memcpy(o->buf, &hdr, sizeof(hdr));
	return write_extensions(o, h, hw_off, generator, err);
}

int ldc_cache_serialize(const struct ldc_cache *c, const char *generator, void **out,
			size_t *out_len, struct gs_err *err)
{
	struct hwcaps_names h = {0};
	struct out o = {0};
	int r = collect_hwcaps(c, &h, err);
	if (r >= 0)
		r = serialize(c, &h, generator ? generator : "gpu-stage", &o, err);
	free(h.v);
	if (r < 0) {
		free(o.buf);
		return r;
	}
	*out = o.buf;
	*out_len = o.len;
	return 0;
}

/* ---- splicing: an image's cache with entries inserted ------------------------------ */

/* The bytes SRC's new strings take: each value, and each key that does not
 * end its value (a SONAME is the last component of its path: it points
 * into the value, as ldconfig's tail merging would have it). */
static size_t key_in_value(const struct ldc_entry *e)
{
	size_t k = strlen(e->key), v = strlen(e->value);
	return k < v && e->value[v - k - 1] == '/' && !strcmp(e->value + v - k, e->key) ? v - k : SIZE_MAX;
}

static size_t added_bytes(const struct ldc_cache *add)
{
	size_t n = 0;
	for (size_t i = 0; i < add->n; i++) {
		const struct ldc_entry *e = &add->entries[i];
		n += strlen(e->value) + 1;
		if (key_in_value(e) == SIZE_MAX)
			n += strlen(e->key) + 1;
	}
	return n;
}

struct splice {
	const struct ldc_cache *img, *add;
	struct out *o;
	size_t shift;    /* the image's strings lie SHIFT bytes later in ours */
	size_t next_str; /* where ADD's next string goes */
};

static void put_entry(struct splice *sp, size_t slot, const struct ldc_entry *e, uint32_t key,
		      uint32_t value)
{
	struct ldc_new_entry ne = {.flags = e->flags, .key = key, .value = value,
				   .osversion = e->osversion, .hwcap = e->hwcap};
	memcpy(sp->o->buf + LDC_NEW_HDR_SIZE + slot * LDC_NEW_ENTRY_SIZE, &ne, sizeof(ne));
}

static void put_image_entry(struct splice *sp, size_t slot, const struct ldc_entry *e)
{
	const char *f = sp->img->raw.file;
	put_entry(sp, slot, e, (uint32_t)((size_t)(e->key - f) + sp->shift),
		  (uint32_t)((size_t)(e->value - f) + sp->shift));
}

static void put_added_entry(struct splice *sp, size_t slot, const struct ldc_entry *e)
{
	size_t vlen = strlen(e->value) + 1, at = key_in_value(e);
	uint32_t value = (uint32_t)sp->next_str;
	memcpy(sp->o->buf + sp->next_str, e->value, vlen);
	sp->next_str += vlen;
	uint32_t key = value + (uint32_t)at;
	if (at == SIZE_MAX) {
		size_t klen = strlen(e->key) + 1;
		key = (uint32_t)sp->next_str;
		memcpy(sp->o->buf + sp->next_str, e->key, klen);
		sp->next_str += klen;
	}
	put_entry(sp, slot, e, key, value);
}

/* The first of IMG's entries from FROM on that E goes before (E first
 * among equals), by binary search: IMG is sorted. */
static size_t insertion_point(const struct ldc_cache *img, size_t from, const struct ldc_entry *e)
{
	size_t lo = from, hi = img->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ldc_entry_cmp(e, &img->entries[mid]) <= 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The entry table: IMG's and ADD's entries merged in ldconfig's order, an
 * added entry first among equals (the one ld.so then picks).  ADD is small
 * and sorted: each of its entries finds its place by binary search, so a
 * 2,000-library image costs a few dozen comparisons, not thousands. */
static void splice_entries(struct splice *sp)
{
	const struct ldc_cache *img = sp->img, *add = sp->add;
	size_t i = 0, slot = 0;
	for (size_t j = 0; j <= add->n; j++) {
		size_t upto = j < add->n ? insertion_point(img, i, &add->entries[j]) : img->n;
		while (i < upto)
			put_image_entry(sp, slot++, &img->entries[i++]);
		if (j < add->n)
			put_added_entry(sp, slot++, &add->entries[j]);
	}
}

int ldc_cache_splice(const struct ldc_cache *img, const struct ldc_cache *add,
		     const char *generator, void **out, size_t *out_len, struct gs_err *err)
{
	if (!img->raw.file || img->n != img->raw.nlibs || !img->sorted || !add->sorted)
		return 1;
	for (size_t i = 0; i < add->n; i++)
		if (add->entries[i].hwcaps)
			return 1;
	generator = generator ? generator : "gpu-stage";
	size_t n = img->n + add->n, table = img->raw.str_hi - img->raw.str_lo;
	size_t strings = LDC_NEW_HDR_SIZE + n * LDC_NEW_ENTRY_SIZE;
	size_t str_end = strings + table + added_bytes(add);
	size_t ext = str_end + (4 - str_end % 4) % 4;
	size_t total = ext + LDC_EXT_HDR_SIZE + LDC_EXT_SECTION_SIZE + strlen(generator);
	if (n > (UINT32_MAX - LDC_NEW_HDR_SIZE) / LDC_NEW_ENTRY_SIZE || total > LDC_FILE_MAX)
		return gs_err_setx(err, EFBIG,
				   "ld.so.cache would be %zu bytes (%zu entries), more than the %u bytes a cache may have",
				   total, n, LDC_FILE_MAX);
	/* every byte is written below, but for the padding before EXT */
	struct out o = {.buf = malloc(total), .cap = total, .len = ext};
	if (!o.buf)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	memset(o.buf + str_end, 0, ext - str_end);
	struct splice sp = {.img = img, .add = add, .o = &o, .shift = strings - img->raw.str_lo,
			    .next_str = strings + table};
	memcpy(o.buf + strings, img->raw.file + img->raw.str_lo, table);
	splice_entries(&sp);
	struct ldc_new_header hdr = {0};
	memcpy(hdr.magic, LDC_MAGIC_NEW, LDC_MAGIC_NEW_LEN);
	memcpy(hdr.version, LDC_VERSION_NEW, LDC_VERSION_NEW_LEN);
	hdr.nlibs = (uint32_t)n;
	hdr.len_strings = (uint32_t)(str_end - strings);
	hdr.flags = LDC_ENDIAN_LITTLE;
	hdr.extension_offset = (uint32_t)ext;
	memcpy(o.buf, &hdr, sizeof(hdr));
	struct hwcaps_names none = {0};
	int r = write_extensions(&o, &none, NULL, generator, err);
	if (r < 0) {
		free(o.buf);
		return r;
	}
	*out = o.buf;
	*out_len = o.len;
	return 0;
}


int ldc_cache_write_at(const struct ldc_cache *c, int dirfd, const char *name,
		       const char *generator, struct gs_err *err)
{
	_cleanup_free_ void *buf = NULL;
	size_t len = 0;
	if (strchr(name, '/') || strlen(name) > 200)
		return gs_err_setx(err, EINVAL, "%s: cache name must be a single path component", name);
	int r = ldc_cache_serialize(c, generator, &buf, &len, err);
	if (r < 0)
		return r;
	/* the new cache reaches the disk before it replaces the old one; the
	 * rename is left to the file system's commit, as ldconfig leaves it:
	 * after a crash the old cache or the new, each whole */
	return gs_write_atomic_at(dirfd, name, buf, len, 0644, GS_WRITE_FSYNC, err);
}
