/* SPDX-License-Identifier: Apache-2.0 */
/* CUDA forward compatibility: an image's cuda-compat-X-Y libraries
 * (/usr/local/cuda/compat, or the configuration's "cuda_compat_dir") go
 * ahead of the staged driver's in the refreshed ld.so.cache when, and only
 * when, the image's libcuda.so.<VER> is newer than the staged driver (what
 * NVIDIA's toolkit does).  Then every staged 64-bit entry whose key is the
 * SONAME of a library of that directory named <name>.so.<VER> (the same
 * VER: the package ships them together) points at the image's file
 * instead: libcuda and its companions (nvvm, ptxjitcompiler, pkcs11, ...).
 *
 * Nothing is executed.  The version comes from the file name and is
 * confirmed by the ELF (64-bit x86-64, SONAME libcuda.so.1, read with
 * libelf).  Every lookup is an fd inside the root: the directory through
 * gs_open_in_root (its symlinks resolve inside the image, never out of
 * it), its files beneath it with no symlink followed (a SONAME link is
 * skipped: the cache names the versioned file itself), each opened O_PATH
 * first so that only a regular file is ever read.  A hostile directory
 * (too many entries, a libcuda that is no ELF or has another SONAME, a
 * version that is no version) is ignored with the reason in the record:
 * never an error that stops the start (only ENOMEM is). */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/elfinfo.h"
#include "gs/fsx.h"
#include "gs/ldcache.h"
#include "gs/version.h"
#include "internal.h"

#define LIBCUDA_PREFIX "libcuda.so."

/* Digits of group P (up to '.' or the end) without leading zeros. */
static size_t group(const char **p, const char **digits)
{
	while (**p == '0' && (*p)[1] >= '0' && (*p)[1] <= '9')
		(*p)++;
	*digits = *p;
	size_t n = strcspn(*p, ".");
	*p += n;
	if (**p == '.')
		(*p)++;
	return n;
}

int ovl_version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		const char *da = "0", *db = "0";
		size_t na = *a ? group(&a, &da) : 1, nb = *b ? group(&b, &db) : 1;
		if (na != nb)
			return na < nb ? -1 : 1;
		int r = strncmp(da, db, na);
		if (r)
			return r < 0 ? -1 : 1;
	}
	return 0;
}

bool ovl_compat_libcuda_version(const char *name, char ver[GS_VERSION_MAX + 1])
{
	size_t n = strlen(LIBCUDA_PREFIX);
	if (strncmp(name, LIBCUDA_PREFIX, n) || !gs_version_valid(name + n))
		return false;
	snprintf(ver, GS_VERSION_MAX + 1, "%s", name + n);
	return true;
}

int ovl_compat_pick(const char *const *names, size_t n, const char *dir, const char *driver,
		    size_t *idx, char *why, size_t whylen)
{
	char best[GS_VERSION_MAX + 1] = "", v[GS_VERSION_MAX + 1];
	bool bad = false;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(names[i], LIBCUDA_PREFIX, strlen(LIBCUDA_PREFIX)) ||
		    !strcmp(names[i], LIBCUDA_PREFIX "1"))
			continue;
		if (!ovl_compat_libcuda_version(names[i], v)) {
			bad = true;
			continue;
		}
		if (!best[0] || ovl_version_cmp(v, best) > 0) {
			snprintf(best, sizeof(best), "%s", v);
			*idx = i;
		}
	}
	if (!best[0]) {
		snprintf(why, whylen, "ignored: %s holds no libcuda.so.<version>%s", dir,
			 bad ? " (a libcuda.so.* whose suffix is not a version)" : "");
		return 0;
	}
	int cmp = ovl_version_cmp(best, driver);
	snprintf(why, whylen, "%s: %s/%s %s driver %s", cmp > 0 ? "used" : "ignored", dir, names[*idx],
		 cmp > 0 ? "newer than" : cmp == 0 ? "same version as" : "older than", driver);
	return cmp > 0;
}

void ovl_compat_clear(struct ovl_compat *c)
{
	for (size_t i = 0; i < c->n_libs; i++) {
		free(c->libs[i].soname);
		free(c->libs[i].value);
	}
	free(c->libs);
	c->libs = NULL;
	c->n_libs = 0;
	c->used = false;
}

const char *ovl_compat_value(const struct ovl_compat *c, const char *key, int32_t flags)
{
	if (!c || !c->used || flags != (LDC_FLAG_ELF_LIBC6 | LDC_FLAG_X8664_LIB64))
		return NULL;
	for (size_t i = 0; i < c->n_libs; i++)
		if (!strcmp(c->libs[i].soname, key))
			return c->libs[i].value;
	return NULL;
}

/* The names in DIRFD (at most OVL_COMPAT_MAX_ENTRIES); -E2BIG, -ENOMEM, or
 * -errno of the listing. */
static int list_dir(int dirfd, char ***out, size_t *n)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	char **v = calloc(OVL_COMPAT_MAX_ENTRIES, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*out = v;
	*n = 0;
	/* a listing cut short by a read error is no listing: a newer compat
	 * library past the error would be missed */
	for (struct dirent *de; (errno = 0, de = readdir(d));) {
		if (de->d_name[0] == '.' || (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		if (*n == OVL_COMPAT_MAX_ENTRIES)
			return -E2BIG;
		if (!(v[*n] = strdup(de->d_name)))
			return -ENOMEM;
		(*n)++;
	}
	return errno ? -errno : 0;
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Inspects DIRFD/NAME: a regular file (never a symlink), a 64-bit x86-64
 * ELF shared object; its SONAME in *SONAME (malloc'd).  Returns 1, 0 when
 * it is not such a file (WHY says why), -ENOMEM. */
static int inspect(int dirfd, const char *name, char **soname, char *why, size_t whylen)
{
	_cleanup_close_ int pfd = gs_open_beneath(dirfd, name, O_PATH | O_NOFOLLOW, 0);
	struct stat st;
	if (pfd < 0 || fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", name);
		return 0;
	}
	_cleanup_close_ int fd = gs_reopen(pfd, O_RDONLY);
	struct gs_elf_info info;
	struct gs_err e = GS_ERR_INIT;
	int r = fd < 0 ? 0 : gs_elf_inspect(fd, name, &info, &e);
	if (r < 0 && e.code == ENOMEM)
		return -ENOMEM;
	if (r <= 0) {
		snprintf(why, whylen, "%s is not an ELF file%s%.150s", name, r < 0 ? ": " : "",
			 r < 0 ? e.msg : "");
		return 0;
	}
	bool ok = info.elfclass == ELFCLASS64 && info.machine == EM_X86_64 && info.type == ET_DYN &&
		  info.soname;
	if (ok)
		*soname = steal_ptr(&info.soname);
	else
		snprintf(why, whylen, "%s is not a 64-bit x86-64 shared library with a SONAME", name);
	gs_elf_info_clear(&info);
	return ok;
}

/* NAME ends in ".so." VER. */
static bool same_version(const char *name, const char *ver)
{
	size_t n = strlen(name), m = strlen(ver);
	return n > m + 4 && !strcmp(name + n - m, ver) && !memcmp(name + n - m - 4, ".so.", 4);
}

static bool staged_key(const struct ovl_op *o, const char *key)
{
	for (size_t i = 0; i < o->n_entries; i++)
		if (!strcmp(o->entries[i].key, key) &&
		    o->entries[i].flags == (LDC_FLAG_ELF_LIBC6 | LDC_FLAG_X8664_LIB64))
			return true;
	return false;
}

static bool have_soname(const struct ovl_compat *c, const char *soname)
{
	for (size_t i = 0; i < c->n_libs; i++)
		if (!strcmp(c->libs[i].soname, soname))
			return true;
	return false;
}

static int add_lib(struct ovl_compat *c, const char *dir, const char *name, char **soname)
{
	struct ovl_compat_lib *v = realloc(c->libs, (c->n_libs + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->libs = v;
	if (asprintf(&v[c->n_libs].value, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	v[c->n_libs++].soname = steal_ptr(soname);
	return 0;
}

/* The chosen libcuda (confirmed) and the companions of its version whose
 * SONAME the staged entries of O also have. */
static int gather(struct ovl_compat *c, int dirfd, const char *dir, char **names, size_t n,
		  size_t pick, const struct ovl_op *o)
{
	char ver[GS_VERSION_MAX + 1], note[320];
	ovl_compat_libcuda_version(names[pick], ver);
	_cleanup_free_ char *soname = NULL;
	int r = inspect(dirfd, names[pick], &soname, note, sizeof(note));
	if (r <= 0 || strcmp(soname, LIBCUDA_PREFIX "1")) {
		if (r > 0)
			snprintf(note, sizeof(note), "%s has SONAME %.100s, not libcuda.so.1", names[pick], soname);
		snprintf(c->why, sizeof(c->why), "ignored: %s/%s", dir, note);
		return r < 0 ? r : 0;
	}
	if ((r = add_lib(c, dir, names[pick], &soname)) < 0)
		return r;
	size_t others = 0;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *s = NULL;
		if (i == pick || !same_version(names[i], ver) || others == OVL_COMPAT_MAX_LIBS)
			continue;
		others++;
		r = inspect(dirfd, names[i], &s, note, sizeof(note));
		if (r < 0)
			return r;
		if (r > 0 && staged_key(o, s) && !have_soname(c, s) && (r = add_lib(c, dir, names[i], &s)) < 0)
			return r;
	}
	c->used = true;
	size_t len = strlen(c->why);
	if (c->n_libs > 1 && len < sizeof(c->why))
		snprintf(c->why + len, sizeof(c->why) - len, " (and %zu companion%s)", c->n_libs - 1,
			 c->n_libs == 2 ? "" : "s");
	return 0;
}

int ovl_compat_find(int rootfd, const char *dir, const struct ovl_op *o, const char *driver,
		    struct ovl_compat *c)
{
	ovl_compat_clear(c);
	c->why[0] = '\0';
	if (!dir || !dir[0])
		return 0;
	struct gs_err e = GS_ERR_INIT;
	_cleanup_close_ int dirfd = gs_open_in_root(rootfd, dir, O_PATH | O_DIRECTORY, &e);
	if (dirfd < 0) {
		if (e.code != ENOENT) /* absent: the normal case, nothing to say */
			snprintf(c->why, sizeof(c->why), "ignored: %s is not a directory of the image (%s)",
				 dir, strerror(e.code));
		return 0;
	}
	if (!staged_key(o, LIBCUDA_PREFIX "1")) {
		snprintf(c->why, sizeof(c->why), "ignored: the container receives no libcuda.so.1 (%s not read)", dir);
		return 0;
	}
	char **names = NULL;
	size_t n = 0, pick = 0;
	int r = list_dir(dirfd, &names, &n);
	if (r == -E2BIG)
		snprintf(c->why, sizeof(c->why), "ignored: %s holds more than %d files", dir,
			 OVL_COMPAT_MAX_ENTRIES);
	else if (r < 0 && r != -ENOMEM)
		snprintf(c->why, sizeof(c->why), "ignored: %s unreadable (%s)", dir, strerror(-r));
	if (r >= 0 && ovl_compat_pick((const char *const *)names, n, dir, driver, &pick, c->why,
				      sizeof(c->why)) > 0)
		r = gather(c, dirfd, dir, names, n, pick, o);
	names_free(names, n);
	if (r == -ENOMEM) {
		ovl_compat_clear(c);
		return r;
	}
	if (!c->used)
		ovl_compat_clear(c);
	return 0;
}
