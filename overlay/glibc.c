/* SPDX-License-Identifier: Apache-2.0 */
/* The glibc check at container start: a staged library that needs a newer
 * GLIBC_x.y than the image's libc.so.6 defines ("GLIBC_2.34 not found",
 * met only at run time) is left out of the refreshed ld.so.cache (its file
 * stays in the bound directory).  What each library needs was read at
 * staging time (the index's C lines); here only the image's libc is read,
 * and only when some staged 64-bit library needs more than GLIBC_2.17,
 * which every image a supported driver runs on has. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/elfinfo.h"
#include "gs/fsx.h"
#include "gs/ldcache.h"
#include "internal.h"

#define X8664 (LDC_FLAG_ELF_LIBC6 | LDC_FLAG_X8664_LIB64)

uint32_t ovl_glibc_needed(const struct ovl_op *o)
{
	uint32_t max = 0;
	for (size_t i = 0; i < o->n_entries; i++)
		if (o->entries[i].flags == X8664 && o->entries[i].glibc > max)
			max = o->entries[i].glibc;
	return max;
}

bool ovl_glibc_left_out(const struct ovl_cache_entry *e, uint32_t def)
{
	return def && e->flags == X8664 && e->glibc > def;
}

/* The highest GLIBC_x.y the image's 64-bit libc.so.6 at PATH defines; 0
 * when it is not there (or not a regular file, or no 64-bit ELF). */
static uint32_t libc_defines(int rootfd, const char *path)
{
	struct gs_err e = GS_ERR_INIT;
	_cleanup_close_ int pfd = gs_open_in_root(rootfd, path, O_PATH, &e);
	struct stat st;
	if (pfd < 0 || fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	_cleanup_close_ int fd = gs_reopen(pfd, O_RDONLY);
	struct gs_elf_info info;
	if (fd < 0 || gs_elf_inspect(fd, path, &info, &e) <= 0)
		return 0;
	uint32_t def = info.elfclass == ELFCLASS64 && info.machine == EM_X86_64 ? info.glibc_def : 0;
	gs_elf_info_clear(&info);
	return def;
}

uint32_t ovl_image_glibc(int rootfd)
{
	static const char *const paths[] = {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
					    "/lib64/libc.so.6", "/usr/lib64/libc.so.6"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		uint32_t def = libc_defines(rootfd, paths[i]);
		if (def)
			return def;
	}
	return 0;
}

/* Appends KEY (needing NEED) to the note unless it is there already. */
static void note_add(char *b, size_t size, size_t *n, size_t *more, const char *key, uint32_t need)
{
	char v[16], item[160];
	snprintf(item, sizeof(item), "%s%s (needs GLIBC_%s)", *n ? ", " : "", key,
		 gs_glibc_format(need, v, sizeof(v)));
	if (strstr(b, item + (*n ? 2 : 0)))
		return;
	size_t l = strlen(item);
	if (*n + l + 16 >= size) { /* room kept for ", and N more" */
		(*more)++;
		return;
	}
	memcpy(b + *n, item, l + 1);
	*n += l;
}

void ovl_glibc_note(const struct ovl_op *o, uint32_t def, char *why, size_t whylen, bool *left)
{
	char v[16], list[320] = "";
	size_t n = 0, more = 0;
	*left = false;
	if (!def) {
		snprintf(why, whylen, "no 64-bit glibc libc.so.6 in the image (static or musl): nothing left out");
		return;
	}
	for (size_t i = 0; i < o->n_entries; i++)
		if (ovl_glibc_left_out(&o->entries[i], def))
			note_add(list, sizeof(list), &n, &more, o->entries[i].key, o->entries[i].glibc);
	*left = n > 0;
	if (more)
		snprintf(list + n, sizeof(list) - n, ", and %zu more", more);
	snprintf(why, whylen, "image libc defines up to GLIBC_%s; %s%s", gs_glibc_format(def, v, sizeof(v)),
		 n ? "left out: " : "nothing left out", list);
}
