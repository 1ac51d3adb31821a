/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration file (gs/config.h), read strictly with jansson.
 * jansson keeps no positions of parsed values, so the line of a key in
 * an error is found in the text: the first line where it appears as a
 * quoted member name. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/config.h"
#include "gs/fsx.h"
#include "gs/manifest.h"

void gs_config_clear(struct gs_config *c)
{
	free(c->path);
	free(c->store);
	free(c->driver);
	free(c->runtime);
	free(c->audit_log);
	free(c->dev_root);
	free(c->proc_root);
	free(c->cdi_vendor);
	free(c->cdi_dir);
	free(c->host_root);
	free(c->mps_pipe_dir);
	free(c->cuda_compat_dir);
	free(c->mps_log_dir);
	free(c->inventory);
	*c = (struct gs_config){0};
}

static int defaults(struct gs_config *c, struct gs_err *err)
{
	*c = (struct gs_config){.caps = GS_CAP_UTILITY | GS_CAP_COMPUTE, .requests = GS_REQUESTS_ENV,
				.audit_log_max = GS_AUDIT_LOG_MAX_DEFAULT,
				.audit_log_keep = GS_AUDIT_LOG_KEEP_DEFAULT, .require_uvm = true};
	if (!(c->store = strdup(GS_DEFAULT_STORE)) || !(c->runtime = strdup("runc")) ||
	    !(c->audit_log = strdup("/var/log/gpu-stage/hook.log")) || !(c->dev_root = strdup("/dev")) ||
	    !(c->proc_root = strdup("/proc")) || !(c->cdi_vendor = strdup("nvidia.com")) ||
	    !(c->cdi_dir = strdup("/etc/cdi")) || !(c->host_root = strdup("/")) ||
	    !(c->mps_pipe_dir = strdup(GS_MPS_PIPE_DEFAULT)) ||
	    !(c->cuda_compat_dir = strdup(GS_CUDA_COMPAT_DEFAULT)) ||
	    !(c->mps_log_dir = strdup(GS_MPS_LOG_DEFAULT)) ||
	    !(c->inventory = strdup(GS_INVENTORY_DEFAULT))) {
		gs_config_clear(c);
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* The line where "KEY" first appears as a member name in TEXT. */
static int key_line(const char *text, size_t len, const char *key)
{
	size_t kl = strlen(key);
	int line = 1;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n') {
			line++;
			continue;
		}
		if (text[i] != '"' || i + kl + 2 > len || memcmp(text + i + 1, key, kl) ||
		    text[i + 1 + kl] != '"')
			continue;
		size_t j = i + kl + 2;
		while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n'))
			j++;
		if (j < len && text[j] == ':')
			return line;
	}
	return 0;
}

struct ctx {
	const char *name, *text;
	size_t len;
	struct gs_err *err;
};

__attribute__((format(printf, 3, 4))) static int bad(const struct ctx *x, const char *key,
						     const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int line = key_line(x->text, x->len, key);
	if (line > 0)
		return gs_err_setx(x->err, EINVAL, "%s:%d: \"%s\": %s", x->name, line, key, msg);
	return gs_err_setx(x->err, EINVAL, "%s: \"%s\": %s", x->name, key, msg);
}

bool gs_cdi_vendor_valid(const char *s)
{
	/* CDI's vendor rule (its ValidateVendorName, every version up to the
	 * 0.5.0 Podman 4.3 reads): a letter first, a letter or digit last,
	 * letters, digits, '.', '-', '_' between; the kind's prefix is a DNS
	 * subdomain, so at most 253 bytes */
	size_t n = strlen(s);
	return n > 0 && n <= 253 && isalpha((unsigned char)s[0]) && isalnum((unsigned char)s[n - 1]) &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

/* A string member: *DST replaced by a copy when it passes CHECK. */
static int take_string(const struct ctx *x, const char *key, json_t *v, char **dst, int check)
{
	if (!json_is_string(v))
		return bad(x, key, "must be a string");
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v) || gs_has_control(s))
		return bad(x, key, "holds a NUL or control character");
	if (check == 'p' && (s[0] != '/' || strlen(s) > 4095))
		return bad(x, key, "\"%.200s\" is not an absolute path", s);
	if (check == 'v' && !gs_version_valid(s))
		return bad(x, key, "\"%.64s\" is not a driver version (digits and dots: 535.261.03)", s);
	if (check == 'n' && (!*s || strlen(s) > 4095))
		return bad(x, key, "must be a non-empty name or path");
	if (check == 'c' && !gs_cdi_vendor_valid(s))
		return bad(x, key, "\"%.64s\" is not a CDI vendor name (like nvidia.com)", s);
	char *copy = strdup(s);
	if (!copy)
		return gs_err_setx(x->err, ENOMEM, "out of memory");
	free(*dst);
	*dst = copy;
	return 0;
}

/* "audit_log_max": a number of bytes, or a string of digits with an
 * optional K, M or G (powers of 1024), at most 1 TiB. */
static int take_size(const struct ctx *x, const char *key, json_t *v, uint64_t *dst)
{
	const uint64_t limit = 1ull << 40;
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 0 || (uint64_t)n > limit)
			return bad(x, key, "must be 0 .. 1T bytes");
		*dst = (uint64_t)n;
		return 0;
	}
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	uint64_t n = 0, mul = 1;
	const char *p = s;
	for (; p && *p >= '0' && *p <= '9' && n <= limit; p++)
		n = n * 10 + (uint64_t)(*p - '0');
	if (p && p > s && p[0] && !p[1])
		mul = p[0] == 'K' ? 1u << 10 : p[0] == 'M' ? 1u << 20 : p[0] == 'G' ? 1u << 30 : 0;
	if (!p || p == s || (p[0] && p[1]) || !mul || n > limit / mul)
		return bad(x, key, "must be a number of bytes, or digits with K, M or G (\"16M\"), at most 1T");
	*dst = n * mul;
	return 0;
}

static int take_member(const struct ctx *x, const char *key, json_t *v, struct gs_config *c)
{
	if (gs_has_control(key))
		return gs_err_setx(x->err, EINVAL, "%s: a key holds a control character", x->name);
	static const struct {
		const char *key;
		size_t off;
		int check;
	} strs[] = {
		{"store", offsetof(struct gs_config, store), 'p'},
		{"driver", offsetof(struct gs_config, driver), 'v'},
		{"runtime", offsetof(struct gs_config, runtime), 'n'},
		{"audit_log", offsetof(struct gs_config, audit_log), 'p'},
		{"dev_root", offsetof(struct gs_config, dev_root), 'p'},
		{"proc_root", offsetof(struct gs_config, proc_root), 'p'},
		{"cdi_vendor", offsetof(struct gs_config, cdi_vendor), 'c'},
		{"cdi_dir", offsetof(struct gs_config, cdi_dir), 'p'},
		{"host_root", offsetof(struct gs_config, host_root), 'p'},
		{"mps_pipe_dir", offsetof(struct gs_config, mps_pipe_dir), 'p'},
		{"mps_log_dir", offsetof(struct gs_config, mps_log_dir), 'p'},
		{"cuda_compat_dir", offsetof(struct gs_config, cuda_compat_dir), 'p'},
		{"inventory", offsetof(struct gs_config, inventory), 'p'},
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (!strcmp(key, strs[i].key))
			return take_string(x, key, v, (char **)((char *)c + strs[i].off), strs[i].check);
	if (!strcmp(key, "capabilities")) {
		if (!json_is_string(v))
			return bad(x, key, "must be a string (\"utility,compute\")");
		struct gs_err e = GS_ERR_INIT;
		unsigned int caps = 0;
		if (gs_caps_parse(json_string_value(v), &caps, &e) < 0)
			return bad(x, key, "%s", e.msg);
		if (!caps)
			return bad(x, key, "names no capability");
		c->caps = caps;
		return 0;
	}
	if (!strcmp(key, "audit_log_max"))
		return take_size(x, key, v, &c->audit_log_max);
	if (!strcmp(key, "audit_log_keep")) {
		json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
		if (n < 1 || n > GS_AUDIT_LOG_KEEP_MAX)
			return bad(x, key, "must be a number 1 .. %u", GS_AUDIT_LOG_KEEP_MAX);
		c->audit_log_keep = (unsigned int)n;
		return 0;
	}
	if (!strcmp(key, "require_uvm")) {
		if (!json_is_boolean(v))
			return bad(x, key, "must be true or false");
		c->require_uvm = json_is_true(v);
		return 0;
	}
	if (!strcmp(key, "requests")) {
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;
		if (s && !strcmp(s, "env")) {
			c->requests = GS_REQUESTS_ENV;
			return 0;
		}
		if (s && !strcmp(s, "orchestrator")) {
			c->requests = GS_REQUESTS_ORCHESTRATOR;
			return 0;
		}
		return bad(x, key, "must be \"env\" or \"orchestrator\"");
	}
	return bad(x, key, "unknown key (store, driver, runtime, capabilities, audit_log, audit_log_max, audit_log_keep, dev_root, proc_root, cdi_vendor, cdi_dir, requests, require_uvm, host_root, mps_pipe_dir, mps_log_dir, cuda_compat_dir, inventory)");
}

int gs_config_parse(const char *text, size_t len, const char *name, struct gs_config *c,
		    struct gs_err *err)
{
	int r = defaults(c, err);
	if (r < 0)
		return r;
	struct ctx x = {name, text, len, err};
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		gs_config_clear(c);
		return gs_err_setx(err, EINVAL, "%s:%d: %s", name, jerr.line, jerr.text);
	}
	if (!json_is_object(root))
		r = gs_err_setx(err, EINVAL, "%s: must hold a JSON object", name);
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (r >= 0)
			r = take_member(&x, key, v, c);
	}
	json_decref(root);
	if (r < 0)
		gs_config_clear(c);
	return r;
}

/* PATH's text into *TEXT; 0 with *TEXT NULL when it is missing and need
 * not exist. */
static int read_text(const char *path, bool must_exist, char **text, size_t *len,
		     struct gs_err *err)
{
	*text = NULL;
	*len = 0;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && !must_exist)
		return 0;
	if (fd < 0)
		return gs_err_set(err, errno, "configuration %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "configuration %s", path);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EINVAL, "configuration %s: not a regular file", path);
	return gs_read_all_fd(fd, GS_CONFIG_MAX, path, text, len, err);
}

int gs_config_salvage(const char *path, const char *const *keys, struct gs_config *c)
{
	struct gs_err err = GS_ERR_INIT;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = defaults(c, &err);
	if (r < 0 || (r = read_text(path, true, &text, &len, &err)) < 0)
		return r;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return -EINVAL;
	}
	struct ctx x = {path, text, len, &err};
	for (size_t i = 0; keys[i]; i++) {
		json_t *v = json_object_get(root, keys[i]);
		if (v && take_member(&x, keys[i], v, c) < 0)
			r = -EINVAL; /* that one keeps its default */
	}
	json_decref(root);
	return r;
}

int gs_config_load(const char *path, bool must_exist, struct gs_config *c, struct gs_err *err)
{
	*c = (struct gs_config){0};
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_text(path, must_exist, &text, &len, err);
	if (r >= 0 && !text)
		return defaults(c, err);
	if (r >= 0)
		r = gs_config_parse(text, len, path, c, err);
	if (r >= 0 && !(c->path = strdup(path))) {
		gs_config_clear(c);
		r = gs_err_setx(err, ENOMEM, "out of memory");
	}
	return r;
}
