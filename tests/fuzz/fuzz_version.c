/* SPDX-License-Identifier: Apache-2.0 */
/* The one reader of the loaded module's version (/proc/driver/nvidia/
 * version and /sys/module/nvidia/version) and the one validator.
 * Promise: what the reader returns is a valid version, never longer than
 * GS_VERSION_MAX, and it is found in the input. */
#include "fuzz_common.h"
#include "gs/version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fz_text(data, size);
	for (int proc = 0; proc <= 1; proc++) {
		char buf[GS_VERSION_MAX + 1];
		if (!gs_kmod_version_parse(text, proc, buf))
			continue;
		if (!gs_version_valid(buf) || strlen(buf) > GS_VERSION_MAX || !strstr(text, buf))
			abort();
	}
	(void)gs_version_valid(text);
	free(text);
	return 0;
}
