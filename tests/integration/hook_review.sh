#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Findings of the outside review (issue 12), items 2 and 7, on a cgroup v1
# devices hierarchy, calling gpu-stage-hook directly as hook_errors.sh does:
#
# - a devices cgroup path longer than 2048 bytes whose first 2047 bytes name
#   a sibling cgroup (the attack): the rules land in the process's own
#   cgroup, the sibling gains nothing, the audit record names the whole path;
# - a path too long for the hook to open (past PATH_MAX with devices.allow):
#   refused, exit 1, a clear message, neither cgroup gains anything;
# - a pid that is no container although it has a mount namespace of its own
#   (unshare -m: its view of the rootfs is the host's), and one that
#   bind-mounts the rootfs onto itself inside a user namespace of its own:
#   refused, its cgroup gains nothing;
# - createContainer inside a cgroup namespace (config.json has "cgroup") with
#   a device asked for: exit 1, the message says to use prestart or
#   createRuntime, no "ok" record; with no device asked for it proceeds.
# The "fake containers" here bind-mount the rootfs onto itself in a private
# mount namespace, which is what runc and crun leave at prestart time.
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${GS_BUILD:-build}
HOOK=${GS_HOOK:-$B/gpu-stage-hook}
GS=$B/gpu-stage
VER=535.261.03
CG=/sys/fs/cgroup/devices
skip() { echo "hook_review.sh: SKIP: $*" >&2; exit 77; }
fail() { echo "hook_review.sh: FAIL: $*" >&2; exit 1; }
ok() { echo "hook_review.sh: ok: $*"; }
[ -x "$HOOK" ] || skip "$HOOK is not built (make)"
[ -x "$GS" ] || skip "$GS is not built (make)"
[ "$(id -u)" -eq 0 ] || skip "needs root (cgroups, mount namespaces)"
for t in jq unshare find; do command -v "$t" >/dev/null || skip "$t is not installed"; done
[ -w "$CG/cgroup.procs" ] || skip "no writable cgroup v1 devices hierarchy at $CG"

work=$(mktemp -d /tmp/gs-hookrev-XXXXXX)
top=$CG/gs-hookrev-$$
victims=()
cleanup() {
	local v
	for v in "${victims[@]}"; do kill "$v" 2>/dev/null || true; done
	for v in "${victims[@]}"; do wait "$v" 2>/dev/null || true; done
	# deepest first; -execdir, as the deep paths exceed PATH_MAX
	[ ! -d "$top" ] || find "$top" -depth -type d -execdir rmdir {} + 2>/dev/null || true
	[ ! -d "$top" ] || echo "hook_review.sh: warning: could not remove $top" >&2
	chmod -R u+w "$work" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir "$top"

bash fixtures/mkdriver.sh "$work/drv" --version "$VER" >"$work/mk.log" 2>&1 || fail "mkdriver.sh: $(tail -3 "$work/mk.log")"
"$GS" --root "$work/drv" --store "$work/store" --driver "$VER" --caps all >"$work/st.log" 2>&1 || fail "staging: $(cat "$work/st.log")"
rootfs=$work/bundle/rootfs
mkdir -p "$rootfs/etc" "$work/proc/driver/nvidia/gpus/0000:01:00.0" "$work/dev"
printf 'GPU UUID: \t GPU-11111111-2222-3333-4444-555555555555\nDevice Minor: \t 0\n' \
	>"$work/proc/driver/nvidia/gpus/0000:01:00.0/information"
mknod "$work/dev/nvidiactl" c 195 255
mknod "$work/dev/nvidia0" c 195 0
mknod "$work/dev/nvidia-uvm" c 237 0 # compute: the hook requires it (require_uvm)

config() { # NSJSON ENV...
	local ns=$1
	shift
	jq -n --argjson ns "$ns" --args '{ociVersion: "1.0.2", root: {path: "rootfs"},
		process: {env: $ARGS.positional}, linux: {namespaces: $ns}}' "$@" >"$work/bundle/config.json"
}
state() { printf '{"ociVersion":"1.0.2","id":"%s","status":"creating","pid":%s,"bundle":"%s"}' "$1" "$2" "$work/bundle"; }
hook() { # ID PID STAGE [PREFIX...]: runs the hook, sets $got
	local id=$1 pid=$2 stage=$3
	shift 3
	got=0
	state "$id" "$pid" | "$@" "$HOOK" --audit-log "$work/audit.log" --store "$work/store" --driver "$VER" \
		--proc-root "$work/proc" --dev-root "$work/dev" "$stage" >"$work/out" 2>&1 || got=$?
}
record() { grep -F "\"container\":\"$1\"" "$work/audit.log" || true; }
# a process in a private mount namespace with the rootfs bound onto itself
# (what runc and crun leave before prestart), or, with "bare", without
fake_container() {
	if [ "${1:-}" = bare ]; then
		unshare -m --propagation private sleep 300 &
	else
		unshare -m --propagation private sh -c "mount --bind '$rootfs' '$rootfs' && exec sleep 300" &
	fi
	victim=$!
	victims+=("$victim")
	for _ in $(seq 50); do
		[ "$(readlink "/proc/$victim/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
			[ "$(cat "/proc/$victim/comm" 2>/dev/null)" = sleep ] && return 0
		sleep 0.1
	done
	fail "the test process did not start"
}
# deep_cgroup LEN: makes $top/ddd.../ddd... (components of 200 bytes) whose
# path below the hierarchy is LEN bytes, and a sibling cgroup named by its
# first 2047 bytes (what the old 2048-byte buffer kept); both deny every
# device.  Sets DEEP (relative to $CG) and SIB.
deep_cgroup() {
	local len=$1 tag=$2 p comp
	p=/gs-hookrev-$$/$tag
	while [ ${#p} -lt "$len" ]; do
		comp=$(printf "%*s" $((len - ${#p} - 1 > 200 ? 200 : len - ${#p} - 1)) '' | tr ' ' d)
		p=$p/$comp
	done
	DEEP=$p
	SIB=${p:0:2047}
	[ "${SIB: -1}" != / ] && [ "${p:2047:1}" != / ] || fail "test bug: the prefix ends on a component"
	# (only the leaves deny: a v1 child can never allow what its parent denies)
	(cd "$CG" && for c in ${DEEP//\// }; do [ -d "$c" ] || mkdir "$c"; cd "$c"; done && echo a >devices.deny)
	mkdir "$CG$SIB" && echo a >"$CG$SIB/devices.deny"
}
# in_cg REL CMD...: runs CMD in $CG/REL (a path that may exceed PATH_MAX)
in_cg() {
	local rel=$1
	shift
	(cd "$CG" && for c in ${rel//\// }; do cd "$c"; done && "$@")
}
list() { in_cg "$1" cat devices.list; }

# ---- item 2: a cgroup path longer than the old buffer ------------------------
config '[{"type": "mount"}]' NVIDIA_VISIBLE_DEVICES=0
deep_cgroup 2300 long
fake_container
in_cg "$DEEP" sh -c "echo $victim >cgroup.procs"
grep -qF ":devices:$DEEP" "/proc/$victim/cgroup" || fail "the test process is not in its deep cgroup"
hook long "$victim" prestart
[ "$got" -eq 0 ] || fail "2300-byte cgroup path: exit $got: $(cat "$work/out")"
[ -z "$(list "$SIB")" ] || fail "2300-byte cgroup path: the sibling named by its first 2047 bytes gained rules: $(list "$SIB")"
[ "$(list "$DEEP" | sort | tr '\n' ' ')" = "c 195:0 rwm c 195:255 rwm c 237:0 rwm " ] ||
	fail "2300-byte cgroup path: the process's own cgroup did not get exactly its devices: '$(list "$DEEP")'"
record long | jq -e --arg p "$CG$DEEP" '.result == "ok" and (.devices_cgroup | endswith(" for " + $p))' >/dev/null ||
	fail "2300-byte cgroup path: the audit record does not name the whole path: $(record long | jq -c .devices_cgroup)"
ok "2300-byte devices cgroup path: rules in its own cgroup, none in the 2047-byte-prefix sibling"

deep_cgroup 4090 huge
fake_container
in_cg "$DEEP" sh -c "echo $victim >cgroup.procs"
hook huge "$victim" prestart
[ "$got" -eq 1 ] && grep -q "/proc/$victim/cgroup: the devices cgroup path is 4090 bytes long" "$work/out" ||
	fail "4090-byte cgroup path: exit $got, expected 1 and a clear refusal: $(cat "$work/out")"
[ -z "$(list "$SIB")" ] || fail "4090-byte cgroup path: the sibling gained rules: $(list "$SIB")"
[ -z "$(list "$DEEP")" ] || fail "4090-byte cgroup path: its cgroup gained rules: $(list "$DEEP")"
record huge | jq -e '.result == "failed"' >/dev/null || fail "4090-byte cgroup path: the audit record is not 'failed': $(record huge)"
ok "4090-byte devices cgroup path: refused (exit 1), no cgroup changed"

# ---- item 7a: a pid that is no container -----------------------------------
# not_container ID WHAT MESSAGE: the hook refuses $victim, placed in a
# fresh cgroup that denies everything, and the cgroup gains nothing
not_container() {
	local id=$1 what=$2 want=$3 d=/gs-hookrev-$$/$1
	mkdir "$CG$d"
	echo a >"$CG$d/devices.deny"
	echo "$victim" >"$CG$d/cgroup.procs"
	hook "$id" "$victim" prestart
	[ "$got" -eq 1 ] && grep -q -- "$want" "$work/out" || fail "$what: exit $got, expected 1 and /$want/: $(cat "$work/out")"
	[ -z "$(cat "$CG$d/devices.list")" ] || fail "$what: its cgroup gained rules: $(cat "$CG$d/devices.list")"
	record "$id" | jq -e '.result == "failed"' >/dev/null || fail "$what: the audit record is not 'failed': $(record "$id")"
	ok "$what: refused, no device rule"
}
fake_container bare
not_container bare "unshare -m process (own mount namespace, host's view of the rootfs)" \
	"process $victim is not this container's: its mount namespace has 0 mounts on the rootfs"
unshare -U -r -m --propagation private sh -c "mount --bind '$rootfs' '$rootfs' && exec sleep 300" &
victim=$!
victims+=("$victim")
for _ in $(seq 50); do grep -q " $rootfs " "/proc/$victim/mountinfo" 2>/dev/null && break; sleep 0.1; done
not_container userns "a process in a user namespace of its own that binds the rootfs onto itself" \
	"process $victim is not this container's: it is in a user namespace of its own"

# ---- item 7b: createContainer inside a cgroup namespace ---------------------
# its cgroup denies every device but mknod ("c *:* m", "b *:* m"), as runc's
# and crun's default list does
d=/gs-hookrev-$$/cgns
mkdir "$CG$d"
echo a >"$CG$d/devices.deny"
echo 'c *:* m' >"$CG$d/devices.allow"
echo 'b *:* m' >"$CG$d/devices.allow"
before=$(cat "$CG$d/devices.list")
config '[{"type": "mount"}, {"type": "cgroup"}]' NVIDIA_VISIBLE_DEVICES=0
# createContainer runs in the container's cgroup and namespaces: the hook is
# started in $d, inside a new cgroup namespace (where $d reads as "/")
hook cgns 1 createContainer sh -c 'echo $$ >"$0/cgroup.procs" && exec unshare -C -m --propagation private "$@"' "$CG$d"
[ "$got" -eq 1 ] && grep -q 'device rules cannot be written from inside a cgroup namespace on cgroup v1: register the hook as prestart or createRuntime' "$work/out" ||
	fail "createContainer in a cgroup namespace with a device: exit $got, expected 1 and a clear message: $(cat "$work/out")"
[ "$(cat "$CG$d/devices.list")" = "$before" ] || fail "createContainer in a cgroup namespace: its cgroup changed: $(cat "$CG$d/devices.list")"
[ -n "$(record cgns)" ] || fail "createContainer in a cgroup namespace: no audit record"
if record cgns | jq -e 'select(.result == "ok")' >/dev/null; then
	fail "createContainer in a cgroup namespace: an 'ok' record though no device rule was written: $(record cgns)"
fi
ok "createContainer in a cgroup namespace with a device: refused (exit 1), no 'ok' record"
config '[{"type": "mount"}, {"type": "cgroup"}]' NVIDIA_VISIBLE_DEVICES=none
hook cgns-none 1 createContainer sh -c 'echo $$ >"$0/cgroup.procs" && exec unshare -C -m --propagation private "$@"' "$CG$d"
[ "$got" -eq 0 ] || fail "createContainer in a cgroup namespace, no device: exit $got: $(cat "$work/out")"
record cgns-none | jq -e '.result == "ok"' >/dev/null || fail "createContainer in a cgroup namespace, no device: $(record cgns-none)"
ok "createContainer in a cgroup namespace without a device: proceeds"

# ---- createContainer in PID 1's mount namespace ------------------------------
# (the host's: a runtime that runs it there, or an entry registered for the
# wrong stage): refused before anything is mounted or written, no "ok"
# record.  Made here with a pid namespace whose PID 1 is the hook itself,
# in a mount namespace of its own (nothing can reach this shell's table).
config '[{"type": "mount"}]' NVIDIA_VISIBLE_DEVICES=all
rm -rf "$rootfs/run/gpu-stage" # (made by the case before, in its own namespace)
hook hostns 1 createContainer unshare -m -p -f --mount-proc --propagation private
[ "$got" -eq 1 ] && grep -q "createContainer: the hook runs in the mount namespace of PID 1 (the host's)" "$work/out" ||
	fail "createContainer in PID 1's mount namespace: exit $got: $(cat "$work/out")"
[ ! -e "$rootfs/run/gpu-stage" ] || fail "createContainer in PID 1's mount namespace: $rootfs/run/gpu-stage made"
if record hostns | jq -e 'select(.result == "ok")' >/dev/null; then
	fail "createContainer in PID 1's mount namespace: an 'ok' record: $(record hostns)"
fi
ok "createContainer in PID 1's mount namespace: refused (exit 1), nothing made, no 'ok' record"
echo "hook_review.sh: all cases passed"
