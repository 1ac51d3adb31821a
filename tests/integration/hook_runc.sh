#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage-hook in real containers: a debootstrap'd Debian rootfs (an
# overlay over fixtures/rootfs.sh's cached tree), a synthetic staged
# 535.261.03 driver, fake device nodes.  With the hook as prestart,
# createRuntime and createContainer, root writable and read-only, under
# runc (and crun for prestart/createContainer): inside, ldconfig -p lists
# libcuda.so.1, gs-probe dlopen()s it by SONAME and gets 12020, nvidia-smi
# runs from PATH, no LD_* is set, every gpu-stage mount is ro,nosuid,nodev
# and not shared, /dev/nvidia0 opens to ENXIO (allowed, no driver); the
# host's mount table is unchanged afterwards; a read-only root's image is
# untouched; one audit record per start.  Then capability filtering, the
# device cgroup (an allowed node vs a denied one), an image whose cache
# holds a stub libcuda.so.1 (the staged one wins), a read-only root with a
# tmpfs /run (works) or a bind mount under /run (clear refusal), and the
# runtime shim gpu-runtime adding the hook to config.json itself (also with
# runc's single-dash -root/-bundle, and for a read-only root, whose /run
# then stays visible: gpu-runtime declares a tmpfs at /run/gpu-stage).
#
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
. "$(dirname "$0")/../../fixtures/hook_lib.sh"
hk_setup hook_runc.sh

n=0
audit_lines() { [ -f "$HK_AUDIT" ] && wc -l <"$HK_AUDIT" || echo 0; }

run_case() { # ENGINE STAGE RO
	local engine=$1 stage=$2 ro=$3 id
	n=$((n + 1))
	id=gs-hk-$$-$n
	hk_bundle "c$n"
	hk_config "$HK_B" "$stage" "$ro" '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
	local a0 a1 before
	before=$(hk_mounts)
	a0=$(audit_lines)
	"hk_$engine" "$HK_B" "$id" || hk_fail "$engine $stage ro=$ro: the container failed: $(cat "$HK_WORK/$id.out")"
	hk_check_inside "$id" "$engine $stage ro=$ro"
	grep -q '^HAS_NVIDIA1$' "$HK_WORK/$id.out" && hk_fail "$engine $stage: /dev/nvidia1 exists though only GPU 0 was asked for"
	[ "$(hk_mounts)" = "$before" ] || hk_fail "$engine $stage ro=$ro: the host's mount table changed: $(diff <(echo "$before") <(hk_mounts))"
	a1=$(audit_lines)
	[ "$a1" -eq $((a0 + 1)) ] || hk_fail "$engine $stage: expected one new audit record, got $((a1 - a0))"
	tail -n 1 "$HK_AUDIT" | jq -e --arg id "$id" '.container == $id and .result == "ok" and .driver == "535.261.03" and (.plan.operations | length > 3)' >/dev/null ||
		hk_fail "$engine $stage: bad audit record: $(tail -n 1 "$HK_AUDIT")"
	# its time is now's, in UTC (the hook formats it by arithmetic)
	local t skew
	t=$(tail -n 1 "$HK_AUDIT" | jq -r .time)
	[[ $t =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] || hk_fail "$engine $stage: audit time \"$t\" is not RFC 3339 UTC"
	skew=$(($(date -u +%s) - $(date -u -d "$t" +%s)))
	[ "${skew#-}" -le 120 ] || hk_fail "$engine $stage: audit time $t is ${skew}s from now ($(date -u +%FT%TZ))"
	local up=$HK_WORK/c$n/up
	if [ "$ro" = true ]; then
		# the image is left untouched: only what the test itself put there
		local extra
		extra=$(cd "$up" && find . -mindepth 1 ! -path ./opt ! -path ./opt/gs-probe)
		[ -z "$extra" ] || hk_fail "$engine $stage: read-only root but the image changed: $extra"
	else
		[ -s "$up/etc/ld.so.cache" ] || hk_fail "$engine $stage: the image's /etc/ld.so.cache was not rewritten"
		grep -qx /run/gpu-stage/lib/compute "$up/etc/ld.so.conf.d/000-gpu-stage.conf" ||
			hk_fail "$engine $stage: no ld.so.conf.d entry"
	fi
	hk_ok "$engine $stage root.readonly=$ro"
}

for stage in prestart createRuntime createContainer; do
	for ro in false true; do
		run_case runc "$stage" "$ro"
	done
done
if command -v crun >/dev/null; then
	for stage in prestart createRuntime createContainer; do
		run_case crun "$stage" false
	done
	run_case crun prestart true
else
	hk_skip "crun is not installed (bash tests/deps.sh); the runc cases passed"
fi

# ---- capability filtering ---------------------------------------------------
caps_case() { # CAPS SCRIPT -> output file name
	n=$((n + 1))
	local id=gs-hk-$$-$n
	hk_bundle "c$n"
	hk_config "$HK_B" prestart false "[\"NVIDIA_VISIBLE_DEVICES=none\",\"NVIDIA_DRIVER_CAPABILITIES=$1\"]" "$2"
	hk_runc "$HK_B" "$id" || hk_fail "caps $1: the container failed: $(cat "$HK_WORK/$id.out")"
	CAPS_OUT=$HK_WORK/$id.out
}
LIST='ldconfig -p | sed -n "s/^\t\([^ ]*\) (\([^)]*\)).*/LIB \1 \2/p"; ls /dev/nvidia* 2>/dev/null | sed "s/^/NODE /"; /opt/gs-probe libnvidia-ml.so.1 >/dev/null && echo NVML_OK; true'
caps_case utility "$LIST"
grep -q '^LIB libnvidia-ml.so.1 libc6,x86-64$' "$CAPS_OUT" || hk_fail "utility: no libnvidia-ml.so.1"
grep -q '^NVML_OK$' "$CAPS_OUT" || hk_fail "utility: libnvidia-ml.so.1 does not dlopen"
grep -q '^LIB libcuda.so.1 ' "$CAPS_OUT" && hk_fail "utility: libcuda.so.1 is there though compute was not asked for"
grep -q '^NODE ' "$CAPS_OUT" && hk_fail "NVIDIA_VISIBLE_DEVICES=none: device nodes were created: $(grep NODE "$CAPS_OUT")"
hk_ok "utility only: libnvidia-ml, no libcuda, no device (none)"
caps_case compute "$LIST"
grep -q '^LIB libcuda.so.1 libc6,x86-64$' "$CAPS_OUT" || hk_fail "compute: no libcuda.so.1"
grep -q '^LIB libcuda.so.1 libc6$' "$CAPS_OUT" && hk_fail "compute: i386 libcuda without compat32"
grep -q '^LIB libnvidia-ml.so.1 ' "$CAPS_OUT" && hk_fail "compute: libnvidia-ml.so.1 without utility"
hk_ok "compute: libcuda, no libnvidia-ml"
caps_case compute,compat32 "$LIST"
grep -q '^LIB libcuda.so.1 libc6$' "$CAPS_OUT" || hk_fail "compat32: no i386 libcuda.so.1: $(cat "$CAPS_OUT")"
grep -q '^LIB libcuda.so.1 libc6,x86-64$' "$CAPS_OUT" || hk_fail "compat32: no x86-64 libcuda.so.1"
hk_ok "compute,compat32: both libcuda sets"

# ---- the device cgroup: an allowed node opens to ENXIO, a denied one EPERM ---
# (runc's default rules allow mknod of any node, "c *:* m", but not opening it)
n=$((n + 1))
id=gs-hk-$$-$n
hk_bundle "c$n"
hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=GPU-11111111-2222-3333-4444-555555555555"]' \
	'mknod /dev/t0 c 195 0 && cat /dev/t0 2>&1 | sed "s/^/T0 /"; mknod /dev/t1 c 195 1 && cat /dev/t1 2>&1 | sed "s/^/T1 /"; true'
jq '.process.capabilities |= with_entries(.value += ["CAP_MKNOD"])' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
before=$(hk_mounts)
hk_runc "$HK_B" "$id" || hk_fail "device cgroup case: the container failed: $(cat "$HK_WORK/$id.out")"
if grep -q 'cgroup v1' <(tail -n 1 "$HK_AUDIT"); then
	grep -q '^T0 .*No such device or address' "$HK_WORK/$id.out" || hk_fail "allowed 195:0 did not give ENXIO: $(cat "$HK_WORK/$id.out")"
	grep -q '^T1 .*Operation not permitted' "$HK_WORK/$id.out" || hk_fail "195:1 (not asked for) was not denied by the cgroup: $(cat "$HK_WORK/$id.out")"
	hk_ok "device cgroup v1: 195:0 allowed (ENXIO), 195:1 denied (EPERM)"
else
	echo "hook_runc.sh: note: no cgroup v1 devices controller, the allow/deny check did not run; audit says: $(tail -n 1 "$HK_AUDIT" | jq -r .devices_cgroup)"
	[ "${CI:-}" != true ] || hk_fail "CI has a cgroup v1 devices controller: the device cgroup check must run"
fi
[ "$(hk_mounts)" = "$before" ] || hk_fail "the host's mount table changed"

# ---- an image with its own stub libcuda.so.1 in its cache: staged wins ------
command -v cc >/dev/null || hk_fail "no C compiler for the stub library"
printf 'int cuDriverGetVersion(int *v) { *v = 1; return 0; }\nint cuInit(unsigned f) { (void)f; return 999; }\n' >"$HK_WORK/stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$HK_WORK/libcuda-stub.so" "$HK_WORK/stub.c" || hk_fail "cannot build the stub"
for ro in false true; do
	n=$((n + 1))
	id=gs-hk-$$-$n
	hk_bundle "c$n"
	cp "$HK_WORK/libcuda-stub.so" "$HK_B/rootfs/usr/lib/x86_64-linux-gnu/libcuda.so.1"
	ldconfig -r "$HK_B/rootfs" || hk_fail "ldconfig -r on the stub image failed"
	hk_config "$HK_B" prestart "$ro" '["NVIDIA_VISIBLE_DEVICES=0"]' \
		'ldconfig -p | grep "libcuda.so.1 " | sed "s/^/C /"; /opt/gs-probe; true'
	hk_runc "$HK_B" "$id" || hk_fail "stub image: the container failed: $(cat "$HK_WORK/$id.out")"
	grep '^C ' "$HK_WORK/$id.out" | head -n 1 | grep -q '/run/gpu-stage/lib/compute/libcuda.so.1' ||
		hk_fail "stub image (ro=$ro): the staged libcuda.so.1 is not the first cache entry: $(cat "$HK_WORK/$id.out")"
	grep -q 'lib/x86_64-linux-gnu/libcuda.so.1$' "$HK_WORK/$id.out" ||
		hk_fail "stub image (ro=$ro): the image's own entry was dropped: $(cat "$HK_WORK/$id.out")"
	grep -q '^cuDriverGetVersion=12020 ' "$HK_WORK/$id.out" ||
		hk_fail "stub image (ro=$ro): dlopen(libcuda.so.1) got the stub: $(cat "$HK_WORK/$id.out")"
	hk_ok "image with a stub libcuda.so.1 (root.readonly=$ro): staged entry first, image entry kept, probe gets 12020"
done

# ---- read-only root and runtime mounts under /run ---------------------------
# a tmpfs at /run (what podman --read-only does): the anchor goes into it
n=$((n + 1))
id=gs-hk-$$-$n
hk_bundle "c$n"
hk_config "$HK_B" createRuntime true '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
jq '.mounts += [{destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=755"]}]' \
	"$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
hk_runc "$HK_B" "$id" || hk_fail "ro root + tmpfs /run: the container failed: $(cat "$HK_WORK/$id.out")"
hk_check_inside "$id" "ro root + tmpfs /run"
hk_ok "read-only root with a tmpfs /run"
# a bind mount at /run/secrets on a read-only root: covering /run would hide it
n=$((n + 1))
id=gs-hk-$$-$n
hk_bundle "c$n"
mkdir -p "$HK_WORK/secrets" && echo s3cret >"$HK_WORK/secrets/token"
hk_config "$HK_B" prestart true '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
jq --arg s "$HK_WORK/secrets" '.mounts += [{destination: "/run/secrets", type: "bind", source: $s, options: ["rbind", "ro"]}]' \
	"$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
if hk_runc "$HK_B" "$id"; then
	hk_fail "ro root + /run/secrets mount: the container started though /run could not be covered: $(cat "$HK_WORK/$id.out")"
fi
grep -q 'run/secrets is a mount point' "$HK_WORK/$id.out" ||
	hk_fail "ro root + /run/secrets mount: no clear refusal: $(cat "$HK_WORK/$id.out")"
hk_ok "read-only root with a mount under /run: refused clearly"

# ---- a musl image: its loader reads /etc/ld-musl-x86_64.path, not ld.so.cache ----
# The real musl loader (Debian's musl package) and a probe linked against it
# (musl-gcc): it dlopens libcuda.so.1 by SONAME through the path file the
# hook wrote (musl satisfies the glibc NEEDED names libc.so.6, libm.so.6...
# itself).  Once writable with the image's own path file (kept after ours),
# once read-only over it.
command -v musl-gcc >/dev/null && [ -e /lib/ld-musl-x86_64.so.1 ] || hk_skip "musl and musl-tools are not installed (bash tests/deps.sh)"
cat >"$HK_WORK/musl.c" <<'EOC'
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
int main(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW);
	printf("DLOPEN %s\n", h ? "ok" : dlerror());
	printf("CACHE %s\n", access("/etc/ld.so.cache", F_OK) ? "absent" : "present");
	printf("SMI %s\n", access("/usr/bin/nvidia-smi", X_OK) && access("/usr/local/bin/nvidia-smi", X_OK)
				    ? "absent" : "present");
	FILE *f = fopen("/etc/ld-musl-x86_64.path", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		printf("PATH %s", line);
	return 0;
}
EOC
musl-gcc -O2 -o "$HK_WORK/musl-check" "$HK_WORK/musl.c" || hk_fail "cannot build the musl checker"
for ro in false true; do
	n=$((n + 1))
	id=gs-hk-$$-$n
	hk_musl_bundle "musl-$ro" "$HK_WORK/musl-check"
	r=$HK_R
	printf '/opt/mine/lib\n/lib:/usr/lib\n/run/gpu-stage/lib/old\n' >"$r/etc/ld-musl-x86_64.path"
	hk_config "$HK_B" prestart "$ro" '["NVIDIA_VISIBLE_DEVICES=none"]' ""
	jq '.process.args = ["/bin/check"]' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	hk_runc "$HK_B" "$id" || hk_fail "musl image (ro $ro): the container failed: $(cat "$HK_WORK/$id.out")"
	grep -q '^DLOPEN ok$' "$HK_WORK/$id.out" || hk_fail "musl image (ro $ro): musl's loader did not find libcuda.so.1: $(cat "$HK_WORK/$id.out")"
	grep -q '^SMI present$' "$HK_WORK/$id.out" || hk_fail "musl image (ro $ro): no nvidia-smi: $(cat "$HK_WORK/$id.out")"
	grep -q '^CACHE absent$' "$HK_WORK/$id.out" || hk_fail "musl image (ro $ro): an ld.so.cache was written"
	[ "$(grep '^PATH ' "$HK_WORK/$id.out" | tr '\n' ' ')" = "PATH /run/gpu-stage/lib/compute PATH /run/gpu-stage/lib/utility PATH /opt/mine/lib PATH /lib PATH /usr/lib " ] ||
		hk_fail "musl image (ro $ro): the path file is not ours first, then the image's (stale ones of ours gone): $(grep '^PATH ' "$HK_WORK/$id.out" | tr '\n' ' ')"
	tail -n 1 "$HK_AUDIT" | jq -e '.plan.ldcache | contains("ld-musl-x86_64.path")' >/dev/null ||
		hk_fail "musl image (ro $ro): the audit record does not say what was written: $(tail -n 1 "$HK_AUDIT" | jq -c .plan.ldcache)"
	if [ "$ro" = true ]; then
		grep -q '/opt/mine/lib' "$r/etc/ld-musl-x86_64.path" && ! grep -q gpu-stage/lib/compute "$r/etc/ld-musl-x86_64.path" ||
			hk_fail "musl image, read-only root: the image's path file was changed"
	fi
done
hk_ok "musl image: musl's own loader dlopens libcuda.so.1 through /etc/ld-musl-x86_64.path (ours first, the image's kept), writable and read-only"

# ---- the runtime shim: gpu-runtime adds the hook itself, then execs runc ----
SHIM=$(hk_abs "$HK_BUILD/gpu-runtime")
if [ -x "$SHIM" ]; then
	n=$((n + 1))
	id=gs-hk-$$-$n
	hk_bundle "c$n"
	hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
	jq 'del(.hooks)' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	HK_CTRS+=("$id")
	(cd "$HK_B" && GPU_STAGE_STORE=$HK_STORE GPU_STAGE_RUNTIME=runc \
		GPU_STAGE_HOOK_OPTS="--audit-log $HK_AUDIT --dev-root $HK_DEV --proc-root $HK_PROC" \
		timeout 120 "$SHIM" run "$id") >"$HK_WORK/$id.out" 2>&1 ||
		hk_fail "gpu-runtime run failed: $(cat "$HK_WORK/$id.out")"
	hk_check_inside "$id" "gpu-runtime (runc)"
	jq -e --arg h "$(dirname "$SHIM")/gpu-stage-hook" '.hooks.createRuntime[0] | .path == $h and .env == []' \
		"$HK_B/config.json" >/dev/null || hk_fail "gpu-runtime wrote an unexpected hook entry: $(jq -c .hooks "$HK_B/config.json")"
	hk_ok "gpu-runtime: hook added to config.json (createRuntime, empty env), container got the driver"

	# a read-only root through the shim, with runc's single-dash spellings
	# (-root, -bundle: issue 12 item 6): config.json gains a tmpfs at
	# /run/gpu-stage (item 4), so the hook never covers the image's /run
	n=$((n + 1))
	id=gs-hk-$$-$n
	hk_bundle "c$n"
	hk_config "$HK_B" prestart true '["NVIDIA_VISIBLE_DEVICES=0"]' \
		"$HK_SCRIPT"'; [ -f /run/keep-me ] && echo KEEP_ME_OK; ls -ld /run/gpu-stage/lib'
	jq 'del(.hooks)' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	[ -d "$HK_B/rootfs/run" ] && [ ! -L "$HK_B/rootfs/run" ] || hk_fail "the Debian rootfs has no /run directory"
	[ ! -e "$HK_B/rootfs/run/gpu-stage" ] || hk_fail "the Debian rootfs has a /run/gpu-stage already"
	echo keep >"$HK_B/rootfs/run/keep-me"
	HK_CTRS+=("$id")
	mkdir -p "$HK_WORK/runc-root"
	(cd "$HK_WORK" && GPU_STAGE_STORE=$HK_STORE GPU_STAGE_RUNTIME=runc \
		GPU_STAGE_HOOK_OPTS="--audit-log $HK_AUDIT --dev-root $HK_DEV --proc-root $HK_PROC" \
		timeout 120 "$SHIM" -root "$HK_WORK/runc-root" run -bundle "$HK_B" "$id") >"$HK_WORK/$id.out" 2>&1 ||
		hk_fail "gpu-runtime -root X run -bundle B (read-only root) failed: $(cat "$HK_WORK/$id.out")"
	runc --root "$HK_WORK/runc-root" delete -f "$id" >/dev/null 2>&1 || true
	hk_check_inside "$id" "gpu-runtime -root X run -bundle B (read-only root)"
	grep -q '^KEEP_ME_OK$' "$HK_WORK/$id.out" || hk_fail "read-only root via gpu-runtime: the image's /run/keep-me is hidden: $(cat "$HK_WORK/$id.out")"
	jq -e '[.mounts[] | select(.destination == "/run/gpu-stage" and .type == "tmpfs")] | length == 1' \
		"$HK_B/config.json" >/dev/null || hk_fail "gpu-runtime did not declare /run/gpu-stage: $(jq -c .mounts "$HK_B/config.json")"
	tail -n 1 "$HK_AUDIT" | jq -e '[.plan.operations[] | select(.actual_destination == "/run")] | length == 0' >/dev/null ||
		hk_fail "read-only root via gpu-runtime: the hook still covered /run: $(tail -n 1 "$HK_AUDIT" | jq -c .plan.operations[0])"
	# the image changed only by the mount point the runtime made (as for any
	# spec mount on a read-only root): an empty /run/gpu-stage
	[ "$(cd "$HK_WORK/c$n/up" && find . -mindepth 1 ! -path ./opt ! -path ./opt/gs-probe ! -path ./run ! -path ./run/keep-me ! -path ./run/gpu-stage)" = "" ] &&
		[ -z "$(ls -A "$HK_WORK/c$n/up/run/gpu-stage")" ] ||
		hk_fail "read-only root via gpu-runtime: the image changed: $(cd "$HK_WORK/c$n/up" && find . -mindepth 1)"
	hk_ok "gpu-runtime -root X run -bundle B, read-only root: /run/gpu-stage declared as a tmpfs, the image's /run stays visible"

	# the same shim in front of crun (in a private mount namespace with
	# crun's cgroup setting for these machines, as hk_crun does)
	n=$((n + 1))
	id=gs-hk-$$-$n
	hk_bundle "c$n"
	hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=0"]' "$HK_SCRIPT"
	jq 'del(.hooks)' "$HK_B/config.json" >"$HK_B/c.json" && mv "$HK_B/c.json" "$HK_B/config.json"
	: >"$HK_WORK/empty"
	(cd "$HK_B" && GPU_STAGE_STORE=$HK_STORE GPU_STAGE_RUNTIME=crun \
		GPU_STAGE_HOOK_OPTS="--audit-log $HK_AUDIT --dev-root $HK_DEV --proc-root $HK_PROC" \
		timeout 120 unshare -m --propagation private sh -c \
		'[ -e /sys/fs/cgroup/unified/cgroup.controllers ] && mount --bind "$0" /sys/fs/cgroup/unified/cgroup.controllers; exec "$1" run "$2"' \
		"$HK_WORK/empty" "$SHIM" "$id") >"$HK_WORK/$id.out" 2>&1 ||
		hk_fail "gpu-runtime (crun) run failed: $(cat "$HK_WORK/$id.out")"
	hk_check_inside "$id" "gpu-runtime (crun)"
	hk_ok "gpu-runtime with GPU_STAGE_RUNTIME=crun: container got the driver"
else
	hk_fail "$SHIM is not built"
fi
echo "hook_runc.sh: all cases passed"
