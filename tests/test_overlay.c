/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for overlay/: the NVIDIA_* request, requirement expressions,
 * GPU information files, GPU selection and plan building (pure code: no
 * privileges, no mounts); and, as root, races injected into ovl_plan_apply
 * (mknodat is wrapped: -Wl,--wrap=mknodat). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gs/hostdev.h"
#include "gs/inventory.h"
#include "gs/ldcache.h"
#include "gs/mountinfo.h"
#include "gs/overlay.h"

/* ---- NVIDIA_* parsing ------------------------------------------------------ */

static int parse(struct ovl_env *e, struct gs_err *err, const char *a, const char *b)
{
	char *env[3] = {(char *)"PATH=/usr/bin", (char *)a, (char *)b};
	size_t n = 1 + (a != NULL) + (b != NULL);
	return ovl_env_parse(env, n, e, err);
}

static void test_env_visible(void **state)
{
	(void)state;
	static const struct {
		const char *kv;
		int rc;
		enum ovl_visible vis;
		size_t ndev;
	} cases[] = {
		{NULL, 0, OVL_VISIBLE_UNSET, 0},
		{"NVIDIA_VISIBLE_DEVICES=void", 0, OVL_VISIBLE_VOID, 0},
		{"NVIDIA_VISIBLE_DEVICES=", 0, OVL_VISIBLE_VOID, 0},
		{"NVIDIA_VISIBLE_DEVICES=none", 0, OVL_VISIBLE_NONE, 0},
		{"NVIDIA_VISIBLE_DEVICES=all", 0, OVL_VISIBLE_ALL, 0},
		{"NVIDIA_VISIBLE_DEVICES=0,1", 0, OVL_VISIBLE_LIST, 2},
		{"NVIDIA_VISIBLE_DEVICES= 1 , GPU-0a1b2c3d-aaaa-bbbb-cccc-0123456789ab", 0,
		 OVL_VISIBLE_LIST, 2},
		{"NVIDIA_VISIBLE_DEVICES=foo", -EINVAL, OVL_VISIBLE_UNSET, 0},
		{"NVIDIA_VISIBLE_DEVICES=0,,1", -EINVAL, OVL_VISIBLE_UNSET, 0},
		{"NVIDIA_VISIBLE_DEVICES=MIG-1234", 0, OVL_VISIBLE_LIST, 1}, /* refused at selection */
		{"NVIDIA_VISIBLE_DEVICES=0:1:0, 1:2:3,0", 0, OVL_VISIBLE_LIST, 3},
		{"NVIDIA_VISIBLE_DEVICES=0:1", -EINVAL, OVL_VISIBLE_UNSET, 0},
		{"NVIDIA_VISIBLE_DEVICES=0:1:0:0", -EINVAL, OVL_VISIBLE_UNSET, 0},
		{"NVIDIA_VISIBLE_DEVICES=0::0", -EINVAL, OVL_VISIBLE_UNSET, 0},
		{"NVIDIA_VISIBLE_DEVICES=0:1:x", -EINVAL, OVL_VISIBLE_UNSET, 0},
		{"NVIDIA_VISIBLE_DEVICES=12345:1:0", -EINVAL, OVL_VISIBLE_UNSET, 0},
		{"NVIDIA_VISIBLE_DEVICES=MIG-xyz", -EINVAL, OVL_VISIBLE_UNSET, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ovl_env e;
		struct gs_err err = GS_ERR_INIT;
		int r = parse(&e, &err, cases[i].kv, NULL);
		assert_int_equal(r, cases[i].rc);
		if (r < 0) {
			assert_non_null(strstr(err.msg, "NVIDIA_VISIBLE_DEVICES"));
			continue;
		}
		assert_int_equal(e.visible, cases[i].vis);
		assert_int_equal(e.n_devices, cases[i].ndev);
		ovl_env_clear(&e);
	}
}

static void test_env_first_wins_and_caps(void **state)
{
	(void)state;
	struct ovl_env e;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(parse(&e, &err, "NVIDIA_VISIBLE_DEVICES=none", "NVIDIA_VISIBLE_DEVICES=all"), 0);
	assert_int_equal(e.visible, OVL_VISIBLE_NONE);
	assert_int_equal(e.caps, GS_CAP_UTILITY | GS_CAP_COMPUTE); /* the default */
	ovl_env_clear(&e);

	assert_int_equal(parse(&e, &err, "NVIDIA_DRIVER_CAPABILITIES=utility", NULL), 0);
	assert_int_equal(e.caps, GS_CAP_UTILITY);
	ovl_env_clear(&e);
	assert_int_equal(parse(&e, &err, "NVIDIA_DRIVER_CAPABILITIES=compute, compat32", NULL), 0);
	assert_int_equal(e.caps, GS_CAP_COMPUTE | GS_CAP_COMPAT32);
	ovl_env_clear(&e);
	assert_int_equal(parse(&e, &err, "NVIDIA_DRIVER_CAPABILITIES=all", NULL), 0);
	assert_int_equal(e.caps, GS_CAP_ALL);
	ovl_env_clear(&e);
	assert_true(parse(&e, &err, "NVIDIA_DRIVER_CAPABILITIES=compute,warp", NULL) < 0);
	assert_non_null(strstr(err.msg, "NVIDIA_DRIVER_CAPABILITIES"));

	assert_int_equal(ovl_caps_effective(GS_CAP_VIDEO), GS_CAP_VIDEO | GS_CAP_COMPUTE);
	assert_int_equal(ovl_caps_effective(GS_CAP_DISPLAY), GS_CAP_DISPLAY | GS_CAP_GRAPHICS);
}

/* Docker's --gpus appends its variables after the image's: called as
 * nvidia-container-runtime-hook, the hook takes the last of each. */
static void test_env_last_wins(void **state)
{
	(void)state;
	char *env[] = {(char *)"NVIDIA_VISIBLE_DEVICES=all",
		       (char *)"NVIDIA_DRIVER_CAPABILITIES=all",
		       (char *)"PATH=/usr/bin",
		       (char *)"NVIDIA_REQUIRE_CUDA=cuda>=99.0",
		       (char *)"NVIDIA_VISIBLE_DEVICES=0",
		       (char *)"NVIDIA_DRIVER_CAPABILITIES=utility",
		       (char *)"NVIDIA_REQUIRE_CUDA=cuda>=11.0"};
	size_t n = sizeof(env) / sizeof(env[0]);
	struct ovl_env e;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ovl_env_parse_last(env, n, &e, &err), 0);
	assert_int_equal(e.visible, OVL_VISIBLE_LIST);
	assert_int_equal(e.n_devices, 1);
	assert_string_equal(e.devices[0], "0");
	assert_int_equal(e.caps, GS_CAP_UTILITY);
	assert_int_equal(e.n_require, 1);
	assert_string_equal(e.require[0], "NVIDIA_REQUIRE_CUDA=cuda>=11.0");
	ovl_env_clear(&e);
	/* the same list read the usual way: the first of each */
	assert_int_equal(ovl_env_parse(env, n, &e, &err), 0);
	assert_int_equal(e.visible, OVL_VISIBLE_ALL);
	assert_int_equal(e.caps, GS_CAP_ALL);
	assert_string_equal(e.require[0], "NVIDIA_REQUIRE_CUDA=cuda>=99.0");
	ovl_env_clear(&e);
	/* one variable alone reads the same either way; a bad last one is an error */
	char *one[] = {(char *)"NVIDIA_VISIBLE_DEVICES=void", (char *)"NVIDIA_VISIBLE_DEVICES=x"};
	assert_int_equal(ovl_env_parse_last(one, 1, &e, &err), 0);
	assert_int_equal(e.visible, OVL_VISIBLE_VOID);
	ovl_env_clear(&e);
	assert_int_equal(ovl_env_parse_last(one, 2, &e, &err), -EINVAL);
	assert_int_equal(ovl_env_parse(one, 2, &e, &err), 0);
	assert_int_equal(e.visible, OVL_VISIBLE_VOID);
	ovl_env_clear(&e);
}

/* ---- requirements --------------------------------------------------------- */

static void test_require(void **state)
{
	(void)state;
	static const struct {
		const char *req;
		const char *disable;
		const char *driver;
		int rc;
	} cases[] = {
		{"NVIDIA_REQUIRE_CUDA=cuda>=12.0", NULL, "535.261.03", 0},
		{"NVIDIA_REQUIRE_CUDA=cuda>=12.2", NULL, "535.261.03", 0},
		{"NVIDIA_REQUIRE_CUDA=cuda>=12.4", NULL, "535.261.03", -EPERM},
		{"NVIDIA_REQUIRE_CUDA=cuda>=12.4", NULL, "550.163.01", 0},
		{"NVIDIA_REQUIRE_CUDA=cuda>=12.4 driver>=535", NULL, "535.261.03", 0},   /* OR */
		{"NVIDIA_REQUIRE_CUDA=cuda>=12.0,driver>=550", NULL, "535.261.03", -EPERM}, /* AND */
		{"NVIDIA_REQUIRE_CUDA=cuda>=12.0,driver>=535.100", NULL, "535.261.03", 0},
		{"NVIDIA_REQUIRE_DRIVER=driver<535", NULL, "535.261.03", -EPERM},
		{"NVIDIA_REQUIRE_DRIVER=driver==535.261.03", NULL, "535.261.03", 0},
		{"NVIDIA_REQUIRE_CUDA=cuda>=12.4", "NVIDIA_DISABLE_REQUIRE=1", "535.261.03", 0},
		{"NVIDIA_REQUIRE_CUDA=cuda>=12.4", "NVIDIA_DISABLE_REQUIRE=false", "535.261.03", -EPERM},
		{"NVIDIA_REQUIRE_CUDA=cuda>>12", NULL, "535.261.03", -EINVAL},
		{"NVIDIA_REQUIRE_CUDA=cuda>=twelve", NULL, "535.261.03", -EINVAL},
		{"NVIDIA_REQUIRE_CUDA=vram>=8", NULL, "535.261.03", -EINVAL},
		{"NVIDIA_REQUIRE_ARCH=arch=x86_64 brand=tesla", NULL, "535.261.03", 0},
		{"NVIDIA_REQUIRE_CUDA=", NULL, "535.261.03", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ovl_env e;
		struct gs_err err = GS_ERR_INIT;
		char note[256];
		assert_int_equal(parse(&e, &err, cases[i].req, cases[i].disable), 0);
		int r = ovl_require_check(&e, cases[i].driver, note, sizeof(note), &err);
		if (r != cases[i].rc)
			fail_msg("case %zu (%s on %s): got %d (%s), want %d", i, cases[i].req,
				 cases[i].driver, r, err.msg, cases[i].rc);
		if (r == -EPERM)
			assert_non_null(strstr(err.msg, "NVIDIA_REQUIRE_"));
		ovl_env_clear(&e);
	}
	/* an image's environment with tens of thousands of NVIDIA_REQUIRE_*
	 * variables is refused at once (each new name was compared with every
	 * earlier one: seconds of a root hook's time per container start) */
	enum { MANY = 20000 };
	char **env = calloc(MANY, sizeof(*env));
	assert_non_null(env);
	for (size_t i = 0; i < MANY; i++)
		assert_true(asprintf(&env[i], "NVIDIA_REQUIRE_%zu=cuda>=1.0", i) > 0);
	struct ovl_env e;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ovl_env_parse(env, MANY, &e, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "NVIDIA_REQUIRE_"));
	assert_int_equal(ovl_env_parse(env, 16, &e, &err), 0); /* a few are fine */
	assert_int_equal(e.n_require, 16);
	ovl_env_clear(&e);
	for (size_t i = 0; i < MANY; i++)
		free(env[i]);
	free(env);

	assert_int_equal(ovl_driver_cuda_version("535.261.03"), 12020);
	assert_int_equal(ovl_driver_cuda_version("550.163.01"), 12040);
	assert_int_equal(ovl_driver_cuda_version("300.1"), 0);
}

/* ---- GPUs ----------------------------------------------------------------- */

static const char *info0 = "Model: \t\t Fake GPU\nIRQ: 0\nGPU UUID: \t GPU-11111111-2222-3333-4444-555555555555\n"
			   "Bus Location: \t 0000:01:00.0\nDevice Minor: \t 0\n";
static const char *info1 = "GPU UUID: GPU-aaaaaaaa-2222-3333-4444-555555555555\nDevice Minor: 3\n";

static void test_gpus(void **state)
{
	(void)state;
	struct ovl_gpu g[2];
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(ovl_gpu_info_parse(info0, "0000:01:00.0", &g[0], &err), 0);
	assert_string_equal(g[0].uuid, "GPU-11111111-2222-3333-4444-555555555555");
	assert_int_equal(g[0].minor, 0);
	assert_int_equal(ovl_gpu_info_parse(info1, "0000:02:00.0", &g[1], &err), 0);
	assert_int_equal(g[1].minor, 3);
	struct ovl_gpu bad;
	assert_int_equal(ovl_gpu_info_parse("GPU UUID: GPU-1234\n", "x", &bad, &err), -EBADMSG);
	assert_int_equal(ovl_gpu_info_parse("Device Minor: 1\n", "x", &bad, &err), -EBADMSG);
	assert_int_equal(ovl_gpu_info_parse("GPU UUID: GPU-12345\nDevice Minor: 255\n", "x", &bad, &err),
			 -EBADMSG);

	struct ovl_env e;
	size_t *sel = NULL, n = 0;
	assert_int_equal(parse(&e, &err, "NVIDIA_VISIBLE_DEVICES=all", NULL), 0);
	assert_int_equal(ovl_gpus_select(g, 2, &e, &sel, &n, &err), 0);
	assert_int_equal(n, 2);
	free(sel);
	ovl_env_clear(&e);
	assert_int_equal(parse(&e, &err, "NVIDIA_VISIBLE_DEVICES=GPU-aaaaaaaa-2222-3333-4444-555555555555,1,0", NULL), 0);
	assert_int_equal(ovl_gpus_select(g, 2, &e, &sel, &n, &err), 0);
	assert_int_equal(n, 2); /* duplicates dropped, request order kept */
	assert_int_equal(sel[0], 1);
	assert_int_equal(sel[1], 0);
	free(sel);
	ovl_env_clear(&e);
	assert_int_equal(parse(&e, &err, "NVIDIA_VISIBLE_DEVICES=2", NULL), 0);
	assert_int_equal(ovl_gpus_select(g, 2, &e, &sel, &n, &err), -ENODEV);
	ovl_env_clear(&e);
	assert_int_equal(parse(&e, &err, "NVIDIA_VISIBLE_DEVICES=none", NULL), 0);
	assert_int_equal(ovl_gpus_select(g, 2, &e, &sel, &n, &err), 0);
	assert_int_equal(n, 0);
	free(sel);
	ovl_env_clear(&e);
}

/* MIG devices: GPU:GI:CI tokens are left to ovl_migs_select (in request
 * order, deduplicated, the GPU index checked), a MIG UUID is left to
 * the inventory (test_inventory); the capability files give the nodes' minors, a GI or CI
 * without one is ENODEV naming the device and the file. */
static void test_mig(void **state)
{
	(void)state;
	struct ovl_gpu g[2] = {{"0000:01:00.0", "GPU-1", 0}, {"0000:02:00.0", "GPU-2", 3}};
	struct gs_err err = GS_ERR_INIT;
	struct ovl_env e;
	size_t *sel = NULL, n = 0;
	assert_int_equal(parse(&e, &err, "NVIDIA_VISIBLE_DEVICES=1:2:0,0,0:1:0,1:2:0", NULL), 0);
	assert_int_equal(ovl_gpus_select(g, 2, &e, &sel, &n, &err), 0);
	assert_int_equal(n, 1); /* the whole GPU 0 only */
	assert_int_equal(sel[0], 0);
	free(sel);
	struct ovl_mig *m = NULL;
	assert_int_equal(ovl_migs_select(2, &e, &m, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_true(m[0].gpu == 1 && m[0].gi == 2 && m[0].ci == 0);
	assert_true(m[1].gpu == 0 && m[1].gi == 1 && m[1].ci == 0);
	free(m);
	ovl_env_clear(&e);
	assert_int_equal(parse(&e, &err, "NVIDIA_VISIBLE_DEVICES=2:1:0", NULL), 0);
	assert_int_equal(ovl_migs_select(2, &e, &m, &n, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "MIG device 2:1:0: GPU index 2 does not exist"));
	ovl_env_clear(&e);
	/* a MIG UUID is neither a whole GPU nor GPU:GI:CI: the inventory's */
	assert_int_equal(parse(&e, &err, "NVIDIA_VISIBLE_DEVICES=MIG-4f2a3c6e-1111,1", NULL), 0);
	assert_int_equal(ovl_gpus_select(g, 2, &e, &sel, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sel[0], 1);
	free(sel);
	assert_int_equal(ovl_migs_select(2, &e, &m, &n, &err), 0);
	assert_int_equal(n, 0);
	free(m);
	assert_true(ovl_is_mig_device("MIG-4f2a") && ovl_is_mig_device("0:1:0"));
	assert_false(ovl_is_mig_device("GPU-4f2a") || ovl_is_mig_device("1"));
	ovl_env_clear(&e);
	/* "all" is the whole GPUs: no MIG device */
	assert_int_equal(parse(&e, &err, "NVIDIA_VISIBLE_DEVICES=all", NULL), 0);
	assert_int_equal(ovl_migs_select(2, &e, &m, &n, &err), 0);
	assert_int_equal(n, 0);
	free(m);
	ovl_env_clear(&e);

	char d[64];
	snprintf(d, sizeof(d), "/tmp/gs-mig-XXXXXX");
	assert_non_null(mkdtemp(d));
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "set -e; c=%s/driver/nvidia/capabilities; mkdir -p $c/gpu3/mig/gi2/ci0 $c/gpu3/mig/gi4/ci1; "
		 "printf 'DeviceFileMinor: 66\nDeviceFileMode: 292\n' > $c/gpu3/mig/gi2/access; "
		 "printf 'DeviceFileMode: 292\nDeviceFileMinor: 67\n' > $c/gpu3/mig/gi2/ci0/access; "
		 "printf 'DeviceFileMinor: 90\n' > $c/gpu3/mig/gi4/access; "
		 "printf 'DeviceFileMode: 292\n' > $c/gpu3/mig/gi4/ci1/access",
		 d);
	assert_int_equal(system(cmd), 0);
	struct ovl_mig one = {1, 2, 0};
	int gi = -1, ci = -1;
	assert_int_equal(ovl_mig_caps_read(d, 3, &one, "1:2:0", &gi, &ci, &err), 0);
	assert_int_equal(gi, 66);
	assert_int_equal(ci, 67);
	one.ci = 7;
	assert_int_equal(ovl_mig_caps_read(d, 3, &one, "1:2:7", &gi, &ci, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "MIG device 1:2:7: no compute instance 7 in GPU instance 2"));
	assert_non_null(strstr(err.msg, "gpu3/mig/gi2/ci7/access absent"));
	one = (struct ovl_mig){1, 9, 0};
	assert_int_equal(ovl_mig_caps_read(d, 3, &one, "1:9:0", &gi, &ci, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "no GPU instance 9 on GPU 1"));
	one = (struct ovl_mig){1, 4, 1};
	assert_int_equal(ovl_mig_caps_read(d, 3, &one, "1:4:1", &gi, &ci, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "no DeviceFileMinor"));
	/* the GPU's device minor names the folder, not its index */
	one = (struct ovl_mig){1, 2, 0};
	assert_int_equal(ovl_mig_caps_read(d, 1, &one, "1:2:0", &gi, &ci, &err), -ENODEV);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	assert_int_equal(system(cmd), 0);
}

/* ---- plans ---------------------------------------------------------------- */

static struct gs_file mkfile(const char *path, enum gs_kind kind, unsigned int caps,
			     const char *soname)
{
	struct gs_file f = {0};
	f.path = strdup(path);
	f.source = strdup("/usr/lib/x86_64-linux-gnu/whatever");
	f.kind = kind;
	f.caps = caps;
	f.soname = soname ? strdup(soname) : NULL;
	f.mode = kind == GS_KIND_BIN ? 0555 : 0444;
	strcpy(f.sha256, "0000000000000000000000000000000000000000000000000000000000000000");
	return f;
}

static struct gs_manifest *manifest(void)
{
	struct gs_manifest *m = calloc(1, sizeof(*m));
	m->driver = strdup("535.261.03");
	m->arch = strdup("x86_64");
	m->n_files = 5;
	m->files = calloc(m->n_files, sizeof(*m->files));
	m->files[0] = mkfile("lib/utility/libnvidia-ml.so.535.261.03", GS_KIND_LIB, GS_CAP_UTILITY,
			     "libnvidia-ml.so.1");
	m->files[1] = mkfile("lib/compute/libcuda.so.535.261.03", GS_KIND_LIB, GS_CAP_COMPUTE,
			     "libcuda.so.1");
	m->files[2] = mkfile("lib32/compute/libcuda.so.535.261.03", GS_KIND_LIB32, GS_CAP_COMPUTE,
			     "libcuda.so.1");
	m->files[3] = mkfile("bin/utility/nvidia-smi", GS_KIND_BIN, GS_CAP_UTILITY, NULL);
	m->files[4] = mkfile("config/etc/OpenCL/vendors/nvidia.icd", GS_KIND_CONFIG, GS_CAP_COMPUTE,
			     NULL);
	m->n_links = 4;
	m->links = calloc(m->n_links, sizeof(*m->links));
	const char *links[][2] = {
		{"lib/utility/libnvidia-ml.so.1", "libnvidia-ml.so.535.261.03"},
		{"lib/compute/libcuda.so.1", "libcuda.so.535.261.03"},
		{"lib/compute/libcuda.so", "libcuda.so.1"},
		{"lib32/compute/libcuda.so.1", "libcuda.so.535.261.03"},
	};
	for (size_t i = 0; i < m->n_links; i++) {
		m->links[i].path = strdup(links[i][0]);
		m->links[i].target = strdup(links[i][1]);
	}
	return m;
}

/* The index of M, as gpu-stage writes it and the hook reads it. */
static struct gs_index *ix(const struct gs_manifest *m)
{
	char *text = NULL;
	size_t len = 0;
	struct gs_err e = GS_ERR_INIT;
	assert_int_equal(gs_index_format(m, 1234, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", &text, &len, &e), 0);
	struct gs_index *x = NULL;
	assert_int_equal(gs_index_parse(text, len, "index", &x, &e), 0);
	return x;
}

/* An index past what a reader takes (GS_INDEX_MAX) is not written: the
 * sources of a manifest that is itself within bounds can make one. */
static void test_index_too_big(void **state)
{
	(void)state;
	struct gs_manifest *m = manifest();
	char *src = malloc(GS_SOURCE_MAX);
	assert_non_null(src);
	memset(src, 's', GS_SOURCE_MAX - 1);
	src[0] = '/';
	src[GS_SOURCE_MAX - 1] = '\0';
	for (size_t i = 0; i < m->n_files; i++) {
		free(m->files[i].source);
		m->files[i].source = strdup(src);
	}
	size_t n = GS_INDEX_MAX / (GS_SOURCE_MAX - 1) + 1, k = m->n_files;
	m->files = realloc(m->files, (k + n) * sizeof(*m->files));
	assert_non_null(m->files);
	for (size_t i = 0; i < n; i++) {
		char path[64];
		snprintf(path, sizeof(path), "config/etc/x/f%zu", i);
		m->files[k + i] = mkfile(path, GS_KIND_CONFIG, GS_CAP_COMPUTE, NULL);
		free(m->files[k + i].source);
		m->files[k + i].source = strdup(src);
	}
	m->n_files = k + n;
	free(src);
	char *text = NULL;
	size_t len = 0;
	struct gs_err e = GS_ERR_INIT;
	assert_int_equal(gs_index_format(m, 1234, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", &text, &len, &e), -EFBIG);
	assert_non_null(strstr(e.msg, "more than the 16777216 a reader takes"));
	assert_null(text);
	gs_manifest_free(m);
}

static int plan_build(const struct gs_manifest *m, const struct ovl_request *req,
		      struct ovl_plan **out, struct gs_err *err)
{
	struct gs_index *x = ix(m);
	int r = ovl_plan_build(x, req, out, err);
	gs_index_free(x);
	return r;
}

static json_t *plan_json(const struct ovl_plan *p, const struct gs_manifest *m, const char *verdir,
			 const struct ovl_result *res)
{
	/* the streaming writer's output must be valid JSON: jansson reads it back */
	struct gs_index *x = ix(m);
	struct gs_jw w;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_jw_start(&w, &err), 0);
	ovl_plan_write(&w, NULL, p, x, verdir, res);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(gs_jw_finish(&w, &text, &len, &err), 0);
	gs_index_free(x);
	json_error_t jerr;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		fail_msg("not JSON (%s): %s", jerr.text, text);
	free(text);
	return j;
}

static const struct ovl_op *find_op(const struct ovl_plan *p, enum ovl_op_type t, const char *dest)
{
	for (size_t i = 0; i < p->n_ops; i++)
		if (p->ops[i].type == t && !strcmp(p->ops[i].dest, dest))
			return &p->ops[i];
	return NULL;
}

static const struct ovl_cache_entry *find_entry(const struct ovl_plan *p, const char *key,
						int32_t flags)
{
	const struct ovl_op *o = find_op(p, OVL_OP_LDCACHE, OVL_LDCACHE);
	for (size_t i = 0; o && i < o->n_entries; i++)
		if (!strcmp(o->entries[i].key, key) && o->entries[i].flags == flags)
			return &o->entries[i];
	return NULL;
}

#define X8664 (LDC_FLAG_X8664_LIB64 | LDC_FLAG_ELF_LIBC6)
#define I386 LDC_FLAG_ELF_LIBC6

static void test_plan_caps(void **state)
{
	(void)state;
	struct gs_manifest *m = manifest();
	struct gs_err err = GS_ERR_INIT;
	struct ovl_plan *p = NULL;

	/* utility only: libnvidia-ml but no libcuda */
	struct ovl_request req = {.caps = GS_CAP_UTILITY};
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	assert_non_null(find_op(p, OVL_OP_TMPFS, OVL_ANCHOR));
	assert_non_null(find_op(p, OVL_OP_BIND_DIR, OVL_ANCHOR "/lib/utility"));
	assert_null(find_op(p, OVL_OP_BIND_DIR, OVL_ANCHOR "/lib/compute"));
	assert_non_null(find_entry(p, "libnvidia-ml.so.1", X8664));
	assert_null(find_entry(p, "libcuda.so.1", X8664));
	const struct ovl_op *smi = find_op(p, OVL_OP_BIND_FILE, "/usr/bin/nvidia-smi");
	assert_non_null(smi);
	assert_string_equal(smi->source, "bin/utility/nvidia-smi");
	assert_non_null(find_op(p, OVL_OP_WRITE_FILE, OVL_CONF_DIR "/" OVL_CONF_NAME));
	assert_null(find_op(p, OVL_OP_BIND_FILE, "/etc/OpenCL/vendors/nvidia.icd"));
	ovl_plan_free(p);

	/* compute: libcuda.so.1 (and its development link) from the staged dir */
	req.caps = GS_CAP_UTILITY | GS_CAP_COMPUTE;
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	const struct ovl_cache_entry *e = find_entry(p, "libcuda.so.1", X8664);
	assert_non_null(e);
	assert_string_equal(e->value, OVL_ANCHOR "/lib/compute/libcuda.so.1");
	assert_non_null(find_entry(p, "libcuda.so", X8664));
	assert_null(find_entry(p, "libcuda.so.1", I386));
	assert_null(find_op(p, OVL_OP_BIND_DIR, OVL_ANCHOR "/lib32/compute"));
	assert_non_null(find_op(p, OVL_OP_BIND_FILE, "/etc/OpenCL/vendors/nvidia.icd"));
	const struct ovl_op *conf = find_op(p, OVL_OP_WRITE_FILE, OVL_CONF_DIR "/" OVL_CONF_NAME);
	assert_non_null(conf);
	assert_non_null(strstr(conf->content, OVL_ANCHOR "/lib/compute\n"));
	char *text = ovl_plan_describe(p, "/store/535.261.03");
	assert_non_null(text);
	assert_non_null(strstr(text, "/store/535.261.03/lib/compute -> " OVL_ANCHOR "/lib/compute"));
	free(text);
	ovl_plan_free(p);

	/* compat32 adds the i386 set */
	req.caps = GS_CAP_COMPUTE | GS_CAP_COMPAT32;
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	assert_non_null(find_op(p, OVL_OP_BIND_DIR, OVL_ANCHOR "/lib32/compute"));
	e = find_entry(p, "libcuda.so.1", I386);
	assert_non_null(e);
	assert_string_equal(e->value, OVL_ANCHOR "/lib32/compute/libcuda.so.1");
	assert_null(find_entry(p, "libnvidia-ml.so.1", X8664));
	ovl_plan_free(p);
	gs_manifest_free(m);
}

/* video: the VDPAU driver is bound where libvdpau looks for it, i386 too
 * with compat32; without video, nothing. */
static void test_plan_vdpau(void **state)
{
	(void)state;
	struct gs_manifest *m = manifest();
	struct gs_err err = GS_ERR_INIT;
	struct ovl_plan *p = NULL;
	m->files = realloc(m->files, (m->n_files + 2) * sizeof(*m->files));
	assert_non_null(m->files);
	m->files[m->n_files++] = mkfile("lib/video/libvdpau_nvidia.so.535.261.03", GS_KIND_LIB,
					GS_CAP_VIDEO, "libvdpau_nvidia.so.1");
	m->files[m->n_files++] = mkfile("lib32/video/libvdpau_nvidia.so.535.261.03", GS_KIND_LIB32,
					GS_CAP_VIDEO | GS_CAP_COMPAT32, "libvdpau_nvidia.so.1");
	static const char x64[] = "/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.1";
	static const char x32[] = "/usr/lib/i386-linux-gnu/vdpau/libvdpau_nvidia.so.1";

	struct ovl_request req = {.caps = GS_CAP_UTILITY | GS_CAP_COMPUTE};
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	assert_null(find_op(p, OVL_OP_BIND_FILE, x64));
	ovl_plan_free(p);

	req.caps = GS_CAP_VIDEO;
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	const struct ovl_op *o = find_op(p, OVL_OP_BIND_FILE, x64);
	assert_non_null(o);
	assert_string_equal(o->source, "lib/video/libvdpau_nvidia.so.535.261.03");
	assert_true(o->flags & OVL_F_OPTIONAL);
	assert_null(find_op(p, OVL_OP_BIND_FILE, x32));
	ovl_plan_free(p);

	req.caps = GS_CAP_VIDEO | GS_CAP_COMPAT32;
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	o = find_op(p, OVL_OP_BIND_FILE, x32);
	assert_non_null(o);
	assert_string_equal(o->source, "lib32/video/libvdpau_nvidia.so.535.261.03");
	ovl_plan_free(p);
	gs_manifest_free(m);
}

/* Item 5 of issue 12: a value that does not fit a fixed buffer is an
 * error naming the variable (or file) and the limit, or is parsed in full:
 * never a shorter value. */
static void test_no_silent_truncation(void **state)
{
	(void)state;
	struct ovl_env e;
	struct gs_err err = GS_ERR_INIT;
	char *kv = malloc(8192);
	assert_non_null(kv);

	/* 600+ bytes of capabilities ending in graphics,display,video: all parsed */
	strcpy(kv, "NVIDIA_DRIVER_CAPABILITIES=");
	for (int i = 0; i < 80; i++)
		strcat(kv, i % 2 ? "utility, " : "compute,");
	strcat(kv, "graphics,display,video");
	assert_true(strlen(kv) > 600);
	assert_int_equal(parse(&e, &err, kv, NULL), 0);
	assert_int_equal(e.caps, GS_CAP_UTILITY | GS_CAP_COMPUTE | GS_CAP_GRAPHICS |
					 GS_CAP_DISPLAY | GS_CAP_VIDEO);
	ovl_env_clear(&e);
	/* exactly the 4096-byte limit, the last name beyond any old buffer */
	strcpy(kv, "NVIDIA_DRIVER_CAPABILITIES=");
	size_t k = strlen(kv);
	memset(kv + k, ' ', 4096 - 8);
	strcpy(kv + k + 4096 - 8, "graphics");
	assert_int_equal(parse(&e, &err, kv, NULL), 0);
	assert_int_equal(e.caps, GS_CAP_GRAPHICS);
	ovl_env_clear(&e);
	/* one byte more: an error naming the variable and the limit */
	strcat(kv, "s");
	assert_int_equal(parse(&e, &err, kv, NULL), -E2BIG);
	assert_non_null(strstr(err.msg, "NVIDIA_DRIVER_CAPABILITIES"));
	assert_non_null(strstr(err.msg, "4096"));
	/* a bad name at the very end is still seen */
	strcpy(kv, "NVIDIA_DRIVER_CAPABILITIES=");
	for (int i = 0; i < 80; i++)
		strcat(kv, "compute,");
	strcat(kv, "graphicsX");
	assert_int_equal(parse(&e, &err, kv, NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "graphicsX"));

	/* a device token longer than 80 bytes */
	strcpy(kv, "NVIDIA_VISIBLE_DEVICES=0,GPU-");
	for (int i = 0; i < 77; i++)
		strcat(kv, "a");
	assert_int_equal(parse(&e, &err, kv, NULL), -E2BIG);
	assert_non_null(strstr(err.msg, "NVIDIA_VISIBLE_DEVICES"));
	assert_non_null(strstr(err.msg, "80"));
	kv[strlen(kv) - 1] = '\0'; /* 80 bytes: a (hex) UUID-shaped token is fine */
	assert_int_equal(parse(&e, &err, kv, NULL), 0);
	assert_int_equal(e.n_devices, 2);
	assert_int_equal(strlen(e.devices[1]), 80);
	ovl_env_clear(&e);

	/* NVIDIA_REQUIRE_<long name>: named in full in the verdict, the value
	 * parsed to its end (the unmet condition is the last one) */
	strcpy(kv, "NVIDIA_REQUIRE_");
	for (int i = 0; i < 150; i++)
		strcat(kv, "X");
	strcat(kv, "=driver>=1");
	for (int i = 0; i < 300; i++)
		strcat(kv, ",driver>=1");
	strcat(kv, ",driver>=999");
	assert_int_equal(parse(&e, &err, kv, NULL), 0);
	assert_int_equal(ovl_require_check(&e, "535.261.03", NULL, 0, &err), -EPERM);
	char want[200] = "NVIDIA_REQUIRE_";
	memset(want + 15, 'X', 150);
	want[165] = '=';
	want[166] = '\0';
	assert_non_null(strstr(err.msg, want));
	ovl_env_clear(&e);
	/* a malformed condition at the end of a long value */
	strcpy(kv, "NVIDIA_REQUIRE_CUDA=cuda>=1");
	for (int i = 0; i < 300; i++)
		strcat(kv, ",cuda>=1");
	strcat(kv, ",cuda>=x");
	assert_int_equal(parse(&e, &err, kv, NULL), 0);
	assert_int_equal(ovl_require_check(&e, "535.261.03", NULL, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "NVIDIA_REQUIRE_CUDA"));
	ovl_env_clear(&e);

	/* /proc/driver/nvidia/gpus/<bus id>/information: a bus id or a value
	 * longer than struct ovl_gpu holds is an error, not a shorter one */
	struct ovl_gpu g;
	char bus[128];
	memset(bus, 'b', sizeof(bus) - 1);
	bus[sizeof(bus) - 1] = '\0';
	assert_int_equal(ovl_gpu_info_parse(info0, bus, &g, &err), -ENAMETOOLONG);
	assert_non_null(strstr(err.msg, "63"));
	bus[63] = '\0'; /* 63 bytes: fits */
	assert_int_equal(ovl_gpu_info_parse(info0, bus, &g, &err), 0);
	assert_string_equal(g.bus_id, bus);
	strcpy(kv, "GPU UUID: GPU-");
	for (int i = 0; i < 100; i++)
		strcat(kv, "1");
	strcat(kv, "\nDevice Minor: 0\n");
	assert_int_equal(ovl_gpu_info_parse(kv, "0000:01:00.0", &g, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "GPU UUID"));
	assert_non_null(strstr(err.msg, "95"));
	strcpy(kv, "GPU UUID: GPU-11111111-2222-3333-4444-555555555555\nDevice Minor: ");
	for (int i = 0; i < 40; i++)
		strcat(kv, "0");
	strcat(kv, "1\n");
	assert_int_equal(ovl_gpu_info_parse(kv, "0000:01:00.0", &g, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "Device Minor"));
	free(kv);
}

/* Plan paths are sized to fit: a long (255-byte) SONAME keeps its name in
 * the VDPAU destination, a long store path in the audit record. */
static void test_plan_long_names(void **state)
{
	(void)state;
	struct gs_manifest *m = manifest();
	struct gs_err err = GS_ERR_INIT;
	struct ovl_plan *p = NULL;
	char soname[256] = "libvdpau_nvidia.so.";
	memset(soname + 19, '1', 255 - 19);
	soname[255] = '\0';
	m->files = realloc(m->files, (m->n_files + 1) * sizeof(*m->files));
	assert_non_null(m->files);
	m->files[m->n_files++] = mkfile("lib/video/libvdpau_nvidia.so.535.261.03", GS_KIND_LIB,
					GS_CAP_VIDEO, soname);
	struct ovl_request req = {.caps = GS_CAP_VIDEO};
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	char dest[400];
	snprintf(dest, sizeof(dest), "/usr/lib/x86_64-linux-gnu/vdpau/%s", soname);
	assert_non_null(find_op(p, OVL_OP_BIND_FILE, dest));

	char *verdir = malloc(3000);
	assert_non_null(verdir);
	memset(verdir, 'd', 2999);
	verdir[0] = '/';
	verdir[2999] = '\0';
	json_t *j = plan_json(p, m, verdir, NULL);
	assert_non_null(j);
	json_t *op;
	size_t i;
	bool seen = false;
	json_array_foreach(json_object_get(j, "operations"), i, op) {
		const char *src = json_string_value(json_object_get(op, "source"));
		if (!src)
			continue;
		assert_true(strlen(src) > 3000);
		assert_int_equal(strncmp(src, verdir, 2999), 0);
		seen = true;
	}
	assert_true(seen);
	json_decref(j);
	free(verdir);
	ovl_plan_free(p);
	gs_manifest_free(m);
}

static void test_plan_readonly_and_devices(void **state)
{
	(void)state;
	struct gs_manifest *m = manifest();
	struct gs_err err = GS_ERR_INIT;
	struct ovl_plan *p = NULL;
	struct ovl_device devs[] = {{"nvidiactl", 195, 255}, {"nvidia0", 195, 0}};
	struct ovl_request req = {.caps = GS_CAP_UTILITY | GS_CAP_COMPUTE, .no_write = true,
				  .devices = devs, .n_devices = 2};
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	const struct ovl_op *c = find_op(p, OVL_OP_LDCACHE, OVL_LDCACHE);
	assert_non_null(c);
	assert_true(c->flags & OVL_F_BIND_CACHE);
	/* nothing is written into a read-only image: no conf entry, no file
	 * created at /usr/bin; the binaries are linked from a tmpfs */
	assert_null(find_op(p, OVL_OP_WRITE_FILE, OVL_CONF_DIR "/" OVL_CONF_NAME));
	assert_null(find_op(p, OVL_OP_BIND_FILE, "/usr/bin/nvidia-smi"));
	const struct ovl_op *l = find_op(p, OVL_OP_SYMLINK, OVL_BIN_FALLBACK "/nvidia-smi");
	assert_non_null(l);
	assert_string_equal(l->source, OVL_ANCHOR "/bin/utility/nvidia-smi");
	const struct ovl_op *d = find_op(p, OVL_OP_MKNOD, "/dev/nvidia0");
	assert_non_null(d);
	assert_int_equal(d->major, 195);
	assert_int_equal(d->minor, 0);
	assert_non_null(find_op(p, OVL_OP_MKNOD, "/dev/nvidiactl"));
	ovl_plan_free(p);

	/* a MIG capability node lives in /dev/nvidia-caps/ */
	struct ovl_device cap[] = {{"nvidia-caps/nvidia-cap21", 508, 21}};
	req.devices = cap;
	req.n_devices = 1;
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	d = find_op(p, OVL_OP_MKNOD, "/dev/nvidia-caps/nvidia-cap21");
	assert_non_null(d);
	assert_int_equal(d->minor, 21);
	ovl_plan_free(p);

	/* a device name that is not one component (or nvidia-caps/ and one) is refused */
	static const char *const evil_names[] = {"../etc/passwd", "nvidia-caps/../../etc/passwd",
						 "nvidia-caps/", "nvidia-caps/a/b", "other/nvidia0"};
	for (size_t i = 0; i < sizeof(evil_names) / sizeof(evil_names[0]); i++) {
		struct ovl_device evil[1] = {{"", 195, 0}};
		snprintf(evil[0].name, sizeof(evil[0].name), "%s", evil_names[i]);
		req.devices = evil;
		req.n_devices = 1;
		assert_int_equal(plan_build(m, &req, &p, &err), -EINVAL);
	}
	gs_manifest_free(m);
}

/* Host IPC paths become bind-host ops (optional; read-write only for
 * MPS's pipes), described in the dry run and the audit JSON; a destination
 * with ".." or a relative source is refused. */
static void test_plan_host_binds(void **state)
{
	(void)state;
	struct gs_manifest *m = manifest();
	struct gs_err err = GS_ERR_INIT;
	struct ovl_plan *p = NULL;
	struct ovl_host_bind b[] = {
		{(char *)"/h/tmp/nvidia-mps", (char *)"/tmp/nvidia-mps", true, true, GS_CAP_COMPUTE},
		{(char *)"/h/run/nvidia-persistenced/socket", (char *)OVL_PERSISTENCED_SOCKET, false, false,
		 GS_CAP_UTILITY | GS_CAP_COMPUTE}};
	struct ovl_request req = {.caps = GS_CAP_UTILITY | GS_CAP_COMPUTE, .host_binds = b, .n_host_binds = 2};
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	const struct ovl_op *o = find_op(p, OVL_OP_BIND_HOST, "/tmp/nvidia-mps");
	assert_non_null(o);
	assert_string_equal(o->source, "/h/tmp/nvidia-mps");
	assert_true(S_ISDIR(o->mode));
	assert_int_equal(o->flags, OVL_F_OPTIONAL | OVL_F_RW);
	o = find_op(p, OVL_OP_BIND_HOST, OVL_PERSISTENCED_SOCKET);
	assert_non_null(o);
	assert_true(S_ISSOCK(o->mode));
	assert_int_equal(o->flags, OVL_F_OPTIONAL);
	char *text = ovl_plan_describe(p, "/store/535.261.03");
	assert_non_null(text);
	assert_non_null(strstr(text, "bind-host  host directory /h/tmp/nvidia-mps -> /tmp/nvidia-mps (rw,nosuid,nodev,noexec) [optional,read-write]"));
	assert_non_null(strstr(text, "bind-host  host socket /h/run/nvidia-persistenced/socket -> " OVL_PERSISTENCED_SOCKET " (ro,nosuid,nodev,noexec) [optional]"));
	free(text);
	ovl_plan_free(p);
	static const char *const bad[][2] = {{"/h/x", "/tmp/../etc"}, {"h/x", "/tmp/x"}, {"/h/x", "tmp/x"},
					     {"/h/x", "/tmp//x"}, {"/h/x", "/run/gpu-stage"}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ovl_host_bind one = {(char *)bad[i][0], (char *)bad[i][1], true, false, GS_CAP_COMPUTE};
		req.host_binds = &one;
		req.n_host_binds = 1;
		int r = plan_build(m, &req, &p, &err);
		if (r >= 0)
			fail_msg("host bind %s -> %s was accepted", bad[i][0], bad[i][1]);
	}
	gs_manifest_free(m);
}

/* The runtime's tmpfs destinations travel with the plan (checked at apply
 * time); an empty one is refused. */
static void test_plan_tmpfs_dests(void **state)
{
	(void)state;
	struct gs_manifest *m = manifest();
	struct gs_err err = GS_ERR_INIT;
	struct ovl_plan *p = NULL;
	const char *dests[] = {"/run", "/dev"};
	struct ovl_request req = {.caps = GS_CAP_UTILITY, .tmpfs_dests = dests, .n_tmpfs_dests = 2};
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	assert_int_equal(p->n_tmpfs_dests, 2);
	assert_string_equal(p->tmpfs_dests[0], "/run");
	assert_string_equal(p->tmpfs_dests[1], "/dev");
	assert_ptr_not_equal(p->tmpfs_dests[0], dests[0]);
	ovl_plan_free(p);
	p = NULL;
	const char *bad[] = {"/run", ""};
	req.tmpfs_dests = bad;
	assert_int_equal(plan_build(m, &req, &p, &err), -EINVAL);
	assert_null(p);
	gs_manifest_free(m);
}

static void test_plan_bad_manifest(void **state)
{
	(void)state;
	/* the index reader refuses these paths; the plan checks again */
	static const char *bad[] = {"../lib/compute/x.so", "/etc/passwd", "lib/compute/../../x",
				    "lib//x", "lib/./x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gs_manifest *m = manifest();
		struct gs_index *x = ix(m);
		x->files[1].path = bad[i];
		struct gs_err err = GS_ERR_INIT;
		struct ovl_plan *p = NULL;
		struct ovl_request req = {.caps = GS_CAP_ALL};
		assert_int_equal(ovl_plan_build(x, &req, &p, &err), -EINVAL);
		assert_null(p);
		assert_non_null(strstr(err.msg, "bad path"));
		gs_index_free(x);
		gs_manifest_free(m);
	}
	struct gs_manifest *m = manifest();
	struct gs_index *x = ix(m);
	x->driver = "../535";
	struct gs_err err = GS_ERR_INIT;
	struct ovl_plan *p = NULL;
	struct ovl_request req = {.caps = GS_CAP_ALL};
	assert_int_equal(ovl_plan_build(x, &req, &p, &err), -EINVAL);
	gs_index_free(x);
	gs_manifest_free(m);
}

/* The audit record's writer: always valid JSON, whatever bytes a path holds. */
static void test_json_writer(void **state)
{
	(void)state;
	struct gs_jw w;
	struct gs_err err = GS_ERR_INIT;
	assert_int_equal(gs_jw_start(&w, &err), 0);
	gs_jw_object(&w, NULL);
	gs_jw_string(&w, "quote", "a\"b\\c\n\x01\x7f");
	gs_jw_string(&w, "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	gs_jw_string(&w, "bad", "\xff\xc3(\xed\xa0\x80\xc0\xaf");
	gs_jw_stringn(&w, "nul", "a\0b", 3);
	gs_jw_string(&w, "null", NULL);
	gs_jw_int(&w, "n", -42);
	gs_jw_array(&w, "a");
	gs_jw_bool(&w, NULL, true);
	gs_jw_object(&w, NULL);
	gs_jw_end(&w);
	gs_jw_end(&w);
	gs_jw_end(&w);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(gs_jw_finish(&w, &text, &len, &err), 0);
	json_error_t jerr;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!j)
		fail_msg("not JSON (%s): %s", jerr.text, text);
	assert_string_equal(json_string_value(json_object_get(j, "quote")), "a\"b\\c\n\x01\x7f");
	assert_string_equal(json_string_value(json_object_get(j, "utf8")),
			    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* every invalid sequence (stray byte, truncated, surrogate, overlong) is U+FFFD */
	assert_non_null(strstr(json_string_value(json_object_get(j, "bad")), "\xef\xbf\xbd("));
	assert_null(strstr(json_string_value(json_object_get(j, "bad")), "\xed"));
	assert_int_equal(json_string_length(json_object_get(j, "nul")), 3);
	assert_true(json_is_null(json_object_get(j, "null")));
	assert_int_equal(json_integer_value(json_object_get(j, "n")), -42);
	assert_int_equal(json_array_size(json_object_get(j, "a")), 2);
	json_decref(j);
	free(text);
	/* unbalanced or too deep: an error, never a broken line */
	assert_int_equal(gs_jw_start(&w, &err), 0);
	gs_jw_object(&w, NULL);
	assert_int_equal(gs_jw_finish(&w, &text, &len, &err), -ENOMEM);
	assert_int_equal(gs_jw_start(&w, &err), 0);
	for (int i = 0; i <= GS_JW_DEPTH; i++)
		gs_jw_array(&w, NULL);
	for (int i = 0; i <= GS_JW_DEPTH; i++)
		gs_jw_end(&w);
	assert_int_equal(gs_jw_finish(&w, &text, &len, &err), -ENOMEM);
}

static void test_plan_json(void **state)
{
	(void)state;
	struct gs_manifest *m = manifest();
	struct gs_err err = GS_ERR_INIT;
	struct ovl_plan *p = NULL;
	struct ovl_request req = {.caps = GS_CAP_COMPUTE};
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	json_t *j = plan_json(p, m, "/store/535.261.03", NULL);
	assert_non_null(j);
	char *s = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(s, "\"source\":\"/store/535.261.03/lib/compute\""));
	assert_non_null(strstr(s, "\"sha256\":\"0000"));
	free(s);
	json_decref(j);
	ovl_plan_free(p);
	gs_manifest_free(m);
}

/* ---- races injected into apply ----------------------------------------------- */

/* Set by a test: right after the hook's mknodat succeeds, a concurrent
 * process in the same rootfs replaces the fresh node with a symlink here. */
static const char *swap_to;
int __real_mknodat(int dirfd, const char *name, mode_t mode, dev_t dev);
int __wrap_mknodat(int dirfd, const char *name, mode_t mode, dev_t dev);
int __wrap_mknodat(int dirfd, const char *name, mode_t mode, dev_t dev)
{
	int r = __real_mknodat(dirfd, name, mode, dev);
	if (r == 0 && swap_to) {
		assert_int_equal(unlinkat(dirfd, name, 0), 0);
		assert_int_equal(symlinkat(swap_to, dirfd, name), 0);
	}
	return r;
}

/* The node the plan creates is swapped for a symlink to a host file
 * between mknod and chmod: the host file's mode must not change (in
 * prestart the hook's "/" is the host's). */
static void test_apply_mknod_swapped(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* mknod needs root */
	char dir[] = "/tmp/gs-ovl-XXXXXX", victim[64], rootfs[64], devdir[80];
	assert_non_null(mkdtemp(dir));
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
	snprintf(devdir, sizeof(devdir), "%s/dev", rootfs);
	int fd = open(victim, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(victim, 0600), 0);
	assert_int_equal(mkdir(rootfs, 0755), 0);
	assert_int_equal(mkdir(devdir, 0755), 0);
	int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rootfd >= 0);

	struct ovl_op op = {.type = OVL_OP_MKNOD, .dest = (char *)"/dev/nvidia0", .major = 1,
			    .minor = 3, .mode = 0666};
	struct ovl_plan p = {.driver = (char *)"535.261.03", .ops = &op, .n_ops = 1};
	struct ovl_result res;
	struct gs_err err = GS_ERR_INIT;
	swap_to = victim;
	int r = ovl_plan_apply(&p, NULL, rootfd, NULL, 0, &res, &err);
	swap_to = NULL;
	struct stat st;
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600); /* not chmod'ed through the link */
	assert_true(r < 0);                          /* and the swap is an error */
	ovl_result_clear(&res);

	/* without interference: a node of exactly the planned mode, whatever the umask */
	char node[96];
	snprintf(node, sizeof(node), "%s/nvidia0", devdir);
	assert_int_equal(unlink(node), 0);
	mode_t old = umask(077);
	r = ovl_plan_apply(&p, NULL, rootfd, NULL, 0, &res, &err);
	umask(old);
	assert_int_equal(r, 0);
	assert_int_equal(lstat(node, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0666);
	ovl_result_clear(&res);

	close(rootfd);
	unlink(node);
	rmdir(devdir);
	rmdir(rootfs);
	unlink(victim);
	rmdir(dir);
}

/* The one mountinfo reader: escapes decoded, "shared:" seen among the
 * optional fields, and a malformed, NUL-holding or unterminated line is an
 * error naming the file, never skipped. */
static int mi_read(const char *text, size_t len, struct gs_mountinfo *m, char **line,
		   struct gs_err *err)
{
	FILE *f = fmemopen((void *)text, len, "r");
	assert_non_null(f);
	size_t cap = 0;
	int r = gs_mountinfo_next(f, "mi", line, &cap, m, err);
	fclose(f);
	return r;
}

static void test_mountinfo(void **state)
{
	(void)state;
	static const char good[] =
		"36 35 0:44 / /tmp/a\\040b rw,nosuid shared:7 master:1 - tmpfs tm\\011pfs rw,size=8k\n";
	struct gs_mountinfo m;
	struct gs_err err = GS_ERR_INIT;
	char *line = NULL;
	assert_int_equal(mi_read(good, sizeof(good) - 1, &m, &line, &err), 1);
	assert_int_equal(m.id, 36);
	assert_int_equal(m.parent, 35);
	assert_int_equal(m.major, 0);
	assert_int_equal(m.minor, 44);
	assert_string_equal(m.root, "/");
	assert_string_equal(m.point, "/tmp/a b");
	assert_string_equal(m.fstype, "tmpfs");
	assert_string_equal(m.source, "tm\tpfs");
	assert_string_equal(m.superopts, "rw,size=8k");
	assert_true(m.shared);
	free(line);
	static const char priv[] = "18446744073709551615 0 4294967295:1 / / rw - ext4 /dev/vda1 rw\n";
	line = NULL;
	assert_int_equal(mi_read(priv, sizeof(priv) - 1, &m, &line, &err), 1);
	assert_false(m.shared);
	assert_true(m.id == UINT64_MAX);
	assert_true(m.major == UINT32_MAX);
	assert_int_equal(m.minor, 1);
	free(line);
	static const char *const bad[] = {
		"36 35 0:44 / /x rw shared:7\n",           /* no separator */
		"36 35 0:44 / /x rw - tmpfs\n",            /* no source */
		"3x 35 0:44 / /x rw - tmpfs t rw\n",       /* id not a number */
		"36 35 0:44 / /x\\000y rw - tmpfs t rw\n", /* escape decodes to NUL */
		"36 35 0:44 / /x rw - tmpfs t rw",          /* no newline */
		"36 35 0:44x / /x rw - tmpfs t rw\n",      /* device number with junk */
		"36 3x5 0:44 / /x rw - tmpfs t rw\n",      /* parent id with junk */
		"36 35 :44 / /x rw - tmpfs t rw\n",        /* no major */
		"36 35 0: / /x rw - tmpfs t rw\n",         /* no minor */
		"36 35 0:4294967296 / /x rw - tmpfs t rw\n", /* minor past 32 bits */
		"18446744073709551616 35 0:44 / /x rw - tmpfs t rw\n", /* id past 64 bits */
		"-1 35 0:44 / /x rw - tmpfs t rw\n",       /* negative id */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		line = NULL;
		assert_true(mi_read(bad[i], strlen(bad[i]), &m, &line, &err) < 0);
		assert_non_null(strstr(err.msg, "mi: "));
		free(line);
	}
	static const char nul[] = "36 35 0:44 / /x\0y rw - tmpfs t rw\n";
	line = NULL;
	assert_true(mi_read(nul, sizeof(nul) - 1, &m, &line, &err) < 0);
	assert_non_null(strstr(err.msg, "NUL"));
	free(line);
}

/* ---- the host's device nodes (gs/hostdev.h) ------------------------------------ */

static int majors(const char *text, struct ovl_nv_majors *m, struct gs_err *err)
{
	gs_err_clear(err);
	return ovl_proc_devices_parse(text, strlen(text), m, err);
}

static void test_proc_devices(void **state)
{
	(void)state;
	struct ovl_nv_majors m;
	struct gs_err err = GS_ERR_INIT;
	/* a real host's, abridged: the block section's names do not count */
	assert_int_equal(majors("Character devices:\n  1 mem\n  4 /dev/vc/0\n195 nvidia-frontend\n"
				"234 nvidia-nvswitch\n235 nvidia-caps\n508 nvidia-uvm\n\nBlock devices:\n"
				"  7 loop\n509 nvidia-uvm\n", &m, &err), 0);
	assert_int_equal(m.frontend, 195);
	assert_int_equal(m.caps, 235);
	assert_int_equal(m.uvm, 508);
	/* nothing loaded; "nvidia" alone is the frontend; partial names do not match */
	assert_int_equal(majors("Character devices:\n  1 mem\n237 nvidia-uvmx\n237 xnvidia-uvm\n", &m, &err), 0);
	assert_int_equal(m.frontend, -1);
	assert_int_equal(m.uvm, -1);
	assert_int_equal(majors("Character devices:\r\n195 nvidia\r\n 237 nvidia-uvm  \r\n", &m, &err), 0);
	assert_int_equal(m.frontend, 195);
	assert_int_equal(m.uvm, 237);
	/* a huge line of another name is skipped whole, the next one read */
	size_t big = 200000;
	char *huge = malloc(big + 64);
	assert_non_null(huge);
	strcpy(huge, "Character devices:\n 10 ");
	memset(huge + strlen(huge), 'a', big);
	strcpy(huge + 23 + big, "\n240 nvidia-uvm\n");
	assert_int_equal(ovl_proc_devices_parse(huge, strlen(huge), &m, &err), 0);
	assert_int_equal(m.uvm, 240);
	free(huge);
	/* hostile: duplicates, bad numbers, no section */
	static const struct {
		const char *text, *why;
	} bad[] = {
		{"Character devices:\n237 nvidia-uvm\n238 nvidia-uvm\n", "nvidia-uvm is listed twice"},
		{"Character devices:\n195 nvidia-frontend\n195 nvidia\n", "listed twice"},
		{"Character devices:\n23x nvidia-uvm\n", "major '23x' is not a number"},
		{"Character devices:\n4096 nvidia-uvm\n", "not a number up to 4095"},
		{"Character devices:\n-1 nvidia-caps\n", "not a number"},
		{"Character devices:\n99999999999999999999 nvidia-uvm\n", "not a number"},
		{"Character devices:\nnvidia-uvm\n", "not a number"},
		{"Block devices:\n237 nvidia-uvm\n", "no \"Character devices:\" section"},
		{"", "no \"Character devices:\" section"},
		{"Character devices:\n\nCharacter devices:\n", "two \"Character devices:\""},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = majors(bad[i].text, &m, &err);
		if (r != -EBADMSG || !strstr(err.msg, bad[i].why))
			fail_msg("devices %zu: expected '%s', got %d '%s'", i, bad[i].why, r, err.msg);
	}
}

static int attrs(const char *text, struct ovl_nv_attrs *a, struct gs_err *err)
{
	gs_err_clear(err);
	return ovl_nv_attrs_parse(text, strlen(text), a, err);
}

static void test_nv_attrs(void **state)
{
	(void)state;
	struct ovl_nv_attrs a;
	struct gs_err err = GS_ERR_INIT;
	/* /proc/driver/nvidia/params (decimal: 438 = 0666), other keys skipped */
	assert_int_equal(attrs("ResmanDebugLevel: 4294967295\nRmLogonRC: 1\nModifyDeviceFiles: 1\n"
			       "DeviceFileUID: 0\nDeviceFileGID: 44\nDeviceFileMode: 432\n"
			       "RegistryDwords: \"\"\n", &a, &err), 0);
	assert_int_equal(a.mode, 0660);
	assert_int_equal(a.gid, 44);
	assert_true(a.modify);
	assert_int_equal(a.minor, -1);
	/* a MIG capability file */
	assert_int_equal(attrs("DeviceFileMinor: 21\nDeviceFileMode: 292\nDeviceFileModify: 0\n", &a, &err), 0);
	assert_int_equal(a.minor, 21);
	assert_int_equal(a.mode, 0444);
	assert_false(a.modify);
	/* defaults: nvidia-modprobe's 0666, root, modify */
	assert_int_equal(attrs("", &a, &err), 0);
	assert_int_equal(a.mode, 0666);
	assert_int_equal(a.uid, 0);
	assert_true(a.modify);
	static const struct {
		const char *text, *why;
	} bad[] = {
		{"DeviceFileMinor: 1\nDeviceFileMinor: 2\n", "DeviceFileMinor given twice"},
		{"ModifyDeviceFiles: 1\nDeviceFileModify: 1\n", "DeviceFileModify given twice"},
		{"DeviceFileMinor: 1048576\n", "DeviceFileMinor: '1048576' is not a decimal number"},
		{"DeviceFileMinor: -1\n", "is not a decimal number"},
		{"DeviceFileMinor: 0x10\n", "is not a decimal number"},
		{"DeviceFileMinor: 12345678901\n", "is not a decimal number"},
		{"DeviceFileMinor:\n", "is not a decimal number"},
		{"DeviceFileMode: 4096\n", "DeviceFileMode"},
		{"DeviceFileUID: 4294967295\n", "DeviceFileUID"},
		{"ModifyDeviceFiles: 2\n", "ModifyDeviceFiles"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = attrs(bad[i].text, &a, &err);
		if (r != -EBADMSG || !strstr(err.msg, bad[i].why))
			fail_msg("attrs %zu: expected '%s', got %d '%s'", i, bad[i].why, r, err.msg);
	}
}

static void put(const char *dir, const char *rel, const char *text)
{
	char path[512], *slash;
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const struct ovl_hostdev *find_dev(const struct ovl_hostdevs *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].name, name))
			return &h->v[i];
	return NULL;
}

static void test_hostdevs_read(void **state)
{
	(void)state;
	char dir[] = "/tmp/gs-hostdev-XXXXXX", cmd[600];
	assert_non_null(mkdtemp(dir));
	struct ovl_hostdevs h;
	struct gs_err err = GS_ERR_INIT;
	put(dir, "devices", "Character devices:\n195 nvidia-frontend\n235 nvidia-caps\n\n");
	put(dir, "modules", "nvidia_uvm 1 0 - Live\nnvidia_modeset 1 0 - Live\n");
	put(dir, "driver/nvidia/params", "DeviceFileMode: 438\nDeviceFileGID: 27\n");
	put(dir, "driver/nvidia/gpus/0000:02:00.0/information", "GPU UUID: GPU-b\nDevice Minor: 3\n");
	put(dir, "driver/nvidia/gpus/0000:01:00.0/information", "GPU UUID: GPU-a\nDevice Minor: 1\n");
	put(dir, "driver/nvidia/capabilities/mig/config", "DeviceFileMinor: 1\nDeviceFileMode: 256\n");
	put(dir, "driver/nvidia/capabilities/gpu0/mig/gi1/access", "DeviceFileMinor: 12\nDeviceFileMode: 292\n");
	put(dir, "driver/nvidia/capabilities/README", "no device file behind this one\n");
	assert_int_equal(ovl_hostdevs_read(dir, &h, &err), 0);
	const struct ovl_hostdev *d = find_dev(&h, "nvidiactl");
	assert_non_null(d);
	assert_int_equal(d->major, 195);
	assert_int_equal(d->minor, 255);
	assert_int_equal(d->attrs.gid, 27);
	assert_non_null(find_dev(&h, "nvidia1"));
	assert_non_null(find_dev(&h, "nvidia3"));
	assert_non_null(d = find_dev(&h, "nvidia-modeset"));
	assert_int_equal(d->minor, 254);
	assert_non_null(d = find_dev(&h, "nvidia-uvm"));
	assert_int_equal(d->major, -1); /* not loaded: no numbers */
	assert_non_null(d = find_dev(&h, "nvidia-caps/nvidia-cap12"));
	assert_int_equal(d->major, 235);
	assert_int_equal(d->attrs.mode, 0444);
	assert_non_null(d = find_dev(&h, "nvidia-caps/nvidia-cap1"));
	assert_int_equal(d->attrs.mode, 0400);
	assert_int_equal(h.n, 8);
	ovl_hostdevs_clear(&h);
	/* two capability files naming one minor */
	put(dir, "driver/nvidia/capabilities/mig/monitor", "DeviceFileMinor: 12\n");
	assert_int_equal(ovl_hostdevs_read(dir, &h, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "named twice"));
	assert_non_null(strstr(err.msg, "capabilities/mig/monitor"));
	/* a malformed one names its file */
	put(dir, "driver/nvidia/capabilities/mig/monitor", "DeviceFileMinor: 1x\n");
	assert_int_equal(ovl_hostdevs_read(dir, &h, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "capabilities/mig/monitor"));
	/* too deep */
	snprintf(cmd, sizeof(cmd), "rm -f %s/driver/nvidia/capabilities/mig/monitor", dir);
	assert_int_equal(system(cmd), 0);
	put(dir, "driver/nvidia/capabilities/a/b/c/d/e/f/g/h/i/j/x", "DeviceFileMinor: 40\n");
	assert_int_equal(ovl_hostdevs_read(dir, &h, &err), -ELOOP);
	assert_non_null(strstr(err.msg, "deeper than"));
	/* no /proc/devices at all */
	snprintf(cmd, sizeof(cmd), "rm -rf %s/driver/nvidia/capabilities/a %s/devices", dir, dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ovl_hostdevs_read(dir, &h, &err), -ENOENT);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* check and make under a fake DEV: a node made with the numbers and mode
 * asked for, one with other numbers never replaced, a symlink at
 * nvidia-caps never followed, a node swapped for a symlink between mknod
 * and chmod never chmod'ed through. */
static void test_hostdev_make(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* mknod needs root */
	char dir[] = "/tmp/gs-hostdev-XXXXXX", path[128], victim[128];
	assert_non_null(mkdtemp(dir));
	int devfd = open(dir, O_PATH | O_DIRECTORY);
	assert_true(devfd >= 0);
	struct gs_err err = GS_ERR_INIT;
	enum ovl_node_state st;
	char what[96];
	struct ovl_hostdev uvm = {.name = "nvidia-uvm", .major = 237, .minor = 0,
				  .attrs = {.mode = 0666, .modify = true, .minor = -1}};
	assert_int_equal(ovl_hostdev_check(devfd, &uvm, &st, what, sizeof(what), &err), 0);
	assert_int_equal(st, OVL_NODE_MISSING);
	mode_t old = umask(077);
	assert_int_equal(ovl_hostdev_make(devfd, &uvm, &err), 0);
	umask(old);
	struct stat sb;
	snprintf(path, sizeof(path), "%s/nvidia-uvm", dir);
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISCHR(sb.st_mode));
	assert_int_equal(sb.st_rdev, makedev(237, 0));
	assert_int_equal(sb.st_mode & 07777, 0666);
	assert_int_equal(ovl_hostdev_check(devfd, &uvm, &st, what, sizeof(what), &err), 0);
	assert_int_equal(st, OVL_NODE_OK);
	/* other numbers: a conflict, left alone */
	struct ovl_hostdev other = uvm;
	other.minor = 7;
	assert_int_equal(ovl_hostdev_check(devfd, &other, &st, what, sizeof(what), &err), 0);
	assert_int_equal(st, OVL_NODE_CONFLICT);
	assert_non_null(strstr(what, "237:0"));
	assert_int_equal(ovl_hostdev_make(devfd, &other, &err), -EEXIST);
	assert_int_equal(lstat(path, &sb), 0);
	assert_int_equal(sb.st_rdev, makedev(237, 0));
	/* module not loaded */
	other.major = -1;
	assert_int_equal(ovl_hostdev_make(devfd, &other, &err), -ENODEV);
	/* a symlink at nvidia-caps pointing out: never followed */
	snprintf(victim, sizeof(victim), "%s-victim", dir);
	assert_int_equal(mkdir(victim, 0700), 0);
	snprintf(path, sizeof(path), "%s/nvidia-caps", dir);
	assert_int_equal(symlink(victim, path), 0);
	struct ovl_hostdev cap = {.name = "nvidia-caps/nvidia-cap1", .major = 235, .minor = 1,
				  .attrs = {.mode = 0400, .modify = true, .minor = 1}};
	assert_true(ovl_hostdev_make(devfd, &cap, &err) < 0);
	snprintf(path, sizeof(path), "%s/nvidia-cap1", victim);
	assert_int_equal(lstat(path, &sb), -1);
	/* swapped for a symlink to a host file right after mknod */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	swap_to = path;
	struct ovl_hostdev tools = uvm;
	snprintf(tools.name, sizeof(tools.name), "nvidia-uvm-tools");
	tools.minor = 1;
	assert_true(ovl_hostdev_make(devfd, &tools, &err) < 0);
	swap_to = NULL;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	close(devfd);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, victim);
	assert_int_equal(system(cmd), 0);
}

static void test_plan_compat_dir(void **state)
{
	(void)state;
	struct gs_manifest *m = manifest();
	struct gs_err err = GS_ERR_INIT;
	struct ovl_plan *p = NULL;
	struct ovl_request req = {.caps = GS_CAP_COMPUTE, .cuda_compat_dir = "/usr/local/cuda/compat"};
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	assert_string_equal(p->cuda_compat_dir, "/usr/local/cuda/compat");
	assert_ptr_not_equal(p->cuda_compat_dir, req.cuda_compat_dir);
	ovl_plan_free(p);
	req.cuda_compat_dir = NULL;
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	assert_null(p->cuda_compat_dir);
	ovl_plan_free(p);
	char longdir[OVL_COMPAT_DIR_MAX + 2];
	memset(longdir, 'a', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	const char *bad[] = {"usr/local/cuda/compat", "", longdir};
	for (size_t i = 0; i < 3; i++) {
		req.cuda_compat_dir = bad[i];
		p = NULL;
		assert_int_equal(plan_build(m, &req, &p, &err), -EINVAL);
		assert_null(p);
		assert_non_null(strstr(err.msg, "cuda_compat_dir"));
	}
	longdir[sizeof(longdir) - 2] = '\0'; /* exactly the limit */
	req.cuda_compat_dir = longdir;
	assert_int_equal(plan_build(m, &req, &p, &err), 0);
	ovl_plan_free(p);
	gs_manifest_free(m);
}

/* ---- CUDA forward compatibility (compat.c) ---- */

static void test_version_cmp(void **state)
{
	(void)state;
	static const struct {
		const char *a, *b;
		int want;
	} t[] = {
		{"550.54.15", "535.261.03", 1}, {"535.261.03", "550.54.15", -1},
		{"535.261.03", "535.261.03", 0}, {"535.261.3", "535.261.03", 0},
		{"1.2", "1.2.1", -1},            {"1.2.0", "1.2", 0},
		{"10.0", "9.99", 1},             {"535.1", "535.01.1", -1},
		{"123456789012345678901234.1", "99.1", 1},
		{"99.1", "123456789012345678901234.1", -1},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = ovl_version_cmp(t[i].a, t[i].b);
		if ((r > 0) - (r < 0) != t[i].want)
			fail_msg("%s vs %s: %d, want %d", t[i].a, t[i].b, r, t[i].want);
	}
}

static void test_compat_libcuda_name(void **state)
{
	(void)state;
	char v[GS_VERSION_MAX + 1];
	assert_true(ovl_compat_libcuda_version("libcuda.so.550.54.15", v));
	assert_string_equal(v, "550.54.15");
	assert_true(ovl_compat_libcuda_version("libcuda.so.550.54", v));
	assert_string_equal(v, "550.54");
	static const char *const bad[] = {"libcuda.so.1", "libcuda.so", "libcuda.so.", "libcuda.so.abc",
					  "libcuda.so.550..1", "libcuda.so.550.54.", "libcudart.so.12.4",
					  "libcuda.so.550.54.15.bak", "libcuda.so.1234567890123456789012345678901.1",
					  "xlibcuda.so.550.54"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ovl_compat_libcuda_version(bad[i], v))
			fail_msg("%s taken for a libcuda.so.<version>", bad[i]);
}

static void test_compat_pick(void **state)
{
	(void)state;
	const char *names[] = {"libcuda.so.1", "libnvidia-nvvm.so.550.54.15", "libcuda.so.545.23.08",
			       "libcuda.so.550.54.15", "libcuda.so.x.y", "libcuda.so.549.99"};
	const size_t n = sizeof(names) / sizeof(names[0]);
	char why[256];
	size_t idx = 99;
	assert_int_equal(ovl_compat_pick(names, n, "/c", "535.261.03", &idx, why, sizeof(why)), 1);
	assert_int_equal(idx, 3);
	assert_string_equal(why, "used: /c/libcuda.so.550.54.15 newer than driver 535.261.03");
	assert_int_equal(ovl_compat_pick(names, n, "/c", "550.54.15", &idx, why, sizeof(why)), 0);
	assert_string_equal(why, "ignored: /c/libcuda.so.550.54.15 same version as driver 550.54.15");
	assert_int_equal(ovl_compat_pick(names, n, "/c", "550.100", &idx, why, sizeof(why)), 0);
	assert_string_equal(why, "ignored: /c/libcuda.so.550.54.15 older than driver 550.100");
	const char *odd[] = {"libcuda.so.1", "libcuda.so.x.y", "libnvidia-nvvm.so.4"};
	assert_int_equal(ovl_compat_pick(odd, 3, "/c", "535.261.03", &idx, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "ignored: /c holds no libcuda.so.<version>"));
	assert_non_null(strstr(why, "not a version"));
	assert_int_equal(ovl_compat_pick(odd, 0, "/c", "535.261.03", &idx, why, sizeof(why)), 0);
	assert_string_equal(why, "ignored: /c holds no libcuda.so.<version>");
}

static void test_compat_value(void **state)
{
	(void)state;
	struct ovl_compat_lib libs[] = {{"libcuda.so.1", "/c/libcuda.so.550.54.15"},
					{"libnvidia-nvvm.so.4", "/c/libnvidia-nvvm.so.550.54.15"}};
	struct ovl_compat c = {.used = true, .libs = libs, .n_libs = 2};
	const int32_t x64 = LDC_FLAG_ELF_LIBC6 | LDC_FLAG_X8664_LIB64;
	assert_string_equal(ovl_compat_value(&c, "libcuda.so.1", x64), "/c/libcuda.so.550.54.15");
	assert_string_equal(ovl_compat_value(&c, "libnvidia-nvvm.so.4", x64), "/c/libnvidia-nvvm.so.550.54.15");
	assert_null(ovl_compat_value(&c, "libcuda.so.1", LDC_FLAG_ELF_LIBC6)); /* lib32 keeps ours */
	assert_null(ovl_compat_value(&c, "libcuda.so", x64));                 /* development link */
	assert_null(ovl_compat_value(&c, "libnvidia-ml.so.1", x64));
	c.used = false;
	assert_null(ovl_compat_value(&c, "libcuda.so.1", x64));
	assert_null(ovl_compat_value(NULL, "libcuda.so.1", x64));
}

/* ---- the glibc check (glibc.c) ---- */

static void test_glibc_leave_out(void **state)
{
	(void)state;
	const int32_t x64 = LDC_FLAG_ELF_LIBC6 | LDC_FLAG_X8664_LIB64;
	struct ovl_cache_entry e[] = {
		{"libnvidia-egl-wayland.so.1", "/run/gpu-stage/lib/graphics/libnvidia-egl-wayland.so.1", x64, GS_GLIBC(2, 34)},
		{"libnvidia-egl-wayland.so.1", "/run/gpu-stage/lib32/graphics/libnvidia-egl-wayland.so.1", LDC_FLAG_ELF_LIBC6, GS_GLIBC(2, 34)},
		{"libnvidia-egl-gbm.so.1", "/run/gpu-stage/lib/graphics/libnvidia-egl-gbm.so.1", x64, GS_GLIBC(2, 40)},
		{"libcuda.so.1", "/run/gpu-stage/lib/compute/libcuda.so.1", x64, GS_GLIBC(2, 2) | 5},
		{"libcuda.so", "/run/gpu-stage/lib/compute/libcuda.so", x64, GS_GLIBC(2, 2) | 5},
	};
	struct ovl_op o = {.type = OVL_OP_LDCACHE, .entries = e, .n_entries = 5};
	char why[384];
	bool left;
	assert_int_equal(ovl_glibc_needed(&o), GS_GLIBC(2, 40));
	assert_true(ovl_glibc_needed(&o) > OVL_GLIBC_FLOOR);
	/* an image with glibc 2.31: both 64-bit EGL platforms out, the 32-bit one kept */
	assert_true(ovl_glibc_left_out(&e[0], GS_GLIBC(2, 31)));
	assert_false(ovl_glibc_left_out(&e[1], GS_GLIBC(2, 31)));
	assert_false(ovl_glibc_left_out(&e[3], GS_GLIBC(2, 31)));
	ovl_glibc_note(&o, GS_GLIBC(2, 31), why, sizeof(why), &left);
	assert_true(left);
	assert_string_equal(why, "image libc defines up to GLIBC_2.31; left out: libnvidia-egl-wayland.so.1 (needs GLIBC_2.34), "
				 "libnvidia-egl-gbm.so.1 (needs GLIBC_2.40)");
	/* 2.36: only gbm; 2.40 exactly: nothing */
	ovl_glibc_note(&o, GS_GLIBC(2, 36), why, sizeof(why), &left);
	assert_string_equal(why, "image libc defines up to GLIBC_2.36; left out: libnvidia-egl-gbm.so.1 (needs GLIBC_2.40)");
	ovl_glibc_note(&o, GS_GLIBC(2, 40), why, sizeof(why), &left);
	assert_false(left);
	assert_string_equal(why, "image libc defines up to GLIBC_2.40; nothing left out");
	/* no libc: nothing left out, and said so */
	assert_false(ovl_glibc_left_out(&e[2], 0));
	ovl_glibc_note(&o, 0, why, sizeof(why), &left);
	assert_false(left);
	assert_non_null(strstr(why, "no 64-bit glibc libc.so.6 in the image"));
	/* many: the list ends in "and N more", never cut mid-name */
	struct ovl_cache_entry many[40];
	char keys[40][48];
	for (size_t i = 0; i < 40; i++) {
		snprintf(keys[i], sizeof(keys[i]), "libnvidia-long-name-%02zu.so.1", i);
		many[i] = (struct ovl_cache_entry){keys[i], keys[i], x64, GS_GLIBC(2, 38)};
	}
	struct ovl_op m = {.type = OVL_OP_LDCACHE, .entries = many, .n_entries = 40};
	ovl_glibc_note(&m, GS_GLIBC(2, 31), why, sizeof(why), &left);
	assert_true(left);
	assert_non_null(strstr(why, " more"));
	assert_non_null(strstr(why, "libnvidia-long-name-00.so.1 (needs GLIBC_2.38)"));
	assert_true(strlen(why) < sizeof(why) - 1);
}

/* The device inventory: a good file parses; each broken promise is
 * EBADMSG naming the member; MIG-<uuid> maps to GPU:GI:CI by the parent's
 * UUID on the host's GPUs, and a stale driver, a parent the host lacks
 * (or with another minor) and an unknown UUID are errors naming the fix. */
#define INV_GPU0 "{\"index\":0,\"minor\":0,\"uuid\":\"GPU-11\",\"pci_bus_id\":\"00000000:01:00.0\",\"mig_mode\":\"enabled\"}"
#define INV_GPU1 "{\"index\":1,\"minor\":3,\"uuid\":\"GPU-22\",\"pci_bus_id\":\"00000000:02:00.0\",\"mig_mode\":\"disabled\"}"
#define INV_MIG "{\"uuid\":\"MIG-aa\",\"gpu_index\":0,\"gpu_uuid\":\"GPU-11\",\"gi\":2,\"ci\":1}"
#define INV_HEAD "{\"schema\":\"gpu-stage/devices/v1\",\"driver\":\"535.261.03\",\"nvml\":\"/s/libnvidia-ml.so.1\",\"timestamp\":\"t\","

static int inv_parse(const char *text, bool full, struct gs_inventory *inv, struct gs_err *err)
{
	gs_err_clear(err);
	return gs_inventory_parse(text, strlen(text), "inv", full, inv, err);
}

static void test_inventory(void **state)
{
	(void)state;
	struct gs_inventory inv;
	struct gs_err err = GS_ERR_INIT;
	const char *good = INV_HEAD "\"gpus\":[" INV_GPU0 "," INV_GPU1 "],\"mig_devices\":[" INV_MIG "]}";
	assert_int_equal(inv_parse(good, true, &inv, &err), 0);
	assert_int_equal(inv.n_gpus, 2);
	assert_int_equal(inv.n_migs, 1);
	assert_string_equal(inv.migs[0].uuid, "MIG-aa");
	assert_string_equal(inv.nvml, "/s/libnvidia-ml.so.1");

	struct ovl_gpu host[2] = {{"0000:01:00.0", "GPU-11", 0}, {"0000:02:00.0", "GPU-22", 3}};
	struct ovl_mig m = {0};
	assert_int_equal(gs_inventory_mig_find(&inv, "F", "535.261.03", host, 2, "mig-AA", &m, &err), 0);
	assert_true(m.gpu == 0 && m.gi == 2 && m.ci == 1);
	/* the host's GPUs in another order: the parent is found by UUID */
	struct ovl_gpu swapped[2] = {host[1], host[0]};
	assert_int_equal(gs_inventory_mig_find(&inv, "F", "535.261.03", swapped, 2, "MIG-aa", &m, &err), 0);
	assert_int_equal(m.gpu, 1);
	assert_int_equal(gs_inventory_mig_find(&inv, "F", "550.163.01", host, 2, "MIG-aa", &m, &err), -ESTALE);
	assert_non_null(strstr(err.msg, "F was written for driver 535.261.03"));
	assert_non_null(strstr(err.msg, "gpu-stage devices --inventory"));
	assert_int_equal(gs_inventory_mig_find(&inv, "F", "535.261.03", host, 2, "MIG-bb", &m, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "no MIG device MIG-bb in F"));
	assert_int_equal(gs_inventory_mig_find(&inv, "F", "535.261.03", &host[1], 1, "MIG-aa", &m, &err), -ESTALE);
	host[0].minor = 5;
	assert_int_equal(gs_inventory_mig_find(&inv, "F", "535.261.03", host, 2, "MIG-aa", &m, &err), -ESTALE);
	assert_non_null(strstr(err.msg, "its GPU GPU-11 (minor 0 in F) is not the host's now"));
	gs_inventory_clear(&inv);

	/* the helper's output: no schema, nvml, timestamp; the file needs them */
	const char *helper = "{\"driver\":\"535.261.03\",\"gpus\":[" INV_GPU0 "],\"mig_devices\":[]}";
	assert_int_equal(inv_parse(helper, false, &inv, &err), 0);
	assert_null(inv.nvml);
	gs_inventory_clear(&inv);
	assert_int_equal(inv_parse(helper, true, &inv, &err), -EBADMSG);
	assert_int_equal(inv_parse(good, false, &inv, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "unknown member"));

	static const struct {
		const char *text, *msg;
	} bad[] = {
		{INV_HEAD "\"gpus\":[],\"mig_devices\":[],\"gpus\":[]}", "duplicate"},
		{INV_HEAD "\"gpus\":[],\"mig_devices\":[],\"x\":1}", "top level.x: unknown member"},
		{"{\"schema\":\"gpu-stage/devices/v2\",\"driver\":\"535.261.03\",\"nvml\":\"/n\",\"timestamp\":\"t\",\"gpus\":[],\"mig_devices\":[]}", "top level.schema: malformed"},
		{INV_HEAD "\"gpus\":[" INV_GPU1 "],\"mig_devices\":[]}", "gpus[0]: index out of order"},
		{INV_HEAD "\"gpus\":[{\"index\":0,\"minor\":254,\"uuid\":\"GPU-11\",\"pci_bus_id\":\"0:1\",\"mig_mode\":\"enabled\"}],\"mig_devices\":[]}", "gpus[0].minor"},
		{INV_HEAD "\"gpus\":[{\"index\":0,\"minor\":0,\"uuid\":\"GPU-1/1\",\"pci_bus_id\":\"0:1\",\"mig_mode\":\"enabled\"}],\"mig_devices\":[]}", "gpus[0].uuid: malformed"},
		{INV_HEAD "\"gpus\":[{\"index\":0,\"minor\":0,\"uuid\":\"GPU-11\",\"pci_bus_id\":\"0:1\",\"mig_mode\":\"on\"}],\"mig_devices\":[]}", "gpus[0].mig_mode: malformed"},
		{INV_HEAD "\"gpus\":[{\"index\":0,\"minor\":0,\"uuid\":\"GPU-11\",\"pci_bus_id\":\"0000000000000000000000000000000000:01:00.0\",\"mig_mode\":\"on\"}],\"mig_devices\":[]}", "gpus[0].pci_bus_id: too long"},
		{INV_HEAD "\"gpus\":[" INV_GPU0 "],\"mig_devices\":[{\"uuid\":\"MIG-aa\",\"gpu_index\":0,\"gpu_uuid\":\"GPU-22\",\"gi\":2,\"ci\":1}]}", "mig_devices[0]: its parent GPU"},
		{INV_HEAD "\"gpus\":[" INV_GPU1 "],\"mig_devices\":[{\"uuid\":\"MIG-aa\",\"gpu_index\":3,\"gpu_uuid\":\"GPU-22\",\"gi\":2,\"ci\":1}]}", "index out of order"},
		{INV_HEAD "\"gpus\":[" INV_GPU0 "," INV_GPU1 "],\"mig_devices\":[{\"uuid\":\"MIG-aa\",\"gpu_index\":1,\"gpu_uuid\":\"GPU-22\",\"gi\":2,\"ci\":1}]}", "MIG mode is not enabled"},
		{INV_HEAD "\"gpus\":[" INV_GPU0 "],\"mig_devices\":[" INV_MIG "," INV_MIG "]}", "the same MIG UUID twice"},
		{INV_HEAD "\"gpus\":[" INV_GPU0 ",{\"index\":1,\"minor\":1,\"uuid\":\"GPU-11\",\"pci_bus_id\":\"0:2\",\"mig_mode\":\"disabled\"}],\"mig_devices\":[]}", "gpus[1]: the same GPU UUID twice"},
		{INV_HEAD "\"gpus\":[" INV_GPU0 "],\"mig_devices\":[{\"uuid\":\"MIG-aa\",\"gpu_index\":0,\"gpu_uuid\":\"GPU-11\",\"gi\":1024,\"ci\":1}]}", "mig_devices[0].gi"},
		{INV_HEAD "\"gpus\":[" INV_GPU0 "],\"mig_devices\":[" INV_MIG "," INV_MIG "," INV_MIG "," INV_MIG "," INV_MIG "," INV_MIG "," INV_MIG "," INV_MIG "," INV_MIG "]}", "mig_devices: more than 8 entries"},
		{"{\"schema\":\"gpu-stage/devices/v1\",\"driver\":\"535.261.03\",\"nvml\":\"rel\",\"timestamp\":\"t\",\"gpus\":[],\"mig_devices\":[]}", "top level.nvml: malformed"},
		{"[]", "top level: not an object"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(inv_parse(bad[i].text, true, &inv, &err), -EBADMSG);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
		assert_non_null(strstr(err.msg, "inv"));
		assert_null(inv.gpus);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_too_big),
		cmocka_unit_test(test_env_visible),
		cmocka_unit_test(test_env_first_wins_and_caps),
		cmocka_unit_test(test_env_last_wins),
		cmocka_unit_test(test_require),
		cmocka_unit_test(test_gpus),
		cmocka_unit_test(test_inventory),
		cmocka_unit_test(test_mig),
		cmocka_unit_test(test_plan_caps),
		cmocka_unit_test(test_plan_vdpau),
		cmocka_unit_test(test_no_silent_truncation),
		cmocka_unit_test(test_plan_long_names),
		cmocka_unit_test(test_plan_readonly_and_devices),
		cmocka_unit_test(test_plan_tmpfs_dests),
		cmocka_unit_test(test_plan_host_binds),
		cmocka_unit_test(test_plan_bad_manifest),
		cmocka_unit_test(test_plan_json), cmocka_unit_test(test_json_writer),
		cmocka_unit_test(test_apply_mknod_swapped),
		cmocka_unit_test(test_mountinfo),
		cmocka_unit_test(test_proc_devices),
		cmocka_unit_test(test_nv_attrs),
		cmocka_unit_test(test_hostdevs_read),
		cmocka_unit_test(test_hostdev_make),
		cmocka_unit_test(test_plan_compat_dir),
		cmocka_unit_test(test_version_cmp),
		cmocka_unit_test(test_compat_libcuda_name),
		cmocka_unit_test(test_compat_pick),
		cmocka_unit_test(test_compat_value),
		cmocka_unit_test(test_glibc_leave_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
