/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-runtime: an OCI runtime shim.  On `create` and `run` it adds
 * gpu-stage-hook (installed next to it) to the bundle's config.json as a
 * createRuntime hook, with an explicit empty "env" (so no runtime ever hands
 * it the container's environment), when the container asks for a GPU
 * (process.env has NVIDIA_VISIBLE_DEVICES) and the hook is not there
 * already; then it execs the real runtime with the same arguments.
 *
 *   gpu-runtime [RUNTIME ARGS...]          e.g. as Docker's "runtimes" entry
 *   GPU_STAGE_RUNTIME   the runtime to exec (default: runc, from PATH)
 *   GPU_STAGE_STORE     passed to the hook as --store (default: its own)
 *   GPU_STAGE_DRIVER    passed to the hook as --driver (default: the
 *                       loaded module's version)
 *   GPU_STAGE_HOOK_OPTS more hook options, space-separated (--audit-log F)
 *
 * Exit status: the runtime's; 1 (with a message) when config.json cannot be
 * read or rewritten, 127 when the runtime cannot be executed. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/err.h"

#define HOOK_NAME "gpu-stage-hook"

/* Global options of runc/crun that take a separate value. */
static bool takes_value(const char *a)
{
	static const char *const v[] = {"--root", "--log", "--log-format", "--log-level",
					"--criu", "--rootless", "--cgroup-manager"};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!strcmp(a, v[i]))
			return true;
	return false;
}

/* Index of the command word, or -1. */
static int find_command(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] != '-')
			return i;
		if (takes_value(argv[i]))
			i++;
	}
	return -1;
}

static const char *find_bundle(int argc, char **argv, int cmd)
{
	for (int i = cmd + 1; i < argc; i++) {
		if ((!strcmp(argv[i], "--bundle") || !strcmp(argv[i], "-b")) && i + 1 < argc)
			return argv[i + 1];
		if (!strncmp(argv[i], "--bundle=", 9))
			return argv[i] + 9;
	}
	return ".";
}

static bool wants_gpu(json_t *cfg)
{
	json_t *env = json_object_get(json_object_get(cfg, "process"), "env");
	size_t i;
	json_t *v;
	json_array_foreach(env, i, v) {
		if (json_is_string(v) && !strncmp(json_string_value(v), "NVIDIA_VISIBLE_DEVICES=", 23))
			return true;
	}
	return false;
}

static bool has_hook(json_t *cfg)
{
	json_t *hooks = json_object_get(cfg, "hooks");
	const char *k;
	json_t *list;
	json_object_foreach(hooks, k, list) {
		size_t i;
		json_t *h;
		json_array_foreach(list, i, h) {
			const char *p = json_string_value(json_object_get(h, "path"));
			const char *b = p ? strrchr(p, '/') : NULL;
			if (p && !strcmp(b ? b + 1 : p, HOOK_NAME))
				return true;
		}
	}
	return false;
}

static int add_hook(json_t *cfg, const char *hook, const char *store, const char *driver,
		    struct gs_err *err)
{
	json_t *hooks = json_object_get(cfg, "hooks");
	if (!hooks) {
		hooks = json_object();
		if (!hooks || json_object_set_new(cfg, "hooks", hooks) < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
	}
	if (!json_is_object(hooks))
		return gs_err_setx(err, EBADMSG, "config.json: \"hooks\" must be an object");
	json_t *list = json_object_get(hooks, "createRuntime");
	if (!list) {
		list = json_array();
		if (!list || json_object_set_new(hooks, "createRuntime", list) < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
	}
	if (!json_is_array(list))
		return gs_err_setx(err, EBADMSG, "config.json: hooks.createRuntime must be an array");
	json_t *args = json_pack("[s]", HOOK_NAME);
	if (args && store) {
		json_array_append_new(args, json_string("--store"));
		json_array_append_new(args, json_string(store));
	}
	if (args && driver) {
		json_array_append_new(args, json_string("--driver"));
		json_array_append_new(args, json_string(driver));
	}
	const char *opts = getenv("GPU_STAGE_HOOK_OPTS");
	_cleanup_free_ char *copy = opts ? strdup(opts) : NULL;
	char *save = NULL;
	for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; args && t; t = strtok_r(NULL, " ", &save))
		json_array_append_new(args, json_string(t));
	if (args)
		json_array_append_new(args, json_string("createRuntime"));
	json_t *h = json_pack("{s:s, s:o, s:[]}", "path", hook, "args", args, "env");
	if (!h || json_array_append_new(list, h) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	return 0;
}

/* Writes CFG as BUNDLE/config.json: a fresh temporary file in the bundle
 * (O_EXCL|O_NOFOLLOW: a name already there, even a symlink, is never
 * written through) with the old file's mode and owner (config.json holds
 * the container's environment), flushed to disk, then renamed over
 * config.json, so that a crash leaves the old file or the new one. */
static int replace(const char *bundle, const char *path, json_t *cfg, const struct stat *old,
		   struct gs_err *err)
{
	char tmp[PATH_MAX + 64];
	int fd = -1;
	for (int tries = 0; fd < 0 && tries < 2; tries++) {
		snprintf(tmp, sizeof(tmp), "%s/.config.json.gpu-runtime.%d", bundle, (int)getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST && tries == 0)
			(void)unlink(tmp); /* left by an earlier run with our pid */
		else if (fd < 0)
			return gs_err_set(err, errno, "creating %s", tmp);
	}
	int r = 0;
	if (fchown(fd, old->st_uid, old->st_gid) < 0 && errno != EPERM)
		r = gs_err_set(err, errno, "%s: chown", tmp);
	if (r == 0 && fchmod(fd, old->st_mode & 07777) < 0)
		r = gs_err_set(err, errno, "%s: chmod", tmp);
	if (r == 0 && json_dumpfd(cfg, fd, JSON_INDENT(1)) < 0)
		r = gs_err_set(err, errno ? errno : EIO, "writing %s", tmp);
	if (r == 0 && fsync(fd) < 0)
		r = gs_err_set(err, errno, "writing %s", tmp);
	if (close(fd) < 0 && r == 0)
		r = gs_err_set(err, errno, "writing %s", tmp);
	if (r == 0 && rename(tmp, path) < 0)
		r = gs_err_set(err, errno, "replacing %s", path);
	if (r < 0)
		(void)unlink(tmp);
	return r;
}

static int rewrite(const char *bundle, struct gs_err *err)
{
	char exe[PATH_MAX], hook[PATH_MAX + 32], path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return gs_err_set(err, errno, "/proc/self/exe");
	exe[n] = '\0';
	snprintf(hook, sizeof(hook), "%s/" HOOK_NAME, dirname(exe));
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return gs_err_set(err, errno, "%s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return gs_err_setx(err, EINVAL, "%s: not a regular file", path);
	json_error_t je;
	json_t *cfg = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
	if (!cfg)
		return gs_err_setx(err, EBADMSG, "%s: line %d: %s", path, je.line, je.text);
	int r = 0;
	if (!json_is_object(cfg))
		r = gs_err_setx(err, EBADMSG, "%s: not a JSON object", path);
	if (r == 0 && wants_gpu(cfg) && !has_hook(cfg)) {
		const char *store = getenv("GPU_STAGE_STORE"), *driver = getenv("GPU_STAGE_DRIVER");
		r = add_hook(cfg, hook, store && *store ? store : NULL,
			     driver && *driver ? driver : NULL, err);
		if (r == 0)
			r = replace(bundle, path, cfg, &st, err);
	}
	json_decref(cfg);
	return r;
}

int main(int argc, char **argv)
{
	int cmd = find_command(argc, argv);
	if (cmd > 0 && (!strcmp(argv[cmd], "create") || !strcmp(argv[cmd], "run"))) {
		struct gs_err err = GS_ERR_INIT;
		if (rewrite(find_bundle(argc, argv, cmd), &err) < 0) {
			fprintf(stderr, "gpu-runtime: %s\n", err.msg);
			return 1;
		}
	}
	const char *rt = getenv("GPU_STAGE_RUNTIME");
	if (!rt || !*rt)
		rt = "runc";
	argv[0] = (char *)rt;
	execvp(rt, argv);
	fprintf(stderr, "gpu-runtime: executing %s: %s\n", rt, strerror(errno));
	return 127;
}
