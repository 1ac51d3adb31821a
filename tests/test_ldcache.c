/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for libldcache: ordering, round trips, corrupt input, lookup,
 * atomic writes, and common/fsx.c's whole-fd reader and atomic writer.
 * Comparisons with the real ldconfig live in
 * tests/integration/ldcache_*.sh. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <elf.h>
#include <gnu/libc-version.h>

#include "../ldcache/internal.h"
#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/ldcache.h"

#define X86_64 (LDC_FLAG_X8664_LIB64 | LDC_FLAG_ELF_LIBC6)

static struct ldc_cache *mk(const struct ldc_entry *e, size_t n)
{
	struct ldc_cache *c = NULL;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ldc_cache_new(&c, &err), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ldc_cache_add(c, &e[i], &err), 0);
	return c;
}

static struct ldc_cache *roundtrip(const struct ldc_cache *c, void **buf, size_t *len)
{
	struct gs_err err = GS_ERR_INIT;
	struct ldc_cache *back = NULL;
	assert_int_equal(ldc_cache_serialize(c, "unit-test", buf, len, &err), 0);
	assert_int_equal(ldc_cache_parse(*buf, *len, "mem", &back, &err), 0);
	return back;
}

static void test_libcmp(void **state)
{
	(void)state;
	static const struct {
		const char *a, *b;
		int sign;
	} t[] = {
		{"libc.so.6", "libc.so.6", 0},     {"libfoo.so.10", "libfoo.so.9", 1},
		{"libfoo.so.1", "libfoo.so.01", 0}, {"libfoo.so", "libfoo.so.1", -1},
		{"lib1", "liba", 1},                {"liba", "lib1", -1},
		{"libA.so", "liba.so", -1},         {"", "a", -1},
		{"libx.so.2.10", "libx.so.2.9", 1}, {"libz3.so.4", "libz.so.1", 1},
		/* a long common prefix, then the first difference inside a
		 * digit run, at its end, after it, or against its end */
		{"lib12a.so", "lib13.so", -1},      {"lib1", "lib10", -1},
		{"liba1b", "liba1c", -1},           {"lib", "lib1", -1},
		{"libgsfx0199.so.1", "libgsfx0200.so.1", -1}, {"lib9x", "lib10x", -1},
		{"lib2.so", "lib2a.so", -1},        {"lib007", "lib7", 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = ldc_libcmp(t[i].a, t[i].b);
		int s = (r > 0) - (r < 0);
		if (s != t[i].sign)
			fail_msg("libcmp(%s, %s) = %d, want sign %d", t[i].a, t[i].b, r, t[i].sign);
	}
}

static void test_sort_order(void **state)
{
	(void)state;
	const struct ldc_entry in[] = {
		{"libc.so.6", "/lib32/libc.so.6", LDC_FLAG_ELF_LIBC6, 0, 0, NULL},
		{"libz.so.1", "/usr/lib/libz.so.1", X86_64, 0, 0, NULL},
		{"libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", X86_64, 0, 0, NULL},
		{"libz.so.1", "/opt/first/libz.so.1", X86_64, 0, 0, NULL},
		{"libc.so.6", "/hw/libc.so.6", X86_64, 0, 0, "x86-64-v3"},
		{"libc.so.6", "/hw2/libc.so.6", X86_64, 0, 0, "x86-64-v2"},
		{"libfoo.so.10", "/l/libfoo.so.10", X86_64, 0, 0, NULL},
		{"libfoo.so.9", "/l/libfoo.so.9", X86_64, 0, 0, NULL},
		{"libc.so.6", "/legacy/libc.so.6", X86_64, 0, 1u << 3, NULL},
	};
	const char *want[] = {
		"/usr/lib/libz.so.1", "/opt/first/libz.so.1", "/l/libfoo.so.10", "/l/libfoo.so.9",
		"/hw2/libc.so.6",     "/hw/libc.so.6",        "/legacy/libc.so.6",
		"/lib/x86_64-linux-gnu/libc.so.6", "/lib32/libc.so.6",
	};
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = mk(in, sizeof(in) / sizeof(in[0]));
	assert_false(ldc_cache_is_sorted(c));
	ldc_cache_sort(c);
	assert_true(ldc_cache_is_sorted(c));
	for (size_t i = 0; i < ldc_cache_count(c); i++)
		assert_string_equal(ldc_cache_entry(c, i)->value, want[i]);
}

static void test_roundtrip_many(void **state)
{
	(void)state;
	struct gs_err err = GS_ERR_INIT;
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	assert_int_equal(ldc_cache_new(&c, &err), 0);
	for (int i = 0; i < 6000; i++) {
		char key[64], val[128];
		snprintf(key, sizeof(key), "libgs%d.so.%d", i % 2500, i % 7);
		snprintf(val, sizeof(val), "/d%d/libgs%d.so.%d", i / 2500, i % 2500, i % 7);
		struct ldc_entry e = {key, val, i % 5 ? X86_64 : LDC_FLAG_ELF_LIBC6, 0,
				      i % 11 ? 0 : (1ull << (i % 40)), i % 13 ? NULL : "x86-64-v3"};
		if (e.hwcaps)
			e.hwcap = (uint64_t)3 << 32; /* ISA level 3 */
		assert_int_equal(ldc_cache_add(c, &e, &err), 0);
	}
	ldc_cache_sort(c);
	_cleanup_free_ void *buf = NULL;
	size_t len = 0;
	_cleanup_(ldc_cache_freep) struct ldc_cache *back = roundtrip(c, &buf, &len);
	assert_int_equal(ldc_cache_count(back), ldc_cache_count(c));
	assert_int_equal(ldc_cache_format(back), LDC_FORMAT_NEW);
	assert_string_equal(ldc_cache_generator(back), "unit-test");
	for (size_t i = 0; i < ldc_cache_count(c); i++) {
		const struct ldc_entry *a = ldc_cache_entry(c, i), *b = ldc_cache_entry(back, i);
		assert_string_equal(a->key, b->key);
		assert_string_equal(a->value, b->value);
		assert_int_equal(a->flags, b->flags);
		assert_int_equal(a->hwcap, b->hwcap);
		if (a->hwcaps)
			assert_string_equal(a->hwcaps, b->hwcaps);
		else
			assert_null(b->hwcaps);
	}
	assert_true(ldc_cache_is_sorted(back));
	/* every entry is found by the ld.so-style binary search */
	for (size_t i = 0; i < ldc_cache_count(back); i++) {
		const struct ldc_entry *e = ldc_cache_entry(back, i);
		ssize_t at = ldc_cache_find(back, e->key, ldc_flags_arch(e->flags));
		assert_true(at >= 0 && (size_t)at <= i);
		assert_int_equal(ldc_libcmp(ldc_cache_entry(back, (size_t)at)->key, e->key), 0);
	}
}

static void test_header_layout(void **state)
{
	(void)state;
	const struct ldc_entry in[] = {{"liba.so.1", "/l/liba.so.1", X86_64, 0, 0, NULL}};
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = mk(in, 1);
	_cleanup_free_ unsigned char *buf = NULL;
	size_t len = 0;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ldc_cache_serialize(c, "g", (void **)&buf, &len, &err), 0);
	assert_memory_equal(buf, "glibc-ld.so.cache1.1", 20);
	assert_int_equal(ldc_rd32(buf + 20), 1);              /* nlibs */
	assert_int_equal(buf[28], LDC_ENDIAN_LITTLE);         /* endianness */
	uint32_t ext = ldc_rd32(buf + 32);
	assert_int_equal(ext % 4, 0);
	assert_int_equal(ldc_rd32(buf + ext), LDC_EXT_MAGIC);
	/* the key is the tail of the value: written once, as ldconfig does */
	assert_int_equal(ldc_rd32(buf + 24), 13);      /* len_strings */
	assert_int_equal(ldc_rd32(buf + 48 + 4), ldc_rd32(buf + 48 + 8) + 3);
	assert_string_equal((char *)buf + ldc_rd32(buf + 48 + 4), "liba.so.1");
	assert_int_equal(ext, 88);                      /* 48 + 24 + 13, rounded up to 4 */
}

static int count_cb(const struct ldc_entry *e, void *d)
{
	(void)e;
	++*(int *)d;
	return 0;
}

static void test_lookup(void **state)
{
	(void)state;
	const struct ldc_entry in[] = {
		{"libcuda.so.1", "/a/libcuda.so.1", X86_64, 0, 0, NULL},
		{"libcuda.so.1", "/b/libcuda.so.1", X86_64, 0, 0, NULL},
		{"libcuda.so.1", "/i386/libcuda.so.1", LDC_FLAG_ELF_LIBC6, 0, 0, NULL},
		{"libcuda.so", "/a/libcuda.so", X86_64, 0, 0, NULL},
		{"libnvidia-ml.so.1", "/a/libnvidia-ml.so.1", X86_64, 0, 0, NULL},
	};
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = mk(in, 5);
	ldc_cache_sort(c);
	ssize_t i = ldc_cache_find(c, "libcuda.so.1", LDC_ARCH_X86_64);
	assert_true(i >= 0);
	assert_string_equal(ldc_cache_entry(c, (size_t)i)->value, "/a/libcuda.so.1");
	i = ldc_cache_find(c, "libcuda.so.1", LDC_ARCH_I386);
	assert_true(i >= 0);
	assert_string_equal(ldc_cache_entry(c, (size_t)i)->value, "/i386/libcuda.so.1");
	assert_int_equal(ldc_cache_find(c, "libcuda.so.2", LDC_ARCH_ANY), -1);
	assert_int_equal(ldc_cache_find(c, "libnvidia-ml.so.1", LDC_ARCH_I386), -1);
	int count = 0;
	assert_int_equal(ldc_cache_foreach_prefix(c, "libcuda.so", LDC_ARCH_X86_64, count_cb, &count), 0);
	assert_int_equal(count, 3);
}

/* A valid two-entry cache to corrupt. */
static unsigned char *valid_cache(size_t *len)
{
	const struct ldc_entry in[] = {
		{"liba.so.1", "/l/liba.so.1", X86_64, 0, 0, NULL},
		{"libb.so.1", "/l/libb.so.1", X86_64, 0, 0, "x86-64-v2"},
	};
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = mk(in, 2);
	ldc_cache_sort(c);
	void *buf = NULL;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ldc_cache_serialize(c, "gen", &buf, len, &err), 0);
	return buf;
}

static void expect_bad(const unsigned char *buf, size_t len, const char *needle)
{
	struct ldc_cache *c = NULL;
	struct gs_err err = GS_ERR_INIT;
	int r = ldc_cache_parse(buf, len, "corrupt.cache", &c, &err);
	if (r >= 0)
		fail_msg("corrupt cache accepted (expected '%s')", needle);
	assert_int_equal(r, -EBADMSG);
	assert_null(c);
	if (!strstr(err.msg, needle) || !strstr(err.msg, "corrupt.cache"))
		fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void put32at(unsigned char *b, size_t at, uint32_t v)
{
	memcpy(b + at, &v, 4);
}

static void test_corrupt(void **state)
{
	(void)state;
	size_t len;
	_cleanup_free_ unsigned char *good = valid_cache(&len);
	_cleanup_free_ unsigned char *b = malloc(len);
	uint32_t ext = ldc_rd32(good + 32);

	for (size_t cut = 0; cut < len; cut++) { /* every truncation is rejected */
		struct ldc_cache *c = NULL;
		struct gs_err err = GS_ERR_INIT;
		if (ldc_cache_parse(good, cut, "t", &c, &err) >= 0) {
			ldc_cache_free(c);
			if (cut >= ext) /* only the generator string may be cut short */
				continue;
			fail_msg("truncation at %zu of %zu accepted", cut, len);
		}
	}
#define MUTATE(stmt, needle)                 \
	do {                                 \
		memcpy(b, good, len);        \
		stmt;                        \
		expect_bad(b, len, needle);  \
	} while (0)
	MUTATE(b[0] = 'X', "bad magic");
	MUTATE(memcpy(b + 17, "1.0", 3), "unsupported cache version");
	MUTATE(b[28] = LDC_ENDIAN_BIG, "big-endian");
	MUTATE(b[28] = LDC_ENDIAN_INVALID, "invalid byte-order flags 0x01");
	MUTATE(put32at(b, 20, 0xffffffffu), "do not fit");
	MUTATE(put32at(b, 20, 3), "entry 2"); /* strings read as a third entry */
	MUTATE(put32at(b, 48 + 4, (uint32_t)len), "past the end");
	MUTATE(put32at(b, 48 + 8, 0xfffffff0u), "past the end");
	MUTATE(put32at(b, 32, (uint32_t)((len + 3) & ~3u)), "extension directory");
	MUTATE(put32at(b, 32, ext + 2), "aligned");
	MUTATE(put32at(b, ext, 0x12345678u), "extension magic");
	MUTATE(put32at(b, ext + 4, 0x40000000u), "sections");
	MUTATE(put32at(b, ext + 8 + 8, 0xfffffff0u), "past the end");
	MUTATE(put32at(b, ext + 8 + 12, 0xfffffff0u), "past the end");
	MUTATE(put32at(b, 48 + 16, 7), "glibc-hwcaps index"); /* entry 0 is libb (hwcaps) */
	/* a string that runs into the end of the file without a NUL */
	memcpy(b, good, len);
	size_t vlen = ldc_rd32(good + 48 + 8);
	expect_bad(b, vlen + 3, "");
}

static void test_old_format(void **state)
{
	(void)state;
	/* hand-built "ld.so-1.7.0" cache with two entries */
	unsigned char b[16 + 2 * 12 + 64] = {0};
	memcpy(b, "ld.so-1.7.0", 11);
	put32at(b, 12, 2);
	const char strs[] = "liba.so.1\0/l/liba.so.1\0libb.so.2\0/l/libb.so.2";
	memcpy(b + 40, strs, sizeof(strs));
	uint32_t offs[] = {0, 10, 23, 33};
	for (int i = 0; i < 2; i++) {
		put32at(b, 16 + i * 12, (uint32_t)X86_64);
		put32at(b, 16 + i * 12 + 4, offs[2 * i]);
		put32at(b, 16 + i * 12 + 8, offs[2 * i + 1]);
	}
	struct gs_err err = GS_ERR_INIT;
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	assert_int_equal(ldc_cache_parse(b, 40 + sizeof(strs), "old", &c, &err), 0);
	assert_int_equal(ldc_cache_format(c), LDC_FORMAT_OLD);
	assert_int_equal(ldc_cache_count(c), 2);
	assert_string_equal(ldc_cache_entry(c, 1)->value, "/l/libb.so.2");
	put32at(b, 12, 1000);
	expect_bad(b, 40 + sizeof(strs), "old-format entries do not fit");
}

static void test_write_at_atomic(void **state)
{
	(void)state;
	char dir[] = "/tmp/gs-ldc-XXXXXX";
	assert_non_null(mkdtemp(dir));
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	/* ld.so.cache is a symlink to a file outside: it must be replaced, not followed */
	char victim[64];
	snprintf(victim, sizeof(victim), "%s.victim", dir);
	FILE *f = fopen(victim, "w");
	assert_non_null(f);
	fputs("precious", f);
	fclose(f);
	assert_int_equal(symlinkat(victim, dfd, "ld.so.cache"), 0);
	const struct ldc_entry in[] = {{"liba.so.1", "/l/liba.so.1", X86_64, 0, 0, NULL}};
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = mk(in, 1);
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ldc_cache_write_at(c, dfd, "ld.so.cache", "t", &err), 0);
	struct stat st;
	assert_int_equal(fstatat(dfd, "ld.so.cache", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	char buf[16] = {0};
	f = fopen(victim, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "precious");
	_cleanup_(ldc_cache_freep) struct ldc_cache *back = NULL;
	assert_int_equal(ldc_cache_load(dfd, "ld.so.cache", true, &back, &err), 0);
	assert_int_equal(ldc_cache_count(back), 1);
	/* no temporary file is left behind */
	_cleanup_closedir_ DIR *d = fdopendir(dup(dfd));
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	assert_int_equal(n, 1);
	assert_int_equal(unlinkat(dfd, "ld.so.cache", 0), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(unlink(victim), 0);
	/* a name with a slash is refused */
	assert_true(ldc_cache_write_at(c, AT_FDCWD, "../x", "t", &err) < 0);
	assert_int_equal(err.code, EINVAL);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* ld.so.conf order: includes expanded in place (sorted), '=TYPE' and
 * trailing '/' dropped, then ldconfig's built-in directories, the Debian
 * multiarch ones first (a root whose ld.so.conf names none of them must
 * still get libc: this once listed only /lib and /usr/lib). */
static void test_conf_dirs(void **state)
{
	(void)state;
	char dir[] = "/tmp/gs-ldc-conf-XXXXXX";
	char sub[64];
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/etc", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(sub, sizeof(sub), "%s/etc/ld.so.conf.d", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_file(dir, "etc/ld.so.conf",
		   "# comment\n/opt/first/\ninclude /etc/ld.so.conf.d/*.conf\n/opt/b=libc6\n"
		   "hwcap 0 nosegneg\n");
	write_file(dir, "etc/ld.so.conf.d/20-y.conf", "/opt/y\n");
	write_file(dir, "etc/ld.so.conf.d/10-x.conf", "  /opt/x  # trailing comment\n");
	write_file(dir, "etc/ld.so.conf.d/skip.txt", "/opt/not-included\n");
	_cleanup_close_ int rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rootfd >= 0);
	char **dirs = NULL;
	size_t n = 0;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ldc_conf_dirs(rootfd, &dirs, &n, &err), 0);
	const char *want[] = {"/opt/first", "/opt/x", "/opt/y", "/opt/b",
#ifdef __x86_64__
			      "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
#endif
			      "/lib", "/usr/lib"};
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++)
		assert_string_equal(dirs[i], want[i]);
	assert_null(dirs[n]);
	ldc_strv_free(dirs);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Copies SRC to DIR/NAME; with AS_EXEC the copy's e_type becomes ET_EXEC. */
static void copy_elf(const char *src, const char *dir, const char *name, bool as_exec)
{
	char dst[256];
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
	assert_non_null(in);
	assert_non_null(out);
	char buf[65536];
	size_t n, total = 0;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		if (as_exec && total == 0 && n >= sizeof(Elf64_Ehdr)) {
			uint16_t t = ET_EXEC;
			memcpy(buf + offsetof(Elf64_Ehdr, e_type), &t, sizeof(t));
		}
		assert_int_equal(fwrite(buf, 1, n, out), n);
		total += n;
	}
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* ldconfig takes shared objects (ET_DYN) only: a dynamically linked
 * executable named like a library is skipped (the scanner once listed it).
 * A directory reached twice (here through a symlinked alias) is scanned
 * once. */
static void test_scan_skips_executables(void **state)
{
	(void)state;
	Dl_info info;
	assert_true(dladdr((void *)gnu_get_libc_version, &info) != 0 && info.dli_fname);
	char dir[] = "/tmp/gs-ldc-scan-XXXXXX", sub[64];
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/a", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	copy_elf(info.dli_fname, sub, "libgsdyn.so.1", false);
	snprintf(sub, sizeof(sub), "%s/b", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	copy_elf(info.dli_fname, sub, "libgsexec.so.1", true);
	snprintf(sub, sizeof(sub), "%s/alias", dir);
	assert_int_equal(symlink("a", sub), 0);
	_cleanup_close_ int rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rootfd >= 0);
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ldc_cache_new(&c, &err), 0);
	char *dirs[] = {"/a", "/b", "/alias/", "/missing"};
	assert_int_equal(ldc_scan_dirs(c, rootfd, dirs, 4, true, &err), 1);
	assert_int_equal(ldc_cache_count(c), 1);
	const struct ldc_entry *e = ldc_cache_entry(c, 0);
	assert_string_equal(e->key, "libc.so.6"); /* keyed by SONAME */
	assert_string_equal(e->value, "/a/libgsdyn.so.1");
#ifdef __x86_64__
	assert_int_equal(e->flags, X86_64);
#endif
	/* without MISSING_OK a missing directory is an error naming it */
	assert_true(ldc_scan_dirs(c, rootfd, dirs + 3, 1, false, &err) < 0);
	assert_non_null(strstr(err.msg, "/missing"));
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Legacy hwcap subdirectories (glibc 2.36's ldconfig still descends into
 * tls, x86_64, haswell, ...): scanned after the listed directories, nested,
 * each once, with the hwcap bits of the path's trailing such components
 * (the scanner once skipped them).  glibc-hwcaps subdirectories are not
 * descended into further. */
static void test_scan_legacy_hwcap_dirs(void **state)
{
	(void)state;
	Dl_info info;
	assert_true(dladdr((void *)gnu_get_libc_version, &info) != 0 && info.dli_fname);
	char dir[] = "/tmp/gs-ldc-legacy-XXXXXX", sub[128];
	assert_non_null(mkdtemp(dir));
	const char *dirs_to_make[] = {"l", "l/tls", "l/tls/x86_64", "l/haswell", "l/notacap",
				      "l/glibc-hwcaps", "l/glibc-hwcaps/x86-64-v3",
				      "l/glibc-hwcaps/x86-64-v3/tls", "m"};
	for (size_t i = 0; i < sizeof(dirs_to_make) / sizeof(dirs_to_make[0]); i++) {
		snprintf(sub, sizeof(sub), "%s/%s", dir, dirs_to_make[i]);
		assert_int_equal(mkdir(sub, 0755), 0);
		if (strcmp(dirs_to_make[i], "l/glibc-hwcaps") != 0)
			copy_elf(info.dli_fname, sub, "libc.so.6", false);
	}
	snprintf(sub, sizeof(sub), "%s/m/tls", dir); /* an alias of l/tls: scanned once */
	assert_int_equal(symlink("../l/tls", sub), 0);
	_cleanup_close_ int rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rootfd >= 0);
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ldc_cache_new(&c, &err), 0);
	char *dirs[] = {"/l", "/m"};
	assert_int_equal(ldc_scan_dirs(c, rootfd, dirs, 2, false, &err), 6);
	ldc_cache_sort(c);
	struct {
		const char *value;
		uint64_t hwcap;
		const char *hwcaps;
	} want[] = {
		{"/l/glibc-hwcaps/x86-64-v3/libc.so.6", 0, "x86-64-v3"},
#ifdef __x86_64__
		{"/l/tls/x86_64/libc.so.6", (1ULL << 63) + (1ULL << 1), NULL},
		{"/l/tls/libc.so.6", 1ULL << 63, NULL},
		{"/l/haswell/libc.so.6", 1ULL << 50, NULL},
#else
		{"/l/tls/libc.so.6", 1ULL << 63, NULL},
#endif
		{"/l/libc.so.6", 0, NULL},
		{"/m/libc.so.6", 0, NULL},
	};
	size_t nwant = sizeof(want) / sizeof(want[0]);
	assert_int_equal(ldc_cache_count(c), nwant);
	for (size_t i = 0; i < nwant; i++) {
		const struct ldc_entry *e = ldc_cache_entry(c, i);
		assert_string_equal(e->value, want[i].value);
		assert_true(e->hwcap == want[i].hwcap);
		if (want[i].hwcaps)
			assert_string_equal(e->hwcaps, want[i].hwcaps);
		else
			assert_null(e->hwcaps);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}


/* A cache whose N entries share strings (or their tails) serialises to its
 * distinct strings once: the written size does not grow with N x length;
 * ldc_cache_append moves entries without a copy, in order. */
static void test_shared_strings(void **state)
{
	(void)state;
	enum { N = 2000 };
	const size_t len = 48 + (size_t)N * 24 + 4096 + 256;
	unsigned char *b = calloc(1, len);
	assert_non_null(b);
	memcpy(b, "glibc-ld.so.cache1.1", 20);
	uint32_t n = N, strs = 48 + N * 24, v;
	memcpy(b + 20, &n, 4);
	b[28] = 2;
	memset(b + strs, 'k', 250);
	memcpy(b + strs, "lib", 3);
	memcpy(b + strs + 245, ".so.1", 5);
	memset(b + strs + 251, 'v', 4000);
	b[strs + 251] = '/';
	for (uint32_t i = 0; i < N; i++) {
		unsigned char *e = b + 48 + (size_t)i * 24;
		int32_t fl = X86_64;
		memcpy(e, &fl, 4);
		v = strs + (i % 2 ? i % 200 : 0); /* shared, or a suffix of it */
		memcpy(e + 4, &v, 4);
		v = strs + 251 + (i % 3 ? i % 1000 : 0);
		memcpy(e + 8, &v, 4);
	}
	struct gs_err err = GS_ERR_INIT;
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	assert_int_equal(ldc_cache_parse(b, len, "shared", &c, &err), 0);
	free(b);
	assert_int_equal(ldc_cache_count(c), N);
	_cleanup_free_ void *buf = NULL;
	size_t out = 0;
	_cleanup_(ldc_cache_freep) struct ldc_cache *back = roundtrip(c, &buf, &out);
	/* header + table + the two strings once + extension directory */
	assert_true(out < 48 + (size_t)N * 24 + 4096 + 256 + 512);
	assert_int_equal(ldc_cache_count(back), N);
	for (size_t i = 0; i < N; i++) {
		assert_string_equal(ldc_cache_entry(back, i)->key, ldc_cache_entry(c, i)->key);
		assert_string_equal(ldc_cache_entry(back, i)->value, ldc_cache_entry(c, i)->value);
	}
	/* append: DST's own entries first, then SRC's, SRC left empty */
	_cleanup_(ldc_cache_freep) struct ldc_cache *dst = NULL;
	static const struct ldc_entry first = {.key = "libfirst.so.1", .value = "/x/libfirst.so.1",
					       .flags = X86_64};
	dst = mk(&first, 1);
	assert_int_equal(ldc_cache_append(dst, back, &err), 0);
	assert_int_equal(ldc_cache_count(back), 0);
	assert_int_equal(ldc_cache_count(dst), N + 1);
	assert_string_equal(ldc_cache_entry(dst, 0)->key, "libfirst.so.1");
	assert_string_equal(ldc_cache_entry(dst, N)->value, ldc_cache_entry(c, N - 1)->value);
	/* strings added later still go to DST's own storage */
	static const struct ldc_entry last = {.key = "liblast.so.2", .value = "/x/liblast.so.2",
					      .flags = X86_64};
	assert_int_equal(ldc_cache_add(dst, &last, &err), 0);
	assert_string_equal(ldc_cache_entry(dst, N + 1)->key, "liblast.so.2");
	/* over-long names are refused by add too */
	char longkey[300];
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	const struct ldc_entry bad = {.key = longkey, .value = "/x", .flags = X86_64};
	assert_int_equal(ldc_cache_add(dst, &bad, &err), -EINVAL);
}

/* ---- common/fsx.c: gs_read_all_fd, gs_write_atomic_at ---------------------- */

/* A regular file of N bytes ('a' + i % 26), opened for reading. */
static int regular_fd(const char *dir, const char *name, size_t n)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	for (size_t i = 0; i < n; i++) {
		char ch = (char)('a' + i % 26);
		assert_int_equal(write(fd, &ch, 1), 1);
	}
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* A pipe holding N bytes, write end closed; returns the read end. */
static int pipe_fd(size_t n)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_true(n <= 65536); /* fits in the pipe's buffer */
	for (size_t i = 0; i < n; i++) {
		char ch = (char)('a' + i % 26);
		assert_int_equal(write(p[1], &ch, 1), 1);
	}
	close(p[1]);
	return p[0];
}

static void check_pattern(const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(buf[i], 'a' + i % 26);
	assert_int_equal(buf[n], '\0');
}

/* gs_read_all_fd_within: a writer that never closes is given up on at
 * the deadline (ETIMEDOUT, named), nothing returned; one that closes in
 * time is read whole, however it trickles in */
static void test_read_all_fd_within(void **state)
{
	(void)state;
	struct gs_err err = GS_ERR_INIT;
	char sentinel[] = "untouched";
	char *out = sentinel;
	size_t len = 77;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "partial", 7), 7); /* some output, then silence */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(gs_read_all_fd_within(p[0], 1000, 200, "helper", &out, &len, &err), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 190);
	assert_non_null(strstr(err.msg, "helper: no end of output within 200 ms"));
	assert_ptr_equal(out, sentinel);
	assert_int_equal(len, 77);
	close(p[1]);
	/* now at its end: read at once (what the failed call took is gone with it) */
	assert_int_equal(gs_read_all_fd_within(p[0], 1000, 200, "helper", &out, &len, &err), 0);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	free(out);
	close(p[0]);
	/* a child writing in pieces, closing before the limit */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		for (int i = 0; i < 5; i++) {
			if (write(p[1], "abcde", 5) != 5)
				_exit(1);
			usleep(20000);
		}
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(gs_read_all_fd_within(p[0], 1000, 5000, "child", &out, &len, &err), 0);
	assert_int_equal(len, 25);
	assert_memory_equal(out, "abcdeabcdeabcdeabcdeabcde", 25);
	free(out);
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_read_all_fd(void **state)
{
	(void)state;
	char dir[] = "/tmp/gs-readall-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct gs_err err = GS_ERR_INIT;
	char sentinel[] = "untouched";
	char *out = sentinel;
	size_t len = 77;

	/* more than MAX: an error naming the file and the limit, nothing returned */
	int fd = regular_fd(dir, "big", 100);
	assert_int_equal(gs_read_all_fd(fd, 99, "big.txt", &out, &len, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "big.txt"));
	assert_non_null(strstr(err.msg, "99 bytes"));
	assert_ptr_equal(out, sentinel);
	assert_int_equal(len, 77);
	close(fd);
	gs_err_clear(&err);
	fd = pipe_fd(10000);
	assert_int_equal(gs_read_all_fd(fd, 9999, "pipe", &out, &len, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "pipe: larger than 9999 bytes"));
	assert_ptr_equal(out, sentinel);
	assert_int_equal(len, 77);
	close(fd);
	gs_err_clear(&err);
	fd = pipe_fd(1);
	assert_int_equal(gs_read_all_fd(fd, 0, "one", &out, &len, &err), -EFBIG);
	assert_ptr_equal(out, sentinel);
	close(fd);

	/* an empty file, an empty pipe: an empty string */
	fd = regular_fd(dir, "empty", 0);
	assert_int_equal(gs_read_all_fd(fd, 10, "empty", &out, &len, &err), 0);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	free(out);
	close(fd);
	fd = pipe_fd(0);
	assert_int_equal(gs_read_all_fd(fd, 0, "empty pipe", &out, NULL, &err), 0);
	assert_string_equal(out, "");
	free(out);
	close(fd);

	/* exactly MAX bytes: all of them */
	fd = regular_fd(dir, "exact", 5000);
	assert_int_equal(gs_read_all_fd(fd, 5000, "exact", &out, &len, &err), 0);
	assert_int_equal(len, 5000);
	check_pattern(out, len);
	free(out);
	close(fd);
	fd = pipe_fd(5000);
	assert_int_equal(gs_read_all_fd(fd, 5000, "exact pipe", &out, &len, &err), 0);
	assert_int_equal(len, 5000);
	check_pattern(out, len);
	free(out);
	close(fd);

	/* a pipe (no size) larger than the first allocation grows; the
	 * offset of a regular file is where reading starts */
	fd = pipe_fd(60000);
	assert_int_equal(gs_read_all_fd(fd, 1 << 20, "pipe", &out, &len, &err), 0);
	assert_int_equal(len, 60000);
	check_pattern(out, len);
	free(out);
	close(fd);
	fd = regular_fd(dir, "offset", 30);
	assert_int_equal(lseek(fd, 26, SEEK_SET), 26);
	assert_int_equal(gs_read_all_fd(fd, 100, "offset", &out, &len, &err), 0);
	assert_int_equal(len, 4);
	assert_string_equal(out, "abcd");
	free(out);
	close(fd);

	/* a /proc file: regular, size 0, content nonetheless */
	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(gs_read_all_fd(fd, 1 << 20, "/proc/self/status", &out, &len, &err), 0);
	assert_true(len > 0 && strlen(out) == len);
	assert_non_null(strstr(out, "Name:"));
	free(out);
	close(fd);

	/* a read error names the file */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	out = sentinel;
	assert_int_equal(gs_read_all_fd(fd, 100, "a dir", &out, &len, &err), -EISDIR);
	assert_non_null(strstr(err.msg, "reading a dir"));
	assert_ptr_equal(out, sentinel);
	close(fd);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Entries of DIRFD other than "." and ".."; fails on a temporary file. */
static int entries(int dirfd)
{
	DIR *d = fdopendir(openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (strstr(de->d_name, ".gs-"))
			fail_msg("temporary file left: %s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void read_back(int dirfd, const char *name, const char *want)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	_cleanup_free_ char *text = NULL;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_read_all_fd(fd, 1 << 20, name, &text, NULL, &err), 0);
	assert_string_equal(text, want);
}

static void test_write_atomic(void **state)
{
	(void)state;
	char dir[] = "/tmp/gs-atomic-XXXXXX";
	assert_non_null(mkdtemp(dir));
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	struct gs_err err = GS_ERR_INIT;
	struct stat st, old;

	/* a new file: its content and mode, nothing else in the directory */
	assert_int_equal(gs_write_atomic_at(dfd, "f", "one\n", 4, 0640, 0, &err), 0);
	read_back(dfd, "f", "one\n");
	assert_int_equal(fstatat(dfd, "f", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(entries(dfd), 1);

	/* an existing file is replaced by a new inode (a hard link to the old
	 * one keeps the old content: it was never written in place), synced,
	 * through an O_PATH directory fd */
	assert_int_equal(linkat(dfd, "f", dfd, "old", 0), 0);
	assert_int_equal(fstatat(dfd, "f", &old, 0), 0);
	_cleanup_close_ int pathfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(pathfd >= 0);
	assert_int_equal(gs_write_atomic_at(pathfd, "f", "two", 3, 0444,
					    GS_WRITE_FSYNC | GS_WRITE_FSYNC_DIR, &err),
			 0);
	read_back(dfd, "f", "two");
	read_back(dfd, "old", "one\n");
	assert_int_equal(fstatat(dfd, "f", &st, 0), 0);
	assert_true(st.st_ino != old.st_ino);
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(entries(dfd), 2);
	assert_int_equal(unlinkat(dfd, "old", 0), 0);

	/* a symlink at NAME is replaced, its target untouched; an empty file */
	assert_int_equal(symlinkat("f", dfd, "link"), 0);
	assert_int_equal(gs_write_atomic_at(dfd, "link", "", 0, 0600, 0, &err), 0);
	assert_int_equal(fstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 0);
	read_back(dfd, "f", "two");
	assert_int_equal(unlinkat(dfd, "link", 0), 0);

	/* GS_WRITE_KEEP_OWNER: the owner and group of the file replaced */
	if (geteuid() == 0) {
		assert_int_equal(fchownat(dfd, "f", 1234, 5678, 0), 0);
		assert_int_equal(gs_write_atomic_at(dfd, "f", "3", 1, 0600, GS_WRITE_KEEP_OWNER, &err), 0);
		assert_int_equal(fstatat(dfd, "f", &st, 0), 0);
		assert_int_equal(st.st_uid, 1234);
		assert_int_equal(st.st_gid, 5678);
		assert_int_equal(st.st_mode & 07777, 0600);
		read_back(dfd, "f", "3");
		assert_int_equal(gs_write_atomic_at(dfd, "new", "4", 1, 0600, GS_WRITE_KEEP_OWNER, &err), 0);
		assert_int_equal(fstatat(dfd, "new", &st, 0), 0);
		assert_int_equal(st.st_uid, 0);
		assert_int_equal(unlinkat(dfd, "new", 0), 0);
	}

	/* NAME is a directory: an error naming it, the directory as it was and
	 * no temporary file (it failed after the write) */
	assert_int_equal(mkdirat(dfd, "d", 0755), 0);
	assert_int_equal(mkdirat(dfd, "d/sub", 0755), 0);
	int r = gs_write_atomic_at(dfd, "d", "x", 1, 0644, GS_WRITE_FSYNC, &err);
	assert_true(r == -EISDIR || r == -ENOTEMPTY || r == -EEXIST);
	assert_non_null(strstr(err.msg, "replacing d"));
	assert_int_equal(fstatat(dfd, "d/sub", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(entries(dfd), 2);

	/* a read-only directory (as an unprivileged user when run as root):
	 * an error, nothing created */
	assert_int_equal(chmod(dir, 0555), 0);
	bool dropped = geteuid() == 0 && seteuid(65534) == 0;
	if (dropped || geteuid() != 0) {
		r = gs_write_atomic_at(dfd, "f", "ro", 2, 0644, 0, &err);
		if (dropped)
			assert_int_equal(seteuid(0), 0);
		assert_int_equal(r, -EACCES);
		assert_non_null(strstr(err.msg, "f: creating a temporary file"));
		read_back(dfd, "f", geteuid() == 0 ? "3" : "two");
		assert_int_equal(entries(dfd), 2);
	}
	assert_int_equal(chmod(dir, 0700), 0);

	/* only a single file name; unknown flags */
	static const char *const bad[] = {"", ".", "..", "a/b", "/abs", "d/"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(gs_write_atomic_at(dfd, bad[i], "x", 1, 0644, 0, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "not a single file name"));
	}
	char longname[300];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(gs_write_atomic_at(dfd, longname, "x", 1, 0644, 0, &err), -EINVAL);
	longname[255] = '\0'; /* the longest name: the temporary name still fits */
	assert_int_equal(gs_write_atomic_at(dfd, longname, "x", 1, 0644, 0, &err), 0);
	assert_int_equal(unlinkat(dfd, longname, 0), 0);
	assert_int_equal(gs_write_atomic_at(dfd, "f", "x", 1, 0644, 1u << 9, &err), -EINVAL);
	/* DIRFD not a directory: nothing created anywhere */
	_cleanup_close_ int ffd = openat(dfd, "f", O_RDONLY | O_CLOEXEC);
	assert_int_equal(gs_write_atomic_at(ffd, "g", "x", 1, 0644, 0, &err), -ENOTDIR);
	assert_int_equal(entries(dfd), 2);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- ldc_cache_splice ---------------------------------------------------------- */

/* What the general path writes for IMG + ADD (append, sort, serialise),
 * parsed back; IMG is consumed. */
static struct ldc_cache *general(struct ldc_cache *img, const struct ldc_entry *add, size_t n)
{
	struct gs_err err = GS_ERR_INIT;
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = mk(add, n);
	ldc_cache_sort(c);
	assert_int_equal(ldc_cache_append(c, img, &err), 0);
	ldc_cache_sort(c);
	_cleanup_free_ void *buf = NULL;
	size_t len = 0;
	return roundtrip(c, &buf, &len);
}

static void assert_same_entries(const struct ldc_cache *a, const struct ldc_cache *b)
{
	assert_int_equal(ldc_cache_count(a), ldc_cache_count(b));
	for (size_t i = 0; i < ldc_cache_count(a); i++) {
		const struct ldc_entry *x = ldc_cache_entry(a, i), *y = ldc_cache_entry(b, i);
		assert_string_equal(x->key, y->key);
		assert_string_equal(x->value, y->value);
		assert_int_equal(x->flags, y->flags);
		assert_int_equal(x->hwcap, y->hwcap);
		assert_int_equal(x->osversion, y->osversion);
	}
}

/* An image's cache as a file: entries written by our serialiser, which lays
 * a cache out as ldconfig does. */
static struct ldc_cache *image_cache(size_t n, void **file, size_t *len)
{
	struct gs_err err = GS_ERR_INIT;
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	assert_int_equal(ldc_cache_new(&c, &err), 0);
	for (size_t i = 0; i < n; i++) {
		char key[64], val[128];
		snprintf(key, sizeof(key), "lib%c%zu.so.%zu", (char)('a' + i % 26), i, i % 3);
		snprintf(val, sizeof(val), "/usr/lib/x86_64-linux-gnu/%s", key);
		struct ldc_entry e = {key, val, i % 4 ? X86_64 : LDC_FLAG_ELF_LIBC6, 0,
				      i % 9 ? 0 : 1ull << 3, NULL};
		assert_int_equal(ldc_cache_add(c, &e, &err), 0);
	}
	struct ldc_entry cuda = {"libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", X86_64, 0, 0, NULL};
	assert_int_equal(ldc_cache_add(c, &cuda, &err), 0); /* a stub in the image */
	ldc_cache_sort(c);
	return roundtrip(c, file, len);
}

static const struct ldc_entry staged[] = {
	{"libcuda.so.1", "/run/gpu-stage/lib/compute/libcuda.so.1", X86_64, 0, 0, NULL},
	{"libcuda.so", "/run/gpu-stage/lib/compute/libcuda.so", X86_64, 0, 0, NULL},
	{"libnvidia-ml.so.1", "/run/gpu-stage/lib/utility/libnvidia-ml.so.1", X86_64, 0, 0, NULL},
	{"zzz-not-a-suffix", "/run/gpu-stage/lib/compute/other-name.so", X86_64, 0, 0, NULL},
};
#define N_STAGED (sizeof(staged) / sizeof(staged[0]))

static void test_splice_equals_general(void **state)
{
	(void)state;
	struct gs_err err = GS_ERR_INIT;
	for (size_t n = 0; n <= 300; n += 150) {
		_cleanup_free_ void *file = NULL, *out = NULL;
		size_t flen = 0, olen = 0;
		_cleanup_(ldc_cache_freep) struct ldc_cache *img = image_cache(n, &file, &flen);
		_cleanup_(ldc_cache_freep) struct ldc_cache *add = mk(staged, N_STAGED);
		ldc_cache_sort(add);
		assert_int_equal(ldc_cache_splice(img, add, "splice", &out, &olen, &err), 0);
		_cleanup_(ldc_cache_freep) struct ldc_cache *got = NULL;
		assert_int_equal(ldc_cache_parse(out, olen, "spliced", &got, &err), 0);
		assert_true(ldc_cache_is_sorted(got));
		assert_string_equal(ldc_cache_generator(got), "splice");
		/* the image's strings are not rewritten: its table is in ours */
		assert_true(olen < flen + N_STAGED * (LDC_NEW_ENTRY_SIZE + 64));
		_cleanup_(ldc_cache_freep) struct ldc_cache *img2 = NULL;
		assert_int_equal(ldc_cache_parse(file, flen, "image", &img2, &err), 0);
		_cleanup_(ldc_cache_freep) struct ldc_cache *want = general(img2, staged, N_STAGED);
		assert_same_entries(got, want);
		/* ours first among equals: ld.so finds the staged libcuda */
		ssize_t at = ldc_cache_find(got, "libcuda.so.1", LDC_ARCH_X86_64);
		assert_true(at >= 0);
		assert_string_equal(ldc_cache_entry(got, (size_t)at)->value, staged[0].value);
		/* a key that ends its value points into it */
		const struct ldc_entry *e = ldc_cache_entry(got, (size_t)at);
		assert_ptr_equal(e->key, e->value + strlen(e->value) - strlen(e->key));
		/* and the result splices again like any ldconfig cache */
		_cleanup_(ldc_cache_freep) struct ldc_cache *none = mk(NULL, 0);
		_cleanup_free_ void *again = NULL;
		size_t alen = 0;
		assert_int_equal(ldc_cache_splice(got, none, "splice", &again, &alen, &err), 0);
		assert_int_equal(alen, olen);
		assert_memory_equal(again, out, olen);
	}
}

static void test_splice_refuses(void **state)
{
	(void)state;
	struct gs_err err = GS_ERR_INIT;
	_cleanup_free_ void *file = NULL;
	size_t flen = 0;
	_cleanup_(ldc_cache_freep) struct ldc_cache *add = mk(staged, N_STAGED);
	ldc_cache_sort(add);
	void *out = NULL;
	size_t olen = 0;
	/* a cache built in memory, not parsed from a file */
	_cleanup_(ldc_cache_freep) struct ldc_cache *mem = mk(staged, N_STAGED);
	ldc_cache_sort(mem);
	assert_int_equal(ldc_cache_splice(mem, add, NULL, &out, &olen, &err), 1);
	/* entries removed since it was read (stale entries of ours) */
	_cleanup_(ldc_cache_freep) struct ldc_cache *img = image_cache(40, &file, &flen);
	_cleanup_(ldc_cache_freep) struct ldc_cache *cut = NULL;
	assert_int_equal(ldc_cache_parse(file, flen, "image", &cut, &err), 0);
	cut->n--;
	assert_int_equal(ldc_cache_splice(cut, add, NULL, &out, &olen, &err), 1);
	/* an entry added to it */
	_cleanup_(ldc_cache_freep) struct ldc_cache *grown = NULL;
	assert_int_equal(ldc_cache_parse(file, flen, "image", &grown, &err), 0);
	assert_int_equal(ldc_cache_add(grown, &staged[3], &err), 0);
	ldc_cache_sort(grown);
	assert_int_equal(ldc_cache_splice(grown, add, NULL, &out, &olen, &err), 1);
	/* a string outside the string table: the first entry's value points
	 * at the header's magic (a valid cache still: sorted, every string
	 * NUL-terminated, but its table cannot be moved as a whole) */
	unsigned char *f = malloc(flen);
	assert_non_null(f);
	memcpy(f, file, flen);
	put32at(f, LDC_NEW_HDR_SIZE + 8, 0);
	_cleanup_(ldc_cache_freep) struct ldc_cache *odd = NULL;
	assert_int_equal(ldc_cache_parse(f, flen, "odd", &odd, &err), 0);
	assert_true(ldc_cache_is_sorted(odd));
	assert_int_equal(ldc_cache_splice(odd, add, NULL, &out, &olen, &err), 1);
	free(f);
	/* glibc-hwcaps entries (in the image or added) */
	const struct ldc_entry hw[] = {{"libc.so.6", "/hw/libc.so.6", X86_64, 0, 0, "x86-64-v3"}};
	_cleanup_(ldc_cache_freep) struct ldc_cache *hc = mk(hw, 1);
	_cleanup_free_ void *hbuf = NULL;
	size_t hlen = 0;
	_cleanup_(ldc_cache_freep) struct ldc_cache *hback = roundtrip(hc, &hbuf, &hlen);
	assert_int_equal(ldc_cache_splice(hback, add, NULL, &out, &olen, &err), 1);
	_cleanup_(ldc_cache_freep) struct ldc_cache *img3 = NULL;
	assert_int_equal(ldc_cache_parse(file, flen, "image", &img3, &err), 0);
	assert_int_equal(ldc_cache_splice(img3, hc, NULL, &out, &olen, &err), 1);
	assert_null(out);
}

static void test_splice_too_large(void **state)
{
	(void)state;
	struct gs_err err = GS_ERR_INIT;
	_cleanup_free_ void *file = NULL;
	size_t flen = 0;
	_cleanup_(ldc_cache_freep) struct ldc_cache *img = image_cache(10, &file, &flen);
	/* added entries whose paths fill more than a cache may hold */
	_cleanup_(ldc_cache_freep) struct ldc_cache *add = NULL;
	assert_int_equal(ldc_cache_new(&add, &err), 0);
	char val[LDC_VALUE_MAX + 1];
	for (size_t i = 0; i < LDC_FILE_MAX / LDC_VALUE_MAX + 2; i++) {
		char key[32];
		snprintf(key, sizeof(key), "libbig%05zu.so", i);
		memset(val, 'x', sizeof(val) - 1);
		val[0] = '/';
		snprintf(val + sizeof(val) - 1 - strlen(key) - 1, strlen(key) + 2, "/%s", key);
		struct ldc_entry e = {key, val, X86_64, 0, 0, NULL};
		assert_int_equal(ldc_cache_add(add, &e, &err), 0);
	}
	ldc_cache_sort(add);
	void *out = NULL;
	size_t olen = 0;
	assert_int_equal(ldc_cache_splice(img, add, NULL, &out, &olen, &err), -EFBIG);
	assert_null(out);
	assert_non_null(strstr(err.msg, "more than the"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libcmp),     cmocka_unit_test(test_sort_order),
		cmocka_unit_test(test_roundtrip_many), cmocka_unit_test(test_header_layout),
		cmocka_unit_test(test_lookup),     cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_old_format), cmocka_unit_test(test_write_at_atomic),
		cmocka_unit_test(test_conf_dirs), cmocka_unit_test(test_scan_skips_executables),
		cmocka_unit_test(test_scan_legacy_hwcap_dirs), cmocka_unit_test(test_shared_strings),
		cmocka_unit_test(test_read_all_fd), cmocka_unit_test(test_read_all_fd_within),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_splice_equals_general), cmocka_unit_test(test_splice_refuses),
		cmocka_unit_test(test_splice_too_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
