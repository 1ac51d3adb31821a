#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The hook's audit log is bounded: audit_log_max / audit_log_keep in the
# configuration make gpu-stage-hook rotate hook.log -> hook.log.1 -> ... under
# the flock every writer holds.  50 concurrent hook processes, 10 records
# each, a 2 KiB cap (many rotations): every record is in exactly one of the
# files, every line is valid JSON (jq; an interleaved write would not be), no
# file is over the cap, no more than audit_log_keep rotated files.  A writer
# that opened the log before another rotated it (it waits on the old inode's
# lock while the rotation happens) still lands its record in the current
# file.  The records come from the hook's cheapest recording path: a
# container whose only request is its environment under "requests":
# "orchestrator" gets one "ignored" line (no namespace work, no root needed).
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
HOOK=${GS_BUILD:-build}/gpu-stage-hook
need_built "$HOOK"
need_tools jq flock
make_work
HOOK=$(readlink -f "$HOOK")

mkdir -p "$work/b/rootfs"
cat >"$work/b/config.json" <<'EOF'
{"ociVersion": "1.0.2", "root": {"path": "rootfs"},
 "process": {"env": ["NVIDIA_VISIBLE_DEVICES=all"], "args": ["true"], "cwd": "/"},
 "linux": {"namespaces": [{"type": "mount"}]}}
EOF
conf() { printf '{"requests": "orchestrator", "audit_log_max": %s, "audit_log_keep": %s}\n' "$1" "$2" >"$work/conf.json"; }
LOG=$work/log/hook.log
# one record for container ID
write() {
	printf '{"ociVersion": "1.0.2", "id": "%s", "status": "creating", "pid": 1, "bundle": "%s"}' "$1" "$work/b" |
		"$HOOK" --config "$work/conf.json" --audit-log "$LOG" prestart
}

# --- 50 writers at once, 10 records each, a 2 KiB cap -------------------------
conf 2048 1000
for w in $(seq 1 50); do
	(for i in $(seq 1 10); do write "w$w-r$i" || exit 1; done) &
done
bad=0
for job in $(jobs -p); do wait "$job" || bad=$((bad + 1)); done
[ "$bad" -eq 0 ] || fail "$bad writers failed"
files=("$LOG" "$LOG".*)
[ "${#files[@]}" -ge 20 ] || fail "expected many rotations, got ${#files[@]} files"
for f in "${files[@]}"; do
	jq -e -c 'select(.result == "ignored" and (.container | test("^w[0-9]+-r[0-9]+$")))' "$f" >/dev/null ||
		fail "$f: not one JSON record a line (interleaved?): $(head -c 600 "$f")"
	[ "$(wc -l <"$f")" -eq "$(jq -c . "$f" | wc -l)" ] || fail "$f: a line is not a whole record"
	[ "$(stat -c %s "$f")" -le 2048 ] || fail "$f: $(stat -c %s "$f") bytes, over the 2048-byte cap"
done
jq -r .container "${files[@]}" | sort >"$work/got"
seq 1 50 | while read -r w; do seq 1 10 | sed "s/^/w$w-r/"; done | sort >"$work/want"
dups=$(uniq -d "$work/got" | head -3)
[ -z "$dups" ] || fail "records written twice: $dups"
cmp -s "$work/got" "$work/want" || fail "records lost: $(comm -13 "$work/got" "$work/want" | head -5 | tr '\n' ' ')"
ok() { echo "$T: ok: $*"; }
ok "50 concurrent writers, 500 records, 2 KiB cap: ${#files[@]} files, every record exactly once, each a JSON line, none over the cap"

# --- the oldest rotated file goes: at most audit_log_keep of them ------------
rm -rf "$work/log"
conf 1024 3
for i in $(seq 1 40); do write "k$i"; done
n=$(find "$work/log" -name 'hook.log.*' | wc -l)
[ "$n" -eq 3 ] || fail "audit_log_keep 3: $n rotated files: $(ls "$work/log")"
jq -r .container "$LOG" "$LOG".* | grep -qx k40 || fail "the newest record is missing"
jq -r .container "$LOG" | grep -qx k1 && fail "the oldest record is still in the current file"
[ -e "$LOG.4" ] && fail "hook.log.4 kept with audit_log_keep 3"
ok "audit_log_keep 3: three rotated files, the oldest dropped"

# --- a writer that opened the old inode before a rotation --------------------
rm -rf "$work/log"
conf 1000000 5
write first
# hold the current file's lock; the writer opens hook.log (the old inode) and
# waits on its lock; meanwhile the file is rotated away (as a rotating writer
# does, under that lock); released, the writer must follow the name
cat >"$work/rotate.sh" <<'EOF'
# run under flock(1) holding LOG's lock (its pid: $PPID): start a writer,
# wait until it has LOG open, rotate LOG away, let go
log=$1 hook=$2 conf=$3 bundle=$4 out=$5
printf '{"ociVersion": "1.0.2", "id": "late", "status": "creating", "pid": 1, "bundle": "%s"}' "$bundle" |
	"$hook" --config "$conf" --audit-log "$log" prestart &
for i in $(seq 1 100); do
	find /proc/[0-9]*/fd -lname "$log" 2>/dev/null | grep -qv "^/proc/$PPID/" && break
	sleep 0.05
done
find /proc/[0-9]*/fd -lname "$log" 2>/dev/null | grep -v "^/proc/$PPID/" | grep -q . && echo opened >"$out"
sleep 0.2
mv "$log" "$log.1"
EOF
flock -o "$LOG" bash "$work/rotate.sh" "$LOG" "$HOOK" "$work/conf.json" "$work/b" "$work/rotated"
[ -s "$work/rotated" ] || fail "the writer did not have hook.log open before the rotation"
for i in $(seq 1 50); do [ -s "$LOG" ] && break; sleep 0.1; done
[ "$(jq -r .container "$LOG")" = late ] || fail "the waiting writer's record is not in the new hook.log: $(cat "$LOG" 2>&1)"
[ "$(jq -r .container "$LOG.1")" = first ] || fail "hook.log.1 changed: $(cat "$LOG.1")"
ok "a writer that opened hook.log before it was rotated writes into the new hook.log"

# --- a cap of 0: never rotated ------------------------------------------------
rm -rf "$work/log"
conf 0 2
for i in $(seq 1 10); do write "z$i"; done
[ "$(find "$work/log" -name 'hook.log.*' | wc -l)" -eq 0 ] || fail "audit_log_max 0 rotated"
[ "$(jq -r .container "$LOG" | wc -l)" -eq 10 ] || fail "audit_log_max 0: records missing"
ok "audit_log_max 0: one file, never rotated"
