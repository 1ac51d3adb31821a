/* SPDX-License-Identifier: Apache-2.0 */
/* The plan for one container, built the one way the hook, its dry run and
 * `gpu-stage plan` share: the device nodes of the request, the host's IPC
 * paths its capabilities get, then ovl_plan_build. */
#include <stdlib.h>

#include "gs/config.h"
#include "hook.h"

int hk_plan_build(const struct hk_plan_in *in, struct hk_planned *out, struct gs_err *err)
{
	const struct ovl_env *e = in->env;
	const struct hk_dev_roots roots = {in->proc_root, in->dev_root, in->conf->inventory};
	int r = hk_devices_resolve(e, e->caps, &roots, in->conf->require_uvm, &out->devs,
				   &out->n_devs, &out->dev_note, err);
	if (r >= 0)
		r = ovl_host_ipc_find(in->host_root, in->conf->mps_pipe_dir, in->conf->mps_log_dir,
				      ovl_caps_effective(e->caps), &out->ipc, &out->n_ipc, &out->ipc_note,
				      err);
	if (r < 0)
		return r;
	struct ovl_request req = {.caps = e->caps, .devices = out->devs, .n_devices = out->n_devs,
				  .host_binds = out->ipc, .n_host_binds = out->n_ipc,
				  .no_write = in->cfg->readonly,
				  .tmpfs_dests = (const char *const *)in->cfg->tmpfs_dests,
				  .n_tmpfs_dests = in->cfg->n_tmpfs_dests,
				  .cuda_compat_dir = in->conf->cuda_compat_dir};
	return ovl_plan_build(in->index, &req, &out->plan, err);
}

void hk_planned_clear(struct hk_planned *p)
{
	free(p->devs);
	free(p->dev_note);
	ovl_host_binds_free(p->ipc, p->n_ipc);
	free(p->ipc_note);
	ovl_plan_freep(&p->plan);
	*p = (struct hk_planned){0};
}
