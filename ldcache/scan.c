/* SPDX-License-Identifier: Apache-2.0 */
/* Scanning library directories with ldconfig's rules (glibc 2.36
 * search_dir), but resolving every path inside a root with file
 * descriptors and reading ELF files with libelf:
 *  - names that look like DSOs (lib*.so*, ld-*.so*, ld.so.*, ld64.so.*);
 *  - regular files and symlinks (resolved inside the root) to regular files;
 *  - ELF shared objects (ET_DYN) with a dynamic segment for x86-64, x32
 *    or i386 (a dynamically linked ET_EXEC executable is skipped);
 *  - key: DT_SONAME, or the file name without one; a symlink keeps its own
 *    name as key when it is named as its SONAME or is the ".so" link for it;
 *  - per directory and key one file wins: a file over a link, else the
 *    newer name by _dl_cache_libcmp;
 *  - value: DIR/KEY (DIR/FILE in glibc-hwcaps subdirectories).
 *  - legacy hwcap subdirectories (tls, x86_64, haswell, ...) are scanned
 *    after all listed directories, their entries carry the hwcap bits.
 * Known difference, on purpose: we never create symlinks, so when DIR/KEY
 * does not exist the value is the file itself. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/elfinfo.h"
#include "gs/fsx.h"
#include "internal.h"

struct dlib {
	char *name;
	char *soname;
	int32_t flag;
	bool is_link;
	struct dlib *next;
};

static void dlibs_free(struct dlib **head)
{
	while (*head) {
		struct dlib *next = (*head)->next;
		free((*head)->name);
		free((*head)->soname);
		free(*head);
		*head = next;
	}
}

static bool is_dso_name(const char *name)
{
	return ((strncmp(name, "lib", 3) == 0 || strncmp(name, "ld-", 3) == 0) &&
		strstr(name, ".so") != NULL) ||
	       strncmp(name, "ld.so.", 6) == 0 || strncmp(name, "ld64.so.", 8) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_prelink_tmp(const char *name)
{
	const char *p = strstr(name, ".#prelink#");
	return p && (p[10] == '\0' || (p[10] == '.' && strlen(p + 11) == 6));
}

/* ldconfig's flags for an object, or -1 when ldconfig would skip it: it
 * takes shared objects (ET_DYN, PIEs included) with a dynamic segment and
 * skips executables (ET_EXEC), even when they are dynamically linked. */
static int32_t object_flags(const struct gs_elf_info *info)
{
	if (!info->dynamic || info->type != ET_DYN)
		return -1;
	if (info->machine == EM_X86_64)
		return info->elfclass == ELFCLASS64 ? LDC_FLAG_X8664_LIB64 | LDC_FLAG_ELF_LIBC6
						    : LDC_FLAG_X8664_LIBX32 | LDC_FLAG_ELF_LIBC6;
	if (info->machine != EM_386 || info->elfclass != ELFCLASS32)
		return -1;
	for (size_t i = 0; i < info->n_needed; i++) {
		const char *n = info->needed[i];
		if (!strcmp(n, "libc.so.6") || !strcmp(n, "libm.so.6"))
			return LDC_FLAG_ELF_LIBC6;
		if (!strcmp(n, "libc.so.5") || !strcmp(n, "libm.so.5"))
			return LDC_FLAG_ELF_LIBC5;
	}
	return LDC_FLAG_ELF;
}

/* ---- legacy hwcap subdirectories ----------------------------------------------
 * glibc 2.36's ldconfig still descends into the subdirectories named as a
 * hwcap, a platform or "tls" (is_hwcap_platform), recursively, after every
 * listed directory, and gives their entries the hwcap bits of the trailing
 * such components of the path (path_hwcap).  The x86 names and bits below
 * are what ldconfig -p prints for them (hwcaps 0..2, platforms from bit 48,
 * tls bit 63). */
struct legacy_name {
	const char *name;
	unsigned int bit;
};
static const struct legacy_name legacy_names[] = {
#if defined(__x86_64__) || defined(__i386__)
	{"sse2", 0},  {"x86_64", 1},   {"avx512_1", 2},  {"i586", 48},
	{"i686", 49}, {"haswell", 50}, {"xeon_phi", 51},
#endif
	{"tls", 63},
};

/* The bit index of a legacy subdirectory name (LEN bytes), or -1. */
static int legacy_bit(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(legacy_names) / sizeof(legacy_names[0]); i++)
		if (strlen(legacy_names[i].name) == len && !memcmp(legacy_names[i].name, name, len))
			return (int)legacy_names[i].bit;
	return -1;
}

/* ldconfig's path_hwcap: the bits of PATH's trailing legacy components
 * (added, as ldconfig adds them). */
static uint64_t path_hwcap(const char *path)
{
	uint64_t hwcap = 0;
	size_t end = strlen(path);
	while (end > 0) {
		size_t start = end;
		while (start > 0 && path[start - 1] != '/')
			start--;
		if (start == 0)
			break; /* ldconfig looks only at components after a '/' */
		int bit = legacy_bit(path + start, end - start);
		if (bit < 0)
			break;
		hwcap += 1ULL << bit;
		end = start - 1;
	}
	return hwcap;
}

/* Directories found while scanning, to be scanned after the listed ones. */
struct pending {
	char **v;
	size_t n;
};

static int pending_push(struct pending *p, const char *dir, const char *name)
{
	char **v = realloc(p->v, (p->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->v = v;
	if (asprintf(&v[p->n], "%s/%s", dir, name) < 0)
		return -ENOMEM;
	p->n++;
	return 0;
}

static void pending_free(struct pending *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
}

/* The objects read in one directory, by inode: a symlink and the file it
 * names (libfoo.so.1 -> libfoo.so.1.2) are read once, as ldconfig does. */
struct seen_obj {
	dev_t dev;
	ino_t ino;
	bool used;
	int32_t flag; /* object_flags(), or -1: not a library ldconfig takes */
	char *soname; /* DT_SONAME, NULL when it has none */
};

struct objmemo {
	struct seen_obj *v;
	size_t cap, n; /* cap: 0 or a power of two, n <= cap / 2 */
};

static void memo_free(struct objmemo *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->v[i].soname);
	free(m->v);
	*m = (struct objmemo){0};
}

static size_t memo_slot(const struct objmemo *m, dev_t dev, ino_t ino)
{
	size_t i = (size_t)((ino ^ ((uint64_t)dev << 17)) * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
	while (m->v[i].used && (m->v[i].dev != dev || m->v[i].ino != ino))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static const struct seen_obj *memo_find(const struct objmemo *m, const struct stat *st)
{
	if (!m->cap)
		return NULL;
	const struct seen_obj *o = &m->v[memo_slot(m, st->st_dev, st->st_ino)];
	return o->used ? o : NULL;
}

/* Remembers ST's object (SONAME copied); out of memory: not remembered. */
static void memo_add(struct objmemo *m, const struct stat *st, int32_t flag, const char *soname)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct objmemo g = {calloc(m->cap ? m->cap * 2 : 64, sizeof(*g.v)),
				    m->cap ? m->cap * 2 : 64, m->n};
		if (!g.v)
			return;
		for (size_t i = 0; i < m->cap; i++)
			if (m->v[i].used)
				g.v[memo_slot(&g, m->v[i].dev, m->v[i].ino)] = m->v[i];
		free(m->v);
		*m = g;
	}
	char *copy = soname ? strdup(soname) : NULL;
	if (soname && !copy)
		return;
	m->v[memo_slot(m, st->st_dev, st->st_ino)] =
		(struct seen_obj){st->st_dev, st->st_ino, true, flag, copy};
	m->n++;
}

struct scandir_ctx {
	struct ldc_cache *c;
	int rootfd, dirfd;
	const char *path;   /* directory as seen inside the root, no trailing '/' */
	const char *hwcaps; /* glibc-hwcaps subdirectory name or NULL */
	uint64_t hwcap;     /* legacy hwcap bits of the directory's path */
	struct pending *pending; /* legacy subdirectories go here; NULL: ignored */
	struct dlib *dlibs;
	struct objmemo memo;
};

/* Opens entry NAME as a regular file (following a symlink inside the
 * root); *ST is then the file's. */
static int open_entry(struct scandir_ctx *x, const char *name, bool *is_link, struct stat *st)
{
	if (fstatat(x->dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	*is_link = S_ISLNK(st->st_mode);
	int fd;
	if (*is_link) {
		struct gs_err ignored = GS_ERR_INIT;
		_cleanup_free_ char *full = NULL;
		if (asprintf(&full, "%s/%s", x->path, name) < 0)
			return -1;
		fd = gs_open_in_root(x->rootfd, full, O_RDONLY | O_NONBLOCK | O_NOCTTY, &ignored);
	} else if (S_ISREG(st->st_mode)) {
		fd = openat(x->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	} else {
		return -1;
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The flag and DT_SONAME (*DT, malloc'd or NULL) of the object FD holds,
 * read once per inode.  0, or -1: not a library ldconfig takes. */
static int inspect(struct scandir_ctx *x, int fd, const struct stat *st, const char *name,
		   int32_t *flag, char **dt)
{
	const struct seen_obj *o = memo_find(&x->memo, st);
	*dt = NULL;
	if (o) {
		*flag = o->flag;
		if (*flag < 0 || (o->soname && !(*dt = strdup(o->soname))))
			return -1;
		return 0;
	}
	struct gs_err err = GS_ERR_INIT;
	struct gs_elf_info info;
	int r = gs_elf_inspect(fd, name, &info, &err);
	*flag = r > 0 ? object_flags(&info) : -1;
	if (r > 0 && info.soname && !(*dt = strdup(info.soname)))
		*flag = -1;
	memo_add(&x->memo, st, *flag, *dt);
	if (r > 0)
		gs_elf_info_clear(&info);
	if (*flag >= 0)
		return 0;
	free(*dt);
	*dt = NULL;
	return -1;
}

/* Reads NAME; on success *SONAME is malloc'd.  0: use it, -1: skip it. */
static int classify(struct scandir_ctx *x, const char *name, int32_t *flag, char **soname,
		    bool *is_link)
{
	struct stat st;
	_cleanup_close_ int fd = open_entry(x, name, is_link, &st);
	char *dt = NULL;
	if (fd < 0 || inspect(x, fd, &st, name, flag, &dt) < 0)
		return -1;
	if (!(*soname = dt ? dt : strdup(name)))
		return -1;
	/* A link keeps its own name when named as the SONAME or as its ".so". */
	if (*is_link && strcmp(name, *soname) != 0 &&
	    !(ends_with(name, ".so") && strncmp(name, *soname, strlen(name)) == 0))
		*is_link = false;
	if (*is_link) {
		free(*soname);
		*soname = strdup(name);
	}
	return *soname ? 0 : -1;
}

static void merge_flag(struct dlib *d, int32_t flag)
{
	if (d->flag == flag)
		return;
	if (d->flag == LDC_FLAG_ELF && (flag == LDC_FLAG_ELF_LIBC5 || flag == LDC_FLAG_ELF_LIBC6))
		d->flag = flag;
	else if ((d->flag == LDC_FLAG_ELF_LIBC5 || d->flag == LDC_FLAG_ELF_LIBC6) &&
		 flag == LDC_FLAG_ELF)
		d->flag = flag;
}

static int remember(struct scandir_ctx *x, const char *name, int32_t flag, char *soname,
		    bool is_link)
{
	for (struct dlib *d = x->dlibs; d; d = d->next) {
		if (strcmp(d->soname, soname) != 0)
			continue;
		free(soname);
		if ((!is_link && d->is_link) ||
		    (is_link == d->is_link && ldc_libcmp(d->name, name) < 0)) {
			char *copy = strdup(name);
			if (!copy)
				return -ENOMEM;
			merge_flag(d, flag);
			free(d->name);
			d->name = copy;
			d->is_link = is_link;
		}
		return 0;
	}
	struct dlib *d = calloc(1, sizeof(*d));
	if (!d || !(d->name = strdup(name))) {
		free(d);
		free(soname);
		return -ENOMEM;
	}
	d->soname = soname;
	d->flag = flag;
	d->is_link = is_link;
	d->next = x->dlibs;
	x->dlibs = d;
	return 0;
}

static bool wanted_dirent(const struct scandir_ctx *x, const struct dirent *de)
{
	if (de->d_type != DT_UNKNOWN && de->d_type != DT_LNK && de->d_type != DT_REG &&
	    de->d_type != DT_DIR)
		return false;
	if (!is_dso_name(de->d_name) && (de->d_type == DT_REG || !x->hwcaps))
		return false;
	return !is_prelink_tmp(de->d_name);
}

static int read_dir(struct scandir_ctx *x, struct gs_err *err)
{
	int fd = openat(x->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return gs_err_set(err, errno, "%s", x->path);
	}
	struct dirent *de;
	while ((errno = 0, de = readdir(d)) != NULL) {
		int32_t flag = -1; /* set by classify; gcc -O1 cannot see it */
		char *soname = NULL;
		bool is_link;
		if (x->pending && (de->d_type == DT_DIR || de->d_type == DT_LNK || de->d_type == DT_UNKNOWN) &&
		    legacy_bit(de->d_name, strlen(de->d_name)) >= 0) {
			if (pending_push(x->pending, x->path, de->d_name) < 0)
				return gs_err_set(err, ENOMEM, "%s", x->path);
			continue; /* scanned later, if it is a directory */
		}
		if (!wanted_dirent(x, de) || classify(x, de->d_name, &flag, &soname, &is_link) < 0)
			continue;
		if (remember(x, de->d_name, flag, soname, is_link) < 0)
			return gs_err_set(err, ENOMEM, "%s", x->path);
	}
	if (errno != 0)
		return gs_err_set(err, errno, "%s: readdir", x->path);
	return 0;
}

static int add_dlibs(struct scandir_ctx *x, struct gs_err *err)
{
	int added = 0;
	for (struct dlib *d = x->dlibs; d; d = d->next) {
		struct stat st;
		const char *file = d->soname;
		if (x->hwcaps || fstatat(x->dirfd, d->soname, &st, AT_SYMLINK_NOFOLLOW) < 0)
			file = d->name;
		_cleanup_free_ char *value = NULL;
		if (asprintf(&value, "%s/%s", x->path, file) < 0)
			return gs_err_set(err, ENOMEM, "%s", x->path);
		struct ldc_entry e = {.key = d->soname, .value = value, .flags = d->flag,
				      .hwcap = x->hwcaps ? 0 : x->hwcap, .hwcaps = x->hwcaps};
		int r = ldc_cache_add(x->c, &e, err);
		if (r < 0)
			return r;
		added++;
	}
	return added;
}

/* Scans one directory.  HWCAPS: glibc-hwcaps subdirectory name, or NULL
 * for a plain directory, whose legacy hwcap subdirectories are appended to
 * PENDING. */
static int scan_one(struct ldc_cache *c, int rootfd, int dirfd, const char *path,
		    const char *hwcaps, struct pending *pending, struct gs_err *err)
{
	struct scandir_ctx x = {.c = c, .rootfd = rootfd, .dirfd = dirfd, .path = path,
				.hwcaps = hwcaps, .hwcap = hwcaps ? 0 : path_hwcap(path),
				.pending = hwcaps ? NULL : pending};
	int r = read_dir(&x, err);
	if (r >= 0)
		r = add_dlibs(&x, err);
	dlibs_free(&x.dlibs);
	memo_free(&x.memo);
	return r;
}

/* ---- directory lists ----------------------------------------------------- */

struct seen {
	dev_t dev;
	ino_t ino;
};

struct dirlist {
	struct seen *v;
	size_t n;
};

/* True when the directory was already scanned (same device and inode). */
static bool seen_before(struct dirlist *l, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return true;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].dev == st.st_dev && l->v[i].ino == st.st_ino)
			return true;
	struct seen *v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return true;
	l->v = v;
	l->v[l->n++] = (struct seen){st.st_dev, st.st_ino};
	return false;
}

static int scan_hwcaps(struct ldc_cache *c, int rootfd, const char *path, struct dirlist *l,
		       struct gs_err *err)
{
	_cleanup_free_ char *hw = NULL;
	if (asprintf(&hw, "%s/glibc-hwcaps", path) < 0)
		return gs_err_set(err, ENOMEM, "%s", path);
	struct gs_err ignored = GS_ERR_INIT;
	int hfd = gs_open_in_root(rootfd, hw, O_RDONLY | O_DIRECTORY, &ignored);
	_cleanup_closedir_ DIR *d = hfd >= 0 ? fdopendir(hfd) : NULL;
	if (!d) {
		if (hfd >= 0)
			close(hfd);
		return 0;
	}
	int total = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_type == DT_REG || strchr(de->d_name, ':'))
			continue;
		_cleanup_free_ char *sub = NULL;
		if (asprintf(&sub, "%s/%s", hw, de->d_name) < 0)
			return gs_err_set(err, ENOMEM, "%s", hw);
		_cleanup_close_ int sfd = gs_open_in_root(rootfd, sub, O_RDONLY | O_DIRECTORY, &ignored);
		if (sfd < 0 || seen_before(l, sfd))
			continue;
		int r = scan_one(c, rootfd, sfd, sub, de->d_name, NULL, err);
		if (r < 0)
			return r;
		total += r;
	}
	return total;
}

static char *normalize_dir(const char *dir)
{
	size_t n = strlen(dir);
	while (n > 0 && (dir[n - 1] == ' ' || dir[n - 1] == '\t' || dir[n - 1] == '\n'))
		n--;
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strndup(dir, n);
}

/* The legacy hwcap subdirectories found so far (the list grows while it
 * is worked through: they nest), each scanned once. */
static int scan_pending(struct ldc_cache *c, int rootfd, struct pending *p, struct dirlist *seen,
			struct gs_err *err)
{
	int total = 0;
	for (size_t i = 0; i < p->n; i++) {
		struct gs_err ignored = GS_ERR_INIT;
		_cleanup_close_ int fd = gs_open_in_root(rootfd, p->v[i], O_RDONLY | O_DIRECTORY, &ignored);
		if (fd < 0 || seen_before(seen, fd))
			continue; /* not a directory (or gone), or seen */
		_cleanup_free_ char *path = strdup(p->v[i]); /* p->v may move */
		if (!path)
			return gs_err_set(err, ENOMEM, "%s", p->v[i]);
		int r = scan_one(c, rootfd, fd, path, NULL, p, err);
		if (r < 0)
			return r;
		total += r;
	}
	return total;
}

int ldc_scan_dirs(struct ldc_cache *c, int rootfd, char *const *dirs, size_t n, bool missing_ok,
		  struct gs_err *err)
{
	struct dirlist seen = {0};
	struct pending pending = {0};
	int total = 0, r = 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		_cleanup_free_ char *path = normalize_dir(dirs[i]);
		if (!path || path[0] != '/') {
			r = gs_err_setx(err, EINVAL, "%s: directory must be an absolute path inside the root",
					dirs[i]);
			break;
		}
		_cleanup_close_ int fd = gs_open_in_root(rootfd, path, O_RDONLY | O_DIRECTORY, err);
		if (fd < 0) {
			if (missing_ok) {
				gs_err_clear(err);
				continue;
			}
			r = fd;
			break;
		}
		if (seen_before(&seen, fd))
			continue;
		r = scan_one(c, rootfd, fd, strcmp(path, "/") ? path : "", NULL, &pending, err);
		if (r >= 0) {
			total += r;
			r = scan_hwcaps(c, rootfd, path, &seen, err);
			total += r > 0 ? r : 0;
		}
	}
	if (r >= 0) {
		r = scan_pending(c, rootfd, &pending, &seen, err);
		total += r > 0 ? r : 0;
	}
	pending_free(&pending);
	free(seen.v);
	return r < 0 ? r : total;
}
