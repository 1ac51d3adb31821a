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
#include "hook.h"

#define INFO_MAX 65536
#define MAX_GPUS 64

static int read_small(const char *path, char **out, struct gs_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return gs_err_set(err, errno, "%s", path);
	size_t len;
	return hk_read_all(fd, INFO_MAX, path, out, &len, err);
}

/* First token that looks like a version ("535.261.03") after "Module". */
static bool version_token(const char *text, char *buf, size_t len)
{
	const char *p = strstr(text, "Module");
	for (p = p ? p : text; *p;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		size_t n = strcspn(p, " \t\n");
		bool ok = n > 2 && n < len && isdigit((unsigned char)p[0]) && memchr(p, '.', n);
		for (size_t i = 0; ok && i < n; i++)
			ok = isdigit((unsigned char)p[i]) || p[i] == '.';
		if (ok) {
			memcpy(buf, p, n);
			buf[n] = '\0';
			return true;
		}
		p += n;
	}
	return false;
}

int hk_driver_version(const char *procroot, char **out, struct gs_err *err)
{
	char path[4200], ver[64];
	_cleanup_free_ char *text = NULL;
	snprintf(path, sizeof(path), "%s/driver/nvidia/version", procroot);
	struct gs_err e = GS_ERR_INIT;
	if (read_small(path, &text, &e) >= 0 && version_token(text, ver, sizeof(ver)))
		return (*out = strdup(ver)) ? 0 : gs_err_setx(err, ENOMEM, "out of memory");
	free(text);
	text = NULL;
	if (read_small("/sys/module/nvidia/version", &text, &e) >= 0 &&
	    version_token(text, ver, sizeof(ver)))
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
	char dir[4200], path[4500];
	snprintf(dir, sizeof(dir), "%s/driver/nvidia/gpus", procroot);
	_cleanup_closedir_ DIR *d = opendir(dir);
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : gs_err_set(err, errno, "%s", dir);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (*n >= MAX_GPUS)
			return gs_err_setx(err, E2BIG, "%s: more than %d GPUs", dir, MAX_GPUS);
		snprintf(path, sizeof(path), "%s/%s/information", dir, de->d_name);
		_cleanup_free_ char *text = NULL;
		int r = read_small(path, &text, err);
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

/* Adds DEVROOT/NAME with the numbers the node carries. */
static int add_node(struct devlist *l, const char *devroot, const char *name, bool optional,
		    char *note, size_t notelen, struct gs_err *err)
{
	char path[4200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", devroot, name);
	if (stat(path, &st) < 0 || !S_ISCHR(st.st_mode)) {
		if (optional) {
			size_t used = strlen(note);
			snprintf(note + used, notelen - used, "%s%s absent (module not loaded?)",
				 used ? "; " : "", path);
			return 0;
		}
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
		   unsigned int caps, const char *devroot, char *note, size_t notelen,
		   struct gs_err *err)
{
	char name[64];
	int r = add_node(l, devroot, "nvidiactl", false, note, notelen, err);
	for (size_t i = 0; r >= 0 && i < nsel; i++) {
		snprintf(name, sizeof(name), "nvidia%d", gpus[sel[i]].minor);
		r = add_node(l, devroot, name, false, note, notelen, err);
	}
	if (r >= 0 && (caps & GS_CAP_COMPUTE))
		r = add_node(l, devroot, "nvidia-uvm", true, note, notelen, err);
	if (r >= 0 && (caps & GS_CAP_COMPUTE))
		r = add_node(l, devroot, "nvidia-uvm-tools", true, note, notelen, err);
	if (r >= 0 && (caps & GS_CAP_DISPLAY))
		r = add_node(l, devroot, "nvidia-modeset", true, note, notelen, err);
	return r;
}

int hk_devices_resolve(const struct ovl_env *e, unsigned int caps, const char *procroot,
		       const char *devroot, struct ovl_device **out, size_t *n,
		       char *note, size_t notelen, struct gs_err *err)
{
	*out = NULL;
	*n = 0;
	note[0] = '\0';
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
		r = add_all(&l, gpus, sel, nsel, ovl_caps_effective(caps), devroot, note, notelen, err);
	free(gpus);
	free(sel);
	if (r < 0) {
		free(l.v);
		return r;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}
