/* SPDX-License-Identifier: Apache-2.0 */
/* A musl image's /etc/ld-musl-x86_64.path as the hook rewrites it
 * (overlay/ldcache.c, ovl_musl_build): the input is the image's file, in
 * a scratch /etc.  Promises: a refusal names its reason; the new file is
 * LEN bytes of text, one directory a line, no line empty or twice, the
 * staged directories first in order, then only entries of the image's
 * file (split at ':' and newlines) that are not a stale one of ours. */
#include <sys/stat.h>

#include "../../overlay/internal.h"
#include "fuzz_common.h"
#include "gs/ldcache.h"

#define X8664 (LDC_FLAG_ELF_LIBC6 | LDC_FLAG_X8664_LIB64)

static char etc[128], path[160];

/* LINE (N bytes) is one of the entries of IMG. */
static bool image_entry(const char *img, size_t img_len, const char *line, size_t n)
{
	for (size_t p = 0; p < img_len;) {
		size_t m = p;
		while (m < img_len && img[m] != ':' && img[m] != '\n')
			m++;
		if (m - p == n && !memcmp(img + p, line, n))
			return true;
		p = m + 1;
	}
	return false;
}

static void check(const char *out, size_t len, const char *img, size_t img_len, const char *const *ours,
		  size_t n_ours)
{
	if (strlen(out) != len || (len && out[len - 1] != '\n'))
		abort(); /* not LEN bytes of lines */
	size_t k = 0;
	for (const char *p = out; p < out + len; k++) {
		size_t n = strcspn(p, "\n");
		if (!n)
			abort(); /* an empty line */
		for (const char *q = out; q < p; q += strcspn(q, "\n") + 1)
			if (strcspn(q, "\n") == n && !memcmp(q, p, n))
				abort(); /* a directory twice */
		if (k < n_ours ? (strlen(ours[k]) != n || memcmp(ours[k], p, n))
			       : (img_len && (!image_entry(img, img_len, p, n) ||
					      !strncmp(p, OVL_ANCHOR "/", strlen(OVL_ANCHOR) + 1))))
			abort(); /* not ours first, or not the image's */
		p += n + 1;
	}
	if (k < n_ours)
		abort(); /* a staged directory left out */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!etc[0]) {
		snprintf(etc, sizeof(etc), "%s/etc", fz_scratch());
		snprintf(path, sizeof(path), "%s/ld-musl-x86_64.path", etc);
		if (mkdir(etc, 0755) < 0)
			abort();
	}
	fz_write(path, data, size);
	struct ovl_cache_entry entries[] = {
		{"libcuda.so.1", OVL_ANCHOR "/lib/compute/libcuda.so.1", X8664, 0},
		{"libnvidia-ml.so.1", OVL_ANCHOR "/lib/utility/libnvidia-ml.so.1", X8664, 0},
		{"libcuda.so", OVL_ANCHOR "/lib/compute/libcuda.so", X8664, 0},
	};
	static const char *const ours[] = {OVL_ANCHOR "/lib/compute", OVL_ANCHOR "/lib/utility"};
	struct ovl_op op = {.type = OVL_OP_LDCACHE, .entries = entries, .n_entries = 3};
	int etcfd = open(etc, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (etcfd < 0)
		abort();
	char *out = NULL, why[512];
	size_t len = 0;
	struct gs_err err = GS_ERR_INIT;
	memset(why, 'x', sizeof(why));
	int r = ovl_musl_build(&op, etcfd, &out, &len, why, sizeof(why), &err);
	close(etcfd);
	fz_refused(r, &err);
	if (r >= 0) {
		if (!memchr(why, '\0', sizeof(why)))
			abort();
		check(out, len, (const char *)data, size, ours, 2);
		free(out);
	}
	return 0;
}
