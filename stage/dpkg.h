/* SPDX-License-Identifier: Apache-2.0 */
#ifndef GS_STAGE_DPKG_H
#define GS_STAGE_DPKG_H

#include <stdbool.h>
#include <stddef.h>

#include "gs/err.h"
#include "rootfs.h"

struct gs_dpkg_pkg {
	char *name, *arch;
	char *version;  /* as dpkg has it: "535.261.03-1" */
	char *upstream; /* without epoch and revision: "535.261.03" */
};

struct gs_dpkg_file {
	char *path;
	const struct gs_dpkg_pkg *pkg;
};

struct gs_dpkg {
	bool present; /* ROOT/var/lib/dpkg/status exists */
	struct gs_dpkg_pkg **pkgs;
	size_t n_pkgs;
	struct gs_dpkg_file *files;
	size_t n_files;
};

/* Loads the installed driver packages ("nvidia"/"cuda" in the name) and
 * their file lists.  A root without a dpkg database gives an empty DB. */
int gs_dpkg_load(const struct gs_root *root, struct gs_dpkg *db, struct gs_err *err);
/* The installed package that owns PATH (or ALSO, when not NULL), or NULL. */
const struct gs_dpkg_pkg *gs_dpkg_owner(const struct gs_dpkg *db, const char *path,
					const char *also);
void gs_dpkg_clear(struct gs_dpkg *db);

#endif
