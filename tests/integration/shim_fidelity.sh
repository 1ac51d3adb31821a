#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-runtime never refuses what runc runs, and keeps what it edits exact
# (issue 14: runc's own suite failed through the shim on `runc run -h`, on a
# config.json with a duplicate key, and on an unlimited rlimit, an integer
# above INT64_MAX that jansson cannot hold):
# - help and version options (`run -h`, `run --help`, `--help run`, crun's
#   `run --help`, `-?`) reach the runtime without config.json being read;
# - a config.json with a duplicate key or an unsigned 64-bit value passes
#   through byte for byte when the container asks for no GPU, and when it
#   asks for one the new config.json is the old one with one run of bytes
#   inserted (the hook): every other byte, the big value's text included,
#   is kept; the hook goes into the last of duplicate "hooks" members;
# - a config.json jansson cannot read at all (invalid UTF-8) passes through
#   untouched when it cannot ask for a GPU, and is refused naming the file
#   and line when it may;
# - a real `runc run` through the shim of a GPU container with
#   `"hard": 18446744073709551615` for RLIMIT_CORE and a duplicate key gets
#   the driver (the hook reads that config.json too) and sees `ulimit -c`
#   unlimited;
# - a runtime that does not exist: exit 127 naming it, before config.json is
#   touched.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup shim_fidelity.sh
hk_shim
w=$HK_WORK

# A fake runtime that records its arguments.
mkdir -p "$w/fake" "$w/empty"
printf '#!/bin/sh\nprintf "%%s\\n" "$@" >"$FAKE_ARGV"\n' >"$w/fake/rt"
chmod +x "$w/fake/rt"
ln -s rt "$w/fake/runc"
ln -s rt "$w/fake/crun"
via() { # RUNTIME DIR ARGS...: the shim in DIR with the fake RUNTIME
	local rt=$1 dir=$2
	shift 2
	rm -f "$w/argv"
	(cd "$dir" && GPU_STAGE_RUNTIME="$w/fake/$rt" FAKE_ARGV="$w/argv" "$SHIM" "$@")
}

# ---- help and version: no config.json is read ---------------------------------
for a in "run -h" "run --help" "create -help" "run c1 -h" "--help run c1" "-v run c1" "run -h=true c1"; do
	# shellcheck disable=SC2086
	via runc "$w/empty" $a >"$w/out" 2>&1 || hk_fail "runc $a: exit $?: $(cat "$w/out")"
	[ "$(tr '\n' ' ' <"$w/argv")" = "$a " ] || hk_fail "runc $a: the runtime got $(cat "$w/argv")"
done
for a in "run --help" "create -? c1" "--usage run c1" "run --he"; do
	# shellcheck disable=SC2086
	via crun "$w/empty" $a >"$w/out" 2>&1 || hk_fail "crun $a: exit $?: $(cat "$w/out")"
done
# -h=false is no help: the bundle is read (and here it is missing)
if via runc "$w/empty" run -h=false c1 >"$w/out" 2>&1; then hk_fail "runc run -h=false: passed without a config.json"; fi
grep -q 'config.json' "$w/out" || hk_fail "runc run -h=false: the message does not name config.json: $(cat "$w/out")"
hk_ok "help and version options reach the runtime; config.json is not read"

# ---- exact values ----------------------------------------------------------------
b=$w/bundle
mkdir -p "$b/rootfs"
big='{"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 18446744073709551615}'
write() { # ENV-ENTRY: a config.json with a duplicate key and an unsigned 64-bit value
	printf '{\n  "ociVersion": "1.0.2",\n  "root": {"path": "rootfs"},\n  "process": {\n    "terminal": true, "terminal": false,\n    "env": ["PATH=/bin"%s],\n    "rlimits": [%s]\n  },\n  "x-odd": [1.0e+2, -0, "\\u00e9"]\n}\n' \
		"$1" "$big" >"$b/config.json"
	cp "$b/config.json" "$w/orig.json"
}
# NEW is OLD with one run of bytes inserted, and nothing else changed.
inserted_only() {
	local o=$1 n=$2 ol nl p s
	ol=$(stat -c %s "$o")
	nl=$(stat -c %s "$n")
	[ "$nl" -gt "$ol" ] || return 1
	p=$(cmp "$o" "$n" 2>/dev/null | sed -n 's/.*differ: [a-z]* \([0-9]*\),.*/\1/p')
	[ -n "$p" ] || p=$((ol + 1))
	s=$((ol - p + 1))
	cmp -s <(tail -c "$s" "$o") <(tail -c "$s" "$n")
}
write ""
via runc "$w/empty" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "no GPU, duplicate key, big rlimit: exit $?: $(cat "$w/out")"
cmp -s "$b/config.json" "$w/orig.json" || hk_fail "a container without a GPU request had its config.json changed"
write ', "NVIDIA_VISIBLE_DEVICES=0"'
via runc "$w/empty" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "GPU, duplicate key, big rlimit: exit $?: $(cat "$w/out")"
inserted_only "$w/orig.json" "$b/config.json" ||
	hk_fail "the GPU container's config.json changed beyond the inserted hook: $(diff "$w/orig.json" "$b/config.json")"
grep -q '"hard": 18446744073709551615' "$b/config.json" || hk_fail "the unlimited rlimit's text was not kept"
jq -e '.hooks.createRuntime[0].path | endswith("/gpu-stage-hook")' "$b/config.json" >/dev/null ||
	hk_fail "no hook in the edited config.json: $(cat "$b/config.json")"
# duplicate "hooks": the last one is runc's, and the hook goes there
printf '{"root": {"path": "rootfs"}, "hooks": {"prestart": []}, "process": {"env": ["NVIDIA_VISIBLE_DEVICES=0"]}, "hooks": {"poststop": [{"path": "/bin/true"}]}}' >"$b/config.json"
via runc "$w/empty" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "duplicate hooks: exit $?: $(cat "$w/out")"
jq -e '.hooks.poststop[0].path == "/bin/true" and (.hooks.createRuntime | length) == 1' "$b/config.json" >/dev/null ||
	hk_fail "the hook did not go into the last \"hooks\" member: $(cat "$b/config.json")"
# Docker's --gpus put its hook (ours under NVIDIA's name, or NVIDIA's) there already: never two injectors
printf '{"root": {"path": "rootfs"}, "process": {"env": ["NVIDIA_VISIBLE_DEVICES=0"]}, "hooks": {"prestart": [{"path": "/usr/bin/nvidia-container-runtime-hook", "args": ["nvidia-container-runtime-hook", "prestart"]}]}}' >"$b/config.json"
cp "$b/config.json" "$w/orig.json"
via runc "$w/empty" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "Docker's --gpus hook present: exit $?: $(cat "$w/out")"
cmp -s "$b/config.json" "$w/orig.json" || hk_fail "Docker's --gpus hook present, yet the shim edited config.json: $(cat "$b/config.json")"
hk_ok "duplicate keys and values above INT64_MAX: passed through, or kept byte for byte around the inserted hook"

# ---- what jansson cannot read --------------------------------------------------------
printf '{"root": {"path": "rootfs"}, "process": {"env": ["A=\xff"]}}' >"$b/config.json"
cp "$b/config.json" "$w/orig.json"
via runc "$w/empty" create --bundle "$b" c1 >"$w/out" 2>&1 || hk_fail "invalid UTF-8, no GPU: exit $?: $(cat "$w/out")"
cmp -s "$b/config.json" "$w/orig.json" || hk_fail "invalid UTF-8, no GPU: config.json changed"
[ -e "$w/argv" ] || hk_fail "invalid UTF-8, no GPU: the runtime was not run"
printf '{"root": {"path": "rootfs"}, "process": {"env": ["NVIDIA_VISIBLE_DEVICES=0", "A=\xff"]}}' >"$b/config.json"
cp "$b/config.json" "$w/orig.json"
got=0
via runc "$w/empty" create --bundle "$b" c1 >"$w/out" 2>&1 || got=$?
[ "$got" -eq 1 ] && grep -q "$b/config.json: line 1" "$w/out" || hk_fail "invalid UTF-8 with a GPU request: exit $got: $(cat "$w/out")"
[ ! -e "$w/argv" ] || hk_fail "invalid UTF-8 with a GPU request: the runtime was run"
cmp -s "$b/config.json" "$w/orig.json" || hk_fail "invalid UTF-8 with a GPU request: config.json changed"
hk_ok "unreadable to jansson: passed through when no GPU can be asked for, else refused naming the file and line"

# ---- a missing runtime ------------------------------------------------------------
write ', "NVIDIA_VISIBLE_DEVICES=0"'
for rt in /nonexistent/runc no-such-runtime-gs; do
	got=0
	(cd "$w/empty" && GPU_STAGE_RUNTIME=$rt "$SHIM" create --bundle "$b" c1) >"$w/out" 2>&1 || got=$?
	[ "$got" -eq 127 ] && grep -q "executing $rt: not" "$w/out" || hk_fail "missing runtime $rt: exit $got: $(cat "$w/out")"
	cmp -s "$b/config.json" "$w/orig.json" || hk_fail "missing runtime $rt: config.json was changed"
	got=0
	(cd "$w/empty" && GPU_STAGE_RUNTIME=$rt "$SHIM" state c1) >"$w/out" 2>&1 || got=$?
	[ "$got" -eq 127 ] && grep -q "executing $rt" "$w/out" || hk_fail "missing runtime $rt, state: exit $got: $(cat "$w/out")"
done
hk_ok "a missing runtime: exit 127 naming it, config.json untouched"

# ---- a real runc run with an unlimited rlimit and a duplicate key --------------------
hk_bundle real
jq --arg sc "$HK_SCRIPT
echo ULIMIT_C \$(ulimit -c)" '.process.terminal = false | .process.args = ["sh", "-c", $sc] |
	.process.env += ["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_B/config.json" >"$HK_B/c.json"
# the rlimit as a raw text (jq would turn it into 1.8446744073709552e+19) and a duplicate key
sed -i 's/"rlimits": \[/"rlimits": [{"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 18446744073709551615},/; s/"noNewPrivileges": true/"noNewPrivileges": false, "noNewPrivileges": true/' "$HK_B/c.json"
mv "$HK_B/c.json" "$HK_B/config.json"
grep -q '"hard": 18446744073709551615' "$HK_B/config.json" || hk_fail "test setup: no rlimit in config.json"
HK_CTRS+=(fidelity1)
(cd "$HK_B" && GPU_STAGE_STORE=$HK_STORE GPU_STAGE_HOOK_OPTS="--dev-root $HK_DEV --proc-root $HK_PROC --audit-log $HK_AUDIT" \
	GPU_STAGE_RUNTIME=runc timeout 120 "$SHIM" run fidelity1) >"$w/fidelity1.out" 2>&1 ||
	hk_fail "runc run through the shim with an unlimited rlimit failed: $(cat "$w/fidelity1.out")"
hk_check_inside fidelity1 "unlimited rlimit, duplicate key"
grep -q '^ULIMIT_C unlimited$' "$w/fidelity1.out" || hk_fail "the container's core limit is not unlimited: $(grep ULIMIT "$w/fidelity1.out")"
hk_ok "runc run through the shim: the driver arrives, the unlimited rlimit holds"
echo "shim_fidelity.sh: all cases passed"
