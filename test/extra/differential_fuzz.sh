#!/usr/bin/env bash
# differential_fuzz: grammar-aware differential fuzzer of the segment language (issue 19,
# defect 1).  A generator written from the grammar builds random queries over every
# construct: and / or / not at any depth, every field predicate (on NULL-able fields too),
# has / has no with nested relations and filters, count / count(distinct) / min / max / sum /
# avg, latest(...) compared and is [not] empty, contact.field inside relation filters, set
# operations.  The population has NULLs in every field used, contacts without related rows
# and rows with NULL values, so the three-valued cases are hit.
#   1. For every query: evaluate(q) (the whole-population form) equals evaluate(q, all ids)
#      (the restricted form maintenance uses), and evaluate(q, some ids) is its subset.
#   2. Live segments on random queries (immediate and deferred) stay equal to a fresh
#      evaluation after every random statement (deferred: after each tick).
# Bounded: QUERIES queries, OPS statements, and at most FUZZ_SECONDS seconds of query checks.
# Environment: PGHOST, PGPORT, PGDATABASE, PRIVATE_BIN (test/run.sh).  Last line:
# "N passed, N failed".  SEED makes a run repeatable.
set -euo pipefail
QUERIES=${QUERIES:-3000}
SEGMENTS=${SEGMENTS:-12}
OPS=${OPS:-300}
SECONDS_MAX=${FUZZ_SECONDS:-60}
SEED=${SEED:-0.$(( (RANDOM % 9000) + 1000 ))}
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At)
echo "differential_fuzz: seed $SEED (SEED=$SEED reruns this case)" >&2

"${PSQL[@]}" >/dev/null <<SQL
SET client_min_messages = warning;
SET check_function_bodies = off;
DROP EXTENSION IF EXISTS outreach CASCADE;
DROP SCHEMA IF EXISTS dfz CASCADE;
CREATE EXTENSION outreach CASCADE;
CREATE SCHEMA dfz;
SELECT setseed($SEED);
CREATE TABLE dfz.result (checks int NOT NULL DEFAULT 0, failures int NOT NULL DEFAULT 0);
INSERT INTO dfz.result VALUES (0, 0);
CREATE TABLE dfz.failure (id serial, label text, query text, detail text);
CREATE TABLE dfz.seed (v float8);
INSERT INTO dfz.seed VALUES ($SEED);

CREATE FUNCTION dfz.pick(arr text[]) RETURNS text LANGUAGE sql VOLATILE AS
  \$\$ SELECT arr[1 + floor(random() * cardinality(arr))::int] \$\$;
CREATE FUNCTION dfz.maybe(p float8, v text) RETURNS text LANGUAGE sql VOLATILE AS
  \$\$ SELECT CASE WHEN random() < p THEN NULL ELSE v END \$\$;
CREATE FUNCTION dfz.contact_id() RETURNS bigint LANGUAGE sql VOLATILE AS
  \$\$ SELECT id FROM outreach.contact ORDER BY random() LIMIT 1 \$\$;
CREATE FUNCTION dfz.ts() RETURNS timestamptz LANGUAGE sql VOLATILE AS
  \$\$ SELECT CASE WHEN random() < 0.15 THEN NULL ELSE timestamptz '2026-06-15 12:00+00' - (floor(random() * 2500) || ' days')::interval END \$\$;

CREATE FUNCTION dfz.new_contact() RETURNS void LANGUAGE sql AS \$\$
  INSERT INTO outreach.contact (first_name, last_name, status, gender, birthdate, email, city, do_not_email)
  VALUES (dfz.maybe(0.2, dfz.pick('{ann,Al,bob,cy,Dora,eve}')), dfz.maybe(0.2, dfz.pick('{Jansson,Smith,Olson,Lee}')),
          dfz.pick('{active,inactive}'), dfz.pick('{female,male,other,unknown}'),
          CASE WHEN random() < 0.2 THEN NULL ELSE date '1940-01-01' + floor(random() * 30000)::int END,
          CASE WHEN random() < 0.3 THEN NULL WHEN random() < 0.2 THEN '' ELSE 'x@example.org' END,
          dfz.maybe(0.3, dfz.pick('{Boston,Salem,Oslo,""}')), random() < 0.3)
\$\$;
CREATE FUNCTION dfz.new_condition(p bigint) RETURNS void LANGUAGE sql AS \$\$
  INSERT INTO outreach.condition (patient_id, code, description, onset_date, clinical_status, encounter_id)
  VALUES (p, dfz.maybe(0.1, dfz.pick('{a,b,c}')), dfz.maybe(0.3, dfz.pick('{Asthma,Hypermetropia,"Diabetes x"}')),
          CASE WHEN random() < 0.2 THEN NULL ELSE date '2015-01-01' + floor(random() * 4000)::int END,
          dfz.pick('{active,resolved}'),
          CASE WHEN random() < 0.5 THEN (SELECT e.id FROM outreach.encounter e WHERE e.patient_id = p ORDER BY random() LIMIT 1) END)
\$\$;
CREATE FUNCTION dfz.new_observation(p bigint) RETURNS void LANGUAGE sql AS \$\$
  INSERT INTO outreach.observation (patient_id, code, value_numeric, value_text, effective_at, encounter_id)
  VALUES (p, dfz.pick('{hba1c,bmi,hba1c}'), CASE WHEN random() < 0.25 THEN NULL ELSE round((random() * 12)::numeric, 1) END,
          dfz.maybe(0.5, dfz.pick('{pos,neg,""}')), dfz.ts(),
          CASE WHEN random() < 0.5 THEN (SELECT e.id FROM outreach.encounter e WHERE e.patient_id = p ORDER BY random() LIMIT 1) END)
\$\$;
CREATE FUNCTION dfz.new_immunization(p bigint) RETURNS void LANGUAGE sql AS \$\$
  INSERT INTO outreach.immunization (patient_id, code, administered_at) VALUES (p, dfz.maybe(0.2, dfz.pick('{flu,x,covid}')), dfz.ts())
\$\$;
CREATE FUNCTION dfz.new_encounter(p bigint) RETURNS void LANGUAGE sql AS \$\$
  INSERT INTO outreach.encounter (patient_id, class, code, start_at) VALUES (p, dfz.pick('{ambulatory,inpatient}'), dfz.maybe(0.3, dfz.pick('{e1,e2}')), dfz.ts())
\$\$;

SELECT dfz.new_contact() FROM generate_series(1, 70);
-- a third of the contacts have no related rows at all
SELECT dfz.new_encounter(c.id) FROM outreach.contact c, generate_series(1, 2) WHERE c.id % 3 <> 0 AND random() < 0.6;
SELECT dfz.new_condition(c.id) FROM outreach.contact c, generate_series(1, 3) WHERE c.id % 3 <> 0 AND random() < 0.6;
SELECT dfz.new_observation(c.id) FROM outreach.contact c, generate_series(1, 3) WHERE c.id % 3 <> 0 AND random() < 0.6;
SELECT dfz.new_immunization(c.id) FROM outreach.contact c, generate_series(1, 2) WHERE c.id % 3 <> 1 AND random() < 0.5;

-- The grammar, as a generator.  ent: the entity in scope; depth: the remaining nesting.
CREATE FUNCTION dfz.leaf(ent text) RETURNS text LANGUAGE plpgsql VOLATILE AS \$\$
BEGIN
  CASE ent
  WHEN 'contact' THEN RETURN dfz.pick(ARRAY[
    'status = ''active''', 'gender != ''male''', 'email is empty', 'email is not empty',
    'city contains ''o''', 'city = ''Boston''', 'city not contains ''s''', 'birthdate < date ''1980-01-01''',
    'birthdate >= date ''1960-06-01''', 'age > 50', 'age <= 30', 'age between 20 and 60', 'age not between 20 and 60',
    'first_name in (''ann'', ''bob'')', 'first_name not in (''ann'')', 'birthdate is empty', 'do_not_email = true',
    'last_name starts with ''s''', 'last_name not ends with ''n''', 'birthdate within last 20000 days',
    'age at date ''2000-01-01'' >= 18', 'city is empty', 'birthdate older than 50 years',
    'city matches ''^[A-Z]''', 'city not matches ''(?i)o''', 'last_name matches ''s\$''', 'birthdate in this year',
    'birthdate not in last month', 'birthday within next 60 days', 'birthday within last 2 weeks',
    'anniversary of birthdate within next 3 months']);
  WHEN 'condition' THEN RETURN dfz.pick(ARRAY[
    'code = ''a''', 'code in (''a'', ''b'')', 'code not in (''c'')', 'onset_date > date ''2020-01-01''', 'onset_date is empty',
    'description contains ''a''', 'clinical_status = ''active''', 'clinical_status != ''resolved''',
    'onset_date > contact.birthdate + 40 years', 'onset_date within last 1000 days', 'onset_date between date ''2016-01-01'' and date ''2022-12-31''',
    'onset_date in last year', 'onset_date not in this quarter', 'anniversary of onset_date within next 90 days',
    'description matches ''(?i)^[a-m]''']);
  WHEN 'observation' THEN RETURN dfz.pick(ARRAY[
    'code = ''hba1c''', 'value_numeric > 7', 'value_numeric <= 3', 'value_numeric is empty', 'value_text = ''pos''',
    'value_text is not empty', 'effective_at > date ''2024-01-01''', 'value_numeric between 5 and 9', 'effective_at within last 900 days',
    'effective_at > contact.birthdate + 30 years', 'effective_at in this year', 'effective_at not in last quarter',
    'effective_at in this month', 'value_text matches ''^p''']);
  WHEN 'immunization' THEN RETURN dfz.pick(ARRAY[
    'code = ''flu''', 'code is empty', 'code != ''x''', 'administered_at older than 365 days', 'administered_at is empty']);
  ELSE RETURN dfz.pick(ARRAY[
    'class = ''ambulatory''', 'code = ''e1''', 'code is empty', 'start_at within last 700 days', 'class != ''inpatient''',
    'start_at in last year', 'start_at not in this week', 'anniversary of start_at within last 30 days']);
  END CASE;
END \$\$;

CREATE FUNCTION dfz.related(ent text) RETURNS text LANGUAGE sql VOLATILE AS \$\$
  SELECT CASE WHEN ent = 'contact' THEN dfz.pick('{condition,observation,immunization,encounter}')
              WHEN ent = 'encounter' THEN dfz.pick('{condition,observation}') ELSE NULL END
\$\$;

CREATE FUNCTION dfz.filter(rel text, depth int) RETURNS text LANGUAGE sql VOLATILE AS \$\$
  SELECT CASE WHEN random() < 0.35 THEN '' ELSE ' where ' || dfz.cond(rel, depth - 1) END
\$\$;

CREATE FUNCTION dfz.cond(ent text, depth int) RETURNS text LANGUAGE plpgsql VOLATILE AS \$\$
DECLARE
  r float8 := random();
  rel text := dfz.related(ent);
  cmp text := dfz.pick('{=,!=,<,<=,>,>=}');
BEGIN
  IF depth <= 0 OR r < 0.08 + 0.1 * (4 - least(depth, 4)) THEN
    RETURN dfz.leaf(ent);
  ELSIF r < 0.37 THEN
    RETURN 'not (' || dfz.cond(ent, depth - 1) || ')';
  ELSIF r < 0.47 THEN
    RETURN '(' || dfz.cond(ent, depth - 1) || ' and ' || dfz.cond(ent, depth - 1) || ')';
  ELSIF r < 0.57 THEN
    RETURN '(' || dfz.cond(ent, depth - 1) || ' or ' || dfz.cond(ent, depth - 1) || ')';
  ELSIF rel IS NULL THEN
    RETURN dfz.leaf(ent);
  ELSIF r < 0.65 THEN
    RETURN dfz.pick('{has,"has no"}') || ' ' || rel || dfz.filter(rel, depth);
  ELSIF r < 0.73 THEN
    RETURN 'count(' || rel || dfz.filter(rel, depth) || ') ' || CASE floor(random() * 4)
      WHEN 0 THEN dfz.pick('{between,"not between"}') || ' ' || floor(random() * 2)::text || ' and ' || floor(1 + random() * 3)::text
      WHEN 1 THEN dfz.pick('{in,"not in"}') || ' (' || floor(random() * 2)::text || ', ' || floor(2 + random() * 2)::text || ')'
      ELSE cmp || ' ' || floor(random() * 4)::text END;
  ELSIF r < 0.77 THEN
    RETURN 'count(distinct ' || rel || '.code' || dfz.filter(rel, depth) || ') ' || cmp || ' ' || floor(random() * 3)::text;
  ELSIF r < 0.86 THEN
    IF rel = 'observation' THEN
      RETURN dfz.pick('{min,max,sum,avg}') || '(observation.value_numeric' || dfz.filter(rel, depth) || ') ' || CASE floor(random() * 5)
        WHEN 0 THEN dfz.pick('{between,"not between"}') || ' ' || floor(random() * 6)::text || ' and ' || floor(6 + random() * 6)::text
        WHEN 1 THEN dfz.pick('{in,"not in"}') || ' (' || floor(random() * 6)::text || ', ' || floor(random() * 12)::text || ')'
        WHEN 2 THEN dfz.pick('{"is empty","is not empty"}')
        ELSE cmp || ' ' || floor(random() * 12)::text END;
    ELSIF rel = 'condition' THEN
      RETURN dfz.pick('{min,max}') || '(condition.onset_date' || dfz.filter(rel, depth) || ') ' || cmp || ' date ''2020-06-01''';
    ELSIF rel = 'immunization' THEN
      RETURN dfz.pick('{min,max}') || '(immunization.code' || dfz.filter(rel, depth) || ') ' || cmp || ' ''flu''';
    ELSE
      RETURN 'count(distinct day of encounter.start_at' || dfz.filter(rel, depth) || ') ' || cmp || ' 1';
    END IF;
  ELSE
    IF rel = 'observation' THEN
      RETURN CASE WHEN random() < 0.25 THEN 'latest(observation.value_numeric' || dfz.filter(rel, depth) || ') '
                    || dfz.pick('{"between 3 and 8","not between 4 and 6","in (5, 7)","not in (6)"}')
                  WHEN random() < 0.5 THEN 'latest(observation.value_numeric' || dfz.filter(rel, depth) || ') ' || cmp || ' 6'
                  ELSE 'latest(observation.value_text' || dfz.filter(rel, depth) || ') ' || dfz.pick('{"is empty","is not empty"}') END;
    ELSIF rel = 'condition' THEN
      RETURN 'latest(condition.code' || dfz.filter(rel, depth) || ') ' || dfz.pick('{"= ''a''","!= ''b''","is empty","is not empty","in (''a'', ''b'')","not in (''a'')","between ''a'' and ''b''","not between ''b'' and ''c''"}');
    ELSIF rel = 'immunization' THEN
      RETURN 'latest(immunization.code' || dfz.filter(rel, depth) || ') ' || dfz.pick('{"!= ''x''","= ''flu''","is empty","is not empty"}');
    ELSE
      RETURN 'latest(encounter.class' || dfz.filter(rel, depth) || ') ' || dfz.pick('{"= ''ambulatory''","is empty","is not empty"}');
    END IF;
  END IF;
END \$\$;

CREATE FUNCTION dfz.query() RETURNS text LANGUAGE sql VOLATILE AS \$\$
  SELECT CASE WHEN random() < 0.85 THEN 'contact where ' || dfz.cond('contact', 4)
              ELSE '(contact where ' || dfz.cond('contact', 2) || ') ' || dfz.pick('{union,intersect,except}')
                   || ' (contact where ' || dfz.cond('contact', 2) || ')' END
\$\$;

CREATE FUNCTION dfz.fail(label text, q text, detail text) RETURNS void LANGUAGE sql AS \$\$
  UPDATE dfz.result SET failures = failures + 1;
  INSERT INTO dfz.failure (label, query, detail) VALUES (label, q, detail);
\$\$;

-- evaluate(q) = evaluate(q, all ids); evaluate(q, some ids) = evaluate(q) restricted to them
CREATE FUNCTION dfz.check_query(q text) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
  whole bigint[];
  restricted bigint[];
  some_ids bigint[] := ARRAY(SELECT id FROM outreach.contact WHERE random() < 0.3);
  part bigint[];
BEGIN
  UPDATE dfz.result SET checks = checks + 1;
  whole := ARRAY(SELECT x FROM outreach.evaluate(q::outreach.segment_query) x ORDER BY 1);
  restricted := ARRAY(SELECT x FROM outreach.evaluate(q::outreach.segment_query, ARRAY(SELECT id FROM outreach.contact)) x ORDER BY 1);
  part := ARRAY(SELECT x FROM outreach.evaluate(q::outreach.segment_query, some_ids) x ORDER BY 1);
  IF whole IS DISTINCT FROM restricted THEN
    PERFORM dfz.fail('evaluate(q) <> evaluate(q, all ids)', q,
      format('only whole: %s; only restricted: %s',
             ARRAY(SELECT unnest(whole) EXCEPT SELECT unnest(restricted)), ARRAY(SELECT unnest(restricted) EXCEPT SELECT unnest(whole))));
  ELSIF part IS DISTINCT FROM ARRAY(SELECT x FROM unnest(whole) x WHERE x = ANY (some_ids) ORDER BY 1) THEN
    PERFORM dfz.fail('evaluate(q, some ids) <> evaluate(q) on those ids', q, NULL);
  END IF;
EXCEPTION WHEN OTHERS THEN
  PERFORM dfz.fail('error', q, SQLERRM);
END \$\$;

-- one random statement on a random entity, NULLs included
CREATE FUNCTION dfz.random_op() RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
  ent text := dfz.pick('{contact,contact,condition,observation,observation,immunization,encounter}');
  r float8 := random();
  p bigint := dfz.contact_id();
BEGIN
  IF ent = 'contact' THEN
    IF r < 0.2 THEN PERFORM dfz.new_contact();
    ELSIF r < 0.3 THEN DELETE FROM outreach.contact WHERE id = p;
    ELSIF r < 0.55 THEN UPDATE outreach.contact SET birthdate = CASE WHEN random() < 0.3 THEN NULL ELSE date '1940-01-01' + floor(random() * 30000)::int END WHERE id = p;
    ELSIF r < 0.8 THEN UPDATE outreach.contact SET city = dfz.maybe(0.4, dfz.pick('{Boston,Oslo}')), email = dfz.maybe(0.4, '') WHERE id = p;
    ELSE UPDATE outreach.contact SET status = dfz.pick('{active,inactive}'), gender = dfz.pick('{male,female}') WHERE id % 4 = floor(random() * 4);
    END IF;
  ELSIF r < 0.45 THEN
    EXECUTE format('SELECT dfz.new_%s(%s)', ent, p);
  ELSIF r < 0.7 THEN
    EXECUTE format('DELETE FROM outreach.%I WHERE id = (SELECT id FROM outreach.%I ORDER BY random() LIMIT 1)', ent, ent);
  ELSIF ent = 'observation' THEN
    UPDATE outreach.observation SET value_numeric = CASE WHEN random() < 0.4 THEN NULL ELSE round((random() * 12)::numeric, 1) END,
      value_text = dfz.maybe(0.5, '') WHERE id = (SELECT id FROM outreach.observation ORDER BY random() LIMIT 1);
  ELSIF ent = 'condition' THEN
    UPDATE outreach.condition SET code = dfz.maybe(0.3, 'b'), onset_date = NULL WHERE patient_id = p;
  ELSIF ent = 'immunization' THEN
    UPDATE outreach.immunization SET code = dfz.maybe(0.5, 'x'), patient_id = dfz.contact_id() WHERE id = (SELECT id FROM outreach.immunization ORDER BY random() LIMIT 1);
  ELSE
    UPDATE outreach.encounter SET class = dfz.pick('{ambulatory,inpatient}'), code = dfz.maybe(0.5, 'e2') WHERE patient_id = p;
  END IF;
END \$\$;

CREATE FUNCTION dfz.check_segments(deferred boolean) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
  s record;
  fresh bigint[];
  have bigint[];
BEGIN
  FOR s IN SELECT id, name, definition FROM outreach.segment WHERE status = 'live' AND (mode = 'deferred') = deferred ORDER BY id LOOP
    UPDATE dfz.result SET checks = checks + 1;
    fresh := ARRAY(SELECT x FROM outreach.evaluate(s.definition) x ORDER BY 1);
    have := ARRAY(SELECT contact_id FROM outreach.segment_member WHERE segment_id = s.id ORDER BY 1);
    IF fresh IS DISTINCT FROM have THEN
      PERFORM dfz.fail('live members <> fresh evaluation', s.definition::text,
        format('missing %s extra %s', ARRAY(SELECT unnest(fresh) EXCEPT SELECT unnest(have)), ARRAY(SELECT unnest(have) EXCEPT SELECT unnest(fresh))));
    END IF;
  END LOOP;
END \$\$;
SQL

# 1. queries, bounded in time
start=$(date +%s)
done_q=0
while [ "$done_q" -lt "$QUERIES" ] && [ $(( $(date +%s) - start )) -lt "$SECONDS_MAX" ]; do
	"${PSQL[@]}" -c "SET outreach.now = '2026-06-15 12:00:00+00'; SELECT setseed((SELECT v FROM dfz.seed) / 2 + $done_q / ($QUERIES * 4.0)); SELECT dfz.check_query(dfz.query()) FROM generate_series(1, 50)" >/dev/null
	done_q=$((done_q + 50))
done
echo "differential_fuzz: $done_q queries in $(( $(date +%s) - start )) s" >&2

# 2. live segments on random queries after random statements
"${PSQL[@]}" >/dev/null <<SQL
SET client_min_messages = warning;
SET outreach.now = '2026-06-15 12:00:00+00';
SELECT setseed((SELECT v FROM dfz.seed) / 3);
DO \$\$
DECLARE
  q text;
  k int := 0;
BEGIN
  WHILE k < $SEGMENTS LOOP
    q := dfz.query();
    BEGIN
      PERFORM outreach.create_segment('s' || k, q::outreach.segment_query);
      IF k % 3 = 2 THEN PERFORM outreach.set_segment_mode('s' || k, 'deferred'); END IF;
      PERFORM outreach.go_live('s' || k);
      k := k + 1;
    EXCEPTION WHEN OTHERS THEN
      PERFORM dfz.fail('segment on a random query', q, SQLERRM);
      k := k + 1;
    END;
  END LOOP;
END \$\$;
SELECT dfz.check_segments(false);
DO \$\$
BEGIN
  FOR i IN 1..$OPS LOOP
    PERFORM dfz.random_op();
    PERFORM dfz.check_segments(false);
    IF i % 20 = 0 THEN
      PERFORM outreach.tick(timestamptz '2026-06-15 12:00:00+00');
      PERFORM dfz.check_segments(true);
    END IF;
  END LOOP;
END \$\$;
SQL

"${PSQL[@]}" -c "SELECT format('FAIL %s: %s -- %s', label, query, detail) FROM dfz.failure ORDER BY id LIMIT 10"
result=$("${PSQL[@]}" -c "SELECT (checks - failures) || ' passed, ' || failures || ' failed' FROM dfz.result")
[ -n "${KEEP:-}" ] || "${PSQL[@]}" -c "SET client_min_messages = warning; DROP EXTENSION outreach CASCADE; DROP SCHEMA dfz CASCADE" >/dev/null
echo "$result"
case "$result" in *" 0 failed") exit 0 ;; *) exit 1 ;; esac
