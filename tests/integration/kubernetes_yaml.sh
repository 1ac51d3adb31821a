#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# hook/kubernetes/gpu-stage-daemonset.yaml (no cluster here): it parses as
# YAML (python3-yaml, aliases resolved) into one apps/v1 DaemonSet whose
# every volumeMount names a volume; the node paths are exactly the ones the
# README names, written only where the store, /etc/cdi and the programs go;
# the containers are unprivileged but for CAP_SYS_PTRACE and the node's PID
# namespace (mount tables: a tree still mounted is never deleted), no
# escalation, read-only root; the commands name options gpu-stage has (stage --root --if-loaded
# --quiet, cdi) and run the programs from the path they are copied to on the
# node (the spec names the hook by that path).
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
need_built "$GS"
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
Y=hook/kubernetes/gpu-stage-daemonset.yaml
out=$(/usr/bin/python3 - "$Y" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
assert len(docs) == 1, "one document, not %d" % len(docs)
d = docs[0]
assert d["apiVersion"] == "apps/v1" and d["kind"] == "DaemonSet", (d["apiVersion"], d["kind"])
spec = d["spec"]["template"]["spec"]
assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items(), "selector"
assert spec.get("hostPID") is True, "hostPID: the store reads every process's mount table"
vols = {v["name"]: v["hostPath"] for v in spec["volumes"]}
want = {"/": True, "/proc/driver/nvidia": True, "/var/lib/gpu-stage": False, "/etc/cdi": False,
        "/dev": True, "/opt/gpu-stage/bin": False}  # path: mounted read-only
seen = {}
for c in spec["initContainers"] + spec["containers"]:
    sc = c["securityContext"]
    assert sc.get("privileged") is False and sc.get("allowPrivilegeEscalation") is False, c["name"]
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["SYS_PTRACE"]}, c["name"]
    assert sc.get("readOnlyRootFilesystem") is True, c["name"]
    for m in c["volumeMounts"]:
        assert m["name"] in vols, "%s: no volume %s" % (c["name"], m["name"])
        p = vols[m["name"]]["path"]
        seen[p] = m.get("readOnly", False)
        if p in ("/var/lib/gpu-stage", "/etc/cdi", "/dev", "/opt/gpu-stage/bin"):
            assert m["mountPath"] == p, "%s must be mounted where it is on the node, not %s" % (p, m["mountPath"])
    for line in " ".join(c["command"]).split("\n"):
        if "gpu-stage " in line:
            print(line.strip())
assert seen == want, "node paths %s, not %s" % (seen, want)
PY
) || fail "the DaemonSet: $out"
echo "$out" | grep -q '^/opt/gpu-stage/bin/gpu-stage stage --root /host --if-loaded --quiet' || fail "no stage command: $out"
echo "$out" | grep -qx '/opt/gpu-stage/bin/gpu-stage cdi' || fail "no cdi command: $out"
help=$("$GS" stage --help)
for o in --root --if-loaded --quiet; do
	grep -qE -- "^ +(-[a-z], )?$o( |$)" <<<"$help" || fail "gpu-stage stage has no $o"
done
echo "$T: PASS"
