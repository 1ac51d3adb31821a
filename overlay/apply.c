/* SPDX-License-Identifier: Apache-2.0 */
/* ovl_plan_apply: runs a plan inside the container's rootfs. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/mountinfo.h"
#include "gs/fsx.h"
#include "internal.h"

int ovl_skip(struct ovl_ctx *c, size_t i, const char *fmt, ...)
{
	struct ovl_op_result *r = &c->res->ops[i];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->note, sizeof(r->note), fmt, ap);
	va_end(ap);
	r->status = OVL_SKIPPED;
	return 0;
}

void ovl_result_clear(struct ovl_result *r)
{
	free(r->ops);
	memset(r, 0, sizeof(*r));
}

static int dispatch(struct ovl_ctx *c, size_t i, struct gs_err *err)
{
	switch (c->plan->ops[i].type) {
	case OVL_OP_TMPFS:
		return ovl_apply_tmpfs(c, i, err);
	case OVL_OP_BIND_DIR:
	case OVL_OP_BIND_FILE:
	case OVL_OP_BIND_HOST:
		return ovl_apply_bind(c, i, err);
	case OVL_OP_MKNOD:
		return ovl_apply_mknod(c, i, err);
	case OVL_OP_LDCACHE:
		return ovl_apply_ldcache(c, i, err);
	case OVL_OP_WRITE_FILE:
		return ovl_apply_write(c, i, err);
	case OVL_OP_SYMLINK:
		return ovl_apply_symlink(c, i, err);
	}
	return gs_err_setx(err, EINVAL, "unknown operation %d", (int)c->plan->ops[i].type);
}

/* Our tmpfs mounts become read-only once everything is in place. */
static int seal_all(struct ovl_ctx *c, struct gs_err *err)
{
	for (size_t k = 0; k < c->n_tmpfs; k++) {
		int r = ovl_seal(c->tmpfs[k], c->tmpfs_dest[k], err);
		if (r < 0)
			return r;
	}
	return 0;
}

int ovl_ids_add(uint64_t **v, size_t *n, uint64_t id, struct gs_err *err)
{
	uint64_t *nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return gs_err_setx(err, ENOMEM, "reading the mount table: out of memory");
	*v = nv;
	nv[(*n)++] = id;
	return 0;
}

/* What the apply step needs of one mount (gs_mountinfo_next reads it). */
struct mnt_line {
	uint64_t id;
	unsigned int major, minor; /* the superblock */
	bool whole_tmpfs;          /* root "/" and type tmpfs */
	bool at_slash;             /* mount point "/" */
	bool shared;               /* optional field "shared:N" */
};

struct mnt_lines {
	struct mnt_line *v;
	size_t n, alloc;
	struct gs_err *err;
};

static int add_line(const struct gs_mountinfo *m, void *data)
{
	struct mnt_lines *l = data;
	if (l->n == l->alloc) {
		size_t alloc = l->alloc ? l->alloc * 2 : 64;
		struct mnt_line *nv = realloc(l->v, alloc * sizeof(*nv));
		if (!nv)
			return gs_err_setx(l->err, ENOMEM, "reading the mount table: out of memory");
		l->v = nv;
		l->alloc = alloc;
	}
	l->v[l->n++] = (struct mnt_line){
		.id = m->id, .major = m->major, .minor = m->minor, .shared = m->shared,
		.whole_tmpfs = !strcmp(m->root, "/") && !strcmp(m->fstype, "tmpfs"),
		.at_slash = !strcmp(m->point, "/")};
	return 0;
}

/* The caller's mount table: TABLE (read from /proc/PID/mountinfo of a
 * process in this namespace just before) or /proc/thread-self/mountinfo. */
static int read_mounts(const char *table, size_t table_len, struct mnt_line **out, size_t *n,
		       struct gs_err *err)
{
	static const char file[] = "/proc/thread-self/mountinfo";
	struct mnt_lines l = {.err = err};
	int r = table ? gs_mountinfo_each_text(table, table_len, "the container's mountinfo", add_line,
					       &l, err)
		      : gs_mountinfo_each(file, add_line, &l, err);
	if (r < 0 && !table)
		gs_err_wrap(err, "the mount table (needed to keep mounts from propagating)");
	*out = l.v;
	*n = l.n;
	return r;
}

static const struct mnt_line *find_mount(const struct mnt_line *v, size_t n, uint64_t id)
{
	for (size_t k = 0; k < n; k++)
		if (v[k].id == id)
			return &v[k];
	return NULL;
}

/* Whether the superblock of M shows on M alone: a tmpfs that the runtime
 * made for this container.  Before pivot_root (every hook stage) the
 * container's namespace still holds its copy of each host mount, so a
 * host tmpfs bound into the container (an emptyDir of medium Memory,
 * -v /dev/shm:..., a host tmpfs at /dev) shows at least twice. */
static bool sb_alone(const struct mnt_line *v, size_t n, const struct mnt_line *m)
{
	for (size_t k = 0; k < n; k++)
		if (&v[k] != m && v[k].major == m->major && v[k].minor == m->minor)
			return false;
	return true;
}

/* The runtime's tmpfs mounts (config.json's mounts[] of type tmpfs, in
 * P->tmpfs_dests) that count as the container's own: each destination is
 * resolved inside the root, and the mount found there is accepted when it
 * is a whole tmpfs whose superblock no other mount shows.  Anything else
 * found there (a bind of a host tmpfs over it, another file system) is
 * left as a volume.  Should the rootfs already be the namespace's "/"
 * (after pivot_root, when the host's mounts are gone and a single
 * appearance would prove nothing), none is accepted. */
static int accept_runtime_tmpfs(struct ovl_ctx *c, const struct mnt_line *v, size_t n,
				struct gs_err *err)
{
	const struct mnt_line *root = find_mount(v, n, c->root_mnt);
	if (!root || root->at_slash)
		return 0;
	for (size_t i = 0; i < c->plan->n_tmpfs_dests; i++) {
		struct gs_err e = GS_ERR_INIT;
		uint64_t id = 0;
		_cleanup_close_ int fd = gs_open_in_root(c->rootfd, c->plan->tmpfs_dests[i],
							 O_PATH | O_DIRECTORY, &e);
		if (fd < 0 || ovl_mnt_id(fd, &id, &e) < 0)
			continue;
		const struct mnt_line *m = find_mount(v, n, id);
		if (!m || id == c->root_mnt || !m->whole_tmpfs || !sb_alone(v, n, m))
			continue;
		int r = ovl_ids_add(&c->tmpfs_ids, &c->n_tmpfs_ids, id, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* From the caller's mount namespace (the container's): the shared mounts
 * and the runtime's own tmpfs mounts.  Read once: the mounts made
 * afterwards are ours, never attached onto a shared one, and recorded as
 * tmpfs when they are. */
static int load_mounts(struct ovl_ctx *c, const char *table, size_t table_len,
		       struct gs_err *err)
{
	_cleanup_free_ struct mnt_line *v = NULL;
	size_t n = 0;
	int r = read_mounts(table, table_len, &v, &n, err);
	for (size_t k = 0; r >= 0 && k < n; k++)
		if (v[k].shared)
			r = ovl_ids_add(&c->shared, &c->n_shared, v[k].id, err);
	return r < 0 ? r : accept_runtime_tmpfs(c, v, n, err);
}

/* The kernel's own file systems in a container (its /proc, /sys, cgroups,
 * ...): a mount over one of them hides what the runtime masks there
 * later (maskedPaths, readonlyPaths), so an image's symlink must not lead
 * a target into one.  NULL for any other. */
static const char *pseudo_fs(unsigned long type)
{
	switch (type) {
	case PROC_SUPER_MAGIC: return "procfs";
	case SYSFS_MAGIC: return "sysfs";
	case CGROUP_SUPER_MAGIC: return "cgroupfs";
	case CGROUP2_SUPER_MAGIC: return "cgroup2";
	case DEVPTS_SUPER_MAGIC: return "devpts";
	case SECURITYFS_MAGIC: return "securityfs";
	case DEBUGFS_MAGIC: return "debugfs";
	case TRACEFS_MAGIC: return "tracefs";
	case BPF_FS_MAGIC: return "bpf";
	case EFIVARFS_MAGIC: return "efivarfs";
	case PSTOREFS_MAGIC: return "pstore";
	case SELINUX_MAGIC: return "selinuxfs";
	case BINFMTFS_MAGIC: return "binfmt_misc";
	default: return NULL;
	}
}

int ovl_check_private(struct ovl_ctx *c, int target, const char *dest, struct gs_err *err)
{
	uint64_t id;
	struct statfs sf;
	if (fstatfs(target, &sf) < 0)
		return gs_err_set(err, errno, "%s", dest);
	const char *fs = pseudo_fs((unsigned long)sf.f_type);
	if (fs)
		return gs_err_setx(err, EXDEV,
				   "%s lies on the container's %s (the image's symlinks lead there): a mount there would cover the kernel's files the runtime masks; refusing",
				   dest, fs);
	int r = ovl_mnt_id(target, &id, err);
	if (r < 0)
		return gs_err_wrap(err, "%s", dest);
	for (size_t k = 0; k < c->n_shared; k++)
		if (c->shared[k] == id)
			return gs_err_setx(err, EXDEV,
					   "%s lies on a mount with shared propagation: a mount there would propagate out of the container (e.g. into the host's mount table); refusing",
					   dest);
	return 0;
}

int ovl_attach_private(struct ovl_ctx *c, int tree, int target, const char *dest,
		       struct gs_err *err)
{
	int r = ovl_check_private(c, target, dest, err);
	return r < 0 ? r : ovl_attach(tree, target, dest, err);
}

static void ctx_close(struct ovl_ctx *c)
{
	free(c->shared);
	free(c->tmpfs_ids);
	for (size_t k = 0; k < c->n_tmpfs; k++)
		close(c->tmpfs[k]);
	if (c->anchorfd >= 0)
		close(c->anchorfd);
}

static int run_ops(struct ovl_ctx *c, struct gs_err *err)
{
	for (size_t i = 0; i < c->plan->n_ops; i++) {
		const struct ovl_op *o = &c->plan->ops[i];
		int r = dispatch(c, i, err);
		if (r < 0) {
			c->res->ops[i].status = OVL_FAILED;
			snprintf(c->res->ops[i].note, sizeof(c->res->ops[i].note), "%s", err->msg);
			return gs_err_wrap(err, "%s %s", ovl_op_name(o->type), o->dest);
		}
		if (c->res->ops[i].status == OVL_PENDING)
			c->res->ops[i].status = OVL_APPLIED;
	}
	return seal_all(c, err);
}

int ovl_plan_apply(const struct ovl_plan *p, struct ovl_sources *src, int rootfd,
		   const char *mounts, size_t mounts_len, struct ovl_result *res, struct gs_err *err)
{
	memset(res, 0, sizeof(*res));
	res->ops = calloc(p->n_ops + 1, sizeof(*res->ops));
	if (!res->ops)
		return gs_err_setx(err, ENOMEM, "applying the plan: out of memory");
	res->n_ops = p->n_ops;
	struct ovl_ctx c = {.plan = p, .src = src, .res = res, .rootfd = rootfd, .anchorfd = -1};
	struct stat st;
	if (fstat(rootfd, &st) < 0 || !S_ISDIR(st.st_mode))
		return gs_err_setx(err, ENOTDIR, "container rootfs is not a directory");
	int r = ovl_mnt_id(rootfd, &c.root_mnt, err);
	if (r < 0)
		return gs_err_wrap(err, "container rootfs");
	r = load_mounts(&c, mounts, mounts_len, err);
	if (r >= 0)
		r = run_ops(&c, err);
	ctx_close(&c);
	return r;
}
