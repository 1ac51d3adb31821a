#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A REAL containerd 1.6 (Debian containerd) with gpu-stage through `ctr run
# --runc-binary gpu-runtime`, which needs no configuration.  containerd is
# started by hand with a private config (root, state, grpc and ttrpc
# sockets under the work directory, the CRI plugin disabled: ctr needs
# none), in a private mount namespace (fixtures/engine_lib.sh), with
# GPU_STAGE_CONFIG in its environment: the shim and gpu-runtime inherit
# it, and gpu-runtime hands the file to the hook as --config.  The image is
# an OCI image layout archive built by hand (tar + sha256sum + jq:
# en_oci_archive) from the cached debootstrap rootfs with gs-probe at
# /gs-probe, `ctr images import`ed into the native snapshotter (no
# overlay mounts); the real Debian 535.261.03 driver is staged; two fake
# GPUs (mknod'ed nodes, major 195, and a fake /proc/driver/nvidia) come
# from gpu-stage's configuration file (dev_root, proc_root, store).
#
# Checked: `ctr run --runc-binary gpu-runtime --env NVIDIA_VISIBLE_DEVICES=0`
# (and =all): gs-probe dlopens libcuda.so.1 (cuDriverGetVersion 12020),
# `nvidia-smi -h` runs, exactly the selected fake GPU nodes are there (an
# allowed one opens with ENXIO, the other is absent), and the audit log
# has the container; a container without the variable, through
# gpu-runtime, is untouched: the same mount points as with plain runc, no
# /run/gpu-stage, the image's /etc/ld.so.cache by sha256, no NVIDIA node.
# Afterwards: containerd stopped by its PID, no process of it left
# (containerd-shim-runc-v2), no shim socket left in /run/containerd/s, the
# host's mount table as before, the snapshots only in the work directory.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
. fixtures/engine_lib.sh
hk_setup engine_containerd.sh
command -v containerd >/dev/null || hk_skip "containerd is not installed (bash tests/deps.sh)"
command -v ctr >/dev/null || hk_skip "ctr is not installed (containerd; bash tests/deps.sh)"
command -v unshare >/dev/null || hk_skip "unshare is not installed"
trap en_cleanup EXIT

mounts_before=$(hk_mounts)
shims_before=$(ls -A /run/containerd/s 2>/dev/null || true)

en_real_driver
img=gs-test.invalid/gs-probe:$$
en_image_tar
en_oci_archive "$img" "$HK_WORK/oci.tar"
en_containerd_start
en_ctr images import --snapshotter native "$HK_WORK/oci.tar" >"$HK_WORK/import.log" 2>&1 ||
	hk_fail "ctr images import failed: $(cat "$HK_WORK/import.log")"
en_ctr images ls -q | grep -qxF "$img" || hk_fail "the imported image is not $img: $(en_ctr images ls)"
hk_ok "containerd 1.6 up (private config, socket and root), an OCI archive built by hand imported"

runc_root=$HK_WORK/containerd/runc
n=0
# ctr_run OUT ARGS...: one container, removed afterwards (its own runc root)
ctr_run() {
	local out=$1
	shift
	n=$((n + 1))
	timeout 120 ctr -a "$EN_CTRD_SOCK" -n "$EN_CTR_NS" run --rm --snapshotter native --runc-root "$runc_root" "$@" \
		>"$out" 2>&1
}


for want in 0 all; do
	id=gs-gpu-$want-$$
	ctr_run "$HK_WORK/$id.out" --runc-binary "$EN_BIN/gpu-runtime" --env NVIDIA_VISIBLE_DEVICES=$want "$img" "$id" \
		sh -c "$EN_GPU_SCRIPT" || hk_fail "ctr run NVIDIA_VISIBLE_DEVICES=$want failed: $(cat "$HK_WORK/$id.out")"
	en_check_gpu "$HK_WORK/$id.out" "$want" "ctr run NVIDIA_VISIBLE_DEVICES=$want"
	grep -qF "\"$id\"" "$HK_WORK/audit.log" || hk_fail "NVIDIA_VISIBLE_DEVICES=$want: no audit record of $id"
	hk_ok "ctr run --runc-binary gpu-runtime NVIDIA_VISIBLE_DEVICES=$want: libcuda.so.1 (12020), nvidia-smi -h, GPU nodes: $want"
done

# no variable: untouched (mount points as under plain runc, the image's ld.so.cache)
ctr_run "$HK_WORK/plain-gs.out" --runc-binary "$EN_BIN/gpu-runtime" "$img" "gs-plain-gs-$$" sh -c "$EN_PLAIN_SCRIPT" ||
	hk_fail "no-GPU container through gpu-runtime failed: $(cat "$HK_WORK/plain-gs.out")"
ctr_run "$HK_WORK/plain-runc.out" "$img" "gs-plain-runc-$$" sh -c "$EN_PLAIN_SCRIPT" ||
	hk_fail "plain runc container failed: $(cat "$HK_WORK/plain-runc.out")"
en_check_plain "$HK_WORK/plain-runc.out" "$HK_WORK/plain-gs.out" "a container without NVIDIA_VISIBLE_DEVICES"
grep -qF "gs-plain-gs-$$" "$HK_WORK/audit.log" && hk_fail "the no-GPU container has an audit record"
hk_ok "no NVIDIA_VISIBLE_DEVICES: same mounts as plain runc, no /run/gpu-stage, the image's ld.so.cache, no GPU node"

[ -z "$(en_ctr containers ls -q)" ] || hk_fail "containers are left: $(en_ctr containers ls)"
en_ctr images rm --sync "$img" >/dev/null || hk_fail "ctr images rm failed"
[ -z "$(en_ctr snapshots --snapshotter native ls | tail -n +2)" ] ||
	hk_fail "snapshots are left after the image went: $(en_ctr snapshots --snapshotter native ls)"
en_containerd_stop
[ -z "$(en_pids_using "$HK_WORK/containerd")" ] || hk_fail "processes of containerd are left: $(en_pids_using "$HK_WORK/containerd")"
[ "$(ls -A /run/containerd/s 2>/dev/null || true)" = "$shims_before" ] || hk_fail "a shim socket is left in /run/containerd/s"
for c in /sys/fs/cgroup/*/"$EN_CTR_NS"; do [ ! -d "$c" ] || hk_fail "cgroup $c is left"; done
[ "$(hk_mounts)" = "$mounts_before" ] || hk_fail "the host's mount table changed: $(diff <(echo "$mounts_before") <(hk_mounts))"
hk_ok "containerd stopped by PID: no shim, no shim socket, no cgroup, no mount left; snapshots were under the work directory only"
