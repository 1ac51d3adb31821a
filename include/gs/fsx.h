/* SPDX-License-Identifier: Apache-2.0 */
/* fd-based path resolution inside an untrusted root. */
#ifndef GS_FSX_H
#define GS_FSX_H

#include <stdint.h>

#include <stddef.h>

#include "gs/err.h"

/* Thin syscall wrapper (tests may --wrap it to inject ENOSYS/EAGAIN). */
long gs_sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

/* openat2(DIRFD, NAME) with no symlink followed, nothing above DIRFD and no
 * magic link (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
 * plus EXTRA); O_CLOEXEC added.  EAGAIN/EINTR are retried a bounded number
 * of times (then EAGAIN).  Returns the fd, or -1 with errno set (ENOSYS on
 * kernels without openat2: callers fail closed). */
int gs_open_beneath(int dirfd, const char *name, int flags, uint64_t extra);

/* Opens PATH inside the root ROOTFD: absolute paths and ".." stay inside
 * the root, symlinks are followed as if ROOTFD were "/" and magic links
 * (/proc/self/root, /proc/N/fd/M) are refused.  FLAGS are open(2) flags;
 * O_CLOEXEC is always added.  Retries EAGAIN/EINTR a bounded number of
 * times; fails closed (ENOSYS) on kernels without openat2: there is no
 * userspace fallback.  Returns the fd. */
int gs_open_in_root(int rootfd, const char *path, int flags, struct gs_err *err);

/* write(2) until all N bytes of BUF are written (EINTR retried).
 * Returns 0 or -errno. */
int gs_write_full(int fd, const void *buf, size_t n);

/* For the mains: every allocation of 128 KiB or more gets its own mapping,
 * returned to the kernel when freed (glibc would otherwise raise that
 * threshold after the first large free and keep freed memory in the heap),
 * so that the peak memory of a run is what it holds at once, which the
 * ld.so.cache bounds (gs/ldcache.h) are stated in. */
void gs_malloc_init(void);

#endif
