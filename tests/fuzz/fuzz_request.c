/* SPDX-License-Identifier: Apache-2.0 */
/* The container's NVIDIA_* variables and the GPU information files: the
 * input, split at newlines, is the environment (both orders of
 * precedence), NVIDIA_REQUIRE_* evaluated against two driver versions,
 * the GPUs selected from a fixed inventory; the whole input is also
 * parsed as /proc/driver/nvidia/gpus/BUS/information.  Promises: a
 * refusal names its reason; a selection names only GPUs that exist, MIG
 * devices (GPU:GI:CI) included. */
#include "fuzz_common.h"
#include "gs/overlay.h"

static const struct ovl_gpu gpus[] = {
	{"0000:17:00.0", "GPU-11111111-2222-3333-4444-555555555555", 0},
	{"0000:65:00.0", "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", 1},
};

static void one(char **env, size_t n, bool last)
{
	struct gs_err err = GS_ERR_INIT;
	struct ovl_env e = {0};
	int r = last ? ovl_env_parse_last(env, n, &e, &err) : ovl_env_parse(env, n, &e, &err);
	fz_refused(r, &err);
	if (r >= 0) {
		char note[512];
		fz_refused(ovl_require_check(&e, "535.261.03", note, sizeof(note), &err), &err);
		fz_refused(ovl_require_check(&e, "470.2", note, sizeof(note), &err), &err);
		size_t *sel = NULL, k = 0;
		r = ovl_gpus_select(gpus, 2, &e, &sel, &k, &err);
		fz_refused(r, &err);
		for (size_t i = 0; r >= 0 && i < k; i++)
			if (sel[i] >= 2)
				abort(); /* a GPU that is not there */
		free(sel);
		struct ovl_mig *migs = NULL;
		r = ovl_migs_select(2, &e, &migs, &k, &err);
		fz_refused(r, &err);
		for (size_t i = 0; r >= 0 && i < k; i++)
			if (migs[i].gpu >= 2 || migs[i].gi > 9999 || migs[i].ci > 9999)
				abort(); /* a MIG device on a GPU that is not there */
		free(migs);
	}
	ovl_env_clear(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fz_text(data, size);
	char *env[64];
	size_t n = 0;
	for (char *p = text, *nl; n < 64 && p; p = nl) {
		nl = strchr(p, '\n');
		if (nl)
			*nl++ = '\0';
		env[n++] = p;
	}
	one(env, n, false);
	one(env, n, true);
	free(text);
	text = fz_text(data, size);
	struct ovl_gpu g;
	struct gs_err err = GS_ERR_INIT;
	fz_refused(ovl_gpu_info_parse(text, "0000:17:00.0", &g, &err), &err);
	(void)ovl_driver_cuda_version(text);
	free(text);
	return 0;
}
