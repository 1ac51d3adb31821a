/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage gc: removes the staged versions no one needs (stage/store_gc.c). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "gs/cleanup.h"
#include "gs/stage.h"
#include "store_internal.h"

static void usage(FILE *f)
{
	fputs("Usage: gpu-stage gc [--dry-run] [--store DIR] [--root DIR] [--json]\n"
	      "\n"
	      "Removes every staged version that is neither the loaded kernel module's\n"
	      "(ROOT/proc/driver/nvidia/version, else ROOT/sys/module/nvidia/version),\n"
	      "nor the configuration's \"driver\", nor in use by a running container (a\n"
	      "process's mount table shows one of its files), and every old copy a\n"
	      "re-stage or remove left behind that nothing mounts any more.  Without a\n"
	      "loaded module it removes nothing (exit 1).  Takes the store lock.\n"
	      "\n"
	      "  --dry-run   remove nothing: say what would go and why the rest stays\n"
	      "  --store DIR the store (default: the configuration's, else " GS_DEFAULT_STORE ")\n"
	      "  --root DIR  the host root whose /proc names the loaded module (default /)\n"
	      "  --json      machine-readable output\n"
	      "\n"
	      "Exit status: 0 success, 1 failure, 2 usage error.\n",
	      f);
}

struct gc_out {
	json_t *items; /* JSON mode */
	bool dry_run;
};

static void reason(const struct gs_gc_item *it, char *buf, size_t len)
{
	switch (it->verdict) {
	case GS_GC_REMOVE:
		snprintf(buf, len, "%s", it->old_tree ? "an old copy nothing mounts" : "not loaded, not in use");
		break;
	case GS_GC_KEEP: snprintf(buf, len, "%s", it->why); break;
	case GS_GC_IN_USE:
		if (it->pid > 0)
			snprintf(buf, len, "in use: mounted in the mount namespace of pid %d", (int)it->pid);
		else
			snprintf(buf, len, "in use: the mount tables cannot be read");
		break;
	case GS_GC_KEPT_MOUNTED:
		snprintf(buf, len, "removed from the store, but a container mounted it meanwhile: deleted by a later run");
		break;
	case GS_GC_RM_FAILED:
		snprintf(buf, len, "removed from the store, but deleting its files failed: %s; a later run tries again",
			 strerror(it->err_no));
		break;
	}
}

static void report(void *data, const struct gs_gc_item *it)
{
	struct gc_out *o = data;
	char why[256];
	reason(it, why, sizeof(why));
	bool gone = it->verdict == GS_GC_REMOVE || it->verdict == GS_GC_KEPT_MOUNTED;
	const char *action = it->verdict == GS_GC_RM_FAILED ? "failed"
			     : !gone                        ? "keep"
			     : o->dry_run                   ? "would remove"
							    : "removed";
	if (o->items)
		json_array_append_new(o->items,
				      json_pack("{s:s, s:b, s:s, s:s, s:i}", "name", it->name,
						"old_copy", it->old_tree, "action", action, "reason",
						why, "pid", it->verdict == GS_GC_IN_USE ? (int)it->pid : 0));
	else
		printf("%-12s %s  (%s)\n", action, it->name, why);
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, 's'}, {"root", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},        {"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},        {0}};
	const char *store = NULL, *root = "/";
	bool json = false, dry_run = false;
	int ch;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "s:r:jnh", opts, NULL)) != -1) {
		switch (ch) {
		case 's': store = optarg; break;
		case 'r': root = optarg; break;
		case 'j': json = true; break;
		case 'n': dry_run = true; break;
		case 'h': usage(stdout); return GS_EXIT_OK;
		default:
			fprintf(stderr, "gpu-stage: gc: unknown option or missing argument '%s' (see gpu-stage gc --help)\n",
				argv[optind - 1]);
			return GS_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gpu-stage: gc takes no arguments (see gpu-stage gc --help)\n");
		return GS_EXIT_USAGE;
	}
	const struct gs_config *c = cli_config();
	if (!c)
		return GS_EXIT_FAIL;
	if (!store)
		store = c->store;
	struct gs_err err = GS_ERR_INIT;
	_cleanup_free_ char *loaded = NULL;
	if (gs_driver_detect(root, GS_DETECT_LOADED, &loaded, &err) < 0)
		return cli_fail(&err);
	if (!loaded) {
		fprintf(stderr, "gpu-stage: %s%sproc/driver/nvidia/version: no nvidia kernel module loaded, so which version is in use is unknown; nothing removed\n",
			root, *root && root[strlen(root) - 1] == '/' ? "" : "/");
		return GS_EXIT_FAIL;
	}
	struct gs_gc_keep keep[] = {{loaded, "the loaded kernel module's"},
				    {c->driver, "the configuration's \"driver\""}};
	_cleanup_(gs_json_decrefp) json_t *items = json ? json_array() : NULL;
	struct gc_out out = {items, dry_run};
	int removed = gs_store_gc(store, keep, 2, dry_run, report, &out, &err);
	if (removed < 0 && !json)
		return cli_fail(&err);
	if (json) {
		_cleanup_(gs_json_decrefp) json_t *j = json_pack(
			"{s:s, s:s, s:b, s:O, s:i, s:s?}", "store", store, "loaded", loaded, "dry_run",
			dry_run, "items", items, "removed", removed < 0 ? 0 : removed, "error",
			removed < 0 ? err.msg : NULL);
		int code = cli_emit_json(j);
		if (removed < 0)
			return cli_flush_out(cli_fail(&err));
		return cli_flush_out(code);
	}
	if (removed == 0)
		printf("nothing to remove in %s\n", store);
	return cli_flush_out(GS_EXIT_OK);
}
