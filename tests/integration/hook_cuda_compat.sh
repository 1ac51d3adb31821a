#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# CUDA forward compatibility (issue 16): an image carrying cuda-compat's
# libraries in /usr/local/cuda/compat.  Real runc, the hook at prestart,
# the synthetic 535.261.03 driver staged (its libcuda reports CUDA 12020).
#   newer (550.54.15, reports 12040): libcuda.so.1 and the companion
#     libnvidia-ptxjitcompiler.so.1 resolve to the compat files (the probe,
#     the container's ldconfig -p), the ld.so.conf.d entry lists the compat
#     directory first and a later ldconfig in the container keeps that; the
#     audit record says "used: ... newer than driver 535.261.03";
#   older and equal: the staged driver, the record says why;
#   read-only root, and the configuration's "cuda_compat_dir";
#   hostile: the directory a symlink to a host directory, a libcuda that is
#     no ELF, one with another SONAME, a version that is no version, a FIFO,
#     300 files: ignored with a note, the container starts on the staged one.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source fixtures/hook_lib.sh
hk_setup hook_cuda_compat.sh
command -v gcc >/dev/null || hk_skip "gcc is not installed (bash tests/deps.sh)"
CDIR=usr/local/cuda/compat

# mklib FILE SONAME CUDAVER: a tiny x86-64 library whose cuDriverGetVersion
# reports CUDAVER.
mklib() {
	printf 'int cuDriverGetVersion(int *v) { if (!v) return 1; *v = %s; return 0; }\nint cuInit(unsigned f) { (void)f; return 100; }\n' \
		"$3" >"$HK_WORK/lib.c"
	gcc -shared -fPIC -o "$1" -Wl,-soname,"$2" "$HK_WORK/lib.c" || hk_fail "gcc failed for $1"
}

# compat DIR VER CUDAVER: cuda-compat's layout (versioned files, SONAME
# links) for VER in DIR.
compat() {
	mkdir -p "$1"
	mklib "$1/libcuda.so.$2" libcuda.so.1 "$3"
	mklib "$1/libnvidia-ptxjitcompiler.so.$2" libnvidia-ptxjitcompiler.so.1 1
	mklib "$1/libnvidia-unstaged.so.$2" libnvidia-unstaged.so.1 1
	ln -sf "libcuda.so.$2" "$1/libcuda.so.1"
	ln -sf libcuda.so.1 "$1/libcuda.so"
	ln -sf "libnvidia-ptxjitcompiler.so.$2" "$1/libnvidia-ptxjitcompiler.so.1"
}

SCRIPT='ldconfig -p | grep -E "^[[:space:]]+(libcuda\.so\.1|libnvidia-ptxjitcompiler\.so\.1) \(libc6,x86-64\)" | sed "s/^[[:space:]]*/CACHE /"
/opt/gs-probe libcuda.so.1 libnvidia-ptxjitcompiler.so.1 | sed "s/^/PROBE /"
[ -e /etc/ld.so.conf.d/000-gpu-stage.conf ] && grep -v "^#" /etc/ld.so.conf.d/000-gpu-stage.conf | head -n 1 | sed "s/^/CONF /"
[ -w /etc ] && ldconfig && /opt/gs-probe libcuda.so.1 | sed "s/^/AFTER /"
echo STARTED'

# run NAME RO [CONFIG]: the bundle NAME (its upper dir prepared by the
# caller in $HK_WORK/NAME/up), a compute container.
run() {
	hk_bundle "$1"
	hk_config "$HK_B" prestart "$2" '["NVIDIA_VISIBLE_DEVICES=0"]' "$SCRIPT"
	if [ -n "${3:-}" ]; then
		jq --arg c "$3" '.hooks.prestart[0].args |= (.[:-1] + ["--config", $c] + .[-1:])' "$HK_B/config.json" >"$HK_B/c.new" &&
			mv "$HK_B/c.new" "$HK_B/config.json"
	fi
	out=$HK_WORK/gs-compat-$$-$1.out
	hk_runc "$HK_B" "gs-compat-$$-$1" || hk_fail "$1: the container failed: $(cat "$out")"
	grep -q '^STARTED$' "$out" || hk_fail "$1: the container's script did not finish: $(cat "$out")"
	note=$(tail -n 1 "$HK_AUDIT" | jq -r '.plan.cuda_compat // "(none)"')
}

# first_cache KEY: the path of the first (libc6,x86-64) entry for KEY.
first_cache() { grep -m1 "^CACHE $1 " "$out" | sed 's/.* => //'; }

staged() {
	local what=$1
	grep -q '^PROBE cuDriverGetVersion=12020 ' "$out" || hk_fail "$what: libcuda.so.1 is not the staged one: $(cat "$out")"
	[ "$(first_cache libcuda.so.1)" = /run/gpu-stage/lib/compute/libcuda.so.1 ] ||
		hk_fail "$what: the cache's first libcuda.so.1 is not the staged one: $(grep CACHE "$out")"
	if grep -q "^CONF /$CDIR" "$out"; then hk_fail "$what: the ld.so.conf.d entry lists the compat directory"; fi
}

# newer: the compat libraries go first
compat "$HK_WORK/newer/up/$CDIR" 550.54.15 12040
run newer false
grep -q '^PROBE cuDriverGetVersion=12040 ' "$out" || hk_fail "newer: the probe did not get the compat libcuda: $(cat "$out")"
grep -q '^PROBE dlopen libnvidia-ptxjitcompiler.so.1: ok' "$out" || hk_fail "newer: ptxjitcompiler did not load: $(cat "$out")"
[ "$(first_cache libcuda.so.1)" = "/$CDIR/libcuda.so.550.54.15" ] ||
	hk_fail "newer: the cache's first libcuda.so.1 is not the compat file: $(grep CACHE "$out")"
[ "$(first_cache libnvidia-ptxjitcompiler.so.1)" = "/$CDIR/libnvidia-ptxjitcompiler.so.550.54.15" ] ||
	hk_fail "newer: the companion ptxjitcompiler is not the compat file: $(grep CACHE "$out")"
if grep -q '^CACHE .*libnvidia-unstaged' "$out"; then hk_fail "newer: a compat library the driver does not stage went into the cache"; fi
grep -q "^CONF /$CDIR\$" "$out" || hk_fail "newer: the ld.so.conf.d entry does not list the compat directory first: $(cat "$out")"
grep -q '^AFTER cuDriverGetVersion=12040 ' "$out" || hk_fail "newer: after ldconfig in the container libcuda.so.1 is no longer the compat one: $(cat "$out")"
[ "$note" = "used: /$CDIR/libcuda.so.550.54.15 newer than driver $HK_VER (and 1 companion)" ] ||
	hk_fail "newer: the audit record says: $note"
hk_ok "newer compat libcuda (550.54.15): libcuda.so.1 and ptxjitcompiler resolve to /$CDIR, first in ld.so.conf.d (kept by a later ldconfig), audit: $note"

compat "$HK_WORK/older/up/$CDIR" 470.57.02 11040
run older false
staged older
[ "$note" = "ignored: /$CDIR/libcuda.so.470.57.02 older than driver $HK_VER" ] || hk_fail "older: the audit record says: $note"
compat "$HK_WORK/equal/up/$CDIR" "$HK_VER" 12040
run equal false
staged equal
[ "$note" = "ignored: /$CDIR/libcuda.so.$HK_VER same version as driver $HK_VER" ] || hk_fail "equal: the audit record says: $note"
hk_ok "older and equal compat libcuda: the staged driver wins, the record says why"

compat "$HK_WORK/ro/up/$CDIR" 550.54.15 12040
run ro true
grep -q '^PROBE cuDriverGetVersion=12040 ' "$out" || hk_fail "read-only root: the probe did not get the compat libcuda: $(cat "$out")"
compat "$HK_WORK/conf/up/opt/compat" 550.54.15 12040
compat "$HK_WORK/conf/up/$CDIR" 999.1 12040 # not looked at: the configuration names another
printf '{"cuda_compat_dir": "/opt/compat"}\n' >"$HK_WORK/compat.json"
run conf false "$HK_WORK/compat.json"
[ "$(first_cache libcuda.so.1)" = /opt/compat/libcuda.so.550.54.15 ] || hk_fail "cuda_compat_dir: not used: $(cat "$out")"
grep -q '^CONF /opt/compat$' "$out" || hk_fail "cuda_compat_dir: not first in ld.so.conf.d: $(cat "$out")"
hk_ok "read-only root (cache bound over) and \"cuda_compat_dir\" in the configuration"

# hostile directories: each ignored with a note, the staged driver used
compat "$HK_WORK/hostcompat" 550.54.15 12040
mkdir -p "$HK_WORK/symlink/up/usr/local/cuda"
ln -s "$HK_WORK/hostcompat" "$HK_WORK/symlink/up/$CDIR"
run symlink false
staged "a symlink to a host directory"
[ "$note" = "(none)" ] || hk_fail "symlink out: the record says $note (the link resolves inside the image, to nothing)"
mkdir -p "$HK_WORK/magic/up/usr/local/cuda"
ln -s /proc/self/root/tmp "$HK_WORK/magic/up/$CDIR"
run magic false
staged "a magic link"
# refused (ELOOP) or, before runc mounts /proc, nothing there: never used
case $note in "ignored: /$CDIR is not a directory of the image"* | "(none)") ;; *) hk_fail "magic link: the record says $note" ;; esac

hostile() { # NAME EXPECTED-NOTE-PART: after the caller filled $HK_WORK/NAME/up/$CDIR
	run "$1" false
	staged "$1"
	case $note in ignored:*"$2"*) ;; *) hk_fail "$1: the audit record says: $note (wanted ignored: ...$2...)" ;; esac
}
mkdir -p "$HK_WORK/notelf/up/$CDIR" && echo 'not a library' >"$HK_WORK/notelf/up/$CDIR/libcuda.so.999.1"
hostile notelf "libcuda.so.999.1 is not an ELF file"
mkdir -p "$HK_WORK/soname/up/$CDIR" && mklib "$HK_WORK/soname/up/$CDIR/libcuda.so.999.1" libfoo.so.1 12040
hostile soname "SONAME libfoo.so.1, not libcuda.so.1"
mkdir -p "$HK_WORK/badver/up/$CDIR" && mklib "$HK_WORK/badver/up/$CDIR/libcuda.so.999.x" libcuda.so.1 12040
hostile badver "not a version"
mkdir -p "$HK_WORK/fifo/up/$CDIR" && mkfifo "$HK_WORK/fifo/up/$CDIR/libcuda.so.999.1"
hostile fifo "holds no libcuda.so.<version>"
compat "$HK_WORK/many/up/$CDIR" 550.54.15 12040
for i in $(seq 1 300); do : >"$HK_WORK/many/up/$CDIR/f$i"; done
hostile many "more than 256 files"
hk_ok "hostile compat directories (symlink to the host, magic link, not ELF, wrong SONAME, bad version, FIFO, 300 files): ignored with a note, staged driver used"
