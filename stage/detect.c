/* SPDX-License-Identifier: Apache-2.0 */
/* Which driver version is this host running?  The kernel module says so in
 * /proc/driver/nvidia/version ("... Kernel Module  535.261.03  ...", or
 * "... Open Kernel Module for x86_64  535.261.03 ...") and
 * /sys/module/nvidia/version; without a loaded module, what libcuda.so.1
 * and libnvidia-ml.so.1 resolve to in the root's ld.so.cache decides, and
 * disagreement is an error that lists the candidates. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs/cleanup.h"
#include "gs/ldcache.h"
#include "gs/stage.h"
#include "gs/version.h"
#include "rootfs.h"

/* The loaded module's version: /proc/driver/nvidia/version, else
 * /sys/module/nvidia/version (gs_kmod_version_parse reads both). */
static int from_kmod(const struct gs_root *r, const char *path, bool proc, char **out)
{
	struct gs_err ignored = GS_ERR_INIT;
	_cleanup_free_ char *text = NULL;
	char ver[GS_VERSION_MAX + 1];
	if (gs_root_read_text(r, path, 4096, &text, &ignored) < 0 ||
	    !gs_kmod_version_parse(text, proc, ver))
		return 0;
	*out = strdup(ver);
	return *out ? 1 : -ENOMEM;
}

struct cands {
	char list[512];
	char *first;
	bool ambiguous;
	char unopened[sizeof(((struct gs_err *)0)->msg)]; /* why the first entry could not be opened */
};

static void note_candidate(const struct gs_root *r, const struct ldc_entry *e, struct cands *c)
{
	struct gs_err why = GS_ERR_INIT;
	_cleanup_free_ char *resolved = NULL;
	_cleanup_close_ int fd = gs_root_open_file(r, e->value, O_RDONLY | O_NONBLOCK, &resolved,
						   &why);
	if (fd < 0) {
		if (!c->unopened[0])
			snprintf(c->unopened, sizeof(c->unopened), "%s", why.msg);
		return;
	}
	const char *slash = strrchr(resolved, '/');
	const char *v = gs_name_version(slash ? slash + 1 : resolved);
	if (!v)
		return;
	size_t used = strlen(c->list);
	int n = snprintf(c->list + used, sizeof(c->list) - used, "%s%s -> %s", used ? ", " : "", e->value,
			 resolved);
	if (n < 0 || (size_t)n >= sizeof(c->list) - used) /* the message says it was cut */
		memcpy(c->list + sizeof(c->list) - 6, ", ...", 6);
	if (!c->first)
		c->first = strdup(v);
	else if (strcmp(c->first, v) != 0)
		c->ambiguous = true;
}

static int from_libs(const struct gs_root *r, char **out, struct gs_err *err)
{
	_cleanup_(ldc_cache_freep) struct ldc_cache *c = NULL;
	int fd = gs_root_open_file(r, "/etc/ld.so.cache", O_RDONLY | O_NONBLOCK, NULL, err);
	if (fd < 0)
		return gs_err_wrap(err, "no driver version given and no loaded nvidia module; reading the cache");
	int rr = ldc_cache_load_fd(fd, "/etc/ld.so.cache", &c, err);
	close(fd);
	if (rr < 0)
		return rr;
	struct cands cd = {{0}, NULL, false, {0}};
	static const char *const keys[] = {"libcuda.so.1", "libnvidia-ml.so.1"};
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; i < ldc_cache_count(c); i++) {
			const struct ldc_entry *e = ldc_cache_entry(c, i);
			if (!strcmp(e->key, keys[k]) && ldc_flags_arch(e->flags) == LDC_ARCH_X86_64)
				note_candidate(r, e, &cd);
		}
	_cleanup_free_ char *first = cd.first;
	if (!first && cd.unopened[0])
		return gs_err_setx(err, ENOENT,
				   "cannot detect the driver version: the cache's libcuda.so.1 or libnvidia-ml.so.1 cannot be opened (%s); use --driver VER",
				   cd.unopened);
	if (!first)
		return gs_err_setx(err, ENOENT,
				   "cannot detect the driver version: no nvidia module loaded (/proc/driver/nvidia/version, /sys/module/nvidia/version) and no libcuda.so.1 or libnvidia-ml.so.1 in the cache; use --driver VER");
	if (cd.ambiguous)
		return gs_err_setx(err, EINVAL,
				   "cannot detect the driver version: the libraries disagree (%s); use --driver VER",
				   cd.list);
	*out = steal_ptr(&first);
	return 0;
}

int gs_driver_detect(const char *root, enum gs_detect how, char **out, struct gs_err *err)
{
	struct gs_root r = {-1, NULL, 0};
	*out = NULL;
	int rr = gs_root_open(root, &r, err);
	if (rr < 0)
		return rr;
	if (how != GS_DETECT_INSTALLED &&
	    (from_kmod(&r, "/proc/driver/nvidia/version", true, out) > 0 ||
	     from_kmod(&r, "/sys/module/nvidia/version", false, out) > 0))
		rr = 0;
	else
		rr = how == GS_DETECT_LOADED ? 0 : from_libs(&r, out, err);
	gs_root_close(&r);
	return rr;
}
