/* SPDX-License-Identifier: Apache-2.0 */
/* Discovery unit tests on a small tree of real shared objects built with the
 * compiler in a temporary root (group setup), cached by the real ldconfig:
 * exact version matching, decoys, alternatives chains resolved inside the
 * root, capability filtering, i386, version detection. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <gelf.h>

#include "../stage/dpkg.h"
#include "../stage/nvinst.h"
#include "../stage/rootfs.h"
#include "gs/cleanup.h"
#include "gs/elfinfo.h"
#include "gs/stage.h"

static char root[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	if (r != 0)
		fprintf(stderr, "command failed (%d): %s\n", r, cmd);
	return r;
}

/* A Debian-like tree: short-SONAME libraries only in nvidia/current, an
 * absolute alternatives chain, an internal library in the multiarch dir,
 * a decoy of another version, an i386 libcuda, a link escaping the root. */
static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/gs-disc-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	const char *ml = "usr/lib/x86_64-linux-gnu", *cur = "usr/lib/x86_64-linux-gnu/nvidia/current";
	int r = sh("set -e; cd %s; mkdir -p etc/alternatives %s usr/lib/i386-linux-gnu/nvidia/current "
		   "usr/bin proc/driver/nvidia lib/firmware/nvidia/535.1.2; "
		   "printf 'const char v[]=\"535.1.2\"; int cuDriverGetVersion(int *x){*x=12020;return 0;}\\n' > s.c; "
		   "printf 'const char v[]=\"550.9.9\"; int f(void){return 0;}\\n' > d.c; "
		   "gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o %s/libcuda.so.535.1.2 s.c -lm; "
		   "gcc -shared -fPIC -Wl,-soname,libnvidia-ml.so.1 -o %s/libnvidia-ml.so.535.1.2 s.c; "
		   "gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o %s/libcuda.so.550.9.9 d.c; "
		   "gcc -shared -fPIC -Wl,-soname,libnvidia-glcore.so.535.1.2 -o %s/libnvidia-glcore.so.535.1.2 s.c; "
		   "gcc -m32 -shared -fPIC -Wl,-soname,libcuda.so.1 -o usr/lib/i386-linux-gnu/nvidia/current/libcuda.so.535.1.2 s.c; "
		   "ln -s libcuda.so.535.1.2 %s/libcuda.so.1; ln -s libnvidia-ml.so.535.1.2 %s/libnvidia-ml.so.1; "
		   "ln -s libcuda.so.535.1.2 usr/lib/i386-linux-gnu/nvidia/current/libcuda.so.1; "
		   "ln -s /etc/alternatives/nvidia--libcuda.so.1 %s/libcuda.so.1; "
		   "ln -s /%s/libcuda.so.1 etc/alternatives/nvidia--libcuda.so.1; "
		   "ln -s /etc/alternatives/nvidia--libnvidia-ml.so.1 %s/libnvidia-ml.so.1; "
		   "ln -s /%s/libnvidia-ml.so.1 etc/alternatives/nvidia--libnvidia-ml.so.1; "
		   "ln -s nvidia/current/libcuda.so.1 usr/lib/i386-linux-gnu/libcuda.so.1; "
		   "ln -s /../../../../etc/passwd %s/libnvidia-cfg.so.1; "
		   "printf '#!/bin/sh\\n' > usr/bin/nvidia-smi; "
		   "printf '/%s\\n/usr/lib/i386-linux-gnu\\n' > etc/ld.so.conf; ldconfig -r . -X; rm s.c d.c",
		   root, cur, cur, cur, cur, ml, cur, cur, ml, cur, ml, cur, ml, ml);
	return r == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return sh("rm -rf %s", root);
}

static const struct gs_file *file_by_path(const struct gs_manifest *p, const char *path)
{
	for (size_t i = 0; i < p->n_files; i++)
		if (!strcmp(p->files[i].path, path))
			return &p->files[i];
	return NULL;
}

static const struct gs_link *link_by_path(const struct gs_manifest *p, const char *path)
{
	for (size_t i = 0; i < p->n_links; i++)
		if (!strcmp(p->links[i].path, path))
			return &p->links[i];
	return NULL;
}

static struct gs_manifest *discover(const char *ver, unsigned int caps, int expect)
{
	struct gs_discover_opts o = {.root = root, .driver = ver, .caps = caps};
	struct gs_manifest *p = NULL;
	struct gs_err err = GS_ERR_INIT;
	int r = gs_discover(&o, &p, &err);
	if ((r < 0) != (expect < 0))
		fail_msg("gs_discover(%s) = %d (%s)", ver, r, err.msg);
	if (r < 0)
		assert_int_equal(r, expect);
	return p;
}

static void test_exact_set(void **state)
{
	(void)state;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = discover("535.1.2", GS_CAP_ALL, 0);
	const struct gs_file *cuda = file_by_path(p, "lib/compute/libcuda.so.535.1.2");
	assert_non_null(cuda);
	assert_string_equal(cuda->source, "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.535.1.2");
	assert_string_equal(cuda->soname, "libcuda.so.1");
	assert_int_equal(cuda->kind, GS_KIND_LIB);
	assert_int_equal(cuda->mode, 0444);
	assert_non_null(file_by_path(p, "lib/utility/libnvidia-ml.so.535.1.2"));
	assert_non_null(file_by_path(p, "lib/graphics/libnvidia-glcore.so.535.1.2"));
	const struct gs_file *c32 = file_by_path(p, "lib32/compute/libcuda.so.535.1.2");
	assert_non_null(c32);
	assert_int_equal(c32->kind, GS_KIND_LIB32);
	assert_true(c32->caps & GS_CAP_COMPAT32);
	const struct gs_link *l = link_by_path(p, "lib/compute/libcuda.so.1");
	assert_non_null(l);
	assert_string_equal(l->target, "libcuda.so.535.1.2");
	assert_non_null(link_by_path(p, "lib/compute/libcuda.so"));
	assert_null(link_by_path(p, "lib/graphics/libnvidia-glcore.so.535.1.2"));
	for (size_t i = 0; i < p->n_files; i++) {
		if (strstr(p->files[i].path, "550") || strstr(p->files[i].source, "550"))
			fail_msg("decoy staged: %s", p->files[i].source);
		if (strstr(p->files[i].source, "passwd"))
			fail_msg("escaping link followed: %s", p->files[i].source);
	}
	/* nvidia-smi here is a shell script without the version: not staged, said so */
	assert_null(file_by_path(p, "bin/utility/nvidia-smi"));
	bool warned = false;
	for (size_t i = 0; i < p->n_warnings; i++)
		warned |= strstr(p->warnings[i], "nvidia-smi") != NULL;
	assert_true(warned);
}

static void test_caps_filter(void **state)
{
	(void)state;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = discover("535.1.2", GS_CAP_UTILITY, 0);
	assert_non_null(file_by_path(p, "lib/utility/libnvidia-ml.so.535.1.2"));
	assert_null(file_by_path(p, "lib/compute/libcuda.so.535.1.2"));
	assert_null(file_by_path(p, "lib32/compute/libcuda.so.535.1.2"));
	gs_manifest_free(discover("535.1.2", GS_CAP_COMPUTE, 0));
	_cleanup_(gs_manifest_freep) struct gs_manifest *q = discover("535.1.2", GS_CAP_COMPUTE | GS_CAP_UTILITY, 0);
	assert_null(file_by_path(q, "lib32/compute/libcuda.so.535.1.2"));
}

static void test_missing_version(void **state)
{
	(void)state;
	struct gs_discover_opts o = {.root = root, .driver = "550.9.9", .caps = GS_CAP_ALL};
	struct gs_manifest *p = NULL;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_discover(&o, &p, &err), -ENOENT);
	assert_null(p);
	assert_non_null(strstr(err.msg, "libnvidia-ml.so.550.9.9"));
	assert_non_null(strstr(err.msg, "535.1.2"));
	o.driver = "999.1";
	assert_int_equal(gs_discover(&o, &p, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "versions present"));
	o.driver = "../etc";
	assert_int_equal(gs_discover(&o, &p, &err), -EINVAL);
}

static void test_detect(void **state)
{
	(void)state;
	char *v = NULL;
	struct gs_err err = GS_ERR_INIT;
	/* from the libraries: libcuda.so.1 and libnvidia-ml.so.1 agree on 535.1.2 */
	assert_int_equal(gs_driver_detect(root, GS_DETECT_ANY, &v, &err), 0);
	assert_string_equal(v, "535.1.2");
	free(v);
	/* the loaded module wins */
	assert_int_equal(sh("printf 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.9.9  Tue Jan 1 2025\\n' > %s/proc/driver/nvidia/version", root), 0);
	assert_int_equal(gs_driver_detect(root, GS_DETECT_ANY, &v, &err), 0);
	assert_string_equal(v, "550.9.9");
	free(v);
	/* the same host: the installed libraries (after an upgrade, before reboot), the loaded module */
	assert_int_equal(gs_driver_detect(root, GS_DETECT_INSTALLED, &v, &err), 0);
	assert_string_equal(v, "535.1.2");
	free(v);
	assert_int_equal(gs_driver_detect(root, GS_DETECT_LOADED, &v, &err), 0);
	assert_string_equal(v, "550.9.9");
	free(v);
	/* NVIDIA's open kernel modules word it differently */
	assert_int_equal(sh("printf 'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.8.7  Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Jan 1 2025\\nGCC version:  gcc version 12.2.0\\n' > %s/proc/driver/nvidia/version", root), 0);
	assert_int_equal(gs_driver_detect(root, GS_DETECT_ANY, &v, &err), 0);
	assert_string_equal(v, "550.8.7");
	free(v);
	/* a version only on a later line is not the module's: back to the libraries */
	assert_int_equal(sh("printf 'NVRM version: NVIDIA UNIX Kernel Module for x86_64\\nGCC version:  12.2.0\\n' > %s/proc/driver/nvidia/version", root), 0);
	assert_int_equal(gs_driver_detect(root, GS_DETECT_ANY, &v, &err), 0);
	assert_string_equal(v, "535.1.2");
	free(v);
	/* ... and no loaded module at all: GS_DETECT_LOADED says so with no version, no error */
	v = (char *)"unset";
	assert_int_equal(gs_driver_detect(root, GS_DETECT_LOADED, &v, &err), 0);
	assert_null(v);
	assert_int_equal(sh("rm %s/proc/driver/nvidia/version", root), 0);
	assert_int_equal(gs_driver_detect(root, GS_DETECT_LOADED, &v, &err), 0);
	assert_null(v);
}

/* The one reader of the kernel module's version, both module flavours. */
static void test_kmod_version(void **state)
{
	(void)state;
	char v[GS_VERSION_MAX + 1];
	assert_true(gs_kmod_version_parse(
		"NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.261.03  Wed Jul 30 00:00:00 UTC 2025\n"
		"GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n", true, v));
	assert_string_equal(v, "535.261.03");
	assert_true(gs_kmod_version_parse(
		"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Jan 23 00:00:00 UTC 2025\n",
		true, v));
	assert_string_equal(v, "570.86.15");
	/* the version must be on the module's line, a whole token */
	assert_false(gs_kmod_version_parse("NVRM version: NVIDIA UNIX Kernel Module\n535.261.03\n", true, v));
	assert_false(gs_kmod_version_parse("GCC version: 12.2.0\n", true, v));
	assert_false(gs_kmod_version_parse("NVIDIA Kernel Module 535.261.03x\n", true, v));
	assert_false(gs_kmod_version_parse(NULL, true, v));
	assert_true(gs_kmod_version_parse("  550.54.14 \n", false, v));
	assert_string_equal(v, "550.54.14");
	assert_false(gs_kmod_version_parse("550.54.14 extra\n", false, v));
	assert_false(gs_kmod_version_parse("1.2345678901234567890123456789012\n", false, v));
}

static void test_versions(void **state)
{
	(void)state;
	assert_string_equal(gs_name_version("libcuda.so.535.261.03"), "535.261.03");
	assert_null(gs_name_version("libcuda.so.1"));
	assert_null(gs_name_version("libcuda.so"));
	assert_string_equal(gs_name_version("libnvidia-egl-wayland.so.1.1.11"), "1.1.11");
	assert_true(gs_version_valid("570.86.15"));
	assert_false(gs_version_valid("570"));
	assert_false(gs_version_valid("570..1"));
	assert_false(gs_version_valid("570.1/.."));
	assert_false(gs_version_valid(".570.1"));
	assert_false(gs_version_valid("570.1."));
	assert_false(gs_version_valid("570.86.15a"));
	assert_false(gs_version_valid("1.234567890123456789012345678901"));  /* 32 bytes */
	assert_true(gs_version_valid("1.23456789012345678901234567890"));   /* 31 bytes */
	unsigned int caps = 0;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_caps_parse("utility,compute", &caps, &err), 0);
	assert_int_equal(caps, GS_CAP_UTILITY | GS_CAP_COMPUTE);
	assert_int_equal(gs_caps_parse("all", &caps, &err), 0);
	assert_int_equal(caps, GS_CAP_ALL);
	assert_int_equal(gs_caps_parse("compute,bogus", &caps, &err), -EINVAL);
	char buf[128];
	assert_string_equal(gs_caps_format(GS_CAP_VIDEO | GS_CAP_UTILITY, buf, sizeof(buf)), "utility,video");
}

static void test_contains_across_chunks(void **state)
{
	(void)state;
	char path[] = "/tmp/gs-contains-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	static char block[1 << 20];
	memset(block, 'x', sizeof(block));
	memcpy(block + sizeof(block) - 4, "535.", 4); /* split across the chunk boundary */
	assert_int_equal(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
	assert_int_equal(write(fd, "261.03", 6), 6);
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_fd_contains(fd, "535.261.03", &err), 1);
	assert_int_equal(gs_fd_contains(fd, "535.261.04", &err), 0);
	close(fd);
}

/* The dpkg database: only installed driver packages count, the upstream
 * version drops epoch and revision, Multi-Arch lists are PKG:ARCH.list,
 * and merged-/usr paths match either spelling. */
static void test_dpkg(void **state)
{
	(void)state;
	char d[64];
	snprintf(d, sizeof(d), "/tmp/gs-dpkg-XXXXXX");
	assert_non_null(mkdtemp(d));
	assert_int_equal(
		sh("set -e; cd %s; mkdir -p var/lib/dpkg/info; "
		   "printf 'Package: nvidia-cuda-mps\nStatus: install ok installed\nArchitecture: amd64\n"
		   "Version: 1:535.261.03-1~deb12u1\n\nPackage: nvidia-persistenced\nStatus: deinstall ok config-files\n"
		   "Architecture: amd64\nVersion: 535.171.04-1\n\nPackage: libcuda1\nStatus: install ok installed\n"
		   "Multi-Arch: same\nArchitecture: i386\nVersion: 550.163.01-2\n\nPackage: zlib1g\n"
		   "Status: install ok installed\nArchitecture: amd64\nVersion: 1.2.13\n' > var/lib/dpkg/status; "
		   "printf '/usr\n/usr/sbin\n/usr/sbin/nvidia-cuda-mps-server\n' > var/lib/dpkg/info/nvidia-cuda-mps.list; "
		   "printf '/usr/bin/nvidia-persistenced\n' > var/lib/dpkg/info/nvidia-persistenced.list; "
		   "printf '/usr/lib/i386-linux-gnu/libcuda.so.550.163.01\n' > 'var/lib/dpkg/info/libcuda1:i386.list'; "
		   "printf '/lib/x86_64-linux-gnu/libz.so.1\n' > var/lib/dpkg/info/zlib1g.list",
		   d),
		0);
	struct gs_root r;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_root_open(d, &r, &err), 0);
	struct gs_dpkg db;
	assert_int_equal(gs_dpkg_load(&r, &db, &err), 0);
	assert_true(db.present);
	const struct gs_dpkg_pkg *p = gs_dpkg_owner(&db, "/usr/sbin/nvidia-cuda-mps-server", NULL);
	assert_non_null(p);
	assert_string_equal(p->name, "nvidia-cuda-mps");
	assert_string_equal(p->upstream, "535.261.03");
	/* merged /usr: found as /sbin/... too */
	assert_ptr_equal(gs_dpkg_owner(&db, "/sbin/nvidia-cuda-mps-server", NULL), p);
	/* removed package (config files only) owns nothing */
	assert_null(gs_dpkg_owner(&db, "/usr/bin/nvidia-persistenced", NULL));
	/* Multi-Arch: same list name */
	p = gs_dpkg_owner(&db, "/usr/lib/i386-linux-gnu/libcuda.so.550.163.01", NULL);
	assert_non_null(p);
	assert_string_equal(p->upstream, "550.163.01");
	/* not a driver package: not loaded */
	assert_null(gs_dpkg_owner(&db, "/usr/lib/x86_64-linux-gnu/libz.so.1", NULL));
	/* the second path is tried too */
	assert_non_null(gs_dpkg_owner(&db, "/nowhere", "/usr/sbin/nvidia-cuda-mps-server"));
	gs_dpkg_clear(&db);
	gs_root_close(&r);
	/* no database: empty, not an error */
	char empty[80];
	snprintf(empty, sizeof(empty), "%s/var", d);
	assert_int_equal(gs_root_open(empty, &r, &err), 0);
	assert_int_equal(gs_dpkg_load(&r, &db, &err), 0);
	assert_false(db.present);
	assert_int_equal(db.n_pkgs, 0);
	gs_dpkg_clear(&db);
	gs_root_close(&r);
	/* a database that is there but cannot be read whole is an error naming
	 * the file, not "owns nothing": a file list that is a directory, or
	 * the status file larger than the bound */
	assert_int_equal(sh("cd %s/var/lib/dpkg/info && rm nvidia-cuda-mps.list && mkdir nvidia-cuda-mps.list", d), 0);
	assert_int_equal(gs_root_open(d, &r, &err), 0);
	assert_true(gs_dpkg_load(&r, &db, &err) < 0);
	if (!strstr(err.msg, "nvidia-cuda-mps.list") || !strstr(err.msg, "dpkg database"))
		fail_msg("an unreadable file list: '%s'", err.msg);
	assert_false(db.present);
	gs_root_close(&r);
	gs_err_clear(&err);
	assert_int_equal(sh("cd %s/var/lib/dpkg && truncate -s 300M status", d), 0);
	assert_int_equal(gs_root_open(d, &r, &err), 0);
	assert_true(gs_dpkg_load(&r, &db, &err) < 0);
	if (!strstr(err.msg, "/var/lib/dpkg/status"))
		fail_msg("a status file past the bound: '%s'", err.msg);
	gs_root_close(&r);
	assert_int_equal(sh("rm -rf %s", d), 0);
}

/* nvidia-installer's record, parsed from text: the version from the
 * parentheses, INSTALLED_FILE entries with their CRC, the other entry types
 * skipped with their data lines. */
static void test_nvinst_parse(void **state)
{
	(void)state;
	char text[] = "1.0-53526103 (535.261.03)\n"
		      "NVIDIA Accelerated Graphics Driver for Linux-x86_64\n"
		      "100: /usr/lib/x86_64-linux-gnu/libGL.so.1\n1234567 0100644 0 0\n"
		      "2: /usr/lib/libEGL.so.1\nlibEGL.so.1.1.0\n0777 0 0\n"
		      "1: /usr/bin/nvidia-cuda-mps-server\n3057285343\n"
		      "0: /usr/lib/x86_64-linux-gnu/libcuda.so.1\nlibcuda.so.535.261.03\n"
		      "1: /usr/lib/x86_64-linux-gnu/libnvidia-api.so.1\n0\n";
	struct gs_nvinst rec;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_nvinst_parse(text, "log", &rec, &err), 0);
	assert_true(rec.present);
	assert_string_equal(rec.version, "535.261.03");
	assert_int_equal(rec.n_files, 2);
	const struct gs_nvinst_file *f = gs_nvinst_find(&rec, "/usr/bin/nvidia-cuda-mps-server", NULL);
	assert_non_null(f);
	assert_int_equal(f->crc, 3057285343u);
	/* merged /usr, and the second spelling */
	assert_ptr_equal(gs_nvinst_find(&rec, "/bin/nvidia-cuda-mps-server", NULL), f);
	assert_ptr_equal(gs_nvinst_find(&rec, "/nowhere", "/usr/bin/nvidia-cuda-mps-server"), f);
	/* links and backed-up files are not installed files */
	assert_null(gs_nvinst_find(&rec, "/usr/lib/x86_64-linux-gnu/libcuda.so.1", NULL));
	assert_null(gs_nvinst_find(&rec, "/usr/lib/x86_64-linux-gnu/libGL.so.1", NULL));
	gs_nvinst_clear(&rec);
	/* another version's record parses, as that version */
	char other[] = "1.0-55016301 (550.163.01)\nNVIDIA\n1: /usr/bin/nvidia-debugdump\n7\n";
	assert_int_equal(gs_nvinst_parse(other, "log", &rec, &err), 0);
	assert_string_equal(rec.version, "550.163.01");
	gs_nvinst_clear(&rec);
}

/* Every malformed record is refused whole, with the line and the reason. */
static void test_nvinst_hostile(void **state)
{
	(void)state;
	static const struct {
		const char *text, *why;
	} cases[] = {
		{"", "ends before the version line"},
		{"535.261.03\nx\n", "line 1: not an nvidia-installer version line"},
		{"1.0-1 (not.a.version)\nx\n", "line 1: not a driver version"},
		{"1.0-53526103 (535.261.03) trailing\nx\n", "line 1: not an nvidia-installer"},
		{"1.0-53526103 (535.261.03)\n", "ends before the description"},
		{"1.0-53526103 (535.261.03)\nd\n1: usr/bin/x\n1\n", "line 3: not an absolute path"},
		{"1.0-53526103 (535.261.03)\nd\n1: /usr/bin/../../etc/shadow\n1\n", "line 3: not an absolute path"},
		{"1.0-53526103 (535.261.03)\nd\n1: /usr/./bin/x\n1\n", "line 3: not an absolute path"},
		{"1.0-53526103 (535.261.03)\nd\n1: /..\n1\n", "line 3: not an absolute path"},
		{"1.0-53526103 (535.261.03)\nd\n1: /usr/bin/x\n", "line 4: the record ends"},
		{"1.0-53526103 (535.261.03)\nd\n1: /usr/bin/x\n99999999999\n", "line 4: not a CRC"},
		{"1.0-53526103 (535.261.03)\nd\n1: /usr/bin/x\n-1\n", "line 4: not a CRC"},
		{"1.0-53526103 (535.261.03)\nd\n7: /usr/bin/x\n1\n", "line 3: not an entry type"},
		{"1.0-53526103 (535.261.03)\nd\n/usr/bin/x\n", "line 3: not an entry"},
		{"1.0-53526103 (535.261.03)\nd\n2: /usr/bin/x\ntarget\n", "the record ends before the backed-up"},
		{"1.0-53526103 (535.261.03)\nd\n100: /usr/bin/x\nmode\n", "line 4: not \"CRC MODE"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_free_ char *t = strdup(cases[i].text);
		struct gs_nvinst rec;
		struct gs_err err = GS_ERR_INIT;
		assert_int_equal(gs_nvinst_parse(t, "log", &rec, &err), -EBADMSG);
		if (!strstr(err.msg, cases[i].why))
			fail_msg("case %zu: '%s' does not say '%s'", i, err.msg, cases[i].why);
		assert_false(rec.present);
		assert_int_equal(rec.n_files, 0);
		assert_null(rec.version);
	}
	/* a huge line: refused, never cut to a shorter path */
	size_t n = 1 << 20;
	_cleanup_free_ char *big = malloc(n + 64);
	assert_non_null(big);
	int h = snprintf(big, 64, "1.0-53526103 (535.261.03)\nd\n1: /");
	memset(big + h, 'a', n);
	strcpy(big + h + n, "\n1\n");
	struct gs_nvinst rec;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_nvinst_parse(big, "log", &rec, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "line 3: longer than"));
}

/* The record read inside a root: absent is no record; a link leaving the
 * root resolves inside it; more than the bound is an error; the CRC is
 * nvidia-installer's (CRC-32/MPEG-2: "123456789" -> 0x0376e6e7). */
static void test_nvinst_load(void **state)
{
	(void)state;
	char d[64];
	snprintf(d, sizeof(d), "/tmp/gs-nvinst-XXXXXX");
	assert_non_null(mkdtemp(d));
	struct gs_root r;
	struct gs_nvinst rec;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_root_open(d, &r, &err), 0);
	assert_int_equal(gs_nvinst_load(&r, &rec, &err), 0);
	assert_false(rec.present);
	/* a link to the host's file: resolved inside the root, where it is absent */
	assert_int_equal(sh("set -e; mkdir -p %s/var/lib/nvidia %s/etc; printf '1.0-1 (1.2)\\nd\\n' > /tmp/gs-nvinst-host.$$; "
			    "ln -s /tmp/gs-nvinst-host.$$ %s/var/lib/nvidia/log", d, d, d), 0);
	assert_int_equal(gs_nvinst_load(&r, &rec, &err), 0);
	assert_false(rec.present);
	sh("rm -f /tmp/gs-nvinst-host.*");
	/* over the bound */
	assert_int_equal(sh("set -e; rm %s/var/lib/nvidia/log; { printf '1.0-53526103 (535.261.03)\\nd\\n'; "
			    "head -c 5000000 /dev/zero | tr '\\0' '\\n'; } > %s/var/lib/nvidia/log", d, d), 0);
	assert_true(gs_nvinst_load(&r, &rec, &err) < 0);
	assert_non_null(strstr(err.msg, "/var/lib/nvidia/log"));
	assert_false(rec.present);
	/* a good one, and the CRC of a known text */
	assert_int_equal(sh("set -e; printf '1.0-53526103 (535.261.03)\\nd\\n1: /usr/bin/x\\n58124007\\n' > %s/var/lib/nvidia/log; "
			    "printf 123456789 > %s/etc/check; : > %s/etc/empty", d, d, d), 0);
	assert_int_equal(gs_nvinst_load(&r, &rec, &err), 0);
	assert_true(rec.present);
	assert_int_equal(rec.n_files, 1);
	assert_int_equal(rec.files[0].crc, 0x0376e6e7u);
	uint32_t crc = 1;
	_cleanup_close_ int fd = gs_root_open_file(&r, "/etc/check", O_RDONLY, NULL, &err);
	assert_true(fd >= 0);
	assert_int_equal(gs_nvinst_crc_fd(fd, &crc, &err), 0);
	assert_int_equal(crc, 0x0376e6e7u);
	_cleanup_close_ int efd = gs_root_open_file(&r, "/etc/empty", O_RDONLY, NULL, &err);
	assert_true(efd >= 0);
	assert_int_equal(gs_nvinst_crc_fd(efd, &crc, &err), 0);
	assert_int_equal(crc, 0);
	gs_nvinst_clear(&rec);
	gs_root_close(&r);
	assert_int_equal(sh("rm -rf %s", d), 0);
}

/* ---- symbol versions (common/elfinfo.c) ---- */

static char vdir[64];

/* A fake libc.so.6 defining GLIBC_2.2.5 ... GLIBC_2.17 (old/) and one
 * that also defines GLIBC_2.34 (new/), and libneed.so, linked against new/,
 * needing GLIBC_2.34 and GLIBC_2.2.5 of libc.so.6. */
static int vsetup(void **state)
{
	(void)state;
	snprintf(vdir, sizeof(vdir), "/tmp/gs-elfv-XXXXXX");
	if (!mkdtemp(vdir))
		return -1;
	return sh("set -e; cd %s; mkdir old new; "
		  "printf 'int fa(void){return 1;} int fb(void){return 2;} int fc(void){return 3;}\\n' > c.c; "
		  "printf 'GLIBC_2.2.5 { global: fa; local: *; };\\nGLIBC_2.17 { global: fb; } GLIBC_2.2.5;\\nGLIBC_PRIVATE { global: fc; } GLIBC_2.17;\\n' > old.map; "
		  "printf 'GLIBC_2.2.5 { global: fa; local: *; };\\nGLIBC_2.17 { global: fb; } GLIBC_2.2.5;\\nGLIBC_2.34 { global: fc; } GLIBC_2.17;\\n' > new.map; "
		  "gcc -shared -fPIC -nostdlib -Wl,-soname,libc.so.6 -Wl,--version-script=old.map -o old/libc.so.6 c.c; "
		  "gcc -shared -fPIC -nostdlib -Wl,-soname,libc.so.6 -Wl,--version-script=new.map -o new/libc.so.6 c.c; "
		  "printf 'int fa(void); int fc(void); int g(void){return fa()+fc();}\\n' > n.c; "
		  "gcc -shared -fPIC -nostdlib -Wl,-soname,libneed.so.1 -o libneed.so n.c new/libc.so.6",
		  vdir);
}

static int vteardown(void **state)
{
	(void)state;
	return sh("rm -rf %s", vdir);
}

static int inspect_path(const char *path, struct gs_elf_info *info, struct gs_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	return gs_elf_inspect(fd, path, info, err);
}

static void test_glibc_names(void **state)
{
	(void)state;
	uint32_t v = 0;
	char buf[16];
	assert_true(gs_glibc_parse("GLIBC_2.34", &v));
	assert_int_equal(v, GS_GLIBC(2, 34));
	assert_string_equal(gs_glibc_format(v, buf, sizeof(buf)), "2.34");
	assert_true(gs_glibc_parse("GLIBC_2.2.5", &v));
	assert_int_equal(v, GS_GLIBC(2, 2) | 5);
	assert_string_equal(gs_glibc_format(v, buf, sizeof(buf)), "2.2.5");
	assert_true(GS_GLIBC(2, 17) > (GS_GLIBC(2, 2) | 5) && GS_GLIBC(2, 34) > GS_GLIBC(2, 17));
	static const char *const bad[] = {"GLIBC_PRIVATE", "GLIBC_ABI_DT_RELR", "GLIBC_2", "GLIBC_2.", "GLIBC_.2",
					  "GLIBC_2.256", "GLIBC_2.3.4.5", "GLIBC_2.3x", "GLIBCXX_3.4", "GLIBC_2.0034",
					  "glibc_2.3", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (gs_glibc_parse(bad[i], &v))
			fail_msg("%s taken for a GLIBC version", bad[i]);
}

static void test_elf_versions(void **state)
{
	(void)state;
	char path[128];
	struct gs_elf_info info;
	struct gs_err err = GS_ERR_INIT;
	snprintf(path, sizeof(path), "%s/libneed.so", vdir);
	assert_int_equal(inspect_path(path, &info, &err), 1);
	assert_int_equal(info.glibc_need, GS_GLIBC(2, 34));
	assert_int_equal(info.glibc_def, 0);
	gs_elf_info_clear(&info);
	snprintf(path, sizeof(path), "%s/old/libc.so.6", vdir);
	assert_int_equal(inspect_path(path, &info, &err), 1);
	assert_int_equal(info.glibc_def, GS_GLIBC(2, 17)); /* GLIBC_PRIVATE is no version */
	assert_int_equal(info.glibc_need, 0);
	gs_elf_info_clear(&info);
	/* the system's: Debian 12 has glibc 2.36 */
	if (inspect_path("/lib/x86_64-linux-gnu/libc.so.6", &info, &err) == 1) {
		assert_true(info.glibc_def >= GS_GLIBC(2, 36));
		gs_elf_info_clear(&info);
	}
	if (inspect_path("/lib/x86_64-linux-gnu/libm.so.6", &info, &err) == 1) {
		assert_true(info.glibc_need >= (GS_GLIBC(2, 2) | 5));
		gs_elf_info_clear(&info);
	}
}

/* The file offset of the first section of TYPE in PATH, and of its header. */
static void find_section(const char *path, uint32_t type, uint64_t *data, uint64_t *shdr)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0 && elf_version(EV_CURRENT) != EV_NONE);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	GElf_Ehdr eh;
	assert_non_null(e);
	assert_non_null(gelf_getehdr(e, &eh));
	for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
		GElf_Shdr sh;
		assert_non_null(gelf_getshdr(scn, &sh));
		if (sh.sh_type == type) {
			*data = sh.sh_offset;
			*shdr = eh.e_shoff + elf_ndxscn(scn) * eh.e_shentsize;
			elf_end(e);
			return;
		}
	}
	fail_msg("%s: no section of type %#x", path, type);
}

/* A copy of SRC with the 4 (or 8: WIDE) bytes at OFF set to V, inspected. */
static int patched(const char *src, uint64_t off, uint64_t v, bool wide, struct gs_elf_info *info,
		   struct gs_err *err)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/lying.so", vdir);
	assert_int_equal(sh("cp %s %s", src, path), 0);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	uint32_t v32 = (uint32_t)v;
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, wide ? (void *)&v : (void *)&v32, wide ? 8 : 4, (off_t)off), wide ? 8 : 4);
	return inspect_path(path, info, err);
}

/* The same, which must be refused (EBADMSG) with WANT in the message. */
static void lie(const char *src, uint64_t off, uint64_t v, bool wide, const char *want)
{
	struct gs_elf_info info;
	struct gs_err err = GS_ERR_INIT;
	int r = patched(src, off, v, wide, &info, &err);
	if (r == 1)
		gs_elf_info_clear(&info);
	if (r != -EBADMSG || !strstr(err.msg, want))
		fail_msg("lying file (offset %#llx = %#llx): %d %s, want EBADMSG '%s'", (unsigned long long)off,
			 (unsigned long long)v, r, err.msg, want);
}

static void test_elf_versions_lying(void **state)
{
	(void)state;
	char need[128], def[128];
	uint64_t data, shdr;
	snprintf(need, sizeof(need), "%s/libneed.so", vdir);
	snprintf(def, sizeof(def), "%s/old/libc.so.6", vdir);
	find_section(need, SHT_GNU_verneed, &data, &shdr);
	lie(need, data + offsetof(Elf64_Verneed, vn_aux), 0x7ffffff0, false, "Vernaux entry at 0x7ffffff0");
	/* the count (sh_info) lying high: the chain ends at vn_next 0 */
	struct gs_elf_info info;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(patched(need, shdr + offsetof(Elf64_Shdr, sh_info), 0xffffffff, false, &info, &err), 1);
	assert_int_equal(info.glibc_need, GS_GLIBC(2, 34));
	gs_elf_info_clear(&info);
	/* the count lying low (0): nothing read, nothing needed */
	assert_int_equal(patched(need, shdr + offsetof(Elf64_Shdr, sh_info), 0, false, &info, &err), 1);
	assert_int_equal(info.glibc_need, 0);
	gs_elf_info_clear(&info);
	lie(need, data + offsetof(Elf64_Verneed, vn_file), 0xfffffff, false, "outside its string table");
	lie(need, shdr + offsetof(Elf64_Shdr, sh_size), 24, true, "symbol version section"); /* libelf refuses it */
	lie(need, shdr + offsetof(Elf64_Shdr, sh_offset), 0x7fffffffffff, true, "symbol version section");
	/* a count that lies high: a chain that ends (vn_next 0) still ends */
	find_section(def, SHT_GNU_verdef, &data, &shdr);
	/* the second definition (the first is the file's own name) */
	Elf64_Verdef vd1, vd2;
	_cleanup_close_ int fd = open(def, O_RDONLY | O_CLOEXEC);
	assert_int_equal(pread(fd, &vd1, sizeof(vd1), (off_t)data), sizeof(vd1));
	assert_int_equal(pread(fd, &vd2, sizeof(vd2), (off_t)(data + vd1.vd_next)), sizeof(vd2));
	lie(def, data + vd1.vd_next + offsetof(Elf64_Verdef, vd_aux), 0xfffffff0, false, "Verdaux entry");
	lie(def, data + vd1.vd_next + vd2.vd_aux + offsetof(Elf64_Verdaux, vda_name), 0xffffff, false,
	    "outside its string table");
	lie(def, data + vd1.vd_next + offsetof(Elf64_Verdef, vd_next), 0x100000, false,
	    "Verdef entry at 0x100");
}

/* A file that claims more than gs_elf_inspect reads or allocates (its
 * counts and sizes, GS_ELF_MAX_*): refused before libelf sees it, or
 * before the chunk is read, never a multi-GB allocation. */
static void test_elf_bounds(void **state)
{
	(void)state;
	char need[128];
	snprintf(need, sizeof(need), "%s/libneed.so", vdir);
	_cleanup_close_ int fd = open(need, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	assert_int_equal(pread(fd, &eh, sizeof(eh), 0), sizeof(eh));
	uint64_t shnum_at = offsetof(Elf64_Ehdr, e_shnum); /* with e_shstrndx after it */
	lie(need, shnum_at, (uint32_t)eh.e_shstrndx << 16 | (GS_ELF_MAX_SECTIONS + 1), false,
	    "section headers (more than 4096");
	lie(need, shnum_at, (uint32_t)eh.e_shstrndx << 16, false, "extended section");
	uint64_t phnum_at = offsetof(Elf64_Ehdr, e_phnum); /* with e_shentsize after it */
	lie(need, phnum_at, (uint32_t)eh.e_shentsize << 16 | PN_XNUM, false, "extended section or program header");
	uint64_t dyn = 0;
	for (unsigned int i = 0; i < eh.e_phnum && !dyn; i++) {
		Elf64_Phdr ph;
		assert_int_equal(pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * eh.e_phentsize)), sizeof(ph));
		if (ph.p_type == PT_DYNAMIC)
			dyn = eh.e_phoff + i * eh.e_phentsize;
	}
	assert_true(dyn != 0);
	lie(need, dyn + offsetof(Elf64_Phdr, p_filesz), 3ull << 30, true, "a dynamic segment of 3221225472 bytes");
	uint64_t data, shdr;
	find_section(need, SHT_GNU_verneed, &data, &shdr);
	lie(need, shdr + offsetof(Elf64_Shdr, sh_size), GS_ELF_MAX_VERSECT + 1, true,
	    "a symbol version section of");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions), cmocka_unit_test(test_kmod_version),     cmocka_unit_test(test_contains_across_chunks),
		cmocka_unit_test(test_exact_set),    cmocka_unit_test(test_caps_filter),
		cmocka_unit_test(test_missing_version), cmocka_unit_test(test_detect),
		cmocka_unit_test(test_dpkg),         cmocka_unit_test(test_nvinst_parse),
		cmocka_unit_test(test_nvinst_hostile), cmocka_unit_test(test_nvinst_load),
	};
	const struct CMUnitTest elf[] = {
		cmocka_unit_test(test_glibc_names),
		cmocka_unit_test(test_elf_versions),
		cmocka_unit_test(test_elf_versions_lying),
		cmocka_unit_test(test_elf_bounds),
	};
	int r = cmocka_run_group_tests(tests, setup, teardown);
	return r | cmocka_run_group_tests(elf, vsetup, vteardown);
}
