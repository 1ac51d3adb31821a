# shellcheck shell=bash disable=SC2154 # $work, $N, $GS, $SRC, $B (the build dir), $ROWS: set by bench/run
# SPDX-License-Identifier: Apache-2.0
# Helpers of bench/run (sourced, not run): timing, medians, the table's rows,
# and the clean-up of everything a benchmark made (mounts, containers, temp
# dirs).  Expects $work (the bench work dir), $N and $ROWS (the rows file).

log() { printf 'bench: %s\n' "$*" >&2; }
# die MSG: ends the current group (each group runs in its own subshell); the
# message also goes to $work/die.msg, for the group's FAIL row.
die() {
	printf 'bench/run: %s\n' "$*" >&2
	printf '%s\n' "$*" >"$work/die.msg"
	exit 1
}

# sample FILE CMD...: runs CMD (a program or a function of this shell; a
# function must return non-zero itself on failure, errexit does not apply
# inside it here) with its output discarded and appends its wall time in µs
# to FILE.  Timed with $EPOCHREALTIME: no fork besides CMD's own.
sample() {
	local f=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>"$work/sample.err" || die "failed: $* ($(tail -n 3 "$work/sample.err"))"
	t1=$EPOCHREALTIME
	echo $((${t1/./} - ${t0/./})) >>"$f"
}

# median FILE [COLUMN]: the median of the numbers in that column (default 1).
median() {
	awk -v c="${2:-1}" '{ print $c }' "$1" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print v[int((NR + 1) / 2)] }'
}
count() { wc -l <"$1" | tr -d ' '; }

# time_pair K FILE_A FILE_B CMD_A... -- CMD_B...: one warm-up run of each,
# then K rounds of both, the order swapped every round (A B, B A, ...).
time_pair() {
	local k=$1 fa=$2 fb=$3 a=() b=() seen=0 x i
	shift 3
	for x in "$@"; do
		if [ "$x" = "--" ]; then seen=1; continue; fi
		if [ $seen -eq 0 ]; then a+=("$x"); else b+=("$x"); fi
	done
	"${a[@]}" >/dev/null 2>"$work/sample.err" || die "failed: ${a[*]} ($(tail -n 3 "$work/sample.err"))"
	"${b[@]}" >/dev/null 2>"$work/sample.err" || die "failed: ${b[*]} ($(tail -n 3 "$work/sample.err"))"
	: >"$fa"
	: >"$fb"
	for ((i = 0; i < k; i++)); do
		if ((i % 2 == 0)); then
			sample "$fa" "${a[@]}"; sample "$fb" "${b[@]}"
		else
			sample "$fb" "${b[@]}"; sample "$fa" "${a[@]}"
		fi
	done
}

# ---- cells -------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
# ratio A B: A / B, two decimals; "n/a" when B <= 0
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.2f", a / b }'; }
# ge X Y: X >= Y (X may be "n/a": false)
ge() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x != "n/a" && x + 0 >= y + 0) }'; }

# row ID MEASURED N BASELINE OURS RATIO TARGET RESULT: one table row, as text.
row() {
	local IFS=$'\t'
	printf '%s\n' "$*" >>"$ROWS"
}

# speedup_row ID MEASURED K BASE_US OURS_US [MIN]: ratio = baseline / ours;
# PASS when it is >= MIN, a report row when MIN is empty.
speedup_row() {
	local r target=report res=—
	r=$(ratio "$4" "$5")
	if [ -n "${6:-}" ]; then
		target="≥ $6×"
		if ge "$r" "$6"; then res=PASS; else res=MISS; fi
	fi
	row "$1" "$2" "$3" "$(ms "$4")" "$(ms "$5")" "$r×" "$target" "$res"
}

# within_row ID MEASURED K BASE_US OURS_US MAX_US TARGET_TEXT: ratio =
# baseline / ours (context); PASS when ours <= MAX_US (an absolute target of
# the design, e.g. "tens of ms").
within_row() {
	local r res=MISS
	r=$(ratio "$4" "$5")
	[ "$5" -le "$6" ] && res=PASS
	row "$1" "$2" "$3" "$(ms "$4")" "$(ms "$5")" "$r×" "$7" "$res"
}

# print_table: the rows file as one markdown table (readable as it is).
print_table() {
	{
		printf '#\tmeasured (ours vs baseline)\tn\tbaseline\tours\tratio (baseline/ours)\ttarget\tresult\n'
		sort -t "$(printf '\t')" -k1,1V "$ROWS"
	} | awk -F '\t' '
		function width(s) { return length(s) - gsub(/[\200-\277]/, "&", s) } # UTF-8 aware
		function pad(s, n) { while (width(s) < n) s = s " "; return s }
		{
			for (i = 1; i <= NF; i++) {
				gsub(/\|/, "\\|", $i) # a cell holding "|" (a failure message)
				c[NR, i] = $i
				if (width($i) > w[i]) w[i] = width($i)
			}
			if (NF > nf) nf = NF
		}
		END {
			for (r = 1; r <= NR; r++) {
				line = "|"
				for (i = 1; i <= nf; i++) line = line " " pad(c[r, i], w[i]) " |"
				print line
				if (r == 1) {
					line = "|"
					for (i = 1; i <= nf; i++) { d = ""; while (length(d) < w[i] + 2) d = d "-"; line = line d "|" }
					print line
				}
			}
		}'
}

# ---- clean-up ------------------------------------------------------------------
# Containers are named $CTR_PREFIX-...; paths outside $work to remove on exit
# are listed in $work/.cleanup (one a line).
CTR_PREFIX=gsb-$$
cleanup_later() { printf '%s\n' "$1" >>"$work/.cleanup"; }

bench_cleanup() {
	local id m p
	set +e # best effort: every step runs whatever the one before did
	[ -n "${work:-}" ] && [ -d "$work" ] || return 0
	if command -v runc >/dev/null; then
		runc list -q 2>/dev/null | grep "^$CTR_PREFIX-" | while read -r id; do
			runc delete -f "$id" >/dev/null 2>&1 || true
		done
	fi
	awk -v p="$work/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	if [ -f "$work/.cleanup" ]; then
		while read -r p; do [ -n "$p" ] && rm -rf --one-file-system "$p"; done <"$work/.cleanup"
	fi
	rm -rf --one-file-system "$work"
}
