#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage-hook refuses bad input with a clear message and exit 1 (2 for
# usage errors), before touching anything: malformed, duplicate-keyed,
# wrongly typed or empty state JSON on stdin; malformed config.json; a
# container pid that is gone; a missing store; a driver version that is
# not staged (and no --driver with no loaded module); an unmet
# NVIDIA_REQUIRE_CUDA (and NVIDIA_DISABLE_REQUIRE overriding it); a bad
# NVIDIA_VISIBLE_DEVICES; a missing capability; a pid that is no container
# (in the hook's own mount namespace, or in another whose rootfs is not the
# bundle's), whose devices cgroup must gain nothing.  A container without
# NVIDIA_VISIBLE_DEVICES is left alone (exit 0, no audit record).
# --dry-run prints the plan.
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${GS_BUILD:-build}
HOOK=${GS_HOOK:-$B/gpu-stage-hook}
GS=$B/gpu-stage
VER=535.261.03
skip() { echo "hook_errors.sh: SKIP: $*" >&2; exit 77; }
fail() { echo "hook_errors.sh: FAIL: $*" >&2; exit 1; }
[ -x "$HOOK" ] || skip "$HOOK is not built (make)"
[ -x "$GS" ] || skip "$GS is not built (make)"
[ "$(id -u)" -eq 0 ] || skip "needs root (the hook checks its privileges)"
command -v jq >/dev/null || skip "jq is not installed (bash tests/deps.sh)"

work=$(mktemp -d /tmp/gs-hookerr-XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
bash fixtures/mkdriver.sh "$work/drv" --version "$VER" >"$work/mk.log" 2>&1 || fail "mkdriver.sh: $(tail -3 "$work/mk.log")"
"$GS" --root "$work/drv" --store "$work/store" --driver "$VER" --caps all >"$work/st.log" 2>&1 || fail "staging: $(cat "$work/st.log")"
mkdir -p "$work/bundle/rootfs/etc" "$work/noproc"

config() { # ENV... -> bundle/config.json
	jq -n --args '{ociVersion: "1.0.2", root: {path: "rootfs"}, process: {env: $ARGS.positional},
		linux: {namespaces: [{type: "mount"}]}}' "$@" >"$work/bundle/config.json"
}
state() { printf '{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":%s,"bundle":"%s"}' "${1:-$$}" "$work/bundle"; }

# expect RC PATTERN STDIN ARGS...: runs the hook, checks status and stderr
expect() {
	local rc=$1 pat=$2 in=$3 got=0
	shift 3
	printf '%s' "$in" | "$HOOK" --audit-log "$work/audit.log" --proc-root "$work/noproc" "$@" >"$work/out" 2>&1 || got=$?
	[ "$got" -eq "$rc" ] || fail "hook $* with stdin '${in:0:80}': exit $got, expected $rc: $(cat "$work/out")"
	[ -z "$pat" ] || grep -Eq -- "$pat" "$work/out" || fail "hook $*: message does not match /$pat/: $(cat "$work/out")"
}

config NVIDIA_VISIBLE_DEVICES=none
S=$(state)
expect 2 'expected exactly one STAGE' "$S" --store "$work/store"
expect 2 'unknown stage' "$S" --store "$work/store" poststop
expect 1 'state \(stdin\): empty input' "" --store "$work/store" prestart
expect 1 'state \(stdin\): line 1' '{"ociVersion":' --store "$work/store" prestart
expect 1 'duplicate' '{"ociVersion":"1.0.2","id":"a","id":"b","bundle":"/x"}' --store "$work/store" prestart
expect 1 '"pid" must be an integer' '{"ociVersion":"1.0.2","id":"a","pid":"12","bundle":"/x"}' --store "$work/store" prestart
expect 1 '"bundle" must be an absolute path' '{"ociVersion":"1.0.2","id":"a","pid":1,"bundle":"x"}' --store "$work/store" prestart
expect 1 '"bundle" is missing' '{"ociVersion":"1.0.2","id":"a","pid":1}' --store "$work/store" prestart
expect 1 'not a JSON object' '[1,2]' --store "$work/store" prestart
expect 1 "bundle $work/nope" "$(printf '{"ociVersion":"1.0.2","id":"a","pid":1,"bundle":"%s"}' "$work/nope")" --store "$work/store" prestart

# config.json is read as runc reads it: the last of a key given twice counts
echo '{"root": {"path": "rootfs"}, "process": {"env": ["NVIDIA_VISIBLE_DEVICES=0"]}, "process": {"env": ["A=1"]}}' >"$work/bundle/config.json"
expect 0 '' "$S" --store "$work/store" prestart
echo '{"root": {"path": "rootfs"}, "process": {"env": ["A=1"]}, "process": {"env": ["NVIDIA_VISIBLE_DEVICES=0"]}}' >"$work/bundle/config.json"
expect 1 'NVIDIA_VISIBLE_DEVICES asks for GPUs' "$S" --store "$work/store" --driver 535.261.03 prestart
echo '{"root": {"path": 7}}' >"$work/bundle/config.json"
expect 1 'root: "path" must be a string' "$S" --store "$work/store" prestart
echo '{"root": {"path": "rootfs"}, "process": {"env": ["A=1", 2]}}' >"$work/bundle/config.json"
expect 1 'process.env\[1\] must be a string' "$S" --store "$work/store" prestart
echo '{"root": {}, "process": {"env": ["NVIDIA_VISIBLE_DEVICES=0"' >"$work/bundle/config.json"
expect 1 'config.json: line' "$S" --store "$work/store" prestart
# one jansson cannot read that cannot ask for a GPU: nothing to do
echo '{"root": ' >"$work/bundle/config.json"
expect 0 '' "$S" --store "$work/store" prestart

# not a GPU container: nothing happens, nothing is recorded
config PATH=/bin
expect 0 '' "$S" --store "$work/store" prestart
config NVIDIA_VISIBLE_DEVICES=void
expect 0 '' "$S" --store "$work/store" prestart
[ ! -e "$work/audit.log" ] || fail "an audit record was written for a container that asked for nothing"

config NVIDIA_VISIBLE_DEVICES=none
expect 1 "driver $VER is not staged in $work/missing" "$S" --store "$work/missing" --driver "$VER" prestart
expect 1 "driver 550.163.01 is not staged in $work/store.*gpu-stage --driver 550.163.01" "$S" --store "$work/store" --driver 550.163.01 prestart
expect 1 "no NVIDIA kernel module version in $work/noproc/driver/nvidia/version" "$S" --store "$work/store" prestart
config NVIDIA_VISIBLE_DEVICES=bogus
expect 1 "NVIDIA_VISIBLE_DEVICES: 'bogus' is neither" "$S" --store "$work/store" --driver "$VER" prestart
config NVIDIA_VISIBLE_DEVICES=none "NVIDIA_REQUIRE_CUDA=cuda>=12.4"
expect 1 "NVIDIA_REQUIRE_CUDA='cuda>=12.4' is not met by driver $VER" "$S" --store "$work/store" --driver "$VER" prestart
config NVIDIA_VISIBLE_DEVICES=none "NVIDIA_REQUIRE_CUDA=cuda>=12.4" NVIDIA_DISABLE_REQUIRE=true
expect 0 'bind-dir .*/lib/compute -> /run/gpu-stage/lib/compute' "$S" --store "$work/store" --driver "$VER" --dry-run prestart
config NVIDIA_VISIBLE_DEVICES=none "NVIDIA_REQUIRE_CUDA=cuda>=12.0 driver>=600"
expect 0 'ldcache +/etc/ld.so.cache' "$S" --store "$work/store" --driver "$VER" --dry-run prestart

# a missing privilege is named (root without CAP_SYS_ADMIN in its bounding set)
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed: the missing-privilege case cannot run"
config NVIDIA_VISIBLE_DEVICES=none
got=0
state | setpriv --bounding-set -sys_admin "$HOOK" --audit-log "$work/audit.log" --store "$work/store" \
	--driver "$VER" prestart >"$work/out" 2>&1 || got=$?
[ "$got" -eq 1 ] && grep -q 'missing privilege cap_sys_admin' "$work/out" ||
	fail "without CAP_SYS_ADMIN: exit $got, $(cat "$work/out")"

# a container process that is gone
sh -c 'exit 0' &
gone=$!
wait "$gone"
expect 1 "is container process $gone gone" "$(state "$gone")" --store "$work/store" --driver "$VER" prestart
# pid 0 / absent with a stage that needs it
expect 1 'no container pid' "$(state 0)" --store "$work/store" --driver "$VER" createRuntime
# a pid in the hook's own mount namespace is not a container
expect 1 "shares the hook's mount namespace" "$(state $$)" --store "$work/store" --driver "$VER" prestart
grep -c '"result":"failed"' "$work/audit.log" | grep -qx 3 || fail "expected 3 failed audit records: $(cat "$work/audit.log")"

# A pid that is no container (here: a process in the hook's own mount
# namespace, as after a pid reuse) is refused before anything is changed
# for it: its devices cgroup (v1) gains no rule.
cg=/sys/fs/cgroup/devices
if [ -w "$cg/cgroup.procs" ]; then
	mkdir -p "$work/proc/driver/nvidia/gpus/0000:01:00.0" "$work/dev"
	printf 'GPU UUID: \t GPU-11111111-2222-3333-4444-555555555555\nDevice Minor: \t 0\n' \
		>"$work/proc/driver/nvidia/gpus/0000:01:00.0/information"
	mknod "$work/dev/nvidiactl" c 195 255
	mknod "$work/dev/nvidia0" c 195 0
	mknod "$work/dev/nvidia-uvm" c 237 0 # compute: the hook requires it (require_uvm)
	cgd=$cg/gs-hookerr-$$
	# victim_case WHAT MESSAGE: runs the hook against $victim, placed in a
	# fresh devices cgroup that denies everything; the hook must refuse with
	# MESSAGE and the cgroup must gain no rule.
	victim_case() {
		local what=$1 want=$2 got=0 list
		echo "$victim" >"$cgd/cgroup.procs"
		echo a >"$cgd/devices.deny"
		state "$victim" | "$HOOK" --audit-log "$work/audit.log" --store "$work/store" --driver "$VER" \
			--proc-root "$work/proc" --dev-root "$work/dev" prestart >"$work/out" 2>&1 || got=$?
		list=$(cat "$cgd/devices.list")
		kill "$victim"
		wait "$victim" 2>/dev/null || true
		rmdir "$cgd"
		[ "$got" -eq 1 ] && grep -q "$want" "$work/out" || fail "$what: exit $got: $(cat "$work/out")"
		[ -z "$list" ] || fail "$what: the hook allowed devices in its cgroup: $list"
	}

	mkdir "$cgd"
	config NVIDIA_VISIBLE_DEVICES=0
	sleep 300 &
	victim=$!
	victim_case "pid of a process in the hook's namespace" "shares the hook's mount namespace"

	# A pid in another mount namespace whose rootfs is not the bundle's (as
	# after a pid reuse by another container): refused, and its cgroup
	# gains nothing either.
	mkdir "$cgd"
	unshare -m --propagation private sh -c "mount -t tmpfs none '$work/bundle/rootfs' && exec sleep 300" &
	victim=$!
	for _ in $(seq 50); do grep -q " $work/bundle/rootfs " "/proc/$victim/mountinfo" 2>/dev/null && break; sleep 0.1; done
	victim_case "pid of another namespace with another rootfs" "not the directory the bundle names"
else
	echo "hook_errors.sh: SKIP: no writable cgroup v1 devices hierarchy at $cg: the device-rule cases did not run" >&2
	exit 77
fi
echo "hook_errors.sh: all refusals clear"
