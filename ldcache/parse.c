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
		free(c->arena);
		c->arena = next;
	}
	free(c->entries);
	free(c->generator);
	free(c);
}

const char *ldc_strdup(struct ldc_cache *c, const char *s, size_t len)
{
	struct ldc_arena *a = c->arena;
	if (len == SIZE_MAX)
		return NULL;
	if (!a || a->size - a->used < len + 1) {
		size_t size = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;
		a = malloc(sizeof(*a) + size);
		if (!a)
			return NULL;
		a->used = 0;
		a->size = size;
		a->next = c->arena;
		c->arena = a;
	}
	char *p = a->data + a->used;
	memcpy(p, s, len);
	p[len] = '\0';
	a->used += len + 1;
	return p;
}

static int reserve(struct ldc_cache *c, size_t extra, struct gs_err *err)
{
	if (c->cap - c->n >= extra)
		return 0;
	size_t cap = c->cap ? c->cap : 64;
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

int ldc_cache_add(struct ldc_cache *c, const struct ldc_entry *e, struct gs_err *err)
{
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
	c->entries[c->n++] = copy;
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

/* The NUL-terminated string at BASE+OFF, checked to lie inside the file. */
static int string_at(const struct src *s, size_t base, uint32_t off, const char *what,
		     size_t idx, const char **out, size_t *len, struct gs_err *err)
{
	size_t pos;
	if (__builtin_add_overflow(base, (size_t)off, &pos) || pos >= s->len)
		return gs_err_setx(err, EBADMSG,
				   "%s: entry %zu: %s offset %u is past the end of the file (%zu bytes)",
				   s->name, idx, what, off, s->len);
	const unsigned char *nul = memchr(s->buf + pos, '\0', s->len - pos);
	if (!nul)
		return gs_err_setx(err, EBADMSG,
				   "%s: entry %zu: %s at offset %zu is not NUL-terminated inside the file",
				   s->name, idx, what, pos);
	*out = (const char *)s->buf + pos;
	*len = (size_t)(nul - (s->buf + pos));
	return 0;
}

static int add_raw(struct ldc_cache *c, const struct src *s, size_t base, size_t idx,
		   int32_t flags, uint32_t key, uint32_t value, uint32_t osv,
		   uint64_t hwcap, const char *hwcaps, struct gs_err *err)
{
	const char *k, *v;
	size_t klen, vlen;
	int r = string_at(s, base, key, "key", idx, &k, &klen, err);
	if (r < 0)
		return r;
	r = string_at(s, base, value, "value", idx, &v, &vlen, err);
	if (r < 0)
		return r;
	struct ldc_entry *e = &c->entries[c->n];
	e->key = ldc_strdup(c, k, klen);
	e->value = ldc_strdup(c, v, vlen);
	e->hwcaps = hwcaps;
	e->flags = flags;
	e->osversion = osv;
	e->hwcap = hwcap;
	if (!e->key || !e->value)
		return gs_err_set(err, ENOMEM, "%s", s->name);
	c->n++;
	return 0;
}

static int parse_old_entries(struct ldc_cache *c, const struct src *s, uint32_t nlibs,
			     struct gs_err *err)
{
	size_t strbase = LDC_OLD_HDR_SIZE + (size_t)nlibs * LDC_OLD_ENTRY_SIZE;
	int r = reserve(c, nlibs, err);
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
static int hwcaps_name(struct ldc_cache *c, const struct src *s, const struct ext_info *x,
		       size_t idx, uint64_t hwcap, const char **out, struct gs_err *err)
{
	uint32_t index = (uint32_t)hwcap;
	if (!x->has_hwcaps || index >= x->hwcaps_count)
		return gs_err_setx(err, EBADMSG,
				   "%s: entry %zu: glibc-hwcaps index %u out of range (%zu names)",
				   s->name, idx, index, x->has_hwcaps ? x->hwcaps_count : 0);
	uint32_t stroff = ldc_rd32(s->buf + x->hwcaps_off + (size_t)index * 4);
	const char *name;
	size_t len;
	int r = string_at(s, 0, stroff, "glibc-hwcaps name", idx, &name, &len, err);
	if (r < 0)
		return r;
	*out = ldc_strdup(c, name, len);
	return *out ? 0 : gs_err_set(err, ENOMEM, "%s", s->name);
}

static int parse_new_entries(struct ldc_cache *c, const struct src *s, size_t base,
			     uint32_t nlibs, const struct ext_info *x, struct gs_err *err)
{
	int r = reserve(c, nlibs, err);
	for (uint32_t i = 0; r >= 0 && i < nlibs; i++) {
		const unsigned char *p = s->buf + base + LDC_NEW_HDR_SIZE + (size_t)i * LDC_NEW_ENTRY_SIZE;
		uint64_t hwcap = ldc_rd64(p + 16);
		const char *hwcaps = NULL;
		if (hwcap & LDC_HWCAP_EXTENSION) {
			r = hwcaps_name(c, s, x, i, hwcap, &hwcaps, err);
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
	return parse_new_entries(c, s, base, h.nlibs, &x, err);
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

int ldc_cache_parse(const void *buf, size_t len, const char *name, struct ldc_cache **out,
		    struct gs_err *err)
{
	struct ldc_cache *c = NULL;
	struct src s = {buf, len, name ? name : "ld.so.cache"};
	int r = ldc_cache_new(&c, err);
	if (r < 0)
		return r;
	r = parse_buf(c, &s, err);
	if (r < 0) {
		ldc_cache_free(c);
		return r;
	}
	c->sorted = ldc_entries_sorted(c->entries, c->n);
	*out = c;
	return 0;
}

/* Reads the whole file with read(2), not mmap: a file that shrinks while we
 * read it (a hostile rootfs can do that) must give an error, not SIGBUS. */
#define LDC_MAX_FILE (256u * 1024u * 1024u)

static int read_all(int fd, const char *name, size_t size, unsigned char **out,
		    size_t *out_len, struct gs_err *err)
{
	_cleanup_free_ unsigned char *buf = malloc(size + 1);
	size_t got = 0;
	if (!buf)
		return gs_err_set(err, ENOMEM, "%s", name);
	while (got <= size) {
		ssize_t n = read(fd, buf + got, size + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return gs_err_set(err, errno, "%s: read", name);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got != size)
		return gs_err_setx(err, EBADMSG, "%s: file changed size while being read", name);
	*out = steal_ptr(&buf);
	*out_len = got;
	return 0;
}

int ldc_cache_load_fd(int fd, const char *name, struct ldc_cache **out, struct gs_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", name);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EBADMSG, "%s: not a regular file", name);
	if ((uint64_t)st.st_size > LDC_MAX_FILE)
		return gs_err_setx(err, EFBIG, "%s: file too large for an ld.so.cache (%lld bytes)",
				   name, (long long)st.st_size);
	_cleanup_free_ unsigned char *buf = NULL;
	size_t len = 0;
	int r = read_all(fd, name, (size_t)st.st_size, &buf, &len, err);
	if (r < 0)
		return r;
	return ldc_cache_parse(buf, len, name, out, err);
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
