#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A store in a btrfs subvolume (Fedora's and openSUSE's default layout):
# there a file's st_dev is the subvolume's own number, while every mount
# table shows the file system's, so the check "does a mount still show
# this tree" must take the store's number from its mount's line, not from
# stat.  On a loop-mounted btrfs with the store in a subvolume: a process
# in a private mount namespace bind-mounts a library of V1; gc --dry-run
# keeps V1 (in use, naming the pid), and so does gc; a re-stage of V1
# while it is mounted keeps the old copy; once the holder exits, gc
# removes both.  `audit` finds the store's mount (it failed before:
# "no mount in /proc/self/mountinfo holds it").
#
# Environment: GS_BUILD (default build), GS_MKDRIVER.  Needs root (mount,
# losetup, unshare -m), mkfs.btrfs and btrfs in the kernel.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

V1=535.261.03 V2=550.163.01
source tests/lib.sh
need_built "$GS"
need_root "mount, losetup, unshare -m"
need_tools mkfs.btrfs btrfs unshare mount jq
grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || true
grep -qw btrfs /proc/filesystems || skip "no btrfs in this kernel"
make_work
mnt=$work/mnt holder=
cleanup() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
	chmod -R u+w "$mnt" 2>/dev/null
	mountpoint -q "$mnt" && umount "$mnt"
	chmod -R u+w "$work" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

truncate -s 512M "$work/fs.img"
mkfs.btrfs -q -f "$work/fs.img" >/dev/null 2>&1 || fail "mkfs.btrfs failed"
mkdir -p "$mnt"
mount -o loop "$work/fs.img" "$mnt" || fail "cannot mount the btrfs image"
btrfs subvolume create "$mnt/sub" >/dev/null || fail "btrfs subvolume create failed"
store=$mnt/sub/store
# the premise: stat's number is not the one the mount table shows
sd=$(stat -c %d "$mnt/sub")
line=$(awk -v p="$mnt" '$5 == p { print $3 }' /proc/self/mountinfo)
[ "$line" != "$((sd >> 8)):$((sd & 255))" ] ||
	fail "the subvolume's st_dev equals its mount's ($line): the premise of this test does not hold"

stage_mkdriver "$store" "$V1" "$V2"
mkdir -p "$work/host/proc/driver/nvidia"
printf 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Release Build\n' "$V2" >"$work/host/proc/driver/nvidia/version"
export GPU_STAGE_CONFIG=$work/config.json
echo '{}' >"$GPU_STAGE_CONFIG"
gc() { "$GS" gc --store "$store" --root "$work/host" "$@"; }

lib=$(find "$store/$V1/lib" -type f -name 'libcuda.so.*' | head -n 1)
[ -n "$lib" ] || fail "no libcuda in $store/$V1"
hold_bind "$lib"

gc --dry-run >"$work/dry" || fail "gc --dry-run failed"
grep -qx "keep         $V1  (in use: mounted in the mount namespace of pid $holder)" "$work/dry" ||
	fail "btrfs: a mounted tree is not seen as in use: $(cat "$work/dry")"
gc >"$work/gc" || fail "gc failed"
[ -d "$store/$V1" ] || fail "gc removed the mounted $V1: $(cat "$work/gc")"
"$GS" verify "$V1" --store "$store" >/dev/null || fail "$V1 no longer verifies"

# a re-stage while mounted keeps the old copy
"$GS" stage --root "$work/root-$V1" --driver "$V1" --store "$store" --force >/dev/null 2>&1 || fail "re-stage $V1"
old=$(ls -a "$store" | grep "^.tmp-$V1-" || true)
[ -n "$old" ] || fail "btrfs: the re-stage did not keep the mounted old copy"

# audit finds the store's mount (no container: no record, but no error)
"$GS" audit --all --store "$store" --json >"$work/audit.json" 2>"$work/audit.err" ||
	fail "audit on btrfs: $(cat "$work/audit.err")"

kill "$holder" && wait "$holder" 2>/dev/null || true
holder=
gc >"$work/gc2" || fail "gc failed"
grep -qx "removed      $old  (an old copy nothing mounts)" "$work/gc2" || fail "old copy: $(cat "$work/gc2")"
grep -qx "removed      $V1  (not loaded, not in use)" "$work/gc2" || fail "$V1: $(cat "$work/gc2")"
echo "$T: ok: a store in a btrfs subvolume: a mounted tree kept by gc and a re-stage, removed once unmounted; audit finds the store's mount"
