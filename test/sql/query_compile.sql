SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE; RESET client_min_messages;
-- The SQL segment queries compile to: representative queries, the restricted variant,
-- time zones, and safety (quoted identifiers, literals that cannot escape their quotes).
\pset format unaligned
\pset tuples_only on

INSERT INTO outreach.value_set (name, code_system, code) VALUES
  ('mammography', 'SNOMED', '24623002'), ('bilateral mastectomy', 'SNOMED', '27865001')
ON CONFLICT DO NOTHING;  -- the extension may ship these lists
INSERT INTO outreach.segment (id, name, kind, status, definition) VALUES
  (7, 'diabetics', 'dynamic', 'live', $$contact where has condition where code = '44054006'$$),
  (8, 'it''s live', 'static', 'live', NULL);

-- the seed exercise
SELECT outreach.compile($$contact where status = 'active' and has condition where description contains 'Hypermetropia'$$);
-- at least two HbA1c tests in the last year
SELECT outreach.compile($$contact where count(observation where code = '4548-4' and effective_at within last 1 year) >= 2$$, false, 'UTC');
-- fewer than two (true for contacts with none): anti-join against the groups with two or more
SELECT outreach.compile($$contact where count(observation where code = '4548-4') < 2$$);
-- most recent systolic blood pressure over 140
SELECT outreach.compile($$contact where latest(observation.value_numeric where code = '8480-6') > 140$$);
-- the same, restricted to given contacts: correlated subqueries
SELECT outreach.compile($$contact where latest(observation.value_numeric where code = '8480-6') > 140 and count(condition) = 0$$, true);
-- HEDIS-style breast cancer screening gap, in New York time
SELECT outreach.compile($$contact where gender = 'female' and age between 52 and 74
  and has encounter where start_at within last 1 year
  and has no procedure where (code in value_set 'mammography' and performed_at within last 27 months)
  and has no procedure where code in value_set 'bilateral mastectomy'$$, false, 'America/New_York');
-- nested and many-to-one relations, or, not
SELECT outreach.compile($$contact where has encounter where has condition where code = '44054006'
  or not has account where kind = 'household'$$);
-- set operations, left to right, with segments
SELECT outreach.compile($$segment 'diabetics' union contact where city = 'Boston' intersect contact where status = 'active' except segment 'it''s live'$$);
SELECT outreach.compile($$segment 'diabetics' union contact where in segment 'diabetics'$$, true);
-- relative dates on date, timestamptz, with minutes and hours; older than; min, max, sum, avg
SELECT outreach.compile($$contact where birthdate > today - 30 years and birthdate <= today
  and deceased_at is empty and created_at > now - 90 minutes and created_at < now + 2 hours
  and has condition where (onset_date older than 2 weeks or onset_date within next 3 days)
  and has encounter where start_at >= today + 1 day
  and min(observation.effective_at) < date '2020-02-29' and max(observation.value_numeric) != 0
  and sum(observation.value_numeric) <= -1.5 and avg(observation.value_numeric) > 1000.5$$, false, 'UTC');
-- text operators, is empty, in lists
SELECT outreach.compile($$contact where first_name starts with 'Jo' and last_name ends with 'son' and email not contains 'spam'
  and phone is not empty and city is empty and birthdate is not empty and age is empty
  and gender not in ('male', 'other') and do_not_email = false and preferred_channel in ('sms')$$);
-- age: whole numbers compile to birthdate ranges, other forms to age() per row
SELECT outreach.compile($$contact where age >= 18 and age < 65 and age != 40 and age not between 50 and 52$$, false, 'UTC');
SELECT outreach.compile($$contact where age > 40.5 or age in (30, 31)$$, false, 'UTC');
-- age at a date: ranges from that date; people born after it have no age there
SELECT outreach.compile($$contact where age at date '2024-12-31' between 52 and 74 and age at '2024-12-31' < 65$$, false, 'UTC');
SELECT outreach.compile($$contact where age at today + 1 year >= 18 or age at today - 1 month in (1, 2)
  or age at date '2024-12-31' is empty or age at date '2024-12-31' is not empty$$, true, 'UTC');
-- contact.field in relations: the query's contact; a direct aggregate joins the contact to its
-- grouped rows, a deeper one is correlated; dates move in the time zone
SELECT outreach.compile($$contact where has immunization where administered_at < contact.birthdate + 2 years
  and count(immunization where administered_at >= contact.birthdate + 42 days) < 4
  and latest(observation.value_numeric where effective_at > contact.deceased_at - 1 hour) > 5$$, false, 'America/New_York');
SELECT outreach.compile($$contact where has encounter where (count(observation where effective_at < contact.birthdate + 1 year) >= 2
  and latest(procedure.performed_at where performed_at < contact.birthdate + 30 years) < contact.birthdate + 31 years)$$, false, 'UTC');
SELECT outreach.compile($$contact where count(immunization where administered_at < contact.birthdate + 2 years) < 4$$, true, 'UTC');
-- latest(...) is [not] empty: the newest row exists and its value is (not) NULL ('' too for text)
SELECT outreach.compile($$contact where latest(observation.value_numeric where code = '4548-4') is empty
  or latest(observation.code) is not empty$$, false, 'UTC');
SELECT outreach.compile($$contact where latest(observation.value_numeric where code = '4548-4') is empty$$, true, 'UTC');
-- count(distinct R.f): count(DISTINCT ...), whole population and restricted
SELECT outreach.compile($$contact where count(distinct immunization.administered_at where code = '20') < 4$$, false, 'UTC');
SELECT outreach.compile($$contact where count(distinct immunization.code) >= 2$$, true, 'UTC');
SELECT outreach.compile($$contact where count(distinct day of immunization.administered_at) >= 2
  and count(distinct day of condition.onset_date) >= 2$$, false, 'America/New_York');
-- offsets one after the other: the second birthday, then the day after it, then 3 hours before that
SELECT outreach.compile($$contact where has immunization where administered_at < contact.birthdate + 2 years + 1 day - 3 hours$$, false, 'UTC');
-- the session time zone when none is given
SET TIME ZONE 'Asia/Kolkata';
SELECT outreach.compile($$contact where birthdate = today$$);
RESET TIME ZONE;

-- Safety.  Strings are written in the segment language with SQL quoting; helper:
CREATE FUNCTION pg_temp.lit(s text) RETURNS text LANGUAGE sql AS $$ SELECT '''' || replace(s, '''', '''''') || '''' $$;
CREATE TABLE pg_temp.nasty (n int, s text);
INSERT INTO pg_temp.nasty VALUES
  (1, 'O''Brien'), (2, 'back\slash'), (3, '\'''), (4, '100%_done'), (5, 'x''; DROP TABLE outreach.contact; --'),
  (6, '/* comment */ -- dash'), (7, 'Zoë Ångström 東京 🙂'), (8, repeat('long''\%_', 2000)), (9, E'tab\tnew\nline'),
  (10, '$$ $q$ ::text'), (11, '%'), (12, '_'), (13, '\');
INSERT INTO outreach.contact (id, first_name) SELECT n, s FROM pg_temp.nasty;
INSERT INTO outreach.contact (id, first_name) VALUES (100, 'OBrien'), (101, 'backslash'), (102, '100xydone'), (103, 'abc');
-- compiled literals of the short ones
SELECT n, outreach.compile(('contact where first_name = ' || pg_temp.lit(s))::outreach.segment_query) LIKE '%first_name = %' AS compiles,
       split_part(outreach.compile(('contact where first_name = ' || pg_temp.lit(s))::outreach.segment_query), 'WHERE ', 2) AS "where"
FROM pg_temp.nasty WHERE n <> 8 ORDER BY n;
-- = finds exactly the contact with that name; contains finds it literally (no wildcards)
SELECT n,
  ARRAY(SELECT outreach.evaluate(('contact where first_name = ' || pg_temp.lit(s))::outreach.segment_query)) AS equal,
  ARRAY(SELECT x FROM outreach.evaluate(('contact where first_name contains ' || pg_temp.lit(s))::outreach.segment_query) x ORDER BY x) AS contains,
  ARRAY(SELECT x FROM outreach.evaluate(('contact where first_name starts with ' || pg_temp.lit(s))::outreach.segment_query) x ORDER BY x) AS starts,
  ARRAY(SELECT x FROM outreach.evaluate(('contact where first_name ends with ' || pg_temp.lit(s))::outreach.segment_query) x ORDER BY x) AS ends
FROM pg_temp.nasty ORDER BY n;
-- the contact table is still there and intact
SELECT count(*) FROM outreach.contact;

-- identifiers that need quoting: a schema, table and columns with spaces, quotes, capitals
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Visit Log" (
  "Id" bigint PRIMARY KEY,
  "Patient ""Ref""" bigint REFERENCES outreach.contact,
  "Select; DROP" text,
  "When" timestamptz
);
SELECT outreach.register_entity('"Odd Schema"."Visit Log"', link_column => 'Patient "Ref"', time_column => 'When', name => 'visit_log');
INSERT INTO "Odd Schema"."Visit Log" VALUES (1, 1, 'a', '2024-01-01'), (2, 1, 'b', '2024-02-01'), (3, 2, 'b', '2024-01-15');
SELECT outreach.compile($$contact where has visit_log where "Select; DROP" = 'b' and count(visit_log) >= 2 and latest(visit_log."Select; DROP") = 'b'$$);
SELECT ARRAY(SELECT outreach.evaluate($$contact where has visit_log where "Select; DROP" = 'b' and count(visit_log) >= 2 and latest(visit_log."Select; DROP") = 'b'$$));
SELECT ARRAY(SELECT outreach.evaluate($$contact where latest(visit_log."Select; DROP") = 'b'$$, '{1,2,3}'::bigint[]) ORDER BY 1);
SELECT outreach.compile($$contact where has visit_log where "select; drop" = 'b'$$);

-- a time zone name is a literal too
SELECT outreach.compile($$contact where birthdate = today$$, false, 'America/Argentina/Buenos_Aires');

SELECT outreach.unregister_entity('visit_log');
DROP SCHEMA "Odd Schema" CASCADE;
