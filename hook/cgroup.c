/* SPDX-License-Identifier: Apache-2.0 */
/* Device access in the container's device cgroup.
 *
 * cgroup v1 (and the hybrid layout, where "devices" is a v1 controller):
 * runc and crun write the container's device list (deny all, allow the
 * defaults) before the prestart hooks run; the hook appends "c MAJ:MIN rwm"
 * to devices.allow for each node it creates, in the container's own
 * cgroup (read from /proc/PID/cgroup, or /proc/self/cgroup in
 * createContainer, where the hook already runs in that cgroup).
 *
 * cgroup v2: device access is an eBPF program the runtime attaches to the
 * container's cgroup, built from config.json's linux.resources.devices.
 * The hook does not replace or stack programs: it reports in the audit
 * record that the runtime's program decides, and the nodes work only when
 * config.json allows them (e.g. added by the runtime shim or a CDI spec).
 * The hook never widens access on the root cgroup.
 *
 * Nothing read here is cut to fit a buffer: lines are read with getline
 * and bounded (a longer one is an error naming the file), the cgroup path
 * is kept whole or refused, so a long path can never name a shorter,
 * different cgroup (a sibling whose name is its prefix). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "gs/mountinfo.h"
#include "hook.h"

/* /proc/PID/cgroup: "ID:CONTROLLERS:PATH", PATH at most PATH_MAX (the
 * kernel's own limit); controller lists are short. */
#define CGROUP_LINE_MAX (PATH_MAX + 1024)
#define ALLOW_FILE "/devices.allow"
#define OPENAT2_TRIES 16

/* The devices.allow of CG below the hierarchy's mount, as openat2 needs
 * it (relative, shorter than PATH_MAX); ENAMETOOLONG when it cannot be. */
static int allow_rel(const char *file, const char *cg, char **out, struct gs_err *err)
{
	size_t len = strlen(cg);
	if (len + sizeof(ALLOW_FILE) > PATH_MAX)
		return gs_err_setx(err, ENAMETOOLONG,
				   "%s: the devices cgroup path is %zu bytes long; the hook opens at most %zu: refusing rather than naming another cgroup",
				   file, len, (size_t)PATH_MAX - sizeof(ALLOW_FILE));
	if (asprintf(out, "%s" ALLOW_FILE, cg + 1) < 0) {
		*out = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* The v1 devices cgroup in FILE (/proc/PID/cgroup), *OUT malloc'd: 1
 * found, 0 none (*V2: a cgroup v2 hierarchy is there). */
static int devices_path(const char *file, char **out, bool *v2, struct gs_err *err)
{
	_cleanup_fclose_ FILE *f = fopen(file, "re");
	if (!f)
		return gs_err_set(err, errno, "%s", file);
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	int r;
	*v2 = false;
	while ((r = gs_read_line(f, file, CGROUP_LINE_MAX, &line, &cap, err)) > 0) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			return gs_err_setx(err, EBADMSG, "%s: malformed line '%.64s'", file, line);
		*c2 = '\0';
		if (!strcmp(line, "0") && c1[1] == '\0') {
			*v2 = true;
			continue;
		}
		char *save = NULL;
		for (char *tok = strtok_r(c1 + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (strcmp(tok, "devices"))
				continue;
			if (c2[1] != '/')
				return gs_err_setx(err, EBADMSG, "%s: devices cgroup path is not absolute", file);
			return (*out = strdup(c2 + 1)) ? 1 : gs_err_setx(err, ENOMEM, "out of memory");
		}
	}
	return r;
}

static bool has_opt(char *opts, const char *want)
{
	char *save = NULL;
	for (char *tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!strcmp(tok, want))
			return true;
	return false;
}

bool hk_is_devices_root(const struct gs_mountinfo *m)
{
	return !strcmp(m->root, "/") && !strcmp(m->fstype, "cgroup") && has_opt(m->superopts, "devices");
}

struct find_devices {
	char **out;
	struct gs_err *err;
};

static int devices_entry(const struct gs_mountinfo *m, void *data)
{
	struct find_devices *d = data;
	if (!hk_is_devices_root(m))
		return 0;
	return (*d->out = strdup(m->point)) ? 1 : gs_err_setx(d->err, ENOMEM, "out of memory");
}

/* Mount point of the v1 devices hierarchy (its root, not a bind of a
 * sub-cgroup) from /proc/self/mountinfo; *OUT malloc'd. */
static int devices_mount(char **out, struct gs_err *err)
{
	struct find_devices d = {out, err};
	*out = NULL;
	int r = gs_mountinfo_each("/proc/self/mountinfo", devices_entry, &d, err);
	if (r < 0)
		return r;
	return *out ? 0 : gs_err_setx(err, ENOENT, "no cgroup v1 devices hierarchy is mounted");
}

static int set_note(char **note, struct gs_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int set_note(char **note, struct gs_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(note, fmt, ap);
	va_end(ap);
	if (r < 0) {
		*note = NULL;
		return gs_err_setx(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* MNT/REL opened for writing, beneath MNT, retried a bounded number of
 * times on EAGAIN/EINTR (as gs_open_in_root). */
static int open_allow(const char *mnt, const char *rel, struct gs_err *err)
{
	_cleanup_close_ int mfd = open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return gs_err_set(err, errno, "%s", mnt);
	for (int i = 0; i < OPENAT2_TRIES; i++) {
		long afd = gs_sys_openat2(mfd, rel, O_WRONLY | O_CLOEXEC, 0,
					  RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
		if (afd >= 0)
			return (int)afd;
		if (errno != EAGAIN && errno != EINTR)
			return gs_err_set(err, errno, "%s/%.256s", mnt, rel);
	}
	return gs_err_setx(err, EAGAIN, "%s/%.256s: openat2 kept failing with EAGAIN/EINTR; giving up",
			   mnt, rel);
}

int hk_cgroup_open(pid_t pid, int pidfd, bool in_cgroupns, size_t n, const char *devices_mnt,
		   int *fd, char **note, struct gs_err *err)
{
	_cleanup_free_ char *cg = NULL, *mnt = NULL, *rel = NULL;
	bool v2 = false;
	char file[64];
	*note = NULL;
	*fd = -1;
	if (n == 0)
		return 0;
	if (pid > 0)
		snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)pid);
	else
		snprintf(file, sizeof(file), "/proc/self/cgroup");
	int r = devices_path(file, &cg, &v2, err);
	if (r >= 0 && pidfd >= 0 && hk_pid_alive(pidfd, pid, err) < 0)
		r = -err->code;
	if (r < 0)
		return r;
	if (r == 0)
		return set_note(note, err, "%s",
				v2 ? "cgroup v2: device access is decided by the runtime's eBPF program (config.json linux.resources.devices); not changed by the hook"
				   : "no devices cgroup: device access not restricted by a cgroup");
	/* Inside a cgroup namespace (createContainer with "cgroup" in
	 * linux.namespaces) the container's own cgroup reads as "/" and the
	 * hierarchy's mount shows the host's root: the rules cannot be
	 * written to the container's cgroup from here. */
	if (in_cgroupns && !strcmp(cg, "/"))
		return gs_err_setx(err, EPERM,
				   "device rules cannot be written from inside a cgroup namespace on cgroup v1: register the hook as prestart or createRuntime");
	if (strstr(cg, "/.."))
		return gs_err_setx(err, EPERM,
				   "%s: the devices cgroup is outside the hook's cgroup namespace: device rules cannot be written; register the hook as prestart or createRuntime",
				   file);
	if (!strcmp(cg, "/")) /* v1's root cgroup allows every device and is never changed */
		return set_note(note, err,
				"devices cgroup '/': the root cgroup allows every device; not changed (the hook never widens it)");
	r = allow_rel(file, cg, &rel, err);
	if (r >= 0 && devices_mnt && !(mnt = strdup(devices_mnt)))
		r = gs_err_setx(err, ENOMEM, "out of memory");
	else if (r >= 0 && !devices_mnt)
		r = devices_mount(&mnt, err);
	if (r >= 0 && !mnt)
		r = gs_err_setx(err, ENOENT, "no cgroup v1 devices hierarchy is mounted");
	if (r < 0)
		return r;
	int afd = open_allow(mnt, rel, err);
	if (afd < 0)
		return afd;
	r = set_note(note, err, "cgroup v1: %zu device rule%s for %s%s", n, n == 1 ? "" : "s", mnt, cg);
	if (r < 0) {
		close(afd);
		return r;
	}
	*fd = afd;
	return 0;
}

int hk_cgroup_write(int fd, const struct ovl_device *devs, size_t n, const char *note,
		    struct gs_err *err)
{
	for (size_t i = 0; fd >= 0 && i < n; i++) {
		char rule[64];
		int l = snprintf(rule, sizeof(rule), "c %u:%u rwm", (unsigned int)devs[i].major,
				 (unsigned int)devs[i].minor);
		if (write(fd, rule, (size_t)l) != l)
			return gs_err_set(err, errno, "devices cgroup (%.300s): '%s'", note, rule);
	}
	return 0;
}
