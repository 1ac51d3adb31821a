/* SPDX-License-Identifier: Apache-2.0 */
/* ld.so.conf as `gpu-stage ldcache --root` reads it (ldcache/conf.c), in
 * a scratch root: the input's parts (split at "\n--next--\n") are
 * etc/ld.so.conf, etc/ld.so.conf.d/a.conf and etc/ld.so.conf.d/b.conf.
 * Promises: a refusal names its reason; the list is NULL-terminated, *N
 * long, ends with ldconfig's built-in directories, and holds no empty
 * entry, none with a trailing '/', '#' or '=' (a comment or a type). */
#include <sys/stat.h>

#include "fuzz_common.h"
#include "gs/ldcache.h"

#define SEP "\n--next--\n"

static char root[128];
static const char *const files[] = {"etc/ld.so.conf", "etc/ld.so.conf.d/a.conf",
				    "etc/ld.so.conf.d/b.conf"};

static void setup(void)
{
	static const char *const dirs[] = {"etc", "etc/ld.so.conf.d"};
	fz_mkdirs(root, sizeof(root), "root", dirs, FZ_N(dirs));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!root[0])
		setup();
	fz_write_parts(root, files, FZ_N(files), SEP, &data, &size);
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		abort();
	char **dirs = NULL;
	size_t n = 0;
	struct gs_err err = GS_ERR_INIT;
	int r = ldc_conf_dirs(rootfd, &dirs, &n, &err);
	fz_refused(r, &err);
	close(rootfd);
	if (r < 0)
		return 0;
	if (n < 2 || dirs[n] || strcmp(dirs[n - 1], "/usr/lib") || strcmp(dirs[n - 2], "/lib"))
		abort(); /* not the list ldconfig would scan */
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(dirs[i]);
		if (!l || dirs[i][l - 1] == '/' || strpbrk(dirs[i], "#=\n"))
			abort();
	}
	ldc_strv_free(dirs);
	return 0;
}
