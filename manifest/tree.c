/* SPDX-License-Identifier: Apache-2.0 */
/* Checking a staged tree (STORE/VER) against its manifest, for verify. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/manifest.h"

#define HASH_CHUNK (1u << 20)
#define WALK_DEPTH_MAX 64

enum expect_type { EXP_FILE, EXP_LINK, EXP_MANIFEST, EXP_INDEX };

struct expect {
	const char *path;
	enum expect_type type;
	size_t index; /* into files or links */
	bool seen;
};

struct verify {
	const struct gs_manifest *p;
	const struct gs_manifest_info *info;
	struct expect *v; /* sorted by strcmp: a directory's entries are contiguous */
	size_t n;
	char **lines;     /* mismatches, sorted before they are reported */
	size_t n_lines;
	bool oom;
	unsigned char *buf;
	uid_t uid;        /* every entry's owner: the store directory's */
	gid_t gid;
	bool cheap;       /* no hashing, no index content: gs_manifest_tree_intact */
};

__attribute__((format(printf, 3, 4))) static void mismatch(struct verify *c, const char *path,
							   const char *fmt, ...)
{
	char reason[512];
	char *line = NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	char **v = realloc(c->lines, (c->n_lines + 1) * sizeof(*v));
	if (v)
		c->lines = v;
	if (!v || asprintf(&line, "%s: %s", path, reason) < 0) {
		c->oom = true;
		return;
	}
	c->lines[c->n_lines++] = line;
}

static int expect_cmp(const void *a, const void *b)
{
	return strcmp(((const struct expect *)a)->path, ((const struct expect *)b)->path);
}

static int expect_build(struct verify *c)
{
	const struct gs_manifest *p = c->p;
	c->v = calloc(p->n_files + p->n_links + 2, sizeof(*c->v));
	if (!c->v)
		return -ENOMEM;
	c->v[c->n++] = (struct expect){GS_MANIFEST_NAME, EXP_MANIFEST, 0, false};
	c->v[c->n++] = (struct expect){GS_INDEX_NAME, EXP_INDEX, 0, false};
	for (size_t i = 0; i < p->n_files; i++)
		c->v[c->n++] = (struct expect){p->files[i].path, EXP_FILE, i, false};
	for (size_t i = 0; i < p->n_links; i++)
		c->v[c->n++] = (struct expect){p->links[i].path, EXP_LINK, i, false};
	qsort(c->v, c->n, sizeof(*c->v), expect_cmp);
	return 0;
}

static struct expect *expect_find(struct verify *c, const char *path)
{
	struct expect key = {.path = path};
	return bsearch(&key, c->v, c->n, sizeof(*c->v), expect_cmp);
}

/* Whether some expected path lies under directory DIR. */
static bool expect_dir(const struct verify *c, const char *dir)
{
	size_t lo = 0, hi = c->n, len = strlen(dir);
	while (lo < hi) { /* first path >= DIR */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(c->v[mid].path, dir) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < c->n && !strncmp(c->v[lo].path, dir, len); lo++)
		if (c->v[lo].path[len] == '/')
			return true;
	return false;
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "regular file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	default: return "special file";
	}
}

/* Whether DIRFD/NAME has file capabilities (or cannot be looked at). */
static bool has_caps(int dirfd, const char *name)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	return fd < 0 || fgetxattr(fd, "security.capability", NULL, 0) >= 0;
}

/* *CAPS: the file has file capabilities (security.capability): a staged
 * program run on the host would gain them. */
static int hash_file(struct verify *c, int dirfd, const char *name, char hex[65], bool *caps,
		     int *err_no)
{
	struct gs_err e = GS_ERR_INIT;
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		*err_no = errno;
		return -1;
	}
	*caps = fgetxattr(fd, "security.capability", NULL, 0) >= 0;
	int r = gs_sha256_fd(fd, c->buf, HASH_CHUNK, hex, &e);
	if (r == -ENOMEM)
		return -2;
	*err_no = -r;
	return r < 0 ? -1 : 0;
}

static int check_file(struct verify *c, int dirfd, const char *name, const char *rel,
		      const struct stat *st, const struct gs_file *f)
{
	if (!S_ISREG(st->st_mode)) {
		mismatch(c, rel, "expected a regular file, found a %s", type_name(st->st_mode));
		return 0;
	}
	if ((st->st_mode & 07777) != f->mode)
		mismatch(c, rel, "mode %04o, expected %04o", (unsigned int)(st->st_mode & 07777),
			 (unsigned int)f->mode);
	if (st->st_nlink != 1)
		mismatch(c, rel, "has %ju hard links, expected 1", (uintmax_t)st->st_nlink);
	if ((uint64_t)st->st_size != f->size) {
		mismatch(c, rel, "size %jd, expected %ju", (intmax_t)st->st_size, (uintmax_t)f->size);
		return 0;
	}
	if (c->cheap) {
		if (has_caps(dirfd, name))
			mismatch(c, rel, "has file capabilities (security.capability), expected none");
		return 0;
	}
	char hex[65];
	bool caps = false;
	int e = 0, r = hash_file(c, dirfd, name, hex, &caps, &e);
	if (r == -2)
		return -ENOMEM;
	if (caps)
		mismatch(c, rel, "has file capabilities (security.capability), expected none");
	if (r < 0)
		mismatch(c, rel, "cannot read: %s", strerror(e));
	else if (strcmp(hex, f->sha256))
		mismatch(c, rel, "content differs (sha256 %s, expected %s)", hex, f->sha256);
	return 0;
}

static void check_link(struct verify *c, int dirfd, const char *name, const char *rel,
		       const struct stat *st, const struct gs_link *l)
{
	char buf[GS_PATH_MAX + 2];
	if (!S_ISLNK(st->st_mode)) {
		mismatch(c, rel, "expected a symlink, found a %s", type_name(st->st_mode));
		return;
	}
	ssize_t n = readlinkat(dirfd, name, buf, sizeof(buf) - 1);
	if (n < 0) {
		mismatch(c, rel, "cannot read link: %s", strerror(errno));
		return;
	}
	buf[n] = '\0';
	if ((size_t)n >= sizeof(buf) - 1 || strcmp(buf, l->target))
		mismatch(c, rel, "link target \"%.*s\", expected \"%s\"", 200, buf, l->target);
}

static void check_manifest(struct verify *c, const char *rel, const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		mismatch(c, rel, "expected a regular file, found a %s", type_name(st->st_mode));
	else if ((st->st_mode & 07777) != 0444)
		mismatch(c, rel, "mode %04o, expected 0444", (unsigned int)(st->st_mode & 07777));
	else if (st->st_nlink != 1)
		mismatch(c, rel, "has %ju hard links, expected 1", (uintmax_t)st->st_nlink);
}

/* The index: a sealed file holding exactly what the manifest makes. */
static int check_index(struct verify *c, int dirfd, const char *rel, const struct stat *st,
		       struct gs_err *err)
{
	check_manifest(c, rel, st);
	if (c->cheap)
		return 0;
	const char *why = NULL;
	int r = gs_index_matches_at(dirfd, c->p, c->info, &why, err);
	if (r == 0)
		mismatch(c, rel, "%s", why);
	return r < 0 ? r : 0;
}

static int walk(struct verify *c, int dirfd, const char *rel, unsigned int depth);

/* Owned as the store is (its owner could rewrite a file every container
 * mounts: chmod is its to make). */
static void check_owner(struct verify *c, const char *rel, const struct stat *st)
{
	if (st->st_uid != c->uid || st->st_gid != c->gid)
		mismatch(c, rel, "owner %ju:%ju, expected %ju:%ju (the store's)", (uintmax_t)st->st_uid,
			 (uintmax_t)st->st_gid, (uintmax_t)c->uid, (uintmax_t)c->gid);
}

static int check_entry(struct verify *c, int dirfd, const char *name, const char *rel,
		       unsigned int depth)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		mismatch(c, rel, "cannot stat: %s", strerror(errno));
		return 0;
	}
	check_owner(c, rel, &st);
	struct expect *e = expect_find(c, rel);
	if (e) {
		e->seen = true;
		switch (e->type) {
		case EXP_FILE:
			return check_file(c, dirfd, name, rel, &st, &c->p->files[e->index]);
		case EXP_LINK:
			check_link(c, dirfd, name, rel, &st, &c->p->links[e->index]);
			return 0;
		case EXP_MANIFEST:
			check_manifest(c, rel, &st);
			return 0;
		case EXP_INDEX: {
			struct gs_err ierr = GS_ERR_INIT;
			if (check_index(c, dirfd, rel, &st, &ierr) < 0)
				mismatch(c, rel, "cannot check: %s", ierr.msg);
			return 0;
		}
		}
	}
	if (!expect_dir(c, rel)) {
		mismatch(c, rel, "unexpected %s", type_name(st.st_mode));
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		mismatch(c, rel, "expected a directory, found a %s", type_name(st.st_mode));
		return 0;
	}
	if ((st.st_mode & 07777) != 0555)
		mismatch(c, rel, "mode %04o, expected 0555", (unsigned int)(st.st_mode & 07777));
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		mismatch(c, rel, "cannot open: %s", strerror(errno));
		return 0;
	}
	int r = walk(c, fd, rel, depth + 1);
	close(fd);
	return r;
}

/* Checks every entry of DIRFD (REL is its path, "" at the top). */
static int walk(struct verify *c, int dirfd, const char *rel, unsigned int depth)
{
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		mismatch(c, *rel ? rel : ".", "cannot list: %s", strerror(errno));
		return 0;
	}
	int r = 0;
	struct dirent *e;
	while (r >= 0 && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char path[GS_PATH_MAX + 512];
		snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		if (depth > WALK_DEPTH_MAX || strlen(path) > GS_PATH_MAX)
			mismatch(c, path, "unexpected entry (too deep or too long)");
		else
			r = check_entry(c, dirfd, e->d_name, path, depth);
	}
	closedir(d);
	return r;
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int verify_tree(struct verify *c, int verfd, struct gs_err *err)
{
	struct stat st;
	if (expect_build(c) < 0)
		return gs_err_setx(err, ENOMEM, "verify: out of memory");
	if (fstat(verfd, &st) < 0)
		return gs_err_set(err, errno, "verify");
	struct stat store;
	bool up = fstatat(verfd, "..", &store, 0) == 0;
	c->uid = up ? store.st_uid : st.st_uid;
	c->gid = up ? store.st_gid : st.st_gid;
	check_owner(c, ".", &st);
	if ((st.st_mode & 07777) != 0555)
		mismatch(c, ".", "mode %04o, expected 0555", (unsigned int)(st.st_mode & 07777));
	if (walk(c, verfd, "", 0) < 0)
		return gs_err_setx(err, ENOMEM, "verify: out of memory");
	/* a missing index is the caller's to rebuild when only looking */
	for (size_t i = 0; i < c->n; i++)
		if (!c->v[i].seen && !(c->cheap && c->v[i].type == EXP_INDEX))
			mismatch(c, c->v[i].path, "missing");
	if (c->oom)
		return gs_err_setx(err, ENOMEM, "verify: out of memory");
	if (c->n_lines)
		qsort(c->lines, c->n_lines, sizeof(*c->lines), line_cmp);
	return 0;
}

static int check_tree(int verfd, const struct gs_manifest *p, const struct gs_manifest_info *info,
		      bool cheap, void (*report_fn)(void *data, const char *line), void *data,
		      size_t *bad, struct gs_err *err)
{
	bool digest_ok = info->digest_ok;
	struct verify c = {.p = p, .info = info, .cheap = cheap};
	c.buf = cheap ? NULL : malloc(HASH_CHUNK);
	int r = cheap || c.buf ? verify_tree(&c, verfd, err)
			       : gs_err_setx(err, ENOMEM, "verify: out of memory");
	if (r >= 0 && !digest_ok)
		mismatch(&c, GS_MANIFEST_NAME, "edited after staging (manifest_sha256 does not match)");
	if (r >= 0 && c.oom)
		r = gs_err_setx(err, ENOMEM, "verify: out of memory");
	for (size_t i = 0; i < c.n_lines; i++) {
		if (r >= 0 && report_fn)
			report_fn(data, c.lines[i]);
		free(c.lines[i]);
	}
	*bad = c.n_lines;
	free(c.lines);
	free(c.v);
	free(c.buf);
	return r;
}

int gs_manifest_check_tree(int verfd, const struct gs_manifest *p,
			   const struct gs_manifest_info *info,
			   void (*report_fn)(void *data, const char *line), void *data,
			   size_t *bad, struct gs_err *err)
{
	return check_tree(verfd, p, info, false, report_fn, data, bad, err);
}

int gs_manifest_tree_intact(int verfd, const struct gs_manifest *p,
			    const struct gs_manifest_info *info, struct gs_err *err)
{
	size_t bad = 0;
	int r = check_tree(verfd, p, info, true, NULL, NULL, &bad, err);
	return r < 0 ? r : bad == 0;
}
