#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage-hook with a REAL driver: Debian's NVIDIA 535.261.03 packages
# (fixtures/debian-driver.sh, cached downloads), staged by gpu-stage, given to
# a real runc container (debootstrap'd Debian rootfs) by the hook, read-only
# root and writable, prestart, createRuntime and createContainer.  Inside: the
# container's own ldconfig -p lists libcuda.so.1, gs-probe dlopens the real
# libcuda.so.1 by SONAME and gets cuDriverGetVersion 12020 (cuInit 100: no
# GPU here), the real nvidia-smi -h runs from PATH and prints v535.261.03, no
# LD_* is set, every mount is ro,nosuid,nodev and private; the host's mount
# table is unchanged afterwards.  Then every capability of the real driver
# (graphics, video, compat32) and its ICD/vendor files.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_debian.sh
hk_stage_debian

n=0
for stage in prestart createRuntime createContainer; do
	for ro in true false; do
		n=$((n + 1))
		id=gs-hkdeb-$$-$n
		hk_bundle "d$n"
		hk_config "$HK_B" "$stage" "$ro" '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
		before=$(hk_mounts)
		hk_runc "$HK_B" "$id" || hk_fail "$stage ro=$ro: the container failed: $(cat "$HK_WORK/$id.out")"
		hk_check_inside "$id" "real driver, $stage ro=$ro"
		grep -q '^cuInit=100$' "$HK_WORK/$id.out" || hk_fail "$stage: the real cuInit did not return 100 (no device): $(cat "$HK_WORK/$id.out")"
		[ "$(hk_mounts)" = "$before" ] || hk_fail "$stage ro=$ro: the host's mount table changed"
		hk_ok "real Debian driver: runc $stage root.readonly=$ro: cuDriverGetVersion=12020, nvidia-smi from PATH"
	done
done

# every capability of the real driver: graphics, video and the i386 set
# (compat32) reach the container's cache; the ICD/vendor files are in place
hk_bundle all
hk_config "$HK_B" createRuntime false '["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=all"]' '
ldconfig -p | grep -q "libcuda.so.1 (libc6) => /run/gpu-stage/lib32/compute/libcuda.so.1" && echo I386_CUDA
ldconfig -p | grep -q "libEGL_nvidia.so.0 (libc6,x86-64) => /run/gpu-stage/lib/graphics/" && echo EGL
for f in /usr/share/vulkan/icd.d/nvidia_icd.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json /etc/OpenCL/vendors/nvidia.icd; do
	[ -s "$f" ] && echo "HAS $f"
done
for f in /usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.1 /usr/lib/i386-linux-gnu/vdpau/libvdpau_nvidia.so.1; do
	cmp -s "$f" /run/gpu-stage/lib$(case $f in *i386*) echo 32 ;; esac)/video/libvdpau_nvidia.so.1 && echo "VDPAU $f"
done
/opt/gs-probe libEGL_nvidia.so.0 libnvidia-encode.so.1 libnvcuvid.so.1 libnvidia-ptxjitcompiler.so.1 && echo LOADED'
hk_runc "$HK_B" "gs-hkdeb-$$-all" || hk_fail "all capabilities: the container failed: $(cat "$HK_WORK/gs-hkdeb-$$-all.out")"
out=$HK_WORK/gs-hkdeb-$$-all.out
for want in I386_CUDA EGL LOADED "HAS /usr/share/vulkan/icd.d/nvidia_icd.json" \
	"HAS /usr/share/glvnd/egl_vendor.d/10_nvidia.json" "HAS /etc/OpenCL/vendors/nvidia.icd" \
	"VDPAU /usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.1" "VDPAU /usr/lib/i386-linux-gnu/vdpau/libvdpau_nvidia.so.1"; do
	grep -qx "$want" "$out" || hk_fail "all capabilities: missing '$want' in: $(cat "$out")"
done
hk_ok "real Debian driver, NVIDIA_DRIVER_CAPABILITIES=all: i386 libcuda, EGL, NVENC/NVDEC libraries load, ICD files and the VDPAU driver in place"
