#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage audit against real containers: Debian's real NVIDIA 535.261.03
# packages (fixtures/debian-driver.sh, cached), staged by gpu-stage, given to
# a running runc container by gpu-stage-hook.  The audit lists exactly the
# files the record names (every one, no extra), each with the manifest's
# host source, sha256, size, capabilities and evidence (compared with jq
# against STORE/VER/manifest.json), exit 0.  Then each drift is flagged by
# name, exit 1: a staged file's bytes changed (--rehash), a driver mount
# unmounted inside the container, an unrecorded bind of the store, the store
# version removed while in use, the container gone, a pid reused by another
# process; an image with a stub libcuda.so.1 in /usr/lib/x86_64-linux-gnu
# (image-library); a hostile image whose library path is a symlink out of
# its root never makes audit read the host file it points at.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup audit.sh
command -v nsenter >/dev/null || hk_skip "nsenter is not installed (util-linux)"
hk_stage_debian
MAN=$HK_STORE/$HK_VER/manifest.json

LISTEN=$HK_BUILD/fixtures/unixlisten
[ -x "$LISTEN" ] || LISTEN=build/fixtures/unixlisten
[ -x "$LISTEN" ] || hk_skip "fixtures/unixlisten is not built (make)"
LPID=
trap '[ -z "$LPID" ] || kill "$LPID" 2>/dev/null; hk_cleanup' EXIT

# start NAME [SETUP]: a detached container (sleeps) through the hook, after
# SETUP ran in the image's upper directory ($up); sets PID
start() {
	local name=$1 setup=${2:-} id=gs-audit-$$-$1
	hk_bundle "$name"
	up=$HK_WORK/$name/up
	[ -z "$setup" ] || (cd "$up" && eval "$setup")
	hk_config "$HK_B" createRuntime false '["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"]' 'exec sleep 600'
	[ -z "${HOSTROOT:-}" ] || { jq --arg h "$HOSTROOT" '.hooks.createRuntime[0].args |= (.[:-1] + ["--host-root", $h] + .[-1:])' \
		"$HK_B/config.json" >"$HK_B/c.new" && mv "$HK_B/c.new" "$HK_B/config.json"; }
	HK_CTRS+=("$id")
	(cd "$HK_B" && timeout 60 runc run -d "$id" </dev/null >"$HK_WORK/$id.out" 2>&1) ||
		hk_fail "$name: the container did not start: $(cat "$HK_WORK/$id.out")"
	PID=$(runc state "$id" | jq -r .pid)
	ID=$id
}
audit() { "$HK_GS" audit --audit-log "$HK_AUDIT" "$@"; }
# expect RC FINDING ARGS...: audit exits RC and (FINDING non-empty) names it
expect() {
	local want=$1 finding=$2 rc=0
	shift 2
	audit --json "$@" >"$HK_WORK/a.json" 2>"$HK_WORK/a.err" || rc=$?
	[ "$rc" -eq "$want" ] || hk_fail "audit $*: exit $rc, expected $want: $(head -c 3000 "$HK_WORK/a.json") $(cat "$HK_WORK/a.err")"
	[ -z "$finding" ] || jq -e --arg f "$finding" '[.containers[].findings[].finding] | index($f) != null' "$HK_WORK/a.json" >/dev/null ||
		hk_fail "audit $*: no '$finding' finding in: $(jq -c '[.containers[].findings[]]' "$HK_WORK/a.json")"
}

# --- exact: every file, no extra, as the manifest says ------------------------
start clean
expect 0 "" "$ID"
jq -r '.containers[0].record.plan.operations[] | select(.op == "bind-dir" or .op == "bind-file") | .files[].path' "$HK_WORK/a.json" | sort >"$HK_WORK/rec.files"
[ "$(wc -l <"$HK_WORK/rec.files")" -ge 10 ] || hk_fail "the record names only $(wc -l <"$HK_WORK/rec.files") files"
# the audit's rows: store path -> manifest path, joined with the manifest
jq -r --arg s "$HK_STORE/$HK_VER/" '.containers[0].files[] | [(.store_path | ltrimstr($s)), .host_source, .sha256, (.size | tostring), .capabilities, .evidence] | join("|")' \
	"$HK_WORK/a.json" | sort >"$HK_WORK/audit.rows"
jq -r '.files[] | [.path, .source, .sha256, (.size | tostring), (.caps | join(",")), .evidence] | join("|")' "$MAN" |
	sort >"$HK_WORK/man.rows"
cut -d'|' -f1 "$HK_WORK/audit.rows" | sort >"$HK_WORK/audit.files"
cmp -s "$HK_WORK/audit.files" "$HK_WORK/rec.files" ||
	hk_fail "audit's files differ from the record's: $(diff "$HK_WORK/rec.files" "$HK_WORK/audit.files" | head)"
extra=$(sort -u "$HK_WORK/audit.rows" | comm -23 - "$HK_WORK/man.rows" | head -3)
[ -z "$extra" ] || hk_fail "audit rows that are not the manifest's (path|source|sha256|size|caps|evidence): $extra"
# the rows name the real libcuda, and each container path is where the file is inside
jq -e '.containers[0].files[] | select(.container_path == "/run/gpu-stage/lib/compute/libcuda.so.'"$HK_VER"'") | .size > 10000000' \
	"$HK_WORK/a.json" >/dev/null || hk_fail "no row for the real libcuda at /run/gpu-stage/lib/compute"
for p in $(jq -r '.containers[0].files[].container_path' "$HK_WORK/a.json" | head -40); do
	[ -f "/proc/$PID/root$p" ] || hk_fail "$p: listed, but not a file in the container"
done
audit --rehash "$ID" >"$HK_WORK/a.txt" || hk_fail "audit --rehash of a clean container: $(cat "$HK_WORK/a.txt")"
grep -q "libcuda.so.$HK_VER .*(host /usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.$HK_VER)" "$HK_WORK/a.txt" ||
	hk_fail "the table has no libcuda line with its host source: $(head -5 "$HK_WORK/a.txt")"
grep -q ' clean$' "$HK_WORK/a.txt" || hk_fail "not reported clean: $(tail -3 "$HK_WORK/a.txt")"
# by bundle and by pid: the same container
expect 0 "" "$HK_B"
[ "$(jq -r '.containers[0].container' "$HK_WORK/a.json")" = "$ID" ] || hk_fail "audit BUNDLE found another container"
expect 0 "" "$PID"
[ "$(jq -r '.containers[0].container' "$HK_WORK/a.json")" = "$ID" ] || hk_fail "audit PID found another container"
hk_ok "real driver: audit lists the record's $(wc -l <"$HK_WORK/rec.files") files exactly, sources/sha256/size/caps/evidence equal to the manifest (also --rehash, by bundle, by pid); exit 0"

# --- a staged file's bytes changed -----------------------------------------------
lib=$HK_STORE/$HK_VER/lib/compute/libcuda.so.$HK_VER
orig=$HK_WORK/real/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.$HK_VER
cmp -s "$lib" "$orig" || hk_fail "the staged libcuda differs from its source before the test"
chmod u+w "$(dirname "$lib")" "$lib"
printf '\x01' | dd of="$lib" bs=1 seek=4096 conv=notrunc status=none
chmod 0444 "$lib"
expect 0 "" "$ID" # size and mode unchanged: only --rehash reads the bytes
expect 1 file-changed --rehash "$ID"
jq -e '.containers[0].findings[] | select(.finding == "file-changed") | .message | test("libcuda.so.*bytes changed")' "$HK_WORK/a.json" >/dev/null ||
	hk_fail "file-changed does not name libcuda's bytes: $(jq -c '.containers[0].findings' "$HK_WORK/a.json")"
chmod u+w "$lib"
dd if="$orig" of="$lib" bs=4096 conv=notrunc status=none
expect 1 file-changed "$ID" # its mode 0644: seen without --rehash
chmod 0444 "$lib"
chmod 0555 "$(dirname "$lib")"
cmp -s "$lib" "$orig" || hk_fail "the staged libcuda was not restored"
expect 0 "" --rehash "$ID"
hk_ok "a changed byte of the staged libcuda: file-changed with --rehash, a changed mode without it; restored: clean"

# --- mounts: one unmounted inside the container, one not recorded ----------------
nsenter -t "$PID" -m -p -r -w -- umount /usr/bin/nvidia-smi 2>"$HK_WORK/umount.err" ||
	hk_fail "umount inside the container: $(cat "$HK_WORK/umount.err")"
expect 1 mount-missing "$ID"
jq -e '.containers[0].findings[] | select(.finding == "mount-missing") | .message | test("^/usr/bin/nvidia-smi:")' "$HK_WORK/a.json" >/dev/null ||
	hk_fail "mount-missing does not name /usr/bin/nvidia-smi: $(jq -c '.containers[0].findings' "$HK_WORK/a.json")"
start extra
nsenter -t "$PID" -m -p -r -w -- mount --bind /run/gpu-stage/lib/compute /mnt ||
	hk_fail "bind inside the container failed"
expect 1 mount-unrecorded "$ID"
jq -e '[.containers[0].findings[] | select(.finding == "mount-covered")] | length == 0' "$HK_WORK/a.json" >/dev/null ||
	hk_fail "mount-covered before anything covers a mount: $(jq -c '.containers[0].findings' "$HK_WORK/a.json")"
nsenter -t "$PID" -m -p -r -w -- mount -t tmpfs none /run/gpu-stage/lib/utility || hk_fail "tmpfs inside the container failed"
expect 1 mount-covered "$ID"
jq -e '.containers[0].findings[] | select(.finding == "mount-covered") | .message | test("^/run/gpu-stage/lib/utility: hidden by a later tmpfs")' "$HK_WORK/a.json" >/dev/null ||
	hk_fail "mount-covered does not name lib/utility: $(jq -c '.containers[0].findings' "$HK_WORK/a.json")"
hk_ok "a driver mount unmounted inside the container: mount-missing; a bind of the store it does not record: mount-unrecorded; a tmpfs over one: mount-covered"

# --- a host IPC path (an MPS control daemon's pipe directory): bound, audited ---
HOSTROOT=$HK_WORK/host
mkdir -p "$HOSTROOT/tmp/nvidia-mps"
"$LISTEN" "$HOSTROOT/tmp/nvidia-mps/control" 1 &
LPID=$!
for _ in $(seq 100); do [ -S "$HOSTROOT/tmp/nvidia-mps/control" ] && break; sleep 0.05; done
start ipc
HOSTROOT=
jq -e '[.plan.operations[] | select(.op == "bind-host" and .destination == "/tmp/nvidia-mps" and .status == "applied")] | length == 1' \
	<<<"$(tail -n 1 "$HK_AUDIT")" >/dev/null || hk_fail "the record has no applied bind-host of /tmp/nvidia-mps: $(tail -n 1 "$HK_AUDIT" | jq -c '.plan.operations[] | select(.op == "bind-host")')"
expect 0 "" "$ID"
jq -e '[.containers[0].mounts[] | select(.op == "bind-host" and .live == "/tmp/nvidia-mps")] | length == 1' "$HK_WORK/a.json" >/dev/null ||
	hk_fail "audit does not list the bind-host mount: $(jq -c '.containers[0].mounts' "$HK_WORK/a.json")"
nsenter -t "$PID" -m -p -r -w -- umount /tmp/nvidia-mps || hk_fail "umount /tmp/nvidia-mps inside the container failed"
expect 1 mount-missing "$ID"
hk_ok "a host IPC bind (MPS pipe directory): audited; unmounted inside the container: mount-missing"

# --- image libraries: a stub libcuda.so.1; a hostile symlink out of the root -----
# libnvidia-ml.so.1: a relative link climbing out of the root to a host
# file; libcuda.so: an absolute link to /etc/hostname, which the host and the
# image both have (the image's must be the one seen); libnvidia-ptxjitcompiler.so.1:
# a link to a stub elsewhere in the image (followed, inside the root)
echo "host secret $$" >"$HK_WORK/host-secret.so"
start stub 'mkdir -p usr/lib/x86_64-linux-gnu etc opt && printf "\177ELF stub" >usr/lib/x86_64-linux-gnu/libcuda.so.1 &&
	ln -s ../../../../../../../../../..'"$HK_WORK"'/host-secret.so usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 &&
	echo image-hostname >etc/hostname && ln -s /etc/hostname usr/lib/x86_64-linux-gnu/libcuda.so &&
	printf "\177ELF other stub" >opt/inside.so && ln -s /opt/inside.so usr/lib/x86_64-linux-gnu/libnvidia-ptxjitcompiler.so.1'
expect 1 image-library "$ID"
F=$HK_WORK/a.json
jq -e '[.containers[0].findings[] | select(.finding == "image-library" and .library == "libcuda.so.1" and (.path | endswith("x86_64-linux-gnu/libcuda.so.1")))] | length == 1' \
	"$F" >/dev/null || hk_fail "the stub libcuda.so.1 is not flagged once: $(jq -c '.containers[0].findings' "$F")"
inside=$(stat -c %i "/proc/$PID/root/opt/inside.so")
jq -e --argjson ino "$inside" '[.containers[0].findings[] | select(.library == "libnvidia-ptxjitcompiler.so.1" and .inode == $ino)] | length == 1' \
	"$F" >/dev/null || hk_fail "a link to a stub inside the image is not followed there: $(jq -c '.containers[0].findings' "$F")"
secret_ino=$(stat -c %i "$HK_WORK/host-secret.so")
jq -e --argjson ino "$secret_ino" '[.containers[0].findings[] | select(.inode == $ino or .library == "libnvidia-ml.so.1")] | length == 0' \
	"$F" >/dev/null || hk_fail "audit followed a symlink out of the container root to the host: $(jq -c '.containers[0].findings' "$F")"
img_host=$(stat -c %i "/proc/$PID/root/etc/hostname") host_host=$(stat -c %i /etc/hostname)
[ "$img_host" != "$host_host" ] || hk_fail "the image's /etc/hostname is the host's: the test proves nothing"
jq -e --argjson img "$img_host" --argjson host "$host_host" '[.containers[0].findings[] | select(.library == "libcuda.so")] | length == 1 and .[0].inode == $img and .[0].inode != $host' \
	"$F" >/dev/null || hk_fail "an absolute link was not resolved inside the container root: $(jq -c '.containers[0].findings' "$F")"
hk_ok "a stub libcuda.so.1 in the image: image-library; symlinks resolved inside the container root only (a link out of it to a host file: not followed)"

# --- the store version removed while in use ----------------------------------------
"$HK_GS" remove "$HK_VER" --store "$HK_STORE" >"$HK_WORK/rm.out" 2>&1 || true
[ ! -e "$HK_STORE/$HK_VER" ] || hk_fail "gpu-stage remove left $HK_STORE/$HK_VER: $(cat "$HK_WORK/rm.out")"
expect 1 store-version-removed "$ID"
# a re-stage: STORE/VER is a new tree, the container keeps the old one
"$HK_GS" --root "$HK_WORK/real" --store "$HK_STORE" --driver "$HK_VER" --caps all >"$HK_WORK/restage.log" 2>&1 ||
	hk_fail "re-staging failed: $(cat "$HK_WORK/restage.log")"
expect 1 store-version-replaced "$ID"
hk_ok "the store version removed while in use: store-version-removed; staged again (a new tree): store-version-replaced"

# --- gone: the container stopped; a pid reused by another process -----------------
GONE=$ID
runc kill "$GONE" KILL
for i in $(seq 1 50); do [ "$(runc state "$GONE" 2>/dev/null | jq -r .status)" = stopped ] && break; sleep 0.1; done
expect 1 container-gone "$GONE"
expect 1 "" --all # the other containers use a replaced store version
jq -e --arg id "$GONE" '[.gone[].container] | index($id) != null' "$HK_WORK/a.json" >/dev/null ||
	hk_fail "--all does not list the stopped container as gone: $(jq -c .gone "$HK_WORK/a.json")"
jq -e --arg id "$GONE" '[.containers[].container] | index($id) == null' "$HK_WORK/a.json" >/dev/null ||
	hk_fail "--all audited a container that is gone"
# a record whose pid is now another process (started after the record)
sleep 600 &
other=$!
forged=$(tail -n 1 "$HK_AUDIT" | jq -c --argjson pid "$other" '.container = "reused" | .pid = $pid | .time = "2020-01-01T00:00:00Z"')
printf '%s\n' "$forged" >>"$HK_AUDIT"
expect 1 container-gone reused
kill "$other"
jq -e '.containers[0].findings[0].message | test("another process")' "$HK_WORK/a.json" >/dev/null ||
	hk_fail "a reused pid is not said to be another process's: $(jq -c '.containers[0].findings' "$HK_WORK/a.json")"
hk_ok "a stopped container: container-gone (named), listed as gone under --all; a reused pid: container-gone"

# --- a rotated log: the same audit over hook.log.N .. hook.log.1, hook.log --------
mkdir "$HK_WORK/rot"
n=$(wc -l <"$HK_AUDIT")
i=$n
while IFS= read -r line; do
	i=$((i - 1))
	if [ "$i" -eq 0 ]; then f=$HK_WORK/rot/hook.log; else f=$HK_WORK/rot/hook.log.$i; fi
	printf '%s\n' "$line" >"$f"
done <"$HK_AUDIT"
summary() { jq -c '{c: [.containers[] | {container, f: [.findings[].finding] | sort, n: (.files | length)}] | sort_by(.container), g: [.gone[].container] | sort}' "$1"; }
audit --all --json >"$HK_WORK/one.json" || true
"$HK_GS" audit --all --json --audit-log "$HK_WORK/rot/hook.log" >"$HK_WORK/rot.json" || true
[ "$(jq '.containers | length' "$HK_WORK/one.json")" -ge 3 ] || hk_fail "--all audited fewer than 3 containers: $(summary "$HK_WORK/one.json")"
[ "$(summary "$HK_WORK/one.json")" = "$(summary "$HK_WORK/rot.json")" ] ||
	hk_fail "the rotated log ($n files) audits differently: $(summary "$HK_WORK/rot.json") vs $(summary "$HK_WORK/one.json")"
hk_ok "a log rotated into $n files (hook.log.$((n - 1)) .. hook.log): --all audits exactly as over the one file"
# logrotate's compress + delaycompress (hook/gpu-stage.logrotate): hook.log.1
# plain, the older ones gzip'ed; one of them also cut short
for ((i = 2; i < n; i++)); do gzip "$HK_WORK/rot/hook.log.$i"; done
[ -e "$HK_WORK/rot/hook.log.2.gz" ] || hk_fail "no gzip'ed rotation made ($n files)"
"$HK_GS" audit --all --json --audit-log "$HK_WORK/rot/hook.log" >"$HK_WORK/rotgz.json" || true
[ "$(summary "$HK_WORK/one.json")" = "$(summary "$HK_WORK/rotgz.json")" ] ||
	hk_fail "the gzip'ed rotations audit differently: $(summary "$HK_WORK/rotgz.json") vs $(summary "$HK_WORK/one.json")"
head -c 20 "$HK_WORK/rot/hook.log.2.gz" >"$HK_WORK/cut.gz" && mv "$HK_WORK/cut.gz" "$HK_WORK/rot/hook.log.2.gz"
rc=0
"$HK_GS" audit --all --json --audit-log "$HK_WORK/rot/hook.log" >"$HK_WORK/cut.json" 2>"$HK_WORK/cut.err" || rc=$?
[ "$rc" = 1 ] && grep -q "hook.log.2.gz" "$HK_WORK/cut.err" ||
	hk_fail "a cut-short gzip'ed rotation: exit $rc, not 1 naming it: $(cat "$HK_WORK/cut.err")"
hk_ok "logrotate's gzip'ed rotations (hook.log.N.gz) are read; a cut-short one is an error naming it"

# --- the command line -------------------------------------------------------------
for args in "" "--all $ID" "--bogus $ID"; do
	rc=0
	# shellcheck disable=SC2086
	audit $args >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || hk_fail "audit $args: exit $rc, expected 2 (usage)"
done
rc=0
audit no-such-container >/dev/null 2>"$HK_WORK/a.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "^gpu-stage: audit: no-such-container: no record in $HK_AUDIT" "$HK_WORK/a.err" ||
	hk_fail "audit of an unknown container: exit $rc: $(cat "$HK_WORK/a.err")"
"$HK_GS" audit --all --audit-log "$HK_WORK/none.log" | grep -q '^no container in ' || hk_fail "audit --all of an empty log"
"$HK_GS" audit --help | grep -q 'image-library' || hk_fail "audit --help names no findings"
hk_ok "usage errors exit 2; an unknown container exit 1 naming the log; an empty log: no container"
