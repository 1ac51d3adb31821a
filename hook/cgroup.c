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
 * The hook never widens access on the root cgroup. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gs/cleanup.h"
#include "gs/fsx.h"
#include "hook.h"

#define LINE_MAX_CG 4096

/* Path of the v1 devices cgroup of PID (0: self); 1 found v1, 0 not. */
static int devices_path(pid_t pid, char *out, size_t len, bool *v2, struct gs_err *err)
{
	char path[64], line[LINE_MAX_CG];
	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/cgroup");
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return gs_err_set(err, errno, "%s", path);
	*v2 = false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		if (!strcmp(line, "0") && c1[1] == '\0') {
			*v2 = true;
			continue;
		}
		for (char *tok = strtok(c1 + 1, ","); tok; tok = strtok(NULL, ","))
			if (!strcmp(tok, "devices")) {
				snprintf(out, len, "%s", c2 + 1);
				return 1;
			}
	}
	return 0;
}

/* Mount point of the v1 devices hierarchy (its root, not a bind of a
 * sub-cgroup) from /proc/self/mountinfo. */
static int devices_mount(char *out, size_t len, struct gs_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[LINE_MAX_CG];
	if (!f)
		return gs_err_set(err, errno, "/proc/self/mountinfo");
	while (fgets(line, sizeof(line), f)) {
		char root[1024], mnt[1024];
		if (sscanf(line, "%*s %*s %*s %1023s %1023s", root, mnt) != 2 || strcmp(root, "/"))
			continue;
		char *dash = strstr(line, " - ");
		char fstype[64], source[256], opts[1024];
		if (!dash || sscanf(dash + 3, "%63s %255s %1023s", fstype, source, opts) != 3 ||
		    strcmp(fstype, "cgroup"))
			continue;
		bool dev = false;
		for (char *tok = strtok(opts, ","); tok; tok = strtok(NULL, ","))
			dev = dev || !strcmp(tok, "devices");
		if (dev && strchr(mnt, '\\') == NULL) {
			snprintf(out, len, "%s", mnt);
			return 0;
		}
	}
	return gs_err_setx(err, ENOENT, "no cgroup v1 devices hierarchy is mounted");
}

int hk_cgroup_open(pid_t pid, int pidfd, bool in_cgroupns, size_t n, int *fd, char *note,
		   size_t notelen, struct gs_err *err)
{
	char cg[2048], mnt[1024];
	bool v2 = false;
	note[0] = '\0';
	*fd = -1;
	if (n == 0)
		return 0;
	int r = devices_path(pid, cg, sizeof(cg), &v2, err);
	if (r >= 0 && pidfd >= 0 && hk_pid_alive(pidfd, pid, err) < 0)
		r = -err->code;
	if (r < 0)
		return r;
	if (r == 0) {
		snprintf(note, notelen,
			 v2 ? "cgroup v2: device access is decided by the runtime's eBPF program (config.json linux.resources.devices); not changed by the hook"
			    : "no devices cgroup: device access not restricted by a cgroup");
		return 0;
	}
	if (!strcmp(cg, "/") || strstr(cg, "/..")) {
		snprintf(note, notelen,
			 "devices cgroup path '%s'%s: not changed (the hook never widens the root cgroup)",
			 cg, in_cgroupns ? " (cgroup namespace)" : "");
		return 0;
	}
	r = devices_mount(mnt, sizeof(mnt), err);
	if (r < 0)
		return r;
	_cleanup_close_ int mfd = open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return gs_err_set(err, errno, "%s", mnt);
	char rel[2100];
	snprintf(rel, sizeof(rel), "%s/devices.allow", cg + 1);
	long afd;
	do
		afd = gs_sys_openat2(mfd, rel, O_WRONLY | O_CLOEXEC, 0,
				     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
	while (afd < 0 && (errno == EAGAIN || errno == EINTR));
	if (afd < 0)
		return gs_err_set(err, errno, "%s/%s", mnt, rel);
	snprintf(note, notelen, "cgroup v1: %zu device rule%s for %s%s", n, n == 1 ? "" : "s",
		 mnt, cg);
	*fd = (int)afd;
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
			return gs_err_set(err, errno, "devices cgroup (%s): '%s'", note, rule);
	}
	return 0;
}
