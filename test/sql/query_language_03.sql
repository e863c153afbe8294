SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE; RESET client_min_messages;
-- query_language_03: the 0.3 forms of the segment language (issue 17 item 4): between, in
-- (...), is [not] empty on aggregates and latest; matches; in this|last|next
-- week|month|quarter|year; birthday and anniversary of ... within.  Canonical output,
-- output -> input -> output stability, errors with position and hint, compiled SQL.
SET search_path = public, outreach;

CREATE FUNCTION pg_temp.canon(q text, OUT canonical text, OUT stable boolean) AS $$
  SELECT c, c::outreach.segment_query::text = c
  FROM (SELECT q::outreach.segment_query::text AS c) s
$$ LANGUAGE sql;

-- canonical forms
SELECT q, (pg_temp.canon(q)).* FROM (VALUES
  ('contact where count(encounter) between 2 and 5'),
  ('contact where COUNT(encounter) NOT BETWEEN 2 AND 5'),
  ('contact where max(observation.value_numeric where code = ''8480-6'') in (120, 140)'),
  ('contact where sum(observation.value_numeric) not in (1,2,3)'),
  ('contact where avg(observation.value_numeric) is empty'),
  ('contact where min(observation.value_numeric) is not empty'),
  ('contact where latest(observation.code) in (''a'', ''b'')'),
  ('contact where latest(observation.value_numeric) not between 1 and 2'),
  ('contact where not latest(observation.value_numeric) between 1 and 2'),
  ('contact where city matches ''^Bos'''),
  ('contact where city not matches ''(?i)^s[a-z]+m$'''),
  ('contact where has encounter where start_at in last month'),
  ('contact where birthdate in this year'),
  ('contact where birthdate not in next quarter'),
  ('contact where has encounter where start_at IN THIS WEEK'),
  ('contact where birthday within next 14 days'),
  ('contact where birthday within last 1 week'),
  ('contact where anniversary of birthdate within next 1 month'),
  ('contact where has encounter where anniversary of start_at within next 30 days'),
  ('contact where "matches" matches ''x'' and "this" in this year'),
  ('contact where not (count(encounter) in (1) or birthday within next 3 days)')
) v(q);

-- tree dumps distinguish the forms
SELECT outreach._segment_query_tree('contact where count(encounter) not between 2 and 5');
SELECT outreach._segment_query_tree('contact where birthdate in last quarter');
SELECT outreach._segment_query_tree('contact where anniversary of birthdate within next 3 days');

-- syntax errors: position, caret, hint
SELECT 'contact where city matches ''(abc'''::outreach.segment_query;
SELECT 'contact where city matches ''a{2,1}'''::outreach.segment_query;
SELECT 'contact where city matches 42'::outreach.segment_query;
SELECT ('contact where city matches ''' || repeat('a', 1001) || '''')::outreach.segment_query;
SELECT 'contact where birthdate in last 3 months'::outreach.segment_query;
SELECT 'contact where birthdate in this decade'::outreach.segment_query;
SELECT 'contact where birthdate in previous month'::outreach.segment_query;
SELECT 'contact where anniversary of birthdate = 3'::outreach.segment_query;
SELECT 'contact where anniversary of within next 3 days'::outreach.segment_query;
SELECT 'contact where count(encounter) in value_set ''x'''::outreach.segment_query;
SELECT 'contact where count(encounter) in last month'::outreach.segment_query;
SELECT 'contact where count(encounter) between 1'::outreach.segment_query;
SELECT 'contact where count(encounter) contains ''x'''::outreach.segment_query;

-- validation errors
SELECT outreach.compile('contact where count(encounter) is empty');
SELECT outreach.compile('contact where birthdate matches ''1''');
SELECT outreach.compile('contact where city in this month');
SELECT outreach.compile('contact where birthday within next 3 hours');
SELECT outreach.compile('contact where anniversary of city within next 3 days');
SELECT outreach.compile('contact where birthday = date ''2000-01-01''');
SELECT outreach.compile('contact where max(observation.value_numeric) between ''a'' and 2');

-- compiled SQL
SELECT outreach.compile('contact where count(encounter) not between 2 and 5', false, 'UTC');
SELECT outreach.compile('contact where latest(observation.code) in (''a'', ''b'')', true, 'UTC');
SELECT outreach.compile('contact where max(observation.value_numeric) is empty', false, 'UTC');
SELECT outreach.compile('contact where city matches ''^Bos''', false, 'UTC');
SELECT outreach.compile('contact where has encounter where start_at in last month', false, 'America/New_York');
SELECT outreach.compile('contact where birthdate not in this quarter', false, 'UTC');
SELECT outreach.compile('contact where birthday within next 14 days', false, 'UTC');
SELECT time_dependent FROM outreach.query_dependencies('contact where birthdate in this year');
SELECT time_dependent FROM outreach.query_dependencies('contact where birthday within next 2 days');
