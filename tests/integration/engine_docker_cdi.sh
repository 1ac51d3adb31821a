#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A REAL Docker 26 (Debian trixie's docker.io and docker-cli, unpacked by
# fixtures/docker26.sh into the cache: its dockerd and its own docker
# client; bookworm's containerd 1.6, which dockerd starts itself, and runc)
# runs GPU containers from the CDI spec `gpu-stage cdi` writes, after
# `gpu-stage runtime configure --docker --cdi --config PRIVATE/daemon.json`
# (the test's own keys first: the storage driver, bridge none, no iptables, private
# data-root, exec-root, pidfile and socket).  The image is `docker import`ed
# from the cached debootstrap rootfs with gs-probe at /gs-probe; the REAL
# Debian 535.261.03 driver is staged; two fake GPUs (mknod'ed nodes, major
# 195: open gives ENXIO) and a fake /proc/driver/nvidia come from gpu-stage's
# configuration file, which also names a CDI vendor of this run's own.
# Storage: overlay2 when the work directory is on ext4 or xfs, else vfs
# (GS_DOCKER_STORAGE overrides).
#
# Where the spec lives: dockerd runs in a private mount namespace whose /etc
# is an overlay (fixtures/engine_lib.sh; lower: the host's /etc, upper: the
# work directory); `gpu-stage cdi`, run in such a namespace too, writes
# /etc/cdi/VENDOR-gpu.json (its default) into that upper directory, and
# dockerd reads /etc/cdi (its default): the host's /etc is never written.
#
# Checked: without "features": {"cdi": true} Docker 26 reports no CDI spec
# directory and refuses --device VENDOR/gpu=all (from 28.2 on, CDI is on by
# default: then only that it reads /etc/cdi); `runtime configure --docker
# --cdi` adds the feature (and only it) and tells the user to run
# `gpu-stage cdi`; with it, `docker info` lists /etc/cdi, and
# --device VENDOR/gpu=all: gs-probe dlopens libcuda.so.1 by SONAME
# (cuDriverGetVersion 12020), `nvidia-smi -h` runs, both GPU nodes and the
# control nodes are there (ENXIO: made by runc from the spec, allowed in the
# device cgroup), one audit record with granted_by "cdi" (createContainer,
# ok); =0: /dev/nvidia0 only; =GPU-<uuid> of the second GPU: /dev/nvidia1
# only; =7 (no such GPU) refused by Docker; `docker exec` into a CDI
# container gets the driver too; a container without --device is untouched
# (no /run/gpu-stage mount, the image's /etc/ld.so.cache by sha256, no
# NVIDIA node, no audit record).  Afterwards: dockerd stopped by its PID (and
# the containerd it started), no process of it left, the host's mount table
# and network namespaces as before, no spec in the host's /etc/cdi or
# /var/run/cdi.  Prints `docker run` wall times with and without the CDI
# device (medians of GS_ENGINE_RUNS interleaved pairs, default 5; a figure,
# not a check).
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
. fixtures/engine_lib.sh
. tests/lib.sh # CDI_INSIDE, cdi_has, cdi_hasnt
hk_setup engine_docker_cdi.sh
for t in containerd containerd-shim-runc-v2 unshare curl gpgv xz; do
	command -v "$t" >/dev/null || hk_skip "$t is not installed (bash tests/deps.sh)"
done
tree=$(bash fixtures/docker26.sh 2>"$HK_WORK/docker26.log") ||
	hk_skip "no Docker >= 25 (fixtures/docker26.sh): $(tail -3 "$HK_WORK/docker26.log")"
EN_DOCKERD_BIN=$tree/usr/sbin/dockerd
EN_DOCKER_CLI=$tree/usr/bin/docker
EN_PATH=$tree/usr/sbin:$tree/usr/bin # its docker-proxy, docker-init
trap en_cleanup EXIT
dver=$("$EN_DOCKERD_BIN" --version) || hk_fail "$EN_DOCKERD_BIN --version failed"
[[ $dver =~ ^Docker\ version\ ([0-9]+)\. ]] && ((BASH_REMATCH[1] >= 25)) || hk_fail "not Docker >= 25: $dver"

mounts_before=$(hk_mounts)
netns_before=$(ip netns list 2>/dev/null || true)
V=gs-test-$$.example # this run's own CDI vendor
hostspecs() { ls /etc/cdi/"$V"* /var/run/cdi/"$V"* 2>/dev/null || true; }

en_real_driver
en_gs_config "$(jq --arg v "$V" '.cdi_vendor = $v' "$EN_CONF")" # and this run's own vendor
# gpu-stage cdi with its defaults (/etc/cdi), inside a private /etc
(en_private_etc env GPU_STAGE_CONFIG="$EN_CONF" "$EN_BIN/gpu-stage" cdi --json) >"$HK_WORK/cdi.json" 2>&1 ||
	hk_fail "gpu-stage cdi failed: $(cat "$HK_WORK/cdi.json")"
spec=$HK_WORK/etc-up/cdi/$V-gpu.json
[ "$(jq -r .file "$HK_WORK/cdi.json")" = "/etc/cdi/$V-gpu.json" ] && [ -f "$spec" ] ||
	hk_fail "the spec is not /etc/cdi/$V-gpu.json in the private /etc: $(cat "$HK_WORK/cdi.json")"
[ -z "$(hostspecs)" ] || hk_fail "gpu-stage cdi wrote into the host's directories: $(hostspecs)"
hk_ok "gpu-stage cdi wrote /etc/cdi/$V-gpu.json (in the private /etc)"

dk=$HK_WORK/docker
mkdir -p "$dk"
# overlay2 where Docker supports it over the work directory's file system
# (a container then starts in a few hundred ms, not the seconds vfs takes to
# copy the image), else vfs; GS_DOCKER_STORAGE chooses
case $(stat -f -c %T "$HK_WORK") in
ext2/ext3 | xfs) storage=${GS_DOCKER_STORAGE:-overlay2} ;;
*) storage=${GS_DOCKER_STORAGE:-vfs} ;;
esac
jq -n --arg d "$dk" --arg cg "$EN_DOCKER_CGROUP" --arg sd "$storage" '{"storage-driver": $sd, "bridge": "none", "iptables": false, "ip6tables": false,
	"ip-masq": false, "ip-forward": false, "data-root": ($d + "/data"), "exec-root": ($d + "/exec"),
	"pidfile": ($d + "/dockerd.pid"), "hosts": ["unix://" + $d + "/docker.sock"],
	"cgroup-parent": $cg}' >"$dk/daemon.json"
cp "$dk/daemon.json" "$HK_WORK/daemon.orig.json"

# without the feature: Docker 25 to 28.1 read no CDI spec (28.2 turned it on by default)
en_image_tar
en_docker_start "$dk/daemon.json"
img=gs-engine-cdi-test:$$
en_docker import "$EN_TAR" "$img" >/dev/null || hk_fail "docker import failed"
rm -f "$EN_TAR"
sv=$(en_docker version --format '{{.Server.Version}}') || hk_fail "docker version failed"
dirs=$(en_docker info --format '{{json .CDISpecDirs}}')
if [[ $sv =~ ^([0-9]+)\.([0-9]+) ]] && ((BASH_REMATCH[1] * 100 + BASH_REMATCH[2] < 2802)); then
	[ "$dirs" = "[]" ] || hk_fail "Docker $sv: CDI spec directories without features.cdi: $dirs"
	if en_docker run --rm --device "$V/gpu=all" "$img" true >"$HK_WORK/nocdi.out" 2>&1; then
		hk_fail "Docker $sv without features.cdi ran --device $V/gpu=all"
	fi
	hk_ok "Docker $sv (dockerd and client from $tree) without features.cdi: no CDI directory, --device $V/gpu=all refused ($(tail -n 1 "$HK_WORK/nocdi.out"))"
else
	jq -e 'index("/etc/cdi") != null' <<<"$dirs" >/dev/null || hk_fail "Docker $sv (CDI on by default) does not read /etc/cdi: $dirs"
	hk_ok "Docker $sv (dockerd and client from $tree): CDI on without features.cdi (28.2 and later)"
fi
en_docker_stop

"$EN_BIN/gpu-stage" runtime configure --docker --cdi --config "$dk/daemon.json" >"$HK_WORK/configure.log" ||
	hk_fail "runtime configure --docker --cdi failed: $(cat "$HK_WORK/configure.log")"
jq -e '.features == {cdi: true} and (del(.features) == input)' "$dk/daemon.json" "$HK_WORK/daemon.orig.json" >/dev/null ||
	hk_fail "daemon.json is not the original plus features.cdi: $(cat "$dk/daemon.json")"
grep -q '^docker: note: .*gpu-stage cdi' "$HK_WORK/configure.log" || hk_fail "configure did not point at gpu-stage cdi: $(cat "$HK_WORK/configure.log")"
en_docker_start "$dk/daemon.json"
en_docker info --format '{{json .CDISpecDirs}}' | jq -e 'index("/etc/cdi") != null' >/dev/null ||
	hk_fail "dockerd does not read /etc/cdi: $(en_docker info --format '{{json .CDISpecDirs}}')"
hk_ok "runtime configure --docker --cdi: features.cdi only (every other key as it was); dockerd reads /etc/cdi"

CDI_OUT=$HK_WORK
drun() { # NAME ARGS...: docker run --rm ARGS IMAGE sh -c CDI_INSIDE, output in $HK_WORK/NAME.out
	local name=$1
	shift
	en_docker run --rm "$@" "$img" sh -c "$CDI_INSIDE" >"$HK_WORK/$name.out" 2>&1
}
audits() { [ -f "$HK_WORK/audit.log" ] && wc -l <"$HK_WORK/audit.log" || echo 0; }
gpu_ok() { # NAME: the driver is there
	cdi_has "$1" "cuDriverGetVersion=12020 (rc 0)"
	cdi_has "$1" "SMI NVIDIA System Management Interface -- v$HK_VER"
	cdi_has "$1" "NODE /dev/nvidiactl ENXIO"
	cdi_has "$1" "LIBCUDA 1"
}

n0=$(audits)
drun all --device "$V/gpu=all" || hk_fail "--device $V/gpu=all: docker run failed: $(cat "$HK_WORK/all.out")"
gpu_ok all
for d in nvidia0 nvidia1 nvidia-uvm nvidia-uvm-tools; do cdi_has all "NODE /dev/$d ENXIO"; done
[ "$(audits)" -eq $((n0 + 1)) ] || hk_fail "--device $V/gpu=all: expected one new audit record, have $(($(audits) - n0))"
rec=$(tail -n 1 "$HK_WORK/audit.log")
[ "$(jq -r '.granted_by + " " + .stage + " " + .result' <<<"$rec")" = "cdi createContainer ok" ] ||
	hk_fail "the audit record does not say granted_by cdi: $rec"
[ "$(jq '[.plan.operations[] | select(.op == "mknod")] | length' <<<"$rec")" -eq 0 ] &&
	[ "$(jq '[.plan.operations[] | select(.op == "bind-dir" and .status == "applied")] | length' <<<"$rec")" -gt 0 ] ||
	hk_fail "CDI mode: the hook made a device node, or bound no driver directory: $rec"
hk_ok "--device $V/gpu=all: libcuda.so.1 by SONAME (cuDriverGetVersion 12020), nvidia-smi -h, both GPUs and the control nodes (ENXIO; made by the runtime, not the hook), audit granted_by cdi"

drun one --device "$V/gpu=0" || hk_fail "--device $V/gpu=0: docker run failed: $(cat "$HK_WORK/one.out")"
gpu_ok one
cdi_has one "NODE /dev/nvidia0 ENXIO"
cdi_hasnt one "NODE /dev/nvidia1"
hk_ok "--device $V/gpu=0: the driver and /dev/nvidia0 only"
# U1 (tests/lib.sh) is hk_setup's second GPU
drun two --device "$V/gpu=$U1" || hk_fail "--device $V/gpu=$U1: docker run failed: $(cat "$HK_WORK/two.out")"
gpu_ok two
cdi_has two "NODE /dev/nvidia1 ENXIO"
cdi_hasnt two "NODE /dev/nvidia0"
hk_ok "--device $V/gpu=$U1 (the second GPU by UUID): the driver and /dev/nvidia1 only"

if drun bad --device "$V/gpu=7"; then hk_fail "--device $V/gpu=7 (no such GPU) started"; fi
grep -q "unresolvable CDI devices $V/gpu=7" "$HK_WORK/bad.out" || hk_fail "--device $V/gpu=7: $(cat "$HK_WORK/bad.out")"
hk_ok "--device $V/gpu=7: refused by Docker (no such device in the spec)"

id=$(en_docker run -d --device "$V/gpu=0" "$img" sleep 600 2>"$HK_WORK/rund.err") ||
	hk_fail "docker run -d --device $V/gpu=0 failed: $(cat "$HK_WORK/rund.err")"
en_docker exec "$id" /gs-probe libcuda.so.1 >"$HK_WORK/exec.out" 2>&1 && grep -q '^cuDriverGetVersion=12020' "$HK_WORK/exec.out" ||
	hk_fail "docker exec into a CDI container: $(cat "$HK_WORK/exec.out")"
en_docker rm -f "$id" >/dev/null || hk_fail "docker rm -f failed"
hk_ok "docker exec into a --device $V/gpu=0 container: libcuda.so.1 (12020)"

n0=$(audits)
drun plain || hk_fail "a container without --device failed: $(cat "$HK_WORK/plain.out")"
cdi_has plain "ANCHOR_MOUNTS 0"
cdi_has plain "CACHE $(sha256sum <"$HK_ROOTFS/etc/ld.so.cache" | cut -d' ' -f1)  /etc/ld.so.cache"
cdi_hasnt plain "NODE "
cdi_hasnt plain "cuDriverGetVersion"
[ "$(audits)" -eq "$n0" ] || hk_fail "a container without --device got an audit record"
hk_ok "no --device: untouched (no /run/gpu-stage, the image's ld.so.cache by sha256, no NVIDIA node, no audit record)"

# docker run wall time, with and without the CDI device: interleaved, medians
N=${GS_ENGINE_RUNS:-5}
t_plain=() t_cdi=()
for _ in $(seq 1 "$N"); do
	t_plain+=("$(en_ms en_docker run --rm "$img" true)")
	t_cdi+=("$(en_ms en_docker run --rm --device "$V/gpu=all" "$img" true)")
done
echo "engine_docker_cdi.sh: docker $sv run --rm ($storage) true: median $(en_median "${t_plain[@]}") ms without, $(en_median "${t_cdi[@]}") ms with --device $V/gpu=all ($N interleaved pairs: ${t_plain[*]} / ${t_cdi[*]})"

en_docker rmi "$img" >/dev/null || true
en_docker_finish "$mounts_before" "$netns_before"
[ -z "$(hostspecs)" ] || hk_fail "a spec of this run is in the host's CDI directories: $(hostspecs)"
hk_ok "dockerd stopped by PID, nothing of it left running, no mounts, network namespaces or host CDI specs left"
