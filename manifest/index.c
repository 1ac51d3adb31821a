/* SPDX-License-Identifier: Apache-2.0 */
/* STORE/VER/index: what a container start needs of a staged driver, worked
 * out once at staging time, in a form read with one read() and no parser
 * beyond splitting lines.  manifest.json stays the record of truth; the
 * index is derived from it (gs_index_format is a pure function of the
 * manifest and manifest.json's bytes), so verify rebuilds it and compares
 * byte for byte.
 *
 * Format 2, text, one record per line, fields separated by one TAB, no
 * field holding a control character:
 *
 *   gpu-stage-index<TAB>2
 *   driver<TAB>VER
 *   arch<TAB>ARCH
 *   manifest<TAB>SIZE<TAB>SHA256        manifest.json's size and digest
 *   files<TAB>N
 *   F<TAB>KIND<TAB>CAPS<TAB>SIZE<TAB>SHA256<TAB>SONAME<TAB>SOURCE<TAB>PATH
 *                                       N times, in manifest order
 *   cache<TAB>M
 *   C<TAB>FLAGS<TAB>GLIBC<TAB>DIR<TAB>KEY<TAB>FILE          M times
 *   end<TAB>CRC32                       of every byte before this line
 *
 * KIND is lib, lib32, bin, firmware or config; CAPS hexadecimal bits;
 * SONAME empty when the file has none; SOURCE the host file it was staged
 * from (for the audit record).  GLIBC (hexadecimal, GS_GLIBC; 0 none) is
 * the highest GLIBC_x.y the entry's library needs of libc.so.6 (format 2:
 * the hook leaves out entries an image's older libc cannot serve; a format
 * 1 index is refused, and staging again rebuilds it).  The C lines are the ld.so.cache
 * entries the staged library directories give (DIR is lib/<cap> or
 * lib32/<cap>, the entry's value DIR/FILE under the container's anchor),
 * already in ldconfig's order, equal keys in directory order: any subset
 * of them, in this order, is still sorted, so a container start merges
 * them with the image's cache without sorting them.  They are computed
 * here from the manifest's SONAMEs and links as ldconfig would from the
 * files: one entry per SONAME and directory, the SONAME link named when
 * it is staged, and a development link ("libcuda.so") kept when it leads
 * to a library whose SONAME starts with its name. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/ldcache.h"
#include "gs/manifest.h"

#define MAGIC "gpu-stage-index"
#define FLAGS_X8664 (LDC_FLAG_X8664_LIB64 | LDC_FLAG_ELF_LIBC6)
#define FLAGS_I386 LDC_FLAG_ELF_LIBC6
#define MAX_LINK_HOPS 8

void gs_index_free(struct gs_index *x)
{
	if (!x)
		return;
	free(x->files);
	free(x->cache);
	free(x->buf);
	free(x);
}

/* ---- the cache entries, from the manifest --------------------------------------- */

struct centry {
	const char *dir, *key, *file;
	int32_t flags;
	uint32_t glibc;
	size_t seq; /* insertion order: ties keep it (ldconfig's directory order) */
};

struct cbuild {
	const struct gs_manifest *m;
	struct centry *v;
	size_t n, cap;
	char dirs[2 * GS_N_CAPS][24]; /* "lib/<cap>", "lib32/<cap>": entries point here */
};

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Whether PATH is DIR/NAME for some single component NAME. */
static bool in_dir(const char *path, const char *dir, size_t dl)
{
	return !strncmp(path, dir, dl) && path[dl] == '/' && path[dl + 1] &&
	       !strchr(path + dl + 1, '/');
}

static bool dso_name(const char *n)
{
	return (!strncmp(n, "lib", 3) && strstr(n, ".so")) || !strncmp(n, "ld-", 3);
}

/* The manifest file DIR/NAME, following links inside DIR; -1 when there is
 * none or the chain leaves DIR. */
static ssize_t resolve_in_dir(const struct gs_manifest *m, const char *dir, const char *name)
{
	size_t dl = strlen(dir);
	for (int hop = 0; hop < MAX_LINK_HOPS; hop++) {
		if (!gs_name_ok(name))
			return -1;
		const char *next = NULL;
		for (size_t i = 0; i < m->n_files; i++)
			if (in_dir(m->files[i].path, dir, dl) &&
			    !strcmp(m->files[i].path + dl + 1, name))
				return (ssize_t)i;
		for (size_t i = 0; i < m->n_links && !next; i++)
			if (in_dir(m->links[i].path, dir, dl) && !strcmp(m->links[i].path + dl + 1, name))
				next = m->links[i].target;
		if (!next)
			return -1;
		name = next;
	}
	return -1;
}

static int push(struct cbuild *b, const char *dir, const char *key, const char *file,
		int32_t flags, uint32_t glibc)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->v[i].dir == dir && !strcmp(b->v[i].key, key))
			return 0; /* one entry per key and directory, as ldconfig */
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		struct centry *v = realloc(b->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n] = (struct centry){dir, key, file, flags, glibc, b->n};
	b->n++;
	return 0;
}

/* The entries of one staged library directory DIR ("lib/compute"). */
static int dir_entries(struct cbuild *b, const char *dir, int32_t flags)
{
	const struct gs_manifest *m = b->m;
	size_t dl = strlen(dir);
	for (size_t i = 0; i < m->n_files; i++) {
		const struct gs_file *f = &m->files[i];
		if (!in_dir(f->path, dir, dl) || (f->kind != GS_KIND_LIB && f->kind != GS_KIND_LIB32))
			continue;
		const char *name = base_name(f->path);
		if (!dso_name(name))
			continue;
		const char *key = f->soname && gs_name_ok(f->soname) ? f->soname : name;
		const char *file = resolve_in_dir(m, dir, key) >= 0 ? key : name;
		if (push(b, dir, key, file, flags, f->glibc) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < m->n_links; i++) {
		const char *path = m->links[i].path;
		if (!in_dir(path, dir, dl))
			continue;
		const char *name = base_name(path);
		size_t nl = strlen(name);
		if (nl < 4 || strcmp(name + nl - 3, ".so"))
			continue;
		ssize_t t = resolve_in_dir(m, dir, name);
		const char *so = t >= 0 ? m->files[t].soname : NULL;
		if (!so || strncmp(name, so, nl) || !strcmp(name, so))
			continue;
		if (push(b, dir, name, name, flags, m->files[t].glibc) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int centry_cmp(const void *pa, const void *pb)
{
	const struct centry *a = pa, *b = pb;
	struct ldc_entry ea = {.key = a->key, .flags = a->flags};
	struct ldc_entry eb = {.key = b->key, .flags = b->flags};
	int r = ldc_entry_cmp(&ea, &eb);
	if (r)
		return r;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Every staged library directory's entries, sorted.  The directory names
 * live in B->dirs (so entries compare them by pointer). */
static int cache_entries(const struct gs_manifest *m, struct cbuild *b)
{
	*b = (struct cbuild){.m = m};
	for (size_t top = 0; top < 2; top++) {
		for (size_t c = 0; c < GS_N_CAPS; c++) {
			char *dir = b->dirs[top * GS_N_CAPS + c];
			snprintf(dir, sizeof(b->dirs[0]), "%s/%s", top ? "lib32" : "lib",
				 gs_cap_name(gs_cap_order[c]));
			if (dir_entries(b, dir, top ? FLAGS_I386 : FLAGS_X8664) < 0) {
				free(b->v);
				return -ENOMEM;
			}
		}
	}
	if (b->n > 1)
		qsort(b->v, b->n, sizeof(*b->v), centry_cmp);
	return 0;
}

/* ---- writing ------------------------------------------------------------------------ */

static bool field_ok(const char *s)
{
	return s && !gs_has_control(s);
}

int gs_index_format(const struct gs_manifest *m, uint64_t manifest_size,
		    const char *manifest_sha256, char **out, size_t *len, struct gs_err *err)
{
	*out = NULL;
	if (!field_ok(m->driver) || !field_ok(m->arch) || !field_ok(manifest_sha256))
		return gs_err_setx(err, EINVAL, "index: the manifest's driver, arch or digest holds a control character");
	for (size_t i = 0; i < m->n_files; i++) {
		const struct gs_file *f = &m->files[i];
		if (!field_ok(f->path) || (f->soname && !field_ok(f->soname)) || !field_ok(f->sha256) ||
		    !field_ok(f->source))
			return gs_err_setx(err, EINVAL, "index: files[%zu] holds a control character", i);
	}
	struct cbuild b;
	if (cache_entries(m, &b) < 0)
		return gs_err_setx(err, ENOMEM, "index: out of memory");
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	if (!f) {
		free(b.v);
		return gs_err_setx(err, ENOMEM, "index: out of memory");
	}
	fprintf(f, MAGIC "\t%d\ndriver\t%s\narch\t%s\nmanifest\t%" PRIu64 "\t%s\nfiles\t%zu\n",
		GS_INDEX_FORMAT, m->driver, m->arch, manifest_size, manifest_sha256, m->n_files);
	for (size_t i = 0; i < m->n_files; i++) {
		const struct gs_file *x = &m->files[i];
		fprintf(f, "F\t%s\t%x\t%" PRIu64 "\t%s\t%s\t%s\t%s\n", gs_kind_name(x->kind), x->caps,
			x->size, x->sha256, x->soname ? x->soname : "", x->source, x->path);
	}
	fprintf(f, "cache\t%zu\n", b.n);
	for (size_t i = 0; i < b.n; i++)
		fprintf(f, "C\t%d\t%x\t%s\t%s\t%s\n", (int)b.v[i].flags, b.v[i].glibc, b.v[i].dir,
			b.v[i].key, b.v[i].file);
	free(b.v);
	if (fclose(f) != 0) {
		free(text);
		return gs_err_setx(err, ENOMEM, "index: out of memory");
	}
	char tail[32];
	if (n + sizeof(tail) > GS_INDEX_MAX) {
		free(text);
		return gs_err_setx(err, EFBIG, "index: %zu bytes, more than the %u a reader takes (not written)",
				   n, GS_INDEX_MAX);
	}
	uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)text, (uInt)n);
	int tl = snprintf(tail, sizeof(tail), "end\t%08lx\n", crc);
	char *all = realloc(text, n + (size_t)tl + 1);
	if (!all) {
		free(text);
		return gs_err_setx(err, ENOMEM, "index: out of memory");
	}
	memcpy(all + n, tail, (size_t)tl + 1);
	*out = all;
	*len = n + (size_t)tl;
	return 0;
}

/* ---- reading ------------------------------------------------------------------------ */

struct rctx {
	const char *name;
	char *p, *end; /* the next line */
	size_t line;
	struct gs_err *err;
};

__attribute__((format(printf, 2, 3))) static int bad(struct rctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return gs_err_setx(c->err, EBADMSG, "%s: line %zu: %s", c->name, c->line, msg);
}

/* Splits the next line into exactly N fields (NUL-terminated in place);
 * the first must be TAG. */
static int fields(struct rctx *c, char **f, size_t n, const char *tag)
{
	c->line++;
	char *nl = c->p < c->end ? memchr(c->p, '\n', (size_t)(c->end - c->p)) : NULL;
	if (!nl)
		return bad(c, "truncated (expected a '%s' line)", tag);
	*nl = '\0';
	for (const unsigned char *u = (const unsigned char *)c->p; *u; u++)
		if ((*u < 0x20 && *u != '\t') || *u == 0x7f)
			return bad(c, "control character in a '%s' line", tag);
	size_t k = 0;
	bool more = false;
	for (char *s = c->p;;) {
		f[k++] = s;
		char *t = strchr(s, '\t');
		if (!t)
			break;
		*t = '\0';
		s = t + 1;
		if (k == n) {
			more = true;
			break;
		}
	}
	if (strcmp(f[0], tag))
		return bad(c, "expected a '%s' line, found '%.40s'", tag, f[0]);
	if (more || k != n)
		return bad(c, "expected %zu fields in a '%s' line, found %s%zu", n, tag,
			   more ? "more than " : "", k);
	c->p = nl + 1;
	return 0;
}

static int number(struct rctx *c, const char *s, int base, uint64_t max, uint64_t *out)
{
	/* digits only: no sign, blank or "0x" that strtoull would take */
	const char *digits = base == 16 ? "0123456789abcdef" : "0123456789";
	char *e;
	errno = 0;
	bool ok = *s && strspn(s, digits) == strlen(s) && strlen(s) <= 20;
	unsigned long long v = ok ? strtoull(s, &e, base) : 0;
	if (!ok || *e || errno || v > max)
		return bad(c, "'%.40s' is not a number in range", s);
	*out = v;
	return 0;
}

static bool is_hex64(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int read_file_line(struct rctx *c, struct gs_index_file *x)
{
	char *f[8] = {0};
	uint64_t caps, size;
	int r = fields(c, f, 8, "F");
	if (r < 0)
		return r;
	enum gs_kind kind;
	if (gs_kind_parse(f[1], &kind) < 0)
		return bad(c, "unknown kind '%.40s'", f[1]);
	if ((r = number(c, f[2], 16, GS_CAP_ALL, &caps)) < 0 ||
	    (r = number(c, f[3], 10, UINT64_MAX, &size)) < 0)
		return r;
	if (!is_hex64(f[4]))
		return bad(c, "bad sha256");
	if (f[5][0] && !gs_name_ok(f[5]))
		return bad(c, "bad soname '%.40s'", f[5]);
	if (f[6][0] != '/')
		return bad(c, "source '%.80s' is not an absolute path", f[6]);
	const char *why = gs_store_path_check(f[7]);
	if (why)
		return bad(c, "path '%.80s': %s", f[7], why);
	*x = (struct gs_index_file){.path = f[7], .soname = f[5][0] ? f[5] : NULL, .source = f[6],
				    .sha256 = f[4], .size = size, .kind = kind,
				    .caps = (unsigned int)caps};
	return 0;
}

/* A cache line's DIR: lib/<cap> or lib32/<cap>. */
static bool cache_dir_ok(const char *d)
{
	const char *cap = !strncmp(d, "lib/", 4) ? d + 4 : !strncmp(d, "lib32/", 6) ? d + 6 : NULL;
	return cap && gs_cap_bit(cap, strlen(cap)) != 0;
}

static int read_cache_line(struct rctx *c, struct gs_index_entry *x, const struct gs_index_entry *prev)
{
	char *f[6] = {0};
	uint64_t flags, glibc;
	int r = fields(c, f, 6, "C");
	if (r < 0)
		return r;
	if ((r = number(c, f[1], 10, INT32_MAX, &flags)) < 0 ||
	    (r = number(c, f[2], 16, 0xffffff, &glibc)) < 0)
		return r;
	if (!cache_dir_ok(f[3]))
		return bad(c, "'%.40s' is not a staged library directory", f[3]);
	if (!gs_name_ok(f[4]) || !gs_name_ok(f[5]))
		return bad(c, "bad cache key or file name");
	*x = (struct gs_index_entry){.dir = f[3], .key = f[4], .file = f[5], .flags = (int32_t)flags,
				     .glibc = (uint32_t)glibc};
	if (prev) {
		struct ldc_entry a = {.key = prev->key, .flags = prev->flags};
		struct ldc_entry b = {.key = x->key, .flags = x->flags};
		if (ldc_entry_cmp(&a, &b) > 0)
			return bad(c, "cache entries out of ldconfig's order");
	}
	return 0;
}

static int read_head(struct rctx *c, struct gs_index *x, uint64_t *nf)
{
	char *f[3] = {0};
	uint64_t v;
	int r = fields(c, f, 2, MAGIC);
	if (r < 0)
		return gs_err_wrap(c->err, "not a gpu-stage index");
	if (strcmp(f[1], GS_STR(GS_INDEX_FORMAT)))
		return gs_err_setx(c->err, EPROTO, "%s: index format %.20s, this gpu-stage reads format %d",
				   c->name, f[1], GS_INDEX_FORMAT);
	if ((r = fields(c, f, 2, "driver")) < 0)
		return r;
	x->driver = f[1];
	if (!gs_version_valid(x->driver))
		return bad(c, "'%.40s' is not a driver version", x->driver);
	if ((r = fields(c, f, 2, "arch")) < 0)
		return r;
	x->arch = f[1];
	if ((r = fields(c, f, 3, "manifest")) < 0 || (r = number(c, f[1], 10, UINT64_MAX, &v)) < 0)
		return r;
	x->manifest_size = v;
	if (!is_hex64(f[2]))
		return bad(c, "bad manifest digest");
	x->manifest_sha256 = f[2];
	if ((r = fields(c, f, 2, "files")) < 0)
		return r;
	/* a count no larger than the lines left could hold (each F line is
	 * over 64 bytes: its sha256): nothing is allocated for more */
	return number(c, f[1], 10, (uint64_t)(c->end - c->p) / 64, nf);
}

static int read_body(struct rctx *c, struct gs_index *x)
{
	uint64_t nf, nc;
	int r = read_head(c, x, &nf);
	if (r < 0)
		return r;
	if (nf && !(x->files = calloc(nf, sizeof(*x->files))))
		return gs_err_setx(c->err, ENOMEM, "%s: out of memory", c->name);
	for (x->n_files = 0; x->n_files < nf; x->n_files++)
		if ((r = read_file_line(c, &x->files[x->n_files])) < 0)
			return r;
	char *f[2] = {0};
	/* each C line is at least 10 bytes */
	if ((r = fields(c, f, 2, "cache")) < 0 ||
	    (r = number(c, f[1], 10, (uint64_t)(c->end - c->p) / 10, &nc)) < 0)
		return r;
	if (nc && !(x->cache = calloc(nc, sizeof(*x->cache))))
		return gs_err_setx(c->err, ENOMEM, "%s: out of memory", c->name);
	for (x->n_cache = 0; x->n_cache < nc; x->n_cache++) {
		if ((r = read_cache_line(c, &x->cache[x->n_cache],
					 x->n_cache ? &x->cache[x->n_cache - 1] : NULL)) < 0)
			return r;
		if (x->cache[x->n_cache].glibc > x->glibc_max)
			x->glibc_max = x->cache[x->n_cache].glibc;
	}
	return 0;
}

/* The last line, "end<TAB>CRC32\n", checked before anything else is read. */
static int check_crc(struct rctx *c, char *buf, size_t len)
{
	if (len < 2 || buf[len - 1] != '\n')
		return gs_err_setx(c->err, EBADMSG, "%s: truncated (no final newline)", c->name);
	char *last = memrchr(buf, '\n', len - 1);
	last = last ? last + 1 : buf;
	char *end;
	errno = 0;
	unsigned long want = strncmp(last, "end\t", 4) ? 0 : strtoul(last + 4, &end, 16);
	if (strncmp(last, "end\t", 4) || errno || end != buf + len - 1 || end - (last + 4) != 8)
		return gs_err_setx(c->err, EBADMSG, "%s: truncated (no 'end' line)", c->name);
	size_t body = (size_t)(last - buf);
	uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)buf, (uInt)body);
	if (crc != want)
		return gs_err_setx(c->err, EBADMSG, "%s: checksum mismatch (corrupt or edited)", c->name);
	c->end = last;
	return 0;
}

int gs_index_parse(char *buf, size_t len, const char *name, struct gs_index **out,
		   struct gs_err *err)
{
	*out = NULL;
	struct gs_index *x = calloc(1, sizeof(*x));
	if (!x) {
		free(buf);
		return gs_err_setx(err, ENOMEM, "%s: out of memory", name);
	}
	x->buf = buf;
	x->len = len;
	struct rctx c = {.name = name, .p = buf, .err = err};
	int r = len > GS_INDEX_MAX ? gs_err_setx(err, EFBIG, "%s: larger than %u bytes", name, GS_INDEX_MAX)
				   : check_crc(&c, buf, len);
	if (r >= 0)
		r = read_body(&c, x);
	if (r >= 0 && c.p != c.end) {
		c.line++;
		r = bad(&c, "unexpected line after the cache entries");
	}
	if (r < 0) {
		gs_index_free(x);
		return r;
	}
	*out = x;
	return 0;
}

int gs_index_read_at(int verfd, const char *dir, const char *ver, struct gs_index **out,
		     struct gs_err *err)
{
	char name[GS_PATH_MAX + 128];
	snprintf(name, sizeof(name), "%s/" GS_INDEX_NAME, dir);
	_cleanup_close_ int fd = openat(verfd, GS_INDEX_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return gs_err_setx(err, ENOENT,
				   "%s: missing (staged by an older gpu-stage?); run 'gpu-stage --driver %s' to rebuild it",
				   name, ver);
	if (fd < 0)
		return gs_err_set(err, errno, "%s", name);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", name);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EBADMSG, "%s: not a regular file", name);
	char *buf = NULL;
	size_t len = 0;
	int r = gs_read_all_fd(fd, GS_INDEX_MAX, name, &buf, &len, err);
	if (r < 0)
		return r;
	_cleanup_(gs_index_freep) struct gs_index *x = NULL;
	if ((r = gs_index_parse(buf, len, name, &x, err)) < 0)
		return gs_err_wrap(err, "run 'gpu-stage --driver %s' to rebuild it", ver);
	if (strcmp(x->driver, ver))
		return gs_err_setx(err, EBADMSG, "%s: says driver %s, not %s", name, x->driver, ver);
	/* the manifest beside it must be the one it was made from (verify
	 * compares digests; a container start compares sizes: one fstatat) */
	if (fstatat(verfd, GS_MANIFEST_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return gs_err_set(err, errno, "%s/" GS_MANIFEST_NAME, dir);
	if ((uint64_t)st.st_size != x->manifest_size)
		return gs_err_setx(err, EBADMSG,
				   "%s: made from another manifest.json (%" PRIu64 " bytes, not %lld); run 'gpu-stage --driver %s' to rebuild it",
				   name, x->manifest_size, (long long)st.st_size, ver);
	*out = steal_ptr(&x);
	return 0;
}

int gs_index_matches_at(int verfd, const struct gs_manifest *m,
			const struct gs_manifest_info *info, const char **why, struct gs_err *err)
{
	_cleanup_free_ char *want = NULL, *have = NULL;
	size_t wlen = 0, hlen = 0;
	int r = gs_index_format(m, info->size, info->file_sha256, &want, &wlen, err);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = openat(verfd, GS_INDEX_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = fd < 0 && errno == ENOENT ? "missing" : "not a readable regular file";
		return 0;
	}
	struct gs_err e = GS_ERR_INIT;
	if ((uint64_t)st.st_size != wlen || gs_read_all_fd(fd, GS_INDEX_MAX, GS_INDEX_NAME, &have, &hlen, &e) < 0 ||
	    hlen != wlen || memcmp(have, want, wlen)) {
		*why = "not the index of manifest.json (edited, stale or of another format)";
		return 0;
	}
	return 1;
}
