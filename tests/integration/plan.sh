#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage plan is the hook's dry run: for a bundle (root read-only and
# writable, capabilities all, an annotation) and for --rootfs DIR --env K=V,
# its output is byte for byte what gpu-stage-hook --dry-run prints for the
# same container; --json is the "plan" of the audit record a real start
# through the hook writes (less what applying adds: status,
# actual_destination, note, ldcache).  It writes nothing (the image's upper
# directory and the store are unchanged), a container that asks for no GPU
# gets "nothing", and a wrong command line is exit 2.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup plan.sh

OPTS=(--store "$HK_STORE" --dev-root "$HK_DEV" --proc-root "$HK_PROC")
dry() { # BUNDLE: the hook's dry run
	printf '{"ociVersion": "1.0.2", "id": "plan-%s", "status": "creating", "pid": 1, "bundle": "%s"}' "$$" "$1" |
		"$HK_HOOK" "${OPTS[@]}" --dry-run createRuntime
}
same() { # WHAT: the hook's dry run ($HK_WORK/dry) and plan ($HK_WORK/plan) are equal
	[ -s "$HK_WORK/dry" ] || hk_fail "$1: the hook's dry run printed nothing"
	grep -q '^bind-dir ' "$HK_WORK/dry" || hk_fail "$1: no bind-dir in the dry run: $(cat "$HK_WORK/dry")"
	cmp -s "$HK_WORK/dry" "$HK_WORK/plan" || hk_fail "$1: plan differs from the hook's dry run: $(diff "$HK_WORK/dry" "$HK_WORK/plan" | head -20)"
}

hk_bundle b1
before=$(cd "$HK_WORK/b1/up" && find . | sort)
store_before=$(cd "$HK_STORE" && find . -printf '%p %m %s %T@\n' | sort)
for ro in true false; do
	for env in '["NVIDIA_VISIBLE_DEVICES=0"]' '["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=all"]' '["NVIDIA_VISIBLE_DEVICES=none", "NVIDIA_DRIVER_CAPABILITIES=utility"]'; do
		hk_config "$HK_B" createRuntime "$ro" "$env" true
		dry "$HK_B" >"$HK_WORK/dry" || hk_fail "the hook's dry run failed for $env"
		"$HK_GS" plan --bundle "$HK_B" "${OPTS[@]}" >"$HK_WORK/plan" || hk_fail "gpu-stage plan failed for $env"
		same "bundle, read-only root $ro, $env"
	done
done
grep -q 'read-only root' "$HK_WORK/plan" && hk_fail "the last plan (root.readonly false) says read-only"
# an annotation overrides the image's variables, in both
jq '.annotations = {"gpu-stage.visible-devices": "1"}' "$HK_B/config.json" >"$HK_B/c.new" && mv "$HK_B/c.new" "$HK_B/config.json"
dry "$HK_B" >"$HK_WORK/dry" && "$HK_GS" plan --bundle "$HK_B" "${OPTS[@]}" >"$HK_WORK/plan" || hk_fail "annotation: a run failed"
same "annotation gpu-stage.visible-devices=1"
grep -q '^mknod .*/dev/nvidia1 ' "$HK_WORK/plan" || hk_fail "annotation: /dev/nvidia1 not in the plan: $(cat "$HK_WORK/plan")"
hk_ok "plan --bundle equals the hook's dry run (root read-only and writable; GPU 0, all, none; an annotation)"

# --rootfs DIR --env K=V: the same as a bundle whose config.json says so
hk_bundle b2
hk_config "$HK_B" createRuntime false '["NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_DRIVER_CAPABILITIES=compute,video"]' true
jq --arg r "$HK_B/rootfs" '.root.path = $r | .mounts = [.mounts[] | select(.type != "tmpfs")]' "$HK_B/config.json" >"$HK_B/c.new" &&
	mv "$HK_B/c.new" "$HK_B/config.json"
dry "$HK_B" >"$HK_WORK/dry" || hk_fail "the hook's dry run failed (rootfs)"
"$HK_GS" plan --rootfs "$HK_B/rootfs" --env NVIDIA_VISIBLE_DEVICES=1 --env NVIDIA_DRIVER_CAPABILITIES=compute,video "${OPTS[@]}" >"$HK_WORK/plan" ||
	hk_fail "gpu-stage plan --rootfs failed"
same "--rootfs with --env"
# --caps is NVIDIA_DRIVER_CAPABILITIES
"$HK_GS" plan --rootfs "$HK_B/rootfs" --env NVIDIA_VISIBLE_DEVICES=1 --caps compute,video "${OPTS[@]}" >"$HK_WORK/plan" ||
	hk_fail "gpu-stage plan --caps failed"
same "--rootfs with --caps"
hk_ok "plan --rootfs DIR --env K=V (and --caps) equals the hook's dry run for that container"

# --json: the audit record's plan of a real start
hk_bundle b3
hk_config "$HK_B" createRuntime false '["NVIDIA_VISIBLE_DEVICES=0"]' true
"$HK_GS" plan --bundle "$HK_B" "${OPTS[@]}" --json >"$HK_WORK/plan.json" || hk_fail "plan --json failed"
hk_runc "$HK_B" "gs-plan-$$" || hk_fail "the container failed: $(cat "$HK_WORK/gs-plan-$$.out")"
tail -n 1 "$HK_AUDIT" | jq -S '.plan | del(.ldcache) | .operations |= map(del(.status, .actual_destination, .note))' >"$HK_WORK/rec.plan"
jq -S . "$HK_WORK/plan.json" >"$HK_WORK/plan.plan"
[ "$(jq '.operations | length' "$HK_WORK/rec.plan")" -ge 5 ] || hk_fail "the record's plan has few operations: $(cat "$HK_WORK/rec.plan")"
cmp -s "$HK_WORK/rec.plan" "$HK_WORK/plan.plan" ||
	hk_fail "plan --json differs from the record's plan: $(diff "$HK_WORK/rec.plan" "$HK_WORK/plan.plan" | head -20)"
hk_ok "plan --json is the audit record's plan of the same container started through the hook"

# nothing written: not into the image, not into the store
[ "$(cd "$HK_WORK/b1/up" && find . | sort)" = "$before" ] || hk_fail "plan wrote into the image"
[ "$(cd "$HK_STORE" && find . -printf '%p %m %s %T@\n' | sort)" = "$store_before" ] || hk_fail "the store changed"
# no GPU asked for: nothing
"$HK_GS" plan --rootfs "$HK_B/rootfs" "${OPTS[@]}" >"$HK_WORK/plan" || hk_fail "plan without a request failed"
grep -q '^nothing: ' "$HK_WORK/plan" || hk_fail "plan without a request: $(cat "$HK_WORK/plan")"
"$HK_GS" plan --rootfs "$HK_B/rootfs" --env NVIDIA_VISIBLE_DEVICES=void "${OPTS[@]}" --json >"$HK_WORK/plan" || hk_fail "plan void failed"
[ "$(jq .requested "$HK_WORK/plan")" = false ] || hk_fail "plan void --json: $(cat "$HK_WORK/plan")"
# usage errors
for args in "" "--bundle $HK_B --rootfs $HK_B/rootfs" "--rootfs $HK_B/rootfs --env NOEQUALS" "--bundle $HK_B extra"; do
	rc=0
	# shellcheck disable=SC2086
	"$HK_GS" plan $args >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || hk_fail "plan $args: exit $rc, expected 2"
done
rc=0
"$HK_GS" plan --rootfs "$HK_B/rootfs" --env NVIDIA_VISIBLE_DEVICES=0 --store "$HK_WORK/nostore" --dev-root "$HK_DEV" --proc-root "$HK_PROC" 2>"$HK_WORK/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "^gpu-stage: plan: .*nostore" "$HK_WORK/err" || hk_fail "plan with a missing store: exit $rc: $(cat "$HK_WORK/err")"
"$HK_GS" plan --help | grep -q -- '--rootfs DIR' || hk_fail "plan --help"
hk_ok "plan writes nothing; no request: nothing; usage errors exit 2; a missing store exit 1 naming it"
