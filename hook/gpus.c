/* SPDX-License-Identifier: Apache-2.0 */
/* The device nodes the selected GPUs map to (the GPUs themselves come from
 * ovl_gpus_read, overlay/gpus.c, which `gpu-stage cdi` shares). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/inventory.h"
#include "hook.h"

/* PREFIX/NAME, malloc'd (no fixed buffer: a long --dev-root is used
 * whole, never cut short). */
static int join(const char *prefix, const char *name, char **out, struct gs_err *err)
{
	if (asprintf(out, "%s/%s", prefix, name) < 0) {
		*out = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
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
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return 0; /* a MIG device's parent GPU, asked for whole too */
	if (join(devroot, name, &path, err) < 0)
		return -err->code;
	int e = stat(path, &st) < 0 ? errno : S_ISCHR(st.st_mode) ? 0 : ENODEV;
	if (e) {
		if (optional)
			return note_absent(note, path, err);
		return e == ENOENT || e == ENODEV
			       ? gs_err_setx(err, ENODEV, "%s: no such character device", path)
			       : gs_err_set(err, e, "%s", path);
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

/* nvidia-uvm missing for a container that asks for compute: CUDA fails at
 * its first allocation with an error that points nowhere, so the start
 * fails here, naming the fix. */
static int uvm_required(const char *devroot, struct gs_err *err)
{
	return gs_err_setx(err, ENODEV,
			   "%s/nvidia-uvm: no such character device, and the container asks for compute (CUDA needs it; the nvidia-uvm module is not loaded or its node was never made): run 'gpu-stage devices --ensure --load' on the host, or set \"require_uvm\": false in the configuration to start such containers without it",
			   devroot);
}

static int add_all(struct devlist *l, const struct ovl_gpu *gpus, const size_t *sel, size_t nsel,
		   unsigned int caps, const char *devroot, bool require_uvm, char **note,
		   struct gs_err *err)
{
	char name[32]; /* "nvidia" and an int */
	int r = add_node(l, devroot, "nvidiactl", false, note, err);
	for (size_t i = 0; r >= 0 && i < nsel; i++) {
		snprintf(name, sizeof(name), "nvidia%d", gpus[sel[i]].minor);
		r = add_node(l, devroot, name, false, note, err);
	}
	if (r >= 0 && (caps & GS_CAP_COMPUTE)) {
		size_t before = l->n;
		r = add_node(l, devroot, "nvidia-uvm", true, note, err);
		if (r >= 0 && l->n == before && require_uvm)
			r = uvm_required(devroot, err);
	}
	if (r >= 0 && (caps & GS_CAP_COMPUTE))
		r = add_node(l, devroot, "nvidia-uvm-tools", true, note, err);
	if (r >= 0 && (caps & GS_CAP_DISPLAY))
		r = add_node(l, devroot, "nvidia-modeset", true, note, err);
	return r;
}

/* The MIG-<uuid> tokens of E's list as GPU:GI:CI, appended to *MIGS (*N),
 * through the device inventory INVENTORY (read only when one is asked
 * for), checked against the loaded module's version and the host's GPUS. */
static int inventory_migs(const struct ovl_env *e, const struct ovl_gpu *gpus, size_t ngpus,
			  const char *procroot, const char *inventory, struct ovl_mig **migs,
			  size_t *n, struct gs_err *err)
{
	struct gs_inventory inv = {0};
	_cleanup_free_ char *driver = NULL;
	bool loaded = false;
	int r = 0;
	for (size_t i = 0; r >= 0 && e->visible == OVL_VISIBLE_LIST && i < e->n_devices; i++) {
		const char *t = e->devices[i];
		if (strncmp(t, "MIG-", 4) != 0)
			continue;
		if (!loaded) {
			r = gs_inventory_load(inventory, &inv, err);
			if (r == -ENOENT)
				r = gs_err_wrap(err, "NVIDIA_VISIBLE_DEVICES: %s: a MIG UUID needs the device inventory", t);
			if (r >= 0)
				r = ovl_driver_version(procroot, &driver, err);
			loaded = r >= 0;
			if (r < 0)
				break;
		}
		struct ovl_mig *v = realloc(*migs, (*n + 1) * sizeof(*v));
		if (!v) {
			r = gs_err_setx(err, ENOMEM, "out of memory");
			break;
		}
		*migs = v;
		r = gs_inventory_mig_find(&inv, inventory, driver, gpus, ngpus, t, &v[*n], err);
		if (r >= 0)
			(*n)++;
	}
	gs_inventory_clear(&inv);
	return r;
}

/* Each MIG device: its parent GPU's node, then the capability nodes of its
 * GPU instance and compute instance (/dev/nvidia-caps/nvidia-capN, N from
 * the capability files), as libnvidia-container gives them. */
static int add_migs(struct devlist *l, const struct ovl_gpu *gpus, size_t ngpus,
		    const struct ovl_env *e, const struct hk_dev_roots *roots, char **note,
		    struct gs_err *err)
{
	_cleanup_free_ struct ovl_mig *migs = NULL;
	size_t n = 0;
	int r = ovl_migs_select(ngpus, e, &migs, &n, err);
	if (r >= 0)
		r = inventory_migs(e, gpus, ngpus, roots->proc_root, roots->inventory, &migs, &n, err);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		char name[64], token[48];
		int gi = -1, ci = -1, minor = gpus[migs[i].gpu].minor;
		snprintf(token, sizeof(token), "%zu:%u:%u", migs[i].gpu, migs[i].gi, migs[i].ci);
		r = ovl_mig_caps_read(roots->proc_root, minor, &migs[i], token, &gi, &ci, err);
		if (r < 0)
			break;
		snprintf(name, sizeof(name), "nvidia%d", minor);
		r = add_node(l, roots->dev_root, name, false, note, err);
		snprintf(name, sizeof(name), "nvidia-caps/nvidia-cap%d", gi);
		if (r >= 0)
			r = add_node(l, roots->dev_root, name, false, note, err);
		snprintf(name, sizeof(name), "nvidia-caps/nvidia-cap%d", ci);
		if (r >= 0)
			r = add_node(l, roots->dev_root, name, false, note, err);
	}
	return r;
}

int hk_devices_resolve(const struct ovl_env *e, unsigned int caps, const struct hk_dev_roots *roots,
		       bool require_uvm, struct ovl_device **out, size_t *n, char **note,
		       struct gs_err *err)
{
	const char *procroot = roots->proc_root, *devroot = roots->dev_root;
	*out = NULL;
	*n = 0;
	*note = NULL;
	if (e->visible != OVL_VISIBLE_ALL && e->visible != OVL_VISIBLE_LIST)
		return 0;
	struct ovl_gpu *gpus = NULL;
	size_t ngpus = 0, nsel = 0, *sel = NULL;
	struct devlist l = {0};
	int r = ovl_gpus_read(procroot, &gpus, &ngpus, err);
	if (r >= 0 && ngpus == 0)
		r = gs_err_setx(err, ENODEV, "NVIDIA_VISIBLE_DEVICES asks for GPUs but %s/driver/nvidia/gpus lists none",
				procroot);
	if (r >= 0)
		r = ovl_gpus_select(gpus, ngpus, e, &sel, &nsel, err);
	if (r >= 0)
		r = add_all(&l, gpus, sel, nsel, ovl_caps_effective(caps), devroot, require_uvm, note,
			    err);
	if (r >= 0)
		r = add_migs(&l, gpus, ngpus, e, roots, note, err);
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
