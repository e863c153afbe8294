#!/usr/bin/env bash
# test/run.sh: `make test`.  From a fresh Debian machine: packages, build, private install,
# a throwaway cluster with pg_cron preloaded, then every suite:
#   pg_regress  test/sql/*.sql   against test/expected/*.out
#   isolation   test/specs/*.spec against test/expected/*.out
#   pgTAP       test/pgtap/*.sql  with pg_prove
#   extra       test/extra/*.sh   (fuzzing, randomized drivers); each prints "N passed, N failed"
#               last, or "N passed, N failed, N skipped" with a line "skipped: REASON" when it
#               needs data that is not there (../shared, which a fresh clone may not have)
# The last line is "N passed, N failed, N skipped"; the exit code is non-zero on any failure.
# Filters for development: ONLY_REGRESS="a b", ONLY_SPECS="x", ONLY_PGTAP="f" (names without .sql), ONLY_EXTRA="y",
# or SUITES="regress isolation pgtap extra" to pick suites.
source "$(dirname "$0")/../scripts/lib.sh"
# Settings of the caller's environment (PGOPTIONS=-c client_min_messages=..., a fixed
# outreach.now) would change what the tests see: every server setting comes from here.
unset PGOPTIONS PGSERVICE PGTZ PGDATESTYLE PGCLIENTENCODING

cd "$OUTREACH_ROOT"
ensure_packages

WORK=$(mktemp -d /tmp/outreach-test.XXXXXX)
chmod 755 "$WORK"
DB=outreach_test
cleanup() { stop_cluster "$WORK"; if [ "${KEEP_TEST_DIR:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

build_and_install "$WORK"
start_cluster "$WORK" "$DB"
export OUTREACH_TEST_WORK=$WORK

PGXS_DIR=$(dirname "$("$(pg_config_path)" --pgxs)")/../..
PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress"
PG_ISOLATION_REGRESS="$PGXS_DIR/src/test/isolation/pg_isolation_regress"
SUITES=${SUITES:-regress isolation pgtap extra}

passed=0
failed=0
skipped=0
failed_names=()
skipped_names=()

names_of() { # dir ext filter
	local d=$1 ext=$2 only=$3 f n
	for f in $(ls "$d"/*."$ext" 2>/dev/null | sort); do
		n=$(basename "$f" ".$ext")
		if [ -n "$only" ] && ! [[ " $only " == *" $n "* ]]; then continue; fi
		echo "$n"
	done
}

# pg_regress prints "ok" / "FAILED" per test; count them and show diffs of failures.
run_pg_regress() {
	local kind=$1 bin=$2 outdir=$3; shift 3
	local names=("$@")
	[ ${#names[@]} -gt 0 ] || return 0
	rm -rf "$outdir"; mkdir -p "$outdir"
	log "$kind: ${#names[@]} test(s)"
	local out rc=0
	out=$("$bin" --use-existing --bindir="$PRIVATE_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
		--dbname="$DB" --inputdir=test --outputdir="$outdir" "${names[@]}" 2>&1) || rc=$?
	echo "$out" | grep -E '^(test|ok|not ok|     |\s*[a-z_0-9-]+\s+\.\.\.)' || true
	local ok bad
	ok=$(echo "$out" | grep -cE '\.\.\. ok|^ok ' || true)
	bad=$(echo "$out" | grep -cE '\.\.\. FAILED|^not ok|\.\.\. failed' || true)
	passed=$((passed + ok)); failed=$((failed + bad))
	if [ "$bad" -gt 0 ] || [ "$rc" -ne 0 ]; then
		[ "$bad" -gt 0 ] || failed=$((failed + 1))
		failed_names+=("$kind")
		if [ -f "$outdir/regression.diffs" ]; then
			echo "---- $kind diffs ($outdir/regression.diffs) ----"
			cat "$outdir/regression.diffs"
		fi
	fi
	return 0
}

if [[ " $SUITES " == *" regress "* ]]; then
	mapfile -t regress < <(names_of test/sql sql "${ONLY_REGRESS:-}")
	run_pg_regress regress "$PG_REGRESS" "$WORK/regress" "${regress[@]}"
fi

# Suites start from a database without outreach, whatever the previous suite left.
reset_db() { "$PRIVATE_BIN/psql" -X -q -c "set client_min_messages = warning" -c "drop extension if exists outreach cascade" >/dev/null; }

if [[ " $SUITES " == *" isolation "* ]]; then
	reset_db
	mapfile -t specs < <(names_of test/specs spec "${ONLY_SPECS:-}")
	run_pg_regress isolation "$PG_ISOLATION_REGRESS" "$WORK/isolation" "${specs[@]}"
fi

if [[ " $SUITES " == *" pgtap "* ]]; then
	mapfile -t taps < <(names_of test/pgtap sql "${ONLY_PGTAP:-}")
	if [ ${#taps[@]} -gt 0 ]; then
		log "pgTAP: ${#taps[@]} file(s)"
		reset_db
		"$PRIVATE_BIN/psql" -X -q -c "create extension if not exists pgtap" >/dev/null
		files=(); for t in "${taps[@]}"; do files+=("test/pgtap/$t.sql"); done
		rc=0
		out=$(pg_prove --verbose --ext .sql -h "$PGHOST" -p "$PGPORT" -U postgres -d "$DB" "${files[@]}" 2>&1) || rc=$?
		# every assertion line is printed with --verbose: show failures and the summary only
		echo "$out" | grep -vE '^(ok |#|1\.\.)' || true
		ok=$(echo "$out" | grep -cE '^ok ' || true)
		bad=$(echo "$out" | sed -n 's/.*Failed \([0-9]*\)\/[0-9]* subtests.*/\1/p' | awk '{s+=$1} END {print s+0}')
		passed=$((passed + ok)); failed=$((failed + bad))
		if [ "$rc" -ne 0 ]; then
			failed_names+=(pgtap)
			[ "$bad" -gt 0 ] || failed=$((failed + 1))
		fi
	fi
fi

if [[ " $SUITES " == *" extra "* ]]; then
	for n in $(names_of test/extra sh "${ONLY_EXTRA:-}"); do
		log "extra: $n"
		rc=0
		out=$(bash "test/extra/$n.sh" 2>&1) || rc=$?
		mkdir -p "$WORK/extra"; printf '%s\n' "$out" >"$WORK/extra/$n.log"
		# every failure, then the end of the output (the whole log is in $WORK/extra)
		echo "$out" | grep -E '^not ok' | head -40 || true
		echo "$out" | tail -5
		line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
		p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
		k=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
		passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${k:-0}))
		if [ "${k:-0}" -gt 0 ]; then
			skipped_names+=("extra:$n ($(echo "$out" | sed -n 's/^skipped: //p' | head -1))")
		fi
		if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
			failed_names+=("extra:$n"); [ "${f:-0}" -gt 0 ] || failed=$((failed + 1))
		fi
	done
fi

if [ ${#failed_names[@]} -gt 0 ]; then
	log "failing suites: ${failed_names[*]}"
	# crashes and assertion failures only: expected errors of the tests are in the log too
	grep -E 'terminated by signal|PANIC|TRAP:|server process .* was terminated' "$WORK/log/server.log" >&2 || true
fi
for s in "${skipped_names[@]}"; do log "skipped: $s"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ ${#failed_names[@]} -eq 0 ]
