#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage-hook against hostile images, each case in a fresh container:
# the staged target directory (/run/gpu-stage, /run), /etc,
# /etc/ld.so.cache, /etc/ld.so.conf.d and /usr/bin/nvidia-smi replaced by
# symlinks to an absolute path out of the rootfs, to ../../.. chains and to
# /proc/self/root/...; /usr/local/bin the same with a read-only root;
# LD_PRELOAD in the image's environment (createContainer, hook entry
# without env: the CVE-2025-23266 setting) and LD_PRELOAD/LD_AUDIT in the
# hook's own environment; a corrupt, truncated, missing or FIFO
# /etc/ld.so.cache (a FIFO with a writer waiting: the hook must not open
# it); /etc/ld.so.cache, the ld.so.conf.d entry and /usr/bin/nvidia-smi as
# hard links to a host file; targets pointed into a volume with shared
# propagation (the mounts would reach the host's table); the firmware
# directory a symlink into the container's procfs.  Each run must end in a clear refusal (runtime fails,
# hook names the reason) or a confined success (the container loads
# libcuda.so.1); and in every case nothing outside the rootfs changed: a
# victim directory, the host's /etc/ld.so.cache, /usr/bin/nvidia-smi,
# /run/gpu-stage and the host's mount table.
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_hostile.sh
command -v cc >/dev/null || hk_skip "no C compiler for the LD_PRELOAD library"

VICTIM=$HK_WORK/victim
mkdir -p "$VICTIM/lib" "$VICTIM/bin"
echo canary >"$VICTIM/ld.so.cache"
echo canary >"$VICTIM/nvidia-smi"
echo canary >"$VICTIM/lib/canary"
host_state() {
	(cd "$VICTIM" && find . -printf '%p %y %s %m %T@\n' | sort && find . -type f -exec sha256sum {} + | sort)
	sha256sum /etc/ld.so.cache
	ls -la /usr/bin/nvidia-smi /run/gpu-stage /etc/ld.so.conf.d/000-gpu-stage.conf 2>&1 || true
	hk_mounts
}
n=0
refused=0
confined=0

# CASE NAME STAGE RO SETUP [JQ]  (SETUP runs with $R = the rootfs, merged
# view; JQ, when given, edits the bundle's config.json afterwards)
hostile() {
	local name=$1 stage=$2 ro=$3 setup=$4 edit=${5:-} id before
	n=$((n + 1))
	id=gs-hh-$$-$n
	hk_bundle "h$n"
	R=$HK_B/rootfs
	(cd "$R" && eval "$setup") || hk_fail "$name: setting up the hostile image failed"
	hk_config "$HK_B" "$stage" "$ro" '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
	if [ -n "$edit" ]; then
		jq "$edit" "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	fi
	before=$(host_state)
	if hk_runc "$HK_B" "$id"; then
		grep -q '^PROBE_OK$' "$HK_WORK/$id.out" ||
			hk_fail "$name: the container started but did not get the driver: $(cat "$HK_WORK/$id.out")"
		confined=$((confined + 1))
		hk_ok "$name: confined success"
	else
		grep -q 'gpu-stage-hook: ' "$HK_WORK/$id.out" ||
			hk_fail "$name: the container failed without a message from the hook: $(cat "$HK_WORK/$id.out")"
		refused=$((refused + 1))
		hk_ok "$name: refused: $(grep -o 'gpu-stage-hook: .*' "$HK_WORK/$id.out" | head -n 1 | cut -c1-200)"
	fi
	[ "$(host_state)" = "$before" ] ||
		hk_fail "$name: something outside the rootfs changed: $(diff <(echo "$before") <(host_state))"
}

for t in "$VICTIM" "../../../../../../../..$VICTIM" "/proc/self/root$VICTIM"; do
	hostile "/run/gpu-stage -> $t" prestart false "mkdir -p run && rm -rf run/gpu-stage && ln -s '$t' run/gpu-stage"
	hostile "/run -> $t" prestart false "rm -rf run && ln -s '$t' run"
	hostile "/etc/ld.so.cache -> $t/ld.so.cache" prestart false "rm -f etc/ld.so.cache && ln -s '$t/ld.so.cache' etc/ld.so.cache"
	hostile "/usr/bin/nvidia-smi -> $t/nvidia-smi" createContainer false "ln -sf '$t/nvidia-smi' usr/bin/nvidia-smi"
	hostile "/etc/ld.so.conf.d -> $t" prestart false "rm -rf etc/ld.so.conf.d && ln -s '$t' etc/ld.so.conf.d"
	hostile "/usr/local/bin -> $t (read-only root)" prestart true "rm -rf usr/local/bin && ln -s '$t/bin' usr/local/bin"
	hostile "/etc/ld.so.cache -> $t/ld.so.cache (read-only root)" createRuntime true "rm -f etc/ld.so.cache && ln -s '$t/ld.so.cache' etc/ld.so.cache"
done
hostile "/etc -> $VICTIM" prestart false "mv etc etc.real && ln -s '$VICTIM' etc"
hostile "/etc -> ../../..$VICTIM" createContainer false "mv etc etc.real && ln -s '../../../../../..$VICTIM' etc"
hostile "/etc -> /proc/self/root$VICTIM" prestart false "mv etc etc.real && ln -s '/proc/self/root$VICTIM' etc"
hostile "/run/gpu-stage/lib -> $VICTIM/lib" prestart false "mkdir -p run/gpu-stage && ln -s '$VICTIM/lib' run/gpu-stage/lib"

# Hard links to a host file (the image's upper layer on the host's file
# system) where the hook writes: it replaces names, never writes through.
hostile "/etc/ld.so.cache a hard link to a host file" prestart false \
	"mkdir -p ../../up/etc && ln -f '$VICTIM/ld.so.cache' ../../up/etc/ld.so.cache"
hostile "/etc/ld.so.conf.d/000-gpu-stage.conf a hard link to a host file" createContainer false \
	"mkdir -p ../../up/etc/ld.so.conf.d && ln -f '$VICTIM/lib/canary' ../../up/etc/ld.so.conf.d/000-gpu-stage.conf"
hostile "/usr/bin/nvidia-smi a hard link to a host file" prestart false \
	"mkdir -p ../../up/usr/bin && ln -f '$VICTIM/nvidia-smi' ../../up/usr/bin/nvidia-smi"

# A writable volume (a host directory) that the image's /etc points into:
# the host's files there are not replaced (the cache goes over the file as
# a bind mount, inside the container only; the conf entry is skipped).
HOSTETC=$HK_WORK/hostetc
mkdir -p "$HOSTETC/ld.so.conf.d"
cp /etc/ld.so.cache "$HOSTETC/ld.so.cache"
echo canary >"$HOSTETC/ld.so.conf.d/000-gpu-stage.conf"
etcvol=".mounts += [{destination: \"/vol\", type: \"bind\", source: \"$HOSTETC\", options: [\"rbind\", \"rw\"]}]"
etc_state() { (cd "$HOSTETC" && find . -printf '%p %y %s %m %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
etc_before=$(etc_state)
hostile "/etc -> /vol (a writable volume of the host's)" prestart false "mv etc etc.real && ln -s /vol etc" "$etcvol"
[ "$(etc_state)" = "$etc_before" ] || hk_fail "/etc -> /vol: the host directory behind the volume changed: $(diff <(echo "$etc_before") <(etc_state) | head -20)"
hostile "/etc/ld.so.conf.d -> /vol/ld.so.conf.d (a writable volume of the host's)" createRuntime false \
	"rm -rf etc/ld.so.conf.d && ln -s /vol/ld.so.conf.d etc/ld.so.conf.d" "$etcvol"
[ "$(etc_state)" = "$etc_before" ] || hk_fail "/etc/ld.so.conf.d -> /vol: the host directory behind the volume changed: $(diff <(echo "$etc_before") <(etc_state))"

# A volume with shared propagation (Kubernetes' Bidirectional, for which
# containerd sets an rshared root): a mount attached under it propagates to
# the host.  The image points the hook's targets into it with symlinks;
# nothing may appear in the host's mount table.
SHARED=$HK_WORK/shared
mkdir -p "$SHARED/bin"
mount --bind "$SHARED" "$SHARED" && HK_MOUNTS+=("$SHARED") && mount --make-shared "$SHARED" ||
	hk_fail "cannot make a shared mount at $SHARED"
vol=".linux.rootfsPropagation = \"rshared\" | .mounts += [{destination: \"/vol\", type: \"bind\", source: \"$SHARED\", options: [\"rbind\", \"rshared\"]}]"
# (the targets exist there: nothing needs to be created in the volume)
mkdir -p "$SHARED/gpu-stage" "$SHARED/nvidia/$HK_VER"
for f in "$HK_STORE/$HK_VER"/bin/*/*; do : >"$SHARED/bin/${f##*/}"; done
shared_refused() {
	grep -q 'shared propagation' "$HK_WORK/gs-hh-$$-$n.out" ||
		hk_fail "$1: not refused for its shared target: $(cat "$HK_WORK/gs-hh-$$-$n.out")"
}
hostile "/run -> /vol (a shared volume)" prestart false "rm -rf run && ln -s /vol run" "$vol"
shared_refused "/run -> /vol"
hostile "/usr/bin -> /vol/bin (a shared volume)" createRuntime false \
	"rm -rf usr/bin.real && mv usr/bin usr/bin.real && ln -s /vol/bin usr/bin && cp -a usr/bin.real/. '$SHARED/bin/'" "$vol"
shared_refused "/usr/bin -> /vol/bin"
hostile "/lib/firmware -> /vol (a shared volume)" createContainer false "rm -rf lib/firmware && ln -s /vol lib/firmware" "$vol"
tail -n 1 "$HK_AUDIT" | grep -q 'shared propagation' ||
	hk_fail "/lib/firmware -> /vol: the firmware was not skipped for its shared target: $(tail -n 1 "$HK_AUDIT")"

# the firmware's directory a symlink to the container's procfs: a bind
# there would cover what runc masks afterwards (maskedPaths; runc 1.1 then
# fails the start, "open /proc/self/fd"): the firmware is left out (it is
# optional) and the start goes on
for kfs in /proc /proc/sys; do
	hostile "/lib/firmware/nvidia/$HK_VER -> $kfs (a kernel file system)" prestart false \
		"mkdir -p lib/firmware/nvidia && rm -rf 'lib/firmware/nvidia/$HK_VER' && ln -s '$kfs' 'lib/firmware/nvidia/$HK_VER'"
	tail -n 1 "$HK_AUDIT" | jq -e '[.plan.operations[] | select(.destination | startswith("/lib/firmware/"))
			| select(.status == "skipped" and (.note | contains("lies on the container'"'"'s")))] | length == 1' >/dev/null ||
		hk_fail "firmware -> $kfs: not left out for its kernel file system: $(tail -n 1 "$HK_AUDIT" | jq -c '[.plan.operations[] | select(.op == "bind-dir")]')"
done

# ---- corrupt, truncated, missing, FIFO caches: confined success expected ----
cache_case() {
	hostile "$1" prestart false "$2"
	[ "$confined" -gt 0 ] && grep -q '^LDCONFIG_OK$' "$HK_WORK/gs-hh-$$-$n.out" ||
		hk_fail "$1: the container should have started with libcuda in its cache"
	tail -n 1 "$HK_AUDIT" | jq -e --arg w "$3" '.plan.ldcache | contains($w)' >/dev/null ||
		hk_fail "$1: the audit record does not say '$3': $(tail -n 1 "$HK_AUDIT" | jq -c .plan.ldcache)"
}
cache_case "corrupt /etc/ld.so.cache" "head -c 4096 /dev/urandom >etc/ld.so.cache" "corrupt"
cache_case "truncated /etc/ld.so.cache" "head -c 60 etc/ld.so.cache >etc/c && mv etc/c etc/ld.so.cache" "corrupt"
cache_case "no /etc/ld.so.cache" "rm etc/ld.so.cache" "no ld.so.cache"
cache_case "FIFO /etc/ld.so.cache" "rm etc/ld.so.cache && mkfifo etc/ld.so.cache" "not a regular file"
# The hook must not even open a special file of the image: opening one has
# effects (a FIFO's waiting writer is released, a watchdog device is armed,
# a tape rewinds).  Here a writer waits on the image's FIFO.
cache_case "FIFO /etc/ld.so.cache with a writer waiting on it" \
	"rm etc/ld.so.cache && mkfifo etc/ld.so.cache && { (exec 3>etc/ld.so.cache; touch '$HK_WORK/fifo-opened') & echo \$! >'$HK_WORK/fifo-writer'; sleep 0.3; }" \
	"not a regular file"
kill "$(cat "$HK_WORK/fifo-writer")" 2>/dev/null || true
[ ! -e "$HK_WORK/fifo-opened" ] || hk_fail "the hook opened the image's FIFO /etc/ld.so.cache (its writer was released)"

# ---- LD_PRELOAD: image environment and hook environment ---------------------
SHOOK=$(hk_static_hook) || hk_fail "no statically linked gpu-stage-hook to test LD_* immunity with"
cat >"$HK_WORK/evil.c" <<EOC
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void)
{
	int fd = open("$HK_WORK/evil-ran", O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) { (void)write(fd, "x\n", 2); close(fd); }
}
EOC
cc -shared -fPIC -o "$HK_WORK/evil.so" "$HK_WORK/evil.c" || hk_fail "cannot build evil.so"
HK_HOOK=$SHOOK
preload_case() { # NAME STAGE IMAGE_ENV HOOK_ENV
	n=$((n + 1))
	local id=gs-hh-$$-$n
	hk_bundle "h$n"
	cp "$HK_WORK/evil.so" "$HK_B/rootfs/evil.so"
	hk_config "$HK_B" "$2" false "$3" "$HK_SCRIPT" "$4"
	[ "$4" = null ] && { jq 'del(.hooks[][].env)' "$HK_B/config.json" >"$HK_B/c" && mv "$HK_B/c" "$HK_B/config.json"; }
	hk_runc "$HK_B" "$id" || hk_fail "$1: the container failed: $(cat "$HK_WORK/$id.out")"
	grep -q '^LDCONFIG_OK$' "$HK_WORK/$id.out" || hk_fail "$1: no libcuda in the container's cache"
	[ ! -e "$HK_WORK/evil-ran" ] || hk_fail "$1: the preloaded library ran in the hook (host side)"
	hk_ok "$1: the hook did not load it"
}
preload_case "LD_PRELOAD in the image env (createContainer, hook without env)" createContainer \
	'["NVIDIA_VISIBLE_DEVICES=0","LD_PRELOAD=/proc/self/cwd/evil.so"]' null
preload_case "LD_PRELOAD/LD_AUDIT in the hook env (prestart)" prestart '["NVIDIA_VISIBLE_DEVICES=0"]' \
	"[\"LD_PRELOAD=$HK_WORK/evil.so\",\"LD_AUDIT=$HK_WORK/evil.so\",\"LD_LIBRARY_PATH=$HK_WORK\"]"
preload_case "LD_PRELOAD in the hook env (createContainer)" createContainer '["NVIDIA_VISIBLE_DEVICES=0"]' \
	"[\"LD_PRELOAD=$HK_WORK/evil.so\"]"
# the control: the same library does run when a dynamic program is given it
LD_PRELOAD=$HK_WORK/evil.so /bin/true
[ -e "$HK_WORK/evil-ran" ] || hk_fail "control: evil.so does not run even when preloaded into /bin/true"

echo "hook_hostile.sh: $n cases: $refused refused, $confined confined; nothing outside the rootfs changed"
