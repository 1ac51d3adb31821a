/* SPDX-License-Identifier: Apache-2.0 */
/* Refreshing the container's ld.so.cache without running any ldconfig:
 * the image's entries (minus stale ones of ours) plus the staged ones,
 * added first so that among equal names the staged library wins (ld.so
 * takes the first matching entry of the sorted cache), sorted as ldconfig
 * sorts.
 *
 * Defined behaviour for odd images:
 *   - a musl image (its loader reads no ld.so.cache): its
 *     /etc/ld-musl-x86_64.path instead, the staged directories first, then
 *     the image's own entries or musl's default;
 *   - no dynamic loader at all (static-only): nothing is written;
 *   - no /etc/ld.so.cache, or one that is corrupt, too large, a symlink or
 *     not a regular file: a cache holding the staged entries only (the
 *     loader ignored the old one anyway, so every other library resolves
 *     exactly as before: through the default directories);
 *   - read-only root: the new cache is written into our tmpfs and bound
 *     over /etc/ld.so.cache, which must exist as a regular file (or be
 *     the null device gpu-runtime declares as its mount point); else the
 *     hook fails (the container does not start) rather than start it
 *     without the driver in its loader's cache: nothing may be created in
 *     a read-only image, and a symlink is never followed. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/ldcache.h"
#include "internal.h"

#define GENERATOR "gpu-stage-hook " GS_VERSION

/* The caches written here (gs_write_atomic_at) are not fsynced: they are
 * rewritten at every start. */

/* Which loader the image has: 1 glibc, 0 musl, -1 neither. */
static int image_loader(int rootfd)
{
	static const char *const glibc[] = {"/lib64/ld-linux-x86-64.so.2",
					    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
					    "/usr/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux.so.2"};
	struct gs_err e = GS_ERR_INIT;
	for (size_t i = 0; i < sizeof(glibc) / sizeof(glibc[0]); i++) {
		int fd = gs_open_in_root(rootfd, glibc[i], O_PATH, &e);
		if (fd >= 0) {
			close(fd);
			return 1;
		}
	}
	int fd = gs_open_in_root(rootfd, "/lib/ld-musl-x86_64.so.1", O_PATH, &e);
	if (fd >= 0)
		close(fd);
	return fd >= 0 ? 0 : -1;
}

/* The null device: the mount point gpu-runtime declares (a bind of
 * /dev/null) where a read-only image has no cache of its own. */
static bool is_null_dev(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(1, 3);
}

/* Opens ETCFD/ld.so.cache for reading: never through a symlink, never a
 * FIFO or device (it is first opened O_PATH, which runs no driver's open:
 * opening a FIFO releases its writer, a watchdog device arms the host's
 * watchdog), never a huge file.  Only a regular file is then reopened for
 * reading, through its /proc/self/fd link (the same inode, whatever
 * happens to the name meanwhile).  Returns the fd, or -1 with WHY saying
 * why the image's cache is not used. */
static int open_existing(int etcfd, char *why, size_t whylen)
{
	int fd = gs_open_beneath(etcfd, "ld.so.cache", O_PATH | O_NOFOLLOW, 0);
	struct stat st;
	if (fd < 0) {
		snprintf(why, whylen, errno == ENOENT ? "image has no ld.so.cache"
				      : errno == ELOOP ? "image's ld.so.cache is a symlink (not followed)"
						       : "image's ld.so.cache unreadable");
		return -1;
	}
	_cleanup_close_ int pfd = (int)fd;
	if (fstat(pfd, &st) < 0) {
		snprintf(why, whylen, "image's ld.so.cache cannot be looked at (%s)", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, is_null_dev(&st) ? "image has no ld.so.cache (the runtime's /dev/null mount point)"
						       : "image's ld.so.cache is not a regular file");
		return -1;
	}
	if ((uint64_t)st.st_size > LDC_FILE_MAX) {
		snprintf(why, whylen,
			 "image's ld.so.cache is too large (%lld bytes, at most %u; corrupt or hostile): not read",
			 (long long)st.st_size, LDC_FILE_MAX);
		return -1;
	}
	int rfd = gs_reopen(pfd, O_RDONLY);
	if (rfd < 0)
		snprintf(why, whylen, "image's ld.so.cache unreadable");
	return rfd;
}

static bool ours(const struct ldc_entry *e, void *data)
{
	(void)data;
	return !strncmp(e->value, OVL_ANCHOR "/", strlen(OVL_ANCHOR) + 1);
}

/* The new cache: staged entries first, then the image's (if usable and
 * WITH_IMAGE).  When the image's cache can be spliced (ldc_cache_splice:
 * the common case, a cache ldconfig wrote), the new file's bytes come back
 * in *BUF at once and *OUT stays NULL: its strings are copied as they are,
 * none rewritten, which is what keeps a start with a 2,000-library image
 * near a minimal one's cost. */
/* What the image changes in the staged entries: its newer CUDA compat
 * libraries take their place (compat.c), and those its libc is too old
 * for are left out (glibc.c; GLIBC_DEF 0: none). */
struct image_view {
	const struct ovl_compat *compat;
	uint32_t glibc_def;
};

static int merge(const struct ovl_op *o, const struct image_view *iv, int etcfd, bool with_image,
		 struct ldc_cache **out, void **buf, size_t *len, char *why, size_t whylen,
		 struct gs_err *err)
{
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	_cleanup_(ldc_cache_freep) struct ldc_cache *old = NULL;
	const struct ovl_compat *compat = iv->compat;
	int r = ldc_cache_new(&c, err);
	for (size_t i = 0; r >= 0 && i < o->n_entries; i++) {
		if (ovl_glibc_left_out(&o->entries[i], iv->glibc_def))
			continue;
		/* the image's newer CUDA compat library takes the staged
		 * entry's place: first among equal keys */
		const char *v = ovl_compat_value(compat, o->entries[i].key, o->entries[i].flags);
		struct ldc_entry e = {.key = o->entries[i].key, .value = v ? v : o->entries[i].value,
				      .flags = o->entries[i].flags};
		r = ldc_cache_add(c, &e, err);
	}
	if (r < 0)
		return r;
	_cleanup_close_ int fd = with_image ? open_existing(etcfd, why, whylen) : -1;
	struct gs_err lerr = GS_ERR_INIT;
	if (fd >= 0 && ldc_cache_load_fd(fd, OVL_LDCACHE, &old, &lerr) < 0) {
		if (lerr.code == ENOMEM)
			return gs_err_setx(err, ENOMEM, "%s", lerr.msg);
		snprintf(why, whylen, "image's ld.so.cache is corrupt (%.200s)", lerr.msg);
	}
	if (old) {
		ldc_cache_remove_if(old, ours, NULL);
		size_t kept = ldc_cache_count(old);
		snprintf(why, whylen, "merged: %zu staged + %zu image entries", o->n_entries, kept);
		ldc_cache_sort(c);
		/* 1: not spliceable (laid out unlike ldconfig's, or it held
		 * entries of ours, from an earlier start: rewritten whole) */
		r = ldc_cache_splice(old, c, GENERATOR, buf, len, err);
		if (r <= 0)
			return r;
		/* no string of the image's cache is copied (ldc_cache_append) */
		r = ldc_cache_append(c, old, err);
	}
	if (r < 0)
		return r;
	ldc_cache_sort(c);
	*out = steal_ptr(&c);
	return 0;
}

/* Read-only root: the cache goes into the anchor and is bound over
 * /etc/ld.so.cache, which must already be a regular file (or the null
 * device, the runtime's mount point for an image without one). */
static int bind_file(struct ovl_ctx *c, size_t i, int etcfd, const char *name, const void *buf,
		     size_t len, struct gs_err *err)
{
	char dest[64];
	snprintf(dest, sizeof(dest), "/etc/%s", name);
	if (c->anchorfd < 0)
		return gs_err_setx(err, EINVAL, "no anchor for %s", dest);
	long t = gs_open_beneath(etcfd, name, O_PATH | O_NOFOLLOW, 0);
	struct stat st;
	if (t < 0 || fstat((int)t, &st) < 0 || !(S_ISREG(st.st_mode) || is_null_dev(&st))) {
		if (t >= 0)
			close((int)t);
		return gs_err_setx(err, EROFS,
				   "the container's /etc is read-only or not on its root file system (a volume?), and its %s is not a regular file that could be covered (missing, or a symlink, which is never followed): the driver libraries cannot be made visible to its loader; refusing rather than starting it without them",
				   dest);
	}
	_cleanup_close_ int target = (int)t;
	int r = gs_write_atomic_at(c->anchorfd, name, buf, len, 0644, 0, err);
	if (r < 0)
		return r;
	_cleanup_close_ int src = openat(c->anchorfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (src < 0)
		return gs_err_set(err, errno, OVL_ANCHOR "/%s", name);
	_cleanup_close_ int tree = ovl_clone_ro(src, name, err);
	if (tree < 0)
		return tree;
	snprintf(c->res->ops[i].where, sizeof(c->res->ops[i].where),
		 OVL_ANCHOR "/%s bound over %s", name, dest);
	return ovl_attach_private(c, tree, target, dest, err);
}

/* ---- musl: /etc/ld-musl-x86_64.path ---------------------------------------------- */

#define MUSL_PATH "ld-musl-x86_64.path"
#define MUSL_PATH_MAX 65536 /* a larger image file is not read */

/* Appends DIR (N bytes) and a newline to B unless it is there already;
 * false when B is full. */
static bool musl_add(char *b, size_t size, size_t *len, const char *dir, size_t n)
{
	for (const char *p = b; p < b + *len;) {
		size_t m = strcspn(p, "\n");
		if (m == n && !memcmp(p, dir, n))
			return true;
		p += m + 1;
	}
	if (*len + n + 2 > size)
		return false;
	memcpy(b + *len, dir, n);
	*len += n;
	b[(*len)++] = '\n';
	b[*len] = '\0';
	return true;
}

/* The new path file: the staged libraries' directories first, then the
 * image's own entries (musl splits them at ':' and newlines) less stale
 * ones of ours, or, when the image has none, musl's built-in default
 * (the file replaces it).  Not static: tests/fuzz/fuzz_musl.c reads through it. */
int ovl_musl_build(const struct ovl_op *o, int etcfd, char **out, size_t *len, char *why,
		   size_t whylen, struct gs_err *err)
{
	size_t size = MUSL_PATH_MAX + 4096, n = 0, ours = 0;
	_cleanup_free_ char *b = malloc(size);
	if (!b)
		return gs_err_setx(err, ENOMEM, "out of memory");
	b[0] = '\0';
	for (size_t i = 0; i < o->n_entries; i++) {
		const char *v = o->entries[i].value, *slash = strrchr(v, '/');
		size_t before = n;
		if (slash && slash > v && !musl_add(b, size, &n, v, (size_t)(slash - v)))
			return gs_err_setx(err, EFBIG, "/etc/" MUSL_PATH ": too many directories");
		ours += n != before;
	}
	_cleanup_free_ char *img = NULL;
	size_t img_len = 0;
	int fd = gs_open_beneath(etcfd, MUSL_PATH, O_PATH | O_NOFOLLOW, 0);
	struct stat st;
	bool have = false;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= MUSL_PATH_MAX) {
		_cleanup_close_ int rfd = gs_reopen(fd, O_RDONLY);
		struct gs_err e = GS_ERR_INIT;
		have = rfd >= 0 && gs_read_all_fd(rfd, MUSL_PATH_MAX, MUSL_PATH, &img, &img_len, &e) >= 0;
	}
	if (fd >= 0)
		close(fd);
	size_t kept = 0;
	if (have) {
		for (size_t p = 0; p < img_len;) {
			size_t m = p;
			while (m < img_len && img[m] != ':' && img[m] != '\n')
				m++;
			bool stale = m - p > strlen(OVL_ANCHOR) && !memcmp(img + p, OVL_ANCHOR "/", strlen(OVL_ANCHOR) + 1);
			size_t before = n;
			if (m > p && !stale && !memchr(img + p, '\0', m - p) &&
			    !musl_add(b, size, &n, img + p, m - p))
				return gs_err_setx(err, EFBIG, "/etc/" MUSL_PATH ": too long once merged");
			kept += n != before;
			p = m + 1;
		}
	} else {
		static const char *const defaults[] = {"/lib", "/usr/local/lib", "/usr/lib"};
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
			(void)musl_add(b, size, &n, defaults[i], strlen(defaults[i]));
	}
	snprintf(why, whylen, "musl image: /etc/" MUSL_PATH " written, %zu staged director%s first, then %s",
		 ours, ours == 1 ? "y" : "ies",
		 have ? (kept ? "the image's entries" : "none of the image's (all stale)")
		      : "musl's default /lib:/usr/local/lib:/usr/lib");
	*out = steal_ptr(&b);
	*len = n;
	return 0;
}

/* musl reads no ld.so.cache: its loader searches the directories of
 * /etc/ld-musl-x86_64.path, which is written like the cache (into the
 * image; on a read-only root over the image's own file, which must
 * exist). */
static int install(struct ovl_ctx *c, size_t i, int etcfd, const char *name, const void *buf,
		   size_t len, struct gs_err *err);

static int musl_apply(struct ovl_ctx *c, size_t i, struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	_cleanup_close_ int etcfd = ovl_dir_open(c, "/etc", true, err);
	if (etcfd < 0)
		return (o->flags & OVL_F_OPTIONAL) ? ovl_skip(c, i, "%s", err->msg) : etcfd;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = ovl_musl_build(o, etcfd, &buf, &len, c->res->ldcache, sizeof(c->res->ldcache), err);
	return r < 0 ? r : install(c, i, etcfd, MUSL_PATH, buf, len, err);
}

/* The bytes of the new cache.  An image cache that is valid but makes the
 * merged one larger than a cache may be (LDC_FILE_MAX) is left out like a
 * corrupt one: the staged entries alone, and WHY says so. */
static int build(const struct ovl_op *o, const struct image_view *iv, int etcfd, void **buf,
		 size_t *len, char *why, size_t whylen, struct gs_err *err)
{
	char note[400] = "";
	for (int with_image = 1; with_image >= 0; with_image--) {
		_cleanup_(ldc_cache_freep) struct ldc_cache *cache = NULL;
		struct gs_err e = GS_ERR_INIT;
		*buf = NULL;
		int r = merge(o, iv, etcfd, with_image, &cache, buf, len, note, sizeof(note), &e);
		if (r >= 0 && !*buf)
			r = ldc_cache_serialize(cache, GENERATOR, buf, len, &e);
		if (r >= 0) {
			if (with_image)
				snprintf(why, whylen, "%s", note);
			return 0;
		}
		if (e.code != EFBIG || !with_image) {
			*err = e;
			return r;
		}
		snprintf(why, whylen, "image's ld.so.cache too large once merged (%.150s): staged entries only",
			 e.msg);
	}
	return 0;
}

/* BUF as /etc/NAME: written into the image (a new file renamed over the
 * old one); on a read-only root, or when /etc is a volume (the image's
 * symlink into one, or the runtime's: the file there may be the host's),
 * bound over the image's file instead, which is covered, not replaced. */
static int install(struct ovl_ctx *c, size_t i, int etcfd, const char *name, const void *buf,
		   size_t len, struct gs_err *err)
{
	if (c->plan->ops[i].flags & OVL_F_BIND_CACHE)
		return bind_file(c, i, etcfd, name, buf, len, err);
	int r = ovl_on_root(c, etcfd, "/etc", err);
	if (r < 0)
		return r;
	if (r == 0)
		return bind_file(c, i, etcfd, name, buf, len, err);
	char dest[64];
	snprintf(dest, sizeof(dest), "/etc/%s", name);
	r = ovl_may_create(c, etcfd, dest, err);
	return r < 0 ? r : gs_write_atomic_at(etcfd, name, buf, len, 0644, GS_WRITE_NEW_IN_PLACE, err);
}

int ovl_apply_ldcache(struct ovl_ctx *c, size_t i, struct gs_err *err)
{
	const struct ovl_op *o = &c->plan->ops[i];
	int loader = image_loader(c->rootfd);
	if (loader == 0)
		return musl_apply(c, i, err);
	if (loader < 0) {
		snprintf(c->res->ldcache, sizeof(c->res->ldcache),
			 "not written: no dynamic loader in the image (glibc or musl)");
		return ovl_skip(c, i, "%s", c->res->ldcache + 13);
	}
	_cleanup_close_ int etcfd = ovl_dir_open(c, "/etc", true, err);
	if (etcfd < 0)
		return (o->flags & OVL_F_OPTIONAL) ? ovl_skip(c, i, "%s", err->msg) : etcfd;
	_cleanup_(ovl_compat_clear) struct ovl_compat compat = {0};
	if (ovl_compat_find(c->rootfd, c->plan->cuda_compat_dir, o, c->plan->driver, &compat) < 0)
		return gs_err_setx(err, ENOMEM, "%s: out of memory", o->dest);
	snprintf(c->res->cuda_compat, sizeof(c->res->cuda_compat), "%s", compat.why);
	struct image_view iv = {.compat = &compat};
	if (ovl_glibc_needed(o) > OVL_GLIBC_FLOOR) {
		iv.glibc_def = ovl_image_glibc(c->rootfd);
		ovl_glibc_note(o, iv.glibc_def, c->res->glibc, sizeof(c->res->glibc), &c->res->glibc_left_out);
	}
	_cleanup_free_ void *buf = NULL;
	size_t len = 0;
	int r = build(o, &iv, etcfd, &buf, &len, c->res->ldcache, sizeof(c->res->ldcache), err);
	if (r < 0)
		return r;
	r = install(c, i, etcfd, "ld.so.cache", buf, len, err);
	c->compat_first = r >= 0 && compat.used;
	return r;
}
