#!/usr/bin/env bash
# bench/events.sh: registrations per second under CLIENTS (default 4) concurrent pgbench
# clients, with the waitlist active.  Builds outreach, installs it into a private PostgreSQL
# tree under .bench/events/ (ignored), starts a throwaway cluster there, loads CONTACTS
# contacts (default 100000) and runs each case for SECONDS (default 15) seconds:
#
#   baseline   INSERT of a registration-like row (random contact, random code) into a plain
#              table with the same indexes: the cost of a write without any event logic
#   one event  outreach.register() into one event of 500 seats and 4 sessions of 100 (half the
#              registrations ask for a session): all clients contend for one event's lock, and
#              after the first seconds nearly every registration goes on the waitlist
#   mixed      the same event: 80 % register, 20 % cancel_registration of a random live
#              registration (a cancelled seat promotes the first waitlisted that fits)
#   20 events  outreach.register() spread over 20 such events (less contention)
#
# Prints transactions per second per case and the ratio to the baseline of the same run; the
# table also goes to .bench/events/results.txt.  Nothing asserts a time.
source "$(dirname "$0")/../scripts/lib.sh"

BENCH_DIR=${BENCH_DIR:-"$OUTREACH_ROOT/.bench/events"}
CONTACTS=${CONTACTS:-100000}
CLIENTS=${CLIENTS:-4}
SECONDS_PER_CASE=${SECONDS:-15}
export OUTREACH_PORT=${OUTREACH_PORT:-54332}

cd "$OUTREACH_ROOT"
ensure_packages
if [ -d "$BENCH_DIR/root" ]; then private_bin_for "$BENCH_DIR"; stop_cluster "$BENCH_DIR"; fi
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR/scripts"
trap 'stop_cluster "$BENCH_DIR"' EXIT
build_and_install "$BENCH_DIR"
start_cluster "$BENCH_DIR" outreach_bench
export PGOPTIONS="-c outreach.now=2030-01-01T00:00:00+00 -c client_min_messages=warning"
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1)

log "loading $CONTACTS contacts and the events"
"${PSQL[@]}" <<SQL
CREATE EXTENSION outreach CASCADE;
INSERT INTO outreach.contact (external_id, first_name, email)
SELECT 'b' || i, 'B' || i, 'b' || i || '@example.org' FROM generate_series(1, $CONTACTS) i;
SELECT outreach.create_event('Bench ' || e, '2030-03-01 09:00Z', '2030-03-01 17:00Z', venue => 'Hall', capacity => 500)
  FROM generate_series(1, 20) e;
SELECT outreach.add_session('Bench ' || e, 's' || s, '2030-03-01 09:00Z'::timestamptz + (s - 1) * interval '2 hours',
                            '2030-03-01 11:00Z'::timestamptz + (s - 1) * interval '2 hours', 100)
  FROM generate_series(1, 20) e, generate_series(1, 4) s;
SELECT outreach.publish_event('Bench ' || e) FROM generate_series(1, 20) e;
CREATE TABLE plain_registration (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id bigint NOT NULL,
  contact_id bigint NOT NULL REFERENCES outreach.contact, code text NOT NULL UNIQUE, status text NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON plain_registration (contact_id);
CREATE FUNCTION bench_cancel(r bigint) RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE code text;
BEGIN
  SELECT x.registration_code INTO code FROM outreach.event_registration x
   WHERE x.event_id = 1 AND x.id >= r AND x.status IN ('registered', 'waitlisted') ORDER BY x.id LIMIT 1;
  IF code IS NULL THEN RETURN 0; END IF;
  RETURN cardinality(outreach.cancel_registration(code));
END \$\$;
ANALYZE;
SQL

cat > "$BENCH_DIR/scripts/baseline.sql" <<'EOF'
\set c random(1, :contacts)
INSERT INTO plain_registration (event_id, contact_id, code, status) VALUES (1, :c, md5(random()::text), 'registered');
EOF
cat > "$BENCH_DIR/scripts/one_event.sql" <<'EOF'
\set c random(1, :contacts)
\set s random(1, 8)
SELECT outreach.register('Bench 1', :c, CASE WHEN :s <= 4 THEN ARRAY['s' || :s] END);
EOF
cat > "$BENCH_DIR/scripts/cancel.sql" <<'EOF'
\set r random(1, :maxid)
SELECT bench_cancel(:r);
EOF
cat > "$BENCH_DIR/scripts/many_events.sql" <<'EOF'
\set c random(1, :contacts)
\set e random(1, 20)
\set s random(1, 8)
SELECT outreach.register('Bench ' || :e, :c, CASE WHEN :s <= 4 THEN ARRAY['s' || :s] END);
EOF

run() { # name, pgbench script args...
	local name=$1; shift
	local out tps
	out=$("$PRIVATE_BIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_CASE" -D contacts="$CONTACTS" \
		-D maxid="$(( CONTACTS / 4 ))" "$@" outreach_bench 2>&1) || { echo "$out" >&2; die "pgbench failed in case $name"; }
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
	echo "$tps"
}

log "case baseline"; base=$(run baseline -f "$BENCH_DIR/scripts/baseline.sql")
log "case one event"; one=$(run one_event -f "$BENCH_DIR/scripts/one_event.sql")
waitlisted=$("${PSQL[@]}" -tA -c "SELECT count(*) FILTER (WHERE status = 'waitlisted') || ' of ' || count(*) FROM outreach.event_registration WHERE event_id = 1")
log "case mixed"; mixed=$(run mixed -f "$BENCH_DIR/scripts/one_event.sql@80" -f "$BENCH_DIR/scripts/cancel.sql@20")
promoted=$("${PSQL[@]}" -tA -c "SELECT count(*) FROM outreach.event_registration WHERE event_id = 1 AND promoted_at IS NOT NULL")
log "case 20 events"; many=$(run many_events -f "$BENCH_DIR/scripts/many_events.sql")
over=$("${PSQL[@]}" -tA -c "SELECT count(*) FROM outreach.event_overview WHERE registered > capacity")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
	echo "events bench: $CONTACTS contacts, $CLIENTS clients, ${SECONDS_PER_CASE}s per case, $(nproc) CPUs"
	printf '%-52s %10s %8s\n' case tps "vs base"
	printf '%-52s %10.0f %8s\n' "baseline: plain INSERT" "$base" "1.00"
	printf '%-52s %10.0f %8s\n' "register, one event (waitlisted: $waitlisted)" "$one" "$(ratio "$one" "$base")"
	printf '%-52s %10.0f %8s\n' "80% register / 20% cancel, one event ($promoted promoted)" "$mixed" "$(ratio "$mixed" "$base")"
	printf '%-52s %10.0f %8s\n' "register, 20 events" "$many" "$(ratio "$many" "$base")"
	echo "events or sessions over capacity afterwards: $over"
} | tee "$BENCH_DIR/results.txt"
