/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage runtime configure: registers gpu-runtime (or gpu-stage-hook)
 * with a container engine by editing the engine's own configuration.  The
 * planners (runtime_*.c) say what each file becomes; this file shows that
 * as a diff (--dry-run) or does it: a backup of every file it replaces or
 * removes (FILE.gpu-stage.bak, the previous version), every write atomic
 * with the old mode and owner, nothing written when any check fails. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/jsonw.h"
#include "runtime.h"

static void usage(FILE *f)
{
	fputs("Usage: gpu-stage runtime configure --docker|--containerd|--podman|--crio\n"
	      "           [--config FILE] [--name NAME] [--set-default] [--gpus-flag]\n"
	      "           [--cdi] [--dry-run] [--undo] [--force] [--json]\n"
	      "\n"
	      "Registers gpu-stage with a container engine, in the engine's own\n"
	      "configuration (a backup of each file replaced: FILE" RT_BACKUP_SUFFIX "):\n"
	      "  --docker      daemon.json \"runtimes\": NAME runs gpu-runtime\n"
	      "                (FILE default /etc/docker/daemon.json)\n"
	      "  --containerd  a CRI runtime handler NAME (BinaryName gpu-runtime): in FILE\n"
	      "                (default /etc/containerd/config.toml) as a marked block when\n"
	      "                FILE configures the CRI plugin itself (Debian's does), else\n"
	      "                in the drop-in DIR/conf.d/gpu-stage.toml, imported by FILE\n"
	      "  --podman      the OCI hook file NAME.json in the hooks.d directory FILE\n"
	      "                (default /usr/share/containers/oci/hooks.d, Podman's default\n"
	      "                hooks_dir)\n"
	      "  --crio        the same for CRI-O (the same default)\n"
	      "\n"
	      "  --config FILE  the engine's file (a directory for --podman and --crio)\n"
	      "  --name NAME    the runtime's name (default gpu-stage; 'nvidia' for\n"
	      "                 scripts that say --runtime=nvidia)\n"
	      "  --set-default  make NAME the engine's default runtime (docker, containerd);\n"
	      "                 the default it replaces is kept for --undo to put back\n"
	      "  --gpus-flag    docker: also install nvidia-container-runtime-hook (a link\n"
	      "                 to gpu-stage-hook next to gpu-stage), which `docker run\n"
	      "                 --gpus` needs on dockerd's PATH; opt-in\n"
	      "  --cdi          docker: instead of the runtime, \"features\": {\"cdi\": true}\n"
	      "                 (Docker 25 to 28.1 read CDI specs only so); then write\n"
	      "                 the spec with `gpu-stage cdi`\n"
	      "  --dry-run      print the change as a unified diff, change nothing\n"
	      "  --undo         remove what configure added, nothing else\n"
	      "  --force        replace an entry of that name, or a default runtime, that\n"
	      "                 is not gpu-stage's\n"
	      "  --json         machine-readable result\n"
	      "\n"
	      "The paths written are the gpu-runtime and gpu-stage-hook installed next to\n"
	      "this gpu-stage.  See gpu-stage(1), RUNTIME CONFIGURE.\n",
	      f);
}

/* ---- the plan --------------------------------------------------------------- */

void rt_plan_clear(struct rt_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->ch[i].path);
		free(p->ch[i].old);
		free(p->ch[i].new);
		free(p->ch[i].target);
	}
	free(p->ch);
	free(p->summary);
	free(p->unchanged);
	for (size_t i = 0; i < p->n_notes; i++)
		free(p->notes[i]);
	*p = (struct rt_plan){0};
}

struct rt_change *rt_plan_add(struct rt_plan *p, enum rt_kind kind, const char *path,
			      struct gs_err *err)
{
	struct rt_change *v = realloc(p->ch, (p->n + 1) * sizeof(*v));
	if (!v) {
		gs_err_setx(err, ENOMEM, "out of memory");
		return NULL;
	}
	p->ch = v;
	struct rt_change *c = &v[p->n];
	*c = (struct rt_change){.kind = kind, .path = strdup(path), .mode = 0644};
	if (!c->path) {
		gs_err_setx(err, ENOMEM, "out of memory");
		return NULL;
	}
	p->n++;
	return c;
}

static int vset_text(char **dst, struct gs_err *err, const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	free(*dst);
	*dst = s;
	return 0;
}

int rt_set_text(char **dst, struct gs_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vset_text(dst, err, fmt, ap);
	va_end(ap);
	return r;
}

int rt_plan_note(struct rt_plan *p, struct gs_err *err, const char *fmt, ...)
{
	if (p->n_notes >= sizeof(p->notes) / sizeof(p->notes[0]))
		return gs_err_setx(err, E2BIG, "too many notes");
	va_list ap;
	va_start(ap, fmt);
	p->notes[p->n_notes] = NULL;
	int r = vset_text(&p->notes[p->n_notes], err, fmt, ap);
	va_end(ap);
	if (r == 0)
		p->n_notes++;
	return r;
}

bool rt_change_is_noop(const struct rt_change *c)
{
	if (c->remove)
		return !c->existed;
	if (c->kind == RT_LINK)
		return c->existed; /* the planner checked that it is ours */
	return c->existed && c->old_len == c->new_len && !memcmp(c->old, c->new, c->new_len);
}

bool rt_change_backs_up(const struct rt_change *c)
{
	return c->kind == RT_FILE && c->existed && !c->no_backup;
}

int rt_read_old(struct rt_change *c, struct gs_err *err)
{
	_cleanup_close_ int fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT) {
		c->existed = false;
		return 0;
	}
	if (fd < 0)
		return gs_err_set(err, errno, "%s", c->path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gs_err_set(err, errno, "%s", c->path);
	if (!S_ISREG(st.st_mode))
		return gs_err_setx(err, EINVAL, "%s: not a regular file", c->path);
	int r = gs_read_all_fd(fd, RT_FILE_MAX, c->path, &c->old, &c->old_len, err);
	if (r < 0)
		return r;
	c->existed = true;
	c->mode = st.st_mode & 07777;
	return 0;
}

void rt_line_col(const char *text, size_t len, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			++*line;
			*col = 1;
		} else {
			++*col;
		}
	}
}

/* ---- carrying it out ---------------------------------------------------------- */

/* DIR and the directories above it, 0755, when missing. */
static int mkdir_parents(const char *dir, struct gs_err *err)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return gs_err_setx(err, ENAMETOOLONG, "%s: path too long", dir);
	for (char *p = buf + 1;; p++) {
		bool end = *p == '\0';
		if (*p == '/' || end) {
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return gs_err_set(err, errno, "creating directory %s", buf);
			if (end)
				return 0;
			*p = '/';
		}
	}
}

/* The directory part of PATH opened O_PATH, and its last component. */
static int open_parent(const char *path, bool create, const char **base, struct gs_err *err)
{
	const char *slash = strrchr(path, '/');
	if (!slash || !slash[1])
		return gs_err_setx(err, EINVAL, "%s: not a file path", path);
	*base = slash + 1;
	_cleanup_free_ char *dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
	if (!dir)
		return gs_err_setx(err, ENOMEM, "out of memory");
	if (create) {
		int r = mkdir_parents(dir, err);
		if (r < 0)
			return r;
	}
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? gs_err_set(err, errno, "%s", dir) : fd;
}

static int write_backup(int dirfd, const char *base, const struct rt_change *c, struct gs_err *err)
{
	char name[NAME_MAX + 1];
	if (snprintf(name, sizeof(name), "%s" RT_BACKUP_SUFFIX, base) >= (int)sizeof(name))
		return gs_err_setx(err, ENAMETOOLONG, "%s: name too long for a backup", c->path);
	int r = gs_write_atomic_at(dirfd, name, c->old, c->old_len, c->mode,
				   GS_WRITE_FSYNC | GS_WRITE_FSYNC_DIR, err);
	return r < 0 ? gs_err_wrap(err, "backup of %s", c->path) : 0;
}

static int apply_one(const struct rt_change *c, struct gs_err *err)
{
	const char *base = NULL;
	_cleanup_close_ int dirfd = open_parent(c->path, !c->remove, &base, err);
	if (dirfd < 0)
		return dirfd;
	int r = 0;
	if (rt_change_backs_up(c))
		r = write_backup(dirfd, base, c, err);
	if (r < 0)
		return r;
	if (c->remove) {
		if (unlinkat(dirfd, base, 0) < 0 && errno != ENOENT)
			return gs_err_set(err, errno, "removing %s", c->path);
		return 0;
	}
	if (c->kind == RT_LINK) {
		if (symlinkat(c->target, dirfd, base) < 0)
			return gs_err_set(err, errno, "creating the link %s -> %s", c->path, c->target);
		return 0;
	}
	r = gs_write_atomic_at(dirfd, base, c->new, c->new_len, c->mode,
			       GS_WRITE_FSYNC | GS_WRITE_FSYNC_DIR | GS_WRITE_KEEP_OWNER, err);
	return r < 0 ? gs_err_wrap(err, "%s", c->path) : 0;
}

/* ---- showing it ------------------------------------------------------------------ */

static const char *action(const struct rt_change *c)
{
	if (rt_change_is_noop(c))
		return "unchanged";
	if (c->kind == RT_LINK)
		return c->remove ? "unlink" : "link";
	return c->remove ? "remove" : c->existed ? "modify" : "create";
}

static void show_diff(FILE *f, const struct rt_change *c)
{
	if (c->kind == RT_LINK) {
		fprintf(f, "%s symlink %s -> %s\n", c->remove ? "-" : "+", c->path, c->target);
		return;
	}
	rt_diff(f, c->existed ? c->path : "/dev/null", c->old, c->existed ? c->old_len : 0,
		c->remove ? "/dev/null" : c->path, c->new, c->remove ? 0 : c->new_len);
}

static char *diff_text(const struct rt_change *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	show_diff(f, c);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int report_json(const struct rt_opts *o, const struct rt_plan *p, bool changed,
		       struct gs_err *err)
{
	struct gs_jw w;
	int r = gs_jw_start(&w, err);
	if (r < 0)
		return r;
	gs_jw_object(&w, NULL);
	gs_jw_string(&w, "engine", o->engine_name);
	gs_jw_string(&w, "name", o->name);
	gs_jw_string(&w, "operation", o->undo ? "undo" : "configure");
	gs_jw_bool(&w, "dry_run", o->dry_run);
	gs_jw_bool(&w, "changed", changed);
	gs_jw_string(&w, "summary", changed ? p->summary : p->unchanged);
	gs_jw_string(&w, "after", changed && !o->dry_run ? p->after : NULL);
	gs_jw_array(&w, "changes");
	for (size_t i = 0; i < p->n; i++) {
		const struct rt_change *c = &p->ch[i];
		gs_jw_object(&w, NULL);
		gs_jw_string(&w, "path", c->path);
		gs_jw_string(&w, "action", action(c));
		if (c->kind == RT_LINK)
			gs_jw_string(&w, "target", c->target);
		bool backup = rt_change_backs_up(c) && !rt_change_is_noop(c);
		_cleanup_free_ char *bak = NULL;
		if (backup && asprintf(&bak, "%s" RT_BACKUP_SUFFIX, c->path) < 0)
			bak = NULL;
		gs_jw_string(&w, "backup", bak);
		if (o->dry_run && !rt_change_is_noop(c)) {
			_cleanup_free_ char *d = diff_text(c);
			gs_jw_string(&w, "diff", d);
		}
		gs_jw_end(&w);
	}
	gs_jw_end(&w);
	gs_jw_array(&w, "notes");
	for (size_t i = 0; i < p->n_notes; i++)
		gs_jw_string(&w, NULL, p->notes[i]);
	gs_jw_end(&w);
	gs_jw_end(&w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if ((r = gs_jw_finish(&w, &text, &len, err)) < 0)
		return r;
	fwrite(text, 1, len, stdout);
	putchar('\n');
	return 0;
}

static void report_text(const struct rt_opts *o, const struct rt_plan *p, bool changed)
{
	const char *e = o->engine_name;
	if (!changed) {
		printf("%s: %s: nothing to do\n", e, p->unchanged);
	} else if (o->dry_run) {
		for (size_t i = 0; i < p->n; i++)
			if (!rt_change_is_noop(&p->ch[i]))
				show_diff(stdout, &p->ch[i]);
		printf("%s: would have %s (dry run: nothing changed)\n", e, p->summary);
	} else {
		printf("%s: %s; %s\n", e, p->summary, p->after);
		for (size_t i = 0; i < p->n; i++) {
			const struct rt_change *c = &p->ch[i];
			if (rt_change_backs_up(c) && !rt_change_is_noop(c))
				printf("%s: the previous %s is kept as %s" RT_BACKUP_SUFFIX "\n", e,
				       c->path, c->path);
		}
	}
	for (size_t i = 0; i < p->n_notes; i++)
		printf("%s: note: %s\n", e, p->notes[i]);
}

/* ---- the command -------------------------------------------------------------------- */

static bool name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > RT_NAME_MAX)
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return false;
	return true;
}

static int set_engine(struct rt_opts *o, enum rt_engine e, const char *name)
{
	if (o->engine && o->engine != e) {
		fprintf(stderr, "gpu-stage: runtime configure: give one engine, not --%s and --%s\n",
			o->engine_name, name);
		return -1;
	}
	o->engine = e;
	o->engine_name = name;
	return 0;
}

/* -1 to go on, else the exit code. */
static int parse(int argc, char **argv, struct rt_opts *o)
{
	enum { O_DOCKER = 256, O_CONTAINERD, O_PODMAN, O_CRIO, O_SETDEF, O_GPUS, O_UNDO, O_CDI };
	static const struct option lo[] = {
		{"docker", no_argument, NULL, O_DOCKER},    {"containerd", no_argument, NULL, O_CONTAINERD},
		{"podman", no_argument, NULL, O_PODMAN},    {"crio", no_argument, NULL, O_CRIO},
		{"config", required_argument, NULL, 'c'},   {"name", required_argument, NULL, 'N'},
		{"set-default", no_argument, NULL, O_SETDEF}, {"gpus-flag", no_argument, NULL, O_GPUS},
		{"dry-run", no_argument, NULL, 'n'},        {"undo", no_argument, NULL, O_UNDO},
		{"force", no_argument, NULL, 'f'},          {"json", no_argument, NULL, 'j'},
		{"cdi", no_argument, NULL, O_CDI},          {"help", no_argument, NULL, 'h'},
		{0}};
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? GS_EXIT_USAGE : GS_EXIT_OK;
	}
	if (strcmp(argv[1], "configure")) {
		fprintf(stderr, "gpu-stage: runtime: unknown subcommand '%s' (see gpu-stage runtime --help)\n",
			argv[1]);
		return GS_EXIT_USAGE;
	}
	o->name = "gpu-stage";
	optind = 0;
	opterr = 0;
	int ch, bad = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, "h", lo, NULL)) != -1) {
		switch (ch) {
		case O_DOCKER: bad |= set_engine(o, RT_DOCKER, "docker"); break;
		case O_CONTAINERD: bad |= set_engine(o, RT_CONTAINERD, "containerd"); break;
		case O_PODMAN: bad |= set_engine(o, RT_PODMAN, "podman"); break;
		case O_CRIO: bad |= set_engine(o, RT_CRIO, "crio"); break;
		case 'c': o->config = optarg; break;
		case 'N': o->name = optarg; o->name_given = true; break;
		case O_SETDEF: o->set_default = true; break;
		case O_GPUS: o->gpus_flag = true; break;
		case 'n': o->dry_run = true; break;
		case O_UNDO: o->undo = true; break;
		case O_CDI: o->cdi = true; break;
		case 'f': o->force = true; break;
		case 'j': o->json = true; break;
		case 'h': usage(stdout); return GS_EXIT_OK;
		default:
			fprintf(stderr, "gpu-stage: runtime configure: unknown option or missing argument '%s' (see gpu-stage runtime --help)\n",
				argv[optind]); /* (argv + 1)[optind - 1] */
			return GS_EXIT_USAGE;
		}
	}
	if (bad)
		return GS_EXIT_USAGE;
	const char *why = NULL;
	if (optind != argc - 1)
		why = "takes no arguments besides its options";
	else if (!o->engine)
		why = "needs one of --docker, --containerd, --podman, --crio";
	else if (!name_ok(o->name))
		why = "--name takes 1 to 64 letters, digits, '_' or '-'";
	else if (o->gpus_flag && o->engine != RT_DOCKER)
		why = "--gpus-flag is for --docker only";
	else if (o->cdi && o->engine != RT_DOCKER)
		why = "--cdi is for --docker only (Podman reads CDI specs as they are: write one with gpu-stage cdi)";
	else if (o->cdi && (o->name_given || o->set_default || o->gpus_flag))
		why = "--cdi adds no runtime: give --name, --set-default and --gpus-flag in a run without --cdi";
	else if (o->set_default && (o->engine == RT_PODMAN || o->engine == RT_CRIO))
		why = "--set-default is for --docker and --containerd (a hooks.d hook has no default)";
	else if (o->config && !*o->config)
		why = "--config needs a path";
	if (why) {
		fprintf(stderr, "gpu-stage: runtime configure %s (see gpu-stage runtime --help)\n", why);
		return GS_EXIT_USAGE;
	}
	return -1;
}

/* BINDIR (this program's directory), gpu-runtime and gpu-stage-hook in it,
 * and the configuration file the user named (GPU_STAGE_CONFIG).  CHECK:
 * the program the engine will run must be there. */
static int locate(struct rt_opts *o, bool check, struct gs_err *err)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return gs_err_set(err, errno, "/proc/self/exe");
	if ((size_t)n >= sizeof(exe) - 1)
		return gs_err_setx(err, ENAMETOOLONG, "/proc/self/exe: path too long");
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return gs_err_setx(err, EINVAL, "/proc/self/exe: '%s' is not absolute", exe);
	*slash = '\0';
	o->bindir = strdup(exe[0] ? exe : "/");
	if (!o->bindir || asprintf(&o->runtime, "%s/gpu-runtime", o->bindir) < 0 ||
	    asprintf(&o->hook, "%s/gpu-stage-hook", o->bindir) < 0)
		return gs_err_setx(err, ENOMEM, "out of memory");
	/* the program the engine will run: the hook (hooks.d, or the CDI spec's hook), else the shim */
	const char *need = o->engine == RT_PODMAN || o->engine == RT_CRIO || o->cdi ? o->hook : o->runtime;
	if (check && !o->undo && access(need, X_OK) < 0)
		return gs_err_set(err, errno, "%s (installed next to gpu-stage, which writes its path)",
				  need);
	if (check && !o->undo && o->gpus_flag && access(o->hook, X_OK) < 0)
		return gs_err_set(err, errno, "%s (--gpus-flag links to it)", o->hook);
	const char *env = getenv(GS_CONFIG_ENV);
	if (env && *env) {
		if (env[0] != '/')
			return gs_err_setx(err, EINVAL,
					   "%s=%s: an absolute path is needed (the engine runs gpu-stage's programs elsewhere)",
					   GS_CONFIG_ENV, env);
		o->gs_config = env;
	}
	return 0;
}

/* GPU_STAGE_CONFIG reaches the hook through the hooks.d file and the CDI
 * spec; gpu-runtime under a daemon reads only the daemon's environment. */
static int note_config_env(const struct rt_opts *o, const char *unit, struct rt_plan *p,
			   struct gs_err *err)
{
	if (!o->gs_config || o->undo || o->cdi)
		return 0;
	return rt_plan_note(p, err,
			    "%s=%s holds in this shell only: gpu-runtime under %s reads %s unless the service has it too (systemctl edit %s: [Service] Environment=%s=%s)",
			    GS_CONFIG_ENV, o->gs_config, unit, GS_CONFIG_DEFAULT, unit, GS_CONFIG_ENV,
			    o->gs_config);
}

static int plan(const struct rt_opts *o, struct rt_plan *p, struct gs_err *err)
{
	int r;
	switch (o->engine) {
	case RT_DOCKER:
		r = rt_plan_docker(o, p, err);
		return r < 0 ? r : note_config_env(o, "docker", p, err);
	case RT_CONTAINERD:
		r = rt_plan_containerd(o, p, err);
		return r < 0 ? r : note_config_env(o, "containerd", p, err);
	case RT_PODMAN:
	case RT_CRIO: return rt_plan_hooksd(o, p, err);
	}
	return gs_err_setx(err, EINVAL, "no engine");
}

static int run(struct rt_opts *o, struct gs_err *err)
{
	struct rt_plan p = {0};
	int r = locate(o, true, err);
	if (r >= 0)
		r = plan(o, &p, err);
	if (r < 0) {
		rt_plan_clear(&p);
		return r;
	}
	bool changed = false;
	for (size_t i = 0; i < p.n; i++)
		changed = changed || !rt_change_is_noop(&p.ch[i]);
	for (size_t i = 0; r >= 0 && changed && !o->dry_run && i < p.n; i++)
		if (!rt_change_is_noop(&p.ch[i]))
			r = apply_one(&p.ch[i], err);
	if (r >= 0)
		r = o->json ? report_json(o, &p, changed, err) : (report_text(o, &p, changed), 0);
	rt_plan_clear(&p);
	return r;
}

/* ---- gpu-stage info ---------------------------------------------------------------- */

/* Whether the plan for O alters or removes anything that is there
 * (CHANGES; a file it would create from nothing does not count when
 * EXISTING_ONLY).  An entry of that name that is not gpu-stage's (EEXIST)
 * gives *CHANGES false, 1. */
static int plan_changes(const struct rt_opts *o, bool existing_only, bool *changes,
			struct gs_err *err)
{
	struct rt_plan p = {0};
	*changes = false;
	int r = plan(o, &p, err);
	for (size_t i = 0; r >= 0 && i < p.n; i++)
		if (!rt_change_is_noop(&p.ch[i]) && (p.ch[i].existed || !existing_only))
			*changes = true;
	rt_plan_clear(&p);
	if (r == -EEXIST) {
		gs_err_clear(err);
		*changes = existing_only ? false : true;
		return 1;
	}
	return r < 0 ? r : 0;
}

static int probe_as(enum rt_engine e, const char *config, const char *name,
		    struct rt_probe *out, struct gs_err *err)
{
	static const char *const names[] = {[RT_DOCKER] = "docker", [RT_CONTAINERD] = "containerd",
					    [RT_PODMAN] = "podman", [RT_CRIO] = "crio"};
	struct rt_opts o = {.engine = e, .engine_name = names[e], .config = config, .name = name};
	bool changes = false;
	*out = (struct rt_probe){.name = name};
	int r = locate(&o, false, err);
	if (r >= 0) { /* undo would take something away: gpu-stage's entry is there */
		o.undo = true;
		r = plan_changes(&o, true, &changes, err);
		out->ours = r == 0 && changes;
		o.undo = false;
	}
	if (r >= 0 && out->ours) { /* configure would leave it as it is: it is current */
		r = plan_changes(&o, false, &changes, err);
		out->current = r == 0 && !changes;
	}
	if (r >= 0 && out->ours && e != RT_PODMAN && e != RT_CRIO) {
		o.set_default = true;
		r = plan_changes(&o, false, &changes, err);
		out->is_default = r == 0 && !changes;
		o.set_default = false;
	}
	if (r >= 0 && e == RT_DOCKER) {
		o.cdi = true;
		r = plan_changes(&o, false, &changes, err);
		out->cdi = r == 0 && !changes;
	}
	free(o.bindir);
	free(o.runtime);
	free(o.hook);
	return r < 0 ? r : 0;
}

/* Under the default name, else "nvidia" (the name a host moving from
 * NVIDIA's toolkit keeps, `runtime configure --name nvidia`, so that
 * --runtime=nvidia goes on working). */
int rt_probe(enum rt_engine e, const char *config, struct rt_probe *out, struct gs_err *err)
{
	static const char *const names[] = {"gpu-stage", "nvidia"};
	int r = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct rt_probe p;
		if ((r = probe_as(e, config, names[i], &p, err)) < 0)
			return r;
		if (i == 0 || p.ours)
			*out = p;
		if (p.ours)
			break;
	}
	return 0;
}

int cmd_runtime(int argc, char **argv)
{
	struct rt_opts o = {0};
	int code = parse(argc, argv, &o);
	if (code >= 0)
		return code;
	struct gs_err err = GS_ERR_INIT;
	int r = run(&o, &err);
	free(o.bindir);
	free(o.runtime);
	free(o.hook);
	if (r < 0) {
		fprintf(stderr, "gpu-stage: %s: %s\n", o.engine_name, err.msg);
		return GS_EXIT_FAIL;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "gpu-stage: writing output: %s\n", strerror(errno));
		return GS_EXIT_FAIL;
	}
	return GS_EXIT_OK;
}
