/* SPDX-License-Identifier: Apache-2.0 */
/* ovl_plan_apply: runs a plan inside the container's rootfs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
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

/* From the caller's mount namespace (the container's): the shared mounts
 * (optional field "shared:N") and the whole tmpfs mounts (root "/", type
 * tmpfs).  Read once: the mounts made afterwards are ours, never attached
 * onto a shared one, and recorded as tmpfs when they are. */
static int load_mounts(struct ovl_ctx *c, struct gs_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/thread-self/mountinfo", "re");
	if (!f)
		return gs_err_set(err, errno,
				  "/proc/thread-self/mountinfo (needed to keep mounts from propagating)");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		char *dash = strstr(line, " - ");
		char root[8], fstype[16];
		uint64_t id;
		if (!dash || sscanf(line, "%" SCNu64 " %*s %*s %7s", &id, root) != 2 ||
		    sscanf(dash + 3, "%15s", fstype) != 1)
			continue;
		*dash = '\0';
		int r = 0;
		if (strstr(line, " shared:"))
			r = ovl_ids_add(&c->shared, &c->n_shared, id, err);
		if (r >= 0 && !strcmp(root, "/") && !strcmp(fstype, "tmpfs"))
			r = ovl_ids_add(&c->tmpfs_ids, &c->n_tmpfs_ids, id, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int ovl_check_private(struct ovl_ctx *c, int target, const char *dest, struct gs_err *err)
{
	uint64_t id;
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
		   struct ovl_result *res, struct gs_err *err)
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
	r = load_mounts(&c, err);
	if (r >= 0)
		r = run_ops(&c, err);
	ctx_close(&c);
	return r;
}
