/* SPDX-License-Identifier: Apache-2.0 */
/* What the NVIDIA module publishes under /proc/driver/nvidia, read through
 * the hook's own readers (overlay/gpus.c) from a scratch PROCROOT: the
 * input's parts (split at "\n--next--\n") are driver/nvidia/version,
 * gpus/0000:17:00.0/information and the MIG capability files
 * capabilities/gpu0/mig/gi1/access and .../gi1/ci2/access.  Promises: a
 * refusal names its reason; a version read is valid; the GPU read is the
 * one there, its minor in range; capability minors are in range. */
#include <sys/stat.h>

#include "fuzz_common.h"
#include "gs/hostdev.h"
#include "gs/overlay.h"
#include "gs/version.h"

#define SEP "\n--next--\n"

static char proc[128];
static const char *const files[] = {
	"driver/nvidia/version",
	"driver/nvidia/gpus/0000:17:00.0/information",
	"driver/nvidia/capabilities/gpu0/mig/gi1/access",
	"driver/nvidia/capabilities/gpu0/mig/gi1/ci2/access",
};

static void setup(void)
{
	static const char *const dirs[] = {
		"driver", "driver/nvidia", "driver/nvidia/gpus", "driver/nvidia/gpus/0000:17:00.0",
		"driver/nvidia/capabilities", "driver/nvidia/capabilities/gpu0",
		"driver/nvidia/capabilities/gpu0/mig", "driver/nvidia/capabilities/gpu0/mig/gi1",
		"driver/nvidia/capabilities/gpu0/mig/gi1/ci2",
	};
	fz_mkdirs(proc, sizeof(proc), "proc", dirs, FZ_N(dirs));
}

static void read_all(void)
{
	struct gs_err err = GS_ERR_INIT;
	char *ver = NULL;
	int r = ovl_driver_version(proc, &ver, &err);
	fz_refused(r, &err);
	if (r >= 0 && !gs_version_valid(ver))
		abort();
	free(ver);
	struct ovl_gpu *gpus = NULL;
	size_t n = 0;
	err = (struct gs_err)GS_ERR_INIT;
	r = ovl_gpus_read(proc, &gpus, &n, &err);
	fz_refused(r, &err);
	if (r >= 0 && (n != 1 || strcmp(gpus[0].bus_id, "0000:17:00.0") || gpus[0].minor < 0 ||
		       gpus[0].minor > (int)OVL_DEV_MINOR_MAX ||
		       strnlen(gpus[0].uuid, sizeof(gpus[0].uuid)) == sizeof(gpus[0].uuid)))
		abort(); /* not the GPU that is there, or a minor out of range */
	free(gpus);
	struct ovl_mig m = {.gpu = 0, .gi = 1, .ci = 2};
	int gi = -1, ci = -1;
	err = (struct gs_err)GS_ERR_INIT;
	r = ovl_mig_caps_read(proc, 0, &m, "0:1:2", &gi, &ci, &err);
	fz_refused(r, &err);
	if (r >= 0 && (gi < 0 || ci < 0 || gi > (int)OVL_DEV_MINOR_MAX || ci > (int)OVL_DEV_MINOR_MAX))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!proc[0])
		setup();
	fz_write_parts(proc, files, FZ_N(files), SEP, &data, &size);
	read_all();
	return 0;
}
