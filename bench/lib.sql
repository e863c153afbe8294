-- bench/lib.sql: the timing harness of `make bench` (loaded into the benchmark database only).
-- Every case records its runs (ms) and, where it has one, its baseline's runs in bench.result;
-- bench/run.sh prints the table.  Timings are clock_timestamp() deltas inside the server, so
-- no client round trip is counted.
CREATE SCHEMA bench;
CREATE TABLE bench.result (
  ord       serial,
  name      text PRIMARY KEY,
  runs      double precision[] NOT NULL,
  base      double precision[],
  base_name text,
  target    text,
  max_ratio double precision,     -- met when ratio <= max_ratio
  min_ratio double precision,     -- met when ratio >= min_ratio (baseline / case, "times cheaper")
  unit      text NOT NULL DEFAULT 'ms',
  note      text
);

CREATE FUNCTION bench.median(double precision[]) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
  SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest($1) x
$$;

CREATE FUNCTION bench.record(name text, runs double precision[], base double precision[] DEFAULT NULL,
                             base_name text DEFAULT NULL, target text DEFAULT NULL,
                             max_ratio double precision DEFAULT NULL, min_ratio double precision DEFAULT NULL,
                             unit text DEFAULT 'ms', note text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO bench.result (name, runs, base, base_name, target, max_ratio, min_ratio, unit, note)
  VALUES (name, runs, base, base_name, target, max_ratio, min_ratio, unit, note)
  ON CONFLICT (name) DO UPDATE SET runs = EXCLUDED.runs, base = EXCLUDED.base, base_name = EXCLUDED.base_name,
    target = EXCLUDED.target, max_ratio = EXCLUDED.max_ratio, min_ratio = EXCLUDED.min_ratio,
    unit = EXCLUDED.unit, note = EXCLUDED.note
$$;

-- ms of one execution of a statement
CREATE FUNCTION bench.time_once(sql text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
  t0 := clock_timestamp();
  EXECUTE sql;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;

-- Case 1: evaluate(q) against the hand-written SQL; first checks the two return the same set,
-- then runs them alternately (runs times each, after one warm-up of each).
CREATE FUNCTION bench.compare_eval(name text, q text, hand text, runs int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  diff bigint; n bigint; a double precision[] := '{}'; b double precision[] := '{}';
  ev text := format('SELECT count(*) FROM outreach.evaluate(%L::outreach.segment_query)', q);
  hd text := format('SELECT count(*) FROM (%s) h', hand);
BEGIN
  EXECUTE format('SELECT count(*) FROM ((SELECT * FROM outreach.evaluate(%L::outreach.segment_query) EXCEPT SELECT * FROM (%s) h1)
                   UNION ALL (SELECT * FROM (%s) h2 EXCEPT SELECT * FROM outreach.evaluate(%L::outreach.segment_query))) d',
                 q, hand, hand, q) INTO diff;
  EXECUTE hd INTO n;
  IF diff <> 0 THEN
    RAISE EXCEPTION 'case %: evaluate and the hand-written SQL differ in % contacts', name, diff;
  END IF;
  PERFORM bench.time_once(ev); PERFORM bench.time_once(hd);
  FOR i IN 1..runs LOOP
    a := a || bench.time_once(ev);
    b := b || bench.time_once(hd);
  END LOOP;
  PERFORM bench.record('1 eval: ' || name, a, b, 'hand-written SQL', '<= 1.1x', 1.1,
                       note => format('%s members, identical sets', n));
END $$;

-- Case 2: ms per single-row statement, as the mean over `n` statements, each its own
-- statement in a PL/pgSQL loop (the membership triggers are per statement).  Rows written
-- are removed again by the delete phase.  Returns {insert, update, delete} ms per statement.
CREATE FUNCTION bench.single_writes(tbl text, n int) RETURNS double precision[]
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz; ids bigint[] := '{}'; rid bigint; pid bigint;
  maxc bigint; ti double precision; tu double precision; td double precision;
BEGIN
  SELECT max(c.id) INTO maxc FROM outreach.contact c;
  t0 := clock_timestamp();
  FOR i IN 1..n LOOP
    pid := 1 + (i::bigint * 7919) % maxc;
    IF tbl = 'condition' THEN
      INSERT INTO outreach.condition (patient_id, code, description, onset_date)
      VALUES (pid, '44054006', 'Diabetes mellitus type 2 (disorder)', date '2025-06-01') RETURNING condition.id INTO rid;
    ELSE
      INSERT INTO outreach.observation (patient_id, code, description, value_numeric, unit, effective_at)
      VALUES (pid, '8480-6', 'Systolic blood pressure', 150, 'mm[Hg]', timestamptz '2025-12-01 10:00+00') RETURNING observation.id INTO rid;
    END IF;
    ids := ids || rid;
  END LOOP;
  ti := extract(epoch FROM clock_timestamp() - t0) * 1000 / n;
  t0 := clock_timestamp();
  FOREACH rid IN ARRAY ids LOOP
    IF tbl = 'condition' THEN
      UPDATE outreach.condition SET clinical_status = 'resolved', abatement_date = date '2025-09-01' WHERE condition.id = rid;
    ELSE
      UPDATE outreach.observation SET value_numeric = 120 WHERE observation.id = rid;
    END IF;
  END LOOP;
  tu := extract(epoch FROM clock_timestamp() - t0) * 1000 / n;
  t0 := clock_timestamp();
  FOREACH rid IN ARRAY ids LOOP
    IF tbl = 'condition' THEN
      DELETE FROM outreach.condition WHERE condition.id = rid;
    ELSE
      DELETE FROM outreach.observation WHERE observation.id = rid;
    END IF;
  END LOOP;
  td := extract(epoch FROM clock_timestamp() - t0) * 1000 / n;
  RETURN ARRAY[ti, tu, td];
END $$;

-- The definition of the k-th benchmark segment (k = 1..100): each reads condition and
-- observation (so every write below touches all live segments), with different codes and
-- thresholds so that the plans are distinct.
CREATE FUNCTION bench.segment_query(k int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT format($q$contact where has condition where (code = '%s' and onset_date >= date '%s')
                   or latest(observation.value_numeric where code = '%s') > %s$q$,
                (ARRAY['44054006','59621000','55822004','195967001','15777000','162864005','38101003','57190000'])[1 + k % 8],
                date '2016-01-01' + (k * 37) % 3000,
                (ARRAY['8480-6','8462-4','4548-4','39156-5'])[1 + k % 4],
                (ARRAY[180, 115, 12, 45])[1 + k % 4] + k % 5)
$$;

-- Bring the number of live benchmark segments up to n (immediate mode).
CREATE FUNCTION bench.live_segments(n int) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE have int; t0 timestamptz := clock_timestamp();
BEGIN
  SELECT count(*) INTO have FROM outreach.segment WHERE name LIKE 'bench ___' AND status = 'live';
  FOR k IN have + 1 .. n LOOP
    PERFORM outreach.create_segment('bench ' || lpad(k::text, 3, '0'), bench.segment_query(k)::outreach.segment_query);
    PERFORM outreach.go_live('bench ' || lpad(k::text, 3, '0'));
  END LOOP;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;

-- Case 3: COPY of the prepared file into condition, timed, rolled back (a subtransaction);
-- with tick => true the tick's catch-up is timed too.  Returns {copy ms, tick ms}.
CREATE FUNCTION bench.bulk_copy(path text, tick boolean) RETURNS double precision[]
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; tc double precision; tt double precision := 0;
BEGIN
  BEGIN
    t0 := clock_timestamp();
    EXECUTE format('COPY outreach.condition (patient_id, code, description, onset_date) FROM %L', path);
    tc := extract(epoch FROM clock_timestamp() - t0) * 1000;
    IF tick THEN
      t0 := clock_timestamp();
      PERFORM outreach.tick(timestamptz '2026-01-01 00:00+00');
      tt := extract(epoch FROM clock_timestamp() - t0) * 1000;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'bench rollback';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  RETURN ARRAY[tc, tt];
END $$;

-- Case 3, the floor of an immediate COPY: a plain COPY of the file plus a plain INSERT ...
-- SELECT of as many segment_member and segment_change rows as the immediate COPY wrote
-- (counted first, with maintenance), all rolled back.  Returns {changes, floor ms}.
CREATE FUNCTION bench.bulk_floor(path text) RETURNS double precision[]
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; n bigint; ms double precision; seg bigint; m0 bigint;
BEGIN
  BEGIN
    SELECT coalesce(max(id), 0) INTO m0 FROM outreach.segment_change;
    EXECUTE format('COPY outreach.condition (patient_id, code, description, onset_date) FROM %L', path);
    SELECT count(*) INTO n FROM outreach.segment_change WHERE id > m0;
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'bench rollback';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  BEGIN
    SELECT s.id INTO seg FROM outreach.segment s WHERE s.name LIKE 'bench ___' ORDER BY s.name LIMIT 1;
    t0 := clock_timestamp();
    EXECUTE format('COPY outreach.condition (patient_id, code, description, onset_date) FROM %L', path);
    -- as many (segment, contact) pairs, none a member yet: a fresh dummy segment
    INSERT INTO outreach.segment (name, definition, kind, status)
      VALUES ('bench floor', 'contact where id < 0', 'dynamic', 'draft') RETURNING id INTO seg;
    INSERT INTO outreach.segment_member (segment_id, contact_id, added_at)
      SELECT seg, c.id, outreach.now() FROM outreach.contact c ORDER BY c.id LIMIT n;
    INSERT INTO outreach.segment_change (segment_id, contact_id, change, changed_at)
      SELECT seg, c.id, 'added', outreach.now() FROM outreach.contact c ORDER BY c.id LIMIT n;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'bench rollback';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  RETURN ARRAY[n, ms];
END $$;

-- Case 5: commit -> visible.  Each iteration inserts one condition that makes its contact a
-- member of segment `seg` and commits; `visible` is when another transaction can see the
-- membership: at commit in immediate mode, after the tick has applied it in deferred mode.
CREATE PROCEDURE bench.latency(seg text, deferred boolean, n int, INOUT ms double precision[] DEFAULT '{}')
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; pid bigint; cid bigint; sid bigint;
BEGIN
  SELECT id INTO sid FROM outreach.segment WHERE name = seg;
  FOR i IN 1..n LOOP
    SELECT c.id INTO pid FROM outreach.contact c
    WHERE NOT EXISTS (SELECT 1 FROM outreach.segment_member m WHERE m.segment_id = sid AND m.contact_id = c.id)
      AND c.id >= (SELECT min(id) + (i * 7919) % (max(id) - min(id)) FROM outreach.contact) ORDER BY c.id LIMIT 1;
    t0 := clock_timestamp();
    INSERT INTO outreach.condition (patient_id, code, description, onset_date)
    VALUES (pid, 'bench-latency', 'bench', date '2025-06-01') RETURNING id INTO cid;
    COMMIT;
    IF deferred THEN
      PERFORM outreach.tick(timestamptz '2026-01-01 00:00+00');
      COMMIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM outreach.segment_member m WHERE m.segment_id = sid AND m.contact_id = pid) THEN
      RAISE EXCEPTION 'latency: contact % is not a member after commit', pid;
    END IF;
    ms := ms || extract(epoch FROM clock_timestamp() - t0) * 1000;
    DELETE FROM outreach.condition WHERE id = cid;
    COMMIT;
    IF deferred THEN
      PERFORM outreach.tick(timestamptz '2026-01-01 00:00+00');
      COMMIT;
    END IF;
  END LOOP;
END $$;
