/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage [stage]: discover one driver version and stage it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "gs/cleanup.h"
#include "gs/stage.h"

struct stage_opts {
	struct gs_discover_opts d;
	const char *store;
	char **libdirs;
	size_t n_libdirs;
	enum gs_detect detect; /* --if-loaded, --installed */
	bool dry_run, json, force, quiet;
};

static void stage_usage(FILE *f)
{
	fputs("Usage: gpu-stage [stage] [--driver VER] [--root DIR] [--store DIR]\n"
	      "                 [--libdir DIR]... [--caps LIST] [--dry-run] [--json] [--force]\n"
	      "\n"
	      "Finds the files of one NVIDIA driver version under the host root DIR and\n"
	      "stages them into STORE/VER/ (read-only, with manifest.json).\n"
	      "\n"
	      "  --driver VER   version to stage (default: the configuration's, else the\n"
	      "                 loaded module's, from\n"
	      "                 /proc/driver/nvidia/version or /sys/module/nvidia/version\n"
	      "                 under the root, else what libcuda.so.1 resolves to)\n"
	      "  --if-loaded    the loaded module's version; without a loaded module say\n"
	      "                 so and stage nothing, exit 0 (the boot unit)\n"
	      "  --installed    the version the installed libraries are (libcuda.so.1,\n"
	      "                 libnvidia-ml.so.1), not the loaded module's: after a\n"
	      "                 driver upgrade, before the reboot (the dpkg trigger)\n"
	      "  --root DIR     host root to search (default /)\n"
	      "  --store DIR    store (default: the configuration's, else " GS_DEFAULT_STORE ")\n"
	      "  --libdir DIR   also search DIR (a path inside the root); repeatable\n"
	      "  --caps LIST    capabilities to stage: utility,compute,video,graphics,\n"
	      "                 display,ngx,compat32 or all (default all)\n"
	      "  --dry-run      print the plan, write nothing\n"
	      "  --json         machine-readable output\n"
	      "  --force        copy again even when the staged copy is up to date\n"
	      "  -q, --quiet    no progress display\n",
	      f);
}

static int push_libdir(struct stage_opts *o, char *dir)
{
	char **v = realloc(o->libdirs, (o->n_libdirs + 1) * sizeof(*v));
	if (!v)
		return -1;
	o->libdirs = v;
	v[o->n_libdirs++] = dir;
	return 0;
}

static int parse_stage(int argc, char **argv, struct stage_opts *o)
{
	static const struct option opts[] = {
		{"driver", required_argument, NULL, 'd'}, {"root", required_argument, NULL, 'r'},
		{"store", required_argument, NULL, 's'},  {"libdir", required_argument, NULL, 'L'},
		{"caps", required_argument, NULL, 'c'},   {"dry-run", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},         {"force", no_argument, NULL, 'f'},
		{"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
		{"if-loaded", no_argument, NULL, 'l'},    {"installed", no_argument, NULL, 'I'},
		{0}};
	struct gs_err err = GS_ERR_INIT;
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "d:r:s:L:c:njfqh", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': o->d.driver = optarg; break;
		case 'r': o->d.root = optarg; break;
		case 's': o->store = optarg; break;
		case 'L':
			if (push_libdir(o, optarg) < 0)
				return GS_EXIT_FAIL;
			break;
		case 'c':
			if (gs_caps_parse(optarg, &o->d.caps, &err) < 0) {
				fprintf(stderr, "gpu-stage: --caps: %s\n", err.msg);
				return GS_EXIT_USAGE;
			}
			break;
		case 'n': o->dry_run = true; break;
		case 'j': o->json = true; break;
		case 'f': o->force = true; break;
		case 'q': o->quiet = true; break;
		case 'l':
		case 'I':
			if (o->detect && o->detect != (ch == 'l' ? GS_DETECT_LOADED : GS_DETECT_INSTALLED)) {
				fprintf(stderr, "gpu-stage: --if-loaded and --installed exclude each other\n");
				return GS_EXIT_USAGE;
			}
			o->detect = ch == 'l' ? GS_DETECT_LOADED : GS_DETECT_INSTALLED;
			break;
		case 'h': stage_usage(stdout); return GS_EXIT_OK;
		default: return GS_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gpu-stage: unexpected argument '%s' (see gpu-stage stage --help)\n",
			argv[optind]);
		return GS_EXIT_USAGE;
	}
	if (o->detect && o->d.driver) {
		fprintf(stderr, "gpu-stage: --%s detects the version: give it or --driver, not both\n",
			o->detect == GS_DETECT_LOADED ? "if-loaded" : "installed");
		return GS_EXIT_USAGE;
	}
	o->d.libdirs = o->libdirs;
	o->d.n_libdirs = o->n_libdirs;
	return -1;
}

static const char *kind_name(enum gs_kind k)
{
	switch (k) {
	case GS_KIND_LIB: return "lib";
	case GS_KIND_LIB32: return "lib32";
	case GS_KIND_BIN: return "bin";
	case GS_KIND_FIRMWARE: return "firmware";
	case GS_KIND_CONFIG: return "config";
	}
	return "?";
}

static json_t *plan_json(const struct gs_manifest *p)
{
	json_t *files = json_array(), *links = json_array(), *warns = json_array();
	char caps[128];
	for (size_t i = 0; i < p->n_files; i++) {
		const struct gs_file *f = &p->files[i];
		json_array_append_new(files, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:I, s:i}",
						       "path", f->path, "source", f->source, "kind",
						       kind_name(f->kind), "caps",
						       gs_caps_format(f->caps, caps, sizeof(caps)),
						       "soname", f->soname, "evidence", f->evidence,
						       "size", (json_int_t)f->size,
						       "mode", (int)f->mode));
	}
	for (size_t i = 0; i < p->n_links; i++)
		json_array_append_new(links, json_pack("{s:s, s:s}", "path", p->links[i].path,
						       "target", p->links[i].target));
	for (size_t i = 0; i < p->n_warnings; i++)
		json_array_append_new(warns, json_string(p->warnings[i]));
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "driver", p->driver, "arch", p->arch,
			 "root", p->root, "files", files, "links", links, "warnings", warns);
}

static void print_plan(const struct gs_manifest *p)
{
	char caps[128];
	printf("driver %s (%s) under %s: %zu files, %zu links\n", p->driver, p->arch, p->root,
	       p->n_files, p->n_links);
	for (size_t i = 0; i < p->n_files; i++) {
		const struct gs_file *f = &p->files[i];
		printf("  %-8s %-22s %s <- %s  [%s]\n", kind_name(f->kind),
		       gs_caps_format(f->caps, caps, sizeof(caps)), f->path, f->source,
		       f->evidence ? f->evidence : "?");
	}
	for (size_t i = 0; i < p->n_links; i++)
		printf("  link     %-22s %s -> %s\n", "", p->links[i].path, p->links[i].target);
}

static void progress(void *data, size_t done, size_t total, uint64_t done_bytes,
		     uint64_t total_bytes, const char *current)
{
	(void)data;
	fprintf(stderr, "\r\033[Kstaging %zu/%zu files, %llu/%llu MiB  %s", done, total,
		(unsigned long long)(done_bytes >> 20), (unsigned long long)(total_bytes >> 20),
		done == total ? "\n" : current);
	fflush(stderr);
}

static void print_warnings(const struct gs_manifest *p)
{
	for (size_t i = 0; i < p->n_warnings; i++)
		fprintf(stderr, "gpu-stage: warning: %s\n", p->warnings[i]);
}

static int stage_plan(const struct stage_opts *o, struct gs_manifest *p)
{
	struct gs_err err = GS_ERR_INIT;
	struct gs_progress prog = {progress, NULL};
	enum gs_stage_result res;
	_cleanup_close_ int rootfd = open(o->d.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		fprintf(stderr, "gpu-stage: root %s: %s\n", o->d.root, strerror(errno));
		return GS_EXIT_FAIL;
	}
	bool tty = !o->quiet && !o->json && isatty(STDERR_FILENO);
	if (gs_store_stage(o->store, rootfd, p, o->force, tty ? &prog : NULL, &res, &err) < 0) {
		fprintf(stderr, "gpu-stage: %s\n", err.msg);
		return GS_EXIT_FAIL;
	}
	static const char *const what[] = {"staged", "replaced", "unchanged", "index rebuilt"};
	uint64_t bytes = 0;
	for (size_t i = 0; i < p->n_files; i++)
		bytes += p->files[i].size;
	/* a CDI spec of ours that serves this store: its GPUs and hook kept current */
	_cleanup_free_ char *spec = NULL;
	int cdi = cdi_refresh(o->store, &spec, &err);
	if (o->json) {
		_cleanup_(gs_json_decrefp) json_t *j = json_pack(
			"{s:s, s:s, s:s, s:I, s:I, s:s?}", "driver", p->driver, "store", o->store,
			"result", what[res], "files", (json_int_t)p->n_files, "bytes", (json_int_t)bytes,
			"cdi_spec", spec);
		json_dumpf(j, stdout, 0);
		putchar('\n');
	} else {
		printf("%s: driver %s in %s/%s (%zu files, %llu MiB)\n", what[res], p->driver,
		       o->store, p->driver, p->n_files, (unsigned long long)(bytes >> 20));
		if (spec)
			printf("CDI spec %s re-written\n", spec);
	}
	if (cdi < 0) {
		fprintf(stderr, "gpu-stage: driver %s is staged, but: %s\n", p->driver, err.msg);
		return GS_EXIT_FAIL;
	}
	return GS_EXIT_OK;
}

int cmd_stage(int argc, char **argv)
{
	struct stage_opts o = {.d = {.root = "/", .caps = GS_CAP_ALL}};
	int r = parse_stage(argc, argv, &o);
	_cleanup_free_ char **libdirs = o.libdirs;
	if (r >= 0)
		return r;
	if (!o.store || !o.d.driver) { /* what the options leave: the configuration's */
		const struct gs_config *c = cli_config();
		if (!c)
			return GS_EXIT_FAIL;
		o.store = o.store ? o.store : c->store;
		/* --if-loaded, --installed: what the host says, not a pinned version */
		o.d.driver = o.d.driver || o.detect ? o.d.driver : c->driver;
	}
	struct gs_err err = GS_ERR_INIT;
	_cleanup_free_ char *detected = NULL;
	if (!o.d.driver) {
		if (gs_driver_detect(o.d.root, o.detect, &detected, &err) < 0) {
			fprintf(stderr, "gpu-stage: %s\n", err.msg);
			return GS_EXIT_FAIL;
		}
		if (!detected && o.json) { /* --if-loaded */
			printf("{\"driver\": null, \"result\": \"no module loaded\"}\n");
			return GS_EXIT_OK;
		}
		if (!detected) {
			printf("no nvidia kernel module loaded (%s: proc/driver/nvidia/version, sys/module/nvidia/version): nothing to stage\n",
			       o.d.root);
			return GS_EXIT_OK;
		}
		o.d.driver = detected;
	}
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = NULL;
	if (gs_discover(&o.d, &p, &err) < 0) {
		fprintf(stderr, "gpu-stage: %s\n", err.msg);
		return GS_EXIT_FAIL;
	}
	if (!o.json)
		print_warnings(p);
	if (!o.dry_run)
		return stage_plan(&o, p);
	if (o.json) {
		_cleanup_(gs_json_decrefp) json_t *j = plan_json(p);
		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_plan(p);
	}
	return GS_EXIT_OK;
}
