#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-runtime's rewrite of BUNDLE/config.json, without a container (the
# runtime it execs is /bin/true): the new config.json keeps the old one's
# mode and owner (it holds the container's environment, often secrets); a
# stale temporary file from an interrupted run is no obstacle, and a
# temporary name that is a symlink is never written through; a config.json
# that is a symlink (shared by several bundles) is replaced in the bundle,
# its target left untouched; a container that asks for no GPU keeps its
# config.json byte for byte; an unwritable bundle gives exit 1 and leaves
# config.json as it was; global options with values (--root DIR) and
# --bundle=DIR are understood.
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${GS_BUILD:-build}
SHIM=$PWD/$B/gpu-runtime
skip() { echo "hook_runtime.sh: SKIP: $*" >&2; exit 77; }
fail() { echo "hook_runtime.sh: FAIL: $*" >&2; exit 1; }
ok() { echo "hook_runtime.sh: ok: $*"; }
[ -x "$SHIM" ] || skip "$SHIM is not built (make)"
command -v jq >/dev/null || skip "jq is not installed (bash tests/deps.sh)"

work=$(mktemp -d /tmp/gs-hookrt-XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
b=$work/bundle
shim() { GPU_STAGE_RUNTIME=/bin/true "$SHIM" "$@"; }
fresh() { # ENV... -> a bundle with that process.env, config.json mode 0600
	rm -rf "$b"
	mkdir -p "$b/rootfs"
	jq -n --args '{ociVersion: "1.0.2", root: {path: "rootfs"}, process: {env: $ARGS.positional}}' "$@" >"$b/config.json"
	chmod 0600 "$b/config.json"
}
hooked() { jq -e '.hooks.createRuntime[0].env == [] and (.hooks.createRuntime[0].path | endswith("/gpu-stage-hook"))' "$1" >/dev/null; }

fresh NVIDIA_VISIBLE_DEVICES=0 SECRET=hunter2
shim --root "$work/state" create --bundle "$b" c1 || fail "gpu-runtime create failed"
hooked "$b/config.json" || fail "no hook added: $(cat "$b/config.json")"
[ "$(stat -c %a "$b/config.json")" = 600 ] || fail "config.json was 0600, is now $(stat -c %a "$b/config.json")"
[ -z "$(find "$b" -maxdepth 1 -name '.config.json*')" ] || fail "a temporary file was left: $(ls -a "$b")"
ok "config.json rewritten with its mode kept (0600)"

# temporary names, of an earlier version or of this one with this pid (sh's
# $$ is the shim's pid after exec), that are symlinks or stale files
fresh NVIDIA_VISIBLE_DEVICES=0
echo canary >"$work/victim"
ln -s "$work/victim" "$b/.config.json.gpu-runtime"
(cd "$b" && GPU_STAGE_RUNTIME=/bin/true sh -c 'ln -s "$1" .config.json.gpu-runtime.$$ && exec "$2" run c2' sh "$work/victim" "$SHIM") ||
	fail "gpu-runtime run (bundle = cwd) failed"
hooked "$b/config.json" || fail "no hook added with a stale temporary name: $(cat "$b/config.json")"
[ "$(cat "$work/victim")" = canary ] || fail "a symlink in the bundle was written through"
fresh NVIDIA_VISIBLE_DEVICES=0
(cd "$b" && GPU_STAGE_RUNTIME=/bin/true sh -c 'echo "{\"half\":" >.config.json.gpu-runtime.$$ && exec "$1" run c2' sh "$SHIM") ||
	fail "gpu-runtime run with a stale temporary file failed"
hooked "$b/config.json" || fail "no hook added with a stale temporary file: $(cat "$b/config.json")"
ok "stale temporary files: no obstacle, never written through"

fresh NVIDIA_VISIBLE_DEVICES=all
mv "$b/config.json" "$work/shared.json"
ln -s ../shared.json "$b/config.json"
sum=$(sha256sum <"$work/shared.json")
shim create --bundle="$b" c3 || fail "gpu-runtime create with a symlinked config.json failed"
[ "$(sha256sum <"$work/shared.json")" = "$sum" ] || fail "the symlinked config.json's target was changed"
[ -f "$b/config.json" ] && [ ! -L "$b/config.json" ] && hooked "$b/config.json" ||
	fail "the bundle's config.json is not a hooked regular file"
ok "symlinked config.json: replaced in the bundle, target untouched"

fresh PATH=/bin
sum=$(sha256sum <"$b/config.json")
shim create --bundle "$b" c4 || fail "gpu-runtime create (no GPU) failed"
[ "$(sha256sum <"$b/config.json")" = "$sum" ] || fail "config.json of a container without a GPU was changed"
ok "no GPU asked for: config.json untouched"

if [ "$(id -u)" -ne 0 ] || command -v setpriv >/dev/null; then
	fresh NVIDIA_VISIBLE_DEVICES=0
	sum=$(sha256sum <"$b/config.json")
	chmod 0555 "$b"
	got=0
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search,-fowner \
			env GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle "$b" c5 >"$work/out" 2>&1 || got=$?
	else
		shim create --bundle "$b" c5 >"$work/out" 2>&1 || got=$?
	fi
	chmod 0755 "$b"
	[ "$got" -eq 1 ] && grep -q 'gpu-runtime: ' "$work/out" || fail "unwritable bundle: exit $got: $(cat "$work/out")"
	[ "$(sha256sum <"$b/config.json")" = "$sum" ] || fail "unwritable bundle: config.json changed"
	ok "unwritable bundle: exit 1, config.json intact"
fi
echo "hook_runtime.sh: all cases passed"
