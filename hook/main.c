/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage-hook: the OCI hook that gives a container the staged driver.
 *
 *   gpu-stage-hook [--store DIR] [--driver VER] [--dev-root DIR]
 *                  [--proc-root DIR] [--host-root DIR] [--audit-log FILE]
 *                  [--dry-run] [--cdi]
 *                  prestart|createRuntime|createContainer
 *
 * Reads the OCI state on stdin and BUNDLE/config.json, opens STORE/VER once
 * (under the store's readers' lock, held to the end: a re-stage never
 * deletes a tree in use), builds the plan for the container's NVIDIA_*
 * request from STORE/VER/index (made at staging time: no JSON parse of the
 * manifest, no hashing here), opens every source in that tree as a
 * detached read-only mount, enters the
 * container's mount namespace (prestart, createRuntime: by the state's
 * pid; createContainer already runs in it) and applies the plan inside
 * the rootfs with fds only.  Appends one JSON line to the audit log.
 *
 * The binary is static: LD_PRELOAD / LD_LIBRARY_PATH / LD_AUDIT in the
 * environment a runtime hands it cannot load code into it, and it reads
 * no environment variable at all (it clears its environment first).
 * Exit status: 0 ok (or nothing requested), 1 failure (the runtime then
 * does not start the container), 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>


#include "gs/cleanup.h"
#include "gs/config.h"
#include "gs/fsx.h"
#include "gs/hostdev.h"
#include "hook.h"

#define STATE_MAX (1u << 20)

struct opts {
	const char *store, *driver, *dev_root, *proc_root, *audit, *config, *host_root;
	unsigned int default_caps; /* from the configuration */
	uint64_t audit_max;        /* the configuration's audit_log_max */
	unsigned int audit_keep;   /* ... audit_log_keep */
	bool dry_run;
	bool env_last; /* called as nvidia-container-runtime-hook: the last NVIDIA_* wins */
	bool cdi; /* named by a CDI spec: the runtime made the devices */
	enum hk_stage stage;
	const char *stage_name;
};

struct run {
	struct hk_state st;
	struct hk_config cfg;
	struct ovl_env env;
	char *driver;
	char *rootfs;
	struct gs_store_ver ver;
	struct gs_index *index;
	struct hk_planned pl; /* devices, host IPC paths, the plan */
	struct ovl_sources *src;
	struct ovl_result res;
	char require_note[256];
	struct gs_config conf; /* the configuration file (store, driver, ... defaults) */
	char *mounts;   /* the container's mountinfo, read at the pid check */
	size_t mounts_len;
	char *cg_note;
	char *char_note; /* the /dev/char links made, or why not */
	const char *granted_by; /* the request's source (audit) */
	struct hk_audit audit;
};

static void run_clear(struct run *x)
{
	hk_state_clear(&x->st);
	hk_config_clear(&x->cfg);
	ovl_env_clear(&x->env);
	free(x->driver);
	free(x->rootfs);
	gs_index_freep(&x->index);
	gs_store_ver_close(&x->ver);
	hk_planned_clear(&x->pl);
	ovl_sources_freep(&x->src);
	ovl_result_clear(&x->res);
	free(x->mounts);
	gs_config_clear(&x->conf);
	free(x->cg_note);
	free(x->char_note);
	hk_audit_close(&x->audit);
}

static void usage(FILE *f)
{
	fputs("usage: gpu-stage-hook [--config FILE] [--store DIR] [--driver VER] [--dev-root DIR]\n"
	      "                      [--proc-root DIR] [--host-root DIR] [--audit-log FILE]\n"
	      "                      [--dry-run] [--cdi]\n"
	      "                      prestart|createRuntime|createContainer\n"
	      "Reads the OCI state on stdin; gives the container the staged NVIDIA driver.\n"
	      "\n"
	      "  --config FILE     configuration (default " GS_CONFIG_DEFAULT ", where a\n"
	      "                    missing file means every default; never taken from\n"
	      "                    the environment); the options below override it\n"
	      "  --store DIR       store made by gpu-stage (default /var/lib/gpu-stage)\n"
	      "  --driver VER      driver version (default: PROC/driver/nvidia/version)\n"
	      "  --dev-root DIR    where the host's device nodes are (default /dev)\n"
	      "  --proc-root DIR   where driver/nvidia is (default /proc)\n"
	      "  --host-root DIR   where the host's MPS pipe directory and the persistenced\n"
	      "                    and fabric manager sockets are looked up (default /)\n"
	      "  --audit-log FILE  one JSON line per start (default /var/log/gpu-stage/hook.log)\n"
	      "  --dry-run         print the plan, change nothing\n"
	      "  --cdi             called from a CDI spec (gpu-stage cdi): the runtime made\n"
	      "                    the devices, so only the driver files and ld.so.cache,\n"
	      "                    whatever NVIDIA_VISIBLE_DEVICES says (void: nothing)\n"
	      "\n"
	      "Container variables read: NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES,\n"
	      "NVIDIA_REQUIRE_*, NVIDIA_DISABLE_REQUIRE; nothing else of any environment.\n"
	      "Annotations read (the engine's, they override those variables):\n"
	      "" HK_ANNOT_DEVICES ", " HK_ANNOT_CAPS ".  Under the configuration's\n"
	      "\"requests\": \"orchestrator\" only they, --cdi and Docker's --gpus count.\n"
	      "Exit status: 0 done (or nothing asked for), 1 failure (the container does not\n"
	      "start), 2 usage error.  See gpu-stage-hook(8).\n",
	      f);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"store", required_argument, NULL, 's'},     {"driver", required_argument, NULL, 'd'},
		{"dev-root", required_argument, NULL, 'D'},  {"proc-root", required_argument, NULL, 'P'},
		{"audit-log", required_argument, NULL, 'a'}, {"dry-run", no_argument, NULL, 'n'},
		{"config", required_argument, NULL, 'c'},    {"cdi", no_argument, NULL, 'C'},
		{"host-root", required_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'},	     {NULL, 0, NULL, 0},
	};
	*o = (struct opts){0};
	int c;
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->store = optarg; break;
		case 'd': o->driver = optarg; break;
		case 'D': o->dev_root = optarg; break;
		case 'P': o->proc_root = optarg; break;
		case 'a': o->audit = optarg; break;
		case 'n': o->dry_run = true; break;
		case 'c': o->config = optarg; break;
		case 'C': o->cdi = true; break;
		case 'H': o->host_root = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "gpu-stage-hook: expected exactly one STAGE argument\n");
		return -1;
	}
	o->stage_name = argv[optind];
	if (!strcmp(o->stage_name, "prestart"))
		o->stage = HK_PRESTART;
	else if (!strcmp(o->stage_name, "createRuntime"))
		o->stage = HK_CREATE_RUNTIME;
	else if (!strcmp(o->stage_name, "createContainer"))
		o->stage = HK_CREATE_CONTAINER;
	else {
		fprintf(stderr, "gpu-stage-hook: unknown stage '%s' (prestart, createRuntime, createContainer)\n",
			o->stage_name);
		return -1;
	}
	if ((o->audit && o->audit[0] != '/') || (o->store && o->store[0] != '/') ||
	    (o->config && o->config[0] != '/') || (o->host_root && o->host_root[0] != '/')) {
		fprintf(stderr, "gpu-stage-hook: --store, --audit-log, --config and --host-root need absolute paths\n");
		return -1;
	}
	return 0;
}

/* The configuration file under the options: each option the command line
 * left unset takes the file's value (or its default). */
static int apply_config(struct opts *o, struct gs_config *cfg, struct gs_err *err)
{
	int r = gs_config_load(o->config ? o->config : GS_CONFIG_DEFAULT, o->config != NULL, cfg, err);
	if (r < 0)
		return r;
	o->store = o->store ? o->store : cfg->store;
	o->driver = o->driver ? o->driver : cfg->driver;
	o->dev_root = o->dev_root ? o->dev_root : cfg->dev_root;
	o->proc_root = o->proc_root ? o->proc_root : cfg->proc_root;
	o->audit = o->audit ? o->audit : cfg->audit_log;
	o->host_root = o->host_root ? o->host_root : cfg->host_root;
	o->default_caps = cfg->caps;
	o->audit_max = cfg->audit_log_max;
	o->audit_keep = cfg->audit_log_keep;
	return 0;
}

/* RFC 3339 UTC ("2026-12-01T10:00:00Z") by arithmetic: gmtime_r and
 * strftime read the time zone file (/etc/localtime) at their first call,
 * for a UTC time.  Days to a civil date as in H. Hinnant's
 * "chrono-compatible low-level date algorithms" (proleptic Gregorian). */
static void utc_now(char ts[32])
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long secs = now.tv_sec, days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	long long doe = z - era * 146097;
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	long long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
	long long y = yoe + era * 400 + (m <= 2);
	snprintf(ts, 32, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", y, m, d, rem / 3600,
		 rem / 60 % 60, rem % 60);
}

static int read_input(struct run *x, struct gs_err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = gs_read_all_fd(STDIN_FILENO, STATE_MAX, "state (stdin)", &text, &len, err);
	if (r >= 0)
		r = hk_state_parse(text, len, &x->st, err);
	if (r < 0)
		return r;
	_cleanup_close_ int bfd = open(x->st.bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return gs_err_set(err, errno, "bundle %s", x->st.bundle);
	r = hk_config_load(bfd, x->st.bundle, &x->cfg, err);
	if (r == 1)
		return 1; /* unreadable to jansson, and no GPU asked for in it */
	if (r >= 0)
		r = hk_rootfs_path(x->st.bundle, x->cfg.root_path, &x->rootfs, err);
	return r;
}

/* The request, from the sources the configuration lets count (ENV_COUNTS:
 * the container's NVIDIA_* variables too, not only the annotations), into
 * x->env; x->granted_by names the source. */
static int read_request(const struct opts *o, struct run *x, bool env_counts, struct gs_err *err)
{
	char **vars = NULL;
	size_t n = 0;
	ovl_env_clear(&x->env);
	int r = hk_request_vars(&x->cfg, env_counts || o->env_last, o->env_last, &vars, &n, err);
	if (r >= 0)
		r = (o->env_last ? ovl_env_parse_last : ovl_env_parse)(vars, n, &x->env, err);
	hk_request_vars_free(vars, n);
	x->granted_by = x->cfg.ann_devices ? "annotation " HK_ANNOT_DEVICES
			: o->env_last	   ? "docker --gpus (NVIDIA_VISIBLE_DEVICES, the last)"
					   : "NVIDIA_VISIBLE_DEVICES";
	return r;
}

/* "requests": "orchestrator" and only the image's environment asked:
 * nothing is given, and one audit line says so. */
static void audit_ignored(const struct opts *o, struct run *x)
{
	struct gs_err e = GS_ERR_INIT;
	struct hk_audit a;
	int fd = hk_audit_open(o->audit, o->audit_max, o->audit_keep, &a, &e);
	struct gs_jw w;
	char ts[32];
	utc_now(ts);
	if (fd >= 0 && gs_jw_start(&w, &e) >= 0) {
		gs_jw_object(&w, NULL);
		gs_jw_string(&w, "time", ts);
		gs_jw_string(&w, "stage", o->stage_name);
		gs_jw_string(&w, "container", x->st.id);
		gs_jw_string(&w, "bundle", x->st.bundle);
		gs_jw_string(&w, "result", "ignored");
		gs_jw_string(&w, "reason",
			     "NVIDIA_VISIBLE_DEVICES in the container's environment does not count under \"requests\": \"orchestrator\" (ask with the engine's --gpus, a CDI device or the annotation " HK_ANNOT_DEVICES ")");
		gs_jw_end(&w);
		_cleanup_free_ char *line = NULL;
		size_t len = 0;
		if (gs_jw_finish(&w, &line, &len, &e) >= 0)
			(void)hk_audit_append(&a, line, &e);
	}
	hk_audit_close(&a);
}

static int load_driver(const struct opts *o, struct run *x, struct gs_err *err)
{
	int r = o->driver ? ((x->driver = strdup(o->driver)) ? 0 : -ENOMEM)
			  : ovl_driver_version(o->proc_root, &x->driver, err);
	if (r == -ENOMEM && !x->driver)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (r < 0)
		return r;
	struct gs_err e = GS_ERR_INIT;
	r = gs_store_ver_open(o->store, x->driver, &x->ver, &e);
	if (r < 0 && (e.code == ENOENT || e.code == ENOTDIR))
		return gs_err_setx(err, ENOENT,
				   "driver %s is not staged in %s (%s); run 'gpu-stage --driver %s' after installing it",
				   x->driver, o->store, e.msg, x->driver);
	if (r < 0) {
		*err = e;
		return gs_err_wrap(err, "store %s", o->store);
	}
	return gs_index_read_at(x->ver.verfd, x->ver.dir, x->driver, &x->index, err);
}

/* The work that needs nothing of the container: the capabilities
 * narrowed, the configuration, the driver's version, its staged tree
 * (its shared lock held from here on) and its index.  Done before the
 * state is read when the runtime has not written it yet (runc writes a
 * hook's stdin from a goroutine after starting it: this work fills that
 * wait).  Each failure counts only where it did when done in order: the
 * configuration's once the container asks for a GPU, the driver's once
 * the request stands (kept till then). */
struct prepared {
	bool done;
	int config_r, driver_r;
	struct gs_err config_err, driver_err;
};

static void prepare(struct opts *o, struct run *x, struct prepared *p)
{
	*p = (struct prepared){.done = true, .config_err = GS_ERR_INIT, .driver_err = GS_ERR_INIT};
	struct gs_err e = GS_ERR_INIT;
	if (!o->dry_run) /* early, best effort: run() checks it where it counts */
		(void)hk_caps_init(false, &e);
	p->config_r = apply_config(o, &x->conf, &p->config_err);
	if (p->config_r >= 0)
		p->driver_r = load_driver(o, x, &p->driver_err);
}

static bool stdin_ready(void)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	return poll(&p, 1, 0) == 1;
}

static int build_plan(const struct opts *o, struct run *x, struct gs_err *err)
{
	struct hk_plan_in in = {.env = &x->env, .cfg = &x->cfg, .conf = &x->conf,
				.proc_root = o->proc_root, .dev_root = o->dev_root,
				.host_root = o->host_root, .index = x->index};
	return hk_plan_build(&in, &x->pl, err);
}

/* Prestart and createRuntime: pins the state's pid and proves it is this
 * container's process before its cgroup gains any device.  The pid comes
 * from the runtime, but may have been reused (the process gone, another
 * in its place) before the pidfd pinned it.  Proved: a mount namespace
 * other than ours (hk_ns_open), in which the runtime has already
 * bind-mounted the bundle's rootfs onto itself (a mount there that our
 * namespace lacks) and, without a "user" namespace in config.json, our
 * user namespace (hk_ns_check_container, ns.c says why: both hooks run
 * before pivot_root, so /proc/PID/root is still the host's "/"); alive
 * after its /proc entries were read (hk_pid_alive); and, once entered,
 * the rootfs there is the bundle's directory (hk_rootfs_open with WANT).
 * The devices.allow of its cgroup is opened here, in the host's
 * namespaces, and written only after all of that. */
static int enter_by_pid(struct run *x, int *cgfd, struct gs_err *err)
{
	pid_t pid = (pid_t)x->st.pid;
	_cleanup_free_ char *real = realpath(x->rootfs, NULL);
	if (!real)
		return gs_err_set(err, errno, "container rootfs %s", x->rootfs);
	_cleanup_close_ int pidfd = hk_pid_open(pid, err);
	if (pidfd < 0)
		return pidfd;
	_cleanup_close_ int nsfd = hk_ns_open(pid, err);
	if (nsfd < 0)
		return nsfd;
	/* the host's table, read once for both checks */
	struct hk_host host;
	int r = hk_host_mounts(real, &host, err);
	if (r >= 0)
		r = hk_ns_check_container(pid, real, x->cfg.user_ns, host.at_rootfs, &x->mounts,
					  &x->mounts_len, err);
	if (r >= 0)
		r = hk_cgroup_open(pid, pidfd, false, x->pl.n_devs, host.devices_mnt, cgfd,
				   &x->cg_note, err);
	hk_host_clear(&host);
	if (r >= 0)
		r = hk_pid_alive(pidfd, pid, err);
	if (r >= 0)
		r = hk_ns_enter(nsfd, pid, err);
	return r;
}

/* Where the plan is applied: the container's mount namespace. */
static int enter_and_apply(const struct opts *o, struct run *x, struct gs_err *err)
{
	struct stat want;
	bool have_want = false;
	_cleanup_close_ int cgfd = -1;
	int r = 0;
	if (o->stage != HK_CREATE_CONTAINER) {
		if (stat(x->rootfs, &want) < 0)
			return gs_err_set(err, errno, "container rootfs %s", x->rootfs);
		have_want = true;
		ovl_dev_char_links(o->dev_root, x->pl.devs, x->pl.n_devs, &x->char_note);
		r = enter_by_pid(x, &cgfd, err);
	} else {
		/* createContainer runs in the container's namespaces and cgroup
		 * (in a cgroup namespace, v1 rules cannot be written: refused) */
		r = hk_ns_not_hosts(err);
		if (r >= 0)
			r = hk_cgroup_open(0, -1, x->cfg.cgroup_ns, x->pl.n_devs, NULL, &cgfd, &x->cg_note, err);
		/* the record's pid is the host's (the state's is the container's own) */
		x->st.pid = hk_ns_host_pid();
	}
	if (r >= 0)
		r = hk_caps_enter(HK_PHASE_APPLY, err);
	if (r < 0)
		return r;
	_cleanup_close_ int rootfd = hk_rootfs_open(x->rootfs, have_want ? &want : NULL, err);
	if (rootfd < 0)
		return rootfd;
	r = hk_cgroup_write(cgfd, x->pl.devs, x->pl.n_devs, x->cg_note, err);
	if (r >= 0)
		r = ovl_plan_apply(x->pl.plan, x->src, rootfd, x->mounts, x->mounts_len, &x->res, err);
	if (r >= 0 && x->res.glibc_left_out)
		fprintf(stderr, "gpu-stage-hook: warning: %s\n", x->res.glibc);
	return r;
}

/* One line: what this start gave the container (written from the plan as
 * applied, with a streaming writer: no document tree is built). */
static void audit(const struct opts *o, struct run *x, int rc, const struct gs_err *err)
{
	if (x->audit.fd < 0 || !x->pl.plan)
		return;
	char ts[32];
	utc_now(ts);
	struct gs_jw w;
	struct gs_err e = GS_ERR_INIT;
	if (gs_jw_start(&w, &e) < 0) {
		fprintf(stderr, "gpu-stage-hook: warning: audit record: %s\n", e.msg);
		return;
	}
	gs_jw_object(&w, NULL);
	gs_jw_string(&w, "time", ts);
	gs_jw_string(&w, "stage", o->stage_name);
	gs_jw_string(&w, "container", x->st.id);
	gs_jw_string(&w, "bundle", x->st.bundle);
	gs_jw_string(&w, "rootfs", x->rootfs);
	gs_jw_int(&w, "pid", x->st.pid);
	gs_jw_string(&w, "driver", x->driver);
	gs_jw_string(&w, "result", rc < 0 ? "failed" : "ok");
	gs_jw_string(&w, "granted_by", x->granted_by);
	ovl_plan_write(&w, "plan", x->pl.plan, x->index, x->ver.dir, x->res.ops ? &x->res : NULL);
	if (rc < 0)
		gs_jw_string(&w, "error", err->msg);
	if (x->cg_note)
		gs_jw_string(&w, "devices_cgroup", x->cg_note);
	if (x->pl.dev_note)
		gs_jw_string(&w, "devices_note", x->pl.dev_note);
	if (x->char_note)
		gs_jw_string(&w, "dev_char", x->char_note);
	if (x->pl.ipc_note)
		gs_jw_string(&w, "host_ipc", x->pl.ipc_note);
	if (x->require_note[0])
		gs_jw_string(&w, "require_note", x->require_note);
	gs_jw_end(&w);
	_cleanup_free_ char *line = NULL;
	size_t len = 0;
	if (gs_jw_finish(&w, &line, &len, &e) < 0 || hk_audit_append(&x->audit, line, &e) < 0)
		fprintf(stderr, "gpu-stage-hook: warning: audit record: %s\n", e.msg);
}

/* --cdi: a CDI device was asked for, so the runtime made its nodes and
 * their cgroup rules from the spec; the driver files are ours to give,
 * whatever the request says of devices (void: nothing). */
static void cdi_request(struct run *x)
{
	if (x->env.visible == OVL_VISIBLE_VOID)
		return;
	x->env.visible = OVL_VISIBLE_NONE;
	x->granted_by = "cdi";
}

static int run(struct opts *o, struct run *x, struct gs_err *err)
{
	struct prepared pre = {0};
	if (!stdin_ready())
		prepare(o, x, &pre);
	int r = read_input(x, err);
	if (r == 1 && o->cdi) /* the runtime judges it; but a CDI device asked for the driver */
		return gs_err_setx(err, EBADMSG, "%s/config.json: jansson cannot read it (invalid UTF-8, too deep, a number out of range)",
				   x->st.bundle);
	if (r == 0)
		r = read_request(o, x, true, err);
	if (r != 0)
		return r < 0 ? r : 0;
	if (o->cdi)
		cdi_request(x);
	if (x->env.visible == OVL_VISIBLE_UNSET || x->env.visible == OVL_VISIBLE_VOID)
		return 0; /* not a GPU container: nothing to do, nothing to record */
	/* counts only now: a container that asks for no GPU never fails on it */
	if (!pre.done)
		prepare(o, x, &pre);
	if (pre.config_r < 0) {
		*err = pre.config_err;
		return pre.config_r;
	}
	if (x->conf.requests == GS_REQUESTS_ORCHESTRATOR) { /* the image's variables do not count */
		if ((r = read_request(o, x, false, err)) < 0)
			return r;
		if (o->cdi) /* the CDI device is the engine's request */
			cdi_request(x);
		if (x->env.visible == OVL_VISIBLE_UNSET || x->env.visible == OVL_VISIBLE_VOID) {
			if (!x->cfg.ann_devices && !o->dry_run)
				audit_ignored(o, x);
			return 0;
		}
	}
	if (!x->env.caps_given)
		x->env.caps = o->default_caps; /* the configuration's "capabilities" */
	if (!o->dry_run && (r = hk_caps_init(x->env.visible != OVL_VISIBLE_NONE, err)) < 0)
		return r;
	if (pre.driver_r < 0) {
		*err = pre.driver_err;
		return pre.driver_r;
	}
	r = ovl_require_check(&x->env, x->driver, x->require_note, sizeof(x->require_note), err);
	if (r >= 0)
		r = build_plan(o, x, err);
	if (r < 0)
		return r;
	if (o->dry_run) {
		_cleanup_free_ char *text = ovl_plan_describe(x->pl.plan, x->ver.dir);
		if (!text)
			return gs_err_setx(err, ENOMEM, "out of memory");
		fputs(text, stdout);
		return 0;
	}
	if ((r = hk_audit_open(o->audit, o->audit_max, o->audit_keep, &x->audit, err)) < 0)
		return r;
	r = ovl_sources_open(x->pl.plan, x->ver.verfd, x->ver.dir, &x->src, err);
	if (r >= 0)
		r = enter_and_apply(o, x, err);
	struct gs_err e = GS_ERR_INIT;
	if (hk_caps_enter(HK_PHASE_DONE, &e) < 0 && r >= 0) {
		*err = e;
		r = -e.code;
	}
	audit(o, x, r, err);
	return r;
}

int main(int argc, char **argv)
{
	struct opts o;
	gs_malloc_init();
	clearenv(); /* nothing from the runtime's or the image's environment */
	/* nor its umask: every mode the plan creates is explicit (a runtime
	 * started under umask 077 would otherwise leave /run/gpu-stage/lib
	 * unreadable to the container's other users, and /run/lock 1755) */
	umask(0);
	/* jansson's hash seed (config.json is partly the user's: keys must
	 * not collide at will) from getrandom, not by opening /dev/urandom */
	uint32_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed))
		json_object_seed(seed ? seed : 1);
	if (parse_args(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	/* Docker's --gpus runs a program of that name (gpu-stage runtime
	 * configure --docker --gpus-flag links it here) as a prestart hook
	 * and appends the NVIDIA_* variables it derives from --gpus after the
	 * image's: its value, the last, is the request */
	const char *base = strrchr(argv[0], '/');
	o.env_last = !strcmp(base ? base + 1 : argv[0], "nvidia-container-runtime-hook");
	struct run x = {.audit = {.fd = -1, .dirfd = -1}, .ver = {.verfd = -1, .lockfd = -1}};
	struct gs_err err = GS_ERR_INIT;
	int r = run(&o, &x, &err);
	if (r < 0)
		fprintf(stderr, "gpu-stage-hook: %s%s%s: %s\n", o.stage_name, x.st.id ? " " : "",
			x.st.id ? x.st.id : "", err.msg);
	run_clear(&x);
	return r < 0 ? 1 : 0;
}
