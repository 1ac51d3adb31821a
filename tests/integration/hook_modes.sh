#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What gpu-stage-hook creates does not depend on the umask it inherits from
# the runtime (runc hands its own to prestart/createRuntime hooks, runc init
# to createContainer ones): with a runtime started under umask 077, a
# container process that is not root still loads libcuda.so.1 by SONAME and
# runs nvidia-smi from PATH, /dev/nvidia0 is mode 0666, the ld.so.conf.d
# entry is 0644; and a read-only root whose /run the hook covers keeps the
# image's /run/lock at 1777 (also under the usual umask 022).  A container
# with a user namespace gets the driver files; GPU device nodes are refused
# clearly (its /dev cannot hold nodes made by the host's root).
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_modes.sh

SCRIPT='
/opt/gs-probe libcuda.so.1 libnvidia-ml.so.1 && echo PROBE_OK
nvidia-smi -h | head -n 1
echo "ID $(id -u)"
echo "MODE_DEV $(stat -c %a /dev/nvidia0)"
echo "MODE_CONF $(stat -c %a /etc/ld.so.conf.d/000-gpu-stage.conf 2>/dev/null)"
echo "MODE_LOCK $(stat -c %a /run/lock)"
true'
n=0
modes_case() { # NAME STAGE RO UMASK
	n=$((n + 1))
	local id=gs-hm-$$-$n out
	hk_bundle "m$n"
	hk_config "$HK_B" "$2" "$3" '["NVIDIA_VISIBLE_DEVICES=0"]' "$SCRIPT"
	jq '.process.user = {uid: 1000, gid: 1000}' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	(umask "$4" && hk_runc "$HK_B" "$id") || hk_fail "$1: the container failed: $(cat "$HK_WORK/$id.out")"
	out=$HK_WORK/$id.out
	grep -q '^ID 1000$' "$out" || hk_fail "$1: the container did not run as uid 1000: $(cat "$out")"
	grep -q '^PROBE_OK$' "$out" || hk_fail "$1: uid 1000 cannot load libcuda.so.1: $(cat "$out")"
	grep -q '^NVIDIA System Management Interface -- v535.261.03' "$out" ||
		hk_fail "$1: uid 1000 cannot run nvidia-smi: $(cat "$out")"
	grep -q '^MODE_DEV 666$' "$out" || hk_fail "$1: /dev/nvidia0 is not 0666: $(grep MODE_DEV "$out")"
	if [ "$3" = false ]; then
		grep -q '^MODE_CONF 644$' "$out" || hk_fail "$1: the ld.so.conf.d entry is not 0644: $(grep MODE_CONF "$out")"
	fi
	grep -q '^MODE_LOCK 1777$' "$out" || hk_fail "$1: /run/lock is not 1777 any more: $(grep MODE_LOCK "$out")"
	hk_ok "$1"
}
modes_case "umask 077, prestart" prestart false 077
modes_case "umask 077, createContainer" createContainer false 077
modes_case "umask 077, read-only root (tmpfs over /run)" createRuntime true 077
modes_case "umask 022, read-only root (tmpfs over /run)" prestart true 022

# A container in a user namespace (uid 0 -> 100000): the driver files work
# (the hook's files show as nobody, readable); device nodes cannot be made
# in its /dev (a tmpfs of its user namespace): a clear refusal.
userns_case() { # NAME VISIBLE -> 0 started, 1 refused
	n=$((n + 1))
	local id=gs-hm-$$-$n
	hk_bundle "m$n"
	chmod 0755 "$HK_WORK" "$HK_WORK/m$n" "$HK_B" # the mapped root walks to its rootfs
	hk_config "$HK_B" createRuntime false "[\"NVIDIA_VISIBLE_DEVICES=$2\"]" "$SCRIPT"
	jq '.linux.namespaces += [{type: "user"}] |
		.linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}] |
		.linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}] |
		.mounts |= map(select(.destination != "/sys/fs/cgroup"))' \
		"$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	hk_runc "$HK_B" "$id"
}
userns_case "user namespace, no GPU device" none ||
	hk_fail "user namespace, NVIDIA_VISIBLE_DEVICES=none: the container failed: $(cat "$HK_WORK/gs-hm-$$-$n.out")"
grep -q '^PROBE_OK$' "$HK_WORK/gs-hm-$$-$n.out" ||
	hk_fail "user namespace: libcuda.so.1 did not load: $(cat "$HK_WORK/gs-hm-$$-$n.out")"
hk_ok "user namespace, NVIDIA_VISIBLE_DEVICES=none: driver files usable"
if userns_case "user namespace, GPU 0" 0; then
	hk_fail "user namespace, NVIDIA_VISIBLE_DEVICES=0: started, though its /dev cannot hold our nodes: $(cat "$HK_WORK/gs-hm-$$-$n.out")"
fi
grep -q 'gpu-stage-hook: .*/dev/nvidia.*user namespace.*linux.devices' "$HK_WORK/gs-hm-$$-$n.out" ||
	hk_fail "user namespace, NVIDIA_VISIBLE_DEVICES=0: no clear refusal: $(cat "$HK_WORK/gs-hm-$$-$n.out")"
hk_ok "user namespace, NVIDIA_VISIBLE_DEVICES=0: refused with the way out named"
echo "hook_modes.sh: $n cases: modes independent of the runtime's umask; user namespaces"
