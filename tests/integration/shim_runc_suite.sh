#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-runtime passes runc's own integration suite as runc does (issue 14).
# runc 1.1.5's bats suite (Debian's runc source, fixtures/runc_suite.sh:
# cached, SHA-256 checked) runs twice: with runc as the suite's $RUNC, then
# with gpu-runtime in its place (a `runc` that counts its calls and execs
# build/gpu-runtime, whose configuration file names the same runc as its
# "runtime").  The test fails unless
#   - every test has the same result (ok / not ok / skip) in both runs; a
#     test whose results differ is run again, twice with each runtime: a
#     difference that goes away is reported as flaky, one that stays fails
#     the test;
#   - every test of the selected files has a result in both runs (a file is
#     killed after GS_RUNC_SUITE_TIMEOUT seconds);
#   - runc passes at least half of them, so that a broken setup, where
#     everything fails alike, cannot pass; and the shim was really called.
# Each run is on a terminal of its own (script(1), as runc's CI does): the
# tty tests run containers in the foreground on it.  About 2 minutes a run
# here (2 cores).
#
# Offline images: busybox is a rootfs of Debian's busybox-static
# (/bin/busybox and a hard link per applet, the passwd/group of the Docker
# busybox image); debian is the cached debootstrap rootfs
# (fixtures/rootfs.sh).  get-images.sh, which would download both, is
# replaced by one that names them.  recvtty, which the suite starts for every
# bundle, is fixtures/recvtty.c (runc's is Go, with Go libraries Debian's
# source leaves out), at the path helpers.bash uses; helpers.bash waits for
# its socket before going on (the one change to the suite's own code).  sd-helper, seccompagent
# and criu are not there, nor systemd as PID 1, a rootless user or cgroup v2,
# nor the network (spec.bats clones runtime-spec): the tests needing them
# fail or skip alike with both runtimes.
#
#   GS_RUNC_SUITE_FILES  the .bats files to run, space-separated (default:
#                        every file but those LEFT_OUT below)
#   GS_RUNC_SUITE_TIMEOUT  seconds one .bats file may run (default 300); a
#                        file killed leaves tests without a result: a failure
#   GS_KEEP_WORK=1       keep the work folder (TAP output of every run in
#                        WORK/runc, WORK/shim) instead of removing it
# Figures go to stdout: tests, runc and shim passed/failed/skipped, seconds.
# Exit 0 pass, 77 skip (reason on stderr), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib.sh

need_root "runc's suite runs containers as root"
need_tools bats jq gawk runc gcc tar xz curl readelf script timeout
B=${GS_BUILD:-build}
SHIM=$(realpath -m "$B/gpu-runtime")
RECVTTY=$B/fixtures/recvtty
need_built "$SHIM" "$RECVTTY"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || skip "$BUSYBOX is missing (Debian busybox-static; bash tests/deps.sh)"
if LC_ALL=C readelf -l "$BUSYBOX" | grep INTERP >/dev/null; then
	skip "$BUSYBOX is not static (install Debian's busybox-static, not busybox)"
fi
RUNC_BIN=$(command -v runc)
RUNC_BIN=$(realpath "$RUNC_BIN")

work=$(mktemp -d /tmp/gs-shim_runc_suite-XXXXXX)
chmod 0711 "$work" # userns.bats: a container's own uid walks down to its bundle
running=
cleanup() {
	local p m
	set +e
	# a bats run in progress: timeout(1) leads its own process group
	[ -n "$running" ] && kill -TERM -- "-$running" 2>/dev/null && wait "$running"
	# recvtty daemons the suite failed to stop, by PID
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$work/runc-1.1.5/contrib/cmd/recvtty/recvtty" ] &&
			kill -9 "${p#/proc/}" 2>/dev/null
	done
	# containers left in the suite's state folders
	for p in "$work"/tmp/*/bats-run-*/runc.*/state; do
		[ -d "$p" ] || continue
		for m in $("$RUNC_BIN" --root "$p" list -q 2>/dev/null); do
			"$RUNC_BIN" --root "$p" delete -f "$m" >/dev/null 2>&1
		done
	done
	awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	# the suite's parent cgroups (helpers.bash set_cgroups_path), when empty
	find /sys/fs/cgroup -maxdepth 3 -type d -name runc-cgroups-integration-test 2>/dev/null |
		while read -r m; do find "$m" -depth -type d -exec rmdir {} + 2>/dev/null; done
	if [ -n "${GS_KEEP_WORK:-}" ]; then
		echo "$T: kept $work (GS_KEEP_WORK)" >&2
	else
		chmod -R u+w "$work" 2>/dev/null
		rm -rf --one-file-system "$work"
	fi
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the suite and its images ---------------------------------------------------
suite_tar=$(bash fixtures/runc_suite.sh 2>"$work/fixture.err") ||
	fail "fixtures/runc_suite.sh: $(tail -3 "$work/fixture.err")"
debian_root=$(bash fixtures/rootfs.sh 2>"$work/fixture.err") ||
	fail "fixtures/rootfs.sh: $(tail -3 "$work/fixture.err")"
tar -C "$work" -xf "$suite_tar" runc-1.1.5/tests/integration ||
	fail "$suite_tar: cannot unpack tests/integration"
tree=$work/runc-1.1.5
it=$tree/tests/integration
[ -f "$it/helpers.bash" ] || fail "$suite_tar: no tests/integration/helpers.bash"
mkdir -p "$tree/contrib/cmd/recvtty" "$work/img/busybox" "$work/bin"
cp "$RECVTTY" "$tree/contrib/cmd/recvtty/recvtty" # where helpers.bash looks

b=$work/img/busybox
mkdir -p "$b"/{bin,dev,etc,home,root,tmp,usr/sbin,var/spool/mail,var/www} # no proc, sys (mask.bats)
chmod 1777 "$b/tmp"
cp "$BUSYBOX" "$b/bin/busybox"
for a in $("$BUSYBOX" --list); do
	[ -e "$b/bin/$a" ] || ln "$b/bin/busybox" "$b/bin/$a"
done
cat >"$b/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
cat >"$b/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
EOF
tar --numeric-owner -C "$b" -cf "$work/img/busybox.tar" . || fail "cannot write $work/img/busybox.tar"
tar --numeric-owner -C "$debian_root" -cf "$work/img/debian.tar" . ||
	fail "cannot write $work/img/debian.tar from $debian_root"
printf '#!/bin/sh\necho BUSYBOX_IMAGE=%s\necho DEBIAN_IMAGE=%s\n' \
	"$work/img/busybox.tar" "$work/img/debian.tar" >"$it/get-images.sh"
# setup_recvtty starts recvtty in the background and returns: on a loaded
# machine runc may dial the socket before it exists ("connect: no such file
# or directory"), with either runtime.  It waits for the socket (5 s at most).
# shellcheck disable=SC2016 # helpers.bash's own line, expanded there
start='("$RECVTTY" --pid-file "$dir/pid" --mode null "$CONSOLE_SOCKET" &) &'
grep -qxF "	$start" "$it/helpers.bash" || fail "$it/helpers.bash: setup_recvtty does not start recvtty as expected"
awk -v s="	$start" '{ print } $0 == s { print "\tfor _ in $(seq 50); do [ -S \"$CONSOLE_SOCKET\" ] && break; sleep 0.1; done" }' \
	"$it/helpers.bash" >"$it/helpers.bash.new" && mv "$it/helpers.bash.new" "$it/helpers.bash"

# gpu-runtime as the suite's runc: a `runc` that counts its calls and execs
# the shim; the shim's configuration names the real runc.
printf '{"runtime": "%s"}\n' "$RUNC_BIN" >"$work/gs-config.json"
cat >"$work/bin/runc" <<EOF
#!/bin/sh
echo >>"$work/shim.calls"
GPU_STAGE_CONFIG="$work/gs-config.json" exec "$SHIM" "\$@"
EOF
chmod +x "$work/bin/runc"

# ---- which files ------------------------------------------------------------------
# Left out by default (each still runs when GS_RUNC_SUITE_FILES names it):
#   seccomp-notify.bats  needs runc's Go seccompagent; without it its tests
#                        that intercept execve hang until killed (runc init
#                        waits for an answer no agent gives), 2 minutes each
LEFT_OUT="seccomp-notify.bats"
FILE_TIMEOUT=${GS_RUNC_SUITE_TIMEOUT:-300}
files=${GS_RUNC_SUITE_FILES:-$(cd "$it" && for f in *.bats; do
	case " $LEFT_OUT " in *" $f "*) ;; *) printf '%s ' "$f" ;; esac
done)}
for f in $files; do
	[ -f "$it/$f" ] || fail "GS_RUNC_SUITE_FILES: $f is not a file of runc's suite ($it)"
done

# ---- the runs -------------------------------------------------------------------------
# tap_results FILE: "FILE<TAB>pass|fail|skip<TAB>NAME" for each result line of
# bats's TAP output on stdin (a timeout is a failure; a name repeated in a
# file gets " #2", " #3"...).
tap_results() {
	awk -v f="$1" '
		/^(not )?ok [0-9]+ / {
			res = ($1 == "not") ? "fail" : "pass"
			line = $0
			sub(/^(not )?ok [0-9]+ /, "", line)
			if (res == "pass" && match(line, / # skip( .*)?$/)) { res = "skip"; line = substr(line, 1, RSTART - 1) }
			if (res == "fail" && match(line, / # timeout after [0-9]+s$/)) line = substr(line, 1, RSTART - 1)
			if (++seen[line] > 1) line = line " #" seen[line]
			print f "\t" res "\t" line
		}'
}

# bats_one NAME RUNC FILE [FILTER]: runs FILE of the suite with $RUNC=RUNC,
# on a terminal of its own (script(1), as runc's CI does: the tty tests run
# containers in the foreground on it); its TAP output goes to
# $work/NAME/FILE.tap, its results to stdout.
bats_one() {
	local name=$1 runc=$2 f=$3 filter=${4:-} cmd
	mkdir -p "$work/$name" "$work/tmp/$name"
	chmod 0711 "$work/tmp" "$work/tmp/$name"
	cmd="$(printf '%q ' bats --tap ${filter:+-f "$filter"} "$f") >$(printf '%q' "$work/$name/$f.tap") 2>&1"
	# (not BATS_TEST_TIMEOUT: its timer is a child the tests' bare `wait` waits for)
	env -C "$it" -u GPU_STAGE_RUNTIME -u GPU_STAGE_CONFIG -u RUNC_USE_SYSTEMD \
		TMPDIR="$work/tmp/$name" RUNC="$runc" \
		timeout -k 10 "$FILE_TIMEOUT" script -qec "$cmd" /dev/null </dev/null >"$work/$name/script.log" 2>&1 &
	running=$!
	wait "$running" || true
	running=
	tap_results "$f" <"$work/$name/$f.tap"
}

# run_suite NAME RUNC: every selected file; results in $work/NAME.res.
run_suite() {
	local name=$1 runc=$2 f t0=$SECONDS
	for f in $files; do
		bats_one "$name" "$runc" "$f"
	done >"$work/$name.res"
	echo "$name: $((SECONDS - t0)) s"
}

expected=0
for f in $files; do
	n=$(cd "$it" && bats --count "$f") || fail "bats --count $f failed"
	expected=$((expected + n))
done

run_suite runc "$RUNC_BIN"
run_suite shim "$work/bin/runc"

# ---- the comparison ---------------------------------------------------------------
count() { awk -F'\t' -v r="$2" '$2 == r { n++ } END { print n + 0 }' "$work/$1.res"; }
figures() {
	printf '%s: %d results: %d passed, %d failed, %d skipped\n' "$1" "$(wc -l <"$work/$1.res")" \
		"$(count "$1" pass)" "$(count "$1" fail)" "$(count "$1" skip)"
}
echo "tests in the selected files: $expected ($(echo "$files" | wc -w) files)"
figures runc
figures shim

# "FILE<TAB>NAME<TAB>RUNC-RESULT<TAB>SHIM-RESULT" for each name whose results
# differ (a missing result is "none").
differences() {
	awk -F'\t' 'FNR == NR { r[$1 "\t" $3] = $2; next }
		{ k = $1 "\t" $3; s[k] = $2 }
		END {
			for (k in r) if (!(k in s) || s[k] != r[k]) print k "\t" r[k] "\t" ((k in s) ? s[k] : "none")
			for (k in s) if (!(k in r)) print k "\tnone\t" s[k]
		}' "$1" "$2" | sort
}

# tap_block NAME: the result line of test NAME in TAP on stdin and the
# comment lines after it (its output, when it failed).
tap_block() {
	awk -v n="${1% #[0-9]*}" '/^(not )?ok [0-9]+ / { l = $0; sub(/^(not )?ok [0-9]+ /, "", l)
		sub(/ # (skip|timeout).*$/, "", l); on = (l == n) } on'
}

bats_filter() { printf '^%s$' "$(printf '%s' "$1" | sed 's/ #[0-9]*$//; s/[][\.*^$+?(){}|/]/\\&/g')"; }

differences "$work/runc.res" "$work/shim.res" >"$work/diff"
: >"$work/flaky"
: >"$work/stands"
# More than MAX_RERUN differences are no flakiness: no reruns then.
MAX_RERUN=10
[ "$(wc -l <"$work/diff")" -le "$MAX_RERUN" ] || echo "$(wc -l <"$work/diff") results differ: more than $MAX_RERUN, no reruns"
while IFS=$'\t' read -r f name r s; do
	same=0
	for _ in 1 2; do
		[ "$(wc -l <"$work/diff")" -le "$MAX_RERUN" ] || break
		r2=$(bats_one rerun-runc "$RUNC_BIN" "$f" "$(bats_filter "$name")" | awk -F'\t' 'NR == 1 { print $2 }')
		s2=$(bats_one rerun-shim "$work/bin/runc" "$f" "$(bats_filter "$name")" | awk -F'\t' 'NR == 1 { print $2 }')
		[ -n "$r2" ] && [ "$r2" = "$s2" ] && same=1
	done
	if [ "$same" = 1 ]; then
		printf '%s: %s: runc %s, shim %s at first; the same in a rerun (flaky)\n' "$f" "$name" "$r" "$s" >>"$work/flaky"
		for k in runc shim; do # why it failed the first time
			[ "$k" = runc ] && [ "$r" != fail ] && continue
			[ "$k" = shim ] && [ "$s" != fail ] && continue
			tap_block "$name" <"$work/$k/$f.tap" | tail -n 3 | sed "s/^/    $k: /" >>"$work/flaky"
		done
	else
		printf '%s: %s: runc %s, shim %s (not the same in a rerun)\n' "$f" "$name" "$r" "$s" >>"$work/stands"
		printf '%s\t%s\n' "$f" "$name" >>"$work/stands.tsv"
	fi
done <"$work/diff"
[ -s "$work/flaky" ] && { echo "flaky (results differed once, not again):"; sed 's/^/  /' "$work/flaky"; }

calls=$(wc -l <"$work/shim.calls" 2>/dev/null || echo 0)
echo "gpu-runtime was called $calls times"
[ "$(wc -l <"$work/runc.res")" -eq "$expected" ] ||
	fail "runc: $(wc -l <"$work/runc.res") results for $expected tests (a file killed after ${FILE_TIMEOUT}s? GS_KEEP_WORK=1 keeps the TAP output)"
[ "$(wc -l <"$work/shim.res")" -eq "$expected" ] ||
	fail "gpu-runtime: $(wc -l <"$work/shim.res") results for $expected tests (a file killed after ${FILE_TIMEOUT}s? GS_KEEP_WORK=1 keeps the TAP output)"
[ "$(count runc pass)" -ge $((expected / 2)) ] ||
	fail "runc itself passed only $(count runc pass) of $expected tests: the setup is broken, the comparison would mean nothing"
[ "$calls" -ge "$(count shim pass)" ] || fail "the shim run called gpu-runtime only $calls times"
if [ -s "$work/stands" ]; then
	echo "tests whose result differs:" >&2
	sed 's/^/  /' "$work/stands" >&2
	while IFS=$'\t' read -r f name _; do
		echo "--- $f: $name: the end of its TAP output with runc, then through gpu-runtime:" >&2
		tap_block "$name" <"$work/runc/$f.tap" | tail -n 12 >&2
		echo "---" >&2
		tap_block "$name" <"$work/shim/$f.tap" | tail -n 12 >&2
	done <"$work/stands.tsv"
	fail "$(wc -l <"$work/stands") test(s) of runc's suite give another result through gpu-runtime"
fi
echo "$T: ok: every one of $expected tests gives the same result through gpu-runtime as with runc"
