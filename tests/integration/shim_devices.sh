#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-runtime declares the GPU device nodes a container asks for in
# config.json (issue 14): linux.devices (the runtime makes the node) and
# linux.resources.devices (the runtime allows it, in the v1 devices cgroup
# and in cgroup v2's eBPF program, where the hook cannot add rules; systemd,
# given the rules, keeps them across a daemon-reload).
# - the edit, with a fake runtime: exactly the nodes the hook would give
#   (nvidiactl, the selected nvidiaN, nvidia-uvm and -tools for compute) with
#   the fake nodes' numbers, each with an allow rule; none for
#   NVIDIA_VISIBLE_DEVICES=none; a node declared already is not declared
#   twice; the rest of config.json is kept byte for byte (insertions only);
# - real runc (cgroup v1 here) through the shim: the nodes are the
#   runtime's (the hook's audit record says "already present (made by the
#   runtime)"), the selected GPU opens with ENXIO (allowed, no driver), the
#   other one is absent, and the driver arrives;
# - real runc in cgroup v2 mode (a private mount namespace with a cgroup2
#   mount on /sys/fs/cgroup, so runc's devices rules are an eBPF program):
#   the same container gets GPU 0 allowed (ENXIO), and a node present but
#   not allowed is refused (EPERM) by the program.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup shim_devices.sh
hk_shim env
w=$HK_WORK

# ---- the edit ----------------------------------------------------------------------
b=$w/bundle
mkdir -p "$b/rootfs"
edit() { # ENV-JSON [LINUX-JSON]: the shim (runtime /bin/true) on a fresh config.json
	# printf, not jq: jq would turn 18446744073709551615 into a float
	printf '{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"env": %s}, "linux": %s}\n' \
		"$1" "${2:-{\}}" >"$b/config.json"
	cp "$b/config.json" "$w/orig.json"
	GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "shim with $1: $(cat "$w/out")"
}
nodes() { jq -r '[.linux.devices[]? | "\(.path) \(.type) \(.major):\(.minor) \(.fileMode)"] | join(",")' "$b/config.json"; }
rules() { jq -r '[.linux.resources.devices[]? | select(.allow) | "\(.type) \(.major):\(.minor) \(.access)"] | join(",")' "$b/config.json"; }
edit '["NVIDIA_VISIBLE_DEVICES=1"]'
[ "$(nodes)" = "/dev/nvidiactl c 195:255 438,/dev/nvidia1 c 195:1 438,/dev/nvidia-uvm c 237:0 438,/dev/nvidia-uvm-tools c 237:1 438" ] ||
	hk_fail "NVIDIA_VISIBLE_DEVICES=1: linux.devices is $(nodes)"
[ "$(rules)" = "c 195:255 rwm,c 195:1 rwm,c 237:0 rwm,c 237:1 rwm" ] || hk_fail "NVIDIA_VISIBLE_DEVICES=1: the allow rules are $(rules)"
edit '["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=utility"]' \
	'{"resources": {"memory": {"limit": 18446744073709551615}}, "devices": [{"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0}]}'
[ "$(nodes)" = "/dev/nvidia0 c 195:0 null,/dev/nvidiactl c 195:255 438,/dev/nvidia1 c 195:1 438" ] ||
	hk_fail "all, utility, nvidia0 declared already: linux.devices is $(nodes)"
[ "$(rules)" = "c 195:255 rwm,c 195:1 rwm" ] || hk_fail "all, utility: the allow rules are $(rules)"
grep -q '"limit": 18446744073709551615' "$b/config.json" || hk_fail "the memory limit's text was not kept"
# the last --dev-root of GPU_STAGE_HOOK_OPTS counts, as in the hook's getopt_long
GPU_STAGE_HOOK_OPTS="--dev-root=/nonexistent $GPU_STAGE_HOOK_OPTS" edit '["NVIDIA_VISIBLE_DEVICES=1"]'
[ "$(rules)" = "c 195:255 rwm,c 195:1 rwm,c 237:0 rwm,c 237:1 rwm" ] || hk_fail "two --dev-root: the allow rules are $(rules)"
edit '["NVIDIA_VISIBLE_DEVICES=none"]'
[ -z "$(nodes)" ] && [ -z "$(rules)" ] || hk_fail "NVIDIA_VISIBLE_DEVICES=none: devices were declared: $(nodes) / $(rules)"
edit '["PATH=/bin"]'
cmp -s "$b/config.json" "$w/orig.json" || hk_fail "a container without a GPU request had its config.json changed"
hk_ok "the edit: exactly the hook's nodes, each allowed; none for none; declared nodes kept"

# Docker's --gpus with gpu-stage's nvidia-container-runtime-hook link: the
# hook is there, the device rules (which no hook can add on cgroup v2) are
# still declared, no second hook; NVIDIA's own hook of that name: untouched
mkdir -p "$w/link" "$w/nvidia"
ln -sf "$(dirname "$SHIM")/gpu-stage-hook" "$w/link/nvidia-container-runtime-hook"
printf '#!/bin/sh\n' >"$w/nvidia/nvidia-container-runtime-hook"
chmod +x "$w/nvidia/nvidia-container-runtime-hook"
gpus_flag() { # DIR: config.json as dockerd writes it for --gpus 1, through the shim
	printf '{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"env": ["NVIDIA_VISIBLE_DEVICES=1"]}, "hooks": {"prestart": [{"path": "%s/nvidia-container-runtime-hook", "args": ["nvidia-container-runtime-hook", "prestart"]}]}, "linux": {}}\n' "$1" >"$b/config.json"
	cp "$b/config.json" "$w/orig.json"
	GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "shim with --gpus's hook in $1: $(cat "$w/out")"
}
gpus_flag "$w/link"
[ "$(rules)" = "c 195:255 rwm,c 195:1 rwm,c 237:0 rwm,c 237:1 rwm" ] || hk_fail "--gpus through gpu-stage's link: the allow rules are $(rules)"
[ "$(jq '[.hooks[][]] | length' "$b/config.json")" = 1 ] || hk_fail "--gpus through gpu-stage's link: a second hook: $(jq -c .hooks "$b/config.json")"
GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "the shim a second time: $(cat "$w/out")"
cp "$b/config.json" "$w/once.json"
GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle "$b" c1 >"$w/out" 2>&1 && cmp -s "$b/config.json" "$w/once.json" ||
	hk_fail "the shim over its own edit changed config.json again"
gpus_flag "$w/nvidia"
cmp -s "$b/config.json" "$w/orig.json" || hk_fail "NVIDIA's own nvidia-container-runtime-hook: config.json changed"
hk_ok "--gpus with gpu-stage's hook link: device rules declared, no second hook, a second pass changes nothing; NVIDIA's own hook: untouched"

# ---- real runc ----------------------------------------------------------------------
script='cat /dev/nvidia0 2>&1 | sed "s/^/DEV0 /"; cat /dev/nvidia1 2>&1 | sed "s/^/DEV1 /"; /opt/gs-probe libcuda.so.1 && echo PROBE_OK'
container() { # NAME ENV-JSON: a fresh bundle, run through the shim ($RUN wraps runc)
	hk_bundle "$1"
	jq --arg sc "$script" --argjson env "$2" '.process.terminal = false | .process.args = ["sh", "-c", $sc] |
		.process.env += $env | .root.readonly = true' "$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"
	HK_CTRS+=("$1")
	(cd "$HK_B" && GPU_STAGE_RUNTIME=runc ${RUN:-} timeout 120 "$SHIM" run "$1") >"$w/$1.out" 2>&1 ||
		hk_fail "$1: runc run through the shim failed: $(cat "$w/$1.out")"
}
container v1 '["NVIDIA_VISIBLE_DEVICES=0"]'
grep -q '^DEV0 .*No such device or address' "$w/v1.out" || hk_fail "v1: /dev/nvidia0 is not allowed: $(cat "$w/v1.out")"
grep -q '^DEV1 .*No such file or directory' "$w/v1.out" || hk_fail "v1: /dev/nvidia1 is there: $(cat "$w/v1.out")"
grep -q '^PROBE_OK$' "$w/v1.out" || hk_fail "v1: the driver did not arrive: $(cat "$w/v1.out")"
tail -n 1 "$HK_AUDIT" | jq -e '[.plan.operations[]? | select(.destination == "/dev/nvidia0") | .note] | any(test("made by the runtime"))' >/dev/null ||
	hk_fail "v1: the hook did not find /dev/nvidia0 made by the runtime: $(tail -n 1 "$HK_AUDIT")"
hk_ok "runc (cgroup v1): the nodes are the runtime's, GPU 0 allowed, GPU 1 absent, the driver arrives"

# cgroup v2: runc sees a cgroup2 file system at /sys/fs/cgroup in a private
# mount namespace and puts the device rules into an eBPF program
v2run() { unshare -m --propagation private sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' v2run "$@"; }
RUN=v2run container v2 '["NVIDIA_VISIBLE_DEVICES=0"]'
grep -q '^DEV0 .*No such device or address' "$w/v2.out" || hk_fail "v2: /dev/nvidia0 is not allowed: $(cat "$w/v2.out")"
grep -q '^DEV1 .*No such file or directory' "$w/v2.out" || hk_fail "v2: /dev/nvidia1 is there: $(cat "$w/v2.out")"
grep -q '^PROBE_OK$' "$w/v2.out" || hk_fail "v2: the driver did not arrive: $(cat "$w/v2.out")"
# the program denies what it was not given: a node made but not allowed
hk_bundle v2deny
jq --arg sc "$script" '.process.terminal = false | .process.args = ["sh", "-c", $sc] |
	.linux.devices += [{path: "/dev/nvidia1", type: "c", major: 195, minor: 1, fileMode: 438}]' \
	"$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"
HK_CTRS+=(v2deny)
(cd "$HK_B" && v2run timeout 120 runc run v2deny) >"$w/v2deny.out" 2>&1 || true
grep -q '^DEV1 .*Operation not permitted' "$w/v2deny.out" || hk_fail "v2: a node without an allow rule was not refused by the eBPF program: $(cat "$w/v2deny.out")"
hk_ok "runc (cgroup v2, eBPF): GPU 0 allowed through the shim's rules, a node without a rule refused"
echo "shim_devices.sh: all cases passed"
