/* SPDX-License-Identifier: Apache-2.0 */
/* nvidia-installer's record (/var/lib/nvidia/log), the evidence for files
 * without a version string on .run hosts.  Promises: a refusal says why and
 * leaves an empty record; an accepted record has a valid version and only
 * absolute paths without "." or ".." components, each found in the input,
 * and every path it holds is found again by gs_nvinst_find. */
#include <stdio.h>

#include "../../stage/nvinst.h"
#include "fuzz_common.h"
#include "gs/version.h"

static bool clean(const char *p)
{
	return p[0] == '/' && !strstr(p, "/../") && !strstr(p, "/./") &&
	       strcmp(p + strlen(p) - (strlen(p) >= 3 ? 3 : 0), "/..") &&
	       strcmp(p + strlen(p) - (strlen(p) >= 2 ? 2 : 0), "/.");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fz_text(data, size), *copy = fz_text(data, size);
	struct gs_nvinst rec;
	struct gs_err err = GS_ERR_INIT;
	int r = gs_nvinst_parse(text, "log", &rec, &err);
	fz_refused(r, &err);
	if (r < 0 && (rec.present || rec.n_files || rec.version))
		abort();
	if (r >= 0 && (!rec.present || !gs_version_valid(rec.version) || !strstr(copy, rec.version)))
		abort();
	for (size_t i = 0; r >= 0 && i < rec.n_files; i++)
		if (!clean(rec.files[i].path) || !strstr(copy, rec.files[i].path) ||
		    !gs_nvinst_find(&rec, rec.files[i].path, NULL))
			abort();
	gs_nvinst_clear(&rec);
	free(text);
	free(copy);
	return 0;
}
