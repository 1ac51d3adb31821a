# shellcheck shell=bash disable=SC2154 # $work, $N, $GS, $SRC, $B (the build dir), $ROWS: set by bench/run
# SPDX-License-Identifier: Apache-2.0
# bench/run group "stage" (sourced): rows 6-8, discovery and staging.
# HOST: the synthetic driver of fixtures/mkdriver.sh (535.261.03 and a 550
# decoy, real ELF files; seconds, no download), or with GS_BENCH_REAL=1
# Debian's real 535.261.03 packages (fixtures/debian-driver.sh --set full,
# ~1 GB unpacked; downloads into the test cache on the first run).
#   6  discovery: gpu-stage --root HOST --store S --caps all --dry-run vs
#      ldconfig -p -C HOST/etc/ld.so.cache (printing the host's cache: the
#      floor of any discovery); target: tens of ms
#   7  no-op re-stage (S already holds the unchanged driver: checked, the
#      version directory is never replaced) vs a full stage into an empty
#      store; target: tens of ms
#   8  full stage into an empty store vs `cp -a` of the same files (the
#      manifest's files[].source under HOST) + `sha256sum` of the copies:
#      the bytes a stage must copy and hash (the stage also syncs the tree to
#      disk, one syncfs, the baseline does not); the digests must equal the
#      manifest's.  Target: ours <= 1.5x the baseline (ratio >= 0.67).
# Full stages of the real tree copy ~1 GB each: 5 samples of 7's baseline
# and of 8, N of everything else.

# synthetic_driver: the synthetic host, made once per bench run (shared with
# the hook group); prints its path.
synthetic_driver() {
	local d=$work/drv
	if [ ! -f "$d/.gs-fixture.json" ]; then
		log "generating the synthetic driver 535.261.03 (fixtures/mkdriver.sh)"
		bash fixtures/mkdriver.sh "$d" --version 535.261.03 --decoy 550.163.01 --force >/dev/null 2>"$work/mkdriver.log" ||
			die "fixtures/mkdriver.sh failed: $(tail -n 3 "$work/mkdriver.log")"
	fi
	echo "$d"
}

# st_copy_hash: the baseline of row 8, into the existing empty $work/st-copydir
# (a function of this shell: no process but cp's and sha256sum's).
st_copy_hash() {
	local rc=0
	cd "$st_host" && cp -a --parents -t "$work/st-copydir" -- "${st_files[@]}" &&
		cd "$work/st-copydir" && sha256sum -- "${st_files[@]}" >"$work/st-copy.sums" || rc=1
	cd "$SRC" && return $rc
}

group_stage() {
	local host label k=$N store=$work/st-store fresh=$work/st-fresh ver man nfiles ino i f
	if [ "${GS_BENCH_REAL:-0}" = 1 ]; then
		log "stage: building Debian's real driver tree (fixtures/debian-driver.sh --set full, ~1 min)"
		host=$(bash fixtures/debian-driver.sh "$work/debhost" --set full 2>"$work/deb.log") ||
			die "fixtures/debian-driver.sh failed: $(tail -n 3 "$work/deb.log")"
		label="Debian's real 535.261.03"
		k=5
	else
		host=$(synthetic_driver)
		label="synthetic 535.261.03"
	fi
	"$GS" --root "$host" --store "$store" --caps all -q >/dev/null 2>"$work/st.err" ||
		die "staging $host failed: $(tail -n 3 "$work/st.err")"
	man=$(echo "$store"/*/manifest.json)
	[ -f "$man" ] || die "$store: no manifest after staging"
	ver=$(jq -r .driver "$man")
	nfiles=$(jq '.files | length' "$man")
	[ "$("$GS" --root "$host" --store "$store" --caps all --dry-run --json 2>/dev/null | jq '.files | length')" = "$nfiles" ] ||
		die "--dry-run plans another file count than the $nfiles staged (results differ)"
	# row 8's file list: every staged file's source, relative to HOST
	mapfile -t st_files < <(jq -r '.files[].source | ltrimstr("/")' "$man")
	for f in "${st_files[@]}"; do
		if [ ! -f "$host/$f" ] || [ -L "$host/$f" ]; then die "$f: a manifest source that is not a regular file"; fi
	done
	st_host=$host
	ino=$(stat -c %i "$store/$ver")

	log "stage: 6-8 on the $label driver (--caps all: $nfiles files, $(du -sh --apparent-size "$store/$ver" | cut -f1)), N=$N, full stages $k"
	# warm-up of every command (page cache, the store's .readers)
	for f in disc floor noop full copy; do : >"$work/st-$f.us"; done
	rm -rf --one-file-system "$fresh" "$work/st-copydir"
	mkdir "$work/st-copydir"
	"$GS" --root "$host" --store "$fresh" --caps all -q >/dev/null 2>&1 || die "staging into $fresh failed"
	st_copy_hash || die "cp -a + sha256sum of the $nfiles sources failed"
	for ((i = 0; i < N; i++)); do
		if ((i % 2 == 0)); then
			sample "$work/st-disc.us" "$GS" --root "$host" --store "$store" --caps all --dry-run
			sample "$work/st-floor.us" ldconfig -p -C "$host/etc/ld.so.cache"
		else
			sample "$work/st-floor.us" ldconfig -p -C "$host/etc/ld.so.cache"
			sample "$work/st-disc.us" "$GS" --root "$host" --store "$store" --caps all --dry-run
		fi
		sample "$work/st-noop.us" "$GS" --root "$host" --store "$store" --caps all -q
		if ((i < k)); then
			rm -rf --one-file-system "$fresh" "$work/st-copydir"
			mkdir "$work/st-copydir"
			if ((i % 2 == 0)); then
				sample "$work/st-full.us" "$GS" --root "$host" --store "$fresh" --caps all -q
				sample "$work/st-copy.us" st_copy_hash
			else
				sample "$work/st-copy.us" st_copy_hash
				sample "$work/st-full.us" "$GS" --root "$host" --store "$fresh" --caps all -q
			fi
		fi
	done
	# cross-checks: the no-op stayed one, the baseline hashed what was staged
	[ "$(stat -c %i "$store/$ver")" = "$ino" ] || die "the no-op re-stage replaced $store/$ver (results differ)"
	"$GS" --root "$host" --store "$store" --caps all -q 2>/dev/null | grep -q '^unchanged:' ||
		die "a re-stage of the unchanged driver did not say 'unchanged' (results differ)"
	cmp -s <(jq -r '.files[] | "\(.sha256)  \(.source | ltrimstr("/"))"' "$man" | sort) <(sort "$work/st-copy.sums") ||
		die "sha256sum of the copies differs from the manifest's digests (results differ)"
	cmp -s <(jq -S 'del(.created, .manifest_sha256, .root)' "$man") <(jq -S 'del(.created, .manifest_sha256, .root)' "$fresh/$ver/manifest.json") ||
		die "the full stage into an empty store made another manifest (results differ)"

	within_row 6 "discovery \`--caps all --dry-run\` ($label, $nfiles files) vs \`ldconfig -p -C\` of HOST's cache" "$N" \
		"$(median "$work/st-floor.us")" "$(median "$work/st-disc.us")" 100000 "tens of ms (< 100 ms)"
	within_row 7 "no-op re-stage (unchanged) vs full stage into an empty store" "$([ "$k" = "$N" ] && echo "$N" || echo "$N / $k")" \
		"$(median "$work/st-full.us")" "$(median "$work/st-noop.us")" 100000 "tens of ms (< 100 ms)"
	speedup_row 8 "full stage into an empty store vs \`cp -a\` + \`sha256sum\` of the $nfiles files" "$k" \
		"$(median "$work/st-copy.us")" "$(median "$work/st-full.us")" 0.67
	rm -rf --one-file-system "$fresh" "$work/st-copydir" "$store" "$work/debhost"
}
