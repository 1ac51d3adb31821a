/* SPDX-License-Identifier: Apache-2.0 */
/* The host's driver version and GPUs, from what the kernel module
 * publishes under /proc (no NVML): the one reader, for gpu-stage-hook (the
 * devices a container asks for) and `gpu-stage cdi` (the devices a CDI
 * spec names), so that both count and order the GPUs the same way. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/hostdev.h"
#include "gs/overlay.h"
#include "gs/version.h"

#define INFO_MAX 65536

static int read_small(const char *path, char **out, struct gs_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return gs_err_set(err, errno, "%s", path);
	return gs_read_all_fd(fd, INFO_MAX, path, out, NULL, err);
}

/* PREFIX/NAME, malloc'd (no fixed buffer: a long --proc-root is used
 * whole, never cut short). */
static int path_join(const char *prefix, const char *name, char **out, struct gs_err *err)
{
	if (asprintf(out, "%s/%s", prefix, name) < 0) {
		*out = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return 0;
}

int ovl_driver_version(const char *procroot, char **out, struct gs_err *err)
{
	char ver[GS_VERSION_MAX + 1];
	_cleanup_free_ char *text = NULL, *path = NULL;
	if (path_join(procroot, "driver/nvidia/version", &path, err) < 0)
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

/* DIR/BUS/information into *G. */
static int read_one(const char *dir, const char *bus, struct ovl_gpu *g, struct gs_err *err)
{
	_cleanup_free_ char *text = NULL, *sub = NULL, *path = NULL;
	int r = path_join(dir, bus, &sub, err);
	if (r >= 0)
		r = path_join(sub, "information", &path, err);
	if (r >= 0)
		r = read_small(path, &text, err);
	if (r >= 0)
		r = ovl_gpu_info_parse(text, bus, g, err);
	return r < 0 ? gs_err_wrap(err, "%s", dir) : 0;
}

int ovl_gpus_read(const char *procroot, struct ovl_gpu **out, size_t *n, struct gs_err *err)
{
	_cleanup_free_ char *dir = NULL;
	*out = NULL;
	*n = 0;
	if (path_join(procroot, "driver/nvidia/gpus", &dir, err) < 0)
		return -err->code;
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : gs_err_set(err, errno, "%s", dir);
	_cleanup_free_ struct ovl_gpu *gpus = calloc(OVL_MAX_GPUS, sizeof(*gpus));
	if (!gpus)
		return gs_err_setx(err, ENOMEM, "out of memory");
	size_t k = 0;
	struct dirent *de;
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (k >= OVL_MAX_GPUS)
			return gs_err_setx(err, E2BIG, "%s: more than %d GPUs", dir, OVL_MAX_GPUS);
		if (read_one(dir, de->d_name, &gpus[k], err) < 0)
			return -err->code;
		k++;
	}
	if (errno)
		return gs_err_set(err, errno, "reading %s", dir);
	qsort(gpus, k, sizeof(*gpus), gpu_cmp);
	*out = steal_ptr(&gpus);
	*n = k;
	return 0;
}

/* The DeviceFileMinor of the capability file REL under
 * PROCROOT/driver/nvidia/capabilities. */
static int cap_minor(const char *procroot, const char *rel, const char *token, const char *what,
		     int *minor, struct gs_err *err)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	if (asprintf(&path, "%s/driver/nvidia/capabilities/%s", procroot, rel) < 0) {
		path = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	struct gs_err rerr = GS_ERR_INIT;
	if (read_small(path, &text, &rerr) < 0)
		return rerr.code == ENOENT
			       ? gs_err_setx(err, ENODEV, "NVIDIA_VISIBLE_DEVICES: MIG device %s: no %s (%s absent)",
					     token, what, path)
			       : gs_err_setx(err, rerr.code, "NVIDIA_VISIBLE_DEVICES: MIG device %s: %s", token,
					     rerr.msg);
	struct ovl_nv_attrs a;
	if (ovl_nv_attrs_parse(text, strlen(text), &a, err) < 0)
		return gs_err_wrap(err, "%s", path);
	if (a.minor < 0)
		return gs_err_setx(err, EBADMSG, "%s: no DeviceFileMinor line", path);
	*minor = a.minor;
	return 0;
}

int ovl_mig_caps_read(const char *procroot, int gpu_minor, const struct ovl_mig *m,
		      const char *token, int *gi_minor, int *ci_minor, struct gs_err *err)
{
	char rel[96], what[64];
	snprintf(rel, sizeof(rel), "gpu%d/mig/gi%u/access", gpu_minor, m->gi);
	snprintf(what, sizeof(what), "GPU instance %u on GPU %zu", m->gi, m->gpu);
	int r = cap_minor(procroot, rel, token, what, gi_minor, err);
	if (r < 0)
		return r;
	snprintf(rel, sizeof(rel), "gpu%d/mig/gi%u/ci%u/access", gpu_minor, m->gi, m->ci);
	snprintf(what, sizeof(what), "compute instance %u in GPU instance %u", m->ci, m->gi);
	return cap_minor(procroot, rel, token, what, ci_minor, err);
}
