#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The host's IPC paths (issue 16), on a fake host root (--host-root): an
# MPS control daemon's pipe directory with a listening control socket
# (fixtures/unixlisten.c) is bound read-write, nosuid,nodev,noexec at the
# same path into a compute container, whose unix-socket connect from
# inside (gs-probe --connect) reaches the host's listener; the MPS log
# directory read-only beside it; nvidia-persistenced's socket read-only
# for utility or compute; a non-default mps_pipe_dir at its own path.
# Absent: nothing bound (audit record and mount table checked), the
# record says what was absent.  Refused, with a note: a host pipe
# directory that is a symlink or has no control socket; an image whose
# /tmp/nvidia-mps is a symlink (never followed).  A read-only root
# without the mount points starts without them.  The host's mount table
# is unchanged afterwards.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source fixtures/hook_lib.sh
hk_setup hook_ipc.sh
LISTEN=$HK_BUILD/fixtures/unixlisten
[ -x "$LISTEN" ] || LISTEN=build/fixtures/unixlisten
[ -x "$LISTEN" ] || hk_skip "fixtures/unixlisten is not built (make)"
H=$HK_WORK/host
PIDS=()
cleanup_ipc() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	hk_cleanup
}
trap cleanup_ipc EXIT
# listen PATH TOKEN: a listener on PATH (made 0666), waited for
listen() {
	mkdir -p "$(dirname "$1")"
	"$LISTEN" "$1" "$2" &
	PIDS+=($!)
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done
	hk_fail "the listener on $1 did not start"
}
SCRIPT='/opt/gs-probe --connect /tmp/nvidia-mps/control; /opt/gs-probe --connect /run/nvidia-persistenced/socket
/opt/gs-probe --connect /var/mps-pipes/control
touch /tmp/nvidia-mps/from-container 2>/dev/null && echo MPS_WRITABLE
while read -r _ _ _ _ mp opts _; do case $mp in /tmp/nvidia-mps*|/var/log/nvidia-mps|/run/nvidia-persistenced*|/var/mps-pipes*|/etc) echo "MOUNT $mp $opts";; esac; done </proc/self/mountinfo
echo STARTED'
# run NAME RO ENVJSON [CONFIG]: a prestart hook with --host-root $H
run() {
	hk_bundle "$1"
	hk_config "$HK_B" prestart "$2" "$3" "$SCRIPT"
	jq --arg h "$H" --arg c "${4:-}" '.hooks.prestart[0].args |= (.[:-1] + ["--host-root", $h] +
		(if $c == "" then [] else ["--config", $c] end) + .[-1:])' "$HK_B/config.json" >"$HK_B/c.new" &&
		mv "$HK_B/c.new" "$HK_B/config.json"
	rc=0
	hk_runc "$HK_B" "gs-ipc-$$-$1" || rc=$?
	out=$HK_WORK/gs-ipc-$$-$1.out
	rec=$(tail -n 1 "$HK_AUDIT")
	[ "$rc" -eq 0 ] && grep -q '^STARTED$' "$out" || hk_fail "$1: the container failed: $(cat "$out")"
}
binds() { jq -c '[.plan.operations[] | select(.op == "bind-host") | {destination, source, kind, read_only, status}]' <<<"$rec"; }
host_mounts() { hk_mounts | grep -v "^/ $HK_WORK/[a-z]*/b/rootfs overlay " || true; } # less the bundles' own rootfs
before=$(host_mounts)

# 1. nothing on the host: nothing bound, the record says what was absent
mkdir -p "$H"
run absent false '["NVIDIA_VISIBLE_DEVICES=0"]'
[ "$(binds)" = "[]" ] || hk_fail "absent: bind-host ops: $(binds)"
! grep -q '^MOUNT ' "$out" || hk_fail "absent: mounts in the container: $(grep '^MOUNT' "$out")"
jq -e --arg h "$H" '.host_ipc | contains("MPS pipe directory " + $h + "/tmp/nvidia-mps: absent") and
	contains("nvidia-persistenced socket " + $h + "/run/nvidia-persistenced/socket: absent")' <<<"$rec" >/dev/null ||
	hk_fail "absent: the record does not say so: $rec"
hk_ok "nothing on the host: nothing bound, the audit record names what was absent"

# 2. MPS running, persistenced running: bound, reached from inside
listen "$H/tmp/nvidia-mps/control" MPS-TOKEN
chmod 755 "$H/tmp/nvidia-mps"
mkdir -p "$H/var/log/nvidia-mps"
listen "$H/run/nvidia-persistenced/socket" PD-TOKEN
run present false '["NVIDIA_VISIBLE_DEVICES=0"]'
grep -q '^connect /tmp/nvidia-mps/control: ok MPS-TOKEN$' "$out" || hk_fail "no connect to the MPS control socket from inside: $(cat "$out")"
grep -q '^connect /run/nvidia-persistenced/socket: ok PD-TOKEN$' "$out" || hk_fail "no connect to persistenced from inside: $(cat "$out")"
grep -q '^MPS_WRITABLE$' "$out" && [ -e "$H/tmp/nvidia-mps/from-container" ] || hk_fail "the MPS pipe directory is not writable from inside: $(cat "$out")"
grep -Eq '^MOUNT /tmp/nvidia-mps rw,nosuid,nodev,noexec' "$out" || hk_fail "the MPS pipe directory is not rw,nosuid,nodev,noexec: $(grep MOUNT "$out")"
grep -Eq '^MOUNT /var/log/nvidia-mps ro,nosuid,nodev,noexec' "$out" || hk_fail "the MPS log directory is not bound ro,nosuid,nodev,noexec: $(grep MOUNT "$out")"
grep -Eq '^MOUNT /run/nvidia-persistenced/socket ro,nosuid,nodev,noexec' "$out" || hk_fail "the persistenced socket is not bound ro,nosuid,nodev,noexec: $(grep MOUNT "$out")"
[ "$(binds | jq 'map(select(.status == "applied")) | length')" = 3 ] || hk_fail "present: not three applied bind-host ops: $(binds)"
jq -e '.host_ipc | (contains("MPS") or contains("persistenced") | not) and contains("fabricmanager socket")' <<<"$rec" >/dev/null ||
	hk_fail "present: the host_ipc note should name only the absent fabric manager socket: $(jq .host_ipc <<<"$rec")"
hk_ok "MPS pipe directory (rw), its log directory and persistenced's socket (ro) bound nosuid,nodev,noexec; connects from inside reach the host's listeners"

run utility false '["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=utility"]'
grep -q '^connect /run/nvidia-persistenced/socket: ok PD-TOKEN$' "$out" || hk_fail "utility: no persistenced socket: $(cat "$out")"
! grep -q '^MOUNT /tmp/nvidia-mps' "$out" || hk_fail "utility: the MPS directory was bound without compute"
hk_ok "utility only: persistenced's socket, no MPS"

# 3. a non-default pipe directory (mps_pipe_dir) at its own path
listen "$H/var/mps-pipes/control" MPS2-TOKEN
printf '{"mps_pipe_dir": "/var/mps-pipes"}\n' >"$HK_WORK/mps.json"
run custom false '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_WORK/mps.json"
grep -q '^connect /var/mps-pipes/control: ok MPS2-TOKEN$' "$out" || hk_fail "mps_pipe_dir: no connect from inside: $(cat "$out")"
! grep -q '^MOUNT /tmp/nvidia-mps' "$out" || hk_fail "mps_pipe_dir: the default directory was bound too"
hk_ok "a non-default mps_pipe_dir is bound at its own path"

# 4. refused: a pipe directory without a control socket, one that is a
# symlink, an image symlink at the destination
kill "${PIDS[0]}" && wait "${PIDS[0]}" 2>/dev/null || true
rm -f "$H/tmp/nvidia-mps/control"
run nocontrol false '["NVIDIA_VISIBLE_DEVICES=0"]'
! grep -q '^MOUNT /tmp/nvidia-mps' "$out" || hk_fail "a pipe directory without a control socket was bound"
jq -e '.host_ipc | contains("no control socket in it")' <<<"$rec" >/dev/null || hk_fail "no control socket: not noted: $rec"
# another user's daemon (the default lies in the host's /tmp, where anyone
# may make it): never bound, whether the directory or the socket is theirs
listen "$H/tmp/nvidia-mps/control" MPS-TOKEN
for who in dir socket; do
	if [ $who = dir ]; then chown nobody "$H/tmp/nvidia-mps"; else chown -h nobody "$H/tmp/nvidia-mps/control"; fi
	run "other$who" false '["NVIDIA_VISIBLE_DEVICES=0"]'
	! grep -q '^MOUNT /tmp/nvidia-mps' "$out" || hk_fail "an MPS pipe directory whose $who is another user's was bound"
	jq -e '.host_ipc | contains("an MPS daemon of another user is never bound")' <<<"$rec" >/dev/null ||
		hk_fail "another user's $who: not noted: $rec"
	chown -h root "$H/tmp/nvidia-mps" "$H/tmp/nvidia-mps/control"
done
kill "${PIDS[-1]}" && wait "${PIDS[-1]}" 2>/dev/null || true
rm -f "$H/tmp/nvidia-mps/control"
mv "$H/tmp/nvidia-mps" "$H/tmp/real-mps"
ln -s real-mps "$H/tmp/nvidia-mps"
listen "$H/tmp/real-mps/control" MPS-TOKEN
run hostlink false '["NVIDIA_VISIBLE_DEVICES=0"]'
! grep -q '^MOUNT /tmp/nvidia-mps' "$out" || hk_fail "a host pipe directory that is a symlink was bound"
jq -e '.host_ipc | contains("symlink")' <<<"$rec" >/dev/null || hk_fail "host symlink: not noted: $rec"
rm "$H/tmp/nvidia-mps" && mv "$H/tmp/real-mps" "$H/tmp/nvidia-mps"
hk_bundle imglink
ln -s /etc "$HK_WORK/imglink/up/tmp/nvidia-mps" 2>/dev/null || { mkdir -p "$HK_WORK/imglink/up/tmp" && ln -s /etc "$HK_WORK/imglink/up/tmp/nvidia-mps"; }
hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=0"]' "$SCRIPT"
jq --arg h "$H" '.hooks.prestart[0].args |= (.[:-1] + ["--host-root", $h] + .[-1:])' "$HK_B/config.json" >"$HK_B/c.new" && mv "$HK_B/c.new" "$HK_B/config.json"
hk_runc "$HK_B" "gs-ipc-$$-imglink" || hk_fail "image symlink: the container failed: $(cat "$HK_WORK/gs-ipc-$$-imglink.out")"
out=$HK_WORK/gs-ipc-$$-imglink.out
rec=$(tail -n 1 "$HK_AUDIT")
! grep -Eq '^MOUNT (/etc|/tmp/nvidia-mps) ' "$out" || hk_fail "bound through the image's symlink: $(grep MOUNT "$out")"
[ "$(binds | jq -r '.[] | select(.destination == "/tmp/nvidia-mps") | .status')" = skipped ] || hk_fail "image symlink: not skipped: $(binds)"
jq -e '.plan.operations[] | select(.destination == "/tmp/nvidia-mps") | .note | contains("is a symlink (never followed) in the image")' <<<"$rec" >/dev/null ||
	hk_fail "image symlink: the note does not say why: $rec"
hk_ok "refused with a note: no control socket, another user's directory or socket, a host symlink, an image symlink at the destination (never followed)"

# 5. a read-only root without the mount points: skipped, the container starts
run readonly true '["NVIDIA_VISIBLE_DEVICES=0"]'
! grep -q '^MOUNT ' "$out" || hk_fail "read-only root: something was bound: $(grep MOUNT "$out")"
[ "$(binds | jq '[.[] | select(.status == "skipped")] | length')" = 3 ] || hk_fail "read-only root: the ops were not skipped: $(binds)"
hk_ok "read-only root without the mount points: skipped with a note, the container starts"

[ "$(host_mounts)" = "$before" ] || hk_fail "the host's mount table changed: $(diff <(echo "$before") <(host_mounts))"
! grep -Eq 'nvidia-mps|nvidia-persistenced|mps-pipes' /proc/self/mountinfo || hk_fail "a bind-host mount shows in the host's mount table"
hk_ok "the host's mount table is unchanged"
