#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The published escapes of GPU container injectors, each reproduced against
# gpu-stage-hook in real runc (and through gpu-runtime where the attack goes
# through a runtime shim), each case named after the CVE or advisory:
#
#   CVE-2024-0134   symlinks the hook makes (read-only roots: /usr/local/bin
#                   links, the image's /run entries recreated in a tmpfs;
#                   the host's /dev/char links) point inside the rootfs
#                   (resp. the device root), also when the image pre-creates
#                   those names as links to host paths
#   CVE-2024-0135/0136/0137
#                   a trojan ldconfig (/sbin/ldconfig, ldconfig.real,
#                   /usr/local/{s,}bin, first in the image's PATH, and the
#                   other tools an injector might run) is never executed:
#                   hook (three stages, writable and read-only roots,
#                   NVIDIA_VISIBLE_DEVICES 0/all/none) and shim (requests
#                   "env" and "orchestrator" with the annotation)
#   CVE-2025-23266  LD_PRELOAD, LD_AUDIT and LD_LIBRARY_PATH pointing at
#                   /proc/self/cwd/evil.so, in the image's environment and in
#                   the hook entry's, every stage, and through the shim; the
#                   attack itself shown working on this runc with a dynamic
#                   hook that has no env (the control)
#   CVE-2025-23267  image symlinks at every path the hook reads or writes
#                   pointing at host sentinel files: never read (atime),
#                   never written, never seen in the container
#   propagation     30 starts under a shared parent (rootfsPropagation
#                   default, rslave, rprivate, rshared, shared): the host's
#                   mount table unchanged while each runs and after (a
#                   control shows the comparison sees a mount that does
#                   propagate: one in a volume bound rshared)
#
# Covered elsewhere (not repeated here):
#
#   CVE-2024-0132 / CVE-2025-23359  check-then-mount race: hook_cves_race.sh;
#                   static symlinks at every target (absolute, ../ chains,
#                   /proc/self/root): hook_hostile.sh
#   CVE-2025-23267  MPS pipe directory an image symlink: hook_ipc.sh ("image
#                   symlink at the destination"); /usr/local/cuda/compat a
#                   symlink to the host and a magic link: hook_cuda_compat.sh;
#                   audit following image symlinks: audit.sh; host-side
#                   /dev/char and /dev/nvidia-caps links: devices.sh
#   propagation     targets inside a volume with shared propagation:
#                   hook_hostile.sh; ro/nosuid/nodev/private mounts: hook_runc.sh
#   malformed input ld.so.cache offsets past the end, unterminated strings,
#                   overflowing counts: ldcache_corrupt.sh (76 caches),
#                   ldcache_hostile.sh (memory bounds), fuzz replay; ELF
#                   truncated or lying: tests/fuzz/fuzz_elf + test_discover;
#                   state/config JSON with wrong types, duplicates, huge sizes:
#                   hook_errors.sh, shim_fidelity.sh, test_runtime,
#                   tests/fuzz/fuzz_oci*; hostile archives: store_archive.sh
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_cves.sh
hk_shim
command -v cc >/dev/null || hk_skip "no C compiler for the trojans and evil.so"
command -v musl-gcc >/dev/null && [ -e /lib/ld-musl-x86_64.so.1 ] || hk_skip "musl and musl-tools are not installed (bash tests/deps.sh)"
SHOOK=$(hk_static_hook) || hk_fail "no statically linked gpu-stage-hook"
TOKEN=gs-sentinel-$$-$RANDOM
n=0
LISTEN=$(hk_abs "$HK_BUILD/fixtures/unixlisten")
[ -x "$LISTEN" ] || hk_skip "fixtures/unixlisten is not built (make)"
LISTENER=
trap '[ -z "$LISTENER" ] || kill "$LISTENER" 2>/dev/null; hk_cleanup' EXIT

# ---- the host's sentinels ---------------------------------------------------------
# Files and directories of the host that the image's symlinks name.  Each
# has an access time older than its modification time, so any read or
# directory listing moves it (relatime); the state below is taken with
# lstat only, never by reading.
SENT=$HK_WORK/sentinel
mkdir -p "$SENT"/{lib-$TOKEN,confdir,rundir,vdpau,fw,bin,compat,devdir,mps}
echo "$TOKEN" >"$SENT/hostmark"
cat >"$HK_WORK/sentlib.c" <<'EOC'
int gs_sentinel(void) { return 1; }
EOC
cc -shared -fPIC -Wl,-soname,libgssentinel.so.1 -o "$SENT/lib-$TOKEN/libgssentinel.so.1" "$HK_WORK/sentlib.c" ||
	hk_fail "cannot build the sentinel library"
echo "$SENT/lib-$TOKEN" >"$HK_WORK/sent-ld.so.conf"
ldconfig -X -C "$SENT/ld.so.cache" -f "$HK_WORK/sent-ld.so.conf" || hk_fail "ldconfig could not write the sentinel cache"
grep -q "$TOKEN" "$SENT/ld.so.cache" || hk_fail "the sentinel cache does not name its library"
for f in conf 000-gpu-stage.conf musl.path nvidia-smi nvidia0 nvidiactl nvidia-uvm; do
	echo "/$TOKEN/$f" >"$SENT/$f"
done
echo "$TOKEN" >"$SENT/confdir/000-gpu-stage.conf"
echo "$TOKEN" >"$SENT/compat/libcuda.so.999.1"
for d in rundir vdpau fw bin devdir mps; do echo "$TOKEN" >"$SENT/$d/$TOKEN"; done
mapfile -t SENT_PATHS < <(find "$SENT" | sort)
SENT_SUM=$(cd "$SENT" && find . -type f -exec sha256sum {} + | sort)
touch -m -d '@1700000000' "${SENT_PATHS[@]}"
touch -a -d '@946684800' "${SENT_PATHS[@]}"
sent_stat() { stat -c '%n %F %s %a %u %Y %Z %X' "${SENT_PATHS[@]}"; }
SENT_BEFORE=$(sent_stat)

# What every container here reports: the driver loads (dlopen by SONAME,
# no ldconfig run), the sentinel's token is nowhere in what the hook wrote
# or bound, the host's / (its $SENT/hostmark) is under no mount point, and
# the symlinks in the places the hook makes them.
CVE_SCRIPT='
env -u LD_PRELOAD -u LD_AUDIT -u LD_LIBRARY_PATH /opt/gs-probe libcuda.so.1 >/dev/null 2>&1 && echo PROBE_OK
grep -rlsF -D skip @TOKEN@ /etc/ld.so.cache /etc/ld.so.conf.d /etc/ld-musl-x86_64.path /run /usr/local/bin \
	/usr/bin/nvidia-smi /usr/lib/x86_64-linux-gnu/vdpau /usr/lib/firmware /usr/local/cuda 2>/dev/null | sed "s/^/TOKEN_SEEN /"
while read -r _ _ _ _ mp _; do [ -e "$mp@SENT@/hostmark" ] && echo "HOSTROOT $mp"; [ -e "$mp/hostmark" ] && echo "SENTDIR $mp"; done </proc/self/mountinfo
for l in $(find /run /usr/local/bin /usr/lib/x86_64-linux-gnu/vdpau /usr/lib/firmware/nvidia -maxdepth 4 -type l 2>/dev/null); do
	r=$(readlink -f "$l"); [ -e "$l" ] && e=ok || e=dangling; echo "LINK $l $(readlink "$l") $r $e"; done
true'
CVE_SCRIPT=${CVE_SCRIPT//@TOKEN@/$TOKEN}
CVE_SCRIPT=${CVE_SCRIPT//@SENT@/$SENT}

# Judges one run: the sentinel untouched and unseen, the host's / never
# under a mount point, the host's mount table as before.
judge() { # NAME OUT MOUNTS-BEFORE
	local name=$1 out=$2
	if grep -E '^(TOKEN_SEEN|HOSTROOT|SENTDIR) ' "$out"; then
		hk_fail "$name: the container sees the host's sentinel or its /"
	fi
	[ "$(sent_stat)" = "$SENT_BEFORE" ] ||
		hk_fail "$name: a host sentinel was read or written: $(diff <(echo "$SENT_BEFORE") <(sent_stat))"
	[ "$(hk_mounts)" = "$3" ] || hk_fail "$name: the host's mount table changed: $(diff <(echo "$3") <(hk_mounts))"
}

# CASE NAME STAGE RO ENVJSON SETUP [JQ]: a fresh container whose image is
# changed by SETUP (run in the rootfs); JQ edits config.json.  A refusal
# must name its reason; a start must give the driver.
OUTCOME=
cve_case() {
	local name=$1 stage=$2 ro=$3 env=$4 setup=$5 edit=${6:-} id mounts
	n=$((n + 1))
	id=gs-cve-$$-$n
	hk_bundle "c$n"
	R=$HK_B/rootfs
	(cd "$R" && eval "$setup") || hk_fail "$name: setting up the image failed"
	hk_config "$HK_B" "$stage" "$ro" "$env" "$CVE_SCRIPT"
	if [ -n "$edit" ]; then
		jq "$edit" "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	fi
	mounts=$(hk_mounts)
	OUT=$HK_WORK/$id.out
	if hk_runc "$HK_B" "$id" </dev/null; then
		grep -q '^PROBE_OK$' "$OUT" || hk_fail "$name: started without the driver: $(cat "$OUT")"
		OUTCOME="confined"
	else
		grep -q 'gpu-stage-hook: ' "$OUT" || hk_fail "$name: failed without a message from the hook: $(cat "$OUT")"
		OUTCOME="refused: $(grep -o 'gpu-stage-hook: .*' "$OUT" | head -n 1 | cut -c1-160)"
	fi
	judge "$name" "$OUT" "$mounts"
}

# ---- CVE-2025-23267: host-side path joins following the image's symlinks ---------
# (NODEV: without runc's /dev tmpfs, so that the image's own /dev is used)
nodev='.mounts |= map(select(.destination != "/dev"))'
while IFS='|' read -r what stage ro env setup edit; do
	[ "$edit" = NODEV ] && edit=$nodev
	cve_case "CVE-2025-23267: $what" "$stage" "$ro" "$env" "$setup" "$edit"
	hk_ok "CVE-2025-23267: $what: $OUTCOME; the sentinel neither read nor written nor seen"
done <<EOF
/etc/ld.so.cache -> a host cache|prestart|false|["NVIDIA_VISIBLE_DEVICES=0"]|ln -sfn $SENT/ld.so.cache etc/ld.so.cache|
/etc/ld.so.cache -> ../ chain to a host cache (read-only root)|createRuntime|true|["NVIDIA_VISIBLE_DEVICES=0"]|ln -sfn ../../../../../../..$SENT/ld.so.cache etc/ld.so.cache|
/etc/ld.so.cache -> /proc/self/root host cache|createContainer|false|["NVIDIA_VISIBLE_DEVICES=0"]|ln -sfn /proc/self/root$SENT/ld.so.cache etc/ld.so.cache|
/etc/ld.so.conf.d/000-gpu-stage.conf -> a host file|prestart|false|["NVIDIA_VISIBLE_DEVICES=0"]|ln -sfn $SENT/000-gpu-stage.conf etc/ld.so.conf.d/000-gpu-stage.conf|
/etc/ld.so.conf.d -> a host directory|createRuntime|false|["NVIDIA_VISIBLE_DEVICES=0"]|rm -rf etc/ld.so.conf.d && ln -s $SENT/confdir etc/ld.so.conf.d|
/run -> a host directory|prestart|false|["NVIDIA_VISIBLE_DEVICES=0"]|rm -rf run && ln -s $SENT/rundir run|
/run/gpu-stage -> a host directory (read-only root)|createRuntime|true|["NVIDIA_VISIBLE_DEVICES=0"]|ln -sfn $SENT/rundir run/gpu-stage|
/usr/bin/nvidia-smi -> a host file|prestart|false|["NVIDIA_VISIBLE_DEVICES=0"]|ln -sfn $SENT/nvidia-smi usr/bin/nvidia-smi|
/usr/local/bin -> a host directory (read-only root)|prestart|true|["NVIDIA_VISIBLE_DEVICES=0"]|rm -rf usr/local/bin && ln -s $SENT/bin usr/local/bin|
/dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm -> host files (the image's own /dev)|prestart|false|["NVIDIA_VISIBLE_DEVICES=0"]|for d in nvidia0 nvidiactl nvidia-uvm; do ln -sfn $SENT/\$d dev/\$d; done|NODEV
/dev/nvidia0 -> ../ chain to a host file (createContainer)|createContainer|false|["NVIDIA_VISIBLE_DEVICES=0"]|ln -sfn ../../../../../../..$SENT/nvidia0 dev/nvidia0|NODEV
/usr/lib/x86_64-linux-gnu/vdpau -> a host directory|prestart|false|["NVIDIA_VISIBLE_DEVICES=0","NVIDIA_DRIVER_CAPABILITIES=all"]|rm -rf usr/lib/x86_64-linux-gnu/vdpau && ln -s $SENT/vdpau usr/lib/x86_64-linux-gnu/vdpau|
/lib/firmware -> a host directory|createRuntime|false|["NVIDIA_VISIBLE_DEVICES=0"]|rm -rf usr/lib/firmware && ln -s $SENT/fw usr/lib/firmware|
/lib/firmware/nvidia -> ../ chain to a host directory|prestart|false|["NVIDIA_VISIBLE_DEVICES=0"]|mkdir -p usr/lib/firmware && ln -sfn ../../../../../..$SENT/fw usr/lib/firmware/nvidia|
/usr/local/cuda/compat -> a host directory with a newer libcuda|prestart|false|["NVIDIA_VISIBLE_DEVICES=0"]|mkdir -p usr/local/cuda && ln -sfn $SENT/compat usr/local/cuda/compat|
EOF

# The MPS pipe directory: a host one (a fake host root with a listening
# control socket, as hook_ipc.sh makes) bound at the same path, where the
# image has a link to a host directory, or a link above it.
H=$HK_WORK/host
mkdir -p "$H/tmp/nvidia-mps"
chmod 755 "$H/tmp/nvidia-mps"
"$LISTEN" "$H/tmp/nvidia-mps/control" MPS-TOKEN &
LISTENER=$!
for _ in $(seq 100); do [ -S "$H/tmp/nvidia-mps/control" ] && break; sleep 0.05; done
[ -S "$H/tmp/nvidia-mps/control" ] || hk_fail "the MPS listener did not start"
hostroot=".hooks[][0].args |= (.[:-1] + [\"--host-root\", \"$H\"] + .[-1:])"
cve_case "CVE-2025-23267: /tmp/nvidia-mps -> a host directory" prestart false '["NVIDIA_VISIBLE_DEVICES=0"]' \
	"ln -s '$SENT/mps' tmp/nvidia-mps" "$hostroot"
[ "$OUTCOME" = confined ] && tail -n 1 "$HK_AUDIT" | jq -e '.plan.operations[] | select(.destination == "/tmp/nvidia-mps") | .status == "skipped"' >/dev/null ||
	hk_fail "CVE-2025-23267: /tmp/nvidia-mps -> host: not skipped: $OUTCOME $(tail -n 1 "$HK_AUDIT" | head -c 600)"
hk_ok "CVE-2025-23267: /tmp/nvidia-mps -> a host directory: skipped (never followed); the sentinel neither read nor written nor seen"
cve_case "CVE-2025-23267: /tmp -> ../ chain to a host directory (the MPS pipe directory's parent)" createRuntime false \
	'["NVIDIA_VISIBLE_DEVICES=0"]' "rm -rf tmp && ln -s '../../../../../../..$SENT/mps' tmp" "$hostroot"
hk_ok "CVE-2025-23267: /tmp -> ../ chain to a host directory: $OUTCOME; the sentinel neither read nor written nor seen"

# The musl loader's path file, in a musl image (the hook reads the image's
# and writes its own).
printf '#include <stdio.h>\nint main(void){FILE *f=fopen("/etc/ld-musl-x86_64.path","r");char l[512];while(f&&fgets(l,sizeof l,f))printf("PATH %%s",l);puts("MUSL_DONE");return 0;}\n' >"$HK_WORK/musl.c"
musl-gcc -O2 -o "$HK_WORK/musl-check" "$HK_WORK/musl.c" || hk_fail "cannot build the musl checker"
musl_out=
for ro in false true; do
	n=$((n + 1))
	id=gs-cve-$$-$n
	hk_musl_bundle "musl-$ro" "$HK_WORK/musl-check"
	r=$HK_R
	ln -s "$SENT/musl.path" "$r/etc/ld-musl-x86_64.path"
	hk_config "$HK_B" prestart "$ro" '["NVIDIA_VISIBLE_DEVICES=none"]' ""
	jq '.process.args = ["/bin/check"]' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	mounts=$(hk_mounts)
	hk_runc "$HK_B" "$id" || grep -q 'gpu-stage-hook: ' "$HK_WORK/$id.out" ||
		hk_fail "CVE-2025-23267: musl path file (ro $ro): failed without the hook's reason: $(cat "$HK_WORK/$id.out")"
	! grep -q "$TOKEN" "$HK_WORK/$id.out" || hk_fail "CVE-2025-23267: musl path file (ro $ro): the host's file was read into the container: $(cat "$HK_WORK/$id.out")"
	[ "$(readlink "$r/etc/ld-musl-x86_64.path" 2>/dev/null || echo replaced)" = "$SENT/musl.path" ] || [ "$ro" = false ] ||
		hk_fail "CVE-2025-23267: musl path file, read-only root: the image's link changed"
	grep -q '^PATH /run/gpu-stage/lib/' "$HK_WORK/$id.out" || grep -q 'gpu-stage-hook: ' "$HK_WORK/$id.out" ||
		hk_fail "CVE-2025-23267: musl path file (ro $ro): started without our path file: $(cat "$HK_WORK/$id.out")"
	grep -q 'gpu-stage-hook: ' "$HK_WORK/$id.out" && musl_out+=" ro $ro: refused;" || musl_out+=" ro $ro: ours written in its place;"
	judge "CVE-2025-23267: musl path file (ro $ro)" "$HK_WORK/$id.out" "$mounts"
done
hk_ok "CVE-2025-23267: /etc/ld-musl-x86_64.path -> a host file (musl image,$musl_out): the sentinel neither read nor written nor seen"

# ---- CVE-2024-0134: the symlinks the hook makes stay inside the rootfs ------------
# Every link in the places the hook makes links must resolve, inside the
# container, to a staged file under /run/gpu-stage; an image's own link
# there keeps its own target (it was not replaced by one of ours, nor
# followed).
links_ours() { # NAME OUT PRE-CREATED-NAMES...
	local name=$1 out=$2 l t r e seen=0
	shift 2
	while read -r _ l t r e; do
		case " $* " in *" $l "*) [ "$t" != "${PRE[$l]}" ] && hk_fail "$name: the image's $l now points at $t"; continue ;; esac
		case $l in /usr/local/bin/* | /run/gpu-stage/*) ;; *) continue ;; esac
		seen=$((seen + 1))
		[ "$e" = ok ] && case $r in /run/gpu-stage/*) true ;; *) false ;; esac ||
			hk_fail "$name: $l -> $t resolves to $r ($e), not to a staged file in /run/gpu-stage"
	done < <(grep '^LINK ' "$out")
	[ "$seen" -gt 0 ] || hk_fail "$name: no link of the hook's was found to check: $(cat "$out")"
}
declare -A PRE=()
cve_case "CVE-2024-0134: read-only root, links in /usr/local/bin" prestart true '["NVIDIA_VISIBLE_DEVICES=0"]' ":"
[ "$OUTCOME" = confined ] || hk_fail "CVE-2024-0134: the plain read-only start failed: $OUTCOME"
grep -q '^LINK /usr/local/bin/nvidia-smi /run/gpu-stage/bin/' "$OUT" || hk_fail "CVE-2024-0134: no nvidia-smi link was made: $(grep LINK "$OUT")"
links_ours "CVE-2024-0134: read-only root" "$OUT"
hk_ok "CVE-2024-0134: read-only root: every link the hook made ($(grep -c '^LINK /usr/local/bin/' "$OUT")) resolves to a staged file"

PRE=([/usr/local/bin/nvidia-smi]=$SENT/nvidia-smi [/usr/local/bin/nvidia-debugdump]=../../../../../..$SENT/bin)
cve_case "CVE-2024-0134: read-only root, the image's /usr/local/bin/nvidia-smi and nvidia-debugdump links to host paths" \
	createRuntime true '["NVIDIA_VISIBLE_DEVICES=0"]' \
	"ln -s '$SENT/nvidia-smi' usr/local/bin/nvidia-smi && ln -s '../../../../../..$SENT/bin' usr/local/bin/nvidia-debugdump"
[ "$OUTCOME" = confined ] && links_ours "CVE-2024-0134: pre-created /usr/local/bin links" "$OUT" /usr/local/bin/nvidia-smi /usr/local/bin/nvidia-debugdump
hk_ok "CVE-2024-0134: the image's /usr/local/bin links to host paths: $OUTCOME; kept as the image made them, sentinel untouched"

PRE=([/run/lock]=$SENT/rundir [/run/x]=../../../../../..$SENT/rundir [/run/y]=/proc/self/root$SENT)
cve_case "CVE-2024-0134: read-only root, the image's /run links to host paths recreated" prestart true \
	'["NVIDIA_VISIBLE_DEVICES=0"]' \
	"rm -rf run && mkdir run && ln -s '$SENT/rundir' run/lock && ln -s '../../../../../..$SENT/rundir' run/x && ln -s '/proc/self/root$SENT' run/y"
[ "$OUTCOME" = confined ] || hk_fail "CVE-2024-0134: a /run of links only should be recreated: $OUTCOME"
for l in /run/lock /run/x /run/y; do
	grep -q "^LINK $l ${PRE[$l]} " "$OUT" || hk_fail "CVE-2024-0134: $l was not recreated with the image's own target: $(grep LINK "$OUT")"
done
links_ours "CVE-2024-0134: recreated /run" "$OUT" /run/lock /run/x /run/y
hk_ok "CVE-2024-0134: the image's /run links to host paths: recreated with their own targets (resolved in the container), sentinel untouched"

# the host's /dev/char links (prestart, the devices' root is the host's)
find "$HK_DEV/char" -type l 2>/dev/null | grep -q . || hk_fail "CVE-2024-0134: no /dev/char link was made in $HK_DEV"
for l in "$HK_DEV"/char/*; do
	r=$(readlink -f "$l")
	case $r in "$HK_DEV"/nvidia*) ;; *) hk_fail "CVE-2024-0134: $l -> $(readlink "$l") resolves to $r, outside the device root" ;; esac
done
hk_ok "CVE-2024-0134: the host's /dev/char links ($(find "$HK_DEV/char" -type l | wc -l)) resolve inside the device root"

# ---- CVE-2024-0135/0136/0137: a trojan ldconfig (or other tool) never runs --------
# The trojan is static (it runs wherever it is executed: host side before
# pivot_root or in the container) and leaves a mark both at a host path and
# in /gs-mark, a host directory the test binds into the container.
MARK=$HK_WORK/mark
mkdir -p "$MARK"
cat >"$HK_WORK/trojan.c" <<EOC
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	(void)argc;
	const char *paths[] = {"$MARK/ran-host", "/gs-mark/ran-inside"};
	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) { (void)write(fd, argv[0], strlen(argv[0])); (void)write(fd, "\n", 1); close(fd); }
	}
	return 0;
}
EOC
cc -static -O2 -o "$HK_WORK/trojan" "$HK_WORK/trojan.c" || hk_fail "cannot build the static trojan"
TROJANS="ldconfig ldconfig.real modprobe nvidia-modprobe nvidia-container-cli nvidia-ctk nvidia-smi mount umount mknod chroot nsenter"
plant='for d in usr/sbin usr/bin usr/local/sbin usr/local/bin evil; do mkdir -p $d; done
for t in ldconfig ldconfig.real; do for d in usr/sbin usr/bin usr/local/sbin usr/local/bin; do cp TROJAN $d/$t; done; done
for t in TROJANS; do cp TROJAN evil/$t; done'
plant=${plant//TROJANS/$TROJANS}
plant=${plant//TROJAN/$HK_WORK/trojan}
markvol=".mounts += [{destination: \"/gs-mark\", type: \"bind\", source: \"$MARK\", options: [\"rbind\", \"rw\"]}] | .process.env |= map(if startswith(\"PATH=\") then \"PATH=/evil:\" + .[5:] else . end)"
no_mark() {
	[ -z "$(ls -A "$MARK")" ] || hk_fail "$1: a trojan from the image ran: $(cat "$MARK"/* | tr '\n' ' ')"
}
while IFS='|' read -r what stage ro env; do
	cve_case "CVE-2024-0135/0136/0137: $what" "$stage" "$ro" "$env" "$plant" "$markvol"
	[ "$OUTCOME" = confined ] || hk_fail "CVE-2024-0135/0136/0137: $what: the start failed: $OUTCOME"
	no_mark "CVE-2024-0135/0136/0137: $what"
	hk_ok "CVE-2024-0135/0136/0137: trojan ldconfig and tools in the image, $what: none ran, the cache refreshed without them"
done <<EOF
hook prestart, NVIDIA_VISIBLE_DEVICES=0|prestart|false|["NVIDIA_VISIBLE_DEVICES=0"]
hook createRuntime, read-only root, NVIDIA_VISIBLE_DEVICES=all, all capabilities|createRuntime|true|["NVIDIA_VISIBLE_DEVICES=all","NVIDIA_DRIVER_CAPABILITIES=all"]
hook createContainer, NVIDIA_VISIBLE_DEVICES=none|createContainer|false|["NVIDIA_VISIBLE_DEVICES=none"]
EOF
# through the shim: requests "env" (the image's variable) and
# "orchestrator" (the annotation), writable and read-only roots
shim_conf() {
	jq -n --arg s "$HK_STORE" --arg a "$HK_AUDIT" --arg d "$HK_DEV" --arg p "$HK_PROC" --arg r "$1" \
		'{store: $s, audit_log: $a, dev_root: $d, proc_root: $p, requests: $r}' >"$HK_WORK/shim-$1.json"
}
shim_conf env
shim_conf orchestrator
shim_case() { # NAME REQUESTS RO ENVJSON ANNOTATIONS SETUP EDIT
	local id mounts
	n=$((n + 1))
	id=gs-cve-$$-$n
	hk_bundle "c$n"
	R=$HK_B/rootfs
	(cd "$R" && eval "$6") || hk_fail "$1: setting up the image failed"
	hk_config "$HK_B" prestart "$3" "$4" "$CVE_SCRIPT"
	jq --argjson ann "$5" "del(.hooks) | .annotations = \$ann | $7" "$HK_B/config.json" >"$HK_B/c.json" &&
		mv "$HK_B/c.json" "$HK_B/config.json"
	HK_CTRS+=("$id")
	mounts=$(hk_mounts)
	OUT=$HK_WORK/$id.out
	(cd "$HK_B" && GPU_STAGE_CONFIG=$HK_WORK/shim-$2.json GPU_STAGE_RUNTIME=runc timeout 120 "$SHIM" run "$id") \
		>"$OUT" 2>&1 || hk_fail "$1: runc run through the shim failed: $(cat "$OUT")"
	grep -q '^PROBE_OK$' "$OUT" || hk_fail "$1: no driver through the shim: $(cat "$OUT")"
	judge "$1" "$OUT" "$mounts"
}
shim_case "CVE-2024-0135/0136/0137: shim, requests env" env false '["NVIDIA_VISIBLE_DEVICES=0"]' '{}' "$plant" "$markvol"
no_mark "CVE-2024-0135/0136/0137: shim, requests env"
shim_case "CVE-2024-0135/0136/0137: shim, requests orchestrator, annotation, read-only root" orchestrator true '[]' \
	'{"gpu-stage.visible-devices": "0"}' "$plant" "$markvol"
no_mark "CVE-2024-0135/0136/0137: shim, requests orchestrator"
hk_ok "CVE-2024-0135/0136/0137: through gpu-runtime (requests env; orchestrator with the annotation, read-only root): no trojan ran"
# the control: the trojan and the bind do leave a mark when the image's
# ldconfig is run (by the container itself)
cve_case "control: the container runs its own ldconfig" prestart false '["NVIDIA_VISIBLE_DEVICES=none"]' "$plant" \
	"$markvol | .process.args[2] += \"; ldconfig -p >/dev/null\""
grep -q ldconfig "$MARK/ran-inside" 2>/dev/null || hk_fail "control: the trojan ldconfig left no mark when the container ran it"
rm -f "$MARK"/*

# ---- CVE-2025-23266 (NVIDIAScape): LD_* in the image's and the hook's env ---------
cat >"$HK_WORK/evil.c" <<EOC
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void)
{
	int fd = open("$HK_WORK/evil-ran", O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) { (void)write(fd, "x\n", 2); close(fd); }
}
unsigned int la_version(unsigned int v) { return v; }
EOC
cc -shared -fPIC -o "$HK_WORK/evil.so" "$HK_WORK/evil.c" || hk_fail "cannot build evil.so"
# evil.so in the hook's working directory (the rootfs for createContainer,
# the bundle for the others), also under the names a dynamic hook needs
put_evil() {
	local d
	for d in "$HK_B" "$HK_B/rootfs"; do
		cp "$HK_WORK/evil.so" "$d/evil.so"
		for l in libjansson.so.4 libcap.so.2 libelf.so.1 libz.so.1; do cp "$HK_WORK/evil.so" "$d/$l"; done
	done
}
LDENV='"LD_PRELOAD=/proc/self/cwd/evil.so","LD_AUDIT=/proc/self/cwd/evil.so","LD_LIBRARY_PATH=/proc/self/cwd"'
ld_case() { # NAME STAGE IMAGE_ENV HOOK_ENV (null: no env member) [HOOK]
	local id
	n=$((n + 1))
	id=gs-cve-$$-$n
	hk_bundle "c$n"
	put_evil
	HK_HOOK=${5:-$SHOOK} hk_config "$HK_B" "$2" false "$3" "$CVE_SCRIPT" "$4"
	[ "$4" = null ] && { jq 'del(.hooks[][].env)' "$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"; }
	rm -f "$HK_WORK/evil-ran"
	hk_runc "$HK_B" "$id" || true
	OUT=$HK_WORK/$id.out
}
# the control: the attack works on this runc — a dynamic program as a
# createContainer hook without env inherits the image's LD_PRELOAD
ld_case "control" createContainer "[\"NVIDIA_VISIBLE_DEVICES=0\",$LDENV]" null /bin/true
[ -e "$HK_WORK/evil-ran" ] && control=ran || control="did not run (this runc does not hand the container's env to hooks)"
for stage in createContainer createRuntime prestart; do
	ld_case "image env" "$stage" "[\"NVIDIA_VISIBLE_DEVICES=0\",$LDENV]" null
	grep -q "^PROBE_OK$" "$OUT" || hk_fail "CVE-2025-23266: image env, $stage: no driver: $(grep -v "^LINK" "$OUT")"
	[ ! -e "$HK_WORK/evil-ran" ] || hk_fail "CVE-2025-23266: LD_PRELOAD/LD_AUDIT/LD_LIBRARY_PATH of the image ran evil.so in the hook ($stage, hook without env)"
	ld_case "hook env" "$stage" '["NVIDIA_VISIBLE_DEVICES=0"]' "[\"PATH=/usr/sbin:/usr/bin\",$LDENV]"
	grep -q '^PROBE_OK$' "$OUT" || hk_fail "CVE-2025-23266: hook env, $stage: no driver: $(cat "$OUT")"
	[ ! -e "$HK_WORK/evil-ran" ] || hk_fail "CVE-2025-23266: LD_PRELOAD/LD_AUDIT/LD_LIBRARY_PATH in the hook entry's env ran evil.so ($stage)"
done
hk_ok "CVE-2025-23266: LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH (/proc/self/cwd/evil.so) in the image's env (hook without env) and in the hook's env, createContainer/createRuntime/prestart: evil.so never ran (control: with a dynamic hook it $control)"
# through the shim: its entry carries "env": [], so even a dynamic hook
# (the sanitizer build's) gets none of the image's variables
SHIM_HOOK=$(dirname "$SHIM")/gpu-stage-hook
n=$((n + 1))
hk_bundle "c$n"
put_evil
hk_config "$HK_B" prestart false "[\"NVIDIA_VISIBLE_DEVICES=0\",$LDENV]" "$CVE_SCRIPT"
jq 'del(.hooks)' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
rm -f "$HK_WORK/evil-ran"
HK_CTRS+=("gs-cve-$$-$n")
(cd "$HK_B" && GPU_STAGE_CONFIG=$HK_WORK/shim-env.json GPU_STAGE_RUNTIME=runc \
	timeout 120 "$SHIM" run "gs-cve-$$-$n") >"$HK_WORK/shimld.out" 2>&1 ||
	hk_fail "CVE-2025-23266: through the shim: the start failed: $(cat "$HK_WORK/shimld.out")"
grep -q '^PROBE_OK$' "$HK_WORK/shimld.out" || hk_fail "CVE-2025-23266: through the shim: no driver"
[ ! -e "$HK_WORK/evil-ran" ] || hk_fail "CVE-2025-23266: through the shim ($SHIM_HOOK): evil.so ran"
jq -e '[.hooks[][] | select(.path | endswith("gpu-stage-hook")) | .env == []] | all and length > 0' "$HK_B/config.json" >/dev/null ||
	hk_fail "CVE-2025-23266: the shim's hook entry has no explicit empty env: $(jq -c .hooks "$HK_B/config.json")"
hk_ok "CVE-2025-23266: through gpu-runtime (image env LD_PRELOAD/LD_AUDIT/LD_LIBRARY_PATH, hook $SHIM_HOOK): the hook entry has env [], evil.so never ran"

# ---- mount propagation: a shared parent, N starts, the host's table unchanged -----
# Each container runs detached for a moment: the host's table is compared
# while it runs (the hook's mounts must not have propagated out of it) and
# after it is gone.  rootfsPropagation shared/rshared make runc's own root
# mount shared with the host's peer: the hook's mounts must still stay in.
PROP=$HK_WORK/prop
mkdir -p "$PROP"
mount --bind "$PROP" "$PROP" && HK_MOUNTS+=("$PROP") && mount --make-shared "$PROP" ||
	hk_fail "cannot make $PROP a shared mount"
before=$(hk_mounts)
starts=0
for prop in "" rslave rprivate rshared shared; do
	for stage in prestart createRuntime createContainer; do
		for ro in false true; do
			n=$((n + 1))
			id=gs-cve-$$-$n
			what="propagation ($stage, ro $ro, rootfsPropagation ${prop:-default})"
			hk_bundle "prop/p$n" # under the shared $PROP
			hk_config "$HK_B" "$stage" "$ro" '["NVIDIA_VISIBLE_DEVICES=0"]' "$CVE_SCRIPT; sleep 1; echo DONE"
			[ -z "$prop" ] || { jq --arg p "$prop" '.linux.rootfsPropagation = $p' "$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"; }
			running=$(hk_mounts)
			HK_CTRS+=("$id")
			(cd "$HK_B" && timeout 60 runc run -d "$id") </dev/null >"$HK_WORK/$id.out" 2>&1 ||
				hk_fail "$what: the start failed: $(cat "$HK_WORK/$id.out")"
			[ "$(hk_mounts)" = "$running" ] ||
				hk_fail "$what: a mount reached the host's table while the container runs: $(diff <(echo "$running") <(hk_mounts))"
			for _ in $(seq 100); do grep -q '^DONE$' "$HK_WORK/$id.out" && break; sleep 0.1; done
			runc delete -f "$id" >/dev/null 2>&1 || true
			grep -q '^PROBE_OK$' "$HK_WORK/$id.out" || hk_fail "$what: no driver: $(grep -v '^LINK' "$HK_WORK/$id.out")"
			umount "$HK_B/rootfs" || hk_fail "cannot unmount $HK_B/rootfs (a mount left on it?)"
			starts=$((starts + 1))
		done
	done
done
# the control: the comparison sees a mount that does propagate (a tmpfs
# the container mounts in a volume bound rshared from the shared parent)
n=$((n + 1))
id=gs-cve-$$-$n
mkdir -p "$PROP/vol"
hk_bundle "c$n"
hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=void"]' "mount -t tmpfs gs-ctl /vol && echo MOUNTED; sleep 2"
jq --arg v "$PROP/vol" '.linux.rootfsPropagation = "rshared" | .mounts += [{destination: "/vol", type: "bind", source: $v, options: ["rbind", "rshared"]}] |
	.process.capabilities |= map_values(. + ["CAP_SYS_ADMIN"])' "$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"
running=$(hk_mounts)
HK_CTRS+=("$id")
(cd "$HK_B" && timeout 60 runc run -d "$id") </dev/null >"$HK_WORK/$id.out" 2>&1 || hk_fail "propagation control: the start failed: $(cat "$HK_WORK/$id.out")"
for _ in $(seq 50); do grep -q '^MOUNTED$' "$HK_WORK/$id.out" && break; sleep 0.1; done
hk_mounts | grep -q "$PROP/vol tmpfs" || hk_fail "propagation control: a mount in an rshared volume did not reach the host's table: the comparison is blind: $(cat "$HK_WORK/$id.out")"
runc delete -f "$id" >/dev/null 2>&1 || true
umount "$PROP/vol" 2>/dev/null || true
umount "$HK_B/rootfs" || true
[ "$(hk_mounts)" = "$before" ] || hk_fail "propagation: the host's mount table changed after $starts starts under a shared parent: $(diff <(echo "$before") <(hk_mounts))"
hk_ok "propagation: $starts starts (three stages, writable and read-only, rootfsPropagation default/rslave/rprivate/rshared/shared) under a shared parent: the host's mount table unchanged while each ran and after (control: a container's mount in an rshared volume does show there)"

# the sentinels' atime really moves on a read (else the checks above saw nothing)
cat "$SENT/hostmark" >/dev/null
[ "$(stat -c %X "$SENT/hostmark")" != 946684800 ] || hk_fail "control: reading a sentinel does not move its atime here (noatime?): the read checks would be blind"
[ "$(cd "$SENT" && find . -type f -exec sha256sum {} + | sort)" = "$SENT_SUM" ] || hk_fail "a sentinel's content changed"
echo "hook_cves.sh: $n containers; every case passed"
