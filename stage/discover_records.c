/* SPDX-License-Identifier: Apache-2.0 */
/* Evidence for the files whose name and bytes carry no version
 * (nvidia-cuda-mps-server, nvidia-debugdump, libnvidia-api.so.1):
 *  - the dpkg database (Debian): a package of upstream version VER owns it;
 *  - nvidia-installer's record (NVIDIA's .run installer,
 *    /var/lib/nvidia/log): it installed the file as part of VER, and the
 *    file's CRC is still the one it recorded;
 *  - when neither knows VER (RPM hosts, a .run install whose record is
 *    gone): the folder rule for executables -- the file's folder holds
 *    executables carrying VER and none carrying another version seen on the
 *    host, and the file itself carries no other version.
 * A record that knows VER but does not list the file, or lists it for
 * another version, leaves it out. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discover_internal.h"
#include "gs/cleanup.h"

static int from_dpkg(struct disc *d, const char *resolved, const char *also, char **evidence)
{
	const struct gs_dpkg_pkg *pkg = gs_dpkg_owner(&d->dpkg, resolved, also);
	if (!pkg)
		return REC_NONE;
	if (strcmp(pkg->upstream, d->ver)) {
		int r = gs_disc_warn(d, "%s: not staged: it belongs to package %s %s, not to driver %s",
				     resolved, pkg->name, pkg->version, d->ver);
		return r < 0 ? r : REC_REFUSED;
	}
	return asprintf(evidence, "dpkg:%s=%s", pkg->name, pkg->version) < 0 ? -ENOMEM : REC_VER;
}

static int from_nvinst(struct disc *d, int fd, const char *resolved, const char *also,
		       char **evidence)
{
	const struct gs_nvinst_file *f = gs_nvinst_find(&d->nvinst, resolved, also);
	if (!f)
		return REC_NONE;
	struct gs_err err = GS_ERR_INIT;
	uint32_t crc = 0;
	int r;
	if (strcmp(d->nvinst.version, d->ver))
		r = gs_disc_warn(d, "%s: not staged: nvidia-installer's record (%s) lists it for driver %s, not %s",
				 resolved, GS_NVINST_LOG, d->nvinst.version, d->ver);
	else if (gs_nvinst_crc_fd(fd, &crc, &err) < 0)
		r = gs_disc_warn(d, "%s: not staged: %s", resolved, err.msg);
	else if (crc != f->crc)
		r = gs_disc_warn(d, "%s: not staged: changed since nvidia-installer installed driver %s "
				 "(CRC %u, %s records %u)", resolved, d->ver, crc, GS_NVINST_LOG, f->crc);
	else
		return asprintf(evidence, "nvidia-installer:%s", d->ver) < 0 ? -ENOMEM : REC_VER;
	return r < 0 ? r : REC_REFUSED;
}

int gs_disc_records(struct disc *d, int fd, const char *resolved, const char *also,
		    char **evidence)
{
	int r = from_dpkg(d, resolved, also, evidence);
	return r == REC_NONE ? from_nvinst(d, fd, resolved, also, evidence) : r;
}

bool gs_disc_records_know_ver(const struct disc *d)
{
	if (d->nvinst.present && !strcmp(d->nvinst.version, d->ver))
		return true;
	for (size_t i = 0; i < d->dpkg.n_pkgs; i++)
		if (!strcmp(d->dpkg.pkgs[i]->upstream, d->ver))
			return true;
	return false;
}

/* What one file's bytes say: 1 it carries VER, 0 no version seen on the
 * host, else -1 with *OTHER the version it carries. */
static int file_version(struct disc *d, int fd, const char **other)
{
	struct gs_err err = GS_ERR_INIT;
	if (gs_fd_contains(fd, d->ver, &err) > 0)
		return 1;
	for (size_t i = 0; i < d->n_versions; i++)
		if (strcmp(d->versions[i].ver, d->ver) && gs_fd_contains(fd, d->versions[i].ver, &err) > 0) {
			*other = d->versions[i].ver;
			return -1;
		}
	return 0;
}

/* A driver executable by name: nvidia-smi, nvidia-settings, nv-fabricmanager... */
static bool driver_exec_name(const char *name)
{
	return !strncmp(name, "nvidia-", 7) || !strncmp(name, "nv-", 3);
}

struct folder_scan {
	size_t n_ver;       /* executables carrying VER */
	char *other_name;   /* one carrying another version, */
	const char *other;  /* and that version */
};

static int scan_folder(struct disc *d, const char *dirpath, struct folder_scan *s)
{
	_cleanup_closedir_ DIR *dir = gs_disc_opendir(d, dirpath);
	if (!dir)
		return 0;
	struct dirent *de;
	while (!s->other_name && (de = readdir(dir)) != NULL) {
		_cleanup_free_ char *path = NULL, *resolved = NULL;
		struct stat st;
		if (!driver_exec_name(de->d_name))
			continue;
		if (asprintf(&path, "%s/%s", dirpath, de->d_name) < 0)
			return -ENOMEM;
		_cleanup_close_ int fd = gs_disc_open_regular(d, path, &resolved, &st);
		if (fd < 0 || !(st.st_mode & 0111))
			continue;
		int v = file_version(d, fd, &s->other);
		s->n_ver += v > 0;
		if (v < 0 && !(s->other_name = strdup(de->d_name)))
			return -ENOMEM;
	}
	return 0;
}

int gs_disc_bin_folder(struct disc *d, const char *resolved, char **evidence)
{
	_cleanup_free_ char *copy = strdup(resolved);
	struct folder_scan s = {0};
	if (!copy)
		return -ENOMEM;
	const char *dirpath = dirname(copy);
	int r = scan_folder(d, dirpath, &s);
	const char *self = strrchr(resolved, '/') + 1;
	if (r >= 0 && s.other_name && !strcmp(s.other_name, self))
		r = gs_disc_warn(d, "%s: not staged: it carries version %s, not %s", resolved, s.other, d->ver);
	else if (r >= 0 && s.other_name)
		r = gs_disc_warn(d, "%s: not staged: it carries no version string, no record lists it, and "
				 "its folder %s also holds %s of driver %s",
				 resolved, dirpath, s.other_name, s.other);
	else if (r >= 0 && s.n_ver == 0)
		r = gs_disc_warn(d, "%s: not staged: it carries no version string, no record lists it, and "
				 "its folder %s holds no executable of driver %s",
				 resolved, dirpath, d->ver);
	else if (r >= 0)
		r = (*evidence = strdup("bin-folder")) ? 1 : -ENOMEM;
	free(s.other_name);
	return r;
}
