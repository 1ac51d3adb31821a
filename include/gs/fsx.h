/* SPDX-License-Identifier: Apache-2.0 */
/* fd-based path resolution inside an untrusted root; reading a whole fd
 * and replacing a file atomically. */
#ifndef GS_FSX_H
#define GS_FSX_H

#include <limits.h>
#include <stdint.h>

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

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

/* Opens the object the O_PATH fd PATHFD holds again, with open(2) FLAGS
 * (O_CLOEXEC | O_NOCTTY added), through its /proc/self/fd link: the same
 * inode, whatever happened to its name meanwhile.  For a file first
 * opened O_PATH and checked with fstat (a regular file, not a FIFO or a
 * device whose open has effects).  Returns the fd, or -1 with errno. */
int gs_reopen(int pathfd, int flags);

/* How many times in a row a call that fails with EINTR is retried by the
 * helpers here and by every read, write and lock loop of the project; then
 * the call fails (EINTR), with a message saying so.  A call that makes
 * progress starts the count again. */
#define GS_EINTR_TRIES 64

/* write(2) until all N bytes of BUF are written (EINTR retried up to
 * GS_EINTR_TRIES times in a row; a write that writes nothing is EIO).
 * Returns 0 or -errno. */
int gs_write_full(int fd, const void *buf, size_t n);

/* Reads FD from its offset to EOF into a malloc'd buffer with a NUL after
 * the data: *OUT, *LEN bytes not counting the NUL (LEN may be NULL).  More
 * than MAX bytes is -EFBIG, with a message naming NAME and MAX: never a
 * shortened result.  One fstat sizes the first allocation when FD is a
 * regular file (one larger than MAX fails at once, nothing read); a file
 * that grows or shrinks meanwhile is read as it is, up to MAX.  Anything
 * else (pipe, socket, tty, a /proc file whose size says nothing) starts at
 * 4 KiB and doubles, never beyond MAX + 1 bytes.  FD's O_NONBLOCK is the
 * caller's (EAGAIN is an error like any other); EINTR is retried
 * GS_EINTR_TRIES times in a row.  NAME (the file as shown in messages)
 * prefixes every message.  On failure *OUT and *LEN are left alone. */
int gs_read_all_fd(int fd, size_t max, const char *name, char **out, size_t *len,
		   struct gs_err *err);

/* gs_read_all_fd() that gives up TIMEOUT_MS after it was called (a pipe
 * from a child that may hang): each read waits in poll() for what is left
 * of it, and the end not reached by then is ETIMEDOUT ("NAME: no end of
 * output within N ms").  TIMEOUT_MS < 0: no limit, gs_read_all_fd(). */
int gs_read_all_fd_within(int fd, size_t max, int timeout_ms, const char *name, char **out,
			  size_t *len, struct gs_err *err);

/* gs_write_atomic_at() flags. */
#define GS_WRITE_FSYNC (1u << 0)      /* fsync the new file before the rename */
#define GS_WRITE_FSYNC_DIR (1u << 1)  /* fsync DIRFD after the rename */
#define GS_WRITE_KEEP_OWNER (1u << 2) /* owner and group of what NAME is now */
/* NAME missing: created in place (O_CREAT | O_EXCL | O_NOFOLLOW), no
 * rename; for files nothing reads while they are written (a container's,
 * before it starts): on an overlay root that saves the rename.  A failed
 * write removes it again. */
#define GS_WRITE_NEW_IN_PLACE (1u << 3)
#define GS_WRITE_TMP_TRIES 16         /* temporary names tried */

/* Replaces DIRFD/NAME (NAME a single component: no '/', not "." or "..")
 * with the LEN bytes at BUF, in one rename: a temporary file is created in
 * the same directory as ".NAME.gs-XXXXXXXX" (random suffix; O_CREAT |
 * O_EXCL | O_NOFOLLOW, mode 0600; GS_WRITE_TMP_TRIES names tried while one
 * is taken or the open is interrupted), written in full, given the owner
 * and group of what NAME names now (GS_WRITE_KEEP_OWNER: a symlink is
 * followed for that stat only; no file there, or EPERM, leaves them ours),
 * chmod'ed to MODE, fsynced (GS_WRITE_FSYNC), closed and renamed over NAME
 * (a symlink there is replaced, never followed; a directory there is an
 * error); then DIRFD is fsynced (GS_WRITE_FSYNC_DIR; DIRFD may be O_PATH
 * or AT_FDCWD; a filesystem that cannot sync a directory, EINVAL, is no
 * error).  On every failure before the rename the temporary file is
 * removed and NAME is as it was; a failed directory sync after it says
 * NAME was replaced.  Messages name NAME and the reason.  Returns 0. */
int gs_write_atomic_at(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
		       unsigned flags, struct gs_err *err);

/* The temporary file gs_write_atomic_at writes first: ".NAME.gs-XXXXXXXX"
 * in DIRFD (name in TMP), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600,
 * for a caller that streams a large file before its own rename.  Returns
 * the fd. */
int gs_tmpfile_at(int dirfd, const char *name, char tmp[NAME_MAX + 1], struct gs_err *err);

/* NAME in the directory of the running executable (/proc/self/exe): how
 * gpu-stage and gpu-runtime find the gpu-stage-hook installed next to
 * them.  *OUT malloc'd; the link's target is used whole (over-long:
 * ENAMETOOLONG, never cut short).  Not checked to exist. */
int gs_exe_sibling(const char *name, char **out, struct gs_err *err);

/* For the mains: every allocation of 128 KiB or more gets its own mapping,
 * returned to the kernel when freed (glibc would otherwise raise that
 * threshold after the first large free and keep freed memory in the heap),
 * so that the peak memory of a run is what it holds at once, which the
 * ld.so.cache bounds (gs/ldcache.h) are stated in. */
void gs_malloc_init(void);

/* ST's mtime in nanoseconds, saturated (a file can claim a year past
 * 2262, where the product no longer fits). */
static inline int64_t gs_mtime_ns(const struct stat *st)
{
	int64_t ns;
	if (__builtin_mul_overflow((int64_t)st->st_mtim.tv_sec, (int64_t)1000000000, &ns) ||
	    __builtin_add_overflow(ns, (int64_t)st->st_mtim.tv_nsec, &ns))
		return st->st_mtim.tv_sec < 0 ? INT64_MIN : INT64_MAX;
	return ns;
}

#endif
