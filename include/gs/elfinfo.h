/* SPDX-License-Identifier: Apache-2.0 */
/* What we need to know about an ELF file, read with libelf through the
 * program headers (as ld.so and ldconfig read it): class, machine, type,
 * SONAME, DT_NEEDED, PT_INTERP.  Lying files (offsets past the end, strings
 * without NUL, absurd counts) give EBADMSG, never a crash. */
#ifndef GS_ELFINFO_H
#define GS_ELFINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs/err.h"

#define GS_ELF_MAX_NEEDED 256

struct gs_elf_info {
	int elfclass;  /* ELFCLASS32 / ELFCLASS64 */
	int machine;   /* EM_* */
	int type;      /* ET_* */
	bool dynamic;  /* has PT_DYNAMIC */
	char *soname;  /* NULL when absent */
	char *interp;  /* PT_INTERP, NULL when absent */
	char **needed; /* n_needed strings */
	size_t n_needed;
};

/* Returns 1 and fills INFO for an ELF file, 0 when FD is not an ELF file at
 * all (INFO zeroed), or -code on a malformed ELF file.  FD is read with
 * pread only (never mmap'd), so a file shrinking underneath gives an error,
 * not SIGBUS.  NAME is for messages. */
int gs_elf_inspect(int fd, const char *name, struct gs_elf_info *info, struct gs_err *err);
void gs_elf_info_clear(struct gs_elf_info *info);

#endif
