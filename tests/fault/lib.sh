# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Shared helpers of tests/integration/fault_*.sh (sourced after tests/lib.sh
# or fixtures/hook_lib.sh): the fault build's control folder, counting runs,
# the injection points and the rules every injected run is judged by.
#
# The fault build (make BUILD=build/san SAN=1 fault) is $GS_BUILD/fault/;
# its control folder is compiled in (tests/fault/Makefile.frag FAULT_DIR,
# default /run/gpu-stage-fault): one fault test at a time (flock).
#
# ft_setup              checks the fault build, takes the lock, makes the folder
# ft_cleanup            removes it (call it from the test's EXIT trap)
# ft_hk_setup NAME      both, and hook_lib.sh's hk_setup with the fault build's hook
# ft_plan [LINE]        the plan for the next run ("BIN CALL N ERR [TIMES]";
#                       none: count only); clears the reports
# ft_report BIN         the report file of BIN's one run (fails unless one)
# ft_points BIN EXTRA   from a counting run's report: "CALL N ERR" per
#                       injection point: each call site's first call with each
#                       errno ft_errs gives for the call, plus EXTRA more points
#                       spread evenly over each call's other indices (errnos in
#                       turn)
# ft_sample MAX        at most MAX lines of stdin, evenly
# ft_fired BIN          "CALL N ERR OFFSET OUTER" of the fault that fired, or nothing
# ft_func BIN OFFSET OUTER
#                       the function (innermost inline) of a call site
# ft_must_retry CALL ERR FUNC
#                       true when FUNC claims to retry CALL's ERR (a bounded
#                       loop in the code): then one such failure must not fail
#                       the operation
# ft_fired_func BIN PATH
#                       the function of the site where BIN's fault fired; false
#                       when it did not fire (the run took another path)
# ft_two_outcomes WHAT RC OUT WANT MSG CALL ERR FUNC
#                       a runc start: complete set, or not started with a message
# ft_no_sanitizer WHAT LOG
#                       fails on a sanitizer report in LOG
# ft_clean_exit WHAT RC LOG
#                       the two-outcome rule's common part: exit 0, or 1 with a
#                       "PROGRAM: ..." message; never a sanitizer report, a
#                       signal or a timeout
# ft_no_fds BIN WHAT    no descriptor of ours open at exit (the report's "fd" lines)

# ft_inside OUT         what FT_INSIDE (a container's sh -c script: libcuda.so.1 in
#                       ldconfig -p, gs-probe dlopens it, every file under
#                       /run/gpu-stage, /dev/nvidia0, END) printed in OUT

FT_DIR=${GS_FAULT_DIR:-/run/gpu-stage-fault}
# shellcheck disable=SC2034 # used by the tests that source this
FT_INSIDE='ldconfig -p | grep -q "libcuda.so.1 (libc6,x86-64) => /run/gpu-stage/lib/compute/libcuda.so.1" && echo LDCONFIG_OK
/opt/gs-probe libcuda.so.1 >/dev/null 2>&1 && echo PROBE_OK
find /run/gpu-stage -printf "SEE %p %y %m\n" | sort
[ -c /dev/nvidia0 ] && echo DEV0
echo END'
ft_inside() { grep -E '^(LDCONFIG_OK|PROBE_OK|SEE |DEV0|END)' "$1" || true; }
FT_BUILD=${GS_BUILD:-build}/fault

ft_setup() {
	need_root "the fault build's control folder $FT_DIR"
	need_built "$FT_BUILD/gpu-stage" "$FT_BUILD/gpu-stage-hook" "$FT_BUILD/gpu-runtime"
	need_tools addr2line flock timeout
	exec 8>"$FT_DIR.lock"
	flock -w 900 8 || fail "another fault test holds $FT_DIR.lock"
	rm -rf "$FT_DIR"
	mkdir -p "$FT_DIR/out"
}

ft_cleanup() { rm -rf "$FT_DIR"; }

# ft_hk_setup NAME: ft_setup, then fixtures/hook_lib.sh's hk_setup with the
# fault build's hook (the runc tests)
ft_hk_setup() {
	ft_setup
	# shellcheck disable=SC2034 # fixtures/hook_lib.sh's
	HK_HOOK=$FT_BUILD/gpu-stage-hook
	hk_setup "$1"
	trap 'hk_cleanup; ft_cleanup' EXIT
}

ft_plan() {
	rm -f "$FT_DIR"/out/* "$FT_DIR/plan"
	[ $# -eq 0 ] || echo "$*" >"$FT_DIR/plan"
}

ft_report() {
	local f n
	n=$(find "$FT_DIR/out" -maxdepth 1 -name "$1.*" ! -name '*.tmp' | wc -l)
	[ "$n" -eq 1 ] || fail "expected one report of $1 in $FT_DIR/out, found $n"
	f=$(find "$FT_DIR/out" -maxdepth 1 -name "$1.*" ! -name '*.tmp')
	echo "$f"
}

# The errnos a call can meet: the issue's list (ENOSPC, EIO, EINTR, EAGAIN,
# EPERM, ENOMEM, a short read or write, ENOENT for a vanished file) as each
# call can return them.
ft_errs() {
	case $1 in
	open | openat) echo ENOENT EPERM EIO EINTR ;;
	openat2) echo ENOENT EPERM EAGAIN EINTR ;;
	read | pread) echo EIO EINTR short ;;
	write | copy_file_range) echo ENOSPC EIO EINTR short ;;
	fsync | syncfs | sync_file_range | ftruncate) echo EIO ENOSPC ;;
	fchmod | fchown | fchownat) echo EPERM EIO ;;
	mkdir | mkdirat | symlinkat | mknodat) echo ENOSPC EPERM EIO ;;
	renameat | renameat2 | unlinkat) echo EIO EPERM ;;
	flock) echo EINTR ENOLCK ;;
	fstat | fstatat | readlinkat) echo EIO ENOENT ;;
	readdir | fdopendir | opendir) echo EIO ENOMEM ;;
	getrandom) echo EAGAIN EINTR ;;
	setns | open_tree | move_mount | mount_setattr | fsopen | fsconfig | fsmount) echo EPERM ENOMEM ;;
	pidfd_open | pidfd_send_signal | capget) echo EPERM ;;
	execvp) echo ENOENT EPERM ;;
	*) echo ENOMEM ;; # malloc calloc realloc strdup strndup asprintf vasprintf fopen fdopen open_memstream
	esac
}

ft_points() {
	local report extra=$2 call
	report=$(ft_report "$1")
	for call in $(awk '$1 == "call" { print $2 }' "$report"); do
		echo "errs $call $(ft_errs "$call")"
	done | awk -v extra="$extra" '
	$1 == "errs" { E[$2] = $0; sub(/^errs [^ ]+ /, "", E[$2]); next }
	$1 == "call" { total[$2] = $3; calls[++nc] = $2 }
	$1 == "site" && !(($2, $4) in seen) { seen[$2, $4] = 1; first[++ns] = $2 " " $4 }
	END {
		for (i = 1; i <= ns; i++) {
			split(first[i], p, " "); k = split(E[p[1]], e, " ")
			for (j = 1; j <= k; j++) print p[1], p[2], e[j]
		}
		for (c = 1; c <= nc; c++) {
			call = calls[c]; n = total[call]; k = split(E[call], e, " ")
			m = extra < n ? extra : n
			for (j = 1; j <= m; j++) {
				idx = int(j * n / (m + 1)) + 1
				if ((call, idx) in seen) continue
				seen[call, idx] = 1; print call, idx, e[(j % k) + 1]
			}
		}
	}' - "$report"
}

# ft_sample MAX: at most MAX of the lines of stdin, taken evenly
ft_sample() {
	awk -v max="$1" '{ l[NR] = $0 } END {
		if (NR <= max) { for (i = 1; i <= NR; i++) print l[i]; exit }
		for (i = 0; i < max; i++) print l[int(i * NR / max) + 1]
	}'
}

ft_fired() {
	local report
	report=$(ft_report "$1")
	awk '$1 == "fired" { print $2, $3, $4, $6, $7 }' "$report"
}

# (a return address is the instruction after the call: one byte back is
# the call itself; syscall() is called only from the thin gs_sys_*
# wrappers, whose caller is the site that matters)
ft_func() {
	local f
	f=$(addr2line -f -i -e "$1" "$(printf '%#x' $(($2 - 1)))" | head -n 1)
	if [[ $f == gs_sys_* ]] && [ "$((${3:-0}))" -ne 0 ]; then
		f=$(addr2line -f -i -e "$1" "$(printf '%#x' $(($3 - 1)))" | head -n 1)
	fi
	echo "$f"
}

# Where the code says it retries (grep -n EINTR in the sources): each
# function's loop is bounded (GS_EINTR_TRIES, OPENAT2_TRIES, FLOCK_TRIES).
ft_must_retry() {
	local call=$1 err=$2 func=$3
	case "$call:$err" in
	read:EINTR | read:short) [[ " gs_read_all_fd gs_read_all_fd_within gs_sha256_fd copy_rw " == *" $func "* ]] ;;
	pread:EINTR | pread:short) [[ " gs_pread_retry pread_full " == *" $func "* ]] ;;
	write:EINTR | write:short) [[ $func == gs_write_full ]] ;;
	copy_file_range:EINTR | copy_file_range:short) [[ $func == copy_range ]] ;;
	flock:EINTR) [[ " gs_store_dir_lock lock flock_retry gs_store_readers_barrier " == *" $func "* ]] ;;
	openat2:EINTR | openat2:EAGAIN) [[ " gs_open_beneath gs_open_in_root open_allow " == *" $func "* ]] ;;
	*) return 1 ;;
	esac
}

# ft_fired_func BIN PATH: the function where BIN's fault fired (PATH: the
# binary, for addr2line); false when it did not fire (another path)
ft_fired_func() {
	local fired
	fired=$(ft_fired "$1")
	[ -n "$fired" ] || return 1
	# shellcheck disable=SC2046
	ft_func "$2" $(echo "$fired" | awk '{ print $4, $5 }')
}

# ft_two_outcomes WHAT RC OUT WANT MSG CALL ERR FUNC: a container start
# through runc (RC, output OUT): started with the complete set (ft_inside
# gives WANT), or not started with a message matching the regex MSG; one
# failure where FUNC retries must not stop it
ft_two_outcomes() {
	local what=$1 rc=$2 out=$3 want=$4 msg=$5 call=$6 err=$7 func=$8
	if [ "$rc" -eq 0 ]; then
		[ "$(ft_inside "$out")" = "$want" ] ||
			fail "$what: the container started without the complete set: $(diff <(echo "$want") <(ft_inside "$out") | head -20)"
		return 0
	fi
	grep -qE "$msg" "$out" || fail "$what: the container did not start and there is no message: $(tail -5 "$out")"
	if grep -q '^END$' "$out"; then fail "$what: failed after the container ran: $(tail -5 "$out")"; fi
	if ft_must_retry "$call" "$err" "$func"; then
		fail "$what: $func retries this, yet the container did not start: $(tail -3 "$out")"
	fi
}

ft_no_sanitizer() {
	if grep -qE 'Sanitizer|runtime error:' "$2"; then
		fail "$1: sanitizer report: $(grep -m 5 -E 'Sanitizer|runtime error:|SUMMARY' "$2")"
	fi
}

ft_clean_exit() {
	local what=$1 rc=$2 log=$3
	ft_no_sanitizer "$what" "$log"
	case $rc in
	0) ;;
	1) grep -q '^gpu-stage[a-z-]*: ' "$log" || fail "$what: exit 1 without a message: $(tail -5 "$log")" ;;
	*) fail "$what: exit $rc (crash, signal or timeout): $(tail -5 "$log")" ;;
	esac
}

ft_no_fds() {
	local report
	report=$(ft_report "$1")
	if grep -q '^fd ' "$report"; then
		fail "$2: descriptors left open at exit: $(grep '^fd ' "$report" | tr '\n' ' ')"
	fi
}
