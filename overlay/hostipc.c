/* SPDX-License-Identifier: Apache-2.0 */
/* The host's IPC paths a GPU container may receive (ovl_host_ipc_find):
 * what libnvidia-container mounts for utility/compute — the MPS control
 * daemon's pipe and log directories, nvidia-persistenced's and fabric
 * manager's sockets — each only when present and as expected. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/manifest.h"
#include "gs/overlay.h"

#define MPS_CONTROL "control" /* the control daemon's socket in its pipe directory */
#define HOST_PATH_MAX 4096

int ovl_host_open(const char *host)
{
	long fd = gs_sys_openat2(AT_FDCWD, host, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0,
				 RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	return fd < 0 ? -1 : (int)fd;
}

void ovl_host_binds_free(struct ovl_host_bind *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].host);
		free(v[i].dest);
	}
	free(v);
}

struct want {
	const char *what; /* in notes */
	const char *path; /* inside the container, and under the host root */
	bool dir, rw;
	unsigned int caps;
};

struct found {
	struct ovl_host_bind *v;
	size_t n;
	char *note;
	struct gs_err *err;
};

static int note(struct found *f, const char *what, const char *host, const char *why)
{
	char *n = NULL;
	if (asprintf(&n, "%s%s%s %s: %s", f->note ? f->note : "", f->note ? "; " : "", what, host,
		     why) < 0)
		return gs_err_setx(f->err, ENOMEM, "out of memory");
	free(f->note);
	f->note = n;
	return 0;
}

/* Why directory FD (ST) may not be an MPS pipe directory, or NULL. */
static const char *mps_refusal(int fd, const struct stat *st)
{
	struct stat c;
	if (fstatat(fd, MPS_CONTROL, &c, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(c.st_mode))
		return "no " MPS_CONTROL " socket in it (no MPS control daemon runs): not bound";
	/* the default lies in the host's /tmp, where any user may make it:
	 * every GPU container's CUDA calls would go to that user's daemon */
	if (st->st_mode & (S_IWOTH | S_IWGRP))
		return "writable by others: not bound";
	if (st->st_uid != 0 || c.st_uid != 0)
		return "not root's (it or its control socket): an MPS daemon of another user is never bound: not bound";
	return NULL;
}

/* Why HOST may not be bound as W, or NULL (HOST fits). */
static const char *refusal(const struct want *w, const char *host, bool *absent)
{
	*absent = false;
	_cleanup_close_ int fd = ovl_host_open(host);
	struct stat st;
	if (fd < 0 && errno == ENOENT) {
		*absent = true;
		return "absent";
	}
	if (fd < 0)
		return errno == ELOOP ? "a symlink is in its path (never followed): not bound"
				      : "cannot be opened: not bound";
	if (fstat(fd, &st) < 0)
		return "cannot be read: not bound";
	if (S_ISLNK(st.st_mode))
		return "a symlink (never followed): not bound";
	if (w->dir && !S_ISDIR(st.st_mode))
		return "not a directory: not bound";
	if (!w->dir && !S_ISSOCK(st.st_mode))
		return "not a unix socket: not bound";
	if (w->dir && w->rw)
		return mps_refusal(fd, &st);
	return NULL;
}

static int take(struct found *f, const struct want *w, const char *host_root)
{
	char host[HOST_PATH_MAX + 1];
	bool root = !strcmp(host_root, "/");
	if (w->path[0] != '/' || gs_store_path_check(w->path + 1))
		return gs_err_setx(f->err, EINVAL, "%s %s: not an absolute path without '.', '..' or '//'",
				   w->what, w->path);
	int len = snprintf(host, sizeof(host), "%s%s", root ? "" : host_root, w->path);
	if (len < 0 || (size_t)len >= sizeof(host))
		return gs_err_setx(f->err, ENAMETOOLONG, "%s %s%s: path too long", w->what, host_root,
				   w->path);
	bool absent;
	const char *why = refusal(w, host, &absent);
	if (why)
		return note(f, w->what, host, why);
	struct ovl_host_bind *v = realloc(f->v, (f->n + 1) * sizeof(*v));
	if (!v)
		return gs_err_setx(f->err, ENOMEM, "out of memory");
	f->v = v;
	v[f->n] = (struct ovl_host_bind){.dir = w->dir, .rw = w->rw, .caps = w->caps,
					 .host = strdup(host), .dest = strdup(w->path)};
	f->n++;
	if (!v[f->n - 1].host || !v[f->n - 1].dest)
		return gs_err_setx(f->err, ENOMEM, "out of memory");
	return 0;
}

int ovl_host_ipc_find(const char *host_root, const char *mps_pipe, const char *mps_log,
		      unsigned int caps, struct ovl_host_bind **out, size_t *n, char **note_out,
		      struct gs_err *err)
{
	/* the log directory is read-only: clients read nothing there that
	 * they need to write, and a container never fills the host's disk */
	const struct want wants[] = {
		{"MPS pipe directory", mps_pipe, true, true, GS_CAP_COMPUTE},
		{"MPS log directory", mps_log, true, false, GS_CAP_COMPUTE},
		{"nvidia-persistenced socket", OVL_PERSISTENCED_SOCKET, false, false,
		 GS_CAP_UTILITY | GS_CAP_COMPUTE},
		{"nvidia-fabricmanager socket", OVL_FABRICMANAGER_SOCKET, false, false,
		 GS_CAP_UTILITY | GS_CAP_COMPUTE},
	};
	struct found f = {.err = err};
	int r = 0;
	*out = NULL;
	*n = 0;
	*note_out = NULL;
	for (size_t i = 0; r >= 0 && i < sizeof(wants) / sizeof(wants[0]); i++) {
		if (!(caps & wants[i].caps))
			continue;
		/* the log directory only beside a running daemon's pipes */
		if (i == 1 && !(f.n > 0 && f.v[0].rw))
			continue;
		r = take(&f, &wants[i], host_root);
	}
	if (r < 0) {
		ovl_host_binds_free(f.v, f.n);
		free(f.note);
		return r;
	}
	*out = f.v;
	*n = f.n;
	*note_out = f.note;
	return 0;
}
