/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage list | verify | diff | remove: reading and managing the store. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "gs/cleanup.h"
#include "gs/stage.h"
#include "store_internal.h"

struct store_opts {
	const char *store;
	const char *driver; /* list --driver */
	const char *caps;   /* list --caps */
	bool json;
	char **args;        /* positional arguments */
};

static void usage(FILE *f, const char *verb)
{
	static const struct {
		const char *verb, *text;
	} texts[] = {
		{"list", "Usage: gpu-stage list [--driver VER] [--store DIR] [--caps LIST] [--json]\n"
			 "\n"
			 "Without --driver: the staged versions, oldest first, one per line\n"
			 "(--json: driver, files, links, bytes and creation time of each).\n"
			 "With --driver: that version's files (path, kind, capabilities, SONAME,\n"
			 "size, host source) and links.  --caps LIST shows only what a container\n"
			 "asking for LIST receives (compat32 adds the 32-bit libraries).\n"},
		{"verify", "Usage: gpu-stage verify VER [--store DIR] [--json]\n"
			   "\n"
			   "Checks that STORE/VER holds exactly what its manifest says: every file's\n"
			   "bytes (sha256), size and mode, every link's target, directory modes, and\n"
			   "nothing else.  Prints one line per mismatch; exit 0 only when none.\n"},
		{"diff", "Usage: gpu-stage diff VER1 VER2 [--store DIR] [--json]\n"
			 "\n"
			 "Files and links added (+), removed (-) and changed (~) from VER1 to VER2.\n"
			 "Libraries are matched by SONAME, other entries by path with the driver\n"
			 "version replaced by X.\n"},
		{"remove", "Usage: gpu-stage remove VER [--store DIR] [--json]\n"
			   "\n"
			   "Deletes STORE/VER (renamed away under the store lock first, so no half\n"
			   "tree is ever left under its name).\n"},
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (!strcmp(texts[i].verb, verb))
			fputs(texts[i].text, f);
	fputs("\n  --store DIR  the store (default: the configuration's, else " GS_DEFAULT_STORE ")\n"
	      "  --json       machine-readable output\n",
	      f);
}

/* -1 to go on, else the exit code.  LIST allows --driver and --caps;
 * exactly NARGS positional arguments are required. */
static int parse(int argc, char **argv, bool list, int nargs, struct store_opts *o)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},        {"driver", required_argument, NULL, 'd'},
		{"caps", required_argument, NULL, 'c'},  {0}};
	const char *verb = argv[0];
	int ch;
	o->store = NULL;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, list ? "s:jhd:c:" : "s:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 's': o->store = optarg; break;
		case 'j': o->json = true; break;
		case 'h': usage(stdout, verb); return GS_EXIT_OK;
		case 'd':
		case 'c':
			if (list) {
				*(ch == 'd' ? &o->driver : &o->caps) = optarg;
				break;
			}
			fprintf(stderr, "gpu-stage: %s: --%s is only for list\n", verb,
				ch == 'd' ? "driver" : "caps");
			return GS_EXIT_USAGE;
		default:
			fprintf(stderr, "gpu-stage: %s: unknown option or missing argument '%s' (see gpu-stage %s --help)\n",
				verb, argv[optind - 1], verb);
			return GS_EXIT_USAGE;
		}
	}
	if (argc - optind != nargs) {
		fprintf(stderr, "gpu-stage: %s takes %s (see gpu-stage %s --help)\n", verb,
			nargs == 0 ? "no arguments" : nargs == 1 ? "one version" : "two versions", verb);
		return GS_EXIT_USAGE;
	}
	o->args = argv + optind;
	if (!o->store) { /* the configuration's, else the default */
		const struct gs_config *c = cli_config();
		if (!c)
			return GS_EXIT_FAIL;
		o->store = c->store;
	}
	return -1;
}


/* gs_store_load() that also gives the creation time. */
static int load(const char *store, const char *ver, struct gs_manifest **p,
		struct gs_manifest_info *info, struct gs_err *err)
{
	int r = gs_store_load_info(store, ver, p, info, err);
	if (r >= 0 && !info->digest_ok) {
		gs_manifest_free(*p);
		*p = NULL;
		return gs_err_setx(err, EBADMSG,
				   "%s/%s/" GS_MANIFEST_NAME ": edited after staging (manifest_sha256 does not match)",
				   store, ver);
	}
	return r;
}

/* ---- list ---------------------------------------------------------------------------- */

static uint64_t plan_bytes(const struct gs_manifest *p)
{
	uint64_t n = 0;
	for (size_t i = 0; i < p->n_files; i++)
		n += p->files[i].size;
	return n;
}

static int list_versions(const struct store_opts *o)
{
	struct gs_err err = GS_ERR_INIT;
	char **v = NULL;
	size_t n = 0;
	if (gs_store_list(o->store, &v, &n, &err) < 0)
		return cli_fail(&err);
	if (n == 0 && !o->json && isatty(STDERR_FILENO))
		fprintf(stderr, "gpu-stage: nothing staged in %s\n", o->store);
	int code = GS_EXIT_OK;
	_cleanup_(gs_json_decrefp) json_t *arr = o->json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		if (!o->json) {
			printf("%s\n", v[i]);
		} else {
			struct gs_manifest_info info;
			_cleanup_(gs_manifest_freep) struct gs_manifest *p = NULL;
			if (load(o->store, v[i], &p, &info, &err) < 0) {
				code = cli_fail(&err);
			} else {
				json_array_append_new(
					arr, json_pack("{s:s, s:I, s:I, s:I, s:s}", "driver", v[i],
						       "files", (json_int_t)p->n_files, "links",
						       (json_int_t)p->n_links, "bytes",
						       (json_int_t)plan_bytes(p), "created", info.created));
			}
		}
		free(v[i]);
	}
	free(v);
	if (o->json && cli_emit_json(arr) != GS_EXIT_OK)
		code = GS_EXIT_FAIL;
	return cli_flush_out(code);
}

/* Whether a container asking for MASK receives a file with CAPS. */
static bool caps_wanted(unsigned int caps, unsigned int mask)
{
	unsigned int base = caps & ~(unsigned int)GS_CAP_COMPAT32;
	bool ok = base ? (base & mask) != 0 : (caps & mask) != 0;
	if (caps & GS_CAP_COMPAT32)
		ok = ok && (mask & GS_CAP_COMPAT32);
	return ok;
}

/* Where link L points, as a path relative to STORE/VER (the target is
 * checked: leading ".." only, never above the top).  Malloc'd. */
static char *link_dest(const char *path, const char *target)
{
	char *out = NULL;
	size_t dir = strrchr(path, '/') ? (size_t)(strrchr(path, '/') - path) : 0;
	while (!strncmp(target, "../", 3)) {
		target += 3;
		while (dir > 0 && path[dir - 1] != '/')
			dir--;
		if (dir > 0)
			dir--;
	}
	if (asprintf(&out, "%.*s%s%s", (int)dir, path, dir ? "/" : "", target) < 0)
		return NULL;
	return out;
}

/* Index of the file link I finally points to, following link chains. */
static long link_file(const struct gs_manifest *p, size_t i)
{
	_cleanup_free_ char *dest = link_dest(p->links[i].path, p->links[i].target);
	for (int hops = 0; dest && hops < 16; hops++) {
		size_t j;
		for (j = 0; j < p->n_files; j++)
			if (!strcmp(p->files[j].path, dest))
				return (long)j;
		for (j = 0; j < p->n_links && strcmp(p->links[j].path, dest); j++)
			;
		if (j == p->n_links)
			return -1;
		char *next = link_dest(p->links[j].path, p->links[j].target);
		free(dest);
		dest = next;
	}
	return -1;
}

static json_t *files_json(const struct gs_manifest *p, const bool *want, const bool *lwant)
{
	json_t *files = json_array(), *links = json_array();
	for (size_t i = 0; files && i < p->n_files; i++) {
		const struct gs_file *f = &p->files[i];
		if (want[i])
			json_array_append_new(
				files, json_pack("{s:s, s:s, s:o, s:s?, s:I, s:s, s:s?, s:s, s:i}",
						 "path", f->path, "kind", gs_kind_name(f->kind), "caps",
						 gs_caps_json(f->caps), "soname", f->soname, "size",
						 (json_int_t)f->size, "source", f->source, "evidence",
						 f->evidence, "sha256", f->sha256, "mode", (int)f->mode));
	}
	for (size_t i = 0; links && i < p->n_links; i++)
		if (lwant[i])
			json_array_append_new(links, json_pack("{s:s, s:s}", "path", p->links[i].path,
							       "target", p->links[i].target));
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "driver", p->driver, "arch", p->arch, "root",
			 p->root, "files", files, "links", links);
}

static void files_text(const struct gs_manifest *p, const bool *want, const bool *lwant,
		       const char *created)
{
	int wp = 4, wc = 4, wn = 6;
	char caps[128], size[32];
	for (size_t i = 0; i < p->n_files; i++) {
		const struct gs_file *f = &p->files[i];
		int n;
		if (!want[i])
			continue;
		if ((n = (int)strlen(f->path)) > wp)
			wp = n;
		if ((n = (int)strlen(gs_caps_format(f->caps, caps, sizeof(caps)))) > wc)
			wc = n;
		if (f->soname && (n = (int)strlen(f->soname)) > wn)
			wn = n;
	}
	printf("driver %s (%s), staged %s from %s\n", p->driver, p->arch, created, p->root);
	printf("%-*s  %-8s  %-*s  %12s  %-*s  %s\n", wp, "PATH", "KIND", wc, "CAPS", "SIZE", wn,
	       "SONAME", "SOURCE");
	for (size_t i = 0; i < p->n_files; i++) {
		const struct gs_file *f = &p->files[i];
		if (!want[i])
			continue;
		snprintf(size, sizeof(size), "%" PRIu64, f->size);
		printf("%-*s  %-8s  %-*s  %12s  %-*s  %s\n", wp, f->path, gs_kind_name(f->kind), wc,
		       gs_caps_format(f->caps, caps, sizeof(caps)), size, wn,
		       f->soname ? f->soname : "-", f->source);
	}
	for (size_t i = 0; i < p->n_links; i++)
		if (lwant[i])
			printf("%-*s  %-8s  -> %s\n", wp, p->links[i].path, "link", p->links[i].target);
}

static int list_files(const struct store_opts *o)
{
	struct gs_err err = GS_ERR_INIT;
	unsigned int mask = GS_CAP_ALL;
	if (o->caps && gs_caps_parse(o->caps, &mask, &err) < 0) {
		fprintf(stderr, "gpu-stage: --caps: %s\n", err.msg);
		return GS_EXIT_USAGE;
	}
	struct gs_manifest_info info;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p = NULL;
	if (load(o->store, o->driver, &p, &info, &err) < 0)
		return cli_fail(&err);
	_cleanup_free_ bool *want = calloc(p->n_files + 1, sizeof(bool));
	_cleanup_free_ bool *lwant = calloc(p->n_links + 1, sizeof(bool));
	if (!want || !lwant)
		return cli_fail(&(struct gs_err){ENOMEM, "out of memory"});
	for (size_t i = 0; i < p->n_files; i++)
		want[i] = !o->caps || caps_wanted(p->files[i].caps, mask);
	for (size_t i = 0; i < p->n_links; i++) {
		long f = link_file(p, i);
		lwant[i] = f >= 0 ? want[f] : !o->caps;
	}
	if (o->json) {
		_cleanup_(gs_json_decrefp) json_t *j = files_json(p, want, lwant);
		return cli_flush_out(cli_emit_json(j));
	}
	files_text(p, want, lwant, info.created);
	return cli_flush_out(GS_EXIT_OK);
}

int cmd_list(int argc, char **argv)
{
	struct store_opts o = {0};
	int r = parse(argc, argv, true, 0, &o);
	if (r >= 0)
		return r;
	if (o.driver)
		return list_files(&o);
	if (o.caps) {
		fprintf(stderr, "gpu-stage: list: --caps needs --driver VER\n");
		return GS_EXIT_USAGE;
	}
	return list_versions(&o);
}

/* ---- verify ----------------------------------------------------------------------------- */

struct verify_out {
	json_t *lines; /* JSON mode */
	size_t n;
};

static void print_line(void *data, const char *line)
{
	struct verify_out *v = data;
	v->n++;
	if (v->lines)
		json_array_append_new(v->lines, json_string(line));
	else
		printf("%s\n", line);
}

int cmd_verify(int argc, char **argv)
{
	struct store_opts o = {0};
	int r = parse(argc, argv, false, 1, &o);
	if (r >= 0)
		return r;
	const char *ver = o.args[0];
	struct gs_err err = GS_ERR_INIT;
	_cleanup_(gs_json_decrefp) json_t *lines = o.json ? json_array() : NULL;
	struct verify_out v = {lines, 0};
	r = gs_store_verify(o.store, ver, print_line, &v, &err);
	if (r < 0 && v.n == 0) /* could not check at all: no or bad manifest, I/O */
		return cli_fail(&err);
	int code = r == 0 ? GS_EXIT_OK : GS_EXIT_FAIL;
	if (o.json) {
		_cleanup_(gs_json_decrefp) json_t *j =
			json_pack("{s:s, s:s, s:b, s:O}", "driver", ver, "store", o.store, "ok", r == 0,
				  "mismatches", lines);
		if (cli_emit_json(j) != GS_EXIT_OK)
			code = GS_EXIT_FAIL;
	} else if (r == 0) {
		printf("%s/%s: ok\n", o.store, ver);
	}
	code = cli_flush_out(code);
	if (r < 0)
		fprintf(stderr, "gpu-stage: %s\n", err.msg);
	return code;
}

/* ---- diff --------------------------------------------------------------------------------- */

/* PATH with every occurrence of VER replaced by "X". */
static char *unversioned(const char *path, const char *ver)
{
	size_t vl = strlen(ver);
	char *out = malloc(strlen(path) + 1), *d = out;
	if (!out)
		return NULL;
	for (const char *s = path; *s;) {
		if (!strncmp(s, ver, vl)) {
			*d++ = 'X';
			s += vl;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
	return out;
}

/* How an entry is matched across versions: "kind:soname" for libraries,
 * else "path:" and the unversioned path. */
static char *file_key(const struct gs_file *f, const char *ver)
{
	char *key = NULL;
	_cleanup_free_ char *u = unversioned(f->path, ver);
	if (!u)
		return NULL;
	int r = f->soname ? asprintf(&key, "%s:%s", gs_kind_name(f->kind), f->soname)
			  : asprintf(&key, "path:%s", u);
	return r < 0 ? NULL : key;
}

struct side {
	const struct gs_manifest *p;
	char **fkeys, **lkeys, **ltargets; /* unversioned link paths and targets */
	bool *fmatched, *lmatched;
};

static void side_free(struct side *s)
{
	for (size_t i = 0; s->fkeys && i < s->p->n_files; i++)
		free(s->fkeys[i]);
	for (size_t i = 0; s->lkeys && i < s->p->n_links; i++) {
		free(s->lkeys[i]);
		free(s->ltargets[i]);
	}
	free(s->fkeys);
	free(s->lkeys);
	free(s->ltargets);
	free(s->fmatched);
	free(s->lmatched);
}

static int side_init(struct side *s, const struct gs_manifest *p)
{
	s->p = p;
	s->fkeys = calloc(p->n_files + 1, sizeof(char *));
	s->fmatched = calloc(p->n_files + 1, sizeof(bool));
	s->lkeys = calloc(p->n_links + 1, sizeof(char *));
	s->ltargets = calloc(p->n_links + 1, sizeof(char *));
	s->lmatched = calloc(p->n_links + 1, sizeof(bool));
	if (!s->fkeys || !s->fmatched || !s->lkeys || !s->ltargets || !s->lmatched)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_files; i++)
		if (!(s->fkeys[i] = file_key(&p->files[i], p->driver)))
			return -ENOMEM;
	for (size_t i = 0; i < p->n_links; i++)
		if (!(s->lkeys[i] = unversioned(p->links[i].path, p->driver)) ||
		    !(s->ltargets[i] = unversioned(p->links[i].target, p->driver)))
			return -ENOMEM;
	return 0;
}

struct diff_out {
	json_t *changes; /* JSON mode */
	size_t added, removed, changed, same;
};

static void emit(struct diff_out *d, char op, const char *type, const char *path,
		 const char *detail)
{
	if (d->changes)
		json_array_append_new(d->changes,
				      json_pack("{s:s%, s:s, s:s, s:s?}", "op", &op, (size_t)1, "type",
						type, "path", path, "detail", detail));
	else if (detail)
		printf("%c %s  (%s)\n", op, path, detail);
	else
		printf("%c %s\n", op, path);
	d->added += op == '+';
	d->removed += op == '-';
	d->changed += op == '~';
}

static void compare_files(struct diff_out *d, const struct side *a, const struct side *b,
			  size_t i, size_t j)
{
	const struct gs_file *x = &a->p->files[i], *y = &b->p->files[j];
	char what[256] = "";
	_cleanup_free_ char *ux = unversioned(x->path, a->p->driver);
	_cleanup_free_ char *uy = unversioned(y->path, b->p->driver);
	if (strcmp(x->sha256, y->sha256))
		strcat(what, ", content");
	if (x->size != y->size)
		snprintf(what + strlen(what), sizeof(what) - strlen(what),
			 ", size %" PRIu64 " -> %" PRIu64, x->size, y->size);
	if (x->mode != y->mode)
		snprintf(what + strlen(what), sizeof(what) - strlen(what), ", mode %04o -> %04o",
			 (unsigned int)x->mode, (unsigned int)y->mode);
	if (x->caps != y->caps)
		strcat(what, ", capabilities");
	if (x->kind != y->kind)
		strcat(what, ", kind");
	if (!ux || !uy || strcmp(ux, uy))
		snprintf(what + strlen(what), sizeof(what) - strlen(what), ", was %s", x->path);
	if (!what[0])
		d->same++;
	else
		emit(d, '~', "file", uy ? uy : y->path, what + 2);
}

static void diff_files(struct diff_out *d, struct side *a, struct side *b)
{
	for (size_t i = 0; i < a->p->n_files; i++) {
		size_t j = 0;
		while (j < b->p->n_files && (b->fmatched[j] || strcmp(a->fkeys[i], b->fkeys[j])))
			j++;
		if (j == b->p->n_files) {
			emit(d, '-', "file", a->p->files[i].path, NULL);
			continue;
		}
		a->fmatched[i] = b->fmatched[j] = true;
		compare_files(d, a, b, i, j);
	}
	for (size_t j = 0; j < b->p->n_files; j++)
		if (!b->fmatched[j])
			emit(d, '+', "file", b->p->files[j].path, NULL);
}

static void diff_links(struct diff_out *d, struct side *a, struct side *b)
{
	char detail[GS_PATH_MAX * 2 + 16];
	for (size_t i = 0; i < a->p->n_links; i++) {
		size_t j = 0;
		while (j < b->p->n_links && (b->lmatched[j] || strcmp(a->lkeys[i], b->lkeys[j])))
			j++;
		const struct gs_link *l = &a->p->links[i];
		if (j == b->p->n_links) {
			snprintf(detail, sizeof(detail), "-> %s", l->target);
			emit(d, '-', "link", l->path, detail);
			continue;
		}
		a->lmatched[i] = b->lmatched[j] = true;
		if (!strcmp(a->ltargets[i], b->ltargets[j])) {
			d->same++;
			continue;
		}
		snprintf(detail, sizeof(detail), "-> %s, was -> %s", b->p->links[j].target, l->target);
		emit(d, '~', "link", b->p->links[j].path, detail);
	}
	for (size_t j = 0; j < b->p->n_links; j++) {
		if (b->lmatched[j])
			continue;
		snprintf(detail, sizeof(detail), "-> %s", b->p->links[j].target);
		emit(d, '+', "link", b->p->links[j].path, detail);
	}
}

int cmd_diff(int argc, char **argv)
{
	struct store_opts o = {0};
	int r = parse(argc, argv, false, 2, &o);
	if (r >= 0)
		return r;
	struct gs_err err = GS_ERR_INIT;
	struct gs_manifest_info info;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p1 = NULL;
	_cleanup_(gs_manifest_freep) struct gs_manifest *p2 = NULL;
	if (load(o.store, o.args[0], &p1, &info, &err) < 0 ||
	    load(o.store, o.args[1], &p2, &info, &err) < 0)
		return cli_fail(&err);
	struct side a = {0}, b = {0};
	struct diff_out d = {0};
	_cleanup_(gs_json_decrefp) json_t *changes = o.json ? json_array() : NULL;
	d.changes = changes;
	if (side_init(&a, p1) < 0 || side_init(&b, p2) < 0 || (o.json && !changes)) {
		side_free(&a);
		side_free(&b);
		return cli_fail(&(struct gs_err){ENOMEM, "diff: out of memory"});
	}
	diff_files(&d, &a, &b);
	diff_links(&d, &a, &b);
	side_free(&a);
	side_free(&b);
	if (o.json) {
		_cleanup_(gs_json_decrefp) json_t *j = json_pack(
			"{s:s, s:s, s:O, s:I, s:I, s:I, s:I}", "from", p1->driver, "to", p2->driver,
			"changes", changes, "added", (json_int_t)d.added, "removed",
			(json_int_t)d.removed, "changed", (json_int_t)d.changed, "unchanged",
			(json_int_t)d.same);
		return cli_flush_out(cli_emit_json(j));
	}
	printf("%zu added, %zu removed, %zu changed, %zu unchanged\n", d.added, d.removed,
	       d.changed, d.same);
	return cli_flush_out(GS_EXIT_OK);
}

/* ---- remove ------------------------------------------------------------------------------- */

int cmd_remove(int argc, char **argv)
{
	struct store_opts o = {0};
	int r = parse(argc, argv, false, 1, &o);
	if (r >= 0)
		return r;
	struct gs_err err = GS_ERR_INIT;
	int rm_err = 0;
	int kept = gs_store_remove(o.store, o.args[0], &rm_err, &err);
	if (kept < 0)
		return cli_fail(&err);
	if (rm_err) /* removed from the store all the same: housekeeping left */
		fprintf(stderr, "gpu-stage: warning: deleting the files of %s/%s failed (%s): they stay hidden as %s/.tmp-rm-%s-*, and a later gpu-stage run (or gc) deletes them\n",
			o.store, o.args[0], strerror(rm_err), o.store, o.args[0]);
	if (o.json) {
		_cleanup_(gs_json_decrefp) json_t *j =
			json_pack("{s:s, s:s, s:b, s:b, s:s?}", "driver", o.args[0], "store", o.store,
				  "removed", 1, "files_kept_in_use", kept == 1 && !rm_err,
				  "files_not_deleted", rm_err ? strerror(rm_err) : NULL);
		return cli_flush_out(cli_emit_json(j));
	}
	printf("removed %s/%s\n", o.store, o.args[0]);
	if (kept == 1 && !rm_err)
		printf("note: a running container still mounts its files; they are deleted by a later gpu-stage run once none does\n");
	return cli_flush_out(GS_EXIT_OK);
}
