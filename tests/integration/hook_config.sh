#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The configuration file (issue 14's first part), read by the hook
# (--config FILE), the CLI and gpu-runtime (GPU_STAGE_CONFIG), in real
# `runc run`s:
# - the hook with only --config runs from the file's store, audit log,
#   dev and proc roots; its "capabilities" apply to a container that names
#   none; a flag overrides the file;
# - a broken file (unknown key, wrong type) fails a GPU container with
#   FILE:LINE and the key, and never a container that asks for no GPU; a
#   --config file that is missing fails it, naming the file;
# - gpu-stage list/stage take the store and the driver from
#   GPU_STAGE_CONFIG, flags override, a broken file fails them with
#   FILE:LINE, `ldcache dump` never reads it;
# - gpu-runtime execs the file's "runtime", hands the hook --config, and
#   with a broken file refuses GPU containers only.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source fixtures/hook_lib.sh
hk_setup hook_config.sh
SHIM=$(hk_abs "${GS_BUILD:-build}/gpu-runtime")
[ -x "$SHIM" ] || hk_skip "$SHIM is not built (make)"
C=$HK_WORK/config.json
n=0

# bundle_with HOOKARGS-JSON ENV-JSON SCRIPT: a bundle whose prestart hook
# is gpu-stage-hook with exactly these arguments
bundle_with() {
	n=$((n + 1))
	hk_bundle "cfg$n"
	jq --arg hook "$HK_HOOK" --argjson args "$1" --argjson env "$2" --arg sc "$3" '
		.root.readonly = false | .process.terminal = false |
		.process.env += $env | .process.args = ["sh", "-c", $sc] |
		.hooks = {prestart: [{path: $hook, env: [], args: (["gpu-stage-hook"] + $args + ["prestart"])}]}' \
		"$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"
	ID=gs-cfg-$$-$n
}

cat >"$C" <<EOF
{
  "store": "$HK_STORE",
  "audit_log": "$HK_WORK/cfg-audit.log",
  "dev_root": "$HK_DEV",
  "proc_root": "$HK_PROC"
}
EOF
bundle_with "[\"--config\", \"$C\"]" '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
hk_runc "$HK_B" "$ID" || hk_fail "hook with --config only: $(cat "$HK_WORK/$ID.out")"
hk_check_inside "$ID" "hook with --config only"
[ "$(wc -l <"$HK_WORK/cfg-audit.log")" -eq 1 ] || hk_fail "the file's audit_log got no record"
hk_ok "the hook with only --config: store, audit log, dev and proc roots from the file"

jq '. + {capabilities: "utility"}' "$C" >"$C.new" && mv "$C.new" "$C"
bundle_with "[\"--config\", \"$C\"]" '["NVIDIA_VISIBLE_DEVICES=none"]' \
	'test -e /run/gpu-stage/lib/utility && ! test -e /run/gpu-stage/lib/compute && echo CAPS_UTILITY_ONLY'
hk_runc "$HK_B" "$ID" || hk_fail "capabilities from the file: $(cat "$HK_WORK/$ID.out")"
grep -q CAPS_UTILITY_ONLY "$HK_WORK/$ID.out" || hk_fail "the file's capabilities were not the default: $(cat "$HK_WORK/$ID.out")"
bundle_with "[\"--config\", \"$C\"]" '["NVIDIA_VISIBLE_DEVICES=none", "NVIDIA_DRIVER_CAPABILITIES=compute"]' \
	'test -e /run/gpu-stage/lib/compute && echo CAPS_COMPUTE'
hk_runc "$HK_B" "$ID" || hk_fail "container capabilities over the file's: $(cat "$HK_WORK/$ID.out")"
grep -q CAPS_COMPUTE "$HK_WORK/$ID.out" || hk_fail "the container's NVIDIA_DRIVER_CAPABILITIES did not win: $(cat "$HK_WORK/$ID.out")"
hk_ok "the file's capabilities apply to containers that name none, never over theirs"

jq --arg s "$HK_WORK/no-such-store" '.store = $s' "$C" >"$HK_WORK/c2.json"
bundle_with "[\"--config\", \"$HK_WORK/c2.json\", \"--store\", \"$HK_STORE\"]" '["NVIDIA_VISIBLE_DEVICES=none"]' 'echo STARTED'
hk_runc "$HK_B" "$ID" || hk_fail "--store over the file's store: $(cat "$HK_WORK/$ID.out")"
bundle_with "[\"--config\", \"$HK_WORK/c2.json\"]" '["NVIDIA_VISIBLE_DEVICES=none"]' 'echo STARTED'
if hk_runc "$HK_B" "$ID"; then hk_fail "the file's store (missing) was not used"; fi
grep -q "no-such-store" "$HK_WORK/$ID.out" || hk_fail "the error does not name the file's store: $(cat "$HK_WORK/$ID.out")"
hk_ok "a flag overrides the file"

printf '{\n  "store": "%s",\n  "stroe": "/x"\n}\n' "$HK_STORE" >"$HK_WORK/bad.json"
bundle_with "[\"--config\", \"$HK_WORK/bad.json\"]" '["NVIDIA_VISIBLE_DEVICES=none"]' 'echo STARTED'
if hk_runc "$HK_B" "$ID"; then hk_fail "a GPU container started with a broken configuration"; fi
# (runc escapes the quotes of a hook's message)
grep -qE 'bad\.json:3: \\?"stroe\\?": unknown key' "$HK_WORK/$ID.out" || hk_fail "no FILE:LINE: key in: $(cat "$HK_WORK/$ID.out")"
bundle_with "[\"--config\", \"$HK_WORK/bad.json\"]" '[]' 'echo STARTED'
hk_runc "$HK_B" "$ID" || hk_fail "a container without a GPU failed on the broken configuration: $(cat "$HK_WORK/$ID.out")"
grep -q STARTED "$HK_WORK/$ID.out" || hk_fail "the non-GPU container did not run"
printf '{\n  "dev_root": 7\n}\n' >"$HK_WORK/bad2.json"
bundle_with "[\"--config\", \"$HK_WORK/bad2.json\"]" '["NVIDIA_VISIBLE_DEVICES=none"]' 'echo STARTED'
if hk_runc "$HK_B" "$ID"; then hk_fail "a wrong type was accepted"; fi
grep -qE 'bad2\.json:2: \\?"dev_root\\?": must be a string' "$HK_WORK/$ID.out" || hk_fail "wrong type: $(cat "$HK_WORK/$ID.out")"
bundle_with "[\"--config\", \"$HK_WORK/missing.json\"]" '["NVIDIA_VISIBLE_DEVICES=none"]' 'echo STARTED'
if hk_runc "$HK_B" "$ID"; then hk_fail "a missing --config file was taken as defaults"; fi
grep -q "missing.json" "$HK_WORK/$ID.out" || hk_fail "the missing file is not named: $(cat "$HK_WORK/$ID.out")"
hk_ok "broken or missing configuration: GPU containers refused with FILE:LINE and the key; others start"

# the hook reads the configuration and opens the store before the state
# (while runc writes it): a store that fails there counts only for a
# request that stands, not for one that "requests": "orchestrator" ignores
printf '{"requests": "orchestrator", "store": "%s", "driver": "%s"}\n' "$HK_WORK/no-such-store" "$HK_VER" >"$HK_WORK/orch.json"
bundle_with "[\"--config\", \"$HK_WORK/orch.json\"]" '["NVIDIA_VISIBLE_DEVICES=0"]' 'echo STARTED'
hk_runc "$HK_B" "$ID" || hk_fail "an ignored request failed on the store: $(cat "$HK_WORK/$ID.out")"
grep -q STARTED "$HK_WORK/$ID.out" || hk_fail "the container with an ignored request did not run"
bundle_with "[\"--config\", \"$HK_WORK/orch.json\"]" '[]' 'echo STARTED'
jq '.annotations["gpu-stage.visible-devices"] = "none"' "$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"
if hk_runc "$HK_B" "$ID"; then hk_fail "the orchestrator's request started without its store"; fi
grep -q "no-such-store" "$HK_WORK/$ID.out" || hk_fail "the store's error is not the one reported: $(cat "$HK_WORK/$ID.out")"
hk_ok "orchestrator mode: the image's request ignored whatever the store; the annotation's fails on it"

# the CLI
export GPU_STAGE_CONFIG=$C
"$HK_GS" list >"$HK_WORK/list.out" 2>&1 || hk_fail "gpu-stage list with the file's store: $(cat "$HK_WORK/list.out")"
grep -q "$HK_VER" "$HK_WORK/list.out" || hk_fail "gpu-stage list did not use the file's store: $(cat "$HK_WORK/list.out")"
"$HK_GS" list --store "$HK_WORK/empty-store" >"$HK_WORK/list2.out" 2>&1 || true
grep -q "$HK_VER" "$HK_WORK/list2.out" && hk_fail "--store did not override the file"
jq '. + {driver: "535.261.03"}' "$C" >"$HK_WORK/c3.json"
GPU_STAGE_CONFIG=$HK_WORK/c3.json "$HK_GS" --root "$HK_WORK/drv" --caps all >"$HK_WORK/stage.out" 2>&1 ||
	hk_fail "gpu-stage with the file's driver and store: $(cat "$HK_WORK/stage.out")"
grep -q "unchanged: driver $HK_VER in $HK_STORE/$HK_VER" "$HK_WORK/stage.out" || hk_fail "gpu-stage did not take the file's store and driver: $(cat "$HK_WORK/stage.out")"
if GPU_STAGE_CONFIG=$HK_WORK/bad.json "$HK_GS" list >"$HK_WORK/list3.out" 2>&1; then hk_fail "gpu-stage list ran with a broken file"; fi
grep -q "bad.json:3: \"stroe\": unknown key" "$HK_WORK/list3.out" || hk_fail "gpu-stage: $(cat "$HK_WORK/list3.out")"
if GPU_STAGE_CONFIG=$HK_WORK/missing.json "$HK_GS" list >/dev/null 2>&1; then hk_fail "a missing GPU_STAGE_CONFIG file was taken as defaults"; fi
GPU_STAGE_CONFIG=$HK_WORK/bad.json "$HK_GS" ldcache dump /etc/ld.so.cache >/dev/null ||
	hk_fail "ldcache dump depends on the configuration file"
hk_ok "gpu-stage: store and driver from GPU_STAGE_CONFIG, flags over it, FILE:LINE errors, ldcache independent"

# gpu-runtime
cat >"$HK_WORK/fake-runtime" <<EOF
#!/bin/sh
printf '%s\n' "\$@" >"$HK_WORK/fake.argv"
EOF
chmod +x "$HK_WORK/fake-runtime"
jq --arg rt "$HK_WORK/fake-runtime" '. + {runtime: $rt}' "$C" >"$HK_WORK/c4.json"
rb=$HK_WORK/rtb
mkdir -p "$rb/rootfs"
jq -n '{ociVersion: "1.0.2", root: {path: "rootfs"}, process: {env: ["NVIDIA_VISIBLE_DEVICES=0"]}}' >"$rb/config.json"
GPU_STAGE_CONFIG=$HK_WORK/c4.json "$SHIM" create --bundle "$rb" c1 || hk_fail "gpu-runtime create with the file's runtime failed"
grep -qx create "$HK_WORK/fake.argv" || hk_fail "gpu-runtime did not exec the file's runtime"
jq -e --arg c "$HK_WORK/c4.json" '.hooks.createRuntime[0].args | index("--config") as $i | $i != null and .[$i + 1] == $c' \
	"$rb/config.json" >/dev/null || hk_fail "the hook was not given --config: $(jq -c .hooks "$rb/config.json")"
jq -n '{ociVersion: "1.0.2", root: {path: "rootfs"}, process: {env: ["A=1"]}}' >"$rb/config.json"
rm -f "$HK_WORK/fake.argv"
GPU_STAGE_RUNTIME=$HK_WORK/fake-runtime GPU_STAGE_CONFIG=$HK_WORK/bad.json "$SHIM" create --bundle "$rb" c2 2>"$HK_WORK/shim.err" ||
	hk_fail "gpu-runtime with a broken file refused a container without a GPU: $(cat "$HK_WORK/shim.err")"
grep -qx create "$HK_WORK/fake.argv" || hk_fail "the non-GPU create did not reach the runtime"
jq -n '{ociVersion: "1.0.2", root: {path: "rootfs"}, process: {env: ["NVIDIA_VISIBLE_DEVICES=0"]}}' >"$rb/config.json"
rm -f "$HK_WORK/fake.argv"
if GPU_STAGE_RUNTIME=$HK_WORK/fake-runtime GPU_STAGE_CONFIG=$HK_WORK/bad.json "$SHIM" create --bundle "$rb" c3 2>"$HK_WORK/shim.err"; then
	hk_fail "gpu-runtime with a broken file let a GPU container through"
fi
grep -q "bad.json:3: \"stroe\": unknown key" "$HK_WORK/shim.err" || hk_fail "gpu-runtime: $(cat "$HK_WORK/shim.err")"
[ ! -e "$HK_WORK/fake.argv" ] || hk_fail "the refused GPU create reached the runtime"
hk_ok "gpu-runtime: the file's runtime, --config handed to the hook, a broken file refuses GPU containers only"
