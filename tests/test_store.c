/* SPDX-License-Identifier: Apache-2.0 */
/* The store: staging a hand-made plan from a small fake root into a fresh
 * store (one mkdtemp directory per test), idempotent re-staging, atomic
 * replacement, verify against every kind of tampering, strict manifest
 * parsing, sources that try to leave the root, remove and list. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "../stage/store_internal.h"
#include "gs/cleanup.h"
#include "gs/elfinfo.h"
#include "gs/config.h"
#include "gs/stage.h"

#define VER "535.261.03"
/* sha256 of "hello world\n" */
#define HELLO_SHA "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"

struct fx {
	char base[64];
	char root[96];
	char store[96];
	int rootfd;
};

/* ---- fixture helpers -------------------------------------------------------------- */

static int chmod_dirs(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	if (flag == FTW_D)
		chmod(p, (st->st_mode & 07777) | 0700);
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	remove(p);
	return 0;
}

static void rm_rf(const char *path)
{
	nftw(path, chmod_dirs, 16, FTW_PHYS);
	nftw(path, rm_one, 16, FTW_PHYS | FTW_DEPTH);
}

/* Writes DATA to ROOT-relative PATH, creating parents. */
static void put(const struct fx *x, const char *path, const void *data, size_t len)
{
	char full[512];
	snprintf(full, sizeof(full), "%s/%s", x->root, path);
	for (char *s = full + strlen(x->root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(full, 0755);
		*s = '/';
	}
	int fd = open(full, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void puts_root(const struct fx *x, const char *path, const char *s)
{
	put(x, path, s, strlen(s));
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	snprintf(x->base, sizeof(x->base), "/tmp/gs-store-XXXXXX");
	if (!mkdtemp(x->base))
		return -1;
	snprintf(x->root, sizeof(x->root), "%s/root", x->base);
	snprintf(x->store, sizeof(x->store), "%s/store", x->base);
	mkdir(x->root, 0755);
	x->rootfd = open(x->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	puts_root(x, "usr/lib/x86_64-linux-gnu/libcuda.so." VER, "hello world\n");
	puts_root(x, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so." VER, "nvml library bytes");
	puts_root(x, "usr/bin/nvidia-smi", "#!/bin/sh\necho smi\n");
	puts_root(x, "lib/firmware/nvidia/" VER "/gsp.bin", "firmware");
	puts_root(x, "usr/share/vulkan/icd.d/nvidia_icd.json", "{\"icd\": 1}\n");
	*state = x;
	return x->rootfd >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	close(x->rootfd);
	rm_rf(x->base);
	free(x);
	return 0;
}

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;
	assert_true(!s || d);
	return d;
}

/* Appends a file, its identity taken from the source as it is now. */
static struct gs_file *add_file(const struct fx *x, struct gs_manifest *p, const char *path,
				const char *source, enum gs_kind kind, unsigned int caps,
				const char *soname)
{
	char full[512];
	struct stat st;
	snprintf(full, sizeof(full), "%s%s", x->root, source);
	assert_int_equal(lstat(full, &st), 0);
	p->files = realloc(p->files, (p->n_files + 1) * sizeof(*p->files));
	assert_non_null(p->files);
	struct gs_file *f = &p->files[p->n_files++];
	memset(f, 0, sizeof(*f));
	f->path = xstrdup(path);
	f->source = xstrdup(source);
	f->kind = kind;
	f->caps = caps;
	f->soname = xstrdup(soname);
	f->mode = kind == GS_KIND_BIN ? 0555 : 0444;
	f->size = (uint64_t)st.st_size;
	f->src_dev = st.st_dev;
	f->src_ino = st.st_ino;
	f->src_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (soname) {
		f->needed = calloc(2, sizeof(char *));
		f->needed[0] = xstrdup("libc.so.6");
		f->needed[1] = xstrdup("libm.so.6");
		f->n_needed = 2;
	}
	return f;
}

static void add_link(struct gs_manifest *p, const char *path, const char *target)
{
	p->links = realloc(p->links, (p->n_links + 1) * sizeof(*p->links));
	assert_non_null(p->links);
	p->links[p->n_links].path = xstrdup(path);
	p->links[p->n_links++].target = xstrdup(target);
}

static struct gs_manifest *empty_plan(const char *ver)
{
	struct gs_manifest *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->driver = xstrdup(ver);
	p->arch = xstrdup("x86_64");
	p->root = xstrdup("/");
	return p;
}

/* What discovery would produce for the fake root. */
static struct gs_manifest *make_plan(const struct fx *x, const char *ver)
{
	struct gs_manifest *p = empty_plan(ver);
	add_file(x, p, "lib/compute/libcuda.so." VER, "/usr/lib/x86_64-linux-gnu/libcuda.so." VER,
		 GS_KIND_LIB, GS_CAP_COMPUTE, "libcuda.so.1");
	add_file(x, p, "lib/utility/libnvidia-ml.so." VER,
		 "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so." VER, GS_KIND_LIB, GS_CAP_UTILITY,
		 "libnvidia-ml.so.1");
	add_file(x, p, "bin/nvidia-smi", "/usr/bin/nvidia-smi", GS_KIND_BIN, GS_CAP_UTILITY, NULL);
	add_file(x, p, "firmware/gsp.bin", "/lib/firmware/nvidia/" VER "/gsp.bin",
		 GS_KIND_FIRMWARE, GS_CAP_COMPUTE | GS_CAP_UTILITY, NULL);
	add_file(x, p, "config/vulkan/icd.d/nvidia_icd.json",
		 "/usr/share/vulkan/icd.d/nvidia_icd.json", GS_KIND_CONFIG, GS_CAP_GRAPHICS, NULL);
	add_link(p, "lib/compute/libcuda.so.1", "libcuda.so." VER);
	add_link(p, "lib/compute/libcuda.so", "libcuda.so.1");
	add_link(p, "lib/utility/libnvidia-ml.so.1", "libnvidia-ml.so." VER);
	return p;
}

static int stage(const struct fx *x, struct gs_manifest *p, bool force, enum gs_stage_result *res,
		 struct gs_err *err)
{
	gs_err_clear(err);
	return gs_store_stage(x->store, x->rootfd, p, force, NULL, res, err);
}

static void stage_ok(const struct fx *x, const char *ver, enum gs_stage_result want)
{
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res = GS_STAGE_UNCHANGED;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, ver);
	if (stage(x, p, false, &res, &err) < 0)
		fail_msg("staging %s: %s", ver, err.msg);
	assert_int_equal(res, want);
}

/* Path of something inside the store. */
static const char *sp(const struct fx *x, const char *rel)
{
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", x->store, rel);
	return buf[i];
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static size_t count_tmp(const struct fx *x)
{
	size_t n = 0;
	DIR *d = opendir(x->store);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		n += !strncmp(e->d_name, ".tmp-", 5);
	closedir(d);
	return n;
}

struct lines {
	char text[4096];
	size_t n;
};

static void collect(void *data, const char *line)
{
	struct lines *l = data;
	size_t used = strlen(l->text);
	snprintf(l->text + used, sizeof(l->text) - used, "%s\n", line);
	l->n++;
}

static int verify(const struct fx *x, const char *ver, struct lines *l, struct gs_err *err)
{
	memset(l, 0, sizeof(*l));
	gs_err_clear(err);
	return gs_store_verify(x->store, ver, collect, l, err);
}

static void verify_ok(const struct fx *x, const char *ver)
{
	struct lines l;
	struct gs_err err = GS_ERR_INIT;
	if (verify(x, ver, &l, &err) < 0)
		fail_msg("verify %s: %s\n%s", ver, err.msg, l.text);
	assert_int_equal(l.n, 0);
}

/* ---- staging ------------------------------------------------------------------------ */

static void test_stage_creates_readonly_tree(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
	assert_int_equal(stage(x, p, false, &res, &err), 0);
	assert_int_equal(res, GS_STAGE_CREATED);
	assert_string_equal(p->files[0].sha256, HELLO_SHA);
	for (size_t i = 0; i < p->n_files; i++)
		assert_int_equal(strlen(p->files[i].sha256), 64);
	assert_int_equal(mode_of(sp(x, VER)), 0555);
	assert_int_equal(mode_of(sp(x, VER "/lib")), 0555);
	assert_int_equal(mode_of(sp(x, VER "/lib/compute")), 0555);
	assert_int_equal(mode_of(sp(x, VER "/config/vulkan/icd.d")), 0555);
	assert_int_equal(mode_of(sp(x, VER "/lib/compute/libcuda.so." VER)), 0444);
	assert_int_equal(mode_of(sp(x, VER "/bin/nvidia-smi")), 0555);
	assert_int_equal(mode_of(sp(x, VER "/manifest.json")), 0444);
	char buf[64] = {0};
	assert_int_equal(readlink(sp(x, VER "/lib/compute/libcuda.so.1"), buf, sizeof(buf) - 1),
			 (ssize_t)strlen("libcuda.so." VER));
	assert_string_equal(buf, "libcuda.so." VER);
	FILE *f = fopen(sp(x, VER "/lib/compute/libcuda.so"), "r"); /* through both links */
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "hello world\n");
	assert_int_equal(count_tmp(x), 0);

	_cleanup_(gs_manifest_freep) struct gs_manifest *m = NULL;
	struct gs_manifest_info info;
	assert_int_equal(gs_store_load_info(x->store, VER, &m, &info, &err), 0);
	assert_true(info.digest_ok);
	assert_int_equal(strlen(info.created), 20);
	assert_string_equal(m->driver, VER);
	assert_string_equal(m->arch, "x86_64");
	assert_int_equal(m->n_files, p->n_files);
	assert_int_equal(m->n_links, p->n_links);
	for (size_t i = 0; i < m->n_files; i++) {
		assert_string_equal(m->files[i].path, p->files[i].path);
		assert_string_equal(m->files[i].source, p->files[i].source);
		assert_string_equal(m->files[i].sha256, p->files[i].sha256);
		assert_int_equal(m->files[i].kind, p->files[i].kind);
		assert_int_equal(m->files[i].caps, p->files[i].caps);
		assert_int_equal(m->files[i].mode, p->files[i].mode);
		assert_int_equal(m->files[i].size, p->files[i].size);
		assert_int_equal(m->files[i].src_ino, p->files[i].src_ino);
		assert_int_equal(m->files[i].src_mtime_ns, p->files[i].src_mtime_ns);
		assert_int_equal(m->files[i].n_needed, p->files[i].n_needed);
	}
	assert_string_equal(m->files[0].soname, "libcuda.so.1");
	assert_null(m->files[2].soname);
	assert_string_equal(m->files[0].needed[1], "libm.so.6");
	verify_ok(x, VER);
}

struct ino_snapshot {
	ino_t ino[8];
	struct timespec mtime[8];
};

static void snapshot(const struct fx *x, const struct gs_manifest *p, struct ino_snapshot *s)
{
	char rel[256];
	struct stat st;
	for (size_t i = 0; i <= p->n_files && i < 8; i++) {
		snprintf(rel, sizeof(rel), VER "/%s", i < p->n_files ? p->files[i].path : "manifest.json");
		assert_int_equal(lstat(sp(x, rel), &st), 0);
		s->ino[i] = st.st_ino;
		s->mtime[i] = st.st_mtim;
	}
}

static void test_restage_unchanged(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res;
	stage_ok(x, VER, GS_STAGE_CREATED);
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
	struct ino_snapshot before = {0}, after = {0};
	snapshot(x, p, &before);
	assert_int_equal(stage(x, p, false, &res, &err), 0);
	assert_int_equal(res, GS_STAGE_UNCHANGED);
	assert_string_equal(p->files[0].sha256, HELLO_SHA); /* filled from the manifest */
	snapshot(x, p, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	/* --force copies again */
	assert_int_equal(stage(x, p, true, &res, &err), 0);
	assert_int_equal(res, GS_STAGE_REPLACED);
	snapshot(x, p, &after);
	assert_true(before.ino[0] != after.ino[0]);
	assert_int_equal(count_tmp(x), 0);
	verify_ok(x, VER);
}

static void test_restage_changed_source(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res;
	stage_ok(x, VER, GS_STAGE_CREATED);
	puts_root(x, "usr/lib/x86_64-linux-gnu/libcuda.so." VER, "hello world, version two\n");
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
	assert_int_equal(stage(x, p, false, &res, &err), 0);
	assert_int_equal(res, GS_STAGE_REPLACED);
	assert_string_not_equal(p->files[0].sha256, HELLO_SHA);
	assert_int_equal(count_tmp(x), 0);
	verify_ok(x, VER);
	/* a plan with a different file set replaces too */
	_cleanup_(gs_manifest_freep) struct gs_manifest *q = make_plan(x, VER);
	free(q->links[--q->n_links].path);
	free(q->links[q->n_links].target);
	assert_int_equal(stage(x, q, false, &res, &err), 0);
	assert_int_equal(res, GS_STAGE_REPLACED);
	verify_ok(x, VER);
}

/* A damaged staged copy is noticed without hashing (sizes, modes, links)
 * and rebuilt by a plain re-run. */
static void test_restage_repairs(void **state)
{
	struct fx *x = *state;
	stage_ok(x, VER, GS_STAGE_CREATED);
	assert_int_equal(chmod(sp(x, VER "/lib/compute/libcuda.so." VER), 0644), 0);
	stage_ok(x, VER, GS_STAGE_REPLACED);
	verify_ok(x, VER);
	assert_int_equal(unlink(sp(x, VER "/lib/compute/libcuda.so")), 0);
	stage_ok(x, VER, GS_STAGE_REPLACED);
	verify_ok(x, VER);
}

static void test_source_changed_since_discovery(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
	puts_root(x, "usr/bin/nvidia-smi", "#!/bin/sh\necho a different smi\n");
	assert_int_equal(stage(x, p, false, &res, &err), -ESTALE);
	assert_non_null(strstr(err.msg, "/usr/bin/nvidia-smi"));
	assert_non_null(strstr(err.msg, "changed since discovery"));
	assert_int_equal(access(sp(x, VER), F_OK), -1);
	assert_int_equal(count_tmp(x), 0);

	/* with a staged copy in place: the failure leaves it as it was */
	_cleanup_(gs_manifest_freep) struct gs_manifest *q = make_plan(x, VER);
	assert_int_equal(stage(x, q, false, &res, &err), 0);
	puts_root(x, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so." VER, "new nvml");
	_cleanup_(gs_manifest_freep) struct gs_manifest *r = make_plan(x, VER);
	puts_root(x, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so." VER, "newer nvml!");
	assert_int_equal(stage(x, r, false, &res, &err), -ESTALE);
	assert_int_equal(count_tmp(x), 0);
	verify_ok(x, VER);
}

static void test_source_missing_rolls_back(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res;
	stage_ok(x, VER, GS_STAGE_CREATED);
	puts_root(x, "usr/bin/nvidia-smi", "#!/bin/sh\necho smi two\n");
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
	char full[256];
	snprintf(full, sizeof(full), "%s/usr/bin/nvidia-smi", x->root);
	assert_int_equal(unlink(full), 0);
	assert_int_equal(stage(x, p, false, &res, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/usr/bin/nvidia-smi"));
	assert_int_equal(count_tmp(x), 0);
	verify_ok(x, VER); /* the old copy, intact */
}

/* A source that is a symlink out of the root is resolved inside the root
 * (openat2 RESOLVE_IN_ROOT): the outside file is never read. */
static void test_source_symlink_outside_root(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res;
	char outside[128], target[160], link[160];
	snprintf(outside, sizeof(outside), "%s/secret", x->base);
	int fd = open(outside, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "SECRET", 6), 6);
	close(fd);
	static const char *const links[] = {NULL, "../../../../../../../secret"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(target, sizeof(target), "%s", links[i] ? links[i] : outside);
		snprintf(link, sizeof(link), "%s/usr/lib/libevil.so.%zu", x->root, i);
		assert_int_equal(symlink(target, link), 0);
		_cleanup_(gs_manifest_freep) struct gs_manifest *p = empty_plan(VER);
		struct stat st;
		assert_int_equal(stat(outside, &st), 0); /* as if discovery had been fooled */
		struct gs_file *f = add_file(x, p, "lib/compute/libevil.so", "/usr/lib/libevil.so.0",
					     GS_KIND_LIB, GS_CAP_COMPUTE, NULL);
		free(f->source);
		f->source = xstrdup(link + strlen(x->root));
		f->size = 6;
		f->src_dev = st.st_dev;
		f->src_ino = st.st_ino;
		f->src_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		assert_int_equal(stage(x, p, false, &res, &err), -ENOENT);
		assert_int_equal(access(sp(x, VER), F_OK), -1);
		assert_int_equal(count_tmp(x), 0);
	}
	/* and a source that is not a regular file */
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = empty_plan(VER);
	add_file(x, p, "lib/x", "/usr/lib", GS_KIND_LIB, GS_CAP_COMPUTE, NULL);
	assert_int_equal(stage(x, p, false, &res, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
}

static void test_bad_plans_refused(void **state)
{
	struct fx *x = *state;
	static const char *const bad_versions[] = {"", "../etc", ".hidden", "a/b", "..", "5 5"};
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res;
	for (size_t i = 0; i < sizeof(bad_versions) / sizeof(*bad_versions); i++) {
		_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
		free(p->driver);
		p->driver = xstrdup(bad_versions[i]);
		assert_int_equal(stage(x, p, false, &res, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "not usable as a directory name"));
	}
	static const struct {
		const char *path, *link, *target, *why;
	} cases[] = {
		{"../escape", NULL, NULL, "'.' or '..'"},
		{"/etc/passwd", NULL, NULL, "absolute path"},
		{"lib//x", NULL, NULL, "empty path component"},
		{"lib/x/", NULL, NULL, "trailing"},
		{"d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/f" /* 33 */, NULL, NULL, "too deep"},
		{"manifest.json", NULL, NULL, "reserved"},
		{"index", NULL, NULL, "reserved"},
		{NULL, "index", "manifest.json", "reserved"},
		{"lib/compute/libcuda.so." VER, NULL, NULL, "used twice"},
		{"lib/compute/libcuda.so.1/x", NULL, NULL, "also a directory"},
		{NULL, "lib/compute/evil", "/etc/passwd", "absolute link target"},
		{NULL, "lib/compute/evil", "../../../etc/passwd", "leaves the version directory"},
		{NULL, "lib/compute/evil", "x/../../..", "after a name"},
		{NULL, "lib/compute/evil", "..", "names no file"},
		{NULL, "lib/compute/libcuda.so.1", "y", "used twice"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
		if (cases[i].path)
			add_file(x, p, cases[i].path, "/usr/bin/nvidia-smi", GS_KIND_BIN, GS_CAP_UTILITY,
				 NULL);
		else
			add_link(p, cases[i].link, cases[i].target);
		assert_int_equal(stage(x, p, false, &res, &err), -EINVAL);
		if (!strstr(err.msg, cases[i].why))
			fail_msg("case %zu: '%s' not in '%s'", i, cases[i].why, err.msg);
	}
	/* sizes an input multiplies: a source past PATH_MAX, more entries than
	 * the index is built for */
	{
		_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
		char src[GS_SOURCE_MAX + 2] = "/";
		memset(src + 1, 's', GS_SOURCE_MAX);
		free(p->files[0].source);
		p->files[0].source = xstrdup(src);
		assert_int_equal(stage(x, p, false, &res, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "source longer than 4095 bytes"));
	}
	{
		_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
		char name[64];
		for (int i = 0; p->n_links <= GS_MANIFEST_MAX_ENTRIES; i++) {
			snprintf(name, sizeof(name), "lib/compute/many%d", i);
			add_link(p, name, "libcuda.so.1");
		}
		assert_int_equal(stage(x, p, false, &res, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "(more than 8192 entries)"));
	}
	assert_int_equal(access(x->store, F_OK), -1); /* nothing was created */
}

static void test_stale_tmp_removed(void **state)
{
	struct fx *x = *state;
	assert_int_equal(mkdir(x->store, 0755), 0);
	assert_int_equal(mkdir(sp(x, ".tmp-" VER "-abcdef"), 0755), 0);
	assert_int_equal(mkdir(sp(x, ".tmp-" VER "-abcdef/lib"), 0755), 0);
	int fd = open(sp(x, ".tmp-" VER "-abcdef/lib/half"), O_WRONLY | O_CREAT, 0444);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(sp(x, ".tmp-" VER "-abcdef/lib"), 0555), 0);
	assert_int_equal(chmod(sp(x, ".tmp-" VER "-abcdef"), 0555), 0);
	assert_int_equal(mkdir(sp(x, ".tmp-rm-550.1-123456"), 0755), 0);
	stage_ok(x, VER, GS_STAGE_CREATED);
	assert_int_equal(count_tmp(x), 0);
}

static void test_not_a_directory(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res;
	assert_int_equal(mkdir(x->store, 0755), 0);
	assert_int_equal(symlink("/", sp(x, VER)), 0);
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
	assert_int_equal(stage(x, p, false, &res, &err), -ENOTDIR);
	char buf[8] = {0};
	assert_int_equal(readlink(sp(x, VER), buf, sizeof(buf)), 1); /* untouched */
}

struct prog {
	size_t calls, last_done, total;
	uint64_t bytes, total_bytes;
};

static void on_progress(void *data, size_t done, size_t total, uint64_t done_bytes,
			uint64_t total_bytes, const char *current)
{
	struct prog *pr = data;
	assert_non_null(current);
	assert_int_equal(done, pr->last_done + 1);
	pr->calls++;
	pr->last_done = done;
	pr->total = total;
	pr->bytes = done_bytes;
	pr->total_bytes = total_bytes;
}

/* Sizes around the copy chunk, the empty file, and the progress callback. */
static void test_large_and_empty_files(void **state)
{
	struct fx *x = *state;
	size_t big = (8u << 20) + 12345;
	_cleanup_free_ unsigned char *data = malloc(big);
	assert_non_null(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (unsigned char)(i * 7 + i / 4096);
	put(x, "usr/lib/big.so", data, big);
	put(x, "usr/lib/empty", "", 0);
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
	add_file(x, p, "lib/compute/big.so", "/usr/lib/big.so", GS_KIND_LIB, GS_CAP_COMPUTE, NULL);
	add_file(x, p, "config/empty", "/usr/lib/empty", GS_KIND_CONFIG, GS_CAP_COMPUTE, NULL);
	struct prog pr = {0};
	struct gs_progress progress = {on_progress, &pr};
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res;
	if (gs_store_stage(x->store, x->rootfd, p, false, &progress, &res, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(pr.calls, p->n_files);
	assert_int_equal(pr.total, p->n_files);
	assert_int_equal(pr.bytes, pr.total_bytes);
	assert_string_equal(p->files[p->n_files - 1].sha256,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	char want[65];
	struct gs_sha256 *h = NULL;
	assert_int_equal(gs_sha256_new(&h, &err), 0);
	assert_int_equal(gs_sha256_update(h, data, big, &err), 0);
	assert_int_equal(gs_sha256_final(h, want, &err), 0);
	gs_sha256_free(h);
	assert_string_equal(p->files[p->n_files - 2].sha256, want);
	verify_ok(x, VER);
}

/* ---- verify: every kind of tampering is reported ------------------------------------ */

/* Runs a shell command with $S set to the store. */
static void run(const char *cmd, const struct fx *x)
{
	assert_int_equal(setenv("S", x->store, 1), 0);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static void test_verify_detects_tampering(void **state)
{
	struct fx *x = *state;
	static const struct {
		const char *cmd; /* $S is the store */
		const char *line;
	} cases[] = {
		{"cd $S/" VER "/lib/compute && chmod u+w libcuda.so." VER " && printf J | dd of=libcuda.so." VER
		 " bs=1 seek=0 conv=notrunc status=none && chmod 0444 libcuda.so." VER,
		 "lib/compute/libcuda.so." VER ": content differs"},
		{"chmod 0644 $S/" VER "/firmware/gsp.bin", "firmware/gsp.bin: mode 0644, expected 0444"},
		{"chmod 0555 $S/" VER "/firmware/gsp.bin", "firmware/gsp.bin: mode 0555"},
		{"chmod 0755 $S/" VER "/lib", "lib: mode 0755, expected 0555"},
		{"chmod 0755 $S/" VER, ".: mode 0755"},
		{"cd $S/" VER "/lib/compute && chmod u+w . && ln -sfn libcuda.so.999 libcuda.so.1 && chmod 0555 .",
		 "lib/compute/libcuda.so.1: link target \"libcuda.so.999\""},
		{"cd $S/" VER "/lib/compute && chmod u+w . && rm libcuda.so && chmod 0555 .",
		 "lib/compute/libcuda.so: missing"},
		{"cd $S/" VER "/bin && chmod u+w . && touch extra && chmod 0555 .", "bin/extra: unexpected regular file"},
		{"cd $S/" VER " && chmod u+w . && mkdir extra.d && chmod 0555 .", "extra.d: unexpected directory"},
		{"cd $S/" VER "/bin && chmod u+w . && mkfifo fifo && chmod 0555 .", "bin/fifo: unexpected fifo"},
		{"cd $S/" VER "/bin && chmod u+w . && ln -s nvidia-smi smi && chmod 0555 .", "bin/smi: unexpected symlink"},
		{"cd $S/" VER "/bin && chmod u+w . && rm nvidia-smi && mkdir nvidia-smi && chmod 0555 .",
		 "bin/nvidia-smi: expected a regular file, found a directory"},
		{"ln $S/" VER "/bin/nvidia-smi $S/hardlink", "bin/nvidia-smi: has 2 hard links"},
		{"cd $S/" VER " && chmod u+w . manifest.json && sed -i 's/x86_64/x86_65/' manifest.json && chmod 0444 manifest.json && chmod 0555 .",
		 "manifest.json: edited after staging"},
		{"chmod 0644 $S/" VER "/manifest.json", "manifest.json: mode 0644, expected 0444"},
		{"cd $S/" VER " && chmod u+w . config && mv config/vulkan config2 && chmod 0555 . config",
		 "config/vulkan/icd.d/nvidia_icd.json: missing"},
		/* its owner could make it writable and rewrite it */
		{"chown 1000 $S/" VER "/lib/compute/libcuda.so." VER,
		 "lib/compute/libcuda.so." VER ": owner 1000:0, expected 0:0 (the store's)"},
		{"chown -h 0:1000 $S/" VER "/lib/compute/libcuda.so.1", "lib/compute/libcuda.so.1: owner 0:1000"},
		{"chown 1000 $S/" VER "/lib", "lib: owner 1000:0"},
		{"chown -R 1000 $S/" VER, ".: owner 1000:0"},
		/* a staged program with file capabilities */
		{"setcap cap_net_raw+ep $S/" VER "/bin/nvidia-smi",
		 "bin/nvidia-smi: has file capabilities"},
	};
	stage_ok(x, VER, GS_STAGE_CREATED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		verify_ok(x, VER);
		run(cases[i].cmd, x);
		struct lines l;
		struct gs_err err = GS_ERR_INIT;
		assert_int_equal(verify(x, VER, &l, &err), -EBADMSG);
		if (!strstr(l.text, cases[i].line))
			fail_msg("case %zu: '%s' not reported; got:\n%s", i, cases[i].line, l.text);
		assert_non_null(strstr(err.msg, "mismatch"));
		/* a plain re-run sees the damage without hashing and rebuilds
		 * (never "unchanged" over a tree verify refuses); a changed
		 * content of the same size takes --force */
		struct gs_err serr = GS_ERR_INIT;
		enum gs_stage_result res;
		bool by_hash = strstr(cases[i].line, "content differs") != NULL;
		_cleanup_(gs_manifest_freep) struct gs_manifest *p = make_plan(x, VER);
		assert_int_equal(stage(x, p, false, &res, &serr), 0);
		if (res != (by_hash ? GS_STAGE_UNCHANGED : GS_STAGE_REPLACED))
			fail_msg("case %zu (%s): a plain re-stage gave result %d", i, cases[i].cmd, (int)res);
		if (by_hash)
			assert_int_equal(stage(x, p, true, &res, &serr), 0);
		unlink(sp(x, "hardlink"));
		verify_ok(x, VER);
	}
	/* an edited manifest is refused by gs_store_load too */
	run("cd $S/" VER " && chmod u+w . manifest.json && sed -i 's/x86_64/x86_65/' manifest.json && chmod 0444 manifest.json && chmod 0555 .",
	    x);
	struct gs_err err = GS_ERR_INIT;
	struct gs_manifest *p = NULL;
	assert_int_equal(gs_store_load(x->store, VER, &p, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "edited after staging"));
	assert_non_null(strstr(err.msg, "manifest.json"));
}

/* ---- strict manifest parsing -------------------------------------------------------- */

static char *staged_manifest(const struct fx *x)
{
	stage_ok(x, VER, GS_STAGE_CREATED);
	FILE *f = fopen(sp(x, VER "/manifest.json"), "r");
	assert_non_null(f);
	char *text = calloc(1, 1 << 16);
	assert_non_null(text);
	assert_true(fread(text, 1, (1 << 16) - 1, f) > 0);
	fclose(f);
	return text;
}

/* TEXT with the JSON value at KEYPATH ("files.0.path") replaced by VALUE
 * (JSON text, or NULL to delete it). */
static char *edit(const char *text, const char *keypath, const char *value)
{
	json_error_t e;
	json_t *root = json_loads(text, 0, &e), *obj = root;
	assert_non_null(root);
	char path[128], *save = NULL, *last = NULL;
	snprintf(path, sizeof(path), "%s", keypath);
	for (char *tok = strtok_r(path, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
		if (last)
			obj = json_is_array(obj) ? json_array_get(obj, strtoul(last, NULL, 10))
						 : json_object_get(obj, last);
		assert_non_null(obj);
		last = tok;
	}
	json_t *v = value ? json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e) : NULL;
	if (json_is_array(obj))
		json_array_set_new(obj, strtoul(last, NULL, 10), v);
	else if (v)
		json_object_set_new(obj, last, v);
	else
		json_object_del(obj, last);
	char *out = json_dumps(root, 0);
	json_decref(root);
	return out;
}

static void expect_rejected(const char *text, const char *why)
{
	struct gs_err err = GS_ERR_INIT;
	struct gs_manifest *p = NULL;
	int r = gs_manifest_parse(text, strlen(text), "m.json", &p, NULL, &err);
	if (r >= 0) {
		gs_manifest_free(p);
		fail_msg("accepted; expected '%s'", why);
	}
	assert_int_equal(r, -EBADMSG);
	assert_true(!strncmp(err.msg, "m.json: ", 8));
	if (!strstr(err.msg, why))
		fail_msg("'%s' not in '%s'", why, err.msg);
}

static void test_corrupt_manifests(void **state)
{
	struct fx *x = *state;
	_cleanup_free_ char *good = staged_manifest(x);
	static const struct {
		const char *key, *value, *why;
	} cases[] = {
		{"schema", "\"gpu-stage/manifest/v0\"", "schema"},
		{"schema", NULL, "missing \"schema\""},
		{"driver", "535", "\"driver\" must be a string"},
		{"driver", "\"../x\"", "not a valid version"},
		{"created", "\"yesterday\"", "RFC 3339"},
		{"files", "{}", "\"files\" must be an array"},
		{"links", "null", "\"links\" must be an array"},
		{"extra", "1", "unknown key \"extra\""},
		{"files.0", "[]", "files[0]: must be an object"},
		{"files.0.path", "\"../../etc/shadow\"", "'.' or '..'"},
		{"files.0.path", "\"/etc/shadow\"", "absolute path"},
		{"files.0.path", "\"a\\u0000b\"", "NUL"},
		{"files.0.path", "\"lib/utility/libnvidia-ml.so." VER "\"", "used twice"},
		{"files.0.source", "\"relative/path\"", "absolute path"},
		{"files.0.size", "\"12\"", "\"size\" must be an integer"},
		{"files.0.size", "-1", "negative"},
		{"files.0.size", "1.5", "\"size\" must be an integer"},
		{"files.0.mode", "511", "expected 0444 or 0555"},
		{"files.0.kind", "\"driver\"", "unknown kind"},
		{"files.0.caps", "\"compute\"", "\"caps\" must be an array"},
		{"files.0.caps", "[\"compute\",\"warp\"]", "not a capability"},
		{"files.0.caps", "[\"all\"]", "not a capability"},
		{"files.0.soname", "7", "\"soname\" must be a string or null"},
		{"files.0.soname", "\"../lib\"", "not a file name"},
		{"files.0.needed", "[1]", "\"needed\"[0]"},
		{"files.0.glibc", "\"2.34\"", "\"glibc\" must be a version string"},
		{"files.0.glibc", "\"GLIBC_PRIVATE\"", "\"glibc\" must be a version string"},
		{"files.0.glibc", "234", "\"glibc\" must be a version string"},
		{"files.0.glibc", "\"GLIBC_2.34\\u0000\"", "is not allowed"},
		{"files.0.sha256", "\"ABC\"", "64 lowercase hex"},
		{"files.0.src", "[]", "\"src\" must be an object"},
		{"files.0.src.ino", "\"1\"", "\"ino\" must be an integer"},
		{"files.0.bogus", "true", "unknown key \"bogus\""},
		{"links.0.path", "\"/abs\"", "absolute path"},
		{"links.0.target", "\"/usr/lib/libcuda.so\"", "absolute link target"},
		{"links.0.target", "\"../../../../etc/passwd\"", "leaves the version directory"},
		{"links.0.target", "false", "\"target\" must be a string"},
		{"manifest_sha256", "\"zz\"", "64 lowercase hex"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		_cleanup_free_ char *text = edit(good, cases[i].key, cases[i].value);
		expect_rejected(text, cases[i].why);
	}
	expect_rejected("{\"schema\": ", "line 1");
	expect_rejected("[]", "top level must be an object");
	expect_rejected("", "line");
	/* a duplicate key, anywhere */
	_cleanup_free_ char *dup = calloc(1, strlen(good) + 64);
	snprintf(dup, strlen(good) + 64, "{\"driver\": \"550.1\", %s", strchr(good, '{') + 1);
	expect_rejected(dup, "duplicate");
	/* the good one parses, and its digest holds */
	struct gs_err err = GS_ERR_INIT;
	struct gs_manifest *p = NULL;
	struct gs_manifest_info info;
	assert_int_equal(gs_manifest_parse(good, strlen(good), "m.json", &p, &info, &err), 0);
	assert_true(info.digest_ok);
	gs_manifest_free(p);
	/* "glibc" is optional (manifests of before it) and read back */
	_cleanup_free_ char *without = edit(good, "files.0.glibc", NULL);
	assert_int_equal(gs_manifest_parse(without, strlen(without), "m.json", &p, &info, &err), 0);
	assert_int_equal(p->files[0].glibc, 0);
	gs_manifest_free(p);
	_cleanup_free_ char *with = edit(good, "files.0.glibc", "\"GLIBC_2.2.5\"");
	assert_int_equal(gs_manifest_parse(with, strlen(with), "m.json", &p, &info, &err), 0);
	assert_int_equal(p->files[0].glibc, GS_GLIBC(2, 2) | 5);
	gs_manifest_free(p);
}

/* Problems with the file rather than its content name the file. */
static void test_manifest_file_problems(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	struct gs_manifest *p = NULL;
	stage_ok(x, VER, GS_STAGE_CREATED);
	/* driver differs from its directory */
	assert_int_equal(rename(sp(x, VER), sp(x, "550.54.14")), 0);
	assert_int_equal(gs_store_load(x->store, "550.54.14", &p, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "550.54.14/manifest.json: driver \"" VER "\" does not match"));
	/* missing */
	gs_err_clear(&err);
	assert_int_equal(gs_store_load(x->store, VER, &p, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "not staged"));
	run("chmod u+w $S/550.54.14 && rm $S/550.54.14/manifest.json", x);
	assert_int_equal(gs_store_load(x->store, "550.54.14", &p, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "550.54.14/manifest.json"));
	/* a symlink is not followed */
	assert_int_equal(symlink("/etc/hostname", sp(x, "550.54.14/manifest.json")), 0);
	assert_int_equal(gs_store_load(x->store, "550.54.14", &p, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "symlink"));
	/* a version that is not a name */
	assert_int_equal(gs_store_load(x->store, "../store", &p, &err), -EINVAL);
	assert_null(p);
}

/* ---- remove and list ---------------------------------------------------------------- */

static void test_remove(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	int rm_err = -1;
	stage_ok(x, VER, GS_STAGE_CREATED);
	assert_int_equal(gs_store_remove(x->store, VER, &rm_err, &err), 0);
	assert_int_equal(rm_err, 0);
	assert_int_equal(access(sp(x, VER), F_OK), -1);
	assert_int_equal(count_tmp(x), 0);
	assert_int_equal(gs_store_remove(x->store, VER, &rm_err, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "not staged"));
	assert_int_equal(gs_store_remove(x->store, "..", &rm_err, &err), -EINVAL);
	assert_int_equal(gs_store_remove(x->store, ".lock", &rm_err, &err), -EINVAL);
	assert_int_equal(access(sp(x, ".lock"), F_OK), 0);
	stage_ok(x, VER, GS_STAGE_CREATED); /* and it can be staged again */
	verify_ok(x, VER);
}

static void test_list_sorted(void **state)
{
	struct fx *x = *state;
	struct gs_err err = GS_ERR_INIT;
	char **v = NULL;
	size_t n = 99;
	assert_int_equal(gs_store_list(x->store, &v, &n, &err), 0); /* no store yet */
	assert_int_equal(n, 0);
	free(v);
	static const char *const vers[] = {"550.54.14", "535.261.03", "535.104.05", "535.54.03",
					   "1000.1"};
	for (size_t i = 0; i < 5; i++)
		stage_ok(x, vers[i], GS_STAGE_CREATED);
	assert_int_equal(mkdir(sp(x, "notes"), 0755), 0);     /* no manifest */
	assert_int_equal(mkdir(sp(x, ".tmp-9.9-x"), 0755), 0); /* temporary */
	assert_int_equal(symlink("535.261.03", sp(x, "current")), 0);
	assert_int_equal(gs_store_list(x->store, &v, &n, &err), 0);
	static const char *const want[] = {"535.54.03", "535.104.05", "535.261.03", "550.54.14",
					   "1000.1"};
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(v[i], want[i]);
		free(v[i]);
	}
	free(v);
}

/* ---- the index ------------------------------------------------------------ */

/* TEXT with its last line ("end<TAB>CRC") made right again after an edit:
 * the parser must then find the edit itself, not only the checksum. */
static char *recrc(const char *text)
{
	size_t n = strlen(text);
	const char *end = strstr(text, "end\t");
	assert_non_null(end);
	n = (size_t)(end - text);
	char *out = malloc(n + 16);
	assert_non_null(out);
	memcpy(out, text, n);
	uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)text, (uInt)n);
	snprintf(out + n, 16, "end\t%08lx\n", crc);
	return out;
}

static char *replace1(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	if (!at)
		fail_msg("'%s' not in the index", from);
	size_t a = (size_t)(at - text), fl = strlen(from), tl = strlen(to), n = strlen(text);
	char *out = malloc(n - fl + tl + 1);
	assert_non_null(out);
	memcpy(out, text, a);
	memcpy(out + a, to, tl);
	memcpy(out + a + tl, at + fl, n - a - fl + 1);
	return out;
}

/* Parses TEXT (a copy) and expects failure with code CODE and WHY in the message. */
static void index_rejected(const char *text, size_t len, int code, const char *why)
{
	char *buf = malloc(len + 1);
	assert_non_null(buf);
	memcpy(buf, text, len);
	buf[len] = '\0';
	struct gs_index *x = NULL;
	struct gs_err err = GS_ERR_INIT;
	int r = gs_index_parse(buf, len, "index", &x, &err);
	if (r != -code || !strstr(err.msg, why))
		fail_msg("expected -%d with '%s', got %d: %s", code, why, r, err.msg);
	assert_null(x);
}

static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static void test_index(void **state)
{
	struct fx *x = *state;
	stage_ok(x, VER, GS_STAGE_CREATED);
	struct gs_store_ver v;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_store_ver_open(x->store, VER, &v, &err), 0);
	assert_true(v.lockfd >= 0);
	struct gs_index *ix = NULL;
	if (gs_index_read_at(v.verfd, v.dir, VER, &ix, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(ix->driver, VER);
	assert_int_equal(ix->n_files, 5);
	assert_string_equal(ix->files[0].path, "lib/compute/libcuda.so." VER);
	assert_string_equal(ix->files[0].soname, "libcuda.so.1");
	assert_int_equal(ix->files[0].caps, GS_CAP_COMPUTE);
	assert_int_equal(strlen(ix->files[0].sha256), 64);
	/* libcuda.so.1 (SONAME link), libcuda.so (development link),
	 * libnvidia-ml.so.1, in ldconfig's order: keys descending */
	assert_int_equal(ix->n_cache, 3);
	assert_string_equal(ix->cache[0].key, "libnvidia-ml.so.1");
	assert_string_equal(ix->cache[0].dir, "lib/utility");
	assert_string_equal(ix->cache[1].key, "libcuda.so.1");
	assert_string_equal(ix->cache[1].file, "libcuda.so.1");
	assert_string_equal(ix->cache[2].key, "libcuda.so");
	gs_index_free(ix);

	size_t len;
	char *text = read_text(sp(x, VER "/index"), &len);
	/* truncated anywhere, a flipped byte, trailing garbage */
	index_rejected(text, len - 1, EBADMSG, "truncated");
	index_rejected(text, len / 2, EBADMSG, "truncated");
	index_rejected(text, 0, EBADMSG, "truncated");
	char *flip = strdup(text);
	flip[40] ^= 1;
	index_rejected(flip, len, EBADMSG, "checksum");
	free(flip);
	/* edits with a matching checksum are still caught */
	static const struct {
		const char *from, *to;
		int code;
		const char *why;
	} edits[] = {
		{"gpu-stage-index\t2\n", "gpu-stage-index\t1\n", EPROTO, "format 1, this gpu-stage reads format 2"},
		{"driver\t" VER, "driver\t../x", EBADMSG, "not a driver version"},
		{"\tlib/compute/libcuda.so." VER "\n", "\tlib/compute/../../x\n", EBADMSG, "'..'"},
		{"F\tlib\t2\t", "F\tlib\t200\t", EBADMSG, "not a number in range"},
		{"C\t771\t0\tlib/utility", "C\t771\t0\tetc/utility", EBADMSG, "not a staged library directory"},
		{"C\t771\t0\tlib/utility", "C\t771\t1000000\tlib/utility", EBADMSG, "not a number in range"},
		{"libnvidia-ml.so.1\tlibnvidia-ml.so.1", "liba.so.1\tlibnvidia-ml.so.1", EBADMSG,
		 "out of ldconfig's order"},
		{"files\t5\n", "files\t6\n", EBADMSG, "expected a 'F' line"},
		{"files\t5\n", "files\t99999999\n", EBADMSG, "not a number in range"},
		{"cache\t3\n", "cache\t99999999\n", EBADMSG, "not a number in range"},
		{"F\tlib\t2\t", "F\tlib\t0x2\t", EBADMSG, "not a number in range"},
		{"F\tlib\t2\t", "F\tlib\t 2\t", EBADMSG, "not a number in range"},
		{"cache\t3\n", "cache\t2\n", EBADMSG, "unexpected line"},
		{"\tlibcuda.so.1\t", "\tlibcuda.so.1\textra\t", EBADMSG, "fields"},
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *e = replace1(text, edits[i].from, edits[i].to);
		char *c = recrc(e);
		index_rejected(c, strlen(c), edits[i].code, edits[i].why);
		free(e);
		free(c);
	}
	free(text);

	/* the hook's reader: a missing index says how to rebuild it; one made
	 * from another manifest (size differs) is refused */
	run("chmod 755 \"$S/" VER "\" && mv \"$S/" VER "/index\" \"$S/index.saved\"", x);
	assert_int_equal(gs_index_read_at(v.verfd, v.dir, VER, &ix, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "gpu-stage --driver " VER));
	run("sed 's/^manifest\t[0-9]*/manifest\t1/' \"$S/index.saved\" > \"$S/" VER "/index\"", x);
	assert_true(gs_index_read_at(v.verfd, v.dir, VER, &ix, &err) < 0);
	run("rm \"$S/" VER "/index\" && chmod 555 \"$S/" VER "\"", x);
	gs_store_ver_close(&v);
	/* verify names the missing index; staging again rebuilds it alone */
	struct lines l = {0};
	assert_int_equal(verify(x, VER, &l, &err), -EBADMSG);
	assert_non_null(strstr(l.text, "index: missing"));
	ino_t before = 0;
	struct stat st;
	assert_int_equal(stat(sp(x, VER "/lib/compute/libcuda.so." VER), &st), 0);
	before = st.st_ino;
	stage_ok(x, VER, GS_STAGE_REINDEXED);
	assert_int_equal(stat(sp(x, VER "/lib/compute/libcuda.so." VER), &st), 0);
	assert_int_equal(st.st_ino, before); /* nothing copied */
	assert_int_equal(mode_of(sp(x, VER)), 0555);
	verify_ok(x, VER);
	stage_ok(x, VER, GS_STAGE_UNCHANGED);
	run("cmp \"$S/index.saved\" \"$S/" VER "/index\"", x);
	/* a tampered index (checksum fixed up) is caught by verify */
	run("chmod 755 \"$S/" VER "\" && chmod 644 \"$S/" VER "/index\" && "
	    "sed -i 's/\\tlib\\/compute\\tlibcuda.so.1\\tlibcuda.so.1/\\tlib\\/compute\\tlibcuda.so.1\\tlibcuda.so/' \"$S/" VER "/index\" && "
	    "chmod 444 \"$S/" VER "/index\" && chmod 555 \"$S/" VER "\"", x);
	struct lines l2 = {0};
	assert_int_equal(verify(x, VER, &l2, &err), -EBADMSG);
	assert_non_null(strstr(l2.text, "index: not the index of manifest.json"));
}

/* ---- the configuration file ------------------------------------------------ */

static void config_rejected(const char *text, const char *why)
{
	struct gs_config c;
	struct gs_err err = GS_ERR_INIT;
	if (gs_config_parse(text, strlen(text), "/etc/gpu-stage/config.json", &c, &err) != -EINVAL ||
	    !strstr(err.msg, why))
		fail_msg("config %s: expected an error with '%s', got '%s'", text, why, err.msg);
	assert_null(c.store);
}

static void test_config(void **state)
{
	(void)state;
	struct gs_config c;
	struct gs_err err = GS_ERR_INIT;
	/* a missing file at the default place: every default */
	assert_int_equal(gs_config_load("/nonexistent/gpu-stage/config.json", false, &c, &err), 0);
	assert_null(c.path);
	assert_string_equal(c.store, "/var/lib/gpu-stage");
	assert_null(c.driver);
	assert_string_equal(c.runtime, "runc");
	assert_string_equal(c.audit_log, "/var/log/gpu-stage/hook.log");
	assert_string_equal(c.dev_root, "/dev");
	assert_string_equal(c.proc_root, "/proc");
	assert_string_equal(c.cdi_vendor, "nvidia.com");
	assert_string_equal(c.cdi_dir, "/etc/cdi");
	assert_int_equal(c.caps, GS_CAP_UTILITY | GS_CAP_COMPUTE);
	assert_int_equal(c.requests, GS_REQUESTS_ENV);
	assert_int_equal(c.audit_log_max, 16u << 20);
	assert_int_equal(c.audit_log_keep, 4);
	assert_true(c.require_uvm);
	assert_string_equal(c.host_root, "/");
	assert_string_equal(c.mps_pipe_dir, "/tmp/nvidia-mps");
	assert_string_equal(c.mps_log_dir, "/var/log/nvidia-mps");
	assert_string_equal(c.cuda_compat_dir, "/usr/local/cuda/compat");
	gs_config_clear(&c);
	/* the audit log's size cap: bytes, or K/M/G; how many rotated files */
	static const struct {
		const char *text;
		uint64_t max;
	} sizes[] = {{"{\"audit_log_max\": 0}", 0},          {"{\"audit_log_max\": 4096}", 4096},
		     {"{\"audit_log_max\": \"512\"}", 512},    {"{\"audit_log_max\": \"10M\"}", 10u << 20},
		     {"{\"audit_log_max\": \"2K\"}", 2048},    {"{\"audit_log_max\": \"1G\"}", 1u << 30}};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(gs_config_parse(sizes[i].text, strlen(sizes[i].text), "c.json", &c, &err), 0);
		assert_int_equal(c.audit_log_max, sizes[i].max);
		gs_config_clear(&c);
	}
	assert_int_equal(gs_config_parse("{\"audit_log_keep\": 12}", strlen("{\"audit_log_keep\": 12}"), "c.json", &c, &err), 0);
	assert_int_equal(c.audit_log_keep, 12);
	gs_config_clear(&c);
	/* a file the user named must exist */
	assert_int_equal(gs_config_load("/nonexistent/gpu-stage/config.json", true, &c, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/gpu-stage/config.json"));
	/* every key */
	static const char all[] =
		"{\n  \"store\": \"/srv/gs\",\n  \"driver\": \"570.86.15\",\n  \"runtime\": \"crun\",\n"
		"  \"capabilities\": \"compute,video\",\n  \"audit_log\": \"/tmp/a.log\",\n"
		"  \"dev_root\": \"/tmp/dev\",\n  \"proc_root\": \"/tmp/proc\",\n"
		"  \"cdi_vendor\": \"example.com\",\n  \"cdi_dir\": \"/var/run/cdi\",\n  \"requests\": \"env\"\n}\n";
	assert_int_equal(gs_config_parse(all, strlen(all), "c.json", &c, &err), 0);
	assert_string_equal(c.store, "/srv/gs");
	assert_string_equal(c.driver, "570.86.15");
	assert_string_equal(c.runtime, "crun");
	assert_int_equal(c.caps, GS_CAP_COMPUTE | GS_CAP_VIDEO);
	assert_string_equal(c.audit_log, "/tmp/a.log");
	assert_string_equal(c.dev_root, "/tmp/dev");
	assert_string_equal(c.proc_root, "/tmp/proc");
	assert_string_equal(c.cdi_vendor, "example.com");
	assert_string_equal(c.cdi_dir, "/var/run/cdi");
	gs_config_clear(&c);
	assert_int_equal(gs_config_parse("{}", 2, "c.json", &c, &err), 0);
	gs_config_clear(&c);
	/* errors name the file, the line and the key */
	config_rejected("{\n  \"store\": \"/s\",\n  \"stroe\": \"/x\"\n}", "config.json:3: \"stroe\": unknown key");
	config_rejected("{\n\n  \"store\": 7\n}", "config.json:3: \"store\": must be a string");
	config_rejected("{\"store\": \"relative/path\"}", "\"store\": \"relative/path\" is not an absolute path");
	config_rejected("{\"driver\": \"latest\"}", "not a driver version");
	config_rejected("{\"capabilities\": \"compute,gpu\"}", "unknown capability 'gpu'");
	config_rejected("{\"capabilities\": \"\"}", "names no capability");
	config_rejected("{\"requests\": \"image\"}", "must be \"env\" or \"orchestrator\"");
	assert_int_equal(gs_config_parse("{\"requests\": \"orchestrator\"}", 28, "o.json", &c, &err), 0);
	assert_int_equal(c.requests, GS_REQUESTS_ORCHESTRATOR);
	gs_config_clear(&c);
	static const char ipc[] = "{\"require_uvm\": false, \"host_root\": \"/tmp/h\", "
				  "\"mps_pipe_dir\": \"/run/mps\", \"mps_log_dir\": \"/run/mps-log\", "
				  "\"cuda_compat_dir\": \"/opt/cuda/compat\"}";
	assert_int_equal(gs_config_parse(ipc, strlen(ipc), "i.json", &c, &err), 0);
	assert_false(c.require_uvm);
	assert_string_equal(c.host_root, "/tmp/h");
	assert_string_equal(c.mps_pipe_dir, "/run/mps");
	assert_string_equal(c.mps_log_dir, "/run/mps-log");
	assert_string_equal(c.cuda_compat_dir, "/opt/cuda/compat");
	gs_config_clear(&c);
	config_rejected("{\"require_uvm\": \"no\"}", "\"require_uvm\": must be true or false");
	config_rejected("{\"require_uvm\": 0}", "must be true or false");
	config_rejected("{\"mps_pipe_dir\": \"tmp/mps\"}", "not an absolute path");
	config_rejected("{\"cuda_compat_dir\": \"usr/local/cuda/compat\"}", "not an absolute path");
	config_rejected("{\"cuda_compat_dir\": true}", "must be a string");
	config_rejected("{\"cdi_vendor\": \"nvidia.com/gpu\"}", "not a CDI vendor name");
	config_rejected("{\"runtime\": \"\"}", "non-empty");
	config_rejected("{\"store\": \"/a\", \"store\": \"/b\"}", "duplicate");
	config_rejected("{\"store\": \"/a\\u0000b\"}", "is not allowed");
	config_rejected("{\"store\": \"/a\\u0001b\"}", "NUL or control");
	config_rejected("[1, 2]", "must hold a JSON object");
	config_rejected("{\"audit_log_max\": \"10X\"}", "\"audit_log_max\": must be a number of bytes");
	config_rejected("{\"audit_log_max\": \"M\"}", "\"audit_log_max\": must be a number of bytes");
	config_rejected("{\"audit_log_max\": \"10MB\"}", "\"audit_log_max\": must be a number of bytes");
	config_rejected("{\"audit_log_max\": \"99999999999999999999\"}", "at most 1T");
	config_rejected("{\"audit_log_max\": \"2000G\"}", "at most 1T");
	config_rejected("{\"audit_log_max\": -1}", "must be 0 .. 1T");
	config_rejected("{\"audit_log_keep\": 0}", "\"audit_log_keep\": must be a number 1 .. 1000");
	config_rejected("{\"audit_log_keep\": \"3\"}", "must be a number 1 .. 1000");
	config_rejected("{\"a\\u001bb\": 1}", "a key holds a control character");
	config_rejected("{\n\"store\": \"/a\",\n", "config.json:3:");
}

/* Archive entry names: "VER/" and a valid store path, nothing else. */
/* The one path-component rule (index names, overlay destinations, device
 * names): never empty, ".", "..", a slash or longer than 255 bytes. */
static void test_name_rule(void **state)
{
	(void)state;
	char long_name[257];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[256] = '\0';
	const char *bad[] = {"", ".", "..", "a/b", "/", "../x", long_name, NULL};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (gs_name_ok(bad[i]))
			fail_msg("gs_name_ok(\"%.40s\") accepted", bad[i] ? bad[i] : "(null)");
	long_name[255] = '\0';
	const char *good[] = {"libcuda.so.1", "...", ".hidden", "a..b", "nvidia-smi", long_name};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!gs_name_ok(good[i]))
			fail_msg("gs_name_ok(\"%.40s\") refused", good[i]);
}

static void test_archive_entry_path(void **state)
{
	(void)state;
	static const struct {
		const char *name, *rel, *why; /* rel NULL: refused, with WHY in the reason */
	} cases[] = {
		{VER "/lib/compute/libcuda.so.1", "lib/compute/libcuda.so.1", NULL},
		{VER "/manifest.json", "manifest.json", NULL},
		{"../x", NULL, "outside the archive's version directory"},
		{"/etc/passwd", NULL, "absolute path"},
		{"/" VER "/lib/x", NULL, "absolute path"},
		{VER "/../x", NULL, "'..'"},
		{VER "/lib/../../x", NULL, "'..'"},
		{VER "/./lib/x", NULL, "'.'"},
		{VER "//lib/x", NULL, "absolute path"}, /* "/lib/x" under VER/ */
		{VER "/lib/", NULL, "trailing '/'"},
		{VER "/", NULL, "empty path"},
		{VER, NULL, "outside the archive's version directory"},
		{"./" VER "/lib/x", NULL, "outside the archive's version directory"},
		{VER "0/lib/x", NULL, "outside the archive's version directory"},
		{"550.54.14/lib/x", NULL, "outside the archive's version directory"},
		{VER "/lib/a\nb", NULL, "control character"},
		{"", NULL, "entry without a name"},
		{NULL, NULL, "entry without a name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		const char *rel = gs_archive_entry_path(VER, cases[i].name, &why);
		if (cases[i].rel) {
			assert_non_null(rel);
			assert_string_equal(rel, cases[i].rel);
		} else {
			assert_null(rel);
			assert_non_null(why);
			if (!strstr(why, cases[i].why))
				fail_msg("%s: reason \"%s\", expected \"%s\"", cases[i].name, why,
					 cases[i].why);
		}
	}
	/* a name longer than GS_PATH_MAX under VER/ */
	char big[GS_PATH_MAX + 64];
	int n = snprintf(big, sizeof(big), "%s/", VER);
	memset(big + n, 'a', sizeof(big) - (size_t)n - 1);
	big[sizeof(big) - 1] = '\0';
	const char *why = NULL;
	assert_null(gs_archive_entry_path(VER, big, &why));
	assert_non_null(why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_stage_creates_readonly_tree),
		T(test_restage_unchanged),
		T(test_restage_changed_source),
		T(test_restage_repairs),
		T(test_source_changed_since_discovery),
		T(test_source_missing_rolls_back),
		T(test_source_symlink_outside_root),
		T(test_bad_plans_refused),
		T(test_stale_tmp_removed),
		T(test_not_a_directory),
		T(test_large_and_empty_files),
		T(test_verify_detects_tampering),
		T(test_corrupt_manifests),
		T(test_manifest_file_problems),
		T(test_remove),
		T(test_list_sorted),
		T(test_index),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_archive_entry_path), cmocka_unit_test(test_name_rule),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
