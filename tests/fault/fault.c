/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fault injector of the test-only fault build (make FAULT=1, see
 * tests/fault/Makefile.frag): gpu-stage, gpu-stage-hook and gpu-runtime
 * are linked with -Wl,--wrap=NAME for every libc call below, so each call
 * our code makes goes through __wrap_NAME here first.  Nothing of this file
 * is in the release or sanitizer builds.
 *
 * Control (a folder compiled in as GS_FAULT_DIR; the hook runs under runc
 * with a scrubbed environment, so no variable is read):
 *   GS_FAULT_DIR/plan   lines "BINARY CALL N ERR [TIMES]": in BINARY (the
 *                       basename of /proc/self/exe), calls N .. N+TIMES-1 of
 *                       CALL (counted from 1, across every call site) fail
 *                       with ERR: an errno name (ENOSPC, EIO, EINTR,
 *                       EAGAIN, EPERM, ENOMEM, ENOENT, ...) or "short" (a
 *                       read or write of half the bytes asked for).
 *                       No plan, or no line for this binary: count only.
 *   GS_FAULT_DIR/out/BINARY.PID
 *                       written at exit and before an exec: "call NAME N"
 *                       per call, "site NAME OFFSET FIRST CALLS OUTER" per call
 *                       site (OFFSET from the start of the executable, for
 *                       addr2line; FIRST: the call index of its first
 *                       call), "fired NAME N ERR TIMES OFFSET" per rule
 *                       that fired (OFFSET: the site of its first failure),
 *                       "fd N TARGET" per descriptor still open at exit
 *                       (0-2, those inherited and the injector's own left out; before an
 *                       exec only those without FD_CLOEXEC, as "inherit").
 * Without GS_FAULT_DIR the injector does nothing at all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef GS_FAULT_DIR
#error "the fault build defines GS_FAULT_DIR (tests/fault/Makefile.frag)"
#endif

/* Marks a wrapped call: tests/fault/Makefile.frag takes the --wrap list
 * from these lines, so the list and the wrappers cannot drift apart. */
#define WRAPS(name)

#define MAX_CALLS 64
#define MAX_SITES 1024
#define MAX_PLAN 8
#define SHORT_IO (-1)

struct call {
	const char *name;
	unsigned long n;
};
struct site {
	const char *name;
	uintptr_t off, outer; /* outer: the thin wrapper's caller (syscall) */
	unsigned long first, n;
};
struct rule {
	char call[32];
	unsigned long from, times;
	int err;
	unsigned long fired;
	uintptr_t site, outer; /* of the first failure injected */
};

static struct call calls[MAX_CALLS];
static struct site sites[MAX_SITES];
static struct rule rules[MAX_PLAN];
static size_t ncalls, nsites, nrules;
static int ctl_fd = -1;
static int fds_fd = -1; /* /proc/self/fd, opened before any setns */
static char self[64];
static bool ready;
static unsigned char inherited[1024 / 8]; /* open before main: not ours */

extern char __executable_start;

int __real_openat(int dirfd, const char *path, int flags, ...);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_readlinkat(int dirfd, const char *path, char *buf, size_t size);
int __real_renameat(int od, const char *o, int nd, const char *n);

static const struct {
	const char *name;
	int err;
} errnames[] = {
	{"ENOSPC", ENOSPC}, {"EIO", EIO},	  {"EINTR", EINTR},	{"EAGAIN", EAGAIN},
	{"EPERM", EPERM},   {"ENOMEM", ENOMEM}, {"ENOENT", ENOENT},	{"EACCES", EACCES},
	{"EMFILE", EMFILE}, {"EEXIST", EEXIST}, {"EWOULDBLOCK", EWOULDBLOCK},
	{"ENOLCK", ENOLCK}, {"EXDEV", EXDEV},	  {"EBUSY", EBUSY},	{"EROFS", EROFS},
	{"EDQUOT", EDQUOT}, {"ENOSYS", ENOSYS}, {"EINVAL", EINVAL},	{"short", SHORT_IO},
};

static int parse_err(const char *s)
{
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (!strcmp(s, errnames[i].name))
			return errnames[i].err;
	return 0;
}

static const char *err_name(int err)
{
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].err == err)
			return errnames[i].name;
	return "?";
}

static void load_plan(void)
{
	int fd = __real_openat(ctl_fd, "plan", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[4096];
	size_t len = 0;
	ssize_t got;
	while (len < sizeof(buf) - 1 && (got = __real_read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)got;
	close(fd);
	buf[len] = '\0';
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line && nrules < MAX_PLAN;
	     line = strtok_r(NULL, "\n", &save)) {
		char bin[64], call[32], err[16];
		unsigned long from = 0, times = 1;
		int k = sscanf(line, "%63s %31s %lu %15s %lu", bin, call, &from, err, &times);
		if (k < 4 || strcmp(bin, self) || from == 0 || times == 0 || !parse_err(err))
			continue;
		struct rule *r = &rules[nrules++];
		snprintf(r->call, sizeof(r->call), "%s", call);
		r->from = from;
		r->times = times;
		r->err = parse_err(err);
	}
}

static void report(bool at_exec);
static void report_at_exit(void)
{
	report(false);
}

__attribute__((constructor)) static void fault_init(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	const char *base = strrchr(exe, '/');
	snprintf(self, sizeof(self), "%s", base ? base + 1 : exe);
	/* far above what the programs use, so that their fd numbers stay */
	int fd = __real_openat(AT_FDCWD, GS_FAULT_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	ctl_fd = fcntl(fd, F_DUPFD_CLOEXEC, 900);
	close(fd);
	fd = __real_openat(AT_FDCWD, "/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fds_fd = fcntl(fd, F_DUPFD_CLOEXEC, 900);
		close(fd);
	}
	if (ctl_fd < 0)
		return;
	for (int i = 0; i < 1024; i++)
		if (fcntl(i, F_GETFD) >= 0)
			inherited[i / 8] |= (unsigned char)(1u << (i % 8));
	load_plan();
	atexit(report_at_exit);
	ready = true;
}

static struct call *call_of(const char *name)
{
	for (size_t i = 0; i < ncalls; i++)
		if (calls[i].name == name || !strcmp(calls[i].name, name))
			return &calls[i];
	if (ncalls == MAX_CALLS)
		return NULL;
	calls[ncalls].name = name;
	return &calls[ncalls++];
}

static void note_site(const char *name, uintptr_t off, uintptr_t outer, unsigned long idx)
{
	for (size_t i = 0; i < nsites; i++)
		if (sites[i].off == off && sites[i].outer == outer && sites[i].name == name) {
			sites[i].n++;
			return;
		}
	if (nsites < MAX_SITES)
		sites[nsites++] = (struct site){
			.name = name, .off = off, .outer = outer, .first = idx, .n = 1};
}

static uintptr_t offset_of(const void *ra)
{
	return ra ? (uintptr_t)ra - (uintptr_t)&__executable_start : 0;
}

/* 0: make the real call; else the errno to fail with (or SHORT_IO).
 * RA: the call's return address; OUTER: its caller's (or NULL). */
static int hit_at(const char *name, const void *ra, const void *outer_ra)
{
	if (!ready)
		return 0;
	struct call *c = call_of(name);
	if (!c)
		return 0;
	unsigned long idx = ++c->n;
	uintptr_t off = offset_of(ra), outer = offset_of(outer_ra);
	note_site(name, off, outer, idx);
	for (size_t i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		if (!strcmp(r->call, name) && idx >= r->from && idx - r->from < r->times) {
			if (!r->fired++) {
				r->site = off;
				r->outer = outer;
			}
			return r->err;
		}
	}
	return 0;
}

static int hit(const char *name, const void *ra)
{
	return hit_at(name, ra, NULL);
}

static void report_fds(int out, bool at_exec)
{
	for (int fd = 3; fd < 1024; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl < 0 || fd == ctl_fd || fd == fds_fd || fd == out ||
		    (inherited[fd / 8] & (1u << (fd % 8))))
			continue;
		if (at_exec && (fl & FD_CLOEXEC))
			continue;
		char num[16], target[256] = "?";
		snprintf(num, sizeof(num), "%d", fd);
		ssize_t n = fds_fd >= 0 ? __real_readlinkat(fds_fd, num, target, sizeof(target) - 1) : -1;
		if (n > 0)
			target[n] = '\0';
		dprintf(out, "%s %d %s\n", at_exec ? "inherit" : "fd", fd, target);
	}
}

static void report(bool at_exec)
{
	if (!ready)
		return;
	int saved = errno;
	char name[128], tmp[160];
	snprintf(name, sizeof(name), "out/%s.%d", self, (int)getpid());
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	int out = __real_openat(ctl_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		errno = saved;
		return;
	}
	for (size_t i = 0; i < ncalls; i++)
		dprintf(out, "call %s %lu\n", calls[i].name, calls[i].n);
	for (size_t i = 0; i < nsites; i++)
		dprintf(out, "site %s %#lx %lu %lu %#lx\n", sites[i].name,
			(unsigned long)sites[i].off, sites[i].first, sites[i].n,
			(unsigned long)sites[i].outer);
	for (size_t i = 0; i < nrules; i++)
		if (rules[i].fired)
			dprintf(out, "fired %s %lu %s %lu %#lx %#lx\n", rules[i].call, rules[i].from,
				err_name(rules[i].err), rules[i].fired, (unsigned long)rules[i].site,
				(unsigned long)rules[i].outer);
	report_fds(out, at_exec);
	close(out);
	__real_renameat(ctl_fd, tmp, ctl_fd, name);
	errno = saved;
}

/* ---- the wrappers ------------------------------------------------------ */

#define RA __builtin_return_address(0)
#define FAIL_INT(name)                                                                      \
	do {                                                                                \
		int e_ = hit(#name, RA);                                                    \
		if (e_ > 0) {                                                               \
			errno = e_;                                                         \
			return -1;                                                          \
		}                                                                           \
	} while (0)
#define FAIL_PTR(name)                                                                      \
	do {                                                                                \
		int e_ = hit(#name, RA);                                                    \
		if (e_ > 0) {                                                               \
			errno = e_;                                                         \
			return NULL;                                                        \
		}                                                                           \
	} while (0)

/* A call returning int/ssize_t, -1 and errno on failure. */
#define WRAP_RET(type, name, params, args)                                                  \
	type __real_##name params;                                                          \
	type __wrap_##name params;                                                          \
	type __wrap_##name params                                                           \
	{                                                                                   \
		FAIL_INT(name);                                                             \
		return __real_##name args;                                                  \
	}
/* A call returning a pointer, NULL and errno on failure. */
#define WRAP_PTR(type, name, params, args)                                                  \
	type __real_##name params;                                                          \
	type __wrap_##name params;                                                          \
	type __wrap_##name params                                                           \
	{                                                                                   \
		FAIL_PTR(name);                                                             \
		return __real_##name args;                                                  \
	}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE ? (mode_t)va_arg(ap, int)
									 : 0;
}

WRAPS(open)
int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	FAIL_INT(open);
	return __real_open(path, flags, mode);
}

WRAPS(openat)
int __wrap_openat(int dirfd, const char *path, int flags, ...);
int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	FAIL_INT(openat);
	return __real_openat(dirfd, path, flags, mode);
}

/* For read, pread, write, copy_file_range: the errno to fail with, or 0
 * to make the call (with *N halved for a short one). */
static int io_hit(const char *name, const void *ra, size_t *n)
{
	int e = hit(name, ra);
	if (e == SHORT_IO) {
		if (*n > 1)
			*n /= 2;
		return 0;
	}
	return e;
}
#define FAIL_IO(name, n)                                                                    \
	do {                                                                                \
		int e_ = io_hit(#name, RA, &(n));                                           \
		if (e_ > 0)                                                                 \
			return errno = e_, -1;                                              \
	} while (0)

WRAPS(read)
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	FAIL_IO(read, n);
	return __real_read(fd, buf, n);
}

WRAPS(pread)
ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off)
{
	FAIL_IO(pread, n);
	return __real_pread(fd, buf, n, off);
}

WRAPS(write)
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	FAIL_IO(write, n);
	return __real_write(fd, buf, n);
}

WRAPS(copy_file_range)
ssize_t __real_copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t n,
			       unsigned flags);
ssize_t __wrap_copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t n,
			       unsigned flags);
ssize_t __wrap_copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t n,
			       unsigned flags)
{
	FAIL_IO(copy_file_range, n);
	return __real_copy_file_range(in, inoff, out, outoff, n, flags);
}

WRAPS(readlinkat)
ssize_t __wrap_readlinkat(int dirfd, const char *path, char *buf, size_t size);
ssize_t __wrap_readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
	FAIL_INT(readlinkat);
	return __real_readlinkat(dirfd, path, buf, size);
}

WRAPS(fsync)
WRAP_RET(int, fsync, (int fd), (fd))
WRAPS(syncfs)
WRAP_RET(int, syncfs, (int fd), (fd))
WRAPS(sync_file_range)
WRAP_RET(int, sync_file_range, (int fd, off_t off, off_t n, unsigned int flags),
	 (fd, off, n, flags))
WRAPS(ftruncate)
WRAP_RET(int, ftruncate, (int fd, off_t len), (fd, len))
WRAPS(renameat)
WRAP_RET(int, renameat, (int od, const char *o, int nd, const char *n), (od, o, nd, n))
WRAPS(renameat2)
WRAP_RET(int, renameat2, (int od, const char *o, int nd, const char *n, unsigned int f),
	 (od, o, nd, n, f))
WRAPS(unlinkat)
WRAP_RET(int, unlinkat, (int dirfd, const char *path, int flags), (dirfd, path, flags))
WRAPS(symlinkat)
WRAP_RET(int, symlinkat, (const char *target, int dirfd, const char *path),
	 (target, dirfd, path))
WRAPS(mkdirat)
WRAP_RET(int, mkdirat, (int dirfd, const char *path, mode_t mode), (dirfd, path, mode))
WRAPS(mkdir)
WRAP_RET(int, mkdir, (const char *path, mode_t mode), (path, mode))
WRAPS(mknodat)
WRAP_RET(int, mknodat, (int dirfd, const char *path, mode_t mode, dev_t dev),
	 (dirfd, path, mode, dev))
WRAPS(fchmod)
WRAP_RET(int, fchmod, (int fd, mode_t mode), (fd, mode))
WRAPS(fchown)
WRAP_RET(int, fchown, (int fd, uid_t uid, gid_t gid), (fd, uid, gid))
WRAPS(fchownat)
WRAP_RET(int, fchownat, (int dirfd, const char *path, uid_t uid, gid_t gid, int flags),
	 (dirfd, path, uid, gid, flags))
WRAPS(flock)
WRAP_RET(int, flock, (int fd, int op), (fd, op))
WRAPS(fstat)
WRAP_RET(int, fstat, (int fd, struct stat *st), (fd, st))
WRAPS(fstatat)
WRAP_RET(int, fstatat, (int dirfd, const char *path, struct stat *st, int flags),
	 (dirfd, path, st, flags))
WRAPS(setns)
WRAP_RET(int, setns, (int fd, int nstype), (fd, nstype))
WRAPS(getrandom)
WRAP_RET(ssize_t, getrandom, (void *buf, size_t n, unsigned int flags), (buf, n, flags))
WRAPS(fdopendir)
WRAP_PTR(DIR *, fdopendir, (int fd), (fd))
WRAPS(opendir)
WRAP_PTR(DIR *, opendir, (const char *path), (path))
WRAPS(fdopen)
WRAP_PTR(FILE *, fdopen, (int fd, const char *mode), (fd, mode))
WRAPS(fopen)
WRAP_PTR(FILE *, fopen, (const char *path, const char *mode), (path, mode))
WRAPS(open_memstream)
WRAP_PTR(FILE *, open_memstream, (char **buf, size_t *n), (buf, n))
WRAPS(malloc)
WRAP_PTR(void *, malloc, (size_t n), (n))
WRAPS(calloc)
WRAP_PTR(void *, calloc, (size_t k, size_t n), (k, n))
WRAPS(realloc)
WRAP_PTR(void *, realloc, (void *p, size_t n), (p, n))
WRAPS(strdup)
WRAP_PTR(char *, strdup, (const char *s), (s))
WRAPS(strndup)
WRAP_PTR(char *, strndup, (const char *s, size_t n), (s, n))
WRAPS(execvp)
int __real_execvp(const char *file, char *const argv[]);
int __wrap_execvp(const char *file, char *const argv[]);
int __wrap_execvp(const char *file, char *const argv[])
{
	FAIL_INT(execvp);
	report(true);
	return __real_execvp(file, argv);
}

/* readdir: NULL with errno set is a failed read (NULL alone is the end). */
WRAPS(readdir)
struct dirent *__real_readdir(DIR *d);
struct dirent *__wrap_readdir(DIR *d);
struct dirent *__wrap_readdir(DIR *d)
{
	FAIL_PTR(readdir);
	return __real_readdir(d);
}

WRAPS(vasprintf)
int __real_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
	FAIL_INT(vasprintf);
	return __real_vasprintf(out, fmt, ap);
}

WRAPS(asprintf)
int __wrap_asprintf(char **out, const char *fmt, ...);
int __wrap_asprintf(char **out, const char *fmt, ...)
{
	FAIL_INT(asprintf);
	va_list ap;
	va_start(ap, fmt);
	int r = __real_vasprintf(out, fmt, ap);
	va_end(ap);
	return r;
}

/* syscall(): our code calls it for openat2, the mount API, pidfd and
 * capget; each is counted under its own name.  Only as many arguments as
 * the call takes are read (more would read past the caller's). */
static const struct {
	long nr;
	const char *name;
	int nargs;
} syscalls[] = {
	{SYS_openat2, "openat2", 4},	   {SYS_open_tree, "open_tree", 3},
	{SYS_move_mount, "move_mount", 5}, {SYS_mount_setattr, "mount_setattr", 5},
	{SYS_fsopen, "fsopen", 2},	   {SYS_fsconfig, "fsconfig", 5},
	{SYS_fsmount, "fsmount", 3},	   {SYS_pidfd_open, "pidfd_open", 2},
	{SYS_pidfd_send_signal, "pidfd_send_signal", 4}, {SYS_capget, "capget", 2},
};

WRAPS(syscall)
long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);
long __wrap_syscall(long nr, ...)
{
	size_t i = 0;
	while (i < sizeof(syscalls) / sizeof(syscalls[0]) && syscalls[i].nr != nr)
		i++;
	if (i == sizeof(syscalls) / sizeof(syscalls[0])) {
		dprintf(2, "fault.c: syscall %ld is not in its table; add it\n", nr);
		abort();
	}
	long a[6] = {0};
	va_list ap;
	va_start(ap, nr);
	for (int k = 0; k < syscalls[i].nargs; k++)
		a[k] = va_arg(ap, long);
	va_end(ap);
	/* syscall() is called from thin wrappers (gs_sys_openat2, mountapi.c):
	 * their caller tells the sites apart (frame pointers: SAN=1) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wframe-address"
	int e = hit_at(syscalls[i].name, RA, __builtin_return_address(1));
#pragma GCC diagnostic pop
	if (e > 0)
		return errno = e, -1;
	return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
