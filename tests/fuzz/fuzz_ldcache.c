/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer harness for the ld.so.cache reader: parse arbitrary bytes; when
 * they parse, exercise every accessor, sort, serialise and parse again (the
 * writer's output must always be readable and keep every entry). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gs/ldcache.h"

static int touch(const struct ldc_entry *e, void *data)
{
	*(size_t *)data += strlen(e->key) + strlen(e->value);
	return 0;
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
