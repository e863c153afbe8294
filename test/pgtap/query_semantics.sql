-- Semantics of every segment-language construct on a small hand-built population.
-- Each query is evaluated for everyone and restricted to every contact (the variant the
-- membership maintenance uses); both must give the expected ids.
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

-- the seed exercise
SELECT pg_temp.check($$contact where status = 'active' and has condition where description contains 'Hypermetropia'$$,
  '{1,6}', 'seed hypermetropia segment: active contacts with such a condition');

-- comparisons
SELECT pg_temp.check($$contact$$, '{1,2,3,4,5,6}', 'contact without where is everyone');
SELECT pg_temp.check($$contact where status = 'inactive'$$, '{3}', '= on an enumerated field');
SELECT pg_temp.check($$contact where first_name = 'alice'$$, '{}', '= on text is exact');
SELECT pg_temp.check($$contact where first_name = 'Alice'$$, '{1}', '= on text');
SELECT pg_temp.check($$contact where preferred_channel != 'email'$$, '{2,6}', '!= does not match NULL');
SELECT pg_temp.check($$contact where preferred_channel <> 'email'$$, '{2,6}', '<> is !=');
SELECT pg_temp.check($$contact where first_name < 'Carol'$$, '{1,2}', '< on text');
SELECT pg_temp.check($$contact where do_not_email = true$$, '{2}', '= on boolean');
SELECT pg_temp.check($$contact where do_not_email != true$$, '{1,3,4,5,6}', '!= on boolean');
SELECT pg_temp.check($$contact where birthdate < '1975-01-01'$$, '{1,6}', '< on a date with a string');
SELECT pg_temp.check($$contact where birthdate <= date '1980-02-29'$$, '{1,2,6}', '<= on a date, leap day');
SELECT pg_temp.check($$contact where birthdate >= '1990-03-01'$$, '{3,5}', '>= on a date');
SELECT pg_temp.check($$contact where deceased_at < timestamp '2024-02-01 00:00:01'$$, '{4}', '< on a timestamptz');
SELECT pg_temp.check($$contact where deceased_at = date '2024-02-01'$$, '{4}', 'a date against a timestamptz is midnight in the time zone');
SELECT pg_temp.check($$contact where deceased_at = date '2024-02-01'$$, '{}', 'a date against a timestamptz, New York midnight', 'America/New_York');
SELECT pg_temp.check($$contact where id > 4$$, '{5,6}', '> on a number');
SELECT pg_temp.check($$contact where id >= -1$$, '{1,2,3,4,5,6}', 'negative numbers');

-- NULL matches nothing but is empty
SELECT pg_temp.check($$contact where not (city = 'Boston')$$, '{2,4,5,6}', 'not of a comparison with NULL is not true');
SELECT pg_temp.check($$contact where city not in ('Boston')$$, '{2,4,5,6}', 'not in does not match NULL');
SELECT pg_temp.check($$contact where birthdate not between '1975-01-01' and '1995-01-01'$$, '{1,5,6}', 'not between does not match NULL');

-- is empty: NULL, or '' for text
SELECT pg_temp.check($$contact where email is empty$$, '{2,3}', 'is empty: NULL and empty string');
SELECT pg_temp.check($$contact where email is not empty$$, '{1,4,5,6}', 'is not empty');
SELECT pg_temp.check($$contact where birthdate is empty$$, '{4}', 'is empty on a date');
SELECT pg_temp.check($$contact where age is empty$$, '{4}', 'age is empty when birthdate is');
SELECT pg_temp.check($$contact where deceased_at is not empty$$, '{4}', 'is not empty on a timestamptz');

-- text operators: case-insensitive, metacharacters literal
SELECT pg_temp.check($$contact where city contains 'BOS'$$, '{1,2}', 'contains is case-insensitive');
SELECT pg_temp.check($$contact where email contains 'x.org'$$, '{1,4,5,6}', 'contains, mixed case data');
SELECT pg_temp.check($$contact where city contains '%'$$, '{4}', 'contains % is literal');
SELECT pg_temp.check($$contact where city contains '_'$$, '{4}', 'contains _ is literal');
SELECT pg_temp.check($$contact where city contains '\'$$, '{4}', 'contains backslash is literal');
SELECT pg_temp.check($$contact where city contains 'b_c'$$, '{4}', 'b_c does not match bxc');
SELECT pg_temp.check($$contact where city starts with 'a%'$$, '{4}', 'starts with, % literal');
SELECT pg_temp.check($$contact where city ends with 'c\d'$$, '{4}', 'ends with, backslash literal');
SELECT pg_temp.check($$contact where city ends with 'TON'$$, '{1,2}', 'ends with is case-insensitive');
SELECT pg_temp.check($$contact where city not contains 'bos'$$, '{4,5,6}', 'not contains does not match NULL');
SELECT pg_temp.check($$contact where city contains ''$$, '{1,2,4,5,6}', 'contains the empty string: every non-NULL text');
SELECT pg_temp.check($$contact where city contains 'ZÜRICH'$$, '{6}', 'case-insensitive beyond ASCII');

-- in lists and value sets
SELECT pg_temp.check($$contact where gender in ('male', 'other')$$, '{2,4,6}', 'in');
SELECT pg_temp.check($$contact where preferred_channel not in ('email', 'sms')$$, '{6}', 'not in');
SELECT pg_temp.check($$contact where has condition where code in value_set 'eye'$$, '{1,3,6}', 'in value_set');
SELECT pg_temp.check($$contact where has condition where code not in value_set 'eye'$$, '{2,5}', 'not in value_set');

-- between is inclusive
SELECT pg_temp.check($$contact where has observation where value_numeric between 140 and 145$$, '{2,5,6}', 'between includes both bounds');
SELECT pg_temp.check($$contact where has observation where value_numeric between 145 and 140$$, '{}', 'between with bounds reversed matches nothing');
SELECT pg_temp.check($$contact where birthdate between '1980-02-29' and '1990-03-01'$$, '{2,3}', 'between dates, inclusive');

-- age: whole years at today in the time zone; leap-day birthdays
SELECT pg_temp.check($$contact where age = 44$$, '{2}', 'Bob (1980-02-29) is 44 on 2024-03-01');
SELECT pg_temp.check($$contact where age = 24$$, '{}', 'Eve (2000-03-02) is not 24 the day before her birthday');
SELECT pg_temp.check($$contact where age = 34$$, '{3}', 'Carol (1990-03-01) is 34 on her birthday');
SELECT pg_temp.check($$contact where age = 34$$, '{3}', 'at 12:00 UTC it is Mar 1 in New York too', 'America/New_York');
SET LOCAL outreach.now = '2024-02-29 12:00:00+00';
SELECT pg_temp.check($$contact where age = 44$$, '{2}', 'Bob is 44 on his leap-day birthday');
SET LOCAL outreach.now = '2024-02-28 12:00:00+00';
SELECT pg_temp.check($$contact where age = 43$$, '{2}', 'Bob is 43 the day before');
SET LOCAL outreach.now = '2023-02-28 12:00:00+00';
SELECT pg_temp.check($$contact where age = 42$$, '{2}', 'in a common year Bob is still 42 on Feb 28');
SET LOCAL outreach.now = '2023-03-01 12:00:00+00';
SELECT pg_temp.check($$contact where age = 43$$, '{2}', 'in a common year Bob turns 43 on Mar 1');
SET LOCAL outreach.now = '2024-03-01 03:00:00+00';
SELECT pg_temp.check($$contact where age = 34$$, '{3}', 'at 03:00 UTC it is Mar 1 in UTC');
SELECT pg_temp.check($$contact where age = 33$$, '{3}', 'at 03:00 UTC it is Feb 29 in New York', 'America/New_York');
SET LOCAL outreach.now = '2024-03-01 12:00:00+00';
SELECT pg_temp.check($$contact where age between 44 and 53$$, '{1,2}', 'age between is inclusive');

-- age at a date: whole years on that date (leap days as age() counts them); nobody is aged before birth
SELECT pg_temp.check($$contact where age at date '2024-12-31' between 24 and 44$$, '{2,3,5}', 'age at the end of the year');
SELECT pg_temp.check($$contact where age at date '2024-02-28' = 43$$, '{2}', 'Bob is 43 on 2024-02-28');
SELECT pg_temp.check($$contact where age at date '2024-02-29' = 44$$, '{2}', 'Bob is 44 on 2024-02-29');
SELECT pg_temp.check($$contact where age at date '2023-02-28' = 42$$, '{2}', 'Bob is 42 on 2023-02-28');
SELECT pg_temp.check($$contact where age at date '2023-03-01' >= 43$$, '{1,2,6}', 'Bob turns 43 on 2023-03-01');
SELECT pg_temp.check($$contact where age at '1990-02-28' < 1$$, '{}', 'Carol is not born on 1990-02-28: no age, so not < 1');
SELECT pg_temp.check($$contact where age at '1990-02-28' in (0)$$, '{}', 'per row: not born, no age');
SELECT pg_temp.check($$contact where age at '1990-02-28' is empty$$, '{3,4,5}', 'no birthdate or not born yet: age at is empty');
SELECT pg_temp.check($$contact where age at '1990-03-01' <= 0$$, '{3}', 'Carol is 0 on her day of birth');
SELECT pg_temp.check($$contact where age at '1990-03-01' != 5$$, '{1,2,3,6}', '!= leaves out the unborn and unknown');
SELECT pg_temp.check($$contact where age at '1990-03-01' not between 1 and 100$$, '{3}', 'not between leaves out the unborn');
SELECT pg_temp.check($$contact where age at today + 1 year = 24$$, '{5}', 'Eve (2000-03-02) is 24 on 2025-03-01');
SELECT pg_temp.check($$contact where age at today - 1 day = 44$$, '{2}', 'Bob is 44 on 2024-02-29: today - 1 day');
SELECT pg_temp.check($$contact where age at today = 44$$, '{2}', 'age at today is age');
SELECT is((SELECT time_dependent FROM outreach.query_dependencies($$contact where age at date '2024-12-31' > 40$$)), false,
  'age at a fixed date does not depend on the clock');
SELECT is((SELECT time_dependent FROM outreach.query_dependencies($$contact where age at today + 1 year > 40$$)), true,
  'age at today + 1 year depends on the clock');

-- contact.field in relations: the related row's contact (second birthday: + 2 years, in the time zone)
INSERT INTO outreach.immunization (id, patient_id, code, administered_at) VALUES
  (1, 1, 'a', '1971-01-01 10:00+00'),
  (2, 5, 'a', '2002-03-01 23:00+00'),   -- the day before Eve's second birthday in UTC
  (3, 5, 'b', '2002-03-02 00:00+00'),   -- her birthday in UTC; still 1 March in New York
  (4, 2, 'c', '1982-02-28 12:00+00');   -- Bob (29 Feb): 28 Feb is his second birthday
SELECT pg_temp.check($$contact where has immunization where administered_at < contact.birthdate + 2 years$$, '{1,5}', 'before the second birthday');
SELECT pg_temp.check($$contact where count(immunization where administered_at < contact.birthdate + 2 years) >= 2$$, '{}', 'count before the second birthday, UTC');
SELECT pg_temp.check($$contact where count(immunization where administered_at < contact.birthdate + 2 years) >= 2$$, '{5}', 'count before the second birthday, New York', 'America/New_York');
SELECT pg_temp.check($$contact where count(immunization where administered_at < contact.birthdate + 2 years) < 1$$, '{2,3,4,6}', 'count that holds for no rows, with contact.field');
SELECT pg_temp.check($$contact where latest(immunization.code where administered_at >= contact.birthdate + 2 years) = 'b'$$, '{5}', 'latest with contact.field');
SELECT pg_temp.check($$contact where latest(immunization.code where administered_at >= contact.birthdate + 2 years) = 'c'$$, '{2}', 'latest with contact.field: leap-day birthday');
SELECT pg_temp.check($$contact where has encounter where has condition where onset_date > contact.birthdate + 23 years$$, '{5}', 'contact.field two relations deep');
SELECT pg_temp.check($$contact where has encounter where count(condition where onset_date >= contact.birthdate) >= 1$$, '{5}', 'a correlated aggregate under a relation');
SELECT pg_temp.check($$contact where has observation where value_numeric < contact.age$$, '{1,2,5}', 'contact.age as a number');
SELECT pg_temp.check($$contact where has immunization where administered_at in (contact.birthdate + 2 years, contact.birthdate + 1 year)$$, '{5}', 'contact.field in a list: exactly the second birthday at midnight UTC');
SELECT is((SELECT row(entities, segments, time_dependent)::text FROM outreach.query_dependencies(
  $$contact where has immunization where administered_at < contact.birthdate + 2 years$$)),
  '("{contact,immunization}",{},f)', 'contact.field: reads contact, not the clock');

-- relative dates and time zone day boundaries
SELECT pg_temp.check($$contact where has condition where onset_date = today$$, '{5}', 'today in UTC is Mar 1');
SELECT pg_temp.check($$contact where has condition where onset_date = today$$, '{5}', 'at 12:00 UTC New York is also Mar 1', 'America/New_York');
SELECT pg_temp.check($$contact where has condition where onset_date = today - 1 day$$, '{2}', 'today - 1 day');
SET LOCAL outreach.now = '2024-03-01 03:00:00+00';
SELECT pg_temp.check($$contact where has condition where onset_date = today$$, '{5}', 'at 03:00 UTC, today is Mar 1 in UTC');
SELECT pg_temp.check($$contact where has condition where onset_date = today$$, '{2}', 'at 03:00 UTC, today is Feb 29 in New York', 'America/New_York');
SELECT pg_temp.check($$contact where has encounter where start_at >= today$$, '{2,6}', 'today as a timestamp is local midnight (UTC)');
SELECT pg_temp.check($$contact where has encounter where start_at >= today$$, '{1,2,6}', 'today as a timestamp is local midnight (New York)', 'America/New_York');
SELECT pg_temp.check($$contact where has encounter where start_at within last 1 day$$, '{1,2}', 'within last 1 day on a timestamp');
SELECT pg_temp.check($$contact where has encounter where start_at within last 3 hours$$, '{2}', 'within last 3 hours includes now, excludes 3.5 hours ago');
SELECT pg_temp.check($$contact where has encounter where start_at within last 4 hours$$, '{1,2}', 'within last 4 hours');
SELECT pg_temp.check($$contact where has encounter where start_at within last 3 minutes$$, '{2}', 'within last 3 minutes includes exactly now');
SET LOCAL outreach.now = '2024-03-01 12:00:00+00';
SELECT pg_temp.check($$contact where has condition where onset_date within last 1 day$$, '{2,5}', 'within last 1 day on a date: yesterday and today');
SELECT pg_temp.check($$contact where has condition where onset_date within last 1 year$$, '{2,3,5}', 'within last 1 year on a date, inclusive');
SELECT pg_temp.check($$contact where has encounter where start_at within last 1 year$$, '{1,2,5}', 'within last 1 year includes exactly one year ago');
SELECT pg_temp.check($$contact where has encounter where start_at within next 1 week$$, '{6}', 'within next');
SELECT pg_temp.check($$contact where has encounter where start_at within next 3 days$$, '{}', 'within next 3 days excludes 4 days ahead');
SELECT pg_temp.check($$contact where has condition where onset_date older than 1 year$$, '{1}', 'older than on a date');
SELECT pg_temp.check($$contact where has encounter where start_at older than 1 year$$, '{}', 'older than is strict');
SELECT pg_temp.check($$contact where has encounter where start_at older than 364 days$$, '{5}', 'older than days');
SELECT pg_temp.check($$contact where has encounter where start_at > now + 1 day$$, '{6}', 'now + offset');
SELECT pg_temp.check($$contact where birthdate > today - 25 years$$, '{5}', 'today - years on a date');

-- has / has no
SELECT pg_temp.check($$contact where has no condition$$, '{4}', 'has no: contacts with no related rows at all');
SELECT pg_temp.check($$contact where has no condition where description contains 'hyper'$$, '{2,4}', 'has no with a filter');
SELECT pg_temp.check($$contact where has encounter where has condition where code = '38341003'$$, '{5}', 'nested relations');
SELECT pg_temp.check($$contact where has account where kind = 'household'$$, '{1,4}', 'many-to-one relation');
SELECT pg_temp.check($$contact where has no account$$, '{3,5,6}', 'has no on a many-to-one link with NULL');
SELECT pg_temp.check($$contact where has account where has account via parent_id$$, '{1}', 'self link via parent_id: accounts with children');
SELECT pg_temp.check($$contact where not has condition$$, '{4}', 'not has = has no');

-- aggregates
SELECT pg_temp.check($$contact where count(observation where code = '4548-4' and effective_at within last 1 year) >= 2$$, '{1}', 'at least two HbA1c tests in the last year');
SELECT pg_temp.check($$contact where count(observation where code = '4548-4') < 2$$, '{3,4,5,6}', 'count < 2 includes contacts with none');
SELECT pg_temp.check($$contact where count(observation where code = '4548-4') = 0$$, '{3,4,6}', 'count = 0');
SELECT pg_temp.check($$contact where count(condition) != 1$$, '{4}', 'count != 1 includes zero');
SELECT pg_temp.check($$contact where count(condition) >= 0$$, '{1,2,3,4,5,6}', 'count >= 0 is everyone');
SELECT pg_temp.check($$contact where count(condition.onset_date) = 0$$, '{4,6}', 'count of a field counts non-NULL values');
SELECT pg_temp.check($$contact where max(observation.value_numeric where code = '8480-6') > 140$$, '{1,2,5}', 'max');
SELECT pg_temp.check($$contact where min(observation.value_numeric where code = '4548-4') <= 6.5$$, '{1,5}', 'min');
SELECT pg_temp.check($$contact where sum(observation.value_numeric where code = '4548-4') = 15.5$$, '{2}', 'sum');
SELECT pg_temp.check($$contact where avg(observation.value_numeric where code = '4548-4') < 7$$, '{1,5}', 'avg');
SELECT pg_temp.check($$contact where max(encounter.start_at) < today - 6 months$$, '{5}', 'max of a timestamp against a relative date');
SELECT pg_temp.check($$contact where sum(observation.value_numeric where code = 'none') = 0$$, '{}', 'sum over no rows is NULL, not 0');

-- latest
SELECT pg_temp.check($$contact where latest(observation.value_numeric where code = '8480-6') > 140$$, '{2}', 'most recent systolic blood pressure over 140');
SELECT pg_temp.check($$contact where latest(observation.value_numeric where code = '8480-6') <= 140$$, '{1,5,6}', 'latest: undated rows rank last');
SELECT pg_temp.check($$contact where latest(encounter.class) = 'ambulatory'$$, '{1,6}', 'latest of an enumerated field');

-- segments and set operations, left to right
SELECT pg_temp.check($$segment 'vip'$$, '{1,6}', 'segment reads current members');
SELECT pg_temp.check($$contact where in segment 'vip' and gender = 'female'$$, '{1}', 'in segment');
SELECT pg_temp.check($$contact where not in segment 'vip'$$, '{2,3,4,5}', 'not in segment');
SELECT pg_temp.check($$contact where gender = 'male' union contact where gender = 'other' intersect contact where status = 'active'$$,
  '{2,4,6}', 'union then intersect, left to right');
SELECT pg_temp.check($$contact where id = 3 union contact where gender = 'male' intersect contact where status = 'active'$$,
  '{2,4}', 'left to right: (3 or male) and active');
SELECT pg_temp.check($$contact where id = 3 union (contact where gender = 'male' intersect contact where status = 'active')$$,
  '{2,3,4}', 'parentheses group the right operand');
SELECT pg_temp.check($$contact except segment 'vip' except contact where status = 'inactive'$$, '{2,4,5}', 'except, left to right');
SELECT pg_temp.check($$segment 'vip' intersect contact where gender = 'other'$$, '{6}', 'intersect with a segment');

-- preview
SELECT is((SELECT member_count FROM outreach.preview($$contact where status = 'active'$$, 2)), 5::bigint, 'preview counts');
SELECT is((SELECT sample FROM outreach.preview($$contact where status = 'active'$$, 2)), '{1,2}'::bigint[], 'preview samples the smallest ids');
SELECT is((SELECT sample FROM outreach.preview($$contact where status = 'active'$$, 0)), '{}'::bigint[], 'preview with no sample');
SELECT is((SELECT member_count FROM outreach.preview($$contact where id = 999$$)), 0::bigint, 'preview of nobody');

-- restricted evaluation returns only the given contacts
SELECT is(ARRAY(SELECT x FROM outreach.evaluate($$contact where status = 'active'$$, '{1,3,5,999}', 'UTC') x ORDER BY 1),
  '{1,5}'::bigint[], 'restricted evaluation keeps only the given ids');
SELECT is(ARRAY(SELECT x FROM outreach.evaluate($$segment 'vip' union contact where id = 2$$, '{2,6}', 'UTC') x ORDER BY 1),
  '{2,6}'::bigint[], 'restricted evaluation of segments and set operations');
SELECT is(ARRAY(SELECT x FROM outreach.evaluate($$contact$$, '{}'::bigint[], 'UTC') x), '{}'::bigint[], 'restricted to nobody');

-- dependencies
SELECT is((SELECT row(entities, segments, time_dependent)::text FROM outreach.query_dependencies(
  $$contact where has condition where onset_date within last 1 year and in segment 'vip' and count(observation) > 1$$)),
  '("{contact,condition,observation}",{vip},t)', 'dependencies: entities, segments, clock');
SELECT is((SELECT time_dependent FROM outreach.query_dependencies($$contact where age > 40$$)), true, 'age depends on the clock');
SELECT is((SELECT row(entities, segments, time_dependent)::text FROM outreach.query_dependencies($$segment 'vip' union segment 'x'$$)),
  '({},"{vip,x}",f)', 'dependencies of a compound query');

-- a user table: naive timestamps (read as local time in the query's time zone), two links to contact
CREATE TABLE public.visit (
  id          bigint PRIMARY KEY,
  patient_id  bigint REFERENCES outreach.contact,
  referrer_id bigint REFERENCES outreach.contact,
  at          timestamp,
  note        text
);
SELECT is(outreach.register_entity('public.visit', link_column => 'patient_id', time_column => 'at'), 'visit', 'a user table registers');
INSERT INTO public.visit VALUES
  (1, 1, 2, '2024-03-01 06:00', 'first'),     -- 06:00 local
  (2, 1, 2, '2024-02-29 23:00', 'second'),
  (3, 3, 1, '2024-03-01 11:30', NULL),
  (4, 5, NULL, NULL, 'undated');
-- now is 12:00 UTC = 07:00 in New York
SELECT pg_temp.check($$contact where has visit via patient_id where at >= today$$, '{1,3}', 'naive timestamp >= today (UTC)');
SELECT pg_temp.check($$contact where has visit via patient_id where at within last 1 hour$$, '{3}', 'naive timestamp within last 1 hour (UTC)');
SELECT pg_temp.check($$contact where has visit via patient_id where at within last 1 hour$$, '{1}', 'naive timestamp within last 1 hour (New York)', 'America/New_York');
SELECT pg_temp.check($$contact where has visit via patient_id where at > now$$, '{3}', 'naive timestamp after now (New York)', 'America/New_York');
SELECT pg_temp.check($$contact where has visit via referrer_id$$, '{1,2}', 'via the other link');
SELECT pg_temp.check($$contact where has no visit via referrer_id$$, '{3,4,5,6}', 'has no via the other link');
SELECT pg_temp.check($$contact where latest(visit via patient_id.note) = 'first'$$, '{1}', 'latest on a user entity');
SELECT pg_temp.check($$contact where count(visit via referrer_id) = 2$$, '{2}', 'count via');
SELECT pg_temp.check($$contact where has visit via patient_id where note is empty$$, '{3}', 'is empty on a user entity');

-- latest(...) is [not] empty: the newest row's value; no rows is neither
SELECT pg_temp.check($$contact where latest(encounter.end_at) is empty$$, '{1,2,5,6}', 'latest is empty: no end time on the newest encounter');
SELECT pg_temp.check($$contact where latest(encounter.end_at) is not empty$$, '{}', 'latest is not empty');
SELECT pg_temp.check($$contact where not latest(encounter.end_at) is empty$$, '{3,4}', 'contacts without rows are not "is empty"');
SELECT pg_temp.check($$contact where latest(encounter.class) is not empty$$, '{1,2,5,6}', 'latest is not empty on an enumerated text field');
INSERT INTO outreach.encounter (id, patient_id, class, description, start_at, end_at) VALUES
  (10, 1, 'ambulatory', '', '2024-03-01 09:00+00', NULL),                           -- newest for Alice: no end, empty text
  (11, 2, 'ambulatory', 'x', '2024-01-01 09:00+00', '2024-01-01 10:00+00');     -- older than Bob's newest
UPDATE outreach.encounter SET end_at = start_at + interval '1 hour' WHERE id IN (2, 3, 4);
SELECT pg_temp.check($$contact where latest(encounter.end_at) is empty$$, '{1}', 'only the newest row counts');
SELECT pg_temp.check($$contact where latest(encounter.end_at where class = 'ambulatory') is not empty$$, '{2,6}', 'latest with a filter');
SELECT pg_temp.check($$contact where latest(encounter.description) is empty$$, '{1}', 'text: empty string is empty');
SELECT pg_temp.check($$contact where has encounter where latest(condition.onset_date) is not empty$$, '{5}', 'latest is not empty under a relation');

-- count(distinct R.f): distinct non-NULL values (a dose recorded twice counts once)
INSERT INTO outreach.immunization (id, patient_id, code, administered_at) VALUES
  (5, 1, 'a', '1971-01-01 10:00+00'),   -- Alice's dose again
  (6, 6, NULL, NULL);
SELECT pg_temp.check($$contact where count(immunization) = 2$$, '{1,5}', 'count counts rows');
SELECT pg_temp.check($$contact where count(distinct immunization.administered_at) = 1$$, '{1,2}', 'count(distinct) counts values');
SELECT pg_temp.check($$contact where count(distinct immunization.code) < 2$$, '{1,2,3,4,6}', 'count(distinct) that holds for no rows; NULL is not a value');
SELECT pg_temp.check($$contact where count(distinct immunization.code where administered_at < contact.birthdate + 2 years) = 1$$, '{1,5}',
  'count(distinct) with a filter and contact.field');
-- count(distinct day of R.f): calendar days in the query's time zone
INSERT INTO outreach.immunization (id, patient_id, code, administered_at) VALUES
  (7, 2, 'c', '1982-03-01 03:00+00');   -- Bob: 1 March in UTC, still 28 February in New York
SELECT pg_temp.check($$contact where count(distinct day of immunization.administered_at) = 2$$, '{2,5}', 'distinct days in UTC');
SELECT pg_temp.check($$contact where count(distinct day of immunization.administered_at) = 1$$, '{1,2,5}', 'distinct days in New York', 'America/New_York');
SELECT pg_temp.check($$contact where count(distinct day of immunization.administered_at) < 1$$, '{3,4,6}', 'no dated rows: no days');

SELECT * FROM finish();
ROLLBACK;
