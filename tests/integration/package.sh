#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Debian package, as a user gets it.  `make deb` builds it from the tree
# (dpkg-buildpackage -b -us -uc in a copy); lintian reports no error (the
# overrides say why); its files, conffiles, trigger interests and unit are
# checked, and every binary in it is static.  Then, in a clean Debian 12
# chroot (fixtures/rootfs.sh's cached minbase tree as the lower layer of an
# overlay, never changed) and without a network (unshare -n):
# `apt-get install ./gpu-stage_*.deb` works, gpu-stage --help, gpu-stage
# info (no driver there: says so, exit 1), the shipped configuration is
# accepted by the CLI and the hook, the unit is enabled; `apt-get purge`
# leaves nothing behind (the file listing equals the one before the install,
# outside apt's and dpkg's own bookkeeping).  Then the trigger: a fake
# driver package built with dpkg-deb from fixtures/mkdriver.sh's tree
# (Debian's layout: /usr/lib/x86_64-linux-gnu/nvidia/current/...), version
# VER1, then VER2 as an upgrade: the trigger staged each (gpu-stage list,
# verify), apt succeeded and printed what was staged; a trigger whose
# staging fails (the store path is a file) still lets apt succeed and
# prints the error; removing the driver stages nothing and keeps the store.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
need_root "chroot, overlay mount"
need_tools dpkg-buildpackage dh dpkg-deb lintian unshare chroot debootstrap file
VER1=535.261.03
VER2=535.274.02
work=$(mktemp -d "/tmp/gs-package-XXXXXX")
R=$work/root
cleanup() {
	mountpoint -q "$R" 2>/dev/null && umount "$R"
	chmod -R u+w "$work" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
ok() { echo "$T: ok: $*"; }

# ---- the package ----
make -s BUILD="$work/build" deb >"$work/deb.log" 2>&1 || fail "make deb: $(tail -20 "$work/deb.log")"
DEB=$(tail -n 1 "$work/deb.log")
[ -f "$DEB" ] || fail "make deb printed '$DEB', not a file: $(cat "$work/deb.log")"
VERSION=$(sed -n 's/^VERSION := //p' Makefile)
[ "$(dpkg-deb -f "$DEB" Version)" = "$VERSION" ] || fail "package version $(dpkg-deb -f "$DEB" Version), Makefile $VERSION"
[ "$(dpkg-deb -f "$DEB" Package)" = gpu-stage ] || fail "package name"
# libc6 alone: gpu-stage-nvml is dynamic (it dlopens the staged NVML)
dpkg-deb -f "$DEB" Depends Pre-Depends Recommends | grep -qxE 'Depends: libc6 \(>= 2\.[0-9]+\)' ||
	fail "dependencies: $(dpkg-deb -f "$DEB" Depends Pre-Depends Recommends)"
lintian "$DEB" >"$work/lintian.log" 2>&1 || true
if grep -q '^E: ' "$work/lintian.log"; then fail "lintian errors: $(grep '^E: ' "$work/lintian.log")"; fi
grep '^[WI]: ' "$work/lintian.log" | sed "s/^/$T: lintian: /" || true
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' >"$work/files"
for f in /usr/bin/gpu-stage /usr/bin/gpu-stage-hook /usr/bin/gpu-runtime /usr/share/man/man1/gpu-stage.1.gz \
	/usr/share/man/man8/gpu-stage-hook.8.gz /usr/share/man/man8/gpu-runtime.8.gz /etc/gpu-stage/config.json \
	/usr/share/gpu-stage/nvidia-docker /lib/systemd/system/gpu-stage.service /etc/logrotate.d/gpu-stage \
	/usr/share/doc/gpu-stage/copyright /usr/libexec/gpu-stage/gpu-stage-nvml; do
	grep -qx -- "$f" "$work/files" || fail "the package lacks $f"
done
dpkg-deb -e "$DEB" "$work/ctl"
dpkg-deb -x "$DEB" "$work/x"
[ "$(sort "$work/ctl/conffiles")" = "$(printf '/etc/gpu-stage/config.json\n/etc/logrotate.d/gpu-stage\n')" ] ||
	fail "conffiles: $(cat "$work/ctl/conffiles")"
grep -qx 'interest-noawait /usr/lib/x86_64-linux-gnu/nvidia' "$work/ctl/triggers" || fail "triggers: $(cat "$work/ctl/triggers")"
grep -qx 'ExecStart=/usr/bin/gpu-stage stage --if-loaded --quiet' "$work/x/lib/systemd/system/gpu-stage.service" ||
	fail "the unit's ExecStart: $(grep ExecStart "$work/x/lib/systemd/system/gpu-stage.service")"
for b in gpu-stage gpu-stage-hook gpu-runtime; do
	file "$work/x/usr/bin/$b" | grep -q 'statically linked' || fail "/usr/bin/$b is not static: $(file "$work/x/usr/bin/$b")"
done
grep -q 'create 0600 root root' "$work/x/etc/logrotate.d/gpu-stage" && ! grep -qE '^\s*copytruncate' "$work/x/etc/logrotate.d/gpu-stage" ||
	fail "logrotate: $(cat "$work/x/etc/logrotate.d/gpu-stage")"
ok "make deb: $(basename "$DEB"), lintian without errors, files, conffiles, trigger, unit, static binaries"

# ---- a clean chroot: the cached minbase tree under an overlay ----
rootfs=$(bash fixtures/rootfs.sh 2>"$work/rootfs.log") || fail "fixtures/rootfs.sh: $(tail -3 "$work/rootfs.log")"
mkdir -p "$R" "$work/upper" "$work/ovwork"
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$work/upper,workdir=$work/ovwork" "$R" ||
	fail "overlay mount over $rootfs"
# in the chroot with its own /proc (a private mount namespace: gone when the
# command ends) and without a network; stdout+stderr to $work/out, the exit
# status in $rc
inroot() {
	rc=0
	unshare -m -n --propagation private sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$R" \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@" \
		>"$work/out" 2>&1 || rc=$?
}
has() { grep -qF -- "$1" "$work/out" || fail "no '$1' in: $(cat "$work/out")"; }
# every path with type, mode, owner and link target, /etc's files with their digest; not
# apt's and dpkg's bookkeeping (status, caches, logs of their own), not /tmp
listing() {
	(cd "$R" && find . -xdev \( -path ./tmp -o -path ./var/cache/apt -o -path ./var/cache/debconf \
		-o -path ./var/lib/apt -o -path ./var/log/apt -o -path ./var/lib/dpkg/triggers \
		-o -path './var/lib/dpkg/status*' -o -path './var/lib/dpkg/available*' -o -path ./var/lib/dpkg/lock \
		-o -path ./var/lib/dpkg/lock-frontend -o -path ./var/log/dpkg.log \
		-o -path ./var/log/alternatives.log \) -prune -o -printf '%p %y %m %u:%g %l\n' | sort
	 find etc -xdev -type f -exec sha256sum {} + | sort)
}
listing >"$work/before"
cp "$DEB" "$R/tmp/gpu-stage.deb"
inroot apt-get install -y /tmp/gpu-stage.deb
[ $rc = 0 ] || fail "apt-get install ./gpu-stage.deb (offline): exit $rc: $(tail -20 "$work/out")"
inroot dpkg-query -W -f '${Status}' gpu-stage
[ "$(cat "$work/out")" = "install ok installed" ] || fail "dpkg-query: $(cat "$work/out")"
inroot gpu-stage --help
[ $rc = 0 ] || fail "gpu-stage --help: exit $rc"
has "  info [--json]"
inroot gpu-stage info
[ $rc = 1 ] || fail "gpu-stage info without a driver: exit $rc, not 1: $(cat "$work/out")"
if [ -e /proc/driver/nvidia/version ]; then # the chroot's /proc is the host's
	has "module      $(sed -n 's/.*Kernel Module *\([0-9.]*\).*/\1/p' /proc/driver/nvidia/version)"
else
	has "no NVIDIA kernel module loaded (/proc/driver/nvidia/version)"
fi
has "ready: no"
inroot gpu-stage list # reads /etc/gpu-stage/config.json strictly
[ $rc = 0 ] || fail "gpu-stage list with the shipped configuration: exit $rc: $(cat "$work/out")"
mkdir -p "$R/tmp/b"
echo '{"ociVersion": "1.0.2", "process": {"env": ["NVIDIA_VISIBLE_DEVICES=none"], "args": ["true"], "cwd": "/"}, "root": {"path": "rootfs"}}' \
	>"$R/tmp/b/config.json"
echo '{"ociVersion": "1.0.2", "id": "pkg", "status": "creating", "pid": 1, "bundle": "/tmp/b"}' >"$R/tmp/state.json"
inroot sh -c 'gpu-stage-hook --dry-run --driver 1.2.3 prestart </tmp/state.json'
[ $rc = 1 ] && grep -q 'driver 1.2.3 is not staged in /var/lib/gpu-stage' "$work/out" ||
	fail "the hook with the shipped configuration: exit $rc: $(cat "$work/out")"
[ "$(stat -c %a "$R/var/log/gpu-stage")" = 700 ] || fail "/var/log/gpu-stage: mode $(stat -c %a "$R/var/log/gpu-stage")"
[ -L "$R/etc/systemd/system/multi-user.target.wants/gpu-stage.service" ] || fail "the unit is not enabled"
ok "apt-get install offline in a clean chroot; --help, info (no driver: exit 1), the configuration accepted by CLI and hook, unit enabled"

inroot apt-get purge -y gpu-stage
[ $rc = 0 ] || fail "apt-get purge gpu-stage: exit $rc: $(tail -20 "$work/out")"
rm -rf "$R/tmp/gpu-stage.deb" "$R/tmp/b" "$R/tmp/state.json"
listing >"$work/after"
diff -u "$work/before" "$work/after" >"$work/left" || fail "purge left: $(cat "$work/left")"
ok "apt-get purge leaves nothing behind"

# ---- the trigger ----
# fake_driver VER: a .deb of mkdriver.sh's tree for VER (Debian's layout), as
# the real packages are: libraries under nvidia/current, an ldconfig trigger
fake_driver() {
	local v=$1 t=$work/drv-$1 p=$work/pkg-$1
	bash fixtures/mkdriver.sh "$t" --version "$v" --no-i386 >"$work/mk.log" 2>&1 || fail "mkdriver.sh $v: $(tail -3 "$work/mk.log")"
	mkdir -p "$p/DEBIAN"
	(cd "$t" && tar -cf - --exclude=./.gs-fixture.json --exclude=./bin --exclude=./lib --exclude=./lib64 \
		--exclude=./sbin --exclude=./proc --exclude=./sys --exclude=./etc/ld.so.cache --exclude=./etc/ld.so.conf \
		--exclude=./etc/ld.so.conf.d --exclude='./usr/lib/x86_64-linux-gnu/libOpenCL.so*' .) | tar -C "$p" -xf -
	printf 'Package: fake-nvidia-driver\nVersion: %s\nArchitecture: amd64\nMaintainer: gpu-stage tests <t@example.org>\nDescription: a synthetic NVIDIA driver %s\n' \
		"$v" "$v" >"$p/DEBIAN/control"
	echo 'activate-noawait ldconfig' >"$p/DEBIAN/triggers"
	dpkg-deb --root-owner-group -Zgzip --build "$p" "$R/tmp/fake-$v.deb" >/dev/null || fail "dpkg-deb --build $v"
	[ -n "$(find "$p/usr/lib/x86_64-linux-gnu/nvidia/current" -name "libcuda.so.$v")" ] || fail "no libcuda.so.$v in the fake package"
}
fake_driver "$VER1"
fake_driver "$VER2"
cp "$DEB" "$R/tmp/gpu-stage.deb"
inroot apt-get install -y /tmp/gpu-stage.deb
[ $rc = 0 ] || fail "reinstalling gpu-stage: $(tail -20 "$work/out")"

inroot apt-get install -y "/tmp/fake-$VER1.deb"
[ $rc = 0 ] || fail "installing the fake driver $VER1: exit $rc: $(tail -20 "$work/out")"
has "gpu-stage: staged: driver $VER1 in /var/lib/gpu-stage/$VER1"
cp "$work/out" "$work/apt-$VER1.log"
inroot gpu-stage list
[ "$(cat "$work/out")" = "$VER1" ] || fail "gpu-stage list after $VER1: $(cat "$work/out")"
inroot gpu-stage verify "$VER1"
[ $rc = 0 ] || fail "gpu-stage verify $VER1: $(cat "$work/out")"
ok "driver $VER1 installed: the trigger staged it ($(grep -F 'gpu-stage: staged' "$work/apt-$VER1.log"))"

inroot apt-get install -y "/tmp/fake-$VER2.deb"
[ $rc = 0 ] || fail "upgrading the fake driver to $VER2: exit $rc: $(tail -20 "$work/out")"
has "gpu-stage: staged: driver $VER2 in /var/lib/gpu-stage/$VER2"
inroot gpu-stage list
[ "$(sort "$work/out" | tr '\n' ' ')" = "$VER1 $VER2 " ] || fail "gpu-stage list after the upgrade: $(cat "$work/out")"
inroot gpu-stage verify "$VER2"
[ $rc = 0 ] || fail "gpu-stage verify $VER2: $(cat "$work/out")"
[ -z "$(find "$R/usr/lib/x86_64-linux-gnu/nvidia/current" -name "*.$VER1")" ] || fail "$VER1's files still installed"
ok "upgrade to $VER2: the trigger staged $VER2 (the files of the new package), $VER1 kept for the loaded module"

# a trigger whose staging fails: apt goes on, the error is printed
mv "$R/var/lib/gpu-stage" "$work/store-saved"
touch "$R/var/lib/gpu-stage"
mkdir -p "$work/pkg-extra/DEBIAN" "$work/pkg-extra/usr/lib/x86_64-linux-gnu/nvidia/extra"
echo extra >"$work/pkg-extra/usr/lib/x86_64-linux-gnu/nvidia/extra/README"
printf 'Package: fake-nvidia-extra\nVersion: 1\nArchitecture: all\nMaintainer: gpu-stage tests <t@example.org>\nDescription: a file under the watched path\n' \
	>"$work/pkg-extra/DEBIAN/control"
dpkg-deb --root-owner-group --build "$work/pkg-extra" "$R/tmp/extra.deb" >/dev/null
inroot apt-get install -y /tmp/extra.deb
[ $rc = 0 ] || fail "apt failed when the trigger's staging failed: exit $rc: $(tail -20 "$work/out")"
has "gpu-stage: staging the upgraded NVIDIA driver failed (apt goes on"
has "gpu-stage: store /var/lib/gpu-stage"
has "gpu-stage: once fixed, run: gpu-stage stage --installed"
inroot dpkg-query -W -f '${Status}' gpu-stage fake-nvidia-extra
[ "$(cat "$work/out")" = "install ok installedinstall ok installed" ] || fail "after the failed trigger: $(cat "$work/out")"
rm "$R/var/lib/gpu-stage"
mv "$work/store-saved" "$R/var/lib/gpu-stage"
ok "the trigger's staging failed: apt succeeded, the error printed with what to run"

# the driver removed: nothing to stage, the store kept
inroot apt-get purge -y fake-nvidia-driver fake-nvidia-extra
[ $rc = 0 ] || fail "removing the fake driver: exit $rc: $(tail -20 "$work/out")"
has "gpu-stage: no NVIDIA driver libraries installed"
inroot gpu-stage list
[ "$(sort "$work/out" | tr '\n' ' ')" = "$VER1 $VER2 " ] || fail "the store after removing the driver: $(cat "$work/out")"
inroot apt-get purge -y gpu-stage
[ $rc = 0 ] || fail "purging gpu-stage: $(tail -20 "$work/out")"
[ -d "$R/var/lib/gpu-stage/$VER2" ] && [ ! -e "$R/etc/gpu-stage" ] && [ ! -e "$R/var/log/gpu-stage" ] ||
	fail "after purge: store $(ls "$R/var/lib/gpu-stage" 2>&1), /etc/gpu-stage $(ls -d "$R/etc/gpu-stage" 2>&1)"
ok "driver removed: nothing staged, the store kept; purge keeps the store, removes the configuration and the log"
echo "$T: PASS"
