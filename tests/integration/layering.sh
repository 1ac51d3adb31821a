#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The module layering (issue 13), checked on the sources and the binaries:
# - overlay/ and hook/ include no stager header (gs/stage.h, stage/*.h),
#   manifest/ includes none of stage/, overlay/, hook/;
# - gpu-stage-hook links nothing of the stager (no discovery, no staging),
#   no manifest JSON codec and no libcrypto: a container start parses no
#   manifest and hashes nothing;
# - `gpu-stage ldcache dump`, `list` and `--help` never initialise libcrypto
#   (gdb counts the calls; verify, which hashes, does).
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${GS_BUILD:-build}
fail() { echo "layering.sh: FAIL: $*" >&2; exit 1; }
ok() { echo "layering.sh: ok: $*"; }
for t in nm gdb cc; do command -v "$t" >/dev/null || { echo "layering.sh: SKIP: $t is not installed" >&2; exit 77; }; done
[ -x "$B/gpu-stage-hook" ] && [ -x "$B/gpu-stage" ] || { echo "layering.sh: SKIP: not built (make)" >&2; exit 77; }

bad=$(grep -nE '#include "(gs/stage\.h|\.\./stage/|stage/|rootfs\.h|store_internal\.h|discover_internal\.h|dpkg\.h|cmd\.h)' overlay/*.[ch] hook/*.[ch] include/gs/overlay.h || true)
[ -z "$bad" ] || fail "overlay/ or hook/ include a stager header: $bad"
bad=$(grep -nE '#include "(gs/stage\.h|gs/overlay\.h|\.\./(stage|overlay|hook)/)' manifest/*.c include/gs/manifest.h || true)
[ -z "$bad" ] || fail "manifest/ includes a module above it: $bad"
ok "sources: overlay/ and hook/ include no stager header; manifest/ nothing above it"

syms=$(nm "$B/gpu-stage-hook" 2>/dev/null || true)
[ -n "$syms" ] || fail "nm found no symbols in $B/gpu-stage-hook"
for s in gs_discover gs_store_stage gs_driver_detect gs_manifest_parse gs_manifest_dump gs_sha256_new \
	EVP_DigestInit_ex OPENSSL_init_crypto archive_read_new archive_write_new; do
	if grep -qE "[[:space:]][TtWwU][[:space:]]$s\$" <<<"$syms"; then fail "gpu-stage-hook links $s"; fi
done
# the same check must see these where they are linked: it can fail
grep -qE "[[:space:]]T[[:space:]]gs_store_stage\$" < <(nm "$B/gpu-stage") || fail "nm does not see gs_store_stage in gpu-stage"
grep -qE "[[:space:]][TU][[:space:]]archive_read_new\$" < <(nm "$B/gpu-stage") || fail "nm does not see archive_read_new in gpu-stage"
ok "gpu-stage-hook links no discovery, staging, manifest JSON codec, SHA-256, libcrypto or libarchive"

# gdb counts the calls: verify (which hashes) must reach libcrypto's
# initialisation, so the check can fail; dump and --help must not
work=$(mktemp -d /tmp/gs-layering-XXXXXX)
trap 'rm -rf "$work"' EXIT
hits() { # CMD...: how often OPENSSL_init_crypto was entered
	gdb -q -batch -ex 'set breakpoint pending on' -ex 'break OPENSSL_init_crypto' \
		-ex 'commands 1' -ex 'silent' -ex 'continue' -ex 'end' -ex run -ex 'info breakpoints' \
		--args "$@" 2>&1 | awk '/breakpoint already hit/ {print $4; found=1} END {if (!found) print 0}'
}
mkdir -p "$work/root/lib" "$work/root/etc"
printf 'int f(void) { return 1; }\n' >"$work/f.c"
cc -shared -fPIC -Wl,-soname,libgslayer.so.1 -o "$work/root/lib/libgslayer.so.1" "$work/f.c"
"$B/gpu-stage" ldcache update --root "$work/root" /lib >/dev/null 2>&1 || fail "ldcache update failed"
cache=$work/root/etc/ld.so.cache
VER=535.261.03
bash fixtures/mkdriver.sh "$work/drv" --version "$VER" >"$work/mk.log" 2>&1 || fail "mkdriver.sh: $(tail -3 "$work/mk.log")"
"$B/gpu-stage" --root "$work/drv" --store "$work/store" --driver "$VER" --caps all -q >/dev/null 2>&1 || fail "staging failed"
n=$(hits "$B/gpu-stage" verify "$VER" --store "$work/store")
[ "$n" -ge 1 ] || fail "gdb saw no libcrypto initialisation in verify (the probe does not work)"
for cmd in "ldcache dump $cache" "--help" "list --store $work/store"; do
	# shellcheck disable=SC2086
	n=$(hits "$B/gpu-stage" $cmd)
	[ "$n" -eq 0 ] || fail "gpu-stage $cmd initialised libcrypto ($n times)"
done
ok "libcrypto is initialised by verify only when hashing: not by ldcache dump, --help or list"
