/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage devices: the NVIDIA device nodes the host should have (from
 * /proc: gs/hostdev.h says how), whether DEV has them, and with --ensure
 * the missing ones made as nvidia-modprobe makes them (`nvidia-modprobe
 * -u -c=0` and its -c per GPU and capability file), never replacing what
 * is there with other numbers.  --load first loads the nvidia and
 * nvidia-uvm modules that are not loaded, with the host's own modprobe. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "devices.h"
#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/hostdev.h"

#define MODPROBE_DEFAULT "/sbin/modprobe"

struct dev_opts {
	const char *dev_root, *proc_root, *store, *driver, *output;
	unsigned timeout; /* --timeout, 0: not given */
	bool ensure, load, json, inventory;
};

#define INVENTORY_TIMEOUT 60  /* s: under systemd's default start timeout (90 s) */
#define INVENTORY_TIMEOUT_MAX 3600

/* What happened to one node. */
struct row {
	const char *status; /* ok created fixed missing wrong-mode conflict no-module failed */
	char found[128];    /* what is there, when not the node */
	char note[600];
};

static void devices_usage(FILE *f)
{
	fputs("Usage: gpu-stage devices [--ensure] [--load] [--dev-root DIR] [--proc-root DIR]\n"
	      "                         [--json]\n"
	      "       gpu-stage devices --inventory [--output FILE] [--store DIR] [--driver VER]\n"
	      "                         [--proc-root DIR] [--timeout SECONDS] [--json]\n"
	      "\n"
	      "Lists the NVIDIA device nodes the host should have, from PROC/devices (the\n"
	      "majors of nvidia-frontend, nvidia-uvm, nvidia-caps), PROC/modules\n"
	      "(nvidia_modeset), PROC/driver/nvidia/gpus/*/information (Device Minor),\n"
	      "PROC/driver/nvidia/params (mode, owner) and the capability files under\n"
	      "PROC/driver/nvidia/capabilities (MIG), and whether DEV has each with the\n"
	      "right type, numbers, mode and owner.\n"
	      "\n"
	      "  --ensure         create the missing nodes (and nvidia-caps/) and the\n"
	      "                   /dev/char/MAJ:MIN links, give a node with the right numbers\n"
	      "                   the right mode and owner; anything else found at a node's\n"
	      "                   place is reported, never replaced\n"
	      "  --load           first load the nvidia and nvidia-uvm modules that are not\n"
	      "                   loaded, with the host's modprobe (PROC/sys/kernel/modprobe\n"
	      "                   when it names a root-owned executable, else " MODPROBE_DEFAULT ";\n"
	      "                   an empty environment but PATH); nvidia-modeset is left to\n"
	      "                   the display stack\n"
	      "  --dev-root DIR   the device directory (default: the configuration's\n"
	      "                   dev_root, else /dev)\n"
	      "  --proc-root DIR  where devices, modules and driver/nvidia are (default:\n"
	      "                   proc_root, else /proc)\n"
	      "  --json           the nodes and what was done, as JSON\n"
	      "\n"
	      "  --inventory      instead: write the device inventory, what NVML says about\n"
	      "                   the GPUs (index, minor, UUID, PCI bus id, MIG mode) and\n"
	      "                   their MIG devices (UUID, parent GPU, GPU and compute\n"
	      "                   instance), which the hook resolves NVIDIA_VISIBLE_DEVICES=\n"
	      "                   MIG-<uuid> through.  NVML is the staged libnvidia-ml.so.1\n"
	      "                   of the loaded driver, loaded by the helper gpu-stage-nvml\n"
	      "                   (run with an empty environment; its output is checked);\n"
	      "                   the file is replaced atomically, or left as it was\n"
	      "  --output FILE    the inventory file (default: the configuration's\n"
	      "                   inventory, else " GS_INVENTORY_DEFAULT ")\n"
	      "  --store DIR      the store (default: the configuration's, else\n"
	      "                   /var/lib/gpu-stage)\n"
	      "  --driver VER     the staged driver (default: the loaded module's)\n"
	      "  --timeout SECONDS  how long the helper may take (1-3600, default 60): a\n"
	      "                   GPU or driver that hangs hangs NVML; it is killed then,\n"
	      "                   and nothing is written\n"
	      "  --json           print the inventory written\n"
	      "\n"
	      "Exit status: 0 every node present (or made) / the inventory written,\n"
	      "1 otherwise, 2 usage error.\n",
	      f);
}

/* --timeout's SECONDS: digits only, 1 to INVENTORY_TIMEOUT_MAX. */
static int parse_timeout(const char *arg, unsigned *out)
{
	unsigned long v = 0;
	const char *p = arg;
	for (; *p >= '0' && *p <= '9' && v <= INVENTORY_TIMEOUT_MAX; p++)
		v = v * 10 + (unsigned long)(*p - '0');
	if (p == arg || *p || v < 1 || v > INVENTORY_TIMEOUT_MAX) {
		fprintf(stderr, "gpu-stage: devices: --timeout '%s': not a number of seconds from 1 to %d\n", arg,
			INVENTORY_TIMEOUT_MAX);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/* -1 to go on, else the exit code. */
static int parse_devices(int argc, char **argv, struct dev_opts *o)
{
	static const struct option opts[] = {
		{"ensure", no_argument, NULL, 'e'},	    {"load", no_argument, NULL, 'l'},
		{"dev-root", required_argument, NULL, 'D'}, {"proc-root", required_argument, NULL, 'P'},
		{"json", no_argument, NULL, 'j'},	    {"help", no_argument, NULL, 'h'},
		{"inventory", no_argument, NULL, 'i'},	    {"output", required_argument, NULL, 'o'},
		{"store", required_argument, NULL, 's'},    {"driver", required_argument, NULL, 'd'},
		{"timeout", required_argument, NULL, 't'},  {0}};
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'e': o->ensure = true; break;
		case 'l': o->load = true; break;
		case 'D': o->dev_root = optarg; break;
		case 'P': o->proc_root = optarg; break;
		case 'j': o->json = true; break;
		case 'i': o->inventory = true; break;
		case 'o': o->output = optarg; break;
		case 's': o->store = optarg; break;
		case 'd': o->driver = optarg; break;
		case 't':
			if (parse_timeout(optarg, &o->timeout) < 0)
				return GS_EXIT_USAGE;
			break;
		case 'h': devices_usage(stdout); return GS_EXIT_OK;
		default: return GS_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gpu-stage: devices: unexpected argument '%s' (see gpu-stage devices --help)\n",
			argv[optind]);
		return GS_EXIT_USAGE;
	}
	if (o->inventory ? o->ensure || o->load || o->dev_root
			 : o->output || o->store || o->driver || o->timeout) {
		fprintf(stderr, "gpu-stage: devices: %s (see gpu-stage devices --help)\n",
			o->inventory ? "--inventory takes neither --ensure, --load nor --dev-root"
				     : "--output, --store, --driver and --timeout go with --inventory");
		return GS_EXIT_USAGE;
	}
	return -1;
}

/* ---- --load ------------------------------------------------------------------------ */

/* The kernel's own modprobe (PROC/sys/kernel/modprobe, what the kernel
 * itself runs to load a module) when it names a regular executable that
 * root owns and only root may change, else MODPROBE_DEFAULT. */
static void modprobe_path(const char *procroot, char *out, size_t len)
{
	_cleanup_free_ char *p = NULL, *text = NULL;
	struct gs_err e = GS_ERR_INIT;
	struct stat st;
	snprintf(out, len, "%s", MODPROBE_DEFAULT);
	if (asprintf(&p, "%s/sys/kernel/modprobe", procroot) < 0)
		return;
	_cleanup_close_ int fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || gs_read_all_fd(fd, 4096, p, &text, NULL, &e) < 0)
		return;
	text[strcspn(text, "\n")] = '\0';
	if (text[0] != '/' || strlen(text) >= len || stat(text, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) || !(st.st_mode & S_IXUSR))
		return;
	snprintf(out, len, "%s", text);
}

/* Runs MODPROBE MODULE; its output goes to our stderr. */
static int run_modprobe(const char *modprobe, const char *module, struct gs_err *err)
{
	char *const argv[] = {(char *)"modprobe", (char *)module, NULL};
	char *const envp[] = {(char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status = 0;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
	int r = posix_spawn(&pid, modprobe, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return gs_err_set(err, r, "%s %s", modprobe, module);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return gs_err_set(err, errno, "waiting for %s %s", modprobe, module);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return gs_err_setx(err, EIO, "%s %s: %s %d", modprobe, module,
				   WIFEXITED(status) ? "exit status" : "killed by signal",
				   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return 0;
}

/* Loads nvidia and nvidia-uvm when their majors are missing; *LOADED (a
 * JSON array) names each module and how it went. */
static int load_modules(const struct dev_opts *o, const struct ovl_nv_majors *m, json_t *loaded,
			bool quiet)
{
	const struct {
		const char *module;
		int major;
	} mods[] = {{"nvidia", m->frontend}, {"nvidia-uvm", m->uvm}};
	char modprobe[4096];
	int bad = 0;
	modprobe_path(o->proc_root, modprobe, sizeof(modprobe));
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		struct gs_err e = GS_ERR_INIT;
		if (mods[i].major >= 0)
			continue;
		int r = run_modprobe(modprobe, mods[i].module, &e);
		if (r < 0) {
			fprintf(stderr, "gpu-stage: devices: %s\n", e.msg);
			bad = 1;
		} else if (!quiet) {
			printf("loaded %s (%s)\n", mods[i].module, modprobe);
		}
		json_array_append_new(loaded, json_pack("{s:s, s:s, s:b, s:s?}", "module", mods[i].module,
							"modprobe", modprobe, "ok", r >= 0, "error",
							r < 0 ? e.msg : NULL));
	}
	return bad;
}

/* ---- the nodes ------------------------------------------------------------------------ */

static void judge_row(int devfd, const struct ovl_hostdev *d, bool ensure, struct row *w)
{
	enum ovl_node_state st;
	struct gs_err e = GS_ERR_INIT;
	if (ovl_hostdev_check(devfd, d, &st, w->found, sizeof(w->found), &e) < 0) {
		w->status = "failed";
		snprintf(w->note, sizeof(w->note), "%s", e.msg);
		return;
	}
	w->status = ovl_node_state_name(st);
	if (st == OVL_NODE_NO_MODULE)
		snprintf(w->note, sizeof(w->note), "--load loads it%s",
			 d->module == OVL_MOD_MODESET || d->module == OVL_MOD_CAPS ? " (not this one: load it by hand)" : "");
	if (st == OVL_NODE_CONFLICT)
		snprintf(w->note, sizeof(w->note), "%s is there: left alone, remove it by hand", w->found);
	if (st == OVL_NODE_BAD_MODE)
		snprintf(w->note, sizeof(w->note), "it has %s", w->found);
	if (!ensure || (st != OVL_NODE_MISSING && st != OVL_NODE_BAD_MODE))
		return;
	if (!d->attrs.modify) {
		snprintf(w->note, sizeof(w->note), "the driver's ModifyDeviceFiles is 0: the nodes are the administrator's to make");
		return;
	}
	bool made = st == OVL_NODE_MISSING;
	if (ovl_hostdev_make(devfd, d, &e) < 0) {
		w->status = "failed";
		snprintf(w->note, sizeof(w->note), "%s", e.msg);
		return;
	}
	if (ovl_hostdev_check(devfd, d, &st, w->found, sizeof(w->found), &e) < 0 || st != OVL_NODE_OK) {
		w->status = "failed";
		snprintf(w->note, sizeof(w->note), "made, but it is %s", e.code ? e.msg : w->found);
		return;
	}
	w->status = made ? "created" : "fixed";
	if (!made)
		snprintf(w->note, sizeof(w->note), "it had %.100s", w->found[0] ? w->found : "another mode");
}

static bool row_ok(const struct row *w)
{
	return !strcmp(w->status, "ok") || !strcmp(w->status, "created") || !strcmp(w->status, "fixed");
}

/* The /dev/char links of the nodes now present. */
static char *char_links(const struct dev_opts *o, const struct ovl_hostdevs *h, const struct row *rows)
{
	_cleanup_free_ struct ovl_device *v = calloc(h->n + 1, sizeof(*v));
	size_t n = 0;
	char *note = NULL;
	if (!v)
		return NULL;
	for (size_t i = 0; i < h->n; i++) {
		if (!row_ok(&rows[i]))
			continue;
		snprintf(v[n].name, sizeof(v[n].name), "%s", h->v[i].name);
		v[n].major = (uint32_t)h->v[i].major;
		v[n].minor = h->v[i].minor;
		n++;
	}
	ovl_dev_char_links(o->dev_root, v, n, &note);
	return note;
}

static void print_table(const struct dev_opts *o, const struct ovl_hostdevs *h, const struct row *rows,
			const char *links)
{
	printf("%-40s %-9s %-4s %-9s %s\n", "NODE", "DEVICE", "MODE", "OWNER", "STATUS");
	for (size_t i = 0; i < h->n; i++) {
		const struct ovl_hostdev *d = &h->v[i];
		char path[4200], num[24] = "-", owner[24];
		snprintf(path, sizeof(path), "%s/%s", o->dev_root, d->name);
		if (d->major >= 0)
			snprintf(num, sizeof(num), "%d:%u", d->major, d->minor);
		snprintf(owner, sizeof(owner), "%u:%u", (unsigned int)d->attrs.uid, (unsigned int)d->attrs.gid);
		printf("%-40s %-9s %04o %-9s %s%s%s\n", path, num, (unsigned int)d->attrs.mode, owner,
		       rows[i].status, rows[i].note[0] ? ": " : "", rows[i].note);
	}
	if (links)
		printf("/dev/char: %s\n", links);
}

static int print_json(const struct dev_opts *o, const struct ovl_hostdevs *h, const struct row *rows,
		      const char *links, json_t *loaded, bool ok)
{
	_cleanup_(gs_json_decrefp) json_t *nodes = json_array();
	for (size_t i = 0; nodes && i < h->n; i++) {
		const struct ovl_hostdev *d = &h->v[i];
		char path[4200], mode[8];
		snprintf(path, sizeof(path), "%s/%s", o->dev_root, d->name);
		snprintf(mode, sizeof(mode), "%04o", (unsigned int)d->attrs.mode);
		json_t *n = json_pack("{s:s, s:s, s:o, s:I, s:s, s:I, s:I, s:s, s:s, s:s?, s:s?}", "path", path,
				      "name", d->name, "major", d->major >= 0 ? json_integer(d->major) : json_null(),
				      "minor", (json_int_t)d->minor, "mode", mode, "uid", (json_int_t)d->attrs.uid,
				      "gid", (json_int_t)d->attrs.gid, "module", ovl_nv_module_name(d->module),
				      "status", rows[i].status, "found", rows[i].found[0] ? rows[i].found : NULL,
				      "note", rows[i].note[0] ? rows[i].note : NULL);
		if (!n || json_array_append_new(nodes, n) < 0)
			return GS_EXIT_FAIL;
	}
	_cleanup_(gs_json_decrefp) json_t *j = nodes ? json_pack(
		"{s:s, s:s, s:b, s:O, s:O, s:s?}", "dev_root", o->dev_root, "proc_root", o->proc_root,
		"ok", ok, "loaded", loaded, "nodes", nodes, "dev_char", links) : NULL;
	if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) < 0) {
		fprintf(stderr, "gpu-stage: devices: writing JSON: out of memory\n");
		return GS_EXIT_FAIL;
	}
	putchar('\n');
	return ok ? GS_EXIT_OK : GS_EXIT_FAIL;
}

static int read_host(const struct dev_opts *o, struct ovl_hostdevs *h)
{
	struct gs_err err = GS_ERR_INIT;
	if (ovl_hostdevs_read(o->proc_root, h, &err) < 0) {
		fprintf(stderr, "gpu-stage: %s\n", err.msg);
		return -1;
	}
	return 0;
}

int cmd_devices(int argc, char **argv)
{
	struct dev_opts o = {0};
	int r = parse_devices(argc, argv, &o);
	if (r >= 0)
		return r;
	const struct gs_config *c = cli_config();
	if (!c)
		return GS_EXIT_FAIL;
	o.dev_root = o.dev_root ? o.dev_root : c->dev_root;
	o.proc_root = o.proc_root ? o.proc_root : c->proc_root;
	if (o.inventory) {
		const struct inv_opts io = {.store = o.store ? o.store : c->store,
					    .driver = o.driver ? o.driver : c->driver,
					    .proc_root = o.proc_root,
					    .output = o.output ? o.output : c->inventory,
					    .timeout = o.timeout ? o.timeout : INVENTORY_TIMEOUT,
					    .json = o.json};
		struct gs_err err = GS_ERR_INIT;
		return devices_inventory(&io, &err) < 0 ? cli_fail(&err) : cli_flush_out(GS_EXIT_OK);
	}
	struct ovl_hostdevs h;
	_cleanup_(gs_json_decrefp) json_t *loaded = json_array();
	if (!loaded || read_host(&o, &h) < 0)
		return GS_EXIT_FAIL;
	int bad = 0;
	if (o.load && (h.majors.frontend < 0 || h.majors.uvm < 0)) {
		bad = load_modules(&o, &h.majors, loaded, o.json);
		ovl_hostdevs_clear(&h);
		if (read_host(&o, &h) < 0) /* the majors the modules just registered */
			return GS_EXIT_FAIL;
	}
	_cleanup_close_ int devfd = open(o.dev_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (devfd < 0) {
		fprintf(stderr, "gpu-stage: %s: %s\n", o.dev_root, strerror(errno));
		ovl_hostdevs_clear(&h);
		return GS_EXIT_FAIL;
	}
	umask(0); /* every mode is set explicitly */
	_cleanup_free_ struct row *rows = calloc(h.n + 1, sizeof(*rows));
	if (!rows) {
		ovl_hostdevs_clear(&h);
		return GS_EXIT_FAIL;
	}
	for (size_t i = 0; i < h.n; i++) {
		judge_row(devfd, &h.v[i], o.ensure, &rows[i]);
		bad |= !row_ok(&rows[i]);
	}
	_cleanup_free_ char *links = o.ensure ? char_links(&o, &h, rows) : NULL;
	if (o.json)
		r = print_json(&o, &h, rows, links, loaded, !bad);
	else
		print_table(&o, &h, rows, links);
	ovl_hostdevs_clear(&h);
	return o.json ? r : bad ? GS_EXIT_FAIL : GS_EXIT_OK;
}
