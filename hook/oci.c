/* SPDX-License-Identifier: Apache-2.0 */
/* The OCI state (stdin) and the bundle's config.json, parsed with jansson:
 * the state strictly (duplicate keys are errors), config.json as runc reads
 * it (je_load_oci); wrong types, missing fields and oversized input are
 * errors that name the field. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "hook.h"
#include "jsonedit.h"

#define STATE_MAX (1u << 20)
#define CONFIG_MAX (16u << 20)
#define ENV_MAX 65536

static int load_json(const char *text, size_t len, const char *what, json_t **out,
		     struct gs_err *err)
{
	json_error_t je;
	if (len == 0)
		return gs_err_setx(err, EBADMSG, "%s: empty input", what);
	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!*out)
		return gs_err_setx(err, EBADMSG, "%s: line %d column %d: %s", what, je.line,
				   je.column, je.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return gs_err_setx(err, EBADMSG, "%s: not a JSON object", what);
	}
	return 0;
}

/* String member KEY of OBJ: *OUT strdup'd, or NULL when absent and !REQUIRED. */
static int get_string(json_t *obj, const char *what, const char *key, bool required, char **out,
		      struct gs_err *err)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v && !required)
		return 0;
	if (!v)
		return gs_err_setx(err, EBADMSG, "%s: \"%s\" is missing", what, key);
	if (!json_is_string(v))
		return gs_err_setx(err, EBADMSG, "%s: \"%s\" must be a string", what, key);
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v) || strlen(s) > PATH_MAX)
		return gs_err_setx(err, EBADMSG, "%s: \"%s\" holds a NUL byte or is too long", what,
				   key);
	*out = strdup(s);
	return *out ? 0 : gs_err_setx(err, ENOMEM, "%s: out of memory", what);
}

void hk_state_clear(struct hk_state *s)
{
	free(s->id);
	free(s->bundle);
	free(s->status);
	memset(s, 0, sizeof(*s));
}

static int state_fields(json_t *j, struct hk_state *s, struct gs_err *err)
{
	char *ver = NULL;
	int r = get_string(j, "state", "ociVersion", true, &ver, err);
	free(ver);
	if (r >= 0)
		r = get_string(j, "state", "id", true, &s->id, err);
	if (r >= 0)
		r = get_string(j, "state", "bundle", true, &s->bundle, err);
	if (r >= 0)
		r = get_string(j, "state", "status", false, &s->status, err);
	if (r < 0)
		return r;
	if (!s->id[0] || strlen(s->id) > 1024 || strpbrk(s->id, "/\n\r\t"))
		return gs_err_setx(err, EBADMSG, "state: \"id\" is empty, too long or holds '/'");
	if (s->bundle[0] != '/')
		return gs_err_setx(err, EBADMSG, "state: \"bundle\" must be an absolute path");
	json_t *pid = json_object_get(j, "pid");
	if (pid && !json_is_integer(pid))
		return gs_err_setx(err, EBADMSG, "state: \"pid\" must be an integer");
	json_int_t p = pid ? json_integer_value(pid) : 0;
	if (p < 0 || p > INT_MAX)
		return gs_err_setx(err, EBADMSG, "state: \"pid\" %lld out of range", (long long)p);
	s->pid = (long)p;
	return 0;
}

int hk_state_parse(const char *text, size_t len, struct hk_state *out, struct gs_err *err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_(json_decrefp) json_t *j = NULL;
	int r = load_json(text, len, "state (stdin)", &j, err);
	if (r >= 0)
		r = state_fields(j, out, err);
	if (r < 0)
		hk_state_clear(out);
	return r;
}

/* ---- config.json ------------------------------------------------------------------ */

void hk_config_clear(struct hk_config *c)
{
	free(c->root_path);
	for (size_t i = 0; i < c->n_env; i++)
		free(c->env[i]);
	free(c->env);
	for (size_t i = 0; i < c->n_tmpfs_dests; i++)
		free(c->tmpfs_dests[i]);
	free(c->tmpfs_dests);
	free(c->ann_devices);
	free(c->ann_caps);
	memset(c, 0, sizeof(*c));
}

static int config_root(json_t *j, struct hk_config *c, struct gs_err *err)
{
	json_t *root = json_object_get(j, "root");
	if (!json_is_object(root))
		return gs_err_setx(err, EBADMSG, "config.json: \"root\" must be an object");
	int r = get_string(root, "config.json: root", "path", true, &c->root_path, err);
	if (r < 0)
		return r;
	if (!c->root_path[0])
		return gs_err_setx(err, EBADMSG, "config.json: root.path is empty");
	json_t *ro = json_object_get(root, "readonly");
	if (ro && !json_is_boolean(ro))
		return gs_err_setx(err, EBADMSG, "config.json: root.readonly must be a boolean");
	c->readonly = ro && json_is_true(ro);
	return 0;
}

static int config_env(json_t *j, struct hk_config *c, struct gs_err *err)
{
	json_t *proc = json_object_get(j, "process");
	if (!proc)
		return 0;
	if (!json_is_object(proc))
		return gs_err_setx(err, EBADMSG, "config.json: \"process\" must be an object");
	json_t *env = json_object_get(proc, "env");
	if (!env)
		return 0;
	if (!json_is_array(env) || json_array_size(env) > ENV_MAX)
		return gs_err_setx(err, EBADMSG, "config.json: process.env must be an array of strings");
	c->env = calloc(json_array_size(env) + 1, sizeof(char *));
	if (!c->env)
		return gs_err_setx(err, ENOMEM, "config.json: out of memory");
	size_t i;
	json_t *v;
	json_array_foreach(env, i, v) {
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
			return gs_err_setx(err, EBADMSG, "config.json: process.env[%zu] must be a string", i);
		if (!(c->env[c->n_env] = strdup(json_string_value(v))))
			return gs_err_setx(err, ENOMEM, "config.json: out of memory");
		c->n_env++;
	}
	return 0;
}

static int config_namespaces(json_t *j, struct hk_config *c, struct gs_err *err)
{
	json_t *linux_ = json_object_get(j, "linux");
	if (linux_ && !json_is_object(linux_))
		return gs_err_setx(err, EBADMSG, "config.json: \"linux\" must be an object");
	json_t *ns = linux_ ? json_object_get(linux_, "namespaces") : NULL;
	if (ns && !json_is_array(ns))
		return gs_err_setx(err, EBADMSG, "config.json: linux.namespaces must be an array");
	size_t i;
	json_t *v;
	json_array_foreach(ns, i, v) {
		json_t *t = json_is_object(v) ? json_object_get(v, "type") : NULL;
		if (!json_is_string(t))
			return gs_err_setx(err, EBADMSG, "config.json: linux.namespaces[%zu].type must be a string", i);
		if (!strcmp(json_string_value(t), "mount"))
			c->mount_ns = true;
		if (!strcmp(json_string_value(t), "cgroup"))
			c->cgroup_ns = true;
		if (!strcmp(json_string_value(t), "user"))
			c->user_ns = true;
	}
	return 0;
}

/* The destinations of mounts[] entries with "type": "tmpfs" (the tmpfs
 * mounts the runtime makes; a bind of a tmpfs has type "bind" or none).
 * The overlay decides at apply time which of them really are the
 * container's own. */
static int config_tmpfs(json_t *j, struct hk_config *c, struct gs_err *err)
{
	json_t *mounts = json_object_get(j, "mounts");
	if (!mounts)
		return 0;
	if (!json_is_array(mounts) || json_array_size(mounts) > ENV_MAX)
		return gs_err_setx(err, EBADMSG, "config.json: \"mounts\" must be an array of objects");
	c->tmpfs_dests = calloc(json_array_size(mounts) + 1, sizeof(char *));
	if (!c->tmpfs_dests)
		return gs_err_setx(err, ENOMEM, "config.json: out of memory");
	size_t i;
	json_t *m;
	json_array_foreach(mounts, i, m) {
		char what[64];
		snprintf(what, sizeof(what), "config.json: mounts[%zu]", i);
		if (!json_is_object(m))
			return gs_err_setx(err, EBADMSG, "%s must be an object", what);
		json_t *t = json_object_get(m, "type");
		if (t && !json_is_string(t))
			return gs_err_setx(err, EBADMSG, "%s: \"type\" must be a string", what);
		if (!t || strcmp(json_string_value(t), "tmpfs"))
			continue;
		int r = get_string(m, what, "destination", true, &c->tmpfs_dests[c->n_tmpfs_dests], err);
		if (r < 0)
			return r;
		c->n_tmpfs_dests++;
	}
	return 0;
}

static int config_annotations(json_t *j, struct hk_config *c, struct gs_err *err)
{
	json_t *a = json_object_get(j, "annotations");
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_object(a))
		return gs_err_setx(err, EBADMSG, "config.json: \"annotations\" must be an object");
	int r = get_string(a, "config.json: annotations", HK_ANNOT_DEVICES, false, &c->ann_devices, err);
	if (r >= 0)
		r = get_string(a, "config.json: annotations", HK_ANNOT_CAPS, false, &c->ann_caps, err);
	return r;
}

static bool is_key(const char *kv, const char *key)
{
	size_t n = strlen(key);
	return !strncmp(kv, key, n) && kv[n] == '=';
}

void hk_request_vars_free(char **vars, size_t n)
{
	for (size_t i = 0; vars && i < n; i++)
		free(vars[i]);
	free(vars);
}

int hk_request_vars(const struct hk_config *c, bool env_counts, bool last_wins, char ***vars,
		    size_t *n, struct gs_err *err)
{
	char **v = calloc(c->n_env + 3, sizeof(char *));
	size_t k = 0;
	*vars = NULL;
	*n = 0;
	if (!v)
		return gs_err_setx(err, ENOMEM, "out of memory");
	char *ann[2] = {NULL, NULL};
	bool ok = (!c->ann_devices ||
		   asprintf(&ann[0], "NVIDIA_VISIBLE_DEVICES=%s", c->ann_devices) >= 0) &&
		  (!c->ann_caps || asprintf(&ann[1], "NVIDIA_DRIVER_CAPABILITIES=%s", c->ann_caps) >= 0);
	for (int i = 0; ok && !last_wins && i < 2; i++)
		if (ann[i])
			v[k++] = steal_ptr(&ann[i]);
	for (size_t i = 0; ok && i < c->n_env; i++) {
		if (!env_counts && (is_key(c->env[i], "NVIDIA_VISIBLE_DEVICES") ||
				    is_key(c->env[i], "NVIDIA_DRIVER_CAPABILITIES")))
			continue;
		ok = (v[k] = strdup(c->env[i])) != NULL;
		k += ok;
	}
	for (int i = 0; ok && i < 2; i++)
		if (ann[i])
			v[k++] = steal_ptr(&ann[i]);
	free(ann[0]);
	free(ann[1]);
	if (!ok) {
		hk_request_vars_free(v, k);
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	*vars = v;
	*n = k;
	return 0;
}

int hk_config_parse(const char *text, size_t len, const char *name, struct hk_config *out,
		    struct gs_err *err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_(json_decrefp) json_t *j = NULL;
	int r = je_load_oci(text, len, name, &j, err);
	if (r >= 0 && !j)
		return 1;
	if (r >= 0)
		r = config_root(j, out, err);
	if (r >= 0)
		r = config_env(j, out, err);
	if (r >= 0)
		r = config_namespaces(j, out, err);
	if (r >= 0)
		r = config_tmpfs(j, out, err);
	if (r >= 0)
		r = config_annotations(j, out, err);
	if (r < 0)
		hk_config_clear(out);
	return r;
}

int hk_config_load(int bundlefd, const char *bundle, struct hk_config *out, struct gs_err *err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_close_ int fd = openat(bundlefd, "config.json", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return gs_err_set(err, errno, "%s/config.json", bundle);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return gs_err_setx(err, EINVAL, "%s/config.json: not a regular file", bundle);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = gs_read_all_fd(fd, CONFIG_MAX, "config.json", &text, &len, err);
	if (r >= 0)
		r = hk_config_parse(text, len, "config.json", out, err);
	return r < 0 ? gs_err_wrap(err, "%s", bundle) : r;
}
