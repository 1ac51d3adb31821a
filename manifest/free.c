/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>

#include "gs/manifest.h"

static void strv_free_n(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void gs_manifest_free(struct gs_manifest *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_files; i++) {
		struct gs_file *f = &p->files[i];
		free(f->path);
		free(f->source);
		free(f->soname);
		free(f->evidence);
		strv_free_n(f->needed, f->n_needed);
	}
	free(p->files);
	for (size_t i = 0; i < p->n_links; i++) {
		free(p->links[i].path);
		free(p->links[i].target);
	}
	free(p->links);
	strv_free_n(p->warnings, p->n_warnings);
	free(p->driver);
	free(p->arch);
	free(p->root);
	free(p);
}
