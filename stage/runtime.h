/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage runtime configure: shared between the command (cmd_runtime.c)
 * and one planner per engine (runtime_docker.c, runtime_containerd.c,
 * runtime_hooksd.c).  A planner reads the engine's files and fills a plan
 * of changes (each file's whole new text, or a link to make or remove);
 * it writes nothing.  The command then shows the plan as a diff
 * (--dry-run) or carries it out: a backup of each file it replaces, each
 * write atomic (gs_write_atomic_at), mode and owner kept. */
#ifndef GS_STAGE_RUNTIME_H
#define GS_STAGE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "gs/err.h"

enum rt_engine {
	RT_DOCKER = 1,
	RT_CONTAINERD,
	RT_PODMAN,
	RT_CRIO,
};

#define RT_NAME_MAX 64          /* --name: [A-Za-z0-9_-], this many bytes at most */
#define RT_FILE_MAX (4u << 20)  /* an engine's config file larger than this is refused */
#define RT_BACKUP_SUFFIX ".gpu-stage.bak"
/* beside daemon.json: the "default-runtime" --set-default replaced, for --undo */
#define RT_DEFAULT_SUFFIX ".gpu-stage.default"
#define RT_NVIDIA_HOOK "nvidia-container-runtime-hook" /* Docker's name for --gpus */
/* each engine's file when --config names none */
#define RT_DOCKER_DEFAULT "/etc/docker/daemon.json"
#define RT_CONTAINERD_DEFAULT "/etc/containerd/config.toml"
#define RT_HOOKS_DIR_DEFAULT "/usr/share/containers/oci/hooks.d" /* Podman's and CRI-O's */

struct rt_opts {
	enum rt_engine engine;
	const char *engine_name; /* "docker", ... */
	const char *config;      /* --config, else the engine's default */
	const char *name;        /* --name (default gpu-stage) */
	bool set_default, gpus_flag, dry_run, undo, json, force;
	bool cdi;                /* docker: "features": {"cdi": true}, not the runtime */
	bool name_given;         /* --name was on the command line */
	char *bindir;            /* where this gpu-stage is installed (absolute) */
	char *runtime;           /* BINDIR/gpu-runtime */
	char *hook;              /* BINDIR/gpu-stage-hook */
	const char *gs_config;   /* GPU_STAGE_CONFIG, when set (absolute) */
};

enum rt_kind {
	RT_FILE, /* a regular file: NEW replaces OLD (or is created) */
	RT_LINK, /* a symlink PATH -> TARGET */
};

struct rt_change {
	enum rt_kind kind;
	char *path;       /* absolute, as written */
	bool existed;     /* PATH is there now */
	char *old;        /* RT_FILE: its text now (NULL when missing) */
	size_t old_len;
	bool remove;      /* delete PATH (its text or link now) */
	char *new;        /* RT_FILE: the text to write (NULL with remove) */
	size_t new_len;
	char *target;     /* RT_LINK: the link's target */
	mode_t mode;      /* RT_FILE: the mode to write (the old file's, else 0644) */
	bool no_backup;   /* RT_FILE: gpu-stage's own state, no PATH.gpu-stage.bak of it */
};

struct rt_plan {
	struct rt_change *ch;
	size_t n;
	char *summary;    /* "added runtime gpu-stage to /etc/docker/daemon.json" */
	char *unchanged;  /* what to say when nothing changes */
	const char *after; /* "restart dockerd", ... */
	char *notes[8];   /* extra lines (what a link shadows, ...) */
	size_t n_notes;
};

void rt_plan_clear(struct rt_plan *p);
/* Appends a change (taking ownership of nothing: strings are copied).
 * Returns the change, or NULL (out of memory, err set). */
struct rt_change *rt_plan_add(struct rt_plan *p, enum rt_kind kind, const char *path,
			      struct gs_err *err);
int rt_plan_note(struct rt_plan *p, struct gs_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int rt_set_text(char **dst, struct gs_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool rt_change_is_noop(const struct rt_change *c);
/* C replaces or removes a file whose old text is kept as PATH.gpu-stage.bak. */
bool rt_change_backs_up(const struct rt_change *c);

/* Reads PATH (at most RT_FILE_MAX bytes) into C->old; a missing PATH
 * leaves C->existed false.  C->mode becomes the file's mode (0644 when
 * missing).  A path that is not a regular file is refused. */
int rt_read_old(struct rt_change *c, struct gs_err *err);

/* A unified diff (diff -u, 3 lines of context) of OLD -> NEW, labelled
 * with the two names, written to F. */
int rt_diff(FILE *f, const char *old_name, const char *old, size_t old_len, const char *new_name,
	    const char *new, size_t new_len);

/* Line and column (1-based) of byte OFF in TEXT. */
void rt_line_col(const char *text, size_t len, size_t off, int *line, int *col);

/* containerd's config.toml, read line by line (runtime_containerd.c): where
 * the comment of the line [S, E) starts (E when none); -1 when a string
 * there is not closed or uses an escape (not read with certainty). */
long rt_toml_comment_at(const char *t, size_t s, size_t e);

/* containerd: gpu-stage's marked block in a main config.toml that
 * configures the CRI plugin itself (runtime_cblock.c). */
struct rt_cblock {
	bool found;        /* the block or a marked line was there */
	bool had_default;  /* ... and set default_runtime_name */
	bool had_replaced; /* ... by replacing the file's own line (kept as a comment) */
};
/* TEXT without the block for O->name and its marked lines: *OUT (a new
 * string), the file as it was before configure. */
int rt_cblock_strip(const struct rt_opts *o, const char *file, const char *text, size_t len,
		    char **out, size_t *out_len, struct rt_cblock *info, struct gs_err *err);
/* TEXT (without the block) with the block appended, and default_runtime_name
 * set as --set-default (or INFO: it was before) asks: *OUT.  Refused when
 * TEXT defines the handler already or cannot be read with certainty. */
int rt_cblock_add(const struct rt_opts *o, const char *file, const char *text, size_t len,
		  const struct rt_cblock *info, struct rt_plan *p, char **out, size_t *out_len,
		  struct gs_err *err);

/* What `gpu-stage info` reports of an engine: the planners run on its
 * file CONFIG (NULL: the default) for the entry "gpu-stage", nothing
 * written.  OURS: undo would change or remove something there; CURRENT:
 * configure would change nothing (it names the gpu-runtime or
 * gpu-stage-hook next to this gpu-stage); IS_DEFAULT (docker, containerd):
 * --set-default would change nothing either; CDI (docker): "features":
 * {"cdi": true} is set.  An entry of that name that is not gpu-stage's
 * counts as not ours; an unreadable file is an error. */
struct rt_probe {
	bool ours, current, is_default, cdi;
	const char *name; /* the runtime's name ours is registered under ("gpu-stage", "nvidia") */
};
int rt_probe(enum rt_engine e, const char *config, struct rt_probe *out, struct gs_err *err);

/* The planners. */
int rt_plan_docker(const struct rt_opts *o, struct rt_plan *p, struct gs_err *err);
int rt_plan_containerd(const struct rt_opts *o, struct rt_plan *p, struct gs_err *err);
int rt_plan_hooksd(const struct rt_opts *o, struct rt_plan *p, struct gs_err *err);

#endif
