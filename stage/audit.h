/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage audit: the audit log's records (audit_log.c) and one
 * container's record against its live state (audit.c).  Private to the
 * CLI (stage/cmd_audit.c prints). */
#ifndef GS_STAGE_AUDIT_H
#define GS_STAGE_AUDIT_H

#include <jansson.h>
#include <stdbool.h>

#include "gs/err.h"

/* ---- audit_log.c ---- */

/* Reads the audit log PATH and its rotations (PATH.N .. PATH.1, oldest
 * first; they end at the first missing PATH.i): *LATEST (an object: container id -> its latest record that has
 * a "plan") and *N_BAD, the lines that are not a JSON record (counted,
 * skipped: a line cut by a crash must not hide every other container).
 * A missing PATH is no error (no container was started). */
int au_log_read(const char *path, json_t **latest, size_t *n_bad, struct gs_err *err);

/* ---- audit.c ---- */

struct au_cache; /* stores and manifests read once for every container */
int au_cache_new(struct au_cache **out, struct gs_err *err);
void au_cache_free(struct au_cache *c);
static inline void au_cache_freep(struct au_cache **c)
{
	if (*c)
		au_cache_free(*c);
}

struct au_opts {
	const char *store; /* NULL: the store the record names */
	bool rehash;       /* SHA-256 every staged file the container received */
};

/* Whether the process REC names (its "pid") is still that container: 1
 * yes; 0 gone (dead, or the pid now another process's), *WHY malloc'd. */
int au_alive(const json_t *rec, char **why, struct gs_err *err);

/* Audits the container of record REC: *OUT is {"container", "pid",
 * "driver", "files": [...], "mounts": [...], "findings": [{"finding",
 * "message"}...], "record": REC}.  Fails only when it cannot run at all
 * (out of memory); what it cannot read is a finding. */
int au_check(json_t *rec, const struct au_opts *o, struct au_cache *cache, json_t **out,
	     struct gs_err *err);

#endif
