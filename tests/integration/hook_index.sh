#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The index a container start reads (STORE/VER/index, issue 13), in real
# `runc run`s:
# - a missing, truncated, corrupt, other-format index, or one made from
#   another manifest.json: the container does not start (exit 1 from the
#   hook), the message names the file and says to run gpu-stage --driver,
#   no host mount is left behind; `gpu-stage --driver VER` rebuilds it
#   ("index rebuilt", nothing copied) and the next start works;
# - re-staging racing container starts: two trees of the same version that
#   differ in libcuda's bytes are staged in turn (--force) while containers
#   start; every container starts, and the libcuda it sees has exactly the
#   sha256 its audit record gives (from the index it read): never one
#   tree's index with the other tree's files.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source fixtures/hook_lib.sh
hk_setup hook_index.sh
V=$HK_STORE/$HK_VER
LIB=lib/compute/libcuda.so.$HK_VER

# Replaces STORE/VER/index by what "$@" makes of the saved good one.
edit_index() {
	chmod 755 "$V"
	rm -f "$V/index"
	"$@" <"$HK_WORK/index.good" >"$V/index"
	chmod 444 "$V/index"
	chmod 555 "$V"
}

n=0
# start_fails WHAT PATTERN: a container start is refused with PATTERN.
start_fails() {
	n=$((n + 1))
	hk_bundle "bad$n"
	hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=none"]' 'echo STARTED'
	local before
	before=$(hk_mounts)
	if hk_runc "$HK_B" "gs-ix-$$-$n"; then
		hk_fail "$1: the container started: $(cat "$HK_WORK/gs-ix-$$-$n.out")"
	fi
	local out=$HK_WORK/gs-ix-$$-$n.out
	grep -q STARTED "$out" && hk_fail "$1: the container's process ran"
	grep -q "$V/index" "$out" || hk_fail "$1: the message does not name $V/index: $(cat "$out")"
	grep -q -- "$2" "$out" || hk_fail "$1: the message does not say '$2': $(cat "$out")"
	grep -q "gpu-stage --driver $HK_VER" "$out" || hk_fail "$1: the message does not say how to rebuild: $(cat "$out")"
	[ "$(hk_mounts)" = "$before" ] || hk_fail "$1: the host's mount table changed"
	hk_ok "$1: refused ($(grep -o "$2" "$out" | head -1))"
}

cp "$V/index" "$HK_WORK/index.good"
edit_index true
start_fails "empty index" "truncated"
chmod 755 "$V" && rm "$V/index" && chmod 555 "$V"
start_fails "missing index" "missing"
edit_index head -c 3000
start_fails "truncated index" "truncated"
edit_index sed '3s/x86_64/x86_65/'
start_fails "corrupt index (checksum)" "checksum mismatch"
# another format, checksum made right: the format line is what refuses it
edit_index sh -c 'sed -e "1s/\t[0-9]*$/\t9/" -e "\$d" | { t=$(cat); printf "%s\n" "$t"; printf "end\t%08x\n" "$(printf "%s\n" "$t" | gzip -c | tail -c8 | od -An -tu4 -N4 | tr -d " ")"; }'
start_fails "index of another format" "format 9"
chmod 755 "$V" && cp "$HK_WORK/index.good" "$V/index" && chmod u+w "$V/manifest.json" &&
	echo >>"$V/manifest.json" && chmod 444 "$V/manifest.json" "$V/index" && chmod 555 "$V"
start_fails "index of another manifest.json" "made from another manifest.json"
chmod 755 "$V" && chmod u+w "$V/manifest.json" && truncate -s -1 "$V/manifest.json" &&
	chmod 444 "$V/manifest.json" && rm "$V/index" && chmod 555 "$V"

# gpu-stage rebuilds the index alone
ino=$(stat -c %i "$V/$LIB")
"$HK_GS" --root "$HK_WORK/drv" --store "$HK_STORE" --driver "$HK_VER" --caps all >"$HK_WORK/re.out" 2>&1 ||
	hk_fail "re-staging failed: $(cat "$HK_WORK/re.out")"
grep -q "^index rebuilt: driver $HK_VER" "$HK_WORK/re.out" || hk_fail "gpu-stage did not say it rebuilt the index: $(cat "$HK_WORK/re.out")"
[ "$(stat -c %i "$V/$LIB")" = "$ino" ] || hk_fail "rebuilding the index copied the files again"
cmp -s "$V/index" "$HK_WORK/index.good" || hk_fail "the rebuilt index differs from the one staging wrote"
"$HK_GS" verify "$HK_VER" --store "$HK_STORE" >/dev/null || hk_fail "verify fails after the index was rebuilt"
hk_bundle good
hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=none"]' 'echo STARTED'
hk_runc "$HK_B" "gs-ix-$$-good" || hk_fail "the container fails after the rebuild: $(cat "$HK_WORK/gs-ix-$$-good.out")"
hk_ok "gpu-stage rebuilt the index alone (nothing copied); containers start again"

# re-staging racing container starts: tree A and tree B of one version
cp -a "$HK_WORK/drv" "$HK_WORK/drvB"
src=$(jq -r --arg p "$LIB" '.files[] | select(.path == $p) | .source' "$V/manifest.json")
printf 'tree B' >>"$HK_WORK/drvB$src"
"$HK_GS" --root "$HK_WORK/drvB" --store "$HK_STORE" --driver "$HK_VER" --caps all -q --force >/dev/null 2>&1 ||
	hk_fail "staging tree B failed"
shaA=$(sha256sum "$HK_WORK/drv$src" | cut -d' ' -f1)
shaB=$(sha256sum "$HK_WORK/drvB$src" | cut -d' ' -f1)
[ "$(sha256sum "$V/$LIB" | cut -d' ' -f1)" = "$shaB" ] || hk_fail "tree B is not what is staged"
(
	for ((k = 0; k < 400; k++)); do
		for t in drv drvB; do
			"$HK_GS" --root "$HK_WORK/$t" --store "$HK_STORE" --driver "$HK_VER" --caps all -q --force \
				>/dev/null 2>>"$HK_WORK/restage.err" || echo "restage $t failed" >>"$HK_WORK/restage.err"
			[ -e "$HK_WORK/stop" ] && exit 0
		done
		echo $((k + 1)) >"$HK_WORK/rounds"
	done
) &
restager=$!
hk_bundle race
hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=none"]' \
	"sha256sum /run/gpu-stage/$LIB"
seenA=0 seenB=0
for ((i = 0; i < 24; i++)); do
	id=gs-ix-$$-r$i
	hk_runc "$HK_B" "$id" || { touch "$HK_WORK/stop"; hk_fail "start $i during re-staging failed: $(cat "$HK_WORK/$id.out")"; }
	got=$(awk 'NR == 1 {print $1}' "$HK_WORK/$id.out")
	said=$(grep "\"container\":\"$id\"" "$HK_AUDIT" | jq -r --arg p "$LIB" \
		'.plan.operations[] | select(.files) | .files[] | select(.path == $p) | .sha256')
	[ -n "$got" ] && [ "$got" = "$said" ] ||
		{ touch "$HK_WORK/stop"; hk_fail "start $i: the container's libcuda ($got) is not the one its index and audit record name ($said)"; }
	case $got in
	"$shaA") seenA=$((seenA + 1)) ;;
	"$shaB") seenB=$((seenB + 1)) ;;
	*) touch "$HK_WORK/stop"; hk_fail "start $i: libcuda of neither tree: $got" ;;
	esac
	runc delete -f "$id" >/dev/null 2>&1 || true
done
touch "$HK_WORK/stop"
wait "$restager" || true
! grep -q failed "$HK_WORK/restage.err" 2>/dev/null || hk_fail "a re-stage failed: $(cat "$HK_WORK/restage.err")"
rounds=$(cat "$HK_WORK/rounds" 2>/dev/null || echo 0)
[ "$rounds" -ge 2 ] || hk_fail "the re-stager did not get going (rounds: $rounds)"
"$HK_GS" verify "$HK_VER" --store "$HK_STORE" >/dev/null || hk_fail "verify fails after the race"
hk_ok "24 starts during $rounds rounds of re-staging (A $seenA, B $seenB): each saw one whole tree"

# a container running across a re-stage keeps its files; the replaced copy
# is deleted by the first gpu-stage run after the container is gone
hk_bundle long
hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=none"]' \
	"sha256sum /run/gpu-stage/$LIB; sleep 4; sha256sum /run/gpu-stage/$LIB"
before=$(sha256sum "$V/$LIB" | cut -d' ' -f1)
hk_runc "$HK_B" "gs-ix-$$-long" &
long=$!
for ((i = 0; i < 100; i++)); do
	[ -s "$HK_WORK/gs-ix-$$-long.out" ] && break
	sleep 0.1
done
[ -s "$HK_WORK/gs-ix-$$-long.out" ] || hk_fail "the long-running container did not start: $(cat "$HK_WORK/gs-ix-$$-long.out")"
for t in drv drvB; do
	"$HK_GS" --root "$HK_WORK/$t" --store "$HK_STORE" --driver "$HK_VER" --caps all -q --force >/dev/null 2>&1 ||
		hk_fail "re-staging $t while a container runs failed"
done
kept=$(find "$HK_STORE" -maxdepth 1 -name '.tmp-*' | wc -l)
[ "$kept" -ge 1 ] || hk_fail "the copy a running container mounts was deleted"
wait "$long" || hk_fail "the long-running container failed: $(cat "$HK_WORK/gs-ix-$$-long.out")"
[ "$(awk 'NR == 2 {print $1}' "$HK_WORK/gs-ix-$$-long.out")" = "$before" ] ||
	hk_fail "a running container lost or changed its libcuda across a re-stage: $(cat "$HK_WORK/gs-ix-$$-long.out")"
runc delete -f "gs-ix-$$-long" >/dev/null 2>&1 || true
"$HK_GS" --root "$HK_WORK/drvB" --store "$HK_STORE" --driver "$HK_VER" --caps all -q >/dev/null 2>&1 ||
	hk_fail "gpu-stage after the container exited failed"
left=$(find "$HK_STORE" -maxdepth 1 -name '.tmp-*' | wc -l)
[ "$left" -eq 0 ] || hk_fail "the replaced copies were not deleted once unused: $(ls -a "$HK_STORE")"
hk_ok "a running container kept its files across two re-stages ($kept old copies kept); deleted once it exited"

# a reader that hangs (holds STORE/.readers) does not hang the stager: after
# GS_BARRIER_WAIT_MS (10 s) the re-stage completes and keeps the old copy;
# the first run after the reader is gone deletes it
exec 9<"$HK_STORE/.readers"
flock -s 9 # this shell is the hung reader (its children do not inherit fd 9)
t0=$SECONDS
"$HK_GS" --root "$HK_WORK/drv" --store "$HK_STORE" --driver "$HK_VER" --caps all -q --force >"$HK_WORK/hung.out" 2>&1 9<&- ||
	{ exec 9<&-; hk_fail "re-staging with a hung reader failed: $(cat "$HK_WORK/hung.out")"; }
waited=$((SECONDS - t0))
kept=$(find "$HK_STORE" -maxdepth 1 -name '.tmp-*' | wc -l)
exec 9<&-
[ "$waited" -ge 9 ] || hk_fail "the stager did not wait for the reader ($waited s)"
[ "$waited" -le 30 ] || hk_fail "the stager waited $waited s for a hung reader"
[ "$kept" -ge 1 ] || hk_fail "the old copy was deleted while a reader held the lock"
"$HK_GS" --root "$HK_WORK/drv" --store "$HK_STORE" --driver "$HK_VER" --caps all -q >/dev/null 2>&1 ||
	hk_fail "gpu-stage after the reader was gone failed"
[ "$(find "$HK_STORE" -maxdepth 1 -name '.tmp-*' | wc -l)" -eq 0 ] || hk_fail "the old copy was not deleted once the reader was gone"
"$HK_GS" verify "$HK_VER" --store "$HK_STORE" >/dev/null || hk_fail "verify fails after the hung-reader re-stage"
hk_ok "a hung reader: the re-stage went on after $waited s, kept the old copy, the next run deleted it"
