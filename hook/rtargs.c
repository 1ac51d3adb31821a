/* SPDX-License-Identifier: Apache-2.0 */
/* The command lines of runc and crun, as they read them (runc 1.1's
 * urfave/cli v1 and runc 1.4's v3: main.go, create.go, run.go; crun's
 * src/crun.c, create.c, run.c and glibc argp's own --help, --usage,
 * --program-name, --HANG).  gpu-runtime must find the bundle exactly where
 * the runtime will: a word it reads differently from the runtime would let
 * a GPU container start without the hook.  So every option is looked up in
 * a table of the runtime's own; one that is not there makes create and run
 * refused, never guessed at. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "rtargs.h"

enum arity {
	A_BOOL,  /* no value */
	A_VALUE, /* a value: after '=' or (runc) the next word; crun: also -bVALUE */
	A_OPT,   /* argp's optional value: only after '=' */
};

/* R_HELP: the runtime prints help or its version and runs nothing */
enum role { R_OTHER = 0, R_BUNDLE, R_CONFIG, R_HELP };

struct opt {
	const char *name; /* long name */
	char alias;       /* runc: the one-letter alias; crun: the short option */
	enum arity arity;
	enum role role;
};

#define END {NULL, 0, A_BOOL, R_OTHER}

/* runc's global flags (runc 1.1 still has --criu).  With urfave/cli v3
 * they are persistent: also accepted after the command. */
static const struct opt runc_global[] = {
	{"debug", 0, A_BOOL, R_OTHER},	     {"log", 0, A_VALUE, R_OTHER},
	{"log-format", 0, A_VALUE, R_OTHER}, {"root", 0, A_VALUE, R_OTHER},
	{"criu", 0, A_VALUE, R_OTHER},	     {"systemd-cgroup", 0, A_BOOL, R_OTHER},
	{"rootless", 0, A_VALUE, R_OTHER},   {"help", 'h', A_BOOL, R_HELP},
	{"version", 'v', A_BOOL, R_HELP},    END,
};

static const struct opt runc_create[] = {
	{"bundle", 'b', A_VALUE, R_BUNDLE},	  {"console-socket", 0, A_VALUE, R_OTHER},
	{"pidfd-socket", 0, A_VALUE, R_OTHER},	  {"pid-file", 0, A_VALUE, R_OTHER},
	{"no-pivot", 0, A_BOOL, R_OTHER},	  {"no-new-keyring", 0, A_BOOL, R_OTHER},
	{"preserve-fds", 0, A_VALUE, R_OTHER},	  {"help", 'h', A_BOOL, R_HELP},
	END,
};

/* run: create's flags and these */
static const struct opt runc_run[] = {
	{"detach", 'd', A_BOOL, R_OTHER},
	{"keep", 0, A_BOOL, R_OTHER},
	{"no-subreaper", 0, A_BOOL, R_OTHER},
	END,
};

/* argp adds these to every parser (the short -? is help's) */
#define ARGP_DEFAULTS                                                                      \
	{"help", '?', A_BOOL, R_HELP}, {"usage", 0, A_BOOL, R_HELP},                       \
		{"program-name", 0, A_VALUE, R_OTHER}, {"HANG", 0, A_OPT, R_OTHER}

static const struct opt crun_global[] = {
	{"debug", 0, A_BOOL, R_OTHER},		 {"cgroup-manager", 0, A_VALUE, R_OTHER},
	{"systemd-cgroup", 0, A_BOOL, R_OTHER}, {"log", 0, A_VALUE, R_OTHER},
	{"log-format", 0, A_VALUE, R_OTHER},	 {"log-level", 0, A_VALUE, R_OTHER},
	{"root", 0, A_VALUE, R_OTHER},		 {"rootless", 0, A_VALUE, R_OTHER},
	{"version", 'v', A_BOOL, R_HELP},	 {NULL, 'V', A_BOOL, R_HELP},
	ARGP_DEFAULTS,				 END,
};

static const struct opt crun_create[] = {
	{"bundle", 'b', A_VALUE, R_BUNDLE},	 {"config", 'f', A_VALUE, R_CONFIG},
	{"console-socket", 0, A_VALUE, R_OTHER}, {"preserve-fds", 0, A_VALUE, R_OTHER},
	{"no-pivot", 0, A_BOOL, R_OTHER},	 {"pid-file", 0, A_VALUE, R_OTHER},
	{"no-subreaper", 0, A_BOOL, R_OTHER},	 {"no-new-keyring", 0, A_BOOL, R_OTHER},
	ARGP_DEFAULTS,				 END,
};

static const struct opt crun_run[] = {
	{"detach", 'd', A_BOOL, R_OTHER},
	{"keep", 0, A_BOOL, R_OTHER},
	END,
};

/* ---- lookups ------------------------------------------------------------------ */

enum found { F_NONE, F_ONE, F_AMBIGUOUS };

/* runc: NAME (of length N) is a long name or a one-letter alias, exactly. */
static const struct opt *runc_find(const struct opt *const *tabs, const char *name, size_t n)
{
	for (; *tabs; tabs++)
		for (const struct opt *o = *tabs; o->name || o->alias; o++)
			if ((o->name && strlen(o->name) == n && !strncmp(o->name, name, n)) ||
			    (o->alias && n == 1 && name[0] == o->alias))
				return o;
	return NULL;
}

/* crun (getopt_long): an exact long name, else a unique prefix. */
static enum found crun_find_long(const struct opt *const *tabs, const char *name, size_t n,
				 const struct opt **out)
{
	size_t prefixes = 0;
	*out = NULL;
	for (const struct opt *const *t = tabs; *t; t++)
		for (const struct opt *o = *t; o->name || o->alias; o++) {
			if (!o->name || strncmp(o->name, name, n))
				continue;
			if (strlen(o->name) == n) {
				*out = o;
				return F_ONE;
			}
			prefixes++;
			*out = o;
		}
	if (prefixes > 1)
		*out = NULL;
	return prefixes == 0 ? F_NONE : prefixes == 1 ? F_ONE : F_AMBIGUOUS;
}

static const struct opt *crun_find_short(const struct opt *const *tabs, char c)
{
	for (; *tabs; tabs++)
		for (const struct opt *o = *tabs; o->name || o->alias; o++)
			if (o->alias == c)
				return o;
	return NULL;
}

static bool is_create(const char *w)
{
	return !strcmp(w, "create") || !strcmp(w, "run");
}

/* urfave/cli v3 trims white space (Unicode's) off a word before it looks
 * at it: a word whose first or last byte may be part of that is read
 * differently by runc versions and by us. */
static bool runc_odd_edges(const char *w)
{
	size_t n = strlen(w);
	static const char ws[] = " \t\n\v\f\r";
	if (n == 0)
		return false;
	unsigned char a = (unsigned char)w[0], z = (unsigned char)w[n - 1];
	return strchr(ws, a) || strchr(ws, z) || a >= 0x80 || z >= 0x80;
}

/* ---- one option word ------------------------------------------------------- */

/* Go's strconv.ParseBool, which runc's flags use for -flag=VALUE: whether
 * VALUE is one of its spellings of false (anything else but its true
 * spellings is an error: runc then runs nothing either). */
static bool go_false(const char *v)
{
	static const char *const f[] = {"0", "f", "F", "false", "FALSE", "False", NULL};
	for (const char *const *p = f; *p; p++)
		if (!strcmp(v, *p))
			return true;
	return false;
}

/* One option of dialect D at ARGV[*I] (tables TABS): steps *I over its
 * value and sets *BUNDLE for the bundle option.  1 for a help or version
 * option (the runtime prints and runs nothing), -1 when the word is not
 * one of the runtime's options (or is read differently by its versions),
 * -2 for crun's --config with another file than config.json. */
static int runc_option(const struct opt *const *tabs, int argc, char **argv, int *i,
		       const char **bundle)
{
	const char *a = argv[*i];
	if (runc_odd_edges(a) || a[1] == '\0')
		return -1;
	const char *name = a + 1 + (a[1] == '-');
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
		return -1; /* v3 stops parsing at "-1", "---x" is no flag */
	const char *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);
	const struct opt *o = runc_find(tabs, name, n);
	if (!o)
		return -1;
	if (o->arity == A_BOOL)
		return o->role == R_HELP && !(eq && go_false(eq + 1));
	const char *val = eq ? eq + 1 : *i + 1 < argc ? argv[++*i] : NULL;
	if (o->role == R_BUNDLE && val)
		*bundle = val;
	return 0;
}

static int crun_value(const struct opt *o, const char *val, const char **bundle)
{
	if (o->role == R_BUNDLE && val)
		*bundle = val;
	if (o->role == R_CONFIG && val && strcmp(val, "config.json"))
		return -2;
	return 0;
}

static int crun_option(const struct opt *const *tabs, int argc, char **argv, int *i,
		       const char **bundle)
{
	const char *a = argv[*i];
	if (a[1] == '-') {
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o;
		if (n == 0 || crun_find_long(tabs, name, n, &o) != F_ONE)
			return -1;
		if (o->role == R_HELP)
			return 1; /* argp prints (or, given a value, errs) and exits */
		if (o->arity != A_VALUE)
			return 0;
		return crun_value(o, eq ? eq + 1 : *i + 1 < argc ? argv[++*i] : NULL, bundle);
	}
	for (const char *c = a + 1; *c; c++) { /* -dbDIR, -db DIR */
		const struct opt *o = crun_find_short(tabs, *c);
		if (!o)
			return -1;
		if (o->role == R_HELP)
			return 1;
		if (o->arity == A_BOOL)
			continue;
		const char *val = c[1] ? c + 1 : *i + 1 < argc ? argv[++*i] : NULL;
		return crun_value(o, val, bundle);
	}
	return 0;
}

static int option(enum rt_dialect d, const struct opt *const *tabs, int argc, char **argv, int *i,
		  const char **bundle)
{
	return d == RT_RUNC ? runc_option(tabs, argc, argv, i, bundle)
			    : crun_option(tabs, argc, argv, i, bundle);
}

/* ---- the command line ------------------------------------------------------- */

static bool any_create(int from, int argc, char **argv)
{
	for (int j = from; j < argc; j++)
		if (is_create(argv[j]))
			return true;
	return false;
}

/* Any word from FROM on that, trimmed, might read "create" or "run". */
static bool any_create_word(int from, int argc, char **argv)
{
	for (int j = from; j < argc; j++)
		if (strstr(argv[j], "create") || strstr(argv[j], "run"))
			return true;
	return false;
}

/* The global options and the command word. */
static int find_command(enum rt_dialect d, int argc, char **argv, struct rt_args *out,
			struct gs_err *err)
{
	const struct opt *const tabs[] = {d == RT_RUNC ? runc_global : crun_global, NULL};
	const char *unused = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			out->cmd = i + 1 < argc ? i + 1 : -1;
			return 0;
		}
		if (d == RT_RUNC && runc_odd_edges(a) && any_create_word(i, argc, argv))
			return gs_err_setx(err, EINVAL,
					   "argument %d '%s' begins or ends with white space or a non-ASCII byte, which runc versions read differently; refusing to create a container whose bundle is uncertain",
					   i, a);
		if (a[0] != '-' || a[1] == '\0') {
			out->cmd = i;
			return 0;
		}
		int r = option(d, tabs, argc, argv, &i, &unused);
		if (r == 1) {
			out->cmd = -1; /* help or version: no command runs */
			return 0;
		}
		if (r < 0) {
			if (!any_create(i, argc, argv))
				return 0; /* not create or run, whatever it is */
			return gs_err_setx(err, EINVAL,
					   "unknown runtime option '%s' before the command: gpu-runtime cannot tell whether it takes a value, so neither the command nor the bundle is certain; refusing (put only %s's global options before the command)",
					   a, d == RT_RUNC ? "runc" : "crun");
		}
	}
	return 0;
}

/* create/run's options after the command word CMD: the bundle. */
static int find_bundle(enum rt_dialect d, int argc, char **argv, int cmd, struct rt_args *out,
		       struct gs_err *err)
{
	bool run = !strcmp(argv[cmd], "run");
	const struct opt *const runc_tabs[] = {runc_create, run ? runc_run : runc_global,
					       runc_global, NULL};
	const struct opt *const crun_tabs[] = {crun_create, run ? crun_run : NULL, NULL};
	const struct opt *const *tabs = d == RT_RUNC ? runc_tabs : crun_tabs;
	out->bundle = ".";
	for (int i = cmd + 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--"))
			break;
		if (d == RT_RUNC && (runc_odd_edges(a) || !strcmp(a, "-")))
			return gs_err_setx(err, EINVAL,
					   "%s: argument '%s' is read differently by runc versions (white space or a non-ASCII byte at an end, or a lone '-'); refusing, the bundle is uncertain",
					   argv[cmd], a);
		if (a[0] != '-' || a[1] == '\0') {
			if (d == RT_CRUN)
				break; /* crun: options end at the container id */
			continue;  /* runc: flags may follow it */
		}
		int r = option(d, tabs, argc, argv, &i, &out->bundle);
		if (r == 1) { /* create/run --help: prints, creates nothing */
			out->create = false;
			return 0;
		}
		if (r == -2)
			return gs_err_setx(err, EINVAL,
					   "%s: '%s': another config file than BUNDLE/config.json is not supported (gpu-runtime adds the hook to BUNDLE/config.json); refusing",
					   argv[cmd], a);
		if (r < 0)
			return gs_err_setx(err, EINVAL,
					   "%s: unknown option '%s' of %s %s: it may take a value or name the bundle; refusing, the bundle is uncertain",
					   argv[cmd], a, d == RT_RUNC ? "runc" : "crun", argv[cmd]);
	}
	if (!*out->bundle)
		out->bundle = "."; /* runc: an empty --bundle= is the current directory */
	return 0;
}

static int parse_one(enum rt_dialect d, int argc, char **argv, struct rt_args *out,
		     struct gs_err *err)
{
	out->cmd = -1;
	out->create = false;
	out->bundle = NULL;
	int r = find_command(d, argc, argv, out, err);
	if (r < 0 || out->cmd < 0 || !is_create(argv[out->cmd]))
		return r;
	out->create = true;
	return find_bundle(d, argc, argv, out->cmd, out, err);
}

int rt_args_parse(enum rt_dialect d, int argc, char **argv, struct rt_args *out,
		  struct gs_err *err)
{
	if (d != RT_EITHER)
		return parse_one(d, argc, argv, out, err);
	struct rt_args c;
	int r = parse_one(RT_RUNC, argc, argv, out, err);
	if (r == 0)
		r = parse_one(RT_CRUN, argc, argv, &c, err);
	if (r < 0)
		return gs_err_wrap(err, "the runtime is neither runc nor crun, read as both");
	if (!out->create && !c.create)
		return 0;
	if (out->create != c.create || out->cmd != c.cmd || strcmp(out->bundle, c.bundle))
		return gs_err_setx(err, EINVAL,
				   "the runtime is neither runc nor crun, and runc and crun would read these arguments differently (command '%s' or '%s', bundle '%s' or '%s'); refusing, the bundle is uncertain",
				   out->cmd >= 0 ? argv[out->cmd] : "", c.cmd >= 0 ? argv[c.cmd] : "",
				   out->bundle ? out->bundle : "-", c.bundle ? c.bundle : "-");
	return 0;
}

enum rt_dialect rt_dialect_of(const char *runtime)
{
	const char *b = strrchr(runtime, '/');
	b = b ? b + 1 : runtime;
	if (!strcmp(b, "runc"))
		return RT_RUNC;
	if (!strcmp(b, "crun"))
		return RT_CRUN;
	return RT_EITHER;
}
