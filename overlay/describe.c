/* SPDX-License-Identifier: Apache-2.0 */
/* The plan as text (dry run) and as JSON (audit record). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static void describe_flags(FILE *f, unsigned int flags)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} names[] = {{OVL_F_OPTIONAL, "optional"},   {OVL_F_IF_EMPTY, "if-empty"},
		     {OVL_F_ANCHOR, "anchor"},       {OVL_F_BIND_CACHE, "bind-cache"},
		     {OVL_F_NO_MKDIR, "no-mkdir"},   {OVL_F_RW, "read-write"}};
	bool first = true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(flags & names[i].bit))
			continue;
		fprintf(f, "%s%s", first ? " [" : ",", names[i].name);
		first = false;
	}
	if (!first)
		fputc(']', f);
}

static void describe_op(FILE *f, const struct ovl_op *o, const char *verdir)
{
	fprintf(f, "%-10s ", ovl_op_name(o->type));
	switch (o->type) {
	case OVL_OP_TMPFS:
		fprintf(f, "%s (mode %04o, nosuid,nodev,noexec, read-only once filled)", o->dest,
			(unsigned int)o->mode);
		break;
	case OVL_OP_BIND_DIR:
	case OVL_OP_BIND_FILE:
		fprintf(f, "%s/%s -> %s (ro,nosuid,nodev; %zu file%s)", verdir, o->source, o->dest,
			o->n_files, o->n_files == 1 ? "" : "s");
		break;
	case OVL_OP_MKNOD:
		fprintf(f, "%s (char %u:%u, mode %04o; device cgroup allow rwm)", o->dest,
			(unsigned int)o->major, (unsigned int)o->minor, (unsigned int)o->mode);
		break;
	case OVL_OP_LDCACHE:
		fprintf(f, "%s += %zu entr%s", o->dest, o->n_entries, o->n_entries == 1 ? "y" : "ies");
		for (size_t i = 0; i < o->n_entries; i++)
			fprintf(f, "\n           %s => %s", o->entries[i].key, o->entries[i].value);
		break;
	case OVL_OP_WRITE_FILE:
		fprintf(f, "%s (%zu bytes, mode %04o)", o->dest, o->content_len, (unsigned int)o->mode);
		break;
	case OVL_OP_SYMLINK:
		fprintf(f, "%s -> %s", o->dest, o->source);
		break;
	case OVL_OP_BIND_HOST:
		fprintf(f, "host %s %s -> %s (%s,nosuid,nodev,noexec)",
			S_ISDIR(o->mode) ? "directory" : "socket", o->source, o->dest,
			(o->flags & OVL_F_RW) ? "rw" : "ro");
		break;
	}
	describe_flags(f, o->flags);
	fputc('\n', f);
}

char *ovl_plan_describe(const struct ovl_plan *p, const char *verdir)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	char caps[128];
	fprintf(f, "driver %s, capabilities %s, %s root, %zu operation%s\n", p->driver,
		gs_caps_format(p->caps, caps, sizeof(caps)), p->no_write ? "read-only" : "writable",
		p->n_ops, p->n_ops == 1 ? "" : "s");
	for (size_t i = 0; i < p->n_ops; i++)
		describe_op(f, &p->ops[i], verdir);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* ---- JSON (the audit record) ---------------------------------------------------- */

static void files_json(struct gs_jw *w, const struct ovl_op *o, const struct gs_index *m)
{
	gs_jw_array(w, "files");
	for (size_t i = 0; i < o->n_files; i++) {
		const struct gs_index_file *f = &m->files[o->files[i]];
		gs_jw_object(w, NULL);
		gs_jw_string(w, "path", f->path);
		gs_jw_string(w, "source", f->source);
		gs_jw_string(w, "sha256", f->sha256);
		gs_jw_int(w, "size", (long long)f->size);
		gs_jw_end(w);
	}
	gs_jw_end(w);
}

static void entries_json(struct gs_jw *w, const struct ovl_op *o)
{
	gs_jw_array(w, "entries");
	for (size_t i = 0; i < o->n_entries; i++) {
		gs_jw_object(w, NULL);
		gs_jw_string(w, "key", o->entries[i].key);
		gs_jw_string(w, "value", o->entries[i].value);
		gs_jw_end(w);
	}
	gs_jw_end(w);
}

static const char *status_name(enum ovl_status s)
{
	switch (s) {
	case OVL_PENDING:
		return "not-run";
	case OVL_APPLIED:
		return "applied";
	case OVL_SKIPPED:
		return "skipped";
	case OVL_FAILED:
		return "failed";
	}
	return "unknown";
}

static void op_details(struct gs_jw *w, const struct ovl_op *o, const struct gs_index *m,
		       const char *verdir)
{
	char buf[32];
	switch (o->type) {
	case OVL_OP_BIND_DIR:
	case OVL_OP_BIND_FILE: {
		char *src = NULL; /* the store's path can be long: never cut short */
		if (asprintf(&src, "%s/%s", verdir, o->source) < 0) {
			w->failed = true;
			break;
		}
		gs_jw_string(w, "source", src);
		free(src);
		if (o->type == OVL_OP_BIND_FILE && o->n_files == 1)
			gs_jw_string(w, "sha256", m->files[o->files[0]].sha256);
		files_json(w, o, m);
		break;
	}
	case OVL_OP_MKNOD:
		snprintf(buf, sizeof(buf), "c %u:%u", (unsigned int)o->major, (unsigned int)o->minor);
		gs_jw_string(w, "device", buf);
		break;
	case OVL_OP_LDCACHE:
		entries_json(w, o);
		break;
	case OVL_OP_WRITE_FILE:
		gs_jw_stringn(w, "content", o->content, o->content_len);
		break;
	case OVL_OP_SYMLINK:
		gs_jw_string(w, "target", o->source);
		break;
	case OVL_OP_BIND_HOST:
		gs_jw_string(w, "source", o->source);
		gs_jw_string(w, "kind", S_ISDIR(o->mode) ? "directory" : "socket");
		gs_jw_bool(w, "read_only", !(o->flags & OVL_F_RW));
		break;
	case OVL_OP_TMPFS:
		break;
	}
}

void ovl_plan_write(struct gs_jw *w, const char *key, const struct ovl_plan *p,
		    const struct gs_index *index, const char *verdir, const struct ovl_result *res)
{
	char caps[128];
	gs_jw_object(w, key);
	gs_jw_string(w, "driver", p->driver);
	gs_jw_string(w, "store", verdir);
	gs_jw_string(w, "capabilities", gs_caps_format(p->caps, caps, sizeof(caps)));
	gs_jw_bool(w, "read_only_root", p->no_write);
	gs_jw_array(w, "operations");
	for (size_t i = 0; i < p->n_ops; i++) {
		const struct ovl_op *o = &p->ops[i];
		const struct ovl_op_result *r = res && i < res->n_ops ? &res->ops[i] : NULL;
		gs_jw_object(w, NULL);
		gs_jw_string(w, "op", ovl_op_name(o->type));
		gs_jw_string(w, "destination", o->dest);
		op_details(w, o, index, verdir);
		if (r) {
			gs_jw_string(w, "status", status_name(r->status));
			if (r->where[0])
				gs_jw_string(w, "actual_destination", r->where);
			if (r->note[0])
				gs_jw_string(w, "note", r->note);
		}
		gs_jw_end(w);
	}
	gs_jw_end(w);
	if (res && res->ldcache[0])
		gs_jw_string(w, "ldcache", res->ldcache);
	if (res && res->cuda_compat[0])
		gs_jw_string(w, "cuda_compat", res->cuda_compat);
	if (res && res->glibc[0])
		gs_jw_string(w, "glibc", res->glibc);
	gs_jw_end(w);
}
