/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage cdi: the CDI (Container Device Interface) spec that Podman,
 * Docker >= 25 and containerd read from /etc/cdi or /var/run/cdi, so that
 * `--device nvidia.com/gpu=all` gives a container the staged driver.
 *
 * The spec names devices only: VENDOR/gpu=all, =INDEX and =UUID for each
 * GPU (its /dev/nvidiaN), and for any of them the control nodes and
 * gpu-stage-hook as a createContainer hook.  It names no driver file: the
 * hook gives the staged driver of the loaded module at every start and
 * refreshes the container's ld.so.cache, which a spec's mounts cannot do,
 * and a spec that named driver files would go stale at the next driver
 * upgrade.  So the spec changes only when the GPUs (or where the hook is
 * installed) change; `gpu-stage` re-writes one it finds after each stage
 * (cdi_refresh). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/manifest.h"
#include "gs/overlay.h"
#include "gs/version.h"

/* cdiVersion: the lowest version that has every feature the spec uses.
 * 0.3.0 (CDI's first tagged release) has kind, devices[].containerEdits
 * with deviceNodes, and spec-level containerEdits with hooks (hookName
 * createContainer).  0.4.0 added a mount's "type" (not used).  0.5.0
 * added deviceNodes[].hostPath (used when dev_root is not /dev) and
 * device names that start with a digit: the index names "0", "1", ...
 * always do, so 0.5.0 it is.  Nothing of 0.6.0 is used (annotations, a dot
 * in the class), so Podman 4.3, whose CDI reads up to 0.5.0 and skips
 * newer files silently, reads this one. */
#define CDI_VERSION "0.5.0"
#define CDI_CLASS "gpu"
#define CDI_HOOK "gpu-stage-hook"
#define CDI_HOOK_FLAG "--cdi" /* the mark of a spec gpu-stage wrote */
#define CDI_SPEC_MAX (1u << 20)

struct cdi_params {
	const char *vendor, *dev_root, *proc_root;
	const char *store;  /* handed to the hook as --store, or NULL: its configuration's */
	const char *config; /* the configuration the hook reads (absolute), or NULL: its default */
};

/* What a spec holds, for the summaries. */
struct cdi_made {
	json_t *spec;
	json_t *devices; /* "VENDOR/gpu=NAME" strings */
	json_t *absent;  /* optional control nodes not found under dev_root */
	char *hook;
};

static void cdi_made_clear(struct cdi_made *m)
{
	gs_json_decrefp(&m->spec);
	gs_json_decrefp(&m->devices);
	gs_json_decrefp(&m->absent);
	free(m->hook);
	*m = (struct cdi_made){0};
}

static int oom(struct gs_err *err)
{
	return gs_err_setx(err, ENOMEM, "out of memory");
}

/* {"path": "/dev/NAME"} plus "hostPath": DEVROOT/NAME when DEVROOT is not
 * /dev, for a character device DEVROOT/NAME.  0 appended, 1 absent (and
 * OPTIONAL: skipped), < 0 error.  No major/minor: the runtime reads them
 * from the node at each start (nvidia-uvm's major is given out anew each
 * time the module loads). */
static int add_node(json_t *nodes, const char *devroot, const char *name, bool optional,
		    struct gs_err *err)
{
	_cleanup_free_ char *host = NULL, *path = NULL;
	struct stat st;
	if (asprintf(&host, "%s/%s", devroot, name) < 0 || asprintf(&path, "/dev/%s", name) < 0)
		return oom(err);
	int sr = stat(host, &st), e = sr < 0 ? errno : 0;
	if (sr < 0 && e != ENOENT)
		return gs_err_set(err, e, "%s", host);
	if (sr < 0 || !S_ISCHR(st.st_mode))
		return optional ? 1 : gs_err_setx(err, ENODEV, "%s: no such character device", host);
	json_t *n = strcmp(devroot, "/dev") ? json_pack("{s:s, s:s}", "path", path, "hostPath", host)
					    : json_pack("{s:s}", "path", path);
	return n && json_array_append_new(nodes, n) == 0 ? 0 : oom(err);
}

/* CDI's device name rule (ValidateDeviceName): a letter or digit first
 * and last, letters, digits and _ - . : between. */
static bool name_valid(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && isalnum((unsigned char)s[0]) && isalnum((unsigned char)s[n - 1]) &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:") == n;
}

/* One device: {"name": NAME, "containerEdits": {"deviceNodes": NODES}};
 * a name CDI would refuse, or one already there, is an error (CDI would
 * reject the whole spec). */
static int add_device(struct cdi_made *m, const char *vendor, const char *name, json_t *nodes,
		      struct gs_err *err)
{
	json_t *devs = json_object_get(m->spec, "devices"), *d;
	size_t i;
	if (!name_valid(name))
		return gs_err_setx(err, EINVAL, "GPU '%.100s': not a CDI device name (letters, digits, _ - . :)",
				   name);
	json_array_foreach(devs, i, d)
		if (!strcmp(json_string_value(json_object_get(d, "name")), name))
			return gs_err_setx(err, EEXIST, "two GPUs are both named %.100s", name);
	d = json_pack("{s:s, s:{s:O}}", "name", name, "containerEdits", "deviceNodes", nodes);
	json_t *q = json_sprintf("%s/" CDI_CLASS "=%s", vendor, name);
	if (!d || !q) {
		json_decref(d);
		json_decref(q);
		return oom(err);
	}
	if (json_array_append_new(devs, d) < 0) { /* the _new calls release what they fail to add */
		json_decref(q);
		return oom(err);
	}
	return json_array_append_new(m->devices, q) < 0 ? oom(err) : 0;
}

/* The GPUs: one device per index and per UUID, then "all". */
static int add_gpus(struct cdi_made *m, const struct cdi_params *p, struct gs_err *err)
{
	_cleanup_free_ struct ovl_gpu *gpus = NULL;
	size_t n = 0;
	if (ovl_gpus_read(p->proc_root, &gpus, &n, err) < 0)
		return -err->code;
	if (n == 0)
		return gs_err_setx(err, ENODEV,
				   "%s/driver/nvidia/gpus lists no GPU (is the driver loaded?): a CDI spec needs at least one device",
				   p->proc_root);
	_cleanup_(gs_json_decrefp) json_t *all = json_array();
	if (!all)
		return oom(err);
	for (size_t i = 0; i < n; i++) {
		char node[32], index[24];
		snprintf(node, sizeof(node), "nvidia%d", gpus[i].minor);
		snprintf(index, sizeof(index), "%zu", i);
		_cleanup_(gs_json_decrefp) json_t *nodes = json_array();
		if (!nodes)
			return oom(err);
		int r = add_node(nodes, p->dev_root, node, false, err);
		if (r >= 0)
			r = add_device(m, p->vendor, index, nodes, err);
		if (r >= 0)
			r = add_device(m, p->vendor, gpus[i].uuid, nodes, err);
		if (r < 0)
			return r;
		if (json_array_extend(all, nodes) < 0)
			return oom(err);
	}
	return add_device(m, p->vendor, "all", all, err);
}

/* gpu-stage-hook next to this gpu-stage (as gpu-runtime finds it). */
static int hook_path(char **out, struct gs_err *err)
{
	if (gs_exe_sibling(CDI_HOOK, out, err) < 0)
		return -err->code;
	if (access(*out, X_OK) < 0)
		return gs_err_set(err, errno,
				  "%s (the hook the spec names, installed next to gpu-stage: make install puts both there)",
				  *out);
	return 0;
}

/* The spec-level edits: the control nodes and the hook. */
static int add_common(struct cdi_made *m, const struct cdi_params *p, struct gs_err *err)
{
	static const struct {
		const char *name;
		bool optional;
	} ctl[] = {{"nvidiactl", false},
		   {"nvidia-uvm", true},
		   {"nvidia-uvm-tools", true},
		   {"nvidia-modeset", true}};
	json_t *nodes = json_array(), *args = NULL, *edits = NULL;
	int r = nodes ? 0 : oom(err);
	for (size_t i = 0; r >= 0 && i < sizeof(ctl) / sizeof(ctl[0]); i++) {
		r = add_node(nodes, p->dev_root, ctl[i].name, ctl[i].optional, err);
		if (r == 1) {
			char what[64];
			snprintf(what, sizeof(what), "/dev/%s", ctl[i].name);
			r = json_array_append_new(m->absent, json_string(what)) == 0 ? 0 : oom(err);
		}
	}
	if (r >= 0)
		r = hook_path(&m->hook, err);
	if (r >= 0 && !(args = json_array()))
		r = oom(err);
	const char *argv[] = {CDI_HOOK,
			      p->config ? "--config" : NULL, p->config,
			      p->store ? "--store" : NULL, p->store,
			      CDI_HOOK_FLAG, "createContainer"};
	for (size_t i = 0; r >= 0 && i < sizeof(argv) / sizeof(argv[0]); i++)
		if (argv[i] && json_array_append_new(args, json_string(argv[i])) < 0)
			r = oom(err);
	if (r >= 0 && !(edits = json_pack("{s:o, s:[{s:s, s:s, s:O, s:[s]}]}", "deviceNodes", nodes, "hooks",
					  "hookName", "createContainer", "path", m->hook, "args", args,
					  "env", GS_HOOK_ENV)))
		r = oom(err);
	nodes = NULL; /* "o" took it (or freed it on failure) */
	gs_json_decrefp(&args);
	if (r < 0 || json_object_set_new(m->spec, "containerEdits", edits) < 0)
		return r < 0 ? r : oom(err);
	return 0;
}

/* Builds the whole spec into M. */
static int cdi_build(const struct cdi_params *p, struct cdi_made *m, struct gs_err *err)
{
	*m = (struct cdi_made){0};
	if (!gs_cdi_vendor_valid(p->vendor))
		return gs_err_setx(err, EINVAL,
				   "'%.64s' is not a CDI vendor name (a letter first, a letter or digit last, letters, digits and . - _ between: nvidia.com)",
				   p->vendor);
	m->spec = json_pack("{s:s, s:s+, s:[]}", "cdiVersion", CDI_VERSION, "kind", p->vendor,
			    "/" CDI_CLASS, "devices");
	m->devices = json_array();
	m->absent = json_array();
	if (!m->spec || !m->devices || !m->absent)
		return oom(err);
	if (add_gpus(m, p, err) < 0 || add_common(m, p, err) < 0)
		return -err->code;
	return 0;
}

/* ---- files ---------------------------------------------------------------- */

/* Writes SPEC atomically as DIR/NAME (0644); DIR is created when missing
 * and MKDIR (cdi_dir: /etc/cdi is often not there yet; never for a
 * --output the user named). */
static int cdi_write(const char *dir, const char *name, json_t *spec, bool make_dir,
		     struct gs_err *err)
{
	_cleanup_free_ char *text = json_dumps(spec, JSON_INDENT(2));
	if (!text)
		return oom(err);
	size_t len = strlen(text);
	text[len] = '\n'; /* json_dumps ends with the NUL; one more byte is ours */
	if (make_dir && mkdir(dir, 0755) < 0 && errno != EEXIST)
		return gs_err_set(err, errno, "creating %s", dir);
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return gs_err_set(err, errno, "%s", dir);
	if (gs_write_atomic_at(dfd, name, text, len + 1, 0644, GS_WRITE_FSYNC | GS_WRITE_FSYNC_DIR,
			       err) < 0)
		return gs_err_wrap(err, "%s", dir);
	return 0;
}

/* VENDOR-gpu.json (CDI reads every *.json and *.yaml in its directories;
 * VENDOR-CLASS is the name its own producer library gives). */
static char *spec_name(const char *vendor)
{
	char *s = NULL;
	return asprintf(&s, "%s-" CDI_CLASS ".json", vendor) < 0 ? NULL : s;
}

/* Whether DIR/NAME is a spec gpu-stage wrote: 1 yes (*STORE: the --store
 * its hook is given, malloc'd, or NULL; *SPEC, when not NULL: the spec),
 * 0 missing, -ENOTUNIQ there but not ours (or not JSON), < 0 error.  Ours:
 * its containerEdits.hooks has one whose args are gpu-stage-hook ... --cdi
 * ... (the 0.5.0 schema has no annotations to mark a file with). */
static int cdi_ours(const char *dir, const char *name, char **store, json_t **spec,
		    struct gs_err *err)
{
	*store = NULL;
	_cleanup_free_ char *path = NULL, *text = NULL;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return oom(err);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return gs_err_set(err, errno, "%s", path);
	size_t len = 0;
	if (gs_read_all_fd(fd, CDI_SPEC_MAX, path, &text, &len, err) < 0)
		return -err->code;
	_cleanup_(gs_json_decrefp) json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *h;
	size_t i;
	json_array_foreach(json_object_get(json_object_get(j, "containerEdits"), "hooks"), i, h) {
		json_t *args = json_object_get(h, "args"), *a;
		size_t k;
		bool mark = false;
		const char *st = NULL;
		json_array_foreach(args, k, a) {
			const char *s = json_string_value(a);
			mark = mark || (k > 0 && s && !strcmp(s, CDI_HOOK_FLAG));
			if (k > 0 && s && !strcmp(s, "--store"))
				st = json_string_value(json_array_get(args, k + 1));
		}
		const char *a0 = json_string_value(json_array_get(args, 0));
		if (!mark || !a0 || strcmp(a0, CDI_HOOK) != 0)
			continue;
		if (st && !(*store = strdup(st)))
			return oom(err);
		if (spec)
			*spec = json_incref(j);
		return 1;
	}
	return -ENOTUNIQ;
}

/* ---- the command ------------------------------------------------------------ */

/* The configuration file as the hook must be told it: absolute, or NULL
 * when none was read (the hook's default, missing, means the same). */
static int config_for_hook(const struct gs_config *c, char **out, struct gs_err *err)
{
	*out = NULL;
	if (!c->path)
		return 0;
	*out = realpath(c->path, NULL);
	return *out ? 0 : gs_err_set(err, errno, "configuration %s", c->path);
}

int cdi_refresh(const char *store, char **file, struct gs_err *err)
{
	*file = NULL;
	const struct gs_config *c = cli_config();
	if (!c)
		return gs_err_setx(err, EINVAL, "the configuration cannot be read (see above)");
	_cleanup_free_ char *name = spec_name(c->cdi_vendor), *spec_store = NULL, *conf = NULL;
	if (!name)
		return oom(err);
	int r = cdi_ours(c->cdi_dir, name, &spec_store, NULL, err);
	if (r == 0 || r == -ENOTUNIQ)
		return 0; /* none, or someone else's: never created or taken over unasked */
	if (r < 0)
		return r;
	/* only the spec whose hook reads this store */
	if (strcmp(spec_store ? spec_store : c->store, store) != 0)
		return 0;
	if (config_for_hook(c, &conf, err) < 0)
		return -err->code;
	struct cdi_params p = {.vendor = c->cdi_vendor, .dev_root = c->dev_root,
			       .proc_root = c->proc_root, .store = spec_store, .config = conf};
	struct cdi_made m;
	r = cdi_build(&p, &m, err);
	if (r >= 0)
		r = cdi_write(c->cdi_dir, name, m.spec, false, err);
	cdi_made_clear(&m);
	if (r < 0)
		return gs_err_wrap(err, "CDI spec %s/%s (left as it was)", c->cdi_dir, name);
	if (asprintf(file, "%s/%s", c->cdi_dir, name) < 0) {
		*file = NULL;
		return oom(err);
	}
	return 1;
}

/* The device names a spec for PROCROOT's GPUs has, in cdi_build's order
 * ("0", UUID, "1", UUID, ..., "all"): a new array. */
static int expected_names(const char *procroot, json_t **out, struct gs_err *err)
{
	_cleanup_free_ struct ovl_gpu *gpus = NULL;
	size_t n = 0;
	if (ovl_gpus_read(procroot, &gpus, &n, err) < 0)
		return -err->code;
	if (!(*out = json_array()))
		return oom(err);
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(*out, json_sprintf("%zu", i)) < 0 ||
		    json_array_append_new(*out, json_string(gpus[i].uuid)) < 0)
			return oom(err);
	return json_array_append_new(*out, json_string("all")) < 0 ? oom(err) : 0;
}

/* Why spec SPEC (ours) is not what `gpu-stage cdi` would write now, or 0. */
static int stale_because(json_t *spec, const char *spec_store, const struct cdi_check *q,
			 char **why, struct gs_err *err)
{
	_cleanup_(gs_json_decrefp) json_t *want = NULL, *have = json_array();
	_cleanup_free_ char *hook = NULL;
	json_t *d, *h;
	size_t i;
	if (!have || expected_names(q->proc_root, &want, err) < 0)
		return have ? -err->code : oom(err);
	json_array_foreach(json_object_get(spec, "devices"), i, d)
		if (json_array_append(have, json_object_get(d, "name")) < 0)
			return oom(err);
	if (gs_exe_sibling(CDI_HOOK, &hook, err) < 0)
		return -err->code;
	const char *named = NULL;
	json_array_foreach(json_object_get(json_object_get(spec, "containerEdits"), "hooks"), i, h)
		named = named ? named : json_string_value(json_object_get(h, "path"));
	int r = 0;
	if (spec_store && strcmp(spec_store, q->store))
		r = asprintf(why, "its hook reads the store %s, not %s", spec_store, q->store);
	else if (!json_equal(have, want))
		r = asprintf(why, "it names %zu devices, the GPUs in %s/driver/nvidia/gpus make %zu",
			     json_array_size(have), q->proc_root, json_array_size(want));
	else if (!named || strcmp(named, hook))
		r = asprintf(why, "its hook is %s, not %s", named ? named : "(none)", hook);
	else
		return 0;
	return r < 0 ? oom(err) : 1;
}

int cdi_check(const struct cdi_check *q, char **file, char **why, struct gs_err *err)
{
	*file = *why = NULL;
	_cleanup_free_ char *name = spec_name(q->vendor), *spec_store = NULL;
	_cleanup_(gs_json_decrefp) json_t *spec = NULL;
	if (!name || asprintf(file, "%s/%s", q->cdi_dir, name) < 0)
		return oom(err);
	int r = cdi_ours(q->cdi_dir, name, &spec_store, &spec, err);
	if (r == 0)
		return CDI_NONE;
	if (r == -ENOTUNIQ)
		return CDI_FOREIGN;
	if (r < 0)
		return r;
	r = stale_because(spec, spec_store, q, why, err);
	return r < 0 ? r : r ? CDI_STALE : CDI_CURRENT;
}

struct cdi_opts {
	const char *driver, *store, *vendor, *output;
	bool json, force;
};

/* ---- other specs of the same kind -------------------------------------------- */

/* The value of a YAML document's top-level "kind:" line, or NULL. */
static char *yaml_kind(const char *t, size_t len)
{
	for (const char *p = t, *end = t + len; p < end;) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		if ((size_t)(e - p) > 5 && !memcmp(p, "kind:", 5)) {
			const char *a = p + 5, *b = e;
			while (a < b && (*a == ' ' || *a == '\t'))
				a++;
			while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
				b--;
			if (b - a >= 2 && (*a == '"' || *a == '\'') && b[-1] == *a)
				a++, b--;
			return strndup(a, (size_t)(b - a));
		}
		p = e < end ? e + 1 : end;
	}
	return NULL;
}

/* Whether DIR/NAME (a .json, .yaml or .yml spec) declares KIND and is not
 * gpu-stage's own. */
static bool is_rival(const char *dir, const char *name, const char *kind)
{
	size_t n = strlen(name);
	bool json = n > 5 && !strcmp(name + n - 5, ".json");
	bool yaml = (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
	if ((!json && !yaml) || name[0] == '.')
		return false;
	struct gs_err e = GS_ERR_INIT;
	_cleanup_free_ char *store = NULL, *path = NULL, *text = NULL, *yk = NULL;
	if (json && cdi_ours(dir, name, &store, NULL, &e) == 1)
		return false; /* gpu-stage's own (another vendor's file name, another store) */
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return false;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	size_t len = 0;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    gs_read_all_fd(fd, CDI_SPEC_MAX, path, &text, &len, &e) < 0)
		return false;
	if (yaml) {
		yk = yaml_kind(text, len);
		return yk && !strcmp(yk, kind);
	}
	_cleanup_(gs_json_decrefp) json_t *j = json_loadb(text, len, 0, NULL);
	const char *k = json_string_value(json_object_get(j, "kind"));
	return k && !strcmp(k, kind);
}

/* The first spec but OURS (DIR/OURS) that declares KIND where engines read
 * specs: DIR, /etc/cdi, /var/run/cdi.  CDI drops a device two specs of one
 * directory define, and lets a later directory's win: gpu-stage's hook
 * would not run.  *RIVAL: its path (malloc'd), or NULL. */
static int cdi_rival(const char *dir, const char *ours, const char *kind, char **rival)
{
	const char *dirs[] = {dir, "/etc/cdi", "/var/run/cdi"};
	*rival = NULL;
	for (size_t i = 0; i < 3 && !*rival; i++) {
		if ((i > 0 && !strcmp(dirs[i], dir)) || (i == 2 && !strcmp(dirs[2], dirs[1])))
			continue;
		_cleanup_closedir_ DIR *d = opendir(dirs[i]);
		struct dirent *de;
		while (d && !*rival && (de = readdir(d)))
			if (!(i == 0 && !strcmp(de->d_name, ours)) && is_rival(dirs[i], de->d_name, kind) &&
			    asprintf(rival, "%s/%s", dirs[i], de->d_name) < 0)
				return -ENOMEM;
	}
	return 0;
}

int cdi_rival_of(const char *cdi_dir, const char *vendor, char **rival)
{
	_cleanup_free_ char *name = spec_name(vendor), *kind = NULL;
	*rival = NULL;
	if (!name || asprintf(&kind, "%s/" CDI_CLASS, vendor) < 0)
		return -ENOMEM;
	return cdi_rival(cdi_dir, name, kind, rival);
}

static void cdi_usage(FILE *f)
{
	fputs("Usage: gpu-stage cdi [--driver VER] [--store DIR] [--vendor NAME]\n"
	      "                     [--output FILE|-] [--json] [--force]\n"
	      "\n"
	      "Writes the CDI spec (cdiVersion " CDI_VERSION ") that gives a container the staged\n"
	      "driver through `--device VENDOR/gpu=all` (or =INDEX, =UUID): Podman,\n"
	      "Docker >= 25, containerd.  The spec names the GPUs' device nodes, the\n"
	      "control nodes and gpu-stage-hook (a createContainer hook, next to this\n"
	      "gpu-stage); no driver file, so it stays valid across driver upgrades.\n"
	      "\n"
	      "  --driver VER   refuse unless VER is staged (default: the configuration's,\n"
	      "                 else the loaded module's)\n"
	      "  --store DIR    the store (default: the configuration's, else " GS_DEFAULT_STORE ")\n"
	      "  --vendor NAME  the kind's vendor (default: cdi_vendor, else nvidia.com)\n"
	      "  --output FILE  where to write, atomically (default:\n"
	      "                 CDI_DIR/VENDOR-gpu.json, CDI_DIR from cdi_dir, else /etc/cdi);\n"
	      "                 - prints the spec instead\n"
	      "  --json         print what was written (file, devices) as JSON\n"
	      "  --force        write it even when another spec (NVIDIA's nvidia.yaml, say)\n"
	      "                 declares the same kind in CDI_DIR, /etc/cdi or /var/run/cdi\n"
	      "\n"
	      "Undo: delete the file.\n",
	      f);
}

/* -1 to go on, else the exit code. */
static int parse_cdi(int argc, char **argv, struct cdi_opts *o)
{
	static const struct option opts[] = {
		{"driver", required_argument, NULL, 'd'}, {"store", required_argument, NULL, 's'},
		{"vendor", required_argument, NULL, 'v'}, {"output", required_argument, NULL, 'o'},
		{"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
		{"force", no_argument, NULL, 'f'},        {0}};
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "d:s:v:o:jfh", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': o->driver = optarg; break;
		case 's': o->store = optarg; break;
		case 'v': o->vendor = optarg; break;
		case 'o': o->output = optarg; break;
		case 'j': o->json = true; break;
		case 'f': o->force = true; break;
		case 'h': cdi_usage(stdout); return GS_EXIT_OK;
		default: return GS_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gpu-stage: cdi: unexpected argument '%s' (see gpu-stage cdi --help)\n",
			argv[optind]);
		return GS_EXIT_USAGE;
	}
	if (o->output && (!*o->output || (strcmp(o->output, "-") && o->output[strlen(o->output) - 1] == '/'))) {
		fprintf(stderr, "gpu-stage: cdi: --output needs a file name (or - for standard output)\n");
		return GS_EXIT_USAGE;
	}
	if (o->json && o->output && !strcmp(o->output, "-")) {
		fprintf(stderr, "gpu-stage: cdi: --json describes a written file; with --output - the spec itself is the output\n");
		return GS_EXIT_USAGE;
	}
	return -1;
}

/* The driver the hook will give (VER, the configuration's, the loaded
 * module's) must be staged: STORE/VER a directory (no symlink) with the
 * index the hook reads.  No readers' lock: nothing in it is read, and so
 * `gpu-stage cdi --output -` works without write access to the store. */
static int check_staged(const char *store, const char *driver, const char *procroot,
			struct gs_err *err)
{
	_cleanup_free_ char *loaded = NULL;
	if (!driver && ovl_driver_version(procroot, &loaded, err) < 0)
		return -err->code;
	const char *ver = driver ? driver : loaded;
	if (!gs_version_valid(ver))
		return gs_err_setx(err, EINVAL, "'%.64s' is not a driver version (digits and dots: 535.261.03)", ver);
	_cleanup_close_ int sfd = open(store, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 && errno != ENOENT)
		return gs_err_set(err, errno, "store %s", store);
	_cleanup_close_ int vfd = sfd < 0 ? -1 : gs_open_beneath(sfd, ver, O_PATH | O_DIRECTORY, 0);
	if (vfd < 0 && sfd >= 0 && errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
		return gs_err_set(err, errno, "%s/%s", store, ver);
	struct stat st;
	if (vfd < 0 || fstatat(vfd, GS_INDEX_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return gs_err_setx(err, ENOENT,
				   "driver %s is not staged in %s: run 'gpu-stage --driver %s' first (the hook the spec names gives a container the staged driver)",
				   ver, store, ver);
	return 0;
}

static int report(const struct cdi_opts *o, const char *file, const struct cdi_made *m)
{
	if (o->json) {
		_cleanup_(gs_json_decrefp) json_t *j =
			json_pack("{s:s, s:s, s:O, s:O, s:s, s:O}", "file", file, "cdiVersion",
				  CDI_VERSION, "kind", json_object_get(m->spec, "kind"), "devices",
				  m->devices, "hook", m->hook, "absent", m->absent);
		if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) < 0) {
			fprintf(stderr, "gpu-stage: cdi: writing JSON: out of memory\n");
			return GS_EXIT_FAIL;
		}
		putchar('\n');
		return GS_EXIT_OK;
	}
	printf("wrote %s (cdiVersion " CDI_VERSION "): %zu devices:", file,
	       json_array_size(m->devices));
	json_t *d;
	size_t i;
	json_array_foreach(m->devices, i, d)
		printf(" %s", json_string_value(d));
	putchar('\n');
	json_array_foreach(m->absent, i, d) /* CUDA needs nvidia-uvm; modeset is often absent */
		if (!strncmp(json_string_value(d), "/dev/nvidia-uvm", 15))
			fprintf(stderr, "gpu-stage: cdi: note: %s is not there (nvidia-uvm not loaded?), so the spec does not name it: run 'gpu-stage devices --ensure --load', then gpu-stage cdi again\n",
				json_string_value(d));
	return GS_EXIT_OK;
}

static int fail(const struct gs_err *err)
{
	fprintf(stderr, "gpu-stage: cdi: %s\n", err->msg);
	return GS_EXIT_FAIL;
}

int cmd_cdi(int argc, char **argv)
{
	struct cdi_opts o = {0};
	int r = parse_cdi(argc, argv, &o);
	if (r >= 0)
		return r;
	const struct gs_config *c = cli_config();
	if (!c)
		return GS_EXIT_FAIL;
	struct gs_err err = GS_ERR_INIT;
	_cleanup_free_ char *conf = NULL;
	const char *store = o.store ? o.store : c->store;
	if (config_for_hook(c, &conf, &err) < 0 ||
	    check_staged(store, o.driver ? o.driver : c->driver, c->proc_root, &err) < 0)
		return fail(&err);
	struct cdi_params p = {.vendor = o.vendor ? o.vendor : c->cdi_vendor,
			       .dev_root = c->dev_root, .proc_root = c->proc_root,
			       .store = strcmp(store, c->store) ? store : NULL, .config = conf};
	_cleanup_(cdi_made_clear) struct cdi_made m = {0};
	if (cdi_build(&p, &m, &err) < 0)
		return fail(&err);
	if (o.output && !strcmp(o.output, "-")) {
		if (json_dumpf(m.spec, stdout, JSON_INDENT(2)) < 0)
			return fail(&(struct gs_err){ENOMEM, "writing the spec: out of memory"});
		putchar('\n');
		return GS_EXIT_OK;
	}
	_cleanup_free_ char *dflt = NULL, *name = spec_name(p.vendor), *dirbuf = NULL;
	if (!name)
		return fail(&(struct gs_err){ENOMEM, "out of memory"});
	const char *dir = c->cdi_dir, *base = name, *file;
	if (o.output) {
		const char *slash = strrchr(o.output, '/');
		dirbuf = slash ? strndup(o.output, slash == o.output ? 1 : (size_t)(slash - o.output))
			       : strdup(".");
		if (!dirbuf)
			return fail(&(struct gs_err){ENOMEM, "out of memory"});
		dir = dirbuf;
		base = slash ? slash + 1 : o.output;
		file = o.output;
	} else {
		if (asprintf(&dflt, "%s/%s", dir, name) < 0)
			return fail(&(struct gs_err){ENOMEM, "out of memory"});
		file = dflt;
	}
	_cleanup_free_ char *rival = NULL;
	const char *kind = json_string_value(json_object_get(m.spec, "kind"));
	if (cdi_rival(dir, base, kind, &rival) < 0)
		return fail(&(struct gs_err){ENOMEM, "out of memory"});
	if (rival && !o.force) {
		fprintf(stderr, "gpu-stage: cdi: %s declares kind %s too: CDI drops the devices two specs of one directory define, and lets a later directory's (/var/run/cdi after /etc/cdi) win, so gpu-stage's hook would not run; %s not written (remove that spec, choose another --vendor, or --force)\n",
			rival, kind, file);
		return GS_EXIT_FAIL;
	}
	if (cdi_write(dir, base, m.spec, !o.output, &err) < 0)
		return fail(&err);
	if (rival)
		fprintf(stderr, "gpu-stage: cdi: warning: %s declares kind %s too (--force): the devices both define resolve to neither, or to the later directory's\n",
			rival, kind);
	return report(&o, file, &m);
}
