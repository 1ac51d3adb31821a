/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage devices --inventory (devices_inventory.c). */
#ifndef GS_STAGE_DEVICES_H
#define GS_STAGE_DEVICES_H

#include <stdbool.h>

#include "gs/err.h"

struct inv_opts {
	const char *store, *driver; /* driver NULL: the loaded module's (PROC_ROOT) */
	const char *proc_root;
	const char *output;         /* absolute path of the inventory file */
	bool json;                  /* print the file written */
	unsigned timeout;           /* seconds the helper may take (> 0) */
};

/* Writes the inventory (gs/inventory.h) of what the staged
 * libnvidia-ml.so.1 of O's driver reports; on any failure nothing is
 * written and the previous file is left as it was. */
int devices_inventory(const struct inv_opts *o, struct gs_err *err);

#endif
