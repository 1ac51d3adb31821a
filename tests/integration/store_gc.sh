#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage gc: three versions in a temporary store (one driver tree
# exported and imported under three version names would not verify, so
# three synthetic drivers are staged), a fake root whose
# proc/driver/nvidia/version names the first, the second kept alive by a
# process in a private mount namespace that bind-mounts one of its
# libraries: gc --dry-run removes nothing and says why each stays; gc
# removes only the third; once the process exits, gc removes the second
# too; the loaded one stays.  Also: an old copy left by a re-stage while
# mounted is removed once nothing mounts it; the configuration's "driver"
# is kept; a namespace whose first process is chrooted still counts
# through its other processes; no loaded module: nothing removed, exit 1.
#
# Environment: GS_BUILD (default build), GS_MKDRIVER.  Needs root (unshare
# -m, mount).  Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

V1=535.261.03 V2=550.163.01 V3=570.86.15
source tests/lib.sh
need_built "$GS"
need_root "unshare -m and bind mounts"
need_tools jq unshare mount gcc chroot busybox
make_work
store=$work/store
holder=
jailed=
cleanup() {
	if [ -n "$jailed" ]; then kill "$jailed" 2>/dev/null || true; fi
	if [ -n "$holder" ]; then kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null || true; fi
	chmod -R u+w "$work" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

stage_mkdriver "$store" "$V1" "$V2" "$V3"
mkdir -p "$work/host/proc/driver/nvidia"
printf 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Release Build\n' "$V1" >"$work/host/proc/driver/nvidia/version"
export GPU_STAGE_CONFIG=$work/config.json
echo '{}' >"$GPU_STAGE_CONFIG"
gc() { "$GS" gc --store "$store" --root "$work/host" "$@"; }
listed() { "$GS" list --store "$store" | tr '\n' ' '; }

# V2 in use: a process in its own mount namespace binds one of V2's libraries
lib=$(find "$store/$V2/lib" -type f -name 'libcuda.so.*' | head -n 1)
[ -n "$lib" ] || fail "no libcuda in $store/$V2"
hold_bind "$lib"
grep -qF "/store/$V2/lib/" "/proc/$holder/mountinfo" || fail "the holder's mount table does not show $V2"

gc --dry-run >"$work/dry" || fail "gc --dry-run failed"
[ "$(listed)" = "$V1 $V2 $V3 " ] || fail "--dry-run removed something: $(listed)"
grep -qx "keep         $V1  (the loaded kernel module's)" "$work/dry" || fail "dry run, $V1: $(cat "$work/dry")"
grep -qx "keep         $V2  (in use: mounted in the mount namespace of pid $holder)" "$work/dry" ||
	fail "dry run, $V2: $(cat "$work/dry")"
grep -qx "would remove $V3  (not loaded, not in use)" "$work/dry" || fail "dry run, $V3: $(cat "$work/dry")"
[ "$(gc --dry-run --json | jq -r '[.items[] | select(.action == "would remove") | .name] | join(",")')" = "$V3" ] ||
	fail "--dry-run --json"

gc --json >"$work/gc.json" || fail "gc failed"
[ "$(listed)" = "$V1 $V2 " ] || fail "after gc: $(listed)"
[ "$(jq -r .removed "$work/gc.json")" = 1 ] || fail "gc --json removed: $(cat "$work/gc.json")"
[ -e "$store/$V3" ] && fail "$V3 is still there"
ls -a "$store" | grep -q "^.tmp-" && fail "gc left .tmp-* trees: $(ls -a "$store")"
"$GS" verify "$V1" --store "$store" >/dev/null || fail "$V1 no longer verifies"
"$GS" verify "$V2" --store "$store" >/dev/null || fail "$V2 no longer verifies"

# the configuration's driver is kept; a re-stage of it while it is mounted
# keeps the old copy (.tmp-*): gc keeps that too while it is mounted
echo "{\"driver\": \"$V2\"}" >"$GPU_STAGE_CONFIG"
"$GS" stage --root "$work/root-$V2" --driver "$V2" --store "$store" --force >/dev/null 2>&1 || fail "re-stage $V2"
old=$(ls -a "$store" | grep "^.tmp-$V2-" || true)
[ -n "$old" ] || fail "the re-stage did not keep the mounted old copy"
gc >"$work/gc2" || fail "gc failed"
grep -qx "keep         $V2  (the configuration's \"driver\")" "$work/gc2" || fail "config driver: $(cat "$work/gc2")"
grep -qx "keep         $old  (in use: mounted in the mount namespace of pid $holder)" "$work/gc2" ||
	fail "the old copy: $(cat "$work/gc2")"
[ -d "$store/$old" ] || fail "the mounted old copy was removed"
kill "$holder" && wait "$holder" 2>/dev/null || true
holder=

# nothing mounts the old copy now
gc >"$work/gc3" || fail "gc failed"
grep -qx "removed      $old  (an old copy nothing mounts)" "$work/gc3" || fail "old copy: $(cat "$work/gc3")"
[ -e "$store/$old" ] && fail "the old copy is still there"
echo '{}' >"$GPU_STAGE_CONFIG"
gc >"$work/gc4" || fail "gc failed"
grep -qx "removed      $V2  (not loaded, not in use)" "$work/gc4" || fail "$V2: $(cat "$work/gc4")"
[ "$(listed)" = "$V1 " ] || fail "after the holder exited: $(listed)"
gc | grep -qx "nothing to remove in $store" || fail "a second gc removed something"

gc --store "$work/none" | grep -qx "nothing to remove in $work/none" || fail "gc of a missing store"
[ -e "$work/none" ] && fail "gc created a store"

# a mount namespace whose lowest pid is chrooted: that process's table shows
# only the mounts under its root (not the bind of V3), so it cannot speak
# for the namespace; its second process, at the namespace's root, shows it
"$GS" stage --root "$work/root-$V3" --driver "$V3" --store "$store" >/dev/null 2>&1 || fail "stage $V3 again"
lib=$(find "$store/$V3/lib" -type f -name 'libcuda.so.*' | head -n 1)
mkdir "$work/jail"
cp "$(command -v busybox)" "$work/jail/busybox"
: >"$work/target"
rm -f "$work/ready"
unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && mount --bind "$3" "$3" || exit 1
	chroot "$3" /busybox sleep 600 &
	jailed=$!
	sleep 0.2
	sleep 600 &
	echo "$jailed $!" >"$4"' sh "$lib" "$work/target" "$work/jail" "$work/ready" || fail "the holders did not start"
read -r jailed holder <"$work/ready"
[ "$jailed" -lt "$holder" ] || fail "pids out of order ($jailed, $holder): run again"
grep -qF "/store/$V3/lib/" "/proc/$jailed/mountinfo" && fail "the chrooted process's table shows $V3"
grep -qF "/store/$V3/lib/" "/proc/$holder/mountinfo" || fail "the holder's mount table does not show $V3"
gc >"$work/gc5" || fail "gc failed"
grep -qx "keep         $V3  (in use: mounted in the mount namespace of pid $holder)" "$work/gc5" ||
	fail "$V3 behind a chrooted process: $(cat "$work/gc5")"
[ -d "$store/$V3" ] || fail "gc removed $V3, mounted in a namespace whose first process is chrooted"
kill "$jailed" "$holder"
jailed= holder=
gc >"$work/gc6" || fail "gc failed"
grep -qx "removed      $V3  (not loaded, not in use)" "$work/gc6" || fail "$V3 once unmounted: $(cat "$work/gc6")"

# deleting fails (a tmpfs mounted on a directory of the tree, in a private
# namespace: not the tree's own superblock, so not a use of it, but its
# mount point cannot be removed): gc says so and exits 1, `gpu-stage
# remove` warns (the version is out of the store all the same); the tree
# stays hidden as .tmp-rm-* and a later run deletes it
for how in gc remove; do
	"$GS" stage --root "$work/root-$V3" --driver "$V3" --store "$store" >/dev/null 2>&1 || fail "stage $V3 ($how)"
	rc=0
	if [ $how = gc ]; then cmd=("$GS" gc --store "$store" --root "$work/host"); else cmd=("$GS" remove "$V3" --store "$store"); fi
	unshare -m --propagation private sh -c 'mount -t tmpfs gs-busy "$1" && shift && exec "$@"' sh "$store/$V3/lib" \
		"${cmd[@]}" >"$work/gc7" 2>&1 || rc=$?
	case $how in
	gc) # gc's job is the space: exit 1
		[ "$rc" -eq 1 ] && grep -q "^failed       $V3  (removed from the store, but deleting its files failed: Device or resource busy; a later run tries again)" "$work/gc7" ||
		fail "gc: the failed deletion: exit $rc: $(cat "$work/gc7")" ;;
	remove) # removed from the store all the same: exit 0, a warning
		[ "$rc" -eq 0 ] && grep -q "warning: deleting the files of $store/$V3 failed (Device or resource busy): they stay hidden as $store/.tmp-rm-$V3-\*" "$work/gc7" &&
		! grep -q "still mounts" "$work/gc7" || fail "remove: the failed deletion: exit $rc: $(cat "$work/gc7")" ;;
	esac
	held=$(ls -a "$store" | grep "^.tmp-rm-$V3-" || true)
	[ -n "$held" ] && [ ! -e "$store/$V3" ] || fail "$how: the tree is not hidden as .tmp-rm-$V3-*: $(ls -a "$store")"
	gc >"$work/gc8" || fail "gc once the mount is gone: $(cat "$work/gc8")"
	grep -qx "removed      $held  (an old copy nothing mounts)" "$work/gc8" && [ ! -e "$store/$held" ] ||
		fail "$how: the hidden tree was not deleted by a later gc: $(cat "$work/gc8")"
done

# no loaded module: nothing removed, exit 1
rm "$work/host/proc/driver/nvidia/version"
if gc >/dev/null 2>"$work/err"; then fail "gc without a loaded module succeeded"; fi
grep -q "no nvidia kernel module loaded" "$work/err" || fail "no module: $(cat "$work/err")"
[ "$(listed)" = "$V1 " ] || fail "gc without a module removed something"
if "$GS" gc extra >/dev/null 2>&1; then fail "gc with an argument"; else [ $? = 2 ] || fail "gc extra: not exit 2"; fi
"$GS" gc --help | grep -q "Usage: gpu-stage gc" || fail "gc --help"
echo "$T: ok"
