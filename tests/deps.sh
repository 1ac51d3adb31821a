#!/usr/bin/env bash
# Installs (apt-get, only when missing) what building and testing gpu-stage
# needs on Debian 12.  Idempotent: a second run installs nothing.
set -euo pipefail

PKGS=(
	build-essential pkg-config          # compiler, make
	libelf-dev libjansson-dev zlib1g-dev # ELF reading, JSON, CRC-32 (the index)
	libcmocka-dev                       # unit tests
	clang libclang-rt-14-dev            # libFuzzer harness (make fuzz)
	gcc-multilib                        # i386 shared objects for fixtures
	debootstrap                         # real Debian rootfs for integration tests
	jq                                  # checking --json output in tests
	time                                # GNU time: peak RSS in ldcache_hostile.sh
	gdb                                 # layering.sh: which commands initialise libcrypto
	musl musl-tools                     # hook_runc.sh: a musl image with musl's real loader
	libssl-dev                          # SHA-256 (libcrypto)
	libcap-dev                          # capabilities (hook)
	libcap2-bin                         # test_store: setcap (verify catches file capabilities)
	libarchive-dev libzstd-dev          # export/import: tar + zstd archives (static libarchive.a, libzstd.a)
	zstd gzip                           # store_archive.sh: reading exports, a gzip'd tar to refuse
	runc crun                           # OCI runtimes for hook tests
	docker.io containerd                # real engines (engine_docker.sh, runtime_configure.sh)
	podman                              # engine_podman_cdi.sh (CDI), engine_podman_hooks.sh
	busybox-static                      # engine_podman_hooks.sh: a busybox image to time the hook
	curl gpgv xz-utils debian-archive-keyring # fixtures/docker26.sh: Docker 26 for engine_docker_cdi.sh
	patch                               # runtime_configure.sh: the dry run's diff applies
	bats gawk busybox-static curl xz-utils # shim_runc_suite.sh: runc's bats suite, images
	ca-certificates
	debhelper dpkg-dev lintian file      # package.sh: make deb (dpkg-buildpackage), lintian, static binaries
	systemd                             # boot_unit.sh: systemd-analyze verify of the boot unit
	python3-yaml                        # kubernetes_yaml.sh: the DaemonSet parses
	libc6-dbg                           # tests/valgrind: glibc symbols for memcheck (ld.so redirections, stacks)
	btrfs-progs                         # store_btrfs.sh: a store in a btrfs subvolume
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "tests/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
for try in 1 2 3; do
	if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
		exit 0
	fi
	echo "tests/deps.sh: apt-get failed (try $try of 3), retrying" >&2
	sleep $((try * 5))
done
echo "tests/deps.sh: could not install ${missing[*]}" >&2
exit 1
