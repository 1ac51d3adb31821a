#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `gpu-stage verify` through the CLI: a freshly staged synthetic driver
# verifies (exit 0); each kind of tampering makes it exit 1 and print one
# "PATH: reason" line naming what was changed; --json says the same;
# `gpu-stage stage --force` repairs it; a corrupt or missing manifest is
# an error naming the file; usage errors exit 2.  Also list/diff/remove
# on the staged copy.
#
# Environment: GS_BUILD (default build), GS_MKDRIVER (default
# fixtures/mkdriver.sh).  Exit 0 pass, 77 skipped (with the reason), else
# failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

VER=535.261.03
MKDRIVER=${GS_MKDRIVER:-fixtures/mkdriver.sh}
source tests/lib.sh
need_built "$GS"
need_tools jq mkfifo gcc
make_work
root=$work/root
store=$work/store
dir=$store/$VER

bash "$MKDRIVER" "$root" --version "$VER" >"$work/mkdriver.log" 2>&1 ||
	fail "$MKDRIVER failed: $(tail -5 "$work/mkdriver.log")"

stage() { "$GS" stage --root "$root" --driver "$VER" --store "$store" "$@" >"$work/stage.log" 2>&1 ||
	fail "staging failed: $(cat "$work/stage.log")"; }
verify() { "$GS" verify "$VER" --store "$store" "$@"; }

stage
verify >"$work/out" 2>&1 || fail "a fresh stage does not verify: $(cat "$work/out")"
grep -q ": ok$" "$work/out" || fail "verify printed no ok line"
[ "$(verify --json | jq -r '.ok')" = true ] || fail "verify --json is not ok on a fresh stage"

# Pick what to tamper with from the staged copy itself (via its manifest).
manifest=$dir/manifest.json
lib=$(jq -r '[.files[] | select(.kind == "lib")][0].path' "$manifest")
other=$(jq -r '[.files[] | select(.kind == "lib")][-1].path' "$manifest")
link=$(jq -r '.links[0].path' "$manifest")
bin=$(jq -r '[.files[] | select(.kind == "bin")][0].path // empty' "$manifest")
[ -n "$lib" ] && [ "$lib" != null ] && [ "$link" != null ] || fail "manifest has no library or link"
libdir=$(dirname "$lib")

# Runs "$@" with the version's directories writable, then seals them again.
unsealed() {
	find "$dir" -type d -exec chmod u+w {} +
	"$@"
	find "$dir" -type d -exec chmod 0555 {} +
}
flip_byte() { chmod u+w "$dir/$lib" && printf 'Z' | dd of="$dir/$lib" bs=1 seek=100 conv=notrunc status=none && chmod 0444 "$dir/$lib"; }
append_byte() { chmod u+w "$dir/$other" && printf 'Z' >>"$dir/$other" && chmod 0444 "$dir/$other"; }
retarget() { ln -sfn does-not-exist "$dir/$link"; }
drop_link() { rm "$dir/$link"; }
drop_file() { rm "$dir/$lib"; }
extra_file() { : >"$dir/$libdir/libextra.so.1"; }
extra_dir() { mkdir "$dir/extra"; }
extra_link() { ln -s /etc/passwd "$dir/$libdir/passwd"; }
extra_fifo() { mkfifo "$dir/$libdir/fifo"; }
file_to_dir() { rm "$dir/$lib" && mkdir "$dir/$lib"; }
link_to_file() { rm "$dir/$link" && : >"$dir/$link" && chmod 0444 "$dir/$link"; }
edit_manifest() { chmod u+w "$manifest" && sed -i 's/"x86_64"/"x86_65"/' "$manifest" && chmod 0444 "$manifest"; }
hard_link() { ln "$dir/$lib" "$work/hardlink"; }

# name | command | expected line (a fixed string)
cases=(
	"content|flip_byte|$lib: content differs"
	"size|append_byte|$other: size"
	"file mode|chmod 0644 $dir/$lib|$lib: mode 0644, expected 0444"
	"exec bit|chmod 0555 $dir/$lib|$lib: mode 0555, expected 0444"
	"dir mode|chmod 0755 $dir/$libdir|$libdir: mode 0755, expected 0555"
	"top mode|chmod 0700 $dir|.: mode 0700, expected 0555"
	"manifest mode|chmod 0644 $manifest|manifest.json: mode 0644, expected 0444"
	"link target|unsealed retarget|$link: link target \"does-not-exist\""
	"link removed|unsealed drop_link|$link: missing"
	"file removed|unsealed drop_file|$lib: missing"
	"extra file|unsealed extra_file|$libdir/libextra.so.1: unexpected regular file"
	"extra dir|unsealed extra_dir|extra: unexpected directory"
	"extra link|unsealed extra_link|$libdir/passwd: unexpected symlink"
	"extra fifo|unsealed extra_fifo|$libdir/fifo: unexpected fifo"
	"file is a dir|unsealed file_to_dir|$lib: expected a regular file, found a directory"
	"link is a file|unsealed link_to_file|$link: expected a symlink, found a regular file"
	"manifest edited|unsealed edit_manifest|manifest.json: edited after staging"
	"hard link|hard_link|$lib: has 2 hard links"
)
[ -n "$bin" ] && cases+=("bin mode|chmod 0755 $dir/$bin|$bin: mode 0755, expected 0555")

for c in "${cases[@]}"; do
	IFS='|' read -r name cmd want <<<"$c"
	$cmd
	set +e
	verify >"$work/out" 2>"$work/err"
	rc=$?
	set -e
	[ "$rc" -eq 1 ] || fail "$name: verify exited $rc, expected 1: $(cat "$work/out" "$work/err")"
	grep -qF -- "$want" "$work/out" || fail "$name: '$want' not reported; got: $(cat "$work/out")"
	grep -q "mismatch" "$work/err" || fail "$name: no summary on stderr: $(cat "$work/err")"
	[ "$(wc -l <"$work/err")" -eq 1 ] || fail "$name: more than one error line: $(cat "$work/err")"
	set +e
	verify --json >"$work/json" 2>/dev/null
	set -e
	jq -e --arg w "$want" '.ok == false and any(.mismatches[]; contains($w))' "$work/json" >/dev/null ||
		fail "$name: --json does not report it: $(cat "$work/json")"
	rm -f "$work/hardlink"
	stage --force
	verify >"$work/out" 2>&1 || fail "$name: stage --force did not repair: $(cat "$work/out")"
done

# A plain re-run (no --force) notices a changed mode or a missing link
# without hashing, and repairs it.
chmod 0644 "$dir/$lib"
stage
grep -q "replaced" "$work/stage.log" || fail "a re-run did not replace a damaged copy: $(cat "$work/stage.log")"
verify >/dev/null 2>&1 || fail "re-run did not repair the copy"
stage
grep -q "unchanged" "$work/stage.log" || fail "a second re-run was not a no-op: $(cat "$work/stage.log")"

# A manifest that cannot be used is an error (1) naming the file.
unsealed bash -c "chmod u+w '$manifest' && printf '{\"schema\": ' >'$manifest'"
set +e
verify >"$work/out" 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "corrupt manifest: verify exited $rc"
grep -q "$manifest: line" "$work/err" || fail "corrupt manifest: message does not name it: $(cat "$work/err")"
set +e
"$GS" list --store "$store" --driver "$VER" >/dev/null 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "manifest.json" "$work/err" || fail "list of a corrupt version: rc $rc, $(cat "$work/err")"
stage # a corrupt manifest means "not staged as planned": replaced
verify >/dev/null 2>&1 || fail "re-stage over a corrupt manifest does not verify"

# Exit codes and messages of the other verbs.
set +e
verify extra-arg >/dev/null 2>&1; [ $? -eq 2 ] || fail "verify with two versions is not a usage error"
"$GS" verify 999.9 --store "$store" >/dev/null 2>"$work/err"; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "999.9: driver 999.9 is not staged" "$work/err" || fail "verify of a missing version: rc $rc, $(cat "$work/err")"
[ "$("$GS" list --store "$store")" = "$VER" ] || fail "list does not show exactly $VER"
[ "$("$GS" list --store "$store" --json | jq -r '.[0].driver')" = "$VER" ] || fail "list --json"
"$GS" list --store "$store" --driver "$VER" --json | jq -e --arg p "$lib" 'any(.files[]; .path == $p)' >/dev/null ||
	fail "list --driver --json does not show $lib"
"$GS" diff "$VER" "$VER" --store "$store" | grep -q "^0 added, 0 removed, 0 changed" || fail "diff of a version with itself"
"$GS" remove "$VER" --store "$store" >/dev/null || fail "remove failed"
[ ! -e "$dir" ] || fail "remove left $dir"
[ -z "$("$GS" list --store "$store")" ] || fail "list after remove is not empty"
set +e
"$GS" remove "$VER" --store "$store" >/dev/null 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "removing a missing version exited $rc"

echo "store_verify.sh: ${#cases[@]} tamper cases detected through the CLI and repaired"
