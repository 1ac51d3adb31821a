#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Load (issue 17): many containers started at once through gpu-stage-hook
# and through gpu-runtime, real runc (`run -d`, a private runc root), the
# synthetic driver (fixtures/mkdriver.sh) on the debootstrap'd rootfs (an
# overlay per container).
# - hook rounds: LOAD_N (50) containers started concurrently, three rounds
#   (the hook at prestart, createRuntime, createContainer);
# - shim rounds: LOAD_N through `gpu-runtime run -d`, three rounds;
# - a re-stage round: while LOAD_N containers start, a second driver
#   version is staged, the fake loaded module switches to it, and
#   `gpu-stage gc` (that root), `gpu-stage audit --all` and a no-op
#   `gpu-stage --driver` run in loops until every start is done;
# - a removal race: LOAD_N short-lived starts (waves of 5) asking for the old version
#   while gc removes it and a loop stages it again: each start gets one
#   whole tree or is refused saying the driver is not staged.
# Each container lists from inside what it received: every file under
# /run/gpu-stage and /usr/bin/nvidia-* with size and SHA-256, the store tree
# each of its mounts comes from, libcuda.so.1 as its own ldconfig -p
# resolves it, cuDriverGetVersion from gs-probe.  Checked on the host, per
# container: it started; its files are exactly the set that version's
# manifest.json gives utility,compute (path, size, SHA-256), every store
# mount comes from that version's directory (one version, never a mix),
# libcuda.so.1 resolves to that version's file; exactly one audit record,
# result ok, naming that version, with this container's stage.  Per round:
# every line of the audit log is one JSON record (jq), as many as starts;
# `audit --all` finds nothing on the live containers; the host's mount
# table is the same before and after and never shows a store mount;
# `gpu-stage verify` passes.  Re-stage round: no gc removed a version a
# running container used, and each container, re-listed after the last gc
# (`runc exec`), still sees exactly its files; once they are gone the old
# version is removed by gc.  Prints each round's wall time.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source fixtures/hook_lib.sh
hk_setup load.sh
hk_shim
N=${LOAD_N:-50}
V1=$HK_VER
V2=550.163.01
RUNC_ROOT=$HK_WORK/runc
mkdir -p "$RUNC_ROOT" "$HK_WORK/out"
rc() { runc --root "$RUNC_ROOT" "$@"; }
changer='' mkdriver2=''

load_cleanup() {
	local id
	touch "$HK_WORK/stop" 2>/dev/null || true
	for j in $changer $mkdriver2; do kill "$j" 2>/dev/null && wait "$j" 2>/dev/null; done
	for id in $(rc list -q 2>/dev/null); do rc delete -f "$id" >/dev/null 2>&1 || true; done
	hk_cleanup
}
trap load_cleanup EXIT

# the second version, generated while the first rounds run
# (its status in a file: bash forgets a job's status after hundreds more)
(
	rc=0
	bash fixtures/mkdriver.sh "$HK_WORK/drv2" --version "$V2" >"$HK_WORK/mkdriver2.log" 2>&1 || rc=$?
	echo "$rc" >"$HK_WORK/mkdriver2.rc"
) &
mkdriver2=$!

# What the container prints (sh, the Debian image): one fact a line.
INSIDE='exec 2>&1
echo BEGIN
files=$({ find /run/gpu-stage -type f; find /usr/bin -maxdepth 1 -name "nvidia-*"; } | sort)
[ -n "$files" ] && echo "$files" | xargs stat -L -c "SIZE %n %s" && echo "$files" | xargs sha256sum | sed "s/^/SHA /"
awk -v s="$LOAD_STORE/" "index(\$4, s) == 1 { print \"MNT\", \$5, \$4 }" /proc/self/mountinfo
c=$(ldconfig -p | awk "/^\tlibcuda.so.1 \(libc6,x86-64\)/ { print \$NF }")
echo "LDCACHE $c"
[ -n "$c" ] && echo "REAL $(readlink -f "$c")"
/opt/gs-probe libcuda.so.1 | grep "^cuDriverGetVersion="
echo END'
# the container's listing, reduced to "PATH SIZE SHA256" lines, sorted
listing() {
	awk '$1 == "SIZE" { size[$2] = $3 } $1 == "SHA" { sha[$3] = $2 }
	     END { for (p in size) print p, size[p], sha[p] }' "$1" | sort
}
# what that listing must be for version VER: the manifest's utility and
# compute libraries and programs under /run/gpu-stage, the programs again
# at /usr/bin
expected() {
	jq -r '.files[] | select((.kind == "lib" or .kind == "bin") and (.caps | index("compute") or index("utility")))
		| (("/run/gpu-stage/" + .path), (select(.kind == "bin") | "/usr/bin/" + (.path | split("/") | last)))
		  + " " + (.size | tostring) + " " + .sha256' "$HK_STORE/$1/manifest.json" | sort
}

# The bundles: slot I of a round is $HK_WORK/rR/cI (overlay rootfs, one
# config.json written for the round and copied).  MODE "shim": no hook in
# config.json, gpu-runtime adds it (at createRuntime).
make_template() {
	local mode=$1 stage=$2 then=${3:-"exec sleep 600"} d=$HK_WORK/tmpl
	rm -rf "$d" && mkdir -p "$d"
	(cd "$d" && runc spec) || hk_fail "runc spec failed"
	hk_config "$d" "$stage" false \
		"[\"NVIDIA_VISIBLE_DEVICES=0\", \"LOAD_STORE=$HK_STORE\"]" "$INSIDE; $then"
	[ "$mode" != shim ] || { jq 'del(.hooks)' "$d/config.json" >"$d/c.json" && mv "$d/c.json" "$d/config.json"; }
}
make_bundles() {
	local r=$1 i d
	for ((i = 0; i < N; i++)); do
		d=$HK_WORK/r$r/c$i
		mkdir -p "$d/b/rootfs" "$d/up/opt" "$d/wk"
		cp "$HK_PROBE" "$d/up/opt/gs-probe"
		mount -t overlay overlay -o "lowerdir=$HK_ROOTFS,upperdir=$d/up,workdir=$d/wk" "$d/b/rootfs" ||
			hk_fail "cannot mount an overlay over $HK_ROOTFS"
		HK_MOUNTS+=("$d/b/rootfs")
		cp "$HK_WORK/tmpl/config.json" "$d/b/config.json"
	done
}
drop_bundles() {
	local r=$1 i
	for ((i = 0; i < N; i++)); do umount "$HK_WORK/r$r/c$i/b/rootfs" || hk_fail "cannot unmount round $r's overlay $i"; done
}
cid() { echo "gs-load-$$-r$1-c$2"; }

# start R I MODE: one detached container (MODE fg: one that runs to its
# end), its stdout in $HK_WORK/out/ID
start() {
	local id b=$HK_WORK/r$1/c$2/b
	id=$(cid "$1" "$2")
	if [ "$3" = shim ]; then
		env GPU_STAGE_STORE="$HK_STORE" GPU_STAGE_RUNTIME=runc \
			GPU_STAGE_HOOK_OPTS="--audit-log $HK_AUDIT --dev-root $HK_DEV --proc-root $HK_PROC" \
			timeout 120 "$SHIM" --root "$RUNC_ROOT" run -d --bundle "$b" "$id"
	elif [ "$3" = fg ]; then
		timeout 120 runc --root "$RUNC_ROOT" run --bundle "$b" "$id"
	else
		timeout 120 runc --root "$RUNC_ROOT" run -d --bundle "$b" "$id"
	fi </dev/null >"$HK_WORK/out/$id" 2>&1 || echo "$id" >>"$HK_WORK/failed"
}
# starts R MODE FROM TO: slots FROM..TO-1 at once, in background jobs
starts() {
	local i
	for ((i = $3; i < $4; i++)); do start "$1" "$i" "$2" & done
}
# waits until every container of round R has printed END (60 s at most)
wait_inside() {
	local r=$1 i id t
	for ((t = 0; t < 600; t++)); do
		for ((i = 0; i < N; i++)); do
			id=$(cid "$r" "$i")
			grep -q '^END$' "$HK_WORK/out/$id" 2>/dev/null || break
		done
		[ "$i" -eq "$N" ] && return 0
		sleep 0.1
	done
	hk_fail "round $r: container $id did not finish its checks: $(cat "$HK_WORK/out/$id")"
}

# the round's tables, read once: every audit record (container, pid,
# result, driver, stage) and the private runc root's containers (id, pid)
tables() {
	jq -r '[.container, .pid, .result, .driver, .stage] | @tsv' "$HK_AUDIT" >"$HK_WORK/recs.tsv" ||
		hk_fail "the audit log does not parse: $(head -c 600 "$HK_AUDIT")"
	rc list -f json | jq -r '(. // [])[] | [.id, .pid] | @tsv' >"$HK_WORK/pids.tsv"
}
# check_one R I STAGE [gone]: judges container I of round R (after tables);
# prints its version.  "gone": the container has exited (no pid to match)
# and its mounts may come from an old copy of the version (STORE/.tmp-*,
# a tree removed while this start held it), all from one tree.
check_one() {
	local id out v got cuda rec tree
	id=$(cid "$1" "$2")
	out=$HK_WORK/out/$id
	grep -q '^END$' "$out" || hk_fail "$id: no complete output: $(cat "$out")"
	v=$(sed -n 's,^REAL .*/libcuda\.so\.\([0-9.]*\)$,\1,p' "$out")
	case $v in
	"$V1") cuda=12020 ;;
	"$V2") cuda=12040 ;;
	*) hk_fail "$id: libcuda.so.1 does not resolve to a staged driver's file: $(grep -e LDCACHE -e REAL "$out")" ;;
	esac
	grep -qx "LDCACHE /run/gpu-stage/lib/compute/libcuda.so.1" "$out" ||
		hk_fail "$id: ldconfig -p does not give /run/gpu-stage/lib/compute/libcuda.so.1: $(grep LDCACHE "$out")"
	grep -q "^cuDriverGetVersion=$cuda " "$out" || hk_fail "$id: driver $v: the probe did not get cuDriverGetVersion $cuda: $(cat "$out")"
	[ -s "$HK_WORK/expected.$v" ] || expected "$v" >"$HK_WORK/expected.$v"
	got=$(listing "$out")
	[ "$got" = "$(cat "$HK_WORK/expected.$v")" ] || hk_fail "$id: driver $v: the files it sees are not that version's set:
$(diff "$HK_WORK/expected.$v" <(echo "$got") | head -20)"
	# every store mount from the one version's directory
	[ "$(grep -c '^MNT ' "$out")" -ge 5 ] || hk_fail "$id: fewer store mounts than expected: $(grep '^MNT ' "$out")"
	tree=$HK_STORE/$v
	[ "${4:-}" != gone ] || tree=$(awk -v s="$HK_STORE/" '$1 == "MNT" { t = substr($3, length(s) + 1); sub("/.*", "", t); print s t; exit }' "$out")
	case $tree in "$HK_STORE/$v" | "$HK_STORE/.tmp-"*) ;; *) hk_fail "$id: mounts from $tree, not $v's tree" ;; esac
	if grep '^MNT ' "$out" | awk -v p="$tree/" 'index($3, p) != 1' | grep -q .; then
		hk_fail "$id: a mount from outside $tree (a mix of trees): $(grep '^MNT ' "$out")"
	fi
	# one audit record for the start, naming that version and stage, and
	# the container's pid in the host's terms (at createContainer runc's
	# state gives the hook the container's own "1")
	rec=$(awk -F'\t' -v id="$id" '$1 == id' "$HK_WORK/recs.tsv")
	[ "$(echo "$rec" | grep -c .)" -eq 1 ] || hk_fail "$id: $(echo "$rec" | grep -c .) audit records, expected 1"
	[ "$(echo "$rec" | cut -f3-5)" = "$(printf 'ok\t%s\t%s' "$v" "$3")" ] ||
		hk_fail "$id: the audit record does not say ok/$v/$3: $rec"
	[ "${4:-}" = gone ] || [ "$(echo "$rec" | cut -f2)" = "$(awk -F'\t' -v id="$id" '$1 == id { print $2 }' "$HK_WORK/pids.tsv")" ] ||
		hk_fail "$id: the audit record's pid $(echo "$rec" | cut -f2) is not the container's ($(grep "^$id	" "$HK_WORK/pids.tsv"))"
	echo "$v ${tree#"$HK_STORE/"}"
}

# the audit log: one JSON record a line, STARTS of them in all
check_log() {
	local lines recs
	lines=$(wc -l <"$HK_AUDIT")
	recs=$(jq -c . "$HK_AUDIT" | wc -l) || hk_fail "the audit log does not parse (an interleaved line?)"
	[ "$lines" -eq "$recs" ] || hk_fail "the audit log has $lines lines but $recs records: a line is not one record"
	jq -e 'type == "object" and (.container | type == "string") and .result' "$HK_AUDIT" >/dev/null ||
		hk_fail "a line of the audit log is not a record"
	[ "$lines" -eq "$1" ] || hk_fail "the audit log has $lines records after $1 starts"
	[ "$(jq -r .container "$HK_AUDIT" | sort | uniq -d | wc -l)" -eq 0 ] || hk_fail "a container has two audit records"
}

# audit --all: no finding, COUNT live containers, no unreadable line
check_audit() {
	local rc=0
	"$HK_GS" audit --all --json --audit-log "$HK_AUDIT" >"$HK_WORK/audit.json" 2>"$HK_WORK/audit.err" || rc=$?
	[ "$rc" -eq 0 ] || hk_fail "audit --all: exit $rc: $(jq -c '[.containers[] | .findings[]] | .[:5]' "$HK_WORK/audit.json" 2>/dev/null) $(cat "$HK_WORK/audit.err")"
	jq -e --argjson n "$1" '.findings == 0 and .unreadable_lines == 0 and (.containers | length) == $n' \
		"$HK_WORK/audit.json" >/dev/null ||
		hk_fail "audit --all: expected $1 live containers and no finding: $(jq -c '{findings, unreadable_lines, live: (.containers | length), gone: (.gone | length)}' "$HK_WORK/audit.json")"
}

# no mount of the store (or of /run/gpu-stage) in the host's table
check_host_mounts() {
	if awk -v s="$HK_STORE" 'index($4, s) == 1 || index($5, s) == 1 || $5 ~ "^/run/gpu-stage"' /proc/self/mountinfo | grep -q .; then
		hk_fail "$1: a store mount in the host's mount table: $(awk -v s="$HK_STORE" 'index($4, s) == 1 || index($5, s) == 1' /proc/self/mountinfo | head -3)"
	fi
}

stop_round() {
	local r=$1 i
	for ((i = 0; i < N; i++)); do rc delete -f "$(cid "$r" "$i")" >/dev/null 2>&1 & done
	wait_jobs
	[ -z "$(rc list -q)" ] || hk_fail "round $r: containers left after delete: $(rc list -q | head -3)"
}

# waits for this script's background jobs but the two long-running ones
wait_jobs() {
	local j
	for j in $(jobs -p); do
		[ "$j" = "$changer" ] || [ "$j" = "$mkdriver2" ] || wait "$j" || true
	done
}

starts_done=0
# round R MODE STAGE: N concurrent starts, checked, stopped
round() {
	local r=$1 mode=$2 stage=$3 t0 before i ms s0=$SECONDS
	make_template "$mode" "$stage"
	make_bundles "$r"
	before=$(hk_mounts)
	t0=$(date +%s%N)
	starts "$r" "$mode" 0 "$N"
	wait_jobs
	[ ! -s "$HK_WORK/failed" ] || hk_fail "round $r ($mode): $(wc -l <"$HK_WORK/failed") starts failed, e.g. $(head -1 "$HK_WORK/failed"): $(cat "$HK_WORK/out/$(head -1 "$HK_WORK/failed")")"
	wait_inside "$r"
	ms=$((($(date +%s%N) - t0) / 1000000))
	starts_done=$((starts_done + N))
	tables
	for ((i = 0; i < N; i++)); do check_one "$r" "$i" "$stage" >/dev/null; done
	check_log "$starts_done"
	check_audit "$N"
	check_host_mounts "round $r"
	stop_round "$r"
	[ "$(hk_mounts)" = "$before" ] || hk_fail "round $r: the host's mount table changed: $(diff <(echo "$before") <(hk_mounts) | head -5)"
	drop_bundles "$r"
	"$HK_GS" verify "$V1" --store "$HK_STORE" >/dev/null || hk_fail "round $r: verify $V1 fails"
	hk_ok "round $r: $N containers through the $mode ($stage) started and checked inside in $ms ms (round $((SECONDS - s0)) s): each saw exactly driver $V1's set; $N audit records; audit --all clean; host mounts unchanged; verify ok"
}

round 1 hook prestart
round 2 hook createRuntime
round 3 hook createContainer
round 4 shim createRuntime
round 5 shim createRuntime
round 6 shim createRuntime

# ---- the re-stage round ---------------------------------------------------------
# While the starts run: stage V2, then switch the fake module to V2 once at
# least 5 containers have started (so some hold V1), then loop gc / audit
# --all / a no-op re-stage until the starts are done.  The first half of the
# starts go first; the second half only once the module is V2.
for ((t = 0; t < 1200; t++)); do [ -e "$HK_WORK/mkdriver2.rc" ] && break; sleep 0.1; done
[ "$(cat "$HK_WORK/mkdriver2.rc" 2>/dev/null)" = 0 ] || hk_fail "mkdriver.sh --version $V2 failed: $(tail -5 "$HK_WORK/mkdriver2.log")"
R=7
half=$((N / 2))
make_template hook createRuntime
make_bundles $R
before=$(hk_mounts)
rm -f "$HK_WORK/switched" "$HK_WORK/stop"
: >"$HK_WORK/loops.log"
(
	"$HK_GS" --root "$HK_WORK/drv2" --store "$HK_STORE" --driver "$V2" --caps all -q >"$HK_WORK/stage2.log" 2>&1 ||
		{ echo "staging $V2 failed: $(cat "$HK_WORK/stage2.log")" >>"$HK_WORK/loops.log"; exit 1; }
	for ((t = 0; t < 600; t++)); do
		[ "$(grep -l '^END$' "$HK_WORK/out/$(cid $R '')"* 2>/dev/null | wc -l)" -ge 5 ] && break
		sleep 0.1
	done
	cp "$HK_WORK/drv2/proc/driver/nvidia/version" "$HK_PROC/driver/nvidia/version.new"
	mv "$HK_PROC/driver/nvidia/version.new" "$HK_PROC/driver/nvidia/version"
	touch "$HK_WORK/switched"
	k=0
	while [ ! -e "$HK_WORK/stop" ]; do
		k=$((k + 1))
		"$HK_GS" gc --root "$HK_WORK" --store "$HK_STORE" --json >"$HK_WORK/gc.$k.json" 2>&1 ||
			echo "gc $k failed: $(cat "$HK_WORK/gc.$k.json")" >>"$HK_WORK/loops.log"
		a=0
		"$HK_GS" audit --all --json --audit-log "$HK_AUDIT" >"$HK_WORK/audit.$k.json" 2>&1 || a=$?
		echo "audit $k exit $a findings $(jq -c '[.containers[].findings[] | .finding] | unique' "$HK_WORK/audit.$k.json" 2>/dev/null)" >>"$HK_WORK/loops.log"
		"$HK_GS" --root "$HK_WORK/drv2" --store "$HK_STORE" --driver "$V2" --caps all -q >/dev/null 2>&1 ||
			echo "re-stage $k of $V2 failed" >>"$HK_WORK/loops.log"
		echo "$k" >"$HK_WORK/loops"
	done
) &
changer=$!
t0=$(date +%s%N)
starts $R hook 0 "$half"
for ((t = 0; t < 1200; t++)); do [ -e "$HK_WORK/switched" ] && break; sleep 0.1; done
[ -e "$HK_WORK/switched" ] || { touch "$HK_WORK/stop"; hk_fail "the module was never switched to $V2: $(cat "$HK_WORK/loops.log")"; }
starts $R hook "$half" "$N"
wait_jobs
wait_inside $R
ms=$((($(date +%s%N) - t0) / 1000000))
# two more loops after the last start, then stop
k0=$(cat "$HK_WORK/loops" 2>/dev/null || echo 0)
for ((t = 0; t < 600; t++)); do
	[ "$(cat "$HK_WORK/loops" 2>/dev/null || echo 0)" -ge $((k0 + 2)) ] && break
	sleep 0.1
done
touch "$HK_WORK/stop"
wait "$changer" || hk_fail "the staging/gc/audit loop failed: $(cat "$HK_WORK/loops.log")"
loops=$(cat "$HK_WORK/loops")
[ ! -s "$HK_WORK/failed" ] || hk_fail "re-stage round: $(wc -l <"$HK_WORK/failed") starts failed, e.g. $(cat "$HK_WORK/out/$(head -1 "$HK_WORK/failed")")"
if grep -v -e '^audit [0-9]* exit 0 findings \[\]$' "$HK_WORK/loops.log" | grep -q .; then
	hk_fail "during the starts: $(grep -v -e '^audit [0-9]* exit 0 findings \[\]$' "$HK_WORK/loops.log" | head -5)"
fi
starts_done=$((starts_done + N))
n1=0 n2=0
tables
for ((i = 0; i < N; i++)); do
	v=$(check_one $R "$i" createRuntime | cut -d' ' -f1)
	if [ "$v" = "$V1" ]; then n1=$((n1 + 1)); else n2=$((n2 + 1)); fi
done
[ "$n1" -ge 5 ] || hk_fail "only $n1 containers got $V1 (the switch waited for 5)"
[ "$n2" -ge "$half" ] || hk_fail "only $n2 containers got $V2 (the second half started after the switch)"
check_log "$starts_done"
check_audit "$N"
check_host_mounts "re-stage round"
# gc never removed a version in use: V1 still staged and whole, and each
# container sees exactly what it saw at start
[ -d "$HK_STORE/$V1" ] || hk_fail "gc removed $V1 while $n1 running containers used it: $(cat "$HK_WORK"/gc.*.json | head -20)"
jq -e --arg v "$V1" '.items[] | select(.name == $v) | .action == "keep" and (.reason | startswith("in use"))' "$HK_WORK/gc.$loops.json" >/dev/null ||
	hk_fail "the last gc did not keep $V1 as in use: $(cat "$HK_WORK/gc.$loops.json")"
for v in "$V1" "$V2"; do
	"$HK_GS" verify "$v" --store "$HK_STORE" >/dev/null || hk_fail "verify $v fails after the re-stage round"
done
for ((i = 0; i < N; i++)); do
	id=$(cid $R "$i")
	rc exec "$id" sh -c "$INSIDE" >"$HK_WORK/out/$id.again" 2>&1 || echo "$id" >>"$HK_WORK/failed" &
done
wait_jobs
[ ! -s "$HK_WORK/failed" ] || hk_fail "runc exec failed: $(cat "$HK_WORK/out/$(head -1 "$HK_WORK/failed").again")"
for ((i = 0; i < N; i++)); do
	id=$(cid $R "$i")
	[ "$(listing "$HK_WORK/out/$id.again")" = "$(listing "$HK_WORK/out/$id")" ] ||
		hk_fail "$id: after $loops gc runs its files changed: $(diff <(listing "$HK_WORK/out/$id") <(listing "$HK_WORK/out/$id.again") | head -5)"
done
stop_round $R
[ "$(hk_mounts)" = "$before" ] || hk_fail "re-stage round: the host's mount table changed: $(diff <(echo "$before") <(hk_mounts) | head -5)"
drop_bundles $R
# V1 unused now: gc removes it, keeps V2 (a killed container's processes
# may take a moment to exit: until then gc rightly keeps what they mount)
for ((t = 0; t < 40; t++)); do
	"$HK_GS" gc --root "$HK_WORK" --store "$HK_STORE" --json >"$HK_WORK/gc.last.json" || hk_fail "the last gc failed"
	[ -e "$HK_STORE/$V1" ] || break
	sleep 0.25
done
if [ -e "$HK_STORE/$V1" ]; then
	p=$(jq -r --arg v "$V1" '.items[] | select(.name == $v) | .pid' "$HK_WORK/gc.last.json")
	hk_fail "gc kept $V1 10 s after its containers were deleted: $(jq -c .items "$HK_WORK/gc.last.json"); pid $p: $(ps -o pid,ppid,stat,lstart,args -p "$p" 2>&1 | tail -1)"
fi
echo "load.sh: the last gc removed $V1 after $t retries"
"$HK_GS" verify "$V2" --store "$HK_STORE" >/dev/null || hk_fail "verify $V2 fails after the last gc"
hk_ok "re-stage round: $N starts in $ms ms while $V2 was staged and the module switched ($loops loops of gc, audit --all, re-stage): $n1 got $V1, $n2 got $V2, each whole; gc kept $V1 while in use, removed it after; audit clean throughout"

# ---- a version removed while its starts run --------------------------------------
# V1 again, asked for by name (--driver), while gc (V2 loaded) removes it
# whenever no running container shows it and a loop stages it again.  The
# containers exit after their checks and start in waves of 5, so V1 goes
# in and out of use.  The
# guarantee: a start gets the whole tree it opened (a tree gc renamed away
# meanwhile is kept until that start's mounts are made), or, when V1 was
# gone before it opened it, fails saying the driver is not staged.
R=8
"$HK_GS" --root "$HK_WORK/drv" --store "$HK_STORE" --driver "$V1" --caps all -q || hk_fail "re-staging $V1 failed"
make_template hook createRuntime true
jq --arg v "$V1" '.hooks.createRuntime[0].args |= (.[:-1] + ["--driver", $v] + .[-1:])' "$HK_WORK/tmpl/config.json" >"$HK_WORK/tmpl/c.json" &&
	mv "$HK_WORK/tmpl/c.json" "$HK_WORK/tmpl/config.json"
make_bundles $R
before=$(hk_mounts)
rm -f "$HK_WORK/stop" "$HK_WORK/failed"
: >"$HK_WORK/loops.log"
(
	k=0 gone=0
	while [ ! -e "$HK_WORK/stop" ]; do
		k=$((k + 1))
		[ -d "$HK_STORE/$V1" ] || "$HK_GS" --root "$HK_WORK/drv" --store "$HK_STORE" --driver "$V1" --caps all -q >/dev/null 2>&1 ||
			echo "re-stage $k of $V1 failed" >>"$HK_WORK/loops.log"
		"$HK_GS" gc --root "$HK_WORK" --store "$HK_STORE" >/dev/null 2>>"$HK_WORK/loops.log" || echo "gc $k failed" >>"$HK_WORK/loops.log"
		[ -d "$HK_STORE/$V1" ] || gone=$((gone + 1))
		echo "$k $gone" >"$HK_WORK/loops"
	done
) &
changer=$!
t0=$(date +%s%N)
# in waves of 5 with a pause between them: V1 unused, gc removes it, the
# loop stages it again while the next wave starts
for ((w = 0; w < N; w += 5)); do
	starts $R fg "$w" $((w + 5 < N ? w + 5 : N))
	wait_jobs
	sleep 0.3
done
ms=$((($(date +%s%N) - t0) / 1000000))
touch "$HK_WORK/stop"
wait "$changer" || true
[ ! -s "$HK_WORK/loops.log" ] || hk_fail "the gc/re-stage loop failed: $(head -5 "$HK_WORK/loops.log")"
read -r loops removed <"$HK_WORK/loops"
tables
ok=0 refused=0 old=0
for ((i = 0; i < N; i++)); do
	id=$(cid $R "$i")
	if grep -qx "$id" "$HK_WORK/failed" 2>/dev/null; then
		grep -q "driver $V1 is not staged" "$HK_WORK/out/$id" ||
			hk_fail "$id: the start failed without saying the driver is not staged: $(cat "$HK_WORK/out/$id")"
		! grep -q '^BEGIN$' "$HK_WORK/out/$id" || hk_fail "$id: the start failed, but the container's process ran"
		[ "$(awk -F'\t' -v id="$id" '$1 == id && $3 == "ok"' "$HK_WORK/recs.tsv" | wc -l)" -eq 0 ] ||
			hk_fail "$id: refused, yet an ok audit record"
		refused=$((refused + 1))
		continue
	fi
	res=$(check_one $R "$i" createRuntime gone)
	[ "${res%% *}" = "$V1" ] || hk_fail "$id: asked for $V1, got ${res%% *}"
	case ${res#* } in .tmp-*) old=$((old + 1)) ;; esac
	ok=$((ok + 1))
done
[ "$ok" -ge 1 ] || hk_fail "no start of the removal race got $V1"
[ "$removed" -ge 1 ] || hk_fail "the removal race did not race: gc never removed $V1 in $loops loops"
check_host_mounts "removal race"
[ -z "$(rc list -q)" ] || hk_fail "removal race: containers left: $(rc list -q | head -3)"
[ "$(hk_mounts)" = "$before" ] || hk_fail "removal race: the host's mount table changed: $(diff <(echo "$before") <(hk_mounts) | head -5)"
drop_bundles $R
check_log "$(wc -l <"$HK_WORK/recs.tsv")"
for ((t = 0; t < 40; t++)); do
	"$HK_GS" gc --root "$HK_WORK" --store "$HK_STORE" >/dev/null || hk_fail "gc after the removal race failed"
	[ -n "$(find "$HK_STORE" -mindepth 1 -maxdepth 1 -name "$V1" -o -mindepth 1 -maxdepth 1 -name '.tmp-*')" ] || break
	sleep 0.25
done
[ -z "$(find "$HK_STORE" -mindepth 1 -maxdepth 1 -name "$V1" -o -mindepth 1 -maxdepth 1 -name '.tmp-*')" ] ||
	hk_fail "after the removal race gc left: $(ls -a "$HK_STORE")"
"$HK_GS" verify "$V2" --store "$HK_STORE" >/dev/null || hk_fail "verify $V2 fails after the removal race"
starts_done=$((starts_done + ok))
hk_ok "removal race: $N starts of $V1 in $ms ms while gc removed it $removed times in $loops loops: $ok got it whole ($old from a copy gc had renamed away), $refused refused saying it is not staged; host mounts unchanged; nothing left after gc"
echo "load.sh: $starts_done containers started and checked"
