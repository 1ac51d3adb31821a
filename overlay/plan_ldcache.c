/* SPDX-License-Identifier: Apache-2.0 */
/* The cache part of the plan: the ld.so.cache entries of the staged
 * library directories the container receives, taken from the index
 * (computed at staging time from the manifest's SONAMEs and links, as
 * ldconfig keys them, and already sorted: no ELF file is read and nothing
 * is sorted at container start), and the ld.so.conf.d entry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs/ldcache.h"
#include "internal.h"


/* The entries of the bound library directory OP (source lib/<cap> or
 * lib32/<cap>), from the index: already in ldconfig's order, so the
 * cache's entries, gathered for the bound directories in index order, are
 * still sorted.  The value is the path inside the container. */
static int dir_entries(struct ovl_op *cache, const struct ovl_op *op,
		       const struct gs_index_entry *e)
{
	if (strcmp(e->dir, op->source))
		return 0;
	struct ovl_cache_entry *v = realloc(cache->entries, (cache->n_entries + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	cache->entries = v;
	struct ovl_cache_entry *c = &v[cache->n_entries];
	c->flags = e->flags;
	c->glibc = e->glibc;
	c->key = strdup(e->key);
	if (asprintf(&c->value, "%s/%s", op->dest, e->file) < 0)
		c->value = NULL;
	if (!c->key || !c->value) {
		free(c->key);
		free(c->value);
		return -ENOMEM;
	}
	cache->n_entries++;
	return 1;
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

int ovl_plan_add_ldcache(struct ovl_plan *p, const struct gs_index *m, bool no_write,
			 struct gs_err *err)
{
	struct ovl_op cache = {.type = OVL_OP_LDCACHE,
			       .flags = no_write ? OVL_F_BIND_CACHE : 0};
	bool any = false;
	for (size_t i = 0; i < p->n_ops; i++) {
		const struct ovl_op *op = &p->ops[i];
		any |= op->type == OVL_OP_BIND_DIR &&
		       (!strncmp(op->source, "lib/", 4) || !strncmp(op->source, "lib32/", 6));
	}
	/* index order (sorted) outside, bound directories inside: the
	 * entries come out sorted; each directory is bound once */
	for (size_t k = 0; any && k < m->n_cache; k++) {
		for (size_t i = 0; i < p->n_ops; i++) {
			const struct ovl_op *op = &p->ops[i];
			if (op->type != OVL_OP_BIND_DIR)
				continue;
			int r = dir_entries(&cache, op, &m->cache[k]);
			if (r < 0)
				goto nomem;
			if (r > 0)
				break;
		}
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
