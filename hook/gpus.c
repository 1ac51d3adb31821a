/* SPDX-License-Identifier: Apache-2.0 */
/* The driver version and the GPUs, from what the kernel module publishes
 * under /proc (no NVML), and the device nodes they map to. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "hook.h"
#include "gs/version.h"

#define INFO_MAX 65536
#define MAX_GPUS 64

static int read_small(const char *path, char **out, struct gs_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return gs_err_set(err, errno, "%s", path);
	return gs_read_all_fd(fd, INFO_MAX, path, out, NULL, err);
}

/* PREFIX/NAME, malloc'd (no fixed buffer: a long --proc-root or
 * --dev-root is used whole, never cut short). */
static int join(const char *prefix, const char *name, char **out, struct gs_err *err)
{
	if (asprintf(out, "%s/%s", prefix, name) < 0) {
		*out = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return 0;
}

int hk_driver_version(const char *procroot, char **out, struct gs_err *err)
{
	char ver[GS_VERSION_MAX + 1];
	_cleanup_free_ char *text = NULL, *path = NULL;
	if (join(procroot, "driver/nvidia/version", &path, err) < 0)
		return -err->code;
	struct gs_err e = GS_ERR_INIT;
	if (read_small(path, &text, &e) >= 0 && gs_kmod_version_parse(text, true, ver))
		return (*out = strdup(ver)) ? 0 : gs_err_setx(err, ENOMEM, "out of memory");
	free(text);
	text = NULL;
	if (read_small("/sys/module/nvidia/version", &text, &e) >= 0 &&
	    gs_kmod_version_parse(text, false, ver))
		return (*out = strdup(ver)) ? 0 : gs_err_setx(err, ENOMEM, "out of memory");
	return gs_err_setx(err, ENODEV,
			   "no NVIDIA kernel module version in %s or /sys/module/nvidia/version (is the driver loaded?); pass --driver VER",
			   path);
}

static int gpu_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ovl_gpu *)a)->bus_id, ((const struct ovl_gpu *)b)->bus_id);
}

static int list_gpus(const char *procroot, struct ovl_gpu *gpus, size_t *n, struct gs_err *err)
{
	_cleanup_free_ char *dir = NULL;
	*n = 0;
	if (join(procroot, "driver/nvidia/gpus", &dir, err) < 0)
		return -err->code;
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : gs_err_set(err, errno, "%s", dir);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (*n >= MAX_GPUS)
			return gs_err_setx(err, E2BIG, "%s: more than %d GPUs", dir, MAX_GPUS);
		_cleanup_free_ char *text = NULL, *sub = NULL, *path = NULL;
		int r = join(dir, de->d_name, &sub, err);
		if (r >= 0)
			r = join(sub, "information", &path, err);
		if (r >= 0)
			r = read_small(path, &text, err);
		if (r >= 0)
			r = ovl_gpu_info_parse(text, de->d_name, &gpus[*n], err);
		if (r < 0)
			return gs_err_wrap(err, "%s", dir);
		(*n)++;
	}
	qsort(gpus, *n, sizeof(*gpus), gpu_cmp);
	return 0;
}

struct devlist {
	struct ovl_device *v;
	size_t n;
};

/* Appends "PATH absent" to the malloc'd *NOTE (NULL: empty). */
static int note_absent(char **note, const char *path, struct gs_err *err)
{
	char *n = NULL;
	if (asprintf(&n, "%s%s%s absent (module not loaded?)", *note ? *note : "", *note ? "; " : "",
		     path) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	free(*note);
	*note = n;
	return 0;
}

/* Adds DEVROOT/NAME with the numbers the node carries. */
static int add_node(struct devlist *l, const char *devroot, const char *name, bool optional,
		    char **note, struct gs_err *err)
{
	_cleanup_free_ char *path = NULL;
	struct stat st;
	if (strlen(name) >= sizeof(l->v->name))
		return gs_err_setx(err, ENAMETOOLONG, "device name %s too long", name);
	if (join(devroot, name, &path, err) < 0)
		return -err->code;
	if (stat(path, &st) < 0 || !S_ISCHR(st.st_mode)) {
		if (optional)
			return note_absent(note, path, err);
		return errno == ENOENT || !S_ISCHR(st.st_mode)
			       ? gs_err_setx(err, ENODEV, "%s: no such character device", path)
			       : gs_err_set(err, errno, "%s", path);
	}
	struct ovl_device *v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return gs_err_setx(err, ENOMEM, "out of memory");
	l->v = v;
	snprintf(v[l->n].name, sizeof(v[l->n].name), "%s", name);
	v[l->n].major = major(st.st_rdev);
	v[l->n].minor = minor(st.st_rdev);
	l->n++;
	return 0;
}

static int add_all(struct devlist *l, const struct ovl_gpu *gpus, const size_t *sel, size_t nsel,
		   unsigned int caps, const char *devroot, char **note, struct gs_err *err)
{
	char name[32]; /* "nvidia" and an int */
	int r = add_node(l, devroot, "nvidiactl", false, note, err);
	for (size_t i = 0; r >= 0 && i < nsel; i++) {
		snprintf(name, sizeof(name), "nvidia%d", gpus[sel[i]].minor);
		r = add_node(l, devroot, name, false, note, err);
	}
	if (r >= 0 && (caps & GS_CAP_COMPUTE))
		r = add_node(l, devroot, "nvidia-uvm", true, note, err);
	if (r >= 0 && (caps & GS_CAP_COMPUTE))
		r = add_node(l, devroot, "nvidia-uvm-tools", true, note, err);
	if (r >= 0 && (caps & GS_CAP_DISPLAY))
		r = add_node(l, devroot, "nvidia-modeset", true, note, err);
	return r;
}

int hk_devices_resolve(const struct ovl_env *e, unsigned int caps, const char *procroot,
		       const char *devroot, struct ovl_device **out, size_t *n, char **note,
		       struct gs_err *err)
{
	*out = NULL;
	*n = 0;
	*note = NULL;
	if (e->visible != OVL_VISIBLE_ALL && e->visible != OVL_VISIBLE_LIST)
		return 0;
	struct ovl_gpu *gpus = calloc(MAX_GPUS, sizeof(*gpus));
	if (!gpus)
		return gs_err_setx(err, ENOMEM, "out of memory");
	size_t ngpus = 0, nsel = 0, *sel = NULL;
	struct devlist l = {0};
	int r = list_gpus(procroot, gpus, &ngpus, err);
	if (r >= 0 && ngpus == 0)
		r = gs_err_setx(err, ENODEV, "NVIDIA_VISIBLE_DEVICES asks for GPUs but %s/driver/nvidia/gpus lists none",
				procroot);
	if (r >= 0)
		r = ovl_gpus_select(gpus, ngpus, e, &sel, &nsel, err);
	if (r >= 0)
		r = add_all(&l, gpus, sel, nsel, ovl_caps_effective(caps), devroot, note, err);
	free(gpus);
	free(sel);
	if (r < 0) {
		free(l.v);
		free(*note);
		*note = NULL;
		return r;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

/* Appends "WHAT" to the malloc'd list *NOTE ("a, b"). */
static void note_add(char **note, const char *what)
{
	char *n = NULL;
	if (asprintf(&n, "%s%s%s", *note ? *note : "", *note ? ", " : "", what) < 0)
		return;
	free(*note);
	*note = n;
}

void hk_dev_char_links(const char *devroot, const struct ovl_device *devs, size_t n, char **note)
{
	*note = NULL;
	if (n == 0)
		return;
	_cleanup_free_ char *dir = NULL;
	if (join(devroot, "char", &dir, &(struct gs_err)GS_ERR_INIT) < 0)
		return;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		note_add(note, "no /dev/char (cannot create it)");
		return;
	}
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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
