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

bash fixtures/debian-driver.sh "$HK_WORK/real" --version "$HK_VER" --set full >"$HK_WORK/deb.log" 2>&1 ||
	hk_fail "fixtures/debian-driver.sh failed: $(tail -5 "$HK_WORK/deb.log")"
store=$HK_WORK/real-store
"$HK_GS" --root "$HK_WORK/real" --store "$store" --driver "$HK_VER" --caps all >"$HK_WORK/stage.log" 2>&1 ||
	hk_fail "staging the real driver failed: $(cat "$HK_WORK/stage.log")"

en_bin
en_gs_config "$(jq -n --arg s "$store" --arg d "$HK_DEV" --arg p "$HK_PROC" --arg a "$HK_WORK/audit.log" \
	'{store: $s, dev_root: $d, proc_root: $p, audit_log: $a}')"
img=gs-test.invalid/gs-probe:$$
en_image_tar
en_oci_archive "$img" "$HK_WORK/oci.tar"
en_containerd_start
en_ctr images import --snapshotter native "$HK_WORK/oci.tar" >"$HK_WORK/import.log" 2>&1 ||
	hk_fail "ctr images import failed: $(cat "$HK_WORK/import.log")"
en_ctr images ls -q | grep -qxF "$img" || hk_fail "the imported image is not $img: $(en_ctr images ls)"
hk_ok "containerd 1.6 up (private config, socket and root), an OCI archive built by hand imported"

SCRIPT='/gs-probe libcuda.so.1 && echo PROBE_OK
nvidia-smi -h | head -n 1
for n in 0 1; do
	if [ -e /dev/nvidia$n ]; then cat /dev/nvidia$n 2>&1 | sed "s/^/DEV$n /"; else echo "NO_DEV$n"; fi
done
true'
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

check() { # OUT WANT WHAT: WANT is "0" (GPU 0 only) or "all"
	local out=$1 want=$2 what=$3
	grep -q '^cuDriverGetVersion=12020' "$out" && grep -q '^PROBE_OK$' "$out" ||
		hk_fail "$what: gs-probe did not load libcuda.so.1 (12020): $(cat "$out")"
	grep -q '^NVIDIA System Management Interface -- v535.261.03' "$out" || hk_fail "$what: nvidia-smi -h: $(cat "$out")"
	grep -q '^DEV0 .*No such device or address' "$out" || hk_fail "$what: /dev/nvidia0 is not an allowed node (ENXIO): $(cat "$out")"
	if [ "$want" = all ]; then
		grep -q '^DEV1 .*No such device or address' "$out" || hk_fail "$what: /dev/nvidia1 missing or not allowed: $(cat "$out")"
	else
		grep -q '^NO_DEV1$' "$out" || hk_fail "$what: /dev/nvidia1 is there but was not asked for: $(cat "$out")"
	fi
}

for want in 0 all; do
	id=gs-gpu-$want-$$
	ctr_run "$HK_WORK/$id.out" --runc-binary "$EN_BIN/gpu-runtime" --env NVIDIA_VISIBLE_DEVICES=$want "$img" "$id" \
		sh -c "$SCRIPT" || hk_fail "ctr run NVIDIA_VISIBLE_DEVICES=$want failed: $(cat "$HK_WORK/$id.out")"
	check "$HK_WORK/$id.out" "$want" "ctr run NVIDIA_VISIBLE_DEVICES=$want"
	grep -qF "\"$id\"" "$HK_WORK/audit.log" || hk_fail "NVIDIA_VISIBLE_DEVICES=$want: no audit record of $id"
	hk_ok "ctr run --runc-binary gpu-runtime NVIDIA_VISIBLE_DEVICES=$want: libcuda.so.1 (12020), nvidia-smi -h, GPU nodes: $want"
done

# no variable: untouched (mount points as under plain runc, the image's ld.so.cache)
PLAIN='awk "{print \$5}" /proc/self/mountinfo | sort; sha256sum /etc/ld.so.cache
if [ -e /run/gpu-stage ]; then echo HAS_RUN_GPU_STAGE; else echo NO_RUN_GPU_STAGE; fi
ls /dev | grep nvidia || echo NO_NVIDIA'
ctr_run "$HK_WORK/plain-gs.out" --runc-binary "$EN_BIN/gpu-runtime" "$img" "gs-plain-gs-$$" sh -c "$PLAIN" ||
	hk_fail "no-GPU container through gpu-runtime failed: $(cat "$HK_WORK/plain-gs.out")"
ctr_run "$HK_WORK/plain-runc.out" "$img" "gs-plain-runc-$$" sh -c "$PLAIN" ||
	hk_fail "plain runc container failed: $(cat "$HK_WORK/plain-runc.out")"
diff "$HK_WORK/plain-runc.out" "$HK_WORK/plain-gs.out" >"$HK_WORK/plain.diff" ||
	hk_fail "a container without NVIDIA_VISIBLE_DEVICES differs from plain runc: $(cat "$HK_WORK/plain.diff")"
grep -q "^$(sha256sum <"$HK_ROOTFS/etc/ld.so.cache" | awk '{print $1}')  /etc/ld.so.cache$" "$HK_WORK/plain-gs.out" ||
	hk_fail "the no-GPU container's ld.so.cache is not the image's: $(cat "$HK_WORK/plain-gs.out")"
grep -q '^NO_RUN_GPU_STAGE$' "$HK_WORK/plain-gs.out" && grep -q '^NO_NVIDIA$' "$HK_WORK/plain-gs.out" ||
	hk_fail "the no-GPU container has /run/gpu-stage or NVIDIA nodes: $(cat "$HK_WORK/plain-gs.out")"
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
