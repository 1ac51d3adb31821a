/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer harness for the ld.so.cache reader: parse arbitrary bytes; when
 * they parse, exercise every accessor, sort, serialise and parse again (the
 * writer's output must always be readable and keep every entry), and
 * splice staged entries in as the hook does: the spliced file must read
 * back with exactly the entries the general path gives, in its order. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gs/ldcache.h"

static int touch(const struct ldc_entry *e, void *data)
{
	*(size_t *)data += strlen(e->key) + strlen(e->value);
	return 0;
}

static const struct ldc_entry staged[] = {
	{"libcuda.so.1", "/run/gpu-stage/lib/compute/libcuda.so.1", 0x0303, 0, 0, NULL},
	{"libnvidia-ml.so.1", "/run/gpu-stage/lib/utility/libnvidia-ml.so.1", 0x0303, 0, 0, NULL},
	{"libz.so.1", "/run/gpu-stage/lib/compute/libz-other.so.1", 0x0003, 0, 0, NULL},
};
#define N_STAGED (sizeof(staged) / sizeof(staged[0]))

static struct ldc_cache *staged_cache(void)
{
	struct gs_err err = GS_ERR_INIT;
	struct ldc_cache *a = NULL;
	if (ldc_cache_new(&a, &err) < 0)
		abort();
	for (size_t i = 0; i < N_STAGED; i++)
		if (ldc_cache_add(a, &staged[i], &err) < 0)
			abort();
	ldc_cache_sort(a);
	return a;
}

static bool same(const struct ldc_entry *x, const struct ldc_entry *y)
{
	return !strcmp(x->key, y->key) && !strcmp(x->value, y->value) && x->flags == y->flags &&
	       x->hwcap == y->hwcap && x->osversion == y->osversion;
}

/* C as parsed from DATA (unsorted, untouched): splice, then compare with
 * the general path. */
static void check_splice(const uint8_t *data, size_t size, const struct ldc_cache *c)
{
	struct gs_err err = GS_ERR_INIT;
	struct ldc_cache *add = staged_cache(), *back = NULL, *want = NULL, *img = NULL;
	void *buf = NULL, *wbuf = NULL;
	size_t len = 0, wlen = 0;
	int r = ldc_cache_splice(c, add, "fuzz", &buf, &len, &err);
	if (r == 0) {
		if (ldc_cache_parse(buf, len, "fuzz-spliced", &back, &err) < 0 ||
		    ldc_cache_parse(data, size, "fuzz", &img, &err) < 0 ||
		    ldc_cache_append(add, img, &err) < 0)
			abort(); /* what we splice must read back */
		ldc_cache_sort(add);
		if (ldc_cache_serialize(add, "fuzz", &wbuf, &wlen, &err) < 0 ||
		    ldc_cache_parse(wbuf, wlen, "fuzz-general", &want, &err) < 0 ||
		    ldc_cache_count(back) != ldc_cache_count(want))
			abort();
		for (size_t i = 0; i < ldc_cache_count(want); i++)
			if (!same(ldc_cache_entry(back, i), ldc_cache_entry(want, i)))
				abort(); /* the splice and the general path disagree */
	} else if (r < 0 && (err.code != EFBIG || buf)) {
		abort();
	}
	free(buf);
	free(wbuf);
	ldc_cache_free(back);
	ldc_cache_free(want);
	ldc_cache_free(img);
	ldc_cache_free(add);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_err err = GS_ERR_INIT;
	struct ldc_cache *c = NULL;
	if (ldc_cache_parse(data, size, "fuzz", &c, &err) < 0) {
		if (err.code <= 0 || err.msg[0] == '\0')
			abort(); /* every failure must say why */
		return 0;
	}
	size_t sum = 0;
	char desc[64];
	for (size_t i = 0; i < ldc_cache_count(c); i++) {
		const struct ldc_entry *e = ldc_cache_entry(c, i);
		ldc_flags_describe(e->flags, desc, sizeof(desc));
		(void)ldc_cache_find(c, e->key, ldc_flags_arch(e->flags));
	}
	ldc_cache_foreach_prefix(c, "lib", LDC_ARCH_ANY, touch, &sum);
	check_splice(data, size, c);
	ldc_cache_sort(c);
	void *buf = NULL;
	size_t len = 0;
	if (ldc_cache_serialize(c, "fuzz", &buf, &len, &err) == 0) {
		struct ldc_cache *back = NULL;
		if (ldc_cache_parse(buf, len, "fuzz-rewritten", &back, &err) < 0 ||
		    ldc_cache_count(back) != ldc_cache_count(c) || !ldc_cache_is_sorted(back))
			abort(); /* our own output must read back whole and sorted */
		ldc_cache_free(back);
		free(buf);
	}
	ldc_cache_free(c);
	return 0;
}
