/* SPDX-License-Identifier: Apache-2.0 */
/* The plan as text (dry run) and as JSON (audit record). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void describe_flags(FILE *f, unsigned int flags)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} names[] = {{OVL_F_OPTIONAL, "optional"},   {OVL_F_IF_EMPTY, "if-empty"},
		     {OVL_F_ANCHOR, "anchor"},       {OVL_F_BIND_CACHE, "bind-cache"},
		     {OVL_F_NO_MKDIR, "no-mkdir"}};
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

/* ---- JSON ------------------------------------------------------------------- */

static int set_new(json_t *o, const char *k, json_t *v)
{
	return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *files_json(const struct ovl_op *o, const struct gs_index *m)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < o->n_files; i++) {
		const struct gs_index_file *f = &m->files[o->files[i]];
		json_t *e = json_pack("{s:s, s:s, s:s, s:I}", "path", f->path, "source",
				      f->source ? f->source : "", "sha256", f->sha256, "size",
				      (json_int_t)f->size);
		if (json_array_append_new(a, e) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *entries_json(const struct ovl_op *o)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < o->n_entries; i++) {
		json_t *e = json_pack("{s:s, s:s}", "key", o->entries[i].key, "value",
				      o->entries[i].value);
		if (json_array_append_new(a, e) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
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

static int op_details(json_t *j, const struct ovl_op *o, const struct gs_index *m,
		      const char *verdir)
{
	char buf[32];
	switch (o->type) {
	case OVL_OP_BIND_DIR:
	case OVL_OP_BIND_FILE: {
		char *src = NULL; /* the store's path can be long: never cut short */
		if (asprintf(&src, "%s/%s", verdir, o->source) < 0)
			return -1;
		int r = set_new(j, "source", json_string(src));
		free(src);
		if (r < 0)
			return -1;
		if (o->type == OVL_OP_BIND_FILE && o->n_files == 1 &&
		    set_new(j, "sha256", json_string(m->files[o->files[0]].sha256)) < 0)
			return -1;
		return set_new(j, "files", files_json(o, m));
	}
	case OVL_OP_MKNOD:
		snprintf(buf, sizeof(buf), "c %u:%u", (unsigned int)o->major, (unsigned int)o->minor);
		return set_new(j, "device", json_string(buf));
	case OVL_OP_LDCACHE:
		return set_new(j, "entries", entries_json(o));
	case OVL_OP_WRITE_FILE:
		return set_new(j, "content", json_stringn(o->content, o->content_len));
	case OVL_OP_SYMLINK:
		return set_new(j, "target", json_string(o->source));
	case OVL_OP_TMPFS:
		return 0;
	}
	return 0;
}

static json_t *op_json(const struct ovl_op *o, const struct gs_index *m, const char *verdir,
		       const struct ovl_op_result *r)
{
	json_t *j = json_pack("{s:s, s:s}", "op", ovl_op_name(o->type), "destination", o->dest);
	if (!j || op_details(j, o, m, verdir) < 0)
		goto fail;
	if (r && set_new(j, "status", json_string(status_name(r->status))) < 0)
		goto fail;
	if (r && r->where[0] && set_new(j, "actual_destination", json_string(r->where)) < 0)
		goto fail;
	if (r && r->note[0] && set_new(j, "note", json_string(r->note)) < 0)
		goto fail;
	return j;
fail:
	json_decref(j);
	return NULL;
}

json_t *ovl_plan_json(const struct ovl_plan *p, const struct gs_index *manifest,
		      const char *verdir, const struct ovl_result *res)
{
	char caps[128];
	json_t *ops = json_array();
	for (size_t i = 0; ops && i < p->n_ops; i++) {
		const struct ovl_op_result *r = res && i < res->n_ops ? &res->ops[i] : NULL;
		if (json_array_append_new(ops, op_json(&p->ops[i], manifest, verdir, r)) < 0) {
			json_decref(ops);
			return NULL;
		}
	}
	if (!ops)
		return NULL;
	json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:o}", "driver", p->driver, "store", verdir,
			      "capabilities", gs_caps_format(p->caps, caps, sizeof(caps)),
			      "read_only_root", p->no_write, "operations", ops);
	if (j && res && res->ldcache[0] &&
	    set_new(j, "ldcache", json_string(res->ldcache)) < 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}
