/* SPDX-License-Identifier: Apache-2.0 */
#include "gs/elfinfo.h"

#include <endian.h>
#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static int too_big(const char *name, const char *what, uint64_t size, uint64_t max,
		   struct gs_err *err)
{
	return gs_err_setx(err, EBADMSG, "%s: %s of %llu bytes (more than %llu: not read)", name, what,
			   (unsigned long long)size, (unsigned long long)max);
}

static int scan_dynamic(Elf *e, const GElf_Phdr *ph, const char *name, struct dynscan *d,
			struct gs_err *err)
{
	if (ph->p_filesz > GS_ELF_MAX_DYNAMIC)
		return too_big(name, "a dynamic segment", ph->p_filesz, GS_ELF_MAX_DYNAMIC, err);
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
	if (d->strsz > GS_ELF_MAX_STRTAB)
		return too_big(name, "a string table (DT_STRSZ)", d->strsz, GS_ELF_MAX_STRTAB, err);
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
	if (ph->p_filesz > GS_ELF_MAX_INTERP)
		return too_big(name, "a PT_INTERP", ph->p_filesz, GS_ELF_MAX_INTERP, err);
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
	if (phnum > GS_ELF_MAX_PHDRS)
		return gs_err_setx(err, EBADMSG, "%s: %zu program headers (more than %d: not read)", name,
				   phnum, GS_ELF_MAX_PHDRS);
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

/* ---- symbol versions (SHT_GNU_verneed, SHT_GNU_verdef) ---- */

bool gs_glibc_parse(const char *name, uint32_t *v)
{
	unsigned long part[3] = {0, 0, 0};
	size_t n = 0;
	if (strncmp(name, "GLIBC_", 6))
		return false;
	for (const char *p = name + 6;; p++) {
		if (*p < '0' || *p > '9' || n == 3)
			return false;
		char *end;
		part[n] = strtoul(p, &end, 10);
		if (end - p > 3 || part[n++] > 255)
			return false;
		p = end;
		if (!*p)
			break;
		if (*p != '.')
			return false;
	}
	if (n < 2)
		return false;
	*v = (uint32_t)(part[0] << 16 | part[1] << 8 | part[2]);
	return true;
}

const char *gs_glibc_format(uint32_t v, char *buf, size_t len)
{
	if (v & 0xff)
		snprintf(buf, len, "%u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
	else
		snprintf(buf, len, "%u.%u", v >> 16, (v >> 8) & 0xff);
	return buf;
}

/* Copies LEN bytes at OFF of the section's BUF (SIZE bytes) into OUT;
 * false when they are not all inside.  Verneed, Vernaux, Verdef and
 * Verdaux have the same layout in both ELF classes. */
static bool take(const char *buf, size_t size, uint64_t off, void *out, size_t len)
{
	if (off > size || size - off < len)
		return false;
	memcpy(out, buf + off, len);
	return true;
}

struct vsec {
	Elf *e;
	const char *name; /* the file, for messages */
	GElf_Shdr sh;
	const char *buf;
	size_t size;
	size_t *budget; /* entries left to read (GS_ELF_MAX_VERSIONS in all) */
};

/* The version string at OFF of the section's string table, or NULL with
 * ERR set. */
static const char *vstr(const struct vsec *v, uint64_t off, struct gs_err *err)
{
	const char *s = elf_strptr(v->e, v->sh.sh_link, off);
	if (!s)
		gs_err_elf(err, EBADMSG, "%s: version name %#llx outside its string table", v->name,
			   (unsigned long long)off);
	return s;
}

static int spend(const struct vsec *v, struct gs_err *err)
{
	if (*v->budget == 0)
		return gs_err_setx(err, EBADMSG, "%s: more than %d symbol version entries", v->name,
				   GS_ELF_MAX_VERSIONS);
	(*v->budget)--;
	return 0;
}

static int past_end(const struct vsec *v, const char *what, uint64_t off, struct gs_err *err)
{
	return gs_err_setx(err, EBADMSG, "%s: %s at %#llx past the end of its section (%zu bytes)", v->name,
			   what, (unsigned long long)off, v->size);
}

/* The versions one Verneed entry (at OFF) needs, into *NEED when its file
 * is libc.so.6. */
static int read_vernaux(const struct vsec *v, uint64_t off, const Elf64_Verneed *vn, uint32_t *need,
			struct gs_err *err)
{
	const char *file = vstr(v, vn->vn_file, err);
	if (!file)
		return -EBADMSG;
	bool libc = !strcmp(file, "libc.so.6");
	uint64_t a = off + vn->vn_aux;
	for (unsigned j = 0; j < vn->vn_cnt; j++) {
		Elf64_Vernaux va;
		if (spend(v, err) < 0)
			return -EBADMSG;
		if (!take(v->buf, v->size, a, &va, sizeof(va)))
			return past_end(v, "a Vernaux entry", a, err);
		const char *n = libc ? vstr(v, va.vna_name, err) : "";
		uint32_t ver;
		if (!n)
			return -EBADMSG;
		if (libc && gs_glibc_parse(n, &ver) && ver > *need)
			*need = ver;
		if (!va.vna_next)
			break;
		a += va.vna_next;
	}
	return 0;
}

static int read_verneed(const struct vsec *v, uint32_t *need, struct gs_err *err)
{
	uint64_t off = 0;
	for (uint64_t i = 0; i < v->sh.sh_info; i++) {
		Elf64_Verneed vn;
		if (spend(v, err) < 0)
			return -EBADMSG;
		if (!take(v->buf, v->size, off, &vn, sizeof(vn)))
			return past_end(v, "a Verneed entry", off, err);
		int r = read_vernaux(v, off, &vn, need, err);
		if (r < 0)
			return r;
		if (!vn.vn_next)
			break;
		off += vn.vn_next;
	}
	return 0;
}

static int read_verdef(const struct vsec *v, uint32_t *def, struct gs_err *err)
{
	uint64_t off = 0;
	for (uint64_t i = 0; i < v->sh.sh_info; i++) {
		Elf64_Verdef vd;
		Elf64_Verdaux va;
		if (spend(v, err) < 0)
			return -EBADMSG;
		if (!take(v->buf, v->size, off, &vd, sizeof(vd)))
			return past_end(v, "a Verdef entry", off, err);
		if (vd.vd_cnt && !(vd.vd_flags & VER_FLG_BASE)) {
			if (!take(v->buf, v->size, off + vd.vd_aux, &va, sizeof(va)))
				return past_end(v, "a Verdaux entry", off + vd.vd_aux, err);
			const char *n = vstr(v, va.vda_name, err);
			uint32_t ver;
			if (!n)
				return -EBADMSG;
			if (gs_glibc_parse(n, &ver) && ver > *def)
				*def = ver;
		}
		if (!vd.vd_next)
			break;
		off += vd.vd_next;
	}
	return 0;
}

/* glibc_need and glibc_def from the version sections, for a file of the
 * host's byte order (the sections' bytes are read as they are). */
static int scan_versions(Elf *e, const GElf_Ehdr *eh, const char *name, struct gs_elf_info *info,
			 struct gs_err *err)
{
	const unsigned char host = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;
	size_t budget = GS_ELF_MAX_VERSIONS;
	if (eh->e_ident[EI_DATA] != host)
		return 0;
	for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
		struct vsec v = {.e = e, .name = name, .budget = &budget};
		if (!gelf_getshdr(scn, &v.sh))
			return gs_err_elf(err, EBADMSG, "%s: section header", name);
		if (v.sh.sh_type != SHT_GNU_verneed && v.sh.sh_type != SHT_GNU_verdef)
			continue;
		if (v.sh.sh_size > GS_ELF_MAX_VERSECT)
			return too_big(name, "a symbol version section", v.sh.sh_size, GS_ELF_MAX_VERSECT, err);
		Elf_Data *d = elf_rawdata(scn, NULL);
		if (!d || (!d->d_buf && d->d_size))
			return gs_err_elf(err, EBADMSG, "%s: symbol version section", name);
		v.buf = d->d_buf;
		v.size = d->d_size;
		int r = v.sh.sh_type == SHT_GNU_verneed ? read_verneed(&v, &info->glibc_need, err)
							 : read_verdef(&v, &info->glibc_def, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static uint64_t field(const unsigned char *h, size_t off, size_t len)
{
	uint64_t v = 0;
	bool msb = h[EI_DATA] == ELFDATA2MSB;
	for (size_t i = 0; i < len; i++)
		v |= (uint64_t)h[off + (msb ? len - 1 - i : i)] << (8 * i);
	return v;
}

/* Before libelf sees FD: elf_begin allocates a structure per section
 * header the file claims (with extended numbering, up to its size / 64),
 * so the counts are checked first, from the ELF header.  0: not an ELF
 * file or within bounds (libelf then reads it); < 0: refused. */
static int check_counts(int fd, const char *name, struct gs_err *err)
{
	unsigned char h[sizeof(Elf64_Ehdr)];
	ssize_t n = pread(fd, h, sizeof(h), 0);
	if (n < (ssize_t)sizeof(Elf32_Ehdr) || memcmp(h, ELFMAG, SELFMAG) ||
	    (h[EI_CLASS] != ELFCLASS32 && h[EI_CLASS] != ELFCLASS64) ||
	    (h[EI_CLASS] == ELFCLASS64 && n < (ssize_t)sizeof(Elf64_Ehdr)))
		return 0;
	bool b64 = h[EI_CLASS] == ELFCLASS64;
	uint64_t shoff = b64 ? field(h, 40, 8) : field(h, 32, 4);
	uint64_t phnum = b64 ? field(h, 56, 2) : field(h, 44, 2);
	uint64_t shnum = b64 ? field(h, 60, 2) : field(h, 48, 2);
	if (phnum == PN_XNUM || (shnum == 0 && shoff != 0))
		return gs_err_setx(err, EBADMSG, "%s: extended section or program header numbering (not read)",
				   name);
	if (shnum > GS_ELF_MAX_SECTIONS)
		return gs_err_setx(err, EBADMSG, "%s: %llu section headers (more than %d: not read)", name,
				   (unsigned long long)shnum, GS_ELF_MAX_SECTIONS);
	return 0;
}

int gs_elf_inspect(int fd, const char *name, struct gs_elf_info *info, struct gs_err *err)
{
	memset(info, 0, sizeof(*info));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return gs_err_elf(err, EINVAL, "libelf initialisation");
	int r = check_counts(fd, name, err);
	if (r < 0)
		return r;
	__attribute__((cleanup(elf_endp))) Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF)
		return 0;
	GElf_Ehdr eh;
	if (!gelf_getehdr(e, &eh))
		return gs_err_elf(err, EBADMSG, "%s: ELF header", name);
	info->elfclass = gelf_getclass(e);
	info->machine = eh.e_machine;
	info->type = eh.e_type;
	r = scan_phdrs(e, name, info, err);
	if (r >= 0)
		r = scan_versions(e, &eh, name, info, err);
	if (r < 0) {
		gs_elf_info_clear(info);
		return r;
	}
	return 1;
}
