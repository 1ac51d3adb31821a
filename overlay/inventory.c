/* SPDX-License-Identifier: Apache-2.0 */
/* The device inventory (gs/inventory.h): strict parsing with jansson, the
 * trust checks on the file, MIG-<uuid> to GPU:GI:CI. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/inventory.h"
#include "gs/manifest.h"

static void decrefp(json_t **j)
{
	json_decref(*j);
}

#define FIX "run 'gpu-stage devices --inventory' on the host"

void gs_inventory_clear(struct gs_inventory *inv)
{
	free(inv->nvml);
	free(inv->timestamp);
	free(inv->gpus);
	free(inv->migs);
	*inv = (struct gs_inventory){0};
}

/* PREFIX ("GPU-", "MIG-") and then hex digits and '-' only. */
static bool uuid_ok(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, 4) != 0 || !s[4])
		return false;
	for (const char *p = s + 4; *p; p++)
		if (!isxdigit((unsigned char)*p) && *p != '-')
			return false;
	return true;
}

static bool busid_ok(const char *s)
{
	if (!*s)
		return false;
	for (const char *p = s; *p; p++)
		if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
			return false;
	return true;
}

struct ctx {
	const char *name;
	struct gs_err *err;
};

static int bad(const struct ctx *x, const char *where, const char *what)
{
	return gs_err_setx(x->err, EBADMSG, "%s: %s: %s (" FIX " to write it anew)", x->name, where, what);
}

/* O's member KEY as a string that fits LEN bytes and passes OK (or NULL). */
static int get_str(const struct ctx *x, json_t *o, const char *key, const char *where, char *buf,
		   size_t len, bool (*ok)(const char *))
{
	char w[96];
	snprintf(w, sizeof(w), "%s.%s", where, key);
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return bad(x, w, "missing or not a string");
	const char *s = json_string_value(v);
	if (json_string_length(v) != strlen(s) || strlen(s) >= len)
		return bad(x, w, "too long or holds a NUL");
	if (ok && !ok(s))
		return bad(x, w, "malformed");
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

static int get_uint(const struct ctx *x, json_t *o, const char *key, const char *where,
		    json_int_t max, unsigned int *out)
{
	char w[96];
	snprintf(w, sizeof(w), "%s.%s", where, key);
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return bad(x, w, "missing or not a number in range");
	*out = (unsigned int)json_integer_value(v);
	return 0;
}

/* Only the keys in KEYS (NULL-terminated). */
static int only_keys(const struct ctx *x, json_t *o, const char *where, const char *const *keys)
{
	const char *k = gs_json_unknown_key(o, keys);
	char w[160];
	if (!k)
		return 0;
	snprintf(w, sizeof(w), "%s.%.64s", where, k);
	return bad(x, w, "unknown member");
}

static bool gpu_uuid_ok(const char *s) { return uuid_ok(s, "GPU-"); }
static bool mig_uuid_ok(const char *s) { return uuid_ok(s, "MIG-"); }
static bool mode_ok(const char *s)
{
	return !strcmp(s, "enabled") || !strcmp(s, "disabled") || !strcmp(s, "unsupported");
}

static int parse_gpu(const struct ctx *x, json_t *o, size_t i, struct gs_inventory *inv)
{
	struct gs_inv_gpu *g = &inv->gpus[i];
	static const char *const keys[] = {"index", "minor", "uuid", "pci_bus_id", "mig_mode", NULL};
	char w[32];
	snprintf(w, sizeof(w), "gpus[%zu]", i);
	if (!json_is_object(o))
		return bad(x, w, "not an object");
	int r = only_keys(x, o, w, keys);
	if (r >= 0)
		r = get_uint(x, o, "index", w, OVL_MAX_GPUS, &g->index);
	if (r >= 0 && g->index != i)
		r = bad(x, w, "index out of order (GPUs are listed 0, 1, ... by NVML index)");
	if (r >= 0)
		r = get_uint(x, o, "minor", w, 253, &g->minor); /* 254, 255: modeset, nvidiactl */
	if (r >= 0)
		r = get_str(x, o, "uuid", w, g->uuid, sizeof(g->uuid), gpu_uuid_ok);
	if (r >= 0)
		r = get_str(x, o, "pci_bus_id", w, g->pci_bus_id, sizeof(g->pci_bus_id), busid_ok);
	if (r >= 0)
		r = get_str(x, o, "mig_mode", w, g->mig_mode, sizeof(g->mig_mode), mode_ok);
	for (size_t j = 0; r >= 0 && j < i; j++)
		if (!strcasecmp(inv->gpus[j].uuid, g->uuid))
			r = bad(x, w, "the same GPU UUID twice");
	return r;
}

static int parse_mig(const struct ctx *x, json_t *o, size_t i, const struct gs_inventory *inv,
		     struct gs_inv_mig *m)
{
	static const char *const keys[] = {"uuid", "gpu_index", "gpu_uuid", "gi", "ci", NULL};
	char w[32];
	snprintf(w, sizeof(w), "mig_devices[%zu]", i);
	if (!json_is_object(o))
		return bad(x, w, "not an object");
	int r = only_keys(x, o, w, keys);
	if (r >= 0)
		r = get_str(x, o, "uuid", w, m->uuid, sizeof(m->uuid), mig_uuid_ok);
	if (r >= 0)
		r = get_uint(x, o, "gpu_index", w, OVL_MAX_GPUS, &m->gpu_index);
	if (r >= 0)
		r = get_str(x, o, "gpu_uuid", w, m->gpu_uuid, sizeof(m->gpu_uuid), gpu_uuid_ok);
	if (r >= 0)
		r = get_uint(x, o, "gi", w, GS_INV_ID_MAX, &m->gi);
	if (r >= 0)
		r = get_uint(x, o, "ci", w, GS_INV_ID_MAX, &m->ci);
	if (r < 0)
		return r;
	if (m->gpu_index >= inv->n_gpus || strcmp(inv->gpus[m->gpu_index].uuid, m->gpu_uuid))
		return bad(x, w, "its parent GPU (gpu_index, gpu_uuid) is not in gpus");
	if (strcmp(inv->gpus[m->gpu_index].mig_mode, "enabled"))
		return bad(x, w, "its parent GPU's MIG mode is not enabled");
	for (size_t j = 0; j < i; j++)
		if (!strcasecmp(inv->migs[j].uuid, m->uuid))
			return bad(x, w, "the same MIG UUID twice");
	return 0;
}

/* ARRAY KEY of ROOT (at most MAX elements) into *V (calloc'd, *N). */
static int get_array(const struct ctx *x, json_t *root, const char *key, size_t max, size_t size,
		     void **v, size_t *n, json_t **arr)
{
	*arr = json_object_get(root, key);
	if (!json_is_array(*arr))
		return bad(x, key, "missing or not an array");
	*n = json_array_size(*arr);
	if (*n > max) {
		char w[64];
		snprintf(w, sizeof(w), "more than %zu entries", max);
		return bad(x, key, w);
	}
	*v = calloc(*n ? *n : 1, size);
	return *v ? 0 : gs_err_setx(x->err, ENOMEM, "out of memory");
}

static bool ver_ok(const char *s) { return gs_version_valid(s); }
static bool schema_ok(const char *s) { return !strcmp(s, GS_INVENTORY_SCHEMA); }
static bool abs_ok(const char *s) { return s[0] == '/'; }

static int parse_meta(const struct ctx *x, json_t *root, bool full, struct gs_inventory *inv)
{
	static const char *const file_keys[] = {"schema", "driver", "nvml", "timestamp", "gpus",
						"mig_devices", NULL};
	static const char *const helper_keys[] = {"driver", "gpus", "mig_devices", NULL};
	char schema[64], buf[4096], ts[64];
	int r = only_keys(x, root, "top level", full ? file_keys : helper_keys);
	if (r >= 0)
		r = get_str(x, root, "driver", "top level", inv->driver, sizeof(inv->driver), ver_ok);
	if (r < 0 || !full)
		return r;
	r = get_str(x, root, "schema", "top level", schema, sizeof(schema), schema_ok);
	if (r >= 0)
		r = get_str(x, root, "nvml", "top level", buf, sizeof(buf), abs_ok);
	if (r >= 0)
		r = get_str(x, root, "timestamp", "top level", ts, sizeof(ts), NULL);
	if (r < 0)
		return r;
	inv->nvml = strdup(buf);
	inv->timestamp = strdup(ts);
	return inv->nvml && inv->timestamp ? 0 : gs_err_setx(x->err, ENOMEM, "out of memory");
}

static int parse_root(const struct ctx *x, json_t *root, bool full, struct gs_inventory *inv)
{
	json_t *arr;
	if (!json_is_object(root))
		return bad(x, "top level", "not an object");
	int r = parse_meta(x, root, full, inv);
	if (r >= 0)
		r = get_array(x, root, "gpus", OVL_MAX_GPUS, sizeof(*inv->gpus), (void **)&inv->gpus,
			      &inv->n_gpus, &arr);
	for (size_t i = 0; r >= 0 && i < inv->n_gpus; i++)
		r = parse_gpu(x, json_array_get(arr, i), i, inv);
	if (r >= 0)
		r = get_array(x, root, "mig_devices", inv->n_gpus * GS_INV_MAX_MIG, sizeof(*inv->migs),
			      (void **)&inv->migs, &inv->n_migs, &arr);
	for (size_t i = 0; r >= 0 && i < inv->n_migs; i++)
		r = parse_mig(x, json_array_get(arr, i), i, inv, &inv->migs[i]);
	return r;
}

int gs_inventory_parse(const char *text, size_t len, const char *name, bool full,
		       struct gs_inventory *out, struct gs_err *err)
{
	struct ctx x = {name, err};
	json_error_t je;
	*out = (struct gs_inventory){0};
	if (len > GS_INVENTORY_MAX)
		return gs_err_setx(err, EFBIG, "%s: larger than %u bytes", name, GS_INVENTORY_MAX);
	_cleanup_(decrefp) json_t *root =
		json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return gs_err_setx(err, EBADMSG, "%s:%d: %s (" FIX " to write it anew)", name, je.line,
				   je.text);
	int r = parse_root(&x, root, full, out);
	if (r < 0)
		gs_inventory_clear(out);
	return r;
}

/* ---- the file ---------------------------------------------------------------------- */

static int trusted(const struct stat *st, const char *what, const char *path, struct gs_err *err)
{
	if (st->st_uid != 0)
		return gs_err_setx(err, EPERM,
				   "%s: %s is owned by uid %u, not root: the inventory is not trusted (" FIX ")",
				   path, what, (unsigned int)st->st_uid);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return gs_err_setx(err, EPERM,
				   "%s: %s is writable by group or others (mode %04o): the inventory is not trusted (" FIX ")",
				   path, what, (unsigned int)(st->st_mode & 07777));
	return 0;
}

/* The directory of PATH, opened and checked: its fd. */
static int open_dir(const char *path, struct gs_err *err)
{
	_cleanup_free_ char *copy = strdup(path);
	struct stat st;
	if (!copy)
		return gs_err_setx(err, ENOMEM, "out of memory");
	const char *dir = dirname(copy);
	_cleanup_close_ int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? gs_err_setx(err, ENOENT, "%s: no such file (" FIX ")", path)
				       : gs_err_set(err, errno, "%s", dir);
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", dir);
	if (trusted(&st, "its directory", path, err) < 0)
		return -err->code;
	return steal_fd(&fd);
}

int gs_inventory_load(const char *path, struct gs_inventory *out, struct gs_err *err)
{
	struct stat st;
	_cleanup_free_ char *text = NULL, *copy = strdup(path);
	size_t len = 0;
	*out = (struct gs_inventory){0};
	if (!copy)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (path[0] != '/')
		return gs_err_setx(err, EINVAL, "%s: the inventory must be an absolute path", path);
	_cleanup_close_ int dirfd = open_dir(path, err);
	if (dirfd < 0)
		return dirfd;
	_cleanup_close_ int fd = gs_open_beneath(dirfd, basename(copy), O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		return errno == ENOENT ? gs_err_setx(err, ENOENT, "%s: no such file (" FIX ")", path)
		       : errno == ELOOP ? gs_err_setx(err, ELOOP, "%s: a symlink: the inventory is not trusted (" FIX ")", path)
					: gs_err_set(err, errno, "%s", path);
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", path);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EPERM, "%s: not a regular file: the inventory is not trusted (" FIX ")", path);
	if (trusted(&st, "the file", path, err) < 0)
		return -err->code;
	if (gs_read_all_fd(fd, GS_INVENTORY_MAX, path, &text, &len, err) < 0)
		return -err->code;
	return gs_inventory_parse(text, len, path, true, out, err);
}

/* ---- MIG-<uuid> ---------------------------------------------------------------------- */

int gs_inventory_mig_find(const struct gs_inventory *inv, const char *path, const char *driver,
			  const struct ovl_gpu *gpus, size_t n_gpus, const char *uuid,
			  struct ovl_mig *m, struct gs_err *err)
{
	if (strcmp(inv->driver, driver))
		return gs_err_setx(err, ESTALE,
				   "NVIDIA_VISIBLE_DEVICES: %s: %s was written for driver %s (at %s), the loaded module is %s: stale; " FIX,
				   uuid, path, inv->driver, inv->timestamp ? inv->timestamp : "?", driver);
	const struct gs_inv_mig *d = NULL;
	for (size_t i = 0; i < inv->n_migs && !d; i++)
		if (!strcasecmp(inv->migs[i].uuid, uuid))
			d = &inv->migs[i];
	if (!d)
		return gs_err_setx(err, ENODEV,
				   "NVIDIA_VISIBLE_DEVICES: no MIG device %s in %s (written %s; after a MIG reconfiguration " FIX ")",
				   uuid, path, inv->timestamp ? inv->timestamp : "?");
	const struct gs_inv_gpu *parent = &inv->gpus[d->gpu_index];
	for (size_t i = 0; i < n_gpus; i++) {
		if (strcasecmp(gpus[i].uuid, parent->uuid))
			continue;
		if ((unsigned int)gpus[i].minor != parent->minor)
			break;
		*m = (struct ovl_mig){.gpu = i, .gi = d->gi, .ci = d->ci};
		return 0;
	}
	return gs_err_setx(err, ESTALE,
			   "NVIDIA_VISIBLE_DEVICES: %s: its GPU %s (minor %u in %s) is not the host's now: stale; " FIX,
			   uuid, parent->uuid, parent->minor, path);
}
