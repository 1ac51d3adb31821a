/* SPDX-License-Identifier: Apache-2.0 */
/* The staging index (STORE/VER/index), read at every container start.
 * Promises: a refusal names its reason; an accepted index holds files
 * whose paths are relative and inside the version directory, and cache
 * entries that point at files of the index's directories. */
#include "fuzz_common.h"
#include "gs/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fz_text(data, size); /* the parser's from here on, freed with X or on error */
	struct gs_index *x = NULL;
	struct gs_err err = GS_ERR_INIT;
	int r = gs_index_parse(buf, size, "fuzz", &x, &err);
	fz_refused(r, &err);
	if (r >= 0) {
		for (size_t i = 0; i < x->n_files; i++) {
			const char *p = x->files[i].path;
			if (!p || p[0] == '/' || !strncmp(p, "../", 3) || strstr(p, "/../"))
				abort(); /* a path out of the version directory */
		}
		gs_index_free(x);
	}
	return 0;
}
