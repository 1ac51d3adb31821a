/* SPDX-License-Identifier: Apache-2.0 */
#ifndef GS_STAGE_CMD_H
#define GS_STAGE_CMD_H

#include <jansson.h>

#include "gs/config.h"

enum gs_exit {
	GS_EXIT_OK = 0,
	GS_EXIT_FAIL = 1,
	GS_EXIT_USAGE = 2,
};

static inline void gs_json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}

/* The configuration file (cli_config.c), or NULL after printing why it
 * cannot be read. */
const struct gs_config *cli_config(void);

/* Output helpers of the store commands (cli_config.c): print "gpu-stage:
 * MSG" and give GS_EXIT_FAIL; print J indented (GS_EXIT_FAIL when it
 * cannot); CODE unless stdout could not be written. */
int cli_fail(const struct gs_err *err);
int cli_emit_json(json_t *j);
int cli_flush_out(int code);

/* Each takes argv[0] = its verb and returns an enum gs_exit. */
int cmd_ldcache(int argc, char **argv);
int cmd_stage(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_runtime(int argc, char **argv);
int cmd_cdi(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_gc(int argc, char **argv);

/* After a stage into STORE (cmd_cdi.c): re-writes CDI_DIR/VENDOR-gpu.json
 * (the configuration's) when it is there, gpu-stage wrote it and its hook
 * reads STORE, so that its GPUs and hook path stay current; never creates
 * one.  1 re-written (*FILE malloc'd: its path), 0 nothing to do, < 0
 * error (the old file is left as it was). */
int cdi_refresh(const char *store, char **file, struct gs_err *err);

/* gpu-stage info (cmd_cdi.c): the spec CDI_DIR/VENDOR-gpu.json against
 * what `gpu-stage cdi` would write now for the store STORE and the GPUs
 * in PROC_ROOT (the devices, the store and the hook it names; not the
 * nodes' paths).  Returns an enum cdi_state (*FILE: the spec's path;
 * *WHY, for CDI_STALE: what differs; both malloc'd), < 0 error. */
enum cdi_state {
	CDI_NONE = 0, /* no spec */
	CDI_CURRENT,  /* ours and current */
	CDI_STALE,    /* ours, not what gpu-stage cdi would write now */
	CDI_FOREIGN,  /* a file of that name that gpu-stage did not write */
};
struct cdi_check {
	const char *cdi_dir, *vendor, *store, *proc_root;
};
int cdi_check(const struct cdi_check *q, char **file, char **why, struct gs_err *err);
/* Another spec (not gpu-stage's) declaring VENDOR/gpu in CDI_DIR, /etc/cdi
 * or /var/run/cdi: *RIVAL its path (malloc'd) or NULL; 0, -ENOMEM. */
int cdi_rival_of(const char *cdi_dir, const char *vendor, char **rival);

int cmd_info(int argc, char **argv);

/* The explicit "env" of every hook entry gpu-stage writes for an engine
 * to copy into config.json (CVE-2025-23266: a createContainer hook without
 * one inherited the container's environment under runc <= 1.2).  Not
 * empty: an engine that re-encodes the entry with omitempty (CDI, hooks.d)
 * would drop an empty list, and the hook reads no variable anyway. */
#define GS_HOOK_ENV "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

#endif
