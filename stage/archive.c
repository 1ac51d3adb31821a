/* SPDX-License-Identifier: Apache-2.0 */
/* Archives of staged sets: `gpu-stage export` writes STORE/VER as one
 * tar + zstd stream, `gpu-stage import` puts one into another store.
 *
 * The format: a pax tar ("restricted": an extended header only where
 * ustar cannot say it, e.g. a path over 100 bytes), zstd level
 * GS_ZSTD_LEVEL, entries "VER/manifest.json" first and then every file and
 * link of the manifest as "VER/PATH", sorted by path (strcmp); modes the
 * manifest's, mtime 0, owner 0:0 root:root, nothing else (no directories,
 * no atime/ctime, no xattrs): the same staged set gives the same bytes.
 * The index is not carried: import writes it from the manifest.
 *
 * Import trusts nothing in the archive.  The manifest comes first and must
 * pass the manifest's own parser and checks (its digest included); then
 * every entry must be one of its files or links, each once, with its path,
 * type, size, mode, SHA-256 or link target; the set must be complete.
 * Entries are read with libarchive's reader only and written by
 * stage/store.c into a temporary tree through fds (nothing is ever
 * extracted by libarchive); the version appears in one rename once all of
 * it has been checked. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/manifest.h"
#include "store_internal.h"

#define GS_ZSTD_LEVEL "12"   /* fixed: part of what makes two exports byte-identical */
#define DATA_CHUNK (1u << 20) /* bytes per read and write */

static void archive_freep(struct archive **a)
{
	if (*a)
		archive_free(*a); /* archive_read_free or archive_write_free, by its kind */
}

static const char *la_msg(struct archive *a)
{
	const char *s = archive_error_string(a);
	return s ? s : "unknown libarchive error";
}

/* ---- the manifest's entries, sorted by path ------------------------------------- */

struct entry {
	const char *path;
	const struct gs_file *file; /* or */
	const struct gs_link *link;
	bool seen;
};

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static struct entry *sorted_entries(const struct gs_manifest *m, size_t *n)
{
	*n = m->n_files + m->n_links;
	struct entry *v = calloc(*n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < m->n_files; i++)
		v[i] = (struct entry){m->files[i].path, &m->files[i], NULL, false};
	for (size_t i = 0; i < m->n_links; i++)
		v[m->n_files + i] = (struct entry){m->links[i].path, NULL, &m->links[i], false};
	qsort(v, *n, sizeof(*v), entry_cmp);
	return v;
}

/* ---- export ------------------------------------------------------------------------------ */

struct sink {
	int fd;
	struct gs_sha256 *h;
	uint64_t bytes;
	struct gs_err err; /* the first failure, when libarchive only says "write failed" */
};

static la_ssize_t sink_write(struct archive *a, void *data, const void *buf, size_t n)
{
	struct sink *s = data;
	int r = gs_write_full(s->fd, buf, n);
	if (r < 0) {
		archive_set_error(a, -r, "writing the archive: %s", strerror(-r));
		gs_err_set(&s->err, -r, "writing the archive");
		return -1;
	}
	if (gs_sha256_update(s->h, buf, n, &s->err) < 0) {
		archive_set_error(a, s->err.code, "%s", s->err.msg);
		return -1;
	}
	s->bytes += n;
	return (la_ssize_t)n;
}

static int writer_open(struct sink *s, struct archive **out, struct gs_err *err)
{
	_cleanup_(archive_freep) struct archive *a = archive_write_new();
	if (!a)
		return gs_err_setx(err, ENOMEM, "libarchive: out of memory");
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "zstd", "compression-level", GS_ZSTD_LEVEL) !=
		    ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open2(a, s, NULL, sink_write, NULL, NULL) != ARCHIVE_OK)
		return gs_err_setx(err, EIO, "starting the archive: %s", la_msg(a));
	*out = steal_ptr(&a);
	return 0;
}

static void entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}

/* A header with the fixed metadata: mtime 0, owner 0:0 root:root. */
static int put_header(struct archive *a, const char *ver, const char *path, mode_t type,
		      mode_t perm, int64_t size, const char *target, struct gs_err *err)
{
	_cleanup_(entry_freep) struct archive_entry *e = archive_entry_new2(a);
	_cleanup_free_ char *name = NULL;
	if (!e || asprintf(&name, "%s/%s", ver, path) < 0)
		return gs_err_setx(err, ENOMEM, "%s: out of memory", path);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, (unsigned int)type);
	archive_entry_set_perm(e, perm);
	archive_entry_set_size(e, size);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	if (target)
		archive_entry_set_symlink(e, target);
	if (archive_write_header(a, e) != ARCHIVE_OK)
		return gs_err_setx(err, EIO, "%s: writing its header: %s", name, la_msg(a));
	return 0;
}

static int put_data(struct archive *a, const char *path, const void *buf, size_t n,
		    struct gs_err *err)
{
	la_ssize_t w = archive_write_data(a, buf, n);
	if (w < 0 || (size_t)w != n)
		return gs_err_setx(err, EIO, "%s: writing its data: %s", path, la_msg(a));
	return 0;
}

/* One staged file: read through an fd beneath VERFD (no symlink), hashed,
 * its bytes exactly the manifest's. */
static int put_file(struct archive *a, int verfd, const char *dir, const char *ver,
		    const struct gs_file *f, unsigned char *buf, struct gs_err *err)
{
	/* O_NONBLOCK: a fifo planted in a tampered tree must not hang the export */
	_cleanup_close_ int fd = gs_open_beneath(verfd, f->path, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s/%s", dir, f->path);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != f->size)
		return gs_err_setx(err, EBADMSG, "%s/%s: not the manifest's file (run gpu-stage verify %s)",
				   dir, f->path, ver);
	int r = put_header(a, ver, f->path, AE_IFREG, f->mode, (int64_t)f->size, NULL, err);
	_cleanup_(gs_sha256_freep) struct gs_sha256 *h = NULL;
	if (r >= 0)
		r = gs_sha256_new(&h, err);
	for (uint64_t done = 0, eintr = 0; r >= 0 && done < f->size;) {
		size_t want = f->size - done < DATA_CHUNK ? (size_t)(f->size - done) : DATA_CHUNK;
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR && ++eintr < GS_EINTR_TRIES)
			continue;
		eintr = 0;
		if (n <= 0)
			return n < 0 ? gs_err_set(err, errno, "reading %s/%s", dir, f->path)
				     : gs_err_setx(err, EIO, "%s/%s: shorter than its manifest says",
						   dir, f->path);
		if ((r = gs_sha256_update(h, buf, (size_t)n, err)) >= 0)
			r = put_data(a, f->path, buf, (size_t)n, err);
		done += (uint64_t)n;
	}
	char sha[65];
	if (r >= 0)
		r = gs_sha256_final(h, sha, err);
	if (r >= 0 && strcmp(sha, f->sha256))
		r = gs_err_setx(err, EBADMSG, "%s/%s: content differs from the manifest (run gpu-stage verify %s)",
				dir, f->path, ver);
	return r;
}

static int put_link(struct archive *a, int verfd, const char *dir, const char *ver,
		    const struct gs_link *l, struct gs_err *err)
{
	char target[GS_PATH_MAX + 2];
	ssize_t n = readlinkat(verfd, l->path, target, sizeof(target) - 1);
	if (n < 0)
		return gs_err_set(err, errno, "%s/%s", dir, l->path);
	target[n] = '\0';
	if (strcmp(target, l->target))
		return gs_err_setx(err, EBADMSG, "%s/%s: link target differs from the manifest (run gpu-stage verify %s)",
				   dir, l->path, ver);
	return put_header(a, ver, l->path, AE_IFLNK, 0777, 0, l->target, err);
}

struct exporting {
	const struct gs_store_ver *v;
	const char *ver;
	const char *text; /* manifest.json */
	size_t len;
	const struct gs_manifest *m;
	const struct gs_progress *progress;
	struct gs_export_info *info;
};

static int put_all(struct archive *a, const struct exporting *x, struct gs_err *err)
{
	size_t n = 0;
	_cleanup_free_ struct entry *v = sorted_entries(x->m, &n);
	_cleanup_free_ unsigned char *buf = malloc(DATA_CHUNK);
	if (!v || !buf)
		return gs_err_setx(err, ENOMEM, "exporting %s: out of memory", x->ver);
	int r = put_header(a, x->ver, GS_MANIFEST_NAME, AE_IFREG, 0444, (int64_t)x->len, NULL, err);
	if (r >= 0)
		r = put_data(a, GS_MANIFEST_NAME, x->text, x->len, err);
	uint64_t total = 0;
	for (size_t i = 0; i < x->m->n_files; i++)
		total += x->m->files[i].size;
	x->info->entries = 1;
	for (size_t i = 0, files = 0; r >= 0 && i < n; i++) {
		if (v[i].link) {
			r = put_link(a, x->v->verfd, x->v->dir, x->ver, v[i].link, err);
		} else {
			r = put_file(a, x->v->verfd, x->v->dir, x->ver, v[i].file, buf, err);
			x->info->data += v[i].file->size;
			if (r >= 0 && x->progress && x->progress->fn)
				x->progress->fn(x->progress->data, ++files, x->m->n_files,
						x->info->data, total, v[i].path);
		}
		x->info->entries++;
	}
	return r;
}

/* STORE/VER's manifest.json: its bytes, parsed and checked. */
static int read_manifest(const struct gs_store_ver *v, const char *ver, char **text, size_t *len,
			 struct gs_manifest **m, struct gs_err *err)
{
	char name[GS_PATH_MAX + 128];
	snprintf(name, sizeof(name), "%s/" GS_MANIFEST_NAME, v->dir);
	_cleanup_close_ int fd = gs_open_beneath(v->verfd, GS_MANIFEST_NAME, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", name);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EBADMSG, "%s: not a regular file", name);
	int r = gs_read_all_fd(fd, GS_MANIFEST_MAX, name, text, len, err);
	struct gs_manifest_info info;
	if (r >= 0)
		r = gs_manifest_parse(*text, *len, name, m, &info, err);
	if (r < 0)
		return r;
	if (!info.digest_ok)
		return gs_err_setx(err, EBADMSG, "%s: edited after staging (manifest_sha256 does not match)",
				   name);
	if (strcmp((*m)->driver, ver))
		return gs_err_setx(err, EBADMSG, "%s: driver \"%s\" does not match its directory %s",
				   name, (*m)->driver, ver);
	return 0;
}

int gs_archive_export(const char *store, const char *ver, int outfd,
		      const struct gs_progress *progress, struct gs_export_info *info,
		      struct gs_err *err)
{
	*info = (struct gs_export_info){0};
	_cleanup_(gs_store_ver_closep) struct gs_store_ver v = {.verfd = -1, .lockfd = -1};
	_cleanup_free_ char *text = NULL;
	_cleanup_(gs_manifest_freep) struct gs_manifest *m = NULL;
	size_t len = 0;
	int r = gs_store_ver_open(store, ver, &v, err);
	if (r >= 0)
		r = read_manifest(&v, ver, &text, &len, &m, err);
	if (r < 0)
		return r;
	struct sink s = {.fd = outfd, .err = GS_ERR_INIT};
	if ((r = gs_sha256_new(&s.h, err)) < 0)
		return r;
	_cleanup_(gs_sha256_freep) struct gs_sha256 *h = s.h;
	_cleanup_(archive_freep) struct archive *a = NULL;
	struct exporting x = {&v, ver, text, len, m, progress, info};
	r = writer_open(&s, &a, err);
	if (r >= 0)
		r = put_all(a, &x, err);
	if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
		r = gs_err_setx(err, EIO, "finishing the archive: %s", la_msg(a));
	if (r < 0 && s.err.code) /* the real reason of a failed write */
		*err = s.err;
	if (r < 0)
		return gs_err_wrap(err, "exporting %s/%s", store, ver);
	info->bytes = s.bytes;
	return gs_sha256_final(h, info->sha256, err);
}

/* ---- import ------------------------------------------------------------------------------- */

const char *gs_archive_entry_path(const char *ver, const char *name, const char **why)
{
	size_t vl = strlen(ver);
	if (!name || !*name) {
		*why = "entry without a name";
		return NULL;
	}
	if (name[0] == '/') {
		*why = "absolute path";
		return NULL;
	}
	if (strncmp(name, ver, vl) || name[vl] != '/') {
		*why = "outside the archive's version directory";
		return NULL;
	}
	const char *rel = name + vl + 1;
	if ((*why = gs_store_path_check(rel)))
		return NULL;
	return rel;
}

static const char *type_name(mode_t type)
{
	switch (type) {
	case AE_IFDIR: return "a directory";
	case AE_IFCHR: return "a character device";
	case AE_IFBLK: return "a block device";
	case AE_IFIFO: return "a fifo";
	case AE_IFSOCK: return "a socket";
	case AE_IFLNK: return "a symbolic link";
	case AE_IFREG: return "a regular file";
	default: return "of an unknown type";
	}
}

struct importing {
	struct archive *a;
	const char *name; /* the archive, for messages */
	char *ver;
	char *text;       /* its manifest.json */
	size_t len;
	struct gs_manifest *m;
	struct entry *want; /* sorted by path */
	size_t n_want;
	unsigned char *buf;
	char *last;       /* the entry read last, for a damage found after it */
};

__attribute__((format(printf, 4, 5))) static int refuse(const struct importing *im,
							 const char *entry, struct gs_err *err,
							 const char *fmt, ...)
{
	char why[GS_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return gs_err_setx(err, EBADMSG, "%s: %s: %s", im->name, entry, why);
}

/* The next header; 0 at the end.  Anything but a clean header (a warning,
 * a damaged header libarchive would skip) is an error. */
static int next_header(struct importing *im, struct archive_entry **e, struct gs_err *err)
{
	int r = archive_read_next_header(im->a, e);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK && im->last)
		return gs_err_setx(err, EBADMSG, "%s: after %s: %s", im->name, im->last,
				   la_msg(im->a));
	if (r != ARCHIVE_OK)
		return gs_err_setx(err, EBADMSG, "%s: %s", im->name, la_msg(im->a));
	free(im->last);
	const char *name = archive_entry_pathname(*e);
	if (!(im->last = strdup(name ? name : "(unnamed entry)")))
		return gs_err_setx(err, ENOMEM, "%s: out of memory", im->name);
	return 1;
}

/* Reads the entry's data (SIZE bytes by its header) into FD (or nowhere
 * when FD < 0), hashing it into SHA. */
static int read_data(struct importing *im, const char *entry, uint64_t size, int fd,
		     char sha[65], struct gs_err *err)
{
	_cleanup_(gs_sha256_freep) struct gs_sha256 *h = NULL;
	int r = gs_sha256_new(&h, err);
	uint64_t got = 0;
	while (r >= 0) {
		la_ssize_t n = archive_read_data(im->a, im->buf, DATA_CHUNK);
		if (n < 0)
			return refuse(im, entry, err, "reading its data: %s", la_msg(im->a));
		if (n == 0)
			break;
		if ((uint64_t)n > size - got)
			return refuse(im, entry, err, "data longer than its header says (%llu bytes)",
				      (unsigned long long)size);
		got += (uint64_t)n;
		if ((r = gs_sha256_update(h, im->buf, (size_t)n, err)) >= 0 && fd >= 0 &&
		    (r = gs_write_full(fd, im->buf, (size_t)n)) < 0)
			return gs_err_set(err, -r, "%s: %s: writing it into the store", im->name, entry);
	}
	if (r < 0)
		return r;
	if (got != size)
		return refuse(im, entry, err, "data shorter than its header says (%llu of %llu bytes): truncated",
			      (unsigned long long)got, (unsigned long long)size);
	return gs_sha256_final(h, sha, err);
}

static int import_file(struct importing *im, struct archive_entry *e, const char *entry,
		       const struct gs_file *f, struct gs_tree *t, struct gs_err *err)
{
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
		return refuse(im, entry, err, "no size in its header");
	uint64_t size = (uint64_t)archive_entry_size(e);
	if (size != f->size)
		return refuse(im, entry, err, "%llu bytes, the manifest says %llu",
			      (unsigned long long)size, (unsigned long long)f->size);
	if (archive_entry_sparse_count(e) > 0)
		return refuse(im, entry, err, "a sparse entry");
	unsigned int perm = archive_entry_perm(e) & 07777;
	if (perm != f->mode)
		return refuse(im, entry, err, "mode %04o, the manifest says %04o", perm,
			      (unsigned int)f->mode);
	_cleanup_close_ int fd = -1;
	if (t && (fd = gs_tree_create(t, f->path, err)) < 0)
		return fd;
	char sha[65];
	int r = read_data(im, entry, size, fd, sha, err);
	if (r < 0)
		return r;
	if (strcmp(sha, f->sha256))
		return refuse(im, entry, err, "content does not match the manifest (sha256 %s, the manifest says %s)",
			      sha, f->sha256);
	return fd >= 0 ? gs_tree_seal(t, fd, f->path, f->mode, err) : 0;
}

static int import_link(struct importing *im, struct archive_entry *e, const char *entry,
		       const struct gs_link *l, struct gs_tree *t, struct gs_err *err)
{
	const char *target = archive_entry_symlink(e), *why;
	if (!target)
		return refuse(im, entry, err, "symbolic link without a target");
	if ((why = gs_store_target_check(l->path, target)))
		return refuse(im, entry, err, "link target %s: %s", target, why);
	if (strcmp(target, l->target))
		return refuse(im, entry, err, "link target %s, the manifest says %s", target,
			      l->target);
	return t ? gs_tree_symlink(t, l->path, target, err) : 0;
}

static struct entry *wanted(const struct importing *im, const char *path)
{
	struct entry key = {path, NULL, NULL, false};
	return bsearch(&key, im->want, im->n_want, sizeof(key), entry_cmp);
}

static int import_entry(struct importing *im, struct archive_entry *e, struct gs_tree *t,
			struct gs_err *err)
{
	const char *entry = archive_entry_pathname(e), *why = NULL;
	const char *rel = gs_archive_entry_path(im->ver, entry, &why);
	if (!entry)
		entry = "(unnamed entry)";
	if (archive_entry_hardlink(e))
		return refuse(im, entry, err, "a hard link (to %s)", archive_entry_hardlink(e));
	mode_t type = archive_entry_filetype(e);
	if (type != AE_IFREG && type != AE_IFLNK)
		return refuse(im, entry, err, "%s: only files and symbolic links are imported",
			      type_name(type));
	if (!rel)
		return refuse(im, entry, err, "%s", why);
	struct entry *w = wanted(im, rel);
	if (!w)
		return refuse(im, entry, err, "not in the manifest");
	if (w->seen)
		return refuse(im, entry, err, "a duplicate entry");
	w->seen = true;
	if ((type == AE_IFLNK) != (w->link != NULL))
		return refuse(im, entry, err, "%s, the manifest says a %s", type_name(type),
			      w->link ? "symbolic link" : "file");
	return w->link ? import_link(im, e, entry, w->link, t, err)
		       : import_file(im, e, entry, w->file, t, err);
}

/* The filler gs_store_import calls: every entry after the manifest. */
static int import_rest(void *data, struct gs_tree *t, struct gs_err *err)
{
	struct importing *im = data;
	struct archive_entry *e;
	int r;
	while ((r = next_header(im, &e, err)) > 0)
		if ((r = import_entry(im, e, t, err)) < 0)
			return r;
	if (r < 0)
		return r;
	size_t missing = 0;
	const char *first = NULL;
	for (size_t i = 0; i < im->n_want; i++)
		if (!im->want[i].seen && missing++ == 0)
			first = im->want[i].path;
	if (missing)
		return gs_err_setx(err, EBADMSG, "%s: %s/%s: missing (%zu entr%s of the manifest not in the archive)",
				   im->name, im->ver, first, missing, missing == 1 ? "y" : "ies");
	return 0;
}

/* The sizes the manifest claims, bounded before anything is written. */
static int check_sizes(const struct importing *im, struct gs_err *err)
{
	uint64_t total = 0;
	for (size_t i = 0; i < im->m->n_files; i++) {
		const struct gs_file *f = &im->m->files[i];
		if (f->size > GS_ARCHIVE_FILE_MAX)
			return gs_err_setx(err, EFBIG, "%s: %s/%s: %llu bytes, more than an archive may carry (%llu)",
					   im->name, im->ver, f->path, (unsigned long long)f->size,
					   (unsigned long long)GS_ARCHIVE_FILE_MAX);
		total += f->size;
		if (total > GS_ARCHIVE_TOTAL_MAX)
			return gs_err_setx(err, EFBIG, "%s: the manifest's files add up to more than %llu bytes",
					   im->name, (unsigned long long)GS_ARCHIVE_TOTAL_MAX);
	}
	return 0;
}

/* The first entry: VER/manifest.json, read whole, parsed and checked. */
static int read_first(struct importing *im, struct gs_err *err)
{
	struct archive_entry *e;
	int r = next_header(im, &e, err);
	if (r == 0)
		return gs_err_setx(err, EBADMSG, "%s: an empty archive (no manifest.json)", im->name);
	if (r < 0)
		return r;
	if (archive_filter_code(im->a, 0) != ARCHIVE_FILTER_ZSTD)
		return gs_err_setx(err, EBADMSG, "%s: not zstd-compressed (%s)", im->name,
				   archive_filter_name(im->a, 0));
	const char *entry = archive_entry_pathname(e), *slash = entry ? strchr(entry, '/') : NULL;
	if (!slash || strcmp(slash + 1, GS_MANIFEST_NAME))
		return refuse(im, entry ? entry : "(unnamed entry)", err,
			      "the first entry must be VER/" GS_MANIFEST_NAME);
	if (!(im->ver = strndup(entry, (size_t)(slash - entry))))
		return gs_err_setx(err, ENOMEM, "%s: out of memory", im->name);
	if (!gs_version_valid(im->ver))
		return refuse(im, entry, err, "'%s' is not a driver version", im->ver);
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
		return refuse(im, entry, err, "not a regular file");
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
	    (uint64_t)archive_entry_size(e) > GS_MANIFEST_MAX)
		return refuse(im, entry, err, "no size, or larger than %u bytes", GS_MANIFEST_MAX);
	im->len = (size_t)archive_entry_size(e);
	if (!(im->text = malloc(im->len + 1)))
		return gs_err_setx(err, ENOMEM, "%s: out of memory", im->name);
	for (size_t got = 0; got < im->len;) {
		la_ssize_t n = archive_read_data(im->a, im->text + got, im->len - got);
		if (n <= 0)
			return refuse(im, entry, err, "reading it: %s",
				      n < 0 ? la_msg(im->a) : "truncated");
		got += (size_t)n;
	}
	im->text[im->len] = '\0';
	_cleanup_free_ char *where = NULL;
	if (asprintf(&where, "%s: %s", im->name, entry) < 0) {
		where = NULL;
		return gs_err_setx(err, ENOMEM, "%s: out of memory", im->name);
	}
	struct gs_manifest_info info;
	if ((r = gs_manifest_parse(im->text, im->len, where, &im->m, &info, err)) < 0)
		return r;
	if (!info.digest_ok)
		return refuse(im, entry, err, "edited after staging (manifest_sha256 does not match)");
	if (strcmp(im->m->driver, im->ver))
		return refuse(im, entry, err, "names driver %s, but the archive's directory is %s",
			      im->m->driver, im->ver);
	if ((r = gs_manifest_check(im->m, err)) < 0)
		return gs_err_wrap(err, "%s", where);
	return check_sizes(im, err);
}

static void importing_free(struct importing *im)
{
	if (im->a)
		archive_read_free(im->a);
	free(im->text);
	gs_manifest_free(im->m);
	free(im->want);
	free(im->buf);
	free(im->last);
}

int gs_archive_import(const char *store, int fd, const char *name, bool force, char **ver,
		      enum gs_stage_result *result, struct gs_err *err)
{
	struct importing im = {.name = name};
	*ver = NULL;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
		return gs_err_setx(err, EBADMSG, "%s: an empty file, not an archive", name);
	int r = 0;
	if (!(im.a = archive_read_new()) || !(im.buf = malloc(DATA_CHUNK)))
		r = gs_err_setx(err, ENOMEM, "%s: out of memory", name);
	else if (archive_read_support_filter_zstd(im.a) != ARCHIVE_OK ||
		 archive_read_support_format_tar(im.a) != ARCHIVE_OK ||
		 archive_read_open_fd(im.a, fd, 64 * 1024) != ARCHIVE_OK)
		r = gs_err_setx(err, EBADMSG, "%s: %s", name, la_msg(im.a));
	if (r >= 0)
		r = read_first(&im, err);
	if (r >= 0 && !(im.want = sorted_entries(im.m, &im.n_want)))
		r = gs_err_setx(err, ENOMEM, "%s: out of memory", name);
	if (r >= 0) {
		struct gs_tree_filler fill = {import_rest, &im};
		r = gs_store_import(store, im.m, im.text, im.len, force, &fill, result, err);
	}
	*ver = steal_ptr(&im.ver);
	importing_free(&im);
	return r;
}
