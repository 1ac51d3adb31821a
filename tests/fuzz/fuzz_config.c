/* SPDX-License-Identifier: Apache-2.0 */
/* /etc/gpu-stage/config.json (read by the hook, the shim and the CLI).
 * Promises: a refusal names its reason; an accepted file gives absolute
 * store and audit paths and a valid CDI vendor. */
#include "fuzz_common.h"
#include "gs/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_config c;
	struct gs_err err = GS_ERR_INIT;
	int r = gs_config_parse((const char *)data, size, "fuzz", &c, &err);
	fz_refused(r, &err);
	if (r < 0)
		return 0;
	if (!c.store || c.store[0] != '/' || !c.audit_log || c.audit_log[0] != '/' ||
	    !gs_cdi_vendor_valid(c.cdi_vendor))
		abort();
	gs_config_clear(&c);
	return 0;
}
