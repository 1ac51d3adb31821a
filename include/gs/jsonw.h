/* SPDX-License-Identifier: Apache-2.0 */
/* A streaming JSON writer for records we only ever print (the hook's audit
 * line): no document tree, no allocation per value, one buffer.  Strings
 * are escaped per RFC 8259; bytes that are not valid UTF-8 become U+FFFD,
 * so the output is always valid JSON whatever a path holds.  Errors (out
 * of memory, nesting deeper than GS_JW_DEPTH) are sticky and reported by
 * gs_jw_finish. */
#ifndef GS_JSONW_H
#define GS_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs/err.h"

#define GS_JW_DEPTH 16

struct gs_jw {
	char *buf;
	size_t len, cap;
	int depth;
	bool more[GS_JW_DEPTH + 1]; /* a value was already written at this depth */
	char closer[GS_JW_DEPTH + 1]; /* '}' or ']' for what is open there */
	bool failed;
};

/* Starts a document; KEY arguments below are NULL inside arrays (and for
 * the top-level value), the member's name inside objects. */
int gs_jw_start(struct gs_jw *w, struct gs_err *err);
void gs_jw_object(struct gs_jw *w, const char *key);
void gs_jw_array(struct gs_jw *w, const char *key);
void gs_jw_end(struct gs_jw *w); /* closes the innermost object or array */
void gs_jw_string(struct gs_jw *w, const char *key, const char *s); /* NULL: null */
void gs_jw_stringn(struct gs_jw *w, const char *key, const char *s, size_t n);
void gs_jw_int(struct gs_jw *w, const char *key, long long v);
void gs_jw_bool(struct gs_jw *w, const char *key, bool v);
/* Ends the document: *OUT (malloc'd, NUL-terminated, LEN bytes) or an
 * error; the writer is released either way. */
int gs_jw_finish(struct gs_jw *w, char **out, size_t *len, struct gs_err *err);

#endif
