-- test/fuzz/fuzz_parser.sql: generators and checks for test/extra/fuzz_parser.sh.
--
-- Everything lives in schema outreach_fuzz (created and dropped by the driver).  Inputs are
-- generated with random() after setseed(), so a batch is reproducible from its seed:
--   valid     random queries from the grammar of DESIGN §3 (must be accepted)
--   mutated   valid queries with tokens or characters inserted, deleted, swapped, truncated
--   tokens    random sequences of the language's vocabulary
-- and checked: accepted inputs print a canonical form that reads back to itself and to the
-- same parse tree (and to an equal value, and sends as version byte + text); rejected inputs fail with SQLSTATE 42601 and
-- a "syntax error in segment query at character N" message with N inside the text, or with a
-- 22xxx data exception; never anything else.

CREATE TABLE outreach_fuzz.input (
  id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  batch int NOT NULL,
  kind  text NOT NULL,
  q     text NOT NULL
);
CREATE TABLE outreach_fuzz.failure (
  batch  int NOT NULL,
  kind   text NOT NULL,
  q      text NOT NULL,
  detail text NOT NULL
);

CREATE FUNCTION outreach_fuzz.pick(a text[]) RETURNS text LANGUAGE sql VOLATILE AS
$$ SELECT a[1 + floor(random() * array_length(a, 1))::int] $$;

CREATE FUNCTION outreach_fuzz.chance(p float8) RETURNS boolean LANGUAGE sql VOLATILE AS
$$ SELECT random() < p $$;

CREATE FUNCTION outreach_fuzz.rnd(lo int, hi int) RETURNS int LANGUAGE sql VOLATILE AS
$$ SELECT lo + floor(random() * (hi - lo + 1))::int $$;

-- a keyword, sometimes in upper or mixed case (keywords are case-insensitive)
CREATE FUNCTION outreach_fuzz.kw(w text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF random() < 0.1 THEN RETURN upper(w); END IF;
  IF random() < 0.05 THEN RETURN initcap(w); END IF;
  RETURN w;
END $$;

-- the space between tokens: usually one blank, sometimes more, a newline or a comment
CREATE FUNCTION outreach_fuzz.sp() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE r float8 := random();
BEGIN
  IF r < 0.90 THEN RETURN ' '; END IF;
  IF r < 0.94 THEN RETURN '   '; END IF;
  IF r < 0.97 THEN RETURN E'\n\t'; END IF;
  RETURN E' -- a comment (with ''quotes'')\n';
END $$;

CREATE FUNCTION outreach_fuzz.ident() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT outreach_fuzz.pick(ARRAY['status', 'code', 'a', 'b1', 'first_name', 'Birthdate', 'AGE',
    '"Quoted"', '"x""y"', '"date"', '"count"', '"where"', 'count', 'latest', 'date', 'days',
    'é', 'naïve', '_x$', '"with space"', 'value_set', 'segment', 'contact', '"🙂"'])
$$;

CREATE FUNCTION outreach_fuzz.entity() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT outreach_fuzz.pick(ARRAY['condition', 'encounter', 'observation', 'procedure', 'account',
    'Medication', '"My Table"', 'x', 'contact'])
$$;

CREATE FUNCTION outreach_fuzz.str() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF random() < 0.1 THEN
    RETURN '''' || repeat(outreach_fuzz.pick(ARRAY['z', 'é', '''''', ' ', '✓']), outreach_fuzz.rnd(0, 300)) || '''';
  END IF;
  RETURN outreach_fuzz.pick(ARRAY['''x''', '''''', '''it''''s''', '''%_\''', '''--''', '''héllo ✓ 日本''',
    '''"''', '''active''', '''Hypermetropia''', '''a;b''', '''/* c */''', E'''multi\nline''']);
END $$;

CREATE FUNCTION outreach_fuzz.num() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT outreach_fuzz.pick(ARRAY['0', '1', '42', '-3', '3.14', '007.50', '-0', '0.000',
    '123456789012345678901234567890.5', '- 7', (outreach_fuzz.rnd(0, 100000))::text])
$$;

CREATE FUNCTION outreach_fuzz.amount() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT outreach_fuzz.pick(ARRAY['0', '1', '2', '30', '2147483647', (outreach_fuzz.rnd(0, 1000))::text])
$$;

CREATE FUNCTION outreach_fuzz.unit() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT outreach_fuzz.kw(outreach_fuzz.pick(ARRAY['minute', 'minutes', 'hour', 'hours', 'day', 'days',
    'week', 'weeks', 'month', 'months', 'year', 'years']))
$$;

CREATE FUNCTION outreach_fuzz.cmp() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT outreach_fuzz.pick(ARRAY['=', '!=', '<>', '<', '<=', '>', '>='])
$$;

CREATE FUNCTION outreach_fuzz.value() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE r int := outreach_fuzz.rnd(1, 9);
BEGIN
  CASE r
    WHEN 9 THEN RETURN outreach_fuzz.kw('contact') || '.' || outreach_fuzz.ident() ||
        CASE WHEN random() < 0.5 THEN ' ' || outreach_fuzz.pick(ARRAY['+', '-']) || ' ' ||
          outreach_fuzz.amount() || ' ' || outreach_fuzz.unit() ELSE '' END;
    WHEN 1, 2 THEN RETURN outreach_fuzz.str();
    WHEN 3, 4 THEN RETURN outreach_fuzz.num();
    WHEN 5 THEN RETURN outreach_fuzz.kw(outreach_fuzz.pick(ARRAY['true', 'false']));
    WHEN 6 THEN RETURN outreach_fuzz.kw('date') || ' ' || outreach_fuzz.pick(ARRAY['''2024-01-31''',
      '''January 5, 2020''', '''infinity''', '''20240229''', '''0044-03-15 BC''']);
    WHEN 7 THEN RETURN outreach_fuzz.kw('timestamp') || ' ' || outreach_fuzz.pick(ARRAY[
      '''2024-01-31 10:00''', '''2024-01-31T10:00:59.5''', '''2024-01-31''', '''-infinity''']);
    ELSE
      RETURN outreach_fuzz.kw(outreach_fuzz.pick(ARRAY['today', 'now'])) ||
        CASE WHEN random() < 0.6 THEN ' ' || outreach_fuzz.pick(ARRAY['+', '-']) || ' ' ||
          outreach_fuzz.amount() || ' ' || outreach_fuzz.unit() ELSE '' END;
  END CASE;
END $$;

CREATE FUNCTION outreach_fuzz.relation() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN outreach_fuzz.entity() ||
    CASE WHEN random() < 0.2 THEN ' ' || outreach_fuzz.kw('via') || ' ' || outreach_fuzz.ident() ELSE '' END;
END $$;

CREATE FUNCTION outreach_fuzz.cond(depth int) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  result text := '';
  conj text;
  i int;
  j int;
BEGIN
  FOR i IN 1 .. CASE WHEN depth > 0 AND random() < 0.3 THEN outreach_fuzz.rnd(2, 3) ELSE 1 END LOOP
    conj := '';
    FOR j IN 1 .. CASE WHEN depth > 0 AND random() < 0.4 THEN outreach_fuzz.rnd(2, 3) ELSE 1 END LOOP
      conj := conj || CASE WHEN j > 1 THEN outreach_fuzz.sp() || outreach_fuzz.kw('and') || outreach_fuzz.sp() ELSE '' END
        || outreach_fuzz.neg(depth);
    END LOOP;
    result := result || CASE WHEN i > 1 THEN outreach_fuzz.sp() || outreach_fuzz.kw('or') || outreach_fuzz.sp() ELSE '' END || conj;
  END LOOP;
  RETURN result;
END $$;

CREATE FUNCTION outreach_fuzz.neg(depth int) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE r float8 := random();
BEGIN
  IF depth > 0 AND r < 0.12 THEN
    RETURN outreach_fuzz.kw('not') || outreach_fuzz.sp() || outreach_fuzz.neg(depth - 1);
  END IF;
  IF depth > 0 AND r < 0.25 THEN
    RETURN '(' || outreach_fuzz.cond(depth - 1) || ')';
  END IF;
  RETURN outreach_fuzz.pred(depth);
END $$;

CREATE FUNCTION outreach_fuzz.pred(depth int) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  r int := outreach_fuzz.rnd(1, CASE WHEN depth > 0 THEN 14 ELSE 10 END);
  -- a field, or contact's age on a date
  f text := CASE WHEN random() < 0.08 THEN outreach_fuzz.kw('age') || ' ' || outreach_fuzz.kw('at') || ' ' || outreach_fuzz.value()
                 ELSE outreach_fuzz.ident() END;
  s text := outreach_fuzz.sp();
  n text := CASE WHEN random() < 0.3 THEN outreach_fuzz.kw('not') || ' ' ELSE '' END;
  vals text;
  i int;
BEGIN
  CASE r
    WHEN 1, 2 THEN RETURN f || s || outreach_fuzz.cmp() || s || outreach_fuzz.value();
    WHEN 3 THEN RETURN f || s || n || outreach_fuzz.kw(outreach_fuzz.pick(ARRAY['contains', 'starts with', 'ends with'])) || s || outreach_fuzz.str();
    WHEN 4 THEN RETURN f || s || outreach_fuzz.kw('is') || s || CASE WHEN n <> '' THEN outreach_fuzz.kw('not') || ' ' ELSE '' END || outreach_fuzz.kw('empty');
    WHEN 5 THEN
      vals := outreach_fuzz.value();
      FOR i IN 1 .. outreach_fuzz.rnd(0, 4) LOOP
        vals := vals || outreach_fuzz.pick(ARRAY[', ', ',', ' , ']) || outreach_fuzz.value();
      END LOOP;
      RETURN f || s || n || outreach_fuzz.kw('in') || s || '(' || vals || ')';
    WHEN 6 THEN RETURN f || s || n || outreach_fuzz.kw('in') || s || outreach_fuzz.kw('value_set') || s || outreach_fuzz.str();
    WHEN 7 THEN RETURN f || s || n || outreach_fuzz.kw('between') || s || outreach_fuzz.value() || s || outreach_fuzz.kw('and') || s || outreach_fuzz.value();
    WHEN 8 THEN RETURN f || s || outreach_fuzz.kw('within') || s || outreach_fuzz.kw(outreach_fuzz.pick(ARRAY['last', 'next'])) || s || outreach_fuzz.amount() || s || outreach_fuzz.unit();
    WHEN 9 THEN RETURN f || s || outreach_fuzz.kw('older') || s || outreach_fuzz.kw('than') || s || outreach_fuzz.amount() || s || outreach_fuzz.unit();
    WHEN 10 THEN RETURN outreach_fuzz.kw('in') || s || outreach_fuzz.kw('segment') || s || outreach_fuzz.str();
    WHEN 11, 12 THEN
      RETURN outreach_fuzz.kw('has') || s || CASE WHEN random() < 0.3 THEN outreach_fuzz.kw('no') || ' ' ELSE '' END
        || outreach_fuzz.relation()
        || CASE WHEN random() < 0.7 THEN s || outreach_fuzz.kw('where') || s || outreach_fuzz.neg(depth - 1) ELSE '' END;
    WHEN 13 THEN
      IF random() < 0.15 THEN
        -- count(distinct R.f ...): always with a field
        RETURN outreach_fuzz.kw('count') || '(' || outreach_fuzz.kw('distinct') || ' ' || outreach_fuzz.relation()
          || '.' || outreach_fuzz.ident()
          || CASE WHEN random() < 0.6 THEN s || outreach_fuzz.kw('where') || s || outreach_fuzz.cond(depth - 1) ELSE '' END
          || ')' || s || outreach_fuzz.cmp() || s || outreach_fuzz.value();
      END IF;
      RETURN outreach_fuzz.kw(outreach_fuzz.pick(ARRAY['count', 'min', 'max', 'sum', 'avg'])) || '(' || outreach_fuzz.relation()
        || CASE WHEN random() < 0.5 THEN '.' || outreach_fuzz.ident() ELSE '' END
        || CASE WHEN random() < 0.6 THEN s || outreach_fuzz.kw('where') || s || outreach_fuzz.cond(depth - 1) ELSE '' END
        || ')' || s || outreach_fuzz.cmp() || s || outreach_fuzz.value();
    ELSE
      RETURN outreach_fuzz.kw('latest') || '(' || outreach_fuzz.relation() || '.' || outreach_fuzz.ident()
        || CASE WHEN random() < 0.6 THEN s || outreach_fuzz.kw('where') || s || outreach_fuzz.cond(depth - 1) ELSE '' END
        || ')' || s || CASE WHEN random() < 0.2
                            THEN outreach_fuzz.kw('is') || s || CASE WHEN random() < 0.5 THEN outreach_fuzz.kw('not') || s ELSE '' END || outreach_fuzz.kw('empty')
                            ELSE outreach_fuzz.cmp() || s || outreach_fuzz.value() END;
  END CASE;
END $$;

CREATE FUNCTION outreach_fuzz.query(depth int) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  result text;
  i int;
BEGIN
  result := outreach_fuzz.term(depth);
  FOR i IN 1 .. CASE WHEN depth > 0 AND random() < 0.3 THEN outreach_fuzz.rnd(1, 3) ELSE 0 END LOOP
    result := result || outreach_fuzz.sp() || outreach_fuzz.kw(outreach_fuzz.pick(ARRAY['union', 'intersect', 'except']))
      || outreach_fuzz.sp() || outreach_fuzz.term(depth - 1);
  END LOOP;
  RETURN result;
END $$;

CREATE FUNCTION outreach_fuzz.term(depth int) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE r float8 := random();
BEGIN
  IF depth > 0 AND r < 0.1 THEN
    RETURN '(' || outreach_fuzz.query(depth - 1) || ')';
  END IF;
  IF r < 0.2 THEN
    RETURN outreach_fuzz.kw('segment') || outreach_fuzz.sp() || outreach_fuzz.str();
  END IF;
  IF r < 0.25 THEN
    RETURN outreach_fuzz.kw('contact');
  END IF;
  RETURN outreach_fuzz.kw('contact') || outreach_fuzz.sp() || outreach_fuzz.kw('where') || outreach_fuzz.sp() || outreach_fuzz.cond(depth);
END $$;

-- one token of the language's vocabulary, or something near it
CREATE FUNCTION outreach_fuzz.token() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE r float8 := random();
BEGIN
  IF r < 0.45 THEN
    RETURN outreach_fuzz.kw(outreach_fuzz.pick(ARRAY['contact', 'where', 'segment', 'union', 'intersect',
      'except', 'or', 'and', 'not', 'contains', 'starts', 'with', 'ends', 'is', 'empty', 'in', 'value_set',
      'between', 'within', 'last', 'next', 'older', 'than', 'has', 'no', 'via', 'count', 'min', 'max', 'sum',
      'avg', 'latest', 'age', 'at', 'distinct', 'true', 'false', 'date', 'timestamp', 'today', 'now', 'day', 'years', 'null', 'like']));
  END IF;
  IF r < 0.65 THEN
    RETURN outreach_fuzz.pick(ARRAY['(', ')', ',', '.', '=', '!=', '<>', '<', '<=', '>', '>=', '+', '-', '--',
      '!', ';', '''', '"', '(', ')']);
  END IF;
  IF r < 0.75 THEN RETURN outreach_fuzz.ident(); END IF;
  IF r < 0.85 THEN RETURN outreach_fuzz.str(); END IF;
  IF r < 0.95 THEN RETURN outreach_fuzz.num(); END IF;
  RETURN outreach_fuzz.pick(ARRAY['99999999999999999999', '1e5', '1.', '.5', '0x1F', '1.2.3', repeat('9', 1200),
    '12' || repeat('é', 40), '"' || repeat('日', 40) || '"', repeat('ü', 80), '''' || repeat('✓', 60) || '''']);
END $$;

-- a character to insert: syntax, quotes, digits, letters, non-ASCII, control characters
CREATE FUNCTION outreach_fuzz.chr_any() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE r float8 := random();
BEGIN
  IF r < 0.5 THEN
    RETURN outreach_fuzz.pick(ARRAY['(', ')', '''', '"', '-', '.', ',', '!', '<', '>', '=', ' ', '\', ';', '@',
      '0', '9', 'a', 'Z', '_', '$', '+', E'\n', '''''', '""']);
  END IF;
  IF r < 0.6 THEN RETURN chr(outreach_fuzz.rnd(1, 31)); END IF;
  IF r < 0.8 THEN RETURN chr(outreach_fuzz.rnd(128, 55295)); END IF;
  IF r < 0.9 THEN RETURN chr(outreach_fuzz.rnd(57344, 1114111)); END IF;
  RETURN chr(outreach_fuzz.rnd(32, 126));
END $$;

CREATE FUNCTION outreach_fuzz.mutate(q text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  toks text[];
  n int;
  i int;
  j int;
  t text;
  k int;
BEGIN
  FOR k IN 1 .. outreach_fuzz.rnd(1, 3) LOOP
    n := length(q);
    CASE outreach_fuzz.rnd(1, 9)
      WHEN 1 THEN  -- delete a token
        toks := regexp_split_to_array(q, ' ');
        i := outreach_fuzz.rnd(1, array_length(toks, 1));
        q := array_to_string(toks[1:i - 1] || toks[i + 1:], ' ');
      WHEN 2 THEN  -- insert a token
        toks := regexp_split_to_array(q, ' ');
        i := outreach_fuzz.rnd(0, array_length(toks, 1));
        q := array_to_string(toks[1:i] || outreach_fuzz.token() || toks[i + 1:], ' ');
      WHEN 3 THEN  -- swap two tokens
        toks := regexp_split_to_array(q, ' ');
        i := outreach_fuzz.rnd(1, array_length(toks, 1));
        j := outreach_fuzz.rnd(1, array_length(toks, 1));
        t := toks[i]; toks[i] := toks[j]; toks[j] := t;
        q := array_to_string(toks, ' ');
      WHEN 4 THEN  -- duplicate a span of tokens
        toks := regexp_split_to_array(q, ' ');
        i := outreach_fuzz.rnd(1, array_length(toks, 1));
        j := outreach_fuzz.rnd(i, least(i + 4, array_length(toks, 1)));
        q := array_to_string(toks[1:j] || toks[i:j] || toks[j + 1:], ' ');
      WHEN 5 THEN  -- delete a character
        i := outreach_fuzz.rnd(1, greatest(n, 1));
        q := substr(q, 1, i - 1) || substr(q, i + 1);
      WHEN 6 THEN  -- insert a character
        i := outreach_fuzz.rnd(1, n + 1);
        q := substr(q, 1, i - 1) || outreach_fuzz.chr_any() || substr(q, i);
      WHEN 7 THEN  -- replace a character
        i := outreach_fuzz.rnd(1, greatest(n, 1));
        q := substr(q, 1, i - 1) || outreach_fuzz.chr_any() || substr(q, i + 1);
      WHEN 8 THEN  -- truncate
        q := substr(q, 1, outreach_fuzz.rnd(0, n));
      ELSE  -- flip the case of a stretch
        i := outreach_fuzz.rnd(1, greatest(n, 1));
        j := outreach_fuzz.rnd(1, 20);
        q := substr(q, 1, i - 1) || upper(substr(q, i, j)) || substr(q, i + j);
    END CASE;
  END LOOP;
  RETURN q;
END $$;

CREATE FUNCTION outreach_fuzz.generate(batch int, seed float8, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  i int;
  r float8;
  q text;
  t int;
BEGIN
  PERFORM setseed(seed);
  FOR i IN 1 .. n LOOP
    r := random();
    IF r < 0.3 THEN
      INSERT INTO outreach_fuzz.input (batch, kind, q) VALUES (batch, 'valid', outreach_fuzz.query(outreach_fuzz.rnd(0, 4)));
    ELSIF r < 0.8 THEN
      INSERT INTO outreach_fuzz.input (batch, kind, q) VALUES (batch, 'mutated', outreach_fuzz.mutate(outreach_fuzz.query(outreach_fuzz.rnd(0, 3))));
    ELSE
      q := '';
      FOR t IN 1 .. outreach_fuzz.rnd(1, 25) LOOP
        q := q || CASE WHEN t > 1 THEN outreach_fuzz.sp() ELSE '' END || outreach_fuzz.token();
      END LOOP;
      IF random() < 0.5 THEN
        q := outreach_fuzz.kw('contact') || ' ' || outreach_fuzz.kw('where') || ' ' || q;
      END IF;
      INSERT INTO outreach_fuzz.input (batch, kind, q) VALUES (batch, 'tokens', q);
    END IF;
  END LOOP;
END $$;

-- check one input; returns 'accepted', 'rejected' or 'fail: <why>'
CREATE FUNCTION outreach_fuzz.check_one(q text, must_accept boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  c text;
  c2 text;
  st text;
  msg text;
  detail text;
  hint text;
  pos int;
BEGIN
  BEGIN
    c := q::outreach.segment_query::text;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
      hint = PG_EXCEPTION_HINT;
    BEGIN
      -- convert_from validates: a message cut inside a multibyte character fails here
      PERFORM convert_from(convert_to(msg || coalesce(detail, '') || coalesce(hint, ''), 'UTF8'), 'UTF8');
    EXCEPTION WHEN OTHERS THEN
      RETURN 'fail: the error message is not valid UTF-8: ' || st;
    END;
    IF must_accept THEN
      RETURN 'fail: a query of the grammar was rejected: ' || st || ' ' || msg;
    END IF;
    IF st = '42601' THEN
      pos := substring(msg FROM '^syntax error in segment query at character ([0-9]+): ')::int;
      IF pos IS NULL THEN
        RETURN 'fail: syntax error without a position: ' || msg;
      END IF;
      IF pos < 1 OR pos > length(q) + 1 THEN
        RETURN 'fail: position ' || pos || ' outside the text of length ' || length(q) || ': ' || msg;
      END IF;
      RETURN 'rejected';
    END IF;
    IF st LIKE '22%' THEN
      RETURN 'rejected';
    END IF;
    RETURN 'fail: rejected with ' || st || ' ' || msg;
  END;
  BEGIN
    c2 := c::outreach.segment_query::text;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN 'fail: the canonical form ' || c || ' is rejected: ' || st || ' ' || msg;
  END;
  IF c2 IS DISTINCT FROM c THEN
    RETURN 'fail: canonical form is not stable: ' || c || ' reads back as ' || c2;
  END IF;
  IF outreach._segment_query_tree(q) IS DISTINCT FROM outreach._segment_query_tree(c) THEN
    RETURN 'fail: the canonical form ' || c || ' means something else: ' || outreach._segment_query_tree(q)
      || ' became ' || outreach._segment_query_tree(c);
  END IF;
  IF NOT (q::outreach.segment_query OPERATOR(outreach.=) c::outreach.segment_query) THEN
    RETURN 'fail: input and canonical form are not equal';
  END IF;
  IF outreach.segment_query_send(q::outreach.segment_query) <> '\x01'::bytea || convert_to(c, 'UTF8') THEN
    RETURN 'fail: send is not version byte 1 and the canonical text';
  END IF;
  RETURN 'accepted';
END $$;

-- check a batch; failures are recorded, the counts returned
CREATE FUNCTION outreach_fuzz.check_batch(b int, OUT accepted int, OUT rejected int, OUT failed int)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
  v text;
BEGIN
  accepted := 0; rejected := 0; failed := 0;
  FOR r IN SELECT kind, q FROM outreach_fuzz.input WHERE batch = b ORDER BY id LOOP
    v := outreach_fuzz.check_one(r.q, r.kind = 'valid');
    IF v = 'accepted' THEN
      accepted := accepted + 1;
    ELSIF v = 'rejected' THEN
      rejected := rejected + 1;
    ELSE
      failed := failed + 1;
      INSERT INTO outreach_fuzz.failure VALUES (b, r.kind, r.q, v);
    END IF;
  END LOOP;
END $$;
