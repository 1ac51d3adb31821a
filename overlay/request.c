/* SPDX-License-Identifier: Apache-2.0 */
/* The request: NVIDIA_* variables, requirement checks, GPU selection.
 * Pure parsing of strings handed in by the caller; no environment, no I/O. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs/cleanup.h"
#include "gs/overlay.h"

#define ENV_VALUE_MAX 4096
#define MAX_DEVICE_TOKENS 256
#define MAX_REQUIRE 64
#define DEVICE_TOKEN_MAX 80 /* "GPU-" + a UUID is 40 */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void ovl_env_clear(struct ovl_env *e)
{
	strv_free(e->devices, e->n_devices);
	strv_free(e->require, e->n_require);
	memset(e, 0, sizeof(*e));
}

static int strv_push(char ***v, size_t *n, const char *s, size_t len)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strndup(s, len);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A decimal number of 1 to 4 digits at T (N bytes). */
static bool small_number(const char *t, size_t n)
{
	if (n == 0 || n > 4)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)t[i]))
			return false;
	return true;
}

/* PREFIX followed by hex digits and '-' ("GPU-<uuid>", "MIG-<uuid>"). */
static bool uuid_valid(const char *t, size_t n, const char *prefix)
{
	if (n <= 4 || n > DEVICE_TOKEN_MAX || strncmp(t, prefix, 4) != 0)
		return false;
	for (size_t i = 4; i < n; i++)
		if (!isxdigit((unsigned char)t[i]) && t[i] != '-')
			return false;
	return true;
}

/* "GPU:GI:CI" (0:1:0): the three numbers into *MIG when it is not NULL. */
static bool mig_token(const char *t, size_t n, struct ovl_mig *mig)
{
	const char *c1 = memchr(t, ':', n), *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - t)) : NULL;
	if (!c2 || !small_number(t, (size_t)(c1 - t)) || !small_number(c1 + 1, (size_t)(c2 - c1 - 1)) ||
	    !small_number(c2 + 1, n - (size_t)(c2 + 1 - t)))
		return false;
	if (mig)
		*mig = (struct ovl_mig){strtoul(t, NULL, 10), (unsigned int)strtoul(c1 + 1, NULL, 10),
					(unsigned int)strtoul(c2 + 1, NULL, 10)};
	return true;
}

/* One device token: a decimal index, a GPU UUID, a MIG device GPU:GI:CI
 * or a MIG UUID. */
static bool device_token_valid(const char *t, size_t n)
{
	return small_number(t, n) || uuid_valid(t, n, "GPU-") || mig_token(t, n, NULL) ||
	       uuid_valid(t, n, "MIG-");
}

static int parse_visible(const char *v, struct ovl_env *e, struct gs_err *err)
{
	size_t len = strlen(v);
	while (len && is_space(v[len - 1]))
		len--;
	while (len && is_space(*v))
		v++, len--;
	if (len == 0 || (len == 4 && !strncmp(v, "void", 4))) {
		e->visible = OVL_VISIBLE_VOID;
		return 0;
	}
	if (len == 4 && !strncmp(v, "none", 4)) {
		e->visible = OVL_VISIBLE_NONE;
		return 0;
	}
	if (len == 3 && !strncmp(v, "all", 3)) {
		e->visible = OVL_VISIBLE_ALL;
		return 0;
	}
	e->visible = OVL_VISIBLE_LIST;
	for (size_t i = 0; i < len;) {
		size_t n = strcspn(v + i, ",");
		if (n > len - i)
			n = len - i;
		const char *t = v + i;
		size_t tn = n;
		while (tn && is_space(*t))
			t++, tn--;
		while (tn && is_space(t[tn - 1]))
			tn--;
		if (tn > DEVICE_TOKEN_MAX)
			return gs_err_setx(err, E2BIG,
					   "NVIDIA_VISIBLE_DEVICES: device '%.40s...' is longer than %d bytes (%zu)",
					   t, DEVICE_TOKEN_MAX, tn);
		if (!device_token_valid(t, tn))
			return gs_err_setx(err, EINVAL,
					   "NVIDIA_VISIBLE_DEVICES: '%.*s' is neither a GPU index, a GPU UUID nor a MIG device (expected all, none, void, or a comma-separated list such as 0,1, GPU-<uuid>, GPU:GI:CI like 0:1:0 or MIG-<uuid>)",
					   (int)tn, t);
		if (e->n_devices >= MAX_DEVICE_TOKENS)
			return gs_err_setx(err, E2BIG, "NVIDIA_VISIBLE_DEVICES: more than %d devices",
					   MAX_DEVICE_TOKENS);
		if (strv_push(&e->devices, &e->n_devices, t, tn) < 0)
			return gs_err_setx(err, ENOMEM, "NVIDIA_VISIBLE_DEVICES: out of memory");
		i += n + 1;
	}
	return 0;
}

static bool truthy(const char *v)
{
	return *v && strcmp(v, "0") && strcasecmp(v, "false") && strcasecmp(v, "no") &&
	       strcasecmp(v, "off");
}

/* True the first time KEY is seen; remembers it in SEEN (bit per key). */
static bool first_time(unsigned int *seen, unsigned int bit)
{
	bool first = !(*seen & bit);
	*seen |= bit;
	return first;
}

/* V (at most ENV_VALUE_MAX bytes, parse_one checks) without white space:
 * every byte of it is parsed, none dropped. */
static int parse_caps(const char *v, struct ovl_env *e, struct gs_err *err)
{
	char buf[ENV_VALUE_MAX + 1];
	size_t o = 0;
	for (const char *p = v; *p; p++) {
		if (is_space(*p))
			continue;
		if (o + 1 >= sizeof(buf))
			return gs_err_setx(err, E2BIG,
					   "NVIDIA_DRIVER_CAPABILITIES: value longer than %d bytes",
					   ENV_VALUE_MAX);
		buf[o++] = *p;
	}
	buf[o] = '\0';
	if (o == 0) {
		e->caps = GS_CAP_UTILITY | GS_CAP_COMPUTE;
		return 0;
	}
	int r = gs_caps_parse(buf, &e->caps, err);
	e->caps_given = r >= 0;
	return r < 0 ? gs_err_wrap(err, "NVIDIA_DRIVER_CAPABILITIES") : 0;
}

enum seen_bits { SEEN_VISIBLE = 1, SEEN_CAPS = 2, SEEN_DISABLE = 4 };

static int parse_one(const char *kv, struct ovl_env *e, unsigned int *seen, struct gs_err *err)
{
	const char *eq = strchr(kv, '=');
	if (!eq || strncmp(kv, "NVIDIA_", 7) != 0)
		return 0;
	size_t klen = (size_t)(eq - kv);
	const char *v = eq + 1;
	if (strlen(v) > ENV_VALUE_MAX)
		return gs_err_setx(err, E2BIG, "%.*s: value longer than %d bytes", (int)klen, kv,
				   ENV_VALUE_MAX);
	if (klen == 22 && !strncmp(kv, "NVIDIA_VISIBLE_DEVICES", klen))
		return first_time(seen, SEEN_VISIBLE) ? parse_visible(v, e, err) : 0;
	if (klen == 26 && !strncmp(kv, "NVIDIA_DRIVER_CAPABILITIES", klen))
		return first_time(seen, SEEN_CAPS) ? parse_caps(v, e, err) : 0;
	if (klen == 22 && !strncmp(kv, "NVIDIA_DISABLE_REQUIRE", klen)) {
		if (first_time(seen, SEEN_DISABLE))
			e->disable_require = truthy(v);
		return 0;
	}
	if (klen > 15 && !strncmp(kv, "NVIDIA_REQUIRE_", 15)) {
		for (size_t i = 0; i < e->n_require; i++)
			if (!strncmp(e->require[i], kv, klen + 1))
				return 0;
		if (e->n_require >= MAX_REQUIRE)
			return gs_err_setx(err, E2BIG, "more than %d NVIDIA_REQUIRE_* variables",
					   MAX_REQUIRE);
		if (strv_push(&e->require, &e->n_require, kv, strlen(kv)) < 0)
			return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int env_parse(char *const *env, size_t n, bool last_wins, struct ovl_env *out,
		     struct gs_err *err)
{
	unsigned int seen = 0;
	memset(out, 0, sizeof(*out));
	out->caps = GS_CAP_UTILITY | GS_CAP_COMPUTE;
	for (size_t k = 0; k < n; k++) {
		/* the first one seen wins: read from the end when the last must */
		int r = parse_one(env[last_wins ? n - 1 - k : k], out, &seen, err);
		if (r < 0) {
			ovl_env_clear(out);
			return r;
		}
	}
	return 0;
}

int ovl_env_parse(char *const *env, size_t n, struct ovl_env *out, struct gs_err *err)
{
	return env_parse(env, n, false, out, err);
}

int ovl_env_parse_last(char *const *env, size_t n, struct ovl_env *out, struct gs_err *err)
{
	return env_parse(env, n, true, out, err);
}

unsigned int ovl_caps_effective(unsigned int caps)
{
	if (caps & GS_CAP_VIDEO)
		caps |= GS_CAP_COMPUTE;
	if (caps & GS_CAP_DISPLAY)
		caps |= GS_CAP_GRAPHICS;
	return caps;
}

/* ---- versions and requirements -------------------------------------------- */

#define VER_PARTS 4

/* "12.0", "535.261.03" -> numeric parts; false when malformed. */
static bool version_parse(const char *s, size_t n, long v[VER_PARTS])
{
	memset(v, 0, sizeof(long) * VER_PARTS);
	size_t part = 0, i = 0;
	if (n == 0)
		return false;
	while (i < n) {
		if (!isdigit((unsigned char)s[i]) || part >= VER_PARTS)
			return false;
		long x = 0;
		while (i < n && isdigit((unsigned char)s[i])) {
			if (x > 100000000)
				return false;
			x = x * 10 + (s[i++] - '0');
		}
		v[part++] = x;
		if (i < n && s[i] != '.')
			return false;
		if (i < n && ++i == n)
			return false;
	}
	return true;
}

static int version_cmp(const long a[VER_PARTS], const long b[VER_PARTS])
{
	for (int i = 0; i < VER_PARTS; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

/* Driver branch -> newest CUDA it supports (NVIDIA's release notes). */
static const struct {
	int branch, cuda;
} cuda_table[] = {
	{418, 10010}, {440, 10020}, {450, 11000}, {455, 11010}, {460, 11020}, {465, 11030},
	{470, 11040}, {495, 11050}, {510, 11060}, {515, 11070}, {520, 11080}, {525, 12000},
	{530, 12010}, {535, 12020}, {545, 12030}, {550, 12040}, {555, 12050}, {560, 12060},
	{565, 12070}, {570, 12080}, {575, 12090}, {580, 13000},
};

int ovl_driver_cuda_version(const char *driver)
{
	long v[VER_PARTS];
	if (!driver || !version_parse(driver, strlen(driver), v))
		return 0;
	int cuda = 0;
	for (size_t i = 0; i < sizeof(cuda_table) / sizeof(cuda_table[0]); i++)
		if (v[0] >= cuda_table[i].branch)
			cuda = cuda_table[i].cuda;
	return cuda;
}

enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

static bool cmp_holds(int c, enum cmp_op op)
{
	switch (op) {
	case OP_EQ:
		return c == 0;
	case OP_NE:
		return c != 0;
	case OP_LT:
		return c < 0;
	case OP_LE:
		return c <= 0;
	case OP_GT:
		return c > 0;
	case OP_GE:
		return c >= 0;
	}
	return false;
}

/* Splits "cuda>=12.0" into name, operator, value. */
static int split_cond(const char *c, size_t n, size_t *name_len, enum cmp_op *op,
		      const char **val)
{
	size_t i = 0;
	while (i < n && (isalnum((unsigned char)c[i]) || c[i] == '_'))
		i++;
	*name_len = i;
	if (i == 0 || i >= n)
		return -EINVAL;
	static const struct {
		const char *s;
		enum cmp_op op;
	} ops[] = {{">=", OP_GE}, {"<=", OP_LE}, {"==", OP_EQ}, {"!=", OP_NE},
		   {">", OP_GT},  {"<", OP_LT},  {"=", OP_EQ}};
	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		size_t l = strlen(ops[k].s);
		if (n - i >= l && !strncmp(c + i, ops[k].s, l)) {
			*op = ops[k].op;
			*val = c + i + l;
			return 0;
		}
	}
	return -EINVAL;
}

struct req_ctx {
	const char *var; /* "NVIDIA_REQUIRE_X" of VARLEN bytes, not terminated */
	int varlen;
	long driver[VER_PARTS];
	long cuda[VER_PARTS];
	bool have_cuda;
	char *note;
	size_t notelen;
};

/* One condition: 1 holds, 0 does not, <0 malformed. */
static int eval_cond(struct req_ctx *x, const char *c, size_t n, struct gs_err *err)
{
	size_t nl;
	enum cmp_op op;
	const char *val;
	if (split_cond(c, n, &nl, &op, &val) < 0)
		return gs_err_setx(err, EINVAL, "%.*s: malformed condition '%.*s'", x->varlen, x->var, (int)n, c);
	size_t vl = n - (size_t)(val - c);
	long want[VER_PARTS];
	if ((nl == 4 && !strncmp(c, "arch", 4)) || (nl == 5 && !strncmp(c, "brand", 5))) {
		if (x->note && x->notelen)
			snprintf(x->note, x->notelen, "%.*s: '%.*s' needs NVML, treated as satisfied",
				 x->varlen, x->var, (int)n, c);
		return 1;
	}
	if (!version_parse(val, vl, want))
		return gs_err_setx(err, EINVAL, "%.*s: '%.*s' is not a version", x->varlen, x->var, (int)vl,
				   val);
	if (nl == 6 && !strncmp(c, "driver", 6))
		return cmp_holds(version_cmp(x->driver, want), op);
	if (nl == 4 && !strncmp(c, "cuda", 4))
		return x->have_cuda && cmp_holds(version_cmp(x->cuda, want), op);
	return gs_err_setx(err, EINVAL, "%.*s: unknown requirement '%.*s' (cuda, driver, arch, brand)",
			   x->varlen, x->var, (int)nl, c);
}

/* One alternative: comma-separated conditions, all must hold. */
static int eval_and(struct req_ctx *x, const char *s, size_t n, struct gs_err *err)
{
	int all = 1;
	for (size_t i = 0; i < n;) {
		size_t m = 0;
		while (i + m < n && s[i + m] != ',')
			m++;
		if (m == 0)
			return gs_err_setx(err, EINVAL, "%.*s: empty condition", x->varlen, x->var);
		int r = eval_cond(x, s + i, m, err);
		if (r < 0)
			return r;
		all = all && r;
		i += m + 1;
	}
	return all;
}

/* VALUE: alternatives separated by white space, any may hold. */
static int eval_or(struct req_ctx *x, const char *value, struct gs_err *err)
{
	int any = 0, seen = 0;
	for (const char *p = value; *p;) {
		while (*p && is_space(*p))
			p++;
		size_t n = 0;
		while (p[n] && !is_space(p[n]))
			n++;
		if (n == 0)
			break;
		int r = eval_and(x, p, n, err);
		if (r < 0)
			return r;
		any = any || r;
		seen = 1;
		p += n;
	}
	return seen ? any : 1;
}

int ovl_require_check(const struct ovl_env *e, const char *driver, char *note, size_t notelen,
		      struct gs_err *err)
{
	struct req_ctx x = {.note = note, .notelen = notelen};
	if (note && notelen)
		note[0] = '\0';
	if (e->disable_require || e->n_require == 0)
		return 0;
	if (!version_parse(driver, strlen(driver), x.driver))
		return gs_err_setx(err, EINVAL, "driver version '%s' is not numeric", driver);
	int cuda = ovl_driver_cuda_version(driver);
	x.have_cuda = cuda > 0;
	x.cuda[0] = cuda / 1000;
	x.cuda[1] = (cuda % 1000) / 10;
	for (size_t i = 0; i < e->n_require; i++) {
		const char *eq = strchr(e->require[i], '=');
		x.var = e->require[i];
		x.varlen = (int)(eq - e->require[i]);
		int r = eval_or(&x, eq + 1, err);
		if (r < 0)
			return r;
		if (r == 0)
			return gs_err_setx(err, EPERM,
					   "%.*s='%s' is not met by driver %s (CUDA %d.%d); set NVIDIA_DISABLE_REQUIRE=1 to override",
					   x.varlen, x.var, eq + 1, driver, cuda / 1000,
					   (cuda % 1000) / 10);
	}
	return 0;
}

/* ---- GPUs --------------------------------------------------------------------- */

/* Value after "KEY:" on its own line in TEXT, trimmed, into BUF: 1; 0 when
 * there is no such line (or it is empty); -1 when the value does not fit
 * (BUF is left empty: never a shortened value). */
static int info_field(const char *text, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, key, kl) != 0 || l[kl] != ':')
			continue;
		const char *v = l + kl + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strcspn(v, "\n");
		while (n && is_space(v[n - 1]))
			n--;
		if (n >= len)
			return -1;
		if (n == 0)
			return 0;
		memcpy(buf, v, n);
		buf[n] = '\0';
		return 1;
	}
	return 0;
}

int ovl_gpu_info_parse(const char *text, const char *bus_id, struct ovl_gpu *out,
		       struct gs_err *err)
{
	char minor[32];
	memset(out, 0, sizeof(*out));
	if (strlen(bus_id) >= sizeof(out->bus_id))
		return gs_err_setx(err, ENAMETOOLONG, "GPU bus id '%.64s...' is longer than %zu bytes",
				   bus_id, sizeof(out->bus_id) - 1);
	memcpy(out->bus_id, bus_id, strlen(bus_id) + 1);
	int f = info_field(text, "GPU UUID", out->uuid, sizeof(out->uuid));
	if (f < 0)
		return gs_err_setx(err, EBADMSG, "%s: 'GPU UUID:' value longer than %zu bytes",
				   bus_id, sizeof(out->uuid) - 1);
	if (f == 0 || !uuid_valid(out->uuid, strlen(out->uuid), "GPU-"))
		return gs_err_setx(err, EBADMSG, "%s: no valid 'GPU UUID:' line", bus_id);
	f = info_field(text, "Device Minor", minor, sizeof(minor));
	if (f < 0)
		return gs_err_setx(err, EBADMSG, "%s: 'Device Minor:' value longer than %zu bytes",
				   bus_id, sizeof(minor) - 1);
	if (f == 0)
		return gs_err_setx(err, EBADMSG, "%s: no 'Device Minor:' line", bus_id);
	char *end = NULL;
	errno = 0;
	long m = strtol(minor, &end, 10);
	if (errno || *end || m < 0 || m > 253) /* 254, 255: modeset, nvidiactl */
		return gs_err_setx(err, EBADMSG, "%s: bad device minor '%s'", bus_id, minor);
	out->minor = (int)m;
	return 0;
}

static int find_token(const struct ovl_gpu *gpus, size_t n, const char *t, size_t *idx,
		      struct gs_err *err)
{
	if (isdigit((unsigned char)t[0])) {
		unsigned long i = strtoul(t, NULL, 10);
		if (i >= n)
			return gs_err_setx(err, ENODEV,
					   "NVIDIA_VISIBLE_DEVICES: GPU index %lu does not exist (%zu GPU%s)",
					   i, n, n == 1 ? "" : "s");
		*idx = i;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (!strcasecmp(gpus[i].uuid, t)) {
			*idx = i;
			return 0;
		}
	}
	return gs_err_setx(err, ENODEV, "NVIDIA_VISIBLE_DEVICES: no GPU with UUID %s", t);
}

bool ovl_is_mig_device(const char *t)
{
	return mig_token(t, strlen(t), NULL) || !strncmp(t, "MIG-", 4);
}

int ovl_gpus_select(const struct ovl_gpu *gpus, size_t n, const struct ovl_env *e,
		    size_t **out, size_t *n_out, struct gs_err *err)
{
	*out = NULL;
	*n_out = 0;
	if (e->visible != OVL_VISIBLE_ALL && e->visible != OVL_VISIBLE_LIST)
		return 0;
	size_t want = e->visible == OVL_VISIBLE_ALL ? n : e->n_devices;
	size_t *v = calloc(want ? want : 1, sizeof(*v));
	if (!v)
		return gs_err_setx(err, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < want; i++) {
		size_t idx = i;
		if (e->visible == OVL_VISIBLE_LIST && ovl_is_mig_device(e->devices[i]))
			continue; /* a MIG device: ovl_migs_select, or the inventory */
		if (e->visible == OVL_VISIBLE_LIST && find_token(gpus, n, e->devices[i], &idx, err) < 0) {
			free(v);
			return -err->code;
		}
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			dup = dup || v[j] == idx;
		if (!dup)
			v[k++] = idx;
	}
	*out = v;
	*n_out = k;
	return 0;
}

int ovl_migs_select(size_t n_gpus, const struct ovl_env *e, struct ovl_mig **out, size_t *n_out,
		    struct gs_err *err)
{
	*out = NULL;
	*n_out = 0;
	if (e->visible != OVL_VISIBLE_LIST)
		return 0;
	_cleanup_free_ struct ovl_mig *v = calloc(e->n_devices ? e->n_devices : 1, sizeof(*v));
	if (!v)
		return gs_err_setx(err, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < e->n_devices; i++) {
		struct ovl_mig m;
		if (!mig_token(e->devices[i], strlen(e->devices[i]), &m))
			continue;
		if (m.gpu >= n_gpus)
			return gs_err_setx(err, ENODEV,
					   "NVIDIA_VISIBLE_DEVICES: MIG device %s: GPU index %zu does not exist (%zu GPU%s)",
					   e->devices[i], m.gpu, n_gpus, n_gpus == 1 ? "" : "s");
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			dup = dup || (v[j].gpu == m.gpu && v[j].gi == m.gi && v[j].ci == m.ci);
		if (!dup)
			v[k++] = m;
	}
	*out = steal_ptr(&v);
	*n_out = k;
	return 0;
}
