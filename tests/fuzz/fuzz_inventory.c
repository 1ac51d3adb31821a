/* SPDX-License-Identifier: Apache-2.0 */
/* The device inventory (gs/inventory.h: written by gpu-stage devices
 * --inventory, read by the hook), as the file (first byte odd) or as the
 * helper's output.  Promises: a refusal names its reason; in an accepted
 * one every MIG device's parent is a listed GPU with MIG enabled, every
 * UUID has its prefix (a GPU's listed once), and each MIG UUID resolves on a host whose GPUs are
 * the inventory's to its own GI and CI. */
#include <strings.h>

#include "fuzz_common.h"
#include "gs/inventory.h"

static void check(const struct gs_inventory *inv)
{
	struct ovl_gpu host[OVL_MAX_GPUS];
	if (inv->n_gpus > OVL_MAX_GPUS || inv->n_migs > inv->n_gpus * GS_INV_MAX_MIG)
		abort();
	for (size_t i = 0; i < inv->n_gpus; i++) {
		if (inv->gpus[i].index != i || strncmp(inv->gpus[i].uuid, "GPU-", 4))
			abort();
		memset(&host[i], 0, sizeof(host[i]));
		memcpy(host[i].uuid, inv->gpus[i].uuid, strlen(inv->gpus[i].uuid) + 1);
		for (size_t j = 0; j < i; j++)
			if (!strcasecmp(host[j].uuid, host[i].uuid))
				abort();
		host[i].minor = (int)inv->gpus[i].minor;
	}
	for (size_t i = 0; i < inv->n_migs; i++) {
		const struct gs_inv_mig *m = &inv->migs[i];
		struct ovl_mig got;
		struct gs_err err = GS_ERR_INIT;
		if (strncmp(m->uuid, "MIG-", 4) || m->gpu_index >= inv->n_gpus ||
		    strcmp(inv->gpus[m->gpu_index].uuid, m->gpu_uuid) ||
		    strcmp(inv->gpus[m->gpu_index].mig_mode, "enabled"))
			abort();
		if (gs_inventory_mig_find(inv, "fuzz", inv->driver, host, inv->n_gpus, m->uuid, &got, &err) < 0)
			abort();
		if (strcasecmp(host[got.gpu].uuid, m->gpu_uuid) || got.gi != m->gi || got.ci != m->ci)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_inventory inv;
	struct gs_err err = GS_ERR_INIT;
	bool full = size > 0 && (data[0] & 1);
	int r = gs_inventory_parse((const char *)data + (size > 0), size - (size > 0), "fuzz", full, &inv, &err);
	fz_refused(r, &err);
	if (r < 0)
		return 0;
	if (full != (inv.nvml != NULL) || (full && inv.nvml[0] != '/'))
		abort();
	check(&inv);
	gs_inventory_clear(&inv);
	return 0;
}
