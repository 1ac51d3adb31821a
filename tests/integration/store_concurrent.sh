#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Concurrent runs on one store are safe: six `gpu-stage` runs of the same
# version and two of a second version (the co-installed decoy driver, through
# --libdir) start at once on an empty store while `list` and `verify` run in
# a loop beside them.  Every run must succeed (they serialise on the store
# lock), every listed version must verify at every moment, and the end state
# holds both complete versions and no temporary tree.
# Exit 0 pass, 77 skip (reason on stderr), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

VER=535.261.03
DECOY=550.163.01
source tests/lib.sh
need_built "$GS"
need_root "fixtures/mkdriver.sh runs ldconfig -r"
need_tools gcc
make_work
host=$work/host
store=$work/store
bash fixtures/mkdriver.sh "$host" --version "$VER" --decoy "$DECOY" >"$work/mk.log" 2>&1 ||
	fail "fixtures/mkdriver.sh failed: $(tail -5 "$work/mk.log")"
# a big libcuda, so that the runs overlap
head -c $((20 << 20)) /dev/urandom >>"$host/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.$VER"

# readers: whatever is listed verifies
(
	while [ -d "$work" ] && [ ! -e "$work/stop" ]; do
		for v in $("$GS" list --store "$store" 2>/dev/null); do
			"$GS" verify "$v" --store "$store" >/dev/null 2>&1 || echo "$v" >>"$work/bad"
		done
	done
) &
reader=$!

pids=()
for i in 1 2 3 4 5 6; do
	"$GS" --root "$host" --store "$store" --driver "$VER" --caps all >"$work/run$i.log" 2>&1 &
	pids+=($!)
done
for i in 7 8; do
	"$GS" --root "$host" --store "$store" --driver "$DECOY" --caps utility,compute \
		--libdir "/usr/lib/x86_64-linux-gnu/nvidia/legacy-$DECOY" >"$work/run$i.log" 2>&1 &
	pids+=($!)
done
i=0
for p in "${pids[@]}"; do
	i=$((i + 1))
	wait "$p" || fail "concurrent run $i failed: $(cat "$work/run$i.log")"
done
touch "$work/stop"
wait "$reader"

[ ! -s "$work/bad" ] || fail "a listed version did not verify while others staged: $(sort -u "$work/bad")"
for v in "$VER" "$DECOY"; do
	"$GS" verify "$v" --store "$store" >/dev/null || fail "$v does not verify at the end"
done
[ "$("$GS" list --store "$store" | sort | tr '\n' ' ')" = "$VER $DECOY " ] ||
	fail "list shows: $("$GS" list --store "$store" | tr '\n' ' ')"
if compgen -G "$store/.tmp-*" >/dev/null; then fail "temporary trees left: $(ls -A "$store")"; fi
staged=$(grep -l '^staged:' "$work"/run[1-6].log | wc -l)
[ "$staged" -eq 1 ] || fail "$staged of the six same-version runs copied the driver (expected exactly one; the others find it unchanged)"
echo "store_concurrent.sh: 8 concurrent runs (2 versions) serialised; 1 copy, 5 no-ops; readers always saw complete versions"
