/* SPDX-License-Identifier: Apache-2.0 */
/* The read side of the store: STORE/VER opened once, under the store's
 * readers' lock, and everything a reader takes (manifest, index, sources)
 * taken from that one fd.
 *
 * Why the lock: a re-stage swaps the new tree in with one rename, so an fd
 * opened before the swap keeps the old tree whole -- until the stager
 * deletes it.  The stager, after the swap and before deleting, takes
 * STORE/.readers exclusively for an instant (gs_store_readers_barrier);
 * a reader holds it shared from before it opens STORE/VER until it is
 * done.  So every reader that could hold the old tree has finished before
 * a file of it goes, and no reader mixes two trees. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/manifest.h"

#define FLOCK_TRIES 64 /* EINTR retries */

static int flock_retry(int fd, int op)
{
	for (int i = 0; i < FLOCK_TRIES; i++) {
		if (flock(fd, op) == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
	return -EINTR;
}

int gs_store_readers_lock(int storefd, int *out, struct gs_err *err)
{
	*out = -1;
	_cleanup_close_ int fd = openat(storefd, GS_READERS_LOCK, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0; /* a store staged before the lock existed: nothing to hold */
	if (fd < 0)
		return gs_err_set(err, errno, GS_READERS_LOCK);
	int r = flock_retry(fd, LOCK_SH);
	if (r < 0)
		return gs_err_set(err, -r, "locking " GS_READERS_LOCK);
	*out = steal_fd(&fd);
	return 0;
}

int gs_store_readers_barrier(int storefd, struct gs_err *err)
{
	_cleanup_close_ int fd =
		openat(storefd, GS_READERS_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return gs_err_set(err, errno, GS_READERS_LOCK);
	/* a reader holds it for one container start (milliseconds); one that
	 * hangs must not hang the stager: after a while the old tree is
	 * simply kept, for a later run */
	for (unsigned int waited = 0; waited < GS_BARRIER_WAIT_MS; waited += 2) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return gs_err_set(err, errno, "locking " GS_READERS_LOCK);
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return 1;
}

/* Opens STORE/VER (never through a symlink). */
static int open_version(int storefd, const char *store, const char *ver, struct gs_err *err)
{
	int fd = openat(storefd, ver, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno == ENOENT)
		return gs_err_setx(err, ENOENT, "%s/%s: driver %s is not staged", store, ver, ver);
	if (errno == ELOOP || errno == ENOTDIR)
		return gs_err_setx(err, ENOTDIR, "%s/%s: not a directory", store, ver);
	return gs_err_set(err, errno, "%s/%s", store, ver);
}

void gs_store_ver_close(struct gs_store_ver *v)
{
	if (v->verfd >= 0)
		close(v->verfd);
	if (v->lockfd >= 0)
		close(v->lockfd);
	free(v->dir);
	*v = (struct gs_store_ver){.verfd = -1, .lockfd = -1};
}

int gs_store_ver_open(const char *store, const char *ver, struct gs_store_ver *out,
		      struct gs_err *err)
{
	*out = (struct gs_store_ver){.verfd = -1, .lockfd = -1};
	if (!store || !*store)
		return gs_err_setx(err, EINVAL, "empty store path");
	if (!gs_version_valid(ver))
		return gs_err_setx(err, EINVAL, "'%s' is not a driver version", ver ? ver : "");
	_cleanup_close_ int storefd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (storefd < 0)
		return gs_err_set(err, errno, "store %s", store);
	struct gs_store_ver v = {.verfd = -1, .lockfd = -1};
	if (asprintf(&v.dir, "%s/%s", store, ver) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	int r = gs_store_readers_lock(storefd, &v.lockfd, err);
	if (r >= 0 && (v.verfd = open_version(storefd, store, ver, err)) < 0)
		r = v.verfd;
	if (r < 0) {
		gs_store_ver_close(&v);
		return r;
	}
	*out = v;
	return 0;
}
