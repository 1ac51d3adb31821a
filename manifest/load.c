/* SPDX-License-Identifier: Apache-2.0 */
/* Loading a staged version's manifest.json through the store's read side
 * (apart from store.c, so that a reader of the index alone -- the hook --
 * links no JSON codec and no libcrypto). */
#include <errno.h>
#include <string.h>

#include "gs/cleanup.h"
#include "gs/manifest.h"

int gs_store_ver_manifest(const struct gs_store_ver *v, const char *ver, struct gs_manifest **out,
			  struct gs_manifest_info *info, struct gs_err *err)
{
	char name[GS_PATH_MAX + 128];
	snprintf(name, sizeof(name), "%s/" GS_MANIFEST_NAME, v->dir);
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = NULL;
	int r = gs_manifest_read_at(v->verfd, name, &p, info, err);
	if (r < 0)
		return r;
	if (strcmp(p->driver, ver))
		return gs_err_setx(err, EBADMSG, "%s: driver \"%s\" does not match its directory %s",
				   name, p->driver, ver);
	*out = steal_ptr(&p);
	return 0;
}

int gs_store_load_info(const char *store, const char *ver, struct gs_manifest **out,
		       struct gs_manifest_info *info, struct gs_err *err)
{
	struct gs_store_ver v;
	int r = gs_store_ver_open(store, ver, &v, err);
	if (r < 0)
		return r;
	r = gs_store_ver_manifest(&v, ver, out, info, err);
	gs_store_ver_close(&v);
	return r;
}

int gs_store_load(const char *store, const char *ver, struct gs_manifest **out, struct gs_err *err)
{
	struct gs_manifest_info info;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = NULL;
	int r = gs_store_load_info(store, ver, &p, &info, err);
	if (r < 0)
		return r;
	if (!info.digest_ok)
		return gs_err_setx(err, EBADMSG,
				   "%s/%s/" GS_MANIFEST_NAME ": edited after staging (manifest_sha256 does not match)",
				   store, ver);
	*out = steal_ptr(&p);
	return 0;
}
