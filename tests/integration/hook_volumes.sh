#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage-hook and tmpfs volumes (issue 12, items 3 and 4), in real runc
# and crun containers.
#
# A host tmpfs bound into the container is a volume, not the container's
# own tmpfs: with an image whose /run or /usr/bin is a symlink to /vol (a
# host tmpfs bound there, holding files named like what the hook makes:
# gpu-stage, nvidia-smi, lib), or with a host tmpfs bound at /dev, nothing
# is created, removed or mknod'ed in it (the start is refused, naming the
# volume) and the host tmpfs is byte for byte what it was; the same when a
# host tmpfs is bound over a tmpfs that config.json declares.  A tmpfs the
# runtime makes from config.json ("type": "tmpfs") at /run of a read-only
# root still receives /run/gpu-stage.
#
# A read-only root's /run is never hidden: with files in it, a nested
# directory and a runtime bind mount at /run/secrets/token, the start is
# refused with the remedy, or, with a tmpfs declared at /run/gpu-stage in
# config.json, works and every one of them is visible inside; with only
# empty directories and symlinks, a tmpfs over /run recreates them exactly
# (mode, owner, link target); more than 64 entries are refused.
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_volumes.sh
[ -z "${HV_KEEP:-}" ] || trap - EXIT
command -v crun >/dev/null || hk_skip "crun is not installed (bash tests/deps.sh)"

n=0
# jq edits of config.json
edit() { jq "$@" "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"; }

# A host tmpfs with sentinels named like what the hook creates.
HVOL=$HK_WORK/hostvol
mkdir -p "$HVOL"
mount -t tmpfs -o mode=755 gs-hostvol "$HVOL" && HK_MOUNTS+=("$HVOL") || hk_fail "cannot mount a tmpfs at $HVOL"
echo "another party's gpu-stage" >"$HVOL/gpu-stage"
echo "another party's nvidia-smi" >"$HVOL/nvidia-smi"
ln -s /nowhere/else "$HVOL/nvidia-debugdump"
mkdir -p "$HVOL/lib" && echo "another party's lib" >"$HVOL/lib/file"
echo "another party's nvidia0" >"$HVOL/nvidia0"
vol_state() {
	(cd "$HVOL" && find . -printf '%p %y %m %s %U:%G %T@ %l\n' | sort &&
		find . -type f -exec sha256sum {} + | sort)
}
vol_before=$(vol_state)
vol_unchanged() {
	[ "$(vol_state)" = "$vol_before" ] ||
		hk_fail "$1: the host tmpfs changed: $(diff <(echo "$vol_before") <(vol_state) | head -20)"
	[ -f "$HVOL/gpu-stage" ] && [ -f "$HVOL/lib/file" ] || hk_fail "$1: a sentinel is gone"
	if find "$HVOL" -type c | grep -q .; then hk_fail "$1: a device node appeared in the host tmpfs"; fi
}
volmount() { # DEST: a bind of the host tmpfs at DEST
	edit --arg s "$HVOL" --arg d "$1" '.mounts += [{destination: $d, type: "bind", source: $s, options: ["rbind", "rw"]}]'
}

# hook_said ID PATTERN: the hook's error for container ID (on the runtime's
# output; crun does not pass a createContainer hook's stderr on: then the
# audit record's) matching the extended regex PATTERN; printed.
hook_said() {
	grep -o 'gpu-stage-hook: .*' "$HK_WORK/$1.out" | grep -E "$2" ||
		{ tail -n 1 "$HK_AUDIT" | jq -r --arg id "$1" 'select(.container == $id) | .error // empty' | grep -E "$2"; }
}

# refused ENGINE NAME STAGE RO SETUP JQ... : the start must fail with the
# hook naming the volume; the host tmpfs unchanged.
refused() {
	local engine=$1 name=$2 stage=$3 ro=$4 setup=$5 id
	shift 5
	n=$((n + 1))
	id=gs-hv-$$-$n
	hk_bundle "v$n"
	(cd "$HK_B/rootfs" && eval "$setup") || hk_fail "$name: setup failed"
	hk_config "$HK_B" "$stage" "$ro" '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
	local e
	for e in "$@"; do edit "$e"; done
	if "hk_$engine" "$HK_B" "$id"; then
		hk_fail "$name ($engine $stage): the container started: $(cat "$HK_WORK/$id.out")"
	fi
	hook_said "$id" 'on a volume' >/dev/null || hk_fail "$name ($engine $stage): not refused by the hook for the volume: $(cat "$HK_WORK/$id.out")"
	vol_unchanged "$name ($engine $stage)"
	hk_ok "$name ($engine $stage): refused: $(hook_said "$id" 'on a volume' | cut -c1-160)"
}

bindvol=".mounts += [{destination: \"/vol\", type: \"bind\", source: \"$HVOL\", options: [\"rbind\", \"rw\"]}]"
# ---- item 3: a host tmpfs bound in is a volume -------------------------------
refused runc "/run -> /vol (a host tmpfs)" prestart false "rm -rf run && ln -s /vol run" "$bindvol"
refused crun "/run -> /vol (a host tmpfs)" createContainer false "rm -rf run && ln -s /vol run" "$bindvol"
refused runc "/run -> /vol (a host tmpfs), read-only root" createRuntime true "rm -rf run && ln -s /vol run" "$bindvol"
refused runc "/usr/bin -> /vol (a host tmpfs)" createRuntime false \
	"mv usr/bin usr/bin.real && ln -s /vol usr/bin" "$bindvol"
refused crun "/usr/bin -> /vol (a host tmpfs)" prestart false \
	"mv usr/bin usr/bin.real && ln -s /vol usr/bin" "$bindvol"
# a host tmpfs bound at /dev (runc and crun then make no nodes of their own
# there): no GPU node is made on the host's storage
nodev='del(.mounts[] | select(.destination | startswith("/dev")))'
devvol=".mounts += [{destination: \"/dev\", type: \"bind\", source: \"$HVOL\", options: [\"rbind\", \"rw\"]}]"
refused runc "/dev a bind of a host tmpfs" prestart false "true" "$nodev" "$devvol"
refused crun "/dev a bind of a host tmpfs" createRuntime false "true" "$nodev" "$devvol"
# a tmpfs that config.json declares at /run, with a host tmpfs bound over
# it: what is at /run is the host's (its superblock shows twice)
refused runc "a declared tmpfs /run covered by a host tmpfs bind, read-only root" prestart true "true" \
	'.mounts += [{destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"]}]' \
	".mounts += [{destination: \"/run\", type: \"bind\", source: \"$HVOL\", options: [\"rbind\", \"rw\"]}]"

# ---- a runtime tmpfs (config.json type tmpfs) is the container's -------------
ok_case() { # ENGINE NAME STAGE RO SETUP SCRIPT JQ... ; output in $OUT
	local engine=$1 name=$2 stage=$3 ro=$4 setup=$5 script=$6 id
	shift 6
	n=$((n + 1))
	id=gs-hv-$$-$n
	hk_bundle "v$n"
	(cd "$HK_B/rootfs" && eval "$setup") || hk_fail "$name: setup failed"
	hk_config "$HK_B" "$stage" "$ro" '["NVIDIA_VISIBLE_DEVICES=0"]' "$script"
	local e
	for e in "$@"; do edit "$e"; done
	"hk_$engine" "$HK_B" "$id" || hk_fail "$name ($engine $stage): the container failed: $(cat "$HK_WORK/$id.out")"
	hk_check_inside "$id" "$name ($engine $stage)"
	OUT=$HK_WORK/$id.out
	UP=$HK_WORK/v$n/up
}
runtmpfs='.mounts += [{destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=755"]}]'
for engine in runc crun; do
	ok_case "$engine" "read-only root, runtime tmpfs at /run" createRuntime true "true" "$HK_SCRIPT" "$runtmpfs" "$bindvol"
	tail -n 1 "$HK_AUDIT" | jq -e '.plan.operations[0].destination == "/run/gpu-stage" and (.plan.operations[0].actual_destination // "") == ""' >/dev/null ||
		hk_fail "runtime tmpfs /run ($engine): the anchor did not go to /run/gpu-stage inside it: $(tail -n 1 "$HK_AUDIT" | jq -c '.plan.operations[0]')"
	vol_unchanged "runtime tmpfs /run ($engine)"
	hk_ok "read-only root with a runtime tmpfs at /run ($engine): /run/gpu-stage made in it"
done

# ---- item 4: a read-only root's /run is never hidden --------------------------
SECRETS=$HK_WORK/secrets
mkdir -p "$SECRETS" && echo s3cret-token >"$SECRETS/token"
runfiles='mkdir -p run/nested/dir && echo keep-me-content >run/keep-me && echo nested-content >run/nested/dir/file'
secret=".mounts += [{destination: \"/run/secrets/token\", type: \"bind\", source: \"$SECRETS/token\", options: [\"bind\", \"ro\"]}]"
for engine in runc crun; do
	n=$((n + 1))
	id=gs-hv-$$-$n
	hk_bundle "v$n"
	(cd "$HK_B/rootfs" && eval "$runfiles")
	hk_config "$HK_B" prestart true '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
	edit "$secret"
	if "hk_$engine" "$HK_B" "$id"; then
		hk_fail "ro root, files under /run ($engine): the container started with its /run covered: $(cat "$HK_WORK/$id.out")"
	fi
	hide='would hide it; refusing .*declare a tmpfs mount at /run/gpu-stage in config.json'
	hook_said "$id" "$hide" >/dev/null || hk_fail "ro root, files under /run ($engine): no clear refusal: $(cat "$HK_WORK/$id.out")"
	hk_ok "read-only root with files and a mount under /run ($engine): refused: $(hook_said "$id" "$hide" | cut -c1-200)"
done
SEE='
echo "KEEP $(cat /run/keep-me)"
echo "NESTED $(cat /run/nested/dir/file)"
echo "TOKEN $(cat /run/secrets/token)"'
anchor='.mounts += [{destination: "/run/gpu-stage", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=755"]}]'
for engine in runc crun; do
	ok_case "$engine" "ro root, files under /run, tmpfs declared at /run/gpu-stage" createRuntime true \
		"$runfiles" "$HK_SCRIPT$SEE" "$secret" "$anchor"
	grep -qx 'KEEP keep-me-content' "$OUT" && grep -qx 'NESTED nested-content' "$OUT" &&
		grep -qx 'TOKEN s3cret-token' "$OUT" || hk_fail "declared /run/gpu-stage ($engine): /run's content is not all visible: $(cat "$OUT")"
	hk_ok "read-only root, files and a mount under /run, tmpfs declared at /run/gpu-stage ($engine): everything visible"
done

# only empty directories and symlinks: covered, recreated exactly
onlyempty='mkdir -p run/user-dir run/sticky run/sgid && chown 1234:5678 run/user-dir && chmod 0710 run/user-dir &&
	chmod 1733 run/sticky && chown 0:4321 run/sgid && chmod 2750 run/sgid &&
	ln -s /var/lock run/link && chown -h 42:43 run/link && ln -s "$(printf "x%.0s" $(seq 1 3000))" run/longlink'
LIST='
for e in /run/* /run/.[!.]*; do [ -e "$e" ] || [ -L "$e" ] || continue; [ "$e" = /run/gpu-stage ] && continue
echo "ENTRY $(stat -c "%n %F %a %u %g" "$e") $(readlink "$e" || true)"; done'
for engine in runc crun; do
	n0=$((n + 1))
	want=$(cd "$HK_WORK" && mkdir -p want$n0 && cd want$n0 && rm -rf run && mkdir -p run &&
		cp -a "$HK_ROOTFS/run/." run/ && eval "$onlyempty" &&
		for e in run/* run/.[!.]*; do [ -e "$e" ] || [ -L "$e" ] || continue
			echo "ENTRY $(stat -c "/%n %F %a %u %g" "$e") $(readlink "$e" || true)"; done | sort)
	ok_case "$engine" "ro root, /run of empty dirs and symlinks" prestart true "$onlyempty" "$HK_SCRIPT$LIST"
	got=$(grep '^ENTRY ' "$OUT" | sort)
	[ "$got" = "$want" ] || hk_fail "ro root, /run of empty dirs and symlinks ($engine): not recreated identically: $(diff <(echo "$want") <(echo "$got"))"
	tail -n 1 "$HK_AUDIT" | jq -e '.plan.operations[0].actual_destination == "/run"' >/dev/null ||
		hk_fail "($engine): the anchor did not go over /run: $(tail -n 1 "$HK_AUDIT" | jq -c '.plan.operations[0]')"
	hk_ok "read-only root, /run of $(echo "$got" | wc -l) empty dirs and symlinks ($engine): covered, recreated identically"
done

# more than 64 entries: refused, not cut silently
n=$((n + 1))
id=gs-hv-$$-$n
hk_bundle "v$n"
(cd "$HK_B/rootfs" && for i in $(seq 1 70); do mkdir "run/d$i"; done)
hk_config "$HK_B" createRuntime true '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
if hk_runc "$HK_B" "$id"; then hk_fail "ro root, 72 entries in /run: started: $(cat "$HK_WORK/$id.out")"; fi
grep -q 'gpu-stage-hook: .*more than 64 entries' "$HK_WORK/$id.out" ||
	hk_fail "ro root, 72 entries in /run: no clear refusal: $(cat "$HK_WORK/$id.out")"
hk_ok "read-only root, 72 entries in /run: refused"

vol_unchanged "at the end"
echo "hook_volumes.sh: $n cases passed; the host tmpfs is unchanged"
