/* SPDX-License-Identifier: Apache-2.0 */
/* The host's dpkg database as staging reads it (stage/dpkg.c), in a
 * scratch host root: the input up to the first "\n\n--list--\n" is
 * var/lib/dpkg/status, the rest the file list of the packages the seeds
 * name (info/nvidia-smi.list, info/libcuda1:amd64.list).
 * Promises: a refusal names its reason; every package loaded is an
 * installed driver package with an upstream version taken from its
 * version; every file it owns is absolute and found by gs_dpkg_owner. */
#include <sys/stat.h>

#include "../../stage/dpkg.h"
#include "fuzz_common.h"

static char root[128], status[192], list1[192], list2[192];

static void setup(void)
{
	static const char *const dirs[] = {"var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info"};
	fz_mkdirs(root, sizeof(root), "root", dirs, FZ_N(dirs));
	snprintf(status, sizeof(status), "%s/var/lib/dpkg/status", root);
	snprintf(list1, sizeof(list1), "%s/var/lib/dpkg/info/nvidia-smi.list", root);
	snprintf(list2, sizeof(list2), "%s/var/lib/dpkg/info/libcuda1:amd64.list", root);
}

static void check(const struct gs_dpkg *db)
{
	for (size_t i = 0; i < db->n_pkgs; i++) {
		const struct gs_dpkg_pkg *p = db->pkgs[i];
		if (!p->name || !p->arch || !p->version || !p->upstream ||
		    (!strstr(p->name, "nvidia") && !strstr(p->name, "cuda")) ||
		    !strstr(p->version, p->upstream))
			abort();
	}
	for (size_t i = 0; i < db->n_files; i++) {
		const struct gs_dpkg_file *f = &db->files[i];
		bool known = false;
		for (size_t k = 0; k < db->n_pkgs; k++)
			known = known || f->pkg == db->pkgs[k];
		if (!known || f->path[0] != '/' || !gs_dpkg_owner(db, f->path, NULL))
			abort(); /* a file owned by no package loaded */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!root[0])
		setup();
	const uint8_t *rest;
	size_t len, rest_len;
	fz_split(data, size, "\n\n--list--\n", &len, &rest, &rest_len);
	fz_write(status, data, len);
	fz_write(list1, rest, rest_len);
	fz_write(list2, rest, rest_len);
	struct gs_root r;
	struct gs_err err = GS_ERR_INIT;
	if (gs_root_open(root, &r, &err) < 0)
		abort();
	struct gs_dpkg db;
	int ret = gs_dpkg_load(&r, &db, &err);
	fz_refused(ret, &err);
	if (ret >= 0) {
		if (!db.present)
			abort(); /* the status file is there */
		check(&db);
		gs_dpkg_clear(&db);
	}
	gs_root_close(&r);
	return 0;
}
