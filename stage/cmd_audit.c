/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage audit: which host files a running container received, from
 * its latest audit record and its live mount table, and every difference
 * between the two (stage/audit.c).  Exit 0 clean, 1 drift (or failure),
 * 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cmd.h"
#include "gs/cleanup.h"
#include "gs/manifest.h"

struct audit_opts {
	const char *log, *store;
	bool all, json, rehash;
	char **args;
	int n_args;
};

static void audit_usage(FILE *f)
{
	fputs("Usage: gpu-stage audit CONTAINER... | --all [--json] [--rehash]\n"
	      "                       [--audit-log FILE] [--store DIR]\n"
	      "\n"
	      "Lists every host file a running container received from gpu-stage-hook\n"
	      "(container path, store file, original host path, sha256, size, driver,\n"
	      "capability, the manifest's evidence), from its latest audit record and\n"
	      "its live mount table (/proc/PID/mountinfo), and flags every difference:\n"
	      "  mount-missing            a recorded mount is not in the live table\n"
	      "  mount-unrecorded         a mount of the store the record does not name\n"
	      "  mount-covered            a recorded mount hidden by a later one over it\n"
	      "  file-changed             a staged file's size or mode (--rehash: bytes)\n"
	      "                           no longer match the manifest\n"
	      "  store-version-removed    the version in use was removed from the store\n"
	      "  store-version-replaced   ... or re-staged: the container uses the old tree\n"
	      "  container-gone           the pid is dead or another process's now\n"
	      "  image-library            the image has its own file under a name the\n"
	      "                           driver gives (libcuda.so.1, ...) where its loader\n"
	      "                           looks: its ld.so.cache or a default directory\n"
	      "  (and record-mismatch, file-unknown, manifest-unreadable, ...: see gpu-stage(1))\n"
	      "\n"
	      "  CONTAINER        a container id, its bundle directory, or its pid\n"
	      "  --all            every container the audit log names whose process runs;\n"
	      "                   those whose process is gone are listed as gone, not audited,\n"
	      "                   and are no drift (name one to have it flagged)\n"
	      "  --rehash         SHA-256 every staged file the containers received\n"
	      "                   (default: size and mode only)\n"
	      "  --audit-log FILE the hook's log (default: the configuration's audit_log,\n"
	      "                   else /var/log/gpu-stage/hook.log) and its rotations FILE.N\n"
	      "  --store DIR      read the store from DIR (default: where the record says)\n"
	      "  --json           every container's full record, files, mounts and findings\n"
	      "\n"
	      "Nothing of a container's image is executed or followed out of its root.\n"
	      "Exit status: 0 no finding, 1 findings (or failure), 2 usage error.\n",
	      f);
}

static int parse_audit(int argc, char **argv, struct audit_opts *o)
{
	static const struct option opts[] = {
		{"all", no_argument, NULL, 'a'},          {"json", no_argument, NULL, 'j'},
		{"rehash", no_argument, NULL, 'r'},       {"audit-log", required_argument, NULL, 'l'},
		{"store", required_argument, NULL, 's'},  {"help", no_argument, NULL, 'h'},
		{0}};
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a': o->all = true; break;
		case 'j': o->json = true; break;
		case 'r': o->rehash = true; break;
		case 'l': o->log = optarg; break;
		case 's': o->store = optarg; break;
		case 'h': audit_usage(stdout); return GS_EXIT_OK;
		default: return GS_EXIT_USAGE;
		}
	}
	o->args = argv + optind;
	o->n_args = argc - optind;
	if (o->all == (o->n_args > 0)) {
		fprintf(stderr, "gpu-stage: audit: name containers or give --all (see gpu-stage audit --help)\n");
		return GS_EXIT_USAGE;
	}
	return -1;
}

static bool same_dir(const char *a, const char *b)
{
	_cleanup_free_ char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
	return !strcmp(a, b) || (ra && rb && !strcmp(ra, rb));
}

/* The latest record naming ARG: its id, else its pid (digits), else its
 * bundle (a path). */
static json_t *find_record(json_t *latest, const char *arg)
{
	json_t *rec = json_object_get(latest, arg), *best = NULL, *r;
	if (rec)
		return rec;
	bool digits = arg[0] && strspn(arg, "0123456789") == strlen(arg);
	const char *id;
	json_object_foreach(latest, id, r) {
		const char *bundle = json_string_value(json_object_get(r, "bundle"));
		const char *t = json_string_value(json_object_get(r, "time"));
		const char *bt = json_string_value(json_object_get(best, "time"));
		bool hit = digits ? json_integer_value(json_object_get(r, "pid")) == strtoll(arg, NULL, 10)
				  : bundle && strchr(arg, '/') && same_dir(arg, bundle);
		if (hit && (!best || (t && bt && strcmp(t, bt) > 0)))
			best = r;
	}
	return best;
}

static void print_container(const json_t *c)
{
	const json_t *rec = json_object_get(c, "record"), *v;
	size_t i;
	printf("container %s  pid %jd  driver %s  recorded %s (%s)\n",
	       json_string_value(json_object_get(c, "container")),
	       (intmax_t)json_integer_value(json_object_get(c, "pid")),
	       json_string_value(json_object_get(c, "driver")) ? json_string_value(json_object_get(c, "driver")) : "?",
	       json_string_value(json_object_get(rec, "time")) ? json_string_value(json_object_get(rec, "time")) : "?",
	       json_string_value(json_object_get(rec, "stage")) ? json_string_value(json_object_get(rec, "stage")) : "?");
	json_array_foreach(json_object_get(c, "files"), i, v) {
		const char *sha = json_string_value(json_object_get(v, "sha256"));
		const char *caps = json_string_value(json_object_get(v, "capabilities"));
		const char *ev = json_string_value(json_object_get(v, "evidence"));
		const char *src = json_string_value(json_object_get(v, "host_source"));
		printf("  %-58s %10jd %.12s %-9s %-10s %s (host %s)\n",
		       json_string_value(json_object_get(v, "container_path")),
		       (intmax_t)json_integer_value(json_object_get(v, "size")), sha ? sha : "?",
		       caps ? caps : "?", ev ? ev : "?", json_string_value(json_object_get(v, "store_path")),
		       src ? src : "?");
	}
	json_array_foreach(json_object_get(c, "findings"), i, v)
		printf("  ! %s: %s\n", json_string_value(json_object_get(v, "finding")),
		       json_string_value(json_object_get(v, "message")));
	size_t n = json_array_size(json_object_get(c, "findings"));
	printf("  %zu file%s, %zu mount%s, %s\n", json_array_size(json_object_get(c, "files")),
	       json_array_size(json_object_get(c, "files")) == 1 ? "" : "s",
	       json_array_size(json_object_get(c, "mounts")),
	       json_array_size(json_object_get(c, "mounts")) == 1 ? "" : "s", n ? "DRIFT" : "clean");
}

struct audit_run {
	json_t *latest, *containers, *gone;
	struct au_cache *cache;
	size_t findings;
};

static void audit_run_clear(struct audit_run *a)
{
	json_decref(a->latest);
	json_decref(a->containers);
	json_decref(a->gone);
	au_cache_freep(&a->cache);
}

static int audit_one(const struct audit_opts *o, struct audit_run *a, json_t *rec, struct gs_err *err)
{
	struct au_opts ao = {.store = o->store, .rehash = o->rehash};
	json_t *c = NULL;
	int r = au_check(rec, &ao, a->cache, &c, err);
	if (r < 0)
		return r;
	a->findings += json_array_size(json_object_get(c, "findings"));
	return json_array_append_new(a->containers, c) == 0 ? 0 : gs_err_setx(err, ENOMEM, "out of memory");
}

/* --all: every container whose process runs; the others as gone. */
static int audit_all(const struct audit_opts *o, struct audit_run *a, struct gs_err *err)
{
	const char *id;
	json_t *rec;
	json_object_foreach(a->latest, id, rec) {
		_cleanup_free_ char *why = NULL;
		int r = au_alive(rec, &why, err);
		if (r == 0)
			r = json_array_append_new(a->gone, json_pack("{s:s, s:O?, s:s}", "container", id, "pid",
								       json_object_get(rec, "pid"), "why", why))
				    ? gs_err_setx(err, ENOMEM, "out of memory")
				    : 0;
		else if (r > 0)
			r = audit_one(o, a, rec, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int report(const struct audit_opts *o, const struct audit_run *a, const char *log, size_t n_bad)
{
	size_t i;
	json_t *v;
	if (o->json) {
		_cleanup_(gs_json_decrefp) json_t *j = json_pack("{s:s, s:O, s:O, s:I, s:I}", "audit_log", log,
			"containers", a->containers, "gone", a->gone, "findings", (json_int_t)a->findings,
			"unreadable_lines", (json_int_t)n_bad);
		if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) < 0) {
			fprintf(stderr, "gpu-stage: audit: writing JSON: out of memory\n");
			return GS_EXIT_FAIL;
		}
		putchar('\n');
	} else {
		json_array_foreach(a->containers, i, v)
			print_container(v);
		if (!json_array_size(a->containers) && !json_array_size(a->gone))
			printf("no container in %s (none started through gpu-stage-hook)\n", log);
		if (json_array_size(a->gone))
			printf("%zu container%s of the audit log no longer run%s (not audited):",
			       json_array_size(a->gone), json_array_size(a->gone) == 1 ? "" : "s",
			       json_array_size(a->gone) == 1 ? "s" : "");
		json_array_foreach(a->gone, i, v)
			printf(" %s", json_string_value(json_object_get(v, "container")));
		if (json_array_size(a->gone))
			putchar('\n');
		if (n_bad)
			fprintf(stderr, "gpu-stage: audit: %s: %zu line%s not a record (skipped)\n", log, n_bad,
				n_bad == 1 ? "" : "s");
	}
	return a->findings ? GS_EXIT_FAIL : GS_EXIT_OK;
}

int cmd_audit(int argc, char **argv)
{
	struct audit_opts o = {0};
	int r = parse_audit(argc, argv, &o);
	if (r >= 0)
		return r;
	const struct gs_config *c = cli_config();
	if (!c)
		return GS_EXIT_FAIL;
	const char *log = o.log ? o.log : c->audit_log;
	_cleanup_(audit_run_clear) struct audit_run a = {.containers = json_array(), .gone = json_array()};
	struct gs_err err = GS_ERR_INIT;
	size_t n_bad = 0;
	r = a.containers && a.gone ? au_cache_new(&a.cache, &err) : gs_err_setx(&err, ENOMEM, "out of memory");
	if (r >= 0)
		r = au_log_read(log, &a.latest, &n_bad, &err);
	if (r >= 0 && o.all)
		r = audit_all(&o, &a, &err);
	for (int i = 0; r >= 0 && i < o.n_args; i++) {
		json_t *rec = find_record(a.latest, o.args[i]);
		r = rec ? audit_one(&o, &a, rec, &err)
			: gs_err_setx(&err, ENOENT, "%s: no record in %s names this container (id, bundle or pid)",
				      o.args[i], log);
	}
	if (r < 0) {
		fprintf(stderr, "gpu-stage: audit: %s\n", err.msg);
		return GS_EXIT_FAIL;
	}
	return report(&o, &a, log, n_bad);
}
