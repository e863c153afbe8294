#!/usr/bin/env bash
# test/extra/fuzz_parser.sh: bounded random and mutation fuzzing of the segment language's
# parser through the type input of outreach.segment_query.
#
# Batches of inputs (queries of the grammar, mutations of them, random token sequences; see
# test/fuzz/fuzz_parser.sql) are generated in the server from a seed and checked: the backend
# never dies, every accepted input prints a canonical form that reads back to itself, every
# rejection is a 42601 syntax error with a position inside the text (or a 22xxx data
# exception), and every query of the grammar is accepted.  Failing inputs are saved under
# test/fuzz/failures/; add them to test/sql/query_fuzz_regressions.sql.
#
# Environment: PGHOST, PGPORT, PGDATABASE (from make test), PRIVATE_BIN (psql),
# FUZZ_SECONDS (default 60), FUZZ_SEED (default 20261121), FUZZ_BATCH (default 1500).
# A batch passes when all its inputs pass; the last line is "N passed, N failed" over batches.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PSQL="${PRIVATE_BIN:+$PRIVATE_BIN/}psql"
SECONDS_BUDGET=${FUZZ_SECONDS:-60}
SEED=${FUZZ_SEED:-20261121}
BATCH=${FUZZ_BATCH:-1500}
FAILDIR="$root/test/fuzz/failures"

psql_q() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -tA "$@"; }

echo "fuzz_parser: seed $SEED, ${SECONDS_BUDGET}s, batches of $BATCH (rerun with FUZZ_SEED=$SEED)"

setup=$(
	psql_q <<-EOF 2>&1
		SET client_min_messages = warning;
		CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
		DROP SCHEMA IF EXISTS outreach_fuzz CASCADE;
		CREATE SCHEMA outreach_fuzz;
		\i $root/test/fuzz/fuzz_parser.sql
	EOF
) || { echo "$setup"; echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

batches_passed=0
batches_failed=0
total_accepted=0
total_rejected=0
total_failed=0
start=$(date +%s)
b=0

save_failure() { # kind text detail
	mkdir -p "$FAILDIR"
	local sum f
	sum=$(printf '%s' "$2" | md5sum | cut -c1-12)
	f="$FAILDIR/$1-$sum.txt"
	printf '%s' "$2" >"$f"
	printf '%s\n' "$3" >"$f.why"
	echo "  failure saved: $f ($3)" | cut -c1-300
}

while [ $(($(date +%s) - start)) -lt "$SECONDS_BUDGET" ]; do
	b=$((b + 1))
	# a seed in [-1, 1) for setseed, different for every batch, reproducible from SEED
	bseed=$(awk -v s="$SEED" -v b="$b" 'BEGIN { x = (s * 7919 + b * 104729) % 1999993; printf "%.9f", x / 1999993 * 2 - 1 }')
	if ! out=$(psql_q -c "SELECT outreach_fuzz.generate($b, $bseed, $BATCH)" 2>&1); then
		echo "batch $b: generating inputs failed: $out"
		batches_failed=$((batches_failed + 1))
		break
	fi
	if out=$(psql_q -F ' ' -c "SELECT * FROM outreach_fuzz.check_batch($b)" 2>&1); then
		read -r acc rej fl <<<"$out"
		total_accepted=$((total_accepted + acc)); total_rejected=$((total_rejected + rej)); total_failed=$((total_failed + fl))
		if [ "$fl" -eq 0 ]; then
			batches_passed=$((batches_passed + 1))
		else
			batches_failed=$((batches_failed + 1))
			echo "batch $b: $fl failing input(s)"
			while IFS= read -r -d '' kind && IFS= read -r -d '' q && IFS= read -r -d '' why; do
				save_failure "$kind" "$q" "$why"
			done < <(psql_q -z -0 -c "SELECT kind, q, detail FROM outreach_fuzz.failure WHERE batch = $b" 2>/dev/null)
		fi
	else
		# the backend died (or the check itself broke): find the inputs that kill it, one by one
		batches_failed=$((batches_failed + 1))
		echo "batch $b: checking failed: $(echo "$out" | head -3)"
		sleep 2
		for id in $(psql_q -c "SELECT id FROM outreach_fuzz.input WHERE batch = $b ORDER BY id" 2>/dev/null); do
			if ! psql_q -c "SELECT outreach_fuzz.check_one(q, false) FROM outreach_fuzz.input WHERE id = $id" >/dev/null 2>&1; then
				sleep 2
				q=$(psql_q -c "SELECT q FROM outreach_fuzz.input WHERE id = $id")
				save_failure crash "$q" "the backend died or the check failed on this input"
				total_failed=$((total_failed + 1))
			fi
		done
	fi
	psql_q -c "DELETE FROM outreach_fuzz.input WHERE batch = $b" >/dev/null 2>&1 || true
done

alive=$(psql_q -c "SELECT 'alive'" 2>&1)
if [ "$alive" != alive ]; then
	echo "the server does not answer after fuzzing: $alive"
	batches_failed=$((batches_failed + 1))
fi
psql_q -c "DROP SCHEMA IF EXISTS outreach_fuzz CASCADE" >/dev/null 2>&1 || true

echo "fuzz_parser: $((total_accepted + total_rejected + total_failed)) inputs in $b batches: $total_accepted accepted and stable, $total_rejected rejected cleanly, $total_failed failed"
echo "$batches_passed passed, $batches_failed failed"
[ "$batches_failed" -eq 0 ]
