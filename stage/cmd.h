/* SPDX-License-Identifier: Apache-2.0 */
#ifndef GS_STAGE_CMD_H
#define GS_STAGE_CMD_H

#include <jansson.h>

#include "gs/config.h"

enum gs_exit {
	GS_EXIT_OK = 0,
	GS_EXIT_FAIL = 1,
	GS_EXIT_USAGE = 2,
};

static inline void gs_json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}

/* The configuration file (cli_config.c), or NULL after printing why it
 * cannot be read. */
const struct gs_config *cli_config(void);

/* Each takes argv[0] = its verb and returns an enum gs_exit. */
int cmd_ldcache(int argc, char **argv);
int cmd_stage(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_runtime(int argc, char **argv);

#endif
