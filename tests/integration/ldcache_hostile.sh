#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ld.so.cache files crafted to cost memory and disk out of proportion to
# their size (fixtures/mkhostile: every entry pointing at one long string,
# at distinct suffixes of it, the most entries that fit, the old format's
# 12-byte entries; strings longer than any name or path; a file over the
# reader's 4 MiB limit).  For each, through
#   gpu-stage ldcache dump FILE
#   gpu-stage ldcache update --root ROOT DIR   (FILE as ROOT/etc/ld.so.cache)
#   gpu-stage-hook in a real runc container    (FILE as the image's cache;
#                                               writable and read-only root)
# the peak RSS (GNU time's %M, of the release build, which is what runs on
# hosts) stays at most 8 x the file size + 8 MiB and never above 64 MiB; a
# cache written from it is at most 2 x its size + 64 KiB; the valid ones
# keep all their entries, the invalid ones are refused with the reason
# ("longer than 255 bytes", "too large") -- by the CLI with exit 1, by the
# hook with a staged-only cache and the reason in the audit record, and the
# container still loads libcuda.so.1.  The code that landed before this
# test peaked at 1.5 GB dumping oldshared.cache, and at 2.2 GB updating
# over shared.cache, writing a 764 MB cache.
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup ldcache_hostile.sh
command -v /usr/bin/time >/dev/null || hk_skip "GNU time is not installed (bash tests/deps.sh)"
command -v cc >/dev/null || hk_skip "no C compiler"
REL_GS=build/gpu-stage
REL_HOOK=$(hk_abs build/gpu-stage-hook)
MK=$HK_BUILD/fixtures/mkhostile
[ -x "$MK" ] || MK=build/fixtures/mkhostile
for f in "$REL_GS" "$REL_HOOK" "$MK"; do [ -x "$f" ] || hk_skip "$f is not built (make)"; done
MAX=4194304 # LDC_FILE_MAX (include/gs/ldcache.h)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86
# Two sets: files as large as the reader takes (the cost must stay bounded;
# merged with more entries they may outgrow what a cache may be, and are
# then refused clearly: "more than"), and files of a quarter of that,
# whose every entry must survive a merge.
H=$HK_WORK/hostile
mkdir -p "$H/full" "$H/quarter"
"$MK" "$H/full" "$MAX" | sed 's|^|full/|' >"$H/list" || hk_fail "mkhostile failed"
"$MK" "$H/quarter" $((MAX / 4)) | grep 'ok$' | sed 's|^|quarter/|; s|ok$|keep|' >>"$H/list" ||
	hk_fail "mkhostile failed"
[ "$(wc -l <"$H/list")" -eq 11 ] || hk_fail "mkhostile wrote $(wc -l <"$H/list") files, expected 11"

# rss_ok WHAT FILE KB: the peak RSS KB of a run that read FILE is bounded.
rss_ok() {
	local what=$1 size lim
	size=$(stat -c %s "$2")
	lim=$(((8 * size + 8 * 1048576) / 1024))
	[ "$lim" -le 65536 ] || lim=65536
	[ "$3" -le "$lim" ] || hk_fail "$what: peak RSS $3 KiB, more than the bound $lim KiB"
}
# written_ok WHAT IN OUT: a cache written from IN is bounded by IN's size.
written_ok() {
	local a b
	a=$(stat -c %s "$2")
	b=$(stat -c %s "$3")
	[ "$b" -le $((2 * a + 65536)) ] || hk_fail "$1: wrote a $b-byte cache from a $a-byte one"
}
peak() { tail -n 1 "$1"; }

# A library for `update` to add.
mkdir -p "$HK_WORK/lib"
echo 'int gs_hostile(void) { return 1; }' >"$HK_WORK/lib/h.c"
cc -shared -fPIC -Wl,-soname,libgshostile.so.1 -o "$HK_WORK/lib/libgshostile.so.1" "$HK_WORK/lib/h.c"

while IFS=$'\t' read -r -u 3 name expect; do
	f=$H/$name
	# dump: the sanitizer build for correctness, the release build for cost
	rc=0
	"$HK_GS" ldcache dump "$f" >"$H/dump" 2>"$H/err" || rc=$?
	if [ "$expect" != "${expect#ok}" ] || [ "$expect" = keep ]; then
		[ $rc -eq 0 ] || hk_fail "dump $name: exit $rc: $(head -c 300 "$H/err")"
		n=$(head -n 1 "$H/dump" | awk '{print $1}') # "N libs found in cache"
		[ "$n" -gt 1000 ] || hk_fail "dump $name: only $n entries"
	else
		[ $rc -eq 1 ] || hk_fail "dump $name: exit $rc, expected 1"
		grep -q "gpu-stage: $f: .*$expect" "$H/err" || hk_fail "dump $name: message lacks '$expect': $(cat "$H/err")"
	fi
	/usr/bin/time -f %M -o "$H/t" "$REL_GS" ldcache dump "$f" >/dev/null 2>&1 || true
	rss_ok "dump $name" "$f" "$(peak "$H/t")"

	# update over it
	R=$HK_WORK/root-${name%%/*}-${name#*/}
	mkdir -p "$R/etc" "$R/lib/gs"
	cp "$HK_WORK/lib/libgshostile.so.1" "$R/lib/gs/"
	cp "$f" "$R/etc/ld.so.cache"
	rc=0
	/usr/bin/time -f %M -o "$H/t" "$REL_GS" ldcache update --root "$R" /lib/gs >"$H/out" 2>"$H/err" || rc=$?
	rss_ok "update over $name" "$f" "$(peak "$H/t")"
	if [ "$expect" = ok ] && [ $rc -ne 0 ]; then
		# too many entries to take one more: refused, the cache left alone
		grep -q "more than the 4194304 bytes a cache may have" "$H/err" ||
			hk_fail "update over $name: exit $rc without the reason: $(head -c 300 "$H/err")"
		cmp -s "$f" "$R/etc/ld.so.cache" || hk_fail "update over $name failed and changed the cache"
	else
		[ $rc -eq 0 ] || hk_fail "update over $name failed: $(head -c 300 "$H/err")"
		written_ok "update over $name" "$f" "$R/etc/ld.so.cache"
		"$HK_GS" ldcache dump "$R/etc/ld.so.cache" >"$H/after" || hk_fail "update over $name wrote an unreadable cache"
		grep -q 'libgshostile.so.1 (libc6,x86-64) => /lib/gs/libgshostile.so.1' "$H/after" ||
			hk_fail "update over $name: the added library is not in the cache"
		if [ "$expect" = ok ] || [ "$expect" = keep ]; then
			got=$(head -n 1 "$H/after" | awk '{print $1}')
			[ "$got" -eq $((n + 1)) ] ||
				hk_fail "update over $name: $got entries, expected every old entry ($n) plus one"
		else
			grep -q "$expect" "$H/err" || hk_fail "update over $name: no reason given: $(cat "$H/err")"
		fi
	fi
	rm -rf "$R"
	hk_ok "$name: dump and update bounded ($expect)"
done 3<"$H/list"

# The hook, with each as the image's /etc/ld.so.cache.
SCRIPT='/opt/gs-probe libcuda.so.1 && echo PROBE_OK; wc -c </etc/ld.so.cache | sed "s/^/CACHE_BYTES /"'
n=0
while IFS=$'\t' read -r -u 3 name expect; do
	for ro in false true; do
		n=$((n + 1))
		id=gs-lh-$$-$n
		hk_bundle "lh$n"
		cp "$H/$name" "$HK_B/rootfs/etc/ld.so.cache"
		hk_config "$HK_B" createRuntime "$ro" '["NVIDIA_VISIBLE_DEVICES=none"]' "$SCRIPT"
		# the release hook under GNU time (the hook entry's path is time)
		jq --arg t "$HK_WORK/$id.time" --arg h "$REL_HOOK" '.hooks.createRuntime[0] |= (.path = "/usr/bin/time" |
			.args = ["time", "-f", "%M", "-o", $t, $h] + .args[1:])' "$HK_B/config.json" >"$HK_B/c" &&
			mv "$HK_B/c" "$HK_B/config.json"
		hk_runc "$HK_B" "$id" || hk_fail "hook, $name, read-only $ro: the container failed: $(tail -c 600 "$HK_WORK/$id.out")"
		grep -q '^PROBE_OK$' "$HK_WORK/$id.out" || hk_fail "hook, $name, read-only $ro: libcuda.so.1 not loaded: $(tail -c 600 "$HK_WORK/$id.out")"
		rss_ok "hook, $name, read-only $ro" "$H/$name" "$(peak "$HK_WORK/$id.time")"
		got=$(sed -n 's/^CACHE_BYTES //p' "$HK_WORK/$id.out")
		[ "$got" -le $((2 * $(stat -c %s "$H/$name") + 65536)) ] ||
			hk_fail "hook, $name, read-only $ro: the container's cache is $got bytes"
		rec=$(tail -n 1 "$HK_AUDIT")
		if [ "$expect" = keep ]; then
			echo "$rec" | grep -q 'merged: [0-9]* staged + [1-9][0-9]* image entries' ||
				hk_fail "hook, $name: the image's entries were not kept: ${rec:0:400}"
		elif [ "$expect" = ok ]; then
			echo "$rec" | grep -Eq 'merged: [0-9]* staged \+ [1-9][0-9]* image entries|too large once merged' ||
				hk_fail "hook, $name: neither kept nor a reason: ${rec:0:400}"
		else
			echo "$rec" | grep -q "$expect" || hk_fail "hook, $name: the audit record does not say why the image's cache was dropped: ${rec:0:400}"
		fi
		hk_ok "hook, $name, read-only $ro: peak $(peak "$HK_WORK/$id.time") KiB, cache $got bytes, libcuda.so.1 loads"
	done
done 3<"$H/list"
