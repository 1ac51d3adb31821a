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
