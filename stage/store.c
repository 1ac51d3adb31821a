/* SPDX-License-Identifier: Apache-2.0 */
/* The store: STORE/VER/ is a read-only copy of one driver's files plus
 * manifest.json.
 *
 * Staging builds the new tree in STORE/.tmp-VER-XXXXXX while holding
 * STORE/.lock, syncs it to disk (syncfs), then renames it into place
 * in one step (renameat2 RENAME_NOREPLACE, or RENAME_EXCHANGE with the old
 * tree, which is deleted afterwards).  A crash leaves only .tmp-* debris,
 * which the next run removes under the lock.  Sources are opened inside the
 * host root with openat2(RESOLVE_IN_ROOT) and must still be the inode that
 * discovery saw; every byte is hashed (SHA-256) as it is staged.  Nothing
 * here follows a symlink inside the store.  An import (stage/archive.c)
 * fills such a tree from an archive instead of a host root.  The store
 * directory, its lock and the removal of old trees: stage/store_dir.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "store_internal.h"

#define COPY_CHUNK (4u << 20) /* bytes per copy_file_range / read, and hash buffer size */
#define TMP_PREFIX GS_STORE_TMP_PREFIX

/* ---- is the staged copy already what the plan asks for? ------------------------- */

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool same_file(const struct gs_file *a, const struct gs_file *b)
{
	if (!str_eq(a->path, b->path) || !str_eq(a->source, b->source) || a->kind != b->kind ||
	    a->caps != b->caps || !str_eq(a->soname, b->soname) ||
	    !str_eq(a->evidence, b->evidence) || a->mode != b->mode ||
	    a->size != b->size || a->src_dev != b->src_dev || a->src_ino != b->src_ino ||
	    a->src_mtime_ns != b->src_mtime_ns || a->n_needed != b->n_needed ||
	    a->glibc != b->glibc) /* a manifest of before the glibc field: staged again */
		return false;
	for (size_t i = 0; i < a->n_needed; i++)
		if (!str_eq(a->needed[i], b->needed[i]))
			return false;
	return true;
}

static int file_ptr_cmp(const void *a, const void *b)
{
	return strcmp((*(struct gs_file *const *)a)->path, (*(struct gs_file *const *)b)->path);
}

static int link_ptr_cmp(const void *a, const void *b)
{
	return strcmp((*(struct gs_link *const *)a)->path, (*(struct gs_link *const *)b)->path);
}

/* Same files (by path) and links; on a match, copies the staged hashes into
 * WANT.  Returns 1 on a match, 0 when different, -ENOMEM. */
static int plans_match(struct gs_manifest *want, const struct gs_manifest *have)
{
	if (want->n_files != have->n_files || want->n_links != have->n_links ||
	    !str_eq(want->arch, have->arch) || !str_eq(want->root, have->root))
		return 0;
	size_t nf = want->n_files, nl = want->n_links;
	_cleanup_free_ struct gs_file **fw = calloc(nf + 1, sizeof(*fw));
	_cleanup_free_ struct gs_file **fh = calloc(nf + 1, sizeof(*fh));
	_cleanup_free_ struct gs_link **lw = calloc(nl + 1, sizeof(*lw));
	_cleanup_free_ struct gs_link **lh = calloc(nl + 1, sizeof(*lh));
	if (!fw || !fh || !lw || !lh)
		return -ENOMEM;
	for (size_t i = 0; i < nf; i++) {
		fw[i] = &want->files[i];
		fh[i] = &have->files[i];
	}
	for (size_t i = 0; i < nl; i++) {
		lw[i] = &want->links[i];
		lh[i] = &have->links[i];
	}
	qsort(fw, nf, sizeof(*fw), file_ptr_cmp);
	qsort(fh, nf, sizeof(*fh), file_ptr_cmp);
	qsort(lw, nl, sizeof(*lw), link_ptr_cmp);
	qsort(lh, nl, sizeof(*lh), link_ptr_cmp);
	for (size_t i = 0; i < nf; i++)
		if (!same_file(fw[i], fh[i]))
			return 0;
	for (size_t i = 0; i < nl; i++)
		if (!str_eq(lw[i]->path, lh[i]->path) || !str_eq(lw[i]->target, lh[i]->target))
			return 0;
	for (size_t i = 0; i < nf; i++)
		memcpy(fw[i]->sha256, fh[i]->sha256, sizeof(fw[i]->sha256));
	return 1;
}

/* 1 when STORE/VER already holds PLAN (hashes copied into PLAN); 2 when it
 * does but its index is not the manifest's; else 0.  A staged copy that
 * cannot be read is simply rebuilt. */
static int staged_matches(int storefd, struct gs_manifest *plan, struct gs_err *err)
{
	_cleanup_close_ int verfd =
		openat(storefd, plan->driver, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (verfd < 0)
		return 0;
	_cleanup_(gs_manifest_freep) struct gs_manifest *have = NULL;
	struct gs_manifest_info info;
	struct gs_err ignored = GS_ERR_INIT;
	if (gs_manifest_read_at(verfd, GS_MANIFEST_NAME, &have, &info, &ignored) < 0 ||
	    !info.digest_ok || !str_eq(have->driver, plan->driver))
		return 0;
	int r = plans_match(plan, have);
	if (r < 0)
		return gs_err_setx(err, ENOMEM, "comparing with the staged copy: out of memory");
	/* a cheap look (no hashing): every entry there with its type, mode,
	 * owner, size or target, and nothing else */
	if (r != 1 || (r = gs_manifest_tree_intact(verfd, have, &info, err)) != 1)
		return r;
	/* an index that is missing, stale or of an older format: rebuilt by
	 * staging the version again (the caller says so) */
	const char *why = NULL;
	if ((r = gs_index_matches_at(verfd, have, &info, &why, err)) < 0)
		return r;
	return r == 1 ? 1 : 2;
}

/* ---- building the new tree --------------------------------------------------------- */

struct build {
	const char *store;
	int storefd;
	int tmpfd;          /* STORE/.tmp-VER-XXXXXX */
	char tmpname[128];
	bool published;     /* tmpname no longer holds our tree */
	char **dirs;        /* directories created, relative to tmpfd */
	size_t n_dirs;
	unsigned char *buf; /* COPY_CHUNK bytes */
};

static void build_release(struct build *b)
{
	if (b->tmpfd >= 0)
		close(b->tmpfd);
	if (b->tmpname[0] && !b->published)
		(void)gs_store_rm_tree(b->storefd, b->tmpname);
	for (size_t i = 0; i < b->n_dirs; i++)
		free(b->dirs[i]);
	free(b->dirs);
	free(b->buf);
}

static int remember_dir(struct build *b, const char *path, size_t len)
{
	char **v = realloc(b->dirs, (b->n_dirs + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	b->dirs = v;
	if (!(v[b->n_dirs] = strndup(path, len)))
		return -ENOMEM;
	b->n_dirs++;
	return 0;
}

/* Creates PATH's parent directories under the tree (0700 while building)
 * and returns an fd of the last one; *LEAF points at PATH's last component. */
static int open_parent(struct build *b, const char *path, const char **leaf,
		       struct gs_err *err)
{
	_cleanup_close_ int cur = fcntl(b->tmpfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return gs_err_set(err, errno, "%s", path);
	const char *p = path;
	for (const char *slash; (slash = strchr(p, '/')); p = slash + 1) {
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)(slash - p), p);
		if (mkdirat(cur, name, 0700) == 0) {
			if (remember_dir(b, path, (size_t)(slash - path)) < 0)
				return gs_err_setx(err, ENOMEM, "%s: out of memory", path);
		} else if (errno != EEXIST) {
			return gs_err_set(err, errno, "creating directory for %s", path);
		}
		int next = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return gs_err_set(err, errno, "opening directory for %s", path);
		close(cur);
		cur = next;
	}
	*leaf = p;
	return steal_fd(&cur);
}


static int pread_full(int fd, void *buf, size_t n, off_t off)
{
	unsigned char *p = buf;
	size_t got = 0;
	int eintr = 0;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);
		if (r < 0 && errno == EINTR && ++eintr < GS_EINTR_TRIES)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		eintr = 0;
		got += (size_t)r;
	}
	return (int)got;
}

/* Hashes the first SIZE bytes of DST (after a reflink or an in-kernel copy,
 * the bytes the staged file really holds) and checks there is no more. */
static int hash_back(struct build *b, int dst, uint64_t from, uint64_t size,
		     struct gs_sha256 *h, struct gs_err *err)
{
	for (uint64_t off = from; off < size;) {
		size_t want = size - off < COPY_CHUNK ? (size_t)(size - off) : COPY_CHUNK;
		int n = pread_full(dst, b->buf, want, (off_t)off);
		if (n < 0)
			return gs_err_set(err, -n, "reading back");
		if ((size_t)n != want)
			return gs_err_setx(err, EIO, "reading back: file shorter than copied");
		int r = gs_sha256_update(h, b->buf, want, err);
		if (r < 0)
			return r;
		off += want;
	}
	return 0;
}

enum { COPY_FALLBACK = 1 };

/* copy_file_range in chunks, hashing each chunk as written.  COPY_FALLBACK
 * when the kernel or filesystems cannot do it at all. */
static int copy_range(struct build *b, int src, int dst, uint64_t size, struct gs_sha256 *h,
		      struct gs_err *err)
{
	loff_t soff = 0, doff = 0;
	int eintr = 0;
	while ((uint64_t)doff < size) {
		uint64_t left = size - (uint64_t)doff;
		ssize_t n = copy_file_range(src, &soff, dst, &doff,
					    left < COPY_CHUNK ? (size_t)left : COPY_CHUNK, 0);
		if (n < 0 && errno == EINTR && ++eintr < GS_EINTR_TRIES)
			continue;
		eintr = 0;
		if (n < 0 && doff == 0 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
			return COPY_FALLBACK;
		if (n < 0)
			return gs_err_set(err, errno, "copy_file_range");
		if (n == 0)
			return gs_err_setx(err, EIO, "source shrank while being copied");
		int r = hash_back(b, dst, (uint64_t)doff - (uint64_t)n, (uint64_t)doff, h, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* read/write in chunks, hashing the buffer that is written. */
static int copy_rw(struct build *b, int src, int dst, uint64_t size, struct gs_sha256 *h,
		   struct gs_err *err)
{
	if (lseek(src, 0, SEEK_SET) < 0 || lseek(dst, 0, SEEK_SET) < 0 || ftruncate(dst, 0) < 0)
		return gs_err_set(err, errno, "rewinding");
	for (uint64_t off = 0, eintr = 0; off < size;) {
		size_t want = size - off < COPY_CHUNK ? (size_t)(size - off) : COPY_CHUNK;
		ssize_t n = read(src, b->buf, want);
		if (n < 0 && errno == EINTR && ++eintr < GS_EINTR_TRIES)
			continue;
		eintr = 0;
		if (n < 0)
			return gs_err_set(err, errno, "reading");
		if (n == 0)
			return gs_err_setx(err, EIO, "source shrank while being copied");
		int r = gs_sha256_update(h, b->buf, (size_t)n, err);
		if (r >= 0 && (r = gs_write_full(dst, b->buf, (size_t)n)) < 0)
			return gs_err_set(err, -r, "writing");
		if (r < 0)
			return r;
		off += (uint64_t)n;
	}
	return 0;
}

/* Copies SIZE bytes: a reflink when the filesystem shares extents, else
 * copy_file_range, else read/write.  Never a hard link. */
static int copy_data(struct build *b, int src, int dst, uint64_t size, char hex[65],
		     struct gs_err *err)
{
	_cleanup_(gs_sha256_freep) struct gs_sha256 *h = NULL;
	int r = gs_sha256_new(&h, err);
	if (r < 0)
		return r;
	struct stat st;
	if (size > 0 && ioctl(dst, FICLONE, src) == 0 && fstat(dst, &st) == 0 &&
	    (uint64_t)st.st_size == size) {
		r = hash_back(b, dst, 0, size, h, err);
	} else {
		if (size > 0 && ftruncate(dst, 0) < 0)
			return gs_err_set(err, errno, "truncating");
		r = copy_range(b, src, dst, size, h, err);
		if (r == COPY_FALLBACK)
			r = copy_rw(b, src, dst, size, h, err);
	}
	return r < 0 ? r : gs_sha256_final(h, hex, err);
}

/* The source is still the file discovery looked at. */
static int same_source(const struct gs_file *f, const struct stat *st, const char *when,
		       struct gs_err *err)
{
	if (!S_ISREG(st->st_mode))
		return gs_err_setx(err, EINVAL, "%s: not a regular file", f->source);
	if ((uint64_t)st->st_size != f->size)
		return gs_err_setx(err, ESTALE, "%s: changed %s (size %llu, was %llu); run gpu-stage again",
				   f->source, when, (unsigned long long)st->st_size,
				   (unsigned long long)f->size);
	if ((uint64_t)st->st_dev != f->src_dev || (uint64_t)st->st_ino != f->src_ino)
		return gs_err_setx(err, ESTALE, "%s: replaced by another file %s; run gpu-stage again",
				   f->source, when);
	if (gs_mtime_ns(st) != f->src_mtime_ns)
		return gs_err_setx(err, ESTALE, "%s: modified %s; run gpu-stage again", f->source,
				   when);
	return 0;
}

/* A file written in full gets its staged MODE. */
static int seal_file(int fd, const char *path, uint32_t mode, struct gs_err *err)
{
	if (fchmod(fd, mode) < 0)
		return gs_err_set(err, errno, "%s", path);
	/* durability comes in one pass once the tree is complete
	 * (sync_tree): here the writeback only starts, so the disk works
	 * while the next file is copied */
	if (sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) < 0 && fsync(fd) < 0)
		return gs_err_set(err, errno, "%s", path);
	return 0;
}

static int stage_file(struct build *b, int rootfd, struct gs_file *f, struct gs_err *err)
{
	_cleanup_close_ int src =
		gs_open_in_root(rootfd, f->source, O_RDONLY | O_NOCTTY | O_NONBLOCK, err);
	if (src < 0)
		return src;
	struct stat st;
	if (fstat(src, &st) < 0)
		return gs_err_set(err, errno, "%s", f->source);
	int r = same_source(f, &st, "since discovery", err);
	if (r < 0)
		return r;
	const char *leaf;
	_cleanup_close_ int dirfd = open_parent(b, f->path, &leaf, err);
	if (dirfd < 0)
		return dirfd;
	_cleanup_close_ int dst =
		openat(dirfd, leaf, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dst < 0)
		return gs_err_set(err, errno, "creating %s", f->path);
	r = copy_data(b, src, dst, f->size, f->sha256, err);
	if (r < 0)
		return gs_err_wrap(err, "copying %s to %s", f->source, f->path);
	if (fstat(src, &st) < 0)
		return gs_err_set(err, errno, "%s", f->source);
	if ((r = same_source(f, &st, "while being copied", err)) < 0)
		return r;
	return seal_file(dst, f->path, f->mode, err);
}

/* The complete tree on disk before it is published: one syncfs of its
 * file system (every file, manifest.json, the index, the directories; the
 * files' writeback already under way) instead of an fsync, and a flush of
 * the disk's cache, per file and directory.  A writeback error on that
 * file system since the tree's directory was opened fails it. */
static int sync_tree(struct build *b, struct gs_err *err)
{
	if (syncfs(b->tmpfd) < 0)
		return gs_err_set(err, errno, "%s/%s: syncfs", b->store, b->tmpname);
	return 0;
}

static int stage_link(struct build *b, const char *path, const char *target, struct gs_err *err)
{
	const char *leaf;
	_cleanup_close_ int dirfd = open_parent(b, path, &leaf, err);
	if (dirfd < 0)
		return dirfd;
	if (symlinkat(target, dirfd, leaf) < 0)
		return gs_err_set(err, errno, "creating link %s -> %s", path, target);
	return 0;
}

/* DIRFD/NAME holding TEXT, sealed 0444 (replaced whole), fsynced when
 * FLAGS say so (a tree being built is synced whole: sync_tree). */
static int write_sealed(int dirfd, const char *name, const char *text, size_t len,
			unsigned flags, struct gs_err *err)
{
	return gs_write_atomic_at(dirfd, name, text, len, 0444, flags, err);
}

static int sha256_text(const char *text, size_t len, char sha[65], struct gs_err *err)
{
	_cleanup_(gs_sha256_freep) struct gs_sha256 *h = NULL;
	int r = gs_sha256_new(&h, err);
	if (r >= 0)
		r = gs_sha256_update(h, text, len, err);
	return r < 0 ? r : gs_sha256_final(h, sha, err);
}

/* The index of P, whose manifest.json is TEXT (LEN bytes). */
static int index_text(const struct gs_manifest *p, const char *text, size_t len, char **out,
		      size_t *olen, struct gs_err *err)
{
	char sha[65];
	int r = sha256_text(text, len, sha, err);
	return r < 0 ? r : gs_index_format(p, len, sha, out, olen, err);
}

/* manifest.json (TEXT, LEN bytes: P's), then the index made from it. */
static int write_manifest(struct build *b, const struct gs_manifest *p, const char *text,
			  size_t len, struct gs_err *err)
{
	_cleanup_free_ char *index = NULL;
	size_t ilen = 0;
	int r = write_sealed(b->tmpfd, GS_MANIFEST_NAME, text, len, 0, err);
	if (r >= 0)
		r = index_text(p, text, len, &index, &ilen, err);
	return r < 0 ? r : write_sealed(b->tmpfd, GS_INDEX_NAME, index, ilen, 0, err);
}

/* STORE/VER is intact but its index is missing, stale or of an older
 * format (staged by an older gpu-stage): the index alone is written again,
 * under the lock, by a rename inside the briefly writable directory (a
 * reader sees the old index or the new one, never a part). */
static int reindex(int storefd, const char *store, const char *ver, struct gs_err *err)
{
	_cleanup_close_ int verfd = openat(storefd, ver, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (verfd < 0)
		return gs_err_set(err, errno, "%s/%s", store, ver);
	_cleanup_(gs_manifest_freep) struct gs_manifest *m = NULL;
	struct gs_manifest_info info;
	_cleanup_free_ char *index = NULL;
	size_t ilen = 0;
	int r = gs_manifest_read_at(verfd, GS_MANIFEST_NAME, &m, &info, err);
	if (r >= 0)
		r = gs_index_format(m, info.size, info.file_sha256, &index, &ilen, err);
	if (r < 0)
		return gs_err_wrap(err, "%s/%s: rebuilding the index", store, ver);
	if (fchmod(verfd, 0755) < 0)
		return gs_err_set(err, errno, "%s/%s: rebuilding the index", store, ver);
	r = write_sealed(verfd, GS_INDEX_NAME, index, ilen, GS_WRITE_FSYNC, err);
	if (fchmod(verfd, 0555) < 0 && r >= 0)
		r = gs_err_set(err, errno, "%s/%s: sealing", store, ver);
	if (fsync(verfd) < 0 && r >= 0)
		r = gs_err_set(err, errno, "%s/%s: fsync", store, ver);
	return r < 0 ? gs_err_wrap(err, "%s/%s: rebuilding the index", store, ver) : 0;
}

/* Directories become 0555, the top one last. */
static int seal_dirs(struct build *b, struct gs_err *err)
{
	for (size_t i = b->n_dirs; i-- > 0;) {
		_cleanup_close_ int fd =
			openat(b->tmpfd, b->dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchmod(fd, 0555) < 0)
			return gs_err_set(err, errno, "sealing directory %s", b->dirs[i]);
	}
	if (fchmod(b->tmpfd, 0555) < 0)
		return gs_err_set(err, errno, "sealing %s/%s", b->store, b->tmpname);
	return 0;
}

/* Moves the finished tree to STORE/VER in one rename. */
static int publish(struct build *b, const char *ver, bool exists, struct gs_err *err)
{
	if (!exists) {
		int r = renameat2(b->storefd, b->tmpname, b->storefd, ver, RENAME_NOREPLACE);
		if (r < 0 && errno == EINVAL) /* no RENAME_NOREPLACE here; we hold the lock */
			r = renameat(b->storefd, b->tmpname, b->storefd, ver);
		if (r < 0)
			return gs_err_set(err, errno, "renaming %s/%s to %s", b->store, b->tmpname,
					  ver);
		b->published = true;
	} else {
		if (renameat2(b->storefd, b->tmpname, b->storefd, ver, RENAME_EXCHANGE) < 0)
			return gs_err_set(err, errno,
					  "%s/%s: swapping in the new copy (renameat2 RENAME_EXCHANGE)",
					  b->store, ver);
		b->published = true;
	}
	/* the new tree is in place: the old one is still cleared away */
	int r = 0;
	if (fsync(b->storefd) < 0)
		r = gs_err_set(err, errno, "%s: driver %s is staged, but syncing the store failed",
			       b->store, ver);
	if (exists) { /* the old tree, now under the temporary name; else the next run does it */
		/* readers that opened the old tree finish first (manifest/store.c);
		 * when that cannot be known the new tree is in place all the same
		 * and the old one stays for a later run */
		struct gs_err ignored = GS_ERR_INIT;
		if (gs_store_readers_barrier(b->storefd, &ignored) == 0)
			(void)gs_store_remove_unused(b->storefd, b->tmpname);
		(void)fsync(b->storefd);
	}
	return r;
}

static void report(const struct gs_progress *pr, size_t i, const struct gs_manifest *p,
		   uint64_t done, uint64_t total)
{
	if (pr && pr->fn)
		pr->fn(pr->data, i + 1, p->n_files, done, total, p->files[i].path);
}

/* Every file of P in the tree is written: add manifest.json (TEXT) and
 * the index, seal the directories, sync it all. */
static int finish_tree(struct build *b, const struct gs_manifest *p, const char *text,
		       size_t len, struct gs_err *err)
{
	int r = write_manifest(b, p, text, len, err);
	if (r >= 0)
		r = seal_dirs(b, err);
	return r < 0 ? r : sync_tree(b, err);
}

static int build_tree(struct build *b, int rootfd, struct gs_manifest *p,
		      const struct gs_progress *progress, struct gs_err *err)
{
	uint64_t total = 0, done = 0;
	for (size_t i = 0; i < p->n_files; i++)
		total += p->files[i].size;
	for (size_t i = 0; i < p->n_files; i++) {
		int r = stage_file(b, rootfd, &p->files[i], err);
		if (r < 0)
			return gs_err_wrap(err, "staging %s", p->driver);
		done += p->files[i].size;
		report(progress, i, p, done, total);
	}
	for (size_t i = 0; i < p->n_links; i++)
		if (stage_link(b, p->links[i].path, p->links[i].target, err) < 0)
			return gs_err_wrap(err, "staging %s", p->driver);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = gs_manifest_dump(p, time(NULL), &text, &len, err);
	if (r >= 0)
		r = finish_tree(b, p, text, len, err);
	return r < 0 ? gs_err_wrap(err, "staging %s in %s", p->driver, b->store) : 0;
}

/* The staged mode of a file: 0555 for executables, else 0444. */
static void normalise_modes(struct gs_manifest *p)
{
	for (size_t i = 0; i < p->n_files; i++) {
		struct gs_file *f = &p->files[i];
		f->mode = f->kind == GS_KIND_BIN || (f->mode & 0111) ? 0555 : 0444;
	}
}

/* The empty tree STORE/.tmp-VER-XXXXXX, 0700 while it is built. */
static int begin_tree(struct build *b, const char *ver, struct gs_err *err)
{
	char prefix[96];
	snprintf(prefix, sizeof(prefix), TMP_PREFIX "%s", ver);
	int r = gs_store_fresh_name(b->storefd, prefix, b->tmpname, sizeof(b->tmpname), err);
	if (r < 0)
		return r;
	if (mkdirat(b->storefd, b->tmpname, 0700) < 0) {
		int e = errno;
		b->tmpname[0] = '\0';
		return gs_err_set(err, e, "creating %s/%s", b->store, prefix);
	}
	b->tmpfd = openat(b->storefd, b->tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return b->tmpfd < 0 ? gs_err_set(err, errno, "%s/%s", b->store, b->tmpname) : 0;
}

static int stage_locked(struct build *b, int rootfd, struct gs_manifest *plan, bool force,
			const struct gs_progress *progress, enum gs_stage_result *result,
			struct gs_err *err)
{
	bool exists;
	int r = gs_store_staged_exists(b->storefd, b->store, plan->driver, &exists, err);
	if (r < 0)
		return r;
	if (exists && !force) {
		if ((r = staged_matches(b->storefd, plan, err)) < 0)
			return r;
		if (r == 1) {
			*result = GS_STAGE_UNCHANGED;
			return 0;
		}
		if (r == 2) {
			*result = GS_STAGE_REINDEXED;
			return reindex(b->storefd, b->store, plan->driver, err);
		}
	}
	if ((r = begin_tree(b, plan->driver, err)) < 0)
		return r;
	if ((r = build_tree(b, rootfd, plan, progress, err)) < 0)
		return r;
	if ((r = publish(b, plan->driver, exists, err)) < 0)
		return r;
	*result = exists ? GS_STAGE_REPLACED : GS_STAGE_CREATED;
	return 0;
}

/* STORE opened (created when missing) and locked (*LOCKFD) for a change,
 * its readers' lock made, the debris of earlier runs removed. */
static int open_for_writing(const char *store, int *lockfd, struct gs_err *err)
{
	_cleanup_close_ int storefd = gs_store_dir_open(store, true, err);
	if (storefd < 0)
		return storefd;
	if ((*lockfd = gs_store_dir_lock(storefd, store, false, err)) < 0)
		return *lockfd;
	/* the readers' lock exists before any version a reader could open
	 * (a reader of a store without one holds nothing: manifest/store.c) */
	_cleanup_close_ int readers =
		openat(storefd, GS_READERS_LOCK, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (readers < 0)
		return gs_err_set(err, errno, "%s/" GS_READERS_LOCK, store);
	gs_store_remove_stale(storefd);
	return steal_fd(&storefd);
}

int gs_store_stage(const char *store, int rootfd, struct gs_manifest *plan, bool force,
		   const struct gs_progress *progress, enum gs_stage_result *result,
		   struct gs_err *err)
{
	int r = gs_manifest_check(plan, err);
	if (r < 0)
		return gs_err_wrap(err, "refusing to stage");
	normalise_modes(plan);
	_cleanup_close_ int lockfd = -1;
	_cleanup_close_ int storefd = open_for_writing(store, &lockfd, err);
	if (storefd < 0)
		return storefd;
	struct build b = {.store = store, .storefd = storefd, .tmpfd = -1};
	b.buf = malloc(COPY_CHUNK);
	if (!b.buf)
		return gs_err_setx(err, ENOMEM, "staging %s: out of memory", plan->driver);
	r = stage_locked(&b, rootfd, plan, force, progress, result, err);
	build_release(&b);
	return r;
}

/* ---- filling a tree from elsewhere: import (stage/archive.c) ---------------------- */

struct gs_tree {
	struct build *b;
};

int gs_tree_create(struct gs_tree *t, const char *path, struct gs_err *err)
{
	const char *leaf;
	_cleanup_close_ int dirfd = open_parent(t->b, path, &leaf, err);
	if (dirfd < 0)
		return dirfd;
	int fd = openat(dirfd, leaf, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd >= 0 ? fd : gs_err_set(err, errno, "creating %s", path);
}

int gs_tree_seal(struct gs_tree *t, int fd, const char *path, uint32_t mode, struct gs_err *err)
{
	(void)t;
	return seal_file(fd, path, mode, err);
}

int gs_tree_symlink(struct gs_tree *t, const char *path, const char *target, struct gs_err *err)
{
	return stage_link(t->b, path, target, err);
}

/* Whether STORE/VER holds exactly manifest.json TEXT (LEN bytes, SHA hex)
 * and the tree it names (gs_manifest_tree_intact: no hashing, as for a
 * re-stage) with its index.  1 yes, 0 no. */
static int staged_same(int storefd, const char *ver, size_t len, const char *sha,
		       struct gs_err *err)
{
	_cleanup_close_ int verfd =
		openat(storefd, ver, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_(gs_manifest_freep) struct gs_manifest *have = NULL;
	struct gs_manifest_info info;
	struct gs_err ignored = GS_ERR_INIT;
	if (verfd < 0 || gs_manifest_read_at(verfd, GS_MANIFEST_NAME, &have, &info, &ignored) < 0 ||
	    info.size != len || strcmp(info.file_sha256, sha))
		return 0;
	int r = gs_manifest_tree_intact(verfd, have, &info, err);
	if (r != 1)
		return r;
	const char *why = NULL;
	r = gs_index_matches_at(verfd, have, &info, &why, err);
	return r < 0 ? r : r == 1;
}

static int import_locked(struct build *b, const struct gs_manifest *m, const char *text,
			 size_t len, bool force, const struct gs_tree_filler *fill,
			 enum gs_stage_result *result, struct gs_err *err)
{
	bool exists;
	char sha[65];
	int r = gs_store_staged_exists(b->storefd, b->store, m->driver, &exists, err);
	if (r >= 0 && exists)
		r = sha256_text(text, len, sha, err);
	if (r >= 0 && exists)
		r = staged_same(b->storefd, m->driver, len, sha, err);
	if (r < 0)
		return r;
	if (exists && !force) {
		if (r == 0)
			return gs_err_setx(err, EEXIST,
					   "%s/%s: another copy of driver %s is staged there; --force replaces it",
					   b->store, m->driver, m->driver);
		*result = GS_STAGE_UNCHANGED;
		return fill->fn(fill->data, NULL, err); /* every entry checked, nothing written */
	}
	if ((r = begin_tree(b, m->driver, err)) < 0)
		return r;
	struct gs_tree t = {b};
	if ((r = fill->fn(fill->data, &t, err)) < 0)
		return r;
	if ((r = finish_tree(b, m, text, len, err)) < 0)
		return gs_err_wrap(err, "importing %s into %s", m->driver, b->store);
	if ((r = publish(b, m->driver, exists, err)) < 0)
		return r;
	*result = exists ? GS_STAGE_REPLACED : GS_STAGE_CREATED;
	return 0;
}

int gs_store_import(const char *store, const struct gs_manifest *m, const char *text, size_t len,
		    bool force, const struct gs_tree_filler *fill, enum gs_stage_result *result,
		    struct gs_err *err)
{
	int r = gs_manifest_check(m, err);
	if (r < 0)
		return gs_err_wrap(err, "refusing to import");
	_cleanup_close_ int lockfd = -1;
	_cleanup_close_ int storefd = open_for_writing(store, &lockfd, err);
	if (storefd < 0)
		return storefd;
	struct build b = {.store = store, .storefd = storefd, .tmpfd = -1};
	r = import_locked(&b, m, text, len, force, fill, result, err);
	build_release(&b);
	return r;
}

/* ---- reading the store --------------------------------------------------------------- */

static int version_cmp(const void *a, const void *b)
{
	return strverscmp(*(char *const *)a, *(char *const *)b);
}

static bool is_version_dir(int storefd, const char *name)
{
	struct stat st;
	char rel[128];
	if (name[0] == '.' || !gs_version_valid(name))
		return false;
	if (fstatat(storefd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return false;
	snprintf(rel, sizeof(rel), "%s/" GS_MANIFEST_NAME, name);
	return fstatat(storefd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

int gs_store_list(const char *store, char ***versions, size_t *n, struct gs_err *err)
{
	*versions = NULL;
	*n = 0;
	int storefd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (storefd < 0 && errno == ENOENT)
		return 0; /* nothing staged yet */
	if (storefd < 0)
		return gs_err_set(err, errno, "store %s", store);
	DIR *d = fdopendir(storefd);
	if (!d) {
		close(storefd);
		return gs_err_set(err, errno, "store %s", store);
	}
	char **v = calloc(1, sizeof(*v));
	size_t count = 0;
	struct dirent *e;
	while (v && (errno = 0, e = readdir(d))) {
		if (!is_version_dir(storefd, e->d_name))
			continue;
		char **grown = realloc(v, (count + 2) * sizeof(*v));
		if (!grown || !(grown[count] = strdup(e->d_name))) {
			strv_free(grown ? grown : v, count);
			v = NULL;
			break;
		}
		v = grown;
		v[++count] = NULL;
	}
	int e_read = v ? errno : ENOMEM;
	closedir(d);
	if (!v || e_read) {
		strv_free(v, count);
		return e_read == ENOMEM ? gs_err_setx(err, ENOMEM, "store %s: out of memory", store)
					: gs_err_set(err, e_read, "reading store %s", store);
	}
	qsort(v, count, sizeof(*v), version_cmp);
	*versions = v;
	*n = count;
	return 0;
}

int gs_store_verify(const char *store, const char *ver,
		    void (*report_fn)(void *data, const char *line), void *data,
		    struct gs_err *err)
{
	_cleanup_close_ int storefd = gs_store_dir_open(store, false, err);
	if (storefd < 0)
		return storefd;
	/* shared: no restage swaps the tree while we look (a read-only store
	 * may have no lock file, which is fine) */
	struct gs_err lerr = GS_ERR_INIT;
	_cleanup_close_ int lockfd = gs_store_dir_lock(storefd, store, true, &lerr);
	(void)lockfd;
	struct gs_manifest_info info;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = NULL;
	_cleanup_(gs_store_ver_closep) struct gs_store_ver v = {.verfd = -1, .lockfd = -1};
	int r = gs_store_ver_open(store, ver, &v, err);
	if (r >= 0)
		r = gs_store_ver_manifest(&v, ver, &p, &info, err);
	if (r < 0)
		return r;
	size_t bad = 0;
	r = gs_manifest_check_tree(v.verfd, p, &info, report_fn, data, &bad, err);
	if (r >= 0 && bad)
		r = gs_err_setx(err, EBADMSG, "%s/%s: %zu mismatch%s with its manifest", store, ver,
				bad, bad == 1 ? "" : "es");
	return r;
}
