#!/usr/bin/env bash
# test/extra/events_random.sh: randomized register / cancel / check-in traffic from 4
# concurrent clients on 2 events with 6 sessions (some with their own capacity), one
# transaction per operation.  Every client checks after its operations that no event or
# session holds more seats than its capacity; at the end the seat counters, event_overview
# and the waitlist are compared with an independent recount of the registration rows, and
# no waitlisted registration may fit in a free seat (every freed seat was handed on).
# EVENTS_OPS (default 1500) operations per client.  Last line: "N passed, N failed".
set -euo pipefail
PSQL=("${PRIVATE_BIN:+$PRIVATE_BIN/}psql" -X -q -v ON_ERROR_STOP=1)
OPS=${EVENTS_OPS:-1500}
CLIENTS=4
passed=0; failed=0
check() { # name expected actual
	if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok - $1"; else failed=$((failed + 1)); echo "not ok - $1: expected '$2', got '$3'"; fi
}
q() { "${PSQL[@]}" -tA -c "$1"; }

"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach CASCADE;
DROP TABLE IF EXISTS ev_violation, ev_ops;
CREATE TABLE ev_violation (client int, op int, what text);
CREATE TABLE ev_ops (client int, kind text, outcome text, n int);
INSERT INTO outreach.contact (external_id, first_name, email)
SELECT 'r' || i, 'R' || i, 'r' || i || '@example.org' FROM generate_series(1, 400) i;
SELECT outreach.create_event('Flu A', '2030-10-06 17:00Z', '2030-10-06 23:00Z', venue => 'Hall A', capacity => 60);
SELECT outreach.create_event('Flu B', '2030-10-06 17:00Z', '2030-10-06 23:00Z', venue => 'Hall B');
SELECT outreach.add_session('Flu A', s, '2030-10-06 17:00Z', '2030-10-06 18:00Z', c)
  FROM (VALUES ('a1', 15), ('a2', 25), ('a3', NULL)) v(s, c);
SELECT outreach.add_session('Flu B', s, '2030-10-06 17:00Z', '2030-10-06 18:00Z', c)
  FROM (VALUES ('b1', 10), ('b2', 20), ('b3', 5)) v(s, c);
SELECT outreach.publish_event('Flu A'), outreach.publish_event('Flu B');

-- over capacity anywhere, as this client sees it now
CREATE FUNCTION ev_over() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(x, ', ') FROM (
    SELECT e.name AS x FROM outreach.event e
     WHERE e.capacity < (SELECT count(*) FROM outreach.event_registration r WHERE r.event_id = e.id AND r.status IN ('registered', 'attended', 'no_show'))
    UNION ALL
    SELECT s.name FROM outreach.event_session s
     WHERE s.capacity < (SELECT count(*) FROM outreach.event_registration_session rs JOIN outreach.event_registration r ON r.id = rs.registration_id
                          WHERE rs.session_id = s.id AND r.status IN ('registered', 'attended', 'no_show'))) v
$$;

CREATE PROCEDURE ev_client(client int, ops int) LANGUAGE plpgsql AS $$
DECLARE
  i int;
  k float8;
  ev text;
  sess text[];
  code text;
  who bigint;
  outcome text;
  over text;
BEGIN
  PERFORM setseed(client / 10.0);
  FOR i IN 1 .. ops LOOP
    PERFORM set_config('outreach.now', '2030-10-06 09:00Z', false);
    k := random();
    ev := CASE WHEN random() < 0.5 THEN 'Flu A' ELSE 'Flu B' END;
    BEGIN
      IF k < 0.55 THEN
        who := 1 + floor(random() * 400)::bigint;
        sess := ARRAY(SELECT s.name FROM outreach.event_session s JOIN outreach.event e ON e.id = s.event_id
                       WHERE e.name = ev AND random() < 0.4);
        code := outreach.register(ev, who, sess);
        outcome := (SELECT r.status FROM outreach.event_registration r WHERE r.registration_code = code);
        INSERT INTO ev_ops VALUES (client, 'register', outcome, 1);
      ELSIF k < 0.85 THEN
        SELECT r.registration_code INTO code FROM outreach.event_registration r
         WHERE r.status IN ('registered', 'waitlisted') ORDER BY random() LIMIT 1;
        IF code IS NOT NULL THEN
          INSERT INTO ev_ops VALUES (client, 'cancel', 'promoted', cardinality(outreach.cancel_registration(code)));
        END IF;
      ELSE
        SELECT r.registration_code INTO code FROM outreach.event_registration r
         WHERE r.status IN ('registered', 'attended') ORDER BY random() LIMIT 1;
        IF code IS NOT NULL THEN
          PERFORM outreach.check_in(code);
          INSERT INTO ev_ops VALUES (client, 'check_in', 'ok', 1);
        END IF;
      END IF;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
      -- another client cancelled or checked in the registration picked meanwhile
      INSERT INTO ev_ops VALUES (client, 'lost race', SQLERRM, 1);
    END;
    COMMIT;
    IF i % 25 = 0 THEN
      over := ev_over();
      IF over IS NOT NULL THEN
        INSERT INTO ev_violation VALUES (client, i, over);
      END IF;
      COMMIT;
    END IF;
  END LOOP;
END $$;
SQL

pids=()
for c in $(seq 1 $CLIENTS); do
	"${PSQL[@]}" -c "SET client_min_messages = warning" -c "CALL ev_client($c, $OPS)" &
	pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
check "every client finished without an unexpected error" 0 "$rc"

check "operations done" t "$(q "SELECT count(*) >= $((CLIENTS * OPS / 2)) FROM ev_ops")"
check "some registrations were waitlisted" t "$(q "SELECT count(*) > 0 FROM ev_ops WHERE kind = 'register' AND outcome = 'waitlisted'")"
check "some cancellations promoted someone" t "$(q "SELECT sum(n) > 0 FROM ev_ops WHERE kind = 'cancel'")"
check "capacity never exceeded (checked by every client during the run)" 0 "$(q "SELECT count(*) FROM ev_violation")"
check "capacity not exceeded at the end" "" "$(q "SELECT ev_over()")"
check "event seat counters equal a recount" 0 "$(q "
  SELECT count(*) FROM outreach.event e JOIN outreach.event_seats s ON s.event_id = e.id AND s.session_id = 0
  WHERE s.taken <> (SELECT count(*) FROM outreach.event_registration r WHERE r.event_id = e.id AND r.status IN ('registered', 'attended', 'no_show'))")"
check "session seat counters equal a recount" 0 "$(q "
  SELECT count(*) FROM outreach.event_session x JOIN outreach.event_seats s ON s.session_id = x.id
  WHERE s.taken <> (SELECT count(*) FROM outreach.event_registration_session rs JOIN outreach.event_registration r ON r.id = rs.registration_id
                     WHERE rs.session_id = x.id AND r.status IN ('registered', 'attended', 'no_show'))")"
check "waitlist counters equal a recount" 0 "$(q "
  SELECT count(*) FROM outreach.event e JOIN outreach.event_seats s ON s.event_id = e.id AND s.session_id = 0
  WHERE s.waitlisted <> (SELECT count(*) FROM outreach.event_registration r WHERE r.event_id = e.id AND r.status = 'waitlisted')")"
check "event_overview equals a recount" 0 "$(q "
  WITH recount AS (
    SELECT r.event_id, NULL::bigint AS session_id, r.status FROM outreach.event_registration r
    UNION ALL
    SELECT r.event_id, rs.session_id, r.status FROM outreach.event_registration r JOIN outreach.event_registration_session rs ON rs.registration_id = r.id)
  SELECT count(*) FROM outreach.event_overview o
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.status IN ('registered', 'attended', 'no_show')) AS registered,
           count(*) FILTER (WHERE x.status = 'waitlisted') AS waitlisted,
           count(*) FILTER (WHERE x.status = 'cancelled') AS cancelled, count(*) FILTER (WHERE x.status = 'attended') AS attended
      FROM recount x WHERE x.event_id = o.event_id AND x.session_id IS NOT DISTINCT FROM o.session_id) c
  WHERE (o.registered, o.waitlisted, o.cancelled, o.attended) IS DISTINCT FROM (c.registered, c.waitlisted, c.cancelled, c.attended)")"
check "no waitlisted registration fits a free seat" 0 "$(q "
  SELECT count(*) FROM outreach.event_registration r JOIN outreach.event e ON e.id = r.event_id
  WHERE r.status = 'waitlisted'
    AND outreach._seats_free(e, ARRAY(SELECT rs.session_id FROM outreach.event_registration_session rs WHERE rs.registration_id = r.id))")"
check "one live registration per event and contact" 0 "$(q "
  SELECT count(*) FROM (SELECT event_id, contact_id FROM outreach.event_registration WHERE status <> 'cancelled'
                        GROUP BY 1, 2 HAVING count(*) > 1) d")"
check "every code is unique and well formed" t "$(q "
  SELECT count(DISTINCT registration_code) = count(*) AND bool_and(registration_code ~ '^FLU-[2-9A-HJ-NP-Z]{6}$')
  FROM outreach.event_registration")"
check "attended registrations have a check-in time" 0 "$(q "SELECT count(*) FROM outreach.event_registration WHERE (status = 'attended') <> (checked_in_at IS NOT NULL)")"
# after the events: the tick turns every seat holder that did not come into a no-show
q "SELECT outreach.tick('2030-10-07 00:00Z')" >/dev/null
check "the tick marks the no-shows" 0 "$(q "SELECT count(*) FROM outreach.event_registration WHERE status = 'registered'")"
check "seat counters unchanged by no-shows" 0 "$(q "
  SELECT count(*) FROM outreach.event e JOIN outreach.event_seats s ON s.event_id = e.id AND s.session_id = 0
  WHERE s.taken <> (SELECT count(*) FROM outreach.event_registration r WHERE r.event_id = e.id AND r.status IN ('attended', 'no_show'))")"
echo "registrations: $(q "SELECT string_agg(status || '=' || n, ' ' ORDER BY status) FROM (SELECT status, count(*) n FROM outreach.event_registration GROUP BY 1) s")"
"${PSQL[@]}" -c "SET client_min_messages = warning; DROP PROCEDURE ev_client; DROP FUNCTION ev_over; DROP TABLE ev_violation, ev_ops; DROP EXTENSION outreach CASCADE" >/dev/null
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
