/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage runtime configure's reading and editing of the engines' files
 * (stage/runtime_*.c): Docker's daemon.json, containerd's config.toml
 * (with its drop-in conf.d/gpu-stage.toml) and the hooks.d file, in a
 * scratch directory.  The input's first byte picks the engine and the
 * flags (--set-default, --cdi, --force); the rest up to "\n--dropin--\n"
 * is the engine's file, what follows the drop-in already there
 * (containerd) or daemon.json.gpu-stage.default, the default an earlier
 * --set-default replaced (Docker).  Each planned change is carried out as
 * the command does (the new text written, or the file removed).
 * Promises: a refusal names its reason; every change stays in the
 * config's directory; configure twice changes nothing the second time;
 * undo after configure gives back a file that held nothing of
 * gpu-stage's byte for byte, or removes what it made (Docker: the same
 * JSON, a blank file read as {}, "default-runtime" put back where
 * --set-default replaced it; an empty "runtimes" or "features" is not put
 * back, nor a default that already named gpu-stage, which gets the value
 * an earlier --set-default kept or goes).  containerd: a drop-in the main
 * file does not import is in effect for nothing, and an undo removes it. */
#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>

#include "../../stage/runtime.h"
#include "gs/fsx.h"
#include "fuzz_common.h"

static char dir[128], conf_d[160], dropin[200], saved_default[200];

enum { F_SET_DEFAULT = 1, F_CDI = 2, F_FORCE = 4 };

struct file {
	bool there;
	char *text;
	size_t len;
};

static void snap(const char *path, struct file *f)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct gs_err err = GS_ERR_INIT;
	*f = (struct file){0};
	if (fd < 0) {
		if (errno != ENOENT)
			abort();
		return;
	}
	if (gs_read_all_fd(fd, RT_FILE_MAX, path, &f->text, &f->len, &err) < 0)
		abort();
	f->there = true;
	close(fd);
}

static bool same(const struct file *a, const struct file *b)
{
	return a->there == b->there &&
	       (!a->there || (a->len == b->len && !memcmp(a->text, b->text, a->len)));
}

/* Docker: NOW is ORIG as JSON, but for an empty "runtimes" (dockerd reads
 * it as none; undo cannot tell it from the one configure made) and a
 * "default-runtime" that named gpu-stage already (undo gives it the value
 * SAVED, the daemon.json.gpu-stage.default there before, kept, or takes it
 * out: it names a runtime no longer there). */
static bool docker_undone(const struct rt_opts *o, const struct file *orig, const struct file *now,
			  const struct file *saved)
{
	if (o->engine != RT_DOCKER || !orig->there || !now->there)
		return false;
	size_t i = 0;
	while (i < orig->len && orig->text[i] && strchr(" \t\r\n", orig->text[i]))
		i++;
	/* a blank daemon.json reads as {} (runtime_docker.c): undo gives {} */
	json_t *a = i == orig->len ? json_object()
				   : json_loadb(orig->text, orig->len, JSON_REJECT_DUPLICATES, NULL);
	json_t *b = json_loadb(now->text, now->len, JSON_REJECT_DUPLICATES, NULL);
	json_t *s = saved->there ? json_loadb(saved->text, saved->len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	bool ok = a && b;
	/* an empty "runtimes" or "features": dockerd reads it as none, and undo
	 * cannot tell it from the one configure made */
	static const char *const empty_ok[] = {"runtimes", "features"};
	for (size_t k = 0; ok && k < 4; k++) { /* on both sides: undo may keep one too */
		json_t *side = k < 2 ? a : b, *o = json_object_get(side, empty_ok[k % 2]);
		if (json_is_object(o) && json_object_size(o) == 0)
			json_object_del(side, empty_ok[k % 2]);
	}
	const char *def = json_string_value(json_object_get(a, "default-runtime"));
	if (ok && def && !strcmp(def, o->name)) {
		json_t *back = json_object_get(s, "default-runtime");
		const char *by = json_string_value(json_object_get(s, "runtime"));
		if (back && by && !strcmp(by, o->name))
			json_object_set(a, "default-runtime", back);
		else
			json_object_del(a, "default-runtime");
	}
	ok = ok && json_equal(a, b);
	json_decref(a);
	json_decref(b);
	json_decref(s);
	return ok;
}

/* Plans O; applies the plan when APPLY.  Returns the planner's result;
 * *NOOP: every change is a no-op. */
static int plan(const struct rt_opts *o, bool apply, bool *noop)
{
	struct rt_plan p = {0};
	struct gs_err err = GS_ERR_INIT;
	int r;
	switch (o->engine) {
	case RT_DOCKER: r = rt_plan_docker(o, &p, &err); break;
	case RT_CONTAINERD: r = rt_plan_containerd(o, &p, &err); break;
	default: r = rt_plan_hooksd(o, &p, &err); break;
	}
	fz_refused(r, &err);
	*noop = true;
	for (size_t i = 0; r >= 0 && i < p.n; i++) {
		const struct rt_change *c = &p.ch[i];
		if (strncmp(c->path, dir, strlen(dir)) || c->path[strlen(dir)] != '/' || strstr(c->path, "/../"))
			abort(); /* a change outside the config's directory */
		if (c->kind == RT_LINK)
			abort(); /* no --gpus-flag here: no link */
		if (rt_change_is_noop(c))
			continue;
		*noop = false;
		if (!apply)
			continue;
		if (c->remove) {
			if (unlink(c->path) < 0)
				abort();
		} else {
			fz_write(c->path, c->new, c->new_len);
		}
	}
	rt_plan_clear(&p);
	return r;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/etc", fz_scratch());
	snprintf(conf_d, sizeof(conf_d), "%s/conf.d", dir);
	snprintf(dropin, sizeof(dropin), "%s/gpu-stage.toml", conf_d);
	snprintf(saved_default, sizeof(saved_default), "%s/daemon.json" RT_DEFAULT_SUFFIX, dir);
	if (mkdir(dir, 0755) < 0 || mkdir(conf_d, 0755) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		setup();
	if (size < 1)
		return 0;
	unsigned int flags = data[0] >> 2;
	enum rt_engine engine = (data[0] & 3) == 0 ? RT_DOCKER : (data[0] & 3) == 1 ? RT_CONTAINERD : RT_PODMAN;
	const uint8_t *rest;
	size_t len, rest_len;
	fz_split(data + 1, size - 1, "\n--dropin--\n", &len, &rest, &rest_len);
	char file[200], hook_file[200];
	snprintf(file, sizeof(file), "%s/%s", dir, engine == RT_DOCKER ? "daemon.json" : "config.toml");
	snprintf(hook_file, sizeof(hook_file), "%s/gpu-stage.json", dir);
	const char *main_file = engine == RT_PODMAN ? hook_file : file;
	unlink(file);
	unlink(dropin);
	unlink(hook_file);
	unlink(saved_default);
	fz_write(main_file, data + 1, len);
	if (rest_len || rest != data + size)
		fz_write(engine == RT_DOCKER ? saved_default : dropin, rest, rest_len);
	struct rt_opts o = {
		.engine = engine,
		.engine_name = engine == RT_DOCKER ? "docker" : engine == RT_CONTAINERD ? "containerd" : "podman",
		.config = engine == RT_PODMAN ? dir : file,
		.name = "gpu-stage",
		/* only what the command's option checks let through (cmd_runtime.c):
		 * --cdi and --set-default for docker alone, --cdi without --set-default */
		.set_default = (flags & F_SET_DEFAULT) && engine != RT_PODMAN &&
			       !(engine == RT_DOCKER && (flags & F_CDI)),
		.cdi = engine == RT_DOCKER && (flags & F_CDI),
		.force = flags & F_FORCE,
		.bindir = "/usr/bin",
		.runtime = "/usr/bin/gpu-runtime",
		.hook = "/usr/bin/gpu-stage-hook",
	};
	struct file orig, orig_dropin, orig_saved, now, now_dropin;
	snap(main_file, &orig);
	snap(dropin, &orig_dropin);
	snap(saved_default, &orig_saved);
	bool noop, clean = false;
	o.undo = true;
	clean = plan(&o, false, &noop) >= 0 && noop; /* nothing of gpu-stage's there */
	o.undo = false;
	if (plan(&o, true, &noop) >= 0) {
		if (plan(&o, false, &noop) < 0 || !noop)
			abort(); /* configure after configure changes something */
		o.undo = true;
		o.set_default = false;
		if (clean && plan(&o, true, &noop) >= 0) {
			snap(main_file, &now);
			snap(dropin, &now_dropin);
			if (!(same(&orig, &now) || docker_undone(&o, &orig, &now, &orig_saved)) ||
			    (engine == RT_CONTAINERD && !same(&orig_dropin, &now_dropin)))
				abort(); /* undo did not give back the file as it was */
			free(now.text);
			free(now_dropin.text);
		}
	}
	free(orig.text);
	free(orig_dropin.text);
	free(orig_saved.text);
	return 0;
}
