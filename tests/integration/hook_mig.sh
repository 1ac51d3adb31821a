#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# MIG devices in NVIDIA_VISIBLE_DEVICES as GPU:GI:CI (issue 16): a fake
# /proc with the capability files of two GPU instances on GPU 0 (device
# minor 0) and one on GPU 1 (minor 1), fake /dev/nvidia-caps nodes.
# - the hook in real runc: 0:1:0 gives exactly the parent GPU's node
#   (nvidia0, not nvidia1), the GI's and the CI's capability nodes
#   (/dev/nvidia-caps/nvidia-cap21 and -cap22, not the other GI's), each
#   allowed in the devices cgroup (opening gives ENXIO, no driver: allowed;
#   a node there but not allowed would be EPERM); 0:1:0,0:2:0 gives both
#   GIs' nodes; the minor of GPU 1's capability files comes from gpu1/;
# - gpu-runtime declares the same nodes in linux.devices with their
#   numbers and an allow rule each;
# - an unknown GI (0:3:0), an unknown CI (0:1:5), a GPU index that does not
#   exist (5:1:0) and a MIG UUID without a device inventory (devices_inventory.sh
#   has the rest): a clear error naming it, and the
#   container does not start.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_mig.sh
hk_shim env
w=$HK_WORK
CAPS_MAJOR=508 # the nvidia-caps major is dynamic; any number without a driver
caps=$HK_PROC/driver/nvidia/capabilities
# cap GPU-MINOR GI [CI] DEVICE-MINOR: one access file and its node
cap() {
	local d=$caps/gpu$1/mig/gi$2 m=$4
	[ -n "$3" ] && d=$d/ci$3
	mkdir -p "$d" "$HK_DEV/nvidia-caps"
	printf 'DeviceFileMinor: %s\nDeviceFileMode: 292\nDeviceFileModify: 1\n' "$m" >"$d/access"
	mknod "$HK_DEV/nvidia-caps/nvidia-cap$m" c "$CAPS_MAJOR" "$m"
}
mkdir -p "$caps/mig"
printf 'DeviceFileMinor: 1\nDeviceFileMode: 256\nDeviceFileModify: 1\n' >"$caps/mig/config"
cap 0 1 "" 21
cap 0 1 0 22
cap 0 2 "" 30
cap 0 2 0 31
cap 1 1 "" 75
cap 1 1 0 76

script='for d in /dev/nvidia0 /dev/nvidia1 /dev/nvidia-caps/*; do [ -e "$d" ] || continue; printf "NODE %s " "$d"; (cat "$d" >/dev/null) 2>&1 | grep -q "No such device or address" && echo ENXIO || echo other; done; echo STARTED'
# run NAME DEVICES: the hook in real runc; the container's report in $w/NAME.got
run() {
	hk_bundle "$1"
	hk_config "$HK_B" prestart false "[\"NVIDIA_VISIBLE_DEVICES=$2\"]" "$script"
	hk_runc "$HK_B" "gs-mig-$$-$1"
}
# nodes NAME: the NODE lines, sorted
nodes() { grep '^NODE ' "$HK_WORK/gs-mig-$$-$1.out" | sort | tr '\n' ';'; }
want_nodes() { # NAME EXPECTED
	run "$1" "$2" || hk_fail "$1 ($2): the container failed: $(cat "$HK_WORK/gs-mig-$$-$1.out")"
	[ "$(nodes "$1")" = "$3" ] || hk_fail "$1 ($2): nodes are '$(nodes "$1")', expected '$3'"
}

want_nodes gi1 0:1:0 "NODE /dev/nvidia-caps/nvidia-cap21 ENXIO;NODE /dev/nvidia-caps/nvidia-cap22 ENXIO;NODE /dev/nvidia0 ENXIO;"
hk_ok "0:1:0: nvidia0 and the GI/CI capability nodes 21, 22 only, each allowed (ENXIO)"
want_nodes two 0:1:0,0:2:0 "NODE /dev/nvidia-caps/nvidia-cap21 ENXIO;NODE /dev/nvidia-caps/nvidia-cap22 ENXIO;NODE /dev/nvidia-caps/nvidia-cap30 ENXIO;NODE /dev/nvidia-caps/nvidia-cap31 ENXIO;NODE /dev/nvidia0 ENXIO;"
hk_ok "0:1:0,0:2:0: both GPU instances' nodes, nvidia0 once"
want_nodes gpu1 1:1:0 "NODE /dev/nvidia-caps/nvidia-cap75 ENXIO;NODE /dev/nvidia-caps/nvidia-cap76 ENXIO;NODE /dev/nvidia1 ENXIO;"
hk_ok "1:1:0: GPU 1's node and the capability nodes of gpu1/ (75, 76)"
tail -n 1 "$HK_AUDIT" | jq -e '.result == "ok"' >/dev/null || hk_fail "no ok audit record: $(tail -n 1 "$HK_AUDIT")"

# ---- gpu-runtime: linux.devices and the allow rules ----------------------------------
b=$w/shimb
mkdir -p "$b/rootfs"
printf '{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"env": ["NVIDIA_VISIBLE_DEVICES=0:2:0", "NVIDIA_DRIVER_CAPABILITIES=utility"]}, "linux": {}}\n' >"$b/config.json"
GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle "$b" c1 >"$w/shim.out" 2>&1 || hk_fail "shim: $(cat "$w/shim.out")"
got=$(jq -r '[.linux.devices[]? | "\(.path) \(.major):\(.minor)"] | join(",")' "$b/config.json")
[ "$got" = "/dev/nvidiactl 195:255,/dev/nvidia0 195:0,/dev/nvidia-caps/nvidia-cap30 $CAPS_MAJOR:30,/dev/nvidia-caps/nvidia-cap31 $CAPS_MAJOR:31" ] ||
	hk_fail "shim 0:2:0: linux.devices is $got"
got=$(jq -r '[.linux.resources.devices[]? | select(.allow) | "\(.major):\(.minor)"] | join(",")' "$b/config.json")
[ "$got" = "195:255,195:0,$CAPS_MAJOR:30,$CAPS_MAJOR:31" ] || hk_fail "shim 0:2:0: the allow rules are $got"
hk_ok "gpu-runtime 0:2:0: linux.devices and allow rules for nvidiactl, nvidia0, nvidia-cap30, nvidia-cap31"

# ---- unknown MIG devices: a clear error, the container does not start ----------------
refused() { # NAME DEVICES MESSAGE
	if run "$1" "$2"; then hk_fail "$1 ($2): the container started"; fi
	grep -q STARTED "$HK_WORK/gs-mig-$$-$1.out" && hk_fail "$1 ($2): the container ran"
	grep -qF -- "$3" "$HK_WORK/gs-mig-$$-$1.out" || hk_fail "$1 ($2): no '$3' in: $(cat "$HK_WORK/gs-mig-$$-$1.out")"
}
refused nogi 0:3:0 "MIG device 0:3:0: no GPU instance 3 on GPU 0 ($caps/gpu0/mig/gi3/access absent)"
refused noci 0:1:5 "MIG device 0:1:5: no compute instance 5 in GPU instance 1 ($caps/gpu0/mig/gi1/ci5/access absent)"
refused nogpu 5:1:0 "MIG device 5:1:0: GPU index 5 does not exist (2 GPUs)"
refused miguuid MIG-4f2a3c6e-1111-2222-3333-444455556666 "NVIDIA_VISIBLE_DEVICES: MIG-4f2a3c6e-1111-2222-3333-444455556666: "
hk_ok "unknown GI, unknown CI, absent GPU, MIG UUID: refused with the device named, no container"
