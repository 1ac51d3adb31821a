#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `gpu-stage ldcache dump FILE` prints exactly what `ldconfig -p -C FILE`
# prints (byte for byte, compared at test time against the real ldconfig),
# and `dump --json` lists the same entries in the same order, for:
#   - the host's /etc/ld.so.cache;
#   - the cache of a debootstrap'd Debian rootfs (fixtures/rootfs.sh);
#   - a generated tree of >= 5,000 real shared objects (fixtures/mktree.sh:
#     gcc/ld -soname, i386 objects from gcc -m32 and build/fixtures/mkelf32,
#     duplicate SONAMEs in several directories, glibc-hwcaps and legacy tls
#     subdirectories), cache written by the real `ldconfig -r`;
#   - the old (`-c old`) and compat (`-c compat`) formats: of a second
#     >= 5,000-entry tree (without hwcaps subdirectories: glibc 2.36's
#     ldconfig aborts writing those formats with glibc-hwcaps entries), of
#     the host's directories, and a compat cache with an odd entry count
#     (the new table then starts after 4 bytes of padding).
# The fixtures themselves are checked to contain what they are meant to
# (entry counts, i386/ELF/hwcap entries, duplicate keys), so the comparison
# cannot silently shrink.
#
# Environment: GS_BUILD (default build).  Needs root (ldconfig -r chroots,
# debootstrap), ldconfig, jq, gcc.  Exit 0 pass, 77 skipped (with the
# reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

GS=${GS_BUILD:-build}/gpu-stage
export LC_ALL=C

skip() { echo "ldcache_dump.sh: SKIP: $*" >&2; exit 77; }
fail() { echo "ldcache_dump.sh: FAIL: $*" >&2; exit 1; }

[ -x "$GS" ] || skip "$GS is not built (run make)"
[ "$(id -u)" -eq 0 ] || skip "needs root (ldconfig -r chroots into the fixture trees, debootstrap)"
for t in ldconfig jq gcc ld; do
	command -v "$t" >/dev/null || skip "$t is not installed (bash tests/deps.sh installs it)"
done
[ -s /etc/ld.so.cache ] || skip "the host has no /etc/ld.so.cache"

work=$(mktemp -d /tmp/gs-ldcache-dump-XXXXXX)
trap 'rm -rf "$work"' EXIT
cases=0

# Rows "key TAB type TAB hwcap TAB value" from `ldconfig -p` text on stdin
# (hwcap: the glibc-hwcaps name, the legacy mask as printed, or "-").
text_rows() {
	awk '/^\t/ {
		line = substr($0, 2)
		i = index(line, " ("); j = index(line, ") => ")
		key = substr(line, 1, i - 1); desc = substr(line, i + 2, j - i - 2)
		value = substr(line, j + 5); hw = "-"
		k = index(desc, ", hwcap: ")
		if (k) {
			h = substr(desc, k + 9); desc = substr(desc, 1, k - 1)
			hw = (substr(h, 1, 1) == "\"") ? substr(h, 2, length(h) - 2) : h
		}
		printf "%s\t%s\t%s\t%s\n", key, desc, hw, value
	}'
}

# check NAME FILE FORMAT MIN: dump == ldconfig -p, JSON agrees, >= MIN entries.
check() {
	local name=$1 file=$2 format=$3 min=$4 d=$work/out/$1
	mkdir -p "$d"
	ldconfig -p -C "$file" >"$d/expected" 2>"$d/ldconfig.err" ||
		fail "$name: ldconfig -p -C $file failed: $(head -3 "$d/ldconfig.err")"
	local n
	n=$(head -1 "$d/expected" | awk '{print $1}')
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge "$min" ] ||
		fail "$name: fixture too small: ldconfig lists '$n' entries in $file, want >= $min"
	"$GS" ldcache dump "$file" >"$d/got" 2>"$d/err" ||
		fail "$name: gpu-stage ldcache dump $file failed: $(head -3 "$d/err")"
	if ! cmp -s "$d/expected" "$d/got"; then
		diff -u "$d/expected" "$d/got" | head -20 >&2
		fail "$name: dump of $file differs from ldconfig -p -C (diff above)"
	fi
	[ ! -s "$d/err" ] || fail "$name: dump printed to stderr: $(head -3 "$d/err")"

	"$GS" ldcache dump --json "$file" >"$d/json" 2>"$d/err" ||
		fail "$name: dump --json $file failed: $(head -3 "$d/err")"
	jq -e . "$d/json" >/dev/null || fail "$name: dump --json output is not valid JSON"
	[ "$(jq -r .format "$d/json")" = "$format" ] ||
		fail "$name: dump --json says format $(jq -r .format "$d/json"), want $format"
	[ "$(jq -r .count "$d/json")" = "$n" ] && [ "$(jq '.entries | length' "$d/json")" = "$n" ] ||
		fail "$name: dump --json count $(jq -r .count "$d/json") / $(jq '.entries | length' "$d/json") entries, ldconfig lists $n"
	text_rows <"$d/expected" >"$d/rows.text"
	jq -r '.entries[] | [.key, .type,
		(.hwcaps // (if .hwcap == "0x0000000000000000" then "-" else .hwcap end)), .value] | @tsv' \
		"$d/json" >"$d/rows.json"
	[ "$(wc -l <"$d/rows.text")" -eq "$n" ] || fail "$name: could not parse ldconfig's lines"
	if ! cmp -s "$d/rows.text" "$d/rows.json"; then
		diff -u "$d/rows.text" "$d/rows.json" | head -20 >&2
		fail "$name: dump --json entries differ from ldconfig -p (key, type, hwcap, value; diff above)"
	fi
	cases=$((cases + 1))
	echo "ok: $name ($n entries, $format format)"
}

# expect_line NAME FILE EREGEX: ldconfig's own listing contains such a line.
expect_line() {
	grep -Eq -- "$3" "$work/out/$1/expected" || fail "$1: fixture lacks an entry matching /$3/ in $2"
}

# --- the host's cache -----------------------------------------------------
check host /etc/ld.so.cache new 1

# --- a debootstrap'd Debian rootfs --------------------------------------------
rootfs=$(bash fixtures/rootfs.sh 2>"$work/rootfs.err") ||
	skip "fixtures/rootfs.sh could not provide a Debian rootfs: $(tail -3 "$work/rootfs.err")"
check debian-rootfs "$rootfs/etc/ld.so.cache" new 20
expect_line debian-rootfs "$rootfs" '^	libc\.so\.6 \(libc6,x86-64\) => '

# --- >= 5,000 real objects: i386, duplicates, glibc-hwcaps, legacy hwcap -------
bash fixtures/mktree.sh "$work/big" --count 5000 --i386 --dups --hwcaps 2>"$work/mktree.err" ||
	fail "fixtures/mktree.sh failed: $(tail -5 "$work/mktree.err")"
big=$work/big/etc/ld.so.cache
check big-new "$big" new 5000
expect_line big-new "$big" '^	libgsonly32\.so\.2 \(libc6\) => /usr/lib/i386-linux-gnu/'
expect_line big-new "$big" '^	libgsonly32e\.so\.2 \(ELF\) => /usr/lib/i386-linux-gnu/'
expect_line big-new "$big" '^	libgsmini32\.so\.1 \(libc6\) => '   # written by mkelf32
expect_line big-new "$big" '^	libgsmini32e\.so\.1 \(ELF\) => '    # written by mkelf32
expect_line big-new "$big" 'hwcap: "x86-64-v3"\) => '
expect_line big-new "$big" 'hwcap: 0x8000000000000000\) => .*/tls/'
expect_line big-new "$big" 'hwcap: 0x8004000000000000\) => .*/haswell/tls/'
ndup=$(grep -Ec '^	libgsdup\.so\.1 \(libc6,x86-64\) => /opt/gsdup/[abc]/' "$work/out/big-new/expected" || true)
[ "$ndup" -ge 3 ] || fail "big-new: want libgsdup.so.1 in 3 directories, ldconfig lists $ndup"
n32=$(grep -Ec '^	[^ ]+ \((libc6|ELF)\) => /usr/lib/i386-linux-gnu/' "$work/out/big-new/expected" || true)
[ "$n32" -ge 100 ] || fail "big-new: only $n32 i386 entries"

# --- old and compat formats ----------------------------------------------------
bash fixtures/mktree.sh "$work/fmt" --count 5001 --i386 --dups --format old 2>"$work/mktree.err" ||
	fail "fixtures/mktree.sh --format old failed: $(tail -5 "$work/mktree.err")"
ldconfig -X -r "$work/fmt" -c compat -C /etc/ld.so.cache.compat 2>/dev/null ||
	fail "ldconfig -r $work/fmt -c compat failed"
ldconfig -X -r "$work/fmt" -c new -C /etc/ld.so.cache.new 2>/dev/null ||
	fail "ldconfig -r $work/fmt -c new failed"
check big-old "$work/fmt/etc/ld.so.cache" old 5000
check big-compat "$work/fmt/etc/ld.so.cache.compat" compat 5000
check big-new-2 "$work/fmt/etc/ld.so.cache.new" new 5000
for f in old compat; do
	expect_line big-$f "$work/fmt" '^	libgsonly32\.so\.2 \(libc6\) => '
	cmp -s <(tail -n +2 "$work/out/big-$f/expected" | grep -v '^Cache generated by') \
		<(tail -n +2 "$work/out/big-new-2/expected" | grep -v '^Cache generated by') ||
		fail "fixture: ldconfig lists different entries for the $f and new caches of one tree"
done

# The host's directories in all three formats (-X: no links made, -i: the
# host's aux cache is neither read nor written).
for f in new old compat; do
	ldconfig -X -i -c "$f" -C "$work/host-$f.cache" 2>/dev/null ||
		fail "ldconfig -c $f -C $work/host-$f.cache failed"
	check "host-$f" "$work/host-$f.cache" "$f" 1
done

# A compat cache with an odd entry count: 16 + 12 * odd is not a multiple
# of 8, so the new table starts after padding.  ldconfig -f CONF scans CONF's
# directories plus the built-in ones; add one or two libraries to make the
# total odd.
mkdir -p "$work/odd/lib"
: >"$work/odd/empty.conf"
ldconfig -X -i -f "$work/odd/empty.conf" -C "$work/odd/base.cache" 2>/dev/null ||
	fail "ldconfig -f $work/odd/empty.conf failed"
base=$(ldconfig -p -C "$work/odd/base.cache" | awk 'NR == 1 { print $1 }')
extra=$((base % 2 ? 2 : 1))
echo 'int gs_odd(void) { return 1; }' >"$work/odd/o.c"
for ((i = 1; i <= extra; i++)); do
	gcc -shared -fPIC -Wl,-soname,libgsodd$i.so.1 -o "$work/odd/lib/libgsodd$i.so.1" "$work/odd/o.c"
done
echo "$work/odd/lib" >"$work/odd/odd.conf"
ldconfig -X -i -f "$work/odd/odd.conf" -c compat -C "$work/odd/odd.cache" 2>/dev/null ||
	fail "ldconfig -f $work/odd/odd.conf -c compat failed"
check compat-odd "$work/odd/odd.cache" compat 1
n=$(head -1 "$work/out/compat-odd/expected" | awk '{print $1}')
[ $((n % 2)) -eq 1 ] || fail "compat-odd: fixture has an even entry count ($n)"
expect_line compat-odd "$work/odd" "^	libgsodd1\.so\.1 \(libc6,x86-64\) => $work/odd/lib/libgsodd1\.so\.1\$"

echo "ldcache_dump.sh: $cases caches identical to ldconfig -p"
