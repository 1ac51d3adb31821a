/* SPDX-License-Identifier: Apache-2.0 */
/* The device inventory: what NVML says about the host's GPUs and MIG
 * devices, written by `gpu-stage devices --inventory` (which runs the
 * dynamic helper gpu-stage-nvml on the staged libnvidia-ml.so.1) and read
 * by gpu-stage-hook and `gpu-stage plan` to resolve MIG-<uuid> in
 * NVIDIA_VISIBLE_DEVICES to GPU:GI:CI (the static hook never loads NVML).
 *
 *   {"schema": "gpu-stage/devices/v1", "driver": "535.261.03",
 *    "nvml": "/var/lib/gpu-stage/535.261.03/lib/utility/libnvidia-ml.so.1",
 *    "timestamp": "2026-12-01T18:00:00Z",
 *    "gpus": [{"index": 0, "minor": 0, "uuid": "GPU-...",
 *              "pci_bus_id": "00000000:01:00.0", "mig_mode": "enabled"}],
 *    "mig_devices": [{"uuid": "MIG-...", "gpu_index": 0, "gpu_uuid": "GPU-...",
 *                     "gi": 1, "ci": 0}]}
 *
 * mig_mode is "enabled", "disabled" or "unsupported"; gpus are in NVML's
 * index order (index 0, 1, ... without a gap); every MIG device's parent
 * is one of them (gpu_index and gpu_uuid agree).  The helper prints the
 * same document without schema, nvml and timestamp, which gpu-stage adds.
 * Libraries never print. */
#ifndef GS_INVENTORY_H
#define GS_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "gs/err.h"
#include "gs/overlay.h"
#include "gs/version.h"

#define GS_INVENTORY_SCHEMA "gpu-stage/devices/v1"
#define GS_INVENTORY_MAX (256u << 10) /* a larger file is refused */
#define GS_INV_MAX_MIG 8              /* MIG devices per GPU (NVML's max is 7) */
#define GS_INV_ID_MAX 1023u           /* the largest GI or CI id accepted */
#define GS_INV_UUID_MAX 95            /* NVML_DEVICE_UUID_V2_BUFFER_SIZE - 1 */
#define GS_INV_BUSID_MAX 31           /* NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE - 1 */

struct gs_inv_gpu {
	unsigned int index, minor;
	char uuid[GS_INV_UUID_MAX + 1];
	char pci_bus_id[GS_INV_BUSID_MAX + 1];
	char mig_mode[16];
};

struct gs_inv_mig {
	char uuid[GS_INV_UUID_MAX + 1];
	unsigned int gpu_index, gi, ci;
	char gpu_uuid[GS_INV_UUID_MAX + 1];
};

struct gs_inventory {
	char driver[GS_VERSION_MAX + 1];
	char *nvml;      /* malloc'd; NULL when parsed without it (the helper's output) */
	char *timestamp; /* the same */
	struct gs_inv_gpu *gpus;
	size_t n_gpus;
	struct gs_inv_mig *migs;
	size_t n_migs;
};

/* Parses and checks TEXT (LEN bytes; NAME in messages) with jansson:
 * duplicate keys, unknown keys, a wrong type, a string out of its syntax
 * (GPU-/MIG- followed by hex digits and '-', bus ids of hex digits ':' '.')
 * or longer than its buffer, more than OVL_MAX_GPUS GPUs or GS_INV_MAX_MIG
 * MIG devices per GPU, an index gap, a MIG device whose parent is not
 * listed, a GPU or MIG UUID given twice: -EBADMSG naming NAME and the member.
 * FULL: schema, nvml (absolute) and timestamp required (the file), else
 * refused (the helper's output). */
int gs_inventory_parse(const char *text, size_t len, const char *name, bool full,
		       struct gs_inventory *out, struct gs_err *err);
void gs_inventory_clear(struct gs_inventory *inv);

/* Reads the inventory file PATH, trusted only when it is a regular file
 * (never through a symlink) owned by root and not writable by group or
 * others, in a directory with the same owner and modes; at most
 * GS_INVENTORY_MAX bytes.  Every refusal names PATH, the reason and the
 * fix (gpu-stage devices --inventory).  -ENOENT when it does not exist. */
int gs_inventory_load(const char *path, struct gs_inventory *out, struct gs_err *err);

/* The MIG device UUID (case-insensitive) of INV as GPU:GI:CI on the
 * host's GPUS (/proc's, sorted as ovl_gpus_read sorts them) into *M: its
 * parent found by UUID.  DRIVER: the loaded module's version.  A driver
 * other than INV's, a parent GPU the host no longer has (or with another
 * device minor), or an unknown UUID is an error naming PATH and the fix. */
int gs_inventory_mig_find(const struct gs_inventory *inv, const char *path, const char *driver,
			  const struct ovl_gpu *gpus, size_t n_gpus, const char *uuid,
			  struct ovl_mig *m, struct gs_err *err);

#endif
