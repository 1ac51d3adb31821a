/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage import (stage/archive.c through gs_archive_import, the path
 * the command takes) into a scratch store, emptied every run.  The input
 * is the tar (what `gpu-stage export` writes, decompressed): the harness
 * compresses it with zstd as export does, so that mutations land in the
 * tar and the manifest, not in the compressed stream; an input that is
 * zstd already is imported as it is.  Promises: a refusal names its
 * reason and leaves the store as it was (no version, no temporary tree);
 * an import that is accepted gives a valid version whose tree
 * gs_store_verify finds exactly as its manifest says, and importing it
 * again changes nothing. */
#include <sys/mman.h>
#include <zstd.h>

#include <dirent.h>

#include "../../stage/store_internal.h"
#include "fuzz_common.h"
#include "gs/version.h"

static char store[128];

static void report(void *data, const char *line)
{
	(void)data;
	fprintf(stderr, "fuzz_archive: verify: %s\n", line);
}

/* STORE holds nothing but its lock files. */
static bool store_as_before(void)
{
	DIR *d = opendir(store);
	if (!d)
		return true; /* not even made */
	bool ok = true;
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, ".lock") &&
		    strcmp(de->d_name, ".readers")) {
			fprintf(stderr, "fuzz_archive: %s left in the store\n", de->d_name);
			ok = false;
		}
	closedir(d);
	return ok;
}

static int archive_fd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-archive", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	void *z = NULL;
	size_t n = size;
	if (size < 4 || memcmp(data, "\x28\xb5\x2f\xfd", 4)) { /* not zstd: compress */
		size_t cap = ZSTD_compressBound(size);
		if (!(z = malloc(cap)))
			abort();
		n = ZSTD_compress(z, cap, data, size, 1);
		if (ZSTD_isError(n))
			abort();
	}
	if (n && write(fd, z ? z : data, n) != (ssize_t)n)
		abort();
	free(z);
	if (lseek(fd, 0, SEEK_SET) < 0)
		abort();
	return fd;
}

static int import(const uint8_t *data, size_t size, char **ver, enum gs_stage_result *res)
{
	struct gs_err err = GS_ERR_INIT;
	int fd = archive_fd(data, size);
	int r = gs_archive_import(store, fd, "fuzz.tar.zst", false, ver, res, &err);
	close(fd);
	fz_refused(r, &err);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!store[0])
		snprintf(store, sizeof(store), "%s/store", fz_scratch());
	char *ver = NULL;
	enum gs_stage_result res;
	int r = import(data, size, &ver, &res);
	if (r < 0 && !store_as_before())
		abort(); /* a refused import left something behind */
	if (r >= 0) {
		struct gs_err err = GS_ERR_INIT;
		if (!ver || !gs_version_valid(ver) || res != GS_STAGE_CREATED ||
		    gs_store_verify(store, ver, report, NULL, &err) < 0)
			abort(); /* accepted, but not what its manifest says */
		free(ver);
		ver = NULL;
		if (import(data, size, &ver, &res) < 0 || res != GS_STAGE_UNCHANGED)
			abort(); /* the same archive again is not a no-op */
	}
	free(ver);
	int sfd = open(store, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sfd >= 0) {
		char parent[128];
		snprintf(parent, sizeof(parent), "%s", fz_scratch());
		int pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (pfd < 0 || gs_store_rm_tree(pfd, "store") < 0)
			abort();
		close(pfd);
		close(sfd);
	}
	return 0;
}
