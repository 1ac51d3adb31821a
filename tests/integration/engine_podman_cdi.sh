#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Podman (4.3: its CDI reads cdiVersion <= 0.5.0 and skips newer files
# silently) runs GPU containers from the spec `gpu-stage cdi` writes:
# rootful, vfs storage, runc, in private --root/--runroot/--tmpdir and
# CONTAINERS_CONF; the image is `podman import`ed from the cached
# debootstrap rootfs with gs-probe in it; the REAL Debian 535.261.03 driver
# is staged; the two fake GPUs (mknod'ed nodes, major 195: open gives ENXIO)
# and a fake /proc/driver/nvidia come from the configuration file
# (GPU_STAGE_CONFIG), which also points cdi_dir at /var/run/cdi (Podman 4.3
# reads only /etc/cdi and /var/run/cdi) and gives a vendor of this run's
# own, so the spec file is unique and no real nvidia.com spec is touched.
# Checked: --device VENDOR/gpu=all: gs-probe dlopens libcuda.so.1
# (cuDriverGetVersion 12020), nvidia-smi -h runs, both GPU nodes (ENXIO)
# and the control nodes are there, the audit record says granted_by cdi;
# =0 and =UUID: only that GPU's node; an unknown device is refused by
# Podman; NVIDIA_DRIVER_CAPABILITIES=utility: nvidia-smi but no libcuda;
# NVIDIA_VISIBLE_DEVICES=void: the nodes but no driver; no --device:
# untouched (no /run/gpu-stage, ld.so.cache byte-identical to the image's,
# no device node, no audit record); NVIDIA_VISIBLE_DEVICES=all with =0:
# still only /dev/nvidia0, the audit record shows no mknod, no cgroup rule;
# "requests": "orchestrator": the CDI device counts, the image's variables
# do not, the annotation gpu-stage.visible-devices=void opts out.  Prints `podman run` times with and
# without the CDI device (medians of interleaved runs, GS_PODMAN_TIMED_RUNS
# pairs, default 5; not judged: a timed test would be flaky).
# Everything is removed at exit; the host's mount table is unchanged.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
need_root "podman rootful, mknod"
need_tools podman runc jq tar
need_built "$GS" "${GS_BUILD:-build}/gpu-stage-hook" "$PROBE"
VER=535.261.03
make_work
V=gs-test-$$.example # this run's own CDI vendor: a unique kind and file name
SPEC=/var/run/cdi/$V-gpu.json
IMG=localhost/gs-podman-cdi-$$:latest
made_cdi_dir=false
[ -d /var/run/cdi ] || made_cdi_dir=true
mounts() { # the host's mount table, less other tests' work folders
	awk -v w="$work" '!index($4 $5, "/tmp/gs-") || index($4, w) || index($5, w) { print $4, $5, $9, $10 }' \
		/proc/self/mountinfo | sort
}
before=$(mounts)
# podman's default cgroup parent: removed at the end when this test made it
had_libpod_parent=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null || true)
P() {
	CONTAINERS_CONF=$work/containers.conf podman --root "$work/root" --runroot "$work/runroot" \
		--tmpdir "$work/tmp" --storage-driver vfs --runtime runc --cgroup-manager cgroupfs \
		--events-backend file "$@"
}
cleanup() {
	P rm -a -f >/dev/null 2>&1 || true
	P rmi -a -f >/dev/null 2>&1 || true
	rm -f "$SPEC"
	$made_cdi_dir && rmdir /var/run/cdi 2>/dev/null || true
	local c
	for c in /sys/fs/cgroup/*/libpod_parent; do
		[ -d "$c" ] && ! grep -qxF "$c" <<<"$had_libpod_parent" || continue
		# a controller this kernel lacks is a plain tmpfs directory (conmon's
		# "tasks" files in it); a real one is removed with rmdir, leaves first
		if [ "$(stat -f -c %T "$c")" = tmpfs ]; then
			rm -rf --one-file-system "$c"
		else
			find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
		fi
	done
	awk -v w="$work" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	chmod -R u+w "$work" 2>/dev/null || true
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# the real driver, staged
bash fixtures/debian-driver.sh "$work/real" --version "$VER" --set full >"$work/deb.log" 2>&1 ||
	fail "fixtures/debian-driver.sh failed: $(tail -5 "$work/deb.log")"
"$GS" --root "$work/real" --store "$work/store" --driver "$VER" --caps all -q >"$work/stage.log" 2>&1 ||
	fail "staging the real driver failed: $(cat "$work/stage.log")"

# two fake GPUs, and the configuration that names them
fake_gpus "$work" "$VER" 0 1
jq -n --arg w "$work" --arg v "$V" '{store: ($w + "/store"), dev_root: ($w + "/dev"),
	proc_root: ($w + "/proc"), audit_log: ($w + "/audit.log"), cdi_dir: "/var/run/cdi", cdi_vendor: $v}' \
	>"$work/config.json"
export GPU_STAGE_CONFIG=$work/config.json

"$GS" cdi --json >"$work/cdi.json" || fail "gpu-stage cdi failed"
[ "$(jq -r .file "$work/cdi.json")" = "$SPEC" ] || fail "the spec is not $SPEC: $(cat "$work/cdi.json")"
[ "$(jq -r .cdiVersion "$SPEC")" = 0.5.0 ] || fail "cdiVersion is not 0.5.0 (what Podman 4.3 reads)"
ok() { echo "$T: ok: $*"; }
ok "gpu-stage cdi wrote $SPEC"

mkdir -p "$work/hooks.d" # no OCI hook of the host's hooks.d: only the spec's
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
hooks_dir = ["$work/hooks.d"]
EOF
image=$(bash fixtures/rootfs.sh 2>"$work/rootfs.log") || fail "fixtures/rootfs.sh: $(tail -3 "$work/rootfs.log")"
mkdir -p "$work/extra"
cp "$PROBE" "$work/extra/gs-probe"
tar -C "$image" -cf "$work/image.tar" . && tar -C "$work/extra" -rf "$work/image.tar" ./gs-probe ||
	fail "cannot make the image tar"
P import "$work/image.tar" "$IMG" >"$work/import.log" 2>&1 || fail "podman import: $(tail -3 "$work/import.log")"
rm -f "$work/image.tar"

CDI_OUT=$work
prun() { # NAME ARGS...: podman run --rm ARGS IMAGE sh -c CDI_INSIDE, output in $work/NAME.out
	local name=$1
	shift
	P run --rm "$@" "$IMG" sh -c "$CDI_INSIDE" >"$work/$name.out" 2>&1
}
img_cache=$(sha256sum "$image/etc/ld.so.cache" | cut -d' ' -f1)
audits() { [ -f "$work/audit.log" ] && wc -l <"$work/audit.log" || echo 0; }

n0=$(audits)
prun all --device "$V/gpu=all" || fail "--device $V/gpu=all: podman run failed: $(cat "$work/all.out")"
cdi_has all "cuDriverGetVersion=12020 (rc 0)"
cdi_has all "SMI NVIDIA System Management Interface -- v$VER"
for d in nvidia0 nvidia1 nvidiactl nvidia-uvm nvidia-uvm-tools; do cdi_has all "NODE /dev/$d ENXIO"; done
cdi_has all "LIBCUDA 1"
[ "$(audits)" -eq $((n0 + 1)) ] || fail "--device $V/gpu=all: expected one new audit record"
[ "$(tail -n 1 "$work/audit.log" | jq -r '.granted_by + " " + .stage + " " + .result')" = "cdi createContainer ok" ] ||
	fail "the audit record does not say granted_by cdi: $(tail -n 1 "$work/audit.log")"
ok "--device $V/gpu=all: libcuda.so.1 by SONAME (cuDriverGetVersion 12020), nvidia-smi -h, both GPUs (ENXIO), audit granted_by cdi"

for sel in 0 "$U0"; do
	prun one --device "$V/gpu=$sel" || fail "--device $V/gpu=$sel: podman run failed: $(cat "$work/one.out")"
	cdi_has one "cuDriverGetVersion=12020 (rc 0)"
	cdi_has one "NODE /dev/nvidia0 ENXIO"
	cdi_hasnt one "NODE /dev/nvidia1"
	ok "--device $V/gpu=$sel: the driver and /dev/nvidia0 only"
done
prun two --device "$V/gpu=$U1" || fail "--device $V/gpu=$U1: podman run failed: $(cat "$work/two.out")"
cdi_has two "NODE /dev/nvidia1 ENXIO"
cdi_hasnt two "NODE /dev/nvidia0"
ok "--device $V/gpu=$U1 (the second GPU by UUID): /dev/nvidia1 only"

# the image's NVIDIA_VISIBLE_DEVICES=all counts for nothing in CDI mode:
# the devices are the runtime's, the hook makes no node and no cgroup rule
prun envall --device "$V/gpu=0" -e NVIDIA_VISIBLE_DEVICES=all || fail "NVIDIA_VISIBLE_DEVICES=all with =0: $(cat "$work/envall.out")"
cdi_has envall "NODE /dev/nvidia0 ENXIO"
cdi_hasnt envall "NODE /dev/nvidia1"
rec=$(tail -n 1 "$work/audit.log")
[ "$(jq '[.plan.operations[] | select(.op == "mknod")] | length' <<<"$rec")" -eq 0 ] &&
	[ "$(jq '[.plan.operations[] | select(.op == "bind-dir" and .status == "applied")] | length' <<<"$rec")" -gt 0 ] &&
	! jq -e 'has("devices_cgroup")' <<<"$rec" >/dev/null ||
	fail "CDI mode: the audit record shows a device node, a cgroup rule or no bind: $rec"
ok "CDI mode with NVIDIA_VISIBLE_DEVICES=all in the environment and =0: /dev/nvidia0 only; the hook made no node, wrote no rule"

if prun bad --device "$V/gpu=7"; then fail "--device $V/gpu=7 (no such GPU) started"; fi
grep -q "unresolvable CDI devices $V/gpu=7" "$work/bad.out" || fail "--device $V/gpu=7: $(cat "$work/bad.out")"
ok "--device $V/gpu=7: refused by Podman (no such device in the spec)"

prun util --device "$V/gpu=0" -e NVIDIA_DRIVER_CAPABILITIES=utility || fail "capabilities utility: $(cat "$work/util.out")"
cdi_has util "SMI NVIDIA System Management Interface -- v$VER"
cdi_has util "LIBCUDA 0"
ok "NVIDIA_DRIVER_CAPABILITIES=utility with a CDI device: nvidia-smi, no libcuda"

n0=$(audits)
prun void --device "$V/gpu=0" -e NVIDIA_VISIBLE_DEVICES=void || fail "void: $(cat "$work/void.out")"
cdi_has void "NODE /dev/nvidia0 ENXIO"
cdi_has void "ANCHOR_MOUNTS 0"
cdi_has void "CACHE $img_cache  /etc/ld.so.cache"
[ "$(audits)" -eq "$n0" ] || fail "NVIDIA_VISIBLE_DEVICES=void: the hook wrote an audit record"
ok "NVIDIA_VISIBLE_DEVICES=void with a CDI device: the runtime's nodes, no driver, cache untouched"

prun plain || fail "a container without --device failed: $(cat "$work/plain.out")"
cdi_has plain "ANCHOR_MOUNTS 0"
cdi_has plain "CACHE $img_cache  /etc/ld.so.cache"
cdi_hasnt plain "NODE "
cdi_hasnt plain "cuDriverGetVersion"
[ "$(audits)" -eq "$n0" ] || fail "a container without --device got an audit record"
ok "no --device: untouched (no /run/gpu-stage, ld.so.cache byte-identical to the image's, no node)"

# "requests": "orchestrator": the CDI device is the engine's request (the
# image's capabilities do not count); the annotation can still say void
jq '.requests = "orchestrator"' "$work/config.json" >"$work/config.json.new" && mv "$work/config.json.new" "$work/config.json"
prun orch --device "$V/gpu=0" -e NVIDIA_DRIVER_CAPABILITIES=utility || fail "orchestrator: $(cat "$work/orch.out")"
cdi_has orch "cuDriverGetVersion=12020 (rc 0)"
cdi_has orch "LIBCUDA 1"
[ "$(tail -n 1 "$work/audit.log" | jq -r .granted_by)" = cdi ] || fail "orchestrator: granted_by is not cdi"
n0=$(audits)
prun orchvoid --device "$V/gpu=0" --annotation gpu-stage.visible-devices=void || fail "orchestrator void: $(cat "$work/orchvoid.out")"
cdi_has orchvoid "ANCHOR_MOUNTS 0"
cdi_has orchvoid "NODE /dev/nvidia0 ENXIO"
[ "$(audits)" -eq "$n0" ] || fail "orchestrator, annotation void: an audit record was written"
jq 'del(.requests)' "$work/config.json" >"$work/config.json.new" && mv "$work/config.json.new" "$work/config.json"
ok "\"requests\": \"orchestrator\": a CDI device counts (the image's NVIDIA_DRIVER_CAPABILITIES does not), the annotation void opts out"

# podman run with and without the CDI device, interleaved; medians
ms() { local t0 t1; t0=$(date +%s%N); P run --rm "$@" "$IMG" true >/dev/null 2>&1 || fail "timed run failed"; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
plain=() cdi=()
runs=${GS_PODMAN_TIMED_RUNS:-5}
for _ in $(seq "$runs"); do
	plain+=("$(ms)")
	cdi+=("$(ms --device "$V/gpu=all")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ok "podman run true: $(median "${plain[@]}") ms without, $(median "${cdi[@]}") ms with --device $V/gpu=all (medians of $runs interleaved: ${plain[*]} / ${cdi[*]})"

cleanup
trap - EXIT
[ ! -e "$SPEC" ] || fail "$SPEC is still there after cleanup"
[ "$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null || true)" = "$had_libpod_parent" ] ||
	fail "podman's cgroups are left: $(ls -d /sys/fs/cgroup/*/libpod_parent)"
[ "$(mounts)" = "$before" ] || fail "the host's mount table changed: $(diff <(echo "$before") <(mounts) || true)"
ok "everything removed: containers, image, storage, the spec; no mount left"
