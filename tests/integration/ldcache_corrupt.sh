#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Corrupted ld.so.cache files: every variant that fixtures/mkcorrupt derives
# from real caches (written by the real ldconfig in the new, old and compat
# formats, plus one with glibc-hwcaps entries) makes
#   gpu-stage ldcache dump [--json] FILE
# exit 1 with "gpu-stage: FILE: REASON" on stderr (REASON: what mkcorrupt
# broke, in the reader's words), nothing on stdout, and no sanitizer report
# (make check runs this against the ASan+UBSan build; sanitizer exit codes
# are moved away from 1 so that a report can never pass for the expected
# failure).  `ldcache update` with each one as ROOT/etc/ld.so.cache says the
# existing cache is unusable, with the same reason, and rebuilds a valid
# cache.  Also: missing file, directory, FIFO and device give exit 1 with
# the file named; usage errors exit 2.
#
# Environment: GS_BUILD (default build).  Needs ldconfig and gcc (root is
# not needed).  Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

B=${GS_BUILD:-build}
GS=$B/gpu-stage
MK=$B/fixtures/mkcorrupt
export LC_ALL=C
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86:detect_leaks=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=87:halt_on_error=1:print_stacktrace=1

skip() { echo "ldcache_corrupt.sh: SKIP: $*" >&2; exit 77; }
fail() { echo "ldcache_corrupt.sh: FAIL: $*" >&2; exit 1; }

[ -x "$GS" ] || skip "$GS is not built (run make)"
[ -x "$MK" ] || skip "$MK is not built (run make: fixtures/mkcorrupt.c)"
for t in ldconfig gcc; do
	command -v "$t" >/dev/null || skip "$t is not installed (bash tests/deps.sh installs it)"
done
if ldd "$GS" 2>/dev/null | grep -q libasan; then
	echo "testing the sanitizer build $GS"
else
	echo "note: $GS is not an ASan build (make check runs this against build/san)"
fi

work=$(mktemp -d /tmp/gs-ldcache-corrupt-XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- valid inputs: real caches in the three formats, one with glibc-hwcaps ----
for f in new old compat; do
	ldconfig -X -i -c "$f" -C "$work/host-$f.cache" 2>/dev/null ||
		fail "ldconfig -c $f -C $work/host-$f.cache failed"
done
# A tiny root whose cache (written by gpu-stage itself, so no root privilege
# is needed) has glibc-hwcaps entries and therefore a hwcaps extension.
mini=$work/mini
mkdir -p "$mini/etc" "$mini/usr/lib/gs/glibc-hwcaps/x86-64-v2"
echo 'int gs_c(void) { return 1; }' >"$work/c.c"
for d in "$mini/usr/lib/gs" "$mini/usr/lib/gs/glibc-hwcaps/x86-64-v2"; do
	gcc -shared -fPIC -Wl,-soname,libgsc.so.1 -o "$d/libgsc.so.1" "$work/c.c"
	gcc -shared -fPIC -Wl,-soname,libgsd.so.2 -o "$d/libgsd.so.2" "$work/c.c"
done
echo /usr/lib/gs >"$mini/etc/ld.so.conf"
"$GS" ldcache update --root "$mini" /usr/lib/gs 2>/dev/null ||
	fail "ldcache update of $mini failed"
cp "$mini/etc/ld.so.cache" "$work/hwcaps.cache"
ldconfig -p -C "$work/hwcaps.cache" | grep -q 'hwcap: "x86-64-v2"' ||
	fail "fixture: $work/hwcaps.cache has no glibc-hwcaps entry"

mkdir "$work/bad"
"$MK" "$work/host-new.cache" "$work/bad" "$work/host-old.cache" "$work/host-compat.cache" \
	"$work/hwcaps.cache" >"$work/list" 2>"$work/mk.err" ||
	fail "mkcorrupt failed: $(head -3 "$work/mk.err")"
n=$(wc -l <"$work/list")
# The defects the issue names must all be among them.
for v in host-new-header-8-bytes host-new-header-40-bytes host-new-entries-truncated \
	host-new-key-offset-max host-new-value-past-eof host-new-string-unterminated \
	host-new-nlibs-max host-new-nlibs-wraps-32bit host-new-bad-magic host-new-bad-version \
	host-new-big-endian host-new-ext-past-eof host-new-ext-unaligned host-new-ext-bad-magic \
	host-new-ext-count-huge host-new-ext-section-past-eof host-new-hwcaps-index-out-of-range \
	hwcaps-hwcaps-name-past-eof hwcaps-hwcaps-array-empty host-old-old-nlibs-one-too-many \
	host-old-old-key-at-eof host-old-old-string-unterminated host-compat-old-nlibs-max \
	host-compat-entries-truncated host-compat-string-unterminated; do
	grep -q "^$work/bad/$v.cache	" "$work/list" || fail "mkcorrupt wrote no $v variant"
done

# --- each variant: exit 1, "gpu-stage: FILE: ...REASON...", no crash --------------
# run_dump FILE [--json]: sets rc (124: hung); output in $work/out, $work/err.
run_dump() {
	rc=0
	timeout 60 "$GS" ldcache dump ${2:+"$2"} "$1" >"$work/out" 2>"$work/err" || rc=$?
}
sanitizer_clean() { ! grep -Eq 'Sanitizer|runtime error:|^SUMMARY:' "$work/err"; }

checked=0
while IFS=$'\t' read -r file reason; do
	for json in "" --json; do
		run_dump "$file" $json
		sanitizer_clean || { cat "$work/err" >&2; fail "dump $json $file: sanitizer report (above)"; }
		[ "$rc" -eq 1 ] || fail "dump $json $file: exit $rc, want 1 (stderr: $(head -3 "$work/err"))"
		[ ! -s "$work/out" ] || fail "dump $json $file: printed to stdout: $(head -2 "$work/out")"
		[ "$(wc -l <"$work/err")" -eq 1 ] || fail "dump $json $file: want one error line, got: $(cat "$work/err")"
		grep -qF "gpu-stage: $file: " "$work/err" ||
			fail "dump $json $file: error does not name the file: $(cat "$work/err")"
		grep -qF -- "$reason" "$work/err" ||
			fail "dump $json $file: error lacks the reason '$reason': $(cat "$work/err")"
	done
	checked=$((checked + 1))
done <"$work/list"
[ "$checked" -eq "$n" ] && [ "$n" -ge 60 ] || fail "only $checked of $n variants checked (want >= 60)"
echo "ok: $n corrupted caches rejected with exit 1 and the reason"

# --- update over a corrupt cache: reported, then rebuilt ------------------------
rebuilt=0
while IFS=$'\t' read -r file reason; do
	cp "$file" "$mini/etc/ld.so.cache"
	rc=0
	"$GS" ldcache update --root "$mini" /usr/lib/gs >"$work/out" 2>"$work/err" || rc=$?
	sanitizer_clean || { cat "$work/err" >&2; fail "update over $file: sanitizer report (above)"; }
	[ "$rc" -eq 0 ] || fail "update over $file: exit $rc: $(head -3 "$work/err")"
	grep -qF "$mini/etc/ld.so.cache: existing cache unusable (" "$work/err" ||
		fail "update over $file: no 'existing cache unusable' message: $(cat "$work/err")"
	grep -qF -- "$reason" "$work/err" || fail "update over $file: message lacks '$reason': $(cat "$work/err")"
	grep -qF "rebuilt" "$work/err" || fail "update over $file: message does not say it rebuilt: $(cat "$work/err")"
	ldconfig -p -C "$mini/etc/ld.so.cache" >"$work/p" 2>&1 || fail "update over $file: ldconfig cannot read the result"
	grep -q '^	libgsd\.so\.2 (libc6,x86-64) => /usr/lib/gs/libgsd\.so\.2$' "$work/p" ||
		fail "update over $file: rebuilt cache lacks libgsd.so.2: $(cat "$work/p")"
	rebuilt=$((rebuilt + 1))
done <"$work/list"
echo "ok: update rebuilt the cache over all $rebuilt corrupted ones"

# --- not a cache at all, and usage errors ------------------------------------------
mkfifo "$work/fifo"
mkdir "$work/dir"
expect_fail() { # FILE PHRASE
	run_dump "$1"
	sanitizer_clean || { cat "$work/err" >&2; fail "dump $1: sanitizer report (above)"; }
	[ "$rc" -eq 1 ] || fail "dump $1: exit $rc, want 1"
	grep -qF "gpu-stage: $1" "$work/err" && grep -qF -- "$2" "$work/err" ||
		fail "dump $1: want the file and '$2' in: $(cat "$work/err")"
}
expect_fail "$work/missing.cache" "No such file or directory"
expect_fail "$work/dir" "not a regular file"
expect_fail "$work/fifo" "not a regular file"
expect_fail /dev/null "not a regular file"
rc=0; "$GS" ldcache dump >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "dump without FILE: exit $rc, want 2"
rc=0; "$GS" ldcache dump "$work/host-new.cache" "$work/host-old.cache" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "dump with two FILEs: exit $rc, want 2"
rc=0; "$GS" ldcache dump --bogus "$work/host-new.cache" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "dump --bogus: exit $rc, want 2"
echo "ok: missing file, directory, FIFO, device, usage errors"
