-- hardening: error messages of the reproductions of issue 19 (limits, refused values)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach CASCADE;
RESET client_min_messages;
\set VERBOSITY default

-- Defect 2: compilation is linear in the query's size; beyond the documented limits a
-- query is refused before anything proportional to it is allocated.
-- 100 steps after a contact field compile (linear: the SQL is about 60 bytes per step)
SELECT length(outreach.compile(('contact where has condition where onset_date > contact.birthdate'
  || repeat(' + 1 day', 100))::outreach.segment_query)) < 100 * 80 AS linear;
-- the 101st step is refused
SELECT outreach.compile(('contact where has condition where onset_date > contact.birthdate'
  || repeat(' + 1 day', 101))::outreach.segment_query);
-- 10,000 list items compile, the 10,001st is refused
SELECT length(outreach.compile(('contact where first_name in ('
  || (SELECT string_agg(quote_literal(i::text), ',') FROM generate_series(1, 10000) i) || ')')::outreach.segment_query)) > 0 AS compiled;
SELECT outreach.validate(('contact where first_name in ('
  || (SELECT string_agg(quote_literal(i::text), ',') FROM generate_series(1, 10001) i) || ')')::outreach.segment_query);
-- a million items (2.4 GB in 0.2.0) is refused by the length limit before tokenizing
SELECT outreach.validate(('contact where first_name in ('
  || (SELECT string_agg(i::text, ',') FROM generate_series(1, 1000000) i) || ')')::outreach.segment_query);
-- 256 KiB is the longest query
SELECT ('contact where first_name = ''' || repeat('x', 262144 - 29) || '''')::outreach.segment_query IS NOT NULL AS longest_accepted;
-- nesting deeper than 500 levels
SELECT (repeat('(', 501) || 'contact' || repeat(')', 501))::outreach.segment_query IS NOT NULL;

-- Defect 8: validation refuses what cannot be evaluated (0.2.0 took these live, and every
-- later INSERT INTO outreach.condition failed with "timestamp out of range")
SELECT outreach.create_segment('far', 'contact where has condition where onset_date > contact.birthdate + 99999 years + 99999 years');
SELECT outreach.create_segment('bc', 'contact where age at date ''4714-11-24 BC'' >= 18');
SELECT outreach.validate('contact where birthdate within last 100000 years');
SELECT outreach.validate('contact where birthdate > today - 1001 years');
-- within the limits
SELECT outreach.validate('contact where birthdate > today - 1000 years and age at date ''0001-01-01'' < 5');

-- Defect 9: internal functions check their arguments
SELECT outreach._apply_segment(NULL, '{1}');
-- a value set name with a backslash, as quote_literal() writes it (templates do), is read
INSERT INTO outreach.value_set (name, code_system, code) VALUES ('codes\2024', 'snomed', '1');
SELECT quote_literal('codes\2024') AS written;
SELECT outreach.validate(('contact where has condition where code in value_set ' || quote_literal('codes\2024'))::outreach.segment_query);
SELECT ('contact where has condition where code in value_set ' || quote_literal('codes\2024'))::outreach.segment_query AS canonical;
SELECT 'contact where first_name = E''a\nb'''::outreach.segment_query;
-- bidirectional control characters are refused in quoted identifiers and names
SELECT ('contact where "first' || U&'\202E' || 'name" = ''x''')::outreach.segment_query;
SELECT ('segment ''vip' || U&'\202E' || 'gnp''')::outreach.segment_query;
SELECT outreach.create_segment('vip' || U&'\202E' || 'gnp', 'contact');
-- in values they are data
SELECT ('contact where first_name = ''a' || U&'\202E' || 'b''')::outreach.segment_query IS NOT NULL AS value_ok;
