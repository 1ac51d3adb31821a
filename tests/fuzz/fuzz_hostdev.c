/* SPDX-License-Identifier: Apache-2.0 */
/* The readers of what the NVIDIA modules publish for `gpu-stage devices`:
 * /proc/devices and the "Name: decimal" attribute files (params, MIG
 * capability files).  Promises: a refusal names its reason; accepted
 * majors and minors are in range (or -1: not loaded), a mode fits 07777. */
#include "fuzz_common.h"
#include "gs/hostdev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_err err = GS_ERR_INIT;
	struct ovl_nv_majors m;
	int r = ovl_proc_devices_parse((const char *)data, size, &m, &err);
	fz_refused(r, &err);
	const long long maj = OVL_DEV_MAJOR_MAX, min = OVL_DEV_MINOR_MAX;
	if (r >= 0 && (m.frontend < -1 || m.uvm < -1 || m.caps < -1 || m.frontend > maj ||
		       m.uvm > maj || m.caps > maj))
		abort();
	struct ovl_nv_attrs a;
	err = (struct gs_err)GS_ERR_INIT;
	r = ovl_nv_attrs_parse((const char *)data, size, &a, &err);
	fz_refused(r, &err);
	if (r >= 0 && (a.mode > 07777 || a.minor < -1 || a.minor > min))
		abort();
	return 0;
}
