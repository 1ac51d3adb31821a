/* SPDX-License-Identifier: Apache-2.0 */
/* The image-side files the hook reads at container start, in a scratch
 * image root: the input's parts (split at "\n--next--\n") are the image's
 * lib/x86_64-linux-gnu/libc.so.6 (overlay/glibc.c: the GLIBC versions it
 * defines), its compat libcuda.so.999.1.1 and libnvidia-nvvm.so.999.1.1 in
 * usr/local/cuda/compat (overlay/compat.c), and a list of file names, one
 * a line, for the compat directory's chooser.  Promises: the image's libc
 * is read as gs_elf_inspect reads it; the notes are NUL-terminated within
 * their buffers; a compat set used starts with libcuda.so.1 and names only
 * files of the compat directory whose SONAME the container receives. */
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "gs/elfinfo.h"
#include "gs/ldcache.h"
#include "gs/overlay.h"

#define SEP "\n--next--\n"
#define COMPAT "/usr/local/cuda/compat"
#define X8664 (LDC_FLAG_ELF_LIBC6 | LDC_FLAG_X8664_LIB64)

static char img[128];
static const char *const files[] = {
	"lib/x86_64-linux-gnu/libc.so.6",
	"usr/local/cuda/compat/libcuda.so.999.1.1",
	"usr/local/cuda/compat/libnvidia-nvvm.so.999.1.1",
};

static void setup(void)
{
	static const char *const dirs[] = {"lib", "lib/x86_64-linux-gnu", "usr", "usr/local",
					   "usr/local/cuda", "usr/local/cuda/compat"};
	fz_mkdirs(img, sizeof(img), "img", dirs, FZ_N(dirs));
}

/* What gs_elf_inspect says the file defines (0: not a 64-bit x86-64 ELF). */
static uint32_t libc_def(int rootfd)
{
	int fd = openat(rootfd, files[0], O_RDONLY | O_CLOEXEC);
	struct gs_elf_info info;
	struct gs_err err = GS_ERR_INIT;
	uint32_t def = 0;
	if (fd >= 0 && gs_elf_inspect(fd, "libc", &info, &err) > 0) {
		def = info.elfclass == ELFCLASS64 && info.machine == EM_X86_64 ? info.glibc_def : 0;
		gs_elf_info_clear(&info);
	}
	if (fd >= 0)
		close(fd);
	return def;
}

static void glibc(int rootfd, struct ovl_op *op)
{
	uint32_t def = ovl_image_glibc(rootfd);
	if (def != libc_def(rootfd))
		abort(); /* the hook read the image's libc otherwise than the reader does */
	char why[384];
	bool left;
	memset(why, 'x', sizeof(why));
	ovl_glibc_note(op, def, why, sizeof(why), &left);
	if (!memchr(why, '\0', sizeof(why)))
		abort();
	bool any = false;
	for (size_t i = 0; i < op->n_entries; i++)
		any = any || ovl_glibc_left_out(&op->entries[i], def);
	if (any != left)
		abort(); /* the note says otherwise than the rule */
}

static void compat(int rootfd, const struct ovl_op *op)
{
	struct ovl_compat c = {0};
	int r = ovl_compat_find(rootfd, COMPAT, op, "535.261.03", &c);
	if (r < 0 || !memchr(c.why, '\0', sizeof(c.why)))
		abort();
	if (c.used && (c.n_libs < 1 || c.n_libs > 1 + OVL_COMPAT_MAX_LIBS ||
		       strcmp(c.libs[0].soname, "libcuda.so.1")))
		abort();
	for (size_t i = 0; c.used && i < c.n_libs; i++) {
		bool staged = false;
		for (size_t k = 0; k < op->n_entries; k++)
			staged = staged || !strcmp(op->entries[k].key, c.libs[i].soname);
		if (!staged || strncmp(c.libs[i].value, COMPAT "/", sizeof(COMPAT)) ||
		    strchr(c.libs[i].value + sizeof(COMPAT), '/') ||
		    ovl_compat_value(&c, c.libs[i].soname, X8664) == NULL)
			abort(); /* a library the container does not receive, or outside the directory */
	}
	ovl_compat_clear(&c);
}

static void pick(char *text)
{
	const char *names[64];
	size_t n = 0;
	for (char *p = text, *nl; p && n < 64; p = nl) {
		if ((nl = strchr(p, '\n')))
			*nl++ = '\0';
		names[n++] = p;
	}
	char why[512], ver[GS_VERSION_MAX + 1];
	size_t idx = SIZE_MAX;
	memset(why, 'x', sizeof(why));
	int r = ovl_compat_pick(names, n, COMPAT, "535.261.03", &idx, why, sizeof(why));
	if (!memchr(why, '\0', sizeof(why)))
		abort();
	if (r > 0 && (idx >= n || !ovl_compat_libcuda_version(names[idx], ver) ||
		      ovl_version_cmp(ver, "535.261.03") <= 0))
		abort(); /* a libcuda chosen that is not newer than the driver */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!img[0])
		setup();
	fz_write_parts(img, files, FZ_N(files), SEP, &data, &size);
	struct ovl_cache_entry entries[] = {
		{"libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", X8664, 0x022200},
		{"libnvidia-nvvm.so.4", "/usr/lib/x86_64-linux-gnu/libnvidia-nvvm.so.4", X8664, 0x022200},
		{"libnvidia-ml.so.1", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", X8664, 0x021100},
		{"libcuda.so.1", "/usr/lib/i386-linux-gnu/libcuda.so.1", LDC_FLAG_ELF_LIBC6, 0x022200},
	};
	struct ovl_op op = {.entries = entries, .n_entries = sizeof(entries) / sizeof(entries[0])};
	int rootfd = open(img, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		abort();
	glibc(rootfd, &op);
	compat(rootfd, &op);
	close(rootfd);
	char *text = fz_text(data, size);
	pick(text);
	free(text);
	return 0;
}
