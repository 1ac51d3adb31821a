/* SPDX-License-Identifier: Apache-2.0 */
/* The container's mount namespace (by pid) and its rootfs directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/mountinfo.h"
#include "hook.h"

static int no_pid(struct gs_err *err)
{
	return gs_err_setx(err, EINVAL,
			   "state: no container pid: this stage needs one to enter the container's mount namespace");
}

int hk_pid_open(pid_t pid, struct gs_err *err)
{
	if (pid <= 0)
		return no_pid(err);
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return gs_err_set(err, errno, "pidfd_open(%d) (is container process %d gone?)", (int)pid,
				  (int)pid);
	return fd;
}

int hk_pid_alive(int pidfd, pid_t pid, struct gs_err *err)
{
	/* signal 0: nothing is sent; EPERM (no CAP_KILL is kept, and a user
	 * namespace's process may have another uid) still means alive */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0 && errno != EPERM)
		return gs_err_set(err, errno, "container process %d: gone while the hook ran",
				  (int)pid);
	return 0;
}

int hk_ns_open(pid_t pid, struct gs_err *err)
{
	char path[64];
	if (pid <= 0)
		return no_pid(err);
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gs_err_set(err, errno, "%s (is container process %d gone?)", path, (int)pid);
	struct stat a, b;
	if (fstat(fd, &a) < 0)
		return gs_err_set(err, errno, "%s", path);
	if (stat("/proc/self/ns/mnt", &b) < 0)
		return gs_err_set(err, errno, "/proc/self/ns/mnt");
	if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return gs_err_setx(err, EINVAL,
				   "process %d shares the hook's mount namespace: it is not a container with its own (config.json needs a \"mount\" namespace)",
				   (int)pid);
	return steal_fd(&fd);
}

struct count_at {
	const char *path;
	int n;
};

static int count_at(const struct gs_mountinfo *m, void *data)
{
	struct count_at *c = data;
	c->n += !strcmp(m->point, c->path) && c->n < INT_MAX;
	return 0;
}

static int same_ns(const char *a, const char *b, struct gs_err *err)
{
	struct stat sa, sb;
	if (stat(a, &sa) < 0)
		return gs_err_set(err, errno, "%s", a);
	if (stat(b, &sb) < 0)
		return gs_err_set(err, errno, "%s", b);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* What only the container's process has at prestart and createRuntime.
 * Both hooks run before pivot_root: the process's root is still the
 * host's "/", so /proc/PID/root proves nothing, and a copy of the host's
 * mount namespace (unshare -m) sees the rootfs as the same directory as
 * the host does, so dev/ino prove nothing either.  What runc (1.1) and
 * crun (1.8) both do before these hooks, in the container's namespace
 * only, is bind-mount the rootfs onto itself (runc prepareRoot, crun
 * libcrun_set_mounts) under a private parent mount, then mount /proc,
 * /dev, /sys beneath it: in /proc/PID/mountinfo the rootfs path carries
 * one mount more than in the hook's own table (host: 0 for a plain
 * directory, 1 for an overlay; container: 1 or 2).  A process that merely
 * has a mount namespace of its own has exactly the host's count.  Making
 * such a mount needs CAP_SYS_ADMIN over the mount namespace: an
 * unprivileged user gets it only in a user namespace of their own, so when
 * config.json asks for no "user" namespace the process must also share
 * the hook's user namespace.  (A process that is root on the host, or
 * owns a user namespace of a container that has one, and deliberately
 * rebuilds this layout is not told apart; the pid comes from the runtime
 * and is pinned with a pidfd before this check.) */
struct host_scan {
	const char *rootfs;
	struct hk_host *h;
	struct gs_err *err;
};

static int host_entry(const struct gs_mountinfo *m, void *data)
{
	struct host_scan *s = data;
	s->h->at_rootfs += !strcmp(m->point, s->rootfs) && s->h->at_rootfs < INT_MAX;
	if (!s->h->devices_mnt && hk_is_devices_root(m) && !(s->h->devices_mnt = strdup(m->point)))
		return gs_err_setx(s->err, ENOMEM, "out of memory");
	return 0;
}

int hk_host_mounts(const char *rootfs, struct hk_host *h, struct gs_err *err)
{
	*h = (struct hk_host){0};
	struct host_scan s = {rootfs, h, err};
	int r = gs_mountinfo_each("/proc/self/mountinfo", host_entry, &s, err);
	if (r < 0)
		hk_host_clear(h);
	return r;
}

void hk_host_clear(struct hk_host *h)
{
	free(h->devices_mnt);
	*h = (struct hk_host){0};
}

int hk_ns_check_container(pid_t pid, const char *rootfs, bool user_ns, int ours, char **table,
			  size_t *table_len, struct gs_err *err)
{
	char mi[64], user[64];
	snprintf(mi, sizeof(mi), "/proc/%d/mountinfo", (int)pid);
	snprintf(user, sizeof(user), "/proc/%d/ns/user", (int)pid);
	int r = user_ns ? 1 : same_ns(user, "/proc/self/ns/user", err);
	if (r < 0)
		return r;
	if (r == 0)
		return gs_err_setx(err, EPERM,
				   "process %d is not this container's: it is in a user namespace of its own, but config.json asks for no \"user\" namespace",
				   (int)pid);
	/* read once: the count here, and the apply step's look at the same
	 * namespace (nothing mounts there meanwhile: the runtime waits for us) */
	_cleanup_close_ int fd = open(mi, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gs_err_set(err, errno, "%s", mi);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	r = gs_read_all_fd(fd, HK_MOUNTINFO_MAX, mi, &text, &len, err);
	if (r < 0)
		return r;
	struct count_at c = {rootfs, 0};
	if ((r = gs_mountinfo_each_text(text, len, mi, count_at, &c, err)) < 0)
		return r;
	int theirs = c.n;
	if (theirs <= ours)
		return gs_err_setx(err, EPERM,
				   "process %d is not this container's: its mount namespace has %d mount%s on the rootfs %s, the hook's %d (the runtime bind-mounts the rootfs onto itself in the container's namespace before prestart/createRuntime hooks run)",
				   (int)pid, theirs, theirs == 1 ? "" : "s", rootfs, ours);
	*table = steal_ptr(&text);
	*table_len = len;
	return 0;
}

int hk_ns_enter(int nsfd, pid_t pid, struct gs_err *err)
{
	if (setns(nsfd, CLONE_NEWNS) < 0)
		return gs_err_set(err, errno, "entering the mount namespace of process %d", (int)pid);
	return 0;
}

int hk_rootfs_path(const char *bundle, const char *root_path, char **out, struct gs_err *err)
{
	int r = root_path[0] == '/' ? asprintf(out, "%s", root_path)
				    : asprintf(out, "%s/%s", bundle, root_path);
	if (r < 0) {
		*out = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	if (strlen(*out) >= PATH_MAX) {
		free(*out);
		*out = NULL;
		return gs_err_setx(err, ENAMETOOLONG, "rootfs path too long");
	}
	return 0;
}

/* The rootfs path comes from the trusted bundle (runc refuses a rootfs that
 * is a symlink); it is opened once, and only fds are used below it. */
int hk_rootfs_open(const char *rootfs, const struct stat *want, struct gs_err *err)
{
	_cleanup_close_ int fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return gs_err_set(err, errno, "container rootfs %s", rootfs);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "container rootfs %s", rootfs);
	if (want && (st.st_dev != want->st_dev || st.st_ino != want->st_ino))
		return gs_err_setx(err, EXDEV,
				   "container rootfs %s: not the directory the bundle names (something is mounted over it in the container's namespace)",
				   rootfs);
	return steal_fd(&fd);
}

/* The value of "KEY:" in a /proc status text: its first number, -1 when
 * absent; *MORE says whether a second number follows it (NSpid). */
static long status_field(const char *text, const char *key, bool *more)
{
	size_t n = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, n) || p[n] != ':')
			continue;
		char *end;
		errno = 0;
		long v = strtol(p + n + 1, &end, 10);
		if (errno || end == p + n + 1 || v <= 0)
			return -1;
		if (more)
			*more = *end == '\t' || *end == ' ';
		return v;
	}
	return -1;
}

int hk_ns_not_hosts(struct gs_err *err)
{
	int r = same_ns("/proc/1/ns/mnt", "/proc/self/ns/mnt", err);
	if (r < 0 && (err->code == EACCES || err->code == EPERM)) {
		gs_err_clear(err); /* PID 1 of another user namespace: not ours */
		return 0;
	}
	if (r == 1)
		return gs_err_setx(err, EINVAL,
				   "createContainer: the hook runs in the mount namespace of PID 1 (the host's), not a container's: nothing mounted (createContainer hooks run in the container's namespaces; is the hook registered for the stage its runtime runs it at?)");
	return r < 0 ? r : 0;
}

pid_t hk_ns_host_pid(void)
{
	_cleanup_close_ int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	struct gs_err e = GS_ERR_INIT;
	if (fd < 0 || gs_read_all_fd(fd, 64 * 1024, "/proc/self/status", &text, NULL, &e) < 0)
		return 0;
	bool nested = false;
	long ppid = status_field(text, "PPid", NULL);
	/* our NSpid has one entry per pid namespace from this procfs's down:
	 * one only means the procfs is the container's own, PPid its "1" */
	if (status_field(text, "NSpid", &nested) < 0 || !nested || ppid <= 1 || ppid > INT_MAX)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", ppid);
	return same_ns(path, "/proc/self/ns/mnt", &e) == 1 ? (pid_t)ppid : 0;
}
