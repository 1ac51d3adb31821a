/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-runtime: an OCI runtime shim.  On `create` and `run` it adds
 * gpu-stage-hook (installed next to it) to the bundle's config.json as a
 * createRuntime hook, with an explicit empty "env" (so no runtime ever hands
 * it the container's environment), when the container asks for a GPU
 * (process.env has NVIDIA_VISIBLE_DEVICES) and the hook is not there
 * already; then it execs the real runtime with the same arguments.
 *
 * The arguments are read as the runtime reads them (rtargs.c: runc's and
 * crun's option tables and parsing rules); when the command or the bundle
 * of create/run cannot be known for certain, it refuses (exit 1) rather
 * than let a GPU container start without the hook; help and version
 * options pass through.  config.json is read as runc reads it and edited
 * by insertion only (jsonedit.c): a container that asks for no GPU is never
 * refused for its config.json, and every byte the engine wrote is kept.
 * For a read-only root
 * whose image has a /run directory, config.json also gains a tmpfs mount
 * at /run/gpu-stage (unless /run or /run/gpu-stage is declared), so the
 * runtime makes the mount point and the hook never covers /run.
 *
 *   gpu-runtime [RUNTIME ARGS...]          e.g. as Docker's "runtimes" entry
 *   GPU_STAGE_CONFIG    the configuration file (default
 *                       /etc/gpu-stage/config.json, where a missing file
 *                       means every default): its "runtime" is what is
 *                       exec'd, and the hook is given --config with it
 *   GPU_STAGE_RUNTIME   the runtime to exec (overrides the file's; default
 *                       runc, from PATH)
 *   GPU_STAGE_STORE     passed to the hook as --store (default: its own)
 *   GPU_STAGE_DRIVER    passed to the hook as --driver (default: the
 *                       loaded module's version)
 *   GPU_STAGE_HOOK_OPTS more hook options, space-separated (--audit-log F)
 *
 * Exit status: the runtime's; 1 (with a message) when the arguments are
 * uncertain or config.json cannot be read or rewritten, 127 when the
 * runtime cannot be executed. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "gs/cleanup.h"
#include "gs/config.h"
#include "gs/err.h"
#include "gs/fsx.h"
#include "gs/overlay.h"
#include "hook.h"
#include "jsonedit.h"
#include "rtargs.h"

#define HOOK_NAME "gpu-stage-hook"

/* The configuration: the file the environment named (passed on to the
 * hook), and why it could not be read (code 0: it could). */
static const char *conf_named;
static struct gs_err conf_error = GS_ERR_INIT;
static struct gs_config conf; /* its values (all defaults when it could not be read) */
/* The hook mounts its own anchor tmpfs (16m, overlay/mountapi.c) over this
 * one; the same limit keeps room for the refreshed ld.so.cache (tens of
 * KiB) should the hook ever fill this mount itself.  A limit, not memory
 * taken: tmpfs pages are used only as files are written. */
#define ANCHOR_SIZE "16m"
/* config.json larger than this is refused; runc too reads the whole file
 * into memory (the hook refuses a GPU container's above 16 MiB) */
#define CONFIG_MAX (256u << 20)

static const char *annotation(json_t *cfg, const char *key)
{
	return json_string_value(json_object_get(json_object_get(cfg, "annotations"), key));
}

/* Whether the container asks for a GPU: the orchestrator's annotation, or
 * (unless the configuration says "requests": "orchestrator") its
 * NVIDIA_VISIBLE_DEVICES. */
static bool wants_gpu(json_t *cfg)
{
	if (annotation(cfg, HK_ANNOT_DEVICES))
		return true;
	if (conf.requests == GS_REQUESTS_ORCHESTRATOR)
		return false;
	json_t *env = json_object_get(json_object_get(cfg, "process"), "env");
	size_t i;
	json_t *v;
	json_array_foreach(env, i, v) {
		if (json_is_string(v) && !strncmp(json_string_value(v), "NVIDIA_VISIBLE_DEVICES=", 23))
			return true;
	}
	return false;
}

enum hook_there { HOOK_NONE, HOOK_OURS, HOOK_NVIDIAS };

/* Whether CFG holds an injector's hook already: ours (by name, or the
 * nvidia-container-runtime-hook Docker's --gpus adds when it is OURS, the
 * hook next to this program, linked under that name), or NVIDIA's, which
 * does everything its own way: never two injectors. */
static enum hook_there hook_there(json_t *cfg, const char *ours)
{
	json_t *hooks = json_object_get(cfg, "hooks");
	const char *k;
	json_t *list;
	enum hook_there there = HOOK_NONE;
	struct stat a, b;
	bool known = stat(ours, &a) == 0;
	json_object_foreach(hooks, k, list) {
		size_t i;
		json_t *h;
		json_array_foreach(list, i, h) {
			const char *p = json_string_value(json_object_get(h, "path"));
			const char *base = p ? strrchr(p, '/') : NULL;
			base = base ? base + 1 : p;
			if (p && !strcmp(base, HOOK_NAME) && there == HOOK_NONE)
				there = HOOK_OURS;
			else if (p && !strcmp(base, "nvidia-container-runtime-hook"))
				there = known && stat(p, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
						? (there == HOOK_NONE ? HOOK_OURS : there)
						: HOOK_NVIDIAS;
		}
	}
	return there;
}

static bool append_str(json_t *a, const char *s)
{
	return json_array_append_new(a, json_string(s)) == 0;
}

/* The hook entry for config.json, as compact JSON text; NULL when out of
 * memory (never an entry with an argument left out). */
static char *hook_entry(const char *hook, const char *store, const char *driver)
{
	json_t *args = json_pack("[s]", HOOK_NAME);
	bool ok = args != NULL;
	if (ok && store)
		ok = append_str(args, "--store") && append_str(args, store);
	if (ok && driver)
		ok = append_str(args, "--driver") && append_str(args, driver);
	if (ok && conf_named) /* the same file for the hook (it never reads the environment) */
		ok = append_str(args, "--config") && append_str(args, conf_named);
	const char *opts = getenv("GPU_STAGE_HOOK_OPTS");
	_cleanup_free_ char *copy = ok && opts ? strdup(opts) : NULL;
	ok = ok && (!opts || copy);
	char *save = NULL;
	for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; ok && t; t = strtok_r(NULL, " ", &save))
		ok = append_str(args, t);
	ok = ok && append_str(args, "createRuntime");
	if (!ok) {
		json_decref(args);
		return NULL;
	}
	json_t *h = json_pack("{s:s, s:o, s:[]}", "path", hook, "args", args, "env");
	char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
	json_decref(h);
	return text;
}

/* Appends (AT -1) or inserts the value J into the array at PATH of DOC;
 * takes J. */
static int insert_new(struct je_doc *doc, const char *const *path, ssize_t at, json_t *j,
		      struct gs_err *err)
{
	_cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return gs_err_setx(err, ENOMEM, "out of memory");
	return je_array_insert(doc, path, at, text, err);
}

static int add_hook(struct je_doc *doc, const char *hook, const char *store, const char *driver,
		    struct gs_err *err)
{
	static const char *const path[] = {"hooks", "createRuntime", NULL};
	/* the hook runs elsewhere (runc: in the bundle; its own cwd for others)
	 * and takes only absolute paths: name the variable, not a usage error */
	if (conf_named && conf_named[0] != '/')
		return gs_err_setx(err, EINVAL, GS_CONFIG_ENV "=%s: not an absolute path (the hook runs in another directory)",
				   conf_named);
	if (store && store[0] != '/')
		return gs_err_setx(err, EINVAL, "GPU_STAGE_STORE=%s: not an absolute path (the hook runs in another directory)",
				   store);
	_cleanup_free_ char *entry = hook_entry(hook, store, driver);
	if (!entry)
		return gs_err_setx(err, ENOMEM, "out of memory");
	return je_array_insert(doc, path, -1, entry, err);
}

/* Writes DOC as BUNDLE/config.json (gs_write_atomic_at): a fresh temporary
 * file in the bundle (O_EXCL|O_NOFOLLOW: a name already there, even a
 * symlink, is never written through) with the old file's mode and owner
 * (config.json holds the container's environment), flushed to disk, then
 * renamed over config.json, so that a crash leaves the old file or the new
 * one. */
static int replace(const char *bundle, const struct je_doc *doc, const struct stat *old,
		   struct gs_err *err)
{
	_cleanup_close_ int bfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return gs_err_set(err, errno, "bundle %s", bundle);
	int r = gs_write_atomic_at(bfd, "config.json", doc->text, doc->len, old->st_mode & 07777,
				   GS_WRITE_FSYNC | GS_WRITE_KEEP_OWNER, err);
	return r < 0 ? gs_err_wrap(err, "bundle %s", bundle) : 0;
}

/* ---- read-only roots: the anchor as a spec mount ------------------------- */

/* DEST names /WANT: "run/gpu-stage", "/run//gpu-stage/", "/./run" alike. */
static bool dest_is(const char *dest, const char *want)
{
	for (;;) {
		while (*dest == '/' || (dest[0] == '.' && (dest[1] == '/' || !dest[1])))
			dest++;
		while (*want == '/')
			want++;
		size_t n = strcspn(dest, "/"), m = strcspn(want, "/");
		if (n != m || strncmp(dest, want, n))
			return false;
		if (n == 0)
			return true;
		dest += n;
		want += m;
	}
}

/* Index in MOUNTS before which the anchor goes (before a mount inside it);
 * -1 when /run or /run/gpu-stage is declared already. */
static ssize_t anchor_slot(json_t *mounts)
{
	size_t i, before = json_array_size(mounts);
	json_t *m;
	json_array_foreach(mounts, i, m) {
		const char *d = json_string_value(json_object_get(m, "destination"));
		if (!d)
			continue;
		if (dest_is(d, "/run") || dest_is(d, OVL_ANCHOR))
			return -1;
		_cleanup_free_ char *parent = strdup(d);
		for (char *s = parent ? strrchr(parent, '/') : NULL; s; s = strrchr(parent, '/')) {
			*s = '\0';
			if (dest_is(parent, OVL_ANCHOR) && i < before)
				before = i;
		}
	}
	return (ssize_t)before;
}

/* What NAME (a path relative to the image's root, root.path of CFG under
 * BUNDLE) is in the image: its st_mode in *MODE, 0 when it is missing.
 * Without FOLLOW no symlink is followed (S_IFLNK for one on the way); with
 * it symlinks are resolved inside the image's root, as its loader would
 * (the loader's own path: /lib is a link on merged-/usr images). */
static int image_entry_at(const char *bundle, json_t *cfg, const char *name, bool follow,
			  mode_t *mode, struct gs_err *err)
{
	const char *root = json_string_value(json_object_get(json_object_get(cfg, "root"), "path"));
	*mode = 0;
	if (!root)
		return 0;
	_cleanup_close_ int bfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return gs_err_set(err, errno, "bundle %s", bundle);
	_cleanup_close_ int rfd = openat(bfd, root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return gs_err_set(err, errno, "root.path %s (bundle %s)", root, bundle);
	struct gs_err e = GS_ERR_INIT;
	_cleanup_close_ int fd = follow ? gs_open_in_root(rfd, name, O_PATH, &e)
				       : gs_open_beneath(rfd, name, O_PATH, RESOLVE_NO_SYMLINKS);
	if (fd < 0 && follow)
		errno = e.code;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
		*mode = S_IFLNK; /* a symlink (or a file) on the way: the hook decides */
		return 0;
	}
	if (fd < 0)
		return gs_err_set(err, errno, "%s/%s", root, name);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s/%s", root, name);
	*mode = st.st_mode;
	return 0;
}

static int image_entry(const char *bundle, json_t *cfg, const char *name, mode_t *mode,
		       struct gs_err *err)
{
	return image_entry_at(bundle, cfg, name, false, mode, err);
}

/* Read-only root: declares a tmpfs at /run/gpu-stage in config.json's
 * mounts, so that the runtime makes the mount point (it can, on a read-only
 * root) and the hook never needs to cover /run. */
static int add_anchor_mount(const char *bundle, json_t *cfg, struct je_doc *doc,
			    struct gs_err *err)
{
	if (!json_is_true(json_object_get(json_object_get(cfg, "root"), "readonly")))
		return 0;
	json_t *mounts = json_object_get(cfg, "mounts");
	if (mounts && !json_is_null(mounts) && !json_is_array(mounts))
		return gs_err_setx(err, EBADMSG, "\"mounts\" must be an array");
	ssize_t at = mounts ? anchor_slot(mounts) : 0;
	if (at < 0)
		return 0;
	mode_t mode;
	int r = image_entry(bundle, cfg, "run", &mode, err);
	if (r < 0 || !S_ISDIR(mode))
		return r;
	static const char *const path[] = {"mounts", NULL};
	json_t *m = json_pack("{s:s, s:s, s:s, s:[s,s,s,s,s]}", "destination", OVL_ANCHOR,
			      "type", "tmpfs", "source", "tmpfs", "options", "nosuid", "nodev",
			      "noexec", "mode=0755", "size=" ANCHOR_SIZE);
	return insert_new(doc, path, at, m, err);
}

/* Read-only root whose image has no /etc/ld.so.cache (distroless images
 * are built so, and usually run read-only), or for a musl image no
 * /etc/ld-musl-x86_64.path: declares a bind of /dev/null there, so that
 * the runtime makes the mount point before it makes the root read-only,
 * and the hook binds the new file over it (it reads the null device as an
 * image without one).  Not when /etc or the file is declared already, nor
 * when the image has anything at that name. */
static int add_cache_mount(const char *bundle, json_t *cfg, struct je_doc *doc,
			   struct gs_err *err)
{
	if (!json_is_true(json_object_get(json_object_get(cfg, "root"), "readonly")))
		return 0;
	json_t *mounts = json_object_get(cfg, "mounts"), *m;
	size_t i;
	json_array_foreach(mounts, i, m) {
		const char *d = json_string_value(json_object_get(m, "destination"));
		if (d && (dest_is(d, "/etc") || dest_is(d, OVL_LDCACHE)))
			return 0;
	}
	/* a musl image's loader reads its path file instead (overlay/ldcache.c) */
	mode_t musl = 0, mode = 0;
	int r = image_entry_at(bundle, cfg, "lib/ld-musl-x86_64.so.1", true, &musl, err);
	const char *dest = S_ISREG(musl) ? "/etc/ld-musl-x86_64.path" : OVL_LDCACHE;
	json_array_foreach(mounts, i, m) {
		const char *d = json_string_value(json_object_get(m, "destination"));
		if (d && dest_is(d, dest))
			return 0;
	}
	if (r == 0)
		r = image_entry(bundle, cfg, dest + 1, &mode, err);
	if (r < 0 || mode != 0)
		return r;
	static const char *const path[] = {"mounts", NULL};
	return insert_new(doc, path, -1,
			  json_pack("{s:s, s:s, s:s, s:[s,s,s,s,s]}", "destination", dest,
				    "type", "bind", "source", "/dev/null", "options", "bind", "ro",
				    "nosuid", "noexec", "nodev"),
			  err);
}

/* PATH (of size SIZE) = DIR "/" NAME; an error, never a shorter path. */
static int join(char *path, size_t size, const char *dir, const char *name, struct gs_err *err)
{
	int n = snprintf(path, size, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= size)
		return gs_err_setx(err, ENAMETOOLONG, "%s/%s: longer than %zu bytes", dir, name,
				   size - 1);
	return 0;
}

/* ---- device nodes: the runtime makes them and allows them --------------- */

/* The value of hook option NAME ("--dev-root") in GPU_STAGE_HOOK_OPTS
 * ("--dev-root X" or "--dev-root=X"), malloc'd into *VAL (NULL when not
 * given): 0, or -ENOMEM. */
static int hook_opt(const char *name, char **val)
{
	const char *opts = getenv("GPU_STAGE_HOOK_OPTS");
	_cleanup_free_ char *copy = opts ? strdup(opts) : NULL;
	*val = NULL;
	if (opts && !copy)
		return -ENOMEM;
	size_t n = strlen(name);
	char *save = NULL, *v = NULL;
	/* the last one counts, as in the hook's getopt_long */
	for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save)) {
		if (!strcmp(t, name)) {
			char *next = strtok_r(NULL, " ", &save);
			if (!next)
				break;
			v = next;
		} else if (!strncmp(t, name, n) && t[n] == '=') {
			v = t + n + 1;
		}
	}
	if (v && !(*val = strdup(v)))
		return -ENOMEM;
	return 0;
}

/* The device nodes the hook will give the container (the same reading of
 * its NVIDIA_* variables, the same roots): *N 0 when there are none or
 * they cannot be known now (the hook then says why, at start).  Out of
 * memory is an error: the container would start without its nodes. */
static int gpu_devices(json_t *cfg, struct ovl_device **devs, size_t *n, struct gs_err *err)
{
	json_t *env = json_object_get(json_object_get(cfg, "process"), "env");
	size_t i;
	json_t *v;
	*devs = NULL;
	*n = 0;
	/* the request as the hook reads it: hk_request_vars on what it parses */
	struct hk_config c = {0};
	_cleanup_free_ char **vars = calloc(json_array_size(env) + 1, sizeof(char *));
	_cleanup_free_ char *dev = NULL, *proc = NULL;
	if (!vars || hook_opt("--dev-root", &dev) < 0 || hook_opt("--proc-root", &proc) < 0)
		return gs_err_setx(err, ENOMEM, "config.json: out of memory reading the GPU request");
	c.env = vars;
	json_array_foreach(env, i, v)
		if (json_is_string(v))
			vars[c.n_env++] = (char *)json_string_value(v);
	c.ann_devices = (char *)annotation(cfg, HK_ANNOT_DEVICES);
	c.ann_caps = (char *)annotation(cfg, HK_ANNOT_CAPS);
	char **req = NULL;
	size_t nreq = 0;
	struct ovl_env e = {0};
	struct gs_err why = GS_ERR_INIT;
	_cleanup_free_ char *note = NULL;
	const struct hk_dev_roots roots = {proc ? proc : conf.proc_root, dev ? dev : conf.dev_root,
					   conf.inventory};
	if (hk_request_vars(&c, conf.requests == GS_REQUESTS_ENV, false, &req, &nreq, &why) == 0 &&
	    ovl_env_parse(req, nreq, &e, &why) == 0 && e.visible != OVL_VISIBLE_NONE)
		(void)hk_devices_resolve(&e, e.caps_given ? e.caps : conf.caps, &roots,
					 false /* the hook judges a missing uvm */, devs, n, &note, &why);
	hk_request_vars_free(req, nreq);
	ovl_env_clear(&e);
	if (why.code == ENOMEM) {
		free(*devs);
		*devs = NULL;
		*n = 0;
		return gs_err_setx(err, ENOMEM, "config.json: %s", why.msg);
	}
	return 0;
}

/* Whether linux.devices of CFG lists PATH already. */
static bool declared(json_t *cfg, const char *path)
{
	json_t *list = json_object_get(json_object_get(cfg, "linux"), "devices");
	size_t i;
	json_t *d;
	json_array_foreach(list, i, d) {
		const char *p = json_string_value(json_object_get(d, "path"));
		if (p && dest_is(p, path))
			return true;
	}
	return false;
}

/* Each device node the container will get, in config.json's
 * linux.devices (the runtime makes the node, also on a read-only /dev)
 * and linux.resources.devices (the runtime allows it: in the v1 devices
 * cgroup and in the eBPF program of cgroup v2, and systemd, given the
 * rules, keeps them across a daemon-reload).  Nodes declared already are
 * left as they are. */
static int add_devices(json_t *cfg, struct je_doc *doc, struct gs_err *err)
{
	static const char *const nodes[] = {"linux", "devices", NULL};
	static const char *const rules[] = {"linux", "resources", "devices", NULL};
	_cleanup_free_ struct ovl_device *devs = NULL;
	size_t n;
	int r = gpu_devices(cfg, &devs, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		char path[sizeof(devs[i].name) + 8];
		snprintf(path, sizeof(path), "/dev/%s", devs[i].name);
		if (declared(cfg, path))
			continue;
		json_int_t maj = devs[i].major, min = devs[i].minor;
		r = insert_new(doc, nodes, -1,
				   json_pack("{s:s, s:s, s:I, s:I, s:i, s:i, s:i}", "path", path, "type", "c",
					     "major", maj, "minor", min, "fileMode", 0666, "uid", 0,
					     "gid", 0),
				   err);
		if (r == 0)
			r = insert_new(doc, rules, -1,
				       json_pack("{s:b, s:s, s:I, s:I, s:s}", "allow", 1, "type", "c",
						 "major", maj, "minor", min, "access", "rwm"),
				       err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The edits for a GPU container, on DOC (config.json's text); HOOK NULL:
 * the hook is there already (then the rest: a runtime that runs ours under
 * Docker's --gpus still needs the device rules only the runtime can set). */
static int edit(const char *bundle, json_t *cfg, struct je_doc *doc, const char *hook,
		struct gs_err *err)
{
	const char *store = getenv("GPU_STAGE_STORE"), *driver = getenv("GPU_STAGE_DRIVER");
	int r = !hook ? 0
		      : add_hook(doc, hook, store && *store ? store : NULL,
				 driver && *driver ? driver : NULL, err);
	if (r == 0)
		r = add_anchor_mount(bundle, cfg, doc, err);
	if (r == 0)
		r = add_cache_mount(bundle, cfg, doc, err);
	if (r == 0)
		r = add_devices(cfg, doc, err);
	return r;
}

static int rewrite(const char *bundle, struct gs_err *err)
{
	char path[PATH_MAX];
	_cleanup_free_ char *hook = NULL;
	if (gs_exe_sibling(HOOK_NAME, &hook, err) < 0 ||
	    join(path, sizeof(path), bundle, "config.json", err) < 0)
		return -err->code;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return gs_err_set(err, errno, "%s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return gs_err_setx(err, EINVAL, "%s: not a regular file", path);
	struct je_doc doc = {0};
	int r = gs_read_all_fd(fd, CONFIG_MAX, path, &doc.text, &doc.len, err);
	json_t *cfg = NULL;
	if (r >= 0)
		r = je_load_oci(doc.text, doc.len, path, &cfg, err);
	enum hook_there there = r >= 0 && cfg ? hook_there(cfg, hook) : HOOK_NONE;
	size_t old_len = doc.len;
	if (r >= 0 && cfg && wants_gpu(cfg) && there != HOOK_NVIDIAS) {
		if (conf_error.code) { /* a broken configuration fails GPU containers only */
			*err = conf_error;
			r = -err->code;
		} else if ((r = edit(bundle, cfg, &doc, there == HOOK_OURS ? NULL : hook, err)) < 0) {
			r = gs_err_wrap(err, "%s", path);
		} else if (doc.len != old_len) { /* edits only insert: same length, no edit */
			r = replace(bundle, &doc, &st, err);
		}
	}
	json_decref(cfg);
	free(doc.text);
	return r < 0 ? r : 0;
}

/* Whether RT, a path or a name looked up in PATH as execvp(3) does (an
 * unset PATH: /bin:/usr/bin; an empty element: the current directory),
 * names an executable regular file (ST: that file's). */
static bool runnable(const char *rt, struct stat *st)
{
	if (strchr(rt, '/'))
		return access(rt, X_OK) == 0 && stat(rt, st) == 0 && S_ISREG(st->st_mode);
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	for (const char *p = path;; p++) {
		size_t n = strcspn(p, ":");
		char file[PATH_MAX];
		int len = snprintf(file, sizeof(file), "%.*s%s%s", (int)n, p, n ? "/" : "", rt);
		if (len > 0 && (size_t)len < sizeof(file) && access(file, X_OK) == 0 &&
		    stat(file, st) == 0 && S_ISREG(st->st_mode))
			return true;
		p += n;
		if (!*p)
			return false;
	}
}

int main(int argc, char **argv)
{
	const char *env = getenv(GS_CONFIG_ENV);
	conf_named = env && *env ? env : NULL;
	const char *conf_path = conf_named ? conf_named : GS_CONFIG_DEFAULT;
	/* a broken file fails GPU containers only: the others still go to the
	 * runtime it names (a container crun runs must reach crun for its
	 * kill and delete), read as its "requests" says */
	static const char *const keep[] = {"runtime", "requests", NULL};
	if (gs_config_load(conf_path, conf_named != NULL, &conf, &conf_error) < 0)
		(void)gs_config_salvage(conf_path, keep, &conf); /* a wrong one: its default */
	else
		conf_error = (struct gs_err)GS_ERR_INIT;
	const char *rt = getenv("GPU_STAGE_RUNTIME");
	if (!rt || !*rt)
		rt = conf.runtime ? conf.runtime : "runc";
	if (conf_error.code)
		fprintf(stderr, "gpu-runtime: warning: %s (GPU containers are refused until it is fixed; the others run with %s)\n",
			conf_error.msg, rt);
	struct gs_err err = GS_ERR_INIT;
	struct rt_args a;
	int r = rt_args_parse(rt_dialect_of(rt), argc, argv, &a, &err);
	struct stat found, self;
	bool there = runnable(rt, &found);
	if (there && stat("/proc/self/exe", &self) == 0 && found.st_dev == self.st_dev &&
	    found.st_ino == self.st_ino) { /* it would exec itself, again and again */
		fprintf(stderr, "gpu-runtime: %s is gpu-runtime itself (%s): set \"runtime\" in %s (or GPU_STAGE_RUNTIME) to the real runtime's path; nothing run\n",
			rt, strchr(rt, '/') ? "the path named" : "found first in PATH", conf_path);
		return 127;
	}
	if (r == 0 && a.create && !there) { /* before config.json is touched */
		if (strchr(rt, '/'))
			fprintf(stderr, "gpu-runtime: executing %s: not an executable file; %s not run, config.json untouched\n",
				rt, argv[a.cmd]);
		else
			fprintf(stderr, "gpu-runtime: executing %s: not found in PATH (%s); %s not run, config.json untouched\n",
				rt, getenv("PATH") ? getenv("PATH") : "/bin:/usr/bin", argv[a.cmd]);
		return 127;
	}
	if (r == 0 && a.create)
		r = rewrite(a.bundle, &err);
	if (r < 0) {
		fprintf(stderr, "gpu-runtime: %s\n", err.msg);
		return 1;
	}
	argv[0] = (char *)rt;
	execvp(rt, argv);
	fprintf(stderr, "gpu-runtime: executing %s: %s\n", rt, strerror(errno));
	return 127;
}
