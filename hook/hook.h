/* SPDX-License-Identifier: Apache-2.0 */
/* Private to gpu-stage-hook (the hook/ sources); gpu-runtime and
 * `gpu-stage plan` also link oci.c and gpus.c, to read a bundle's request
 * and the devices exactly as the hook does.  Everything here returns >= 0 or
 * -code with a struct gs_err filled; only main.c prints. */
#ifndef GS_HOOK_H
#define GS_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "gs/err.h"
#include "gs/overlay.h"

enum hk_stage {
	HK_PRESTART = 0,   /* runtime namespace, before pivot_root: setns by pid */
	HK_CREATE_RUNTIME, /* same place as prestart (OCI >= 1.0.2) */
	HK_CREATE_CONTAINER, /* already in the container's mount namespace */
};

/* ---- oci.c: the state on stdin and the bundle's config.json ---- */

struct hk_state {
	char *id;
	char *bundle;
	long pid; /* 0 or absent: unknown (crun's createContainer); at createContainer
		   runc gives its own namespace's 1: the hook replaces it (hk_ns_host_pid) */
	char *status;
};

struct hk_config {
	char *root_path; /* root.path as written (relative to the bundle or absolute) */
	bool readonly;   /* root.readonly */
	char **env;      /* process.env */
	size_t n_env;
	bool mount_ns;   /* linux.namespaces has a "mount" entry */
	bool cgroup_ns;  /* ... a "cgroup" entry */
	bool user_ns;    /* ... a "user" entry */
	char **tmpfs_dests; /* mounts[] entries of type "tmpfs": their destinations */
	size_t n_tmpfs_dests;
	char *ann_devices; /* annotations[HK_ANNOT_DEVICES], NULL when absent */
	char *ann_caps;    /* annotations[HK_ANNOT_CAPS] */
};

/* The annotations by which an orchestrator asks for GPUs: config.json's
 * "annotations" are the engine's (Podman's and Docker >= 24's
 * --annotation, Kubernetes pod annotations through CRI), never an image's
 * environment.  Values as NVIDIA_VISIBLE_DEVICES and
 * NVIDIA_DRIVER_CAPABILITIES take them; given, they override those. */
#define HK_ANNOT_DEVICES "gpu-stage.visible-devices"
#define HK_ANNOT_CAPS "gpu-stage.driver-capabilities"

/* The variables the request is read from (ovl_env_parse): the
 * annotations as NVIDIA_VISIBLE_DEVICES= / NVIDIA_DRIVER_CAPABILITIES=
 * entries placed where they win (first; last when LAST_WINS), and
 * process.env, less its NVIDIA_VISIBLE_DEVICES and
 * NVIDIA_DRIVER_CAPABILITIES when !ENV_COUNTS (the configuration's
 * "requests": "orchestrator"; the image's NVIDIA_REQUIRE_* always count).
 * *VARS is malloc'd (its strings too); *N entries. */
int hk_request_vars(const struct hk_config *c, bool env_counts, bool last_wins, char ***vars,
		    size_t *n, struct gs_err *err);
void hk_request_vars_free(char **vars, size_t n);

/* Parses the OCI state JSON (strict: duplicates, wrong types and missing
 * fields are errors). */
int hk_state_parse(const char *text, size_t len, struct hk_state *out, struct gs_err *err);
void hk_state_clear(struct hk_state *s);
/* Reads BUNDLEFD/config.json (at most 16 MiB) as runc reads it
 * (je_load_oci: the last of a member given twice counts, integers of any
 * size are accepted).  Returns 0, or 1 (OUT empty) for a file jansson
 * cannot read that cannot ask for a GPU: nothing to do. */
int hk_config_load(int bundlefd, const char *bundle, struct hk_config *out, struct gs_err *err);
/* The same for LEN bytes of TEXT (NAME in messages). */
int hk_config_parse(const char *text, size_t len, const char *name, struct hk_config *out,
		    struct gs_err *err);
void hk_config_clear(struct hk_config *c);

/* ---- gpus.c: device nodes (the driver version and the GPUs: overlay/gpus.c) ---- */

/* The device nodes for E: nvidiactl, nvidia<minor> per selected GPU,
 * nvidia-uvm(+tools) with compute, nvidia-modeset with display; numbers
 * taken from the nodes under DEVROOT (stat), GPUs from
 * PROCROOT/driver/nvidia/gpus/<bus>/information (ovl_gpus_read).  *OUT malloc'd, and
 * *NOTE (the optional nodes found absent; NULL when none).  REQUIRE_UVM:
 * a missing nvidia-uvm with compute is an error (ENODEV) naming the fix
 * (`gpu-stage devices --ensure --load`), not a note.  The /dev/char links
 * of the nodes: ovl_dev_char_links (gs/hostdev.h).  A MIG device named
 * MIG-<uuid> is resolved to GPU:GI:CI through the inventory
 * (gs_inventory_load, gs_inventory_mig_find): a missing, untrusted or stale
 * one, or an unknown UUID, is an error naming the file and the fix. */
struct hk_dev_roots {
	const char *proc_root, *dev_root;
	const char *inventory; /* the device inventory (gs/inventory.h), read for MIG-<uuid> */
};
int hk_devices_resolve(const struct ovl_env *e, unsigned int caps, const struct hk_dev_roots *roots,
		       bool require_uvm, struct ovl_device **out, size_t *n, char **note,
		       struct gs_err *err);

/* ---- plan.c: what a container receives ---- */

struct gs_config;
/* The request and where to look. */
struct hk_plan_in {
	const struct ovl_env *env;    /* the request: visible devices, capabilities */
	const struct hk_config *cfg;  /* config.json: root.readonly, tmpfs mounts */
	const struct gs_config *conf; /* the configuration: require_uvm, MPS directories */
	const char *proc_root, *dev_root, *host_root;
	const struct gs_index *index; /* the staged driver's */
};
/* Its devices, host IPC paths and plan (every member malloc'd). */
struct hk_planned {
	struct ovl_device *devs;
	size_t n_devs;
	char *dev_note;             /* optional nodes absent; NULL when none */
	struct ovl_host_bind *ipc;  /* the host's IPC paths bound (MPS, sockets) */
	size_t n_ipc;
	char *ipc_note;             /* those absent or refused */
	struct ovl_plan *plan;
};
/* The one way the hook, its dry run and `gpu-stage plan` build a plan:
 * hk_devices_resolve, ovl_host_ipc_find, ovl_plan_build. */
int hk_plan_build(const struct hk_plan_in *in, struct hk_planned *out, struct gs_err *err);
void hk_planned_clear(struct hk_planned *p);

/* ---- cgroup.c: device access ---- */

/* Allows DEVS (rwm) in the devices cgroup of process PID (v1:
 * devices.allow), in two steps, so that nothing is granted before the
 * process is known to be the container.  hk_cgroup_open finds PID's
 * devices.allow (PID 0: the caller's own cgroup; createContainer runs
 * inside the container's) and opens it, in the host's namespaces: *FD,
 * or -1 with *NOTE (malloc'd) saying why there is nothing to write (no
 * device; a pure cgroup v2 host, where the runtime's eBPF device program
 * decides; the root cgroup, which allows every device and is never
 * widened).  It fails, rather than leave requested rules unwritten, when
 * the path cannot be opened whole (over-long: never a shorter path) and
 * inside a cgroup namespace (IN_CGROUPNS and the path reads "/", or the
 * path lies outside the namespace).  PIDFD (or -1): the process PID,
 * checked to be still alive once its cgroup is read, so that a recycled
 * pid is noticed.  DEVICES_MNT: where the v1 devices hierarchy is mounted
 * (hk_host_mounts), or NULL to read /proc/self/mountinfo for it.
 * hk_cgroup_write writes the rules to FD (nothing when -1). */
int hk_cgroup_open(pid_t pid, int pidfd, bool in_cgroupns, size_t n, const char *devices_mnt,
		   int *fd, char **note, struct gs_err *err);
/* Whether mountinfo entry M is the root of the v1 devices hierarchy. */
struct gs_mountinfo;
bool hk_is_devices_root(const struct gs_mountinfo *m);
int hk_cgroup_write(int fd, const struct ovl_device *devs, size_t n, const char *note,
		    struct gs_err *err);

/* ---- caps.c: capabilities per phase ---- */

enum hk_phase {
	HK_PHASE_START = 0, /* everything below, nothing else */
	HK_PHASE_APPLY,     /* inside the container's namespace */
	HK_PHASE_DONE,      /* audit only: no capability at all */
};

/* Checks that the needed capabilities are permitted, drops every other one
 * from the bounding, inheritable and ambient sets, sets no_new_privs, and
 * keeps what PHASE needs in the permitted and effective sets. */
int hk_caps_init(bool devices, struct gs_err *err);
int hk_caps_enter(enum hk_phase phase, struct gs_err *err);

/* ---- ns.c: the container's mount namespace and rootfs ---- */

/* A pidfd for PID: what is read from /proc/PID afterwards is checked
 * against it (hk_pid_alive), so a pid recycled meanwhile is noticed. */
int hk_pid_open(pid_t pid, struct gs_err *err);
/* 0 while the process of PIDFD runs, -ESRCH once it is gone. */
int hk_pid_alive(int pidfd, pid_t pid, struct gs_err *err);
/* Opens /proc/PID/ns/mnt and checks it is a mount namespace other than
 * ours; returns the fd. */
/* createContainer: refused (EINVAL) when the hook's mount namespace is
 * PID 1's, the host's; mounts made there would land on the host. */
int hk_ns_not_hosts(struct gs_err *err);
int hk_ns_open(pid_t pid, struct gs_err *err);
/* What the hook needs of its own (the host's) mount table, read once:
 * how many mounts have ROOTFS (canonical path) as mount point, and where
 * the v1 devices hierarchy is mounted (NULL: nowhere). */
struct hk_host {
	int at_rootfs;
	char *devices_mnt;
};
int hk_host_mounts(const char *rootfs, struct hk_host *h, struct gs_err *err);
void hk_host_clear(struct hk_host *h);
/* Checks that PID is the container's process at prestart/createRuntime:
 * its mount namespace has more mounts on ROOTFS (canonical path) than
 * OURS (hk_host_mounts: the runtime's bind of the rootfs onto itself),
 * and unless USER_NS (config.json has a "user" namespace) it shares our
 * user namespace.  See ns.c for why this and not /proc/PID/root.  On
 * success *TABLE (malloc'd, *TABLE_LEN bytes) is PID's mountinfo as read,
 * for ovl_plan_apply in that namespace. */
#define HK_MOUNTINFO_MAX (64u << 20) /* a mount table larger than this is refused */
int hk_ns_check_container(pid_t pid, const char *rootfs, bool user_ns, int ours, char **table,
			  size_t *table_len, struct gs_err *err);
/* At createContainer: the container process's pid in the host's pid
 * namespace, 0 when it cannot be known.  runc (1.1) hands the hook its
 * pid inside the container's pid namespace (1), crun none; the audit
 * record needs the host's.  The hook runs before pivot_root, where /proc
 * is still the host's procfs, as a child of the container's process: its
 * PPid there is the host pid, taken only when the hook's NSpid shows that
 * procfs is an outer pid namespace's and that process shares the hook's
 * mount namespace. */
pid_t hk_ns_host_pid(void);
/* setns(CLONE_NEWNS) into NSFD. */
int hk_ns_enter(int nsfd, pid_t pid, struct gs_err *err);
/* The absolute rootfs path: root.path, relative to BUNDLE unless absolute. */
int hk_rootfs_path(const char *bundle, const char *root_path, char **out, struct gs_err *err);
/* Opens ROOTFS (O_PATH|O_DIRECTORY); when WANT is non-NULL checks it is
 * the same directory (dev, ino) as WANT. */
int hk_rootfs_open(const char *rootfs, const struct stat *want, struct gs_err *err);

/* ---- audit.c ---- */

/* The audit log, open for appending: FD the file, DIRFD its directory
 * (O_PATH, opened in the host's namespace, so rotation works from inside
 * the container's), NAME the file's name in it. */
struct hk_audit {
	int fd, dirfd;
	char *name, *path;
	uint64_t max;      /* rotate before the file would grow past this; 0: never */
	unsigned int keep; /* rotated files kept: NAME.1 (newest) .. NAME.KEEP */
};
/* Opens the audit log PATH for appending (creating its directory 0700). */
int hk_audit_open(const char *path, uint64_t max, unsigned int keep, struct hk_audit *a,
		  struct gs_err *err);
/* Appends RECORD as one line (one write(2) with O_APPEND, under flock),
 * rotating first when the file would grow past A->max; a file rotated away
 * by another writer is followed (see audit.c). */
int hk_audit_append(struct hk_audit *a, const char *record, struct gs_err *err);
void hk_audit_close(struct hk_audit *a);

#endif
