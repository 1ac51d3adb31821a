/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log as `gpu-stage audit` reads it (stage/audit_log.c): the
 * input up to "\n--rotated--\n" is the log, the rest its rotation
 * audit.log.1 (audit.log.1.gz when it starts with gzip's magic: logrotate's
 * compress), in a scratch directory.  Promises: a refusal names its
 * reason; every container kept is a record of that container with a
 * "plan" object; lines counted bad are no more than the lines there. */
#include "../../stage/audit.h"
#include "fuzz_common.h"

static char logp[128], rot[140], rotgz[144];

static size_t lines(const uint8_t *d, size_t n)
{
	size_t k = n && d[n - 1] != '\n';
	for (size_t i = 0; i < n; i++)
		k += d[i] == '\n';
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!logp[0]) {
		snprintf(logp, sizeof(logp), "%s/audit.log", fz_scratch());
		snprintf(rot, sizeof(rot), "%s.1", logp);
		snprintf(rotgz, sizeof(rotgz), "%s.1.gz", logp);
	}
	const uint8_t *rest;
	size_t len, rest_len;
	fz_split(data, size, "\n--rotated--\n", &len, &rest, &rest_len);
	fz_write(logp, data, len);
	bool gz = rest_len >= 2 && rest[0] == 0x1f && rest[1] == 0x8b;
	fz_write(gz ? rotgz : rot, rest, rest_len);
	unlink(gz ? rot : rotgz);
	json_t *latest = NULL;
	size_t n_bad = 0;
	struct gs_err err = GS_ERR_INIT;
	int r = au_log_read(logp, &latest, &n_bad, &err);
	fz_refused(r, &err);
	if (r < 0)
		return 0;
	/* (a compressed rotation's lines are not counted here) */
	if (!json_is_object(latest) || (!gz && n_bad > lines(data, len) + lines(rest, rest_len)))
		abort();
	const char *id;
	json_t *rec;
	json_object_foreach(latest, id, rec) {
		const char *c = json_string_value(json_object_get(rec, "container"));
		if (!c || strcmp(c, id) || !json_is_object(json_object_get(rec, "plan")))
			abort(); /* not that container's record, or one without a plan */
	}
	json_decref(latest);
	return 0;
}
