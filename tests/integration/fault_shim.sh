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
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
source tests/lib.sh
source tests/fault/lib.sh
ft_hk_setup fault_shim.sh
MAX=${GS_FAULT_MAX:-60}
EXTRA=${GS_FAULT_EXTRA:-2}
SHIM=$(hk_abs "$FT_BUILD/gpu-runtime")
export GPU_STAGE_STORE=$HK_STORE GPU_STAGE_RUNTIME=runc
export GPU_STAGE_HOOK_OPTS="--audit-log $HK_AUDIT --dev-root $HK_DEV --proc-root $HK_PROC"


n=0
# run: one `gpu-runtime run`; sets rc, id, cfg (the original config.json)
run() {
	n=$((n + 1))
	id=gs-fault-$$-$n
	hk_bundle "c$n"
	hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=0"]' "$FT_INSIDE"
	jq 'del(.hooks)' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	orig=$(sha256sum <"$HK_B/config.json")
	HK_CTRS+=("$id")
	rc=0
	(cd "$HK_B" && timeout 120 "$SHIM" run "$id") </dev/null >"$HK_WORK/$id.out" 2>&1 || rc=$?
	runc delete -f "$id" >/dev/null 2>&1 || true
	umount "$HK_B/rootfs" 2>/dev/null || true
}

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
want=$(ft_inside "$HK_WORK/$id.out")
for m in LDCONFIG_OK PROBE_OK DEV0; do
	grep -qx "$m" <<<"$want" || hk_fail "the clean run lacks the driver ($m): $(cat "$HK_WORK/$id.out")"
done
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
	ft_no_sanitizer "$what" "$out"
	if ! func=$(ft_fired_func gpu-runtime "$SHIM"); then
		nunreached=$((nunreached + 1))
		continue
	fi
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
	ft_two_outcomes "$what" "$rc" "$out" "$want" 'gpu-runtime: |gpu-stage-hook: ' "$call" "$err" "$func"
	[ "$rc" -eq 0 ] && nok=$((nok + 1)) || nfail=$((nfail + 1))
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
