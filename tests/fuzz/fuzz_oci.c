/* SPDX-License-Identifier: Apache-2.0 */
/* The hook's readers of what the runtime hands it: the OCI state (stdin)
 * and config.json, then the request drawn from it (annotations and
 * process.env through hk_request_vars and ovl_env_parse, both orders).
 * Promises: a refusal names its reason; an accepted config gives a root
 * path, and every variable it yields is parsed without harm. */
#include "../../hook/hook.h"
#include "fuzz_common.h"
#include "gs/overlay.h"

static void request(const struct hk_config *c, bool env_counts, bool last)
{
	struct gs_err err = GS_ERR_INIT;
	char **vars = NULL;
	size_t n = 0;
	int r = hk_request_vars(c, env_counts, last, &vars, &n, &err);
	fz_refused(r, &err);
	if (r < 0)
		return;
	struct ovl_env e = {0};
	r = last ? ovl_env_parse_last(vars, n, &e, &err) : ovl_env_parse(vars, n, &e, &err);
	fz_refused(r, &err);
	if (r >= 0) {
		char note[512];
		fz_refused(ovl_require_check(&e, "535.261.03", note, sizeof(note), &err), &err);
	}
	ovl_env_clear(&e);
	hk_request_vars_free(vars, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_err err = GS_ERR_INIT;
	struct hk_state st = {0};
	int r = hk_state_parse((const char *)data, size, &st, &err);
	fz_refused(r, &err);
	if (r >= 0 && (!st.id || !st.bundle))
		abort(); /* an accepted state names the container and its bundle */
	hk_state_clear(&st);
	struct hk_config c;
	err = (struct gs_err)GS_ERR_INIT;
	r = hk_config_parse((const char *)data, size, "fuzz", &c, &err);
	fz_refused(r, &err);
	if (r == 0) {
		if (!c.root_path)
			abort(); /* accepted: a rootfs to work in */
		request(&c, true, false);
		request(&c, false, true);
		hk_config_clear(&c);
	}
	return 0;
}
