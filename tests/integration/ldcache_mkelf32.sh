#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# build/fixtures/mkelf32 (the i386 shared-object writer fixture trees fall
# back to without gcc -m32) writes objects that real tools accept:
#   - readelf: ELF32, Intel 80386, DYN, the SONAME and DT_NEEDED entries
#     asked for, and not one warning or error over `readelf -a`;
#   - the real ldconfig -r lists them as i386 entries: "(libc6)" with
#     DT_NEEDED libc.so.6, "(ELF)" without, the file name as key without a
#     SONAME; `gpu-stage ldcache update` writes the same entries;
#   - a real i386 program (gcc -m32, when it can build one) dlopens them;
#   - usage errors exit 2, over-long names exit 1.
#
# Environment: GS_BUILD (default build).  Needs root (ldconfig -r chroots),
# readelf, ldconfig.  Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

B=${GS_BUILD:-build}
GS=$B/gpu-stage
MK=$B/fixtures/mkelf32
export LC_ALL=C

skip() { echo "ldcache_mkelf32.sh: SKIP: $*" >&2; exit 77; }
fail() { echo "ldcache_mkelf32.sh: FAIL: $*" >&2; exit 1; }

[ -x "$MK" ] || skip "$MK is not built (run make)"
[ -x "$GS" ] || skip "$GS is not built (run make)"
[ "$(id -u)" -eq 0 ] || skip "needs root (ldconfig -r chroots)"
for t in readelf ldconfig; do
	command -v "$t" >/dev/null || skip "$t is not installed"
done

work=$(mktemp -d /tmp/gs-mkelf32-XXXXXX)
trap 'rm -rf "$work"' EXIT
L=$work/root/usr/lib/gs32
mkdir -p "$L" "$work/root/etc"

"$MK" "$L/libgsm32.so.1.0" --soname libgsm32.so.1 --needed libc.so.6 --needed libgsdep.so.2 ||
	fail "mkelf32 with --soname and --needed failed"
ln -s libgsm32.so.1.0 "$L/libgsm32.so.1"
"$MK" "$L/libgsm32e.so.3" --soname libgsm32e.so.3 || fail "mkelf32 with --soname failed"
"$MK" "$L/libgsbare32.so" || fail "mkelf32 without options failed"

# --- readelf ------------------------------------------------------------------------
for f in "$L/libgsm32.so.1.0" "$L/libgsm32e.so.3" "$L/libgsbare32.so"; do
	readelf -a -W "$f" >"$work/readelf" 2>&1 || fail "readelf -a $f failed: $(head -5 "$work/readelf")"
	if grep -Eqi 'warning|error' "$work/readelf"; then
		grep -Ei 'warning|error' "$work/readelf" >&2
		fail "readelf complains about $f (above)"
	fi
	grep -Eq '^ +Class: +ELF32$' "$work/readelf" || fail "$f: not ELF32"
	grep -Eq '^ +Machine: +Intel 80386$' "$work/readelf" || fail "$f: not i386"
	grep -Eq '^ +Type: +DYN ' "$work/readelf" || fail "$f: not ET_DYN"
	grep -Eq '^ +LOAD ' "$work/readelf" && grep -Eq '^ +DYNAMIC ' "$work/readelf" ||
		fail "$f: no PT_LOAD or PT_DYNAMIC"
done
dyn() { readelf -d -W "$1" | sed -n 's/.*(\(NEEDED\|SONAME\)) .*\[\(.*\)\]$/\1 \2/p' | tr '\n' ' '; }
[ "$(dyn "$L/libgsm32.so.1.0")" = "NEEDED libc.so.6 NEEDED libgsdep.so.2 SONAME libgsm32.so.1 " ] ||
	fail "libgsm32.so.1.0 dynamic entries: $(dyn "$L/libgsm32.so.1.0")"
[ "$(dyn "$L/libgsm32e.so.3")" = "SONAME libgsm32e.so.3 " ] || fail "libgsm32e.so.3: $(dyn "$L/libgsm32e.so.3")"
[ -z "$(dyn "$L/libgsbare32.so")" ] || fail "libgsbare32.so has dynamic names: $(dyn "$L/libgsbare32.so")"
echo "ok: readelf reads them cleanly"

# --- ldconfig and gpu-stage ---------------------------------------------------------
echo /usr/lib/gs32 >"$work/root/etc/ld.so.conf"
cp -a "$work/root" "$work/root2"
ldconfig -r "$work/root" 2>"$work/ldconfig.err" || fail "ldconfig -r failed: $(cat "$work/ldconfig.err")"
ldconfig -p -C "$work/root/etc/ld.so.cache" >"$work/p"
for want in 'libgsm32\.so\.1 \(libc6\) => /usr/lib/gs32/libgsm32\.so\.1' \
	'libgsm32e\.so\.3 \(ELF\) => /usr/lib/gs32/libgsm32e\.so\.3' \
	'libgsbare32\.so \(ELF\) => /usr/lib/gs32/libgsbare32\.so'; do
	grep -Eq "^	$want\$" "$work/p" || fail "ldconfig -r does not list /$want/: $(cat "$work/p")"
done
"$GS" ldcache update --root "$work/root2" /usr/lib/gs32 2>"$work/err" || fail "ldcache update failed: $(cat "$work/err")"
cmp -s <(ldconfig -p -C "$work/root/etc/ld.so.cache" | tail -n +2 | grep -v '^Cache generated') \
	<(ldconfig -p -C "$work/root2/etc/ld.so.cache" | tail -n +2 | grep -v '^Cache generated') ||
	fail "gpu-stage ldcache update lists other entries than ldconfig -r for mkelf32's objects"
echo "ok: ldconfig -r lists them as i386 (libc6 / ELF) entries; so does ldcache update"

# --- a real i386 loader -------------------------------------------------------------------
cat >"$work/p32.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!dlopen(argv[i], RTLD_NOW | RTLD_LOCAL)) {
			printf("%s\n", dlerror());
			return 1;
		}
	return 0;
}
C
if gcc -m32 -o "$work/p32" "$work/p32.c" 2>/dev/null && "$work/p32" 2>/dev/null; then
	"$MK" "$work/loadme.so" --soname libgsload.so.1 --needed libc.so.6
	"$work/p32" "$work/loadme.so" "$L/libgsm32e.so.3" "$L/libgsbare32.so" >"$work/dl" 2>&1 ||
		fail "an i386 program cannot dlopen mkelf32's objects: $(cat "$work/dl")"
	echo "ok: an i386 program dlopens them"
else
	echo "note: gcc -m32 cannot build a runnable i386 program here; dlopen check not run"
	[ "${CI:-}" != true ] || fail "CI has gcc-multilib: gcc -m32 must work"
fi

# --- usage ---------------------------------------------------------------------------------
rc=0; "$MK" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "mkelf32 without OUT: exit $rc, want 2"
rc=0; "$MK" "$work/x.so" --bogus >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "mkelf32 --bogus: exit $rc, want 2"
long=$(printf 'x%.0s' $(seq 1 1100))
rc=0; "$MK" "$work/x.so" --soname "$long" >/dev/null 2>"$work/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "too long" "$work/err" || fail "mkelf32 with a 1100-byte SONAME: exit $rc"
echo "ok: usage errors"
