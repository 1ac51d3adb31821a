#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fault injection into gpu-stage-hook (the fault build, tests/fault/) under
# real runc, with the synthetic staged driver (fixtures/hook_lib.sh): a
# counting run of one container start at each hook stage in FAULT_STAGES
# (default createRuntime and createContainer), then each call site's first
# call and a few more per wrapped libc call (at most GS_FAULT_MAX per stage,
# evenly) fail with each errno the call can meet (tests/fault/lib.sh).
# After every injected start:
#   - either the container started with the complete set (the same files
#     under /run/gpu-stage as the clean start, ldconfig -p resolves
#     libcuda.so.1 there, gs-probe dlopens it, /dev/nvidia0 exists), or it
#     did not start and runc reports the hook's "gpu-stage-hook: ..." message;
#   - where the hook retries (EINTR/EAGAIN of openat2, EINTR of flock, a
#     short write) one such failure does not stop the container;
#   - no sanitizer report; no descriptor of the hook open at its exit;
#   - the host's mount table is as before (no mount of ours left);
#   - no temporary file (.NAME.gs-*) left in the image (the overlay's upper
#     folder).
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
source tests/lib.sh
source tests/fault/lib.sh
ft_hk_setup fault_hook.sh
MAX=${GS_FAULT_MAX:-70}
EXTRA=${GS_FAULT_EXTRA:-2}
STAGES=${FAULT_STAGES:-createRuntime createContainer}


n=0
# start STAGE: one container; sets rc, id, up (the image's upper folder)
start() {
	n=$((n + 1))
	id=gs-fault-$$-$n
	hk_bundle "c$n"
	hk_config "$HK_B" "$1" false '["NVIDIA_VISIBLE_DEVICES=0"]' "$FT_INSIDE"
	rc=0
	hk_runc "$HK_B" "$id" </dev/null || rc=$?
	runc delete -f "$id" >/dev/null 2>&1 || true
	umount "$HK_B/rootfs" 2>/dev/null || true
	up=$HK_WORK/c$n/up
}


for stage in $STAGES; do
	before=$(hk_mounts)
	ft_plan
	start "$stage"
	[ "$rc" -eq 0 ] || hk_fail "$stage: the counting start failed: $(cat "$HK_WORK/$id.out")"
	want=$(ft_inside "$HK_WORK/$id.out")
	for m in LDCONFIG_OK PROBE_OK DEV0; do
		grep -qx "$m" <<<"$want" || hk_fail "$stage: the clean start lacks the driver ($m): $(cat "$HK_WORK/$id.out")"
	done
	ft_no_fds gpu-stage-hook "$stage (counting run)"
	report=$(ft_report gpu-stage-hook)
	nsites=$(grep -c '^site ' "$report")
	ncalls=$(grep -c '^call ' "$report")
	ft_points gpu-stage-hook "$EXTRA" | ft_sample "$MAX" >"$HK_WORK/points"
	npoints=0 nok=0 nfail=0 nretried=0 nunreached=0
	declare -A per_err=()
	while read -r call idx err; do
		what="$stage: $call #$idx $err"
		ft_plan gpu-stage-hook "$call" "$idx" "$err"
		start "$stage"
		out=$HK_WORK/$id.out
		ft_no_sanitizer "$what" "$out"
		if ! func=$(ft_fired_func gpu-stage-hook "$HK_HOOK"); then
			nunreached=$((nunreached + 1))
			continue
		fi
		what="$what (in $func)"
		ft_two_outcomes "$what" "$rc" "$out" "$want" 'gpu-stage-hook: ' "$call" "$err" "$func"
		[ "$rc" -eq 0 ] && nok=$((nok + 1)) || nfail=$((nfail + 1))
		ft_must_retry "$call" "$err" "$func" && nretried=$((nretried + 1))
		ft_no_fds gpu-stage-hook "$what"
		[ "$(hk_mounts)" = "$before" ] || hk_fail "$what: the host's mount table changed: $(diff <(echo "$before") <(hk_mounts))"
		tmp=$(find "$up" -name '.*.gs-*' 2>/dev/null)
		[ -z "$tmp" ] || hk_fail "$what: temporary files left in the image: $tmp"
		npoints=$((npoints + 1))
		per_err[$err]=$((${per_err[$err]:-0} + 1))
		chmod -R u+w "$HK_WORK/c$n" 2>/dev/null || true
		rm -rf "$HK_WORK/c$n"
	done <"$HK_WORK/points"
	summary=
	for e in "${!per_err[@]}"; do summary+=" $e=${per_err[$e]}"; done
	unset per_err
	echo "$T: hook $stage: $ncalls calls, $nsites call sites, $npoints injection points ($nok started complete, $nfail refused with the hook's message, $nretried retried, $nunreached not reached);$summary"
	[ "$npoints" -gt 0 ] || hk_fail "$stage: no injection point was reached"
done
exit 0
