/* SPDX-License-Identifier: Apache-2.0 */
#ifndef GS_STAGE_DISCOVER_INTERNAL_H
#define GS_STAGE_DISCOVER_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>

#include "gs/stage.h"
#include "dpkg.h"
#include "rootfs.h"

enum lib_rule {
	RULE_VERSIONED,   /* the file name carries the driver version */
	RULE_UNVERSIONED, /* no version in the name: proven by place or content */
	RULE_OWN_VERSION, /* its own version numbers (EGL external platforms) */
};

struct lib_spec {
	const char *prefix; /* cache key prefix: "libcuda.so" matches libcuda.so.1 */
	unsigned int cap;
	enum lib_rule rule;
	bool devlink;       /* create the "libcuda.so" development link */
};

extern const struct lib_spec gs_lib_table[];
extern const size_t gs_lib_table_len;

struct dirinfo {
	char *path;
	bool has_ver;   /* holds a library of the requested version */
	bool has_other; /* holds a library of another version */
};

struct verseen {
	char *ver;
	size_t count;
	char *example;
};

struct disc {
	const struct gs_discover_opts *o;
	const char *ver;
	struct gs_root root;
	struct gs_manifest *plan;
	struct dirinfo *dirs;
	size_t n_dirs;
	struct verseen *versions;
	size_t n_versions;
	struct gs_dpkg dpkg; /* the host's driver packages, for unversioned executables */
};

int gs_disc_add_lib(struct disc *d, const char *path, const struct lib_spec *spec,
		    const char *evidence);
int gs_disc_note_dir(struct disc *d, const char *dir);
int gs_disc_note_version(struct disc *d, const char *ver, const char *what);
int gs_disc_scan_dirs(struct disc *d);
int gs_disc_add_extras(struct disc *d);
/* Adds a warning to the plan (printed by the CLI, kept in the manifest). */
int gs_disc_warn(struct disc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gs_disc_check_needed(struct disc *d);
const struct lib_spec *gs_disc_spec_for_key(const char *key);

#endif
