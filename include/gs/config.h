/* SPDX-License-Identifier: Apache-2.0 */
/* /etc/gpu-stage/config.json: the one configuration file of gpu-stage,
 * gpu-stage-hook and gpu-runtime.  Every key is optional; a missing file
 * (at the default place) means every default; an unknown key, a key given
 * twice or a value of the wrong type or form is an error naming the file,
 * the line and the key.  Command-line flags override what it says.
 *
 *   {
 *     "store":        "/var/lib/gpu-stage",           absolute path
 *     "driver":       "535.261.03",                   default: the loaded module's
 *     "runtime":      "runc",                         what gpu-runtime execs
 *     "capabilities": "utility,compute",              when a container names none
 *     "audit_log":    "/var/log/gpu-stage/hook.log",  absolute path
 *     "audit_log_max": "16M",                         bytes (or "K", "M", "G"); 0: never rotated
 *     "audit_log_keep": 4,                            rotated files kept (hook.log.1 ... .N), 1..1000
 *     "dev_root":     "/dev",                         absolute path (tests)
 *     "proc_root":    "/proc",                        absolute path (tests)
 *     "cdi_vendor":   "nvidia.com",
 *     "cdi_dir":      "/etc/cdi",                     absolute path
 *     "requests":     "env",                          or "orchestrator"
 *     "require_uvm":  true,                           false: compute containers
 *                                                     start without /dev/nvidia-uvm
 *     "host_root":    "/",                            where the host's IPC paths
 *                                                     below are looked up (tests)
 *     "mps_pipe_dir": "/tmp/nvidia-mps",              the MPS control daemon's
 *     "mps_log_dir":  "/var/log/nvidia-mps",          pipe and log directories
 *     "cuda_compat_dir": "/usr/local/cuda/compat",    inside the image: CUDA forward
 *                                                     compatibility libraries, used
 *                                                     when newer than the driver
 *     "inventory":    "/run/gpu-stage/devices.json"   the device inventory (GPUs and
 *                                                     MIG devices from NVML) that
 *                                                     `gpu-stage devices --inventory`
 *                                                     writes and MIG-<uuid> requests
 *                                                     are resolved through
 *   }
 *
 * The library reads no environment: the mains decide which file (the hook
 * only ever takes --config, never a variable of the container's). */
#ifndef GS_CONFIG_H
#define GS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "gs/err.h"

#define GS_CONFIG_DEFAULT "/etc/gpu-stage/config.json"
#define GS_CONFIG_ENV "GPU_STAGE_CONFIG"
#define GS_CONFIG_MAX (1u << 20) /* a larger file is refused */
#define GS_AUDIT_LOG_MAX_DEFAULT (16u << 20)
#define GS_AUDIT_LOG_KEEP_DEFAULT 4u
#define GS_AUDIT_LOG_KEEP_MAX 1000u
#define GS_MPS_PIPE_DEFAULT "/tmp/nvidia-mps" /* CUDA's default CUDA_MPS_PIPE_DIRECTORY */
#define GS_MPS_LOG_DEFAULT "/var/log/nvidia-mps"
#define GS_CUDA_COMPAT_DEFAULT "/usr/local/cuda/compat" /* cuda-compat-X-Y's directory */
#define GS_INVENTORY_DEFAULT "/run/gpu-stage/devices.json" /* gs/inventory.h */

enum gs_requests {
	GS_REQUESTS_ENV = 0,      /* the container's NVIDIA_* variables count (NVIDIA's behaviour) */
	GS_REQUESTS_ORCHESTRATOR, /* only the engine's request counts, never the image's variables */
};

struct gs_config {
	char *path; /* the file read; NULL when it was missing (all defaults) */
	char *store, *driver, *runtime, *audit_log, *dev_root, *proc_root, *cdi_vendor, *cdi_dir;
	char *host_root, *mps_pipe_dir, *mps_log_dir;
	char *cuda_compat_dir; /* inside the image (overlay/compat.c) */
	char *inventory;       /* the device inventory file (gs/inventory.h) */
	unsigned int caps; /* enum gs_cap bits, from "capabilities" */
	uint64_t audit_log_max;      /* the hook rotates the log before it would grow past this; 0: never */
	unsigned int audit_log_keep; /* rotated files kept */
	enum gs_requests requests;
	bool require_uvm; /* compute containers need /dev/nvidia-uvm (default true) */
};

/* Reads PATH into C (defaults first, then what the file says).  A missing
 * PATH is all defaults unless MUST_EXIST (a file the user named).  C is
 * cleared on error. */
int gs_config_load(const char *path, bool must_exist, struct gs_config *c, struct gs_err *err);
/* The same from TEXT (LEN bytes), NAME in messages (tests, and the file). */
int gs_config_parse(const char *text, size_t len, const char *name, struct gs_config *c,
		    struct gs_err *err);
void gs_config_clear(struct gs_config *c);
/* After a failed gs_config_load: C holds the defaults and, of what PATH
 * says, each member named in KEYS (NULL-terminated) that is valid itself
 * (gpu-runtime still execs the configured runtime when another key is
 * wrong).  0; -EINVAL when a named member is wrong or PATH holds no JSON
 * object (those keep their defaults); -errno when PATH cannot be read. */
int gs_config_salvage(const char *path, const char *const *keys, struct gs_config *c);

/* Whether S is a CDI vendor name ("nvidia.com"): a letter first, a letter
 * or digit last, letters, digits and . - _ between, at most 253 bytes
 * (CDI's rule; cdi_vendor and `gpu-stage cdi --vendor`). */
bool gs_cdi_vendor_valid(const char *s);

#endif
