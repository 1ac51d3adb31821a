#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-runtime in place of runc (issue 14's conformance smoke test): the same
# script of runtime commands is run with runc and with the shim (which
# execs runc) on the same bundle and container ids, and the two transcripts
# (exit status and output of every step, pids and times taken out) must be
# identical: `run` (output, exit 3), `create` (state "created", `list`),
# `start` (state "running"), `ps`, `exec` (output, exit 4), `events --stats`
# (one stats event), `kill`, `delete`, `state` of a deleted container (the
# error and its status), `run --help`, an unknown command.  Then a GPU
# container's whole life through the shim: create, start, exec (the driver
# is there: the probe gets cuDriverGetVersion 12020), kill, delete.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup shim_conformance.sh
hk_shim env
w=$HK_WORK
export GPU_STAGE_RUNTIME=runc

hk_bundle conf
B=$HK_B
args() { # JSON-ARGS [ENV-JSON]: the bundle's process
	jq --argjson a "$1" --argjson env "${2:-[]}" '.process.terminal = false | .process.args = $a |
		.process.env += $env' "$B/config.json" >"$B/c" && mv "$B/c" "$B/config.json"
}
# step NAME RUNTIME ARGS...: one line "NAME rc=N" and the normalised output
step() {
	local name=$1 rc=0
	shift
	"$@" >"$w/step.out" 2>&1 || rc=$?
	echo "## $name rc=$rc"
	sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?/TIME/g; s/"pid": ?[0-9]+/"pid":N/g' "$w/step.out"
}
until_state() { # RT ID STATUS: waits up to 10 s
	local i
	for i in $(seq 100); do
		[ "$("$1" state "$2" 2>/dev/null | jq -r .status)" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
transcript() { # RT: the script, with RT as the runtime
	local rt=$1
	args '["sh", "-c", "echo hello from the container; exit 3"]'
	step run bash -c "cd '$B' && exec '$rt' run c-run"
	args '["sleep", "60"]'
	step create "$rt" create --bundle "$B" c-life
	step state-created bash -c "'$rt' state c-life | jq -S 'del(.pid, .created)'"
	step list bash -c "'$rt' list -f json | jq -S '[.[] | select(.id == \"c-life\") | del(.pid, .created)]'"
	step start "$rt" start c-life
	until_state "$rt" c-life running || echo "## not running"
	step state-running bash -c "'$rt' state c-life | jq -S 'del(.pid, .created)'"
	step ps bash -c "'$rt' ps c-life | awk 'NR == 1 { print \$1, \$2, \$NF; next } { print \$NF }'"
	step exec "$rt" exec c-life sh -c 'echo inside; exit 4'
	step events bash -c "timeout 20 '$rt' events --stats c-life | jq -c '{type, id, has_data: (.data != null)}'"
	step kill "$rt" kill c-life KILL
	until_state "$rt" c-life stopped || echo "## not stopped"
	step delete "$rt" delete c-life
	step state-deleted "$rt" state c-life
	step run-help bash -c "cd '$w' && '$rt' run --help | head -n 3"
	step unknown "$rt" frobnicate
}
transcript runc >"$w/runc.txt"
HK_CTRS+=(c-run c-life)
runc delete -f c-run >/dev/null 2>&1 || true
transcript "$SHIM" >"$w/shim.txt"
runc delete -f c-run >/dev/null 2>&1 || true
grep -q '^## run rc=3$' "$w/runc.txt" && grep -q '^hello from the container$' "$w/runc.txt" ||
	hk_fail "the script itself does not work with runc: $(cat "$w/runc.txt")"
grep -q '^## exec rc=4$' "$w/runc.txt" && grep -q '"status": "running"' "$w/runc.txt" ||
	hk_fail "the script itself does not work with runc: $(cat "$w/runc.txt")"
diff -u "$w/runc.txt" "$w/shim.txt" >"$w/diff" || hk_fail "the shim's transcript differs from runc's: $(cat "$w/diff")"
hk_ok "run, create, state, list, start, ps, exec, events --stats, kill, delete, --help, an unknown command: the same as runc ($(grep -c '^## ' "$w/runc.txt") steps)"

# ---- a GPU container's life through the shim --------------------------------------------
args '["sleep", "60"]' '["NVIDIA_VISIBLE_DEVICES=0"]'
HK_CTRS+=(c-gpu)
"$SHIM" create --bundle "$B" c-gpu >"$w/gpu.out" 2>&1 || hk_fail "GPU create through the shim: $(cat "$w/gpu.out")"
"$SHIM" start c-gpu >>"$w/gpu.out" 2>&1 || hk_fail "GPU start through the shim: $(cat "$w/gpu.out")"
"$SHIM" exec c-gpu /opt/gs-probe libcuda.so.1 >"$w/gpu.exec" 2>&1 || hk_fail "GPU exec through the shim: $(cat "$w/gpu.exec")"
grep -q '^cuDriverGetVersion=12020 ' "$w/gpu.exec" || hk_fail "GPU exec: no driver in the container: $(cat "$w/gpu.exec")"
"$SHIM" kill c-gpu KILL || hk_fail "GPU kill through the shim failed"
until_state "$SHIM" c-gpu stopped || hk_fail "the GPU container did not stop"
"$SHIM" delete c-gpu || hk_fail "GPU delete through the shim failed"
hk_ok "a GPU container's create, start, exec (driver there), kill, delete through the shim"
echo "shim_conformance.sh: all cases passed"
