#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/valgrind/build.sh: the valgrind the valgrind tier runs under, built
# once into the test cache and reused.
#
# Debian 12's valgrind 3.19 does not know openat2(2), pidfd_open(2),
# pidfd_send_signal(2) nor the new mount API (open_tree, move_mount, fsopen,
# fsconfig, fsmount, fspick, mount_setattr): it answers ENOSYS, and the
# project fails closed without openat2, so nothing useful runs under it.
# No newer valgrind is in bookworm or bookworm-backports; this builds
# Debian's own source package (valgrind 1:3.19.0-1, Debian's patches
# applied) with tests/valgrind/syscalls.patch, the PRE/POST wrappers of
# those calls (paths and structs read checked, returned fds recorded for
# --track-fds, valgrind's own fds refused), amd64 only, 64-bit only.
#
# Usage:
#   bash tests/valgrind/build.sh [--mirror URL]
#     -> prints the valgrind to run (one line on stdout):
#        CACHE/valgrind-3.19.0-gsN/bin/valgrind
#
#   --mirror   Debian mirror (default $GS_DEBIAN_MIRROR, else
#              http://deb.debian.org/debian)
#
# What it does (each step skipped when its result is in the cache):
#   1. the source package with apt-get source --download-only through a
#      private apt state (deb-src of bookworm main only; apt checks the
#      signed index and each file's SHA256), 3 tries;
#   2. dpkg-source -x, the patch applied, configure --enable-only64bit,
#      make, make install into a temporary folder of the cache; a marker
#      holding the patch's SHA256 is written last, then the tree is renamed
#      into place.  A tree whose marker does not match the patch is rebuilt.
#   Concurrent runs are serialised with flock.  About 10 CPU-minutes.
#
# Cache (outside the checkout; delete it to start from nothing):
#   ${GS_TEST_CACHE:-/var/cache/gpu-stage-tests}/valgrind-src/          the .dsc pieces, apt state
#   ${GS_TEST_CACHE:-/var/cache/gpu-stage-tests}/valgrind-3.19.0-gsN/   the installed tree
#
# Needs: apt-get, dpkg-source, patch, gcc, make, flock, sha256sum.
# Exit status: 0 ok, 1 failure, 2 usage error.
set -euo pipefail

PROG=build.sh
HERE=$(cd "$(dirname "$0")" && pwd)
PATCH=$HERE/syscalls.patch
# bump GS_N with every change of the patch (the marker catches a forgotten bump)
UPSTREAM=3.19.0 DEBVER=1:3.19.0-1 GS_N=1
MIRROR=${GS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${GS_TEST_CACHE:-/var/cache/gpu-stage-tests}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MARKER=.gs-valgrind-complete

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}
usage_error() {
	printf '%s: %s\nusage: %s [--mirror URL]\n' "$PROG" "$*" "$PROG" >&2
	exit 2
}

while (($#)); do
	case $1 in
	--mirror) (($# >= 2)) || usage_error "--mirror needs a value"; MIRROR=${2%/}; shift ;;
	-h | --help) sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
	shift
done

[[ $(uname -m) == x86_64 ]] || die "$(uname -m): the patch wires the wrappers for amd64 only"
for t in apt-get dpkg-source patch gcc make flock sha256sum; do
	command -v "$t" >/dev/null || die "$t: not found (bash tests/deps.sh)"
done
[[ -r $PATCH ]] || die "$PATCH: missing"
[[ -r $KEYRING ]] || die "$KEYRING: missing (install debian-archive-keyring): the index's signature cannot be checked"

SUM=$(sha256sum "$PATCH" | cut -d' ' -f1)
DEST=$CACHE/valgrind-$UPSTREAM-gs$GS_N
SRC=$CACHE/valgrind-src
mkdir -p "$SRC" || die "$CACHE: cannot create $SRC"

exec 9>"$SRC/.lock"
flock 9

if [[ -x $DEST/bin/valgrind && $(cat "$DEST/$MARKER" 2>/dev/null) == "$SUM" ]]; then
	printf '%s\n' "$DEST/bin/valgrind"
	exit 0
fi
[[ ! -e $DEST/$MARKER ]] || die "$DEST: built from another patch (bump GS_N in $0)"

# ---- 1. the source package ----------------------------------------------------
fetch_source() {
	local apt=$SRC/apt try
	mkdir -p "$apt"/{lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d}
	touch "$apt/status"
	printf 'deb-src [signed-by=%s] %s bookworm main\n' "$KEYRING" "$MIRROR" >"$apt/etc/sources.list"
	if id _apt >/dev/null 2>&1; then chown -R _apt "$SRC" 2>/dev/null || true; fi
	local opts=(
		-o "Dir::Etc::SourceList=$apt/etc/sources.list"
		-o "Dir::Etc::SourceParts=$apt/etc/sources.list.d"
		-o "Dir::Etc::PreferencesParts=$apt/etc/preferences.d"
		-o "Dir::State=$apt" -o "Dir::State::Lists=$apt/lists"
		-o "Dir::State::status=$apt/status" -o "Dir::Cache=$apt/cache"
		-o "Acquire::Languages=none" -o "Acquire::Retries=2"
	)
	for try in 1 2 3; do
		log "apt-get source valgrind=$DEBVER ($MIRROR; try $try/3)"
		if apt-get "${opts[@]}" -q update >&2 &&
			(cd "$SRC" && apt-get "${opts[@]}" -q source --download-only "valgrind=$DEBVER" >&2); then
			return 0
		fi
		((try < 3)) && sleep $((2 ** try))
	done
	die "valgrind $DEBVER: the source package could not be fetched from $MIRROR"
}
DSC=$SRC/valgrind_${DEBVER#*:}.dsc
if [[ ! -r $DSC ]] || ! (cd "$SRC" && dpkg-source --no-check -x "$DSC" "$SRC/check.$$" >/dev/null 2>&1); then
	rm -rf "$SRC/check.$$"
	fetch_source
fi
rm -rf "$SRC/check.$$"

# ---- 2. build -----------------------------------------------------------------
WORK=$(mktemp -d "$CACHE/.valgrind-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building valgrind $UPSTREAM with $PATCH in $WORK (about 10 CPU-minutes)"
# the .dsc's pieces were checked against apt's signed index when fetched; the
# .dsc's own OpenPGP signature needs debian-keyring, which is not installed
(cd "$WORK" && dpkg-source --no-check -x "$DSC" src >&2) || die "$DSC: cannot be unpacked"
patch -d "$WORK/src" -p1 --forward --quiet <"$PATCH" >&2 || die "$PATCH: does not apply to valgrind $DEBVER"
(
	cd "$WORK/src"
	./configure --prefix="$DEST" --enable-only64bit >"$WORK/configure.log" 2>&1 ||
		{ tail -20 "$WORK/configure.log" >&2; exit 1; }
	make -j"$(nproc)" >"$WORK/make.log" 2>&1 || { grep -m5 -B2 -A2 'error' "$WORK/make.log" >&2; exit 1; }
	make install DESTDIR="$WORK/inst" >"$WORK/install.log" 2>&1 || { tail -20 "$WORK/install.log" >&2; exit 1; }
) || die "valgrind $UPSTREAM: the build failed (logs in $WORK, removed)"
printf '%s\n' "$SUM" >"$WORK/inst$DEST/$MARKER"
rm -rf "$DEST"
mv "$WORK/inst$DEST" "$DEST"
log "valgrind $UPSTREAM-gs$GS_N built into $DEST"
printf '%s\n' "$DEST/bin/valgrind"
