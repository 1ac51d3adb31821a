/* SPDX-License-Identifier: Apache-2.0 */
/* manifest.json, the record of truth (read by list, verify, diff, cdi and
 * the index rebuild).  Promises: a refusal names its reason; an accepted
 * manifest dumps to text that parses again to the same counts. */
#include "fuzz_common.h"
#include "gs/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_manifest *m = NULL;
	struct gs_err err = GS_ERR_INIT;
	int r = gs_manifest_parse((const char *)data, size, "fuzz", &m, NULL, &err);
	fz_refused(r, &err);
	if (r < 0)
		return 0;
	char *text = NULL;
	size_t len = 0;
	if (gs_manifest_dump(m, 0, &text, &len, &err) < 0)
		abort(); /* what was accepted can be written */
	struct gs_manifest *back = NULL;
	if (gs_manifest_parse(text, len, "fuzz-dumped", &back, NULL, &err) < 0 ||
	    back->n_files != m->n_files || back->n_links != m->n_links)
		abort(); /* and read back whole */
	gs_manifest_free(back);
	free(text);
	gs_manifest_free(m);
	return 0;
}
