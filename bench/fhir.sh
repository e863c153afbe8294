#!/usr/bin/env bash
# bench/fhir.sh: `make bench-fhir`.  FHIR resources imported per second by outreach.import_fhir.
#
# Builds, installs into a private PostgreSQL tree under .bench/fhir/ (ignored), starts its own
# throwaway cluster, and imports the shared FHIR sets (../shared/data/fhir; else the sample in
# data/fhir-sample) REPEAT times each into an empty database: the 55 Synthea Bundles, the Bulk
# Data NDJSON folder, and a re-import of the Bundles onto themselves (nothing changes).  The
# baseline in the same run is import_synthea on a Synthea CSV export (rows per second).
# Times are clock_timestamp() differences inside the server.  Prints one table of medians;
# nothing asserts a time (the target, >= 20,000 resources/s on 2 cores, is reported).
source "$(dirname "$0")/../scripts/lib.sh"

BENCH_DIR=${BENCH_DIR:-"$OUTREACH_ROOT/.bench/fhir"}
REPEAT=${REPEAT:-5}
export OUTREACH_PORT=${OUTREACH_PORT:-54333}
cd "$OUTREACH_ROOT"
ensure_packages

SHARED=""
for c in "$OUTREACH_ROOT/../shared/data" "$OUTREACH_ROOT/../../shared/data"; do
	[ -d "$c/fhir/smart-on-fhir-generated-sample-data-55" ] && { SHARED=$(cd "$c" && pwd); break; }
done
if [ -d "$BENCH_DIR/root" ]; then private_bin_for "$BENCH_DIR"; stop_cluster "$BENCH_DIR"; fi
rm -rf "$BENCH_DIR"; mkdir -p "$BENCH_DIR/files/bundles" "$BENCH_DIR/files/ndjson" "$BENCH_DIR/files/csv"
trap 'stop_cluster "$BENCH_DIR"' EXIT
if [ -n "$SHARED" ]; then
	cp "$SHARED/fhir/smart-on-fhir-generated-sample-data-55/"*.json "$BENCH_DIR/files/bundles/"
	cp "$SHARED/fhir/smart-on-fhir-sample-bulk-fhir-datasets-13/"*.ndjson "$BENCH_DIR/files/ndjson/"
	cp "$SHARED/synthea/andrew-nguyen-59/"*.csv "$BENCH_DIR/files/csv/"
	data="shared set (55 Bundles, 13-patient NDJSON; baseline: andrew-nguyen-59 CSV)"
else
	cp data/fhir-sample/bundles/*.json "$BENCH_DIR/files/bundles/"
	cp data/fhir-sample/ndjson/*.ndjson "$BENCH_DIR/files/ndjson/"
	cp data/synthea-sample/*.csv "$BENCH_DIR/files/csv/"
	data="data/fhir-sample and data/synthea-sample (the shared set was not found)"
fi
chmod -R a+rX "$BENCH_DIR"
build_and_install "$BENCH_DIR"
start_cluster "$BENCH_DIR" outreach_bench
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -tA)
sql() { "${PSQL[@]}" -c "$1"; }
F="$BENCH_DIR/files"

# time_ms SQL-STATEMENT: milliseconds the statement takes inside the server.
time_ms() {
	sql "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM count(*) FROM ($1) x;
	     RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000); END \$\$" 2>&1 |
		sed -n 's/.*ms=\([0-9]*\).*/\1/p'
}
fresh() { sql "SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE" >/dev/null; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# Resources in the input (every resource read, mapped or not) and rows in the CSV files.
fresh
n_bundles=$(sql "SELECT sum(resources) FROM outreach.import_fhir('$F/bundles') WHERE resources IS NOT NULL AND resource_type !~ '^\('")
fresh
n_ndjson=$(sql "SELECT sum(resources) FROM outreach.import_fhir('$F/ndjson') WHERE resources IS NOT NULL AND resource_type !~ '^\('")
fresh
n_csv=$(sql "SELECT sum(rows_in_csv) FROM outreach.import_synthea('$F/csv')")

declare -A ms
for i in $(seq "$REPEAT"); do
	fresh; ms[bundles]+="$(time_ms "SELECT * FROM outreach.import_fhir('$F/bundles')") "
	ms[reimport]+="$(time_ms "SELECT * FROM outreach.import_fhir('$F/bundles')") "
	fresh; ms[ndjson]+="$(time_ms "SELECT * FROM outreach.import_fhir('$F/ndjson')") "
	fresh; ms[csv]+="$(time_ms "SELECT * FROM outreach.import_synthea('$F/csv')") "
done
med() { echo "${ms[$1]}" | tr ' ' '\n' | grep . | median; }
b=$(med bundles); r=$(med reimport); j=$(med ndjson); c=$(med csv)
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%d", (t > 0 ? n * 1000 / t : 0) }'; }
csv_rate=$(rate "$n_csv" "$c")
{
	echo "FHIR import, $(nproc) cores, median of $REPEAT, $data"
	printf '%-40s %10s %8s %12s %10s\n' case items ms per_second vs_csv
	for k in bundles reimport ndjson; do
		n=$n_bundles; [ "$k" = ndjson ] && n=$n_ndjson
		t=$(med "$k"); per=$(rate "$n" "$t")
		printf '%-40s %10s %8s %12s %9sx\n' "import_fhir $k (resources)" "$n" "$t" "$per" \
			"$(awk -v a="$per" -v b="$csv_rate" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
	done
	printf '%-40s %10s %8s %12s %10s\n' "baseline: import_synthea (CSV rows)" "$n_csv" "$c" "$csv_rate" "1.00x"
	echo "target: >= 20000 resources/s for the Bundles: $( [ "$(rate "$n_bundles" "$b")" -ge 20000 ] && echo met || echo 'not met')"
} | tee "$BENCH_DIR/results.txt"
