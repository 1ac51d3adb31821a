/* SPDX-License-Identifier: Apache-2.0 */
/* ovl_plan_apply: runs a plan inside the container's rootfs. */
#include <errno.h>
#include <fcntl.h>
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

static void ctx_close(struct ovl_ctx *c)
{
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
	r = run_ops(&c, err);
	ctx_close(&c);
	return r;
}
