/* SPDX-License-Identifier: Apache-2.0 */
/* The store directory itself (stage/store.c builds the trees in it): its
 * lock, temporary and old trees, whether a tree is still mounted by a
 * running container, removing a version, and what gc needs of all that.
 * Nothing here follows a symlink inside the store. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/mountinfo.h"
#include "store_internal.h"

#define RM_DEPTH_MAX 64
#define TMP_PREFIX GS_STORE_TMP_PREFIX
#define LOCK_NAME ".lock"

/* ---- the store directory, its lock, temporary trees ----------------------------- */

/* Opens STORE (creating it and its parents 0755 when CREATE). */
int gs_store_dir_open(const char *store, bool create, struct gs_err *err)
{
	if (!store || !*store)
		return gs_err_setx(err, EINVAL, "empty store path");
	if (create) {
		_cleanup_free_ char *p = strdup(store);
		if (!p)
			return gs_err_setx(err, ENOMEM, "%s: out of memory", store);
		for (char *s = p + 1;; s++) {
			if (*s != '/' && *s)
				continue;
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return gs_err_set(err, errno, "creating store %s", p);
			if (!(*s = c))
				break;
		}
	}
	int fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : gs_err_set(err, errno, "store %s", store);
}

/* Takes STORE/.lock (exclusive or shared).  SHARED never creates it and
 * gives -1 without error when it is missing. */
int gs_store_dir_lock(int storefd, const char *store, bool shared, struct gs_err *err)
{
	int flags = shared ? O_RDONLY : O_RDWR | O_CREAT;
	_cleanup_close_ int fd = openat(storefd, LOCK_NAME, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && shared && errno == ENOENT)
		return -1;
	if (fd < 0)
		return gs_err_set(err, errno, "%s/" LOCK_NAME, store);
	for (int eintr = 0; flock(fd, shared ? LOCK_SH : LOCK_EX) < 0;) {
		if (errno != EINTR || ++eintr >= GS_EINTR_TRIES)
			return gs_err_set(err, errno, "locking %s/" LOCK_NAME, store);
	}
	return steal_fd(&fd);
}

static int remove_entries(DIR *d, unsigned int depth);

/* rm -rf DIRFD/NAME without following symlinks; directories are made
 * writable first (staged trees are 0555).  Returns 0 or -errno. */
static int rm_tree_at(int dirfd, const char *name, unsigned int depth)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (depth > RM_DEPTH_MAX)
		return -ELOOP;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if ((st.st_mode & 0700) != 0700)
		(void)fchmod(fd, (st.st_mode & 07777) | 0700);
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	int r = remove_entries(d, depth);
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

/* Empties D; passes repeat while they make progress, since entries removed
 * during readdir may hide others. */
static int remove_entries(DIR *d, unsigned int depth)
{
	int r = 0;
	for (int pass = 0; pass < 8; pass++) {
		size_t removed = 0;
		struct dirent *e;
		rewinddir(d);
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			int q = rm_tree_at(dirfd(d), e->d_name, depth + 1);
			if (q < 0)
				r = q;
			else
				removed++;
		}
		if (removed == 0 || r < 0)
			break;
	}
	return r;
}

int gs_store_rm_tree(int dirfd, const char *name)
{
	return rm_tree_at(dirfd, name, 0);
}

/* ---- trees still in use ------------------------------------------------------ */

/* Whether this process has CAP_SYS_PTRACE in effect (what reading other
 * processes' mount tables takes). */
static bool can_ptrace(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {{0}};
	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[CAP_SYS_PTRACE / 32].effective & (1u << (CAP_SYS_PTRACE % 32));
}

/* What a process's mount table shows: its mount namespace, seen from its
 * root directory. */
struct view {
	ino_t ns;
	dev_t root_dev;
	ino_t root_ino;
};

/* The view of process PID ("1234"); -1 with errno when it cannot be had. */
static int view_of(const char *pid, struct view *v)
{
	char path[64];
	struct stat ns, root;
	snprintf(path, sizeof(path), "/proc/%.20s/ns/mnt", pid);
	if (stat(path, &ns) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%.20s/root", pid);
	if (stat(path, &root) < 0)
		return -1;
	memset(v, 0, sizeof(*v)); /* compared with memcmp */
	v->ns = ns.st_ino;
	v->root_dev = root.st_dev;
	v->root_ino = root.st_ino;
	return 0;
}

/* Whether a mount in any mount namespace shows a directory or file of the
 * tree STORE/NAME (superblock DEV): a running container's bind of a staged
 * directory keeps seeing the tree's files only while they exist, so a tree
 * swapped out by a re-stage, or removed, is deleted only once nothing
 * mounts it.  Mount roots are matched by the tree's unique name ("/NAME/"
 * or a trailing "/NAME") on that superblock; every mount namespace is read
 * once per root directory (/proc/PID/ns/mnt and /proc/PID/root tell them
 * apart: a chrooted process's table shows only the mounts under its root,
 * so it cannot speak for its namespace's other processes).  When /proc
 * cannot be read, or
 * a process's table is refused to us for want of CAP_SYS_PTRACE, the tree
 * counts as used: kept, never deleted under a container (a later run with
 * the capability, or `gpu-stage gc`, deletes it).  Returns 0
 * when unused, else the pid of a process whose mount table shows it, or -1
 * when that cannot be told (then it counts as used too). */
static pid_t tree_user(dev_t dev, const char *name)
{
	DIR *proc = opendir("/proc");
	if (!proc)
		return -1;
	size_t nl = strlen(name), cap = 0, n_ns = 0, ns_cap = 0;
	struct view *seen = NULL;
	char *line = NULL;
	bool used = false;
	pid_t by = 0;
	struct dirent *e;
	while (!used && (e = readdir(proc))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[64];
		struct view v;
		if (view_of(e->d_name, &v) < 0) {
			/* gone, or a kernel thread: skipped.  Refused: without
			 * CAP_SYS_PTRACE, a process holding more capabilities (a
			 * container's) cannot be looked into: it may use the tree
			 * (kept).  With it, only a process of an enclosing user
			 * namespace is refused, whose mounts are not ours. */
			if ((errno == EACCES || errno == EPERM) && !can_ptrace())
				used = true, by = -1;
			continue;
		}
		bool dup = false;
		for (size_t i = 0; i < n_ns && !dup; i++)
			dup = !memcmp(&seen[i], &v, sizeof(v));
		if (dup)
			continue;
		if (n_ns == ns_cap) {
			struct view *grown = realloc(seen, (ns_cap ? 2 * ns_cap : 64) * sizeof(*grown));
			if (!grown) {
				used = true;
				break;
			}
			seen = grown;
			ns_cap = ns_cap ? 2 * ns_cap : 64;
		}
		snprintf(path, sizeof(path), "/proc/%.20s/mountinfo", e->d_name);
		FILE *f = fopen(path, "re");
		if (!f) {
			if ((errno == EACCES || errno == EPERM) && !can_ptrace())
				used = true, by = -1; /* as above */
			continue;
		}
		struct gs_mountinfo m;
		struct gs_err ignored = GS_ERR_INIT;
		int r;
		size_t entries = 0;
		while (!used && (r = gs_mountinfo_next(f, path, &line, &cap, &m, &ignored)) > 0) {
			entries++;
			if (makedev(m.major, m.minor) != dev)
				continue;
			for (const char *p = strstr(m.root, name); p && !used; p = strstr(p + 1, name))
				used = p > m.root && p[-1] == '/' && (p[nl] == '/' || p[nl] == '\0');
		}
		if (used)
			by = (pid_t)strtol(e->d_name, NULL, 10);
		if (r < 0)
			used = true, by = -1;
		/* the namespace counts as read only now: a process that exits
		 * between the two opens (an exiting hook still holds the
		 * container's namespace after it let go of the readers' lock)
		 * shows no table, or an empty one, and another process of that
		 * namespace must still be looked at */
		if (entries > 0)
			seen[n_ns++] = v;
		fclose(f);
	}
	closedir(proc);
	free(line);
	free(seen);
	return used && by == 0 ? -1 : by;
}

/* tree_user() for STORE/NAME, with the store's device as the mount
 * tables show it (on btrfs not its st_dev) */
pid_t gs_store_tree_user(int storefd, const char *name)
{
	dev_t dev;
	struct gs_err ignored = GS_ERR_INIT;
	return gs_mountinfo_dev(storefd, "the store", &dev, &ignored) < 0 ? -1 : tree_user(dev, name);
}

/* Deletes the tree STORE/NAME unless a mount still shows it (then it
 * stays, under its temporary name, for a later run).  1 deleted, 0 kept,
 * -errno when deleting failed (what is left stays for a later run). */
int gs_store_remove_unused(int storefd, const char *name)
{
	if (gs_store_tree_user(storefd, name) != 0)
		return 0;
	int r = rm_tree_at(storefd, name, 0);
	return r == 0 ? 1 : r;
}

/* Removes STORE/.tmp-* left behind (the caller holds the lock): debris of
 * a killed run, and trees swapped out or removed earlier that a container
 * still mounted then.  A reader may be opening one right now: the
 * readers' barrier waits for it first; a mounted one is kept. */
void gs_store_remove_stale(int storefd)
{
	int fd = fcntl(storefd, F_DUPFD_CLOEXEC, 3);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	bool any = false;
	struct dirent *e;
	while (!any && (e = readdir(d)))
		any = !strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX));
	struct gs_err ignored = GS_ERR_INIT;
	/* none (the common case): no wait for readers at all */
	for (int pass = 0; any && pass < 4; pass++) {
		if (pass == 0 && gs_store_readers_barrier(storefd, &ignored) != 0)
			break; /* readers busy (or no lock): deleted by a later run */
		bool found = false;
		rewinddir(d);
		while ((e = readdir(d)))
			if (!strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
				found |= gs_store_remove_unused(storefd, e->d_name) == 1;
		if (!found)
			break;
	}
	closedir(d);
}

/* A fresh name "PREFIX-XXXXXX" in STOREFD that nothing uses yet. */
int gs_store_fresh_name(int storefd, const char *prefix, char *name, size_t len,
		      struct gs_err *err)
{
	for (int tries = 0; tries < 32; tries++) {
		uint32_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint32_t)getpid() * 2654435761u + (uint32_t)tries;
		snprintf(name, len, "%s-%06x", prefix, rnd & 0xffffffu);
		struct stat st;
		if (fstatat(storefd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			return 0;
	}
	return gs_err_setx(err, EEXIST, "%s: no free temporary name", prefix);
}

/* Whether STORE/VER exists (as a directory; anything else is an error). */
int gs_store_staged_exists(int storefd, const char *store, const char *ver, bool *exists,
			 struct gs_err *err)
{
	struct stat st;
	*exists = false;
	if (fstatat(storefd, ver, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return gs_err_set(err, errno, "%s/%s", store, ver);
	}
	if (!S_ISDIR(st.st_mode))
		return gs_err_setx(err, ENOTDIR, "%s/%s: exists and is not a directory; not touched",
				   store, ver);
	*exists = true;
	return 0;
}

/* ---- removing ----------------------------------------------------------------------- */

int gs_store_remove(const char *store, const char *ver, int *rm_err, struct gs_err *err)
{
	*rm_err = 0;
	if (!gs_version_valid(ver))
		return gs_err_setx(err, EINVAL, "'%s' is not a driver version", ver ? ver : "");
	_cleanup_close_ int storefd = gs_store_dir_open(store, false, err);
	if (storefd < 0)
		return storefd;
	_cleanup_close_ int lockfd = gs_store_dir_lock(storefd, store, false, err);
	if (lockfd < 0)
		return lockfd;
	gs_store_remove_stale(storefd);
	bool exists;
	int r = gs_store_staged_exists(storefd, store, ver, &exists, err);
	if (r < 0)
		return r;
	if (!exists)
		return gs_err_setx(err, ENOENT, "%s/%s: driver %s is not staged", store, ver, ver);
	return gs_store_remove_locked(storefd, store, ver, rm_err, err);
}

int gs_store_remove_locked(int storefd, const char *store, const char *ver, int *rm_err,
			   struct gs_err *err)
{
	*rm_err = 0;
	char prefix[96], tmp[128];
	int r;
	snprintf(prefix, sizeof(prefix), TMP_PREFIX "rm-%s", ver);
	if ((r = gs_store_fresh_name(storefd, prefix, tmp, sizeof(tmp), err)) < 0)
		return r;
	r = renameat2(storefd, ver, storefd, tmp, RENAME_NOREPLACE);
	if (r < 0 && errno == EINVAL)
		r = renameat(storefd, ver, storefd, tmp);
	if (r < 0)
		return gs_err_set(err, errno, "%s/%s: renaming away", store, ver);
	(void)fsync(storefd);
	/* 1: a running container still mounts it, or deleting failed (*RM_ERR):
	 * kept for a later run */
	int k = gs_store_remove_old(storefd, tmp);
	*rm_err = k < 0 ? -k : 0;
	return k == 1 ? 0 : 1;
}

/* ---- for gc (stage/store_gc.c) --------------------------------------------------- */

int gs_store_open_locked(const char *store, int *lockfd, struct gs_err *err)
{
	_cleanup_close_ int storefd = gs_store_dir_open(store, false, err);
	if (storefd < 0)
		return storefd;
	if ((*lockfd = gs_store_dir_lock(storefd, store, false, err)) < 0)
		return *lockfd;
	return steal_fd(&storefd);
}

int gs_store_remove_old(int storefd, const char *name)
{
	struct gs_err ignored = GS_ERR_INIT;
	int r = gs_store_readers_barrier(storefd, &ignored) == 0 ? gs_store_remove_unused(storefd, name) : 0;
	(void)fsync(storefd);
	return r;
}

