#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# CVE-2024-0132 / CVE-2025-23359 (libnvidia-container): a symlink in the
# image swapped between the injector's check and its mount made the host's
# / appear in the container.  Raced for real here: while containers start
# through gpu-stage-hook in runc, fixtures/flipper swaps, as fast as the
# kernel allows (renameat2 RENAME_EXCHANGE), each of the hook's targets in
# the rootfs with a symlink to the host's / or to a host sentinel
# directory: /run/gpu-stage, /run, /etc/ld.so.cache, /etc/ld.so.conf.d,
# /usr/bin/nvidia-smi, /lib/firmware, the vdpau library directory,
# /usr/local/bin (read-only roots); hooks by hand and added by gpu-runtime.
# Every start ends in a refusal naming its reason or in a started container
# (the image's own flipping may hide the driver from it afterwards: its
# business; some must load it); in none does the container see the host's / (a host-only mark under any of its
# mount points) or the sentinel directory, the sentinel is never written,
# and the host's mount table is unchanged after each round.  A control
# binds the host's / in and must be seen.
#
# GS_RACE_STARTS (default 24) starts per configuration, three at a time.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_cves_race.sh
FLIP=$(hk_abs "$HK_BUILD/fixtures/flipper")
[ -x "$FLIP" ] || FLIP=$PWD/build/fixtures/flipper
[ -x "$FLIP" ] || hk_skip "fixtures/flipper is not built (make)"
hk_shim
jq -n --arg s "$HK_STORE" --arg a "$HK_AUDIT" --arg d "$HK_DEV" --arg p "$HK_PROC" \
	'{store: $s, audit_log: $a, dev_root: $d, proc_root: $p}' >"$HK_WORK/shim.json"
STARTS=${GS_RACE_STARTS:-24}
FLIPPERS=()
race_cleanup() {
	local p
	for p in "${FLIPPERS[@]}"; do kill "$p" 2>/dev/null || true; done
	hk_cleanup
}
trap race_cleanup EXIT

SENT=$HK_WORK/sentinel
mkdir -p "$SENT"
echo "host-only $$" >"$SENT/hostmark"
echo "host-only $$" >"$SENT/ld.so.cache"
sent_state() { (cd "$SENT" && find . -printf '%p %y %s %m %T@ %C@\n' | sort && sha256sum ./*); }
SENT_BEFORE=$(sent_state)

# the container: is the host's / (its $SENT/hostmark) or the sentinel
# directory under any mount point; does it have the driver
SCRIPT='while read -r _ _ _ _ mp _; do [ -e "$mp@SENT@/hostmark" ] && echo "HOSTROOT $mp"; [ -e "$mp/hostmark" ] && echo "SENTDIR $mp"; done </proc/self/mountinfo
/opt/gs-probe libcuda.so.1 >/dev/null 2>&1 && echo PROBE_OK; true'
SCRIPT=${SCRIPT//@SENT@/$SENT}

total=0 refused=0 confined=0 loaded=0
# the control: the check sees the host's / when it is there (bound at /h)
hk_bundle control
hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=void"]' "$SCRIPT"
jq '.mounts += [{destination: "/h", type: "bind", source: "/", options: ["rbind", "ro"]}]' "$HK_B/config.json" >"$HK_B/c" &&
	mv "$HK_B/c" "$HK_B/config.json"
hk_runc "$HK_B" gs-race-$$-control </dev/null || hk_fail "control: the start failed: $(cat "$HK_WORK/gs-race-$$-control.out")"
grep -q '^HOSTROOT /h$' "$HK_WORK/gs-race-$$-control.out" ||
	hk_fail "control: the host's / bound at /h was not seen: $(cat "$HK_WORK/gs-race-$$-control.out")"
# ROUND NAME STAGE RO SETUP NAME TARGET [NAME TARGET]...: one bundle, the
# flipper at the given names, STARTS starts three at a time
round() {
	local name=$1 stage=$2 ro=$3 setup=$4 mounts pid i j id out audit0 started0
	shift 4
	hk_bundle "r$total"
	(cd "$HK_B/rootfs" && eval "$setup") || hk_fail "$name: setting up the image failed"
	hk_config "$HK_B" "${stage#shim-}" "$ro" '["NVIDIA_VISIBLE_DEVICES=0","NVIDIA_DRIVER_CAPABILITIES=all"]' "$SCRIPT"
	if [ "$stage" = shim-createRuntime ]; then # gpu-runtime adds the hook itself
		jq 'del(.hooks)' "$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"
	fi
	mounts=$(hk_mounts)
	audit0=$(audit_ok)
	started0=$confined
	"$FLIP" "$HK_B/rootfs" "$@" 2>"$HK_WORK/flip-$total.err" &
	pid=$!
	FLIPPERS+=("$pid")
	for ((i = 0; i < STARTS; i += 3)); do
		for j in 0 1 2; do
			id=gs-race-$$-$total-$i-$j
			HK_CTRS+=("$id")
			{ start "$stage" "$id" </dev/null; echo "RUNC_EXIT $?" >>"$HK_WORK/$id.out"; } &
		done
		wait_runs
	done
	kill "$pid"
	wait "$pid" || hk_fail "$name: the flipper swapped nothing: $(cat "$HK_WORK/flip-$total.err")"
	for ((i = 0; i < STARTS; i += 3)); do
		for j in 0 1 2; do
			out=$HK_WORK/gs-race-$$-$total-$i-$j.out
			if grep -E '^(HOSTROOT|SENTDIR) ' "$out"; then hk_fail "$name: the host's / or the sentinel reached the container"; fi
			grep -q '^PROBE_OK$' "$out" && loaded=$((loaded + 1))
			if grep -q '^RUNC_EXIT 0$' "$out"; then
				confined=$((confined + 1))
			elif grep -q 'gpu-stage-hook: ' "$out"; then
				refused=$((refused + 1))
			else
				hk_fail "$name: a start failed without the hook's reason: $(cat "$out")"
			fi
		done
	done
	# every started container went through the hook (its "ok" record)
	[ $(($(audit_ok) - audit0)) -ge $((confined - started0)) ] ||
		hk_fail "$name: $((confined - started0)) started but only $(($(audit_ok) - audit0)) ok records: did the hook run?"
	[ "$(hk_mounts)" = "$mounts" ] || hk_fail "$name: the host's mount table changed: $(diff <(echo "$mounts") <(hk_mounts))"
	[ "$(sent_state)" = "$SENT_BEFORE" ] || hk_fail "$name: the host's sentinel changed: $(diff <(echo "$SENT_BEFORE") <(sent_state))"
	total=$((total + 1))
	hk_ok "CVE-2024-0132/CVE-2025-23359: $name: $STARTS starts, $(sed -n 's/^flipper: //p' "$HK_WORK/flip-$((total - 1)).err"); host's / never visible, host mounts unchanged"
}
audit_ok() { [ -e "$HK_AUDIT" ] && jq -c 'select(.result == "ok")' "$HK_AUDIT" | wc -l || echo 0; }
start() { # STAGE ID: by hand, or through gpu-runtime
	if [ "$1" = shim-createRuntime ]; then
		(cd "$HK_B" && GPU_STAGE_CONFIG=$HK_WORK/shim.json GPU_STAGE_RUNTIME=runc timeout 120 "$SHIM" run "$2") \
			>"$HK_WORK/$2.out" 2>&1
	else
		hk_runc "$HK_B" "$2"
	fi
}
# (wait for the three starts of a batch; a start's own status is judged
# from its output)
wait_runs() { local p; for p in $(jobs -pr); do [ "$p" = "${FLIPPERS[-1]}" ] || wait "$p" || true; done; }

# Directories that come from the image's lower layer cannot be renamed on
# overlayfs (EXDEV without redirect_dir): each is first made again in the
# upper layer, with its contents.
fresh='for d in run etc/ld.so.conf.d usr/lib/firmware usr/lib/x86_64-linux-gnu/vdpau usr/local/bin; do
	mkdir -p $d && cp -a $d $d.gs-new && rm -rf $d && mv $d.gs-new $d; done; mkdir -p run/gpu-stage; touch usr/bin/nvidia-smi'
round "targets flipped to the host's / (prestart)" prestart false "$fresh" \
	run/gpu-stage / etc/ld.so.conf.d / usr/bin/nvidia-smi / usr/lib/firmware / usr/lib/x86_64-linux-gnu/vdpau /
round "targets flipped to a host directory (createRuntime)" createRuntime false "$fresh" \
	run/gpu-stage "$SENT" etc/ld.so.cache "$SENT/ld.so.cache" etc/ld.so.conf.d "$SENT" \
	usr/bin/nvidia-smi "$SENT/hostmark" usr/lib/firmware "../../../../../../..$SENT"
round "/run flipped to the host's / and ../ chains (prestart)" prestart false "$fresh" \
	run / etc/ld.so.conf.d "../../../../../../.." usr/lib/x86_64-linux-gnu/vdpau "/proc/self/root/"
round "read-only root: /run, /usr/local/bin, /etc/ld.so.cache flipped (createRuntime)" createRuntime true "$fresh" \
	run / usr/local/bin "$SENT" etc/ld.so.cache "$SENT/ld.so.cache"
round "through gpu-runtime: targets flipped to the host's / and a host directory" shim-createRuntime false "$fresh" \
	run/gpu-stage / etc/ld.so.cache "$SENT/ld.so.cache" etc/ld.so.conf.d "$SENT" usr/bin/nvidia-smi /
[ "$loaded" -gt 0 ] || hk_fail "no container loaded the driver in $total rounds: the race never let one through"
echo "hook_cves_race.sh: $((total * STARTS)) starts in $total rounds: $confined started ($loaded loaded libcuda.so.1 while the flipping went on), $refused refused; the host's / never reached a container"
