#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage cdi: the spec for a fake 2-GPU host (fake /proc/driver/nvidia,
# mknod'ed nodes) and a synthetic staged driver, read back with jq.
# The CDI rules are checked here, from the spec (SPEC.md, schema.json, and
# the validation of the CDI library Podman 4.3 vendors), not from any copy of
# the schema: cdiVersion a known version and exactly the lowest one the
# features used need (0.5.0: device names that start with a digit, and
# deviceNodes[].hostPath; nothing of 0.6.0: no annotations, no dot in the
# class); kind VENDOR/CLASS with the vendor and class rules; every device
# name matching CDI's rule and every device with non-empty containerEdits;
# only members the 0.5.0 schema knows; a createContainer hook with an
# absolute path.  Then the exact devices, nodes (hostPath under dev_root),
# hook path and arguments; --output - and --json; --vendor; the atomic
# write (no temporary file left, an unwritable directory a clear error
# with the old file untouched); not staged, a missing node, no GPU, no
# hook next to gpu-stage: errors naming what is wrong.  Last, `gpu-stage`
# (stage) re-writes a spec of ours in cdi_dir that serves its store (a GPU
# added shows up), and leaves alone one that serves another store, one it
# did not write, and a missing one (never created).  And the hook's --cdi:
# a config.json jansson cannot read fails the start (a CDI device asked).
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
need_root "mknod of the fake GPU nodes"
need_tools jq setpriv
HOOK=${GS_BUILD:-build}/gpu-stage-hook
need_built "$GS" "$HOOK"
VER=535.261.03
make_work
ok() { echo "$T: ok: $*"; }

bash fixtures/mkdriver.sh "$work/drv" --version "$VER" >"$work/mk.log" 2>&1 || fail "mkdriver.sh: $(tail -3 "$work/mk.log")"
"$GS" --root "$work/drv" --store "$work/store" --driver "$VER" -q >"$work/stage.log" 2>&1 || fail "staging: $(cat "$work/stage.log")"
G=$work/proc/driver/nvidia/gpus
# minors 3 and 1, bus order 01 then 02: the index follows the bus id, the node the minor
fake_gpus "$work" "$VER" 3 1
D=$work/dev
jq -n --arg w "$work" '{store: ($w + "/store"), dev_root: ($w + "/dev"), proc_root: ($w + "/proc"),
	cdi_dir: ($w + "/cdi")}' >"$work/config.json"
export GPU_STAGE_CONFIG=$work/config.json
SPEC=$work/cdi/nvidia.com-gpu.json
HOOKABS=$(cd "$(dirname "$HOOK")" && pwd)/gpu-stage-hook

"$GS" cdi >"$work/out" 2>"$work/err" || fail "gpu-stage cdi failed: $(cat "$work/err")"
[ -f "$SPEC" ] || fail "no $SPEC (cdi_dir is created when missing)"
[ "$(stat -c %a "$SPEC")" = 644 ] || fail "$SPEC has mode $(stat -c %a "$SPEC"), not 644"
[ "$(ls -A "$work/cdi")" = nvidia.com-gpu.json ] || fail "more than the spec in cdi_dir: $(ls -A "$work/cdi")"
grep -q "^wrote $SPEC (cdiVersion 0.5.0): 5 devices: nvidia.com/gpu=0 " "$work/out" || fail "output: $(cat "$work/out")"

# ---- another spec of the kind (NVIDIA's nvidia.yaml): refused, --force
# writes with a warning; another kind, or gpu-stage's own, is no rival ----
printf 'cdiVersion: "0.5.0"\nkind: "nvidia.com/gpu"\ndevices:\n- name: all\n' >"$work/cdi/nvidia.yaml"
printf '{"cdiVersion": "0.5.0", "kind": "amd.com/gpu", "devices": []}\n' >"$work/cdi/amd.json"
cp "$SPEC" "$work/cdi/gpu-stage-copy.json"
before=$(sha256sum <"$SPEC")
rc=0; "$GS" cdi >"$work/out" 2>"$work/err" || rc=$?
[ $rc -eq 1 ] && grep -qF "$work/cdi/nvidia.yaml declares kind nvidia.com/gpu too" "$work/err" && grep -qF "$SPEC not written" "$work/err" ||
	fail "a rival nvidia.yaml: rc $rc, $(cat "$work/err")"
[ "$(sha256sum <"$SPEC")" = "$before" ] || fail "refused over a rival, yet the spec changed"
"$GS" cdi --force >"$work/out" 2>"$work/err" && grep -qF "warning: $work/cdi/nvidia.yaml declares kind nvidia.com/gpu too (--force)" "$work/err" ||
	fail "--force over a rival: $(cat "$work/err")"
rm "$work/cdi/nvidia.yaml"
"$GS" cdi >"$work/out" 2>"$work/err" && [ ! -s "$work/err" ] || fail "another kind or gpu-stage's own spec taken for a rival: $(cat "$work/err")"
rm "$work/cdi/amd.json" "$work/cdi/gpu-stage-copy.json"
ok "another spec of the kind refused (naming it, the spec untouched), --force writes with a warning; another kind or gpu-stage's own spec is no rival"

# ---- CDI's rules, checked on the spec ----
rules() { # FILE: prints nothing when the spec keeps every rule, else what it breaks
	jq -r '
	def vendor_ok: test("^[A-Za-z]([A-Za-z0-9._-]*[A-Za-z0-9])?$") and length <= 253;
	def class_ok($v): if $v == "0.5.0" then test("^[A-Za-z]([A-Za-z0-9_-]*[A-Za-z0-9])?$")
		else test("^[A-Za-z]([A-Za-z0-9._-]*[A-Za-z0-9])?$") end;
	def name_ok: test("^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$");
	def subset($allowed): (keys - $allowed) == [];
	def edits_ok: subset(["env", "deviceNodes", "hooks", "mounts"])
		and all(.deviceNodes[]?; type == "object" and subset(["path", "hostPath", "type", "major", "minor", "permissions", "uid", "gid"])
			and (.path | type == "string" and startswith("/")) and ((.hostPath // "/") | startswith("/")))
		and all(.hooks[]?; subset(["hookName", "path", "args", "env", "timeout"])
			and (.hookName | IN("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"))
			and (.path | startswith("/")));
	# the lowest version whose features the spec uses (SPEC.md, "Released versions")
	def needed: if (.annotations != null) or any(.devices[]; .annotations != null)
			or ((.kind | split("/")[1] // "") | contains(".")) then "0.6.0"
		elif any(.devices[]; .name | test("^[0-9]"))
			or any((.containerEdits, .devices[].containerEdits) | .deviceNodes[]?; .hostPath != null) then "0.5.0"
		elif any((.containerEdits, .devices[].containerEdits) | .mounts[]?; .type != null) then "0.4.0"
		else "0.3.0" end;
	(.cdiVersion) as $v |
	[ (if ($v | IN("0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0")) then empty else "cdiVersion \($v) is no CDI version" end),
	  (if $v == needed then empty else "cdiVersion \($v), but the features used need exactly \(needed)" end),
	  (if subset(["cdiVersion", "kind", "devices", "containerEdits"]) then empty else "a top-level member 0.5.0 does not know: \(keys)" end),
	  (.kind | split("/") as $k | if ($k | length) == 2 and ($k[0] | vendor_ok) and ($k[1] | class_ok($v)) then empty else "bad kind \(.)" end),
	  (if (.devices | length) > 0 then empty else "no device" end),
	  (.devices[] | select((.name | name_ok | not) or (keys - ["name", "containerEdits"] != []) or ((.containerEdits // {}) | length == 0))
		| "bad device \(.name)"),
	  (.devices[] | .containerEdits | select(edits_ok | not) | "bad device edits \(.)"),
	  (.containerEdits | select(edits_ok | not) | "bad spec edits"),
	  ([.devices[].name] | select(unique | length != length) | "duplicate device names")
	] | .[]' "$1"
}
bad=$(rules "$SPEC") || fail "jq could not read $SPEC"
[ -z "$bad" ] || fail "$SPEC breaks CDI's rules: $bad"
# the rules can fail: a spec that uses a 0.6.0 feature at 0.5.0, a bad name
jq '.annotations = {"a": "b"}' "$SPEC" >"$work/bad1.json"
jq '.devices[0].name = "-x"' "$SPEC" >"$work/bad2.json"
jq '.cdiVersion = "0.6.0"' "$SPEC" >"$work/bad3.json"
for b in bad1 bad2 bad3; do [ -n "$(rules "$work/$b.json")" ] || fail "the rules do not see what is wrong in $b"; done
ok "the spec keeps CDI's rules: cdiVersion 0.5.0 (names start with a digit, hostPath), kind, names, members"

# ---- exactly what it names ----
[ "$(jq -r .kind "$SPEC")" = nvidia.com/gpu ] || fail "kind $(jq -r .kind "$SPEC")"
[ "$(jq -c '[.devices[].name]' "$SPEC")" = "[\"0\",\"$U0\",\"1\",\"$U1\",\"all\"]" ] ||
	fail "device names: $(jq -c '[.devices[].name]' "$SPEC")"
nodes() { jq -c --arg n "$1" '.devices[] | select(.name == $n) | .containerEdits.deviceNodes' "$SPEC"; }
n3="{\"path\":\"/dev/nvidia3\",\"hostPath\":\"$D/nvidia3\"}"
n1="{\"path\":\"/dev/nvidia1\",\"hostPath\":\"$D/nvidia1\"}"
[ "$(nodes 0)" = "[$n3]" ] && [ "$(nodes "$U0")" = "[$n3]" ] || fail "GPU 0's nodes: $(nodes 0)"
[ "$(nodes 1)" = "[$n1]" ] && [ "$(nodes "$U1")" = "[$n1]" ] || fail "GPU 1's nodes: $(nodes 1)"
[ "$(nodes all)" = "[$n3,$n1]" ] || fail "all's nodes: $(nodes all)"
ctl() { printf '{"path":"/dev/%s","hostPath":"%s/%s"}' "$1" "$D" "$1"; }
[ "$(jq -c .containerEdits.deviceNodes "$SPEC")" = "[$(ctl nvidiactl),$(ctl nvidia-uvm),$(ctl nvidia-uvm-tools)]" ] ||
	fail "control nodes: $(jq -c .containerEdits.deviceNodes "$SPEC")"
want_hook() { # ARGS...: the one hook the spec must hold (an explicit env: CVE-2025-23266)
	printf '%s\n' "$@" | jq -R . |
		jq -sc --arg p "$HOOKABS" '[{hookName: "createContainer", path: $p, args: ., env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}]'
}
[ "$(jq -c .containerEdits.hooks "$SPEC")" = "$(want_hook gpu-stage-hook --config "$work/config.json" --cdi createContainer)" ] ||
	fail "hooks: $(jq -c .containerEdits.hooks "$SPEC")"
ok "devices 0, UUID, 1, UUID, all with their nodes (by minor, hostPath under dev_root), nvidiactl + uvm nodes, the hook next to gpu-stage with --config and --cdi"

# nvidia-modeset when present; --output -, --json, --vendor, --store
mknod "$D/nvidia-modeset" c 195 254
"$GS" cdi --output - >"$work/stdout.json" || fail "--output - failed"
[ "$(jq -c '.containerEdits.deviceNodes[-1]' "$work/stdout.json")" = "$(ctl nvidia-modeset)" ] || fail "nvidia-modeset is not in the spec once it exists"
[ "$(jq -c 'del(.containerEdits.deviceNodes[-1])' "$work/stdout.json")" = "$(jq -c . "$SPEC")" ] || fail "--output - differs from the file beyond nvidia-modeset"
rm "$D/nvidia-modeset"
"$GS" cdi --json >"$work/sum.json" || fail "--json failed"
[ "$(jq -c '[.file, .cdiVersion, .kind, .hook, .absent]' "$work/sum.json")" = \
	"[\"$SPEC\",\"0.5.0\",\"nvidia.com/gpu\",\"$HOOKABS\",[\"/dev/nvidia-modeset\"]]" ] || fail "--json: $(cat "$work/sum.json")"
[ "$(jq -c .devices "$work/sum.json")" = "[\"nvidia.com/gpu=0\",\"nvidia.com/gpu=$U0\",\"nvidia.com/gpu=1\",\"nvidia.com/gpu=$U1\",\"nvidia.com/gpu=all\"]" ] ||
	fail "--json devices: $(jq -c .devices "$work/sum.json")"
"$GS" cdi --vendor example.org --output "$work/o/x.json" 2>"$work/err" && fail "--output into a missing directory succeeded"
mkdir "$work/o"
"$GS" cdi --vendor example.org --store "$work/store/" --output "$work/o/x.json" >/dev/null || fail "--vendor --store --output failed"
[ "$(jq -r .kind "$work/o/x.json")" = example.org/gpu ] || fail "--vendor: kind $(jq -r .kind "$work/o/x.json")"
[ "$(jq -c .containerEdits.hooks "$work/o/x.json")" = "$(want_hook gpu-stage-hook --config "$work/config.json" --store "$work/store/" --cdi createContainer)" ] ||
	fail "--store: the hook is not given it: $(jq -c .containerEdits.hooks "$work/o/x.json")"
rc=0; "$GS" cdi --vendor -bad --output - >/dev/null 2>"$work/err" || rc=$?
[ $rc -eq 1 ] && grep -q "'-bad' is not a CDI vendor name" "$work/err" || fail "--vendor -bad: rc $rc, $(cat "$work/err")"
rc=0; "$GS" cdi --json --output - >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--json --output - is no usage error (rc $rc)"
ok "nvidia-modeset once present; --output - is the file; --json; --vendor, --store (given to the hook); bad vendor 1, bad usage 2"

# ---- atomic: an unwritable directory is an error, the old file stays ----
mkdir "$work/ro"
echo '{"old": true}' >"$work/ro/spec.json"
chmod 0755 "$work/ro"
chmod 0755 "$work"
rc=0; setpriv --reuid=65534 --regid=65534 --clear-groups "$GS" cdi --output "$work/ro/spec.json" 2>"$work/err" || rc=$?
[ $rc -eq 1 ] || fail "an unwritable directory: rc $rc ($(cat "$work/err"))"
grep -q "spec.json: creating a temporary file next to it: Permission denied" "$work/err" || fail "unwritable: $(cat "$work/err")"
[ "$(cat "$work/ro/spec.json")" = '{"old": true}' ] && [ "$(ls -A "$work/ro")" = spec.json ] || fail "the old file was touched, or a temporary file is left"
ok "an unwritable directory: exit 1 naming the file and the reason; the old file untouched, nothing left"

# ---- refusals ----
before=$(sha256sum "$SPEC")
refuse() { # WHAT PATTERN ARGS...: gpu-stage cdi ARGS fails with PATTERN, the spec untouched
	local what=$1 pat=$2 rc=0
	shift 2
	"$GS" cdi "$@" >/dev/null 2>"$work/err" || rc=$?
	[ $rc -eq 1 ] || fail "$what: exit $rc, not 1 ($(cat "$work/err"))"
	grep -q -- "$pat" "$work/err" || fail "$what: the message does not say '$pat': $(cat "$work/err")"
	[ "$(sha256sum "$SPEC")" = "$before" ] || fail "$what: the spec was changed"
}
refuse "--driver not staged" "driver 999.1 is not staged in $work/store: run 'gpu-stage --driver 999.1' first" --driver 999.1
printf 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Release Build\n' >"$work/proc/driver/nvidia/version"
refuse "the loaded module's driver not staged" "driver 550.54.14 is not staged in $work/store" 
printf 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Release Build\n' "$VER" >"$work/proc/driver/nvidia/version"
mv "$D/nvidia1" "$D/nvidia1.away"
refuse "a GPU node missing" "$D/nvidia1: no such character device"
mv "$D/nvidia1.away" "$D/nvidia1"
mv "$G" "$G.away" && mkdir "$G"
refuse "no GPU" "driver/nvidia/gpus lists no GPU"
rmdir "$G" && mv "$G.away" "$G"
printf 'GPU UUID: GPU-zz\n' >"$G/0000:02:00.0/information.bad" # (not read: only */information)
mkdir "$G/0000:03:00.0" && printf 'Device Minor: 7\n' >"$G/0000:03:00.0/information"
refuse "a GPU information file without UUID" "0000:03:00.0: no valid 'GPU UUID:' line"
printf 'GPU UUID: %s\nDevice Minor: 1\n' "$U0" >"$G/0000:03:00.0/information"
refuse "two GPUs with one UUID" "two GPUs are both named $U0"
printf 'GPU UUID: GPU-abcd-\nDevice Minor: 1\n' >"$G/0000:03:00.0/information"
refuse "a UUID CDI refuses as a name" "GPU 'GPU-abcd-': not a CDI device name"
rm -r "$G/0000:03:00.0" "$G/0000:02:00.0/information.bad"
mkdir "$work/bin" && cp "$GS" "$work/bin/gpu-stage"
before=$(sha256sum "$SPEC")
rc=0; "$work/bin/gpu-stage" cdi >/dev/null 2>"$work/err" || rc=$?
[ $rc -eq 1 ] && grep -q "$work/bin/gpu-stage-hook (the hook the spec names" "$work/err" || fail "no hook next to gpu-stage: rc $rc, $(cat "$work/err")"
[ "$(sha256sum "$SPEC")" = "$before" ] || fail "no hook: the spec was changed"
ok "refused, the spec untouched: driver not staged (--driver, and the loaded module's), a node missing, no GPU, a bad information file, a UUID twice or not a CDI name, no hook next to gpu-stage"

# ---- gpu-stage (stage) keeps a spec of ours current ----
mkdir "$G/0000:03:00.0" && printf 'GPU UUID: GPU-cccccccc-2222-3333-4444-555555555555\nDevice Minor: 2\n' >"$G/0000:03:00.0/information"
mknod "$D/nvidia2" c 195 2
"$GS" --root "$work/drv" --store "$work/store" --driver "$VER" -q >"$work/out" 2>&1 || fail "re-stage: $(cat "$work/out")"
grep -qx "CDI spec $SPEC re-written" "$work/out" || fail "stage does not report the spec: $(cat "$work/out")"
[ "$(jq -c '[.devices[].name] | .[4:]' "$SPEC")" = '["2","GPU-cccccccc-2222-3333-4444-555555555555","all"]' ] ||
	fail "the re-written spec lacks the third GPU: $(jq -c '[.devices[].name]' "$SPEC")"
[ -z "$(rules "$SPEC")" ] || fail "the re-written spec breaks the rules: $(rules "$SPEC")"
"$GS" --root "$work/drv" --store "$work/store" --driver "$VER" -q --json >"$work/out.json" || fail "re-stage --json"
[ "$(jq -r .cdi_spec "$work/out.json")" = "$SPEC" ] || fail "stage --json: no cdi_spec: $(cat "$work/out.json")"
ok "stage re-writes the spec of ours that serves its store (a third GPU appears) and says so (text and --json)"
same() { # WHAT: a stage into STORE2 or the store leaves the spec file as it is
	local b
	b=$(sha256sum "$SPEC" 2>/dev/null || echo none)
	"$GS" --root "$work/drv" --store "$1" --driver "$VER" -q >"$work/out" 2>&1 || fail "$2: stage failed: $(cat "$work/out")"
	[ "$(sha256sum "$SPEC" 2>/dev/null || echo none)" = "$b" ] || fail "$2: the spec file was changed"
	if grep -q "CDI spec" "$work/out"; then fail "$2: stage reports a spec: $(cat "$work/out")"; fi
}
rm "$D/nvidia2"
b=$(sha256sum "$SPEC")
rc=0; "$GS" --root "$work/drv" --store "$work/store" --driver "$VER" -q >"$work/out" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q "driver $VER is staged, but: CDI spec $SPEC (left as it was): $D/nvidia2: no such character device" "$work/out" ||
	fail "a spec that cannot be re-written: rc $rc, $(cat "$work/out")"
[ "$(sha256sum "$SPEC")" = "$b" ] || fail "a spec that cannot be re-written was changed"
ok "a spec that cannot be re-written (a GPU's node gone): stage exits 1 naming it and why; the old spec kept"
same "$work/store2" "a stage into another store"
printf '{"cdiVersion": "0.3.0", "kind": "nvidia.com/gpu", "devices": [{"name": "x", "containerEdits": {"deviceNodes": [{"path": "/dev/x"}]}}]}\n' >"$SPEC"
same "$work/store" "a spec gpu-stage did not write"
echo 'not json' >"$SPEC"
same "$work/store" "a file that is not JSON"
rm "$SPEC"
same "$work/store" "no spec"
[ ! -e "$SPEC" ] || fail "stage created a spec nobody asked for"
ok "stage leaves alone a spec serving another store, someone else's, a non-JSON file, and creates none"

# ---- the hook's --cdi and a config.json jansson cannot read ----
# without --cdi such a file cannot ask for a GPU (nothing to do); with it a
# CDI device did ask, so the container must not start without its driver
mkdir "$work/b"
printf '{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"env": ["A=\xff"]}}' >"$work/b/config.json"
state="{\"ociVersion\": \"1.0.2\", \"id\": \"gs-cdi-$$\", \"status\": \"creating\", \"pid\": 1, \"bundle\": \"$work/b\"}"
"$HOOK" --config "$work/config.json" createContainer <<<"$state" 2>"$work/err" || fail "the hook without --cdi refused an unreadable config.json that asks for nothing: $(cat "$work/err")"
rc=0; "$HOOK" --config "$work/config.json" --cdi createContainer <<<"$state" 2>"$work/err" || rc=$?
[ $rc -eq 1 ] && grep -q "$work/b/config.json: jansson cannot read it" "$work/err" || fail "--cdi with an unreadable config.json: rc $rc, $(cat "$work/err")"
ok "the hook's --cdi: a config.json jansson cannot read fails the start (naming it); without --cdi it asks for nothing"
