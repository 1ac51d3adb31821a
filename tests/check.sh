#!/usr/bin/env bash
# The README's test command: install what is missing, build with warnings as
# errors, run every test (unit tests under ASan+UBSan, fuzz replay,
# integration tests against the real ldconfig, debootstrap and runc), then
# the mutation tier and the valgrind tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/deps.sh
make -j"$(nproc)" all
make check
# the mutation tier: every safety decision of tests/mutants/list, broken on
# purpose, must fail one of its tests (about two minutes)
bash tests/mutants/run
# the valgrind tier: the CLI, the hook and the shim under memcheck (no
# error, no definite leak, no fd left open; about 20 minutes, the first run
# builds valgrind too)
bash tests/valgrind/run
