/* SPDX-License-Identifier: Apache-2.0 */
#include "gs/elfinfo.h"

#include <errno.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

struct dynscan {
	uint64_t strtab, strsz;
	bool has_strtab, has_strsz;
	uint64_t soname;
	bool has_soname;
	uint64_t needed[GS_ELF_MAX_NEEDED];
	size_t n_needed;
};

static void elf_endp(Elf **e)
{
	if (*e)
		elf_end(*e);
}

void gs_elf_info_clear(struct gs_elf_info *info)
{
	free(info->soname);
	free(info->interp);
	for (size_t i = 0; i < info->n_needed; i++)
		free(info->needed[i]);
	free(info->needed);
	memset(info, 0, sizeof(*info));
}

/* File offset of virtual address ADDR, through the PT_LOAD segments. */
static int vaddr_to_off(Elf *e, size_t phnum, uint64_t addr, uint64_t *off)
{
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (addr >= ph.p_vaddr && addr - ph.p_vaddr < ph.p_filesz) {
			*off = addr - ph.p_vaddr + ph.p_offset;
			return 0;
		}
	}
	return -1;
}

static int scan_dynamic(Elf *e, const GElf_Phdr *ph, const char *name, struct dynscan *d,
			struct gs_err *err)
{
	Elf_Data *data = elf_getdata_rawchunk(e, (int64_t)ph->p_offset, ph->p_filesz, ELF_T_DYN);
	if (!data)
		return gs_err_elf(err, EBADMSG, "%s: dynamic segment at %#llx+%#llx", name,
				  (unsigned long long)ph->p_offset, (unsigned long long)ph->p_filesz);
	size_t entsz = gelf_fsize(e, ELF_T_DYN, 1, EV_CURRENT);
	size_t n = entsz ? data->d_size / entsz : 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Dyn dyn;
		if (!gelf_getdyn(data, (int)i, &dyn))
			return gs_err_elf(err, EBADMSG, "%s: dynamic entry %zu", name, i);
		if (dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag == DT_STRTAB) {
			d->strtab = dyn.d_un.d_ptr;
			d->has_strtab = true;
		} else if (dyn.d_tag == DT_STRSZ) {
			d->strsz = dyn.d_un.d_val;
			d->has_strsz = true;
		} else if (dyn.d_tag == DT_SONAME) {
			d->soname = dyn.d_un.d_val;
			d->has_soname = true;
		} else if (dyn.d_tag == DT_NEEDED) {
			if (d->n_needed == GS_ELF_MAX_NEEDED)
				return gs_err_setx(err, EBADMSG, "%s: more than %d DT_NEEDED entries",
						   name, GS_ELF_MAX_NEEDED);
			d->needed[d->n_needed++] = dyn.d_un.d_val;
		}
	}
	return 0;
}

static int dup_str(const char *tab, uint64_t size, uint64_t off, const char *name,
		   const char *what, char **out, struct gs_err *err)
{
	if (off >= size)
		return gs_err_setx(err, EBADMSG, "%s: %s string offset %#llx outside the string table",
				   name, what, (unsigned long long)off);
	const char *nul = memchr(tab + off, '\0', size - off);
	if (!nul)
		return gs_err_setx(err, EBADMSG, "%s: %s string is not NUL-terminated", name, what);
	*out = strdup(tab + off);
	return *out ? 0 : gs_err_set(err, ENOMEM, "%s", name);
}

static int read_strings(Elf *e, size_t phnum, const char *name, const struct dynscan *d,
			struct gs_elf_info *info, struct gs_err *err)
{
	uint64_t off;
	if (!d->has_soname && d->n_needed == 0)
		return 0;
	if (!d->has_strtab || !d->has_strsz)
		return gs_err_setx(err, EBADMSG, "%s: dynamic section has no DT_STRTAB/DT_STRSZ", name);
	if (vaddr_to_off(e, phnum, d->strtab, &off) < 0)
		return gs_err_setx(err, EBADMSG, "%s: DT_STRTAB %#llx is in no loaded segment", name,
				   (unsigned long long)d->strtab);
	Elf_Data *tab = elf_getdata_rawchunk(e, (int64_t)off, d->strsz, ELF_T_BYTE);
	if (!tab)
		return gs_err_elf(err, EBADMSG, "%s: string table at %#llx+%#llx", name,
				  (unsigned long long)off, (unsigned long long)d->strsz);
	int r = 0;
	if (d->has_soname)
		r = dup_str(tab->d_buf, tab->d_size, d->soname, name, "DT_SONAME", &info->soname, err);
	if (r >= 0 && d->n_needed) {
		info->needed = calloc(d->n_needed, sizeof(char *));
		if (!info->needed)
			return gs_err_set(err, ENOMEM, "%s", name);
	}
	for (size_t i = 0; r >= 0 && i < d->n_needed; i++) {
		r = dup_str(tab->d_buf, tab->d_size, d->needed[i], name, "DT_NEEDED",
			    &info->needed[i], err);
		if (r >= 0)
			info->n_needed++;
	}
	return r;
}

static int read_interp(Elf *e, const GElf_Phdr *ph, const char *name, struct gs_elf_info *info,
		       struct gs_err *err)
{
	Elf_Data *data = elf_getdata_rawchunk(e, (int64_t)ph->p_offset, ph->p_filesz, ELF_T_BYTE);
	if (!data || data->d_size == 0)
		return gs_err_elf(err, EBADMSG, "%s: PT_INTERP", name);
	return dup_str(data->d_buf, data->d_size, 0, name, "PT_INTERP", &info->interp, err);
}

static int scan_phdrs(Elf *e, const char *name, struct gs_elf_info *info, struct gs_err *err)
{
	size_t phnum;
	struct dynscan d = {0};
	int r = 0;
	if (elf_getphdrnum(e, &phnum) != 0)
		return gs_err_elf(err, EBADMSG, "%s: program headers", name);
	for (size_t i = 0; r >= 0 && i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph))
			return gs_err_elf(err, EBADMSG, "%s: program header %zu", name, i);
		if (ph.p_type == PT_DYNAMIC && !info->dynamic) {
			info->dynamic = true;
			r = scan_dynamic(e, &ph, name, &d, err);
		} else if (ph.p_type == PT_INTERP && !info->interp) {
			r = read_interp(e, &ph, name, info, err);
		}
	}
	if (r >= 0)
		r = read_strings(e, phnum, name, &d, info, err);
	return r;
}

int gs_elf_inspect(int fd, const char *name, struct gs_elf_info *info, struct gs_err *err)
{
	memset(info, 0, sizeof(*info));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return gs_err_elf(err, EINVAL, "libelf initialisation");
	__attribute__((cleanup(elf_endp))) Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF)
		return 0;
	GElf_Ehdr eh;
	if (!gelf_getehdr(e, &eh))
		return gs_err_elf(err, EBADMSG, "%s: ELF header", name);
	info->elfclass = gelf_getclass(e);
	info->machine = eh.e_machine;
	info->type = eh.e_type;
	int r = scan_phdrs(e, name, info, err);
	if (r < 0) {
		gs_elf_info_clear(info);
		return r;
	}
	return 1;
}
