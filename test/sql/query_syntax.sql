SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE; RESET client_min_messages;
-- query_syntax: every construct of the segment language (DESIGN §3), its canonical output,
-- and output -> input -> output stability.  Names are not checked by the type: only syntax.
SET search_path = public, outreach;  -- for the operators of the type

-- canonical(q): the canonical text; stable: reading the canonical text back gives it again
CREATE FUNCTION pg_temp.canon(q text, OUT canonical text, OUT stable boolean) AS $$
  SELECT c, c::outreach.segment_query::text = c
  FROM (SELECT q::outreach.segment_query::text AS c) s
$$ LANGUAGE sql;

-- query level: contact, segment, parentheses, set operations left to right
SELECT q, (pg_temp.canon(q)).* FROM (VALUES
  ('contact'),
  ('CONTACT'),
  ('  contact  '),
  ('contact where status = ''active'''),
  ('segment ''high risk'''),
  ('segment ''it''''s'''),
  ('(contact)'),
  ('((segment ''a''))'),
  ('segment ''a'' union segment ''b'''),
  ('segment ''a'' INTERSECT segment ''b'''),
  ('segment ''a'' except segment ''b'''),
  ('segment ''a'' union segment ''b'' except segment ''c'''),
  ('(segment ''a'' union segment ''b'') except segment ''c'''),
  ('segment ''a'' union (segment ''b'' except segment ''c'')'),
  ('segment ''a'' union (segment ''b'' except (segment ''c'' intersect segment ''d''))'),
  ('contact where a = 1 union contact where b = 2'),
  ('(contact where a = 1 or b = 2) except segment ''x''')
) v(q);

-- and / or / not: minimal parentheses, nested lists of the same operator are flattened
SELECT q, (pg_temp.canon(q)).* FROM (VALUES
  ('contact where a = 1 and b = 2 or c = 3'),
  ('contact where a = 1 and (b = 2 or c = 3)'),
  ('contact where (a = 1 and b = 2) or c = 3'),
  ('contact where a = 1 or (b = 2 or c = 3)'),
  ('contact where a = 1 and (b = 2 and c = 3)'),
  ('contact where ((a = 1))'),
  ('contact where not a = 1'),
  ('contact where not (a = 1)'),
  ('contact where not (a = 1 or b = 2)'),
  ('contact where not not a = 1'),
  ('contact where NOT a = 1 AND b = 2'),
  ('contact where not (a = 1 and b = 2) or not (c = 3)'),
  ('contact where (a = 1 or b = 2) and (c = 3 or d = 4)')
) v(q);

-- comparisons and values
SELECT q, (pg_temp.canon(q)).* FROM (VALUES
  ('contact where a = 1'),
  ('contact where a != 1'),
  ('contact where a <> 1'),
  ('contact where a < 1 and b <= 2 and c > 3 and d >= 4'),
  ('contact where a=1 and b<>2 and c<=3 and d>=-4'),
  ('contact where a = -1'),
  ('contact where a = - 1'),
  ('contact where a = -0'),
  ('contact where a = 0.0'),
  ('contact where a = 007'),
  ('contact where a = 4.50'),
  ('contact where a = 00.001'),
  ('contact where a = 123456789012345678901234567890.123456789'),
  ('contact where a = true and b = FALSE'),
  ('contact where a = ''text'''),
  ('contact where a = ''it''''s'''),
  ('contact where a = '''''),
  ('contact where a = ''back\slash \n'''),
  ('contact where a = ''100% of _ ; -- not a comment /* */'''),
  ('contact where a = ''"double"'''),
  ('contact where a = ''héllo wörld ✓ 日本語 🙂'''),
  ('contact where a = ''line one
line two'''),
  ('contact where d = date ''2024-01-31'''),
  ('contact where d = date ''January 31, 2024'''),
  ('contact where d = date ''02/01/2024'''),
  ('contact where d = date ''20240131'''),
  ('contact where d = date ''infinity'' or d = date ''-infinity'''),
  ('contact where d = date ''0044-03-15 BC'''),
  ('contact where t = timestamp ''2024-01-31 14:30'''),
  ('contact where t = timestamp ''2024-01-31T14:30:15.250'''),
  ('contact where t = timestamp ''2024-01-31'''),
  ('contact where t = timestamp ''2024-02-29 23:59:59.999999'''),
  ('contact where d = today'),
  ('contact where d = TODAY - 1 day'),
  ('contact where d = today + 2 weeks'),
  ('contact where t < now - 30 minutes'),
  ('contact where t < now + 1 hour'),
  ('contact where t < now - 0 months'),
  ('contact where t > today - 10 years'),
  ('contact where t > today-10 years')
) v(q);

-- string operators, emptiness, lists, value sets, ranges, relative dates
SELECT q, (pg_temp.canon(q)).* FROM (VALUES
  ('contact where description contains ''Hypermetropia'''),
  ('contact where description not contains ''x'''),
  ('contact where last_name starts with ''Mc'''),
  ('contact where last_name not starts with ''Mc'''),
  ('contact where email ends with ''@example.org'''),
  ('contact where email NOT ENDS WITH ''@example.org'''),
  ('contact where email is empty'),
  ('contact where email is not empty'),
  ('contact where gender in (''female'')'),
  ('contact where gender in (''female'',''male'' ,  ''other'')'),
  ('contact where gender not in (''female'', ''male'')'),
  ('contact where x in (1, -2.50, true, date ''2024-01-01'', today - 1 day)'),
  ('contact where code in value_set ''mammography'''),
  ('contact where code not in value_set ''bilateral mastectomy'''),
  ('contact where age between 52 and 74'),
  ('contact where age not between 52 and 74 and status = ''active'''),
  ('contact where age at date ''2024-12-31'' between 52 and 74'),
  ('contact where AGE AT today + 1 year >= 18 and age at ''2024-12-31'' is not empty'),
  ('contact where age at today-2 months in (1, 2) or not age at date ''2024-02-29'' = 3'),
  ('contact where has x where age at now < 3'),
  ('contact where has immunization where administered_at < contact.birthdate + 2 years'),
  ('contact where has x where a in (contact.b, contact."Quoted" - 1 day, CONTACT."where" + 3 hours)'),
  ('contact where count(x where y between contact.birthdate and contact.birthdate+1 month) >= 1'),
  ('contact where has x where y < contact.birthdate + 2 years + 1 day - 3 hours'),
  ('contact where latest(observation.value_numeric where code = ''4548-4'') is empty'),
  ('contact where latest(observation.value_numeric) IS NOT EMPTY or not latest(x.y) is empty'),
  ('contact where count(DISTINCT immunization.administered_at where code = ''20'') >= 4'),
  ('contact where count(distinct.x) > 1 and count(distinct where a = 1) > 1 and count(distinct "distinct".x) > 1'),
  ('contact where count(distinct day of immunization.administered_at where code = ''20'') >= 4 and count(distinct day.x) > 1'),
  ('contact where birthdate between date ''1950-01-01'' and today - 18 years'),
  ('contact where created_at within last 1 day'),
  ('contact where created_at within last 2 days'),
  ('contact where x within next 1 minutes and y within next 5 minute'),
  ('contact where x within last 3 Hours and y within last 1 WEEKS'),
  ('contact where x within last 6 month and y within last 1 months'),
  ('contact where x within last 0 years and y within last 2147483647 years'),
  ('contact where birthdate older than 18 years'),
  ('contact where birthdate older than 1 year')
) v(q);

-- relations: has / has no / via / where takes one predicate
SELECT q, (pg_temp.canon(q)).* FROM (VALUES
  ('contact where has condition'),
  ('contact where has no condition'),
  ('contact where has condition where code = ''44054006'''),
  ('contact where has condition where code = ''1'' and onset_date within last 2 years'),
  ('contact where has condition where (code = ''1'' and onset_date within last 2 years)'),
  ('contact where has condition where (code = ''1'' or code = ''2'')'),
  ('contact where has condition where not code = ''1'''),
  ('contact where has condition where not (code = ''1'' and x = 2)'),
  ('contact where has condition where ((code = ''1''))'),
  ('contact where has encounter where has condition where code = ''44054006'''),
  ('contact where has encounter where (has condition where code = ''1'' and class = ''inpatient'')'),
  ('contact where has account where kind = ''household'''),
  ('contact where has observation via patient_id where value_numeric > 7'),
  ('contact where has no procedure via patient_id'),
  ('contact where not has condition'),
  ('contact where status = ''active'' and has condition where description contains ''Hypermetropia'''),
  ('contact where (has condition where a = 1) and b = 2'),
  ('contact where has condition where (a = 1) and b = 2')
) v(q);

-- aggregates, latest, in segment
SELECT q, (pg_temp.canon(q)).* FROM (VALUES
  ('contact where count(encounter) >= 2'),
  ('contact where COUNT(encounter where class = ''emergency'') > 1'),
  ('contact where count(encounter where class = ''emergency'' and start_at within last 1 year) >= 2'),
  ('contact where count(encounter where (a = 1 or b = 2) and c = 3) = 0'),
  ('contact where count(encounter.end_at) < 3'),
  ('contact where min(observation.value_numeric) <= 1.5'),
  ('contact where max(observation.value_numeric where code = ''4548-4'') > 9'),
  ('contact where sum(observation.value_numeric) != 0'),
  ('contact where avg(observation via patient_id.value_numeric) <> 5'),
  ('contact where latest(observation.value_numeric where code = ''4548-4'') > 9'),
  ('contact where latest(observation.value_text) = ''positive'''),
  ('contact where latest(encounter.start_at) < today - 1 year'),
  ('contact where count(encounter where has condition where code = ''x'') >= 1'),
  ('contact where in segment ''diabetics'''),
  ('contact where not in segment ''diabetics'' and in segment ''adults''')
) v(q);

-- identifiers: case folding, double quotes, keywords as names
SELECT q, (pg_temp.canon(q)).* FROM (VALUES
  ('contact where Status = ''active'''),
  ('contact where "Status" = ''active'''),
  ('contact where "status" = ''active'''),
  ('contact where "first name" = ''Ann'''),
  ('contact where "a""b" = 1'),
  ('contact where "date" = 1 and "count" = 2 and "where" = 3 and "and" = 4'),
  ('contact where count = 1 and latest = 2 and date = 3 and days = 4'),
  ('contact where "é" = 1 and é = 2'),
  ('contact where _x1$ = 1'),
  ('contact where has "Condition" via "Patient" where "Code" = ''1'''),
  ('contact where count("my table"."my field") > 1'),
  ('contact where has contact where segment = 1')
) v(q);

-- comments and whitespace
SELECT q, (pg_temp.canon(q)).* FROM (VALUES
  ('-- leading comment
contact'),
  ('contact -- trailing comment'),
  (E'contact\twhere\r\na = 1'),
  ('contact where a = 1 -- first
   and b = ''--not a comment'' -- second
   --and c = 3'),
  ('contact where a=1--comment')
) v(q);

-- the seed exercise and the HEDIS-style example of DESIGN §3
SELECT (pg_temp.canon($$contact where status = 'active' and has condition where description contains 'Hypermetropia'$$)).*;
SELECT (pg_temp.canon($$
contact where gender = 'female' and age between 52 and 74
  and has encounter where start_at within last 1 year
  and has no procedure where (code in value_set 'mammography' and performed_at within last 27 months)
  and has no procedure where code in value_set 'bilateral mastectomy'
$$)).*;

-- canonical forms compare equal; different queries do not
SELECT 'CONTACT WHERE A <> 1'::outreach.segment_query = 'contact where a != 1'::outreach.segment_query AS same,
       'contact where a = 1'::outreach.segment_query <> 'contact where a = 2'::outreach.segment_query AS differ,
       'contact where a = 1.0'::outreach.segment_query = 'contact where a = 1'::outreach.segment_query AS numbers_normalised,
       'contact where "A" = 1'::outreach.segment_query = 'contact where a = 1'::outreach.segment_query AS quoted_differs;
SELECT count(DISTINCT q) FROM (VALUES ('contact'::outreach.segment_query), ('CONTACT'), ('(contact)'), ('segment ''a''')) v(q);
CREATE TEMP TABLE sq_hash (q outreach.segment_query);
INSERT INTO sq_hash VALUES ('contact where a = 1'), ('contact where A = 1.00'), ('segment ''b''');
SELECT q, count(*) FROM sq_hash GROUP BY q ORDER BY q;
CREATE UNIQUE INDEX ON sq_hash (q);  -- fails: two rows have the same canonical form

-- long inputs: a long string, a long list, deep but allowed nesting
SELECT length((pg_temp.canon('contact where a = ''' || repeat('x''''', 50000) || '''')).canonical);
SELECT (pg_temp.canon('contact where a = ''' || repeat('x''''', 50000) || '''')).stable;
SELECT (pg_temp.canon('contact where a in (' || (SELECT string_agg(g::text, ', ') FROM generate_series(1, 10000) g) || ')')).stable;
SELECT (pg_temp.canon('contact where ' || repeat('(', 400) || 'a = 1' || repeat(')', 400))).*;
SELECT length(c), stable FROM pg_temp.canon('contact where ' || repeat('not ', 450) || 'a = 1') x(c, stable);
SELECT length(c), stable FROM pg_temp.canon('contact where ' || repeat('has x where ', 400) || 'a = 1') x(c, stable);
SELECT length(c), stable FROM pg_temp.canon(repeat('(', 400) || 'contact' || repeat(')', 400)) x(c, stable);
SELECT length(c), stable FROM pg_temp.canon('segment ''s''' || repeat(' union segment ''s''', 400)) x(c, stable);
SELECT length(c), stable FROM pg_temp.canon('contact where a = 1' || repeat(' and a = 1 or a = 2', 5000)) x(c, stable);

-- binary send/receive: COPY in binary format out to a file and back into another table
CREATE TEMP TABLE sq_out (id int, q outreach.segment_query);
INSERT INTO sq_out VALUES
  (1, 'contact'),
  (2, $$contact where status = 'active' and has condition where description contains 'Hypermetropia'$$),
  (3, $$segment 'a' union (segment 'b' except segment 'c')$$),
  (4, $$contact where a = 'héllo ✓ it''s' and t < timestamp '2024-01-31 14:30' and d > today - 3 days$$),
  (5, ('contact where a = ''' || repeat('y', 20000) || '''')::outreach.segment_query);
COPY sq_out TO '/tmp/outreach_query_syntax_binary.copy' (FORMAT binary);
CREATE TEMP TABLE sq_in (id int, q outreach.segment_query);
COPY sq_in FROM '/tmp/outreach_query_syntax_binary.copy' (FORMAT binary);
SELECT o.id, o.q = i.q AS equal, o.q::text = i.q::text AS same_text
FROM sq_out o JOIN sq_in i USING (id) ORDER BY id;
SELECT outreach.segment_query_send(q) FROM sq_out WHERE id = 1;

-- receive checks like input: non-canonical text is canonicalised, bad text and unknown
-- versions are refused.  The files are made by COPYing bytea values in binary format,
-- whose binary form is the raw bytes.
CREATE TEMP TABLE raw_bytes (id int, b bytea);
INSERT INTO raw_bytes VALUES (1, '\x01'::bytea || convert_to('CONTACT WHERE A <> 1', 'UTF8'));
COPY raw_bytes TO '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
TRUNCATE sq_in;
COPY sq_in FROM '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
SELECT id, q FROM sq_in;
TRUNCATE raw_bytes;
INSERT INTO raw_bytes VALUES (1, '\x02'::bytea || convert_to('contact', 'UTF8'));
COPY raw_bytes TO '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
COPY sq_in FROM '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
TRUNCATE raw_bytes;
INSERT INTO raw_bytes VALUES (1, '\x01'::bytea || convert_to('contact where', 'UTF8'));
COPY raw_bytes TO '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
COPY sq_in FROM '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
TRUNCATE raw_bytes;
INSERT INTO raw_bytes VALUES (1, '\x01636f6e7461637400'::bytea);
COPY raw_bytes TO '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
COPY sq_in FROM '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
TRUNCATE raw_bytes;
INSERT INTO raw_bytes VALUES (1, ''::bytea);
COPY raw_bytes TO '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
COPY sq_in FROM '/tmp/outreach_query_syntax_raw.copy' (FORMAT binary);
SELECT count(*) FROM sq_in;
