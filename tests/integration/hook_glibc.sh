#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The glibc check (issue 16): a staged library that needs a newer glibc
# than the image's.  The synthetic driver's 64-bit libnvidia-egl-wayland is
# rebuilt against a fake libc.so.6 that defines GLIBC_2.40 (a version
# script), so it needs GLIBC_2.40 while the Debian 12 image's libc defines
# up to GLIBC_2.36.  Staging records it (manifest "glibc", index); in real
# runc through the hook it is left out of the container's ld.so.cache (a
# dlopen finds nothing, instead of failing on "GLIBC_2.40 not found"), the
# audit record and a warning on stderr say so, and the rest loads (the
# probe's libcuda, libnvidia-egl-gbm, the 32-bit egl-wayland entry).  The
# driver as mkdriver makes it (GLIBC_2.2.5 at most) gets no check at all.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source fixtures/hook_lib.sh
hk_setup hook_glibc.sh
command -v gcc >/dev/null || hk_skip "gcc is not installed (bash tests/deps.sh)"
WL=libnvidia-egl-wayland.so.1

SCRIPT='ldconfig -p | grep -E "^[[:space:]]+libnvidia-egl-(wayland|gbm)\.so\.1 " | sed "s/^[[:space:]]*/CACHE /"
/opt/gs-probe libcuda.so.1 libnvidia-egl-gbm.so.1 | sed "s/^/PROBE /"
/opt/gs-probe '$WL' | sed "s/^/WL /"
echo STARTED'

run() {
	hk_bundle "$1"
	hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=all"]' "$SCRIPT"
	# runc shows a hook's stderr only when it fails: a shell keeps it
	hookerr=$HK_WORK/$1.hookerr
	jq --arg e "$hookerr" '.hooks.prestart[0] |= (.args = ["sh", "-c", "exec \"$0\" \"$@\" 2>>\"" + $e + "\"", .path] + .args[1:] | .path = "/bin/sh")' \
		"$HK_B/config.json" >"$HK_B/c.new" && mv "$HK_B/c.new" "$HK_B/config.json"
	out=$HK_WORK/gs-glibc-$$-$1.out
	hk_runc "$HK_B" "gs-glibc-$$-$1" || hk_fail "$1: the container failed: $(cat "$out")"
	grep -q '^STARTED$' "$out" || hk_fail "$1: the script did not finish: $(cat "$out")"
	note=$(tail -n 1 "$HK_AUDIT" | jq -r '.plan.glibc // "(none)"')
}

run plain
[ ! -s "$hookerr" ] || hk_fail "plain driver: the hook wrote to stderr: $(cat "$hookerr")"
[ "$note" = "(none)" ] || hk_fail "plain driver: a glibc check ran (no staged library needs more than GLIBC_2.17): $note"
grep -q "^CACHE $WL (libc6,x86-64) => " "$out" || hk_fail "plain driver: no 64-bit $WL in the cache: $(cat "$out")"
hk_ok "the driver as made (needs at most GLIBC_2.2.5): no check, everything in the cache"

# the 64-bit egl-wayland rebuilt to need GLIBC_2.40, and staged again
f=$(find "$HK_WORK/drv/usr/lib/x86_64-linux-gnu" -maxdepth 1 -type f -name 'libnvidia-egl-wayland.so.1.*' | head -n 1)
[ -n "$f" ] || hk_fail "mkdriver made no 64-bit libnvidia-egl-wayland"
mkdir -p "$HK_WORK/fakelibc"
printf 'int fz(void) { return 0; }\n' >"$HK_WORK/fakelibc/c.c"
printf 'GLIBC_2.2.5 { local: *; };\nGLIBC_2.40 { global: fz; } GLIBC_2.2.5;\n' >"$HK_WORK/fakelibc/v.map"
gcc -shared -fPIC -nostdlib -Wl,-soname,libc.so.6 -Wl,--version-script="$HK_WORK/fakelibc/v.map" \
	-o "$HK_WORK/fakelibc/libc.so.6" "$HK_WORK/fakelibc/c.c" || hk_fail "gcc: fake libc"
printf 'int fz(void);\nint wl_probe(void) { return fz(); }\n' >"$HK_WORK/fakelibc/w.c"
gcc -shared -fPIC -nostdlib -Wl,-soname,$WL -o "$f" "$HK_WORK/fakelibc/w.c" "$HK_WORK/fakelibc/libc.so.6" ||
	hk_fail "gcc: $WL"
"$HK_GS" --root "$HK_WORK/drv" --store "$HK_STORE" --driver "$HK_VER" --caps all >"$HK_WORK/stage2.log" 2>&1 ||
	hk_fail "staging again failed: $(cat "$HK_WORK/stage2.log")"
jq -e --arg p "lib/graphics/${f##*/}" '[.files[] | select(.path == $p and .glibc == "GLIBC_2.40")] | length == 1' \
	"$HK_STORE/$HK_VER/manifest.json" >/dev/null || hk_fail "the manifest does not record GLIBC_2.40 for ${f##*/}"
grep -qP "^C\t771\t22800\tlib/graphics\t$WL\t" "$HK_STORE/$HK_VER/index" ||
	hk_fail "the index's cache line for $WL does not say 2.40 (22800): $(grep "$WL" "$HK_STORE/$HK_VER/index")"
hk_ok "staging records the need: manifest \"glibc\": \"GLIBC_2.40\", the index's C line 22800"

run newer
want="image libc defines up to GLIBC_2.36; left out: $WL (needs GLIBC_2.40)"
[ "$note" = "$want" ] || hk_fail "the audit record says: $note (wanted: $want)"
grep -qxF "gpu-stage-hook: warning: $want" "$hookerr" || hk_fail "no warning on the hook's stderr: $(cat "$hookerr")"
if grep -q "^CACHE $WL (libc6,x86-64)" "$out"; then hk_fail "the 64-bit $WL is still in the cache: $(grep CACHE "$out")"; fi
grep -q "^CACHE $WL (libc6) => /run/gpu-stage/lib32/graphics/" "$out" || hk_fail "the 32-bit $WL left the cache too: $(grep CACHE "$out")"
grep -q "^WL dlopen $WL: .*cannot open shared object file" "$out" || hk_fail "dlopen $WL did not just find nothing: $(grep '^WL' "$out")"
if grep '^WL' "$out" | grep -q 'GLIBC_2.40'; then hk_fail "the loader still met GLIBC_2.40"; fi
grep -q '^PROBE dlopen libnvidia-egl-gbm.so.1: ok' "$out" && grep -q '^PROBE cuDriverGetVersion=12020 ' "$out" ||
	hk_fail "the rest did not load: $(cat "$out")"
hk_ok "a staged library needing GLIBC_2.40 in a GLIBC_2.36 image: left out of the cache (audit + warning), the rest loads"
