/* SPDX-License-Identifier: Apache-2.0 */
/* Reading ld.so.cache: every count and offset is checked against the file
 * size with overflow-safe arithmetic, every string must end with a NUL inside
 * the file.  The parsed cache owns copies of all strings. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "internal.h"

#define ARENA_BLOCK (64u * 1024u)

/* ---- the in-memory cache ------------------------------------------------ */

int ldc_cache_new(struct ldc_cache **out, struct gs_err *err)
{
	struct ldc_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return gs_err_set(err, ENOMEM, "ld.so.cache");
	c->format = LDC_FORMAT_NEW;
	c->sorted = true;
	*out = c;
	return 0;
}

void ldc_cache_free(struct ldc_cache *c)
{
	if (!c)
		return;
	while (c->arena) {
		struct ldc_arena *next = c->arena->next;
		if (c->arena->data != (char *)(c->arena + 1))
			free(c->arena->data);
		free(c->arena);
		c->arena = next;
	}
	free(c->entries);
	free(c->generator);
	free(c);
}

/* A new block of SIZE bytes, linked into C's storage (freed with C). */
static struct ldc_arena *arena_block(struct ldc_cache *c, size_t size)
{
	if (size > SIZE_MAX - sizeof(struct ldc_arena))
		return NULL;
	struct ldc_arena *a = malloc(sizeof(*a) + size);
	if (!a)
		return NULL;
	a->used = 0;
	a->size = size;
	a->data = (char *)(a + 1);
	a->next = c->arena;
	c->arena = a;
	return a;
}

/* Links BUF (SIZE bytes, malloc'd) into C's storage, full; C frees it.
 * NULL (BUF still the caller's) when out of memory. */
static struct ldc_arena *arena_adopt(struct ldc_cache *c, char *buf, size_t size)
{
	struct ldc_arena *a = malloc(sizeof(*a));
	if (!a)
		return NULL;
	a->used = a->size = size;
	a->data = buf;
	a->next = c->arena;
	c->arena = a;
	return a;
}

const char *ldc_strdup(struct ldc_cache *c, const char *s, size_t len)
{
	struct ldc_arena *a = c->arena;
	if (len == SIZE_MAX)
		return NULL;
	if (!a || a->size - a->used < len + 1) {
		a = arena_block(c, len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK);
		if (!a)
			return NULL;
	}
	char *p = a->data + a->used;
	memcpy(p, s, len);
	p[len] = '\0';
	a->used += len + 1;
	return p;
}

/* Room for EXTRA more entries: doubling for one-by-one adds, exactly
 * what is asked for when EXACT (a table read from a file). */
static int reserve_as(struct ldc_cache *c, size_t extra, bool exact, struct gs_err *err)
{
	if (c->cap - c->n >= extra)
		return 0;
	size_t cap = c->cap ? c->cap : 64;
	if (exact && __builtin_add_overflow(c->n, extra, &cap))
		return gs_err_set(err, ENOMEM, "ld.so.cache entries");
	while (cap - c->n < extra) {
		if (__builtin_mul_overflow(cap, 2, &cap))
			return gs_err_set(err, ENOMEM, "ld.so.cache entries");
	}
	size_t bytes;
	if (__builtin_mul_overflow(cap, sizeof(*c->entries), &bytes))
		return gs_err_set(err, ENOMEM, "ld.so.cache entries");
	struct ldc_entry *e = realloc(c->entries, bytes);
	if (!e)
		return gs_err_set(err, ENOMEM, "ld.so.cache entries");
	c->entries = e;
	c->cap = cap;
	return 0;
}

static int reserve(struct ldc_cache *c, size_t extra, struct gs_err *err)
{
	return reserve_as(c, extra, false, err);
}

int ldc_cache_add(struct ldc_cache *c, const struct ldc_entry *e, struct gs_err *err)
{
	if (strlen(e->key) > LDC_KEY_MAX || strlen(e->value) > LDC_VALUE_MAX ||
	    (e->hwcaps && strlen(e->hwcaps) > LDC_KEY_MAX))
		return gs_err_setx(err, EINVAL, "ld.so.cache entry %.64s...: name or path too long",
				   e->key);
	int r = reserve(c, 1, err);
	if (r < 0)
		return r;
	struct ldc_entry copy = *e;
	copy.key = ldc_strdup(c, e->key, strlen(e->key));
	copy.value = ldc_strdup(c, e->value, strlen(e->value));
	copy.hwcaps = e->hwcaps ? ldc_strdup(c, e->hwcaps, strlen(e->hwcaps)) : NULL;
	if (!copy.key || !copy.value || (e->hwcaps && !copy.hwcaps))
		return gs_err_set(err, ENOMEM, "ld.so.cache entry %s", e->key);
	if (c->n > 0 && ldc_entry_cmp(&c->entries[c->n - 1], &copy) > 0)
		c->sorted = false;
	c->raw.file = NULL; /* a string outside the file's table */
	c->entries[c->n++] = copy;
	return 0;
}

int ldc_cache_append(struct ldc_cache *dst, struct ldc_cache *src, struct gs_err *err)
{
	size_t need, bytes;
	if (__builtin_add_overflow(dst->n, src->n, &need) ||
	    __builtin_mul_overflow(need, sizeof(*dst->entries), &bytes))
		return gs_err_set(err, ENOMEM, "ld.so.cache entries");
	if (need > dst->cap) { /* exactly: a large SRC is not doubled */
		struct ldc_entry *e = realloc(dst->entries, bytes ? bytes : 1);
		if (!e)
			return gs_err_set(err, ENOMEM, "ld.so.cache entries");
		dst->entries = e;
		dst->cap = need;
	}
	dst->raw.file = src->raw.file = NULL; /* strings from elsewhere now */
	if (src->n && dst->n && ldc_entry_cmp(&dst->entries[dst->n - 1], &src->entries[0]) > 0)
		dst->sorted = false;
	dst->sorted = dst->sorted && src->sorted;
	if (src->n)
		memcpy(dst->entries + dst->n, src->entries, src->n * sizeof(*src->entries));
	dst->n = need;
	free(src->entries);
	src->entries = NULL;
	src->n = src->cap = 0;
	/* SRC's blocks go behind DST's current one, which stays the one
	 * ldc_strdup fills */
	struct ldc_arena **tail = dst->arena ? &dst->arena->next : &dst->arena;
	struct ldc_arena *rest = *tail;
	*tail = src->arena;
	while (*tail)
		tail = &(*tail)->next;
	*tail = rest;
	src->arena = NULL;
	return 0;
}

void ldc_cache_remove_if(struct ldc_cache *c,
			 bool (*fn)(const struct ldc_entry *e, void *data), void *data)
{
	size_t w = 0;
	for (size_t i = 0; i < c->n; i++)
		if (!fn(&c->entries[i], data))
			c->entries[w++] = c->entries[i];
	c->n = w; /* removing entries keeps a sorted cache sorted */
}

size_t ldc_cache_count(const struct ldc_cache *c)
{
	return c->n;
}

const struct ldc_entry *ldc_cache_entry(const struct ldc_cache *c, size_t i)
{
	return i < c->n ? &c->entries[i] : NULL;
}

enum ldc_format ldc_cache_format(const struct ldc_cache *c)
{
	return c->format;
}

const char *ldc_cache_generator(const struct ldc_cache *c)
{
	return c->generator;
}

bool ldc_cache_has_extensions(const struct ldc_cache *c)
{
	return c->has_ext;
}

/* ---- parsing ------------------------------------------------------------ */

struct src {
	const unsigned char *buf;
	size_t len;
	const char *name;
};

/* The NUL-terminated string at BASE+OFF, checked to lie inside the file
 * and to be at most MAX bytes long.  Only MAX bytes are ever scanned for
 * the NUL, so a cache whose entries all point into one huge string costs
 * time and memory in proportion to its size, not to entries x length. */
static int string_at(const struct src *s, size_t base, uint32_t off, const char *what,
		     size_t max, size_t idx, const char **out, struct gs_err *err)
{
	size_t pos;
	if (__builtin_add_overflow(base, (size_t)off, &pos) || pos >= s->len)
		return gs_err_setx(err, EBADMSG,
				   "%s: entry %zu: %s offset %u is past the end of the file (%zu bytes)",
				   s->name, idx, what, off, s->len);
	size_t room = s->len - pos;
	const unsigned char *nul = memchr(s->buf + pos, '\0', room < max + 1 ? room : max + 1);
	if (!nul && room > max)
		return gs_err_setx(err, EBADMSG,
				   "%s: entry %zu: %s at offset %zu is longer than %zu bytes (no library name or path is)",
				   s->name, idx, what, pos, max);
	if (!nul)
		return gs_err_setx(err, EBADMSG,
				   "%s: entry %zu: %s at offset %zu is not NUL-terminated inside the file",
				   s->name, idx, what, pos);
	*out = (const char *)s->buf + pos;
	return 0;
}

/* The entry points into the file's bytes, which the cache owns: no string
 * is copied, so memory stays proportional to the file size. */
static int add_raw(struct ldc_cache *c, const struct src *s, size_t base, size_t idx,
		   int32_t flags, uint32_t key, uint32_t value, uint32_t osv,
		   uint64_t hwcap, const char *hwcaps, struct gs_err *err)
{
	const char *k, *v;
	int r = string_at(s, base, key, "key", LDC_KEY_MAX, idx, &k, err);
	if (r < 0)
		return r;
	r = string_at(s, base, value, "value", LDC_VALUE_MAX, idx, &v, err);
	if (r < 0)
		return r;
	struct ldc_entry *e = &c->entries[c->n];
	e->key = k;
	e->value = v;
	e->hwcaps = hwcaps;
	e->flags = flags;
	e->osversion = osv;
	e->hwcap = hwcap;
	c->n++;
	return 0;
}

static int parse_old_entries(struct ldc_cache *c, const struct src *s, uint32_t nlibs,
			     struct gs_err *err)
{
	size_t strbase = LDC_OLD_HDR_SIZE + (size_t)nlibs * LDC_OLD_ENTRY_SIZE;
	int r = reserve_as(c, nlibs, true, err);
	for (uint32_t i = 0; r >= 0 && i < nlibs; i++) {
		const unsigned char *p = s->buf + LDC_OLD_HDR_SIZE + (size_t)i * LDC_OLD_ENTRY_SIZE;
		r = add_raw(c, s, strbase, i, (int32_t)ldc_rd32(p), ldc_rd32(p + 4),
			    ldc_rd32(p + 8), 0, 0, NULL, err);
	}
	return r;
}

/* Checks one extension section's bounds; stores it when the tag is known. */
static int ext_section(const struct src *s, const unsigned char *p, uint32_t i,
		       size_t sec_off[LDC_EXT_TAG_COUNT], size_t sec_size[LDC_EXT_TAG_COUNT],
		       struct gs_err *err)
{
	uint32_t tag = ldc_rd32(p), off = ldc_rd32(p + 8), size = ldc_rd32(p + 12);
	size_t end;
	if (__builtin_add_overflow((size_t)off, (size_t)size, &end) || end > s->len)
		return gs_err_setx(err, EBADMSG,
				   "%s: extension section %u (tag %u): data at %u+%u is past the end of the file",
				   s->name, i, tag, off, size);
	if (tag < LDC_EXT_TAG_COUNT) {
		sec_off[tag] = off;
		sec_size[tag] = size;
	}
	return 0;
}

struct ext_info {
	size_t hwcaps_off, hwcaps_count; /* array of u32 string offsets (file-relative) */
	bool has_hwcaps;
};

static int parse_extensions(struct ldc_cache *c, const struct src *s, uint32_t ext_off,
			    struct ext_info *info, struct gs_err *err)
{
	size_t sec_off[LDC_EXT_TAG_COUNT] = {0}, sec_size[LDC_EXT_TAG_COUNT] = {0};
	size_t end;
	if (ext_off == 0)
		return 0;
	if (ext_off % 4 != 0)
		return gs_err_setx(err, EBADMSG, "%s: extension offset %u is not 4-byte aligned",
				   s->name, ext_off);
	if (__builtin_add_overflow((size_t)ext_off, LDC_EXT_HDR_SIZE, &end) || end > s->len)
		return gs_err_setx(err, EBADMSG,
				   "%s: extension directory at offset %u is past the end of the file (%zu bytes)",
				   s->name, ext_off, s->len);
	const unsigned char *p = s->buf + ext_off;
	if (ldc_rd32(p) != LDC_EXT_MAGIC)
		return gs_err_setx(err, EBADMSG, "%s: bad extension magic 0x%08x at offset %u",
				   s->name, ldc_rd32(p), ext_off);
	uint32_t count = ldc_rd32(p + 4);
	size_t arr;
	if (__builtin_mul_overflow((size_t)count, LDC_EXT_SECTION_SIZE, &arr) ||
	    __builtin_add_overflow(end, arr, &end) || end > s->len)
		return gs_err_setx(err, EBADMSG,
				   "%s: extension directory claims %u sections, past the end of the file",
				   s->name, count);
	for (uint32_t i = 0; i < count; i++) {
		int r = ext_section(s, p + LDC_EXT_HDR_SIZE + (size_t)i * LDC_EXT_SECTION_SIZE, i,
				    sec_off, sec_size, err);
		if (r < 0)
			return r;
	}
	c->has_ext = true;
	if (sec_off[LDC_EXT_TAG_GENERATOR] || sec_size[LDC_EXT_TAG_GENERATOR]) {
		c->generator = strndup((const char *)s->buf + sec_off[LDC_EXT_TAG_GENERATOR],
				       sec_size[LDC_EXT_TAG_GENERATOR]);
		if (!c->generator)
			return gs_err_set(err, ENOMEM, "%s", s->name);
	}
	if (sec_off[LDC_EXT_TAG_GLIBC_HWCAPS] || sec_size[LDC_EXT_TAG_GLIBC_HWCAPS]) {
		info->has_hwcaps = true;
		info->hwcaps_off = sec_off[LDC_EXT_TAG_GLIBC_HWCAPS];
		info->hwcaps_count = sec_size[LDC_EXT_TAG_GLIBC_HWCAPS] / 4;
	}
	return 0;
}

/* Resolves the glibc-hwcaps subdirectory name of an extension entry. */
static int hwcaps_name(const struct src *s, const struct ext_info *x,
		       size_t idx, uint64_t hwcap, const char **out, struct gs_err *err)
{
	uint32_t index = (uint32_t)hwcap;
	if (!x->has_hwcaps || index >= x->hwcaps_count)
		return gs_err_setx(err, EBADMSG,
				   "%s: entry %zu: glibc-hwcaps index %u out of range (%zu names)",
				   s->name, idx, index, x->has_hwcaps ? x->hwcaps_count : 0);
	uint32_t stroff = ldc_rd32(s->buf + x->hwcaps_off + (size_t)index * 4);
	return string_at(s, 0, stroff, "glibc-hwcaps name", LDC_KEY_MAX, idx, out, err);
}

static int parse_new_entries(struct ldc_cache *c, const struct src *s, size_t base,
			     uint32_t nlibs, const struct ext_info *x, struct gs_err *err)
{
	int r = reserve_as(c, nlibs, true, err);
	for (uint32_t i = 0; r >= 0 && i < nlibs; i++) {
		const unsigned char *p = s->buf + base + LDC_NEW_HDR_SIZE + (size_t)i * LDC_NEW_ENTRY_SIZE;
		uint64_t hwcap = ldc_rd64(p + 16);
		const char *hwcaps = NULL;
		if (hwcap & LDC_HWCAP_EXTENSION) {
			r = hwcaps_name(s, x, i, hwcap, &hwcaps, err);
			if (r < 0)
				break;
			/* keep only the ISA level; index and marker are recomputed on write */
			hwcap &= (uint64_t)LDC_HWCAP_ISA_LEVEL_MASK << 32;
		}
		r = add_raw(c, s, base, i, (int32_t)ldc_rd32(p), ldc_rd32(p + 4), ldc_rd32(p + 8),
			    ldc_rd32(p + 12), hwcap, hwcaps, err);
	}
	return r;
}

/* Records the file's string table [LO, LO + LEN) when every entry's
 * strings lie inside it (as ldconfig and our writer lay a cache out) and no
 * entry is a glibc-hwcaps one: ldc_cache_splice may then copy the table
 * whole.  A cache laid out any other way is only ever rewritten. */
static void note_raw(struct ldc_cache *c, const struct src *s, size_t lo, uint32_t len,
		     uint32_t ext_off)
{
	size_t hi = lo + len;
	if (hi > s->len || (ext_off && ext_off < hi))
		return;
	const char *a = (const char *)s->buf + lo, *b = (const char *)s->buf + hi;
	for (size_t i = 0; i < c->n; i++) {
		const struct ldc_entry *e = &c->entries[i];
		/* each string's NUL lies inside the file (string_at): inside the
		 * table too, when the table ends with a NUL */
		if (e->hwcaps || e->key < a || e->key >= b || e->value < a || e->value >= b)
			return;
	}
	if (len && b[-1] != '\0')
		return;
	c->raw.file = (const char *)s->buf;
	c->raw.str_lo = lo;
	c->raw.str_hi = hi;
	c->raw.nlibs = c->n;
}

static int parse_new(struct ldc_cache *c, const struct src *s, size_t base, struct gs_err *err)
{
	struct ldc_new_header h;
	size_t end;
	if (s->len - base < LDC_NEW_HDR_SIZE)
		return gs_err_setx(err, EBADMSG, "%s: truncated header (%zu bytes, need %zu)",
				   s->name, s->len - base, (size_t)LDC_NEW_HDR_SIZE);
	memcpy(&h, s->buf + base, sizeof(h));
	if (memcmp(h.magic, LDC_MAGIC_NEW, LDC_MAGIC_NEW_LEN) != 0)
		return gs_err_setx(err, EBADMSG, "%s: not an ld.so.cache (bad magic)", s->name);
	if (memcmp(h.version, LDC_VERSION_NEW, LDC_VERSION_NEW_LEN) != 0)
		return gs_err_setx(err, EBADMSG, "%s: unsupported cache version \"%.3s\" (want 1.1)",
				   s->name, h.version);
	uint8_t endian = h.flags & LDC_ENDIAN_MASK;
	/* glibc's cache_file_new_matches_endian: 0 (no information) or ours */
	if (h.flags != 0 && endian == LDC_ENDIAN_BIG)
		return gs_err_setx(err, EBADMSG, "%s: cache was written for a big-endian machine (flags 0x%02x)",
				   s->name, h.flags);
	if (h.flags != 0 && endian != LDC_ENDIAN_LITTLE)
		return gs_err_setx(err, EBADMSG, "%s: invalid byte-order flags 0x%02x in the header",
				   s->name, h.flags);
	size_t table;
	if (__builtin_mul_overflow((size_t)h.nlibs, LDC_NEW_ENTRY_SIZE, &table) ||
	    __builtin_add_overflow(base + LDC_NEW_HDR_SIZE, table, &end) || end > s->len)
		return gs_err_setx(err, EBADMSG,
				   "%s: %u entries do not fit in the file (%zu bytes)",
				   s->name, h.nlibs, s->len);
	struct ext_info x = {0};
	int r = parse_extensions(c, s, h.extension_offset, &x, err);
	if (r < 0)
		return r;
	r = parse_new_entries(c, s, base, h.nlibs, &x, err);
	if (r >= 0 && base == 0)
		note_raw(c, s, end, h.len_strings, h.extension_offset);
	return r;
}

static int parse_buf(struct ldc_cache *c, const struct src *s, struct gs_err *err)
{
	if (s->len == 0)
		return gs_err_setx(err, EBADMSG, "%s: empty file, not an ld.so.cache", s->name);
	if (s->len < LDC_OLD_HDR_SIZE)
		return gs_err_setx(err, EBADMSG, "%s: truncated header (%zu bytes)", s->name, s->len);
	if (memcmp(s->buf, LDC_MAGIC_OLD, LDC_MAGIC_OLD_LEN) != 0) {
		c->format = LDC_FORMAT_NEW;
		return parse_new(c, s, 0, err);
	}
	uint32_t nlibs = ldc_rd32(s->buf + 12);
	if ((s->len - LDC_OLD_HDR_SIZE) / LDC_OLD_ENTRY_SIZE < nlibs)
		return gs_err_setx(err, EBADMSG, "%s: %u old-format entries do not fit in the file (%zu bytes)",
				   s->name, nlibs, s->len);
	size_t table_end = LDC_OLD_HDR_SIZE + (size_t)nlibs * LDC_OLD_ENTRY_SIZE;
	size_t newbase = (table_end + LDC_NEW_ALIGN - 1) & ~(size_t)(LDC_NEW_ALIGN - 1);
	if (s->len > newbase + LDC_NEW_HDR_SIZE &&
	    memcmp(s->buf + newbase, LDC_MAGIC_NEW, LDC_MAGIC_NEW_LEN) == 0 &&
	    memcmp(s->buf + newbase + LDC_MAGIC_NEW_LEN, LDC_VERSION_NEW, LDC_VERSION_NEW_LEN) == 0) {
		c->format = LDC_FORMAT_COMPAT;
		return parse_new(c, s, newbase, err);
	}
	c->format = LDC_FORMAT_OLD;
	return parse_old_entries(c, s, nlibs, err);
}

/* Parses the LEN bytes of BLOCK, a block of C's own storage. */
static int parse_block(struct ldc_cache *c, const struct ldc_arena *block, size_t len,
		       const char *name, struct gs_err *err)
{
	struct src s = {(const unsigned char *)block->data, len, name ? name : "ld.so.cache"};
	int r = parse_buf(c, &s, err);
	if (r < 0)
		return r;
	c->sorted = ldc_entries_sorted(c->entries, c->n);
	return 0;
}

int ldc_cache_parse(const void *buf, size_t len, const char *name, struct ldc_cache **out,
		    struct gs_err *err)
{
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	if (len > LDC_FILE_MAX)
		return gs_err_setx(err, EFBIG, "%s: too large for an ld.so.cache (%zu bytes, at most %u)",
				   name ? name : "ld.so.cache", len, LDC_FILE_MAX);
	int r = ldc_cache_new(&c, err);
	if (r < 0)
		return r;
	struct ldc_arena *block = arena_block(c, len ? len : 1);
	if (!block)
		return gs_err_set(err, ENOMEM, "%s", name ? name : "ld.so.cache");
	memcpy(block->data, buf, len);
	block->used = block->size;
	r = parse_block(c, block, len, name, err);
	if (r < 0)
		return r;
	*out = steal_ptr(&c);
	return 0;
}

/* Reads the whole file with read(2) (gs_read_all_fd), not mmap: a file
 * that shrinks while we read it (a hostile rootfs can do that) must give an
 * error, not SIGBUS.  The buffer read becomes the cache's storage: the
 * file is held once. */
int ldc_cache_load_fd(int fd, const char *name, struct ldc_cache **out, struct gs_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", name);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EBADMSG, "%s: not a regular file", name);
	if ((uint64_t)st.st_size > LDC_FILE_MAX)
		return gs_err_setx(err, EFBIG,
				   "%s: file too large for an ld.so.cache (%lld bytes, at most %u)",
				   name, (long long)st.st_size, LDC_FILE_MAX);
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	int r = ldc_cache_new(&c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	r = gs_read_all_fd(fd, LDC_FILE_MAX, name, &buf, &len, err);
	if (r < 0)
		return r;
	if (len != (size_t)st.st_size)
		return gs_err_setx(err, EBADMSG, "%s: file changed size while being read", name);
	struct ldc_arena *block = arena_adopt(c, buf, len + 1);
	if (!block)
		return gs_err_set(err, ENOMEM, "%s", name);
	buf = NULL; /* C's now */
	r = parse_block(c, block, len, name, err);
	if (r < 0)
		return r;
	*out = steal_ptr(&c);
	return 0;
}

int ldc_cache_load(int dirfd, const char *name, bool nofollow, struct ldc_cache **out,
		   struct gs_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, name,
					O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
						(nofollow ? O_NOFOLLOW : 0));
	if (fd < 0)
		return gs_err_set(err, errno, "%s", name);
	return ldc_cache_load_fd(fd, name, out, err);
}
