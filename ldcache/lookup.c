/* SPDX-License-Identifier: Apache-2.0 */
/* Lookups the way ld.so does them, and flag descriptions the way
 * ldconfig -p prints them. */
#include <stdio.h>

#include "internal.h"

enum ldc_arch ldc_flags_arch(int32_t flags)
{
	switch (flags & LDC_FLAG_REQUIRED_MASK) {
	case LDC_FLAG_X8664_LIB64:
		return LDC_ARCH_X86_64;
	case LDC_FLAG_X8664_LIBX32:
		return LDC_ARCH_X32;
	case 0:
		return LDC_ARCH_I386;
	default:
		return LDC_ARCH_OTHER;
	}
}

static bool arch_ok(const struct ldc_entry *e, enum ldc_arch arch)
{
	return arch == LDC_ARCH_ANY || ldc_flags_arch(e->flags) == arch;
}

static const char *type_name(int32_t flags)
{
	static const char *const names[] = {"libc4", "ELF", "libc5", "libc6"};
	unsigned int t = (unsigned int)flags & LDC_FLAG_TYPE_MASK;
	return t < 4 ? names[t] : "unknown";
}

static const char *arch_suffix(int32_t flags)
{
	switch (flags & LDC_FLAG_REQUIRED_MASK) {
	case 0:
		return "";
	case LDC_FLAG_SPARC_LIB64:
	case LDC_FLAG_S390_LIB64:
	case LDC_FLAG_POWERPC_LIB64:
	case LDC_FLAG_MIPS64_LIBN64:
		return ",64bit";
	case LDC_FLAG_IA64_LIB64:
		return ",IA-64";
	case LDC_FLAG_X8664_LIB64:
		return ",x86-64";
	case LDC_FLAG_MIPS64_LIBN32:
		return ",N32";
	case LDC_FLAG_X8664_LIBX32:
		return ",x32";
	case LDC_FLAG_ARM_LIBHF:
		return ",hard-float";
	case LDC_FLAG_AARCH64_LIB64:
		return ",AArch64";
	case LDC_FLAG_ARM_LIBSF:
	case LDC_FLAG_RISCV_FLOAT_ABI_SOFT:
		return ",soft-float";
	case LDC_FLAG_MIPS_LIB32_NAN2008:
		return ",nan2008";
	case LDC_FLAG_MIPS64_LIBN32_NAN2008:
		return ",N32,nan2008";
	case LDC_FLAG_MIPS64_LIBN64_NAN2008:
		return ",64bit,nan2008";
	case LDC_FLAG_RISCV_FLOAT_ABI_DOUBLE:
		return ",double-float";
	default:
		return NULL;
	}
}

const char *ldc_flags_describe(int32_t flags, char *buf, size_t len)
{
	const char *suffix = arch_suffix(flags);
	if (suffix)
		snprintf(buf, len, "%s%s", type_name(flags), suffix);
	else
		snprintf(buf, len, "%s,%d", type_name(flags), flags & LDC_FLAG_REQUIRED_MASK);
	return buf;
}

static ssize_t first_match(const struct ldc_cache *c, size_t from, const char *key,
			   enum ldc_arch arch)
{
	for (size_t i = from; i < c->n && ldc_libcmp(key, c->entries[i].key) == 0; i++)
		if (arch_ok(&c->entries[i], arch))
			return (ssize_t)i;
	return -1;
}

ssize_t ldc_cache_find(const struct ldc_cache *c, const char *key, enum ldc_arch arch)
{
	if (!ldc_cache_is_sorted(c)) {
		for (size_t i = 0; i < c->n; i++)
			if (ldc_libcmp(key, c->entries[i].key) == 0 && arch_ok(&c->entries[i], arch))
				return (ssize_t)i;
		return -1;
	}
	/* keys are in descending ldc_libcmp order */
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = ldc_libcmp(key, c->entries[mid].key);
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return first_match(c, lo, key, arch);
}

int ldc_cache_foreach_prefix(const struct ldc_cache *c, const char *prefix, enum ldc_arch arch,
			     int (*fn)(const struct ldc_entry *e, void *data), void *data)
{
	size_t plen = strlen(prefix);
	for (size_t i = 0; i < c->n; i++) {
		const struct ldc_entry *e = &c->entries[i];
		if (strncmp(e->key, prefix, plen) != 0 || !arch_ok(e, arch))
			continue;
		int r = fn(e, data);
		if (r != 0)
			return r;
	}
	return 0;
}
