#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The device inventory and MIG-<uuid> (issue 16): a synthetic
# libnvidia-ml.so.1 (fixtures/fake_nvml.c, built here with cc -shared: two
# GPUs matching hook_lib.sh's fake /proc, MIG on GPU 0 with two MIG devices
# in slots 0 and 2) staged through the synthetic sample driver, then
# - `gpu-stage devices --inventory` writes the file (root's, 0644) with
#   exactly the fake's GPUs and MIG devices, the driver, the staged
#   library's path and a timestamp (jq); --json prints the same document;
#   gpu-stage-nvml runs with an empty environment (the fake dumps it);
# - the hook in real runc with NVIDIA_VISIBLE_DEVICES=MIG-<uuid> gets
#   exactly the parent GPU's node and that GI/CI's capability nodes, each
#   allowed (ENXIO); the other MIG device gets its own, also in gpu-runtime's
#   linux.devices;
# - an unknown MIG UUID fails the start naming the file and the fix;
# - refused (gpu-stage plan, the hook's path): a file owned by another
#   user, a group-writable file, a group-writable directory, a symlink, a
#   missing file, a stale one (another driver), a malformed one;
# - NVML init failure (the fake's control file says so), a UUID without a
#   NUL, another driver version: exit 1 with the reason, nothing written and
#   an existing file left byte for byte; usage errors exit 2.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup devices_inventory.sh
command -v cc >/dev/null || hk_skip "cc is not installed"
HELPER=$HK_BUILD/gpu-stage-nvml
[ -x "$HELPER" ] || hk_skip "$HELPER is not built (make)"
w=$HK_WORK
VER=$HK_VER
GS=$(hk_abs "$HK_GS")
MIG_A=MIG-4f2a3c6e-1111-2222-3333-444455556666
MIG_B=MIG-4f2a3c6e-aaaa-bbbb-cccc-ddddeeeeffff
GPU0=GPU-11111111-2222-3333-4444-555555555555
GPU1=GPU-aaaaaaaa-2222-3333-4444-555555555555

# ---- the fake NVML, staged as the driver's libnvidia-ml ----------------------------
CTL=$w/nvml.control
: >"$CTL"
lib=$(find "$w/drv/usr/lib" -name "libnvidia-ml.so.$VER" -path '*x86_64*' | head -n 1)
[ -n "$lib" ] || hk_fail "mkdriver.sh made no 64-bit libnvidia-ml.so.$VER"
cc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$lib" fixtures/fake_nvml.c -Wl,-soname,libnvidia-ml.so.1 \
	-DFAKE_NVML_VERSION="\"$VER\"" -DFAKE_NVML_CONTROL="\"$CTL\"" || hk_fail "building fixtures/fake_nvml.c"
"$GS" --root "$w/drv" --store "$HK_STORE" --driver "$VER" --caps all --force >"$w/restage.log" 2>&1 ||
	hk_fail "re-staging with the fake NVML: $(cat "$w/restage.log")"
staged=$(jq -r '.files[] | select(.soname == "libnvidia-ml.so.1" and .kind == "lib") | .path' "$HK_STORE/$VER/manifest.json")
grep -q nvmlDeviceGetMigDeviceHandleByIndex "$HK_STORE/$VER/$staged" || hk_fail "the staged $staged is not the fake"
NVML=$(cd "$HK_STORE/$VER" && pwd -P)/$staged

mkdir -p "$w/run/gpu-stage"
INV=$w/run/gpu-stage/devices.json
cat >"$w/config.json" <<EOF
{"store": "$HK_STORE", "proc_root": "$HK_PROC", "dev_root": "$HK_DEV", "inventory": "$INV"}
EOF
export GPU_STAGE_CONFIG=$w/config.json
# gs ARGS...: gpu-stage; RC, $w/out, $w/err
gs() {
	RC=0
	"$GS" "$@" >"$w/out" 2>"$w/err" || RC=$?
}

# ---- devices --inventory ---------------------------------------------------------
echo "NVML_ENV_DUMP=$w/env.dump" >"$CTL"
FOO=bar LD_LIBRARY_PATH=/nonexistent gs devices --inventory
[ "$RC" = 0 ] || hk_fail "devices --inventory: exit $RC: $(cat "$w/err")"
grep -qF "$INV: driver $VER, 2 GPUs, 2 MIG devices (NVML: $NVML)" "$w/out" || hk_fail "devices --inventory says: $(cat "$w/out")"
[ -f "$w/env.dump" ] || hk_fail "the fake NVML was not loaded (no environment dump)"
[ ! -s "$w/env.dump" ] || hk_fail "gpu-stage-nvml ran with an environment: $(cat "$w/env.dump")"
[ "$(stat -c '%u %a' "$INV")" = "0 644" ] || hk_fail "the inventory is $(stat -c '%u %a' "$INV")"
want_gpus='[{"index":0,"minor":0,"uuid":"'$GPU0'","pci_bus_id":"00000000:01:00.0","mig_mode":"enabled"},{"index":1,"minor":1,"uuid":"'$GPU1'","pci_bus_id":"00000000:02:00.0","mig_mode":"disabled"}]'
want_migs='[{"uuid":"'$MIG_A'","gpu_index":0,"gpu_uuid":"'$GPU0'","gi":1,"ci":0},{"uuid":"'$MIG_B'","gpu_index":0,"gpu_uuid":"'$GPU0'","gi":2,"ci":0}]'
jq -e --argjson g "$want_gpus" --argjson m "$want_migs" --arg v "$VER" --arg n "$NVML" '
	.schema == "gpu-stage/devices/v1" and .driver == $v and .nvml == $n and .gpus == $g and
	.mig_devices == $m and (.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")) and
	(keys | length) == 6' "$INV" >/dev/null || hk_fail "the inventory is not the fake's data: $(cat "$INV")"
hk_ok "devices --inventory: 2 GPUs (MIG enabled/disabled), 2 MIG devices (an empty slot skipped), driver, library, timestamp; root's 0644; helper with an empty environment"
gs devices --inventory --json
[ "$RC" = 0 ] && [ "$(jq -S 'del(.timestamp)' "$w/out")" = "$(jq -S 'del(.timestamp)' "$INV")" ] ||
	hk_fail "--json: exit $RC, $(cat "$w/out" "$w/err")"
hk_ok "--json prints the document written"
cp "$INV" "$w/good.json"

# ---- the hook in runc: MIG-<uuid> ------------------------------------------------
CAPS_MAJOR=508
caps=$HK_PROC/driver/nvidia/capabilities
cap() { # GPU-MINOR GI CI|"" DEVICE-MINOR
	local d=$caps/gpu$1/mig/gi$2 m=$4
	[ -n "$3" ] && d=$d/ci$3
	mkdir -p "$d" "$HK_DEV/nvidia-caps"
	printf 'DeviceFileMinor: %s\nDeviceFileMode: 292\nDeviceFileModify: 1\n' "$m" >"$d/access"
	mknod "$HK_DEV/nvidia-caps/nvidia-cap$m" c "$CAPS_MAJOR" "$m"
}
cap 0 1 "" 21
cap 0 1 0 22
cap 0 2 "" 30
cap 0 2 0 31
script='for d in /dev/nvidia0 /dev/nvidia1 /dev/nvidia-caps/*; do [ -e "$d" ] || continue; printf "NODE %s " "$d"; (cat "$d" >/dev/null) 2>&1 | grep -q "No such device or address" && echo ENXIO || echo other; done; echo STARTED'
run() { # NAME DEVICES: the hook (with --config) in real runc
	hk_bundle "$1"
	hk_config "$HK_B" prestart false "[\"NVIDIA_VISIBLE_DEVICES=$2\"]" "$script"
	jq --arg c "$w/config.json" '.hooks.prestart[0].args |= (.[0:1] + ["--config", $c] + .[1:])' \
		"$HK_B/config.json" >"$HK_B/c.new" && mv "$HK_B/c.new" "$HK_B/config.json"
	hk_runc "$HK_B" "gs-inv-$$-$1"
}
nodes() { grep '^NODE ' "$HK_WORK/gs-inv-$$-$1.out" | sort | tr '\n' ';'; }
want_nodes() { # NAME DEVICES EXPECTED
	run "$1" "$2" || hk_fail "$1 ($2): the container failed: $(cat "$HK_WORK/gs-inv-$$-$1.out")"
	[ "$(nodes "$1")" = "$3" ] || hk_fail "$1 ($2): nodes are '$(nodes "$1")', expected '$3'"
}
want_nodes miga "$MIG_A" "NODE /dev/nvidia-caps/nvidia-cap21 ENXIO;NODE /dev/nvidia-caps/nvidia-cap22 ENXIO;NODE /dev/nvidia0 ENXIO;"
want_nodes migb "${MIG_B^^}" "NODE /dev/nvidia-caps/nvidia-cap30 ENXIO;NODE /dev/nvidia-caps/nvidia-cap31 ENXIO;NODE /dev/nvidia0 ENXIO;"
tail -n 1 "$HK_AUDIT" | jq -e '.result == "ok"' >/dev/null || hk_fail "no ok audit record: $(tail -n 1 "$HK_AUDIT")"
hk_ok "runc: $MIG_A gets nvidia0 and capability nodes 21, 22 only; the other MIG device (upper case) 30, 31; each allowed (ENXIO)"
hk_shim
b=$w/shimb
mkdir -p "$b/rootfs"
printf '{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"env": ["NVIDIA_VISIBLE_DEVICES=%s", "NVIDIA_DRIVER_CAPABILITIES=utility"]}, "linux": {}}\n' "$MIG_B" >"$b/config.json"
GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle "$b" c1 >"$w/shim.out" 2>&1 || hk_fail "shim: $(cat "$w/shim.out")"
got=$(jq -r '[.linux.devices[]? | "\(.path) \(.major):\(.minor)"] | join(",")' "$b/config.json")
[ "$got" = "/dev/nvidiactl 195:255,/dev/nvidia0 195:0,/dev/nvidia-caps/nvidia-cap30 $CAPS_MAJOR:30,/dev/nvidia-caps/nvidia-cap31 $CAPS_MAJOR:31" ] ||
	hk_fail "shim $MIG_B: linux.devices is $got"
hk_ok "gpu-runtime: $MIG_B declared as nvidiactl, nvidia0, nvidia-cap30, nvidia-cap31"
unknown=MIG-00000000-1111-2222-3333-444455556666
if run unknown "$unknown"; then hk_fail "an unknown MIG UUID started"; fi
grep -q STARTED "$HK_WORK/gs-inv-$$-unknown.out" && hk_fail "an unknown MIG UUID ran"
grep -qF "no MIG device $unknown in $INV" "$HK_WORK/gs-inv-$$-unknown.out" &&
	grep -qF "run 'gpu-stage devices --inventory'" "$HK_WORK/gs-inv-$$-unknown.out" ||
	hk_fail "unknown MIG UUID: $(cat "$HK_WORK/gs-inv-$$-unknown.out")"
hk_ok "runc: an unknown MIG UUID fails the start, naming the file and the fix"

# ---- refused inventories (gpu-stage plan shares the hook's path) -----------------------
mkdir -p "$w/rootfs/etc"
plan() { gs plan --rootfs "$w/rootfs" --env "NVIDIA_VISIBLE_DEVICES=$MIG_A" --driver "$VER"; }
plan
[ "$RC" = 0 ] && grep -q 'nvidia-cap22' "$w/out" || hk_fail "plan $MIG_A: exit $RC: $(cat "$w/out" "$w/err")"
refused() { # WHAT MESSAGE
	plan
	[ "$RC" = 1 ] || hk_fail "$1: plan exit $RC: $(cat "$w/out")"
	grep -qF -- "$2" "$w/err" || hk_fail "$1: no '$2' in: $(cat "$w/err")"
	cp "$w/good.json" "$INV"
	chown 0:0 "$INV"
	chmod 0644 "$INV"
}
chown 1000 "$INV"
refused "another owner" "$INV: the file is owned by uid 1000, not root: the inventory is not trusted"
chmod 0664 "$INV"
refused "group-writable" "$INV: the file is writable by group or others (mode 0664)"
chmod g+w "$w/run/gpu-stage"
refused "group-writable directory" "$INV: its directory is writable by group or others"
chmod g-w "$w/run/gpu-stage"
mv "$INV" "$w/run/gpu-stage/real.json" && ln -s real.json "$INV"
refused symlink "$INV: a symlink: the inventory is not trusted"
rm -f "$INV" "$w/run/gpu-stage/real.json"
refused missing "$INV: no such file (run 'gpu-stage devices --inventory' on the host)"
jq '.driver = "535.999.01"' "$w/good.json" >"$INV"
refused stale "was written for driver 535.999.01 (at "
jq '.mig_devices[0].gpu_uuid = "GPU-ffffffff"' "$w/good.json" >"$INV"
refused "parent mismatch" "mig_devices[0]: its parent GPU (gpu_index, gpu_uuid) is not in gpus"
jq '.extra = 1' "$w/good.json" >"$INV"
refused "unknown key" "top level.extra: unknown member"
head -c 100000 /dev/zero | tr '\0' ' ' >"$INV"; cat "$w/good.json" >>"$INV"; head -c 200000 /dev/zero | tr '\0' ' ' >>"$INV"
refused "too large" "larger than 262144 bytes"
hk_ok "refused naming the file and the fix: another owner, group-writable file and directory, symlink, missing, stale driver, a parent mismatch, an unknown key, over 256 KiB"

# ---- NVML failures: nothing written -------------------------------------------------
nvml_fails() { # WHAT CONTROL MESSAGE
	echo "$2" >"$CTL"
	gs devices --inventory --timeout "${NVML_TIMEOUT:-60}"
	[ "$RC" = 1 ] || hk_fail "$1: exit $RC: $(cat "$w/out")"
	grep -qF -- "$3" "$w/err" || hk_fail "$1: no '$3' in: $(cat "$w/err")"
	cmp -s "$INV" "$w/good.json" || hk_fail "$1: the inventory changed"
	[ -z "$(find "$w/run/gpu-stage" -name '.*')" ] || hk_fail "$1: a temporary file is left: $(ls -a "$w/run/gpu-stage")"
	gs devices --inventory --output "$w/run/gpu-stage/new.json" --timeout "${NVML_TIMEOUT:-60}"
	[ "$RC" = 1 ] && [ ! -e "$w/run/gpu-stage/new.json" ] || hk_fail "$1: a new file was written"
}
cp "$w/good.json" "$INV"
nvml_fails "init failure" NVML_INIT_ERROR=9 "gpu-stage-nvml: $NVML: nvmlInit_v2: Driver Not Loaded (NVML error 9)"
grep -qF "gpu-stage-nvml failed (exit status 1; its message is above): nothing written" "$w/err" || hk_fail "init failure: $(cat "$w/err")"
nvml_fails "UUID without a NUL" NVML_LONG_UUID=1 "nvmlDeviceGetUUID: not a UUID"
nvml_fails "another driver" NVML_DRIVER=535.274.02 "reports driver 535.274.02, the staged library is $VER's: nothing written"
: >"$CTL"
hk_ok "NVML init failure, an unterminated UUID, another driver's NVML: exit 1 with the reason, the old file kept, nothing new written"
# a GPU that never answers: the helper is killed at --timeout, not waited for
t0=$(date +%s)
NVML_TIMEOUT=1 nvml_fails "hung NVML" NVML_HANG=600 "gpu-stage-nvml gave no answer within 1 s (NVML hangs"
[ $(($(date +%s) - t0)) -lt 30 ] || hk_fail "hung NVML: two runs with --timeout 1 took $(($(date +%s) - t0)) s"
pgrep -x gpu-stage-nvml >/dev/null && hk_fail "hung NVML: a gpu-stage-nvml is left running: $(pgrep -a -x gpu-stage-nvml)"
: >"$CTL"
hk_ok "a hung NVML: the helper killed after --timeout 1, exit 1 naming it, the old file kept, no helper left"

# ---- usage -----------------------------------------------------------------------
for a in "--inventory --ensure" "--inventory --dev-root /dev" "--output /x" "--inventory --bogus" \
	"--timeout 5" "--inventory --timeout 0" "--inventory --timeout 3601" "--inventory --timeout 5s" \
	"--inventory --timeout=" "--inventory --timeout -1" "--inventory --timeout 99999999999999999999"; do
	# shellcheck disable=SC2086
	gs devices $a
	[ "$RC" = 2 ] || hk_fail "devices $a: exit $RC"
done
gs devices --inventory --output relative.json
[ "$RC" = 1 ] && grep -qF "relative.json: the inventory must be an absolute path" "$w/err" || hk_fail "relative --output: $RC $(cat "$w/err")"
gs devices --help
grep -q -- '--inventory' "$w/out" || hk_fail "devices --help does not name --inventory"
hk_ok "usage: --inventory with --ensure/--dev-root, --output or --timeout alone, a --timeout of 0, 3601, 5s, empty, -1 or 20 digits, unknown options exit 2; a relative --output refused; --help"
