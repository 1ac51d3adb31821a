#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Discovery and staging on a REAL driver: Debian 12's NVIDIA 535.261.03
# packages, downloaded once into the test cache and unpacked into a host tree
# by fixtures/debian-driver.sh (private apt configuration, retries; see its
# header for the cache folder).  The expected set comes from the packages
# themselves, not from a recorded run:
#   - every *.so.VER file the packages ship (x86-64 and i386) is staged,
#     except the X server's libglxserver_nvidia (not for containers);
#   - nvidia-smi, nvidia-debugdump, both MPS binaries (the server carries no
#     version string: its package's version proves it), the GSP firmware, the
#     Vulkan/EGL/OpenCL ICD files and the EGL external platform libraries
#     (their own versions) are staged;
#   - nothing of another version: nvidia-persistenced (its own package,
#     535.171.04 in bookworm) is left out, every staged library's name
#     carries VER;
#   - `gpu-stage verify` passes;
#   - a Debian rootfs given the staged lib/compute + lib/utility, with a cache
#     refreshed by `gpu-stage ldcache update`, dlopens the real libcuda.so.1 by
#     SONAME: cuDriverGetVersion = 12020, cuInit = 100 (no GPU here).
# Exit 0 pass, 77 skip (reason on stderr), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

VER=535.261.03
source tests/lib.sh
need_built "$GS" "$PROBE"
need_root "ldconfig -r, chroot"
need_tools jq apt-get dpkg-deb ldconfig chroot debootstrap
make_work
host=$work/host
store=$work/store

bash fixtures/debian-driver.sh "$host" --version "$VER" --set full >"$work/deb.log" 2>&1 ||
	fail "fixtures/debian-driver.sh failed: $(tail -5 "$work/deb.log")"

t0=$EPOCHREALTIME
"$GS" --root "$host" --store "$store" --driver "$VER" --caps all >"$work/stage.out" 2>&1 ||
	fail "staging failed: $(cat "$work/stage.out")"
t1=$EPOCHREALTIME
manifest=$store/$VER/manifest.json
jq -r '.files[].source' "$manifest" | sort >"$work/got"

# every versioned library file the packages installed, both architectures
(cd "$host" && find usr/lib/x86_64-linux-gnu usr/lib/i386-linux-gnu -type f -name "*.so.$VER" | grep -v libglxserver_nvidia | sed 's|^|/|' | sort) >"$work/libs"
[ "$(wc -l <"$work/libs")" -ge 10 ] || fail "the Debian tree holds too few libraries: $(wc -l <"$work/libs")"
grep -q i386 "$work/libs" || fail "the Debian tree has no i386 library"
missing=$(comm -23 "$work/libs" "$work/got")
[ -z "$missing" ] || fail "libraries of $VER not staged:
$missing"

need() { grep -qE "$1" "$work/got" || fail "not staged: $2"; }
need '/nvidia-smi$' "nvidia-smi"
need '/nvidia-debugdump$' "nvidia-debugdump"
need '/nvidia-cuda-mps-control$' "nvidia-cuda-mps-control"
need '/nvidia-cuda-mps-server$' "nvidia-cuda-mps-server (proven by its package's version)"
need "/firmware/nvidia/$VER/gsp_[a-z0-9]+\.bin$" "GSP firmware"
need '/etc/OpenCL/vendors/nvidia.icd$' "the OpenCL ICD file"
need '/vulkan/icd.d/nvidia_icd.json$' "the Vulkan ICD file"
need '/glvnd/egl_vendor.d/10_nvidia.json$' "the EGL vendor file"
need '/egl_external_platform.d/10_nvidia_wayland.json$' "the EGL Wayland platform file"
need '/libnvidia-egl-wayland.so.1[.0-9]*$' "the EGL Wayland platform library"
if grep -E 'libglxserver_nvidia|nvidia_drv.so|libnvidia-gtk|nvidia-settings$' "$work/got"; then
	fail "X server or nvidia-settings files were staged"
fi
if grep -q nvidia-persistenced "$work/got"; then
	fail "nvidia-persistenced of another package version was staged"
fi
bad=$(jq -r '.files[] | select(.kind == "lib" or .kind == "lib32") | .source' "$manifest" |
	grep -v "\.so\.$VER\$" | grep -vE 'libnvidia-api\.so\.1$|libnvidia-egl-(wayland|gbm)\.so\.1\.' || true)
[ -z "$bad" ] || fail "libraries without $VER in their name staged: $bad"
"$GS" verify "$VER" --store "$store" >/dev/null || fail "verify failed"
jq -e --arg v "dpkg:nvidia-cuda-mps=$VER-1" '.files[] | select(.source == "/usr/sbin/nvidia-cuda-mps-server") | .evidence == $v' \
	"$manifest" >/dev/null || fail "nvidia-cuda-mps-server is not proven by its package nvidia-cuda-mps $VER-1"

# the real libcuda, loaded by SONAME through a cache over the staged dirs
out=$(probe_staged "$store" "$VER" libcuda.so.1 libnvidia-ml.so.1)
grep -qx "cuDriverGetVersion=12020 (rc 0)" <<<"$out" || fail "expected cuDriverGetVersion=12020, got: $out"
grep -qx "cuInit=100" <<<"$out" || fail "expected cuInit=100 (no device), got: $out"
printf 'stage_debian.sh: %d files of the real %s staged in %.2f s (%d versioned libraries, both arches); cuDriverGetVersion=12020 cuInit=100\n' \
	"$(wc -l <"$work/got")" "$VER" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$(wc -l <"$work/libs")"
