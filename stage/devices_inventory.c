/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage devices --inventory: runs gpu-stage-nvml (the dynamic helper
 * that dlopens the staged libnvidia-ml.so.1 of the loaded driver) with an
 * empty environment (killed when it has not finished within the timeout:
 * a hung GPU hangs NVML), checks what it prints (gs_inventory_parse), adds the
 * schema, the library's path and a timestamp, checks the whole again and
 * replaces the inventory file atomically (root's, 0644). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "devices.h"
#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/inventory.h"
#include "gs/manifest.h"

#define HELPER "gpu-stage-nvml"
#define NVML_SONAME "libnvidia-ml.so.1"

/* The helper next to this gpu-stage (the build tree), else in
 * ../libexec/gpu-stage (make install); a regular executable that only its
 * owner, root when we are root, may change. */
static int helper_path(char **out, struct gs_err *err)
{
	static const char *const names[] = {HELPER, "../libexec/gpu-stage/" HELPER};
	struct stat st;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		_cleanup_free_ char *p = NULL;
		if (gs_exe_sibling(names[i], &p, err) < 0)
			return -err->code;
		if (stat(p, &st) < 0)
			continue;
		if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR) || (st.st_mode & (S_IWGRP | S_IWOTH)) ||
		    (geteuid() == 0 && st.st_uid != 0))
			return gs_err_setx(err, EPERM,
					   "%s: not a root-owned executable that only root may change: refused", p);
		*out = steal_ptr(&p);
		return 0;
	}
	return gs_err_setx(err, ENOENT, "%s: not installed next to gpu-stage or in ../libexec/gpu-stage (make install)",
			   HELPER);
}

/* STORE/VER's 64-bit libnvidia-ml.so.1 (the manifest's file of that
 * SONAME), as an absolute path, checked to be a regular file there. */
static int nvml_path(const char *store, const char *ver, char **out, struct gs_err *err)
{
	_cleanup_(gs_store_ver_closep) struct gs_store_ver v = {.verfd = -1, .lockfd = -1};
	_cleanup_(gs_manifest_freep) struct gs_manifest *m = NULL;
	int r = gs_store_ver_open(store, ver, &v, err);
	if (r < 0)
		return r == -ENOENT ? gs_err_wrap(err, "driver %s is not staged (gpu-stage --driver %s)", ver, ver) : r;
	if ((r = gs_store_ver_manifest(&v, ver, &m, NULL, err)) < 0)
		return r;
	const struct gs_file *f = NULL;
	for (size_t i = 0; i < m->n_files && !f; i++)
		if (m->files[i].kind == GS_KIND_LIB && m->files[i].soname && !strcmp(m->files[i].soname, NVML_SONAME))
			f = &m->files[i];
	if (!f)
		return gs_err_setx(err, ENOENT, "%s: no %s staged (staged without the utility capability?)", v.dir,
				   NVML_SONAME);
	struct stat st;
	_cleanup_close_ int fd = gs_open_beneath(v.verfd, f->path, O_PATH, 0);
	if (fd < 0 || fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s/%s", v.dir, f->path);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EPERM, "%s/%s: not a regular file", v.dir, f->path);
	_cleanup_free_ char *dir = realpath(v.dir, NULL);
	if (!dir)
		return gs_err_set(err, errno, "%s", v.dir);
	if (asprintf(out, "%s/%s", dir, f->path) < 0) {
		*out = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* Reaps PID, killed: a process stuck in the driver (uninterruptible) may
 * take a while to die; after 2 s it is left to init, said so. */
static void reap_killed(pid_t pid, const char *helper)
{
	kill(pid, SIGKILL);
	for (int i = 0; i < 200; i++) {
		pid_t w = waitpid(pid, NULL, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			return;
		usleep(10000);
	}
	fprintf(stderr, "gpu-stage: %s (pid %d) does not die even when killed: stuck in the driver\n", helper,
		(int)pid);
}

/* Reads all of FD into *OUT within TIMEOUT seconds, then waits for PID. */
static int collect(pid_t pid, int fd, const char *helper, unsigned timeout, char **out, size_t *len,
		   struct gs_err *err)
{
	int status = 0;
	int r = gs_read_all_fd_within(fd, GS_INVENTORY_MAX, (int)timeout * 1000, helper, out, len, err);
	if (r == -ETIMEDOUT) {
		reap_killed(pid, helper);
		return gs_err_setx(err, ETIMEDOUT,
				   "%s gave no answer within %u s (NVML hangs: a GPU or the driver stuck? nvidia-smi "
				   "would hang as well; --timeout gives it longer): killed, nothing written",
				   helper, timeout);
	}
	if (r < 0) { /* it says too much: never a shortened inventory */
		reap_killed(pid, helper);
		return r;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return gs_err_set(err, errno, "waiting for %s", helper);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return gs_err_setx(err, EIO, "%s failed (%s %d; its message is above): nothing written", helper,
				   WIFEXITED(status) ? "exit status" : "killed by signal",
				   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return 0;
}

/* HELPER LIB with an empty environment, stdin /dev/null, stdout into
 * *OUT; its stderr is ours. */
static int run_helper(const char *helper, const char *lib, unsigned timeout, char **out, size_t *len,
		      struct gs_err *err)
{
	char *const argv[] = {(char *)HELPER, (char *)lib, NULL};
	char *const envp[] = {NULL};
	int p[2];
	pid_t pid;
	if (pipe2(p, O_CLOEXEC) < 0)
		return gs_err_set(err, errno, "pipe");
	_cleanup_close_ int rd = p[0];
	posix_spawn_file_actions_t fa;
	if (posix_spawn_file_actions_init(&fa) != 0) {
		close(p[1]);
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	int r = posix_spawn(&pid, helper, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (r != 0)
		return gs_err_set(err, r, "%s", helper);
	return collect(pid, rd, helper, timeout, out, len, err);
}

/* The file: the helper's document with schema, nvml and timestamp. */
static int compose(const char *text, size_t len, const char *lib, char **out, size_t *outlen,
		   struct gs_err *err)
{
	json_error_t je;
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	_cleanup_(gs_json_decrefp) json_t *doc = json_object(), *h = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc || !h || json_object_set_new(doc, "schema", json_string(GS_INVENTORY_SCHEMA)) < 0 ||
	    json_object_update(doc, h) < 0 || json_object_set_new(doc, "nvml", json_string(lib)) < 0 ||
	    json_object_set_new(doc, "timestamp", json_string(ts)) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	*out = json_dumps(doc, JSON_INDENT(2));
	if (!*out)
		return gs_err_setx(err, ENOMEM, "out of memory");
	*outlen = strlen(*out);
	return 0;
}

/* Replaces PATH with TEXT: its directory made (0755) when missing. */
static int write_file(const char *path, const char *text, size_t len, struct gs_err *err)
{
	_cleanup_free_ char *d = strdup(path), *b = strdup(path);
	if (!d || !b)
		return gs_err_setx(err, ENOMEM, "out of memory");
	const char *dir = dirname(d), *base = basename(b);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return gs_err_set(err, errno, "%s", dir);
	_cleanup_close_ int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return gs_err_set(err, errno, "%s", dir);
	_cleanup_free_ char *line = NULL;
	if (asprintf(&line, "%s\n", text) < 0) {
		line = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return gs_write_atomic_at(dirfd, base, line, len + 1, 0644, GS_WRITE_FSYNC | GS_WRITE_FSYNC_DIR, err);
}

int devices_inventory(const struct inv_opts *o, struct gs_err *err)
{
	_cleanup_free_ char *ver = o->driver ? strdup(o->driver) : NULL, *lib = NULL, *helper = NULL;
	_cleanup_free_ char *text = NULL, *file = NULL;
	size_t len = 0, flen = 0;
	struct gs_inventory inv = {0};
	if (o->output[0] != '/')
		return gs_err_setx(err, EINVAL, "%s: the inventory must be an absolute path", o->output);
	int r = ver ? 0 : ovl_driver_version(o->proc_root, &ver, err);
	if (r >= 0)
		r = nvml_path(o->store, ver, &lib, err);
	if (r >= 0)
		r = helper_path(&helper, err);
	if (r >= 0)
		r = run_helper(helper, lib, o->timeout, &text, &len, err);
	if (r >= 0 && (r = gs_inventory_parse(text, len, HELPER "'s output", false, &inv, err)) >= 0 &&
	    strcmp(inv.driver, ver))
		r = gs_err_setx(err, ESTALE, "%s reports driver %s, the staged library is %s's: nothing written",
				lib, inv.driver, ver);
	gs_inventory_clear(&inv);
	if (r >= 0)
		r = compose(text, len, lib, &file, &flen, err);
	if (r >= 0 && (r = gs_inventory_parse(file, flen, o->output, true, &inv, err)) >= 0)
		r = write_file(o->output, file, flen, err);
	if (r >= 0 && o->json)
		printf("%s\n", file);
	else if (r >= 0)
		printf("%s: driver %s, %zu GPU%s, %zu MIG device%s (NVML: %s)\n", o->output, inv.driver,
		       inv.n_gpus, inv.n_gpus == 1 ? "" : "s", inv.n_migs, inv.n_migs == 1 ? "" : "s", lib);
	gs_inventory_clear(&inv);
	return r;
}
