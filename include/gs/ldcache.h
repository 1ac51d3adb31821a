/* SPDX-License-Identifier: Apache-2.0 */
/* libldcache: read and write glibc's ld.so.cache.
 *
 * Reads the new format ("glibc-ld.so.cache1.1"), the old format
 * ("ld.so-1.7.0") and the combined layout (old table with the new one hidden
 * in its string area), bounds-checked, from memory or a file.  Writes the new
 * format in ldconfig's entry order, so the result can be binary-searched by
 * ld.so.  No mount or namespace code lives here; libraries never print. */
#ifndef GS_LDCACHE_H
#define GS_LDCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gs/err.h"

/* Entry flags, as glibc's dl-cache.h defines them. */
enum ldc_flag {
	LDC_FLAG_TYPE_MASK = 0x00ff,
	LDC_FLAG_LIBC4 = 0x0000,
	LDC_FLAG_ELF = 0x0001,
	LDC_FLAG_ELF_LIBC5 = 0x0002,
	LDC_FLAG_ELF_LIBC6 = 0x0003,
	LDC_FLAG_REQUIRED_MASK = 0xff00,
	LDC_FLAG_SPARC_LIB64 = 0x0100,
	LDC_FLAG_IA64_LIB64 = 0x0200,
	LDC_FLAG_X8664_LIB64 = 0x0300,
	LDC_FLAG_S390_LIB64 = 0x0400,
	LDC_FLAG_POWERPC_LIB64 = 0x0500,
	LDC_FLAG_MIPS64_LIBN32 = 0x0600,
	LDC_FLAG_MIPS64_LIBN64 = 0x0700,
	LDC_FLAG_X8664_LIBX32 = 0x0800,
	LDC_FLAG_ARM_LIBHF = 0x0900,
	LDC_FLAG_AARCH64_LIB64 = 0x0a00,
	LDC_FLAG_ARM_LIBSF = 0x0b00,
	LDC_FLAG_MIPS_LIB32_NAN2008 = 0x0c00,
	LDC_FLAG_MIPS64_LIBN32_NAN2008 = 0x0d00,
	LDC_FLAG_MIPS64_LIBN64_NAN2008 = 0x0e00,
	LDC_FLAG_RISCV_FLOAT_ABI_SOFT = 0x0f00,
	LDC_FLAG_RISCV_FLOAT_ABI_DOUBLE = 0x1000,
};

/* Bit 62 of an entry's hwcap marks a glibc-hwcaps subdirectory entry: the
 * low 32 bits index the glibc-hwcaps extension array, bits 32..39 hold the
 * x86 ISA level. */
#define LDC_HWCAP_EXTENSION (1ULL << 62)
#define LDC_HWCAP_ISA_LEVEL_MASK 0xffu

enum ldc_format {
	LDC_FORMAT_NEW = 0,    /* glibc-ld.so.cache1.1 only (glibc >= 2.32 default) */
	LDC_FORMAT_OLD = 1,    /* ld.so-1.7.0 only */
	LDC_FORMAT_COMPAT = 2, /* old table, new table hidden after it */
};

/* Architectures we select entries by (x86 hosts). */
enum ldc_arch {
	LDC_ARCH_ANY = 0,
	LDC_ARCH_X86_64, /* libc6,x86-64 */
	LDC_ARCH_I386,   /* ELF/libc6 with no required-arch bits */
	LDC_ARCH_X32,    /* libc6,x32 */
	LDC_ARCH_OTHER,
};

struct ldc_entry {
	const char *key;    /* what ld.so looks up: usually a SONAME */
	const char *value;  /* absolute path of the library */
	int32_t flags;      /* enum ldc_flag bits */
	uint32_t osversion; /* ABI tag; 0 from glibc >= 2.33's ldconfig */
	/* Raw hwcap for legacy entries.  For glibc-hwcaps entries (hwcaps !=
	 * NULL) this holds only the ISA level in bits 32..39; the extension bit
	 * and the index are recomputed when the cache is written. */
	uint64_t hwcap;
	const char *hwcaps; /* glibc-hwcaps subdirectory name, or NULL */
};

/* Bounds on input.  A cache file larger than LDC_FILE_MAX is refused
 * (-EFBIG): a real one holds ~90 bytes per library, so 4 MiB is room for
 * ~45,000 libraries, several times the largest distribution install.  A key
 * (a SONAME or file name) longer than LDC_KEY_MAX bytes, a value (a path)
 * longer than LDC_VALUE_MAX, make the file corrupt (-EBADMSG), as no
 * library name or path the loader can open is longer.
 *
 * Cost of a file of F bytes, whatever it holds (entries sharing strings,
 * suffixes of one long string, the most entries that fit): parsing keeps
 * one copy of the file and ~40 bytes per entry (at most 24 bytes of file
 * each, 12 in the old format), never a copy per string; serialising writes
 * each distinct string of the file once (strings ending at the same NUL
 * share it), so the written cache is at most ~2F plus what was added, and
 * the whole load + sort + serialise stays below ~8F of memory (32 MiB at
 * LDC_FILE_MAX). */
#define LDC_FILE_MAX (4u << 20)
#define LDC_KEY_MAX 255u
#define LDC_VALUE_MAX 4095u

struct ldc_cache;

/* An empty cache, to be filled with ldc_cache_add. */
int ldc_cache_new(struct ldc_cache **out, struct gs_err *err);
/* Parses LEN bytes at BUF.  NAME is used in error messages only.  BUF is
 * copied once (the cache's strings point into that copy): BUF may be
 * unmapped afterwards.  Corrupt input gives
 * -EBADMSG with the offset and the reason. */
int ldc_cache_parse(const void *buf, size_t len, const char *name,
		    struct ldc_cache **out, struct gs_err *err);
/* Opens NAME relative to DIRFD (AT_FDCWD allowed) and parses it.  With
 * NOFOLLOW the last component must not be a symlink. */
int ldc_cache_load(int dirfd, const char *name, bool nofollow,
		   struct ldc_cache **out, struct gs_err *err);
/* Parses an already open file (regular file required). */
int ldc_cache_load_fd(int fd, const char *name, struct ldc_cache **out,
		      struct gs_err *err);
void ldc_cache_free(struct ldc_cache *c);
static inline void ldc_cache_freep(struct ldc_cache **c)
{
	if (*c)
		ldc_cache_free(*c);
}

size_t ldc_cache_count(const struct ldc_cache *c);
const struct ldc_entry *ldc_cache_entry(const struct ldc_cache *c, size_t i);
enum ldc_format ldc_cache_format(const struct ldc_cache *c);
/* The generator string of the extension section ("ldconfig (...) ..."), or
 * NULL when the cache has none. */
const char *ldc_cache_generator(const struct ldc_cache *c);
/* Whether the cache carries an extension directory (new format only). */
bool ldc_cache_has_extensions(const struct ldc_cache *c);

enum ldc_arch ldc_flags_arch(int32_t flags);
/* "libc6,x86-64" etc., exactly as ldconfig -p prints inside the parens
 * (without hwcap/OS ABI parts).  Returns BUF. */
const char *ldc_flags_describe(int32_t flags, char *buf, size_t len);

/* glibc's _dl_cache_libcmp: digit runs compare numerically. */
int ldc_libcmp(const char *a, const char *b);

/* First entry (in cache order) whose key equals KEY and whose arch matches
 * (LDC_ARCH_ANY matches all), the one ld.so would pick when no hwcaps
 * subdirectory is preferred; -1 if none.  Binary search on a sorted cache,
 * linear on an unsorted one. */
ssize_t ldc_cache_find(const struct ldc_cache *c, const char *key,
		       enum ldc_arch arch);
/* Calls FN for every entry whose key starts with PREFIX and whose arch
 * matches, in cache order; stops early when FN returns non-zero and returns
 * that value. */
int ldc_cache_foreach_prefix(const struct ldc_cache *c, const char *prefix,
			     enum ldc_arch arch,
			     int (*fn)(const struct ldc_entry *e, void *data),
			     void *data);

/* Appends an entry (strings copied; a key longer than LDC_KEY_MAX or a
 * value longer than LDC_VALUE_MAX is -EINVAL).  The cache is unsorted
 * afterwards. */
int ldc_cache_add(struct ldc_cache *c, const struct ldc_entry *e,
		  struct gs_err *err);
/* Moves every entry of SRC to the end of DST, in order, without copying a
 * string: DST takes over SRC's storage and SRC is left empty (free it as
 * usual).  This is how a cache read from an untrusted file is merged into
 * another at no cost per string. */
int ldc_cache_append(struct ldc_cache *dst, struct ldc_cache *src, struct gs_err *err);
/* Drops every entry for which FN returns true; keeps the order. */
void ldc_cache_remove_if(struct ldc_cache *c,
			 bool (*fn)(const struct ldc_entry *e, void *data),
			 void *data);
/* Sorts in ldconfig's order (keys descending by ldc_libcmp, then flags
 * descending, glibc-hwcaps entries first by name, then most specific hwcap,
 * then osversion).  Stable: among equal entries the earlier-added one stays
 * first, exactly as ldconfig's insertion keeps directory order. */
void ldc_cache_sort(struct ldc_cache *c);
/* < 0 when A goes before B in ldconfig's order. */
int ldc_entry_cmp(const struct ldc_entry *a, const struct ldc_entry *b);
bool ldc_cache_is_sorted(const struct ldc_cache *c);

/* Serialises to the new format (with an extension directory holding
 * GENERATOR and, when needed, the glibc-hwcaps names).  The cache is written
 * in its current order: call ldc_cache_sort first.  *OUT is malloc'd.
 * A result larger than LDC_FILE_MAX is -EFBIG: nothing is written that
 * the reader would refuse. */
int ldc_cache_serialize(const struct ldc_cache *c, const char *generator,
			void **out, size_t *out_len, struct gs_err *err);
/* The new format of IMG (a cache parsed from a file) with every entry of
 * ADD inserted in ldconfig's order, an added entry first among equals,
 * without rewriting IMG's strings: its string table is copied as it is
 * and only ADD's strings are written (each value once, its key pointing
 * into it when the value ends in "/KEY").  That is what the hook does at
 * every container start, in time linear in the file.  Only for what can
 * be spliced: IMG parsed from a file in the new format alone, laid out as
 * ldconfig lays it out (every string inside its string table), with no
 * glibc-hwcaps entry and no entry removed or added since, both caches
 * sorted, ADD without glibc-hwcaps entries; otherwise 1 and nothing done
 * (use ldc_cache_append, ldc_cache_sort and ldc_cache_serialize, which
 * rewrite every string).  -EFBIG when the result would exceed
 * LDC_FILE_MAX.  The entries are those, and in the order, that the
 * general path writes; the bytes differ (the image's strings are not
 * merged with the added ones). */
int ldc_cache_splice(const struct ldc_cache *img, const struct ldc_cache *add,
		     const char *generator, void **out, size_t *out_len, struct gs_err *err);
/* Serialises and writes atomically into directory DIRFD as NAME
 * (gs_write_atomic_at, gs/fsx.h: a temporary file created there with
 * O_EXCL|O_NOFOLLOW, fsync, renameat; the directory is not synced, as
 * ldconfig does not: a crash leaves the old cache or the new).  Mode 0644. */
int ldc_cache_write_at(const struct ldc_cache *c, int dirfd, const char *name,
		       const char *generator, struct gs_err *err);

/* --- scanning directories the way ldconfig does ------------------------- */

/* Adds to C every shared library in the directories DIRS (absolute paths
 * as seen inside the root ROOTFD), in order, keyed as ldconfig keys them:
 * SONAME (or the file name when there is none), plus ".so" development links
 * that point at their SONAME.  Symlinks are resolved inside ROOTFD only
 * (openat2 RESOLVE_IN_ROOT).  DIR/glibc-hwcaps/<name>/ subdirectories are
 * scanned after DIR; the legacy hwcap subdirectories (tls, x86_64, haswell,
 * ..., nested as glibc 2.36's ldconfig nests them) are scanned after all
 * DIRS, their entries carrying the hwcap bits.  A directory seen twice
 * (same inode) is scanned once.
 * A missing directory is skipped with MISSING_OK, an error otherwise.
 * Returns the number of entries added. */
int ldc_scan_dirs(struct ldc_cache *c, int rootfd, char *const *dirs, size_t n,
		  bool missing_ok, struct gs_err *err);

/* Reads /etc/ld.so.conf inside ROOTFD ("include" globs honoured, every
 * file resolved inside the root) and returns ldconfig's directory list:
 * the configured directories in order, then ldconfig's built-in ones:
 * /lib/MULTIARCH, /usr/lib/MULTIARCH, /lib, /usr/lib (MULTIARCH is
 * x86_64-linux-gnu: Debian 12's glibc 2.36).  *DIRS is a NULL-terminated malloc'd array of *N paths. */
int ldc_conf_dirs(int rootfd, char ***dirs, size_t *n, struct gs_err *err);
void ldc_strv_free(char **v);

#endif
