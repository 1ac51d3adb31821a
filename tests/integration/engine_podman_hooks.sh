#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A REAL Podman 4.3 (Debian podman) with gpu-stage through the OCI hooks.d
# file that `gpu-stage runtime configure --podman --config DIR` writes, DIR
# given to podman as --hooks-dir.  Podman rootful with everything private
# (fixtures/engine_lib.sh, eng_podman_hooks_*: --root, --runroot, --tmpdir,
# vfs, runc, a containers.conf through CONTAINERS_CONF, a cgroup parent of
# its own).  Podman hands a hook no environment, so the hook file must
# carry the configuration: configure runs with GPU_STAGE_CONFIG set and
# writes `--config FILE` into the hook's arguments; that file (store,
# dev_root, proc_root: the real Debian 535.261.03 driver staged, two fake
# GPUs) is all the hook gets.  The image is `podman import`ed from a tar of
# the cached debootstrap rootfs with gs-probe at /gs-probe.
#
# Checked: the hook file (version 1.0.0, createRuntime, always, --config);
# `podman run -e NVIDIA_VISIBLE_DEVICES=0` (and =all): gs-probe dlopens
# libcuda.so.1 (cuDriverGetVersion 12020), `nvidia-smi -h` runs, exactly
# the selected fake GPU nodes (an allowed one opens with ENXIO, the other
# is absent), an audit record; a container without the variable is
# untouched (the same mount points as with no hooks dir at all, no
# /run/gpu-stage, the image's /etc/ld.so.cache by sha256, no NVIDIA node,
# no audit record); --undo removes the hook file.  Prints the cost of the
# always-on hook for a container that asks for nothing: the median of N
# interleaved `podman run --rm BUSYBOX true` with the hooks dir and with an
# empty one (a figure, and a check that it stays under 150 ms).
# Afterwards: no container, image, conmon or mount left; the storage (and
# the blob-info cache containers/image keeps in /var/lib/containers/cache
# whatever --root says: podman runs with /var/lib an overlay) is removed
# with the work directory, and /var/lib/containers is as before.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
. fixtures/engine_lib.sh
hk_setup engine_podman_hooks.sh
command -v podman >/dev/null || hk_skip "podman is not installed (bash tests/deps.sh)"
command -v conmon >/dev/null || hk_skip "conmon is not installed (podman's; bash tests/deps.sh)"
trap en_cleanup EXIT

mounts_before=$(hk_mounts)
varlib_before=$(find /var/lib/containers -printf '%p %s %T@\n' 2>/dev/null | sort || true)

en_real_driver
hooks=$HK_WORK/hooks.d
GPU_STAGE_CONFIG=$EN_CONF "$EN_BIN/gpu-stage" runtime configure --podman --config "$hooks" >"$HK_WORK/configure.log" ||
	hk_fail "runtime configure --podman failed: $(cat "$HK_WORK/configure.log")"
jq -e --arg h "$EN_BIN/gpu-stage-hook" --arg c "$EN_CONF" '.version == "1.0.0" and .hook.path == $h
	and .hook.args == ["gpu-stage-hook", "--config", $c, "createRuntime"] and .when == {always: true}
	and .stages == ["createRuntime"]' "$hooks/gpu-stage.json" >/dev/null ||
	hk_fail "the hook file does not carry --config $EN_CONF: $(cat "$hooks/gpu-stage.json")"

eng_podman_hooks_setup
noh=$EN_PH/no-hooks
img=localhost/gs-podman-test:$$
en_image_tar
eng_podman_hooks "$noh" import "$EN_TAR" "$img" >"$HK_WORK/import.log" 2>&1 ||
	hk_fail "podman import failed: $(cat "$HK_WORK/import.log")"
hk_ok "podman 4.3 (rootful, private root, vfs, runc), hooks.d file with --config from runtime configure, image imported"

for want in 0 all; do
	out=$HK_WORK/gpu-$want.out
	eng_podman_hooks "$hooks" run --rm --name "gs-gpu-$want-$$" -e NVIDIA_VISIBLE_DEVICES=$want "$img" sh -c "$EN_GPU_SCRIPT" \
		>"$out" 2>&1 || hk_fail "podman run NVIDIA_VISIBLE_DEVICES=$want failed: $(cat "$out")"
	en_check_gpu "$out" "$want" "podman run NVIDIA_VISIBLE_DEVICES=$want"
	hk_ok "podman run -e NVIDIA_VISIBLE_DEVICES=$want (hooks.d): libcuda.so.1 (12020), nvidia-smi -h, GPU nodes: $want"
done
[ "$(grep -c '"stage":"createRuntime"' "$HK_WORK/audit.log")" -eq 2 ] ||
	hk_fail "expected 2 createRuntime audit records: $(cat "$HK_WORK/audit.log")"

# no variable: untouched (mount points as with no hook at all, the image's ld.so.cache)
eng_podman_hooks "$hooks" run --rm "$img" sh -c "$EN_PLAIN_SCRIPT" >"$HK_WORK/plain-gs.out" 2>&1 ||
	hk_fail "no-GPU container with the hook failed: $(cat "$HK_WORK/plain-gs.out")"
eng_podman_hooks "$noh" run --rm "$img" sh -c "$EN_PLAIN_SCRIPT" >"$HK_WORK/plain.out" 2>&1 ||
	hk_fail "no-GPU container without hooks failed: $(cat "$HK_WORK/plain.out")"
en_check_plain "$HK_WORK/plain.out" "$HK_WORK/plain-gs.out" "a container without NVIDIA_VISIBLE_DEVICES"
[ "$(grep -c '"stage":"createRuntime"' "$HK_WORK/audit.log")" -eq 2 ] || hk_fail "the no-GPU container has an audit record"
hk_ok "no NVIDIA_VISIBLE_DEVICES (the hook runs): same mounts as with no hook, no /run/gpu-stage, the image's ld.so.cache, no GPU node"

# what the always-on hook costs a container that asks for nothing, on an
# image of busybox alone (with the 200 MB rootfs, vfs's copy of it per
# container varies by more than a second)
command -v busybox >/dev/null || hk_fail "busybox is not installed (busybox-static; bash tests/deps.sh)"
mkdir -p "$HK_WORK/bb/bin"
cp "$(command -v busybox)" "$HK_WORK/bb/bin/busybox"
ln -s busybox "$HK_WORK/bb/bin/sh"
ln -s busybox "$HK_WORK/bb/bin/true"
tar -C "$HK_WORK/bb" -cf "$HK_WORK/bb.tar" . || hk_fail "cannot tar busybox"
small=localhost/gs-podman-bb:$$
eng_podman_hooks "$noh" import "$HK_WORK/bb.tar" "$small" >/dev/null 2>&1 || hk_fail "podman import of busybox failed"
eng_podman_hooks "$hooks" run --rm "$small" true >"$HK_WORK/bb.out" 2>&1 || hk_fail "busybox true failed: $(cat "$HK_WORK/bb.out")"
N=${GS_ENGINE_RUNS:-15}
t_hook=() t_none=()
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || hk_fail "timed run failed: $*"; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
for _ in $(seq 1 "$N"); do
	t_none+=("$(ms eng_podman_hooks "$noh" run --rm "$small" true)")
	t_hook+=("$(ms eng_podman_hooks "$hooks" run --rm "$small" true)")
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
m_none=$(med "${t_none[@]}") m_hook=$(med "${t_hook[@]}")
echo "engine_podman_hooks.sh: podman run --rm (vfs, runc) busybox true, no GPU asked: no hooks dir median $m_none ms, gpu-stage's hooks.d median $m_hook ms, +$((m_hook - m_none)) ms ($N interleaved pairs: ${t_none[*]} / ${t_hook[*]})"
[ $((m_hook - m_none)) -lt 150 ] || hk_fail "the always-on hook costs $((m_hook - m_none)) ms per container (median), not little"

# the defaults: `runtime configure --podman` with no --config writes where a
# plain `podman run` (no --hooks-dir, containers.conf without hooks_dir)
# looks; in a private mount namespace whose /usr/share/containers is an
# overlay (upper: the work directory), so the host's stays untouched
[ -d /usr/share/containers ] || hk_fail "/usr/share/containers is missing (containers-common, podman's)"
us=$HK_WORK/usr-share-containers
mkdir -p "$us/up" "$us/wk"
export GS_T_US=$us GS_T_CONF=$EN_CONF GS_T_BIN=$EN_BIN GS_T_IMG=$img GS_T_SCRIPT=$EN_GPU_SCRIPT
# shellcheck disable=SC2016
unshare -m --propagation private bash -c '
	set -e
	. fixtures/hook_lib.sh
	. fixtures/engine_lib.sh
	HK_WORK=$1 EN_PH_CGROUP=$2
	eng_podman_hooks_setup
	mount -t overlay overlay -o "lowerdir=/usr/share/containers,upperdir=$GS_T_US/up,workdir=$GS_T_US/wk" /usr/share/containers
	GPU_STAGE_CONFIG=$GS_T_CONF "$GS_T_BIN/gpu-stage" runtime configure --podman
	eng_podman_hooks - run --rm -e NVIDIA_VISIBLE_DEVICES=0 "$GS_T_IMG" sh -c "$GS_T_SCRIPT"
	"$GS_T_BIN/gpu-stage" runtime configure --podman --undo' engine_podman_hooks.sh "$HK_WORK" "$EN_PH_CGROUP" \
	>"$HK_WORK/default.out" 2>&1 || hk_fail "configure --podman and podman run with the defaults failed: $(cat "$HK_WORK/default.out")"
en_check_gpu "$HK_WORK/default.out" 0 "the defaults (no --config, no --hooks-dir)"
grep -q "^podman: added the OCI hook /usr/share/containers/oci/hooks.d/gpu-stage.json" "$HK_WORK/default.out" ||
	hk_fail "configure --podman did not write the default directory: $(cat "$HK_WORK/default.out")"
[ ! -e /usr/share/containers/oci/hooks.d/gpu-stage.json ] || hk_fail "the host's /usr/share/containers was written"
hk_ok "the defaults: configure --podman writes /usr/share/containers/oci/hooks.d, which a plain podman run reads"

"$EN_BIN/gpu-stage" runtime configure --podman --config "$hooks" --undo >/dev/null && [ ! -e "$hooks/gpu-stage.json" ] ||
	hk_fail "runtime configure --podman --undo left the hook file"
eng_podman_hooks "$noh" rmi "$img" "$small" >/dev/null || hk_fail "podman rmi failed"
[ -z "$(eng_podman_hooks "$noh" ps -aq)" ] && [ -z "$(eng_podman_hooks "$noh" images -q)" ] ||
	hk_fail "containers or images are left: $(eng_podman_hooks "$noh" ps -a; eng_podman_hooks "$noh" images)"
ph=$EN_PH
eng_podman_hooks_cleanup
[ -z "$(en_pids_using "$ph")" ] || hk_fail "processes of podman are left: $(en_pids_using "$ph")"
for c in /sys/fs/cgroup/*"$EN_PH_CGROUP"; do [ ! -d "$c" ] || hk_fail "cgroup $c is left: $(find "$c" -name cgroup.procs -exec sh -c 'echo "$1: $(cat "$1" | tr "\n" " ")"' _ {} \; | head -5)"; done
[ "$(hk_mounts)" = "$mounts_before" ] || hk_fail "the host's mount table changed: $(diff <(echo "$mounts_before") <(hk_mounts))"
[ "$(find /var/lib/containers -printf '%p %s %T@\n' 2>/dev/null | sort || true)" = "$varlib_before" ] ||
	hk_fail "/var/lib/containers changed"
hk_ok "--undo removed the hook file; no container, image, conmon, cgroup or mount left, /var/lib/containers untouched"
