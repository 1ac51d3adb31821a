/* SPDX-License-Identifier: Apache-2.0 */
/* On-disk layout of glibc's ld.so.cache and the library's private state. */
#ifndef GS_LDCACHE_INTERNAL_H
#define GS_LDCACHE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "gs/ldcache.h"

#define LDC_MAGIC_OLD "ld.so-1.7.0"
#define LDC_MAGIC_OLD_LEN 11
#define LDC_MAGIC_NEW "glibc-ld.so.cache"
#define LDC_MAGIC_NEW_LEN 17
#define LDC_VERSION_NEW "1.1"
#define LDC_VERSION_NEW_LEN 3

/* struct cache_file: magic[11], pad, u32 nlibs; then {i32 flags; u32 key, value} */
#define LDC_OLD_HDR_SIZE 16u
#define LDC_OLD_ENTRY_SIZE 12u
/* struct cache_file_new: see ldc_new_header below. */
#define LDC_NEW_HDR_SIZE 48u
#define LDC_NEW_ENTRY_SIZE 24u
/* The new table follows the old one aligned to alignof(struct cache_file_new). */
#define LDC_NEW_ALIGN 8u

#define LDC_EXT_MAGIC 0xeaa42174u
#define LDC_EXT_HDR_SIZE 8u
#define LDC_EXT_SECTION_SIZE 16u
enum ldc_ext_tag {
	LDC_EXT_TAG_GENERATOR = 0,
	LDC_EXT_TAG_GLIBC_HWCAPS = 1,
	LDC_EXT_TAG_COUNT = 2,
};

enum ldc_endian {
	LDC_ENDIAN_UNSET = 0,
	LDC_ENDIAN_INVALID = 1,
	LDC_ENDIAN_LITTLE = 2,
	LDC_ENDIAN_BIG = 3,
	LDC_ENDIAN_MASK = 3,
};

struct ldc_new_header {
	char magic[LDC_MAGIC_NEW_LEN];
	char version[LDC_VERSION_NEW_LEN];
	uint32_t nlibs;
	uint32_t len_strings;
	uint8_t flags;
	uint8_t pad[3];
	uint32_t extension_offset;
	uint32_t unused[3];
};
_Static_assert(sizeof(struct ldc_new_header) == LDC_NEW_HDR_SIZE, "cache_file_new is 48 bytes");

struct ldc_new_entry {
	int32_t flags;
	uint32_t key;
	uint32_t value;
	uint32_t osversion;
	uint64_t hwcap;
};
_Static_assert(sizeof(struct ldc_new_entry) == LDC_NEW_ENTRY_SIZE, "file_entry_new is 24 bytes");

/* A block of string storage; strings never move once added.  DATA follows
 * the header, or is a buffer of its own (a file read whole, adopted). */
struct ldc_arena {
	struct ldc_arena *next;
	size_t used, size;
	char *data;
};

struct ldc_cache {
	struct ldc_entry *entries;
	size_t n, cap;
	struct ldc_arena *arena;
	enum ldc_format format;
	char *generator; /* NUL-terminated copy, or NULL */
	bool has_ext;
	bool sorted; /* entries are in ldconfig order (kept up to date) */
	/* A cache parsed from a new-format-only file whose every string lies in
	 * its string table and which holds no glibc-hwcaps entry: the table can
	 * be copied as it is (ldc_cache_splice).  FILE is the cache's own copy of
	 * the file, the table [STR_LO, STR_HI) of it; NLIBS, the file's entry
	 * count, tells whether entries were removed since. */
	struct {
		const char *file;
		size_t str_lo, str_hi, nlibs;
	} raw;
};

/* The string table of a cache being written (strtab.c). */
struct ldc_sref {
	const char *p;    /* a distinct string of the cache */
	const char *host; /* the string written to the file that holds P */
	size_t len;       /* strlen(p) */
	uint32_t at;      /* where P starts inside HOST */
	uint32_t off;     /* HOST's offset in the file, once placed */
};

struct ldc_strtab {
	struct ldc_sref *v; /* the distinct strings */
	size_t n;
	size_t bytes;       /* what the hosts take, NULs included */
	uint32_t *slot;     /* open-addressing table: address -> index + 1 (0: free) */
	size_t mask;        /* its size - 1 (a power of two, at least 2n) */
};

int ldc_strtab_build(const struct ldc_cache *c, struct ldc_strtab *t, struct gs_err *err);
/* The offset of string P (a key or value of the cache) once the strings
 * are written from offset NEXT on: when P's host is not placed yet, it is
 * placed at NEXT and *WRITE and *WLEN say what to write there (else *WRITE is
 * NULL). */
int ldc_strtab_place(struct ldc_strtab *t, const char *p, size_t next, const char **write,
		     size_t *wlen, uint32_t *off, struct gs_err *err);
void ldc_strtab_clear(struct ldc_strtab *t);

bool ldc_entries_sorted(const struct ldc_entry *v, size_t n);

/* Copies S (LEN bytes, a NUL is added) into the cache's arena. */
const char *ldc_strdup(struct ldc_cache *c, const char *s, size_t len);

static inline uint32_t ldc_rd32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t ldc_rd64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

#endif
