#!/usr/bin/env bash
# bench/access.sh: the cost of organization scoping (row-level security and the scoped API
# functions), RLS on vs off, at SCALE contacts (default 20000).  Builds and installs into a
# private tree under .bench-access/, starts a throwaway cluster, generates the population,
# runs bench/access.sql and prints a Markdown table of medians and ratios of this one run.
source "$(dirname "$0")/../scripts/lib.sh"
BENCH_DIR=${BENCH_DIR:-"$OUTREACH_ROOT/.bench-access"}
SCALE=${SCALE:-20000}
REPEAT=${REPEAT:-11}
WRITES=${WRITES:-300}
export OUTREACH_PORT=${OUTREACH_PORT:-54333}
cd "$OUTREACH_ROOT"
ensure_packages
if [ -d "$BENCH_DIR/root" ]; then private_bin_for "$BENCH_DIR"; stop_cluster "$BENCH_DIR"; fi
rm -rf "$BENCH_DIR"; mkdir -p "$BENCH_DIR"
trap 'stop_cluster "$BENCH_DIR"' EXIT
build_and_install "$BENCH_DIR"
start_cluster "$BENCH_DIR" outreach_bench
export PGOPTIONS="-c outreach.now=2026-01-01T00:00:00+00 -c client_min_messages=warning"
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "CREATE EXTENSION outreach CASCADE" >/dev/null
log "generating $SCALE contacts"
"${PSQL[@]}" -tA -c "SELECT string_agg(table_name || ' ' || rows, ', ') FROM outreach.generate_population($SCALE, 42)"
"${PSQL[@]}" -c "VACUUM ANALYZE" >/dev/null
echo "| case | RLS on | RLS off | ratio | note |"
echo "|---|---|---|---|---|"
"${PSQL[@]}" -tA -v repeat="$REPEAT" -v writes="$WRITES" -f bench/access.sql | grep '^|'
