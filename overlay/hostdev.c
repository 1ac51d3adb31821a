/* SPDX-License-Identifier: Apache-2.0 */
/* The host's NVIDIA device nodes (gs/hostdev.h): the /proc parsers, the
 * list of nodes the host should have, their check and creation under an
 * fd of DEV, and the /dev/char links. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/hostdev.h"
#include "internal.h"

/* ---- parsers --------------------------------------------------------------------- */

/* The next line of TEXT from *POS: [*S, *S + *N), without its newline. */
static bool next_line(const char *text, size_t len, size_t *pos, const char **s, size_t *n)
{
	if (*pos >= len)
		return false;
	const char *b = text + *pos, *nl = memchr(b, '\n', len - *pos);
	*s = b;
	*n = nl ? (size_t)(nl - b) : len - *pos;
	*pos += *n + (nl ? 1 : 0);
	return true;
}

/* A decimal number of at most 10 digits in [S, S + N), up to MAX. */
static bool parse_dec(const char *s, size_t n, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;
	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long long)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* [S, S + N) without blanks at either end. */
static void trim(const char **s, size_t *n)
{
	while (*n && is_blank(**s))
		(*s)++, (*n)--;
	while (*n && is_blank((*s)[*n - 1]))
		(*n)--;
}

static bool token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && !memcmp(s, word, n);
}

/* One line of the character section, "%3d name": sets the major of a name
 * we know.  Duplicates and bad numbers of those names are errors. */
static int devices_line(const char *s, size_t n, struct ovl_nv_majors *m, struct gs_err *err)
{
	trim(&s, &n);
	const char *sp = s;
	while (sp < s + n && !is_blank(*sp))
		sp++;
	const char *name = sp;
	size_t nl = (size_t)(s + n - sp);
	trim(&name, &nl);
	if (nl == 0) { /* one word: a name without its major */
		name = s;
		nl = (size_t)(sp - s);
		sp = s;
	}
	int *slot = token_is(name, nl, "nvidia-frontend") || token_is(name, nl, "nvidia") ? &m->frontend
		    : token_is(name, nl, "nvidia-uvm")				  ? &m->uvm
		    : token_is(name, nl, "nvidia-caps")				  ? &m->caps
											  : NULL;
	if (!slot)
		return 0;
	unsigned long long v;
	if (!parse_dec(s, (size_t)(sp - s), OVL_DEV_MAJOR_MAX, &v))
		return gs_err_setx(err, EBADMSG, "%.*s: major '%.*s' is not a number up to %u", (int)nl,
				   name, (int)((size_t)(sp - s) > 32 ? 32 : (size_t)(sp - s)), s,
				   OVL_DEV_MAJOR_MAX);
	if (*slot >= 0)
		return gs_err_setx(err, EBADMSG, "%.*s is listed twice", (int)nl, name);
	*slot = (int)v;
	return 0;
}

int ovl_proc_devices_parse(const char *text, size_t len, struct ovl_nv_majors *m,
			   struct gs_err *err)
{
	*m = (struct ovl_nv_majors){.frontend = -1, .uvm = -1, .caps = -1};
	size_t pos = 0, n;
	const char *s;
	bool in_chr = false, seen = false;
	while (next_line(text, len, &pos, &s, &n)) {
		trim(&s, &n);
		if (n == 0) { /* the blank line between the sections */
			in_chr = false;
			continue;
		}
		if (token_is(s, n, "Character devices:")) {
			if (seen)
				return gs_err_setx(err, EBADMSG, "two \"Character devices:\" sections");
			in_chr = seen = true;
			continue;
		}
		if (token_is(s, n, "Block devices:")) {
			in_chr = false;
			continue;
		}
		if (in_chr && devices_line(s, n, m, err) < 0)
			return -err->code;
	}
	return seen ? 0 : gs_err_setx(err, EBADMSG, "no \"Character devices:\" section");
}

/* One "Name: value" line: the attribute it sets, with its bound. */
static int attrs_line(const char *s, size_t n, struct ovl_nv_attrs *a, unsigned int *seen,
		      struct gs_err *err)
{
	static const struct {
		const char *key;
		unsigned long long max;
	} keys[] = {{"DeviceFileMode", 07777},	  {"DeviceFileUID", UINT32_MAX - 1},
		    {"DeviceFileGID", UINT32_MAX - 1}, {"ModifyDeviceFiles", 1},
		    {"DeviceFileModify", 1},	  {"DeviceFileMinor", OVL_DEV_MINOR_MAX}};
	const char *colon = memchr(s, ':', n);
	if (!colon)
		return 0;
	const char *key = s, *val = colon + 1;
	size_t kl = (size_t)(colon - s), vl = n - kl - 1;
	trim(&key, &kl);
	trim(&val, &vl);
	for (unsigned int k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		if (!token_is(key, kl, keys[k].key))
			continue;
		/* ModifyDeviceFiles and DeviceFileModify are one setting */
		unsigned int bit = 1u << (k == 4 ? 3 : k);
		unsigned long long v;
		if (*seen & bit)
			return gs_err_setx(err, EBADMSG, "%s given twice", keys[k].key);
		if (!parse_dec(val, vl, keys[k].max, &v))
			return gs_err_setx(err, EBADMSG, "%s: '%.*s' is not a decimal number up to %llu",
					   keys[k].key, (int)(vl > 32 ? 32 : vl), val, keys[k].max);
		*seen |= bit;
		switch (k) {
		case 0: a->mode = (uint32_t)v & 0777; break;
		case 1: a->uid = (uint32_t)v; break;
		case 2: a->gid = (uint32_t)v; break;
		case 3:
		case 4: a->modify = v != 0; break;
		default: a->minor = (int)v; break;
		}
		return 0;
	}
	return 0;
}

int ovl_nv_attrs_parse(const char *text, size_t len, struct ovl_nv_attrs *a, struct gs_err *err)
{
	*a = (struct ovl_nv_attrs){.mode = 0666, .modify = true, .minor = -1};
	size_t pos = 0, n;
	const char *s;
	unsigned int seen = 0;
	while (next_line(text, len, &pos, &s, &n))
		if (attrs_line(s, n, a, &seen, err) < 0)
			return -err->code;
	return 0;
}

const char *ovl_nv_module_name(enum ovl_nv_module m)
{
	switch (m) {
	case OVL_MOD_NVIDIA: return "nvidia";
	case OVL_MOD_UVM: return "nvidia-uvm";
	case OVL_MOD_MODESET: return "nvidia-modeset";
	case OVL_MOD_CAPS: return "nvidia-caps";
	}
	return "unknown";
}

const char *ovl_node_state_name(enum ovl_node_state s)
{
	switch (s) {
	case OVL_NODE_OK: return "ok";
	case OVL_NODE_MISSING: return "missing";
	case OVL_NODE_BAD_MODE: return "wrong-mode";
	case OVL_NODE_CONFLICT: return "conflict";
	case OVL_NODE_NO_MODULE: return "no-module";
	}
	return "unknown";
}

/* ---- what the host should have ----------------------------------------------------- */

/* PROCFD/REL into *OUT (NUL-terminated, *LEN bytes); 1 when it is missing. */
static int read_proc(int procfd, const char *procroot, const char *rel, char **out, size_t *len,
		     struct gs_err *err)
{
	_cleanup_close_ int fd = openat(procfd, rel, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 1;
	if (fd < 0)
		return gs_err_set(err, errno, "%s/%s", procroot, rel);
	char name[PATH_MAX + 64];
	snprintf(name, sizeof(name), "%s/%s", procroot, rel);
	return gs_read_all_fd(fd, OVL_PROC_FILE_MAX, name, out, len, err);
}

static int push(struct ovl_hostdevs *h, const char *name, int major, uint32_t minor,
		const struct ovl_nv_attrs *a, enum ovl_nv_module mod, struct gs_err *err)
{
	if (strlen(name) >= sizeof(h->v->name))
		return gs_err_setx(err, ENAMETOOLONG, "device name %s too long", name);
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].name, name))
			return gs_err_setx(err, EBADMSG, "/dev/%s: named twice (two capability files with one DeviceFileMinor?)",
					   name);
	struct ovl_hostdev *v = realloc(h->v, (h->n + 1) * sizeof(*v));
	if (!v)
		return gs_err_setx(err, ENOMEM, "out of memory");
	h->v = v;
	v[h->n] = (struct ovl_hostdev){.major = major, .minor = minor, .attrs = *a, .module = mod};
	snprintf(v[h->n].name, sizeof(v[h->n].name), "%s", name);
	h->n++;
	return 0;
}

/* Whether PROC/modules lists MODULE (its first field). */
static bool module_listed(const char *text, size_t len, const char *module)
{
	size_t pos = 0, n, ml = strlen(module);
	const char *s;
	while (next_line(text, len, &pos, &s, &n))
		if (n > ml && !memcmp(s, module, ml) && s[ml] == ' ')
			return true;
	return false;
}

/* nvidiactl, nvidiaN, nvidia-modeset: the frontend's major, params' mode. */
static int add_frontend(struct ovl_hostdevs *h, int procfd, const char *procroot,
			struct gs_err *err)
{
	struct ovl_nv_attrs a;
	_cleanup_free_ char *params = NULL, *mods = NULL;
	size_t len = 0, mlen = 0;
	int r = read_proc(procfd, procroot, "driver/nvidia/params", &params, &len, err);
	if (r < 0)
		return r;
	if (ovl_nv_attrs_parse(params ? params : "", params ? len : 0, &a, err) < 0)
		return gs_err_wrap(err, "%s/driver/nvidia/params", procroot);
	a.minor = -1;
	int major = h->majors.frontend;
	if ((r = push(h, "nvidiactl", major, OVL_NV_CTL_MINOR, &a, OVL_MOD_NVIDIA, err)) < 0)
		return r;
	_cleanup_free_ struct ovl_gpu *gpus = NULL;
	size_t ng = 0;
	if (major >= 0 && ovl_gpus_read(procroot, &gpus, &ng, err) < 0)
		return -err->code;
	for (size_t i = 0; i < ng; i++) {
		char name[32];
		if (gpus[i].minor < 0 || (unsigned int)gpus[i].minor >= OVL_NV_MODESET_MINOR)
			return gs_err_setx(err, EBADMSG, "%s/driver/nvidia/gpus/%s: Device Minor %d out of range",
					   procroot, gpus[i].bus_id, gpus[i].minor);
		snprintf(name, sizeof(name), "nvidia%d", gpus[i].minor);
		if ((r = push(h, name, major, (uint32_t)gpus[i].minor, &a, OVL_MOD_NVIDIA, err)) < 0)
			return r;
	}
	if ((r = read_proc(procfd, procroot, "modules", &mods, &mlen, err)) < 0)
		return r;
	h->modeset_loaded = mods && module_listed(mods, mlen, "nvidia_modeset");
	if (h->modeset_loaded)
		r = push(h, "nvidia-modeset", major, OVL_NV_MODESET_MINOR, &a, OVL_MOD_MODESET, err);
	return r;
}

static int add_uvm(struct ovl_hostdevs *h, struct gs_err *err)
{
	/* nvidia-modprobe reads no params for these: 0666, root's */
	struct ovl_nv_attrs a = {.mode = 0666, .modify = true, .minor = -1};
	int r = push(h, "nvidia-uvm", h->majors.uvm, OVL_UVM_MINOR, &a, OVL_MOD_UVM, err);
	return r < 0 ? r : push(h, "nvidia-uvm-tools", h->majors.uvm, OVL_UVM_TOOLS_MINOR, &a, OVL_MOD_UVM, err);
}

struct capwalk {
	struct ovl_hostdevs *h;
	const char *procroot;
	size_t files;
	struct gs_err *err;
};

static int cap_file(struct capwalk *w, int dirfd, const char *name, const char *rel)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct ovl_nv_attrs a;
	int r = read_proc(dirfd, w->procroot, name, &text, &len, w->err);
	if (r != 0)
		return r < 0 ? gs_err_wrap(w->err, "capabilities/%s", rel) : 0;
	if (ovl_nv_attrs_parse(text, len, &a, w->err) < 0)
		return gs_err_wrap(w->err, "%s/driver/nvidia/capabilities/%s", w->procroot, rel);
	if (a.minor < 0)
		return 0; /* no device file behind it */
	char node[64];
	snprintf(node, sizeof(node), OVL_NV_CAPS_DIR "/nvidia-cap%d", a.minor);
	r = push(w->h, node, w->h->majors.caps, (uint32_t)a.minor, &a, OVL_MOD_CAPS, w->err);
	return r < 0 ? gs_err_wrap(w->err, "%s/driver/nvidia/capabilities/%s", w->procroot, rel) : 0;
}

/* Every regular file under DIRFD (REL), depth-first, in name order. */
static int cap_walk(struct capwalk *w, int dirfd, const char *rel, int depth)
{
	if (depth > OVL_CAP_DEPTH)
		return gs_err_setx(w->err, ELOOP, "%s/driver/nvidia/capabilities/%s: deeper than %d levels",
				   w->procroot, rel, OVL_CAP_DEPTH);
	struct dirent **names = NULL;
	int n = scandirat(dirfd, ".", &names, NULL, alphasort), r = 0;
	if (n < 0)
		return gs_err_set(w->err, errno, "%s/driver/nvidia/capabilities/%s", w->procroot, rel);
	for (int i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;
		char sub[PATH_MAX];
		struct stat st;
		if (r < 0 || !strcmp(nm, ".") || !strcmp(nm, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", nm);
		if (fstatat(dirfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0)
			r = gs_err_set(w->err, errno, "%s/driver/nvidia/capabilities/%s", w->procroot, sub);
		else if (S_ISREG(st.st_mode) && ++w->files > OVL_MAX_CAP_FILES)
			r = gs_err_setx(w->err, E2BIG, "%s/driver/nvidia/capabilities: more than %d files",
					w->procroot, OVL_MAX_CAP_FILES);
		else if (S_ISREG(st.st_mode))
			r = cap_file(w, dirfd, nm, sub);
		else if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sfd = openat(dirfd, nm, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = sfd < 0 ? gs_err_set(w->err, errno, "%s/driver/nvidia/capabilities/%s", w->procroot, sub)
				    : cap_walk(w, sfd, sub, depth + 1);
		}
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

int ovl_hostdevs_read(const char *procroot, struct ovl_hostdevs *h, struct gs_err *err)
{
	*h = (struct ovl_hostdevs){.majors = {-1, -1, -1}};
	_cleanup_close_ int procfd = open(procroot, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		return gs_err_set(err, errno, "%s", procroot);
	_cleanup_free_ char *devices = NULL;
	size_t len = 0;
	int r = read_proc(procfd, procroot, "devices", &devices, &len, err);
	if (r == 1)
		r = gs_err_setx(err, ENOENT, "%s/devices: missing", procroot);
	if (r >= 0 && ovl_proc_devices_parse(devices, len, &h->majors, err) < 0)
		r = gs_err_wrap(err, "%s/devices", procroot);
	if (r >= 0)
		r = add_frontend(h, procfd, procroot, err);
	if (r >= 0)
		r = add_uvm(h, err);
	_cleanup_close_ int capfd = r >= 0 ? openat(procfd, "driver/nvidia/capabilities",
						    O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
					   : -1;
	if (r >= 0 && capfd < 0 && errno != ENOENT)
		r = gs_err_set(err, errno, "%s/driver/nvidia/capabilities", procroot);
	struct capwalk w = {h, procroot, 0, err};
	if (r >= 0 && capfd >= 0)
		r = cap_walk(&w, capfd, "", 0);
	if (r < 0)
		ovl_hostdevs_clear(h);
	return r;
}

void ovl_hostdevs_clear(struct ovl_hostdevs *h)
{
	free(h->v);
	*h = (struct ovl_hostdevs){.majors = {-1, -1, -1}};
}

/* ---- checking and making nodes ------------------------------------------------------- */

/* The directory D lives in under DEVFD and its last component; *DIRFD -1
 * when that directory (nvidia-caps) is missing.  MAKE creates it (0755). */
static int node_dir(int devfd, const struct ovl_hostdev *d, bool make, int *dirfd,
		    const char **base, struct gs_err *err)
{
	const char *slash = strchr(d->name, '/');
	*base = slash ? slash + 1 : d->name;
	if (!slash) {
		*dirfd = fcntl(devfd, F_DUPFD_CLOEXEC, 3);
		return *dirfd < 0 ? gs_err_set(err, errno, "/dev") : 0;
	}
	char sub[64];
	snprintf(sub, sizeof(sub), "%.*s", (int)(slash - d->name), d->name);
	bool made = make && mkdirat(devfd, sub, 0755) == 0;
	if (make && !made && errno != EEXIST)
		return gs_err_set(err, errno, "mkdir /dev/%s", sub);
	*dirfd = gs_open_beneath(devfd, sub, O_PATH | O_DIRECTORY, 0);
	if (*dirfd < 0 && errno == ENOENT && !make)
		return 0;
	if (*dirfd < 0)
		return gs_err_set(err, errno, "/dev/%s (a directory, no symlink)", sub);
	/* as nvidia-modprobe leaves it: 0755 whatever the umask, root's */
	if (made && fchownat(*dirfd, "", 0, 0, AT_EMPTY_PATH) < 0)
		return gs_err_set(err, errno, "chown /dev/%s", sub);
	return made ? ovl_chmod_fd(*dirfd, 0755, sub, err) : 0;
}

static void describe_other(const struct stat *st, char *what, size_t len)
{
	if (S_ISCHR(st->st_mode))
		snprintf(what, len, "character device %u:%u", major(st->st_rdev), minor(st->st_rdev));
	else
		snprintf(what, len, "%s", S_ISLNK(st->st_mode) ? "a symlink" : S_ISDIR(st->st_mode) ? "a directory"
					   : S_ISREG(st->st_mode) ? "a regular file" : "not a character device");
}

static enum ovl_node_state judge(const struct ovl_hostdev *d, const struct stat *st, char *what,
				 size_t len)
{
	if (!S_ISCHR(st->st_mode) || st->st_rdev != makedev((unsigned int)d->major, d->minor)) {
		describe_other(st, what, len);
		return OVL_NODE_CONFLICT;
	}
	if ((st->st_mode & 07777) != d->attrs.mode || st->st_uid != d->attrs.uid ||
	    st->st_gid != d->attrs.gid) {
		snprintf(what, len, "mode %04o owner %u:%u", (unsigned int)(st->st_mode & 07777),
			 (unsigned int)st->st_uid, (unsigned int)st->st_gid);
		return OVL_NODE_BAD_MODE;
	}
	return OVL_NODE_OK;
}

int ovl_hostdev_check(int devfd, const struct ovl_hostdev *d, enum ovl_node_state *st,
		      char *what, size_t len, struct gs_err *err)
{
	what[0] = '\0';
	if (d->major < 0) {
		*st = OVL_NODE_NO_MODULE;
		snprintf(what, len, "module %s not loaded", ovl_nv_module_name(d->module));
		return 0;
	}
	const char *base;
	_cleanup_close_ int dirfd = -1;
	int r = node_dir(devfd, d, false, &dirfd, &base, err);
	if (r < 0)
		return r;
	struct stat s;
	if (dirfd < 0 || fstatat(dirfd, base, &s, AT_SYMLINK_NOFOLLOW) < 0) {
		if (dirfd >= 0 && errno != ENOENT)
			return gs_err_set(err, errno, "/dev/%s", d->name);
		*st = OVL_NODE_MISSING;
		return 0;
	}
	*st = judge(d, &s, what, len);
	return 0;
}

/* Owner and mode of the node BASE in DIRFD, opened without following
 * anything and checked to be D's device first. */
static int fix_attrs(int dirfd, const char *base, const struct ovl_hostdev *d, struct gs_err *err)
{
	_cleanup_close_ int fd = gs_open_beneath(dirfd, base, O_PATH, 0);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "/dev/%s", d->name);
	char what[96];
	if (judge(d, &st, what, sizeof(what)) == OVL_NODE_CONFLICT)
		return gs_err_setx(err, EEXIST, "/dev/%s is %s, not character device %d:%u: left alone",
				   d->name, what, d->major, d->minor);
	if (fchownat(fd, "", d->attrs.uid, d->attrs.gid, AT_EMPTY_PATH) < 0)
		return gs_err_set(err, errno, "chown /dev/%s", d->name);
	return ovl_chmod_fd(fd, d->attrs.mode, d->name, err);
}

int ovl_hostdev_make(int devfd, const struct ovl_hostdev *d, struct gs_err *err)
{
	if (d->major < 0)
		return gs_err_setx(err, ENODEV, "/dev/%s: module %s is not loaded (its major is unknown)",
				   d->name, ovl_nv_module_name(d->module));
	const char *base;
	_cleanup_close_ int dirfd = -1;
	int r = node_dir(devfd, d, true, &dirfd, &base, err);
	if (r < 0)
		return r;
	dev_t dev = makedev((unsigned int)d->major, d->minor);
	if (mknodat(dirfd, base, S_IFCHR | (d->attrs.mode & 0777), dev) < 0 && errno != EEXIST)
		return gs_err_set(err, errno, "mknod /dev/%s", d->name);
	return fix_attrs(dirfd, base, d, err); /* EEXIST: whatever is there is judged */
}

/* ---- /dev/char links --------------------------------------------------------------------- */

/* Appends "WHAT" to the malloc'd list *NOTE ("a, b"). */
static void note_add(char **note, const char *what)
{
	char *n = NULL;
	if (asprintf(&n, "%s%s%s", *note ? *note : "", *note ? ", " : "", what) < 0)
		return;
	free(*note);
	*note = n;
}

void ovl_dev_char_links(const char *devroot, const struct ovl_device *devs, size_t n, char **note)
{
	*note = NULL;
	if (n == 0)
		return;
	_cleanup_close_ int devfd = open(devroot, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (devfd < 0) {
		note_add(note, "no /dev/char (the device directory cannot be opened)");
		return;
	}
	if (mkdirat(devfd, "char", 0755) < 0 && errno != EEXIST) {
		note_add(note, "no /dev/char (cannot create it)");
		return;
	}
	_cleanup_close_ int dfd = gs_open_beneath(devfd, "char", O_PATH | O_DIRECTORY, 0);
	if (dfd < 0) {
		note_add(note, "no /dev/char (not a directory)");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char name[32], target[80], what[160];
		struct stat st;
		snprintf(name, sizeof(name), "%u:%u", (unsigned int)devs[i].major, (unsigned int)devs[i].minor);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
			continue; /* there already (udev's, or anything else): left alone */
		snprintf(target, sizeof(target), "../%s", devs[i].name);
		if (symlinkat(target, dfd, name) == 0 || errno == EEXIST)
			snprintf(what, sizeof(what), "created /dev/char/%s -> %s", name, target);
		else
			snprintf(what, sizeof(what), "/dev/char/%s: %s", name, strerror(errno));
		note_add(note, what);
	}
}
