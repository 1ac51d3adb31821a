/* SPDX-License-Identifier: Apache-2.0 */
/* The overlay: what a container receives from a staged driver, and how it
 * gets there.
 *
 * 1. A request (capabilities, GPUs, read-only root) is parsed from the
 *    container's NVIDIA_* variables (ovl_env_parse) and the GPUs the kernel
 *    module reports (ovl_gpu_info_parse, ovl_gpus_select).
 * 2. ovl_plan_build() turns a staged driver's index plus the request into a plan:
 *    a plain list of operations (mount a tmpfs, bind a staged directory or
 *    file, create a device node, refresh ld.so.cache, write a file, make a
 *    symlink).  Pure: no system call, so it can be printed for a dry run and
 *    recorded for audit (ovl_plan_describe, ovl_plan_json).
 * 3. ovl_sources_open() opens every host source as a detached, read-only
 *    mount (open_tree) in the caller's (the host's) mount namespace;
 *    ovl_plan_apply() then performs the plan inside an untrusted container
 *    rootfs with file descriptors only (openat2 RESOLVE_IN_ROOT, move_mount
 *    onto fds), never following a symlink out of the root and never
 *    running anything from it.
 *
 * Where things go inside the container (the layout is part of the
 * contract: ld.so.cache values and the ld.so.conf.d entry name these paths):
 *
 *   /run/gpu-stage/                    a private tmpfs (nosuid,nodev,noexec,
 *                                      read-only once populated), mounted
 *                                      over the image's /run/gpu-stage
 *                                      directory or one the runtime made
 *                                      (config.json's tmpfs mount there),
 *                                      else created in a writable root's
 *                                      /run or in a tmpfs /run of the
 *                                      container's own; a read-only root
 *                                      whose /run holds only empty
 *                                      directories and symlinks gets a
 *                                      tmpfs over /run with those entries
 *                                      recreated exactly; any other /run
 *                                      is refused (nothing is hidden)
 *   /run/gpu-stage/lib/<cap>/          STORE/VER/lib/<cap>, bound read-only
 *   /run/gpu-stage/lib32/<cap>/        STORE/VER/lib32/<cap> (compat32)
 *   /run/gpu-stage/bin/<cap>/          STORE/VER/bin/<cap>
 *   /run/gpu-stage/ld.so.cache         read-only roots only: the refreshed
 *                                      cache, bound over /etc/ld.so.cache
 *   /usr/bin/<name>                    each executable, bound read-only
 *                                      (read-only roots: symlinks in a tmpfs
 *                                      over an empty /usr/local/bin)
 *   /<path>                            ICD / vendor files (config/<path>)
 *   /lib/firmware/nvidia/VER/          STORE/VER/firmware (writable roots)
 *   /dev/nvidiactl, /dev/nvidiaN, ...  character devices (mknod)
 *   /tmp/nvidia-mps, /run/nvidia-persistenced/socket, ...
 *                                      the host's IPC paths at the same path
 *                                      (bind-host: a host source outside the
 *                                      store, found by ovl_host_ipc_find)
 *   /etc/ld.so.cache                   existing entries + the staged ones,
 *                                      staged first among equal names
 *   /etc/ld.so.conf.d/000-gpu-stage.conf   the lib directories, so that a
 *                                      later ldconfig keeps them (writable
 *                                      roots with an ld.so.conf.d only)
 *
 * Libraries here never print, exit or read the environment. */
#ifndef GS_OVERLAY_H
#define GS_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs/elfinfo.h"
#include "gs/err.h"
#include "gs/jsonw.h"
#include "gs/manifest.h"
#include "gs/version.h"

#define OVL_ANCHOR "/run/gpu-stage"
#define OVL_CONF_DIR "/etc/ld.so.conf.d"
#define OVL_CONF_NAME "000-gpu-stage.conf"
#define OVL_LDCACHE "/etc/ld.so.cache"
#define OVL_BIN_DIR "/usr/bin"
#define OVL_BIN_FALLBACK "/usr/local/bin"

/* ---- the request ------------------------------------------------------------ */

enum ovl_visible {
	OVL_VISIBLE_UNSET = 0, /* NVIDIA_VISIBLE_DEVICES absent: inject nothing */
	OVL_VISIBLE_VOID,      /* "void" or "": inject nothing */
	OVL_VISIBLE_NONE,      /* "none": driver files, no device node */
	OVL_VISIBLE_ALL,       /* "all" */
	OVL_VISIBLE_LIST,      /* indices and/or GPU UUIDs */
};

/* What a container asks for through its NVIDIA_* variables. */
struct ovl_env {
	enum ovl_visible visible;
	char **devices;      /* OVL_VISIBLE_LIST: the tokens ("0", "GPU-...") */
	size_t n_devices;
	unsigned int caps;   /* enum gs_cap bits; default utility,compute */
	bool caps_given;     /* NVIDIA_DRIVER_CAPABILITIES named some (else CAPS is
			      * the default, which a configuration may change) */
	char **require;      /* "NAME=VALUE" of each NVIDIA_REQUIRE_* */
	size_t n_require;
	bool disable_require;
};

/* Parses the NVIDIA_* entries of ENV ("KEY=VALUE" strings, N of them,
 * typically config.json's process.env); every other variable is ignored.
 * When a key appears twice the first wins (what getenv() in the container
 * returns).  Unknown capability names, malformed device lists and more
 * than 64 NVIDIA_REQUIRE_* variables are errors. */
int ovl_env_parse(char *const *env, size_t n, struct ovl_env *out, struct gs_err *err);
/* The same, but when a key appears twice the LAST wins: Docker's --gpus
 * appends its NVIDIA_VISIBLE_DEVICES (and NVIDIA_DRIVER_CAPABILITIES) to
 * the environment after the image's, and the engine's request must count
 * (what the hook does when it runs as nvidia-container-runtime-hook). */
int ovl_env_parse_last(char *const *env, size_t n, struct ovl_env *out, struct gs_err *err);
void ovl_env_clear(struct ovl_env *e);

/* The CUDA version (major*1000 + minor*10, as cuDriverGetVersion reports)
 * that driver version DRIVER supports, from the published table of driver
 * branches; 0 when DRIVER is older than the table. */
int ovl_driver_cuda_version(const char *driver);

/* Checks every NVIDIA_REQUIRE_* constraint of E against DRIVER (unless
 * disable_require).  A constraint is alternatives separated by spaces (OR),
 * each a comma-separated list (AND) of "cuda>=12.0", "driver>=535", with
 * operators = == != < <= > >=.  "arch" and "brand" need NVML and are
 * treated as satisfied; NOTE (may be NULL) gets a line saying so.
 * Returns 0 when satisfied, -EPERM (message names the variable) when not,
 * -EINVAL when a constraint is malformed. */
int ovl_require_check(const struct ovl_env *e, const char *driver, char *note, size_t notelen,
		      struct gs_err *err);

/* One GPU as /proc/driver/nvidia/gpus/<bus id>/information describes it. */
struct ovl_gpu {
	char bus_id[64];
	char uuid[96];
	int minor; /* "Device Minor": /dev/nvidia<minor> */
};

/* Parses one information file's TEXT ("GPU UUID:", "Device Minor:"). */
int ovl_gpu_info_parse(const char *text, const char *bus_id, struct ovl_gpu *out,
		       struct gs_err *err);

/* Selects GPUs for E from GPUS (sorted by bus id: that order gives the
 * indices nvidia-smi shows).  *OUT holds indices into GPUS, in request
 * order, without duplicates.  An unknown index or UUID is an error; MIG
 * devices (GPU:GI:CI: ovl_migs_select; MIG-<uuid>: resolved through the
 * device inventory, gs/inventory.h) are skipped. */
int ovl_gpus_select(const struct ovl_gpu *gpus, size_t n, const struct ovl_env *e,
		    size_t **out, size_t *n_out, struct gs_err *err);

/* Whether device token T names a MIG device (GPU:GI:CI or MIG-<uuid>). */
bool ovl_is_mig_device(const char *t);

/* A MIG device named GPU:GI:CI in NVIDIA_VISIBLE_DEVICES ("0:1:0"): the
 * GPU's index (as for whole GPUs), its GPU instance and compute instance
 * ids (as nvidia-smi -L shows them). */
struct ovl_mig {
	size_t gpu;
	unsigned int gi, ci;
};

/* The MIG devices of E's list (the GPU:GI:CI tokens; ovl_gpus_select skips
 * them), in request order without duplicates, *OUT malloc'd.  A GPU index
 * at or above N_GPUS is an error naming the token; a MIG UUID (MIG-...) is
 * skipped (the hook resolves it through the inventory).  Whether the GI and CI exist
 * is the host's to say: ovl_mig_caps_read. */
int ovl_migs_select(size_t n_gpus, const struct ovl_env *e, struct ovl_mig **out, size_t *n_out,
		    struct gs_err *err);

/* ---- the host's driver and GPUs (gpus.c: reads PROCROOT) --------------------- */

#define OVL_MAX_GPUS 64

/* The loaded module's version: PROCROOT/driver/nvidia/version, then
 * /sys/module/nvidia/version.  *OUT malloc'd; -ENODEV when neither says. */
int ovl_driver_version(const char *procroot, char **out, struct gs_err *err);

/* The GPUs in PROCROOT/driver/nvidia/gpus/<bus id>/information, sorted by
 * bus id (the indices ovl_gpus_select and nvidia-smi use).  *OUT malloc'd
 * (NULL when the directory is missing: no GPU, *N 0); more than
 * OVL_MAX_GPUS, or an information file that does not parse, is an error
 * naming the file.  gpu-stage-hook and `gpu-stage cdi` both enumerate
 * through this, so a CDI device name and NVIDIA_VISIBLE_DEVICES mean the
 * same GPU. */
int ovl_gpus_read(const char *procroot, struct ovl_gpu **out, size_t *n, struct gs_err *err);

/* The capability nodes of MIG device M on the GPU with device minor
 * GPU_MINOR: the DeviceFileMinor of
 * PROCROOT/driver/nvidia/capabilities/gpuGPU_MINOR/mig/giGI/access (*GI_MINOR)
 * and of .../giGI/ciCI/access (*CI_MINOR), the minors of
 * /dev/nvidia-caps/nvidia-capN.  A GI or CI without its file is -ENODEV
 * naming the MIG device (as TOKEN) and the file; a file that does not parse
 * or has no DeviceFileMinor is -EBADMSG. */
int ovl_mig_caps_read(const char *procroot, int gpu_minor, const struct ovl_mig *m,
		      const char *token, int *gi_minor, int *ci_minor, struct gs_err *err);

/* A device node the container receives. */
struct ovl_device {
	char name[64];     /* "nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-caps/nvidia-cap12"
			    * (under /dev) */
	uint32_t major, minor;
};

/* A host path outside the store that a container receives at DEST: the
 * MPS control daemon's pipe (read-write) and log directories, the
 * persistenced and fabric manager sockets. */
struct ovl_host_bind {
	char *host;       /* absolute host path (under the host root) */
	char *dest;       /* absolute path inside the container */
	bool dir;         /* a directory, else a unix socket */
	bool rw;          /* bound read-write (MPS's pipes), else read-only */
	unsigned int caps; /* the capabilities it serves */
};

#define OVL_PERSISTENCED_SOCKET "/run/nvidia-persistenced/socket"
#define OVL_FABRICMANAGER_SOCKET "/run/nvidia-fabricmanager/socket"

/* The host IPC paths a request with CAPS (effective) gets, looked up under
 * HOST_ROOT ("/" on a real host; tests use a fake tree): MPS_PIPE (with
 * compute, when it is a directory holding a "control" socket: an MPS
 * control daemon runs) and MPS_LOG (with compute, when MPS runs), the
 * persistenced and fabric manager sockets (utility or compute).  Each is
 * opened with no symlink followed anywhere in its path and must be what it
 * should (directory, socket; a directory not writable by others); what is
 * absent or refused is said in *NOTE (malloc'd, NULL when nothing to say)
 * and left out.  *OUT malloc'd (ovl_host_binds_free). */
int ovl_host_ipc_find(const char *host_root, const char *mps_pipe, const char *mps_log,
		      unsigned int caps, struct ovl_host_bind **out, size_t *n, char **note,
		      struct gs_err *err);
void ovl_host_binds_free(struct ovl_host_bind *v, size_t n);
/* Opens host path HOST (absolute) with no symlink followed in any of its
 * components (openat2 RESOLVE_NO_SYMLINKS): an O_PATH fd, or -1 and errno. */
int ovl_host_open(const char *host);

struct ovl_request {
	unsigned int caps;                 /* enum gs_cap bits, as requested */
	const struct ovl_host_bind *host_binds; /* bound as bind-host ops */
	size_t n_host_binds;
	const struct ovl_device *devices;  /* nodes to create, in order */
	size_t n_devices;
	/* Leave the image's files alone: config.json's root.readonly, or a
	 * rootfs on a read-only mount.  The cache is then bound over
	 * /etc/ld.so.cache and nothing is created on the rootfs mount. */
	bool no_write;
	/* config.json's mounts[] entries of type "tmpfs" (their destinations):
	 * the tmpfs mounts the runtime made for this container.  At apply time
	 * each is resolved inside the root and its mount counts as the
	 * container's own (created in, written to) only when it is a whole
	 * tmpfs whose superblock no other mount of the namespace shows; every
	 * other mount but the rootfs (a bind of a host tmpfs, devtmpfs, a
	 * host directory) is a volume, never created in or removed from. */
	const char *const *tmpfs_dests;
	size_t n_tmpfs_dests;
	/* the image's CUDA forward-compatibility directory (config's
	 * cuda_compat_dir); NULL: none looked at */
	const char *cuda_compat_dir;
};

/* Capabilities after implications (video => compute, display => graphics). */
unsigned int ovl_caps_effective(unsigned int caps);

/* ---- the plan ----------------------------------------------------------------- */

enum ovl_op_type {
	OVL_OP_TMPFS = 0,   /* mount a fresh tmpfs at dest */
	OVL_OP_BIND_DIR,    /* bind STORE/VER/source (a directory) at dest */
	OVL_OP_BIND_FILE,   /* bind STORE/VER/source (a file) at dest */
	OVL_OP_MKNOD,       /* character device major:minor at dest */
	OVL_OP_LDCACHE,     /* rewrite dest: the image's entries + entries[] */
	OVL_OP_WRITE_FILE,  /* write content at dest (atomic replace) */
	OVL_OP_SYMLINK,     /* symlink at dest pointing at source */
	OVL_OP_BIND_HOST,   /* bind the HOST path source (outside the store; a
			     * directory when mode is S_IFDIR, else a socket) at
			     * dest: nosuid,nodev,noexec, read-only unless OVL_F_RW;
			     * never through a symlink at dest */
};

enum ovl_op_flag {
	/* a target that cannot be made (or may not be, read-only root) is
	 * skipped with a note instead of failing the container */
	OVL_F_OPTIONAL = 1u << 0,
	/* TMPFS: only over an existing directory that is empty in the image */
	OVL_F_IF_EMPTY = 1u << 1,
	/* TMPFS: the anchor.  Over an existing /run/gpu-stage directory (the
	 * image's, or the runtime's tmpfs mount declared in config.json);
	 * else created in /run when /run may be written (a writable root, a
	 * tmpfs of the container's own); else (read-only root) a tmpfs goes
	 * over /run itself only when that hides nothing: at most 64 entries,
	 * each an empty directory or a symlink and no mount point, recreated
	 * inside it exactly (mode, owner, link target).  Otherwise the op
	 * fails (EBUSY) naming what would be hidden. */
	OVL_F_ANCHOR = 1u << 2,
	/* LDCACHE: write the cache into the anchor and bind it over dest */
	OVL_F_BIND_CACHE = 1u << 3,
	/* the parent directory must exist already (no mkdir -p) */
	OVL_F_NO_MKDIR = 1u << 4,
	/* BIND_HOST: read-write (MPS's pipe directory) */
	OVL_F_RW = 1u << 5,
};

struct ovl_cache_entry {
	char *key;     /* SONAME or development-link name */
	char *value;   /* path inside the container */
	int32_t flags; /* enum ldc_flag bits */
	uint32_t glibc; /* highest GLIBC_x.y its library needs (GS_GLIBC; the index) */
};

struct ovl_op {
	enum ovl_op_type type;
	unsigned int flags;    /* enum ovl_op_flag */
	char *dest;            /* absolute path inside the container */
	char *source;          /* BIND_DIR/FILE: relative to STORE/VER; BIND_HOST:
				* the host path; SYMLINK: target */
	unsigned int caps;     /* capabilities this op serves (audit) */
	size_t *files;         /* BIND_*: manifest file indices it exposes */
	size_t n_files;
	uint32_t mode;         /* MKNOD, WRITE_FILE, TMPFS; BIND_HOST: S_IFDIR/S_IFSOCK */
	uint32_t major, minor; /* MKNOD */
	char *content;         /* WRITE_FILE */
	size_t content_len;
	struct ovl_cache_entry *entries; /* LDCACHE */
	size_t n_entries;
};

struct ovl_plan {
	char *driver;
	bool no_write;
	char **tmpfs_dests; /* copy of the request's */
	size_t n_tmpfs_dests;
	unsigned int caps; /* effective capabilities */
	char *cuda_compat_dir; /* copy of the request's, or NULL */
	struct ovl_op *ops;
	size_t n_ops;
};

/* Builds the plan for REQ from INDEX (a staged driver's index,
 * gs_index_read_at).  Staged directories are chosen by their name
 * (lib/<cap>, lib32/<cap>, bin/<cap>); lib32 only with compat32.
 * Validates every path it uses (relative, no "..").  Pure. */
int ovl_plan_build(const struct gs_index *index, const struct ovl_request *req,
		   struct ovl_plan **out, struct gs_err *err);
void ovl_plan_free(struct ovl_plan *p);
static inline void ovl_plan_freep(struct ovl_plan **p)
{
	if (*p)
		ovl_plan_free(*p);
}

const char *ovl_op_name(enum ovl_op_type t);

/* Human-readable plan, one line per operation (dry run).  Malloc'd. */
char *ovl_plan_describe(const struct ovl_plan *p, const char *verdir);

/* ---- CUDA forward compatibility (compat.c) ------------------------------------------ */

#define OVL_COMPAT_MAX_ENTRIES 256 /* a directory with more files is ignored */
#define OVL_COMPAT_MAX_LIBS 32     /* companions of libcuda inspected, at most */
#define OVL_COMPAT_DIR_MAX 128     /* a longer cuda_compat_dir is refused (the plan) */

/* Compares two versions (gs_version_valid: digit groups and dots) group by
 * group as numbers of any length ("550.54.15" > "535.261.03", "1.02" ==
 * "1.2", "1.2" < "1.2.1"): <0, 0, >0. */
int ovl_version_cmp(const char *a, const char *b);

/* Whether NAME is "libcuda.so.<VER>" with VER a version; VER copied. */
bool ovl_compat_libcuda_version(const char *name, char ver[GS_VERSION_MAX + 1]);

/* Among NAMES (the files of the compat directory DIR), the libcuda.so.<VER>
 * of the highest VER, in *IDX; returns 1 when it is newer than DRIVER
 * (use it), else 0; WHY (for the audit record) says "used: DIR/FILE newer
 * than driver D" or "ignored: ..." and why. */
int ovl_compat_pick(const char *const *names, size_t n, const char *dir, const char *driver,
		    size_t *idx, char *why, size_t whylen);

struct ovl_compat_lib {
	char *soname; /* the cache key it takes over */
	char *value;  /* DIR/FILE inside the container */
};

struct ovl_compat {
	bool used;   /* the image's libcuda is newer: LIBS go ahead */
	char why[512]; /* for the audit record; "" when DIR is absent */
	struct ovl_compat_lib *libs;
	size_t n_libs;
};

/* Looks at the image's compat directory DIR inside ROOTFD (see compat.c
 * for the rules) against the staged driver DRIVER and the cache entries
 * of the ldcache op O.  Anything odd there is a note in C->why, never an
 * error; returns 0, or -ENOMEM. */
int ovl_compat_find(int rootfd, const char *dir, const struct ovl_op *o, const char *driver,
		    struct ovl_compat *c);
/* The compat file that takes over cache key KEY (64-bit FLAGS only), or NULL. */
const char *ovl_compat_value(const struct ovl_compat *c, const char *key, int32_t flags);
void ovl_compat_clear(struct ovl_compat *c);

/* ---- the glibc check (glibc.c) ----------------------------------------------------- */

/* What every supported image's libc defines: no need to read the image's
 * libc when no staged library needs more. */
#define OVL_GLIBC_FLOOR GS_GLIBC(2, 17)

/* The highest GLIBC_x.y a 64-bit entry of the ldcache op O needs. */
uint32_t ovl_glibc_needed(const struct ovl_op *o);
/* The highest GLIBC_x.y the image's 64-bit libc.so.6 (its standard
 * places, opened inside ROOTFD) defines; 0 when there is none. */
uint32_t ovl_image_glibc(int rootfd);
/* Whether entry E is left out for an image whose libc defines up to DEF
 * (0: no libc, nothing left out). */
bool ovl_glibc_left_out(const struct ovl_cache_entry *e, uint32_t def);
/* The audit line: "image libc defines up to GLIBC_2.31; left out:
 * libnvidia-egl-wayland.so.1 (needs GLIBC_2.34)"; *LEFT when any is. */
void ovl_glibc_note(const struct ovl_op *o, uint32_t def, char *why, size_t whylen, bool *left);

/* ---- applying it ------------------------------------------------------------------ */

enum ovl_status {
	OVL_PENDING = 0,
	OVL_APPLIED,
	OVL_SKIPPED, /* optional op that could not or may not be done; note says why */
	OVL_FAILED,
};

struct ovl_op_result {
	enum ovl_status status;
	char where[256]; /* actual destination when it differs from dest */
	char note[256];
};

struct ovl_result {
	struct ovl_op_result *ops; /* one per plan op */
	size_t n_ops;
	char ldcache[256];         /* what happened to the image's ld.so.cache */
	char cuda_compat[512];     /* the image's CUDA compat libraries: used or why not */
	char glibc[384];           /* the glibc check, "" when not needed */
	bool glibc_left_out;       /* some staged library was left out (warn) */
};

/* Writes the plan as a JSON object (member KEY, or NULL in an array) for
 * the audit record: every op with source (host path), destination, and for
 * bound files their store path, host source, size and sha256 (from
 * INDEX).  RES may be NULL (plan only). */
void ovl_plan_write(struct gs_jw *w, const char *key, const struct ovl_plan *p,
		    const struct gs_index *index, const char *verdir, const struct ovl_result *res);

struct ovl_sources;

/* Opens every source the plan binds, inside VERFD (STORE/VER, opened once
 * by the caller, under the store's readers' lock: gs_store_ver_open; VERDIR
 * names it in messages), as a detached mount (open_tree OPEN_TREE_CLONE)
 * already set read-only, nosuid, nodev and private.  Call in the host's
 * mount namespace, before entering the container's. */
int ovl_sources_open(const struct ovl_plan *p, int verfd, const char *verdir,
		     struct ovl_sources **out, struct gs_err *err);
void ovl_sources_free(struct ovl_sources *s);
static inline void ovl_sources_freep(struct ovl_sources **s)
{
	if (*s)
		ovl_sources_free(*s);
}

/* Performs P inside the container rootfs ROOTFD (an O_PATH fd of the rootfs
 * directory, opened in the container's mount namespace).  Every path is
 * resolved inside the root; mount targets are created one component at a
 * time (never on the rootfs mount when P->no_write, never on a mount other
 * than the rootfs, a tmpfs of ours or one of P->tmpfs_dests that passes
 * the check described at struct ovl_request: not in a volume); nothing is
 * removed, replaced or mknod'ed on any other mount either; mounts are attached
 * with move_mount onto fds and checked afterwards, never onto a mount with
 * shared propagation (EXDEV: it would carry them out of the namespace;
 * /proc/thread-self/mountinfo says which are shared).  RES (allocated here,
 * free with ovl_result_clear) says what each op did.  MOUNTS (MOUNTS_LEN
 * bytes), when not NULL, is this namespace's mountinfo as a process in it
 * showed it just before (prestart: the runtime waits, nothing mounts
 * there meanwhile), else /proc/thread-self/mountinfo is read.  On failure the
 * container must not start: mounts already made vanish with its mount
 * namespace. */
int ovl_plan_apply(const struct ovl_plan *p, struct ovl_sources *src, int rootfd,
		   const char *mounts, size_t mounts_len, struct ovl_result *res, struct gs_err *err);
void ovl_result_clear(struct ovl_result *r);

#endif
