#!/usr/bin/env bash
# deadlock_load: concurrent ticks, opt-outs and clinical writes under pgbench (issue 19,
# defect 7).  Four clients for DURATION seconds run, by weight: outreach.tick() (deferred,
# immediate, compound and time-dependent segments, a live journey), single-row opt-outs
# (do_not_email, status), multi-contact statements, and inserts / updates /
# deletes of conditions and observations.  Passes when the server counted no deadlock and
# no transaction failed (pgbench --max-tries 1: a deadlock victim would be a failed
# transaction); prints "N passed, N failed" last.  bench/deadlock_load.sh runs it for
# 60 s or more; make test runs it for DURATION (default 20 s) to bound the suite's time.
# Environment: PGHOST, PGPORT, PGDATABASE, PRIVATE_BIN (test/run.sh).
set -euo pipefail
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-4}
CONTACTS=${CONTACTS:-2000}
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At)
WORK=$(mktemp -d /tmp/outreach-deadlock.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"${PSQL[@]}" >/dev/null <<SQL
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach CASCADE;
SELECT outreach.generate_population($CONTACTS, seed => 7);
SELECT outreach.create_segment('dl_immediate', 'contact where has condition where code in (''44054006'', ''x1'')');
SELECT outreach.create_segment('dl_deferred_a', 'contact where count(observation where value_numeric > 6) >= 1');
SELECT outreach.create_segment('dl_deferred_b', 'contact where not (latest(condition.code) = ''x1'') and status = ''active''');
SELECT outreach.create_segment('dl_aged', 'contact where age >= 40 and do_not_email = false');
SELECT outreach.set_segment_mode('dl_deferred_a', 'deferred');
SELECT outreach.set_segment_mode('dl_deferred_b', 'deferred');
SELECT outreach.go_live(n) FROM unnest(ARRAY['dl_immediate', 'dl_deferred_a', 'dl_deferred_b', 'dl_aged']) n;
SELECT outreach.create_segment('dl_compound', 'segment ''dl_deferred_a'' union segment ''dl_immediate''');
SELECT outreach.go_live('dl_compound');
SELECT outreach.set_segment_schedule('dl_aged', '1 minute');
SELECT outreach.create_template('dl_mail', 'email', '<p>Hello {{contact.first_name}}</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a> - {{sender.postal_address}}</p>', subject => 'Hello', sender_postal_address => '1 Clinic Way, Springfield');
SELECT outreach.create_journey('dl_journey', 'dl_compound');
SELECT outreach.add_step('dl_journey', 'mail', 'email', template => 'dl_mail', next => 'done');
SELECT outreach.add_step('dl_journey', 'done', 'end');
SELECT outreach.launch_journey('dl_journey');
SQL

n=$("${PSQL[@]}" -c "SELECT max(id) FROM outreach.contact")
cat >"$WORK/tick.sql" <<'EOF'
SELECT outreach.tick();
EOF
cat >"$WORK/optout.sql" <<EOF
\set id random(1, $n)
UPDATE outreach.contact SET do_not_email = NOT do_not_email WHERE id = :id;
EOF
cat >"$WORK/status.sql" <<EOF
\set id random(1, $n)
UPDATE outreach.contact SET status = CASE WHEN status = 'active' THEN 'inactive' ELSE 'active' END WHERE id = :id;
EOF
cat >"$WORK/multi.sql" <<EOF
\set a random(1, $n)
\set b random(1, $n)
UPDATE outreach.contact SET last_name = last_name WHERE id IN (:a, :a + 1, :a + 2);
INSERT INTO outreach.condition (patient_id, code) SELECT id, 'x1' FROM outreach.contact WHERE id IN (:b, :b + 1);
UPDATE outreach.contact SET first_name = first_name WHERE id IN (:b, :a);
EOF
cat >"$WORK/clinical.sql" <<EOF
\set id random(1, $n)
\set v random(0, 12)
INSERT INTO outreach.observation (patient_id, code, value_numeric, effective_at) SELECT :id, 'hba1c', :v, now() WHERE EXISTS (SELECT 1 FROM outreach.contact WHERE id = :id);
UPDATE outreach.condition SET code = CASE WHEN code = 'x1' THEN '44054006' ELSE 'x1' END WHERE id = (SELECT max(id) FROM outreach.condition WHERE patient_id = :id);
DELETE FROM outreach.observation WHERE id = (SELECT min(id) FROM outreach.observation WHERE patient_id = :id + 1);
EOF

before=$("${PSQL[@]}" -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
set +e
"$PRIVATE_BIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$DURATION" --max-tries=1 --failures-detailed \
	-f "$WORK/tick.sql@1" -f "$WORK/optout.sql@6" -f "$WORK/status.sql@2" -f "$WORK/multi.sql@2" -f "$WORK/clinical.sql@6" \
	>"$WORK/pgbench.out" 2>"$WORK/pgbench.err"
rc=$?
set -e
sleep 1
after=$("${PSQL[@]}" -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
deadlocks=$((after - before))
failed_tx=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/pgbench.out")
done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/pgbench.out")
ticks=$("${PSQL[@]}" -c "SELECT count(*) FROM outreach.tick_run WHERE finished_at IS NOT NULL")
echo "deadlock_load: $CLIENTS clients, ${DURATION} s: ${done_tx:-?} transactions, ${ticks} ticks, ${failed_tx:-?} failed, $deadlocks deadlocks (pgbench exit $rc)" >&2
grep -E "^(tps|latency average|  [a-z ]+ failures)" "$WORK/pgbench.out" >&2 || true
grep -m5 -i "error" "$WORK/pgbench.err" >&2 || true

# membership is still right after the load (immediate segments; deferred after a last tick)
"${PSQL[@]}" -c "SELECT outreach.tick()" >/dev/null
bad=$("${PSQL[@]}" -c "SELECT count(*) FROM outreach.segment s WHERE s.status = 'live' AND s.kind <> 'static' AND
  ARRAY(SELECT e FROM outreach.evaluate(s.definition, s.time_zone) e ORDER BY 1)
  IS DISTINCT FROM ARRAY(SELECT m.contact_id FROM outreach.segment_member m WHERE m.segment_id = s.id ORDER BY 1)")

passed=0; failed=0
check() { if [ "$1" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $2" >&2; fi; }
[ "$rc" -eq 0 ] && check ok || check bad "pgbench exited with $rc"
[ "$deadlocks" -eq 0 ] && check ok || check bad "$deadlocks deadlocks"
[ "${failed_tx:-1}" -eq 0 ] && check ok || check bad "${failed_tx:-?} failed transactions"
[ "${ticks:-0}" -gt 0 ] && check ok || check bad "no tick finished"
[ "$bad" -eq 0 ] && check ok || check bad "$bad live segments differ from a fresh evaluation"
"${PSQL[@]}" -c "SET client_min_messages = warning; DROP EXTENSION outreach CASCADE" >/dev/null
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
