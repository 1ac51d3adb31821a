/* SPDX-License-Identifier: Apache-2.0 */
/* The mountinfo reader (the hook's view of the host's and the container's
 * mount tables).  Promises: a refusal names its reason; every accepted
 * entry has its strings (decoded, NUL-free) and a mount point that is an
 * absolute path. */
#include "fuzz_common.h"
#include "gs/mountinfo.h"

static int check(const struct gs_mountinfo *m, void *data)
{
	if (!m->root || !m->point || !m->fstype || !m->source || !m->superopts ||
	    m->point[0] != '/')
		abort();
	++*(size_t *)data;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0;
	struct gs_err err = GS_ERR_INIT;
	fz_refused(gs_mountinfo_each_text((const char *)data, size, "fuzz", check, &n, &err), &err);
	return 0;
}
