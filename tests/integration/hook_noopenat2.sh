#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Without openat2 (a seccomp filter makes it fail ENOSYS, as on a kernel
# older than 5.6: fixtures/noopenat2.c) everything that resolves paths
# inside an untrusted root fails closed, with a message naming openat2, and
# changes nothing -- there is no userspace path walk to fall back to:
#   gpu-stage ldcache update --root R DIR   exit 1, R/etc/ld.so.cache untouched
#   gpu-stage --root R ...                  exit 1, nothing staged
#   gpu-stage-hook in runc (prestart, createRuntime, createContainer;
#   writable and read-only root)            the container does not start,
#                                           the image and the host's mount
#                                           table are unchanged, the audit
#                                           record says "failed"
# The same commands without the filter succeed (the control that shows the
# filter, not something else, made them fail).
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_noopenat2.sh
NO=$HK_BUILD/fixtures/noopenat2
[ -x "$NO" ] || NO=build/fixtures/noopenat2
[ -x "$NO" ] || hk_skip "$NO is not built (make)"
NO=$(hk_abs "$NO")
"$NO" true || hk_skip "cannot install a seccomp filter here"
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86
MSG='openat2 with RESOLVE_[A-Z_]* is unavailable'

# ldcache update
R=$HK_WORK/root
mkdir -p "$R/etc" "$R/lib/gs"
cp "$HK_ROOTFS/etc/ld.so.cache" "$R/etc/ld.so.cache"
cp "$R/etc/ld.so.cache" "$HK_WORK/cache.before"
rc=0
"$NO" "$HK_GS" ldcache update --root "$R" /lib/gs >"$HK_WORK/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || hk_fail "ldcache update without openat2: exit $rc, expected 1: $(cat "$HK_WORK/out")"
grep -q "$MSG" "$HK_WORK/out" || hk_fail "ldcache update without openat2: no reason given: $(cat "$HK_WORK/out")"
cmp -s "$HK_WORK/cache.before" "$R/etc/ld.so.cache" || hk_fail "ldcache update without openat2 changed the cache"
[ -z "$(ls -A "$R/etc" | grep -v '^ld.so.cache$')" ] || hk_fail "ldcache update without openat2 left files in $R/etc"
"$HK_GS" ldcache update --root "$R" /lib/gs >"$HK_WORK/out" 2>&1 || hk_fail "control: ldcache update failed: $(cat "$HK_WORK/out")"
hk_ok "ldcache update fails closed (exit 1, cache untouched)"

# staging from a root
rc=0
"$NO" "$HK_GS" --root "$HK_WORK/drv" --store "$HK_WORK/store2" --driver "$HK_VER" >"$HK_WORK/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || hk_fail "staging without openat2: exit $rc, expected 1: $(cat "$HK_WORK/out")"
grep -q "$MSG" "$HK_WORK/out" || hk_fail "staging without openat2: no reason given: $(cat "$HK_WORK/out")"
[ ! -e "$HK_WORK/store2/$HK_VER" ] || hk_fail "staging without openat2 left $HK_WORK/store2/$HK_VER"
hk_ok "staging fails closed (exit 1, nothing staged)"

# the hook, every stage, writable and read-only roots
n=0
for stage in prestart createRuntime createContainer; do
	for ro in false true; do
		n=$((n + 1))
		id=gs-na-$$-$n
		hk_bundle "na$n"
		up=$HK_WORK/na$n/up
		hk_config "$HK_B" "$stage" "$ro" '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
		jq --arg st "$stage" --arg no "$NO" --arg h "$HK_HOOK" \
			'.hooks[$st][0] |= (.path = $no | .args = ["noopenat2", $h] + .args[1:])' \
			"$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"
		before_up=$(cd "$up" && find . | sort)
		before_mnt=$(hk_mounts)
		lines=0
		[ ! -f "$HK_AUDIT" ] || lines=$(wc -l <"$HK_AUDIT")
		if hk_runc "$HK_B" "$id"; then
			hk_fail "$stage, read-only $ro: the container started without openat2: $(tail -c 400 "$HK_WORK/$id.out")"
		fi
		grep -q 'PROBE_OK' "$HK_WORK/$id.out" && hk_fail "$stage, read-only $ro: the container's process ran"
		rec=$(tail -n +$((lines + 1)) "$HK_AUDIT" 2>/dev/null || true)
		{ grep -q "$MSG" "$HK_WORK/$id.out" || echo "$rec" | grep -q "$MSG"; } ||
			hk_fail "$stage, read-only $ro: neither the runtime's output nor the audit record names openat2: $(tail -c 400 "$HK_WORK/$id.out") $rec"
		[ -z "$rec" ] || echo "$rec" | grep -q '"result":"failed"' ||
			hk_fail "$stage, read-only $ro: the audit record does not say failed: ${rec:0:300}"
		runc delete -f "$id" >/dev/null 2>&1 || true
		[ "$(cd "$up" && find . | sort)" = "$before_up" ] ||
			hk_fail "$stage, read-only $ro: the image changed: $(diff <(echo "$before_up") <(cd "$up" && find . | sort))"
		[ "$(hk_mounts)" = "$before_mnt" ] || hk_fail "$stage, read-only $ro: the host's mount table changed"
		hk_ok "$stage, read-only $ro: refused, image and host unchanged"
	done
done
# control: the same bundle without the filter starts and gets the driver
hk_bundle ctl
hk_config "$HK_B" createRuntime true '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
hk_runc "$HK_B" gs-na-$$-ctl || hk_fail "control container failed: $(tail -c 400 "$HK_WORK/gs-na-$$-ctl.out")"
grep -q '^PROBE_OK$' "$HK_WORK/gs-na-$$-ctl.out" || hk_fail "control container did not load libcuda.so.1"
hk_ok "control: with openat2 the same container gets the driver"
