/* SPDX-License-Identifier: Apache-2.0 */
/* What every libFuzzer harness here checks besides "no crash, no sanitizer
 * report": a refusal says why (a code and a message), as every error of
 * the project must.  A broken promise aborts, which libFuzzer reports as a
 * crash with the input that caused it. */
#ifndef GS_FUZZ_COMMON_H
#define GS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gs/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fz_refused(int r, const struct gs_err *err)
{
	if (r < 0 && (err->code <= 0 || err->msg[0] == '\0'))
		abort(); /* an error must name its reason */
}

/* DATA as a NUL-terminated string (the parsers that take text). */
static inline char *fz_text(const uint8_t *data, size_t size)
{
	char *t = malloc(size + 1);
	if (!t)
		abort();
	memcpy(t, data, size);
	t[size] = '\0';
	return t;
}

#endif
