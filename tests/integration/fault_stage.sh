#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fault injection into the stager (the fault build, tests/fault/): a
# counting run of `gpu-stage stage` of a synthetic 550.127.05 driver into a
# store that already holds a good 535.183.06, then, for every call site's
# first call and a few more calls spread over each wrapped libc call (at
# most GS_FAULT_MAX of them, evenly), that
# call fails with each errno it can meet (ENOSPC, EIO, EINTR, EAGAIN, EPERM,
# ENOMEM, a short read or write, ENOENT; tests/fault/lib.sh ft_errs).  The
# same for `gpu-stage remove 535.183.06` and `gpu-stage gc`.  After every
# injected run:
#   - exit 0, or 1 with a "gpu-stage: ..." message; no sanitizer report;
#   - where the code retries (EINTR, EAGAIN, a short read or write in its
#     bounded loops) one such failure does not fail the command;
#   - the store passes `gpu-stage verify` (each version there), the prior
#     version is byte-identical (modes, links, sha256 of every file) unless
#     the command was to remove it and succeeded;
#   - no temporary tree or file is left (.tmp-*, .NAME.gs-*), unless the
#     fault hit the deletion of one, the readers' barrier or the look for a
#     mount of it before (then the next run removes it, checked);
#   - no descriptor is open at exit;
#   - the lock is free and a retry without faults succeeds (and verifies).
# Prints per command the call sites, injection points, errnos and outcomes.
#
# Environment: GS_BUILD (default build; the fault build is GS_BUILD/fault),
# GS_FAULT_EXTRA (points per call beyond the sites' first calls, default 3),
# GS_FAULT_MAX (at most that many points per command, taken evenly from the
# list, default 160: the test's time in CI).
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib.sh
source tests/fault/lib.sh
ft_setup
EXTRA=${GS_FAULT_EXTRA:-3}
MAX=${GS_FAULT_MAX:-160}
# versions no other test stages: gc and remove judge a tree used when any
# mount table on the machine shows a tree of that name (another suite's
# containers would keep ours)
V1=535.183.06
V2=550.127.05
FGS=$FT_BUILD/gpu-stage
work=$(mktemp -d /tmp/gs-fault_stage-XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"; ft_cleanup' EXIT
store=$work/store

for v in $V1 $V2; do
	bash fixtures/mkdriver.sh "$work/drv-$v" --version "$v" >"$work/mkdriver-$v.log" 2>&1 &
done
for v in $V1 $V2; do
	wait -n || fail "mkdriver.sh: $(tail -5 "$work"/mkdriver-*.log)"
done
stage() { "$1" stage --root "$work/drv-$2" --driver "$2" --store "$store" --caps all; }
stage "$GS" $V1 >"$work/log" 2>&1 || fail "staging $V1: $(cat "$work/log")"
cp -a "$store" "$work/pristine1"
stage "$GS" $V2 >"$work/log" 2>&1 || fail "staging $V2: $(cat "$work/log")"
cp -a "$store" "$work/pristine2"

# STORE/VER's tree (types, modes, names, link targets) and the digests of
# its manifest and index: with `verify` (every file's digest and mode
# against the manifest, nothing else there) that is byte-identity
listing() {
	(cd "$store/$1" && find . -printf '%y %m %p %l\n' | sort && sha256sum manifest.json index)
}
hidden() { (cd "$store" && find . -mindepth 1 -name '.*' ! -name .lock ! -name .readers | sort); }
# restore PRISTINE: the versions of that copy of the store, no others;
# one already there as it was is kept (copying is the slow part)
restore() {
	local v
	for v in $V1 $V2; do
		if [ -e "$store/$v" ] && { [ ! -e "$work/$1/$v" ] || [ "$(listing "$v")" != "${want[$v]}" ]; }; then
			chmod -R u+w "$store/$v" && rm -rf "${store:?}/$v"
		fi
		if [ -e "$work/$1/$v" ] && [ ! -e "$store/$v" ]; then
			cp -a "$work/$1/$v" "$store/$v"
		fi
	done
}
declare -A want=()
want[$V1]=$(listing $V1)
want[$V2]=$(listing $V2)

# check_store WHAT FUNC V:RULE...: the store after an injected run; RULE
# "same": V is byte-identical to before, "gone": V is absent, "either":
# one of the two (an atomic removal), "new": V, if there, verifies,
# "gone-or-said": absent, or the failure says it is staged (a failed fsync
# after the rename, the CDI refresh's configuration unreadable)
check_store() {
	local what=$1 func=$2 v rule debris
	shift 2
	for v in $V1 $V2; do
		[ -e "$store/$v" ] || continue
		"$GS" verify "$v" --store "$store" >"$work/verify.log" 2>&1 ||
			fail "$what: $v does not verify: $(head -5 "$work/verify.log")"
	done
	for v in "$@"; do
		rule=${v#*:} v=${v%%:*}
		case $rule in
		same) [ "$(listing "$v")" = "${want[$v]}" ] || fail "$what: $v changed" ;;
		gone) [ ! -e "$store/$v" ] || fail "$what: $v is still there" ;;
		either) [ ! -e "$store/$v" ] || [ "$(listing "$v")" = "${want[$v]}" ] || fail "$what: $v changed" ;;
		new) ;;
		# absent, or in place (it verified) with a failure that says so
		gone-or-said) [ ! -e "$store/$v" ] || grep -q " is staged, but" "$work/run.log" ||
			fail "$what: $v is there though the command failed: $(tail -3 "$work/run.log")" ;;
		esac
	done
	debris=$(hidden)
	if [ -n "$debris" ]; then
		# only a failed deletion (or the readers' barrier or the look for
		# a mount of the tree before it: it then counts as used)
		# keeps a tree, by design, for the next run, which deletes it
		case $func in
		rm_tree_at | remove_entries | remove_dir | gs_store_remove_unused | gs_store_remove_old | gs_store_remove_stale | \
			gs_store_readers_barrier | tree_user | can_ptrace | gs_mountinfo_next | gs_mountinfo_each | gs_mountinfo_dev) ;;
		*) fail "$what: temporary entries left: $(echo "$debris" | tr '\n' ' ')" ;;
		esac
		"$GS" stage --root "$work/drv-$V2" --driver $V2 --store "$store" >"$work/next.log" 2>&1 ||
			fail "$what: the next run failed: $(tail -3 "$work/next.log")"
		[ -z "$(hidden)" ] || fail "$what: the next run left $(hidden | tr '\n' ' ')"
		left=$((left + 1))
	fi
}

# retry WHAT CMD...: the lock is free, the command succeeds without faults,
# and nothing temporary is left after it
retry() {
	local what=$1
	shift
	ft_plan
	timeout 120 "$@" >"$work/retry.log" 2>&1 || fail "$what: the retry without faults failed: $(tail -5 "$work/retry.log")"
	[ -z "$(hidden)" ] || fail "$what: temporary entries left after a clean run: $(hidden | tr '\n' ' ')"
}

# inject NAME PRISTINE OK FAILED -- CMD...: every point of CMD's counting
# run; OK and FAILED: check_store's rules (comma-separated) after a
# successful and a failed run
inject() {
	local name=$1 pristine=$2 ok=$3 failed=$4 call idx err rc fired func what rules
	shift 5
	restore "$pristine"
	ft_plan
	"$@" >"$work/count.log" 2>&1 || fail "$name: the counting run failed: $(tail -5 "$work/count.log")"
	ft_no_fds gpu-stage "$name (counting run)"
	check_store "$name (counting run)" - ${ok//,/ }
	ft_points gpu-stage "$EXTRA" | ft_sample "$MAX" >"$work/points"
	local nsites ncalls npoints=0 nfail=0 nok=0 nretried=0 nunreached=0
	nsites=$(grep -c '^site ' "$(ft_report gpu-stage)")
	ncalls=$(grep -c '^call ' "$(ft_report gpu-stage)")
	declare -A per_err=()
	left=0
	while read -r call idx err; do
		what="$name: $call #$idx $err"
		restore "$pristine"
		ft_plan gpu-stage "$call" "$idx" "$err"
		rc=0
		timeout 120 "$@" </dev/null >"$work/run.log" 2>&1 || rc=$?
		ft_clean_exit "$what" "$rc" "$work/run.log"
		if ! func=$(ft_fired_func gpu-stage "$FGS"); then
			nunreached=$((nunreached + 1)) # this run took another path
			continue
		fi
		what="$what (in $func)"
		if [ "$rc" -ne 0 ] && ft_must_retry "$call" "$err" "$func"; then
			fail "$what: $func retries this, yet the command failed: $(tail -3 "$work/run.log")"
		fi
		ft_no_fds gpu-stage "$what"
		if [ "$rc" -eq 0 ]; then rules=$ok; else rules=$failed; fi
		# the store itself vanished (ENOENT opening it, or creating its
		# lock in it): "no store, nothing staged" is the designed answer
		# (gc removes nothing; a version gone while gc scans is skipped)
		if [ "$rc" -eq 0 ] && [ "$err" = ENOENT ] &&
			[[ " gs_store_dir_open gs_store_dir_lock gs_store_list scan " == *" $func "* ]]; then
			rules=${ok//:gone/:either}
		fi
		# whether a mount uses a tree could not be told (also: the store's
		# own mount line, gs_mountinfo_dev): it counts as used and is kept
		# (store_dir.c tree_user), exit 0
		if [ "$rc" -eq 0 ] && [[ " tree_user gs_store_tree_user can_ptrace gs_mountinfo_next gs_mountinfo_each gs_mountinfo_dev gs_store_readers_barrier " == *" $func "* ]]; then
			rules=${ok//:gone/:either}
		fi
		check_store "$what" "$func" ${rules//,/ }
		[ "$rc" -eq 0 ] && nok=$((nok + 1)) || nfail=$((nfail + 1))
		ft_must_retry "$call" "$err" "$func" && nretried=$((nretried + 1))
		npoints=$((npoints + 1))
		per_err[$err]=$((${per_err[$err]:-0} + 1))
		if [ "$rc" -ne 0 ]; then
			retry "$what" "$@"
			check_store "$what (after the retry)" - ${ok//,/ }
		fi
	done <"$work/points"
	local e summary=
	for e in "${!per_err[@]}"; do summary+=" $e=${per_err[$e]}"; done
	echo "$T: $name: $ncalls calls, $nsites call sites, $npoints injection points ($nok succeeded, $nfail failed cleanly, $nretried retried, $nunreached not reached, $left left debris in a deletion);$summary"
	[ "$npoints" -gt 0 ] || fail "$name: no injection point was reached"
}

inject "stage $V2" pristine1 $V1:same,$V2:new $V1:same,$V2:gone-or-said -- "$FGS" stage --root "$work/drv-$V2" --driver $V2 --store "$store" --caps all
inject "remove $V1" pristine2 $V1:gone,$V2:same $V1:same,$V2:same -- "$FGS" remove $V1 --store "$store"
# gc: the loaded module is $V2 (the root's /proc), so $V1 goes
inject gc pristine2 $V1:gone,$V2:same $V1:either,$V2:same -- "$FGS" gc --root "$work/drv-$V2" --store "$store"
exit 0
