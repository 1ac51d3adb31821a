/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer harness for gpu-runtime's config.json editor (hook/jsonedit.c):
 * for any text that je_load_oci accepts, each insertion either fails and
 * leaves the text as it was, or gives a text jansson reads, in which the
 * array at the path (its last duplicate, as runc reads it) holds the new
 * element at the place asked for.  A crash, a sanitizer report or a broken
 * promise aborts. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../hook/jsonedit.h"

static const char *const hooks[] = {"hooks", "createRuntime", NULL};
static const char *const mounts[] = {"mounts", NULL};
static const char *const ldev[] = {"linux", "resources", "devices", NULL};

static void check(const char *text, size_t len, const char *const *path, ssize_t at)
{
	struct je_doc d = {.text = malloc(len + 1), .len = len};
	struct gs_err err = GS_ERR_INIT;
	if (!d.text)
		return;
	memcpy(d.text, text, len);
	d.text[len] = '\0';
	if (je_array_insert(&d, path, at, "{\"gs-fuzz\":1}", &err) < 0) {
		if (d.len != len || memcmp(d.text, text, len))
			abort(); /* changed on error */
		free(d.text);
		return;
	}
	json_error_t je;
	json_t *j = json_loadb(d.text, d.len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
	if (!j)
		abort(); /* the edit broke the text */
	json_t *v = j;
	for (size_t i = 0; path[i]; i++)
		v = json_object_get(v, path[i]);
	size_t n = json_array_size(v), want = at < 0 || (size_t)at >= n ? n - 1 : (size_t)at;
	if (!n || !json_is_number(json_object_get(json_array_get(v, want), "gs-fuzz")))
		abort(); /* not where it was asked for */
	json_decref(j);
	free(d.text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = NULL;
	struct gs_err err = GS_ERR_INIT;
	if (je_load_oci((const char *)data, size, "fuzz", &j, &err) != 0 || !j)
		return 0;
	json_decref(j);
	check((const char *)data, size, hooks, -1);
	check((const char *)data, size, mounts, 0);
	check((const char *)data, size, mounts, 1);
	check((const char *)data, size, ldev, -1);
	return 0;
}
