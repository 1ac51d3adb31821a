#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A read-only image without /etc/ld.so.cache (distroless images are built
# so, and usually run read-only) gets the driver through gpu-runtime
# (issue 14): the shim declares a bind of /dev/null at /etc/ld.so.cache, so
# runc makes the mount point before the root turns read-only, and the hook
# binds the new cache over it.
# - the edit: declared for a read-only root whose image has no cache; not
#   for a writable root, nor when the image has one, nor when /etc or the
#   cache is declared already;
# - real runc: without the shim (the hook registered by hand) such a
#   container is refused with a clear message; through the shim, the
#   container's own `ldconfig -p` lists libcuda.so.1, the probe loads it,
#   and nothing is written into the image but runc's empty mount point.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup shim_rocache.sh
hk_shim env
w=$HK_WORK

# ---- the edit ----------------------------------------------------------------------
b=$w/bundle
placeholder='[.mounts[]? | select(.destination == "/etc/ld.so.cache" and .source == "/dev/null" and .type == "bind")] | length'
edit() { # RO MOUNTS-JSON CACHE(yes|no)
	rm -rf "$b"
	mkdir -p "$b/rootfs/etc"
	[ "$3" = no ] || : >"$b/rootfs/etc/ld.so.cache"
	jq -n --argjson ro "$1" --argjson m "$2" '{ociVersion: "1.0.2", root: {path: "rootfs", readonly: $ro},
		process: {env: ["NVIDIA_VISIBLE_DEVICES=none"]}, mounts: $m}' >"$b/config.json"
	GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "shim: $(cat "$w/out")"
	jq "$placeholder" "$b/config.json"
}
[ "$(edit true '[]' no)" = 1 ] || hk_fail "read-only root without a cache: no /dev/null mount point declared"
[ "$(edit false '[]' no)" = 0 ] || hk_fail "writable root: a mount point was declared"
[ "$(edit true '[]' yes)" = 0 ] || hk_fail "the image has a cache: a mount point was declared"
[ "$(edit true '[{"destination": "/etc", "type": "tmpfs", "source": "tmpfs"}]' no)" = 0 ] || hk_fail "/etc declared: a mount point was declared"
jq -e '.mounts | length == 1' "$b/config.json" >/dev/null || hk_fail "/etc declared: the mounts changed"
# a musl image (its loader reads /etc/ld-musl-x86_64.path): the mount point is that file
mpath='[.mounts[]? | select(.destination == "/etc/ld-musl-x86_64.path" and .source == "/dev/null")] | length'
musl_edit() { # PATHFILE(yes|no)
	rm -rf "$b"
	mkdir -p "$b/rootfs/etc" "$b/rootfs/usr/lib"
	ln -s usr/lib "$b/rootfs/lib" # merged /usr: the loader is reached through a link
	: >"$b/rootfs/usr/lib/ld-musl-x86_64.so.1"
	[ "$1" = no ] || : >"$b/rootfs/etc/ld-musl-x86_64.path"
	jq -n '{ociVersion: "1.0.2", root: {path: "rootfs", readonly: true}, process: {env: ["NVIDIA_VISIBLE_DEVICES=none"]}}' >"$b/config.json"
	GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "shim: $(cat "$w/out")"
	echo "$(jq "$mpath" "$b/config.json") $(jq "$placeholder" "$b/config.json")"
}
[ "$(musl_edit no)" = "1 0" ] || hk_fail "read-only musl image without a path file: $(musl_edit no) (path, cache) mount points declared"
[ "$(musl_edit yes)" = "0 0" ] || hk_fail "read-only musl image with a path file: $(musl_edit yes) (path, cache) mount points declared"
hk_ok "the edit: the /dev/null mount point only for a read-only root whose image has no cache (musl: no path file)"

# ---- real runc ----------------------------------------------------------------------
prepare() { # NAME: a read-only bundle whose image has no /etc/ld.so.cache
	hk_bundle "$1"
	rm "$HK_B/rootfs/etc/ld.so.cache" # a whiteout in the overlay's upper dir
	jq --arg sc "$HK_SCRIPT" '.process.terminal = false | .process.args = ["sh", "-c", $sc] |
		.process.env += ["NVIDIA_VISIBLE_DEVICES=0"] | .root.readonly = true' "$HK_B/config.json" >"$HK_B/c" &&
		mv "$HK_B/c" "$HK_B/config.json"
}
prepare byhand
hk_config "$HK_B" createRuntime true '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
if hk_runc "$HK_B" byhand; then hk_fail "a read-only image without a cache started with a hand-registered hook: $(cat "$w/byhand.out")"; fi
grep -q 'ld.so.cache is not a regular file that could be covered' "$w/byhand.out" ||
	hk_fail "the refusal does not say why: $(cat "$w/byhand.out")"
prepare viashim
HK_CTRS+=(viashim)
(cd "$HK_B" && GPU_STAGE_RUNTIME=runc timeout 120 "$SHIM" run viashim) >"$w/viashim.out" 2>&1 ||
	hk_fail "a read-only image without a cache, through the shim: $(cat "$w/viashim.out")"
hk_check_inside viashim "read-only image without ld.so.cache"
# runc made the mount point (an empty file, as for any declared mount);
# nothing else was written into the image
[ -f "$HK_WORK/viashim/up/etc/ld.so.cache" ] && [ ! -s "$HK_WORK/viashim/up/etc/ld.so.cache" ] ||
	hk_fail "the image's /etc/ld.so.cache is not runc's empty mount point: $(ls -l "$HK_WORK/viashim/up/etc/")"
[ "$(find "$HK_WORK/viashim/up" -newer "$HK_B/config.json" ! -type d | grep -v '/etc/ld.so.cache$' || true)" = "" ] ||
	hk_fail "files were written into the read-only image: $(find "$HK_WORK/viashim/up" -newer "$HK_B/config.json" ! -type d)"
tail -n 1 "$HK_AUDIT" | grep -q '/dev/null mount point' || hk_fail "the audit record does not say the image had no cache: $(tail -n 1 "$HK_AUDIT" | head -c 600)"
hk_ok "through the shim a read-only image without a cache gets the driver in its loader's cache; by hand it is refused, clearly"
echo "shim_rocache.sh: all cases passed"
