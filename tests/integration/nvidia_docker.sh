#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# hook/nvidia-docker, the opt-in nvidia-docker 2 wrapper, with a fake docker
# client that records its arguments: `run` and `create` (also `container
# run|create`, after docker's global options in both spellings) gain
# --runtime=gpu-stage (or GPU_STAGE_DOCKER_RUNTIME) and, from NV_GPU,
# -e NVIDIA_VISIBLE_DEVICES (spaces as commas); every other command and every
# argument (spaces inside included) reach docker unchanged; an unknown
# global option before the command, or an NV_GPU that is no device list, is
# refused with exit 2 and docker is not run.
# Exit 0 pass, else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
make_work
W=$PWD/hook/nvidia-docker
printf '#!/bin/sh\nfor a in "$@"; do printf "[%%s]" "$a"; done >"$ARGV_OUT"\n' >"$work/docker"
chmod +x "$work/docker"
export DOCKER=$work/docker ARGV_OUT=$work/argv
expect() { # WANT ARGS...: the docker client got WANT
	local want=$1
	shift
	rm -f "$work/argv"
	"$W" "$@" || fail "nvidia-docker $*: exit $?"
	[ "$(cat "$work/argv")" = "$want" ] || fail "nvidia-docker $*: docker got $(cat "$work/argv"), want $want"
}
refused() { # PATTERN ARGS...
	local pat=$1 got=0
	shift
	rm -f "$work/argv"
	"$W" "$@" >"$work/out" 2>&1 || got=$?
	[ "$got" -eq 2 ] && grep -q -- "$pat" "$work/out" || fail "nvidia-docker $*: exit $got: $(cat "$work/out")"
	[ ! -e "$work/argv" ] || fail "nvidia-docker $*: docker was run"
}
NV_GPU='0 1' expect '[run][--runtime=gpu-stage][-e][NVIDIA_VISIBLE_DEVICES=0,1][--rm][img][sh][-c][echo a  b]' run --rm img sh -c 'echo a  b'
expect '[-H][unix:///x][--log-level=debug][container][create][--runtime=gpu-stage][img]' -H unix:///x --log-level=debug container create img
NV_GPU=GPU-1234abcd-ef expect '[--debug][create][--runtime=gpu-stage][-e][NVIDIA_VISIBLE_DEVICES=GPU-1234abcd-ef][img]' --debug create img
GPU_STAGE_DOCKER_RUNTIME=nvidia expect '[run][--runtime=nvidia][img]' run img
NV_GPU= expect '[run][--runtime=gpu-stage][img]' run img
expect '[ps][-a]' ps -a
expect '[container][ls]' container ls
expect '[--context][x][exec][c1][run]' --context x exec c1 run
expect '[--version]' --version
refused "unknown docker option '--frob'" --frob run img
NV_GPU='0;reboot' refused "NV_GPU=" run img
echo "nvidia_docker.sh: all cases passed"
