#!/usr/bin/env bash
# bench/run.sh: `make bench`.  Builds, installs into a private PostgreSQL tree under .bench/
# (ignored), starts a fresh throwaway cluster there, loads a population of SCALE contacts
# (default 100000; SEED default 42) and times every case bench/cases/NN_name.sql.
#
# A case file is SQL run with psql; RUNS times (default 5) each, median reported.  Files
# named NN_setup_*.sql run once, untimed, in order (e.g. segments going live between cases).  Its first
# line may say "-- baseline: NN_other" to be reported as a ratio to that case, measured in
# the same run.  Cases that need something not merged yet may skip themselves by raising
# (e.g. "SELECT outreach.evaluate(...)" on a build without segments): they are reported as
# skipped.  Nothing here asserts a time.
source "$(dirname "$0")/../scripts/lib.sh"

BENCH_DIR="$OUTREACH_ROOT/.bench"
SCALE=${SCALE:-100000}
SEED=${SEED:-42}
RUNS=${RUNS:-5}
export OUTREACH_PORT=${OUTREACH_PORT:-54331}

cd "$OUTREACH_ROOT"
ensure_packages
if [ -d "$BENCH_DIR/root" ]; then private_bin_for "$BENCH_DIR"; stop_cluster "$BENCH_DIR"; fi
rm -rf "$BENCH_DIR"; mkdir -p "$BENCH_DIR"
trap 'stop_cluster "$BENCH_DIR"' EXIT
build_and_install "$BENCH_DIR"
start_cluster "$BENCH_DIR" outreach_bench
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v scale="$SCALE" -v seed="$SEED")
"${PSQL[@]}" -c "CREATE EXTENSION outreach CASCADE" >/dev/null 2>&1

# ms of one run of a SQL file (psql \timing sums every statement; setup lines start with --setup)
time_ms() {
	local f=$1 start end
	start=$(date +%s%N)
	"${PSQL[@]}" -f "$f" >/dev/null 2>"$BENCH_DIR/case.err" || return 1
	end=$(date +%s%N)
	echo $(( (end - start) / 1000000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print ""; else if (NR % 2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

log "loading $SCALE contacts (seed $SEED)"
load_ms=$(time_ms <(echo "SELECT * FROM outreach.generate_population(:scale, :seed);")) || { cat "$BENCH_DIR/case.err"; die "the population did not load"; }
"${PSQL[@]}" -c "VACUUM ANALYZE" >/dev/null

declare -A med
printf '\n%-32s %10s %8s  %s\n' case "median ms" runs "ratio to baseline"
printf '%-32s %10s %8s\n' "00_generate_population" "$load_ms" 1
for f in bench/cases/*.sql; do
	name=$(basename "$f" .sql)
	if [[ $name == *_setup_* ]]; then
		"${PSQL[@]}" -f "$f" >/dev/null 2>"$BENCH_DIR/case.err" \
			&& printf '%-32s %10s\n' "$name" "(set-up)" \
			|| { printf '%-32s %10s %8s  %s\n' "$name" failed - "$(head -1 "$BENCH_DIR/case.err")"; setup_failed=$name; }
		continue
	fi
	if [ -n "${setup_failed:-}" ]; then
		printf '%-32s %10s %8s  %s\n' "$name" skipped - "set-up $setup_failed failed"
		continue
	fi
	times=()
	skipped=""
	for _ in $(seq "$RUNS"); do
		t=$(time_ms "$f") || { skipped=$(head -1 "$BENCH_DIR/case.err"); break; }
		times+=("$t")
	done
	if [ -n "$skipped" ]; then printf '%-32s %10s %8s  %s\n' "$name" skipped - "$skipped"; continue; fi
	m=$(printf '%s\n' "${times[@]}" | median)
	med[$name]=$m
	base=$(sed -n '1s/^-- baseline: *//p' "$f")
	ratio=""
	if [ -n "$base" ] && [ -n "${med[$base]:-}" ] && [ "${med[$base]}" -gt 0 ]; then
		ratio=$(awk -v a="$m" -v b="${med[$base]}" -v n="$base" 'BEGIN {printf "%.2fx vs %s", a / b, n}')
	fi
	printf '%-32s %10s %8s  %s\n' "$name" "$m" "$RUNS" "$ratio"
done
echo
echo "scale: $SCALE contacts; times include psql start-up (~5-10 ms)"
