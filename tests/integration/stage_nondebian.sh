#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Hosts without a dpkg database (fixtures/mkdriver.sh --records): executables
# that carry no version string (nvidia-cuda-mps-server, nvidia-debugdump) are
# staged on evidence, recorded as that evidence in the manifest:
#   - NVIDIA's .run layout with the installer's record (var/lib/nvidia/log)
#     and a decoy version: the staged set is the fixture's, those files are
#     `nvidia-installer:VER` (libnvidia-api.so.1 too, although it sits beside
#     another version's leftovers), an executable the record does not list
#     stays out with the reason; a file changed since the installer wrote it
#     (its CRC differs), a record of another version, and a malformed record
#     do not count, each with its reason;
#   - the same layout without any record: the folder rule (`bin-folder`);
#     another version's executable in the folder (nvidia-settings of the
#     decoy version) leaves them out, the warning names it; one carrying
#     another version's string is that version's;
#   - an RPM-style layout (usr/lib64, usr/lib, no dpkg, no record): the
#     folder rule, and the staged set is again the fixture's.
# Exit 0 pass, 77 skip (reason on stderr), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

VER=535.261.03
DECOY=550.163.01
source tests/lib.sh
need_built "$GS"
need_root "ldconfig -r (fixtures/mkdriver.sh)"
need_tools jq gcc ldconfig
make_work

# mktree NAME MKDRIVER-ARGS...: a fixture tree $work/NAME
mktree() {
	local name=$1
	shift
	bash fixtures/mkdriver.sh "$work/$name" --version "$VER" "$@" >"$work/$name.mk" 2>&1 ||
		fail "$name: fixtures/mkdriver.sh failed: $(tail -5 "$work/$name.mk")"
}

# stage NAME [TREE]: stage TREE (default $work/NAME) into $work/NAME-store;
# the manifest is $work/NAME.manifest, the warnings $work/NAME.warn
stage() {
	local name=$1 tree=${2:-$work/$1}
	"$GS" --root "$tree" --store "$work/$name-store" --driver "$VER" --caps all >"$work/$name.out" 2>&1 ||
		fail "$name: staging failed: $(cat "$work/$name.out")"
	cp "$work/$name-store/$VER/manifest.json" "$work/$name.manifest"
	jq -r '.warnings[]' "$work/$name.manifest" >"$work/$name.warn"
}

# same_set NAME: the staged sources are exactly the fixture's include list
same_set() {
	jq -r '.include[].path | "/" + .' "$work/$1/.gs-fixture.json" | sort >"$work/$1.want"
	jq -r '.files[].source' "$work/$1.manifest" | sort >"$work/$1.got"
	diff -u "$work/$1.want" "$work/$1.got" >"$work/$1.diff" ||
		fail "$1: staged set differs from the fixture's (- expected, + staged): $(grep '^[-+]/' "$work/$1.diff")"
}

# ev NAME SUFFIX: the evidence of the staged file whose source ends in SUFFIX
ev() { jq -r --arg s "$2" '.files[] | select(.source | endswith($s)) | .evidence' "$work/$1.manifest"; }
# staged NAME SUFFIX: whether a file whose source ends in SUFFIX was staged
staged() { [ -n "$(ev "$1" "$2")" ]; }
warned() { grep -qF -- "$2" "$work/$1.warn" || fail "$1: no warning '$2' in: $(cat "$work/$1.warn")"; }

# 1. .run layout with nvidia-installer's record, beside a decoy version
mktree run --layout flat --records nvidia-installer --decoy "$DECOY"
[ ! -e "$work/run/var/lib/dpkg" ] || fail "run: the fixture has a dpkg database"
stage run
same_set run
for f in nvidia-cuda-mps-server nvidia-debugdump nvidia-persistenced; do
	[ "$(ev run "/usr/bin/$f")" = "nvidia-installer:$VER" ] ||
		fail "run: $f's evidence is not the installer's record: '$(ev run "/usr/bin/$f")'"
done
[ "$(ev run /libnvidia-api.so.1)" = "nvidia-installer:$VER" ] ||
	fail "run: libnvidia-api.so.1 (beside $DECOY's leftovers) is not the installer's: '$(ev run /libnvidia-api.so.1)'"
[ "$(ev run /usr/bin/nvidia-smi)" = content ] || fail "run: nvidia-smi's evidence is not its content"
staged run /nv-fabricmanager && fail "run: nv-fabricmanager, which the record does not list, was staged"
warned run "/usr/bin/nv-fabricmanager: not staged: it does not carry version $VER, and neither an installed package nor nvidia-installer's record of $VER lists it"
"$GS" verify "$VER" --store "$work/run-store" >/dev/null || fail "run: verify failed"

# 1b. a file changed since the installer wrote it: its CRC no longer matches
cp -a "$work/run" "$work/changed"
printf 'x' >>"$work/changed/usr/bin/nvidia-debugdump"
stage changed
staged changed /nvidia-debugdump && fail "changed: a nvidia-debugdump changed since installation was staged"
warned changed "/usr/bin/nvidia-debugdump: not staged: changed since nvidia-installer installed driver $VER"
[ "$(ev changed /usr/bin/nvidia-cuda-mps-server)" = "nvidia-installer:$VER" ] ||
	fail "changed: the unchanged nvidia-cuda-mps-server lost its evidence"

# 1c. the record of another version vouches for nothing of VER
cp -a "$work/run" "$work/other"
sed -i "1s/.*/1.0-${DECOY//./} ($DECOY)/" "$work/other/var/lib/nvidia/log"
"$GS" --root "$work/other" --store "$work/other-store" --driver "$VER" --caps utility,compute \
	>"$work/other.out" 2>&1 || fail "other: staging failed: $(cat "$work/other.out")"
jq -r '.warnings[]' "$work/other-store/$VER/manifest.json" >"$work/other.warn"
grep -qF "/usr/bin/nvidia-cuda-mps-server: not staged: nvidia-installer's record (/var/lib/nvidia/log) lists it for driver $DECOY, not $VER" \
	"$work/other.warn" || fail "other: no warning naming the record's version: $(cat "$work/other.warn")"
if jq -e '.files[] | select(.source == "/usr/bin/nvidia-cuda-mps-server")' \
	"$work/other-store/$VER/manifest.json" >/dev/null; then
	fail "other: staged on a record of $DECOY"
fi

# 1d. a malformed record (a path leaving the root) is not used at all
cp -a "$work/run" "$work/hostile"
printf '1: /usr/bin/../../etc/shadow\n1\n' >>"$work/hostile/var/lib/nvidia/log"
stage hostile
warned hostile "/var/lib/nvidia/log: not used: /var/lib/nvidia/log: line"
grep -q "evidence.*nvidia-installer" "$work/hostile.manifest" && fail "hostile: a malformed record was used"
# without the record the folder rule decides (usr/bin holds only $VER's)
[ "$(ev hostile /usr/bin/nvidia-debugdump)" = bin-folder ] ||
	fail "hostile: nvidia-debugdump's evidence is not the folder rule: '$(ev hostile /usr/bin/nvidia-debugdump)'"

# 2. the .run layout without any record: the folder rule
mktree norec --layout flat --records none --decoy "$DECOY"
stage norec
same_set norec
for f in nvidia-cuda-mps-server nvidia-debugdump; do
	[ "$(ev norec "/usr/bin/$f")" = bin-folder ] ||
		fail "norec: $f's evidence is not the folder rule: '$(ev norec "/usr/bin/$f")'"
done

# 2b. another version's executable in that folder: they stay out, and why
cp -a "$work/norec" "$work/mixed"
cp "$work/norec/usr/lib/nvidia/legacy-$DECOY/nvidia-smi" "$work/mixed/usr/bin/nvidia-settings"
stage mixed
for f in nvidia-cuda-mps-server nvidia-debugdump; do
	staged mixed "/usr/bin/$f" && fail "mixed: $f staged from a folder holding $DECOY's nvidia-settings"
	warned mixed "/usr/bin/$f: not staged: it carries no version string, no record lists it, and its folder /usr/bin also holds nvidia-settings of driver $DECOY"
done
[ "$(ev mixed /usr/bin/nvidia-smi)" = content ] || fail "mixed: nvidia-smi (which carries $VER) was left out"

# 2c. an executable carrying another version's string is that version's
cp -a "$work/norec" "$work/itself"
cp "$work/norec/usr/lib/nvidia/legacy-$DECOY/nvidia-smi" "$work/itself/usr/bin/nvidia-debugdump"
stage itself
staged itself /usr/bin/nvidia-debugdump && fail "itself: a nvidia-debugdump carrying $DECOY was staged"
warned itself "/usr/bin/nvidia-debugdump: not staged: it carries version $DECOY, not $VER"

# 3. an RPM-style layout: usr/lib64 and usr/lib, no dpkg, no installer record
mktree rpm --layout rpm --records none
stage rpm
same_set rpm
grep -q '^/usr/lib64/libcuda.so' "$work/rpm.got" || fail "rpm: libcuda not staged from /usr/lib64"
[ "$(ev rpm /usr/bin/nvidia-cuda-mps-server)" = bin-folder ] ||
	fail "rpm: nvidia-cuda-mps-server's evidence is not the folder rule: '$(ev rpm /usr/bin/nvidia-cuda-mps-server)'"

echo "stage_nondebian.sh: .run with record ($(wc -l <"$work/run.got") files, nvidia-installer:$VER), changed/other-version/malformed records refused, folder rule with and without another version, RPM layout ($(wc -l <"$work/rpm.got") files)"
