#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Who may ask for GPUs (issue 14): the configuration's "requests".
# - "env" (the default): the container's NVIDIA_VISIBLE_DEVICES asks, and so
#   does the annotation gpu-stage.visible-devices alone (through gpu-runtime
#   in real runc: GPU 1 only, granted_by names the annotation);
# - "orchestrator": an image that bakes NVIDIA_VISIBLE_DEVICES=all (and
#   NVIDIA_DRIVER_CAPABILITIES=all) gets nothing: gpu-runtime leaves its
#   config.json byte for byte, and the hook registered by hand gives nothing
#   (no /run/gpu-stage, no node) and writes one audit line "ignored" with the
#   reason; with the annotation "0" the same image gets GPU 0 only and the
#   configuration's capabilities (utility,compute), not the image's "all",
#   or the annotation's gpu-stage.driver-capabilities when given.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_requests.sh
hk_shim
w=$HK_WORK
conf() { # REQUESTS: a configuration file with the test's roots
	jq -n --arg s "$HK_STORE" --arg a "$HK_AUDIT" --arg d "$HK_DEV" --arg p "$HK_PROC" --arg r "$1" \
		'{store: $s, audit_log: $a, dev_root: $d, proc_root: $p, requests: $r}' >"$w/config.json"
}
script='cat /dev/nvidia0 2>&1 | sed "s/^/DEV0 /"; cat /dev/nvidia1 2>&1 | sed "s/^/DEV1 /"
[ -e /run/gpu-stage/lib ] && echo HAS_DRIVER; ls /run/gpu-stage/lib 2>/dev/null | tr "\n" " " | sed "s/^/CAPS /"; echo'
bundle() { # NAME ENV-JSON ANNOTATIONS-JSON
	hk_bundle "$1"
	jq --arg sc "$script" --argjson env "$2" --argjson ann "$3" '.process.terminal = false |
		.process.args = ["sh", "-c", $sc] | .process.env += $env | .annotations = $ann' \
		"$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"
	HK_CTRS+=("$1")
}
via_shim() { # NAME
	(cd "$HK_B" && GPU_STAGE_CONFIG=$w/config.json GPU_STAGE_RUNTIME=runc timeout 120 "$SHIM" run "$1") \
		>"$w/$1.out" 2>&1 || hk_fail "$1: runc run through the shim failed: $(cat "$w/$1.out")"
}
last_audit() { tail -n 1 "$HK_AUDIT"; }
image_env='["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=all"]'

# ---- "env" ------------------------------------------------------------------------
conf env
bundle annonly '[]' '{"gpu-stage.visible-devices": "1"}'
via_shim annonly
grep -q '^DEV1 .*No such device or address' "$w/annonly.out" && grep -q '^DEV0 .*No such file' "$w/annonly.out" ||
	hk_fail "env: the annotation alone did not give GPU 1 only: $(cat "$w/annonly.out")"
last_audit | jq -e '.result == "ok" and (.granted_by | test("annotation"))' >/dev/null ||
	hk_fail "env: the audit record does not name the annotation: $(last_audit | head -c 300)"
hk_ok "requests env: the annotation alone asks (GPU 1 only), granted_by says so"

# ---- "orchestrator" -------------------------------------------------------------------
conf orchestrator
bundle baked "$image_env" '{}'
cp "$HK_B/config.json" "$w/baked.orig"
via_shim baked
cmp -s "$HK_B/config.json" "$w/baked.orig" || hk_fail "orchestrator: gpu-runtime edited the config.json of an image-only request"
if grep -q '^HAS_DRIVER' "$w/baked.out" || grep -q '^DEV0 .*No such device or address' "$w/baked.out"; then
	hk_fail "orchestrator: the image's variable got a GPU through the shim: $(cat "$w/baked.out")"
fi
# the hook registered by hand (as a hooks.d file does for every container)
bundle baked2 "$image_env" '{}'
jq --arg h "$HK_HOOK" --arg c "$w/config.json" '.hooks = {createRuntime: [{path: $h, env: [],
	args: ["gpu-stage-hook", "--config", $c, "createRuntime"]}]}' "$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"
n0=$(wc -l <"$HK_AUDIT")
hk_runc "$HK_B" baked2 || hk_fail "orchestrator: the hook failed an image-only request: $(cat "$w/baked2.out")"
if grep -q '^HAS_DRIVER' "$w/baked2.out" || grep -q '^DEV0 .*No such device or address' "$w/baked2.out"; then
	hk_fail "orchestrator: the hook gave the image's request a GPU: $(cat "$w/baked2.out")"
fi
[ "$(wc -l <"$HK_AUDIT")" -eq $((n0 + 1)) ] || hk_fail "orchestrator: not exactly one audit line for the ignored request"
last_audit | jq -e '.result == "ignored" and (.reason | test("orchestrator"))' >/dev/null ||
	hk_fail "orchestrator: the audit line does not say ignored and why: $(last_audit)"
hk_ok "requests orchestrator: NVIDIA_VISIBLE_DEVICES=all baked into the image gets nothing (shim and hook), one audit line says why"

bundle granted "$image_env" '{"gpu-stage.visible-devices": "0"}'
via_shim granted
grep -q '^DEV0 .*No such device or address' "$w/granted.out" && grep -q '^DEV1 .*No such file' "$w/granted.out" ||
	hk_fail "orchestrator: the annotation did not give GPU 0 only: $(cat "$w/granted.out")"
grep -q '^CAPS compute utility $' "$w/granted.out" || hk_fail "orchestrator: the image's capabilities counted: $(grep CAPS "$w/granted.out")"
last_audit | jq -e '.result == "ok" and (.granted_by | test("annotation")) and .plan.capabilities == "utility,compute"' >/dev/null ||
	hk_fail "orchestrator: the audit record: $(last_audit | head -c 400)"
bundle granted2 "$image_env" '{"gpu-stage.visible-devices": "0", "gpu-stage.driver-capabilities": "utility"}'
via_shim granted2
grep -q '^CAPS utility $' "$w/granted2.out" || hk_fail "orchestrator: the annotation's capabilities were not used: $(grep CAPS "$w/granted2.out")"
hk_ok "requests orchestrator: the annotation gives GPU 0 only, with the configuration's or the annotation's capabilities, never the image's"
echo "hook_requests.sh: all cases passed"
