/* SPDX-License-Identifier: Apache-2.0 */
/* One container's audit record against what is live: its process, its
 * mount table (/proc/PID/mountinfo), the store tree its mounts show, the
 * manifest of that tree, and the libraries its image holds under the
 * names the driver gives.
 *
 * Matching a live mount to the store: a bind mount's mountinfo line has
 * the superblock (MAJ:MIN) and "root", the path of the mounted directory
 * inside that filesystem.  The store's own path inside its filesystem
 * comes from our mount table (the mount that holds STORE: its root plus
 * the rest of STORE's path below its mount point).  A live mount on the
 * store's superblock whose root lies below that path shows a staged tree:
 * the first component is the tree's name (VER, or .tmp-* once a re-stage
 * or remove renamed it away while the container used it), the rest the
 * path inside it.  Nothing of the container's is trusted: its files are
 * looked up through /proc/PID/root with openat2 RESOLVE_IN_ROOT
 * (gs_open_in_root), never executed, and the staged files are read
 * through the store (a host directory), never through the container. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/ldcache.h"
#include "gs/manifest.h"
#include "gs/mountinfo.h"
#include "gs/overlay.h"
#include "gs/version.h"

#define AU_MOUNTINFO_MAX (64u << 20)
#define AU_HASH_CHUNK (1u << 20)
#define AU_START_SLACK 2 /* seconds: boot time and the record's time are whole seconds */

/* ---- stores and manifests, read once --------------------------------------- */

struct au_store {
	char *path;   /* as the record or --store names it */
	int fd;       /* O_PATH directory */
	dev_t dev;
	char *fsroot; /* its path inside its filesystem ("/x/store") */
};

struct au_tree {
	dev_t dev;
	ino_t ino;
	struct gs_manifest *m; /* NULL: unreadable (*why) */
	char why[256];
};

struct au_cache {
	struct au_store *stores;
	size_t n_stores;
	struct au_tree *trees;
	size_t n_trees;
	char *hashbuf;
};

int au_cache_new(struct au_cache **out, struct gs_err *err)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : gs_err_setx(err, ENOMEM, "out of memory");
}

void au_cache_free(struct au_cache *c)
{
	for (size_t i = 0; i < c->n_stores; i++) {
		free(c->stores[i].path);
		free(c->stores[i].fsroot);
		if (c->stores[i].fd >= 0)
			close(c->stores[i].fd);
	}
	for (size_t i = 0; i < c->n_trees; i++)
		gs_manifest_freep(&c->trees[i].m);
	free(c->stores);
	free(c->trees);
	free(c->hashbuf);
	free(c);
}

struct fsroot_find {
	const char *real;
	dev_t dev;
	size_t best; /* length of the best mount point so far */
	char *fsroot;
	bool oom;
};

static int fsroot_each(const struct gs_mountinfo *m, void *data)
{
	struct fsroot_find *f = data;
	size_t n = strlen(m->point);
	if (makedev(m->major, m->minor) != f->dev)
		return 0;
	bool below = !strcmp(m->point, "/") ||
		     (!strncmp(f->real, m->point, n) && (f->real[n] == '/' || !f->real[n]));
	if (!below || (f->fsroot && n < f->best))
		return 0;
	const char *rest = strcmp(m->point, "/") ? f->real + n : f->real;
	free(f->fsroot);
	f->fsroot = NULL;
	f->oom = asprintf(&f->fsroot, "%s%s", strcmp(m->root, "/") ? m->root : "", rest) < 0;
	if (f->oom)
		f->fsroot = NULL;
	f->best = n;
	return 0;
}

/* STORE opened, its superblock and its path inside that filesystem. */
static int store_open(const char *path, struct au_store *s, struct gs_err *err)
{
	*s = (struct au_store){.fd = -1};
	if (!(s->path = strdup(path)))
		return gs_err_setx(err, ENOMEM, "out of memory");
	s->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->fd < 0)
		return gs_err_set(err, errno, "store %s", path);
	/* as the mount tables show it: on btrfs not st_dev */
	if (gs_mountinfo_dev(s->fd, path, &s->dev, err) < 0)
		return gs_err_wrap(err, "store");
	_cleanup_free_ char *real = realpath(path, NULL);
	if (!real)
		return gs_err_set(err, errno, "store %s", path);
	struct fsroot_find f = {.real = real, .dev = s->dev};
	int r = gs_mountinfo_each("/proc/self/mountinfo", fsroot_each, &f, err);
	if (r >= 0 && (f.oom || !f.fsroot))
		r = f.oom ? gs_err_setx(err, ENOMEM, "out of memory")
			  : gs_err_setx(err, ENOENT, "store %s: no mount in /proc/self/mountinfo holds it", path);
	if (r < 0) {
		free(f.fsroot);
		return r;
	}
	size_t n = strlen(f.fsroot);
	while (n > 1 && f.fsroot[n - 1] == '/')
		f.fsroot[--n] = '\0';
	s->fsroot = f.fsroot;
	return 0;
}

static const struct au_store *cache_store(struct au_cache *c, const char *path, struct gs_err *err)
{
	for (size_t i = 0; i < c->n_stores; i++)
		if (!strcmp(c->stores[i].path, path))
			return c->stores[i].fd >= 0 ? &c->stores[i] : NULL;
	struct au_store *v = realloc(c->stores, (c->n_stores + 1) * sizeof(*v));
	if (!v) {
		gs_err_setx(err, ENOMEM, "out of memory");
		return NULL;
	}
	c->stores = v;
	struct au_store *s = &c->stores[c->n_stores++];
	if (store_open(path, s, err) < 0) {
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1; /* remembered as unusable: the next record says so again */
		return NULL;
	}
	return s;
}

/* The manifest of the tree TREEFD (one read per tree, whatever number of
 * containers use it); NULL with *WHY when unreadable. */
static const struct gs_manifest *cache_manifest(struct au_cache *c, int treefd, const char *name,
						const char **why)
{
	struct stat st;
	if (fstat(treefd, &st) < 0) {
		*why = "cannot stat the tree";
		return NULL;
	}
	for (size_t i = 0; i < c->n_trees; i++)
		if (c->trees[i].dev == st.st_dev && c->trees[i].ino == st.st_ino) {
			*why = c->trees[i].why;
			return c->trees[i].m;
		}
	struct au_tree *v = realloc(c->trees, (c->n_trees + 1) * sizeof(*v));
	if (!v) {
		*why = "out of memory";
		return NULL;
	}
	c->trees = v;
	struct au_tree *t = &c->trees[c->n_trees++];
	*t = (struct au_tree){.dev = st.st_dev, .ino = st.st_ino};
	struct gs_err e = GS_ERR_INIT;
	if (gs_manifest_read_at(treefd, name, &t->m, NULL, &e) < 0)
		snprintf(t->why, sizeof(t->why), "%s", e.msg);
	*why = t->why;
	return t->m;
}

/* ---- findings ------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void finding(json_t *fs, const char *name,
							  const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n >= 0)
		json_array_append_new(fs, json_pack("{s:s, s:s}", "finding", name, "message", msg));
	free(msg);
}

/* ---- the process ---------------------------------------------------------------- */

/* Boot time (/proc/stat btime), seconds since the epoch; 0 unknown. */
static long long boot_time(void)
{
	static long long bt = -1;
	if (bt >= 0)
		return bt;
	bt = 0;
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &bt) == 1)
			break;
	if (f)
		fclose(f);
	return bt;
}

/* The state letter and start time (seconds since the epoch, -1 unknown)
 * of the process of PROCFD: /proc/PID/stat's 3rd and 22nd fields (the
 * latter in clock ticks after boot); -1 when unreadable. */
static int proc_stat(int procfd, char *state, long long *start)
{
	_cleanup_close_ int fd = openat(procfd, "stat", O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	struct gs_err e = GS_ERR_INIT;
	if (fd < 0 || gs_read_all_fd(fd, 4096, "stat", &text, NULL, &e) < 0)
		return -1;
	const char *p = strrchr(text, ')'); /* the command name may hold anything */
	unsigned long long ticks;
	if (!p || p[1] != ' ' || !p[2])
		return -1;
	*state = p[2];
	*start = -1;
	for (int field = 2; p && field < 21; field++)
		p = strchr(p + 1, ' ');
	if (p && sscanf(p + 1, "%llu", &ticks) == 1 && boot_time() > 0)
		*start = boot_time() + (long long)(ticks / (unsigned long long)sysconf(_SC_CLK_TCK));
	return 0;
}

static long long record_time(const json_t *rec)
{
	const char *s = json_string_value(json_object_get(rec, "time"));
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
	return end && !*end ? (long long)timegm(&tm) : -1;
}

/* /proc/PID of REC's pid, checked to be the container's process; -1 and
 * *WHY (malloc'd) when it is gone. */
static int open_proc(const json_t *rec, char **why)
{
	json_int_t pid = json_integer_value(json_object_get(rec, "pid"));
	const char *rootfs = json_string_value(json_object_get(rec, "rootfs"));
	char path[64];
	*why = NULL;
	if (pid <= 0) {
		*why = strdup("the record names no pid");
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%" JSON_INTEGER_FORMAT, pid);
	_cleanup_close_ int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (asprintf(why, "pid %" JSON_INTEGER_FORMAT " is gone", pid) < 0)
			*why = NULL;
		return -1;
	}
	long long st = -1, rt = record_time(rec);
	char state = '?';
	if (proc_stat(fd, &state, &st) < 0 || state == 'Z' || state == 'X') {
		if (asprintf(why, "pid %" JSON_INTEGER_FORMAT " is gone (%s)", pid,
			     state == '?' ? "no status" : "exited, not yet reaped") < 0)
			*why = NULL;
		return -1;
	}
	if (st >= 0 && rt >= 0 && st > rt + AU_START_SLACK) {
		if (asprintf(why, "pid %" JSON_INTEGER_FORMAT " belongs to another process now (started %llds after the record)",
			     pid, st - rt) < 0)
			*why = NULL;
		return -1;
	}
	struct stat want, root;
	_cleanup_close_ int rootfd = openat(fd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfs && rootfd >= 0 && stat(rootfs, &want) == 0 && fstat(rootfd, &root) == 0 &&
	    (want.st_dev != root.st_dev || want.st_ino != root.st_ino)) {
		if (asprintf(why, "pid %" JSON_INTEGER_FORMAT " belongs to another process now (its root is not %s)",
			     pid, rootfs) < 0)
			*why = NULL;
		return -1;
	}
	return steal_fd(&fd);
}

int au_alive(const json_t *rec, char **why, struct gs_err *err)
{
	int fd = open_proc(rec, why);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return *why ? 0 : gs_err_setx(err, ENOMEM, "out of memory");
}

/* ---- the live mount table --------------------------------------------------------- */

struct au_mount {
	char *point, *root, *fstype;
	uint64_t id, parent;
	dev_t dev;
	bool matched;
};

struct au_mounts {
	struct au_mount *v;
	size_t n, cap;
	bool oom;
	struct au_mount **by_id; /* index_ids */
};

static int mounts_each(const struct gs_mountinfo *m, void *data)
{
	struct au_mounts *t = data;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct au_mount *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return t->oom = true, 1;
		t->v = v;
		t->cap = cap;
	}
	struct au_mount *o = &t->v[t->n];
	*o = (struct au_mount){.point = strdup(m->point), .root = strdup(m->root),
			       .fstype = strdup(m->fstype), .id = m->id, .parent = m->parent,
			       .dev = makedev(m->major, m->minor)};
	t->n++;
	if (!o->point || !o->root || !o->fstype)
		return t->oom = true, 1;
	return 0;
}

static void mounts_clear(struct au_mounts *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].point);
		free(t->v[i].root);
		free(t->v[i].fstype);
	}
	free(t->v);
	free(t->by_id);
	*t = (struct au_mounts){0};
}

static int read_mounts(int procfd, struct au_mounts *t, struct gs_err *err)
{
	_cleanup_close_ int fd = openat(procfd, "mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gs_err_set(err, errno, "mountinfo");
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = gs_read_all_fd(fd, AU_MOUNTINFO_MAX, "mountinfo", &text, &len, err);
	if (r >= 0)
		r = gs_mountinfo_each_text(text, len, "mountinfo", mounts_each, t, err);
	return r >= 0 && t->oom ? gs_err_setx(err, ENOMEM, "out of memory") : r;
}

/* The path inside the store that live mount M shows ("VER/lib/compute"),
 * or NULL when it is not a mount of the store. */
static const char *store_rel(const struct au_store *s, const struct au_mount *m)
{
	size_t n = strlen(s->fsroot);
	if (m->dev != s->dev)
		return NULL;
	if (!strcmp(s->fsroot, "/"))
		return m->root[0] == '/' && m->root[1] ? m->root + 1 : NULL;
	return !strncmp(m->root, s->fsroot, n) && m->root[n] == '/' && m->root[n + 1] ? m->root + n + 1
										  : NULL;
}

/* ---- one container ---------------------------------------------------------------- */

struct au_ctx {
	const struct au_opts *o;
	struct au_cache *cache;
	json_t *rec, *plan, *out, *findings, *files, *mounts;
	const char *ver, *verdir; /* the record's driver and STORE/VER */
	const struct au_store *store;
	struct au_mounts live;
	char *tree;               /* the tree name the container's mounts show */
	bool tree_deleted;
	int treefd;               /* that tree in the store, or -1 */
	const struct gs_manifest *m;
	int rootfd;               /* /proc/PID/root */
};

static const char *op_str(const json_t *op, const char *key)
{
	return json_string_value(json_object_get(op, key));
}

/* Whether OP was applied (a record written before statuses existed: yes). */
static bool applied(const json_t *op)
{
	const char *s = op_str(op, "status");
	return !s || !strcmp(s, "applied");
}

/* OP's source below STORE/VER ("lib/compute"), NULL when it has none. */
static const char *op_inner(const struct au_ctx *x, const json_t *op)
{
	const char *src = op_str(op, "source");
	size_t n = strlen(x->verdir);
	return src && !strncmp(src, x->verdir, n) && src[n] == '/' ? src + n + 1 : NULL;
}

static void note_tree(struct au_ctx *x, const char *rel)
{
	size_t n = strcspn(rel, "/");
	if (x->tree && strlen(x->tree) == n && !strncmp(x->tree, rel, n))
		return;
	if (!x->tree || strncmp(x->tree, x->ver, strlen(x->ver) + 1) == 0) {
		free(x->tree);
		x->tree = strndup(rel, n);
	}
}

/* The live mount showing STORE/<tree>/INNER: the first of those in the
 * tree VER mounted at DEST, else in the tree VER, else in any tree (a bind
 * of it elsewhere is then the unrecorded one). */
static struct au_mount *find_store_mount(struct au_ctx *x, const char *inner, const char *dest)
{
	struct au_mount *best = NULL;
	int best_score = -1;
	size_t il = strlen(inner), vl = strlen(x->ver);
	for (size_t i = 0; i < x->live.n; i++) {
		struct au_mount *m = &x->live.v[i];
		const char *rel = store_rel(x->store, m);
		const char *slash = rel ? strchr(rel, '/') : NULL;
		if (!slash || m->matched)
			continue;
		const char *in = slash + 1;
		if (strncmp(in, inner, il) || (in[il] && strcmp(in + il, " (deleted)")))
			continue;
		int score = ((size_t)(slash - rel) == vl && !strncmp(rel, x->ver, vl)) * 2 +
			    !strcmp(m->point, dest);
		if (score > best_score) {
			best = m;
			best_score = score;
		}
	}
	return best;
}

/* The last mount on POINT (of FSTYPE; NULL: any), not matched yet. */
static struct au_mount *find_point(struct au_ctx *x, const char *point, const char *fstype)
{
	for (size_t i = x->live.n; i-- > 0;)
		if (!strcmp(x->live.v[i].point, point) && !x->live.v[i].matched &&
		    (!fstype || !strcmp(x->live.v[i].fstype, fstype)))
			return &x->live.v[i];
	return NULL;
}

static int by_id(const void *a, const void *b)
{
	const struct au_mount *x = *(const struct au_mount *const *)a, *y = *(const struct au_mount *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* T's mounts sorted by id, for parent lookups (NULL: out of memory, and
 * then no mount counts as another's parent: covered is said more often,
 * never less). */
static void index_ids(struct au_mounts *t)
{
	if (!(t->by_id = malloc((t->n + 1) * sizeof(*t->by_id))))
		return;
	for (size_t i = 0; i < t->n; i++)
		t->by_id[i] = &t->v[i];
	qsort(t->by_id, t->n, sizeof(*t->by_id), by_id);
}

#define AU_MOUNT_DEPTH_MAX 4096 /* deeper chains of mounts on mounts are cut (said covered) */

/* Whether A is M's mount or one it is mounted on (its parents' chain). */
static bool under(const struct au_mounts *t, const struct au_mount *m, const struct au_mount *a)
{
	for (size_t hops = 0; m && t->by_id && hops < AU_MOUNT_DEPTH_MAX; hops++) {
		if (m == a)
			return true;
		struct au_mount key = {.id = m->parent}, *kp = &key;
		struct au_mount **p = bsearch(&kp, t->by_id, t->n, sizeof(*t->by_id), by_id);
		m = p && *p != m ? *p : NULL;
	}
	return false;
}

/* A mount that hides M from the container: on M's mount point or a
 * directory above it, and not one M itself sits on; one mounted on M
 * hides it when on the same point (the container sees that, not ours). */
static const struct au_mount *covering(const struct au_ctx *x, const struct au_mount *m)
{
	for (size_t i = 0; i < x->live.n; i++) {
		const struct au_mount *c = &x->live.v[i];
		size_t n = strlen(c->point);
		bool above = !strcmp(c->point, "/") ||
			     (!strncmp(m->point, c->point, n) && (m->point[n] == '/' || !m->point[n]));
		if (c != m && above && !under(&x->live, m, c) &&
		    (!under(&x->live, c, m) || !strcmp(c->point, m->point)))
			return c;
	}
	return NULL;
}

static void add_mount(struct au_ctx *x, const json_t *op, const struct au_mount *m)
{
	json_array_append_new(x->mounts, json_pack("{s:s, s:s?, s:s, s:s?}", "op", op_str(op, "op"),
						   "source", op_str(op, "source"), "destination",
						   op_str(op, "destination"), "live", m ? m->point : NULL));
}

/* Every recorded mount against the live table. */
static void check_mounts(struct au_ctx *x)
{
	size_t i;
	json_t *op;
	json_array_foreach(json_object_get(x->plan, "operations"), i, op) {
		const char *type = op_str(op, "op"), *dest = op_str(op, "actual_destination");
		dest = dest ? dest : op_str(op, "destination");
		if (!type || !dest || !applied(op))
			continue;
		struct au_mount *m = NULL;
		if (!strcmp(type, "tmpfs"))
			m = find_point(x, dest, "tmpfs");
		else if (!strcmp(type, "bind-host")) /* a host path outside the store (MPS, sockets) */
			m = find_point(x, dest, NULL);
		else if (!strcmp(type, "bind-dir") || !strcmp(type, "bind-file")) {
			const char *inner = op_inner(x, op);
			if (!inner) {
				finding(x->findings, "record-malformed", "%s: source %s is not inside %s", dest,
					op_str(op, "source") ? op_str(op, "source") : "(none)", x->verdir);
				continue;
			}
			if ((m = find_store_mount(x, inner, dest))) {
				note_tree(x, store_rel(x->store, m));
				x->tree_deleted |= strstr(m->root, " (deleted)") != NULL;
			}
		} else
			continue;
		add_mount(x, op, m);
		const struct au_mount *c = m ? covering(x, m) : NULL;
		if (m)
			m->matched = true;
		if (c)
			finding(x->findings, "mount-covered", "%s: hidden by a later %s mount on %s", m->point,
				c->fstype, c->point);
		else if (!m)
			finding(x->findings, "mount-missing", "%s: the %s of %s is not in the live mount table",
				dest, type, op_str(op, "source") ? op_str(op, "source") : "tmpfs");
	}
	for (i = 0; i < x->live.n; i++) {
		const char *rel = store_rel(x->store, &x->live.v[i]);
		if (rel && !x->live.v[i].matched)
			finding(x->findings, "mount-unrecorded", "%s: shows %s/%s, which the record does not name",
				x->live.v[i].point, x->store->path, rel);
	}
}

/* The store version the container uses: still STORE/VER, or renamed away
 * by a re-stage or a remove (the container's mounts show a .tmp-* tree). */
static void check_tree(struct au_ctx *x)
{
	struct stat st;
	bool staged = fstatat(x->store->fd, x->ver, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
	const char *tree = x->tree ? x->tree : x->ver;
	if (x->tree_deleted)
		finding(x->findings, "store-version-removed", "%s/%s was deleted while the container still uses it",
			x->store->path, tree);
	else if (strcmp(tree, x->ver) && staged)
		finding(x->findings, "store-version-replaced",
			"%s was re-staged (a different tree); the container still uses the old one, now %s/%s",
			x->verdir, x->store->path, tree);
	else if (strcmp(tree, x->ver) || !staged)
		finding(x->findings, "store-version-removed", "%s was removed%s%s while the container still uses it",
			x->verdir, strcmp(tree, x->ver) ? "; its tree is now " : "",
			strcmp(tree, x->ver) ? tree : "");
	x->treefd = x->tree_deleted ? -1 : gs_open_beneath(x->store->fd, tree, O_PATH | O_DIRECTORY, 0);
	const char *why = "";
	if (x->treefd >= 0 && !(x->m = cache_manifest(x->cache, x->treefd, GS_MANIFEST_NAME, &why)))
		finding(x->findings, "manifest-unreadable", "%s/%s: %s", x->store->path, tree, why);
}

static const struct gs_file *manifest_file(const struct gs_manifest *m, const char *path)
{
	for (size_t i = 0; m && i < m->n_files; i++)
		if (!strcmp(m->files[i].path, path))
			return &m->files[i];
	return NULL;
}

/* A staged file against the manifest: type, size, mode; bytes with --rehash. */
static void check_bytes(struct au_ctx *x, const char *path, const struct gs_file *f)
{
	struct stat st;
	if (x->treefd < 0)
		return;
	_cleanup_close_ int fd = gs_open_beneath(x->treefd, path, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0 || fstat(fd, &st) < 0) {
		finding(x->findings, "file-changed", "%s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != f->size || (st.st_mode & 07777) != f->mode) {
		finding(x->findings, "file-changed", "%s: %s, size %jd, mode %04o (the manifest: a file of %" PRIu64 " bytes, mode %04o)",
			path, S_ISREG(st.st_mode) ? "a file" : "not a regular file", (intmax_t)st.st_size,
			(unsigned int)(st.st_mode & 07777), f->size, (unsigned int)f->mode);
		return;
	}
	if (!x->o->rehash)
		return;
	char hex[65];
	struct gs_err e = GS_ERR_INIT;
	if (!x->cache->hashbuf && !(x->cache->hashbuf = malloc(AU_HASH_CHUNK)))
		finding(x->findings, "file-unreadable", "%s: out of memory", path);
	else if (gs_sha256_fd(fd, x->cache->hashbuf, AU_HASH_CHUNK, hex, &e) < 0)
		finding(x->findings, "file-unreadable", "%s: %s", path, e.msg);
	else if (strcmp(hex, f->sha256))
		finding(x->findings, "file-changed", "%s: its bytes changed (sha256 %s, the manifest's %s)", path,
			hex, f->sha256);
}

/* One file the container received: in the table, checked. */
static void add_file(struct au_ctx *x, const json_t *op, const json_t *rf)
{
	const char *path = op_str(rf, "path"), *inner = op_inner(x, op);
	const char *dest = op_str(op, "actual_destination");
	dest = dest ? dest : op_str(op, "destination");
	if (!path || !inner || !dest)
		return;
	size_t il = strlen(inner);
	_cleanup_free_ char *cpath = NULL, *spath = NULL;
	bool under = !strncmp(path, inner, il) && path[il] == '/';
	if (asprintf(&cpath, "%s%s", dest, under ? path + il : "") < 0 ||
	    asprintf(&spath, "%s/%s/%s", x->store->path, x->tree ? x->tree : x->ver, path) < 0)
		return;
	const struct gs_file *f = manifest_file(x->m, path);
	char caps[128] = "";
	if (f)
		gs_caps_format(f->caps, caps, sizeof(caps));
	json_array_append_new(x->files, json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:s, s:s?, s:s?}",
		"container_path", cpath, "store_path", spath, "host_source", f ? f->source : op_str(rf, "source"),
		"sha256", f ? f->sha256 : op_str(rf, "sha256"),
		"size", (json_int_t)(f ? (json_int_t)f->size : json_integer_value(json_object_get(rf, "size"))),
		"driver", x->ver, "capabilities", f ? caps : NULL, "evidence", f ? f->evidence : NULL));
	if (!x->m)
		return;
	if (!f) {
		finding(x->findings, "file-unknown", "%s: the manifest of the tree in use has no such file", path);
		return;
	}
	const char *rsha = op_str(rf, "sha256");
	if ((rsha && strcmp(rsha, f->sha256)) ||
	    (uint64_t)json_integer_value(json_object_get(rf, "size")) != f->size)
		finding(x->findings, "record-mismatch", "%s: the record's sha256/size differ from the manifest's", path);
	check_bytes(x, path, f);
}

static void check_files(struct au_ctx *x)
{
	size_t i, j;
	json_t *op, *rf;
	json_array_foreach(json_object_get(x->plan, "operations"), i, op) {
		const char *type = op_str(op, "op");
		if (!type || !applied(op) || (strcmp(type, "bind-dir") && strcmp(type, "bind-file")))
			continue;
		json_array_foreach(json_object_get(op, "files"), j, rf)
			add_file(x, op, rf);
	}
}

/* ---- the image's own copies of the driver's libraries ----------------------------- */

/* Where the container's loader looks after its ld.so.cache (glibc's
 * default directories, both multiarch layouts). */
static const char *const default_dirs[] = {
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
	"/lib/i386-linux-gnu",   "/usr/lib/i386-linux-gnu",   "/lib32", "/usr/lib32",
};

struct au_ident {
	dev_t dev;
	ino_t ino;
};

struct au_seen {
	struct au_ident *v;
	size_t n, cap;
};

static bool seen_has(const struct au_seen *s, const struct stat *st)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].dev == st->st_dev && s->v[i].ino == st->st_ino)
			return true;
	return false;
}

static void seen_add(struct au_seen *s, const struct stat *st)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct au_ident *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return; /* then a duplicate may be reported twice: no more */
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct au_ident){st->st_dev, st->st_ino};
}

/* PATH inside the container's root (never outside it: symlinks are
 * resolved as if the root were "/"), a regular file: 0 with *ST. */
static int stat_in_root(int rootfd, const char *path, struct stat *st)
{
	struct gs_err e = GS_ERR_INIT;
	_cleanup_close_ int fd = gs_open_in_root(rootfd, path, O_PATH, &e);
	return fd >= 0 && fstat(fd, st) == 0 && S_ISREG(st->st_mode) ? 0 : -1;
}

/* A container's ld.so.cache is the image's (and may be hostile): at most
 * this many of its entries under one name are looked at. */
#define AU_ENTRIES_PER_NAME 64

/* PATH inside the container's root opened for reading only when it is a
 * regular file: found with O_PATH (opening a device node of the image
 * could act on the host's device), checked, then reopened through
 * /proc/self/fd (the same inode, whatever the image does meanwhile). */
static int open_regular_in_root(int rootfd, const char *path)
{
	struct gs_err e = GS_ERR_INIT;
	struct stat st;
	char self[64];
	_cleanup_close_ int fd = gs_open_in_root(rootfd, path, O_PATH, &e);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	return open(self, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
}

struct au_shadow {
	struct au_ctx *x;
	const char *key;
	struct au_seen *ours, *reported;
	bool first;
	unsigned int n;
};

static void image_library(struct au_ctx *x, const char *key, const char *path, const struct stat *st,
			  const char *how, struct au_seen *reported)
{
	if (seen_has(reported, st))
		return;
	seen_add(reported, st);
	char *msg = NULL;
	if (asprintf(&msg, "%s: the image's own %s (%jd bytes, %s)", key, path, (intmax_t)st->st_size, how) < 0)
		return;
	json_array_append_new(x->findings, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "finding",
		"image-library", "message", msg, "library", key, "path", path,
		"device", (json_int_t)st->st_dev, "inode", (json_int_t)st->st_ino, "how", how));
	free(msg);
}

static int cache_entry(const struct ldc_entry *e, void *data)
{
	struct au_shadow *s = data;
	struct stat st;
	if (strcmp(e->key, s->key))
		return 0;
	if (++s->n > AU_ENTRIES_PER_NAME)
		return 1;
	bool first = s->first;
	s->first = false;
	if (!strncmp(e->value, OVL_ANCHOR "/", strlen(OVL_ANCHOR) + 1) ||
	    stat_in_root(s->x->rootfd, e->value, &st) < 0 || seen_has(s->ours, &st))
		return 0;
	image_library(s->x, s->key, e->value, &st,
		      first ? "in its ld.so.cache, before the driver's: the loader picks it"
			    : "in its ld.so.cache, after the driver's",
		      s->reported);
	return 0;
}

/* The identities of the staged files behind the record's cache entries. */
static void staged_idents(struct au_ctx *x, const json_t *entries, struct au_seen *ours)
{
	size_t i;
	json_t *e;
	json_array_foreach(entries, i, e) {
		const char *v = op_str(e, "value");
		struct stat st;
		if (x->treefd >= 0 && v && !strncmp(v, OVL_ANCHOR "/", strlen(OVL_ANCHOR) + 1) &&
		    fstatat(x->treefd, v + strlen(OVL_ANCHOR) + 1, &st, 0) == 0)
			seen_add(ours, &st);
	}
}

static void check_shadow_key(struct au_ctx *x, const struct ldc_cache *c, const char *key,
			     struct au_seen *ours, struct au_seen *reported)
{
	struct au_shadow s = {x, key, ours, reported, true, 0};
	if (c)
		ldc_cache_foreach_prefix(c, key, LDC_ARCH_ANY, cache_entry, &s);
	for (size_t d = 0; d < sizeof(default_dirs) / sizeof(default_dirs[0]); d++) {
		_cleanup_free_ char *path = NULL;
		struct stat st;
		if (asprintf(&path, "%s/%s", default_dirs[d], key) < 0)
			return;
		if (stat_in_root(x->rootfd, path, &st) == 0 && !seen_has(ours, &st))
			image_library(x, key, path, &st,
				      s.first ? "in a default directory, not in the cache: the loader finds it"
					      : "in a default directory (the cache names the driver's first)",
				      reported);
	}
}

/* Libraries of the image under the names the driver's cache entries give. */
static void check_shadow(struct au_ctx *x)
{
	const json_t *entries = NULL, *op;
	size_t i;
	json_array_foreach(json_object_get(x->plan, "operations"), i, op)
		if (op_str(op, "op") && !strcmp(op_str(op, "op"), "ldcache"))
			entries = json_object_get(op, "entries");
	if (!entries || x->rootfd < 0)
		return;
	struct gs_err e = GS_ERR_INIT;
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	_cleanup_close_ int cfd = open_regular_in_root(x->rootfd, OVL_LDCACHE);
	if (cfd >= 0 && ldc_cache_load_fd(cfd, OVL_LDCACHE, &c, &e) < 0)
		finding(x->findings, "ldcache-unreadable", "the container's %s: %s", OVL_LDCACHE, e.msg);
	struct au_seen ours = {0}, reported = {0};
	staged_idents(x, entries, &ours);
	json_t *en;
	json_array_foreach(entries, i, en) {
		const char *key = op_str(en, "key");
		size_t j;
		json_t *prev;
		bool dup = false;
		json_array_foreach(entries, j, prev) /* each name once */
			if (j < i && key && op_str(prev, "key") && !strcmp(op_str(prev, "key"), key))
				dup = true;
		if (key && !dup && gs_name_ok(key))
			check_shadow_key(x, c, key, &ours, &reported);
	}
	free(ours.v);
	free(reported.v);
}

/* ---- the whole check ---------------------------------------------------------------- */

static int ctx_init(struct au_ctx *x, json_t *rec, struct gs_err *err)
{
	x->plan = json_object_get(rec, "plan");
	x->ver = op_str(x->plan, "driver");
	x->verdir = op_str(x->plan, "store");
	x->findings = json_array();
	x->files = json_array();
	x->mounts = json_array();
	x->out = json_pack("{s:O, s:O, s:O?, s:O, s:O, s:O}", "container", json_object_get(rec, "container"),
			   "pid", json_object_get(rec, "pid"), "driver", json_object_get(x->plan, "driver"),
			   "files", x->files, "mounts", x->mounts, "findings", x->findings);
	if (!x->findings || !x->files || !x->mounts || !x->out || json_object_set(x->out, "record", rec) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	return 0;
}

static void ctx_clear(struct au_ctx *x)
{
	json_decref(x->findings);
	json_decref(x->files);
	json_decref(x->mounts);
	json_decref(x->out);
	mounts_clear(&x->live);
	free(x->tree);
	if (x->treefd >= 0)
		close(x->treefd);
	if (x->rootfd >= 0)
		close(x->rootfd);
}

/* With the process and the store at hand: every check. */
static void check_live(struct au_ctx *x, int procfd)
{
	struct gs_err e = GS_ERR_INIT;
	if (read_mounts(procfd, &x->live, &e) < 0) {
		finding(x->findings, "mounts-unreadable", "/proc/%jd/mountinfo: %s",
			(intmax_t)json_integer_value(json_object_get(x->rec, "pid")), e.msg);
		return;
	}
	x->rootfd = openat(procfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	index_ids(&x->live);
	check_mounts(x);
	check_tree(x);
	check_files(x);
	check_shadow(x);
}

int au_check(json_t *rec, const struct au_opts *o, struct au_cache *cache, json_t **out,
	     struct gs_err *err)
{
	struct au_ctx x = {.o = o, .cache = cache, .rec = rec, .treefd = -1, .rootfd = -1};
	int r = ctx_init(&x, rec, err);
	if (r < 0) {
		ctx_clear(&x);
		return r;
	}
	_cleanup_free_ char *why = NULL, *sdir = x.verdir ? strdup(x.verdir) : NULL;
	struct gs_err e = GS_ERR_INIT;
	if (!x.ver || !x.verdir || !gs_version_valid(x.ver))
		finding(x.findings, "record-malformed", "the record's plan names no driver version and store");
	else if (!o->store && !sdir)
		r = gs_err_setx(err, ENOMEM, "out of memory");
	else if (!(x.store = cache_store(cache, o->store ? o->store : dirname(sdir), &e)))
		finding(x.findings, "store-unreadable", "%s", e.code ? e.msg : "the store cannot be opened");
	_cleanup_close_ int procfd = r < 0 ? -1 : open_proc(rec, &why);
	if (r >= 0 && procfd < 0)
		finding(x.findings, "container-gone", "%s", why ? why : "out of memory");
	else if (r >= 0 && x.store) /* --store: the record's store, moved (its paths still match) */
		check_live(&x, procfd);
	if (r >= 0)
		*out = json_incref(x.out);
	ctx_clear(&x);
	return r;
}
