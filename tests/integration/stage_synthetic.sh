#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Discovery and staging on the synthetic driver tree (fixtures/mkdriver.sh),
# checked against the answer the generator writes from its own tables
# (OUTROOT/.gs-fixture.json), never against a recorded run:
#   - `--caps all` stages exactly the files the fixture lists as included
#     (by resolved source path), none it lists as excluded (decoys of
#     550.163.01, the X driver, an unversioned executable no package owns);
#   - a re-run copies nothing ("unchanged"), --dry-run writes nothing;
#   - asking for an absent or partial version fails and names what is present;
#   - --libdir stages the co-installed second driver with nothing of the first;
#   - --caps utility gives libnvidia-ml without libcuda;
#   - a Debian rootfs that receives the staged lib/compute + lib/utility and a
#     cache refreshed by `gpu-stage ldcache update` loads libcuda.so.1 by
#     SONAME with no LD_* set, and cuDriverGetVersion is the fixture's answer;
#   - NVIDIA's .run layout (flat, VDPAU in vdpau/, two decoy versions) and a
#     host without i386 libraries: staged set == the fixture's again.
# Exit 0 pass, 77 skip (reason on stderr), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

VER=535.261.03
DECOY=550.163.01
source tests/lib.sh
need_built "$GS" "$PROBE"
need_root "ldconfig -r and chroot"
need_tools jq gcc ldconfig chroot debootstrap
make_work
host=$work/host
store=$work/store

bash fixtures/mkdriver.sh "$host" --version "$VER" --decoy "$DECOY" >"$work/mk.log" 2>&1 ||
	fail "fixtures/mkdriver.sh failed: $(tail -5 "$work/mk.log")"
fixture=$host/.gs-fixture.json

# 1. the staged set is exactly the fixture's include list
"$GS" --root "$host" --store "$store" --driver "$VER" --caps all --json >"$work/stage.json" \
	2>"$work/stage.err" || fail "staging failed: $(cat "$work/stage.err")"
[ "$(jq -r .result "$work/stage.json")" = staged ] || fail "first run did not report 'staged'"
manifest=$store/$VER/manifest.json
jq -r '.include[].path | "/" + .' "$fixture" | sort >"$work/want"
jq -r '.files[].source' "$manifest" | sort >"$work/got"
if ! diff -u "$work/want" "$work/got" >"$work/diff"; then
	fail "staged set differs from the fixture's (- expected, + staged):
$(grep '^[-+]/' "$work/diff")"
fi
while IFS= read -r p; do
	grep -qxF "/$p" "$work/got" && fail "excluded file /$p was staged"
done < <(jq -r '.exclude[].path' "$fixture")
jq -r ".warnings[]" "$manifest" | grep -q "nv-fabricmanager: not staged" ||
	fail "no warning about the unowned, unversioned nv-fabricmanager"
"$GS" verify "$VER" --store "$store" >/dev/null || fail "verify failed on a fresh stage"
# the manifest says why each file belongs to VER
ev() { jq -r --arg s "$1" '.files[] | select(.source | endswith($s)) | .evidence' "$manifest"; }
[ "$(ev /libcuda.so.$VER | sort -u)" = name ] || fail "libcuda's evidence is not its name: $(ev /libcuda.so.$VER)"
[ "$(ev /nvidia-cuda-mps-server)" = "dpkg:nvidia-cuda-mps-server=$VER-1" ] ||
	fail "nvidia-cuda-mps-server's evidence is not its package: $(ev /nvidia-cuda-mps-server)"
[ "$(ev /nvidia-smi)" = content ] || fail "nvidia-smi's evidence is not its content: $(ev /nvidia-smi)"
[ "$(jq '[.files[] | select(.evidence == null)] | length' "$manifest")" = 0 ] || fail "files without evidence"

# 2. no-op re-run, dry run
before=$(stat -c %Y.%i "$manifest")
"$GS" --root "$host" --store "$store" --driver "$VER" --caps all --json 2>/dev/null >"$work/again.json"
[ "$(jq -r .result "$work/again.json")" = unchanged ] || fail "re-run on an unchanged driver was not 'unchanged'"
[ "$(stat -c %Y.%i "$manifest")" = "$before" ] || fail "re-run rewrote the staged tree"
"$GS" --root "$host" --store "$work/dry" --driver "$VER" --dry-run --json >"$work/dry.json" 2>/dev/null ||
	fail "--dry-run failed"
[ ! -e "$work/dry" ] || fail "--dry-run wrote $work/dry"
[ "$(jq '.files | length' "$work/dry.json")" -gt 0 ] || fail "--dry-run --json lists no files"

# 3. absent or partial versions fail and say what is present
for v in "$DECOY" 999.1.1; do
	if "$GS" --root "$host" --store "$store" --driver "$v" >"$work/out" 2>&1; then
		fail "--driver $v succeeded on a tree without a full $v"
	fi
	grep -q "versions present: .*$VER" "$work/out" || fail "--driver $v: no list of present versions: $(cat "$work/out")"
	[ ! -e "$store/$v" ] || fail "--driver $v left $store/$v"
done

# 4. the co-installed second driver through --libdir, nothing of the first
"$GS" --root "$host" --store "$store" --driver "$DECOY" --caps utility,compute \
	--libdir "/usr/lib/x86_64-linux-gnu/nvidia/legacy-$DECOY" >/dev/null 2>"$work/decoy.err" ||
	fail "--libdir staging of $DECOY failed: $(cat "$work/decoy.err")"
jq -r '.files[].source' "$store/$DECOY/manifest.json" >"$work/decoy.got"
grep -q "libcuda.so.$DECOY\$" "$work/decoy.got" || fail "$DECOY: libcuda not staged"
if grep -F "$VER" "$work/decoy.got"; then fail "$DECOY: files of $VER staged"; fi
"$GS" list --store "$store" --json | jq -e --arg a "$VER" --arg b "$DECOY" \
	'[.. | strings] | index($a) != null and index($b) != null' >/dev/null ||
	fail "list --json does not show both versions"

# 5. capability filtering
"$GS" --root "$host" --store "$work/util" --driver "$VER" --caps utility >/dev/null 2>&1 ||
	fail "--caps utility failed"
jq -r '.files[].path, .links[].path' "$work/util/$VER/manifest.json" >"$work/util.got"
grep -q 'libnvidia-ml.so.1$' "$work/util.got" || fail "--caps utility: no libnvidia-ml"
if grep -q libcuda "$work/util.got"; then fail "--caps utility staged libcuda"; fi

# 6. a Debian rootfs loads the staged libcuda by SONAME through its own cache
out=$(probe_staged "$store" "$VER" libcuda.so.1 libnvidia-ml.so.1 libz.so.1)
want=$(jq -r .cuda_version "$fixture")
grep -qx "cuDriverGetVersion=$want (rc 0)" <<<"$out" || fail "probe: expected cuDriverGetVersion=$want, got: $out"
# 7. other layouts: NVIDIA's .run installer (flat, everything in the
# multiarch folders, VDPAU in vdpau/) with two decoy versions, and a host
# without i386 libraries; the staged set is again exactly the fixture's
layout_case() { # NAME MKDRIVER-ARGS...
	local name=$1
	shift
	bash fixtures/mkdriver.sh "$work/$name" --version "$VER" "$@" >"$work/$name.log" 2>&1 ||
		fail "$name: fixtures/mkdriver.sh failed: $(tail -5 "$work/$name.log")"
	"$GS" --root "$work/$name" --store "$work/$name-store" --driver "$VER" --caps all >/dev/null 2>&1 ||
		fail "$name: staging failed"
	jq -r '.include[].path | "/" + .' "$work/$name/.gs-fixture.json" | sort >"$work/$name.want"
	jq -r '.files[].source' "$work/$name-store/$VER/manifest.json" | sort >"$work/$name.got"
	diff -u "$work/$name.want" "$work/$name.got" >"$work/$name.diff" ||
		fail "$name: staged set differs from the fixture's: $(grep '^[-+]/' "$work/$name.diff")"
}
layout_case flat --layout flat --decoy "$DECOY" --decoy 570.86.15
layout_case no-i386 --layout flat --no-i386
if grep -q lib32 "$work/no-i386.got"; then fail "no-i386: i386 files staged"; fi

echo "stage_synthetic.sh: $(wc -l <"$work/want") files staged as the fixture predicts; decoys left out; cuDriverGetVersion=$want in a Debian rootfs"
