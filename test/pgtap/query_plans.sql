-- Plans of compiled segment queries on a generated population of 5000 contacts:
-- has / has no are semi- / anti-joins, and aggregates and latest(...) evaluated for the
-- whole population are one grouped pass joined to contacts, never a per-contact SubPlan.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(28);

INSERT INTO outreach.contact (id, first_name, status, birthdate)
SELECT g, 'c' || g, CASE WHEN g % 5 = 0 THEN 'inactive' ELSE 'active' END, date '1950-01-01' + (g * 7) % 20000
FROM generate_series(1, 5000) g;
-- leap-day birthdays and their neighbours, at the ages the age tests below compare with
INSERT INTO outreach.contact (id, first_name, birthdate) VALUES
  (5001, 'leap84', '1984-02-29'), (5002, 'feb28_84', '1984-02-28'), (5003, 'mar1_84', '1984-03-01'),
  (5004, 'leap80', '1980-02-29'), (5005, 'feb28_83', '1983-02-28'), (5006, 'mar1_83', '1983-03-01'),
  (5007, 'future', '2030-01-01'), (5008, 'no birthdate', NULL);
INSERT INTO outreach.encounter (id, patient_id, class, start_at)
SELECT g, 1 + (g * 31) % 5000, 'ambulatory', timestamptz '2022-01-01' + (g % 700) * interval '1 day'
FROM generate_series(1, 8000) g;
INSERT INTO outreach.condition (patient_id, code, description, onset_date, encounter_id)
SELECT 1 + (g * 7919) % 5000, (g % 50)::text, CASE WHEN g % 13 = 0 THEN 'Hypermetropia' ELSE 'Other ' || g END,
       date '2020-01-01' + g % 1500, 1 + g % 8000
FROM generate_series(1, 10000) g;
INSERT INTO outreach.observation (patient_id, code, value_numeric, effective_at)
SELECT 1 + (g * 104729) % 4000, CASE WHEN g % 2 = 0 THEN '4548-4' ELSE '8480-6' END, 100 + g % 60,
       timestamptz '2022-01-01' + (g % 800) * interval '1 day'
FROM generate_series(1, 20000) g;
ANALYZE outreach.contact;
ANALYZE outreach.encounter;
ANALYZE outreach.condition;
ANALYZE outreach.observation;
SET LOCAL outreach.now = '2024-01-01 00:00:00+00';

CREATE FUNCTION pg_temp.plan_of(q text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE p json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON, COSTS OFF) ' || outreach.compile(q::outreach.segment_query, false, 'UTC') INTO p;
  RETURN p::jsonb;
END $$;
CREATE FUNCTION pg_temp.join_types(q text) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(DISTINCT j #>> '{}' ORDER BY j #>> '{}'), '{}')
  FROM jsonb_path_query(pg_temp.plan_of(q), 'strict $.**."Join Type"') j
$$;
-- correlated subqueries show up as plan nodes whose parent relationship is SubPlan
CREATE FUNCTION pg_temp.subplans(q text) RETURNS int LANGUAGE sql AS $$
  SELECT count(*)::int FROM jsonb_path_query(pg_temp.plan_of(q), 'strict $.** ? (@."Parent Relationship" == "SubPlan")')
$$;
CREATE FUNCTION pg_temp.scans_of(q text, rel text) RETURNS int LANGUAGE sql AS $$
  SELECT count(*)::int FROM jsonb_path_query(pg_temp.plan_of(q), 'strict $.** ? (@."Relation Name" == $r)', jsonb_build_object('r', rel))
$$;

-- has: semi-join
SELECT ok('Semi' = ANY (pg_temp.join_types($$contact where status = 'active' and has condition where description contains 'Hypermetropia'$$)),
  'has plans as a semi-join');
SELECT is(pg_temp.subplans($$contact where status = 'active' and has condition where description contains 'Hypermetropia'$$), 0,
  'has: no SubPlan');
-- has no: anti-join
SELECT ok('Anti' = ANY (pg_temp.join_types($$contact where has no condition where code = '7'$$)), 'has no plans as an anti-join');
SELECT is(pg_temp.subplans($$contact where has no condition where code = '7'$$), 0, 'has no: no SubPlan');
-- nested relations stay joins
SELECT is(pg_temp.subplans($$contact where has encounter where has condition where code = '7'$$), 0, 'nested has: no SubPlan');
SELECT ok(pg_temp.join_types($$contact where has encounter where has condition where code = '7'$$) && '{Semi}',
  'nested has: semi-joins');
SELECT is(pg_temp.subplans($$contact where has encounter where has no condition$$), 0, 'has ... where has no: no SubPlan');

-- aggregates: one grouped pass, joined
SELECT is(pg_temp.subplans($$contact where count(observation where code = '4548-4' and effective_at within last 1 year) >= 2$$), 0,
  'count >= n: no SubPlan');
SELECT is(pg_temp.scans_of($$contact where count(observation where code = '4548-4') >= 2$$, 'observation'), 1,
  'count >= n: observation read once');
SELECT is(pg_temp.subplans($$contact where count(observation where code = '4548-4') < 3$$), 0, 'count < n (true for none): no SubPlan');
SELECT ok('Anti' = ANY (pg_temp.join_types($$contact where count(observation where code = '4548-4') < 3$$)),
  'count < n plans as an anti-join against the violating groups');
SELECT is(pg_temp.subplans($$contact where count(condition) = 0$$), 0, 'count = 0: no SubPlan');
SELECT is(pg_temp.subplans($$contact where max(observation.value_numeric) > 150$$), 0, 'max: no SubPlan');
SELECT is(pg_temp.subplans($$contact where avg(observation.value_numeric where code = '4548-4') < 120$$), 0, 'avg: no SubPlan');
SELECT is(pg_temp.subplans($$contact where sum(observation.value_numeric) >= 1000$$), 0, 'sum: no SubPlan');

-- latest: DISTINCT ON, joined
SELECT is(pg_temp.subplans($$contact where latest(observation.value_numeric where code = '8480-6') > 140$$), 0, 'latest: no SubPlan');
SELECT is(pg_temp.scans_of($$contact where latest(observation.value_numeric where code = '8480-6') > 140$$, 'observation'), 1,
  'latest: observation read once');

-- the population results agree with the restricted (correlated) variant
SELECT is(
  ARRAY(SELECT x FROM outreach.evaluate($$contact where count(observation where code = '4548-4') < 3$$, 'UTC') x ORDER BY 1),
  ARRAY(SELECT x FROM outreach.evaluate($$contact where count(observation where code = '4548-4') < 3$$,
                                        ARRAY(SELECT id FROM outreach.contact), 'UTC') x ORDER BY 1),
  'count < n: population and restricted evaluation agree');
SELECT is(
  ARRAY(SELECT x FROM outreach.evaluate($$contact where latest(observation.value_numeric where code = '8480-6') > 140$$, 'UTC') x ORDER BY 1),
  ARRAY(SELECT x FROM outreach.evaluate($$contact where latest(observation.value_numeric where code = '8480-6') > 140$$,
                                        ARRAY(SELECT id FROM outreach.contact), 'UTC') x ORDER BY 1),
  'latest: population and restricted evaluation agree');
-- the seed's hypermetropia segment on the population: exactly the active patients with such a condition
SELECT is(
  ARRAY(SELECT x FROM outreach.evaluate($$contact where status = 'active' and has condition where description contains 'Hypermetropia'$$, 'UTC') x ORDER BY 1),
  ARRAY(SELECT DISTINCT c.id FROM outreach.contact c JOIN outreach.condition d ON d.patient_id = c.id
        WHERE c.status = 'active' AND d.description = 'Hypermetropia' ORDER BY 1),
  'seed segment on 5000 contacts: exactly the active patients with a hypermetropia condition');

-- age compiles to birthdate ranges; on a leap day and the day after, every comparison gives
-- exactly what PostgreSQL's age() gives on the 5000 birthdates
CREATE FUNCTION pg_temp.age_agrees(op text, n int, at timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE a bigint[]; b bigint[];
BEGIN
  PERFORM set_config('outreach.now', at::text, true);
  a := ARRAY(SELECT x FROM outreach.evaluate(format('contact where age %s %s', op, n)::outreach.segment_query, 'UTC') x ORDER BY 1);
  EXECUTE format('SELECT ARRAY(SELECT id FROM outreach.contact WHERE EXTRACT(YEAR FROM age(%L::date::timestamp, birthdate::timestamp)) %s %s ORDER BY 1)',
                 (at AT TIME ZONE 'UTC')::date, op, n) INTO b;
  RETURN a = b AND cardinality(a) > 0;
END $$;
SELECT ok(pg_temp.age_agrees('>=', 40, '2024-02-29 12:00+00'), 'age >= 40 on a leap day');
SELECT ok(pg_temp.age_agrees('>', 40, '2024-02-29 12:00+00'), 'age > 40 on a leap day');
SELECT ok(pg_temp.age_agrees('<', 40, '2023-02-28 12:00+00'), 'age < 40 on Feb 28 of a common year');
SELECT ok(pg_temp.age_agrees('<=', 40, '2023-03-01 12:00+00'), 'age <= 40 on Mar 1 of a common year');
SELECT ok(pg_temp.age_agrees('=', 44, '2024-02-29 12:00+00'), 'age = 44 on a leap day');
SELECT ok(pg_temp.age_agrees('!=', 44, '2024-03-01 12:00+00'), 'age != 44 the day after');
SET LOCAL outreach.now = '2024-02-29 12:00+00';
SELECT is(ARRAY(SELECT x FROM outreach.evaluate($$contact where age between 52 and 74$$, 'UTC') x ORDER BY 1),
  ARRAY(SELECT id FROM outreach.contact WHERE EXTRACT(YEAR FROM age(date '2024-02-29', birthdate)) BETWEEN 52 AND 74 ORDER BY 1),
  'age between 52 and 74 agrees with age()');
SELECT is(ARRAY(SELECT x FROM outreach.evaluate($$contact where age not between 52 and 74$$, 'UTC') x ORDER BY 1),
  ARRAY(SELECT id FROM outreach.contact WHERE EXTRACT(YEAR FROM age(date '2024-02-29', birthdate)) NOT BETWEEN 52 AND 74 ORDER BY 1),
  'age not between 52 and 74 agrees with age()');

SELECT * FROM finish();
ROLLBACK;
