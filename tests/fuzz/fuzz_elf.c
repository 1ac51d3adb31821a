/* SPDX-License-Identifier: Apache-2.0 */
/* The ELF reader through libelf (every staging candidate; a lying file in
 * a hostile host root).  The input is a file (a memfd).  Promises: a
 * refusal names its reason; an accepted file has a known class and at
 * most GS_ELF_MAX_NEEDED needed libraries and GLIBC versions in range. */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "gs/elfinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	struct gs_elf_info info;
	struct gs_err err = GS_ERR_INIT;
	int r = gs_elf_inspect(fd, "fuzz", &info, &err);
	fz_refused(r, &err);
	if (r == 1) {
		if ((info.elfclass != 1 && info.elfclass != 2) || info.n_needed > GS_ELF_MAX_NEEDED ||
		    info.glibc_need > 0xffffff || info.glibc_def > 0xffffff)
			abort();
		gs_elf_info_clear(&info);
	}
	close(fd);
	return 0;
}
