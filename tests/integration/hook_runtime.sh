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
# config.json as it was; every spelling runc and crun accept for the
# global options and --bundle/-b finds the bundle, and an option gpu-runtime
# cannot place is refused (a fake runtime records what it is given); other
# commands pass through untouched; a read-only root gains a tmpfs mount at
# /run/gpu-stage when its image has a /run directory.
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

# ---- the runtime's command line (issue 12 item 6) ----------------------------
# A fake runtime records its argv; it is called runc, crun or myrt (neither:
# runc's and crun's readings must agree).  Each spelling must put the hook
# into the bundle the runtime would use, or be refused (exit 1, config.json
# untouched, the runtime never run), and reach the runtime unchanged.
fake=$work/fakert
mkdir -p "$fake"
cat >"$fake/rt" <<'EOF2'
#!/bin/sh
printf '%s\n' "$@" >"$FAKE_ARGV"
EOF2
chmod +x "$fake/rt"
for n in runc crun myrt; do ln -sf rt "$fake/$n"; done
other=$work/other # the current directory: where a misread bundle would point
mkdir -p "$other"
via() { # RUNTIME ARGS... (the word B stands for the bundle)
	local rt=$1 a args=()
	shift
	for a in "$@"; do args+=("${a//B/$b}"); done
	rm -f "$work/argv"
	(cd "$other" && GPU_STAGE_RUNTIME="$fake/$rt" FAKE_ARGV="$work/argv" "$SHIM" "${args[@]}")
}
hooked_via() { # RUNTIME ARGS...: hooked, and the runtime got ARGS unchanged
	fresh NVIDIA_VISIBLE_DEVICES=0
	via "$@" >"$work/out" 2>&1 || fail "$*: exit $?: $(cat "$work/out")"
	hooked "$b/config.json" || fail "$*: no hook added to the bundle"
	local rt=$1 a want=
	shift
	for a in "$@"; do want+="${a//B/$b}"$'\n'; done
	[ "$(cat "$work/argv")"$'\n' = "$want" ] || fail "$*: the runtime got other arguments: $(cat "$work/argv")"
}
refused_via() { # RUNTIME ARGS...: exit 1 naming WORD ($REFUSE), nothing changed, nothing run
	fresh NVIDIA_VISIBLE_DEVICES=0
	local sum got=0
	sum=$(sha256sum <"$b/config.json")
	via "$@" >"$work/out" 2>&1 || got=$?
	[ "$got" -eq 1 ] || fail "$*: exit $got, not refused: $(cat "$work/out")"
	grep -qF -- "$REFUSE" "$work/out" || fail "$*: the message does not name '$REFUSE': $(cat "$work/out")"
	[ ! -e "$work/argv" ] || fail "$*: the runtime was run"
	[ "$(sha256sum <"$b/config.json")" = "$sum" ] || fail "$*: config.json changed"
}
hooked_via runc -root /x create -bundle B c1
hooked_via runc -root=/x create -bundle=B c1
hooked_via runc --root /x create -b=B c1
for rt in runc crun myrt; do # spellings runc and crun read alike
	hooked_via $rt --root=/x create -b B c1
	hooked_via $rt create --bundle=B c1
	hooked_via $rt --log /x --log-format json --debug --systemd-cgroup --rootless false create --bundle B c1
	hooked_via $rt -- create --bundle B c1
	hooked_via $rt --root /x run --detach --bundle B --keep c1
done
# runc only: -name, --b, flags after the container id, global flags after the command
hooked_via runc -debug=false -systemd-cgroup create -pid-file /x/p --b B c1
hooked_via runc --root /x create c1 --bundle B
hooked_via runc create --root /x --log-format=json -bundle B --no-pivot c1
hooked_via runc --criu /x run -d -b B c1
# crun only: abbreviations, -bDIR, clusters
hooked_via crun --root=/x --log-level=debug --cgroup-manager systemd create --bund B c1
hooked_via crun --systemd-cgroup create -bB --no-new-keyring c1
hooked_via crun run -dbB --keep c1
hooked_via crun run -db B c1
hooked_via crun create --config=config.json -b B c1
ok "every spelling of runc's and crun's --root/--bundle/-b finds the bundle"

for rt in runc crun myrt; do
	REFUSE=--frobnicate refused_via $rt --frobnicate /x create --bundle B c1
	REFUSE=--frobnicate refused_via $rt create --frobnicate --bundle B c1
	REFUSE=--frobnicate refused_via $rt run --frobnicate=1 -b B c1
done
REFUSE=-root refused_via crun -root /x create --bundle B c1         # crun: -r -o -o -t
REFUSE=--log-level refused_via runc --log-level x create --bundle B c1 # runc has none
REFUSE=--con refused_via crun create --con /x -b B c1                # config or console-socket
REFUSE=-db refused_via crun create -db B c1                          # create has no -d
REFUSE=-f refused_via crun create -f other.json -b B c1
REFUSE=--config refused_via crun run --config=/x/other.json -b B c1
REFUSE="-'" refused_via runc create - --bundle B c1                  # v3 stops at a lone -
REFUSE="' --bundle'" refused_via runc create ' --bundle' B c1         # v3 trims white space
REFUSE="neither runc nor crun" refused_via myrt create -bundle B c1   # crun: -b undle
REFUSE="neither runc nor crun" refused_via myrt create -b=B c1        # crun: -b =B
REFUSE="neither runc nor crun" refused_via myrt -root /x create -b B c1
REFUSE="neither runc nor crun" refused_via myrt create c1 --bundle B  # crun stops at c1
ok "unknown or ambiguous options of create/run are refused, not guessed"

for args in "--frobnicate state c1" "state c1" "delete -f c1" "kill c1 KILL" "exec -t c1 sh" \
	"ps c1" "features" "--version" "-v" "--root /x list"; do
	for rt in runc crun myrt; do
		fresh NVIDIA_VISIBLE_DEVICES=0
		sum=$(sha256sum <"$b/config.json")
		# shellcheck disable=SC2086
		via $rt $args >"$work/out" 2>&1 || fail "$rt $args: exit $?: $(cat "$work/out")"
		[ "$(tr '\n' ' ' <"$work/argv")" = "$args " ] || fail "$rt $args: the runtime got $(cat "$work/argv")"
		[ "$(sha256sum <"$b/config.json")" = "$sum" ] || fail "$rt $args: config.json changed"
	done
done
ok "other commands pass through untouched"

# ---- read-only roots declare /run/gpu-stage (issue 12 item 4) -----------------
anchor='[.mounts[]? | select(.destination == "/run/gpu-stage")]'
ro() { # JQ-EDIT: a read-only-root bundle with an image /run directory
	fresh NVIDIA_VISIBLE_DEVICES=0
	mkdir -p "$b/rootfs/run" "$b/rootfs/etc"
	: >"$b/rootfs/etc/ld.so.cache" # (without one, shim_rocache.sh's mount point is declared)
	jq ".root.readonly = true | $1" "$b/config.json" >"$b/c" && mv "$b/c" "$b/config.json"
}
count() { jq "$anchor | length" "$b/config.json"; }
ro .
shim create --bundle "$b" c6 || fail "read-only root: create failed"
[ "$(count)" = 1 ] || fail "read-only root: no /run/gpu-stage mount: $(jq -c .mounts "$b/config.json")"
jq -e "$anchor[0] | .type == \"tmpfs\" and .source == \"tmpfs\" and
	(.options | index(\"nosuid\") and index(\"nodev\") and index(\"noexec\") and index(\"mode=0755\"))" \
	"$b/config.json" >/dev/null || fail "the anchor mount is not a nosuid,nodev,noexec tmpfs: $(jq -c "$anchor" "$b/config.json")"
shim create --bundle "$b" c6 || fail "read-only root: second create failed"
[ "$(count)" = 1 ] || fail "read-only root: the mount was added twice"
ro '.mounts = [{destination: "/proc", type: "proc", source: "proc"}, {destination: "/run/gpu-stage/x", type: "tmpfs", source: "tmpfs"}]'
shim create --bundle "$b" c6 || fail "read-only root with a mount inside the anchor: create failed"
[ "$(jq -r '[.mounts[].destination] | join(" ")' "$b/config.json")" = "/proc /run/gpu-stage /run/gpu-stage/x" ] ||
	fail "the anchor is not declared before the mount inside it: $(jq -c .mounts "$b/config.json")"
for d in /run /run/ /run/gpu-stage //run/gpu-stage/ run; do
	ro ".mounts = [{destination: \"$d\", type: \"tmpfs\", source: \"tmpfs\"}]"
	shim create --bundle "$b" c6 || fail "read-only root with $d declared: create failed"
	[ "$(jq '.mounts | length' "$b/config.json")" = 1 ] || fail "$d declared already, yet a mount was added"
	hooked "$b/config.json" || fail "$d declared: no hook"
done
ro .
rmdir "$b/rootfs/run"
ln -s /tmp "$b/rootfs/run"
shim create --bundle "$b" c6 || fail "read-only root, /run a symlink: create failed"
[ "$(count)" = 0 ] || fail "/run is a symlink, yet the mount was declared"
ro .
rmdir "$b/rootfs/run"
shim create --bundle "$b" c6 || fail "read-only root, no /run: create failed"
[ "$(count)" = 0 ] || fail "the image has no /run, yet the mount was declared"
fresh NVIDIA_VISIBLE_DEVICES=0
mkdir -p "$b/rootfs/run"
shim create --bundle "$b" c6 || fail "writable root: create failed"
[ "$(count)" = 0 ] || fail "writable root, yet the mount was declared"
ro .
mv "$b/rootfs" "$work/abs-rootfs"
jq --arg p "$work/abs-rootfs" '.root.path = $p' "$b/config.json" >"$b/c" && mv "$b/c" "$b/config.json"
shim create --bundle "$b" c6 || fail "read-only absolute root.path: create failed"
[ "$(count)" = 1 ] || fail "read-only absolute root.path: no /run/gpu-stage mount"
rm -rf "$work/abs-rootfs"
ok "read-only roots: /run/gpu-stage declared once, before mounts inside it, never when /run is declared, a symlink or missing"

# ---- a broken configuration: GPU containers refused, the others still
# reach the runtime it names (and its "requests" holds) ----------------------
cat >"$work/rec" <<'EOF2'
#!/bin/sh
printf '%s\n' "$@" >"$FAKE_ARGV"
EOF2
chmod +x "$work/rec"
bad=$work/bad-config.json
for conf in "{\"runtime\": \"$work/rec\", \"stroe\": \"/x\"}" \
	"{\"runtime\": \"$work/rec\", \"requests\": \"orchestrator\", \"store\": \"relative\"}"; do
	printf '%s\n' "$conf" >"$bad"
	rm -f "$work/argv"
	GPU_STAGE_CONFIG=$bad FAKE_ARGV="$work/argv" "$SHIM" state c1 >"$work/out" 2>&1 ||
		fail "broken configuration $conf: state failed: $(cat "$work/out")"
	[ "$(cat "$work/argv" 2>/dev/null)" = "state
c1" ] || fail "broken configuration $conf: state did not reach $work/rec: $(cat "$work/out")"
	grep -q "GPU containers are refused until it is fixed; the others run with $work/rec" "$work/out" ||
		fail "broken configuration: the warning: $(cat "$work/out")"
	fresh NVIDIA_VISIBLE_DEVICES=0
	rm -f "$work/argv"
	got=0
	GPU_STAGE_CONFIG=$bad FAKE_ARGV="$work/argv" "$SHIM" create --bundle "$b" c1 >"$work/out" 2>&1 || got=$?
	case $conf in
	*orchestrator*) # the image's own variable asks for nothing under "orchestrator"
		[ "$got" -eq 0 ] && [ -e "$work/argv" ] && ! hooked "$b/config.json" ||
			fail "broken configuration with requests orchestrator: exit $got: $(cat "$work/out")" ;;
	*) [ "$got" -eq 1 ] && [ ! -e "$work/argv" ] || fail "broken configuration: a GPU container not refused (exit $got)" ;;
	esac
done
ok "broken configuration: GPU containers refused; other commands and containers reach its \"runtime\", read by its \"requests\""

# ---- relative paths in the environment: refused naming the variable (the
# hook runs in another directory and would answer with a usage text) ------
for var in GPU_STAGE_CONFIG=rel.json GPU_STAGE_STORE=relstore; do
	fresh NVIDIA_VISIBLE_DEVICES=0
	echo '{}' >"$b/rel.json"
	sum=$(sha256sum <"$b/config.json")
	got=0
	(cd "$b" && env "$var" GPU_STAGE_RUNTIME=/bin/true "$SHIM" create --bundle . c1) >"$work/out" 2>&1 || got=$?
	[ "$got" -eq 1 ] && grep -qF "$var: not an absolute path" "$work/out" ||
		fail "$var: exit $got: $(cat "$work/out")"
	[ "$(sha256sum <"$b/config.json")" = "$sum" ] || fail "$var: config.json changed"
done
ok "a relative GPU_STAGE_CONFIG or GPU_STAGE_STORE: a GPU container refused naming the variable, config.json untouched"

# ---- gpu-runtime named as its own runtime: refused, never a loop ------------
mkdir -p "$work/loop"
ln -s "$SHIM" "$work/loop/runc"
echo '{}' >"$work/empty.json"
got=0
PATH=$work/loop:$PATH GPU_STAGE_CONFIG=$work/empty.json timeout 10 "$SHIM" --version >"$work/out" 2>&1 || got=$?
[ "$got" -eq 127 ] && grep -q "runc is gpu-runtime itself (found first in PATH)" "$work/out" ||
	fail "gpu-runtime as runc in PATH: exit $got: $(cat "$work/out")"
got=0
GPU_STAGE_RUNTIME=$work/loop/runc timeout 10 "$SHIM" state x >"$work/out" 2>&1 || got=$?
[ "$got" -eq 127 ] && grep -q "is gpu-runtime itself (the path named)" "$work/out" ||
	fail "GPU_STAGE_RUNTIME naming gpu-runtime: exit $got: $(cat "$work/out")"
ok "gpu-runtime as its own runtime (in PATH or by path): exit 127 naming it, no loop"

echo "hook_runtime.sh: all cases passed"
