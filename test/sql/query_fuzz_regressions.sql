SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE; RESET client_min_messages;
-- query_fuzz_regressions: inputs that once broke the parser, the type or the deparser (found
-- by test/extra/fuzz_parser.sh or while building it), kept so they stay fixed.  Each row
-- shows whether the input is accepted with a stable canonical form meaning the same tree,
-- or rejected with which SQLSTATE and message.
CREATE FUNCTION pg_temp.verdict(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  c text;
  st text;
  msg text;
BEGIN
  BEGIN
    c := q::outreach.segment_query::text;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN st || ' ' || msg;
  END;
  IF c::outreach.segment_query::text IS DISTINCT FROM c THEN
    RETURN 'UNSTABLE ' || c;
  END IF;
  IF outreach._segment_query_tree(c) IS DISTINCT FROM outreach._segment_query_tree(q) THEN
    RETURN 'CHANGED MEANING ' || c;
  END IF;
  RETURN 'ok: ' || c;
END $$;

SELECT n, pg_temp.verdict(q) FROM (VALUES
  -- every predicate once crashed the deparser (the field of the node was never set)
  (1, 'contact where a = 1'),
  (2, 'contact where a is empty'),
  -- the has filter is one predicate: an and/or inside it must keep its parentheses
  (3, 'contact where has x where (a = 1 and b = 2)'),
  (4, 'contact where has x where (a = 1 or b = 2) and c = 3'),
  (5, 'contact where not (a = 1 and b = 2)'),
  (6, 'contact where not (has x where a = 1) and b = 2'),
  (7, 'contact where has x where not (a = 1 or b = 2)'),
  (8, 'contact where count(x where has y where (a = 1 and b = 2)) > 1'),
  -- set operations: the right operand keeps its parentheses, the left one drops them
  (9, 'segment ''a'' except (segment ''b'' except segment ''c'')'),
  (10, '((segment ''a'' except segment ''b'')) except segment ''c'''),
  (11, 'contact where a = 1 or b = 2 except contact where c = 3'),
  -- quotes, comments and control characters in odd places
  (12, 'contact where "x""y" = ''it''''s'''),
  (13, 'contact where a = ''--'' -- ''not a string'),
  (14, E'contact where a = 1 -- comment without newline'),
  (15, E'contact where a = ''\x01\x1f'''),
  (16, E'contact where\x0ba = 1'),
  (17, E'contact where a\x01= 1'),
  (18, 'contact where a = '''),
  (19, 'contact where a = "'),
  (20, 'contact where "'),
  (21, 'contact where """" = 1'),
  (22, 'contact where ""'),
  (23, ''''),
  (24, '"'),
  (25, '-'),
  (26, '--'),
  (27, '('),
  (28, ')'),
  -- numbers and amounts at their limits
  (29, 'contact where a = -0.000'),
  (30, 'contact where a = 0000000000000000000000001.1000000000000000000000'),
  (31, 'contact where a within last 2147483647 minutes'),
  (32, 'contact where a within last 2147483648 minutes'),
  (33, 'contact where a within last 00000000000000000000000000000001 day'),
  (34, 'contact where a = today - 9223372036854775808 days'),
  (35, 'contact where a = 1e5'),
  (36, 'contact where a = 0x1F'),
  -- dates and timestamps that PostgreSQL reads specially
  (37, 'contact where a = date ''epoch'''),
  (38, 'contact where a = date ''allballs'''),
  (39, 'contact where a = date ''J2451187'''),
  (40, 'contact where a = timestamp ''2024-01-31 24:00'''),
  (41, 'contact where a = timestamp ''294277-01-01'''),
  (42, 'contact where a = date ''' || repeat('1', 200) || ''''),
  (43, 'contact where a = date ''2024-01-31 10:00'''),
  (44, 'contact where a = timestamp ''2024-01-31 10:00 z'''),
  -- keywords where names go, names where keywords go
  (45, 'contact where has no no'),
  (46, 'contact where has "no"'),
  (47, 'contact where count(count.count) > count'),
  (48, 'contact where count(count.count) > 1'),
  (49, 'contact where latest(latest.latest) = latest'),
  (50, 'contact where in segment ''x'' segment'),
  (51, 'contact where "in" segment ''x'''),
  (52, 'contact where in = 1'),
  (53, 'contact where via via via = 1'),
  (54, 'contact where has x via via'),
  (55, 'contact where has x via "via" where a = 1'),
  (56, 'contact where value_set in value_set ''value_set'''),
  (57, 'contact where segment = ''segment'' union segment ''contact'''),
  -- non-ASCII: identifiers, strings, positions
  (58, 'contact where 日本 = ''語'''),
  (59, 'contact where 🙂 = 1 and'),
  (60, 'contact where é = ''é'' and é @ 1'),
  -- found by the fuzzer: "found quoted identifier ..." cut a long identifier inside a
  -- multibyte character, making the error message invalid UTF-8
  (61, 'contact "' || repeat('日', 40) || '"'),
  (62, 'contact where status "' || repeat('日', 40) || '" within next 2 hours'),
  (63, 'contact where a = 12' || repeat('é', 40)),
  -- words and numbers quoted in messages are cut too
  (64, 'contact where a = ' || repeat('ü', 10000)),
  (65, 'contact where ' || repeat('ü', 10000) || ' like 1'),
  (66, 'contact where a within last ' || repeat('7', 900) || ' days')
) v(n, q) ORDER BY n;

-- error messages, details and hints are valid text even when they quote cut input
CREATE FUNCTION pg_temp.message_is_valid(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  msg text;
  detail text;
  hint text;
BEGIN
  PERFORM q::outreach.segment_query;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
  PERFORM convert_from(convert_to(msg || detail || hint, 'UTF8'), 'UTF8');
  RETURN true;
END $$;
SELECT pg_temp.message_is_valid('contact "' || repeat('日', n) || '"') AS quoted_identifier,
       pg_temp.message_is_valid('contact where a = 12' || repeat('é', n)) AS number,
       pg_temp.message_is_valid('contact where a = ''' || repeat('✓', n)) AS string,
       pg_temp.message_is_valid('contact where a = ' || repeat('ü', n)) AS word
FROM generate_series(1, 100, 33) n;

-- deep structures stay bounded: within the limit they read back the same, beyond it a
-- clean error, never a crash or a stack overflow
SELECT pg_temp.verdict('contact where ' || repeat('not (', 240) || 'a = 1' || repeat(')', 240)) LIKE 'ok: %' AS not_parens_240;
SELECT pg_temp.verdict('contact where ' || repeat('has x where (a = 1 and ', 240) || 'b = 1' || repeat(')', 240)) LIKE 'ok: %' AS has_and_240;
SELECT pg_temp.verdict(repeat('(', 10000) || 'contact');
SELECT pg_temp.verdict('contact where ' || repeat('not ', 50000) || 'a = 1');
SELECT pg_temp.verdict('segment ''a''' || repeat(' except segment ''a''', 10000));
SELECT pg_temp.verdict('contact where a in (' || repeat('1, ', 9999) || '1)') LIKE 'ok: %' AS long_in_list;
SELECT pg_temp.verdict('contact where ' || repeat('a = 1 and ', 25000) || 'a = 1') LIKE 'ok: %' AS long_and_list;
-- beyond the documented limits (256 KiB, 10,000 list items): refused before parsing or allocating
SELECT pg_temp.verdict('contact where a in (' || repeat('1, ', 100000) || '1)');
SELECT pg_temp.verdict('contact where a in (' || repeat('1, ', 10000) || '1)');
