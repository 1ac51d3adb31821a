/* SPDX-License-Identifier: Apache-2.0 */
/* Edits of a JSON text that keep every byte outside the edit: gpu-runtime
 * adds its entries to a bundle's config.json this way, so that values no
 * JSON library here can hold (integers above INT64_MAX, such as an
 * unlimited rlimit) and everything else the engine wrote reach the runtime
 * exactly as they were.  The text must already have been accepted by a
 * JSON parser (jansson); a member given twice is found at its last
 * occurrence, the one runc (Go's encoding/json) and jansson both use. */
#ifndef HK_JSONEDIT_H
#define HK_JSONEDIT_H

#include <stddef.h>
#include <sys/types.h>

#include "gs/err.h"

#include <jansson.h>

/* Reads TEXT (LEN bytes, NAME in messages) as runc reads config.json: a
 * member given twice counts at its last occurrence (no error), any number
 * is accepted (integers above INT64_MAX, such as an unlimited rlimit, are
 * read as reals, for reading only: je_array_insert keeps their text), and
 * so is a \u0000 in a string.  Returns 0 with *OUT a JSON object, or 0
 * with *OUT NULL for a text jansson cannot read (invalid UTF-8, nesting
 * deeper than jansson's limit, a number beyond a double's range) that
 * cannot ask for a GPU: neither the name NVIDIA_VISIBLE_DEVICES nor a \u
 * escape (which could spell it) is in it, so the runtime gets it untouched
 * and judges it.  Else an error with the line and column. */
int je_load_oci(const char *text, size_t len, const char *name, json_t **out,
		struct gs_err *err);

struct je_doc {
	char *text; /* malloc'd, NUL-terminated */
	size_t len;
};

/* Inserts the JSON value ELEM (a complete text) into the array found by
 * PATH, a NULL-terminated list of member names from the top-level object:
 * before the element of index AT, or at the end when AT is -1 or past the
 * last.  Objects and the array missing on the path (or null there) are
 * created.  A value of another type on the path is an error naming the
 * member; D is then unchanged. */
int je_array_insert(struct je_doc *d, const char *const *path, ssize_t at, const char *elem,
		    struct gs_err *err);

#endif
