/* SPDX-License-Identifier: Apache-2.0 */
#ifndef GS_STAGE_DISCOVER_INTERNAL_H
#define GS_STAGE_DISCOVER_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>

#include "gs/stage.h"
#include <dirent.h>
#include <sys/stat.h>

#include "dpkg.h"
#include "nvinst.h"
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
	struct gs_nvinst nvinst; /* nvidia-installer's record, for the same */
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
/* Opens PATH inside the root as a regular file: fd, resolved path and stat
 * (-1 when it is missing or not a regular file). */
int gs_disc_open_regular(struct disc *d, const char *path, char **resolved, struct stat *st);
/* A directory inside the root, or NULL when it is missing or unreadable
 * (discovery looks in places that need not exist). */
DIR *gs_disc_opendir(struct disc *d, const char *path);

/* discover_records.c: evidence for files that carry no version. */
enum rec_verdict {
	REC_NONE,    /* no record lists the file */
	REC_VER,     /* a record of VER lists it: *EVIDENCE is set */
	REC_REFUSED, /* a record says it is not VER's (a warning says why) */
};
/* What the dpkg database and nvidia-installer's record say of the file FD,
 * found as RESOLVED (or ALSO): a verdict, or -ENOMEM. */
int gs_disc_records(struct disc *d, int fd, const char *resolved, const char *also,
		    char **evidence);
/* Whether a record of installed files knows driver VER at all: then a file
 * it does not list is not VER's. */
bool gs_disc_records_know_ver(const struct disc *d);
/* The folder rule for an executable without a version string: 1 with
 * *EVIDENCE ("bin-folder"), 0 after a warning saying why not. */
int gs_disc_bin_folder(struct disc *d, const char *resolved, char **evidence);

#endif
