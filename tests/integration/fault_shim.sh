#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fault injection into gpu-runtime (the fault build, tests/fault/) in front
# of real runc: a counting `gpu-runtime run` of a bundle without hooks (the
# shim adds the fault build's hook, its sibling), then each call site's
# first call and a few more per wrapped libc call (at most GS_FAULT_MAX,
# evenly) fail with each errno the call can meet (tests/fault/lib.sh).
# After every injected run:
#   - either the container started with the complete set (as the clean
#     run), or it did not start and the output has the shim's
#     "gpu-runtime: ..." (or the hook's) message;
#   - the bundle's config.json is byte for byte the original or the
#     complete rewrite of the clean run, never anything in between (or,
#     when the GPUs could not be read then, that rewrite less the declared
#     devices, as designed: the hook then gives them or says why), and no
#     temporary file is left next to it;
#   - no descriptor reaches runc that the shim opened without O_CLOEXEC,
#     none is open at the shim's exit when it does not exec;
#   - no sanitizer report; where the shim retries, one such failure does
#     not stop the container.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
GS_HOOK=${GS_BUILD:-build}/fault/gpu-stage-hook
export GS_HOOK
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
source tests/lib.sh
source tests/fault/lib.sh
ft_setup
hk_setup fault_shim.sh
trap 'hk_cleanup; ft_cleanup' EXIT
MAX=${GS_FAULT_MAX:-60}
EXTRA=${GS_FAULT_EXTRA:-2}
SHIM=$(hk_abs "$FT_BUILD/gpu-runtime")
export GPU_STAGE_STORE=$HK_STORE GPU_STAGE_RUNTIME=runc
export GPU_STAGE_HOOK_OPTS="--audit-log $HK_AUDIT --dev-root $HK_DEV --proc-root $HK_PROC"

SCRIPT='ldconfig -p | grep -q "libcuda.so.1 (libc6,x86-64) => /run/gpu-stage/lib/compute/libcuda.so.1" && echo LDCONFIG_OK
/opt/gs-probe libcuda.so.1 >/dev/null 2>&1 && echo PROBE_OK
find /run/gpu-stage -printf "SEE %p %y %m\n" | sort
[ -c /dev/nvidia0 ] && echo DEV0
echo END'

n=0
# run: one `gpu-runtime run`; sets rc, id, cfg (the original config.json)
run() {
	n=$((n + 1))
	id=gs-fault-$$-$n
	hk_bundle "c$n"
	hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=0"]' "$SCRIPT"
	jq 'del(.hooks)' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	orig=$(sha256sum <"$HK_B/config.json")
	HK_CTRS+=("$id")
	rc=0
	(cd "$HK_B" && timeout 120 "$SHIM" run "$id") </dev/null >"$HK_WORK/$id.out" 2>&1 || rc=$?
	runc delete -f "$id" >/dev/null 2>&1 || true
	umount "$HK_B/rootfs" 2>/dev/null || true
}

inside() { grep -E '^(LDCONFIG_OK|PROBE_OK|SEE |DEV0|END)' "$HK_WORK/$id.out" || true; }
# the shim's descriptors: at exit, and those runc inherits
shim_fds() {
	local report
	report=$(ft_report gpu-runtime)
	if grep -qE '^(fd|inherit) ' "$report"; then
		hk_fail "$1: descriptors of the shim left open: $(grep -E '^(fd|inherit) ' "$report" | tr '\n' ' ')"
	fi
}

ft_plan
run
[ "$rc" -eq 0 ] || hk_fail "the counting run failed: $(cat "$HK_WORK/$id.out")"
want=$(inside)
grep -q '^LDCONFIG_OK$' <<<"$want" && grep -q '^PROBE_OK$' <<<"$want" ||
	hk_fail "the clean run lacks the driver: $(cat "$HK_WORK/$id.out")"
rewrite=$(sha256sum <"$HK_B/config.json")
rewrite_nodev=$(jq -S 'del(.linux.devices, .linux.resources.devices)' "$HK_B/config.json")
[ "$rewrite" != "$orig" ] || hk_fail "the clean run did not rewrite config.json"
shim_fds "counting run"
report=$(ft_report gpu-runtime)
nsites=$(grep -c '^site ' "$report")
ncalls=$(grep -c '^call ' "$report")
ft_points gpu-runtime "$EXTRA" | ft_sample "$MAX" >"$HK_WORK/points"
npoints=0 nok=0 nfail=0 nretried=0 nunreached=0 nnodev=0
declare -A per_err=()
while read -r call idx err; do
	what="shim: $call #$idx $err"
	ft_plan gpu-runtime "$call" "$idx" "$err"
	run
	out=$HK_WORK/$id.out
	if grep -qE 'Sanitizer|runtime error:' "$out"; then
		hk_fail "$what: sanitizer report: $(grep -m 5 -E 'Sanitizer|runtime error:|SUMMARY' "$out")"
	fi
	fired=$(ft_fired gpu-runtime)
	if [ -z "$fired" ]; then
		nunreached=$((nunreached + 1))
		continue
	fi
	func=$(ft_func "$SHIM" $(echo "$fired" | awk '{ print $4, $5 }'))
	what="$what (in $func)"
	got=$(sha256sum <"$HK_B/config.json")
	if [ "$got" != "$orig" ] && [ "$got" != "$rewrite" ]; then
		# the one designed variant: the GPUs could not be read now, so
		# no device is declared and the hook, at start, gives them or
		# says why (gpu_devices in hook/runtime.c); all else is the rewrite
		[ "$(jq -S 'del(.linux.devices, .linux.resources.devices)' "$HK_B/config.json" 2>/dev/null)" = "$rewrite_nodev" ] ||
			hk_fail "$what: config.json is neither the original nor the complete rewrite: $(head -c 300 "$HK_B/config.json")"
		nnodev=$((nnodev + 1))
	fi
	extra=$(cd "$HK_B" && find . -mindepth 1 -maxdepth 1 ! -name config.json ! -name rootfs)
	[ -z "$extra" ] || hk_fail "$what: left in the bundle: $extra"
	if [ "$rc" -eq 0 ]; then
		[ "$(inside)" = "$want" ] || hk_fail "$what: the container started without the complete set: $(diff <(echo "$want") <(inside) | head -20)"
		nok=$((nok + 1))
	else
		grep -qE 'gpu-runtime: |gpu-stage-hook: ' "$out" || hk_fail "$what: no message of the shim: $(tail -5 "$out")"
		grep -q '^END$' "$out" && hk_fail "$what: failed after the container ran: $(tail -5 "$out")"
		ft_must_retry "$call" "$err" "$func" && hk_fail "$what: $func retries this, yet the run failed: $(tail -3 "$out")"
		nfail=$((nfail + 1))
	fi
	ft_must_retry "$call" "$err" "$func" && nretried=$((nretried + 1))
	shim_fds "$what"
	npoints=$((npoints + 1))
	per_err[$err]=$((${per_err[$err]:-0} + 1))
	chmod -R u+w "$HK_WORK/c$n" 2>/dev/null || true
	rm -rf "$HK_WORK/c$n"
done <"$HK_WORK/points"
summary=
for e in "${!per_err[@]}"; do summary+=" $e=${per_err[$e]}"; done
echo "$T: shim: $ncalls calls, $nsites call sites, $npoints injection points ($nok started complete, $nfail refused with a message, $nretried retried, $nunreached not reached, $nnodev without declared devices: the GPUs unreadable then);$summary"
[ "$npoints" -gt 0 ] || hk_fail "no injection point was reached"
exit 0
