#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# /dev/char/MAJOR:MINOR links (issue 14): systemd resolves device cgroup
# rules through them; nodes made by nvidia-modprobe or mknod have none, and
# then a `systemctl daemon-reload` takes a running container's GPU away.
# At prestart the hook creates DEVROOT/char/MAJ:MIN -> ../NAME on the host
# for every node the container receives that has none, leaves anything
# already there alone, and says what it made in the audit record; a second
# start makes nothing.
# Exit 0 pass, 77 skipped (with the reason), else failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source fixtures/hook_lib.sh
hk_setup hook_devchar.sh
mkdir -p "$HK_DEV/char"
ln -s ../someone-elses "$HK_DEV/char/195:0" # there already: left alone
run_one() {
	hk_bundle "$1"
	hk_config "$HK_B" prestart false '["NVIDIA_VISIBLE_DEVICES=0"]' 'ls /dev/nvidia0 && echo STARTED'
	hk_runc "$HK_B" "gs-devchar-$$-$1" || hk_fail "$1: the container failed: $(cat "$HK_WORK/gs-devchar-$$-$1.out")"
	grep -q STARTED "$HK_WORK/gs-devchar-$$-$1.out" || hk_fail "$1: the container did not run"
}
run_one first
for l in 195:255=../nvidiactl 237:0=../nvidia-uvm 237:1=../nvidia-uvm-tools; do
	[ "$(readlink "$HK_DEV/char/${l%%=*}")" = "${l#*=}" ] ||
		hk_fail "$HK_DEV/char/${l%%=*} is not a link to ${l#*=}: $(ls -l "$HK_DEV/char")"
done
[ "$(readlink "$HK_DEV/char/195:0")" = ../someone-elses ] || hk_fail "an existing /dev/char entry was replaced"
[ ! -e "$HK_DEV/char/195:1" ] && [ ! -L "$HK_DEV/char/195:1" ] || hk_fail "a link was made for a GPU the container did not get"
rec=$(tail -n 1 "$HK_AUDIT")
jq -e '.result == "ok" and (.dev_char | contains("created /dev/char/195:255 -> ../nvidiactl")) and (.dev_char | contains("195:0") | not)' \
	<<<"$rec" >/dev/null || hk_fail "the audit record does not say what was made: $rec"
hk_ok "links made for the nodes given (nvidiactl, nvidia-uvm, nvidia-uvm-tools), an existing one left alone, the audit record says so"
run_one second
tail -n 1 "$HK_AUDIT" | jq -e 'has("dev_char") | not' >/dev/null || hk_fail "a second start made links again: $(tail -n 1 "$HK_AUDIT")"
hk_ok "a second start makes nothing"
