#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# nvidia-uvm (issue 16): a host whose /dev/nvidia-uvm is missing but whose
# /proc/devices lists nvidia-uvm's major.  A compute container through the
# hook in real runc fails to start, with the fix (gpu-stage devices
# --ensure --load) in the message; a utility-only one starts; with the
# configuration's "require_uvm": false a compute one starts (the audit
# record notes the node absent); after `gpu-stage devices --ensure` a
# compute container receives /dev/nvidia-uvm and opening it gives ENXIO
# (a node whose major has no driver), not ENOENT.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source fixtures/hook_lib.sh
hk_setup hook_uvm.sh
rm -f "$HK_DEV/nvidia-uvm" "$HK_DEV/nvidia-uvm-tools"
printf 'Character devices:\n  1 mem\n195 nvidia-frontend\n237 nvidia-uvm\n\nBlock devices:\n  8 sd\n' >"$HK_PROC/devices"
SCRIPT='for d in /dev/nvidia-uvm /dev/nvidia-uvm-tools; do printf "%s " "$d"; (cat "$d" >/dev/null) 2>&1 | grep -q "No such device or address" && echo ENXIO || { [ -e "$d" ] && echo other || echo ENOENT; }; done; echo STARTED'
# run NAME ENVJSON [CONFIG]: a prestart hook (with --config CONFIG when given)
run() {
	hk_bundle "$1"
	hk_config "$HK_B" prestart false "$2" "$SCRIPT"
	if [ -n "${3:-}" ]; then
		jq --arg c "$3" '.hooks.prestart[0].args |= (.[:-1] + ["--config", $c] + .[-1:])' "$HK_B/config.json" >"$HK_B/c.new" &&
			mv "$HK_B/c.new" "$HK_B/config.json"
	fi
	rc=0
	hk_runc "$HK_B" "gs-uvm-$$-$1" || rc=$?
	out=$HK_WORK/gs-uvm-$$-$1.out
}

run compute '["NVIDIA_VISIBLE_DEVICES=0"]'
[ "$rc" -ne 0 ] || hk_fail "a compute container started without /dev/nvidia-uvm: $(cat "$out")"
grep -q "gpu-stage devices --ensure --load" "$out" && grep -q "$HK_DEV/nvidia-uvm" "$out" ||
	hk_fail "the failure does not name the node and the fix: $(cat "$out")"
! grep -q STARTED "$out" || hk_fail "the container's process ran"
hk_ok "compute without /dev/nvidia-uvm: the start fails, naming gpu-stage devices --ensure --load"

run utility '["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=utility"]'
[ "$rc" -eq 0 ] && grep -q STARTED "$out" || hk_fail "a utility-only container failed: $(cat "$out")"
hk_ok "utility only: starts without nvidia-uvm"

printf '{"require_uvm": false}\n' >"$HK_WORK/lenient.json"
run lenient '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_WORK/lenient.json"
[ "$rc" -eq 0 ] && grep -q STARTED "$out" && grep -q '^/dev/nvidia-uvm ENOENT$' "$out" ||
	hk_fail "require_uvm false: the container did not start without uvm: $(cat "$out")"
tail -n 1 "$HK_AUDIT" | jq -e '.result == "ok" and (.devices_note | contains("nvidia-uvm absent"))' >/dev/null ||
	hk_fail "the audit record does not note the absent node: $(tail -n 1 "$HK_AUDIT")"
printf '{"require_uvm": "no"}\n' >"$HK_WORK/bad.json"
run badconf '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_WORK/bad.json"
[ "$rc" -ne 0 ] && grep -q 'bad.json:1: .*require_uvm.*must be true or false' "$out" ||
	hk_fail "a wrong require_uvm value was not refused: $(cat "$out")"
hk_ok "\"require_uvm\": false starts it (audit notes the node absent); a non-boolean is refused with FILE:LINE"

"$HK_GS" devices --ensure --dev-root "$HK_DEV" --proc-root "$HK_PROC" >"$HK_WORK/ensure.out" 2>&1 ||
	hk_fail "gpu-stage devices --ensure: $(cat "$HK_WORK/ensure.out")"
[ "$(stat -c '%t:%T %a' "$HK_DEV/nvidia-uvm")" = "ed:0 666" ] || hk_fail "nvidia-uvm not made 237:0 0666: $(stat -c '%F %t:%T %a' "$HK_DEV/nvidia-uvm")"
run ensured '["NVIDIA_VISIBLE_DEVICES=0"]'
[ "$rc" -eq 0 ] && grep -q STARTED "$out" || hk_fail "after --ensure the compute container failed: $(cat "$out")"
grep -q '^/dev/nvidia-uvm ENXIO$' "$out" && grep -q '^/dev/nvidia-uvm-tools ENXIO$' "$out" ||
	hk_fail "the container does not open nvidia-uvm(-tools) to ENXIO: $(cat "$out")"
tail -n 1 "$HK_AUDIT" | jq -e '[.plan.operations[] | select(.op == "mknod" and .destination == "/dev/nvidia-uvm" and .device == "c 237:0")] | length == 1' >/dev/null ||
	hk_fail "the audit record has no mknod of /dev/nvidia-uvm 237:0: $(tail -n 1 "$HK_AUDIT")"
hk_ok "after gpu-stage devices --ensure: the compute container opens /dev/nvidia-uvm and -tools to ENXIO"
