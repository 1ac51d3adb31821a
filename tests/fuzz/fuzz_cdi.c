/* SPDX-License-Identifier: Apache-2.0 */
/* A CDI spec already in the CDI directory, as `gpu-stage info` and the
 * refresh after staging read it (stage/cmd_cdi.c, cdi_check): the input
 * is CDI_DIR/nvidia.com-gpu.json, in a scratch directory, checked against
 * a scratch store and a scratch /proc with one GPU.  Promises: a refusal
 * names its reason; the answer is one of the four states, names the
 * spec's path, and says why when the spec is stale. */
#include <sys/stat.h>

#include "../../stage/cmd.h"
#include "fuzz_common.h"

static char cdi[128], spec[192], store[128], proc[128];

static void setup(void)
{
	static const char *const dirs[] = {"driver", "driver/nvidia", "driver/nvidia/gpus",
					   "driver/nvidia/gpus/0000:17:00.0"};
	char p[256];
	fz_mkdirs(cdi, sizeof(cdi), "cdi", NULL, 0);
	fz_mkdirs(proc, sizeof(proc), "proc", dirs, FZ_N(dirs));
	snprintf(spec, sizeof(spec), "%s/nvidia.com-gpu.json", cdi);
	snprintf(store, sizeof(store), "%s/store", fz_scratch());
	static const char info[] = "Model: \t\t NVIDIA H100\nGPU UUID: \t GPU-11111111-2222-3333-4444-555555555555\n"
				   "Bus Location: \t 0000:17:00.0\nDevice Minor: \t 0\n";
	snprintf(p, sizeof(p), "%s/driver/nvidia/gpus/0000:17:00.0/information", proc);
	fz_write(p, info, sizeof(info) - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!cdi[0])
		setup();
	fz_write(spec, data, size);
	struct cdi_check q = {.cdi_dir = cdi, .vendor = "nvidia.com", .store = store, .proc_root = proc};
	char *file = NULL, *why = NULL;
	struct gs_err err = GS_ERR_INIT;
	int r = cdi_check(&q, &file, &why, &err);
	fz_refused(r, &err);
	if (r >= 0 && (r > CDI_FOREIGN || !file || strcmp(file, spec) || r == CDI_NONE ||
		       (r == CDI_STALE) != (why != NULL)))
		abort(); /* not an answer about the spec that is there */
	free(file);
	free(why);
	return 0;
}
