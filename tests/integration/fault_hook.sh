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
GS_HOOK=${GS_BUILD:-build}/fault/gpu-stage-hook
export GS_HOOK
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
source tests/lib.sh
source tests/fault/lib.sh
ft_setup
hk_setup fault_hook.sh
trap 'hk_cleanup; ft_cleanup' EXIT
MAX=${GS_FAULT_MAX:-70}
EXTRA=${GS_FAULT_EXTRA:-2}
STAGES=${FAULT_STAGES:-createRuntime createContainer}

SCRIPT='ldconfig -p | grep -q "libcuda.so.1 (libc6,x86-64) => /run/gpu-stage/lib/compute/libcuda.so.1" && echo LDCONFIG_OK
/opt/gs-probe libcuda.so.1 >/dev/null 2>&1 && echo PROBE_OK
find /run/gpu-stage -printf "SEE %p %y %m\n" | sort
[ -c /dev/nvidia0 ] && echo DEV0
echo END'

n=0
# start STAGE: one container; sets rc, id, up (the image's upper folder)
start() {
	n=$((n + 1))
	id=gs-fault-$$-$n
	hk_bundle "c$n"
	hk_config "$HK_B" "$1" false '["NVIDIA_VISIBLE_DEVICES=0"]' "$SCRIPT"
	rc=0
	hk_runc "$HK_B" "$id" </dev/null || rc=$?
	runc delete -f "$id" >/dev/null 2>&1 || true
	umount "$HK_B/rootfs" 2>/dev/null || true
	up=$HK_WORK/c$n/up
}

inside() { grep -E '^(LDCONFIG_OK|PROBE_OK|SEE |DEV0|END)' "$HK_WORK/$id.out" || true; }

for stage in $STAGES; do
	before=$(hk_mounts)
	ft_plan
	start "$stage"
	[ "$rc" -eq 0 ] || hk_fail "$stage: the counting start failed: $(cat "$HK_WORK/$id.out")"
	want=$(inside)
	grep -q '^LDCONFIG_OK$' <<<"$want" && grep -q '^PROBE_OK$' <<<"$want" && grep -q '^DEV0$' <<<"$want" ||
		hk_fail "$stage: the clean start lacks the driver: $(cat "$HK_WORK/$id.out")"
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
		if grep -qE 'Sanitizer|runtime error:' "$out"; then
			hk_fail "$what: sanitizer report: $(grep -m 5 -E 'Sanitizer|runtime error:|SUMMARY' "$out")"
		fi
		fired=$(ft_fired gpu-stage-hook)
		if [ -z "$fired" ]; then
			nunreached=$((nunreached + 1))
			continue
		fi
		func=$(ft_func "$HK_HOOK" $(echo "$fired" | awk '{ print $4, $5 }'))
		what="$what (in $func)"
		if [ "$rc" -eq 0 ]; then
			[ "$(inside)" = "$want" ] || hk_fail "$what: the container started without the complete set: $(diff <(echo "$want") <(inside) | head -20)"
			nok=$((nok + 1))
		else
			grep -q 'gpu-stage-hook: ' "$out" || hk_fail "$what: the container did not start and runc shows no message of the hook: $(tail -5 "$out")"
			grep -q '^END$' "$out" && hk_fail "$what: runc failed after the container ran: $(tail -5 "$out")"
			ft_must_retry "$call" "$err" "$func" && hk_fail "$what: $func retries this, yet the container did not start: $(tail -3 "$out")"
			nfail=$((nfail + 1))
		fi
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
