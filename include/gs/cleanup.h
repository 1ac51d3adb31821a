/* SPDX-License-Identifier: Apache-2.0 */
/* Scope-bound cleanup, after systemd/crun: initialise every variable where it
 * is declared (NULL / -1) and hand ownership over with steal_ptr/steal_fd. */
#ifndef GS_CLEANUP_H
#define GS_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void gs_freep(void *p)
{
	free(*(void **)p);
}

static inline void gs_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void gs_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void gs_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_free_ _cleanup_(gs_freep)
#define _cleanup_close_ _cleanup_(gs_closep)
#define _cleanup_fclose_ _cleanup_(gs_fclosep)
#define _cleanup_closedir_ _cleanup_(gs_closedirp)

static inline int steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

#define steal_ptr(pp) ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })

#endif
