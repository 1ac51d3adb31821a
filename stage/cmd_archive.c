/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage export | import: one staged set as one file, to ship to many
 * nodes (stage/archive.c has the format and the checks). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "store_internal.h"

#define PROGRESS_MIN (64ull << 20) /* sets smaller than this show no progress */

struct archive_opts {
	const char *store, *output;
	bool json, force;
	const char *arg; /* VER (export) or FILE (import) */
};

static void usage(FILE *f, bool export)
{
	fputs(export ? "Usage: gpu-stage export VER [-o FILE|-] [--store DIR] [--json]\n"
		       "\n"
		       "Writes STORE/VER as one tar + zstd archive (default FILE: VER.tar.zst in\n"
		       "the current directory; - for stdout), deterministic: the same staged set\n"
		       "gives the same bytes.  Every file is checked against the manifest as it\n"
		       "is read.  FILE is written to a temporary name and renamed into place.\n"
		       "\n"
		       "  -o, --output FILE  where to write the archive\n"
		     : "Usage: gpu-stage import FILE|- [--store DIR] [--force] [--json]\n"
		       "\n"
		       "Puts the version an export archive holds into STORE, atomically like\n"
		       "staging, after checking every entry against its manifest (path, type,\n"
		       "size, mode, sha256, link target; nothing missing, nothing extra).  The\n"
		       "same version already staged identically: nothing to do; staged\n"
		       "differently: refused unless --force, which replaces it.  On any refusal\n"
		       "the store is unchanged.\n"
		       "\n"
		       "  --force            replace a different copy of the version\n",
	      f);
	fputs("  --store DIR        the store (default: the configuration's, else " GS_DEFAULT_STORE ")\n"
	      "  --json             print a JSON summary\n"
	      "\n"
	      "Exit status: 0 success, 1 failure, 2 usage error.\n",
	      f);
}

static int parse(int argc, char **argv, bool export, struct archive_opts *o)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},        {"output", required_argument, NULL, 'o'},
		{"force", no_argument, NULL, 'f'},       {0}};
	const char *verb = argv[0];
	int ch;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "s:jho:f", opts, NULL)) != -1) {
		switch (ch) {
		case 's': o->store = optarg; break;
		case 'j': o->json = true; break;
		case 'h': usage(stdout, export); return GS_EXIT_OK;
		case 'o':
		case 'f':
			if ((ch == 'o') == export) {
				if (ch == 'o')
					o->output = optarg;
				else
					o->force = true;
				break;
			}
			fprintf(stderr, "gpu-stage: %s: --%s is only for %s\n", verb,
				ch == 'o' ? "output" : "force", ch == 'o' ? "export" : "import");
			return GS_EXIT_USAGE;
		default:
			fprintf(stderr, "gpu-stage: %s: unknown option or missing argument '%s' (see gpu-stage %s --help)\n",
				verb, argv[optind - 1], verb);
			return GS_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "gpu-stage: %s takes one %s (see gpu-stage %s --help)\n", verb,
			export ? "version" : "archive", verb);
		return GS_EXIT_USAGE;
	}
	o->arg = argv[optind];
	if (!o->store) {
		const struct gs_config *c = cli_config();
		if (!c)
			return GS_EXIT_FAIL;
		o->store = c->store;
	}
	return -1;
}

/* ---- export ----------------------------------------------------------------------------- */

static void progress(void *data, size_t done, size_t total, uint64_t done_bytes,
		     uint64_t total_bytes, const char *current)
{
	bool *shown = data;
	if (total_bytes < PROGRESS_MIN)
		return;
	*shown = true;
	fprintf(stderr, "\r\033[Kexporting %zu/%zu files, %llu/%llu MiB  %s", done, total,
		(unsigned long long)(done_bytes >> 20), (unsigned long long)(total_bytes >> 20),
		done == total ? "\n" : current);
	fflush(stderr);
}

/* An export stopped by SIGINT, SIGTERM or SIGHUP removes its temporary
 * file first (SIGKILL cannot be caught: that one leaves .FILE.gs-XXXXXXXX
 * behind, never a partial FILE). */
static int tmp_dirfd = -1;
static char tmp_name[NAME_MAX + 1];
static volatile sig_atomic_t tmp_live;
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void on_stop(int sig)
{
	if (tmp_live)
		(void)unlinkat(tmp_dirfd, tmp_name, 0);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_stops(bool on)
{
	struct sigaction sa = {.sa_handler = on ? on_stop : SIG_DFL};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaction(stop_signals[i], &sa, NULL);
}

/* The archive written to FILE through a temporary file renamed over it. */
static int export_file(const struct archive_opts *o, const char *file,
		       const struct gs_progress *pr, struct gs_export_info *info, struct gs_err *err)
{
	_cleanup_free_ char *d = strdup(file), *b = strdup(file);
	if (!d || !b)
		return gs_err_setx(err, ENOMEM, "out of memory");
	const char *dir = dirname(d), *name = basename(b);
	_cleanup_close_ int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return gs_err_set(err, errno, "%s", dir);
	char *tmp = tmp_name;
	int fd = gs_tmpfile_at(dirfd, name, tmp, err);
	if (fd < 0)
		return gs_err_wrap(err, "%s", dir);
	tmp_dirfd = dirfd;
	tmp_live = 1;
	catch_stops(true);
	int r = gs_archive_export(o->store, o->arg, fd, pr, info, err);
	if (r >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
		r = gs_err_set(err, errno, "writing %s", file);
	if (close(fd) < 0 && r >= 0)
		r = gs_err_set(err, errno, "writing %s", file);
	if (r >= 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = gs_err_set(err, errno, "replacing %s", file);
	if (r < 0)
		(void)unlinkat(dirfd, tmp, 0);
	tmp_live = 0;
	catch_stops(false);
	if (r < 0)
		return r;
	_cleanup_close_ int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (fsync(dfd) < 0 && errno != EINVAL))
		return gs_err_set(err, errno, "%s: written, but syncing its directory failed", file);
	return 0;
}

int cmd_export(int argc, char **argv)
{
	struct archive_opts o = {0};
	int r = parse(argc, argv, true, &o);
	if (r >= 0)
		return r;
	_cleanup_free_ char *def = NULL;
	const char *file = o.output;
	if (!file && asprintf(&def, "%s.tar.zst", o.arg) < 0)
		return cli_fail(&(struct gs_err){ENOMEM, "out of memory"});
	if (!file)
		file = def;
	bool to_stdout = !strcmp(file, "-");
	if (to_stdout && (o.json || isatty(STDOUT_FILENO))) {
		fprintf(stderr, "gpu-stage: export: %s\n",
			o.json ? "--json and -o - both want stdout"
			       : "refusing to write an archive to a terminal (use -o FILE)");
		return GS_EXIT_USAGE;
	}
	bool shown = false;
	struct gs_progress prog = {progress, &shown};
	const struct gs_progress *pr = isatty(STDERR_FILENO) ? &prog : NULL;
	struct gs_export_info info;
	struct gs_err err = GS_ERR_INIT;
	r = to_stdout ? gs_archive_export(o.store, o.arg, STDOUT_FILENO, pr, &info, &err)
		      : export_file(&o, file, pr, &info, &err);
	if (shown && r < 0)
		fputc('\n', stderr);
	if (r < 0)
		return cli_fail(&err);
	if (o.json) {
		_cleanup_(gs_json_decrefp) json_t *j = json_pack(
			"{s:s, s:s, s:s, s:I, s:s, s:I, s:I}", "driver", o.arg, "store", o.store,
			"file", file, "bytes", (json_int_t)info.bytes, "sha256", info.sha256,
			"entries", (json_int_t)info.entries, "data_bytes", (json_int_t)info.data);
		return cli_flush_out(cli_emit_json(j));
	}
	fprintf(to_stdout ? stderr : stdout,
		"exported %s/%s to %s: %zu entries, %llu bytes, sha256 %s\n", o.store, o.arg,
		to_stdout ? "stdout" : file, info.entries, (unsigned long long)info.bytes,
		info.sha256);
	return cli_flush_out(GS_EXIT_OK);
}

/* ---- import ----------------------------------------------------------------------------- */

int cmd_import(int argc, char **argv)
{
	struct archive_opts o = {0};
	int r = parse(argc, argv, false, &o);
	if (r >= 0)
		return r;
	bool from_stdin = !strcmp(o.arg, "-");
	_cleanup_close_ int fd =
		from_stdin ? dup(STDIN_FILENO) : open(o.arg, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "gpu-stage: %s: %s\n", o.arg, strerror(errno));
		return GS_EXIT_FAIL;
	}
	const char *name = from_stdin ? "stdin" : o.arg;
	struct gs_err err = GS_ERR_INIT;
	enum gs_stage_result res = GS_STAGE_CREATED;
	_cleanup_free_ char *ver = NULL;
	if (gs_archive_import(o.store, fd, name, o.force, &ver, &res, &err) < 0) {
		fprintf(stderr, "gpu-stage: %s; nothing imported, %s unchanged\n", err.msg, o.store);
		return GS_EXIT_FAIL;
	}
	static const char *const what[] = {"imported", "replaced", "unchanged", "index rebuilt"};
	if (o.json) {
		_cleanup_(gs_json_decrefp) json_t *j =
			json_pack("{s:s, s:s, s:s, s:s}", "driver", ver, "store", o.store, "file",
				  name, "result", what[res]);
		return cli_flush_out(cli_emit_json(j));
	}
	printf("%s: driver %s in %s/%s (from %s)\n", what[res], ver, o.store, ver, name);
	return cli_flush_out(GS_EXIT_OK);
}
