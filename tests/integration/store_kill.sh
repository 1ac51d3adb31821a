#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Crash safety of the store: SIGKILL `gpu-stage stage` at random moments
# (0-300 ms, mostly in the middle of copying a 50 MB library) while it
# creates or replaces STORE/VER, then check that
#   - STORE/VER is either absent (only when nothing was staged before) or a
#     complete tree that `gpu-stage verify` accepts;
#   - `gpu-stage list` shows nothing but complete versions;
#   - the next normal run succeeds, verifies, and leaves no .tmp-* debris.
#
# Environment: GS_BUILD (build directory, default build), GS_MKDRIVER (the
# synthetic driver generator, default fixtures/mkdriver.sh), GS_KILL_ROUNDS
# (default 30).  Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

VER=535.261.03
ROUNDS=${GS_KILL_ROUNDS:-30}
MKDRIVER=${GS_MKDRIVER:-fixtures/mkdriver.sh}
source tests/lib.sh
need_built "$GS"
need_tools head dd find timeout gcc
make_work
root=$work/root
store=$work/store

bash "$MKDRIVER" "$root" --version "$VER" >"$work/mkdriver.log" 2>&1 ||
	fail "$MKDRIVER failed: $(tail -5 "$work/mkdriver.log")"

# Make one library big, so that kills land in the middle of the copy.  The
# tree is this test's own copy: nothing outside $work is touched.
big=$(find "$root" -type f -path "*x86_64-linux-gnu*" -name "libcuda.so.$VER" | head -n 1)
[ -n "$big" ] || fail "no libcuda.so.$VER in the generated tree"
head -c $((50 << 20)) /dev/urandom >>"$big"
big_size=$(stat -c %s "$big")

stage() { "$GS" stage --root "$root" --driver "$VER" --store "$store" "$@"; }

# A complete, verified version, or nothing at all; never anything else.
check_store() {
	local round=$1 must_exist=$2
	if [ -e "$store/$VER" ] || [ -L "$store/$VER" ]; then
		"$GS" verify "$VER" --store "$store" >"$work/verify.out" 2>&1 ||
			fail "round $round: $store/$VER is not complete: $(head -20 "$work/verify.out")"
	elif [ "$must_exist" = 1 ]; then
		fail "round $round: the previous $store/$VER vanished"
	fi
	local listed
	listed=$("$GS" list --store "$store") || fail "round $round: gpu-stage list failed"
	while IFS= read -r v; do
		[ -z "$v" ] && continue
		[ "$v" = "$VER" ] || fail "round $round: gpu-stage list shows '$v'"
		"$GS" verify "$v" --store "$store" >/dev/null 2>&1 ||
			fail "round $round: listed version $v does not verify"
	done <<<"$listed"
	if [ -d "$store/$VER" ]; then
		"$GS" list --store "$store" --driver "$VER" --json >/dev/null ||
			fail "round $round: list --driver $VER failed"
	fi
}

interrupted=0
for round in $(seq 1 "$ROUNDS"); do
	# every third round starts from nothing (create), the others replace
	if [ $((round % 3)) -eq 0 ] && [ -d "$store/$VER" ]; then
		"$GS" remove "$VER" --store "$store" >/dev/null || fail "round $round: remove failed"
	fi
	existed=0
	[ -d "$store/$VER" ] && existed=1
	# change the big library (same size, new bytes and mtime) so the
	# staged copy is out of date and the run has to copy it again
	printf '%08d' "$round" | dd of="$big" bs=1 seek=$((big_size - 4096)) conv=notrunc status=none
	stage >"$work/stage.log" 2>&1 &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 300)))"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if compgen -G "$store/.tmp-*" >/dev/null; then
		interrupted=$((interrupted + 1))
	fi
	check_store "$round" "$existed"
	# the next normal run completes and cleans up after the killed one
	timeout 300 "$GS" stage --root "$root" --driver "$VER" --store "$store" \
		>"$work/stage.log" 2>&1 || fail "round $round: staging after the kill failed: $(tail -5 "$work/stage.log")"
	check_store "$round" 1
	if compgen -G "$store/.tmp-*" >/dev/null; then
		fail "round $round: temporary trees left after a complete run: $(ls -A "$store")"
	fi
	grep -q "$(printf '%08d' "$round")" "$store/$VER"/lib/*/"libcuda.so.$VER" ||
		fail "round $round: the staged libcuda is not the current one"
done

echo "store_kill.sh: $ROUNDS rounds, $interrupted killed mid-stage (temporary tree left behind), store always consistent"
if [ "$interrupted" -eq 0 ]; then
	echo "store_kill.sh: warning: no kill landed mid-copy on this machine" >&2
fi
exit 0
