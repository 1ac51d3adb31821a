#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A REAL Docker 20.10 (Debian docker.io) with gpu-stage, configured by
# `gpu-stage runtime configure --docker --gpus-flag --config PRIVATE/daemon.json`
# (the test's own keys first: vfs, bridge none, no iptables, private
# data-root, exec-root, pidfile and socket).  The image is `docker import`ed
# from the cached debootstrap rootfs with gs-probe at /gs-probe; the real
# Debian 535.261.03 driver is staged; two fake GPUs (mknod'ed nodes, major
# 195, and a fake /proc/driver/nvidia) come from gpu-stage's configuration
# file (dev_root, proc_root, store).
#
# How the hook finds that configuration without touching the host's /etc:
# dockerd runs in a private mount namespace (unshare -m) whose /etc is an
# overlay (lower: the host's /etc, upper: the work directory) holding
# /etc/gpu-stage/config.json; everything dockerd starts (containerd, shims,
# runc, the hooks) inherits that namespace, so the hook Docker's --gpus adds
# with the single argument `prestart` reads it as its default, and
# gpu-runtime gets GPU_STAGE_CONFIG from dockerd's environment.  The
# namespace also keeps dockerd's mounts off the host's table.
#
# Checked: `docker run --runtime=gpu-stage -e NVIDIA_VISIBLE_DEVICES=all`
# (and =0): gs-probe dlopens libcuda.so.1 (cuDriverGetVersion 12020),
# `nvidia-smi -h` runs, exactly the selected fake GPU nodes are there (an
# allowed one opens with ENXIO, the others are absent); a container without
# the variable is untouched (the same mount points as under plain runc, the
# image's /etc/ld.so.cache by sha256); `docker exec`, `stop`, `rm` work;
# then `docker run --gpus all`, `--gpus 1`, `--gpus '"device=0"'` (no
# --runtime: Docker adds nvidia-container-runtime-hook, our link, itself),
# and `-e NVIDIA_VISIBLE_DEVICES=all --gpus 1` gets GPU 0 only (the
# engine's value, appended last, wins).  Afterwards: dockerd stopped by its
# PID, no process of it left (containerd, shims), the host's mount table
# and network namespaces as before.  Prints `docker run` wall times with and
# without a GPU (median of interleaved runs; a figure, not a check).
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
. fixtures/engine_lib.sh
hk_setup engine_docker.sh
command -v dockerd >/dev/null || hk_skip "dockerd is not installed (docker.io; bash tests/deps.sh)"
[ -x "$EN_DOCKER_CLI" ] || hk_skip "$EN_DOCKER_CLI (docker.io's CLI) is not installed"
command -v unshare >/dev/null || hk_skip "unshare is not installed"
trap en_cleanup EXIT

mounts_before=$(hk_mounts)
netns_before=$(ip netns list 2>/dev/null || true)

en_real_driver
dk=$HK_WORK/docker
mkdir -p "$dk"
jq -n --arg d "$dk" --arg cg "$EN_DOCKER_CGROUP" '{"storage-driver": "vfs", "bridge": "none", "iptables": false, "ip6tables": false,
	"ip-masq": false, "ip-forward": false, "data-root": ($d + "/data"), "exec-root": ($d + "/exec"),
	"pidfile": ($d + "/dockerd.pid"), "hosts": ["unix://" + $d + "/docker.sock"],
	"cgroup-parent": $cg}' >"$dk/daemon.json"
"$EN_BIN/gpu-stage" runtime configure --docker --gpus-flag --config "$dk/daemon.json" >"$HK_WORK/configure.log" ||
	hk_fail "runtime configure --docker failed: $(cat "$HK_WORK/configure.log")"
[ "$(jq -r '.runtimes["gpu-stage"].path' "$dk/daemon.json")" = "$EN_BIN/gpu-runtime" ] ||
	hk_fail "daemon.json has no gpu-stage runtime: $(cat "$dk/daemon.json")"

en_image_tar
en_docker_start "$dk/daemon.json"
img=gs-engine-test:$$
en_docker import "$EN_TAR" "$img" >/dev/null || hk_fail "docker import failed"
hk_ok "dockerd 20.10 up (private namespace, vfs), configured by runtime configure, image imported"



run_gpu() { # WANT WHAT DOCKER-RUN-ARGS...
	local want=$1 what=$2 out=$HK_WORK/run.out
	shift 2
	en_docker run --rm "$@" "$img" sh -c "$EN_GPU_SCRIPT" >"$out" 2>&1 || hk_fail "$what: docker run failed: $(cat "$out")"
	en_check_gpu "$out" "$want" "$what"
	hk_ok "$what: libcuda.so.1 (12020), nvidia-smi -h, GPU nodes: $want"
}

run_gpu all "--runtime=gpu-stage NVIDIA_VISIBLE_DEVICES=all" --runtime=gpu-stage -e NVIDIA_VISIBLE_DEVICES=all
run_gpu 0 "--runtime=gpu-stage NVIDIA_VISIBLE_DEVICES=0" --runtime=gpu-stage -e NVIDIA_VISIBLE_DEVICES=0

# no variable: untouched (mount points as under plain runc, the image's ld.so.cache)
en_docker run --rm --runtime=gpu-stage "$img" sh -c "$EN_PLAIN_SCRIPT" >"$HK_WORK/plain-gs.out" 2>&1 || hk_fail "no-GPU container failed: $(cat "$HK_WORK/plain-gs.out")"
en_docker run --rm "$img" sh -c "$EN_PLAIN_SCRIPT" >"$HK_WORK/plain-runc.out" 2>&1 || hk_fail "plain runc container failed"
en_check_plain "$HK_WORK/plain-runc.out" "$HK_WORK/plain-gs.out" "a container without NVIDIA_VISIBLE_DEVICES"
hk_ok "no NVIDIA_VISIBLE_DEVICES: same mounts as plain runc, no /run/gpu-stage, the image's ld.so.cache, no GPU node"

# exec, stop, rm
id=$(en_docker run -d --runtime=gpu-stage -e NVIDIA_VISIBLE_DEVICES=0 "$img" sleep 600) || hk_fail "docker run -d failed"
en_docker exec "$id" /gs-probe libcuda.so.1 >"$HK_WORK/exec.out" 2>&1 && grep -q '^cuDriverGetVersion=12020' "$HK_WORK/exec.out" ||
	hk_fail "docker exec: $(cat "$HK_WORK/exec.out")"
en_docker stop -t 2 "$id" >/dev/null || hk_fail "docker stop failed"
en_docker rm "$id" >/dev/null || hk_fail "docker rm failed"
[ -z "$(en_docker ps -aq)" ] || hk_fail "a container is left: $(en_docker ps -a)"
hk_ok "--runtime=gpu-stage: docker exec, stop, rm"

# --gpus: Docker adds [nvidia-container-runtime-hook, prestart] itself
grep -q "^docker: .*linked nvidia-container-runtime-hook" "$HK_WORK/configure.log" || hk_fail "no link made: $(cat "$HK_WORK/configure.log")"
run_gpu all "--gpus all" --gpus all
run_gpu 0 "--gpus 1" --gpus 1
run_gpu 0 "--gpus device=0" --gpus '"device=0"'
run_gpu 0 "-e NVIDIA_VISIBLE_DEVICES=all --gpus 1 (the engine's value wins)" -e NVIDIA_VISIBLE_DEVICES=all --gpus 1
grep -q '"stage":"prestart"' "$HK_WORK/audit.log" || hk_fail "the audit log has no prestart record (the --gpus hook)"

# docker run wall time, with and without a GPU: interleaved, median
N=${GS_ENGINE_RUNS:-5}
t_plain=() t_gpu=()
for i in $(seq 1 "$N"); do
	t_plain+=("$(en_ms en_docker run --rm --runtime=gpu-stage "$img" true)")
	t_gpu+=("$(en_ms en_docker run --rm --runtime=gpu-stage -e NVIDIA_VISIBLE_DEVICES=0 "$img" true)")
done
echo "engine_docker.sh: docker run --rm (vfs) true: no GPU median $(en_median "${t_plain[@]}") ms, NVIDIA_VISIBLE_DEVICES=0 median $(en_median "${t_gpu[@]}") ms ($N interleaved pairs: ${t_plain[*]} / ${t_gpu[*]})"

en_docker rmi "$img" >/dev/null || true
en_docker_finish "$mounts_before" "$netns_before"
hk_ok "dockerd stopped by PID, nothing of it left running, no mounts or network namespaces left"
