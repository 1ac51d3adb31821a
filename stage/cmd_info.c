/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage info: the host's readiness on one screen.  The loaded module,
 * the staged versions (current: the loaded one), the device nodes a GPU
 * container needs (gpu-stage devices' check: gs/hostdev.h), the cgroup version, the engines gpu-stage is
 * registered with (the planners of `runtime configure`, run without
 * writing: rt_probe), the CDI spec (cdi_check) and the audit log.  Every
 * problem is printed with the command that fixes it; exit 0 when there is
 * none, 1 when there is one, 2 usage error.
 *
 * --root DIR reads the host under DIR (tests: fake trees): the
 * configuration DIR/etc/gpu-stage/config.json (unless GPU_STAGE_CONFIG
 * names one) and every path it gives or defaults to, the engines' files,
 * /sys/fs/cgroup, all prefixed by DIR.  --store names a store as it is. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "cmd.h"
#include "gs/cleanup.h"
#include "gs/hostdev.h"
#include "gs/overlay.h"
#include "gs/stage.h"
#include "runtime.h"

#define INFO_MAX_PROBLEMS 96 /* 64 GPUs' nodes, the control nodes, the rest */

struct info_opts {
	const char *root; /* NULL: / */
	const char *store;
	bool json;
};

struct problem {
	char *what, *fix;
};

struct engine {
	const char *name;   /* "docker", "containerd", "podman/crio" */
	enum rt_engine e;
	const char *flag;   /* runtime configure's option */
	char *file;         /* DIR + its default file */
	bool present;       /* the file (directory) is there */
	struct rt_probe p;
	char *error;        /* its file could not be read */
};

struct info {
	struct gs_config conf; /* when read here (--root) */
	const struct gs_config *c;
	char *proc, *dev, *cdi_dir, *audit, *store, *cgroupfs;
	char *loaded;          /* the module's version, or NULL */
	char **versions;       /* staged */
	size_t n_versions;
	size_t n_gpus;
	const char *cgroup;    /* "v1", "v2", "hybrid" (v1 with cgroup2 at unified), "unknown" */
	struct engine eng[3];
	int cdi;               /* enum cdi_state, < 0 error */
	char *cdi_file, *cdi_why;
	long long audit_bytes; /* -1: no log yet */
	json_t *devices;       /* [{"path", "present"}] */
	struct problem pr[INFO_MAX_PROBLEMS];
	size_t n_pr;
};

static void usage(FILE *f)
{
	fputs("Usage: gpu-stage info [--json] [--root DIR] [--store DIR]\n"
	      "\n"
	      "The host's readiness for GPU containers: the loaded NVIDIA module, the\n"
	      "staged versions and which one is current, the device nodes (/dev/nvidiactl,\n"
	      "/dev/nvidia-uvm, /dev/nvidia-uvm-tools, /dev/nvidiaN per GPU), the cgroup\n"
	      "version, the engines gpu-stage is registered with (Docker, containerd,\n"
	      "Podman and CRI-O), the CDI spec, the audit log.  Each problem is printed\n"
	      "with the command that fixes it.\n"
	      "\n"
	      "  --json       machine-readable output\n"
	      "  --root DIR   read the host under DIR: DIR/proc, DIR/dev, the engines'\n"
	      "               files, DIR/etc/gpu-stage/config.json and the paths it gives\n"
	      "  --store DIR  the store (default: the configuration's, else " GS_DEFAULT_STORE ")\n"
	      "\n"
	      "Exit status: 0 ready, 1 a problem was found, 2 usage error.\n",
	      f);
}

static int parse(int argc, char **argv, struct info_opts *o)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"root", required_argument, NULL, 'r'},
		{"store", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'}, {0}};
	int ch;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "jr:s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': o->json = true; break;
		case 'r': o->root = optarg; break;
		case 's': o->store = optarg; break;
		case 'h': usage(stdout); return GS_EXIT_OK;
		default:
			fprintf(stderr, "gpu-stage: info: unknown option or missing argument '%s' (see gpu-stage info --help)\n",
				argv[optind - 1]);
			return GS_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gpu-stage: info: unexpected argument '%s' (see gpu-stage info --help)\n",
			argv[optind]);
		return GS_EXIT_USAGE;
	}
	if (o->root && o->root[0] != '/') {
		fprintf(stderr, "gpu-stage: info: --root %s: an absolute path is needed\n", o->root);
		return GS_EXIT_USAGE;
	}
	if (o->root && !strcmp(o->root, "/"))
		o->root = NULL;
	return -1;
}

__attribute__((format(printf, 3, 4))) static void problem(struct info *in, const char *fix,
							  const char *fmt, ...)
{
	if (in->n_pr >= INFO_MAX_PROBLEMS) /* 64 GPUs' nodes and every other part fit */
		return;
	struct problem *p = &in->pr[in->n_pr];
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&p->what, fmt, ap);
	va_end(ap);
	if (r < 0)
		return; /* out of memory: the exit status still says not ready */
	p->fix = fix ? strdup(fix) : NULL;
	in->n_pr++;
}

/* ROOT + PATH, malloc'd (PATH alone without --root). */
static char *under(const char *root, const char *path)
{
	char *s = NULL;
	return asprintf(&s, "%s%s", root ? root : "", path) < 0 ? NULL : s;
}

static int oom(void)
{
	fprintf(stderr, "gpu-stage: info: out of memory\n");
	return -ENOMEM;
}

static int paths(struct info *in, const struct info_opts *o)
{
	const char *env = getenv(GS_CONFIG_ENV);
	if (o->root && !(env && *env)) {
		_cleanup_free_ char *cf = under(o->root, GS_CONFIG_DEFAULT);
		struct gs_err err = GS_ERR_INIT;
		if (!cf)
			return oom();
		if (gs_config_load(cf, false, &in->conf, &err) < 0) {
			fprintf(stderr, "gpu-stage: %s\n", err.msg);
			return -err.code;
		}
		in->c = &in->conf;
	} else if (!(in->c = cli_config())) {
		return -EINVAL;
	}
	const struct gs_config *c = in->c;
	in->proc = under(o->root, c->proc_root);
	in->dev = under(o->root, c->dev_root);
	in->cdi_dir = under(o->root, c->cdi_dir);
	in->audit = under(o->root, c->audit_log);
	in->store = o->store ? strdup(o->store) : under(o->root, c->store);
	in->cgroupfs = under(o->root, "/sys/fs/cgroup");
	static const struct {
		const char *name, *deflt, *flag;
		enum rt_engine e;
	} eng[] = {{"docker", RT_DOCKER_DEFAULT, "--docker", RT_DOCKER},
		   {"containerd", RT_CONTAINERD_DEFAULT, "--containerd", RT_CONTAINERD},
		   {"podman/crio", RT_HOOKS_DIR_DEFAULT, "--podman", RT_PODMAN}};
	for (size_t i = 0; i < 3; i++) {
		in->eng[i] = (struct engine){.name = eng[i].name, .e = eng[i].e, .flag = eng[i].flag,
					     .file = under(o->root, eng[i].deflt)};
		if (!in->eng[i].file)
			return oom();
	}
	if (!in->proc || !in->dev || !in->cdi_dir || !in->audit || !in->store || !in->cgroupfs)
		return oom();
	return 0;
}

/* ---- the parts ------------------------------------------------------------------ */

static void read_module(struct info *in)
{
	struct gs_err err = GS_ERR_INIT;
	int r = ovl_driver_version(in->proc, &in->loaded, &err);
	if (r == -ENODEV)
		problem(in, "install the NVIDIA driver and load its module: modprobe nvidia",
			"no NVIDIA kernel module loaded (%s/driver/nvidia/version)", in->proc);
	else if (r < 0)
		problem(in, NULL, "the loaded module's version cannot be read: %s", err.msg);
	if (r < 0)
		in->loaded = NULL;
}

static void read_store(struct info *in)
{
	struct gs_err err = GS_ERR_INIT;
	if (gs_store_list(in->store, &in->versions, &in->n_versions, &err) < 0) {
		problem(in, NULL, "the store cannot be read: %s", err.msg);
		return;
	}
	if (!in->loaded)
		return;
	for (size_t i = 0; i < in->n_versions; i++)
		if (!strcmp(in->versions[i], in->loaded))
			return;
	_cleanup_free_ char *fix = NULL;
	if (asprintf(&fix, "gpu-stage --driver %s", in->loaded) < 0)
		fix = NULL;
	problem(in, fix, "the loaded driver %s is not staged in %s (GPU containers fail to start)",
		in->loaded, in->store);
}

/* The fix for node D in state ST. */
static const char *node_fix(const struct ovl_hostdev *d, enum ovl_node_state st, char *buf,
			    size_t size)
{
	bool uvm = d->module == OVL_MOD_UVM;
	if (st == OVL_NODE_NO_MODULE)
		return uvm ? "gpu-stage devices --load --ensure   (or: modprobe nvidia-uvm, then nvidia-modprobe -u -c=0)"
			   : NULL;
	if (st == OVL_NODE_CONFLICT)
		return "remove what is there, then: gpu-stage devices --ensure";
	if (!d->attrs.modify)
		return "the driver's ModifyDeviceFiles is 0: make the node by hand";
	if (uvm)
		return "gpu-stage devices --ensure   (or: nvidia-modprobe -u -c=0, or modprobe nvidia-uvm)";
	if (d->module == OVL_MOD_NVIDIA && d->minor < OVL_NV_MODESET_MINOR)
		snprintf(buf, size, "gpu-stage devices --ensure   (or: nvidia-modprobe -c=%u)", d->minor);
	else
		snprintf(buf, size, "gpu-stage devices --ensure");
	return buf;
}

/* One node: {"path", "state"} appended; a problem unless it is as the
 * driver says it should be (gpu-stage devices' check). */
static void check_node(struct info *in, int devfd, const struct ovl_hostdev *d)
{
	enum ovl_node_state st;
	char what[128] = "", fix[96];
	struct gs_err err = GS_ERR_INIT;
	_cleanup_free_ char *host = NULL;
	if (asprintf(&host, "%s/%s", in->dev, d->name) < 0)
		return;
	if (ovl_hostdev_check(devfd, d, &st, what, sizeof(what), &err) < 0) {
		problem(in, NULL, "%s cannot be checked: %s", host, err.msg);
		return;
	}
	json_array_append_new(in->devices, json_pack("{s:s, s:s, s:b}", "path", host, "state",
						     ovl_node_state_name(st), "present", st == OVL_NODE_OK));
	const char *f = node_fix(d, st, fix, sizeof(fix));
	bool uvm = d->minor == OVL_UVM_MINOR && d->module == OVL_MOD_UVM;
	switch (st) {
	case OVL_NODE_OK: break;
	case OVL_NODE_MISSING:
		problem(in, f, "%s is missing%s", host, uvm ? " (CUDA needs it: cuInit fails without it)" : "");
		break;
	case OVL_NODE_BAD_MODE:
		problem(in, f, "%s has %s, not mode %04o owner %u:%u", host, what,
			(unsigned int)d->attrs.mode, (unsigned int)d->attrs.uid, (unsigned int)d->attrs.gid);
		break;
	case OVL_NODE_CONFLICT: problem(in, f, "%s is %s, not the device", host, what); break;
	case OVL_NODE_NO_MODULE:
		problem(in, f, "%s: the %s module is not loaded", host, ovl_nv_module_name(d->module));
		break;
	}
}

static void read_devices(struct info *in)
{
	struct gs_err err = GS_ERR_INIT;
	struct ovl_hostdevs h = {0};
	if (!in->loaded)
		return; /* nothing to make them with */
	if (ovl_hostdevs_read(in->proc, &h, &err) < 0) {
		problem(in, NULL, "the device nodes the driver should have cannot be read: %s", err.msg);
		return;
	}
	_cleanup_close_ int devfd = open(in->dev, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (devfd < 0)
		problem(in, NULL, "%s: %s", in->dev, strerror(errno));
	for (size_t i = 0; devfd >= 0 && i < h.n; i++) {
		check_node(in, devfd, &h.v[i]);
		in->n_gpus += h.v[i].module == OVL_MOD_NVIDIA && h.v[i].minor < OVL_NV_MODESET_MINOR;
	}
	if (in->n_gpus == 0)
		problem(in, NULL, "%s/driver/nvidia/gpus lists no GPU", in->proc);
	ovl_hostdevs_clear(&h);
}

static void read_cgroup(struct info *in)
{
	struct statfs sf;
	_cleanup_free_ char *unified = NULL;
	in->cgroup = "unknown";
	if (statfs(in->cgroupfs, &sf) < 0)
		return;
	if (sf.f_type == CGROUP2_SUPER_MAGIC) {
		in->cgroup = "v2";
	} else if (sf.f_type == TMPFS_MAGIC) {
		in->cgroup = "v1";
		if (asprintf(&unified, "%s/unified", in->cgroupfs) >= 0 && statfs(unified, &sf) == 0 &&
		    sf.f_type == CGROUP2_SUPER_MAGIC)
			in->cgroup = "hybrid";
	}
}

static void read_engines(struct info *in)
{
	for (size_t i = 0; i < 3; i++) {
		struct engine *e = &in->eng[i];
		struct gs_err err = GS_ERR_INIT;
		struct stat st;
		e->present = stat(e->file, &st) == 0;
		if (!e->present)
			continue;
		if (rt_probe(e->e, e->file, &e->p, &err) < 0) {
			e->error = strdup(err.msg);
			problem(in, NULL, "%s: %s", e->name, err.msg);
			continue;
		}
		char fix[96];
		snprintf(fix, sizeof(fix), "gpu-stage runtime configure %s%s%s", e->flag,
			 strcmp(e->p.name, "gpu-stage") ? " --name " : "",
			 strcmp(e->p.name, "gpu-stage") ? e->p.name : "");
		if (e->p.ours && !e->p.current)
			problem(in, fix, "%s: %s names another gpu-stage installation's programs",
				e->name, e->file);
	}
}

static void read_cdi(struct info *in)
{
	struct gs_err err = GS_ERR_INIT;
	struct cdi_check q = {.cdi_dir = in->cdi_dir, .vendor = in->c->cdi_vendor,
			      .store = in->store, .proc_root = in->proc};
	in->cdi = cdi_check(&q, &in->cdi_file, &in->cdi_why, &err);
	if (in->cdi < 0)
		problem(in, NULL, "the CDI spec cannot be read: %s", err.msg);
	else if (in->cdi == CDI_STALE)
		problem(in, "gpu-stage cdi", "the CDI spec %s is out of date: %s", in->cdi_file,
			in->cdi_why);
	else if (in->cdi == CDI_NONE && in->eng[0].p.cdi)
		problem(in, "gpu-stage cdi", "docker reads CDI specs, but there is no %s",
			in->cdi_file);
	_cleanup_free_ char *rival = NULL;
	if ((in->cdi == CDI_CURRENT || in->cdi == CDI_STALE) &&
	    cdi_rival_of(in->cdi_dir, in->c->cdi_vendor, &rival) == 0 && rival)
		problem(in, "remove that spec, or gpu-stage cdi --vendor with another vendor",
			"%s declares kind %s/gpu too: CDI drops the devices both define (or the later directory's wins), so the hook of %s may never run",
			rival, in->c->cdi_vendor, in->cdi_file);
}

static void read_audit(struct info *in)
{
	struct stat st;
	in->audit_bytes = stat(in->audit, &st) == 0 ? (long long)st.st_size : -1;
}

/* Something must hand the hook to the engines. */
static void check_reach(struct info *in)
{
	bool any = in->cdi == CDI_CURRENT || in->cdi == CDI_STALE;
	for (size_t i = 0; i < 3; i++)
		any = any || in->eng[i].p.ours;
	if (!any)
		problem(in, "gpu-stage runtime configure --docker (or --containerd, --podman, --crio), or gpu-stage cdi",
			"no container engine is configured to use gpu-stage, and there is no CDI spec");
}

/* ---- output ------------------------------------------------------------------------- */

static const char *engine_state(const struct engine *e, char *buf, size_t size)
{
	if (!e->present)
		return "not installed (no such file)";
	if (e->error)
		return "unreadable";
	if (!e->p.ours)
		snprintf(buf, size, "not configured%s", e->p.cdi ? "; CDI on" : "");
	else
		snprintf(buf, size, "gpu-stage%s%s%s%s%s", strcmp(e->p.name, "gpu-stage") ? " as " : "",
			 strcmp(e->p.name, "gpu-stage") ? e->p.name : "", e->p.current ? "" : " (stale)",
			 e->p.is_default ? ", the default runtime" : "", e->p.cdi ? "; CDI on" : "");
	return buf;
}

static const char *const cdi_names[] = {[CDI_NONE] = "none", [CDI_CURRENT] = "current",
					[CDI_STALE] = "stale", [CDI_FOREIGN] = "not gpu-stage's"};

static void print_text(const struct info *in)
{
	printf("module      %s\n", in->loaded ? in->loaded : "none loaded");
	printf("store       %s:", in->store);
	for (size_t i = 0; i < in->n_versions; i++)
		printf(" %s%s", in->versions[i],
		       in->loaded && !strcmp(in->versions[i], in->loaded) ? " (current)" : "");
	printf("%s\n", in->n_versions ? "" : " nothing staged");
	json_t *d;
	size_t i;
	printf("devices    ");
	json_array_foreach(in->devices, i, d) {
		char state[16];
		snprintf(state, sizeof(state), "%s", json_string_value(json_object_get(d, "state")));
		for (char *c = state; *c && strcmp(state, "ok"); c++)
			*c = (char)toupper((unsigned char)*c);
		printf(" %s %s", json_string_value(json_object_get(d, "path")), state);
	}
	printf("%s\n", json_array_size(in->devices) ? "" : " (no module: none expected)");
	printf("cgroup      %s%s\n", in->cgroup,
	       !strcmp(in->cgroup, "hybrid") ? " (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)"
	       : !strcmp(in->cgroup, "unknown") ? " (no cgroup file system at /sys/fs/cgroup)" : "");
	for (i = 0; i < 3; i++) {
		char buf[128];
		printf("%-11s %s: %s\n", in->eng[i].name, in->eng[i].file,
		       engine_state(&in->eng[i], buf, sizeof(buf)));
	}
	printf("cdi         %s: %s\n", in->cdi_file ? in->cdi_file : in->cdi_dir,
	       in->cdi >= 0 ? cdi_names[in->cdi] : "unreadable");
	if (in->audit_bytes >= 0)
		printf("audit log   %s: %lld bytes\n", in->audit, in->audit_bytes);
	else
		printf("audit log   %s: none yet\n", in->audit);
	for (i = 0; i < in->n_pr; i++) {
		printf("%s%s\n", i ? "" : "\nproblems:\n", in->pr[i].what);
		if (in->pr[i].fix)
			printf("    fix: %s\n", in->pr[i].fix);
	}
	printf("%sready: %s\n", in->n_pr ? "\n" : "", in->n_pr ? "no" : "yes");
}

static json_t *engines_json(const struct info *in)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < 3; i++) {
		const struct engine *e = &in->eng[i];
		char buf[128];
		json_array_append_new(
			a, json_pack("{s:s, s:s, s:b, s:b, s:s?, s:b, s:b, s:b, s:s, s:s?}", "engine",
				     e->name, "file", e->file, "present", e->present, "configured",
				     e->p.ours, "name", e->p.ours ? e->p.name : NULL,
				     "current", e->p.current, "default", e->p.is_default, "cdi",
				     e->p.cdi, "state", engine_state(e, buf, sizeof(buf)), "error",
				     e->error));
	}
	return a;
}

static int print_json(const struct info *in)
{
	json_t *versions = json_array(), *problems = json_array();
	for (size_t i = 0; versions && i < in->n_versions; i++)
		json_array_append_new(versions, json_string(in->versions[i]));
	for (size_t i = 0; problems && i < in->n_pr; i++)
		json_array_append_new(problems, json_pack("{s:s, s:s?}", "problem", in->pr[i].what,
							  "fix", in->pr[i].fix));
	bool current = false;
	for (size_t i = 0; in->loaded && i < in->n_versions; i++)
		current = current || !strcmp(in->versions[i], in->loaded);
	_cleanup_(gs_json_decrefp) json_t *j = json_pack(
		"{s:b, s:s?, s:{s:s, s:o, s:s?}, s:I, s:O, s:s, s:o, s:{s:s, s:s}, s:{s:s, s:o}, s:o}",
		"ready", in->n_pr == 0, "module", in->loaded, "store", "path", in->store, "versions",
		versions, "current", current ? in->loaded : NULL, "gpus", (json_int_t)in->n_gpus,
		"devices", in->devices, "cgroup", in->cgroup, "engines", engines_json(in), "cdi",
		"file", in->cdi_file ? in->cdi_file : in->cdi_dir, "state",
		in->cdi >= 0 ? cdi_names[in->cdi] : "unreadable", "audit_log", "path", in->audit,
		"bytes", in->audit_bytes >= 0 ? json_integer(in->audit_bytes) : json_null(),
		"problems", problems);
	if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) < 0)
		return oom();
	putchar('\n');
	return 0;
}

static void info_clear(struct info *in)
{
	free(in->proc);
	free(in->dev);
	free(in->cdi_dir);
	free(in->audit);
	free(in->store);
	free(in->cgroupfs);
	free(in->loaded);
	for (size_t i = 0; i < in->n_versions; i++)
		free(in->versions[i]);
	free(in->versions);
	for (size_t i = 0; i < 3; i++) {
		free(in->eng[i].file);
		free(in->eng[i].error);
	}
	free(in->cdi_file);
	free(in->cdi_why);
	gs_json_decrefp(&in->devices);
	for (size_t i = 0; i < in->n_pr; i++) {
		free(in->pr[i].what);
		free(in->pr[i].fix);
	}
	gs_config_clear(&in->conf);
}

int cmd_info(int argc, char **argv)
{
	struct info_opts o = {0};
	int code = parse(argc, argv, &o);
	if (code >= 0)
		return code;
	_cleanup_(info_clear) struct info in = {.cdi = CDI_NONE};
	if (paths(&in, &o) < 0 || !(in.devices = json_array()))
		return GS_EXIT_FAIL;
	read_module(&in);
	read_store(&in);
	read_devices(&in);
	read_cgroup(&in);
	read_engines(&in);
	read_cdi(&in);
	read_audit(&in);
	check_reach(&in);
	if (!o.json)
		print_text(&in);
	else if (print_json(&in) < 0)
		return GS_EXIT_FAIL;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "gpu-stage: writing output: %s\n", strerror(errno));
		return GS_EXIT_FAIL;
	}
	return in.n_pr ? GS_EXIT_FAIL : GS_EXIT_OK;
}
