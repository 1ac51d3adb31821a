/* SPDX-License-Identifier: Apache-2.0 */
/* The unknown-member check of every strict JSON reader (manifest.json,
 * the device inventory), in a file of its own so that the hook links it
 * without the manifest writer's digest code. */
#include <jansson.h>
#include <string.h>

#include "gs/manifest.h"

const char *gs_json_unknown_key(json_t *obj, const char *const *keys)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		size_t i = 0;
		while (keys[i] && strcmp(keys[i], key))
			i++;
		if (!keys[i])
			return key;
	}
	return NULL;
}
