#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage devices (issue 16) on fake hosts (--proc-root, --dev-root):
# the nodes a host should have from /proc/devices, params, the GPUs'
# information files and MIG capability files; --ensure makes the missing
# ones with nvidia-modprobe's numbers, modes and owners (and their
# /dev/char links), fixes the mode of the right node, never replaces one
# with other numbers (nor follows a symlink at nvidia-caps), leaves the
# nodes alone under ModifyDeviceFiles 0; --load runs the host's modprobe
# (the kernel's PROC/sys/kernel/modprobe, here a fake that records its
# argv and environment and registers nvidia-uvm's major) for what is not
# loaded only; exit 0 only when every node is there; usage errors exit 2.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib.sh
need_root "mknod"
need_built "$GS"
need_tools jq
make_work
P=$work/proc D=$work/dev
rc=0
dv() { rc=0; "$GS" devices --dev-root "$D" --proc-root "$P" "$@" >"$work/out" 2>"$work/err" || rc=$?; }
status_of() { jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .status' "$work/out"; }
node_is() { # PATH TYPE MAJ MIN MODE
	[ "$(stat -c '%F %t:%T %a %u:%g' "$1" 2>/dev/null)" = "$2 $(printf '%x:%x' "$3" "$4") $5 0:0" ] ||
		fail "$1: expected $2 $3:$4 mode $5 root's, found: $(stat -c '%F %t:%T %a %u:%g' "$1" 2>&1)"
}
fake_host() {
	rm -rf "$P" "$D"
	mkdir -p "$P/driver/nvidia/gpus/0000:01:00.0" "$P/driver/nvidia/gpus/0000:41:00.0" "$P/sys/kernel" "$D"
	printf 'Character devices:\n  1 mem\n195 nvidia-frontend\n237 nvidia-uvm\n\nBlock devices:\n  8 sd\n' >"$P/devices"
	printf 'GPU UUID: \t GPU-0\nDevice Minor: \t 0\n' >"$P/driver/nvidia/gpus/0000:01:00.0/information"
	printf 'GPU UUID: \t GPU-1\nDevice Minor: \t 2\n' >"$P/driver/nvidia/gpus/0000:41:00.0/information"
	printf 'ModifyDeviceFiles: 1\nDeviceFileUID: 0\nDeviceFileGID: 0\nDeviceFileMode: 438\nRegistryDwords: ""\n' \
		>"$P/driver/nvidia/params"
	mknod "$D/nvidiactl" c 195 255 && chmod 666 "$D/nvidiactl"
	mknod "$D/nvidia0" c 195 0 && chmod 666 "$D/nvidia0"
	mknod "$D/nvidia2" c 195 2 && chmod 666 "$D/nvidia2"
}

# 1. uvm's major listed, its nodes missing: listed as missing (exit 1), made by --ensure
fake_host
dv --json
[ "$rc" -eq 1 ] || fail "missing uvm nodes: exit $rc, expected 1: $(cat "$work/err")"
[ "$(status_of nvidia-uvm)" = missing ] && [ "$(status_of nvidia-uvm-tools)" = missing ] &&
	[ "$(status_of nvidiactl)" = ok ] && [ "$(status_of nvidia2)" = ok ] ||
	fail "statuses: $(cat "$work/out")"
jq -e '.ok == false and ([.nodes[].name] | sort) == (["nvidia-uvm","nvidia-uvm-tools","nvidia0","nvidia2","nvidiactl"] | sort)' \
	"$work/out" >/dev/null || fail "the nodes listed: $(cat "$work/out")"
[ ! -e "$D/nvidia-uvm" ] || fail "without --ensure a node was made"
dv --ensure
[ "$rc" -eq 0 ] || fail "--ensure: exit $rc: $(cat "$work/out" "$work/err")"
grep -q "nvidia-uvm .*237:0 .*created" "$work/out" || fail "the table does not say nvidia-uvm was created: $(cat "$work/out")"
node_is "$D/nvidia-uvm" "character special file" 237 0 666
node_is "$D/nvidia-uvm-tools" "character special file" 237 1 666
[ "$(readlink "$D/char/237:0")" = ../nvidia-uvm ] && [ "$(readlink "$D/char/237:1")" = ../nvidia-uvm-tools ] ||
	fail "no /dev/char links for the nodes made: $(ls -l "$D/char" 2>&1)"
dv --json
[ "$rc" -eq 0 ] && jq -e '.ok and ([.nodes[].status] | unique) == ["ok"]' "$work/out" >/dev/null ||
	fail "after --ensure not all ok: $(cat "$work/out")"
ok() { echo "$T: ok: $*"; }
ok "uvm nodes listed as missing, made by --ensure (237:0, 237:1, 0666, root's, /dev/char links), then all ok"

# 2. a wrong mode is fixed; other numbers are a conflict, never replaced
chmod 600 "$D/nvidia0"
rm "$D/nvidia2" && mknod "$D/nvidia2" c 195 7
dv --ensure --json
[ "$rc" -eq 1 ] || fail "a conflicting node: exit $rc"
[ "$(status_of nvidia0)" = fixed ] && [ "$(status_of nvidia2)" = conflict ] || fail "statuses: $(cat "$work/out")"
node_is "$D/nvidia0" "character special file" 195 0 666
node_is "$D/nvidia2" "character special file" 195 7 644
jq -e '.nodes[] | select(.name == "nvidia2") | .found == "character device 195:7"' "$work/out" >/dev/null ||
	fail "the conflict does not say what is there: $(cat "$work/out")"
rm "$D/nvidia2" && ln -s /dev/null "$D/nvidia2"
dv --ensure
[ "$rc" -eq 1 ] && grep -q "nvidia2 .*conflict: a symlink" "$work/out" || fail "a symlink at a node's place: exit $rc: $(cat "$work/out")"
[ "$(readlink "$D/nvidia2")" = /dev/null ] || fail "the symlink was replaced"
ok "a wrong mode fixed, other numbers and a symlink reported and left alone (exit 1)"

# 3. MIG capability files: nvidia-caps/nvidia-capN with their modes; a
# symlink at nvidia-caps is never followed
fake_host
mkdir -p "$P/driver/nvidia/capabilities/mig" "$P/driver/nvidia/capabilities/gpu0/mig/gi1"
sed -i 's/^237 nvidia-uvm$/237 nvidia-uvm\n238 nvidia-caps/' "$P/devices"
printf 'DeviceFileMinor: 1\nDeviceFileMode: 256\nDeviceFileModify: 1\n' >"$P/driver/nvidia/capabilities/mig/config"
printf 'DeviceFileMinor: 2\nDeviceFileMode: 292\nDeviceFileModify: 1\n' >"$P/driver/nvidia/capabilities/mig/monitor"
printf 'DeviceFileMinor: 21\nDeviceFileMode: 292\nDeviceFileModify: 1\n' >"$P/driver/nvidia/capabilities/gpu0/mig/gi1/access"
mkdir "$work/elsewhere"
ln -s "$work/elsewhere" "$D/nvidia-caps"
dv --ensure --json
[ "$rc" -eq 1 ] && [ "$(status_of nvidia-caps/nvidia-cap1)" = failed ] || fail "nvidia-caps a symlink: exit $rc: $(cat "$work/out")"
[ -z "$(ls -A "$work/elsewhere")" ] || fail "a node was made through the nvidia-caps symlink: $(ls -l "$work/elsewhere")"
rm "$D/nvidia-caps"
dv --ensure
[ "$rc" -eq 0 ] || fail "caps --ensure: exit $rc: $(cat "$work/out" "$work/err")"
node_is "$D/nvidia-caps/nvidia-cap1" "character special file" 238 1 400
node_is "$D/nvidia-caps/nvidia-cap2" "character special file" 238 2 444
node_is "$D/nvidia-caps/nvidia-cap21" "character special file" 238 21 444
[ "$(stat -c %a "$D/nvidia-caps")" = 755 ] || fail "nvidia-caps/ is not 0755"
[ "$(readlink "$D/char/238:21")" = ../nvidia-caps/nvidia-cap21 ] || fail "no /dev/char link for a cap node"
ok "MIG capability nodes made from their files (modes 0400, 0444), never through a symlink at nvidia-caps"

# 4. ModifyDeviceFiles 0: the administrator's; nothing made
fake_host
sed -i 's/^ModifyDeviceFiles: 1/ModifyDeviceFiles: 0/' "$P/driver/nvidia/params"
rm "$D/nvidia0"
dv --ensure
[ "$rc" -eq 1 ] && grep -q "nvidia0 .*missing: the driver's ModifyDeviceFiles is 0" "$work/out" ||
	fail "ModifyDeviceFiles 0: exit $rc: $(cat "$work/out")"
[ ! -e "$D/nvidia0" ] || fail "a node was made under ModifyDeviceFiles 0"
ok "ModifyDeviceFiles 0: nothing made, said so"

# 5. --load: the host's modprobe (the fake one PROC/sys/kernel/modprobe
# names) for nvidia-uvm only (nvidia is loaded), with an environment of
# PATH alone; its major then appears and the nodes are made
fake_host
sed -i '/nvidia-uvm/d' "$P/devices"
cat >"$work/modprobe" <<EOF
#!/bin/sh
echo "argv: \$*" >>"$work/modprobe.log"
env | sort | sed 's/^/env: /' >>"$work/modprobe.log"
sed -i 's/^195 nvidia-frontend\$/195 nvidia-frontend\n240 nvidia-uvm/' "$P/devices"
EOF
chmod 755 "$work/modprobe"
echo "$work/modprobe" >"$P/sys/kernel/modprobe"
dv --ensure
[ "$rc" -eq 1 ] && grep -q "nvidia-uvm .*no-module" "$work/out" || fail "uvm not loaded, no --load: exit $rc: $(cat "$work/out")"
[ ! -e "$work/modprobe.log" ] || fail "modprobe ran without --load"
dv --ensure --load
[ "$rc" -eq 0 ] || fail "--load: exit $rc: $(cat "$work/out" "$work/err")"
[ "$(grep '^argv:' "$work/modprobe.log")" = "argv: nvidia-uvm" ] || fail "modprobe's arguments: $(cat "$work/modprobe.log")"
[ "$(grep '^env:' "$work/modprobe.log" | grep -v -e '^env: PWD=' -e '^env: SHLVL=' -e '^env: _=')" = "env: PATH=/usr/sbin:/usr/bin:/sbin:/bin" ] ||
	fail "modprobe's environment is not PATH alone: $(cat "$work/modprobe.log")"
grep -q "^loaded nvidia-uvm ($work/modprobe)" "$work/out" || fail "the output does not say what was loaded: $(cat "$work/out")"
node_is "$D/nvidia-uvm" "character special file" 240 0 666
# a modprobe others may write is not trusted: /sbin/modprobe instead (which fails here: no such module)
chmod 777 "$work/modprobe"
sed -i '/nvidia-uvm/d' "$P/devices"
: >"$work/modprobe.log"
dv --load
[ "$rc" -eq 1 ] && [ ! -s "$work/modprobe.log" ] || fail "a world-writable modprobe ran: exit $rc: $(cat "$work/modprobe.log")"
ok "--load runs the host's modprobe for nvidia-uvm alone, with PATH only; a writable one is not run"

# 6. hostile /proc: a duplicate major, a bad number: exit 1 naming the file
fake_host
sed -i 's/^195 nvidia-frontend$/195 nvidia-frontend\n237 nvidia-uvm/' "$P/devices"
dv
[ "$rc" -eq 1 ] && grep -q "^gpu-stage: $P/devices: nvidia-uvm is listed twice" "$work/err" || fail "duplicate major: exit $rc: $(cat "$work/err")"
fake_host
printf 'DeviceFileMode: 438\nDeviceFileMode: 420\n' >"$P/driver/nvidia/params"
dv
[ "$rc" -eq 1 ] && grep -q "params: DeviceFileMode given twice" "$work/err" || fail "duplicate param: exit $rc: $(cat "$work/err")"
ok "hostile /proc files: exit 1 with the file and the reason"

# 7. usage
rc=0; "$GS" devices --bogus >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "unknown option: exit $rc, expected 2"
rc=0; "$GS" devices extra >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "extra argument: exit $rc, expected 2"
"$GS" devices --help | grep -q -- '--ensure' || fail "devices --help does not describe --ensure"
"$GS" --help | grep -q '^  devices ' || fail "gpu-stage --help does not list devices"
ok "usage errors exit 2, --help describes the command"
