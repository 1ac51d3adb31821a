/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration file for the gpu-stage CLI: GPU_STAGE_CONFIG when set
 * (then it must exist), else /etc/gpu-stage/config.json (missing: every
 * default).  Read once, by the commands that use it (the store, the
 * driver): `ldcache` never depends on it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static struct gs_config conf;
static bool loaded;

const struct gs_config *cli_config(void)
{
	if (loaded)
		return &conf;
	const char *env = getenv(GS_CONFIG_ENV);
	bool named = env && *env;
	struct gs_err err = GS_ERR_INIT;
	if (gs_config_load(named ? env : GS_CONFIG_DEFAULT, named, &conf, &err) < 0) {
		fprintf(stderr, "gpu-stage: %s\n", err.msg);
		return NULL;
	}
	loaded = true;
	return &conf;
}

int cli_fail(const struct gs_err *err)
{
	fprintf(stderr, "gpu-stage: %s\n", err->msg);
	return GS_EXIT_FAIL;
}

int cli_emit_json(json_t *j)
{
	if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) < 0) {
		fprintf(stderr, "gpu-stage: writing JSON: out of memory\n");
		return GS_EXIT_FAIL;
	}
	putchar('\n');
	return GS_EXIT_OK;
}

int cli_flush_out(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "gpu-stage: writing output: %s\n", strerror(errno));
		return GS_EXIT_FAIL;
	}
	return code;
}
