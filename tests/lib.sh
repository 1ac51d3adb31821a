# SPDX-License-Identifier: Apache-2.0
# Sourced by tests/integration/*.sh (bash, run from the repository root).
# Exit status convention of tests/run: 0 pass, 77 skip (reason on stderr).

T=$(basename "$0")
GS=${GS_BUILD:-build}/gpu-stage
PROBE=build/gs-probe # never sanitized: it runs inside plain rootfs trees

skip() { echo "$T: SKIP: $*" >&2; exit 77; }
fail() { echo "$T: FAIL: $*" >&2; exit 1; }
need_built() { for f; do [ -x "$f" ] || skip "$f is not built (run make)"; done; }
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root ($*)"; }
need_tools() { for t; do command -v "$t" >/dev/null || skip "$t is not installed"; done; }

# A private work folder in $work, removed on exit (staged trees are 0555).
make_work() {
	work=$(mktemp -d "/tmp/gs-${T%.sh}-XXXXXX")
	trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
}

# probe_staged STORE VER SONAME...: a copy of the cached Debian rootfs gets
# STORE/VER/lib at /run/gpu-stage/lib, its ld.so.cache is refreshed with
# `gpu-stage ldcache update` (no ldconfig), and gs-probe dlopens each SONAME
# inside it with an empty environment.  Prints the probe's output; fails when
# the probe does.
probe_staged() {
	local store=$1 ver=$2 rootfs r=$work/probe-rootfs
	shift 2
	rootfs=$(bash fixtures/rootfs.sh 2>"$work/rootfs.log") || fail "fixtures/rootfs.sh: $(tail -3 "$work/rootfs.log")"
	rm -rf "$r"
	cp -a "$rootfs" "$r"
	mkdir -p "$r/run/gpu-stage"
	cp -a "$store/$ver/lib" "$r/run/gpu-stage/"
	"$GS" ldcache update --root "$r" /run/gpu-stage/lib/compute /run/gpu-stage/lib/utility >/dev/null ||
		fail "ldcache update on the rootfs copy failed"
	chroot "$r" /sbin/ldconfig -p | grep -q 'libcuda.so.1 .*/run/gpu-stage/lib/compute/libcuda.so.1' ||
		fail "the rootfs's own ldconfig -p does not list the staged libcuda.so.1"
	cp "$PROBE" "$r/gs-probe"
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/sbin/chroot "$r" /gs-probe "$@" ||
		fail "gs-probe failed inside the rootfs"
}

# fake_gpus DIR VER MINOR0 MINOR1: a fake host with two GPUs for the CDI
# tests: DIR/proc/driver/nvidia (module VER; GPUs $U0 at bus 0000:01:00.0
# and $U1 at 0000:02:00.0 with those minors) and DIR/dev (their nodes,
# nvidiactl, nvidia-uvm, nvidia-uvm-tools; major 195: opening one gives
# ENXIO, there is no driver).
U0=GPU-11111111-2222-3333-4444-555555555555
U1=GPU-aaaaaaaa-2222-3333-4444-555555555555
fake_gpus() {
	local d=$1 ver=$2 m0=$3 m1=$4 g=$1/proc/driver/nvidia/gpus n
	mkdir -p "$g/0000:01:00.0" "$g/0000:02:00.0" "$d/dev"
	printf 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Release Build\n' "$ver" >"$d/proc/driver/nvidia/version"
	printf 'GPU UUID: \t %s\nDevice Minor: \t %s\n' "$U0" "$m0" >"$g/0000:01:00.0/information"
	printf 'GPU UUID: \t %s\nDevice Minor: \t %s\n' "$U1" "$m1" >"$g/0000:02:00.0/information"
	for n in "nvidiactl 195 255" "nvidia$m0 195 $m0" "nvidia$m1 195 $m1" "nvidia-uvm 237 0" "nvidia-uvm-tools 237 1"; do
		# shellcheck disable=SC2086
		set -- $n
		mknod "$d/dev/$1" c "$2" "$3" || fail "mknod $d/dev/$1"
	done
}

# For the engines' CDI tests (engine_podman_cdi.sh, engine_docker_cdi.sh):
# CDI_INSIDE is a script (sh -c, in the image) that prints one fact a line:
# "cuDriverGetVersion=..." from /gs-probe libcuda.so.1, "SMI " and the first
# line of nvidia-smi -h, "NODE /dev/nvidiaX ENXIO|other" for each node,
# "ANCHOR_MOUNTS N" (mounts under /run/gpu-stage), "LIBCUDA N" (libcuda.so.1
# entries in ldconfig -p), "CACHE SHA256  /etc/ld.so.cache".
# cdi_has NAME LINE fails unless $CDI_OUT/NAME.out has exactly that line;
# cdi_hasnt NAME TEXT fails if it has TEXT anywhere.
CDI_INSIDE='/gs-probe libcuda.so.1 2>&1 | grep "^cuDriverGetVersion=" || true
nvidia-smi -h 2>&1 | head -n 1 | sed "s/^/SMI /"
for d in /dev/nvidia*; do [ -e "$d" ] || continue; printf "NODE %s " "$d"; (cat "$d" >/dev/null) 2>&1 | grep -q "No such device or address" && echo ENXIO || echo other; done
grep -c " /run/gpu-stage" /proc/self/mountinfo | sed "s/^/ANCHOR_MOUNTS /"
ldconfig -p | grep -c "libcuda.so.1 " | sed "s/^/LIBCUDA /"
sha256sum /etc/ld.so.cache | sed "s/^/CACHE /"'
cdi_has() { grep -qx -- "$2" "$CDI_OUT/$1.out" || fail "$1: no line '$2' in: $(cat "$CDI_OUT/$1.out")"; }
cdi_hasnt() { if grep -q -- "$2" "$CDI_OUT/$1.out"; then fail "$1: unexpected '$2' in: $(cat "$CDI_OUT/$1.out")"; fi; }

# stage_mkdriver STORE V...: each V a synthetic driver (GS_MKDRIVER,
# default fixtures/mkdriver.sh) in $work/root-V, staged into STORE
stage_mkdriver() {
	local store=$1 v
	shift
	for v; do
		bash "${GS_MKDRIVER:-fixtures/mkdriver.sh}" "$work/root-$v" --version "$v" >"$work/mkdriver.log" 2>&1 ||
			fail "mkdriver $v failed: $(tail -5 "$work/mkdriver.log")"
		"$GS" stage --root "$work/root-$v" --driver "$v" --store "$store" >/dev/null 2>&1 || fail "staging $v"
	done
}

# hold_bind FILE: a process in a private mount namespace bind-mounts FILE
# on $work/target and sleeps; $holder is its pid (the caller kills it)
hold_bind() {
	: >"$work/target"
	rm -f "$work/ready"
	unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && echo ready >"$3" && exec sleep 600' \
		sh "$1" "$work/target" "$work/ready" &
	holder=$!
	for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
	[ -s "$work/ready" ] || fail "the holder did not mount $1"
}
