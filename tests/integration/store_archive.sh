#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage export / import: the synthetic driver staged into a temporary
# store, exported twice (and again after a no-op re-stage): byte-identical
# archives; imported into a second, empty store: `verify` passes, `list`
# agrees, a second import changes nothing, --force replaces.  Then each
# hostile archive made by fixtures/mkarchive.c from the real export
# (traversal, '..', absolute path, symlink escape, hard link, device, fifo,
# directory, hash and size mismatch, wrong mode, truncated tar, an entry's
# data longer or shorter than its header says, junk or an end marker after
# an entry's data, extra, missing and duplicate
# entries, a stale manifest digest, a manifest that fails the validators,
# a manifest claiming a 5 GiB file, another version's directory, the
# manifest not first, an uncompressed tar,
# a cut zstd stream) plus random bytes, an empty file and a gzip'd tar, is
# refused (exit 1) with an error naming the archive, the entry and the
# reason, and the target store -- which holds another version already --
# is byte-for-byte unchanged (find -printf listing + sha256 of every file);
# also into a store holding the identical version.  An export stopped by
# SIGTERM leaves no file; imports SIGKILLed at random moments (8 rounds, a
# 48 MiB library) leave the prior version and either no VER or a complete
# one, and the next import leaves no .tmp-* debris.
#
# Environment: GS_BUILD (default build), GS_MKDRIVER (default
# fixtures/mkdriver.sh).  Exit 0 pass, 77 skipped (with the reason), else
# failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

VER=535.261.03
OTHER=550.163.01
MKDRIVER=${GS_MKDRIVER:-fixtures/mkdriver.sh}
source tests/lib.sh
MKARCHIVE=${GS_BUILD:-build}/fixtures/mkarchive
need_built "$GS" "$MKARCHIVE"
need_tools jq zstd gzip cmp sha256sum gcc
make_work
s1=$work/s1 s2=$work/s2 target=$work/target

for v in "$VER" "$OTHER"; do
	bash "$MKDRIVER" "$work/root-$v" --version "$v" >"$work/mkdriver.log" 2>&1 ||
		fail "$MKDRIVER $v failed: $(tail -5 "$work/mkdriver.log")"
done
stage() { # VER STORE [ARGS]
	local v=$1 s=$2
	shift 2
	"$GS" stage --root "$work/root-$v" --driver "$v" --store "$s" "$@" >"$work/stage.log" 2>&1 ||
		fail "staging $v into $s failed: $(cat "$work/stage.log")"
}

# ---- export: deterministic --------------------------------------------------------
stage "$VER" "$s1"
"$GS" export "$VER" --store "$s1" -o "$work/a.tar.zst" --json >"$work/a.json" || fail "export failed"
sleep 1.1 # a different second: nothing time-dependent may leak into the archive
"$GS" export "$VER" --store "$s1" -o "$work/b.tar.zst" >/dev/null || fail "second export failed"
cmp "$work/a.tar.zst" "$work/b.tar.zst" || fail "two exports of one staged set differ"
stage "$VER" "$s1"
grep -q '^unchanged' "$work/stage.log" || fail "re-stage was not a no-op: $(cat "$work/stage.log")"
"$GS" export "$VER" --store "$s1" -o - >"$work/c.tar.zst" || fail "export to stdout failed"
cmp "$work/a.tar.zst" "$work/c.tar.zst" || fail "the export after a no-op re-stage differs"
[ "$(jq -r .sha256 "$work/a.json")" = "$(sha256sum "$work/a.tar.zst" | cut -d' ' -f1)" ] ||
	fail "--json sha256 is not the archive's"
[ "$(jq -r .bytes "$work/a.json")" = "$(stat -c %s "$work/a.tar.zst")" ] || fail "--json bytes wrong"
n_entries=$(( $(jq '.files | length' "$s1/$VER/manifest.json") + $(jq '.links | length' "$s1/$VER/manifest.json") + 1 ))
[ "$(jq -r .entries "$work/a.json")" = "$n_entries" ] || fail "--json entries is not files + links + 1"
zstd -dc "$work/a.tar.zst" | tar -tvf - >"$work/tv" || fail "the export is not a tar.zst tar can read"
head -n 1 "$work/tv" | grep -q " $VER/manifest.json$" || fail "manifest.json is not the first entry"
grep -v -q ' root/root ' "$work/tv" && fail "an entry not owned by root/root: $(grep -v ' root/root ' "$work/tv" | head -1)"
grep -v -q ' 1970-01-01 00:00 ' "$work/tv" && fail "an entry with an mtime other than 0"
ls "$work"/.a.tar.zst.gs-* >/dev/null 2>&1 && fail "export left its temporary file"
# an export that fails leaves no file and no temporary one
chmod u+w "$s1/$VER/bin/utility" && chmod u+w "$s1/$VER/bin/utility/nvidia-smi"
printf Z | dd of="$s1/$VER/bin/utility/nvidia-smi" bs=1 seek=64 conv=notrunc status=none
if "$GS" export "$VER" --store "$s1" -o "$work/bad.tar.zst" 2>"$work/err"; then fail "a tampered set was exported"; fi
grep -q "nvidia-smi: content differs from the manifest" "$work/err" || fail "export error: $(cat "$work/err")"
[ -e "$work/bad.tar.zst" ] && fail "a failed export left its file"
ls "$work"/.bad.tar.zst.gs-* >/dev/null 2>&1 && fail "a failed export left its temporary file"
# a fifo in place of a staged file (a tampered tree): refused at once, never
# waiting for a writer
stage "$VER" "$s1" --force
chmod u+w "$s1/$VER/bin/utility" && rm -f "$s1/$VER/bin/utility/nvidia-smi" && mkfifo "$s1/$VER/bin/utility/nvidia-smi"
rc=0; timeout 30 "$GS" export "$VER" --store "$s1" -o "$work/bad.tar.zst" 2>"$work/err" || rc=$?
[ "$rc" = 1 ] && grep -q "nvidia-smi" "$work/err" || fail "export of a tree with a fifo: exit $rc (124: it hung): $(cat "$work/err")"
[ -e "$work/bad.tar.zst" ] && fail "a failed export left its file"
# (restaged as it was: the staged set, and so its export, is new: another created time)
stage "$VER" "$s1" --force
"$GS" export "$VER" --store "$s1" -o "$work/a.tar.zst" >/dev/null || fail "export after repair failed"

# ---- import into an empty store ------------------------------------------------------
"$GS" import "$work/a.tar.zst" --store "$s2" --json >"$work/i.json" || fail "import failed"
[ "$(jq -r .result "$work/i.json")" = imported ] || fail "import result: $(cat "$work/i.json")"
"$GS" verify "$VER" --store "$s2" >"$work/v" 2>&1 || fail "verify after import: $(cat "$work/v")"
[ "$("$GS" list --store "$s2")" = "$VER" ] || fail "list after import: $("$GS" list --store "$s2")"
diff <("$GS" list --store "$s1" --driver "$VER" --json) <("$GS" list --store "$s2" --driver "$VER" --json) ||
	fail "list --driver differs between the stores"
cmp "$s1/$VER/manifest.json" "$s2/$VER/manifest.json" || fail "the imported manifest is not the exported one"
cmp "$s1/$VER/index" "$s2/$VER/index" || fail "the imported index is not the staged one"
[ "$("$GS" import "$work/a.tar.zst" --store "$s2" --json | jq -r .result)" = unchanged ] ||
	fail "a second import was not a no-op"
"$GS" import - --store "$s2" <"$work/a.tar.zst" | grep -q '^unchanged' || fail "import from stdin"
"$GS" export "$VER" --store "$s2" -o "$work/e.tar.zst" >/dev/null
cmp "$work/a.tar.zst" "$work/e.tar.zst" || fail "re-exporting the imported set gives other bytes"

# ---- another copy of the version: refused, then --force -------------------------------------
# the same version staged again (another created time: a second later): another copy
sleep 1.1
stage "$VER" "$target" --force
cmp -s "$s1/$VER/manifest.json" "$target/$VER/manifest.json" && fail "the second copy has the same manifest"
"$GS" verify "$VER" --store "$target" >/dev/null
before=$(sha256sum "$target/$VER/manifest.json")
if "$GS" import "$work/a.tar.zst" --store "$target" 2>"$work/err"; then fail "a different copy was replaced without --force"; fi
grep -q "another copy of driver $VER is staged there; --force replaces it" "$work/err" || fail "error: $(cat "$work/err")"
[ "$(sha256sum "$target/$VER/manifest.json")" = "$before" ] || fail "refused import changed the store"
[ "$("$GS" import "$work/a.tar.zst" --store "$target" --force --json | jq -r .result)" = replaced ] ||
	fail "--force did not replace"
cmp "$s1/$VER/manifest.json" "$target/$VER/manifest.json" || fail "--force left the old manifest"
"$GS" verify "$VER" --store "$target" >/dev/null || fail "verify after --force"
"$GS" remove "$VER" --store "$target" >/dev/null

# ---- hostile archives ------------------------------------------------------------------------
stage "$OTHER" "$target" # the prior version the refusals must leave alone
snapshot() {
	(cd "$target" && find . -printf '%p %y %m %s %l\n' | LC_ALL=C sort &&
		find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2)
}
snapshot >"$work/before"
refused() { # NAME FILE EXPECTED-TEXT...
	local name=$1 file=$2 t
	shift 2
	if "$GS" import "$file" --store "$target" >"$work/out" 2>"$work/err"; then
		fail "$name: imported"
	fi
	[ "$(wc -l <"$work/err")" = 1 ] || fail "$name: not one error line: $(cat "$work/err")"
	grep -qF "gpu-stage: $file: " "$work/err" || fail "$name: the error does not name the archive: $(cat "$work/err")"
	for t; do grep -qF -- "$t" "$work/err" || fail "$name: no '$t' in: $(cat "$work/err")"; done
	snapshot >"$work/after"
	diff "$work/before" "$work/after" >/dev/null || fail "$name: the store changed: $(diff "$work/before" "$work/after" | head)"
}
# case | what the error must say besides the entry
cases=(
	"traversal|outside the archive's version directory"
	"dotdot|'.' or '..' component"
	"absolute|absolute path"
	"escape|link target leaves the version directory"
	"badlink|link target leaves the version directory"
	"huge|5368709120 bytes, more than an archive may carry"
	"hardlink|a hard link (to $VER/manifest.json)"
	"device|a character device: only files and symbolic links are imported"
	"fifo|a fifo: only files and symbolic links are imported"
	"directory|a directory: only files and symbolic links are imported"
	"hash|content does not match the manifest"
	"size|bytes, the manifest says"
	"mode|mode 0644, the manifest says"
	"truncated|Truncated tar archive"
	"longer|bytes, the manifest says"
	"shorter|bytes, the manifest says"
	"junk|: Damaged tar archive"
	"zeros|missing ("
	"extra|not in the manifest"
	"missing|missing (1 entry of the manifest not in the archive)"
	"duplicate|a duplicate entry"
	"digest|edited after staging (manifest_sha256 does not match)"
	"version|names driver $VER, but the archive's directory is 999.1.2"
	"order|the first entry must be VER/manifest.json"
	"plaintar|not zstd-compressed"
	"zstdcut|zstd"
)
for c in "${cases[@]}"; do
	name=${c%%|*} want=${c#*|}
	f=$work/h-$name.tar.zst
	entry=$("$MKARCHIVE" "$name" "$work/a.tar.zst" "$f") || fail "mkarchive $name failed"
	case $name in
	plaintar | zstdcut | zeros) refused "$name" "$f" "$want" ;;
	junk) refused "$name" "$f" "after $entry: " "$want" ;;
	*) refused "$name" "$f" "$entry: " "$want" ;;
	esac
done
head -c 65536 /dev/urandom >"$work/random.bin"
refused random "$work/random.bin" "Unrecognized archive format"
: >"$work/empty.tar.zst"
refused empty "$work/empty.tar.zst" "an empty file, not an archive"
zstd -dc "$work/a.tar.zst" | gzip -c >"$work/a.tar.gz"
refused gzip "$work/a.tar.gz" "Unrecognized archive format"
[ -z "$(find "$target" -maxdepth 1 -name '.tmp-*')" ] || fail "refusals left .tmp-* trees"
# into a store that already holds the identical version: checked all the same
for name in hash truncated missing; do
	if "$GS" import "$work/h-$name.tar.zst" --store "$s2" >/dev/null 2>"$work/err"; then
		fail "$name: accepted as identical to the staged copy"
	fi
done
"$GS" verify "$VER" --store "$s2" >/dev/null || fail "refused imports changed $s2"

# the prior version is intact and the good archive still imports next to it
"$GS" verify "$OTHER" --store "$target" >/dev/null || fail "the prior version no longer verifies"
"$GS" import "$work/a.tar.zst" --store "$target" >/dev/null || fail "the good archive no longer imports"
[ "$("$GS" list --store "$target" | tr '\n' ' ')" = "$VER $OTHER " ] || fail "list: $("$GS" list --store "$target")"

# ---- interrupted: an export stopped, imports killed at random moments ---------------------
cp -a "$work/root-$VER" "$work/root-big"
big=$(find "$work/root-big" -type f -path "*x86_64-linux-gnu*" -name "libcuda.so.$VER" | head -n 1)
[ -n "$big" ] || fail "no libcuda.so.$VER in the generated tree"
head -c $((48 << 20)) /dev/urandom >>"$big"
"$GS" stage --root "$work/root-big" --driver "$VER" --store "$work/sbig" >/dev/null 2>&1 || fail "staging the big set"
"$GS" export "$VER" --store "$work/sbig" -o "$work/big.tar.zst" >/dev/null || fail "exporting the big set"
# SIGTERM once the temporary file has data: no FILE, no temporary file left
"$GS" export "$VER" --store "$work/sbig" -o "$work/cut.tar.zst" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 500); do
	[ -s "$(ls "$work"/.cut.tar.zst.gs-* 2>/dev/null | head -n 1)" ] 2>/dev/null && break
	sleep 0.01
done
kill -TERM "$pid" 2>/dev/null || true
rc=0 && wait "$pid" || rc=$?
[ "$rc" = 143 ] || fail "the export was not stopped by SIGTERM mid-way (exit $rc): nothing tested"
[ -e "$work/cut.tar.zst" ] && fail "a stopped export left its file"
ls "$work"/.cut.tar.zst.gs-* >/dev/null 2>&1 && fail "a stopped export left its temporary file"
# SIGKILL imports: the store always holds the prior version and either no
# VER or a complete one; the next import succeeds and leaves no debris
k=$work/killed
stage "$OTHER" "$k"
killed=0
for round in 1 2 3 4 5 6 7 8; do
	"$GS" import "$work/big.tar.zst" --store "$k" --force >/dev/null 2>&1 &
	pid=$!
	sleep "0.$((RANDOM % 30))"
	kill -KILL "$pid" 2>/dev/null || true
	rc=0 && wait "$pid" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] && killed=$((killed + 1))
	"$GS" verify "$OTHER" --store "$k" >/dev/null 2>&1 || fail "round $round: $OTHER damaged"
	if [ -e "$k/$VER" ]; then
		"$GS" verify "$VER" --store "$k" >"$work/v" 2>&1 || fail "round $round: a partial $VER: $(head -5 "$work/v")"
	fi
	for v in $("$GS" list --store "$k"); do
		[ "$v" = "$VER" ] || [ "$v" = "$OTHER" ] || fail "round $round: list shows $v"
	done
done
[ "$killed" -ge 1 ] || fail "no import was killed before it finished: nothing tested"
"$GS" import "$work/big.tar.zst" --store "$k" --force >/dev/null || fail "the import after the kills failed"
"$GS" verify "$VER" --store "$k" >/dev/null || fail "the import after the kills does not verify"
[ -z "$(find "$k" -maxdepth 1 -name '.tmp-*')" ] || fail "debris left after the next import: $(ls -a "$k")"

# usage
for bad in "export" "export $VER $VER" "import" "export $VER --force" "import x --output y" "export $VER --bogus"; do
	# shellcheck disable=SC2086
	if "$GS" $bad --store "$s1" >/dev/null 2>&1; then fail "'$bad' accepted"; else rc=$?; fi
	[ "$rc" = 2 ] || fail "'$bad': exit $rc, not 2"
done
"$GS" export --help | grep -q "Usage: gpu-stage export" || fail "export --help"
"$GS" import --help | grep -q "Usage: gpu-stage import" || fail "import --help"
echo "$T: ok"
