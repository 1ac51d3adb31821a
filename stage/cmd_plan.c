/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage plan: what a container would receive, without starting it.
 * The hook's dry run (gpu-stage-hook --dry-run) from the CLI: the same
 * request parsing (hook/oci.c: config.json, annotations, NVIDIA_*), the
 * same devices (hook/gpus.c) and the same plan (libgsoverlay), printed as
 * the dry run prints it or, with --json, as the audit record's "plan".
 * Nothing is written; the store is only read (under its readers' lock). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../hook/hook.h"
#include "cmd.h"
#include "gs/cleanup.h"
#include "gs/jsonw.h"
#include "gs/manifest.h"
#include "gs/overlay.h"

#define PLAN_ENV_MAX 256

struct plan_opts {
	const char *bundle, *rootfs, *caps, *driver, *store, *dev_root, *proc_root;
	char *env[PLAN_ENV_MAX];
	size_t n_env;
	bool json;
};

static void plan_usage(FILE *f)
{
	fputs("Usage: gpu-stage plan --bundle DIR | --rootfs DIR [--env K=V]... [--caps LIST]\n"
	      "                      [--driver VER] [--store DIR] [--dev-root DIR]\n"
	      "                      [--proc-root DIR] [--json]\n"
	      "\n"
	      "What a container would receive from gpu-stage-hook, without starting it\n"
	      "(the hook's --dry-run): the mounts, device nodes and ld.so.cache entries.\n"
	      "Nothing is written.\n"
	      "\n"
	      "  --bundle DIR     an OCI bundle: its config.json's process.env, annotations,\n"
	      "                   root.readonly and tmpfs mounts, as the hook reads them\n"
	      "  --rootfs DIR     a root filesystem alone (read-only when its mount is)\n"
	      "  --env K=V        a variable of the container's environment (before\n"
	      "                   config.json's: it wins), e.g. NVIDIA_VISIBLE_DEVICES=all\n"
	      "  --caps LIST      the capabilities asked for (instead of\n"
	      "                   NVIDIA_DRIVER_CAPABILITIES)\n"
	      "  --driver VER     the staged version (default: the configuration's, else the\n"
	      "                   loaded module's)\n"
	      "  --store DIR      the store (default: the configuration's, else " GS_DEFAULT_STORE ")\n"
	      "  --dev-root DIR, --proc-root DIR   where the device nodes and driver/nvidia\n"
	      "                   are (default: the configuration's, else /dev, /proc)\n"
	      "  --json           the plan as the audit record's \"plan\" member\n"
	      "\n"
	      "A container that asks for no GPU (NVIDIA_VISIBLE_DEVICES unset or void)\n"
	      "receives nothing: said so, exit 0.\n",
	      f);
}

/* -1 to go on, else the exit code. */
static int parse_plan(int argc, char **argv, struct plan_opts *o)
{
	static const struct option opts[] = {
		{"bundle", required_argument, NULL, 'b'},   {"rootfs", required_argument, NULL, 'r'},
		{"env", required_argument, NULL, 'e'},      {"caps", required_argument, NULL, 'c'},
		{"driver", required_argument, NULL, 'd'},   {"store", required_argument, NULL, 's'},
		{"dev-root", required_argument, NULL, 'D'}, {"proc-root", required_argument, NULL, 'P'},
		{"json", no_argument, NULL, 'j'},           {"help", no_argument, NULL, 'h'},
		{0}};
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'b': o->bundle = optarg; break;
		case 'r': o->rootfs = optarg; break;
		case 'c': o->caps = optarg; break;
		case 'd': o->driver = optarg; break;
		case 's': o->store = optarg; break;
		case 'D': o->dev_root = optarg; break;
		case 'P': o->proc_root = optarg; break;
		case 'j': o->json = true; break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=' || o->n_env == PLAN_ENV_MAX) {
				fprintf(stderr, "gpu-stage: plan: --env takes KEY=VALUE (at most %d of them)\n",
					PLAN_ENV_MAX);
				return GS_EXIT_USAGE;
			}
			o->env[o->n_env++] = optarg;
			break;
		case 'h': plan_usage(stdout); return GS_EXIT_OK;
		default: return GS_EXIT_USAGE;
		}
	}
	if (optind != argc || !o->bundle == !o->rootfs) {
		fprintf(stderr, "gpu-stage: plan: %s (see gpu-stage plan --help)\n",
			optind != argc ? "unexpected argument" : "give one of --bundle DIR and --rootfs DIR");
		return GS_EXIT_USAGE;
	}
	return -1;
}

/* The container's side: config.json of --bundle (or nothing), with the
 * --env entries in front of its process.env. */
static int read_container(const struct plan_opts *o, struct hk_config *cfg, struct gs_err *err)
{
	*cfg = (struct hk_config){0};
	if (o->bundle) {
		_cleanup_close_ int bfd = open(o->bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (bfd < 0)
			return gs_err_set(err, errno, "bundle %s", o->bundle);
		int r = hk_config_load(bfd, o->bundle, cfg, err);
		if (r == 1)
			return gs_err_setx(err, EBADMSG, "%s/config.json: jansson cannot read it", o->bundle);
		if (r < 0)
			return r;
	} else {
		struct statvfs sv;
		if (statvfs(o->rootfs, &sv) < 0)
			return gs_err_set(err, errno, "rootfs %s", o->rootfs);
		cfg->readonly = (sv.f_flag & ST_RDONLY) != 0;
	}
	char **env = calloc(cfg->n_env + o->n_env + 1, sizeof(char *));
	if (!env)
		return gs_err_setx(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < o->n_env; i++)
		if (!(env[i] = strdup(o->env[i]))) {
			hk_request_vars_free(env, i);
			return gs_err_setx(err, ENOMEM, "out of memory");
		}
	if (cfg->n_env)
		memcpy(env + o->n_env, cfg->env, cfg->n_env * sizeof(char *));
	free(cfg->env);
	cfg->env = env;
	cfg->n_env += o->n_env;
	return 0;
}

/* The request as the hook reads it (the configuration's "requests"). */
static int read_request(const struct plan_opts *o, const struct gs_config *c,
			const struct hk_config *cfg, struct ovl_env *env, struct gs_err *err)
{
	char **vars = NULL;
	size_t n = 0;
	int r = hk_request_vars(cfg, c->requests == GS_REQUESTS_ENV, false, &vars, &n, err);
	if (r >= 0)
		r = ovl_env_parse(vars, n, env, err);
	hk_request_vars_free(vars, n);
	if (r < 0)
		return r;
	if (o->caps) {
		if ((r = gs_caps_parse(o->caps, &env->caps, err)) < 0)
			return r;
		env->caps_given = true;
	}
	if (!env->caps_given)
		env->caps = c->caps;
	return 0;
}

struct planned {
	struct hk_config cfg;
	struct ovl_env env;
	char *driver;
	struct gs_store_ver ver;
	struct gs_index *index;
	struct hk_planned pl;
};

static void planned_clear(struct planned *p)
{
	hk_config_clear(&p->cfg);
	ovl_env_clear(&p->env);
	free(p->driver);
	gs_index_freep(&p->index);
	gs_store_ver_close(&p->ver);
	hk_planned_clear(&p->pl);
}

/* The staged driver's index and the plan for the request in P->env. */
static int make_plan(const struct plan_opts *o, const struct gs_config *c, struct planned *p,
		     struct gs_err *err)
{
	const char *proc = o->proc_root ? o->proc_root : c->proc_root;
	const char *drv = o->driver ? o->driver : c->driver;
	int r = drv ? ((p->driver = strdup(drv)) ? 0 : gs_err_setx(err, ENOMEM, "out of memory"))
		    : ovl_driver_version(proc, &p->driver, err);
	if (r >= 0)
		r = gs_store_ver_open(o->store ? o->store : c->store, p->driver, &p->ver, err);
	if (r >= 0)
		r = gs_index_read_at(p->ver.verfd, p->ver.dir, p->driver, &p->index, err);
	if (r >= 0)
		r = ovl_require_check(&p->env, p->driver, NULL, 0, err);
	if (r < 0)
		return r;
	struct hk_plan_in in = {.env = &p->env, .cfg = &p->cfg, .conf = c, .proc_root = proc,
				.dev_root = o->dev_root ? o->dev_root : c->dev_root,
				.host_root = c->host_root, .index = p->index};
	return hk_plan_build(&in, &p->pl, err);
}

static int print_plan(const struct plan_opts *o, const struct planned *p, struct gs_err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (o->json) {
		struct gs_jw w;
		int r = gs_jw_start(&w, err);
		if (r < 0)
			return r;
		ovl_plan_write(&w, NULL, p->pl.plan, p->index, p->ver.dir, NULL);
		if ((r = gs_jw_finish(&w, &text, &len, err)) < 0)
			return r;
		printf("%s\n", text);
		return 0;
	}
	if (!(text = ovl_plan_describe(p->pl.plan, p->ver.dir)))
		return gs_err_setx(err, ENOMEM, "out of memory");
	fputs(text, stdout);
	return 0;
}

int cmd_plan(int argc, char **argv)
{
	struct plan_opts o = {0};
	int r = parse_plan(argc, argv, &o);
	if (r >= 0)
		return r;
	const struct gs_config *c = cli_config();
	if (!c)
		return GS_EXIT_FAIL;
	struct gs_err err = GS_ERR_INIT;
	_cleanup_(planned_clear) struct planned p = {.ver = {.verfd = -1, .lockfd = -1}};
	r = read_container(&o, &p.cfg, &err);
	if (r >= 0)
		r = read_request(&o, c, &p.cfg, &p.env, &err);
	if (r >= 0 && (p.env.visible == OVL_VISIBLE_UNSET || p.env.visible == OVL_VISIBLE_VOID)) {
		if (o.json)
			puts("{\"requested\": false}");
		else
			puts("nothing: the container asks for no GPU (NVIDIA_VISIBLE_DEVICES unset or void)");
		return GS_EXIT_OK;
	}
	if (r >= 0)
		r = make_plan(&o, c, &p, &err);
	if (r >= 0)
		r = print_plan(&o, &p, &err);
	if (r < 0) {
		fprintf(stderr, "gpu-stage: plan: %s\n", err.msg);
		return GS_EXIT_FAIL;
	}
	return GS_EXIT_OK;
}
