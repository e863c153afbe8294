SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE; RESET client_min_messages;
-- query_syntax_errors: every syntax error of the segment language names the 1-based
-- character position and what was expected, shows the text with a caret and hints where
-- a hint helps.  All are SQLSTATE 42601 (syntax_error).

-- empty input
SELECT ''::outreach.segment_query;
SELECT '   '::outreach.segment_query;
SELECT '-- only a comment'::outreach.segment_query;

-- query level
SELECT 'contacts'::outreach.segment_query;
SELECT 'where a = 1'::outreach.segment_query;
SELECT 'contact status = ''active'''::outreach.segment_query;
SELECT 'contact where'::outreach.segment_query;
SELECT 'segment'::outreach.segment_query;
SELECT 'segment abc'::outreach.segment_query;
SELECT 'segment ''a'' union'::outreach.segment_query;
SELECT 'segment ''a'' unoin segment ''b'''::outreach.segment_query;
SELECT '(segment ''a'''::outreach.segment_query;
SELECT 'segment ''a'')'::outreach.segment_query;
SELECT 'contact; drop table x'::outreach.segment_query;

-- conditions
SELECT 'contact where age at'::outreach.segment_query;
SELECT 'contact where age at >= 18'::outreach.segment_query;
SELECT 'contact where age at date ''2024-12-31'''::outreach.segment_query;
SELECT 'contact where age at birthdate = 3'::outreach.segment_query;
SELECT 'contact where has x where y < contact.'::outreach.segment_query;
SELECT 'contact where has x where y < contact.birthdate + 2'::outreach.segment_query;
SELECT 'contact where has x where y < contact . where'::outreach.segment_query;
SELECT 'contact where latest(x.y) is'::outreach.segment_query;
SELECT 'contact where latest(x.y) is null'::outreach.segment_query;
SELECT 'contact where latest(x.y) empty'::outreach.segment_query;
SELECT 'contact where count(x) is empty'::outreach.segment_query;
SELECT 'contact where count(distinct immunization) > 1'::outreach.segment_query;
SELECT 'contact where count(distinct immunization where code = ''a'') > 1'::outreach.segment_query;
SELECT 'contact where count(distinct day of immunization) > 1'::outreach.segment_query;
SELECT 'contact where a = 1 b = 2'::outreach.segment_query;
SELECT 'contact where a = 1 adn b = 2'::outreach.segment_query;
SELECT 'contact where a = 1 and'::outreach.segment_query;
SELECT 'contact where and a = 1'::outreach.segment_query;
SELECT 'contact where (a = 1'::outreach.segment_query;
SELECT 'contact where ((a = 1)'::outreach.segment_query;
SELECT 'contact where a = 1)'::outreach.segment_query;
SELECT 'contact where ()'::outreach.segment_query;
SELECT 'contact where not'::outreach.segment_query;
SELECT 'contact where = 1'::outreach.segment_query;
SELECT 'contact where ''status'' = 1'::outreach.segment_query;
SELECT 'contact where true'::outreach.segment_query;
SELECT 'contact where status'::outreach.segment_query;
SELECT 'contact where status == ''active'''::outreach.segment_query;
SELECT 'contact where status ! ''active'''::outreach.segment_query;
SELECT 'contact where status @ ''active'''::outreach.segment_query;
SELECT 'contact where description contain ''x'''::outreach.segment_query;
SELECT 'contact where description like ''x%'''::outreach.segment_query;

-- values
SELECT 'contact where status ='::outreach.segment_query;
SELECT 'contact where status = active'::outreach.segment_query;
SELECT 'contact where status = "active"'::outreach.segment_query;
SELECT 'contact where status = ''active'::outreach.segment_query;
SELECT 'contact where status = ''it''s'''::outreach.segment_query;
SELECT 'contact where "status = 1'::outreach.segment_query;
SELECT 'contact where "" = 1'::outreach.segment_query;
SELECT 'contact where a = 12abc'::outreach.segment_query;
SELECT 'contact where a = 1.'::outreach.segment_query;
SELECT 'contact where a = 1.2.3'::outreach.segment_query;
SELECT 'contact where a = .5'::outreach.segment_query;
SELECT 'contact where a = +5'::outreach.segment_query;
SELECT 'contact where a = --5'::outreach.segment_query;
SELECT ('contact where a = ' || repeat('9', 1001))::outreach.segment_query;
SELECT 'contact where a = null'::outreach.segment_query;
SELECT 'contact where a = date'::outreach.segment_query;
SELECT 'contact where a = date 2024'::outreach.segment_query;
SELECT 'contact where a = date ''2024-13-01'''::outreach.segment_query;
SELECT 'contact where a = date ''2024-02-30'''::outreach.segment_query;
SELECT 'contact where a = date ''not a date'''::outreach.segment_query;
SELECT 'contact where a = date ''today'''::outreach.segment_query;
SELECT 'contact where a = timestamp ''now'''::outreach.segment_query;
SELECT 'contact where a = timestamp ''2024-01-01 25:00'''::outreach.segment_query;
SELECT 'contact where a = timestamp ''2024-01-01 10:00+02'''::outreach.segment_query;
SELECT 'contact where a = timestamp ''2024-01-01 10:00 Europe/Paris'''::outreach.segment_query;
SELECT 'contact where a = date ''5874898-01-01'''::outreach.segment_query;
SELECT 'contact where a = today -'::outreach.segment_query;
SELECT 'contact where a = today - 3'::outreach.segment_query;
SELECT 'contact where a = today - 3 dayz'::outreach.segment_query;
SELECT 'contact where a = today - 1.5 days'::outreach.segment_query;
SELECT 'contact where a = now + 2147483648 minutes'::outreach.segment_query;

-- operators after a field
SELECT 'contact where a not'::outreach.segment_query;
SELECT 'contact where a not is empty'::outreach.segment_query;
SELECT 'contact where a not = 1'::outreach.segment_query;
SELECT 'contact where a contains 5'::outreach.segment_query;
SELECT 'contact where a starts ''x'''::outreach.segment_query;
SELECT 'contact where a ends wiht ''x'''::outreach.segment_query;
SELECT 'contact where a is'::outreach.segment_query;
SELECT 'contact where a is null'::outreach.segment_query;
SELECT 'contact where a is not'::outreach.segment_query;
SELECT 'contact where a in'::outreach.segment_query;
SELECT 'contact where a in ()'::outreach.segment_query;
SELECT 'contact where a in (1, )'::outreach.segment_query;
SELECT 'contact where a in (1 2)'::outreach.segment_query;
SELECT 'contact where a in (1'::outreach.segment_query;
SELECT 'contact where a in valueset ''x'''::outreach.segment_query;
SELECT 'contact where a in value_set x'::outreach.segment_query;
SELECT 'contact where a between 1'::outreach.segment_query;
SELECT 'contact where a between 1 or 2'::outreach.segment_query;
SELECT 'contact where a within 3 days'::outreach.segment_query;
SELECT 'contact where a within last days'::outreach.segment_query;
SELECT 'contact where a within last -3 days'::outreach.segment_query;
SELECT 'contact where a within last 3'::outreach.segment_query;
SELECT 'contact where a within last 3 fortnights'::outreach.segment_query;
SELECT 'contact where a within last 99999999999999999999999 days'::outreach.segment_query;
SELECT 'contact where a older 3 days'::outreach.segment_query;
SELECT 'contact where a older than 3.5 years'::outreach.segment_query;

-- relations, aggregates, segments
SELECT 'contact where has'::outreach.segment_query;
SELECT 'contact where has no'::outreach.segment_query;
SELECT 'contact where has where a = 1'::outreach.segment_query;
SELECT 'contact where has condition where'::outreach.segment_query;
SELECT 'contact where has condition via'::outreach.segment_query;
SELECT 'contact where has condition via where a = 1'::outreach.segment_query;
SELECT 'contact where count(encounter) >'::outreach.segment_query;
SELECT 'contact where count(encounter)'::outreach.segment_query;
SELECT 'contact where count(encounter where a = 1'::outreach.segment_query;
SELECT 'contact where count() > 1'::outreach.segment_query;
SELECT 'contact where count(encounter.) > 1'::outreach.segment_query;
SELECT 'contact where latest(observation) > 1'::outreach.segment_query;
SELECT 'contact where latest(observation.value_numeric) contains ''x'''::outreach.segment_query;
SELECT 'contact where in segment'::outreach.segment_query;
SELECT 'contact where in segment diabetics'::outreach.segment_query;
SELECT 'contact where in ''diabetics'''::outreach.segment_query;

-- positions count characters, not bytes; long text is shown as an excerpt
SELECT 'contact where prénom = ''Zoë'' and ✓ = 1'::outreach.segment_query;  -- accepted: non-ASCII letters make identifiers
SELECT 'contact where prénom = ''Zoë'' and x @ 1'::outreach.segment_query;
SELECT 'contact where naïve = ''日本語'' and x ='::outreach.segment_query;
SELECT ('contact where a = 1 and ' || repeat('b = 2 and ', 20) || 'c = = 3 and ' || repeat('d = 4 and ', 20) || 'e = 5')::outreach.segment_query;
SELECT ('contact where a = ''' || repeat('x', 100000))::outreach.segment_query;
SELECT E'contact\nwhere a = 1\nand b =\n'::outreach.segment_query;
SELECT E'contact where a = 1 \x01'::outreach.segment_query;

-- nesting deeper than the limit is refused cleanly, also 10,000 levels
SELECT ('contact where ' || repeat('(', 10000) || 'a = 1' || repeat(')', 10000))::outreach.segment_query;
SELECT ('contact where ' || repeat('not ', 10000) || 'a = 1')::outreach.segment_query;
SELECT ('contact where ' || repeat('has x where ', 10000) || 'a = 1')::outreach.segment_query;
SELECT (repeat('(', 10000) || 'contact' || repeat(')', 10000))::outreach.segment_query;
SELECT ('contact where ' || repeat('count(x where ', 10000) || 'a = 1' || repeat(') > 1', 10000))::outreach.segment_query;
SELECT ('contact where ' || repeat('(', 501) || 'a = 1' || repeat(')', 501))::outreach.segment_query;
SELECT ('segment ''s''' || repeat(' union segment ''s''', 10000))::outreach.segment_query;
SELECT length(('contact where ' || repeat('(', 498) || 'a = 1' || repeat(')', 498))::outreach.segment_query::text);

-- every one of the errors above is SQLSTATE 42601
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text AS $$
BEGIN
  PERFORM q::outreach.segment_query;
  RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$ LANGUAGE plpgsql;
SELECT pg_temp.sqlstate_of(q) AS sqlstate, count(*) FROM (VALUES
  (''), ('contacts'), ('contact where'), ('segment'), ('(segment ''a'''), ('contact;'),
  ('contact where a = 1 b'), ('contact where status = active'), ('contact where a = ''x'),
  ('contact where "x = 1'), ('contact where "" = 1'), ('contact where a = 1x'),
  ('contact where a = date ''x'''), ('contact where a = timestamp ''2024-01-01 10:00+02'''),
  ('contact where a within last 99999999999 days'), ('contact where a within last 3 dayz'),
  ('contact where a in ()'), ('contact where latest(x) = 1'),
  ('contact where ' || repeat('(', 10000) || 'a = 1' || repeat(')', 10000))
) v(q) GROUP BY 1;
