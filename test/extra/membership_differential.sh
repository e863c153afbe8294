#!/usr/bin/env bash
# membership_differential: randomized differential test of segment maintenance.
#
# Thousands of random INSERT / UPDATE (also of link columns) / DELETE / TRUNCATE / COPY
# statements on random registered entities (built-in ones and a user table linked through
# encounter), plus hand changes of a static segment, against live segments that together
# use every construct of the language.  After each statement the members of every live
# immediate segment must equal a fresh outreach.evaluate() of its definition; deferred ones
# after each tick.  At the end the history (segment_change) must replay to the members.
# Environment: PGHOST, PGPORT, PGDATABASE, PRIVATE_BIN (test/run.sh).  Last line:
# "N passed, N failed".  ROUNDS, OPS, SEED tune it.
set -euo pipefail
ROUNDS=${ROUNDS:-8}   # ROUNDS x OPS statements, each round one transaction
OPS=${OPS:-250}
SEED=${SEED:-0.42}
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At)

"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
DROP SCHEMA IF EXISTS mdiff CASCADE;
CREATE EXTENSION outreach CASCADE;
CREATE SCHEMA mdiff;
SET client_min_messages = warning;
SET outreach.now = '2026-06-15 12:00:00+00';

CREATE TABLE mdiff.lab (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  encounter_id bigint NOT NULL REFERENCES outreach.encounter ON DELETE CASCADE, result text);
SELECT outreach.register_entity('mdiff.lab', link_column => 'encounter_id', name => 'lab');
CREATE TABLE mdiff.result (checks int NOT NULL DEFAULT 0, failures int NOT NULL DEFAULT 0);
INSERT INTO mdiff.result VALUES (0, 0);
CREATE TABLE mdiff.failure (id serial, label text, segment text, missing bigint[], extra bigint[]);

INSERT INTO outreach.value_set (name, code_system, code, display) VALUES
  ('diab', 'snomed', 'd1', 'diabetes 1'), ('diab', 'snomed', 'd2', 'diabetes 2');
INSERT INTO outreach.account (name, kind) VALUES ('A', 'household'), ('B', 'employer'), ('C', 'household');

CREATE FUNCTION mdiff.pick(arr text[]) RETURNS text LANGUAGE sql VOLATILE AS
  $$ SELECT arr[1 + floor(random() * cardinality(arr))::int] $$;
CREATE FUNCTION mdiff.contact_id() RETURNS bigint LANGUAGE sql VOLATILE AS
  $$ SELECT id FROM outreach.contact ORDER BY random() LIMIT 1 $$;
CREATE FUNCTION mdiff.encounter_of(p bigint) RETURNS bigint LANGUAGE sql VOLATILE AS
  $$ SELECT CASE WHEN random() < 0.7 THEN (SELECT id FROM outreach.encounter ORDER BY random() LIMIT 1) END $$;
CREATE FUNCTION mdiff.ts() RETURNS timestamptz LANGUAGE sql VOLATILE AS
  $$ SELECT timestamptz '2026-06-15 12:00+00' - (floor(random() * 1500) || ' days')::interval $$;

CREATE FUNCTION mdiff.new_contact() RETURNS void LANGUAGE sql AS $$
  INSERT INTO outreach.contact (first_name, last_name, status, gender, birthdate, email, account_id)
  VALUES (mdiff.pick('{ann,Al,bob,cy,Dora,eve}'), mdiff.pick('{Jansson,Smith,Olson,Lee}'), mdiff.pick('{active,inactive}'),
          mdiff.pick('{female,male,other,unknown}'), date '1940-01-01' + floor(random() * 30000)::int,
          CASE WHEN random() < 0.3 THEN NULL WHEN random() < 0.2 THEN '' ELSE 'x@example.org' END,
          (SELECT id FROM outreach.account ORDER BY random() LIMIT 1))
$$;
SELECT mdiff.new_contact() FROM generate_series(1, 40);

-- one random statement on a random entity
CREATE FUNCTION mdiff.random_op() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  ent text := mdiff.pick('{contact,contact,condition,condition,condition,observation,observation,encounter,immunization,procedure,account,lab,static,message,interaction}');
  r float := random();
  p bigint := mdiff.contact_id();
  sql text;
BEGIN
  IF ent = 'static' THEN
    IF r < 0.5 THEN
      PERFORM outreach.add_members('st', ARRAY(SELECT id FROM outreach.contact ORDER BY random() LIMIT 3));
    ELSE
      PERFORM outreach.remove_members('st', ARRAY(SELECT id FROM outreach.contact ORDER BY random() LIMIT 3));
    END IF;
    RETURN 'static members';
  END IF;
  IF ent = 'contact' THEN
    sql := CASE WHEN r < 0.15 THEN 'SELECT mdiff.new_contact()'
                WHEN r < 0.22 THEN format('DELETE FROM outreach.contact WHERE id = %s', p)
                WHEN r < 0.4 THEN format('UPDATE outreach.contact SET status = %L WHERE id %% 3 = %s', mdiff.pick('{active,inactive}'), floor(random() * 3))
                WHEN r < 0.55 THEN format('UPDATE outreach.contact SET account_id = (SELECT id FROM outreach.account ORDER BY random() LIMIT 1) WHERE id = %s', p)
                WHEN r < 0.7 THEN format('UPDATE outreach.contact SET email = %L, last_name = %L WHERE id = %s',
                                         mdiff.pick('{"",x@y.org}'), mdiff.pick('{Jansson,Smith,Olson}'), p)
                WHEN r < 0.85 THEN format('UPDATE outreach.contact SET birthdate = %L WHERE id = %s', date '1940-01-01' + floor(random() * 30000)::int, p)
                ELSE format('UPDATE outreach.contact SET gender = %L, first_name = %L WHERE id = %s', mdiff.pick('{female,male,other}'), mdiff.pick('{ann,bob,Al}'), p) END;
  ELSIF ent = 'condition' THEN
    sql := CASE WHEN r < 0.35 THEN format('INSERT INTO outreach.condition (patient_id, code, description, encounter_id, onset_date) SELECT %s, %L, %L, %s, %L FROM generate_series(1, %s)',
                                         p, mdiff.pick('{x,x,y,d1,d2,z}'), mdiff.pick('{Diabetes,prediabetes,flu,asthma}'), coalesce(mdiff.encounter_of(p)::text, 'NULL'), mdiff.ts()::date, 1 + floor(random() * 3))
                WHEN r < 0.45 THEN format('COPY outreach.condition (patient_id, code, description) FROM PROGRAM %L',
                                         format('printf "%s\tx\tdiabetes\n%s\ty\tflu\n"', p, mdiff.contact_id()))
                WHEN r < 0.6 THEN format('DELETE FROM outreach.condition WHERE id IN (SELECT id FROM outreach.condition ORDER BY random() LIMIT %s)', 1 + floor(random() * 3))
                WHEN r < 0.72 THEN format('UPDATE outreach.condition SET patient_id = %s WHERE id IN (SELECT id FROM outreach.condition ORDER BY random() LIMIT 2)', p)
                WHEN r < 0.8 THEN format('UPDATE outreach.condition SET encounter_id = (SELECT id FROM outreach.encounter ORDER BY random() LIMIT 1) WHERE id IN (SELECT id FROM outreach.condition ORDER BY random() LIMIT 2)')
                WHEN r < 0.9 THEN format('UPDATE outreach.condition SET code = %L WHERE patient_id = %s', mdiff.pick('{x,y,d1,z}'), p)
                WHEN r < 0.97 THEN format('UPDATE outreach.condition SET description = %L WHERE id IN (SELECT id FROM outreach.condition ORDER BY random() LIMIT 2)',
                                         mdiff.pick('{Diabetes,prediabetes,flu,asthma}'))
                ELSE 'TRUNCATE outreach.condition' END;
  ELSIF ent = 'observation' THEN
    sql := CASE WHEN r < 0.45 THEN format('INSERT INTO outreach.observation (patient_id, code, value_numeric, effective_at) VALUES (%s, %L, %s, %L)',
                                         p, mdiff.pick('{bp,a1c,wt}'), round((random() * 200)::numeric, 1), mdiff.ts())
                WHEN r < 0.6 THEN 'DELETE FROM outreach.observation WHERE id IN (SELECT id FROM outreach.observation ORDER BY random() LIMIT 1)'
                WHEN r < 0.7 THEN format('UPDATE outreach.observation SET code = %L WHERE id IN (SELECT id FROM outreach.observation ORDER BY random() LIMIT 2)',
                                         mdiff.pick('{bp,a1c,wt}'))
                WHEN r < 0.97 THEN format('UPDATE outreach.observation SET value_numeric = %s, patient_id = %s WHERE id IN (SELECT id FROM outreach.observation ORDER BY random() LIMIT 1)',
                                         round((random() * 200)::numeric, 1), p)
                ELSE 'TRUNCATE outreach.observation' END;
  ELSIF ent = 'encounter' THEN
    sql := CASE WHEN r < 0.5 THEN format('INSERT INTO outreach.encounter (patient_id, class, start_at) VALUES (%s, %L, %L)', p, mdiff.pick('{ambulatory,emergency,inpatient}'), mdiff.ts())
                WHEN r < 0.65 THEN 'DELETE FROM outreach.encounter WHERE id IN (SELECT id FROM outreach.encounter ORDER BY random() LIMIT 1)'
                WHEN r < 0.8 THEN format('UPDATE outreach.encounter SET patient_id = %s WHERE id IN (SELECT id FROM outreach.encounter ORDER BY random() LIMIT 1)', p)
                WHEN r < 0.98 THEN format('UPDATE outreach.encounter SET class = %L, start_at = %L WHERE id IN (SELECT id FROM outreach.encounter ORDER BY random() LIMIT 2)', mdiff.pick('{ambulatory,emergency}'), mdiff.ts())
                ELSE 'TRUNCATE outreach.encounter CASCADE' END;
  ELSIF ent = 'immunization' THEN
    sql := CASE WHEN r < 0.6 THEN format('INSERT INTO outreach.immunization (patient_id, code, administered_at) VALUES (%s, %L, %L)', p, mdiff.pick('{140,141,08}'), mdiff.ts())
                WHEN r < 0.8 THEN 'DELETE FROM outreach.immunization WHERE id IN (SELECT id FROM outreach.immunization ORDER BY random() LIMIT 1)'
                ELSE format('UPDATE outreach.immunization SET code = %L WHERE patient_id = %s', mdiff.pick('{140,08}'), p) END;
  ELSIF ent = 'procedure' THEN
    sql := CASE WHEN r < 0.6 THEN format('INSERT INTO outreach.procedure (patient_id, code, performed_at) VALUES (%s, %L, %L)', p, mdiff.pick('{mammo,colo}'), mdiff.ts())
                ELSE 'DELETE FROM outreach.procedure WHERE id IN (SELECT id FROM outreach.procedure ORDER BY random() LIMIT 1)' END;
  ELSIF ent = 'account' THEN
    sql := CASE WHEN r < 0.7 THEN format('UPDATE outreach.account SET kind = %L WHERE id = (SELECT id FROM outreach.account ORDER BY random() LIMIT 1)', mdiff.pick('{household,employer,other}'))
                WHEN r < 0.85 THEN format('INSERT INTO outreach.account (name, kind) VALUES (%L, %L)', 'acc' || floor(random() * 1000), mdiff.pick('{household,other}'))
                ELSE 'DELETE FROM outreach.account WHERE id = (SELECT id FROM outreach.account ORDER BY random() LIMIT 1)' END;
  ELSIF ent = 'message' THEN   -- built-in behavioural entity (55_content.sql)
    sql := CASE WHEN r < 0.5 THEN format('INSERT INTO outreach.message (contact_id, template_name, channel, message_class, status, unsubscribe_token, send_after, created_at, updated_at) '
                                         'VALUES (%s, ''t'', %L, ''marketing'', %L, md5(random()::text), %L, %L, now())',
                                         p, mdiff.pick('{email,email,sms}'), mdiff.pick('{queued,sent,delivered,delivered,bounced}'), mdiff.ts(), mdiff.ts())
                WHEN r < 0.8 THEN format('UPDATE outreach.message SET status = %L WHERE id IN (SELECT id FROM outreach.message WHERE status <> ''suppressed'' ORDER BY random() LIMIT 2)',
                                         mdiff.pick('{sent,delivered,bounced}'))
                ELSE 'DELETE FROM outreach.message WHERE id IN (SELECT id FROM outreach.message ORDER BY random() LIMIT 1)' END;
  ELSIF ent = 'interaction' THEN
    sql := CASE WHEN r < 0.6 THEN format('INSERT INTO outreach.interaction (message_id, contact_id, kind, url, occurred_at) '
                                         'SELECT id, contact_id, %L, ''https://x.example'', %L FROM outreach.message ORDER BY random() LIMIT 1',
                                         mdiff.pick('{opened,opened,clicked,bounced}'), timestamptz '2026-06-15 12:00+00' - (floor(random() * 200) || ' days')::interval)
                WHEN r < 0.8 THEN format('UPDATE outreach.interaction SET kind = %L WHERE id IN (SELECT id FROM outreach.interaction ORDER BY random() LIMIT 2)',
                                         mdiff.pick('{opened,clicked}'))
                ELSE 'DELETE FROM outreach.interaction WHERE id IN (SELECT id FROM outreach.interaction ORDER BY random() LIMIT 1)' END;
  ELSE -- lab (user table, linked through encounter)
    sql := CASE WHEN r < 0.5 THEN format('INSERT INTO mdiff.lab (encounter_id, result) SELECT id, %L FROM outreach.encounter ORDER BY random() LIMIT 1', mdiff.pick('{pos,neg}'))
                WHEN r < 0.7 THEN 'DELETE FROM mdiff.lab WHERE id IN (SELECT id FROM mdiff.lab ORDER BY random() LIMIT 1)'
                WHEN r < 0.85 THEN format('UPDATE mdiff.lab SET result = %L WHERE id IN (SELECT id FROM mdiff.lab ORDER BY random() LIMIT 2)', mdiff.pick('{pos,neg}'))
                WHEN r < 0.98 THEN 'UPDATE mdiff.lab SET encounter_id = (SELECT id FROM outreach.encounter ORDER BY random() LIMIT 1) WHERE id IN (SELECT id FROM mdiff.lab ORDER BY random() LIMIT 1)'
                ELSE 'TRUNCATE mdiff.lab' END;
  END IF;
  IF sql IS NOT NULL THEN
    EXECUTE sql;
  END IF;
  RETURN sql;
END $$;

-- compare every live segment with a fresh evaluation: outreach.evaluate() of the
-- definition (fresh=true), or, after each statement, the segment's full compiled SQL
-- (the same as evaluate(), without compiling it again each time)
CREATE FUNCTION mdiff.check(label text, deferred_too boolean, fresh boolean DEFAULT false) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  s record;
  missing bigint[];
  extra bigint[];
  q text;
BEGIN
  FOR s IN SELECT id, name, definition, time_zone FROM outreach.segment
           WHERE status = 'live' AND kind <> 'static' AND (mode = 'immediate' OR deferred_too) ORDER BY id LOOP
    q := CASE WHEN fresh THEN format('SELECT e FROM outreach.evaluate(%L::outreach.segment_query, ''UTC'') e', s.definition::text)
              ELSE outreach.compile(s.definition, false, s.time_zone) END;
    EXECUTE format('SELECT array_agg(f.contact_id ORDER BY f.contact_id) FILTER (WHERE m.contact_id IS NULL), '
                   '       array_agg(m.contact_id ORDER BY m.contact_id) FILTER (WHERE f.contact_id IS NULL) '
                   'FROM (SELECT DISTINCT q.contact_id FROM (%s) AS q(contact_id)) f '
                   'FULL JOIN (SELECT contact_id FROM outreach.segment_member WHERE segment_id = $1) m ON m.contact_id = f.contact_id '
                   'WHERE f.contact_id IS NULL OR m.contact_id IS NULL', q)
      INTO missing, extra USING s.id;
    UPDATE mdiff.result SET checks = checks + 1;
    IF missing IS NOT NULL OR extra IS NOT NULL THEN
      UPDATE mdiff.result SET failures = failures + 1;
      INSERT INTO mdiff.failure (label, segment, missing, extra) VALUES (label, s.name, missing, extra);
    END IF;
  END LOOP;
END $$;

-- segments using every construct of the language
CREATE FUNCTION mdiff.seg(n text, q text) RETURNS void LANGUAGE sql AS $$
  SELECT outreach.create_segment(n, q::outreach.segment_query, 'UTC'); SELECT outreach.go_live(n);
$$;
SELECT mdiff.seg('s_has', 'contact where status = ''active'' and has condition where description contains ''diab''');
SELECT mdiff.seg('s_in_or', 'contact where gender in (''female'', ''other'') or first_name starts with ''a''');
SELECT mdiff.seg('s_empty', 'contact where email is empty and last_name not ends with ''son''');
SELECT mdiff.seg('s_count', 'contact where count(condition where code = ''x'') >= 2');
SELECT mdiff.seg('s_max', 'contact where max(observation.value_numeric where code = ''bp'') > 140');
SELECT mdiff.seg('s_min_avg', 'contact where min(observation.value_numeric) < 30 or avg(observation.value_numeric where code = ''wt'') >= 80');
SELECT mdiff.seg('s_sum', 'contact where sum(observation.value_numeric) > 300');
SELECT mdiff.seg('s_latest', 'contact where latest(observation.value_numeric where code = ''a1c'') >= 100');
SELECT mdiff.seg('s_has_no', 'contact where has no immunization where code in (''140'', ''141'')');
SELECT mdiff.seg('s_nested', 'contact where has encounter where has condition where code = ''x''');
SELECT mdiff.seg('s_nested_up', 'contact where has condition where has encounter where class = ''emergency''');
SELECT mdiff.seg('s_account', 'contact where has account where kind = ''household''');
SELECT mdiff.seg('s_between_not', 'contact where birthdate between date ''1960-01-01'' and date ''1990-12-31'' and not (status = ''inactive'')');
SELECT mdiff.seg('s_not_between', 'contact where birthdate not between date ''1950-01-01'' and date ''2000-01-01'' and gender != ''male''');
SELECT mdiff.seg('s_age', 'contact where age >= 50');
SELECT mdiff.seg('s_within', 'contact where has encounter where start_at within last 1 year');
SELECT mdiff.seg('s_older', 'contact where has observation where effective_at older than 3 years');
SELECT mdiff.seg('s_relative', 'contact where has procedure where performed_at > now - 400 days and birthdate < today - 40 years');
SELECT mdiff.seg('s_value_set', 'contact where has condition where code in value_set ''diab''');
SELECT mdiff.seg('s_not_in', 'contact where has condition where code not in (''x'', ''y'', ''z'')');
SELECT mdiff.seg('s_via', 'contact where has condition via patient_id where (code = ''y'' and description is not empty)');
-- relevance filtering: two uses of one entity with different filters, filters on several
-- columns, a filter reading other rows (s_nested, s_nested_up, s_lab above)
SELECT mdiff.seg('s_two_uses', 'contact where has condition where code = ''z'' or count(condition where description = ''flu'') >= 2');
SELECT mdiff.seg('s_multi_col', 'contact where has condition where (code = ''d1'' and description contains ''asth'') and not has observation where (code = ''wt'' and value_numeric < 50)');
SELECT mdiff.seg('s_lab', 'contact where has encounter where has lab where result = ''pos''');
SELECT mdiff.seg('s_message', 'contact where has message where (channel = ''email'' and status = ''delivered'')');
SELECT mdiff.seg('s_opens', 'contact where count(interaction where kind = ''opened'' and occurred_at within last 90 days) >= 2');
SELECT mdiff.seg('s_never_open', 'contact where has message where status = ''delivered'' and has no interaction where kind = ''opened''');
SELECT mdiff.seg('s_click_email', 'contact where has interaction where (kind = ''clicked'' and has message where channel = ''email'')');
SELECT mdiff.seg('s_in_segment', 'contact where in segment ''s_count'' and has condition where description contains ''diab''');
SELECT mdiff.seg('c_union', 'segment ''s_has'' union segment ''s_in_or''');
SELECT mdiff.seg('c_except', 'segment ''s_max'' except segment ''s_latest''');
SELECT mdiff.seg('c_nested', '(segment ''s_has_no'' intersect segment ''s_empty'') union segment ''s_account''');
SELECT outreach.create_static_segment('st');
SELECT outreach.go_live('st');
SELECT mdiff.seg('c_static', 'segment ''st'' union segment ''s_in_segment''');
SELECT mdiff.seg('s_not_in_segment', 'contact where not in segment ''c_static'' and status = ''active''');
SELECT mdiff.seg('d_deferred', 'contact where has condition where code = ''y'' and has encounter where class = ''emergency''');
SELECT outreach.set_segment_mode('d_deferred', 'deferred');
SELECT mdiff.seg('d_compound', 'segment ''d_deferred'' union segment ''s_lab''');
SELECT mdiff.check('initial', true, true);
SQL

for round in $(seq 1 "$ROUNDS"); do
	"${PSQL[@]}" >/dev/null <<SQL
SET client_min_messages = warning;
SET outreach.now = '2026-06-15 12:00:00+00';
SELECT setseed($SEED / $round);
DO \$\$
DECLARE
  op text;
BEGIN
  FOR i IN 1..$OPS LOOP
    op := mdiff.random_op();
    PERFORM mdiff.check(format('round $round op %s: %s', i, op), false);
    IF i % 25 = 0 THEN
      PERFORM outreach.tick('2026-06-15 12:00:00+00');
      PERFORM mdiff.check(format('round $round tick after op %s', i), true, true);
    END IF;
  END LOOP;
END \$\$;
SQL
done

"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
SET outreach.now = '2026-06-15 12:00:00+00';
SELECT outreach.tick('2026-06-15 12:00:00+00');
SELECT mdiff.check('final', true, true);
-- the history replays to the current members
DO $$
DECLARE
  s record;
  bad bigint;
BEGIN
  FOR s IN SELECT id, name FROM outreach.segment ORDER BY id LOOP
    SELECT count(*) INTO bad FROM (
      (SELECT contact_id FROM (SELECT DISTINCT ON (contact_id) contact_id, change FROM outreach.segment_change
                               WHERE segment_id = s.id ORDER BY contact_id, id DESC) h WHERE change = 'added'
       EXCEPT SELECT contact_id FROM outreach.segment_member WHERE segment_id = s.id)
      UNION ALL
      (SELECT contact_id FROM outreach.segment_member WHERE segment_id = s.id
       EXCEPT SELECT contact_id FROM (SELECT DISTINCT ON (contact_id) contact_id, change FROM outreach.segment_change
                                      WHERE segment_id = s.id ORDER BY contact_id, id DESC) h WHERE change = 'added')) x;
    UPDATE mdiff.result SET checks = checks + 1;
    IF bad > 0 THEN
      UPDATE mdiff.result SET failures = failures + 1;
      INSERT INTO mdiff.failure (label, segment) VALUES ('history does not replay to the members', s.name);
    END IF;
  END LOOP;
END $$;
SQL

"${PSQL[@]}" -c "SELECT format('FAIL %s: segment %s missing %s extra %s', label, segment, missing, extra) FROM mdiff.failure ORDER BY id LIMIT 20"
"${PSQL[@]}" -c "SELECT format('%s live segments, %s changes in the history, %s members now', (SELECT count(*) FROM outreach.segment WHERE status = 'live'), (SELECT count(*) FROM outreach.segment_change), (SELECT count(*) FROM outreach.segment_member))"
result=$("${PSQL[@]}" -c "SELECT (checks - failures) || ' passed, ' || failures || ' failed' FROM mdiff.result")
"${PSQL[@]}" -c "SET client_min_messages = warning; DROP EXTENSION outreach CASCADE; DROP SCHEMA mdiff CASCADE" >/dev/null
echo "$result"
case "$result" in *" 0 failed") exit 0 ;; *) exit 1 ;; esac
