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
# /etc/ld.so.cache.  Each run must end in a clear refusal (runtime fails,
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

# CASE NAME STAGE RO SETUP  (SETUP runs with $R = the rootfs, merged view)
hostile() {
	local name=$1 stage=$2 ro=$3 setup=$4 id before
	n=$((n + 1))
	id=gs-hh-$$-$n
	hk_bundle "h$n"
	R=$HK_B/rootfs
	(cd "$R" && eval "$setup") || hk_fail "$name: setting up the hostile image failed"
	hk_config "$HK_B" "$stage" "$ro" '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
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
