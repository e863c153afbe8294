-- Semantics of the 0.3 forms of the segment language (issue 17 item 4) on the small
-- population of query_semantics.sql: each query evaluated for everyone and restricted to
-- every contact (the variant the membership maintenance uses); both must give the ids.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT no_plan();

-- The clock: Friday 2024-03-01 12:00 UTC (2024 is a leap year).
SET LOCAL outreach.now = '2024-03-01 12:00:00+00';

INSERT INTO outreach.account (id, name, kind, parent_id) VALUES
  (1, 'Smith household', 'household', NULL),
  (2, 'Acme', 'employer', NULL),
  (3, 'Smith junior', 'household', 1);

--  id | first  | status   | gender | birthdate  | email         | city        | channel | account
INSERT INTO outreach.contact (id, first_name, status, gender, birthdate, email, city, preferred_channel, do_not_email, account_id, deceased_at) VALUES
  (1, 'Alice', 'active',   'female', '1970-05-10', 'alice@x.org', 'Boston',      'email', false, 1,    NULL),
  (2, 'Bob',   'active',   'male',   '1980-02-29', '',            'boston',      'sms',   true,  2,    NULL),
  (3, 'Carol', 'inactive', 'female', '1990-03-01', NULL,          NULL,          NULL,    false, NULL, NULL),
  (4, 'Dan',   'active',   'male',   NULL,         'dan@x.org',   E'A%B_C\\D',   'email', false, 3,    '2024-02-01 00:00+00'),
  (5, 'Eve',   'active',   'female', '2000-03-02', 'eve@x.org',   'AxBxC',       NULL,    false, NULL, NULL),
  (6, 'Fay',   'active',   'other',  '1960-01-01', 'FAY@X.ORG',   'Zürich',      'letter', false, NULL, NULL);

INSERT INTO outreach.condition (id, patient_id, code, description, onset_date) VALUES
  (1, 1, '193570009', 'Hypermetropia (disorder)', '2020-01-01'),
  (2, 3, '193570009', 'Hypermetropia', '2023-06-01'),          -- inactive contact
  (3, 2, '44054006', 'Diabetes mellitus type 2', '2024-02-29'),
  (4, 5, '38341003', 'Hypertension', '2024-03-01'),
  (5, 6, '123', 'hypermetropia, left eye', NULL);

INSERT INTO outreach.encounter (id, patient_id, class, description, start_at) VALUES
  (1, 1, 'ambulatory', 'Checkup', '2024-02-29 23:30:00+00'),      -- Feb 29 in UTC, Feb 29 18:30 in New York
  (2, 2, 'wellness',   'Wellness', '2024-03-01 03:00:00+00'),     -- Mar 1 in UTC, Feb 29 22:00 in New York
  (3, 5, 'emergency',  'ER', '2023-03-01 12:00:00+00'),           -- exactly one year ago
  (4, 6, 'ambulatory', 'Future', '2024-03-05 09:00:00+00');
UPDATE outreach.condition SET encounter_id = 3 WHERE id = 4;

-- HbA1c (4548-4) and systolic blood pressure (8480-6)
INSERT INTO outreach.observation (id, patient_id, code, value_numeric, effective_at) VALUES
  (1, 1, '4548-4', 6.5,  '2023-06-01 10:00+00'),
  (2, 1, '4548-4', 7.0,  '2024-01-10 10:00+00'),
  (3, 2, '4548-4', 8.0,  '2023-01-10 10:00+00'),   -- older than a year
  (4, 2, '4548-4', 7.5,  '2024-02-10 10:00+00'),
  (5, 5, '4548-4', 5.0,  '2024-02-20 10:00+00'),
  (6, 1, '8480-6', 150,  '2023-01-01 10:00+00'),   -- old high reading
  (7, 1, '8480-6', 120,  '2024-01-01 10:00+00'),   -- latest is normal
  (8, 2, '8480-6', 130,  '2023-01-01 10:00+00'),
  (9, 2, '8480-6', 145,  '2024-02-01 10:00+00'),   -- latest is high
  (10, 5, '8480-6', 141, NULL),                    -- no time: ranks after dated rows
  (11, 5, '8480-6', 139, '2020-01-01 10:00+00'),
  (12, 6, '8480-6', 140, '2024-02-01 10:00+00');   -- exactly 140: not over

INSERT INTO outreach.procedure (id, patient_id, code, description, performed_at) VALUES
  (1, 1, '24623002', 'Screening mammography', '2023-01-15 10:00+00'),
  (2, 5, '24623002', 'Screening mammography', '2020-01-15 10:00+00');

INSERT INTO outreach.value_set (name, code_system, code) VALUES
  ('mammography', 'SNOMED', '24623002'),
  ('eye', 'SNOMED', '193570009'),
  ('eye', 'SNOMED', '123')
ON CONFLICT DO NOTHING;  -- the extension ships a 'mammography' list (75_value_sets.sql) holding this code

-- live segment 'vip' = {1, 6}; draft segment 'draft' (never referenced here)
INSERT INTO outreach.segment (id, name, kind, status, definition) VALUES (901, 'vip', 'static', 'live', NULL);
INSERT INTO outreach.segment_member (segment_id, contact_id) VALUES (901, 1), (901, 6);

CREATE FUNCTION pg_temp.ev(q text, tz text DEFAULT 'UTC') RETURNS bigint[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM outreach.evaluate(q::outreach.segment_query, tz) x
$$;
CREATE FUNCTION pg_temp.ev_restricted(q text, tz text DEFAULT 'UTC') RETURNS bigint[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(x ORDER BY x), '{}')
  FROM outreach.evaluate(q::outreach.segment_query, ARRAY(SELECT id FROM outreach.contact), tz) x
$$;
CREATE FUNCTION pg_temp.check(q text, expected bigint[], descr text, tz text DEFAULT 'UTC') RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
  RETURN NEXT is(pg_temp.ev(q, tz), expected, descr || ': ' || q);
  RETURN NEXT is(pg_temp.ev_restricted(q, tz), expected, descr || ' (restricted): ' || q);
END $$;


-- between, in (...), is [not] empty on aggregates; not of each
SELECT pg_temp.check('contact where count(observation) between 2 and 3', '{5}', 'count between');
SELECT pg_temp.check('contact where count(observation) not between 2 and 3', '{1,2,3,4,6}', 'count not between: no rows is 0');
SELECT pg_temp.check($$contact where max(observation.value_numeric where code = '4548-4') between 7 and 8$$, '{1,2}', 'max between, bounds included');
SELECT pg_temp.check($$contact where max(observation.value_numeric where code = '4548-4') not between 7 and 8$$, '{5}', 'max not between: no values is unknown');
SELECT pg_temp.check($$contact where not (max(observation.value_numeric where code = '4548-4') between 7 and 8)$$, '{5}', 'not (max between) agrees with not between');
SELECT pg_temp.check($$contact where max(observation.value_numeric where code = '8480-6') in (140, 145)$$, '{2,6}', 'max in list');
SELECT pg_temp.check($$contact where max(observation.value_numeric where code = '8480-6') not in (140, 145)$$, '{1,5}', 'max not in list');
SELECT pg_temp.check($$contact where not (max(observation.value_numeric where code = '8480-6') in (140, 145))$$, '{1,5}', 'not (max in list)');
SELECT pg_temp.check($$contact where count(encounter) in (0)$$, '{3,4}', 'count in (0) includes contacts without rows');
SELECT pg_temp.check($$contact where avg(observation.value_numeric where code = '4548-4') is empty$$, '{3,4,6}', 'avg is empty: no values');
SELECT pg_temp.check($$contact where min(observation.value_numeric where code = '4548-4') is not empty$$, '{1,2,5}', 'min is not empty');
SELECT pg_temp.check($$contact where not (sum(observation.value_numeric where code = '4548-4') is empty)$$, '{1,2,5}', 'not (sum is empty)');
SELECT throws_ok($$SELECT outreach.compile('contact where count(encounter) is empty')$$, '42804', NULL, 'count(...) is never empty');

-- the same on latest
SELECT pg_temp.check($$contact where latest(observation.value_numeric where code = '8480-6') between 140 and 145$$, '{2,6}', 'latest between');
SELECT pg_temp.check($$contact where latest(observation.value_numeric where code = '8480-6') not between 140 and 145$$, '{1,5}', 'latest not between');
SELECT pg_temp.check($$contact where latest(observation.code) in ('8480-6')$$, '{6}', 'latest in list');
SELECT pg_temp.check($$contact where latest(observation.code) not in ('8480-6')$$, '{1,2,5}', 'latest not in list: no row is unknown');
SELECT pg_temp.check($$contact where not (latest(observation.code) in ('8480-6'))$$, '{1,2,5}', 'not (latest in list)');

-- matches: a PostgreSQL regular expression, case-sensitive unless (?i)
SELECT pg_temp.check($$contact where city matches '^B'$$, '{1}', 'matches is case-sensitive');
SELECT pg_temp.check($$contact where city matches '(?i)^b'$$, '{1,2}', 'matches (?i) ignores case');
SELECT pg_temp.check($$contact where city not matches '^B'$$, '{2,4,5,6}', 'not matches: NULL is unknown');
SELECT pg_temp.check($$contact where not (city matches '^B')$$, '{2,4,5,6}', 'not (matches) agrees');
SELECT pg_temp.check($$contact where city matches '^A.B.C'$$, '{4,5}', 'matches: . is any character');
SELECT pg_temp.check($$contact where city matches 'ü'$$, '{6}', 'matches beyond ASCII');
SELECT throws_ok($$SELECT 'contact where city matches ''(abc'''::outreach.segment_query$$, '2201B', NULL, 'an invalid regular expression is refused when the query is read');
SELECT throws_ok($$SELECT ('contact where city matches ''' || repeat('a', 1001) || '''')::outreach.segment_query$$, '54000', NULL, 'a regular expression longer than 1000 characters is refused');

-- calendar periods (now: Friday 2024-03-01 12:00 UTC, 07:00 in New York)
SELECT pg_temp.check('contact where has encounter where start_at in this month', '{2,6}', 'this month');
SELECT pg_temp.check('contact where has encounter where start_at in last month', '{1}', 'last month');
SELECT pg_temp.check('contact where has encounter where start_at in last month', '{1,2}', 'last month in New York', 'America/New_York');
SELECT pg_temp.check('contact where has encounter where start_at in this month', '{6}', 'this month in New York', 'America/New_York');
SELECT pg_temp.check('contact where has encounter where start_at in this week', '{1,2}', 'this week starts on Monday');
SELECT pg_temp.check('contact where has encounter where start_at in next week', '{6}', 'next week');
SELECT pg_temp.check('contact where has encounter where start_at in last year', '{5}', 'last year');
SELECT pg_temp.check('contact where has encounter where start_at in this quarter', '{1,2,6}', 'this quarter');
SELECT pg_temp.check('contact where has encounter where start_at in last quarter', '{}', 'last quarter');
SELECT pg_temp.check('contact where has encounter where start_at not in this month', '{1,5}', 'not in this month');
SELECT pg_temp.check('contact where has condition where onset_date in last month', '{2}', 'a date in last month (29 February)');
SELECT pg_temp.check('contact where has condition where onset_date in this month', '{5}', 'a date in this month');
SELECT pg_temp.check('contact where has condition where onset_date in last year', '{3}', 'a date in last year');
SELECT pg_temp.check('contact where has condition where onset_date not in this year', '{1,3}', 'not in this year: NULL is unknown');
SELECT pg_temp.check('contact where birthdate not in this year', '{1,2,3,5,6}', 'not in this year on contact');
SELECT pg_temp.check('contact where not (birthdate in this year)', '{1,2,3,5,6}', 'not (in this year) agrees');

-- birthdays and anniversaries (today 2024-03-01; Bob born 29 February 1980)
SELECT pg_temp.check('contact where birthday within next 0 days', '{3}', 'birthday today');
SELECT pg_temp.check('contact where birthday within next 1 day', '{3,5}', 'birthday today or tomorrow');
SELECT pg_temp.check('contact where birthday within last 1 day', '{2,3}', '29 February in a leap year');
SELECT pg_temp.check('contact where birthday within next 3 months', '{1,3,5}', 'birthday within 3 months');
SELECT pg_temp.check('contact where not (birthday within next 1 day)', '{1,2,6}', 'not birthday: no birthdate is unknown');
SELECT pg_temp.check('contact where anniversary of birthdate within next 1 day', '{3,5}', 'anniversary of birthdate is birthday');
SELECT pg_temp.check('contact where has encounter where anniversary of start_at within next 0 days', '{5}', 'anniversary of a timestamp; the day itself is not an anniversary');
SET LOCAL outreach.now = '2023-02-28 12:00:00+00';
SELECT pg_temp.check('contact where birthday within next 0 days', '{}', '28 February 2023: not yet the birthday of 29 February');
SET LOCAL outreach.now = '2023-03-01 12:00:00+00';
SELECT pg_temp.check('contact where birthday within next 0 days', '{2,3}', '1 March 2023: 29 February birthday in a common year, as age turns');
SET LOCAL outreach.now = '2024-03-01 12:00:00+00';
SELECT throws_ok($$SELECT outreach.compile('contact where birthday within next 3 hours')$$, '22023', NULL, 'an anniversary counts days');
SELECT throws_ok($$SELECT outreach.compile('contact where anniversary of city within next 3 days')$$, '42804', NULL, 'an anniversary needs a date');

SELECT ok((SELECT time_dependent FROM outreach.query_dependencies('contact where birthdate in this year')), 'periods depend on the clock');
SELECT ok((SELECT time_dependent FROM outreach.query_dependencies('contact where birthday within next 2 days')), 'birthdays depend on the clock');

SELECT * FROM finish();
ROLLBACK;
