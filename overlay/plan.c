/* SPDX-License-Identifier: Apache-2.0 */
/* ovl_plan_build: manifest + request -> list of operations.  Pure. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gs/cleanup.h"
#include "gs/ldcache.h"
#include "gs/overlay.h"
#include "internal.h"

#define FLAGS_X8664 (LDC_FLAG_X8664_LIB64 | LDC_FLAG_ELF_LIBC6)
#define FLAGS_I386 LDC_FLAG_ELF_LIBC6

void ovl_plan_free(struct ovl_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_ops; i++) {
		struct ovl_op *o = &p->ops[i];
		free(o->dest);
		free(o->source);
		free(o->files);
		free(o->content);
		for (size_t j = 0; j < o->n_entries; j++) {
			free(o->entries[j].key);
			free(o->entries[j].value);
		}
		free(o->entries);
	}
	for (size_t i = 0; i < p->n_tmpfs_dests; i++)
		free(p->tmpfs_dests[i]);
	free(p->tmpfs_dests);
	free(p->ops);
	free(p->driver);
	free(p->cuda_compat_dir);
	free(p);
}

const char *ovl_op_name(enum ovl_op_type t)
{
	switch (t) {
	case OVL_OP_TMPFS:
		return "tmpfs";
	case OVL_OP_BIND_DIR:
		return "bind-dir";
	case OVL_OP_BIND_FILE:
		return "bind-file";
	case OVL_OP_MKNOD:
		return "mknod";
	case OVL_OP_LDCACHE:
		return "ldcache";
	case OVL_OP_WRITE_FILE:
		return "write-file";
	case OVL_OP_SYMLINK:
		return "symlink";
	case OVL_OP_BIND_HOST:
		return "bind-host";
	}
	return "unknown";
}

static struct ovl_op *push_op(struct ovl_plan *p, enum ovl_op_type t, unsigned int flags,
			      const char *dest)
{
	struct ovl_op *ops = realloc(p->ops, (p->n_ops + 1) * sizeof(*ops));
	if (!ops)
		return NULL;
	p->ops = ops;
	struct ovl_op *o = &ops[p->n_ops];
	memset(o, 0, sizeof(*o));
	o->type = t;
	o->flags = flags;
	o->dest = strdup(dest);
	if (!o->dest)
		return NULL;
	p->n_ops++;
	return o;
}

/* The directory part of PATH when PATH is exactly "TOP/<cap>/NAME". */
static bool in_cap_dir(const char *path, const char *top, const char *cap, const char **name)
{
	size_t tl = strlen(top), cl = strlen(cap);
	if (strncmp(path, top, tl) || path[tl] != '/' || strncmp(path + tl + 1, cap, cl) ||
	    path[tl + 1 + cl] != '/')
		return false;
	*name = path + tl + 2 + cl;
	return **name && !strchr(*name, '/');
}

static int add_files(struct ovl_op *o, const struct gs_index *m, const char *top, const char *cap)
{
	const char *name;
	for (size_t i = 0; i < m->n_files; i++) {
		if (!in_cap_dir(m->files[i].path, top, cap, &name))
			continue;
		size_t *v = realloc(o->files, (o->n_files + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		o->files = v;
		v[o->n_files++] = i;
	}
	return 0;
}

static int fail_nomem(struct gs_err *err)
{
	return gs_err_setx(err, ENOMEM, "building the plan: out of memory");
}

/* A malloc'd path built from FMT: sized to fit, never cut short. */
__attribute__((format(printf, 1, 2))) static char *path_fmt(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* Emits bind-dir TOP/<cap> -> ANCHOR/TOP/<cap> for every included cap that
 * has files in the manifest. */
static int bind_top(struct ovl_plan *p, const struct gs_index *m, const char *top,
		    unsigned int want, struct gs_err *err)
{
	for (size_t c = 0; c < GS_N_CAPS; c++) {
		unsigned int bit = gs_cap_order[c];
		if (!(want & bit))
			continue;
		_cleanup_free_ char *src = path_fmt("%s/%s", top, gs_cap_name(bit));
		_cleanup_free_ char *dest = src ? path_fmt(OVL_ANCHOR "/%s", src) : NULL;
		if (!dest)
			return fail_nomem(err);
		struct ovl_op tmp = {0};
		if (add_files(&tmp, m, top, gs_cap_name(bit)) < 0) {
			free(tmp.files);
			return fail_nomem(err);
		}
		if (tmp.n_files == 0)
			continue;
		struct ovl_op *o = push_op(p, OVL_OP_BIND_DIR, 0, dest);
		if (!o || !(o->source = strdup(src))) {
			free(tmp.files);
			return fail_nomem(err);
		}
		o->files = tmp.files;
		o->n_files = tmp.n_files;
		o->caps = bit;
	}
	return 0;
}

/* Which lib32/<cap> directories a request gets: compat32 plus the cap. */
static unsigned int lib32_caps(unsigned int caps)
{
	if (!(caps & GS_CAP_COMPAT32))
		return 0;
	return caps;
}

static int check_manifest(const struct gs_index *m, struct gs_err *err)
{
	if (!gs_version_valid(m->driver))
		return gs_err_setx(err, EINVAL, "index: '%s' is not a driver version",
				   m->driver ? m->driver : "(null)");
	for (size_t i = 0; i < m->n_files; i++)
		if (!m->files[i].path || gs_store_path_check(m->files[i].path))
			return gs_err_setx(err, EINVAL, "index: files[%zu]: bad path '%s'", i,
					   m->files[i].path ? m->files[i].path : "(null)");
	return 0;
}

static int add_execs(struct ovl_plan *p, const struct gs_index *m, unsigned int caps, bool no_write,
		     struct gs_err *err);
static int add_configs(struct ovl_plan *p, const struct gs_index *m, unsigned int caps,
		       struct gs_err *err);
/* A node directly under /dev, or a capability node under /dev/nvidia-caps/
 * (MIG: nvidia-caps/nvidia-capN). */
static bool device_name_ok(const char *name)
{
	static const char caps[] = "nvidia-caps/";
	if (!strncmp(name, caps, sizeof(caps) - 1))
		name += sizeof(caps) - 1;
	return gs_name_ok(name);
}

static int add_devices(struct ovl_plan *p, const struct ovl_request *req, struct gs_err *err);
static int add_host_binds(struct ovl_plan *p, const struct ovl_request *req, struct gs_err *err);
static int add_vdpau(struct ovl_plan *p, const struct gs_index *m, unsigned int caps,
		     struct gs_err *err);

static int build_ops(struct ovl_plan *p, const struct gs_index *m, const struct ovl_request *req,
		     struct gs_err *err)
{
	unsigned int caps = p->caps;
	struct ovl_op *o = push_op(p, OVL_OP_TMPFS, OVL_F_ANCHOR, OVL_ANCHOR);
	if (!o)
		return fail_nomem(err);
	o->mode = 0755;
	int r = bind_top(p, m, "lib", caps & ~GS_CAP_COMPAT32, err);
	if (r >= 0)
		r = bind_top(p, m, "lib32", lib32_caps(caps), err);
	if (r >= 0)
		r = bind_top(p, m, "bin", caps & ~GS_CAP_COMPAT32, err);
	if (r >= 0)
		r = ovl_plan_add_ldcache(p, m, req->no_write, err);
	if (r >= 0)
		r = add_execs(p, m, caps, req->no_write, err);
	if (r >= 0)
		r = add_configs(p, m, caps, err);
	if (r >= 0)
		r = add_vdpau(p, m, caps, err);
	if (r >= 0 && !req->no_write)
		r = ovl_plan_add_firmware(p, m, err);
	if (r >= 0)
		r = add_devices(p, req, err);
	if (r >= 0)
		r = add_host_binds(p, req, err);
	return r;
}

/* The runtime's tmpfs destinations, copied (checked at apply time). */
static int copy_tmpfs_dests(struct ovl_plan *p, const struct ovl_request *req, struct gs_err *err)
{
	if (!req->n_tmpfs_dests)
		return 0;
	p->tmpfs_dests = calloc(req->n_tmpfs_dests, sizeof(*p->tmpfs_dests));
	if (!p->tmpfs_dests)
		return fail_nomem(err);
	for (size_t i = 0; i < req->n_tmpfs_dests; i++) {
		const char *d = req->tmpfs_dests[i];
		if (!d || !d[0] || strlen(d) > 1024)
			return gs_err_setx(err, EINVAL, "tmpfs mount %zu: bad destination", i);
		if (!(p->tmpfs_dests[i] = strdup(d)))
			return fail_nomem(err);
		p->n_tmpfs_dests++;
	}
	return 0;
}

int ovl_plan_build(const struct gs_index *manifest, const struct ovl_request *req,
		   struct ovl_plan **out, struct gs_err *err)
{
	int r = check_manifest(manifest, err);
	if (r < 0)
		return r;
	struct ovl_plan *p = calloc(1, sizeof(*p));
	if (!p || !(p->driver = strdup(manifest->driver))) {
		free(p);
		return fail_nomem(err);
	}
	p->no_write = req->no_write;
	p->caps = ovl_caps_effective(req->caps);
	if (req->cuda_compat_dir && (req->cuda_compat_dir[0] != '/' ||
				     strlen(req->cuda_compat_dir) > OVL_COMPAT_DIR_MAX))
		r = gs_err_setx(err, EINVAL, "cuda_compat_dir %.200s: not an absolute path of at most %d bytes",
				req->cuda_compat_dir, OVL_COMPAT_DIR_MAX);
	else if (req->cuda_compat_dir && !(p->cuda_compat_dir = strdup(req->cuda_compat_dir)))
		r = fail_nomem(err);
	if (r >= 0)
		r = copy_tmpfs_dests(p, req, err);
	if (r >= 0)
		r = build_ops(p, manifest, req, err);
	if (r < 0) {
		ovl_plan_free(p);
		return r;
	}
	*out = p;
	return 0;
}

/* ---- executables, config files, devices ---------------------------------- */

static bool have_dest(const struct ovl_plan *p, const char *dest)
{
	for (size_t i = 0; i < p->n_ops; i++)
		if (!strcmp(p->ops[i].dest, dest))
			return true;
	return false;
}

static int add_exec(struct ovl_plan *p, const struct gs_index *m, size_t i, const char *cap,
		    const char *name, bool no_write, struct gs_err *err)
{
	_cleanup_free_ char *dest = path_fmt("%s/%s", no_write ? OVL_BIN_FALLBACK : OVL_BIN_DIR, name);
	_cleanup_free_ char *target = path_fmt(OVL_ANCHOR "/bin/%s/%s", cap, name);
	if (!dest || !target)
		return fail_nomem(err);
	if (have_dest(p, dest))
		return 0; /* same name under two capabilities: the first wins */
	struct ovl_op *o = push_op(p, no_write ? OVL_OP_SYMLINK : OVL_OP_BIND_FILE,
				   no_write ? OVL_F_OPTIONAL : 0, dest);
	if (!o)
		return fail_nomem(err);
	o->source = strdup(no_write ? target : m->files[i].path);
	o->files = malloc(sizeof(*o->files));
	if (!o->source || !o->files)
		return fail_nomem(err);
	o->files[0] = i;
	o->n_files = 1;
	o->caps = m->files[i].caps;
	return 0;
}

static int add_execs(struct ovl_plan *p, const struct gs_index *m, unsigned int caps, bool no_write,
		     struct gs_err *err)
{
	bool any = false;
	for (size_t c = 0; c < GS_N_CAPS; c++) {
		unsigned int bit = gs_cap_order[c];
		if (!(caps & bit) || bit == GS_CAP_COMPAT32)
			continue;
		for (size_t i = 0; i < m->n_files; i++) {
			const char *name;
			if (m->files[i].kind != GS_KIND_BIN ||
			    !in_cap_dir(m->files[i].path, "bin", gs_cap_name(bit), &name))
				continue;
			if (no_write && !any) {
				struct ovl_op *o = push_op(p, OVL_OP_TMPFS,
							   OVL_F_IF_EMPTY | OVL_F_OPTIONAL,
							   OVL_BIN_FALLBACK);
				if (!o)
					return fail_nomem(err);
				o->mode = 0755;
			}
			any = true;
			int r = add_exec(p, m, i, gs_cap_name(bit), name, no_write, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* An optional bind of the staged file I of M at DEST; NULL when out of memory. */
static struct ovl_op *bind_staged_file(struct ovl_plan *p, const struct gs_index *m, size_t i,
				       const char *dest)
{
	struct ovl_op *o = push_op(p, OVL_OP_BIND_FILE, OVL_F_OPTIONAL, dest);
	if (!o || !(o->source = strdup(m->files[i].path)) || !(o->files = malloc(sizeof(size_t))))
		return NULL;
	o->files[0] = i;
	o->n_files = 1;
	o->caps = m->files[i].caps;
	return o;
}

static int add_configs(struct ovl_plan *p, const struct gs_index *m, unsigned int caps,
		       struct gs_err *err)
{
	for (size_t i = 0; i < m->n_files; i++) {
		const struct gs_index_file *f = &m->files[i];
		if (f->kind != GS_KIND_CONFIG || strncmp(f->path, "config/", 7) != 0)
			continue;
		if (f->caps && !(f->caps & caps))
			continue;
		_cleanup_free_ char *dest = path_fmt("/%s", f->path + 7);
		if (!dest)
			return fail_nomem(err);
		if (have_dest(p, dest))
			continue;
		if (!bind_staged_file(p, m, i, dest))
			return fail_nomem(err);
	}
	return 0;
}

/* libvdpau loads its driver from LIBDIR/vdpau/ (no cache, no search path):
 * with video, the staged libvdpau_nvidia is bound there, x86-64 and, with
 * compat32, i386.  Optional: a read-only root without the file skips it. */
static int add_vdpau(struct ovl_plan *p, const struct gs_index *m, unsigned int caps,
		     struct gs_err *err)
{
	for (size_t i = 0; (caps & GS_CAP_VIDEO) && i < m->n_files; i++) {
		const struct gs_index_file *f = &m->files[i];
		bool lib32 = f->kind == GS_KIND_LIB32;
		if ((f->kind != GS_KIND_LIB && !lib32) || (lib32 && !(caps & GS_CAP_COMPAT32)) ||
		    !f->soname || strncmp(f->soname, "libvdpau_nvidia.so.", 19) || strchr(f->soname, '/'))
			continue;
		_cleanup_free_ char *dest = path_fmt("/usr/lib/%s/vdpau/%s",
						     lib32 ? "i386-linux-gnu" : "x86_64-linux-gnu",
						     f->soname);
		if (!dest)
			return fail_nomem(err);
		if (have_dest(p, dest))
			continue;
		if (!bind_staged_file(p, m, i, dest))
			return fail_nomem(err);
	}
	return 0;
}

static int add_devices(struct ovl_plan *p, const struct ovl_request *req, struct gs_err *err)
{
	for (size_t i = 0; i < req->n_devices; i++) {
		const struct ovl_device *d = &req->devices[i];
		if (!memchr(d->name, '\0', sizeof(d->name)))
			return gs_err_setx(err, EINVAL, "device name not terminated within %zu bytes",
					   sizeof(d->name));
		if (!device_name_ok(d->name))
			return gs_err_setx(err, EINVAL,
					   "device name '%s' is neither a single component nor nvidia-caps/NAME",
					   d->name);
		_cleanup_free_ char *dest = path_fmt("/dev/%s", d->name);
		if (!dest)
			return fail_nomem(err);
		if (have_dest(p, dest))
			continue;
		struct ovl_op *o = push_op(p, OVL_OP_MKNOD, 0, dest);
		if (!o)
			return fail_nomem(err);
		o->major = d->major;
		o->minor = d->minor;
		o->mode = 0666;
	}
	return 0;
}

/* The host's IPC paths (ovl_host_ipc_find), each optional: a read-only
 * root without the mount point, or a source gone meanwhile, skips it. */
static int add_host_binds(struct ovl_plan *p, const struct ovl_request *req, struct gs_err *err)
{
	for (size_t i = 0; i < req->n_host_binds; i++) {
		const struct ovl_host_bind *b = &req->host_binds[i];
		if (!b->host || b->host[0] != '/' || !b->dest || b->dest[0] != '/' ||
		    gs_store_path_check(b->dest + 1))
			return gs_err_setx(err, EINVAL, "host path %zu: bad source or destination", i);
		if (have_dest(p, b->dest))
			return gs_err_setx(err, EEXIST, "%s: already a destination of the plan", b->dest);
		struct ovl_op *o = push_op(p, OVL_OP_BIND_HOST, OVL_F_OPTIONAL | (b->rw ? OVL_F_RW : 0),
					   b->dest);
		if (!o || !(o->source = strdup(b->host)))
			return fail_nomem(err);
		o->mode = b->dir ? S_IFDIR : S_IFSOCK;
		o->caps = b->caps;
	}
	return 0;
}

int ovl_plan_add_firmware(struct ovl_plan *p, const struct gs_index *m, struct gs_err *err)
{
	struct ovl_op tmp = {0};
	for (size_t i = 0; i < m->n_files; i++) {
		const char *path = m->files[i].path;
		if (m->files[i].kind != GS_KIND_FIRMWARE || strncmp(path, "firmware/", 9) ||
		    strchr(path + 9, '/'))
			continue;
		size_t *v = realloc(tmp.files, (tmp.n_files + 1) * sizeof(*v));
		if (!v) {
			free(tmp.files);
			return fail_nomem(err);
		}
		tmp.files = v;
		v[tmp.n_files++] = i;
	}
	if (tmp.n_files == 0)
		return 0;
	_cleanup_free_ char *dest = path_fmt("/lib/firmware/nvidia/%s", m->driver);
	struct ovl_op *o = dest ? push_op(p, OVL_OP_BIND_DIR, OVL_F_OPTIONAL, dest) : NULL;
	if (!o || !(o->source = strdup("firmware"))) {
		free(tmp.files);
		return fail_nomem(err);
	}
	o->files = tmp.files;
	o->n_files = tmp.n_files;
	return 0;
}
