/* SPDX-License-Identifier: Apache-2.0 */
/* gs_discover(): the order of discovery, and the checks that make a set
 * whole (core libraries present, DT_NEEDED resolvable). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discover_internal.h"
#include "gs/cleanup.h"
#include "gs/ldcache.h"

struct deferred {
	char *path;
	const struct lib_spec *spec;
};

struct deferred_list {
	struct deferred *v;
	size_t n;
};

static void deferred_free(struct deferred_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
}

static int defer(struct deferred_list *l, const char *path, const struct lib_spec *spec)
{
	struct deferred *v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n].spec = spec;
	v[l->n].path = strdup(path);
	return v[l->n++].path ? 0 : -ENOMEM;
}

struct lists {
	struct deferred_list unversioned, own;
};

/* One cache entry: remember its directory, its version, and defer the
 * libraries whose names carry no driver version. */
static int cache_entry(struct disc *d, const struct ldc_entry *e, struct lists *l)
{
	enum ldc_arch arch = ldc_flags_arch(e->flags);
	const struct lib_spec *spec = gs_disc_spec_for_key(e->key);
	if (!spec || (arch != LDC_ARCH_X86_64 && arch != LDC_ARCH_I386))
		return 0;
	struct gs_err ignored = GS_ERR_INIT;
	_cleanup_free_ char *resolved = NULL;
	_cleanup_close_ int fd = gs_root_open_file(&d->root, e->value, O_RDONLY | O_NONBLOCK,
						   &resolved, &ignored);
	if (fd < 0)
		return 0;
	if (spec->rule == RULE_UNVERSIONED)
		return defer(&l->unversioned, resolved, spec);
	if (spec->rule == RULE_OWN_VERSION)
		return defer(&l->own, resolved, spec);
	_cleanup_free_ char *copy = strdup(resolved);
	return copy ? gs_disc_note_dir(d, dirname(copy)) : -ENOMEM;
}

static int from_cache(struct disc *d, struct lists *l, struct gs_err *err)
{
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	int fd = gs_root_open_file(&d->root, "/etc/ld.so.cache", O_RDONLY | O_NONBLOCK, NULL, err);
	if (fd >= 0) {
		int r = ldc_cache_load_fd(fd, "/etc/ld.so.cache", &c, err);
		close(fd);
		fd = r;
	}
	if (fd < 0) {
		if (d->o->n_libdirs == 0)
			return gs_err_wrap(err, "root %s", d->o->root);
		gs_err_clear(err); /* --libdir given: the cache is optional */
		return 0;
	}
	for (size_t i = 0; i < ldc_cache_count(c); i++) {
		int r = cache_entry(d, ldc_cache_entry(c, i), l);
		if (r < 0)
			return gs_err_set(err, -r, "reading the cache");
	}
	return 0;
}

static const struct dirinfo *dir_of(const struct disc *d, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	for (size_t i = 0; i < d->n_dirs; i++)
		if (strlen(d->dirs[i].path) == n && !strncmp(d->dirs[i].path, path, n))
			return &d->dirs[i];
	return NULL;
}

static int add_unversioned(struct disc *d, const struct deferred *u)
{
	const struct dirinfo *di = dir_of(d, u->path);
	if (di && di->has_ver && !di->has_other)
		return gs_disc_add_lib(d, u->path, u->spec, "folder");
	struct gs_err err = GS_ERR_INIT;
	_cleanup_close_ int fd = gs_root_open_file(&d->root, u->path, O_RDONLY | O_NONBLOCK, NULL, &err);
	if (fd >= 0 && gs_fd_contains(fd, d->ver, &err) > 0)
		return gs_disc_add_lib(d, u->path, u->spec, "content");
	_cleanup_free_ char *evidence = NULL;
	int r = fd >= 0 ? gs_disc_records(d, fd, u->path, NULL, &evidence) : REC_NONE;
	if (r != REC_NONE)
		return r == REC_VER ? gs_disc_add_lib(d, u->path, u->spec, evidence) : r < 0 ? r : 0;
	return gs_disc_warn(d,
			    "%s: not staged: no version in its name or bytes, its folder holds other "
			    "versions' files too, and no installed package or nvidia-installer record of %s lists it",
			    u->path, d->ver);
}

static bool has_graphics(const struct gs_manifest *p)
{
	for (size_t i = 0; i < p->n_files; i++)
		if ((p->files[i].kind == GS_KIND_LIB || p->files[i].kind == GS_KIND_LIB32) &&
		    (p->files[i].caps & GS_CAP_GRAPHICS))
			return true;
	return false;
}

static int add_deferred(struct disc *d, struct lists *l)
{
	int r = 0;
	for (size_t i = 0; r >= 0 && i < l->unversioned.n; i++)
		r = add_unversioned(d, &l->unversioned.v[i]);
	bool graphics = has_graphics(d->plan);
	for (size_t i = 0; r >= 0 && graphics && i < l->own.n; i++)
		r = gs_disc_add_lib(d, l->own.v[i].path, l->own.v[i].spec, "own-version");
	return r;
}

static bool staged_soname(const struct gs_manifest *p, const char *soname)
{
	for (size_t i = 0; i < p->n_files; i++)
		if (p->files[i].kind == GS_KIND_LIB && p->files[i].soname &&
		    !strcmp(p->files[i].soname, soname))
			return true;
	return false;
}

static int missing_core(const struct disc *d, const char *lib, struct gs_err *err)
{
	char present[1024] = "";
	size_t used = 0;
	for (size_t i = 0; i < d->n_versions; i++) {
		int n = snprintf(present + used, sizeof(present) - used, "%s%s (%zu files, e.g. %s)",
				 used ? ", " : "", d->versions[i].ver, d->versions[i].count,
				 d->versions[i].example);
		if (n < 0 || (size_t)n >= sizeof(present) - used)
			break;
		used += (size_t)n;
	}
	return gs_err_setx(err, ENOENT,
			   "driver %s is not (fully) present under %s: no x86-64 %s.%s found; versions present: %s%s",
			   d->ver, d->o->root, lib, d->ver, used ? present : "none",
			   d->o->n_libdirs ? "" : " (a driver outside the cache can be added with --libdir DIR)");
}

static int check_core(struct disc *d, struct gs_err *err)
{
	if ((d->o->caps & GS_CAP_COMPUTE) && !staged_soname(d->plan, "libcuda.so.1"))
		return missing_core(d, "libcuda.so", err);
	if ((d->o->caps & GS_CAP_UTILITY) && !staged_soname(d->plan, "libnvidia-ml.so.1"))
		return missing_core(d, "libnvidia-ml.so", err);
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct gs_file *)a)->path, ((const struct gs_file *)b)->path);
}

static int cmp_link(const void *a, const void *b)
{
	return strcmp(((const struct gs_link *)a)->path, ((const struct gs_link *)b)->path);
}

static int run(struct disc *d, struct gs_err *err)
{
	struct lists l = {{0}, {0}};
	struct gs_err derr = GS_ERR_INIT;
	if (gs_dpkg_load(&d->root, &d->dpkg, &derr) < 0 &&
	    gs_disc_warn(d, "%s; files without a version of their own need other evidence", derr.msg) < 0)
		return gs_err_set(err, ENOMEM, "discovering driver %s", d->ver);
	gs_err_clear(&derr);
	if (gs_nvinst_load(&d->root, &d->nvinst, &derr) < 0 &&
	    gs_disc_warn(d, "%s: not used: %s", GS_NVINST_LOG, derr.msg) < 0)
		return gs_err_set(err, ENOMEM, "discovering driver %s", d->ver);
	int r = from_cache(d, &l, err);
	for (size_t i = 0; r >= 0 && i < d->o->n_libdirs; i++)
		r = d->o->libdirs[i][0] == '/' ? gs_disc_note_dir(d, d->o->libdirs[i])
					       : gs_err_setx(err, EINVAL, "--libdir %s: must be an absolute path inside the root",
							     d->o->libdirs[i]);
	if (r >= 0 && (r = gs_disc_scan_dirs(d)) >= 0 && (r = add_deferred(d, &l)) >= 0 &&
	    (r = gs_disc_add_extras(d)) >= 0 && (r = check_core(d, err)) >= 0)
		r = gs_disc_check_needed(d);
	deferred_free(&l.unversioned);
	deferred_free(&l.own);
	if (r < 0 && err->code == 0)
		return gs_err_set(err, -r, "discovering driver %s", d->ver);
	if (d->plan->n_files > 1)
		qsort(d->plan->files, d->plan->n_files, sizeof(struct gs_file), cmp_file);
	if (d->plan->n_links > 1)
		qsort(d->plan->links, d->plan->n_links, sizeof(struct gs_link), cmp_link);
	return r;
}

static void disc_free(struct disc *d)
{
	for (size_t i = 0; i < d->n_dirs; i++)
		free(d->dirs[i].path);
	free(d->dirs);
	for (size_t i = 0; i < d->n_versions; i++) {
		free(d->versions[i].ver);
		free(d->versions[i].example);
	}
	free(d->versions);
	gs_dpkg_clear(&d->dpkg);
	gs_nvinst_clear(&d->nvinst);
	gs_root_close(&d->root);
}

int gs_discover(const struct gs_discover_opts *o, struct gs_manifest **out, struct gs_err *err)
{
	if (!gs_version_valid(o->driver))
		return gs_err_setx(err, EINVAL, "'%s' is not a driver version (like 535.261.03)",
				   o->driver ? o->driver : "");
	struct disc d = {.o = o, .ver = o->driver, .root = {-1, NULL, 0}};
	gs_err_clear(err);
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = calloc(1, sizeof(*p));
	if (!p || !(p->driver = strdup(o->driver)) || !(p->arch = strdup("x86_64")) ||
	    !(p->root = strdup(o->root)))
		return gs_err_set(err, ENOMEM, "discovery");
	d.plan = p;
	int r = gs_root_open(o->root, &d.root, err);
	if (r >= 0)
		r = run(&d, err);
	disc_free(&d);
	if (r < 0)
		return r;
	*out = steal_ptr(&p);
	return 0;
}
