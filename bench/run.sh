#!/usr/bin/env bash
# bench/run.sh: `make bench`.  Builds, installs into a private PostgreSQL tree under .bench/
# (ignored), starts a fresh throwaway cluster there, loads SCALE contacts (default 100000,
# ~10 clinical rows each) with outreach.generate_population, runs the cases of issue 7 REPEAT
# times each (default 5) and prints one table of medians and ratios measured in this run.
# See bench/README.md.  Nothing here asserts a time.
source "$(dirname "$0")/../scripts/lib.sh"

BENCH_DIR=${BENCH_DIR:-"$OUTREACH_ROOT/.bench"}
SCALE=${SCALE:-100000}
SEED=${SEED:-42}
REPEAT=${REPEAT:-${RUNS:-5}}
BULK_REPEAT=${BULK_REPEAT:-$REPEAT}   # runs of each bulk COPY (long at 1M rows)
WRITES=${WRITES:-200}                 # single-row statements per measurement
BULK=${BULK:-$(( SCALE < 1000000 ? SCALE : 1000000 ))}   # rows of the bulk COPY
JOURNEY=${JOURNEY:-$SCALE}         # contacts enrolled in the journey case
export OUTREACH_PORT=${OUTREACH_PORT:-54331}

cd "$OUTREACH_ROOT"
ensure_packages
CASES=${CASES:-"5 1 4 2 8 6"}   # which cases to run (2 includes 3 and the bulk-load memory)
want() { case " $CASES " in *" $1 "*) return 0;; *) return 1;; esac; }
# REUSE=1: keep the cluster and population of an earlier run in BENCH_DIR (e.g. to resume
# the full run after a failure without generating 1M contacts again).
reuse=""
if [ -n "${REUSE:-}" ] && [ -f "$BENCH_DIR/data/PG_VERSION" ] && [ -f "$BENCH_DIR/population.txt" ]; then reuse=1; fi
if [ -d "$BENCH_DIR/root" ]; then private_bin_for "$BENCH_DIR"; stop_cluster "$BENCH_DIR"; fi
if [ -z "$reuse" ]; then rm -rf "$BENCH_DIR"; fi
mkdir -p "$BENCH_DIR"
trap 'stop_cluster "$BENCH_DIR"' EXIT
if [ -z "$reuse" ]; then build_and_install "$BENCH_DIR"; else private_bin_for "$BENCH_DIR"; fi
start_cluster "$BENCH_DIR" outreach_bench
chmod 777 "$BENCH_DIR/sock"
mkdir -p "$BENCH_DIR/files"; chown postgres "$BENCH_DIR/files"
# The fixed clock of every case: the generator's reference date.
export PGOPTIONS="-c outreach.now=2026-01-01T00:00:00+00 -c client_min_messages=warning"
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v repeat="$REPEAT" -v writes="$WRITES")
sql() { "${PSQL[@]}" -tA -c "$1"; }

T0=$(date +%s)
if [ -z "$reuse" ]; then
	"${PSQL[@]}" -c "CREATE EXTENSION outreach CASCADE" >/dev/null
	log "generating $SCALE contacts (seed $SEED)"
	gen_start=$(date +%s%N)
	sql "SELECT string_agg(table_name || ' ' || rows, ', ') FROM outreach.generate_population($SCALE, $SEED)" >"$BENCH_DIR/population.txt"
	gen_ms=$(( ($(date +%s%N) - gen_start) / 1000000 ))
	echo "$gen_ms" >"$BENCH_DIR/gen_ms.txt"
	sql "VACUUM ANALYZE" >/dev/null
	"${PSQL[@]}" -f bench/lib.sql >/dev/null
else
	gen_ms=$(cat "$BENCH_DIR/gen_ms.txt" 2>/dev/null || echo 0)
	log "reusing the cluster and population in $BENCH_DIR"
fi
log "population: $(cat "$BENCH_DIR/population.txt") in ${gen_ms} ms"
CLINICAL=$(sql "SELECT (SELECT count(*) FROM outreach.encounter) + (SELECT count(*) FROM outreach.condition) + (SELECT count(*) FROM outreach.observation) + (SELECT count(*) FROM outreach.procedure) + (SELECT count(*) FROM outreach.immunization) + (SELECT count(*) FROM outreach.medication) + (SELECT count(*) FROM outreach.allergy)")

# run_sampled NAME FILE: run a psql script while sampling its backend's memory every 10 ms;
# records "7 memory: NAME" with the peak anonymous RSS (private memory: work_mem, caches,
# tuplestores; shared buffers excluded) and VmHWM in the note.
run_sampled() {
	local name=$1 file=$2 pidf="$BENCH_DIR/backend.pid" pid="" peak=0 hwm=0 rss h
	rm -f "$pidf"
	{ echo "SELECT pg_backend_pid() \\g (tuples_only=on format=unaligned) $pidf"; echo "SELECT pg_sleep(0.05);"; cat "$file"; } >"$BENCH_DIR/sampled.sql"
	chmod 644 "$BENCH_DIR/sampled.sql"
	"${PSQL[@]}" -f "$BENCH_DIR/sampled.sql" >/dev/null &
	local ps=$!
	while [ -z "$pid" ] && kill -0 "$ps" 2>/dev/null; do pid=$( (cat "$pidf" 2>/dev/null || true) | tr -dc 0-9); sleep 0.01; done
	local base
	base=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
	while kill -0 "$ps" 2>/dev/null; do
		rss=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		[ "${rss:-0}" -gt "$peak" ] && peak=$rss
		h=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		[ -n "$h" ] && hwm=$h
		sleep 0.01
	done
	wait "$ps" || die "case $name failed"
	sql "SELECT bench.record('7 memory: $name', ARRAY[$peak / 1024.0], ARRAY[${base:-0} / 1024.0], 'backend at start',
	     unit => 'MB', note => 'peak RssAnon of the backend (VmHWM incl. shared buffers ' || round($hwm / 1024.0) || ' MB)')" >/dev/null
}

if want 5; then
log "case 5: membership latency"
"${PSQL[@]}" <<-SQL >/dev/null
	SELECT outreach.create_segment('bench latency', \$\$contact where has condition where code = 'bench-latency'\$\$);
	SELECT outreach.go_live('bench latency');
SQL
# (procedures return INOUT values as a row: capture them through psql variables)
lat() {
	local deferred=$1
	"${PSQL[@]}" -tA <<-SQL
		CALL bench.latency('bench latency', $deferred, 20, '{}')
	SQL
}
imm=$(lat false); sql "SELECT outreach.set_segment_mode('bench latency', 'deferred')" >/dev/null; def=$(lat true)
sql "SELECT outreach.stop('bench latency')" >/dev/null
sql "SELECT bench.record('5 latency: commit -> visible, immediate', '$imm'::float8[], target => 'visible at commit', note => 'INSERT + COMMIT of one condition; the membership is visible when the commit returns')" >/dev/null
sql "SELECT bench.record('5 latency: commit -> visible, deferred', '$def'::float8[], '$imm'::float8[], 'immediate', note => 'INSERT + COMMIT + outreach.tick(); in production add the wait for pg_cron (at most 60 s)')" >/dev/null

fi
if want 1; then
log "case 1: full evaluation vs hand-written SQL"
"${PSQL[@]}" -f bench/eval.sql >/dev/null
fi

if want 4; then
log "case 4 + 7: go-live of the HEDIS segment"
cat >"$BENCH_DIR/golive.sql" <<-'SQL'
	SELECT outreach.create_segment('bench hedis', $q$contact where gender = 'female' and age between 52 and 74
	       and has encounter where start_at within last 1 year
	       and has no procedure where (code in value_set 'mammography' and performed_at within last 27 months)
	       and has no procedure where code in value_set 'bilateral mastectomy'$q$);
	CREATE TEMP TABLE golive (ms float8, hand float8);
	DO $$
	DECLARE a float8; b float8;
	BEGIN
	  FOR i IN 1..current_setting('bench.repeat')::int LOOP
	    a := bench.time_once($s$SELECT outreach.go_live('bench hedis')$s$);
	    PERFORM outreach.stop('bench hedis');
	    b := bench.time_once($h$CREATE TEMP TABLE hand_hedis AS SELECT c.id FROM outreach.contact c
	     WHERE c.gender = 'female'
	       AND c.birthdate > date '2026-01-01' - interval '75 years' AND c.birthdate <= date '2026-01-01' - interval '52 years'
	       AND EXISTS (SELECT FROM outreach.encounter e WHERE e.patient_id = c.id
	                   AND e.start_at BETWEEN timestamptz '2025-01-01 00:00+00' AND timestamptz '2026-01-01 00:00+00')
	       AND NOT EXISTS (SELECT FROM outreach.procedure p JOIN outreach.value_set v ON v.code = p.code AND v.name = 'mammography'
	                       WHERE p.patient_id = c.id
	                         AND p.performed_at BETWEEN timestamptz '2023-10-01 00:00+00' AND timestamptz '2026-01-01 00:00+00')
	       AND NOT EXISTS (SELECT FROM outreach.procedure p JOIN outreach.value_set v ON v.code = p.code AND v.name = 'bilateral mastectomy'
	                       WHERE p.patient_id = c.id)$h$);
	    DROP TABLE hand_hedis;
	    INSERT INTO golive VALUES (a, b);
	  END LOOP;
	END $$;
	SELECT bench.record('4 go-live: HEDIS gap segment', array_agg(ms), array_agg(hand), 'hand-written SQL into a table',
	                    note => 'go_live = evaluate + write members and history') FROM golive;
SQL
PGOPTIONS="$PGOPTIONS -c bench.repeat=$REPEAT" run_sampled "go-live (HEDIS segment)" "$BENCH_DIR/golive.sql"
fi

if want 2; then
log "case 2 + 3: single-row writes and bulk load"
sql "COPY (SELECT 1 + (g::bigint * 7919) % (SELECT max(id) FROM outreach.contact), '44054006', 'Diabetes mellitus type 2 (disorder)', date '2016-01-01' + g % 3650
          FROM generate_series(1, $BULK) g) TO '$BENCH_DIR/files/bulk.copy'" >/dev/null
writes() {  # writes N: single-row writes with N live segments, REPEAT times
	local n=$1
	"${PSQL[@]}" <<-SQL >/dev/null
		SELECT bench.live_segments($n);
		CREATE TEMP TABLE w AS SELECT t.tbl, bench.single_writes(t.tbl, :writes) AS ms
		  FROM generate_series(1, :repeat) r, (VALUES ('condition'), ('observation')) t(tbl);
		INSERT INTO bench.writes (segments, tbl, op, ms)
		  SELECT $n, tbl, (ARRAY['INSERT','UPDATE','DELETE'])[i], array_agg(ms[i]) FROM w, generate_series(1, 3) i GROUP BY tbl, i;
	SQL
}
sql "DROP TABLE IF EXISTS bench.writes, bench.bulk; DROP MATERIALIZED VIEW IF EXISTS bench.mv20" >/dev/null
sql "CREATE TABLE bench.writes (segments int, tbl text, op text, ms float8[])" >/dev/null
bulk() {  # bulk MODE: COPY with the current live segments; MODE none|immediate|deferred
	local mode=$1 tick=false
	[ "$mode" = deferred ] && tick=true
	cat >"$BENCH_DIR/bulk.sql" <<-SQL
		CREATE TEMP TABLE b AS SELECT bench.bulk_copy('$BENCH_DIR/files/bulk.copy', $tick) AS ms FROM generate_series(1, $BULK_REPEAT);
		INSERT INTO bench.bulk SELECT '$mode', array_agg(ms[1]), array_agg(ms[2]) FROM b;
	SQL
	run_sampled "bulk load COPY $BULK rows, $mode" "$BENCH_DIR/bulk.sql"
}
sql "CREATE TABLE bench.bulk (mode text, copy_ms float8[], tick_ms float8[])" >/dev/null
sql "DROP TABLE IF EXISTS bench.bulk_floor" >/dev/null

writes 0
bulk none
writes 1
log "going live: 20 segments"
writes 20
bulk immediate
"${PSQL[@]}" <<-SQL >/dev/null
	CREATE TABLE bench.bulk_floor AS SELECT f[1]::bigint AS changes, ARRAY[f[2]] AS floor_ms, $BULK AS rows FROM bench.bulk_floor('$BENCH_DIR/files/bulk.copy') f;
SQL
sql "SELECT outreach.set_segment_mode(name, 'deferred') FROM outreach.segment WHERE name LIKE 'bench ___'" >/dev/null
bulk deferred
sql "SELECT outreach.set_segment_mode(name, 'immediate') FROM outreach.segment WHERE name LIKE 'bench ___'" >/dev/null
log "refresh of the 20 segments as materialized views"
"${PSQL[@]}" <<-'SQL' >/dev/null
	DO $$ BEGIN
	  EXECUTE 'CREATE MATERIALIZED VIEW bench.mv20 AS ' ||
	    (SELECT string_agg(format('SELECT %s AS segment, contact_id FROM (%s) s%s', k, outreach.compile(bench.segment_query(k)::outreach.segment_query), k),
	                       E'\nUNION ALL\n' ORDER BY k) FROM generate_series(1, 20) k);
	END $$;
	-- without JIT, as outreach runs its compiled SQL: the baseline is not slowed down for us
	SET jit = off;
	CREATE TEMP TABLE r AS SELECT bench.time_once('REFRESH MATERIALIZED VIEW bench.mv20') AS ms FROM generate_series(1, least(3, :repeat));
	INSERT INTO bench.writes SELECT 20, 'refresh', 'REFRESH', array_agg(ms) FROM r;
SQL
log "going live: 100 segments"
writes 100
fi

if want 8; then
log "case 8: concurrent writes, 4 clients, 20 segments"
MAXC=$(sql "SELECT max(id) FROM outreach.contact")
cat >"$BENCH_DIR/files/concurrent.sql" <<-SQL
	\set pid random(1, $MAXC)
	BEGIN;
	INSERT INTO outreach.condition (patient_id, code, description, onset_date) VALUES (:pid, '44054006', 'Diabetes mellitus type 2 (disorder)', date '2025-06-01') RETURNING id AS cid \gset
	UPDATE outreach.condition SET clinical_status = 'resolved', abatement_date = date '2025-09-01' WHERE id = :cid;
	INSERT INTO outreach.observation (patient_id, code, description, value_numeric, unit, effective_at) VALUES (:pid, '8480-6', 'Systolic blood pressure', 150, 'mm[Hg]', timestamptz '2025-12-01 10:00+00');
	DELETE FROM outreach.condition WHERE id = :cid;
	END;
SQL
chmod 644 "$BENCH_DIR/files/concurrent.sql"
CONC_SECONDS=${CONC_SECONDS:-20}
# concurrent LABEL ISOLATION: pgbench, 4 clients; appends "tps failed retried deadlocks"
concurrent() {
	local label=$1 iso=$2 out="$BENCH_DIR/pgbench-$1-${2/ /-}.out" d0 d1
	d0=$(sql "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
	PGOPTIONS="$PGOPTIONS -c default_transaction_isolation=${iso/ /\\ }" \
		"$PRIVATE_BIN/pgbench" -n -c 4 -j 2 -T "$CONC_SECONDS" --max-tries=50 --failures-detailed \
		-f "$BENCH_DIR/files/concurrent.sql" >"$out" 2>"$out.err" || true
	sleep 1
	d1=$(sql "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
	local tps failed retried
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -1)
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	retried=$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' "$out")
	sql "INSERT INTO bench.conc VALUES ('$label', '$iso', ${tps:-0}, ${failed:-0}, ${retried:-0}, $((d1 - d0)))" >/dev/null
}
sql "DROP TABLE IF EXISTS bench.conc; CREATE TABLE bench.conc (label text, iso text, tps float8, failed bigint, retried bigint, deadlocks bigint)" >/dev/null
sql "SELECT count(outreach.stop(name)) FROM outreach.segment WHERE name LIKE 'bench ___' AND status = 'live'" >/dev/null
for iso in "read committed" serializable; do concurrent none "$iso"; done
sql "SELECT count(outreach.go_live(name)) FROM outreach.segment WHERE name LIKE 'bench ___' AND name <= 'bench 020' AND status <> 'live'" >/dev/null
sql "SELECT bench.live_segments(20)" >/dev/null
for iso in "read committed" serializable; do concurrent segments "$iso"; done
"${PSQL[@]}" <<-'SQL' >/dev/null
	SELECT bench.record('8 concurrent writes, 4 clients, 20 segments, ' || s.iso, ARRAY[s.tps], ARRAY[n.tps], 'the same without live segments',
	                    '>= 50% of the throughput, no deadlock', min_ratio => 0.5, unit => 'tps',
	                    note => format('%s deadlocks, %s failed, %s retried (serialization) with segments; %s deadlocks, %s failed without',
	                                   s.deadlocks, s.failed, s.retried, n.deadlocks, n.failed))
	FROM bench.conc s JOIN bench.conc n ON n.label = 'none' AND n.iso = s.iso WHERE s.label = 'segments';
SQL
fi

if want 6; then
log "case 6: journeys and messaging ($JOURNEY enrolled contacts)"
# Setup, render rate, and the baselines: plain INSERT ... SELECT of JOURNEY rows into the
# same tables (same indexes and triggers), removed again before the measured runs.
"${PSQL[@]}" -v journey="$JOURNEY" <<-'SQL' >/dev/null
	DELETE FROM outreach.quiet_hours;
	-- one tick does the whole audience (the 50 s default budget is for a per-minute pg_cron tick)
	UPDATE outreach.messaging_settings SET journey_tick_budget = '1 hour';
	SELECT outreach.create_template(name => 'bench email', channel => 'email',
	  subject => 'Your check-up, {{contact.first_name | default: ''friend''}}',
	  body => '<p>Hello {{contact.first_name | default: ''there''}} {{contact.last_name}},</p><p>{{contact.account.name}} invites you to a check-up in {{contact.city}}.</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a> · {{sender.postal_address}}</p>',
	  sender_postal_address => 'Bench Clinic, 1 Main St, Springfield, IL 62701');
	CREATE TABLE bench.j (name text, ms float8, n bigint, base_ms float8, base_n bigint);
	INSERT INTO bench.j SELECT 'render', bench.time_once($$SELECT count(p.*) FROM outreach.contact c, LATERAL outreach.preview_template('bench email', c.id) p WHERE c.id <= 10000$$), 10000;
	SELECT outreach.create_segment('bench audience', format('contact where id <= %s', :journey)::outreach.segment_query);
	SELECT outreach.go_live('bench audience');
	SELECT outreach.create_journey('bench journey', 'bench audience');
	SELECT outreach.add_step('bench journey', 'invite', 'email', template => 'bench email', next => 'done');
	SELECT outreach.add_step('bench journey', 'done', 'end');
	CREATE TABLE bench.base (name text, ms float8, n bigint);
	INSERT INTO bench.base SELECT 'message', bench.time_once(format($b$
	  INSERT INTO outreach.message (contact_id, template_id, template_name, channel, message_class, journey_id, enrollment_id, step_id,
	                                status, address, subject, body, unsubscribe_token, send_after, created_at, updated_at)
	  SELECT c.id, t.id, t.name, 'email', 'marketing', NULL, -c.id, -1, 'queued', c.email, 'Your check-up, ' || c.first_name,
	         '<p>Hello ' || c.first_name || ' ' || c.last_name || ',</p><p>Clinic invites you to a check-up in ' || c.city || '.</p><p><a href="https://outreach.invalid/unsubscribe?token=' || md5(c.id::text) || '">Unsubscribe</a> · Bench Clinic, 1 Main St, Springfield, IL 62701</p>',
	         md5(c.id::text), '2026-01-01 12:00+00', '2026-01-01 12:00+00', '2026-01-01 12:00+00'
	    FROM outreach.contact c, outreach.template t WHERE t.name = 'bench email' AND c.id <= %s$b$, :journey)), :journey;
	DELETE FROM outreach.message;
	INSERT INTO bench.base SELECT 'enrollment', bench.time_once(format($b$
	  INSERT INTO outreach.enrollment (journey_id, contact_id, current_step, step_entered_at, next_run_at, entered_at)
	  SELECT j.id, c.id, 'invite', '2026-01-01', NULL, '2026-01-01' FROM outreach.contact c, outreach.journey j
	   WHERE j.name = 'bench journey' AND c.id <= %s$b$, :journey)), :journey;
	DELETE FROM outreach.enrollment;
SQL
sql "VACUUM ANALYZE outreach.message" >/dev/null; sql "VACUUM ANALYZE outreach.enrollment" >/dev/null
sql "INSERT INTO bench.j SELECT 'launch', bench.time_once(\$\$SELECT outreach.launch_journey('bench journey')\$\$), count(*), NULL, NULL FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id AND s.name = 'bench audience'" >/dev/null
cat >"$BENCH_DIR/tick.sql" <<-'SQL'
	INSERT INTO bench.j SELECT 'tick', bench.time_once($$SELECT outreach.tick_journeys(timestamptz '2026-01-01 12:00+00', 1000)$$), 0;
	UPDATE bench.j SET n = (SELECT count(*) FROM outreach.message WHERE status = 'queued'),
	                   base_n = (SELECT count(*) FROM outreach.message) WHERE name = 'tick';
SQL
run_sampled "journey tick ($JOURNEY enrollments)" "$BENCH_DIR/tick.sql"
"${PSQL[@]}" <<-'SQL' >/dev/null
	SET outreach.now = '2026-01-02T00:00:00+00';
	-- one worker, batches of 1,000: claim, then report the 1,000 outcomes in one call (server
	-- side, so no client round trip is counted)
	DO $$
	DECLARE t0 timestamptz := clock_timestamp(); ids bigint[]; n bigint := 0;
	BEGIN
	  LOOP
	    SELECT array_agg(m.id) INTO ids FROM outreach.claim_messages('bench-worker', 1000) m;
	    EXIT WHEN ids IS NULL;
	    PERFORM outreach.report_deliveries(ids, array_fill('sent'::text, ARRAY[cardinality(ids)]), worker => 'bench-worker');
	    n := n + cardinality(ids);
	    COMMIT;                               -- one transaction per round trip, as a worker does
	  END LOOP;
	  INSERT INTO bench.j VALUES ('claim', extract(epoch FROM clock_timestamp() - t0) * 1000, n);
	END $$;
	-- rates, each beside the plain INSERT ... SELECT of the same number of rows (rows per s);
	-- ratio = rate / baseline rate, so the time ratio is its inverse
	SELECT bench.record('6 journeys: template renders (preview_template)', ARRAY[n / (ms / 1000)], unit => 'per s',
	                    note => format('%s in %s ms', n, round(ms::numeric))) FROM bench.j WHERE name = 'render';
	SELECT bench.record('6 journeys: enrollments at launch', ARRAY[j.n / (j.ms / 1000)], ARRAY[b.n / (b.ms / 1000)],
	                    'INSERT ... SELECT of as many enrollment rows', '>= 100,000/s', unit => 'per s',
	                    note => format('%s in %s ms; time %sx the INSERT', j.n, round(j.ms::numeric), round((j.ms / j.n / (b.ms / b.n))::numeric, 2)))
	  FROM bench.j j, bench.base b WHERE j.name = 'launch' AND b.name = 'enrollment';
	SELECT bench.record('6 journeys: messages queued by the tick', ARRAY[j.n / (j.ms / 1000)], ARRAY[b.n / (b.ms / 1000)],
	                    'INSERT ... SELECT of as many message rows', '>= 20,000/s and <= 3x the INSERT time', min_ratio => 1.0 / 3,
	                    unit => 'per s',
	                    note => format('%s queued (%s rows) in %s ms; time per row %sx the INSERT', j.n, j.base_n, round(j.ms::numeric),
	                                   round((j.ms / j.base_n / (b.ms / b.n))::numeric, 2)))
	  FROM bench.j j, bench.base b WHERE j.name = 'tick' AND b.name = 'message';
	SELECT bench.record('6 journeys: claim + report (sent), one worker, batches of 1,000', ARRAY[j.n / (j.ms / 1000)], ARRAY[b.n / (b.ms / 1000)],
	                    'INSERT ... SELECT of as many message rows', '>= 50,000/s', unit => 'per s',
	                    note => format('%s in %s ms; time %sx the INSERT', j.n, round(j.ms::numeric), round((j.ms / j.n / (b.ms / b.n))::numeric, 2)))
	  FROM bench.j j, bench.base b WHERE j.name = 'claim' AND b.name = 'message';
SQL

fi

# Results of cases 2 and 3 against their baselines.
want 2 && "${PSQL[@]}" <<-'SQL' >/dev/null
	SELECT bench.record(format('2 write %s %s, %s segments', w.op, w.tbl, w.segments), w.ms, z.ms, '0 segments',
	                    CASE w.segments WHEN 20 THEN '<= 3x (stretch 1.5x)' WHEN 100 THEN '<= 10x' END,
	                    CASE w.segments WHEN 20 THEN 3 WHEN 100 THEN 10 END,
	                    note => 'mean per statement')
	FROM bench.writes w JOIN bench.writes z ON z.segments = 0 AND z.tbl = w.tbl AND z.op = w.op
	WHERE w.segments > 0 ORDER BY w.tbl, w.op, w.segments;
	SELECT bench.record(format('2 write %s %s, 0 segments', w.op, w.tbl), w.ms, note => 'mean per statement')
	FROM bench.writes w WHERE w.segments = 0;
	SELECT bench.record('2 REFRESH MATERIALIZED VIEW of the 20 segments vs one ' || w.op || ' ' || w.tbl,
	                    r.ms, w.ms, w.op || ' ' || w.tbl || ', 20 live segments', '>= 1000x', min_ratio => 1000)
	FROM bench.writes r, bench.writes w WHERE r.tbl = 'refresh' AND w.segments = 20 AND w.tbl <> 'refresh';
	SELECT bench.record('3 bulk COPY condition, immediate (20 segments)', i.copy_ms, n.copy_ms, 'no live segment', '<= 2x', 2)
	FROM bench.bulk i, bench.bulk n WHERE i.mode = 'immediate' AND n.mode = 'none';
	SELECT bench.record('3 bulk COPY condition, deferred (20 segments)', d.copy_ms, n.copy_ms, 'no live segment', '<= 1.2x', 1.2)
	FROM bench.bulk d, bench.bulk n WHERE d.mode = 'deferred' AND n.mode = 'none';
	SELECT bench.record('3 bulk: tick catching up after the deferred COPY', d.tick_ms, n.copy_ms, 'COPY, no live segment')
	FROM bench.bulk d, bench.bulk n WHERE d.mode = 'deferred' AND n.mode = 'none';
	SELECT bench.record('3 bulk COPY condition, none', n.copy_ms) FROM bench.bulk n WHERE n.mode = 'none';
	-- what the immediate COPY must write besides the rows: one segment_member and one
	-- segment_change row per membership change; the same rows by plain INSERT ... SELECT
	-- after a plain COPY is the floor of the immediate COPY on this machine
	SELECT bench.record('3 bulk COPY condition, immediate (20 segments) vs COPY + its membership rows by INSERT',
	                    i.copy_ms, f.floor_ms, 'COPY + INSERT ... SELECT of the same membership rows',
	                    note => format('%s membership changes for %s rows', f.changes, f.rows))
	FROM bench.bulk i, bench.bulk n, bench.bulk_floor f WHERE i.mode = 'immediate' AND n.mode = 'none';
SQL

# The table.
{
	echo "outreach benchmark: $SCALE contacts, $CLINICAL clinical rows, bulk $BULK rows, journey $JOURNEY contacts,"
	echo "REPEAT=$REPEAT runs per case (medians; bulk COPY $BULK_REPEAT), $WRITES statements per single-row measurement."
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo) RAM, $(sql 'SHOW server_version' | cut -d' ' -f1)," \
	     "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); population generated in $(( gen_ms / 1000 )) s; total $(( $(date +%s) - T0 )) s"
	echo
	"$PRIVATE_BIN/psql" -X -P footer=off <<-'SQL'
		SELECT name AS "case",
		       round(bench.median(runs)::numeric, CASE WHEN bench.median(runs) < 10 THEN 3 ELSE 1 END) || ' ' || unit AS median,
		       round(bench.median(base)::numeric, CASE WHEN bench.median(base) < 10 THEN 3 ELSE 1 END) || coalesce(' (' || base_name || ')', '') AS "baseline median",
		       round((bench.median(runs) / nullif(bench.median(base), 0))::numeric, 2) || 'x' AS ratio,
		       target,
		       CASE WHEN max_ratio IS NOT NULL THEN CASE WHEN bench.median(runs) / nullif(bench.median(base), 0) <= max_ratio THEN 'yes' ELSE 'NO' END
		            WHEN min_ratio IS NOT NULL THEN CASE WHEN bench.median(runs) / nullif(bench.median(base), 0) >= min_ratio THEN 'yes' ELSE 'NO' END
		       END AS "met?",
		       note
		FROM bench.result ORDER BY name;
	SQL
} | tee "$BENCH_DIR/results.txt"
