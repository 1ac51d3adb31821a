/* SPDX-License-Identifier: Apache-2.0 */
/* runtime configure --podman | --crio: the OCI hooks.d file NAME.json
 * (oci-hooks(5), version 1.0.0) that has Podman and CRI-O add
 * gpu-stage-hook as a createRuntime hook to every container.  hooks.d's
 * "when" has no condition on the process environment (only always,
 * annotations, commands, hasBindMounts), so the hook runs for every
 * container and returns at once for one without NVIDIA_VISIBLE_DEVICES.
 * Neither engine hands a hook its own environment: the hook reads
 * /etc/gpu-stage/config.json, or the file GPU_STAGE_CONFIG named when this
 * command ran (written into the hook's arguments as --config FILE).
 *
 * Directory: /usr/share/containers/oci/hooks.d for both.  It is CRI-O's
 * default hooks_dir (crio.conf(5)), and Podman's: oci-hooks(5) names
 * /etc/containers/oci/hooks.d too, but only for an engine with no
 * hooks_dir at all, and containers-common's defaults (Debian 12's Podman
 * 4.3) set it to /usr/share/containers/oci/hooks.d alone, so a hook file
 * in /etc/containers/oci/hooks.d is never run there (seen). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "gs/cleanup.h"
#include "runtime.h"

#define HOOK_STAGE "createRuntime"

static json_t *hook_file(const struct rt_opts *o)
{
	json_t *args = json_pack("[s]", "gpu-stage-hook");
	if (args && o->gs_config) {
		json_array_append_new(args, json_string("--config"));
		json_array_append_new(args, json_string(o->gs_config));
	}
	if (args)
		json_array_append_new(args, json_string(HOOK_STAGE));
	return json_pack("{s:s, s:{s:s, s:o, s:[s]}, s:{s:b}, s:[s]}", "version", "1.0.0", "hook", "path",
			 o->hook, "args", args, "env", GS_HOOK_ENV, "when", "always", 1, "stages", HOOK_STAGE);
}

/* Is the hook file there gpu-stage's (its hook.path a gpu-stage-hook)? */
static int is_ours(const struct rt_change *c, bool *ours, struct gs_err *err)
{
	json_error_t je;
	_cleanup_(gs_json_decrefp) json_t *j = json_loadb(c->old, c->old_len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return gs_err_setx(err, EBADMSG, "%s: line %d, column %d: %s (not changed)", c->path,
				   je.line, je.column, je.text);
	const char *path = json_string_value(json_object_get(json_object_get(j, "hook"), "path"));
	const char *slash = path ? strrchr(path, '/') : NULL;
	*ours = path && !strcmp(slash ? slash + 1 : path, "gpu-stage-hook");
	return 0;
}

int rt_plan_hooksd(const struct rt_opts *o, struct rt_plan *p, struct gs_err *err)
{
	const char *dir = o->config ? o->config : RT_HOOKS_DIR_DEFAULT;
	_cleanup_free_ char *path = NULL;
	if (dir[0] != '/')
		return gs_err_setx(err, EINVAL, "%s: the hooks.d directory must be an absolute path", dir);
	if (asprintf(&path, "%s%s%s.json", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", o->name) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	struct rt_change *c = rt_plan_add(p, RT_FILE, path, err);
	if (!c)
		return -ENOMEM;
	int r = rt_read_old(c, err);
	bool ours = false;
	if (r >= 0 && c->existed)
		r = is_ours(c, &ours, err);
	if (r < 0)
		return r;
	if (c->existed && !ours && !o->force)
		return gs_err_setx(err, EEXIST,
				   "%s: a hook file of that name is there and does not run gpu-stage-hook (not changed; --force %s it, or choose another --name)",
				   path, o->undo ? "removes" : "replaces");
	if (o->undo) {
		c->remove = true;
	} else {
		_cleanup_(gs_json_decrefp) json_t *j = hook_file(o);
		char *text = j ? json_dumps(j, JSON_INDENT(4)) : NULL;
		if (!text || asprintf(&c->new, "%s\n", text) < 0) {
			free(text);
			return gs_err_setx(err, ENOMEM, "out of memory");
		}
		free(text);
		c->new_len = strlen(c->new);
	}
	p->after = o->engine == RT_PODMAN
			   ? "new podman containers get it (a --hooks-dir or a hooks_dir in containers.conf replaces the default directory: it must name this one)"
			   : "restart crio if its hooks_dir is not watched";
	r = rt_set_text(&p->summary, err, "%s the OCI hook %s (%s at %s)",
			o->undo ? "removed" : c->existed ? "updated" : "added", path, o->hook, HOOK_STAGE);
	if (r >= 0)
		r = rt_set_text(&p->unchanged, err, "%s %s", path,
				o->undo ? "is not there" : "is there already");
	return r;
}
