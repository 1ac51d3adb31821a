#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-stage runtime configure, on the files alone (no daemon): for Docker's
# daemon.json, containerd's config.toml + drop-in and the Podman/CRI-O
# hooks.d file: the entry is added (with the absolute path of the
# gpu-runtime / gpu-stage-hook installed next to gpu-stage: the binaries are
# copied into a temporary bin directory and run from there); a second run
# changes nothing and says so; every other key, its order and its bytes
# are kept (daemon.json in the 4-space form jansson and Go's MarshalIndent
# write; 2 spaces and one line too); the previous file is kept as
# FILE.gpu-stage.bak; --undo gives back a file equal to the original;
# --dry-run prints a unified diff (checked with `patch`) and changes
# nothing; malformed input (a JSON syntax error, "runtimes" not an object,
# a duplicate key, a containerd config that cannot be read with certainty,
# or one that imports another CRI section) is an error naming the file (and
# line), exit 1, the file untouched (checksums); an unwritable directory is
# an error and leaves nothing half-written; --gpus-flag links
# nvidia-container-runtime-hook and refuses a different one; --cdi sets
# "features": {"cdi": true} alone (an explicit false is kept unless --force,
# undo removes only it); containerd's
# own `config dump` reads the result with our handler and runc's.
# containerd with a main file that configures the CRI plugin (Debian 12's
# default config.toml, written here; `containerd config default`'s output):
# the handler is appended as gpu-stage's marked block, nothing else of the
# file changes, and `containerd -c FILE config dump` keeps the file's
# settings (Debian's cni bin_dir/conf_dir) and shows the handler, with runc
# as before; --set-default in the block, as a marked line under the file's
# own containerd table, or replacing "runc" (another default only with
# --force), each undone byte for byte; the handler defined already, inline
# tables / dotted keys / arrays of tables over its tables, a broken block,
# gpu-stage's drop-in or another CRI section imported: refused.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
B=${GS_BUILD:-build}
need_built "$B/gpu-stage" "$B/gpu-runtime" "$B/gpu-stage-hook"
need_tools jq patch
make_work
mkdir -p "$work/bin"
cp "$B/gpu-stage" "$B/gpu-runtime" "$B/gpu-stage-hook" "$work/bin/"
G=$work/bin/gpu-stage
# the directory gpu-stage takes for its own (its /proc/self/exe's): the
# copies', or under a wrapper that execs the real binary elsewhere
# (tests/valgrind/run) that one's
bin=$("$G" runtime configure --docker --config "$work/probe.json" --dry-run |
	sed -n 's|^+ *"path": "\(.*\)/gpu-runtime"$|\1|p')
[ -n "$bin" ] && [ -x "$bin/gpu-runtime" ] || fail "cannot tell gpu-stage's directory from its dry run ('$bin')"
[ ! -e "$work/probe.json" ] || fail "--dry-run wrote $work/probe.json"
ok() { echo "$T: ok: $*"; }
sum() { { sha256sum "$@" 2>/dev/null || true; } | awk '{print $1}'; }

# refused EXPECTWORDS FILE CMD...: exit 1, message names FILE and WORDS, FILE unchanged
refused() {
	local words=$1 file=$2 before bak rc=0
	shift 2
	before=$(sum "$file")
	bak=$(sum "$file.gpu-stage.bak")
	"$@" >"$work/out" 2>&1 || rc=$?
	[ "$rc" -eq 1 ] || fail "$*: exit $rc, expected 1: $(cat "$work/out")"
	grep -qF -- "$file" "$work/out" || fail "$*: the message does not name $file: $(cat "$work/out")"
	grep -qF -- "$words" "$work/out" || fail "$*: the message does not say '$words': $(cat "$work/out")"
	[ "$(sum "$file")" = "$before" ] || fail "$*: $file changed"
	[ "$(sum "$file.gpu-stage.bak")" = "$bak" ] || fail "$*: a backup was written"
}

# malformed FILE TEXT WORDS ARGS...: FILE holding TEXT (printf) is refused by gpu-stage ARGS
malformed() {
	local file=$1 text=$2 words=$3
	shift 3
	# shellcheck disable=SC2059
	printf "$text" >"$file"
	refused "$words" "$file" "$G" "$@"
}

# dry_run_check FILE CMD...: prints a diff that turns FILE into what the real run writes; FILE unchanged
dry_run_check() {
	local file=$1 before
	shift
	before=$(sum "$file")
	"$@" --dry-run >"$work/dry" || fail "$* --dry-run failed"
	[ "$(sum "$file")" = "$before" ] || fail "$* --dry-run changed $file"
	grep -q '^@@ ' "$work/dry" || fail "$* --dry-run printed no diff: $(cat "$work/dry")"
	grep -q '(dry run: nothing changed)' "$work/dry" || fail "$* --dry-run did not say so"
	if [ -e "$file" ]; then cp "$file" "$work/patched"; else : >"$work/patched"; fi
	# the part of the diff whose +++ line names FILE, up to the next file's header
	awk -v f="+++ $file" '/^(docker|containerd|podman|crio): / { exit }
		/^--- / { hdr = $0; on = 0; next }
		$0 == f { on = 1; print "--- x"; print "+++ x"; next }
		on { print }' "$work/dry" >"$work/one.patch"
	[ -s "$work/one.patch" ] || fail "$* --dry-run: no diff for $file: $(cat "$work/dry")"
	patch -s "$work/patched" "$work/one.patch" || fail "$* --dry-run: the diff does not apply to $file"
	cp "$work/patched" "$work/expected"
}

# ---- Docker ----------------------------------------------------------------
d=$work/docker
mkdir -p "$d"
f=$d/daemon.json
# the 4-space form (what `json.MarshalIndent(v, "", "    ")` and jansson write)
cat >"$f" <<'EOF'
{
    "log-level": "warn",
    "data-root": "/srv/docker",
    "runtimes": {
        "other": {
            "path": "/usr/bin/other-runtime",
            "runtimeArgs": [
                "--debug"
            ]
        }
    },
    "default-ulimits": {
        "nofile": {
            "Name": "nofile",
            "Hard": 20000,
            "Soft": 20000
        }
    },
    "registry-mirrors": [],
    "labels": {},
    "insecure-registries": [
        "10.0.0.1:5000",
        "ünïcode.example"
    ],
    "live-restore": true
}
EOF
chmod 0640 "$f"
cp "$f" "$work/orig.json"
dry_run_check "$f" "$G" runtime configure --docker --config "$f"
"$G" runtime configure --docker --config "$f" >"$work/out" || fail "docker configure failed: $(cat "$work/out")"
grep -q "^docker: added runtime gpu-stage ($bin/gpu-runtime) in $f; restart dockerd" "$work/out" ||
	fail "docker configure said: $(cat "$work/out")"
cmp -s "$f" "$work/expected" || fail "the dry run's diff is not what the real run wrote: $(diff "$work/expected" "$f")"
[ "$(jq -r '.runtimes["gpu-stage"].path' "$f")" = "$bin/gpu-runtime" ] || fail "no runtimes.gpu-stage.path: $(cat "$f")"
[ "$(jq -r 'keys_unsorted | join(",")' "$f")" = "$(jq -r 'keys_unsorted | join(",")' "$work/orig.json")" ] ||
	fail "key order changed: $(jq -c 'keys_unsorted' "$f")"
# every line of the original is still there, in order (only the new entry added)
{ diff "$work/orig.json" "$f" || true; } | grep '^<' && fail "lines of the original changed or went: $(diff "$work/orig.json" "$f")"
[ "$(diff "$work/orig.json" "$f" | grep -c '^>')" -eq 3 ] || fail "expected 3 added lines: $(diff "$work/orig.json" "$f")"
jq -e 'del(.runtimes["gpu-stage"]) == input' "$f" "$work/orig.json" >/dev/null || fail "other values changed"
cmp -s "$f.gpu-stage.bak" "$work/orig.json" || fail "no backup of the original as $f.gpu-stage.bak"
[ "$(stat -c %a "$f")" = 640 ] || fail "mode 0640 became $(stat -c %a "$f")"
ok "docker: runtime added, other keys kept byte for byte and in order, backup, mode kept, dry-run diff = real change"

s1=$(sum "$f")
"$G" runtime configure --docker --config "$f" >"$work/out" || fail "second run failed"
grep -q "nothing to do" "$work/out" || fail "second run did not say it had nothing to do: $(cat "$work/out")"
[ "$(sum "$f")" = "$s1" ] || fail "second run changed the file"
cmp -s "$f.gpu-stage.bak" "$work/orig.json" || fail "second run replaced the backup"
"$G" runtime configure --docker --config "$f" --json | jq -e '.changed == false and .changes[0].action == "unchanged"' >/dev/null ||
	fail "--json of an idempotent run"
ok "docker: idempotent (a second run changes nothing and says so)"

"$G" runtime configure --docker --config "$f" --undo >"$work/out" || fail "undo failed: $(cat "$work/out")"
cmp -s "$f" "$work/orig.json" || fail "undo did not give back the original: $(diff "$work/orig.json" "$f")"
ok "docker: --undo gives back the original byte for byte"

# --set-default and --name nvidia; undo takes both away again
"$G" runtime configure --docker --config "$f" --name nvidia --set-default >/dev/null || fail "--name nvidia --set-default failed"
jq -e '."default-runtime" == "nvidia" and .runtimes.nvidia.path == $p' --arg p "$bin/gpu-runtime" "$f" >/dev/null ||
	fail "--name nvidia --set-default: $(cat "$f")"
"$G" runtime configure --docker --config "$f" --name nvidia --undo >/dev/null || fail "undo --name nvidia failed"
cmp -s "$f" "$work/orig.json" || fail "undo after --set-default: $(diff "$work/orig.json" "$f")"
# an entry of that name that runs something else: refused, then --force
refused 'runtime "other" is there already and runs /usr/bin/other-runtime' "$f" "$G" runtime configure --docker --config "$f" --name other
refused 'not gpu-stage' "$f" "$G" runtime configure --docker --config "$f" --name other --undo
ok "docker: --name nvidia --set-default and its undo; another program's entry is refused"

# --set-default over dockerd's own "runc" (its note names the old value,
# which setting the new one freed: tests/fuzz/runtime/regress-set-default-runc-uaf)
printf '{"default-runtime": "runc"}\n' >"$f"
"$G" runtime configure --docker --config "$f" --set-default >"$work/out" 2>&1 || fail "--set-default over runc: $(cat "$work/out")"
grep -qF "\"default-runtime\" is now \"gpu-stage\" (was \"runc\"; kept in $f.gpu-stage.default for --undo)" "$work/out" ||
	fail "--set-default over runc: $(cat "$work/out")"
cp "$work/orig.json" "$f"
rm -f "$f.gpu-stage.default"
ok "docker: --set-default over \"runc\" says what it replaced"

# --set-default --force over another default: the old value is kept in
# daemon.json.gpu-stage.default (no backup of that), configure twice = once,
# undo puts it back where it was, byte for byte, and removes the file
d=$f.gpu-stage.default
printf '{\n    "default-runtime": "nvidia",\n    "runtimes": {\n        "nvidia": {\n            "path": "nvidia-container-runtime"\n        }\n    },\n    "debug": true\n}\n' >"$f"
cp "$f" "$work/nv.json"
rm -f "$f.gpu-stage.bak"
"$G" runtime configure --docker --config "$f" --set-default --force >"$work/out" 2>&1 || fail "--set-default --force: $(cat "$work/out")"
grep -qF "(was \"nvidia\"; kept in $d for --undo)" "$work/out" || fail "--set-default --force: $(cat "$work/out")"
jq -e '."default-runtime" == "gpu-stage"' "$f" >/dev/null && jq -e '."default-runtime" == "nvidia" and .runtime == "gpu-stage"' "$d" >/dev/null ||
	fail "--set-default --force: $(cat "$f" "$d")"
[ ! -e "$d.gpu-stage.bak" ] || fail "a backup of gpu-stage's own $d"
s1=$(sum "$f" "$d")
"$G" runtime configure --docker --config "$f" --set-default --force | grep -q 'nothing to do' && [ "$(sum "$f" "$d")" = "$s1" ] ||
	fail "--set-default --force twice changed something"
"$G" runtime configure --docker --config "$f" --undo --dry-run >"$work/out" 2>&1 && grep -qF -- "+++ /dev/null" "$work/out" ||
	fail "undo --dry-run does not show $d removed: $(cat "$work/out")"
"$G" runtime configure --docker --config "$f" --undo >"$work/out" 2>&1 || fail "undo after --force: $(cat "$work/out")"
grep -qF "\"default-runtime\" is \"nvidia\" again (from $d)" "$work/out" || fail "undo after --force: $(cat "$work/out")"
cmp -s "$f" "$work/nv.json" && [ ! -e "$d" ] && [ ! -e "$d.gpu-stage.bak" ] || fail "undo after --force: $(diff "$work/nv.json" "$f"; ls "$d"*)"
# the admin changed the default since: left as it is, the file goes
"$G" runtime configure --docker --config "$f" --set-default --force >/dev/null
jq '."default-runtime" = "crun"' "$f" >"$work/t" && cat "$work/t" >"$f"
"$G" runtime configure --docker --config "$f" --undo >"$work/out" 2>&1 && grep -qF '"default-runtime" is not gpu-stage now: left as it is' "$work/out" ||
	fail "undo after the default changed: $(cat "$work/out")"
jq -e '."default-runtime" == "crun" and (.runtimes | has("gpu-stage") | not)' "$f" >/dev/null && [ ! -e "$d" ] ||
	fail "undo after the default changed: $(cat "$f")"
# a file there that gpu-stage did not write: refused, untouched; --force removes it
cp "$work/nv.json" "$f"
"$G" runtime configure --docker --config "$f" --set-default --force >/dev/null
cp "$f" "$work/set.json"
for bad in '{bad' '{"runtime": 3, "default-runtime": "x"}' '[]'; do
	printf '%s' "$bad" >"$d"
	refused "$d" "$d" "$G" runtime configure --docker --config "$f" --undo
	cmp -s "$f" "$work/set.json" || fail "undo with '$bad' in $d changed $f"
done
"$G" runtime configure --docker --config "$f" --undo --force >/dev/null && [ ! -e "$d" ] &&
	jq -e 'has("default-runtime") | not' "$f" >/dev/null || fail "undo --force with a foreign $d: $(cat "$f"; ls "$d"*)"
rm -f "$d"
cp "$work/orig.json" "$f"
ok "docker: --set-default --force keeps the replaced default in daemon.json.gpu-stage.default; undo puts it back byte for byte (or leaves a default changed since); a foreign one refused, --force removes it"

# other layouts: 2 spaces, one line, a missing file, an empty one
printf '{\n  "debug": true,\n  "runtimes": {}\n}\n' >"$f"
"$G" runtime configure --docker --config "$f" >/dev/null || fail "2-space file"
[ "$(sed -n 3p "$f")" = '  "runtimes": {' ] && [ "$(sed -n 4p "$f")" = '    "gpu-stage": {' ] || fail "2-space indentation not kept: $(cat "$f")"
printf '{"debug": true, "storage-driver": "vfs"}' >"$f"
"$G" runtime configure --docker --config "$f" >/dev/null || fail "one-line file"
[ "$(wc -l <"$f")" -eq 0 ] && jq -e '.runtimes["gpu-stage"]' "$f" >/dev/null || fail "one-line file not kept one line: $(cat "$f")"
case $(cat "$f") in '{"debug": true, "storage-driver": "vfs", "runtimes": '*) ;; *) fail "one-line file's keys moved: $(cat "$f")" ;; esac
rm -f "$f" "$f.gpu-stage.bak"
"$G" runtime configure --docker --config "$f" >/dev/null || fail "missing daemon.json"
[ "$(jq -c . "$f")" = "{\"runtimes\":{\"gpu-stage\":{\"path\":\"$bin/gpu-runtime\"}}}" ] && [ "$(sed -n 2p "$f")" = '    "runtimes": {' ] ||
	fail "a new daemon.json: $(cat "$f")"
[ ! -e "$f.gpu-stage.bak" ] || fail "a backup of a file that was not there"
"$G" runtime configure --docker --config "$f" --undo >/dev/null && [ "$(cat "$f")" = '{}' ] || fail "undo of a new file: $(cat "$f")"
: >"$f"
"$G" runtime configure --docker --config "$f" >/dev/null && jq -e '.runtimes["gpu-stage"]' "$f" >/dev/null || fail "empty daemon.json"
ok "docker: 2-space and one-line layouts kept, a missing or empty daemon.json created"

# nothing of gpu-stage's there: --undo (and --cdi --undo) leave the file byte
# for byte, write no backup, create no file; --cdi where CDI is on: nothing
for text in '{"exec-opts": ["native.cgroupdriver=systemd"]}' '{\n  "exec-opts": ["native.cgroupdriver=systemd"],\n  "features": {"buildkit": true}\n}\n'; do
	printf "$text" >"$f"
	s1=$(sum "$f")
	rm -f "$f.gpu-stage.bak"
	for args in --undo "--cdi --undo" "--name nvidia --undo"; do
		# shellcheck disable=SC2086
		"$G" runtime configure --docker --config "$f" $args >"$work/out" 2>&1 && grep -q 'nothing to do' "$work/out" ||
			fail "$args on a file without gpu-stage: $(cat "$work/out")"
		[ "$(sum "$f")" = "$s1" ] && [ ! -e "$f.gpu-stage.bak" ] || fail "$args rewrote $(printf "$text"): $(cat "$f")"
	done
done
printf '{"features": {"cdi": true}, "exec-opts": ["native.cgroupdriver=systemd"]}' >"$f"
s1=$(sum "$f")
"$G" runtime configure --docker --cdi --config "$f" >"$work/out" 2>&1 && grep -q 'nothing to do' "$work/out" && [ "$(sum "$f")" = "$s1" ] ||
	fail "--cdi where CDI is on already: $(cat "$work/out")"
rm -f "$f"
"$G" runtime configure --docker --config "$f" --undo >"$work/out" 2>&1 && grep -q 'nothing to do' "$work/out" && [ ! -e "$f" ] ||
	fail "--undo created $f: $(cat "$work/out")"
ok "docker: --undo with nothing of gpu-stage's rewrites nothing, backs up nothing, creates nothing; --cdi with CDI on is a no-op"

# malformed: named with line and column, exit 1, untouched, no backup
rm -f "$f.gpu-stage.bak"
malformed "$f" '{\n    "debug": true,\n    "runtimes": {\n        "x": 1,\n    }\n}\n' 'line 5' runtime configure --docker --config "$f"
malformed "$f" '{\n    "runtimes": ["gpu-runtime"]\n}\n' '"runtimes" is not an object' runtime configure --docker --config "$f"
malformed "$f" '{\n    "debug": true,\n    "debug": false\n}\n' 'duplicate object key' runtime configure --docker --config "$f"
malformed "$f" '[1, 2]\n' 'not a JSON object' runtime configure --docker --config "$f"
malformed "$f" '{"default-runtime": "crun"}\n' '"default-runtime" is "crun"' runtime configure --docker --config "$f" --set-default
ok "docker: malformed daemon.json (syntax, runtimes not an object, duplicate key, not an object, other default) refused, untouched"

# unwritable directory: an error naming the file, nothing written (as a user
# without CAP_DAC_OVERRIDE when root: root writes anywhere)
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	ro=$work/ro
	mkdir -p "$ro"
	cp "$work/orig.json" "$ro/daemon.json"
	chmod 0555 "$ro"
	before=$(sum "$ro/daemon.json")
	rc=0
	setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search,-fowner \
		"$G" runtime configure --docker --config "$ro/daemon.json" >"$work/out" 2>&1 || rc=$?
	chmod 0755 "$ro"
	[ "$rc" -eq 1 ] && grep -qF "$ro/daemon.json" "$work/out" || fail "unwritable directory: exit $rc: $(cat "$work/out")"
	[ "$(sum "$ro/daemon.json")" = "$before" ] && [ "$(ls -A "$ro")" = daemon.json ] ||
		fail "unwritable directory: something was written: $(ls -A "$ro")"
	ok "docker: unwritable directory: exit 1 naming the file, nothing written"
fi

# --gpus-flag: the link next to gpu-stage, refused when another program has the name
cp "$work/orig.json" "$f"
"$G" runtime configure --docker --config "$f" --gpus-flag >"$work/out" || fail "--gpus-flag failed: $(cat "$work/out")"
[ "$(readlink "$bin/nvidia-container-runtime-hook")" = gpu-stage-hook ] || fail "--gpus-flag made no link"
"$G" runtime configure --docker --config "$f" --gpus-flag | grep -q 'nothing to do' || fail "--gpus-flag not idempotent"
"$G" runtime configure --docker --config "$f" --undo >/dev/null || fail "undo with the link"
[ ! -e "$bin/nvidia-container-runtime-hook" ] && [ ! -L "$bin/nvidia-container-runtime-hook" ] || fail "undo left the link"
cmp -s "$f" "$work/orig.json" || fail "undo after --gpus-flag"
printf '#!/bin/sh\n' >"$bin/nvidia-container-runtime-hook"
chmod +x "$bin/nvidia-container-runtime-hook"
s1=$(sum "$f")
refused "exists and is not gpu-stage's" "$bin/nvidia-container-runtime-hook" "$G" runtime configure --docker --config "$f" --gpus-flag
[ "$(sum "$f")" = "$s1" ] || fail "--gpus-flag refused, but daemon.json was changed"
"$G" runtime configure --docker --config "$f" --undo >"$work/out" || fail "undo with a foreign hook"
[ -f "$bin/nvidia-container-runtime-hook" ] || fail "undo removed a program that is not gpu-stage's"
rm -f "$bin/nvidia-container-runtime-hook"
ok "docker: --gpus-flag links nvidia-container-runtime-hook, idempotent, undone; a foreign one refused and left alone"

# the link outside a packaged dockerd's PATH is said; an unwritable BINDIR
# is refused before daemon.json is written; GPU_STAGE_CONFIG's reach
cp "$work/orig.json" "$f"
"$G" runtime configure --docker --config "$f" --gpus-flag >"$work/out" || fail "--gpus-flag: $(cat "$work/out")"
grep -qF "$bin is not on the PATH of a packaged dockerd" "$work/out" || fail "--gpus-flag outside dockerd's PATH not said: $(cat "$work/out")"
"$G" runtime configure --docker --config "$f" --undo >/dev/null || fail "undo"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	rm -f "$f.gpu-stage.bak"
	s1=$(sum "$f")
	chmod 0555 "$bin"
	rc=0
	setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search,-fowner \
		"$G" runtime configure --docker --config "$f" --gpus-flag >"$work/out" 2>&1 || rc=$?
	chmod 0755 "$bin"
	[ "$rc" -eq 1 ] && grep -qF "$bin: the link nvidia-container-runtime-hook cannot be made there (nothing written)" "$work/out" ||
		fail "--gpus-flag, unwritable $bin: exit $rc: $(cat "$work/out")"
	[ "$(sum "$f")" = "$s1" ] && [ ! -e "$f.gpu-stage.bak" ] || fail "--gpus-flag, unwritable $bin: daemon.json written"
fi
GPU_STAGE_CONFIG=$work/other-config.json "$G" runtime configure --docker --config "$f" >"$work/out" ||
	fail "docker with GPU_STAGE_CONFIG: $(cat "$work/out")"
grep -qF "GPU_STAGE_CONFIG=$work/other-config.json holds in this shell only: gpu-runtime under docker reads /etc/gpu-stage/config.json" "$work/out" ||
	fail "GPU_STAGE_CONFIG's reach not said: $(cat "$work/out")"
"$G" runtime configure --docker --config "$f" --undo >/dev/null && cmp -s "$f" "$work/orig.json" || fail "undo"
rm -f "$f.gpu-stage.bak"
ok "docker: --gpus-flag outside dockerd's PATH said, an unwritable BINDIR refused with nothing written; GPU_STAGE_CONFIG's reach said"

# --cdi: "features": {"cdi": true} and nothing else (no runtime, no link)
cp "$work/orig.json" "$f"
rm -f "$f.gpu-stage.bak"
dry_run_check "$f" "$G" runtime configure --docker --cdi --config "$f"
"$G" runtime configure --docker --cdi --config "$f" >"$work/out" || fail "--cdi failed: $(cat "$work/out")"
grep -q "^docker: enabled CDI (\"features\": {\"cdi\": true}) in $f; restart dockerd" "$work/out" &&
	grep -q '^docker: note: .*`gpu-stage cdi`' "$work/out" || fail "--cdi said: $(cat "$work/out")"
cmp -s "$f" "$work/expected" || fail "--cdi: the dry run's diff is not what the real run wrote: $(diff "$work/expected" "$f")"
jq -e '.features == {cdi: true} and del(.features) == input' "$f" "$work/orig.json" >/dev/null || fail "--cdi: $(cat "$f")"
# every line of the original is still there, in order (the last one before the new key gains a comma)
{ diff <(sed 's/,$//' "$work/orig.json") <(sed 's/,$//' "$f") || true; } | grep -q '^<' &&
	fail "--cdi: lines of the original changed: $(diff "$work/orig.json" "$f")"
[ ! -e "$bin/nvidia-container-runtime-hook" ] || fail "--cdi made the --gpus link"
cmp -s "$f.gpu-stage.bak" "$work/orig.json" || fail "--cdi: no backup of the original"
s1=$(sum "$f")
"$G" runtime configure --docker --cdi --config "$f" | grep -q 'nothing to do' && [ "$(sum "$f")" = "$s1" ] || fail "--cdi is not idempotent"
"$G" runtime configure --docker --config "$f" >/dev/null && "$G" runtime configure --docker --config "$f" --undo >/dev/null ||
	fail "runtime configure and undo beside --cdi"
[ "$(sum "$f")" = "$s1" ] || fail "the runtime's undo touched features.cdi: $(cat "$f")"
"$G" runtime configure --docker --cdi --config "$f" --undo >/dev/null || fail "--cdi --undo failed"
cmp -s "$f" "$work/orig.json" || fail "--cdi --undo did not give back the original: $(diff "$work/orig.json" "$f")"
printf '{\n    "features": {\n        "buildkit": true\n    },\n    "cdi-spec-dirs": [\n        "/srv/cdi"\n    ]\n}\n' >"$f"
cp "$f" "$work/feat.json"
"$G" runtime configure --docker --cdi --config "$f" >"$work/out" || fail "--cdi beside buildkit failed"
jq -e '.features == {buildkit: true, cdi: true}' "$f" >/dev/null || fail "--cdi beside buildkit: $(cat "$f")"
grep -q 'sets "cdi-spec-dirs"' "$work/out" || fail "--cdi did not warn about cdi-spec-dirs: $(cat "$work/out")"
"$G" runtime configure --docker --cdi --config "$f" --undo >/dev/null && cmp -s "$f" "$work/feat.json" ||
	fail "--cdi --undo beside buildkit: $(cat "$f")"
rm -f "$f.gpu-stage.bak"
malformed "$f" '{\n    "features": {\n        "cdi": false\n    }\n}\n' '"cdi" is false (not changed; --force' runtime configure --docker --cdi --config "$f"
"$G" runtime configure --docker --cdi --config "$f" --undo | grep -q 'nothing to do' || fail "--cdi --undo removed an explicit false"
"$G" runtime configure --docker --cdi --force --config "$f" >/dev/null && jq -e '.features.cdi == true' "$f" >/dev/null ||
	fail "--cdi --force over false: $(cat "$f")"
rm -f "$f.gpu-stage.bak"
malformed "$f" '{\n    "features": ["cdi"]\n}\n' '"features" is not an object' runtime configure --docker --cdi --config "$f"
malformed "$f" '{\n    "features": {"cdi": "yes"}\n}\n' '"cdi" is not true or false' runtime configure --docker --cdi --config "$f" --undo
for extra in "--name nvidia" --set-default --gpus-flag; do
	rc=0
	# shellcheck disable=SC2086
	"$G" runtime configure --docker --cdi $extra --config "$f" >"$work/out" 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || fail "--cdi $extra: exit $rc, expected 2: $(cat "$work/out")"
done
rc=0
"$G" runtime configure --podman --cdi --config "$work" >"$work/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q -- '--cdi is for --docker only' "$work/out" || fail "--podman --cdi: exit $rc: $(cat "$work/out")"
ok "docker --cdi: features.cdi only (bytes kept, backup, dry-run diff = real change), idempotent, undone apart from the runtime; an explicit false kept (--force), malformed features refused; with --name/--set-default/--gpus-flag or another engine: usage error"

# ---- containerd -------------------------------------------------------------
c=$work/containerd
mkdir -p "$c"
m=$c/config.toml
drop=$c/conf.d/gpu-stage.toml
cat >"$m" <<'EOF'
version = 2
root = "/var/lib/containerd-test" # a comment with "quotes" and [brackets]
imports = ["/etc/containerd/other.toml"] # theirs

[plugins."io.containerd.internal.v1.opt"]
  path = "/opt/containerd"
EOF
cp "$m" "$work/orig.toml"
dry_run_check "$m" "$G" runtime configure --containerd --config "$m"
"$G" runtime configure --containerd --config "$m" >"$work/out" || fail "containerd configure failed: $(cat "$work/out")"
cmp -s "$m" "$work/expected" || fail "containerd: the dry run's diff is not what was written: $(diff "$work/expected" "$m")"
[ "$(sed -n 3p "$m")" = "imports = [\"/etc/containerd/other.toml\", \"$drop\"] # theirs" ] || fail "imports line: $(sed -n 3p "$m")"
[ "$(diff "$work/orig.toml" "$m" | grep -c '^[<>]')" -eq 2 ] || fail "more than the imports line changed: $(diff "$work/orig.toml" "$m")"
grep -qF "BinaryName = \"$bin/gpu-runtime\"" "$drop" || fail "drop-in: $(cat "$drop")"
cmp -s "$m.gpu-stage.bak" "$work/orig.toml" || fail "containerd: no backup"
s1=$(sum "$m" "$drop")
"$G" runtime configure --containerd --config "$m" | grep -q 'nothing to do' || fail "containerd: second run"
[ "$(sum "$m" "$drop")" = "$s1" ] || fail "containerd: second run changed something"
if command -v containerd >/dev/null; then
	sed -i 's|"/etc/containerd/other.toml", ||' "$m" # (containerd refuses a missing import)
	containerd -c "$m" config dump >"$work/dump" 2>&1 || fail "containerd config dump: $(tail -3 "$work/dump")"
	grep -qF "BinaryName = \"$bin/gpu-runtime\"" "$work/dump" &&
		grep -qF '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]' "$work/dump" &&
		grep -qF '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.gpu-stage]' "$work/dump" &&
		grep -qF 'path = "/opt/containerd"' "$work/dump" ||
		fail "containerd's own reading lacks our handler, runc's or the file's settings: $(grep -n 'runtimes\|BinaryName\|opt' "$work/dump")"
	ok "containerd config dump: handlers gpu-stage (BinaryName gpu-runtime) and runc, the main file's settings kept"
	cp "$work/orig.toml" "$m"
	"$G" runtime configure --containerd --config "$m" >/dev/null
fi
"$G" runtime configure --containerd --config "$m" --undo >/dev/null || fail "containerd undo failed"
cmp -s "$m" "$work/orig.toml" || fail "containerd undo: $(diff "$work/orig.toml" "$m")"
[ ! -e "$drop" ] || fail "containerd undo left the drop-in"
ok "containerd: imports line extended (nothing else), drop-in, backup, idempotent, undo gives back the original"

# no main config: created, and removed again by undo; --set-default
rm -f "$m" "$m.gpu-stage.bak"
"$G" runtime configure --containerd --config "$m" --set-default >/dev/null || fail "containerd without a config"
grep -qx 'version = 2' "$m" && grep -qF "imports = [\"$drop\"]" "$m" && grep -qF 'default_runtime_name = "gpu-stage"' "$drop" ||
	fail "containerd without a config: $(cat "$m" "$drop")"
"$G" runtime configure --containerd --config "$m" --undo >/dev/null && [ ! -e "$m" ] && [ ! -e "$drop" ] ||
	fail "containerd undo of a created config left files"
ok "containerd: a missing config.toml created (version 2 + imports), removed by undo; --set-default in the drop-in"

# two names: one drop-in holds both (containerd 1.6 lets one imported CRI
# section replace another's whole); a re-run without --set-default keeps
# the default; undo of one name keeps the other and the import
cp "$work/orig.toml" "$m"
"$G" runtime configure --containerd --config "$m" --set-default >/dev/null || fail "containerd --set-default (two names)"
"$G" runtime configure --containerd --config "$m" --name nvidia >"$work/out" || fail "containerd --name nvidia: $(cat "$work/out")"
for h in gpu-stage nvidia; do
	grep -qF "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$h.options]" "$drop" ||
		fail "two names: handler $h missing from the drop-in: $(cat "$drop")"
done
grep -qF 'default_runtime_name = "gpu-stage"' "$drop" || fail "--name nvidia dropped the default: $(cat "$drop")"
s1=$(sum "$m" "$drop")
for args in "" "--name nvidia"; do
	# shellcheck disable=SC2086
	"$G" runtime configure --containerd --config "$m" $args | grep -q 'nothing to do' && [ "$(sum "$m" "$drop")" = "$s1" ] ||
		fail "containerd re-run '$args' without --set-default changed something: $(cat "$drop")"
done
if command -v containerd >/dev/null; then
	sed 's|"/etc/containerd/other.toml", ||' "$m" >"$c/dump.toml"
	containerd -c "$c/dump.toml" config dump >"$work/dump" 2>&1 || fail "containerd config dump (two names): $(tail -3 "$work/dump")"
	grep -qF '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]' "$work/dump" &&
		grep -qF '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.gpu-stage]' "$work/dump" &&
		grep -qF 'default_runtime_name = "gpu-stage"' "$work/dump" || fail "containerd's reading of two names: $(grep -n 'runtimes\|default_runtime' "$work/dump")"
	rm -f "$c/dump.toml"
fi
"$G" runtime configure --containerd --config "$m" --undo >"$work/out" || fail "undo gpu-stage (two names)"
grep -q "keeps 1 other handler" "$work/out" && grep -qF "$drop" "$m" || fail "undo of one name dropped the import: $(cat "$work/out" "$m")"
grep -qF 'runtimes.nvidia.options]' "$drop" && ! grep -qF 'runtimes.gpu-stage' "$drop" && ! grep -q default_runtime_name "$drop" ||
	fail "undo gpu-stage: the drop-in: $(cat "$drop")"
"$G" runtime configure --containerd --config "$m" --name nvidia --undo >/dev/null || fail "undo nvidia"
cmp -s "$m" "$work/orig.toml" && [ ! -e "$drop" ] || fail "containerd undo of both names: $(diff "$work/orig.toml" "$m")"
# a drop-in of gpu-stage's edited by hand: refused, --force replaces it
"$G" runtime configure --containerd --config "$m" >/dev/null
echo '  SystemdCgroup = true' >>"$drop"
refused 'edited since' "$drop" "$G" runtime configure --containerd --config "$m" --name nvidia
"$G" runtime configure --containerd --config "$m" --force >/dev/null && grep -qF "BinaryName = \"$bin/gpu-runtime\"" "$drop" ||
	fail "--force over an edited drop-in: $(cat "$drop")"
"$G" runtime configure --containerd --config "$m" --undo >/dev/null && cmp -s "$m" "$work/orig.toml" && [ ! -e "$drop" ] ||
	fail "undo after --force"
rm -f "$m.gpu-stage.bak" "$drop.gpu-stage.bak"
ok "containerd: two --names in one drop-in, the default kept by a re-run, undo of one keeps the other and the import; an edited drop-in refused, --force replaces it"

# a file that ends in its version line, with no newline: undo takes the
# imports line and the newline put before it (tests/fuzz/runtime/regress-undo-unterminated-version)
printf 'version = 2' >"$m"
"$G" runtime configure --containerd --config "$m" >/dev/null || fail "containerd, unterminated version line"
"$G" runtime configure --containerd --config "$m" --undo >/dev/null || fail "undo, unterminated version line"
[ "$(cat "$m")" = "version = 2" ] && [ "$(tail -c 1 "$m" | od -An -c | tr -d ' ')" = 2 ] ||
	fail "undo after an unterminated version line: $(od -c "$m")"
rm -f "$m" "$m.gpu-stage.bak" "$drop" "$drop.gpu-stage.bak"
ok "containerd: a file ending in its version line, no newline: undone byte for byte"

# imports that already name the drop-in in another spelling (a glob, a
# double slash): the drop-in is ours, not an imported CRI section, so a
# second configure has nothing to do and undo gives the file back
# (tests/fuzz/runtime/containerd-dropin-other-spelling)
for spelling in 'conf.d/*.toml' 'conf.d//gpu-stage.toml' "$c/conf.d/../conf.d/gpu-stage.toml"; do
	printf 'version = 2\nimports = ["%s"]\n' "$spelling" >"$m"
	cp "$m" "$work/orig.toml"
	"$G" runtime configure --containerd --config "$m" >"$work/out" 2>&1 || fail "containerd, imports $spelling: $(cat "$work/out")"
	"$G" runtime configure --containerd --config "$m" >"$work/out" 2>&1 && grep -q 'nothing to do' "$work/out" ||
		fail "containerd, imports $spelling: the second configure: $(cat "$work/out")"
	"$G" runtime configure --containerd --config "$m" --undo >/dev/null || fail "containerd undo, imports $spelling"
	cmp -s "$m" "$work/orig.toml" && [ ! -e "$drop" ] || fail "containerd undo, imports $spelling: $(diff "$work/orig.toml" "$m")"
	rm -f "$m" "$m.gpu-stage.bak"
done
ok "containerd: imports naming the drop-in as a glob, with a double slash or via ..: configure twice = once, undo byte for byte"

# refused: what cannot be read with certainty, and a CRI section
malformed "$m" 'root = "/x"\n' 'no `version = 2`' runtime configure --containerd --config "$m"
malformed "$m" 'version = 2\nimports = [\n  "/a.toml",\n]\n' 'line 2' runtime configure --containerd --config "$m"
malformed "$m" 'version = 2\nroot = """\nx"""\n' 'line 2' runtime configure --containerd --config "$m"
malformed "$m" 'version = 2\nimports = ["/a\\"b.toml"]\n' 'line 2' runtime configure --containerd --config "$m"
printf 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".cni]\n bin_dir = "/x"\n' >"$c/theirs.toml"
malformed "$m" 'version = 2\nimports = ["theirs.toml"]\n' "$c/theirs.toml (imported by $m): line 3 configures the CRI plugin" runtime configure --containerd --config "$m"
# control characters TOML does not allow (a NUL once cut the line kept for --undo short)
malformed "$m" 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  default_runtime_name = "a\0b"\n' 'line 3: a control character (0x00)' runtime configure --containerd --config "$m" --set-default
malformed "$m" 'version = 2\n\f\nroot = "/x"\n' 'line 2: a control character (0x0c)' runtime configure --containerd --config "$m"
malformed "$m" 'version = 2\nroot = "/x"\r \n' 'line 2: a control character (0x0d)' runtime configure --containerd --config "$m"
ok "containerd: no version 2, a multi-line imports, a multi-line string, an escape, an imported CRI section, control characters refused, untouched"

# ---- containerd: a main file that configures the CRI plugin (Debian 12's) ----
# The handler goes into the main file as gpu-stage's marked block (a drop-in
# would replace the CRI section); containerd's own reading must keep the
# file's settings (Debian's cni dirs) and show the handler.
CRIT='plugins."io.containerd.grpc.v1.cri"'
# dump_table DUMP TABLE: TABLE's lines and its sub-tables' in a config dump
dump_table() {
	awk -v t="$2" '{ l = $0; sub(/^[ \t]+/, "", l) }
		l ~ /^\[/ { on = (l == "[" t "]" || index(l, "[" t ".") == 1) } on { print l }' "$1"
}
# handlers DUMP: the CRI runtime handlers containerd sees, sorted
handlers() {
	sed -n 's/^ *\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.\([A-Za-z0-9_-]*\)\]$/\1/p' "$1" | sort | tr '\n' ' '
}
dump() { containerd -c "$1" config dump >"$2" 2>&1 || fail "containerd config dump $1: $(tail -3 "$2")"; }
default_of() { sed -n 's/^ *default_runtime_name = "\(.*\)"$/\1/p' "$1"; }
# block_cycle FILE ARGS...: configure (dry-run diff = the change; the
# original's lines all kept, in order; a backup; no drop-in; idempotent),
# then --undo (its dry-run diff too) gives back the original byte for byte
block_cycle() {
	local f=$1 base name=gpu-stage a prev=
	shift
	for a; do
		[ "$prev" = --name ] && name=$a
		prev=$a
	done
	base=$(basename "$f")
	cp "$f" "$work/$base.orig"
	rm -f "$f.gpu-stage.bak"
	dry_run_check "$f" "$G" runtime configure --containerd --config "$f" "$@"
	"$G" runtime configure --containerd --config "$f" "$@" >"$work/out" || fail "$base $*: configure failed: $(cat "$work/out")"
	grep -q "as gpu-stage's marked block" "$work/out" || fail "$base $*: not the block: $(cat "$work/out")"
	cmp -s "$f" "$work/expected" || fail "$base $*: the dry run's diff is not what was written: $(diff "$work/expected" "$f")"
	cmp -s "$f.gpu-stage.bak" "$work/$base.orig" || fail "$base $*: no backup of the original"
	[ ! -e "$(dirname "$f")/conf.d/gpu-stage.toml" ] || fail "$base $*: a drop-in was written"
	grep -q "^# BEGIN gpu-stage runtime $name (gpu-stage runtime configure --undo removes it" "$f" &&
		[ "$(tail -n 1 "$f")" = "# END gpu-stage runtime $name" ] || fail "$base $*: no marked block at the end: $(cat "$f")"
	s1=$(sum "$f")
	"$G" runtime configure --containerd --config "$f" "$@" >"$work/out2" || fail "$base $*: second run failed"
	grep -q 'nothing to do' "$work/out2" && [ "$(sum "$f")" = "$s1" ] || fail "$base $*: second run changed something: $(cat "$work/out2")"
	cp "$f" "$work/$base.configured"
	dry_run_check "$f" "$G" runtime configure --containerd --config "$f" --undo --name "$name"
	cmp -s "$work/expected" "$work/$base.orig" || fail "$base $*: the --undo dry run's diff does not give back the original"
	"$G" runtime configure --containerd --config "$f" --undo --name "$name" >"$work/out2" || fail "$base $*: undo failed: $(cat "$work/out2")"
	cmp -s "$f" "$work/$base.orig" || fail "$base $*: undo did not give back the original: $(diff "$work/$base.orig" "$f")"
	cp "$work/$base.configured" "$f" # for the caller's checks
}
cd2=$work/cri
mkdir -p "$cd2"
dm=$cd2/config.toml
# Debian 12's /etc/containerd/config.toml (containerd 1.6.20~ds1-1+deb12u3), as shipped
cat >"$dm" <<'EOF'
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
EOF
block_cycle "$dm"
{ diff "$work/config.toml.orig" "$dm" || true; } | grep '^<' && fail "Debian's file: lines of the original changed or went"
grep -qxF "[$CRIT.containerd.runtimes.gpu-stage.options]" "$dm" && grep -qxF "  BinaryName = \"$bin/gpu-runtime\"" "$dm" ||
	fail "Debian's file: no handler in the block: $(cat "$dm")"
if command -v containerd >/dev/null; then
	dump "$work/config.toml.orig" "$work/dump0"
	dump "$dm" "$work/dump1"
	[ "$(dump_table "$work/dump1" "$CRIT.cni")" = "$(dump_table "$work/dump0" "$CRIT.cni")" ] &&
		grep -qx '      bin_dir = "/usr/lib/cni"' "$work/dump1" && grep -qx '      conf_dir = "/etc/cni/net.d"' "$work/dump1" ||
		fail "containerd's reading lost Debian's cni settings: $(dump_table "$work/dump1" "$CRIT.cni")"
	[ "$(handlers "$work/dump0")" = "runc " ] && [ "$(handlers "$work/dump1")" = "gpu-stage runc " ] ||
		fail "handlers before/after: '$(handlers "$work/dump0")' / '$(handlers "$work/dump1")'"
	dump_table "$work/dump1" "$CRIT.containerd.runtimes.gpu-stage" | grep -qx "runtime_type = \"io.containerd.runc.v2\"" &&
		dump_table "$work/dump1" "$CRIT.containerd.runtimes.gpu-stage.options" | grep -qx "BinaryName = \"$bin/gpu-runtime\"" ||
		fail "containerd's reading of the handler: $(dump_table "$work/dump1" "$CRIT.containerd.runtimes.gpu-stage")"
	# runc declared again: the same handler (containerd's default one has an
	# options table of zero values, which is what no options table means)
	runc_of() { dump_table "$1" "$CRIT.containerd.runtimes.runc" | sed '/\.options\]$/,$d'; }
	[ "$(runc_of "$work/dump1")" = "$(runc_of "$work/dump0")" ] ||
		fail "containerd's runc handler changed: $(diff <(runc_of "$work/dump0") <(runc_of "$work/dump1"))"
	dump_table "$work/dump0" "$CRIT.containerd.runtimes.runc.options" | grep -vE '^(\[.*\]|[A-Za-z]+ = (""|0|false)|)$' &&
		fail "containerd's default runc options are not all zero values"
	[ "$(default_of "$work/dump1")" = runc ] || fail "the default changed without --set-default"
	ok "containerd config dump of Debian's file + the block: its cni bin_dir/conf_dir kept, handlers runc (as before) and gpu-stage (BinaryName gpu-runtime)"
fi
ok "containerd: Debian 12's default config.toml: a marked block appended (nothing else changed), backup, no drop-in, idempotent, dry-run diffs, undo byte for byte"

cp "$work/config.toml.orig" "$dm"
block_cycle "$dm" --set-default
grep -qxF '  default_runtime_name = "gpu-stage"' "$dm" || fail "--set-default: no default in the block: $(cat "$dm")"
"$G" runtime configure --containerd --config "$dm" | grep -q 'nothing to do' || fail "--set-default, then a run without it: not unchanged"
if command -v containerd >/dev/null; then
	dump "$dm" "$work/dump2"
	[ "$(default_of "$work/dump2")" = gpu-stage ] || fail "--set-default: containerd's default is '$(default_of "$work/dump2")'"
fi
"$G" runtime configure --containerd --config "$dm" --undo >/dev/null && cmp -s "$dm" "$work/config.toml.orig" || fail "undo after --set-default"
ok "containerd: Debian's file --set-default: default_runtime_name in the block (containerd reads it), undone"

# `containerd config default` (every table written out, default_runtime_name
# "runc", a runc handler of its own): runc's default line is kept as a comment
if command -v containerd >/dev/null; then
	containerd config default >"$cd2/full.toml" || fail "containerd config default failed"
	block_cycle "$cd2/full.toml" --set-default
	grep -qxF "#gpu-stage runtime gpu-stage replaced:       default_runtime_name = \"runc\"" "$cd2/full.toml" ||
		fail "config default --set-default: the old default line is not kept: $(grep -n default_runtime_name "$cd2/full.toml")"
	grep -qF "# containerd's own runc again" "$cd2/full.toml" && fail "config default: runc declared twice"
	dump "$work/full.toml.orig" "$work/dump3"
	dump "$cd2/full.toml" "$work/dump4"
	[ "$(handlers "$work/dump4")" = "gpu-stage runc " ] && [ "$(default_of "$work/dump4")" = gpu-stage ] ||
		fail "config default --set-default: handlers '$(handlers "$work/dump4")', default '$(default_of "$work/dump4")'"
	{ diff <(grep -v -e default_runtime_name -e '^imports = ' "$work/dump3") \
		<(grep -v -e default_runtime_name -e '^imports = ' "$work/dump4") || true; } | grep '^<' &&
		fail "config default: containerd's reading lost settings"
	ok "containerd: \`containerd config default\` --set-default: runc's default replaced (the line kept as a comment), handler added, nothing lost, undone"
fi

# another default: refused, then --force (undo puts it back); a
# [..."cri".containerd] table of the file's own gets a marked line under it;
# a file without a final newline
printf 'version = 2\n[%s]\n  sandbox_image = "pause"\n[%s.containerd]\n  default_runtime_name = "crun" # ours\n  snapshotter = "native"\n[%s.containerd.runtimes.crun]\n  runtime_type = "io.containerd.runc.v2"\n' \
	"$CRIT" "$CRIT" "$CRIT" >"$cd2/other.toml"
refused 'line 5: default_runtime_name is "crun" (not changed; --force replaces it' "$cd2/other.toml" \
	"$G" runtime configure --containerd --config "$cd2/other.toml" --set-default
block_cycle "$cd2/other.toml" --set-default --force
grep -qxF '  default_runtime_name = "gpu-stage" # gpu-stage runtime gpu-stage: --undo puts back the line above' "$cd2/other.toml" ||
	fail "--force: $(cat "$cd2/other.toml")"
grep -qF "# containerd's own runc again" "$cd2/other.toml" && fail "the file names a handler (crun): runc must not be declared again"
printf 'version = 2\n[%s.containerd]\n  snapshotter = "native"\n' "$CRIT" >"$cd2/hdr.toml"
block_cycle "$cd2/hdr.toml" --set-default
[ "$(sed -n 3p "$cd2/hdr.toml")" = '  default_runtime_name = "gpu-stage" # gpu-stage runtime gpu-stage: --undo removes this line' ] ||
	fail "a marked line under the file's own containerd table: $(cat "$cd2/hdr.toml")"
long=$(printf 'n%.0s' $(seq 1 64)) # --name at its longest: every marker whole
printf 'version = 2\n[%s.containerd]\n  snapshotter = "native"\n' "$CRIT" >"$cd2/long.toml"
block_cycle "$cd2/long.toml" --set-default --name "$long"
printf 'version = 2\n[%s.containerd]\n  default_runtime_name = "crun"\n' "$CRIT" >"$cd2/long.toml"
block_cycle "$cd2/long.toml" --set-default --force --name "$long"
printf 'version = 2\n[%s.containerd]\n  default_runtime_name = "runc"' "$CRIT" >"$cd2/nonl.toml"
block_cycle "$cd2/nonl.toml" --set-default
grep -qxF '# BEGIN gpu-stage runtime gpu-stage (gpu-stage runtime configure --undo removes it, and the newline before it)' "$cd2/nonl.toml" ||
	fail "no final newline: the BEGIN line does not say that one was added: $(cat "$cd2/nonl.toml")"
if command -v containerd >/dev/null; then
	for f in other hdr nonl; do
		dump "$cd2/$f.toml" "$work/dump-$f"
		[ "$(default_of "$work/dump-$f")" = gpu-stage ] && handlers "$work/dump-$f" | grep -q 'gpu-stage' ||
			fail "$f.toml: containerd reads default '$(default_of "$work/dump-$f")', handlers '$(handlers "$work/dump-$f")'"
	done
	grep -qx '      snapshotter = "native"' "$work/dump-hdr" || fail "hdr.toml: the table's own key lost"
	[ "$(handlers "$work/dump-other")" = "crun gpu-stage " ] || fail "other.toml: handlers '$(handlers "$work/dump-other")'"
fi
ok "containerd: another default refused, --force replaces it (undo puts it back); a marked line under the file's own containerd table; a 64-byte --name; no final newline; all undone byte for byte"

# refused in the CRI case, the file untouched: the handler defined already
# (its table or a sub-table, a key of an inline table), a table the block
# extends held as a value or through a dotted key, an array of tables there,
# gpu-stage's drop-in imported (an earlier configure), an imported CRI
# section, a broken block
bad() { malformed "$cd2/bad.toml" "$1" "$2" runtime configure --containerd --config "$cd2/bad.toml"; }
bad 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.gpu-stage]\n  runtime_type = "x"\n' 'line 2 defines the runtime handler gpu-stage already'
bad "version = 2\n[plugins.'io.containerd.grpc.v1.cri' . containerd.runtimes.gpu-stage.options]\n  BinaryName = \"x\"\n" 'line 2 defines the runtime handler gpu-stage already'
bad 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes]\n  gpu-stage = { runtime_type = "x" }\n' 'line 3 defines the runtime handler gpu-stage already'
bad 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  runtimes = { runc = { runtime_type = "x" } }\n' 'line 3: a value (an inline table?) holding the tables'
bad 'version = 2\n[plugins]\n  "io.containerd.grpc.v1.cri" = { sandbox_image = "x" }\n' 'line 3: a value (an inline table?) holding the tables'
bad 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  containerd.snapshotter = "x"\n' 'line 3: a dotted key through the tables'
bad 'version = 2\n[[plugins."io.containerd.grpc.v1.cri".containerd]]\n  x = 1\n' 'line 2: an array of tables'
bad 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  x = { a = [\n 1 ] }\n' 'line 3: an inline table over more than one line'
bad 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "x"\n# BEGIN gpu-stage runtime gpu-stage (gpu-stage runtime configure --undo removes it)\n[x]\n' 'line 4: gpu-stage'"'"'s block for gpu-stage has no line'
bad "version = 2\nimports = [\"$cd2/conf.d/gpu-stage.toml\"] # gpu-stage\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/x\"\n" 'line 2 imports gpu-stage'"'"'s drop-in, and line 3 configures the CRI plugin'
printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  conf_dir = "/y"\n' >"$cd2/theirs.toml"
bad 'version = 2\nimports = ["theirs.toml"]\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/x"\n' "$cd2/theirs.toml (imported by $cd2/bad.toml): line 2 configures the CRI plugin"
# a file converted to CRLF after configure (an editor on another system):
# undo still finds the block's lines and gives back the CRLF original
cp "$work/config.toml.orig" "$dm"
"$G" runtime configure --containerd --config "$dm" --set-default >/dev/null || fail "configure before CRLF"
sed -i 's/$/\r/' "$dm"
sed 's/$/\r/' "$work/config.toml.orig" >"$work/crlf.orig"
"$G" runtime configure --containerd --config "$dm" --undo >"$work/out" 2>&1 || fail "undo of a CRLF file: $(cat "$work/out")"
cmp -s "$dm" "$work/crlf.orig" || fail "undo of a CRLF file: $(diff "$work/crlf.orig" "$dm" | cat -A | head)"
rm -f "$dm.gpu-stage.bak"
ok "containerd, CRI case: a file turned CRLF after configure is undone byte for byte"

ok "containerd, CRI case: the handler defined already, an inline table or dotted key holding its tables, an array of tables, a multi-line inline table, a broken block, gpu-stage's drop-in or another CRI section imported: refused, untouched"

# ---- Podman / CRI-O: hooks.d --------------------------------------------------
h=$work/hooks.d
hf=$h/gpu-stage.json
dry_run_check "$hf" "$G" runtime configure --podman --config "$h"
[ ! -e "$h" ] || fail "podman --dry-run made the directory"
"$G" runtime configure --podman --config "$h" >/dev/null || fail "podman configure failed"
cmp -s "$hf" "$work/expected" || fail "podman: the dry run's diff is not what was written"
jq -e --arg p "$bin/gpu-stage-hook" '.version == "1.0.0" and .hook.path == $p and .hook.args == ["gpu-stage-hook", "createRuntime"]
	and .hook.env == ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] and .when == {always: true} and .stages == ["createRuntime"]' "$hf" >/dev/null ||
	fail "hooks.d file (with an explicit env): $(cat "$hf")"
s1=$(sum "$hf")
"$G" runtime configure --podman --config "$h" | grep -q 'nothing to do' && [ "$(sum "$hf")" = "$s1" ] || fail "podman: second run"
GPU_STAGE_CONFIG=/etc/gpu-stage/test.json "$G" runtime configure --crio --config "$h" >/dev/null || fail "crio with GPU_STAGE_CONFIG"
jq -e '.hook.args == ["gpu-stage-hook", "--config", "/etc/gpu-stage/test.json", "createRuntime"]' "$hf" >/dev/null ||
	fail "GPU_STAGE_CONFIG not handed to the hook: $(cat "$hf")"
cmp -s "$hf.gpu-stage.bak" "$work/expected" || fail "podman: no backup"
"$G" runtime configure --podman --config "$h" --undo >/dev/null && [ ! -e "$hf" ] || fail "podman undo"
printf '{"version": "1.0.0", "hook": {"path": "/usr/bin/other-hook"}, "when": {"always": true}, "stages": ["prestart"]}\n' >"$hf"
refused 'does not run gpu-stage-hook' "$hf" "$G" runtime configure --podman --config "$h"
refused 'does not run gpu-stage-hook' "$hf" "$G" runtime configure --podman --config "$h" --undo
printf '{"version": "1.0.0",\n "hook": {"path": "/x"\n' >"$hf"
refused 'line 3' "$hf" "$G" runtime configure --podman --config "$h"
ok "podman/crio: hooks.d file (1.0.0, createRuntime, always), idempotent, GPU_STAGE_CONFIG as --config, backup, undo; foreign or malformed file refused"

# usage errors are exit 2
for args in "" "--docker --podman" "--podman --set-default" "--containerd --gpus-flag" "--docker --name a/b" "--docker extra"; do
	rc=0
	# shellcheck disable=SC2086
	"$G" runtime configure $args >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || fail "runtime configure $args: exit $rc, expected 2"
done
ok "usage errors: exit 2"
