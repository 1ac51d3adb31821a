/* SPDX-License-Identifier: Apache-2.0 */
/* The cache part of the plan: which ld.so.cache entries the staged library
 * directories give, keyed as ldconfig keys them, computed from the
 * manifest's SONAMEs and links (no ELF file is read at container start). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs/ldcache.h"
#include "internal.h"

#define FLAGS_X8664 (LDC_FLAG_X8664_LIB64 | LDC_FLAG_ELF_LIBC6)
#define FLAGS_I386 LDC_FLAG_ELF_LIBC6
#define MAX_LINK_HOPS 8

bool ovl_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n > 0 && n <= 255 && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static bool dso_name(const char *n)
{
	return (!strncmp(n, "lib", 3) && strstr(n, ".so")) || !strncmp(n, "ld-", 3);
}

/* Index of the manifest file DIR/NAME, following links inside DIR;
 * -1 when there is none or the chain leaves DIR. */
static ssize_t resolve_in_dir(const struct gs_manifest *m, const char *dir, const char *name)
{
	char path[1400];
	for (int hop = 0; hop < MAX_LINK_HOPS; hop++) {
		if (!ovl_name_ok(name))
			return -1;
		int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (n < 0 || (size_t)n >= sizeof(path))
			return -1; /* no such file: never a shortened name */
		for (size_t i = 0; i < m->n_files; i++)
			if (!strcmp(m->files[i].path, path))
				return (ssize_t)i;
		const char *next = NULL;
		for (size_t i = 0; i < m->n_links && !next; i++)
			if (!strcmp(m->links[i].path, path))
				next = m->links[i].target;
		if (!next)
			return -1;
		name = next;
	}
	return -1;
}

static bool exists_in_dir(const struct gs_manifest *m, const char *dir, const char *name)
{
	return resolve_in_dir(m, dir, name) >= 0;
}

static int push_entry(struct ovl_op *o, const char *key, const char *dir, const char *file,
		      int32_t flags)
{
	for (size_t i = 0; i < o->n_entries; i++) {
		const char *v = o->entries[i].value;
		size_t dl = strlen(dir);
		if (!strcmp(o->entries[i].key, key) && !strncmp(v, dir, dl) && v[dl] == '/')
			return 0; /* one entry per key and directory, as ldconfig */
	}
	struct ovl_cache_entry *v = realloc(o->entries, (o->n_entries + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	o->entries = v;
	struct ovl_cache_entry *e = &v[o->n_entries];
	e->flags = flags;
	e->key = strdup(key);
	if (asprintf(&e->value, "%s/%s", dir, file) < 0)
		e->value = NULL;
	if (!e->key || !e->value) {
		free(e->key);
		free(e->value);
		return -ENOMEM;
	}
	o->n_entries++;
	return 0;
}

/* Entries for the libraries of one bound directory OP (source lib/<cap>). */
static int dir_entries(struct ovl_op *cache, const struct ovl_op *op, const struct gs_manifest *m,
		       int32_t flags)
{
	for (size_t k = 0; k < op->n_files; k++) {
		const struct gs_file *f = &m->files[op->files[k]];
		const char *name = base_name(f->path);
		if (!dso_name(name) || (f->kind != GS_KIND_LIB && f->kind != GS_KIND_LIB32))
			continue;
		const char *key = f->soname && ovl_name_ok(f->soname) ? f->soname : name;
		const char *file = exists_in_dir(m, op->source, key) ? key : name;
		if (push_entry(cache, key, op->dest, file, flags) < 0)
			return -ENOMEM;
	}
	/* development links: "libcuda.so" -> ... -> a library whose SONAME
	 * starts with the link's name keeps its own entry */
	size_t sl = strlen(op->source);
	for (size_t i = 0; i < m->n_links; i++) {
		const char *path = m->links[i].path;
		const char *name = base_name(path);
		size_t nl = strlen(name);
		if (strncmp(path, op->source, sl) || path[sl] != '/' || strchr(path + sl + 1, '/') ||
		    nl < 4 || strcmp(name + nl - 3, ".so"))
			continue;
		ssize_t t = resolve_in_dir(m, op->source, name);
		if (t < 0 || !m->files[t].soname || strncmp(name, m->files[t].soname, nl) ||
		    !strcmp(name, m->files[t].soname))
			continue;
		if (push_entry(cache, name, op->dest, name, flags) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int add_conf(struct ovl_plan *p, size_t cache_idx, struct gs_err *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return gs_err_setx(err, ENOMEM, "building the plan: out of memory");
	fputs("# Written by gpu-stage-hook at container start: the staged NVIDIA driver\n"
	      "# libraries, listed first so that ldconfig keeps them ahead of stubs.\n",
	      f);
	for (size_t i = 0; i < cache_idx; i++)
		if (p->ops[i].type == OVL_OP_BIND_DIR && !strncmp(p->ops[i].source, "lib", 3))
			fprintf(f, "%s\n", p->ops[i].dest);
	if (fclose(f) != 0) {
		free(text);
		return gs_err_setx(err, ENOMEM, "building the plan: out of memory");
	}
	struct ovl_op *ops = realloc(p->ops, (p->n_ops + 1) * sizeof(*ops));
	if (!ops) {
		free(text);
		return gs_err_setx(err, ENOMEM, "building the plan: out of memory");
	}
	p->ops = ops;
	struct ovl_op *o = &ops[p->n_ops];
	memset(o, 0, sizeof(*o));
	o->type = OVL_OP_WRITE_FILE;
	o->flags = OVL_F_OPTIONAL | OVL_F_NO_MKDIR;
	o->dest = strdup(OVL_CONF_DIR "/" OVL_CONF_NAME);
	o->content = text;
	o->content_len = len;
	o->mode = 0644;
	if (!o->dest) {
		free(text);
		return gs_err_setx(err, ENOMEM, "building the plan: out of memory");
	}
	p->n_ops++;
	return 0;
}

int ovl_plan_add_ldcache(struct ovl_plan *p, const struct gs_manifest *m, bool no_write,
			 struct gs_err *err)
{
	struct ovl_op cache = {.type = OVL_OP_LDCACHE,
			       .flags = no_write ? OVL_F_BIND_CACHE : 0};
	bool any = false;
	for (size_t i = 0; i < p->n_ops; i++) {
		const struct ovl_op *op = &p->ops[i];
		if (op->type != OVL_OP_BIND_DIR)
			continue;
		bool lib = !strncmp(op->source, "lib/", 4), lib32 = !strncmp(op->source, "lib32/", 6);
		if (!lib && !lib32)
			continue;
		any = true;
		if (dir_entries(&cache, op, m, lib ? FLAGS_X8664 : FLAGS_I386) < 0)
			goto nomem;
	}
	if (!any)
		return 0;
	struct ovl_op *ops = realloc(p->ops, (p->n_ops + 1) * sizeof(*ops));
	if (!ops || !(cache.dest = strdup(OVL_LDCACHE))) {
		if (ops)
			p->ops = ops;
		goto nomem;
	}
	p->ops = ops;
	ops[p->n_ops++] = cache;
	return no_write ? 0 : add_conf(p, p->n_ops - 1, err);
nomem:
	for (size_t j = 0; j < cache.n_entries; j++) {
		free(cache.entries[j].key);
		free(cache.entries[j].value);
	}
	free(cache.entries);
	return gs_err_setx(err, ENOMEM, "building the plan: out of memory");
}
