#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage info on fake hosts (--root DIR: DIR/proc/driver/nvidia with two
# GPUs, mknod'ed nodes in DIR/dev, a synthetic driver staged into
# DIR/var/lib/gpu-stage, the engines' files under DIR configured with
# `gpu-stage runtime configure`, a spec from `gpu-stage cdi`).  Ready:
# exit 0, "ready: yes", --json read with jq.  Then each problem alone, named
# with the command that fixes it and exit 1: /dev/nvidia-uvm missing (the
# classic miss), a GPU's node missing, the loaded module's version not
# staged, no module at all (a host without a driver), the CDI spec out of
# date (a GPU added), an engine entry naming other programs, an engine file
# that cannot be read, nothing configured.  And what is reported without
# being a problem: Docker as the default runtime, its CDI feature,
# containerd's handler, the Podman/CRI-O hook file, the audit log's size.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
need_root "mknod of the fake GPU nodes"
need_tools jq
need_built "$GS" "${GS_BUILD:-build}/gpu-stage-hook" "${GS_BUILD:-build}/gpu-runtime"
VER=535.261.03
make_work
ok() { echo "$T: ok: $*"; }
R=$work/root
STORE=$R/var/lib/gpu-stage

bash fixtures/mkdriver.sh "$work/drv" --version "$VER" --no-i386 >"$work/mk.log" 2>&1 ||
	fail "mkdriver.sh: $(tail -3 "$work/mk.log")"
"$GS" --root "$work/drv" --store "$STORE" --driver "$VER" -q >"$work/stage.log" 2>&1 ||
	fail "staging: $(cat "$work/stage.log")"
fake_gpus "$R" "$VER" 0 1
# the majors the modules registered (gpu-stage devices reads them), nodes as the driver makes them
printf 'Character devices:\n  1 mem\n195 nvidia-frontend\n237 nvidia-uvm\n\nBlock devices:\n  8 sd\n' >"$R/proc/devices"
chmod 0666 "$R"/dev/nvidia*
# the paths `gpu-stage cdi` and `runtime configure` write into, the host being $R
jq -n --arg r "$R" '{store: ($r + "/var/lib/gpu-stage"), dev_root: ($r + "/dev"),
	proc_root: ($r + "/proc"), cdi_dir: ($r + "/etc/cdi")}' >"$work/config.json"
mkdir -p "$R/etc"
GPU_STAGE_CONFIG=$work/config.json "$GS" cdi >/dev/null 2>"$work/err" || fail "gpu-stage cdi: $(cat "$work/err")"
mkdir -p "$R/etc/docker"
echo '{"log-level": "warn"}' >"$R/etc/docker/daemon.json"
"$GS" runtime configure --docker --config "$R/etc/docker/daemon.json" >/dev/null ||
	fail "runtime configure --docker"
mkdir -p "$R/var/log/gpu-stage"
printf '{"result":"ok"}\n' >"$R/var/log/gpu-stage/hook.log"

# info --root $R [ARGS]: OUT (text) and JSON, RC; the two agree on readiness
info() {
	rc=0
	"$GS" info --root "$R" "$@" >"$work/out" 2>"$work/err" || rc=$?
	jrc=0
	"$GS" info --root "$R" --json "$@" >"$work/json" 2>>"$work/err" || jrc=$?
	[ $rc = $jrc ] || fail "text exit $rc, --json exit $jrc"
	jq -e . "$work/json" >/dev/null || fail "--json is not JSON: $(cat "$work/json")"
	[ "$(jq -r .ready "$work/json")" = "$([ $rc = 0 ] && echo true || echo false)" ] ||
		fail "exit $rc but ready $(jq -r .ready "$work/json")"
	[ ! -s "$work/err" ] || fail "stderr: $(cat "$work/err")"
}
has() { grep -qF -- "$1" "$work/out" || fail "no '$1' in: $(cat "$work/out")"; }
jhas() { jq -e "$1" "$work/json" >/dev/null || fail "jq '$1' false on: $(cat "$work/json")"; }
problem() { # TEXT FIX: a problem line with TEXT, its fix the next line
	grep -A1 -F -- "$1" "$work/out" | grep -qxF -- "    fix: $2" ||
		fail "no problem '$1' with fix '$2' in: $(cat "$work/out")"
	jq -e --arg p "$1" --arg f "$2" 'any(.problems[]; (.problem | contains($p)) and .fix == $f)' \
		"$work/json" >/dev/null || fail "--json has no problem '$1' with fix '$2': $(jq .problems "$work/json")"
}
ready() { [ $rc = 0 ] || fail "exit $rc, not ready: $(cat "$work/out")"; has "ready: yes"; }
notready() { [ $rc = 1 ] || fail "exit $rc, not 1: $(cat "$work/out")"; has "ready: no"; }

# ---- all ready ----
info
ready
has "module      $VER"
has "$STORE: $VER (current)"
for n in nvidiactl nvidia0 nvidia1 nvidia-uvm nvidia-uvm-tools; do has "$R/dev/$n ok"; done
has "docker      $R/etc/docker/daemon.json: gpu-stage"
has "cdi         $R/etc/cdi/nvidia.com-gpu.json: current"
has "audit log   $R/var/log/gpu-stage/hook.log: 16 bytes"
jhas ".module == \"$VER\" and .store.current == \"$VER\" and .store.versions == [\"$VER\"] and .gpus == 2"
jhas '[.devices[] | select(.present and .state == "ok")] | length == 5'
jhas '.engines[] | select(.engine == "docker") | .configured and .current and (.default | not) and (.cdi | not)'
jhas '.engines[] | select(.engine == "containerd") | (.present | not) and (.configured | not)'
jhas '.cdi.state == "current" and .audit_log.bytes == 16 and .problems == []'
ok "ready host: exit 0, every part reported (text and --json)"

# ---- reported, not problems ----
"$GS" runtime configure --docker --set-default --config "$R/etc/docker/daemon.json" >/dev/null
"$GS" runtime configure --docker --cdi --config "$R/etc/docker/daemon.json" >/dev/null
mkdir -p "$R/etc/containerd"
"$GS" runtime configure --containerd --config "$R/etc/containerd/config.toml" >/dev/null
"$GS" runtime configure --podman --config "$R/usr/share/containers/oci/hooks.d" >/dev/null
info
ready
has "docker      $R/etc/docker/daemon.json: gpu-stage, the default runtime; CDI on"
has "containerd  $R/etc/containerd/config.toml: gpu-stage"
has "podman/crio $R/usr/share/containers/oci/hooks.d: gpu-stage"
jhas '.engines[] | select(.engine == "docker") | .default and .cdi'
jhas '[.engines[] | select(.configured and .current)] | length == 3'
ok "docker default runtime and CDI, containerd handler, podman/crio hook: reported"

# ---- /dev/nvidia-uvm missing: the classic miss; the fix it names fixes it ----
rm "$R/dev/nvidia-uvm"
info
notready
has "$R/dev/nvidia-uvm MISSING"
problem "$R/dev/nvidia-uvm is missing (CUDA needs it" "gpu-stage devices --ensure   (or: nvidia-modprobe -u -c=0, or modprobe nvidia-uvm)"
jhas "[.problems[]] | length == 1"
jhas ".devices[] | select(.path == \"$R/dev/nvidia-uvm\") | .present == false and .state == \"missing\""
"$GS" devices --ensure --dev-root "$R/dev" --proc-root "$R/proc" >"$work/fix" 2>&1 || fail "the fix: $(cat "$work/fix")"
info
ready
ok "/dev/nvidia-uvm missing: named with its fix, exit 1; after gpu-stage devices --ensure: ready"

rm "$R/dev/nvidia1"
info
notready
problem "$R/dev/nvidia1 is missing" "gpu-stage devices --ensure   (or: nvidia-modprobe -c=1)"
mknod -m 0666 "$R/dev/nvidia1" c 195 1
chmod 0600 "$R/dev/nvidia0"
info
notready
has "$R/dev/nvidia0 WRONG-MODE"
problem "$R/dev/nvidia0 has " "gpu-stage devices --ensure   (or: nvidia-modprobe -c=0)"
chmod 0666 "$R/dev/nvidia0"
ok "a GPU's node missing, one with the wrong mode: gpu-stage devices --ensure"

# ---- nvidia-uvm not loaded at all ----
cp "$R/proc/devices" "$work/devices"
sed -i '/nvidia-uvm/d' "$R/proc/devices"
info
notready
has "$R/dev/nvidia-uvm NO-MODULE"
problem "$R/dev/nvidia-uvm: the nvidia-uvm module is not loaded" \
	"gpu-stage devices --load --ensure   (or: modprobe nvidia-uvm, then nvidia-modprobe -u -c=0)"
cp "$work/devices" "$R/proc/devices"
ok "nvidia-uvm not loaded: gpu-stage devices --load --ensure"

# ---- the loaded module's version not staged (an upgrade, then a reboot) ----
cp "$R/proc/driver/nvidia/version" "$work/version"
sed -i "s/$VER/535.274.02/" "$R/proc/driver/nvidia/version"
info
notready
has "module      535.274.02"
problem "the loaded driver 535.274.02 is not staged in $STORE" "gpu-stage --driver 535.274.02"
jhas '.store.current == null and .module == "535.274.02"'
cp "$work/version" "$R/proc/driver/nvidia/version"
ok "loaded version not staged: gpu-stage --driver VER"

# ---- the CDI spec out of date: a third GPU ----
mkdir "$R/proc/driver/nvidia/gpus/0000:03:00.0"
printf 'GPU UUID: \t GPU-cccccccc-2222-3333-4444-555555555555\nDevice Minor: \t 2\n' \
	>"$R/proc/driver/nvidia/gpus/0000:03:00.0/information"
mknod -m 0666 "$R/dev/nvidia2" c 195 2
info
notready
problem "the CDI spec $R/etc/cdi/nvidia.com-gpu.json is out of date: it names 5 devices" "gpu-stage cdi"
jhas '.cdi.state == "stale"'
GPU_STAGE_CONFIG=$work/config.json "$GS" cdi >/dev/null
info
ready
ok "CDI spec stale after a GPU was added: gpu-stage cdi; current again after it"

# ---- another spec of the kind beside ours (NVIDIA's nvidia.yaml) ----
printf 'cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: all\n' >"$R/etc/cdi/nvidia.yaml"
info
notready
problem "$R/etc/cdi/nvidia.yaml declares kind nvidia.com/gpu too" "remove that spec, or gpu-stage cdi --vendor with another vendor"
rm "$R/etc/cdi/nvidia.yaml"
info
ready
ok "another CDI spec of the kind beside ours: a problem naming it"

# ---- an engine entry naming another installation's programs; a file that cannot be read ----
cp "$R/etc/docker/daemon.json" "$work/daemon.json"
jq '.runtimes["gpu-stage"].path = "/opt/old/bin/gpu-runtime"' "$work/daemon.json" >"$R/etc/docker/daemon.json"
info
notready
has "docker      $R/etc/docker/daemon.json: gpu-stage (stale)"
problem "docker: $R/etc/docker/daemon.json names another gpu-stage installation's programs" \
	"gpu-stage runtime configure --docker"
echo '{"runtimes": ' >"$R/etc/docker/daemon.json"
info
notready
has "docker      $R/etc/docker/daemon.json: unreadable"
grep -q "^docker: $R/etc/docker/daemon.json: line " "$work/out" || fail "no parse error naming the file: $(cat "$work/out")"
cp "$work/daemon.json" "$R/etc/docker/daemon.json"
ok "stale docker entry: runtime configure --docker; invalid daemon.json: named with its line"

# ---- nothing reaches the engines ----
"$GS" runtime configure --docker --undo --config "$R/etc/docker/daemon.json" >/dev/null
"$GS" runtime configure --docker --cdi --undo --config "$R/etc/docker/daemon.json" >/dev/null
"$GS" runtime configure --containerd --undo --config "$R/etc/containerd/config.toml" >/dev/null
"$GS" runtime configure --podman --undo --config "$R/usr/share/containers/oci/hooks.d" >/dev/null
info
ready # the CDI spec alone reaches Podman, Docker >= 25, containerd
has "docker      $R/etc/docker/daemon.json: not configured"
rm "$R/etc/cdi/nvidia.com-gpu.json"
info
notready
problem "no container engine is configured to use gpu-stage, and there is no CDI spec" \
	"gpu-stage runtime configure --docker (or --containerd, --podman, --crio), or gpu-stage cdi"
jhas '.cdi.state == "none" and ([.engines[] | select(.configured)] | length == 0)'
ok "no engine and no spec: named with the commands"

# ---- registered under NVIDIA's name (a host moving from the toolkit keeps --runtime=nvidia) ----
"$GS" runtime configure --docker --name nvidia --config "$R/etc/docker/daemon.json" >/dev/null ||
	fail "runtime configure --docker --name nvidia"
info
ready
has "docker      $R/etc/docker/daemon.json: gpu-stage as nvidia"
jhas '.engines[] | select(.engine == "docker") | .configured and .current and .name == "nvidia"'
jq '.runtimes["nvidia"].path = "/opt/old/bin/gpu-runtime"' "$R/etc/docker/daemon.json" >"$work/d.json" &&
	cp "$work/d.json" "$R/etc/docker/daemon.json"
info
notready
has "docker      $R/etc/docker/daemon.json: gpu-stage as nvidia (stale)"
problem "docker: $R/etc/docker/daemon.json names another gpu-stage installation's programs" \
	"gpu-stage runtime configure --docker --name nvidia"
jq '.runtimes["nvidia"].path = "/usr/bin/nvidia-container-runtime"' "$R/etc/docker/daemon.json" >"$work/d.json" &&
	cp "$work/d.json" "$R/etc/docker/daemon.json"
info
notready
has "docker      $R/etc/docker/daemon.json: not configured"
echo '{}' >"$R/etc/docker/daemon.json"
ok "registered as nvidia: recognised, its staleness fixed under that name; NVIDIA's own runtime of that name is not ours"

# ---- a host without any NVIDIA driver ----
mkdir -p "$work/bare"
R=$work/bare info
notready
has "module      none loaded"
has "$work/bare/var/lib/gpu-stage: nothing staged"
problem "no NVIDIA kernel module loaded ($work/bare/proc/driver/nvidia/version)" \
	"install the NVIDIA driver and load its module: modprobe nvidia"
"$GS" info --root "$work/bare" --json --store "$STORE" >"$work/json" || true
jq -e ".module == null and .devices == [] and .store.path == \"$STORE\" and .store.versions == [\"$VER\"] and .store.current == null" \
	"$work/json" >/dev/null || fail "--json without a driver, --store: $(cat "$work/json")"
ok "no driver: says so, exit 1; --store names the store as it is"

# ---- usage ----
for args in "--bogus" "extra" "--root relative/dir"; do
	rc=0
	# shellcheck disable=SC2086
	"$GS" info $args >/dev/null 2>"$work/err" || rc=$?
	[ $rc = 2 ] || fail "info $args: exit $rc, not 2"
	grep -q '^gpu-stage: info: ' "$work/err" || fail "info $args: $(cat "$work/err")"
done
"$GS" info --help | grep -q '^Usage: gpu-stage info' || fail "info --help"
"$GS" --help | grep -q '^  info \[--json\]' || fail "gpu-stage --help does not list info"
ok "usage errors exit 2; --help"
echo "$T: PASS"
