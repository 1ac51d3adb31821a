/* SPDX-License-Identifier: Apache-2.0 */
/* What we need to know about an ELF file, read with libelf through the
 * program headers (as ld.so and ldconfig read it): class, machine, type,
 * SONAME, DT_NEEDED, PT_INTERP.  Lying files (offsets past the end, strings
 * without NUL, absurd counts or sizes) give EBADMSG, never a crash, and
 * nothing is read or allocated past the GS_ELF_MAX_* bounds. */
#ifndef GS_ELFINFO_H
#define GS_ELFINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs/err.h"

#define GS_ELF_MAX_NEEDED 256
#define GS_ELF_MAX_VERSIONS 4096 /* version entries (needs + defs) read, at most */
/* What one file may make us read or allocate (an image's file is as
 * hostile as its author: a multi-GB file of zeros costs a layer nothing);
 * real libraries are far below each (libcuda: ~40 sections, a dynamic
 * segment of a few hundred bytes, a string table of ~100 KB). */
#define GS_ELF_MAX_SECTIONS 4096        /* section headers; extended numbering refused */
#define GS_ELF_MAX_PHDRS 256            /* program headers */
#define GS_ELF_MAX_DYNAMIC (1u << 20)   /* PT_DYNAMIC bytes */
#define GS_ELF_MAX_STRTAB (16u << 20)   /* DT_STRSZ */
#define GS_ELF_MAX_VERSECT (4u << 20)   /* one SHT_GNU_verneed/verdef section */
#define GS_ELF_MAX_INTERP 4096          /* PT_INTERP */

/* A GLIBC_x.y[.z] version as one number (major << 16 | minor << 8 | patch,
 * each at most 255) that compares as the versions do; 0: none. */
#define GS_GLIBC(maj, min) ((uint32_t)(maj) << 16 | (uint32_t)(min) << 8)

struct gs_elf_info {
	int elfclass;  /* ELFCLASS32 / ELFCLASS64 */
	int machine;   /* EM_* */
	int type;      /* ET_* */
	bool dynamic;  /* has PT_DYNAMIC */
	char *soname;  /* NULL when absent */
	char *interp;  /* PT_INTERP, NULL when absent */
	char **needed; /* n_needed strings */
	size_t n_needed;
	/* From the section headers (SHT_GNU_verneed, SHT_GNU_verdef), files of
	 * the host's byte order only (else 0): the highest GLIBC_x.y this file
	 * needs of libc.so.6, and the highest GLIBC_x.y it defines (a libc). */
	uint32_t glibc_need, glibc_def;
};

/* Parses "GLIBC_2.34" / "GLIBC_2.2.5" into *V (GS_GLIBC); false for
 * anything else (GLIBC_PRIVATE, GLIBC_ABI_DT_RELR, a part above 255). */
bool gs_glibc_parse(const char *name, uint32_t *v);
/* "2.34", "2.2.5" into BUF (at least 12 bytes). */
const char *gs_glibc_format(uint32_t v, char *buf, size_t len);

/* Returns 1 and fills INFO for an ELF file, 0 when FD is not an ELF file at
 * all (INFO zeroed), or -code on a malformed ELF file.  FD is read with
 * pread only (never mmap'd), so a file shrinking underneath gives an error,
 * not SIGBUS.  NAME is for messages. */
int gs_elf_inspect(int fd, const char *name, struct gs_elf_info *info, struct gs_err *err);
void gs_elf_info_clear(struct gs_elf_info *info);

#endif
