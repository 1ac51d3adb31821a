#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The boot unit (stage/gpu-stage.service.in, as make install writes it):
# `systemd-analyze verify` passes with no complaint; it is ordered before
# every engine and after the module loads; and its ExecStart, read from the
# unit file, is run as systemd would run it (an empty environment, the
# unit's UMask, NoNewPrivileges and CapabilityBoundingSet, through setpriv)
# against fake roots (--root, and a configuration for the store and the CDI
# directory, appended): a root whose proc/driver/nvidia/version names VER
# stages VER and re-writes the CDI spec of gpu-stage's found there (a GPU
# added since shows up); no module loaded: exit 0, "nothing to stage",
# nothing staged, the spec untouched; a loaded module whose files are not
# installed: exit 1 with the reason (the unit fails, visibly); run again on
# the staged driver: "unchanged".  `make install` writes BINDIR into it.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
need_root "mknod of the fake GPU nodes"
need_tools jq setpriv systemd-analyze
need_built "$GS" "${GS_BUILD:-build}/gpu-stage-hook"
VER=535.261.03
UNIT_IN=stage/gpu-stage.service.in
make_work
ok() { echo "$T: ok: $*"; }
BIN=$(cd "$(dirname "$GS")" && pwd)

# ---- the unit file ----
sed "s|@BINDIR@|$BIN|g" "$UNIT_IN" >"$work/gpu-stage.service"
systemd-analyze verify --man=no "$work/gpu-stage.service" >"$work/verify" 2>&1 ||
	fail "systemd-analyze verify: $(cat "$work/verify")"
[ ! -s "$work/verify" ] || fail "systemd-analyze verify complains: $(cat "$work/verify")"
key() { sed -n "s/^$1=//p" "$work/gpu-stage.service"; }
for e in docker.service containerd.service podman.service crio.service; do
	key Before | tr ' ' '\n' | grep -qx "$e" || fail "not Before=$e: $(key Before)"
done
key After | tr ' ' '\n' | grep -qx systemd-modules-load.service || fail "not After=systemd-modules-load.service"
[ "$(key Type)" = oneshot ] && [ "$(key WantedBy)" = multi-user.target ] || fail "Type=$(key Type) WantedBy=$(key WantedBy)"
make -s install DESTDIR="$work/inst" PREFIX=/opt/gs BUILD="${GS_BUILD:-build}" >/dev/null 2>&1 || fail "make install"
grep -qx 'ExecStart=/opt/gs/bin/gpu-stage stage --if-loaded --quiet' "$work/inst/opt/gs/lib/systemd/system/gpu-stage.service" ||
	fail "make install's unit: $(grep ExecStart "$work/inst/opt/gs/lib/systemd/system/gpu-stage.service")"
ok "systemd-analyze verify clean; Before= the engines, After= modules-load; make install names BINDIR"

# ---- ExecStart as systemd runs it ----
read -r -a EXEC <<<"$(key ExecStart)"
[ "${EXEC[0]}" = "$BIN/gpu-stage" ] || fail "ExecStart runs ${EXEC[0]}"
# CapabilityBoundingSet=CAP_X CAP_Y as setpriv's -all,+x,+y (empty: none at all)
caps=$(key CapabilityBoundingSet | tr 'A-Z' 'a-z' | sed 's/cap_//g; s/^\(.\)/+\1/; s/ /,+/g')
grep -q '^CapabilityBoundingSet=' "$work/gpu-stage.service" || fail "the unit sets no CapabilityBoundingSet"
[ "$(key NoNewPrivileges)" = yes ] || fail "NoNewPrivileges=$(key NoNewPrivileges)"
# unit ROOT [ARG...]: the unit's command line with --root ROOT (and ARGs) appended; OUT, ERR, RC
unit() {
	rc=0
	(umask "$(key UMask)" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin GPU_STAGE_CONFIG="$work/config.json" \
		setpriv --no-new-privs --bounding-set "-all${caps:+,$caps}" -- "${EXEC[@]}" --root "$@") \
		>"$work/out" 2>"$work/err" || rc=$?
}

# the bounding set really is that small (setpriv is not a no-op here)
rc=0
(exec env -i setpriv --no-new-privs --bounding-set "-all${caps:+,$caps}" -- grep -E '^(CapBnd|NoNewPrivs):' /proc/self/status) >"$work/status" || rc=$?
[ $rc = 0 ] && [ "$(grep NoNewPrivs "$work/status" | awk '{print $2}')" = 1 ] || fail "setpriv: $(cat "$work/status")"
[ "$caps" = +sys_ptrace ] && grep -qx 'CapBnd:	0000000000080000' "$work/status" ||
	fail "the unit's bounding set is not CAP_SYS_PTRACE alone: '$caps', $(cat "$work/status")"

bash fixtures/mkdriver.sh "$work/host" --version "$VER" --no-i386 >"$work/mk.log" 2>&1 ||
	fail "mkdriver.sh: $(tail -3 "$work/mk.log")"
H=$work/host
fake_gpus "$H" "$VER" 0 1
jq -n --arg w "$work" --arg h "$H" '{store: ($w + "/store"), cdi_dir: ($w + "/cdi"), dev_root: ($h + "/dev"),
	proc_root: ($h + "/proc")}' >"$work/config.json"
# a spec of gpu-stage's from an earlier boot: written for a staged driver, then the store emptied
GPU_STAGE_CONFIG=$work/config.json "$GS" --root "$H" -q >/dev/null 2>&1 || fail "staging for the first spec"
GPU_STAGE_CONFIG=$work/config.json "$GS" cdi >/dev/null 2>"$work/err" || fail "gpu-stage cdi: $(cat "$work/err")"
GPU_STAGE_CONFIG=$work/config.json "$GS" remove "$VER" >/dev/null || fail "gpu-stage remove"
SPEC=$work/cdi/nvidia.com-gpu.json
[ "$(jq '.devices | length' "$SPEC")" = 5 ] || fail "the first spec: $(jq -c '[.devices[].name]' "$SPEC")"
cp "$SPEC" "$work/spec.before"

# no module loaded: nothing to stage, exit 0, nothing touched
mv "$H/proc/driver/nvidia/version" "$work/version"
mv "$H/sys/module/nvidia/version" "$work/sysversion"
unit "$H"
[ $rc = 0 ] || fail "no module: exit $rc: $(cat "$work/out" "$work/err")"
grep -q 'no nvidia kernel module loaded .*: nothing to stage' "$work/out" || fail "no module: $(cat "$work/out")"
[ -z "$(GPU_STAGE_CONFIG=$work/config.json "$GS" list)" ] || fail "no module, but staged: $(GPU_STAGE_CONFIG=$work/config.json "$GS" list)"
cmp -s "$SPEC" "$work/spec.before" || fail "no module, but the spec changed"
ok "no module loaded: exit 0, nothing to stage, nothing staged, spec untouched"

# the module names VER: staged, and the spec re-written with the GPU added since
mv "$work/version" "$H/proc/driver/nvidia/version"
mv "$work/sysversion" "$H/sys/module/nvidia/version"
mkdir "$H/proc/driver/nvidia/gpus/0000:03:00.0"
printf 'GPU UUID: \t GPU-cccccccc-2222-3333-4444-555555555555\nDevice Minor: \t 2\n' \
	>"$H/proc/driver/nvidia/gpus/0000:03:00.0/information"
mknod "$H/dev/nvidia2" c 195 2
unit "$H"
[ $rc = 0 ] || fail "module $VER: exit $rc: $(cat "$work/out" "$work/err")"
grep -q "^staged: driver $VER in $work/store/$VER" "$work/out" || fail "module $VER: $(cat "$work/out")"
grep -qx "CDI spec $SPEC re-written" "$work/out" || fail "the spec not re-written: $(cat "$work/out")"
[ "$(GPU_STAGE_CONFIG=$work/config.json "$GS" list)" = "$VER" ] || fail "list: $(GPU_STAGE_CONFIG=$work/config.json "$GS" list)"
GPU_STAGE_CONFIG=$work/config.json "$GS" verify "$VER" >/dev/null || fail "verify $VER"
jq -e '[.devices[].name] | index("GPU-cccccccc-2222-3333-4444-555555555555") != null and length == 7' "$SPEC" >/dev/null ||
	fail "the re-written spec: $(jq -c '[.devices[].name]' "$SPEC")"
! grep -v '^gpu-stage: warning: ' "$work/err" || fail "stderr: $(cat "$work/err")"
ok "module $VER: staged under the unit's privileges, CDI spec re-written (7 devices)"

unit "$H"
[ $rc = 0 ] && grep -q "^unchanged: driver $VER" "$work/out" || fail "second run: exit $rc: $(cat "$work/out")"
ok "again at the next boot: unchanged"

# under the unit's capabilities a replaced tree that a container still mounts (another mount
# namespace, its processes holding every capability) is kept, and deleted once unused
mkdir -p "$work/mnt"
unshare -m --propagation private sh -c "mount --bind '$work/store/$VER' '$work/mnt' && exec sleep 120" &
holder=$!
trap 'kill $holder 2>/dev/null || true; chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
for i in $(seq 50); do grep -q " $work/mnt " "/proc/$holder/mountinfo" 2>/dev/null && break; sleep 0.1; done
grep -q " $work/mnt " "/proc/$holder/mountinfo" || fail "the holder's bind mount"
unit "$H" --force
[ $rc = 0 ] && grep -q "^replaced: driver $VER" "$work/out" || fail "--force: exit $rc: $(cat "$work/out" "$work/err")"
[ -n "$(find "$work/store" -maxdepth 1 -name '.tmp-*')" ] || fail "the tree a mount still shows was deleted"
kill $holder; wait $holder 2>/dev/null || true
unit "$H"
[ $rc = 0 ] && [ -z "$(find "$work/store" -maxdepth 1 -name '.tmp-*')" ] || fail "the unused tree is still there: $(ls -a "$work/store")"
ok "with CAP_SYS_PTRACE alone a tree still mounted elsewhere is kept, then deleted once unused"

# without CAP_SYS_PTRACE (a misconfigured unit, a pod without it) the
# holder's mount table cannot be read: the replaced tree is kept all the
# same (it deleted it before), and a run with the capability deletes it
unshare -m --propagation private sh -c "mount --bind '$work/store/$VER' '$work/mnt' && exec sleep 120" &
holder=$!
for i in $(seq 50); do grep -q " $work/mnt " "/proc/$holder/mountinfo" 2>/dev/null && break; sleep 0.1; done
grep -q " $work/mnt " "/proc/$holder/mountinfo" || fail "the second holder's bind mount"
caps_saved=$caps caps=
unit "$H" --force
caps=$caps_saved
[ $rc = 0 ] && grep -q "^replaced: driver $VER" "$work/out" || fail "--force without capabilities: exit $rc: $(cat "$work/out" "$work/err")"
[ -n "$(find "$work/store" -maxdepth 1 -name '.tmp-*')" ] || fail "without CAP_SYS_PTRACE the tree a mount still shows was deleted"
kill $holder; wait $holder 2>/dev/null || true
unit "$H"
[ $rc = 0 ] && [ -z "$(find "$work/store" -maxdepth 1 -name '.tmp-*')" ] || fail "the unused tree is still there: $(ls -a "$work/store")"
ok "without CAP_SYS_PTRACE a tree that may still be mounted is kept (mount tables unreadable), deleted by the next run that can look"

# a module whose user-space files are not installed (a .run install half removed): the unit fails, saying why
sed -i "s/$VER/550.163.01/" "$H/proc/driver/nvidia/version"
unit "$H"
[ $rc = 1 ] || fail "module without its files: exit $rc: $(cat "$work/out")"
grep -q '^gpu-stage: .*550.163.01' "$work/err" || fail "module without its files: $(cat "$work/err")"
[ "$(GPU_STAGE_CONFIG=$work/config.json "$GS" list)" = "$VER" ] || fail "the store changed"
ok "module without its files: exit 1 with the reason, the store as it was"

# usage: --if-loaded excludes --driver and --installed
for args in "--if-loaded --driver $VER" "--if-loaded --installed"; do
	rc=0
	# shellcheck disable=SC2086
	"$GS" stage $args >/dev/null 2>"$work/err" || rc=$?
	[ $rc = 2 ] || fail "stage $args: exit $rc, not 2"
done
echo "$T: PASS"
