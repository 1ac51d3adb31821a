/* SPDX-License-Identifier: Apache-2.0 */
/* Host sources: every staged directory or file a plan binds, opened inside
 * STORE/VER only (no symlink, no "..", no other mount) and cloned into a
 * detached read-only mount before the container's namespace is entered. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "internal.h"

struct ovl_sources {
	size_t n;
	int *tree;       /* detached clone per op, -1 when the op binds nothing */
	struct stat *st; /* the source as opened, to check the mount afterwards */
};

void ovl_sources_free(struct ovl_sources *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->tree[i] >= 0)
			close(s->tree[i]);
	free(s->tree);
	free(s->st);
	free(s);
}

int ovl_sources_tree(struct ovl_sources *s, size_t i)
{
	return s && i < s->n ? s->tree[i] : -1;
}

const struct stat *ovl_sources_stat(struct ovl_sources *s, size_t i)
{
	return s && i < s->n ? &s->st[i] : NULL;
}

static int open_source(int verfd, const char *verdir, const struct ovl_op *o, struct stat *st,
		       struct gs_err *err)
{
	uint64_t resolve = RESOLVE_NO_XDEV;
	int fd = gs_open_beneath(verfd, o->source, O_PATH, resolve);
	if (fd < 0 && errno == ENOSYS)
		return gs_err_set(err, errno,
				  "%s/%s: openat2 with RESOLVE_BENEATH is unavailable (Linux >= 5.6 needed); refusing to open the store's files without it",
				  verdir, o->source);
	if (fd < 0)
		return gs_err_set(err, errno, "%s/%s", verdir, o->source);
	_cleanup_close_ int f = (int)fd;
	if (fstat(f, st) < 0)
		return gs_err_set(err, errno, "%s/%s", verdir, o->source);
	bool dir = o->type == OVL_OP_BIND_DIR;
	if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
		return gs_err_setx(err, EINVAL, "%s/%s: not a %s in the store", verdir, o->source,
				   dir ? "directory" : "regular file");
	char what[1400];
	snprintf(what, sizeof(what), "%s/%s", verdir, o->source);
	return ovl_clone_ro(f, what, err);
}

/* A host source (BIND_HOST): opened with no symlink followed anywhere in
 * its path, checked to be the directory or socket the plan says, cloned
 * nosuid,nodev,noexec (and read-only unless OVL_F_RW).  -ENOENT and the
 * like leave the optional op without a tree: it is skipped, with a note. */
static int open_host(const struct ovl_op *o, struct stat *st, struct gs_err *err)
{
	_cleanup_close_ int f = ovl_host_open(o->source);
	if (f < 0)
		return gs_err_set(err, errno, "%s (no symlink followed)", o->source);
	if (fstat(f, st) < 0)
		return gs_err_set(err, errno, "%s", o->source);
	if ((st->st_mode & S_IFMT) != (o->mode & S_IFMT))
		return gs_err_setx(err, EINVAL, "%s: not a %s any more", o->source,
				   S_ISDIR(o->mode) ? "directory" : "socket");
	uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC |
			 ((o->flags & OVL_F_RW) ? 0 : MOUNT_ATTR_RDONLY);
	return ovl_clone(f, attrs, o->source, err);
}

int ovl_sources_open(const struct ovl_plan *p, int verfd, const char *verdir,
		     struct ovl_sources **out, struct gs_err *err)
{
	_cleanup_(ovl_sources_freep) struct ovl_sources *s = calloc(1, sizeof(*s));
	if (!s || !(s->tree = malloc((p->n_ops + 1) * sizeof(int))) ||
	    !(s->st = calloc(p->n_ops + 1, sizeof(struct stat))))
		return gs_err_setx(err, ENOMEM, "opening sources: out of memory");
	for (size_t i = 0; i < p->n_ops; i++)
		s->tree[i] = -1;
	s->n = p->n_ops;
	for (size_t i = 0; i < p->n_ops; i++) {
		const struct ovl_op *o = &p->ops[i];
		if (o->type == OVL_OP_BIND_HOST) {
			struct gs_err e = GS_ERR_INIT;
			s->tree[i] = open_host(o, &s->st[i], &e); /* gone meanwhile: skipped */
			continue;
		}
		if (o->type != OVL_OP_BIND_DIR && o->type != OVL_OP_BIND_FILE)
			continue;
		int t = open_source(verfd, verdir, o, &s->st[i], err);
		if (t < 0)
			return t;
		s->tree[i] = t;
	}
	*out = steal_ptr(&s);
	return 0;
}
