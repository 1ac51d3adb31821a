/* SPDX-License-Identifier: Apache-2.0 */
/* Capabilities per phase (libcap).  The hook starts with whatever the
 * runtime gave it (normally all of root's); it keeps only what the next
 * phase needs, and nothing at all once the mounts are made.  The hook
 * never executes anything; no_new_privs is set all the same.  The
 * bounding set is left as it is: it limits only what an execve may gain,
 * and clearing it took ~40 prctl calls, each a credentials copy (a tenth
 * of the hook's own time), for no effect on a process that never execs
 * and whose permitted set only shrinks.
 *
 *   CAP_SYS_ADMIN       open_tree/move_mount/mount_setattr/fsopen, setns
 *   CAP_SYS_CHROOT      setns(CLONE_NEWNS) requires it as well
 *   CAP_SYS_PTRACE      /proc/PID/ns/mnt of the runtime's init process,
 *                       which is not dumpable (start phase only)
 *   CAP_MKNOD           /dev/nvidia* nodes in the container's /dev
 *   CAP_DAC_OVERRIDE    writing the cgroup's devices.allow and files in a
 *                       rootfs owned by another (e.g. remapped) uid
 *   CAP_DAC_READ_SEARCH the store and rootfs directories whatever their mode
 *   CAP_FOWNER          chmod of the nodes and files the plan creates
 *   CAP_CHOWN           recreated /run directories keep their owners */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "hook.h"

static const cap_value_t start_caps[] = {
	CAP_SYS_ADMIN, CAP_SYS_CHROOT,	    CAP_SYS_PTRACE, CAP_MKNOD,
	CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,	    CAP_CHOWN,
};
static const cap_value_t apply_caps[] = {
	CAP_SYS_ADMIN, CAP_MKNOD, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN,
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static int set_caps(const cap_value_t *v, size_t n, const char *phase, struct gs_err *err)
{
	cap_t c = cap_init(); /* all clear */
	if (!c)
		return gs_err_set(err, errno, "cap_init");
	int r = 0;
	if (n && (cap_set_flag(c, CAP_PERMITTED, (int)n, v, CAP_SET) < 0 ||
		  cap_set_flag(c, CAP_EFFECTIVE, (int)n, v, CAP_SET) < 0))
		r = gs_err_set(err, errno, "cap_set_flag");
	if (r == 0 && cap_set_proc(c) < 0)
		r = gs_err_set(err, errno, "dropping capabilities for the %s phase", phase);
	cap_free(c);
	return r;
}

int hk_caps_init(bool devices, struct gs_err *err)
{
	cap_t cur = cap_get_proc();
	if (!cur)
		return gs_err_set(err, errno, "cap_get_proc");
	for (size_t i = 0; i < N(start_caps); i++) {
		cap_flag_value_t have = CAP_CLEAR;
		cap_value_t v = start_caps[i];
		if (cap_get_flag(cur, v, CAP_PERMITTED, &have) < 0)
			have = CAP_CLEAR;
		bool needed = v == CAP_SYS_ADMIN || v == CAP_SYS_CHROOT || (devices && v == CAP_MKNOD);
		if (have != CAP_SET && needed) {
			char *name = cap_to_name(v);
			gs_err_setx(err, EPERM,
				    "missing privilege %s (gpu-stage-hook runs as root from the OCI runtime)",
				    name ? name : "?");
			cap_free(name);
			cap_free(cur);
			return -EPERM;
		}
	}
	cap_free(cur);
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return gs_err_set(err, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
	/* keep whatever subset of start_caps we have */
	cap_value_t have[N(start_caps)];
	size_t n = 0;
	cur = cap_get_proc();
	for (size_t i = 0; cur && i < N(start_caps); i++) {
		cap_flag_value_t f = CAP_CLEAR;
		if (cap_get_flag(cur, start_caps[i], CAP_PERMITTED, &f) == 0 && f == CAP_SET)
			have[n++] = start_caps[i];
	}
	if (cur)
		cap_free(cur);
	return set_caps(have, n, "start", err);
}

int hk_caps_enter(enum hk_phase phase, struct gs_err *err)
{
	switch (phase) {
	case HK_PHASE_START:
		return 0;
	case HK_PHASE_APPLY: {
		cap_value_t have[N(apply_caps)];
		size_t n = 0;
		cap_t cur = cap_get_proc();
		for (size_t i = 0; cur && i < N(apply_caps); i++) {
			cap_flag_value_t f = CAP_CLEAR;
			if (cap_get_flag(cur, apply_caps[i], CAP_PERMITTED, &f) == 0 && f == CAP_SET)
				have[n++] = apply_caps[i];
		}
		if (cur)
			cap_free(cur);
		return set_caps(have, n, "apply", err);
	}
	case HK_PHASE_DONE:
		return set_caps(NULL, 0, "audit", err);
	}
	return 0;
}
