/* SPDX-License-Identifier: Apache-2.0 */
#ifndef GS_STAGE_NVINST_H
#define GS_STAGE_NVINST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs/err.h"
#include "rootfs.h"

/* Where NVIDIA's .run installer keeps the record it uninstalls from. */
#define GS_NVINST_LOG "/var/lib/nvidia/log"

struct gs_nvinst_file {
	char *path;   /* absolute, as the installer wrote it */
	uint32_t crc; /* the installer's CRC of the file as installed */
};

struct gs_nvinst {
	bool present;  /* ROOT/var/lib/nvidia/log was read and is well formed */
	char *version; /* the driver version it installed: "535.261.03" */
	struct gs_nvinst_file *files; /* its INSTALLED_FILE entries */
	size_t n_files;
};

/* Parses the text of nvidia-installer's backup log (TEXT is modified).  A
 * malformed record (a line that is not the installer's, a path that is not
 * absolute or has "." or ".." components, an over-long line) is -EBADMSG:
 * it vouches for nothing.  NAME is the file as shown in messages. */
int gs_nvinst_parse(char *text, const char *name, struct gs_nvinst *rec, struct gs_err *err);
/* Reads ROOT/var/lib/nvidia/log (bounded); a root without one gives an
 * empty record (present false), not an error. */
int gs_nvinst_load(const struct gs_root *root, struct gs_nvinst *rec, struct gs_err *err);
/* The INSTALLED_FILE entry for PATH (or ALSO, when not NULL), or NULL. */
const struct gs_nvinst_file *gs_nvinst_find(const struct gs_nvinst *rec, const char *path,
					    const char *also);
/* nvidia-installer's CRC (crc.c: CRC-32, MSB first, no reflection, initial
 * value ~0, no final xor; an empty file is 0) of the whole file FD. */
int gs_nvinst_crc_fd(int fd, uint32_t *crc, struct gs_err *err);
void gs_nvinst_clear(struct gs_nvinst *rec);

#endif
