/* SPDX-License-Identifier: Apache-2.0 */
/* gc: what of the store no one needs any more.  A staged version goes
 * unless the caller keeps it (the loaded module's, the configuration's) or
 * a mount table shows one of its files (a running container); an old tree
 * (.tmp-*: swapped out by a re-stage or removed while a container still
 * mounted it) goes once nothing mounts it.  All under the store lock, as
 * remove does, and through the same removal (renamed away first, deleted
 * after the readers' barrier unless mounted meanwhile). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/version.h"
#include "store_internal.h"

struct names {
	char **v;
	size_t n;
};

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static int names_add(struct names *s, const char *name)
{
	char **v = realloc(s->v, (s->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	if (!(v[s->n] = strdup(name)))
		return -ENOMEM;
	s->n++;
	return 0;
}

static int version_cmp(const void *a, const void *b)
{
	return strverscmp(*(char *const *)a, *(char *const *)b);
}

/* The staged versions (directories named as a version) and old trees. */
static int scan(int storefd, const char *store, struct names *vers, struct names *old,
		struct gs_err *err)
{
	int fd = fcntl(storefd, F_DUPFD_CLOEXEC, 3);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return gs_err_set(err, errno, "reading store %s", store);
	}
	struct dirent *e;
	int r = 0;
	while (r >= 0 && (errno = 0, e = readdir(d))) {
		bool tmp = !strncmp(e->d_name, GS_STORE_TMP_PREFIX, strlen(GS_STORE_TMP_PREFIX));
		struct stat st;
		if (!tmp && !gs_version_valid(e->d_name))
			continue;
		if (fstatat(storefd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) /* gone meanwhile */
				continue;
			return gs_err_set(err, errno, "%s/%s", store, e->d_name);
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		r = names_add(tmp ? old : vers, e->d_name);
	}
	if (r < 0 || errno)
		return r < 0 ? gs_err_setx(err, ENOMEM, "store %s: out of memory", store)
			     : gs_err_set(err, errno, "reading store %s", store);
	if (vers->n > 1)
		qsort(vers->v, vers->n, sizeof(char *), version_cmp);
	if (old->n > 1)
		qsort(old->v, old->n, sizeof(char *), version_cmp);
	return 0;
}

static const char *kept_why(const struct gs_gc_keep *keep, size_t n_keep, const char *ver)
{
	for (size_t i = 0; i < n_keep; i++)
		if (keep[i].ver && !strcmp(keep[i].ver, ver))
			return keep[i].why;
	return NULL;
}

/* The verdict on one version or old tree; removes it unless DRY_RUN.
 * 1 removed (or would be), 0 kept. */
static int judge(int storefd, const char *store, struct gs_gc_item *it,
		 const struct gs_gc_keep *keep, size_t n_keep, bool dry_run, struct gs_err *err)
{
	if (!it->old_tree && (it->why = kept_why(keep, n_keep, it->name))) {
		it->verdict = GS_GC_KEEP;
		return 0;
	}
	if ((it->pid = gs_store_tree_user(storefd, it->name)) != 0) {
		it->verdict = GS_GC_IN_USE;
		return 0;
	}
	it->verdict = GS_GC_REMOVE;
	if (dry_run)
		return 1;
	int r, rm_err = 0;
	if (it->old_tree) {
		r = gs_store_remove_old(storefd, it->name);
		rm_err = r < 0 ? -r : 0;
		r = r == 1 ? 0 : 1;
	} else if ((r = gs_store_remove_locked(storefd, store, it->name, &rm_err, err)) < 0) {
		return r;
	}
	if (r == 1)
		it->verdict = rm_err ? GS_GC_RM_FAILED : GS_GC_KEPT_MOUNTED;
	it->err_no = rm_err;
	return 1;
}

int gs_store_gc(const char *store, const struct gs_gc_keep *keep, size_t n_keep, bool dry_run,
		void (*report)(void *data, const struct gs_gc_item *item), void *data,
		struct gs_err *err)
{
	_cleanup_close_ int lockfd = -1;
	_cleanup_close_ int storefd = gs_store_open_locked(store, &lockfd, err);
	if (storefd == -ENOENT && err->code == ENOENT) { /* no store: nothing staged */
		gs_err_clear(err);
		return 0;
	}
	if (storefd < 0)
		return storefd;
	struct names vers = {0}, old = {0};
	int r = scan(storefd, store, &vers, &old, err), removed = 0, failed = 0, first = 0;
	for (size_t i = 0; r >= 0 && i < vers.n + old.n; i++) {
		struct gs_gc_item it = {.name = i < vers.n ? vers.v[i] : old.v[i - vers.n],
					.old_tree = i >= vers.n};
		if ((r = judge(storefd, store, &it, keep, n_keep, dry_run, err)) < 0)
			break;
		removed += r;
		if (it.verdict == GS_GC_RM_FAILED && !failed++)
			first = it.err_no;
		if (report)
			report(data, &it);
	}
	names_free(&vers);
	names_free(&old);
	if (r >= 0 && failed) /* each reported; the rest was done */
		return gs_err_setx(err, first, "store %s: deleting the files of %d tree%s failed (%s); a later run tries again",
				   store, failed, failed == 1 ? "" : "s", strerror(first));
	return r < 0 ? r : removed;
}
