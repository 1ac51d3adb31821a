# shellcheck shell=bash disable=SC2154 # $work, $N, $GS, $B, $ROWS, $CTR_PREFIX: set by bench/run and bench/lib.sh
# SPDX-License-Identifier: Apache-2.0
# Group "audit" of bench/run (row 11; sourced, not run).
#
# 20 running runc containers, each started through gpu-stage-hook (the
# synthetic driver, NVIDIA_VISIBLE_DEVICES=none, a minbase overlay each),
# one audit log.  First a cross-check: `gpu-stage audit --all --json` audits
# all 20, each with exactly the files its own record names, no finding (a
# failure ends the group: FAIL).  Then N interleaved runs of
#   ours      gpu-stage audit --all (every record, every live mount table,
#             the store's manifest, the image-library lookups; no --rehash)
#   baseline  jq -c . over the same audit log (parsing the records alone)
# Target: ours ≤ 100 ms for the 20 ("well under a second").

AU_N_CTRS=20
AU_VER=535.261.03

au_start() { # I LOWER: container I on a fresh overlay of LOWER, through the hook
	local d=$work/au/c$1 id=$CTR_PREFIX-au-$1
	mkdir -p "$d/rootfs" "$d/up" "$d/wk"
	mount -t overlay overlay -o "lowerdir=$2,upperdir=$d/up,workdir=$d/wk" "$d/rootfs" || die "audit: overlay mount failed"
	runc spec -b "$d" || die "audit: runc spec failed"
	jq --arg hook "$B/gpu-stage-hook" --arg store "$work/au-store" --arg log "$work/au/hook.log" --arg ver "$AU_VER" '
		.root.readonly = false | .process.terminal = false | .process.args = ["sleep", "600"] |
		.process.env += ["NVIDIA_VISIBLE_DEVICES=none"] |
		.hooks = {createRuntime: [{path: $hook, env: ["PATH=/usr/sbin:/usr/bin"],
			args: ["gpu-stage-hook", "--store", $store, "--audit-log", $log, "--driver", $ver, "createRuntime"]}]}' \
		"$d/config.json" >"$d/c" && mv "$d/c" "$d/config.json"
	runc run -d -b "$d" "$id" </dev/null >"$d/out" 2>&1 || die "audit: container $1 did not start: $(tail -n 3 "$d/out")"
}

# The 20 audited, each with its own record's files and no finding.
au_check() {
	local j=$work/au/all.json
	"$GS" audit --all --json --audit-log "$work/au/hook.log" >"$j" || die "audit --all: exit $? (findings: $(jq -c '[.containers[].findings[]] | .[:3]' "$j"))"
	[ "$(jq '.containers | length' "$j")" -eq "$AU_N_CTRS" ] || die "audit --all audited $(jq '.containers | length' "$j") containers, not $AU_N_CTRS"
	jq -e '.containers | all(
		([.record.plan.operations[] | select(.op == "bind-dir" or .op == "bind-file") | .files[].path] | sort) ==
		([.files[].store_path | sub("^.*/'"$AU_VER"'/"; "")] | sort) and (.findings | length == 0) and
		(.files | length > 5))' "$j" >/dev/null || die "audit --all: a container's files differ from its record's"
	[ "$(jq -r '[.containers[].container] | unique | length' "$j")" -eq "$AU_N_CTRS" ] || die "audit --all: containers audited twice"
}

group_audit() {
	local t drv minbase i
	for t in runc jq; do command -v $t >/dev/null || die "audit: $t missing"; done
	drv=$(synthetic_driver)
	"$GS" --root "$drv" --store "$work/au-store" --driver "$AU_VER" --caps all -q >/dev/null 2>"$work/au-stage.err" ||
		die "audit: staging failed: $(tail -n 3 "$work/au-stage.err")"
	minbase=$(bash fixtures/rootfs.sh)
	mkdir -p "$work/au"
	log "audit: starting $AU_N_CTRS containers"
	for ((i = 1; i <= AU_N_CTRS; i++)); do au_start "$i" "$minbase"; done
	au_check
	log "audit: $N rounds of audit --all and jq"
	time_pair "$N" "$work/au/base.us" "$work/au/ours.us" jq -c . "$work/au/hook.log" -- \
		"$GS" audit --all --audit-log "$work/au/hook.log"
	within_row 11 "\`gpu-stage audit --all\`, $AU_N_CTRS running containers (each one's files checked) vs \`jq -c .\` of the same log" \
		"$N" "$(median "$work/au/base.us")" "$(median "$work/au/ours.us")" 100000 "≤ 100 ms"
	for ((i = 1; i <= AU_N_CTRS; i++)); do runc delete -f "$CTR_PREFIX-au-$i" >/dev/null 2>&1 || true; done
}
