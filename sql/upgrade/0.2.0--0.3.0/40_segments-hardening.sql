-- 40_segments-hardening.sql (issue 19; issue 20, compiler side): the segment objects of
-- 0.2.0 that changed.  Functions are replaced with their 0.3.0 text (sql/parts/40_segments.sql).
REVOKE ALL ON FUNCTION outreach._segment_deleted() FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._membership_trigger() FROM PUBLIC;
-- the compiled queries run with a pinned search_path, whoever writes
ALTER FUNCTION outreach._membership_trigger() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION outreach._apply_segment(bigint, bigint[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION outreach._cascade_segment(bigint, bigint[]) SET search_path = pg_catalog, pg_temp;
-- stored SQL text is for reading only; what runs is compiled from the definition
COMMENT ON COLUMN outreach.segment.restricted_sql IS 'What the definition compiled to for $1 bigint[] contact ids when it was set; for reading only: maintenance compiles the definition itself and never runs this text';
COMMENT ON COLUMN outreach.segment.full_sql IS 'What the definition compiled to for every contact when it was set; for reading only: going live and re-evaluation compile the definition and never run this text';
-- the tick's maintenance that never waits for a writer (defect 7)
CREATE FUNCTION outreach._apply_pending() RETURNS bigint[] LANGUAGE c
SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'outreach_apply_pending';
REVOKE ALL ON FUNCTION outreach._apply_pending() FROM PUBLIC;
COMMENT ON FUNCTION outreach._apply_pending() IS
  'The tick''s pass over the deferred backlog: every segment_pending row, the segments that read no other segment evaluated together per group of recorded contacts, never waiting for a writer; returns {contacts, changes}';
CREATE FUNCTION outreach._apply_segment(segment_id bigint, contact_ids bigint[], nowait boolean) RETURNS bigint LANGUAGE c
SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'outreach_apply_segment_nowait';
REVOKE ALL ON FUNCTION outreach._apply_segment(bigint, bigint[], boolean) FROM PUBLIC;
COMMENT ON FUNCTION outreach._apply_segment(bigint, bigint[], boolean) IS
  'As _apply_segment(segment_id, contact_ids); with nowait (the tick) the contacts a writer is maintaining now are skipped and queued in segment_pending, so the tick never waits for a writer';

-- failed maintenance (defect 8)
CREATE TABLE outreach.segment_failure (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  segment_id bigint NOT NULL,
  failed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  sqlstate   text NOT NULL,
  error      text NOT NULL
);
CREATE INDEX ON outreach.segment_failure (segment_id);
COMMENT ON TABLE outreach.segment_failure IS
  'Segments whose maintenance failed in a writer''s statement (the write was kept); outreach.tick() re-evaluates them';
COMMENT ON COLUMN outreach.segment_failure.failed_at IS 'When the maintenance or re-evaluation raised the error (clock time of the failing statement)';
COMMENT ON COLUMN outreach.segment_failure.sqlstate IS 'The error''s five-character SQLSTATE code, e.g. 22012 (division by zero) or 42703 (undefined column)';
COMMENT ON COLUMN outreach.segment_failure.error IS 'The error message the segment''s compiled query raised';
SELECT outreach._dump('outreach.segment_failure');

CREATE OR REPLACE VIEW outreach.segment_overview AS
SELECT s.name, s.kind, s.status, s.mode,
       (SELECT count(*) FROM outreach.segment_member m WHERE m.segment_id = s.id) AS members,
       s.last_evaluated_at, s.last_evaluation_duration,
       (SELECT count(DISTINCT c) FROM outreach.segment_pending p, unnest(p.contact_ids) AS c
          WHERE p.segment_ids @> ARRAY[s.id]) AS pending_changes,
       s.pending_full AS pending_full_evaluation,
       s.time_dependent, s.evaluate_every, s.next_evaluation_at,
       s.definition::text AS definition,
       (SELECT string_agg(t.name, ', ' ORDER BY t.name) FROM outreach.segment_dependency d
          JOIN outreach.segment t ON t.id = d.depends_on WHERE d.segment_id = s.id) AS uses_segments,
       s.id, s.created_at, s.updated_at,
       CASE WHEN f.segment_id IS NULL THEN 'ok' ELSE 'failed' END AS maintenance,
       f.failed_at AS maintenance_failed_at, f.error AS maintenance_error
FROM outreach.segment s
LEFT JOIN LATERAL (SELECT x.segment_id, x.failed_at, x.error FROM outreach.segment_failure x
                   WHERE x.segment_id = s.id ORDER BY x.id DESC LIMIT 1) f ON true;
COMMENT ON VIEW outreach.segment_overview IS
  'Monitoring: every segment with kind, status, mode, member count, last full evaluation, pending deferred changes, definition, and whether its maintenance failed (maintenance = failed, with the error)';
COMMENT ON COLUMN outreach.segment_overview.maintenance IS
  'ok, or failed: the segment has a recorded segment_failure and its members are not maintained until a re-evaluation succeeds';
COMMENT ON COLUMN outreach.segment_overview.maintenance_failed_at IS 'When the latest maintenance failure happened (NULL when maintenance is ok)';
COMMENT ON COLUMN outreach.segment_overview.maintenance_error IS 'The latest maintenance failure''s error message (NULL when maintenance is ok)';


CREATE OR REPLACE FUNCTION outreach._pending_take(segment_id bigint) RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  ids bigint[];
BEGIN
  -- rows locked in id order (one global order: two takers never deadlock)
  WITH l AS (SELECT p.id FROM outreach.segment_pending p WHERE p.segment_ids @> ARRAY[segment_id] ORDER BY p.id FOR UPDATE),
       t AS (UPDATE outreach.segment_pending p SET segment_ids = array_remove(p.segment_ids, segment_id)
             FROM l WHERE p.id = l.id RETURNING p.contact_ids)
  SELECT array_agg(DISTINCT c ORDER BY c) INTO ids FROM t, unnest(t.contact_ids) AS c;
  DELETE FROM outreach.segment_pending p WHERE p.segment_ids = '{}';
  RETURN ids;
END $$;

CREATE OR REPLACE FUNCTION outreach._segment_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  DELETE FROM outreach.segment_member m WHERE m.segment_id = OLD.id;
  DELETE FROM outreach.segment_change c WHERE c.segment_id = OLD.id;
  DELETE FROM outreach.segment_failure f WHERE f.segment_id = OLD.id;
  PERFORM outreach._pending_take(OLD.id);
  RETURN OLD;
END $$;

CREATE OR REPLACE FUNCTION outreach._segment_refresh(segment_id bigint, nowait boolean) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
#variable_conflict use_variable
DECLARE
  s outreach.segment;
  started timestamptz := clock_timestamp();
  ids bigint[];
  changes bigint := 0;
BEGIN
  SELECT * INTO s FROM outreach.segment x WHERE x.id = segment_id FOR KEY SHARE;
  IF NOT FOUND OR s.kind = 'static' OR s.status <> 'live' THEN
    RETURN 0;
  END IF;
  -- a full re-evaluation repairs a segment whose maintenance failed: back into maintenance
  -- (if this raises again, the caller's subtransaction restores the failure rows)
  DELETE FROM outreach.segment_failure f WHERE f.segment_id = s.id;
  IF FOUND THEN
    PERFORM outreach._membership_invalidate();
  END IF;
  -- compiled from the definition now: stored SQL text is never executed
  EXECUTE format('SELECT array_agg(coalesce(f.contact_id, m.contact_id) ORDER BY 1) '
                 'FROM (SELECT DISTINCT q.contact_id FROM (%s) AS q(contact_id)) AS f '
                 'FULL JOIN (SELECT x.contact_id FROM outreach.segment_member x WHERE x.segment_id = $1) AS m '
                 'ON m.contact_id = f.contact_id WHERE f.contact_id IS NULL OR m.contact_id IS NULL',
                 outreach.compile(s.definition, false, s.time_zone))
    INTO ids USING s.id;
  changes := outreach._apply_segment(s.id, ids, nowait);
  UPDATE outreach.segment x SET last_evaluated_at = outreach.now(), last_evaluation_duration = clock_timestamp() - started,
    next_evaluation_at = CASE WHEN x.time_dependent THEN outreach.now() + x.evaluate_every END
  WHERE x.id = s.id;
  RETURN changes;
END $$;

CREATE OR REPLACE FUNCTION outreach._segment_refresh(segment_id bigint) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT outreach._segment_refresh($1, false)
$$;

CREATE OR REPLACE FUNCTION outreach.go_live(segment text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  s outreach.segment := outreach._segment_by_name(segment);
  not_live text;
  started timestamptz := clock_timestamp();
  at timestamptz := outreach._change_time();
  added bigint;
BEGIN
  IF s.status = 'live' THEN
    RAISE EXCEPTION 'segment "%" is already live', s.name USING ERRCODE = 'object_not_in_prerequisite_state',
      HINT = 'To re-evaluate it with a new definition use outreach.alter_segment().';
  END IF;
  SELECT string_agg(t.name, ', ' ORDER BY t.name) INTO not_live FROM outreach.segment_dependency d
  JOIN outreach.segment t ON t.id = d.depends_on WHERE d.segment_id = s.id AND t.status <> 'live';
  IF not_live IS NOT NULL THEN
    RAISE EXCEPTION 'segment "%" depends on segments that are not live', s.name
      USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = format('Not live: %s.', not_live),
      HINT = 'Make them live first with outreach.go_live().';
  END IF;
  PERFORM outreach._segment_published(outreach._segment_tables(s.id));
  IF s.kind <> 'static' THEN
    -- One statement: progress is its phases (evaluating, then how many members were added).
    PERFORM outreach._progress('go_live', 0);
    EXECUTE format('WITH f AS (SELECT DISTINCT q.contact_id FROM (%s) AS q(contact_id) WHERE q.contact_id IS NOT NULL), '
                   'ins AS (INSERT INTO outreach.segment_member (segment_id, contact_id, added_at) '
                   '        SELECT $1, f.contact_id, $2 FROM f ON CONFLICT DO NOTHING RETURNING contact_id) '
                   'INSERT INTO outreach.segment_change (segment_id, contact_id, change, changed_at) '
                   'SELECT $1, ins.contact_id, ''added'', $2 FROM ins',
                   outreach.compile(s.definition, false, s.time_zone)) USING s.id, at;
    GET DIAGNOSTICS added = ROW_COUNT;
    PERFORM outreach._progress('go_live', added);
  END IF;
  UPDATE outreach.segment x SET status = 'live', pending_full = false,
    last_evaluated_at = CASE WHEN x.kind <> 'static' THEN outreach.now() END,
    last_evaluation_duration = CASE WHEN x.kind <> 'static' THEN clock_timestamp() - started END,
    next_evaluation_at = CASE WHEN x.time_dependent THEN outreach.now() + x.evaluate_every END
  WHERE x.id = s.id;
  PERFORM outreach._pending_take(s.id);
  PERFORM outreach._membership_invalidate();
  PERFORM outreach._progress_done();
END $$;

CREATE OR REPLACE FUNCTION outreach.stop(segment text, cascade boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s outreach.segment := outreach._segment_by_name(segment);
  users text := outreach._segment_dependents(s.id, true);
  d text;
  at timestamptz := outreach._change_time();
BEGIN
  IF s.status <> 'live' THEN
    RAISE EXCEPTION 'segment "%" is not live', s.name USING ERRCODE = 'object_not_in_prerequisite_state',
      DETAIL = format('Its status is %s.', s.status);
  END IF;
  IF users IS NOT NULL AND NOT cascade THEN
    RAISE EXCEPTION 'segment "%" is used by live segments', s.name USING ERRCODE = 'dependent_objects_still_exist',
      DETAIL = format('Live segments that depend on it: %s.', users),
      HINT = format('Stop them first, or call outreach.stop(%L, cascade => true) to stop them too.', s.name);
  END IF;
  FOR d IN SELECT t.name FROM outreach.segment_dependency x JOIN outreach.segment t ON t.id = x.segment_id
           WHERE x.depends_on = s.id AND t.status = 'live' ORDER BY t.name LOOP
    PERFORM outreach.stop(d, true);
  END LOOP;
  PERFORM outreach._segment_published(outreach._segment_tables(s.id));
  IF s.kind <> 'static' THEN
    WITH del AS (DELETE FROM outreach.segment_member m WHERE m.segment_id = s.id RETURNING m.contact_id)
    INSERT INTO outreach.segment_change (segment_id, contact_id, change, changed_at)
    SELECT s.id, del.contact_id, 'removed', at FROM del;
  END IF;
  UPDATE outreach.segment x SET status = 'stopped', pending_full = false, next_evaluation_at = NULL WHERE x.id = s.id;
  DELETE FROM outreach.segment_failure f WHERE f.segment_id = s.id;
  PERFORM outreach._pending_take(s.id);
END $$;

CREATE OR REPLACE FUNCTION outreach._segment_failed(segment_id bigint, state text, message text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
  INSERT INTO outreach.segment_failure (segment_id, sqlstate, error) VALUES (segment_id, state, message);
  RAISE WARNING 'evaluating segment "%" failed: %', (SELECT x.name FROM outreach.segment x WHERE x.id = segment_id), message
    USING DETAIL = 'The segment''s members are not maintained until it is re-evaluated.',
          HINT = 'outreach.segment_overview shows the failure; the next tick tries again, or fix the definition with outreach.alter_segment().';
  PERFORM outreach._membership_invalidate();
END $$;

CREATE OR REPLACE FUNCTION outreach.tick(at timestamptz DEFAULT now()) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  prev text := pg_catalog.current_setting('outreach.now', true);
  run_id bigint;
  s record;
  ids bigint[];
  n_contacts bigint := 0;
  n_full integer := 0;
  n_changes bigint := 0;
  failed_now bigint[] := '{}';
  pass bigint[];
  round_changes bigint;
BEGIN
  IF at IS NULL THEN
    RAISE EXCEPTION 'outreach.tick() needs a time' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'Call outreach.tick() for now, or outreach.tick(timestamptz ''...'') for an explicit clock.';
  END IF;
  -- One tick at a time (issue 19, defect 7): two ticks took the same segment_pending rows
  -- and contacts in different orders and deadlocked.  A second tick waits for the first,
  -- before it holds any other lock.
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outreach.tick'));
  PERFORM pg_catalog.set_config('outreach.now',
    to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00', true);
  INSERT INTO outreach.tick_run (at) VALUES (at) RETURNING id INTO run_id;

  PERFORM outreach._tick_events(at);              -- no-shows of ended events (64_events.sql)
  -- Journeys first (issue 19, defect 7): they lock contact rows (enqueue_message) and may
  -- wait for a writer; the membership work below never waits for a writer (nowait), so
  -- no writer can be waiting for this tick's contacts while the tick waits for it.
  -- Enrollments this tick's membership changes make are advanced by the next tick.
  PERFORM outreach._tick_journeys(at);

  -- The deferred backlog in one pass (issue 16): the segments that read no other segment,
  -- evaluated together per group of recorded contacts.  If that fails, it is rolled back
  -- and the loop below applies the same rows one segment at a time, recording the failing one.
  BEGIN
    pass := outreach._apply_pending();
    n_contacts := n_contacts + pass[1];
    n_changes := n_changes + pass[2];
  EXCEPTION WHEN data_exception OR syntax_error_or_access_rule_violation OR program_limit_exceeded OR undefined_object
                 OR object_not_in_prerequisite_state THEN
    NULL;
  END;

  -- Rounds (issue 16): applying a deferred segment records pending rows for the deferred
  -- segments built on it (compound, `in segment`); they are applied in the next round of
  -- the same tick, not a tick later.  A round that changes nothing ends it (the rows left are
  -- contacts a writer holds, for the next tick).
  FOR round IN 1 .. 10 LOOP
    round_changes := n_changes;
    -- Each segment in its own subtransaction: one segment's error (its data, its definition
    -- against the catalog) is recorded in segment_failure and does not stop the tick.
    -- The tick never waits for a writer's contacts (nowait): those a writer is maintaining are
    -- queued in segment_pending again, for any segment, and taken by the next tick.
    -- FOR KEY SHARE: a segment dropped meanwhile is waited for and skipped (no orphan members)
    FOR s IN SELECT x.id, x.pending_full AND x.mode = 'deferred' AS pending_full FROM outreach.segment x
             WHERE x.status = 'live' AND x.kind <> 'static'
               AND ((x.pending_full AND x.mode = 'deferred') OR EXISTS (SELECT 1 FROM outreach.segment_pending p WHERE p.segment_ids @> ARRAY[x.id]))
               AND NOT EXISTS (SELECT 1 FROM outreach.segment_failure f WHERE f.segment_id = x.id)
             ORDER BY x.id FOR KEY SHARE OF x LOOP
      BEGIN
        IF s.pending_full THEN
          UPDATE outreach.segment x SET pending_full = false WHERE x.id = s.id;
          PERFORM outreach._pending_take(s.id);
          n_changes := n_changes + outreach._segment_refresh(s.id, true);
          n_full := n_full + 1;
        ELSE
          ids := outreach._pending_take(s.id);
          n_contacts := n_contacts + coalesce(cardinality(ids), 0);
          n_changes := n_changes + outreach._apply_segment(s.id, ids, true);
        END IF;
      EXCEPTION WHEN data_exception OR syntax_error_or_access_rule_violation OR program_limit_exceeded OR undefined_object
                     OR object_not_in_prerequisite_state THEN
        PERFORM outreach._segment_failed(s.id, SQLSTATE, SQLERRM);
        failed_now := failed_now || s.id;
      END;
    END LOOP;

    IF round = 1 THEN
      -- time-dependent segments that are due, and segments whose maintenance failed (repaired
      -- by a full re-evaluation once the cause is gone)
      FOR s IN SELECT x.id FROM outreach.segment x
               WHERE x.status = 'live' AND x.kind <> 'static'
                 AND ((x.time_dependent AND (x.next_evaluation_at IS NULL OR x.next_evaluation_at <= at))
                      OR EXISTS (SELECT 1 FROM outreach.segment_failure f WHERE f.segment_id = x.id))
                 AND x.id <> ALL (failed_now)
               ORDER BY x.id FOR KEY SHARE OF x LOOP
        BEGIN
          PERFORM outreach._pending_take(s.id);
          n_changes := n_changes + outreach._segment_refresh(s.id, true);
          n_full := n_full + 1;
        EXCEPTION WHEN data_exception OR syntax_error_or_access_rule_violation OR program_limit_exceeded OR undefined_object
                       OR object_not_in_prerequisite_state THEN
          PERFORM outreach._segment_failed(s.id, SQLSTATE, SQLERRM);
        END;
      END LOOP;
    END IF;
    EXIT WHEN n_changes = round_changes;
  END LOOP;


  UPDATE outreach.tick_run r SET finished_at = clock_timestamp(), deferred_contacts = n_contacts,
    full_evaluations = n_full, membership_changes = n_changes
  WHERE r.id = run_id;
  PERFORM pg_catalog.set_config('outreach.now', coalesce(prev, ''), true);
END $$;

CREATE OR REPLACE FUNCTION outreach._segment_tables(segment_id bigint) RETURNS regclass[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  WITH RECURSIVE deps(id) AS (
    SELECT $1 UNION SELECT d.depends_on FROM outreach.segment_dependency d JOIN deps ON d.segment_id = deps.id
  )
  SELECT coalesce(array_agg(DISTINCT e.relation), '{}')
  FROM deps JOIN outreach.segment_entity se ON se.segment_id = deps.id JOIN outreach.entity e ON e.name = se.entity
  -- a table dropped under the registry (before 0.3.0 refused it) is not there to lock
  JOIN pg_catalog.pg_class c ON c.oid = e.relation
$$;

CREATE OR REPLACE FUNCTION outreach._entity_unregistering(entity text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  rel regclass;
  t text;
BEGIN
  SELECT e.relation INTO rel FROM outreach.entity e WHERE e.name = entity;
  -- the table may be gone already (dropped before 0.3.0 refused it): nothing to detach
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = rel) THEN
    FOREACH t IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
      EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'outreach_membership_' || t, rel);
    END LOOP;
  END IF;
  PERFORM outreach._membership_invalidate();
END $$;

CREATE OR REPLACE FUNCTION outreach._check_new_name(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
  IF name IS NULL OR btrim(name) = '' THEN
    RAISE EXCEPTION 'a segment needs a name' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Segments are referred to by name, e.g. outreach.go_live(''diabetics'').';
  END IF;
  -- bidirectional controls make a name display as another one (issue 19, defect 9)
  IF name ~ '[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]' THEN
    RAISE EXCEPTION 'segment name contains a bidirectional control character' USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Characters such as U+202E make a name read differently from what it is.',
      HINT = 'Remove the control character from the name.';
  END IF;
  IF EXISTS (SELECT 1 FROM outreach.segment x WHERE x.name = name) THEN
    RAISE EXCEPTION 'segment "%" already exists', name USING ERRCODE = 'duplicate_object',
      HINT = 'Pick another name, or change the existing segment with outreach.alter_segment().';
  END IF;
END $$;
REVOKE ALL ON FUNCTION outreach._segment_failed(bigint, text, text) FROM PUBLIC;
