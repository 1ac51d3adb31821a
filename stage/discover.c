/* SPDX-License-Identifier: Apache-2.0 */
/* Discovery: the exact file set of one driver version under a host root.
 *
 * Where to look: the root's ld.so.cache (x86-64 and i386 entries whose keys
 * match the capability tables below), the directories those entries resolve
 * to (inside the root: Debian's alternatives chains are absolute links), and
 * the --libdir directories.
 *
 * What belongs to VER (the rule per file, also in the README):
 *  - versioned libraries: the resolved file name is exactly PREFIX.VER
 *    (libcuda.so.535.261.03); files of any other version are never taken;
 *  - unversioned libraries (libnvidia-api.so.1): the file contains the
 *    string VER, or it sits in a directory that holds VER's libraries and
 *    no other version's;
 *  - own-version libraries (EGL external platforms): the one the cache
 *    resolves to, kept only when VER's graphics libraries are staged;
 *  - executables: found on the root's PATH or in the distribution's driver
 *    folder, and containing the string VER, or -- for those that carry no
 *    version -- vouched for by the dpkg database or nvidia-installer's
 *    record, or by the folder rule where no record knows VER
 *    (discover_records.c);
 *  - firmware: /lib/firmware/nvidia/VER/, ELF files for RISC-V only;
 *  - configuration files (ICD / vendor JSON): they name a library staged
 *    for VER; nvoptix.bin when libnvoptix is staged.
 * ELF class and machine decide x86-64 (lib/) vs i386 (lib32/). */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discover_internal.h"
#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/elfinfo.h"
#include "gs/ldcache.h"

#ifndef EM_RISCV
#define EM_RISCV 243
#endif

#define CAPS_ALWAYS (GS_CAP_ALL & ~GS_CAP_COMPAT32)

/* ---- the capability tables (the one place they live) --------------------- */

const struct lib_spec gs_lib_table[] = {
	{"libnvidia-ml.so", GS_CAP_UTILITY, RULE_VERSIONED, true},
	{"libnvidia-cfg.so", GS_CAP_UTILITY, RULE_VERSIONED, false},
	{"libnvidia-nscq.so", GS_CAP_UTILITY, RULE_VERSIONED, false},
	{"libcuda.so", GS_CAP_COMPUTE, RULE_VERSIONED, true},
	{"libcudadebugger.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-opencl.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-gpucomp.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-ptxjitcompiler.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-fatbinaryloader.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-allocator.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-compiler.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-pkcs11.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-pkcs11-openssl3.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-nvvm.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libnvidia-tileiras.so", GS_CAP_COMPUTE, RULE_VERSIONED, false},
	{"libvdpau_nvidia.so", GS_CAP_VIDEO, RULE_VERSIONED, false},
	{"libnvidia-encode.so", GS_CAP_VIDEO, RULE_VERSIONED, true},
	{"libnvidia-opticalflow.so", GS_CAP_VIDEO, RULE_VERSIONED, false},
	{"libnvcuvid.so", GS_CAP_VIDEO, RULE_VERSIONED, true},
	{"libnvidia-eglcore.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-glcore.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-tls.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-glsi.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-fbc.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-ifr.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-rtcore.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvoptix.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libGLX_nvidia.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libEGL_nvidia.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libGLESv2_nvidia.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libGLESv1_CM_nvidia.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-glvkspirv.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-cbl.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-vulkan-producer.so", GS_CAP_GRAPHICS, RULE_VERSIONED, false},
	{"libnvidia-api.so", GS_CAP_GRAPHICS, RULE_UNVERSIONED, false},
	{"libnvidia-egl-wayland.so", GS_CAP_GRAPHICS, RULE_OWN_VERSION, false},
	{"libnvidia-egl-gbm.so", GS_CAP_GRAPHICS, RULE_OWN_VERSION, false},
	{"libnvidia-ngx.so", GS_CAP_NGX, RULE_VERSIONED, false},
};
const size_t gs_lib_table_len = sizeof(gs_lib_table) / sizeof(gs_lib_table[0]);

static const struct {
	const char *name;
	unsigned int cap;
} bin_table[] = {
	{"nvidia-smi", GS_CAP_UTILITY},
	{"nvidia-debugdump", GS_CAP_UTILITY},
	{"nvidia-persistenced", GS_CAP_UTILITY},
	{"nv-fabricmanager", GS_CAP_UTILITY},
	{"nvidia-cuda-mps-control", GS_CAP_COMPUTE},
	{"nvidia-cuda-mps-server", GS_CAP_COMPUTE},
};

static const char *const bin_dirs[] = {
	"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
	"/usr/lib/nvidia/current", /* Debian's driver folder */
};

static const struct {
	const char *path;
	unsigned int cap;
} config_table[] = {
	{"/usr/share/vulkan/icd.d/nvidia_icd.json", GS_CAP_GRAPHICS},
	{"/etc/vulkan/icd.d/nvidia_icd.json", GS_CAP_GRAPHICS},
	{"/usr/share/vulkan/implicit_layer.d/nvidia_layers.json", GS_CAP_GRAPHICS},
	{"/etc/vulkan/implicit_layer.d/nvidia_layers.json", GS_CAP_GRAPHICS},
	{"/usr/share/glvnd/egl_vendor.d/10_nvidia.json", GS_CAP_GRAPHICS},
	{"/etc/glvnd/egl_vendor.d/10_nvidia.json", GS_CAP_GRAPHICS},
	{"/etc/OpenCL/vendors/nvidia.icd", GS_CAP_COMPUTE},
	{"/usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json", GS_CAP_GRAPHICS},
	{"/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json", GS_CAP_GRAPHICS},
};

static const char *const base_libs[] = {
	"libc.so.6",    "libm.so.6",       "libdl.so.2",           "libpthread.so.0",
	"librt.so.1",   "libgcc_s.so.1",   "ld-linux-x86-64.so.2", "ld-linux.so.2",
	"libutil.so.1", "libresolv.so.2",  "libanl.so.1", /* the rest of glibc */
};

/* ---- helpers --------------------------------------------------------------- */

const struct lib_spec *gs_disc_spec_for_key(const char *key)
{
	for (size_t i = 0; i < gs_lib_table_len; i++) {
		size_t n = strlen(gs_lib_table[i].prefix);
		if (!strncmp(key, gs_lib_table[i].prefix, n) && (key[n] == '.' || key[n] == '\0'))
			return &gs_lib_table[i];
	}
	return NULL;
}

int gs_disc_warn(struct disc *d, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	char **v = n >= 0 ? realloc(d->plan->warnings, (d->plan->n_warnings + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(s);
		return -ENOMEM;
	}
	d->plan->warnings = v;
	v[d->plan->n_warnings++] = s;
	return 0;
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static bool has_link(const struct gs_manifest *p, const char *path)
{
	for (size_t i = 0; i < p->n_links; i++)
		if (!strcmp(p->links[i].path, path))
			return true;
	return false;
}

static int add_link(struct disc *d, const char *dir, const char *name, const char *target)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	if (has_link(d->plan, path) || !strcmp(name, target))
		return 0;
	_cleanup_free_ char *copy = strdup(target);
	if (!copy)
		return -ENOMEM;
	struct gs_link *v = realloc(d->plan->links, (d->plan->n_links + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	d->plan->links = v;
	v[d->plan->n_links].path = steal_ptr(&path);
	v[d->plan->n_links].target = steal_ptr(&copy);
	d->plan->n_links++;
	return 0;
}

static const struct gs_file *find_source(const struct gs_manifest *p, const char *source)
{
	for (size_t i = 0; i < p->n_files; i++)
		if (!strcmp(p->files[i].source, source))
			return &p->files[i];
	return NULL;
}

/* Appends a file; takes ownership of SOURCE and of INFO's soname/needed. */
static int add_file(struct disc *d, const char *path, char *source, enum gs_kind kind,
		    unsigned int caps, const struct stat *st, struct gs_elf_info *info,
		    const char *evidence)
{
	struct gs_file *v = realloc(d->plan->files, (d->plan->n_files + 1) * sizeof(*v));
	if (!v) {
		free(source);
		return -ENOMEM;
	}
	d->plan->files = v;
	struct gs_file *f = &v[d->plan->n_files++];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	f->evidence = strdup(evidence);
	f->source = source;
	f->kind = kind;
	f->caps = caps;
	f->mode = kind == GS_KIND_BIN ? 0555 : 0444;
	f->size = (uint64_t)st->st_size;
	f->src_dev = (uint64_t)st->st_dev;
	f->src_ino = (uint64_t)st->st_ino;
	f->src_mtime_ns = gs_mtime_ns(st);
	if (info) {
		f->soname = steal_ptr(&info->soname);
		f->needed = steal_ptr(&info->needed);
		f->n_needed = info->n_needed;
		info->n_needed = 0;
		f->glibc = info->glibc_need;
	}
	return f->path && f->evidence ? 0 : -ENOMEM;
}

static const char *cap_dir(unsigned int cap)
{
	static char buf[32];
	return gs_caps_format(cap & ~GS_CAP_COMPAT32, buf, sizeof(buf));
}

/* ---- libraries --------------------------------------------------------------- */

int gs_disc_open_regular(struct disc *d, const char *path, char **resolved, struct stat *st)
{
	struct gs_err ignored = GS_ERR_INIT;
	int fd = gs_root_open_file(&d->root, path, O_RDONLY | O_NONBLOCK, resolved, &ignored);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		free(*resolved);
		*resolved = NULL;
		return -1;
	}
	return fd;
}

static int lib_kind(const struct gs_elf_info *info, enum gs_kind *kind)
{
	if (!info->dynamic)
		return -1;
	if (info->machine == EM_X86_64 && info->elfclass == ELFCLASS64)
		*kind = GS_KIND_LIB;
	else if (info->machine == EM_386 && info->elfclass == ELFCLASS32)
		*kind = GS_KIND_LIB32;
	else
		return -1;
	return 0;
}

int gs_disc_add_lib(struct disc *d, const char *path, const struct lib_spec *spec,
		    const char *evidence)
{
	_cleanup_free_ char *resolved = NULL;
	struct stat st;
	_cleanup_close_ int fd = gs_disc_open_regular(d, path, &resolved, &st);
	if (fd < 0 || find_source(d->plan, resolved))
		return 0;
	struct gs_elf_info info;
	struct gs_err err = GS_ERR_INIT;
	enum gs_kind kind;
	int r = gs_elf_inspect(fd, resolved, &info, &err);
	if (r <= 0)
		return r < 0 ? gs_disc_warn(d, "%s: not staged: %s", resolved, err.msg) : 0;
	if (lib_kind(&info, &kind) < 0) {
		gs_elf_info_clear(&info);
		return 0;
	}
	unsigned int caps = spec->cap | (kind == GS_KIND_LIB32 ? GS_CAP_COMPAT32 : 0);
	if ((spec->cap & d->o->caps) == 0 || (kind == GS_KIND_LIB32 && !(d->o->caps & GS_CAP_COMPAT32))) {
		gs_elf_info_clear(&info);
		return 0;
	}
	_cleanup_free_ char *dir = NULL, *staged = NULL;
	if (asprintf(&dir, "%s/%s", kind == GS_KIND_LIB ? "lib" : "lib32", cap_dir(spec->cap)) < 0 ||
	    asprintf(&staged, "%s/%s", dir, base(resolved)) < 0) {
		gs_elf_info_clear(&info);
		return -ENOMEM;
	}
	_cleanup_free_ char *soname = info.soname ? strdup(info.soname) : NULL;
	r = add_file(d, staged, steal_ptr(&resolved), kind, caps, &st, &info, evidence);
	gs_elf_info_clear(&info);
	if (r >= 0 && soname)
		r = add_link(d, dir, soname, base(staged));
	if (r >= 0 && soname && spec->devlink)
		r = add_link(d, dir, spec->prefix, soname);
	return r;
}

/* ---- the candidate directories ------------------------------------------------ */

int gs_disc_note_dir(struct disc *d, const char *dir)
{
	for (size_t i = 0; i < d->n_dirs; i++)
		if (!strcmp(d->dirs[i].path, dir))
			return 0;
	struct dirinfo *v = realloc(d->dirs, (d->n_dirs + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	d->dirs = v;
	memset(&v[d->n_dirs], 0, sizeof(v[0]));
	v[d->n_dirs].path = strdup(dir);
	return v[d->n_dirs++].path ? 0 : -ENOMEM;
}

int gs_disc_note_version(struct disc *d, const char *ver, const char *what)
{
	for (size_t i = 0; i < d->n_versions; i++)
		if (!strcmp(d->versions[i].ver, ver)) {
			d->versions[i].count++;
			return 0;
		}
	struct verseen *v = realloc(d->versions, (d->n_versions + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	d->versions = v;
	v[d->n_versions] = (struct verseen){strdup(ver), 1, strdup(what)};
	return v[d->n_versions++].ver ? 0 : -ENOMEM;
}

DIR *gs_disc_opendir(struct disc *d, const char *path)
{
	struct gs_err ignored = GS_ERR_INIT;
	int fd = gs_root_open_file(&d->root, path, O_RDONLY | O_DIRECTORY, NULL, &ignored);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir && fd >= 0)
		close(fd);
	return dir;
}

/* Looks at every file of one directory for PREFIX.VER names. */
static int scan_dir(struct disc *d, struct dirinfo *di)
{
	_cleanup_closedir_ DIR *dir = gs_disc_opendir(d, di->path);
	if (!dir)
		return 0;
	struct dirent *de;
	int r = 0;
	while (r >= 0 && (de = readdir(dir)) != NULL) {
		const struct lib_spec *spec = gs_disc_spec_for_key(de->d_name);
		const char *v = gs_name_version(de->d_name);
		if (!spec || spec->rule != RULE_VERSIONED || !v ||
		    strlen(spec->prefix) != (size_t)(v - de->d_name) - 1)
			continue;
		r = gs_disc_note_version(d, v, de->d_name);
		if (r < 0 || strcmp(v, d->ver) != 0) {
			di->has_other |= strcmp(v, d->ver) != 0;
			continue;
		}
		di->has_ver = true;
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/%s", di->path, de->d_name) < 0)
			return -ENOMEM;
		r = gs_disc_add_lib(d, path, spec, "name");
	}
	return r;
}

int gs_disc_scan_dirs(struct disc *d)
{
	/* The VDPAU driver lives in the vdpau/ subfolder of a library folder
	 * (where libvdpau looks for it), which no ld.so.conf names. */
	size_t n = d->n_dirs;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *sub = NULL;
		if (asprintf(&sub, "%s/vdpau", d->dirs[i].path) < 0 || gs_disc_note_dir(d, sub) < 0)
			return -ENOMEM;
	}
	int r = 0;
	for (size_t i = 0; r >= 0 && i < d->n_dirs; i++)
		r = scan_dir(d, &d->dirs[i]);
	return r;
}

/* ---- executables, firmware, configuration --------------------------------- */

/* The evidence for an executable: its bytes carry VER, or a record of
 * installed files (dpkg, nvidia-installer) vouches for it, or -- when no
 * record knows VER at all -- the folder rule.  1 with *EVIDENCE, 0 when it
 * is left out (after a warning that says why). */
static int bin_evidence(struct disc *d, int fd, const char *resolved, const char *path,
			char **evidence)
{
	struct gs_err err = GS_ERR_INIT;
	if (gs_fd_contains(fd, d->ver, &err) > 0) {
		*evidence = strdup("content");
		return *evidence ? 1 : -ENOMEM;
	}
	int r = gs_disc_records(d, fd, resolved, path, evidence);
	if (r != REC_NONE)
		return r == REC_VER ? 1 : r < 0 ? r : 0;
	if (gs_disc_records_know_ver(d))
		return gs_disc_warn(d,
			    "%s: not staged: it does not carry version %s, and neither an installed "
			    "package nor nvidia-installer's record of %s lists it",
			    resolved, d->ver, d->ver);
	return gs_disc_bin_folder(d, resolved, evidence);
}

static int add_bin(struct disc *d, const char *name, unsigned int cap)
{
	for (size_t i = 0; i < sizeof(bin_dirs) / sizeof(bin_dirs[0]); i++) {
		_cleanup_free_ char *path = NULL, *resolved = NULL, *evidence = NULL, *staged = NULL;
		struct stat st;
		if (asprintf(&path, "%s/%s", bin_dirs[i], name) < 0)
			return -ENOMEM;
		_cleanup_close_ int fd = gs_disc_open_regular(d, path, &resolved, &st);
		if (fd < 0)
			continue;
		int r = bin_evidence(d, fd, resolved, path, &evidence);
		if (r <= 0 || find_source(d->plan, resolved))
			return r < 0 ? r : 0;
		if (asprintf(&staged, "bin/%s/%s", cap_dir(cap), name) < 0)
			return -ENOMEM;
		return add_file(d, staged, steal_ptr(&resolved), GS_KIND_BIN, cap, &st, NULL, evidence);
	}
	return 0;
}

static int add_firmware_dir(struct disc *d, const char *dirpath)
{
	_cleanup_closedir_ DIR *dir = gs_disc_opendir(d, dirpath);
	if (!dir)
		return 0;
	struct dirent *de;
	int r = 0;
	while (r >= 0 && (de = readdir(dir)) != NULL) {
		_cleanup_free_ char *path = NULL, *resolved = NULL, *staged = NULL;
		struct stat st;
		if (de->d_name[0] == '.' || asprintf(&path, "%s/%s", dirpath, de->d_name) < 0)
			continue;
		_cleanup_close_ int ffd = gs_disc_open_regular(d, path, &resolved, &st);
		struct gs_elf_info info;
		struct gs_err err = GS_ERR_INIT;
		if (ffd < 0 || find_source(d->plan, resolved) || gs_elf_inspect(ffd, path, &info, &err) <= 0)
			continue;
		bool riscv = info.machine == EM_RISCV;
		gs_elf_info_clear(&info);
		if (riscv && asprintf(&staged, "firmware/%s", de->d_name) >= 0)
			r = add_file(d, staged, steal_ptr(&resolved), GS_KIND_FIRMWARE, CAPS_ALWAYS, &st, NULL,
				     "firmware-folder");
	}
	return r;
}

static int add_firmware(struct disc *d)
{
	static const char *const roots[] = {"/lib/firmware/nvidia", "/usr/lib/firmware/nvidia"};
	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *dir = NULL;
		if (asprintf(&dir, "%s/%s", roots[i], d->ver) < 0)
			return -ENOMEM;
		int r = add_firmware_dir(d, dir);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Whether TEXT names a library staged for this driver. */
static bool names_staged_lib(const struct gs_manifest *p, const char *text)
{
	for (size_t i = 0; i < p->n_files; i++) {
		const struct gs_file *f = &p->files[i];
		if (f->kind != GS_KIND_LIB && f->kind != GS_KIND_LIB32)
			continue;
		if ((f->soname && strstr(text, f->soname)) || strstr(text, base(f->path)))
			return true;
	}
	return false;
}

static const struct gs_file *staged_by_prefix(const struct gs_manifest *p, const char *prefix)
{
	for (size_t i = 0; i < p->n_files; i++)
		if (p->files[i].soname && gs_disc_spec_for_key(p->files[i].soname) &&
		    !strncmp(p->files[i].soname, prefix, strlen(prefix)))
			return &p->files[i];
	return NULL;
}

static int add_config(struct disc *d, const char *path, unsigned int cap, bool text)
{
	_cleanup_free_ char *resolved = NULL, *staged = NULL, *content = NULL;
	struct stat st;
	if (!(d->o->caps & cap))
		return 0;
	_cleanup_close_ int fd = gs_disc_open_regular(d, path, &resolved, &st);
	if (fd < 0 || find_source(d->plan, resolved))
		return 0;
	if (text) {
		struct gs_err ignored = GS_ERR_INIT;
		if (gs_root_read_text(&d->root, resolved, 1 << 16, &content, &ignored) < 0)
			return gs_disc_warn(d, "%s: not staged: %s", resolved, ignored.msg);
		if (!names_staged_lib(d->plan, content))
			return gs_disc_warn(d, "%s: not staged: it names no library of driver %s", resolved, d->ver);
	}
	if (asprintf(&staged, "config%s", path) < 0)
		return -ENOMEM;
	return add_file(d, staged, steal_ptr(&resolved), GS_KIND_CONFIG, cap, &st, NULL,
			text ? "names-staged-library" : "companion");
}

static int add_configs(struct disc *d)
{
	int r = 0;
	for (size_t i = 0; r >= 0 && i < sizeof(config_table) / sizeof(config_table[0]); i++)
		r = add_config(d, config_table[i].path, config_table[i].cap, true);
	if (r >= 0 && staged_by_prefix(d->plan, "libnvoptix.so"))
		r = add_config(d, "/usr/share/nvidia/nvoptix.bin", GS_CAP_GRAPHICS, false);
	return r;
}

int gs_disc_add_extras(struct disc *d)
{
	int r = 0;
	for (size_t i = 0; r >= 0 && i < sizeof(bin_table) / sizeof(bin_table[0]); i++)
		if (bin_table[i].cap & d->o->caps)
			r = add_bin(d, bin_table[i].name, bin_table[i].cap);
	if (r >= 0)
		r = add_firmware(d);
	if (r >= 0)
		r = add_configs(d);
	return r;
}

/* ---- completeness ------------------------------------------------------------ */

static bool needed_ok(const struct gs_manifest *p, const struct gs_file *f, const char *need)
{
	for (size_t i = 0; i < sizeof(base_libs) / sizeof(base_libs[0]); i++)
		if (!strcmp(need, base_libs[i]))
			return true;
	for (size_t i = 0; i < p->n_files; i++)
		if (p->files[i].kind == f->kind && p->files[i].soname &&
		    !strcmp(p->files[i].soname, need))
			return true;
	return false;
}

static bool driver_name(const char *need)
{
	return gs_disc_spec_for_key(need) || strstr(need, "nvidia") || !strncmp(need, "libcuda", 7);
}

/* Appends NAME to the comma-separated list *LIST unless it is there. */
static int list_add(char **list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = *list; p && (p = strstr(p, name)) != NULL; p += n)
		if ((p == *list || p[-2] == ',') && (p[n] == ',' || !p[n]))
			return 0;
	char *v = NULL;
	if (asprintf(&v, "%s%s%s", *list ? *list : "", *list ? ", " : "", name) < 0)
		return -ENOMEM;
	free(*list);
	*list = v;
	return 0;
}

/* A missing driver library is reported per file (the set is not whole); the
 * libraries a driver library takes from the system (X11, Wayland, GBM,
 * OpenSSL) are the image's to bring: one line names them all. */
int gs_disc_check_needed(struct disc *d)
{
	_cleanup_free_ char *external = NULL;
	for (size_t i = 0; i < d->plan->n_files; i++) {
		const struct gs_file *f = &d->plan->files[i];
		for (size_t j = 0; j < f->n_needed; j++) {
			const char *need = f->needed[j];
			if (needed_ok(d->plan, f, need))
				continue;
			int r = driver_name(need)
					? gs_disc_warn(d, "%s needs %s, a driver library that is not staged", f->path, need)
					: list_add(&external, need);
			if (r < 0)
				return -ENOMEM;
		}
	}
	if (external && gs_disc_warn(d, "the container image must provide what the staged libraries need "
				"from the system: %s", external) < 0)
		return -ENOMEM;
	return 0;
}
