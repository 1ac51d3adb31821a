/* SPDX-License-Identifier: Apache-2.0 */
/* The host's NVIDIA device nodes: which ones it should have, from what the
 * kernel modules publish under /proc, and whether DEV has them (what
 * nvidia-modprobe checks and makes; `gpu-stage devices`).
 *
 * Facts (nvidia-modprobe's modprobe-utils, 610.43.03):
 *   - nvidiactl (minor 255), nvidiaN ("Device Minor" of each
 *     PROC/driver/nvidia/gpus/BUS/information) and nvidia-modeset (minor
 *     254) share the major of the nvidia module's frontend, "nvidia-frontend"
 *     in PROC/devices (always 195, NV_MAJOR_DEVICE_NUMBER); their mode,
 *     owner and group come from PROC/driver/nvidia/params (DeviceFileMode,
 *     decimal, default 438 = 0666; DeviceFileUID/GID, default 0;
 *     ModifyDeviceFiles 0: the nodes are not made or changed at all);
 *   - nvidia-uvm (minor 0) and nvidia-uvm-tools (minor 1): the major of
 *     "nvidia-uvm" in PROC/devices (given out anew each time the module
 *     loads), mode 0666, root's;
 *   - nvidia-modeset registers no major of its own: it is there when
 *     PROC/modules lists nvidia_modeset;
 *   - each capability file under PROC/driver/nvidia/capabilities/ (MIG's
 *     mig/config, mig/monitor, gpuN/mig/giG/access, .../ciC/access) names
 *     its node nvidia-caps/nvidia-cap<DeviceFileMinor> with the major of
 *     "nvidia-caps" and the DeviceFileMode/UID/GID/Modify it holds
 *     (decimal; defaults as above); the nvidia-caps directory is 0755.
 *
 * Libraries never print: the command prints. */
#ifndef GS_HOSTDEV_H
#define GS_HOSTDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs/err.h"
#include "gs/overlay.h"

#define OVL_NV_CTL_MINOR 255
#define OVL_NV_MODESET_MINOR 254
#define OVL_UVM_MINOR 0
#define OVL_UVM_TOOLS_MINOR 1
#define OVL_NV_CAPS_DIR "nvidia-caps"
#define OVL_MAX_CAP_FILES 1024 /* more capability files than this is an error */
#define OVL_CAP_DEPTH 8        /* capabilities/ deeper than this is an error */
#define OVL_DEV_MAJOR_MAX 4095u  /* 12 bits (MAJORBITS) */
#define OVL_DEV_MINOR_MAX 1048575u /* 20 bits (MINORBITS) */
#define OVL_PROC_FILE_MAX 65536  /* a /proc file longer than this is refused */

/* The majors of PROC/devices' "Character devices:" section that matter
 * here; -1 when the name is not listed (the module is not loaded). */
struct ovl_nv_majors {
	int frontend; /* "nvidia-frontend" (or "nvidia") */
	int uvm;      /* "nvidia-uvm" */
	int caps;     /* "nvidia-caps" */
};

/* Parses PROC/devices (TEXT, LEN bytes).  The names above given twice, a
 * major that is not a number up to OVL_DEV_MAJOR_MAX, or a text without a
 * "Character devices:" section is an error (EBADMSG); other lines, of any
 * length, are skipped. */
int ovl_proc_devices_parse(const char *text, size_t len, struct ovl_nv_majors *m,
			   struct gs_err *err);

/* A node's attributes as PROC/driver/nvidia/params or a capability file
 * gives them ("Name: decimal" lines). */
struct ovl_nv_attrs {
	uint32_t mode; /* DeviceFileMode & 0777 (default 0666) */
	uint32_t uid, gid;
	bool modify;   /* ModifyDeviceFiles / DeviceFileModify (default 1) */
	int minor;     /* DeviceFileMinor, -1 when absent (params) */
};

/* Parses TEXT: DeviceFileMode, DeviceFileUID, DeviceFileGID,
 * ModifyDeviceFiles or DeviceFileModify, DeviceFileMinor; every other line
 * is skipped.  One of these given twice or with a value that is not a
 * decimal number in range (mode <= 07777, minor <= OVL_DEV_MINOR_MAX, ids <
 * 2^32 - 1) is an error (EBADMSG) naming the key. */
int ovl_nv_attrs_parse(const char *text, size_t len, struct ovl_nv_attrs *a, struct gs_err *err);

enum ovl_nv_module {
	OVL_MOD_NVIDIA = 0,
	OVL_MOD_UVM,
	OVL_MOD_MODESET,
	OVL_MOD_CAPS,
};
const char *ovl_nv_module_name(enum ovl_nv_module m); /* "nvidia", "nvidia-uvm", ... */

/* One node the host should have. */
struct ovl_hostdev {
	char name[64];  /* under DEV: "nvidiactl", "nvidia-caps/nvidia-cap1" */
	int major;      /* -1: its module is not loaded */
	uint32_t minor;
	struct ovl_nv_attrs attrs;
	enum ovl_nv_module module;
};

struct ovl_hostdevs {
	struct ovl_hostdev *v;
	size_t n;
	struct ovl_nv_majors majors;
	bool modeset_loaded;
};

/* What PROCROOT says the host should have: nvidiactl and one nvidiaN per
 * GPU (with the nvidia module), nvidia-uvm and -tools (always listed:
 * major -1 while nvidia-uvm is not loaded), nvidia-modeset (when loaded),
 * one node per capability file.  Errors name the file. */
int ovl_hostdevs_read(const char *procroot, struct ovl_hostdevs *out, struct gs_err *err);
void ovl_hostdevs_clear(struct ovl_hostdevs *h);

enum ovl_node_state {
	OVL_NODE_OK = 0,
	OVL_NODE_MISSING,
	OVL_NODE_BAD_MODE, /* the right device, another mode or owner */
	OVL_NODE_CONFLICT, /* something else there: never replaced */
	OVL_NODE_NO_MODULE, /* its module is not loaded: numbers unknown */
};
const char *ovl_node_state_name(enum ovl_node_state s);

/* The state of D under DEVFD (an O_PATH directory fd of DEV); WHAT (LEN
 * bytes) says what is there when it is not OK. */
int ovl_hostdev_check(int devfd, const struct ovl_hostdev *d, enum ovl_node_state *st,
		      char *what, size_t len, struct gs_err *err);

/* Makes D under DEVFD (mknodat, then owner and mode set on the node opened
 * without following anything), or gives an existing node with D's numbers
 * D's mode and owner.  Anything else there is left alone (EEXIST). */
int ovl_hostdev_make(int devfd, const struct ovl_hostdev *d, struct gs_err *err);

/* The /dev/char/MAJOR:MINOR links systemd resolves device rules through
 * (udev makes them; nodes made by nvidia-modprobe or mknod have none, and
 * without them a `systemctl daemon-reload` takes a container's GPU away):
 * DEVROOT/char/MAJ:MIN -> ../NAME for each of DEVS that has none, on the
 * host.  Anything already there is left alone.  Best effort: *NOTE
 * (malloc'd, or NULL) says what was made or why not. */
void ovl_dev_char_links(const char *devroot, const struct ovl_device *devs, size_t n, char **note);

#endif
