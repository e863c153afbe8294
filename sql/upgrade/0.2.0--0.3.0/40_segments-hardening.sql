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

CREATE OR REPLACE FUNCTION outreach._segment_refresh(segment_id bigint) RETURNS bigint
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
  -- compiled from the definition now: stored SQL text is never executed
  EXECUTE format('SELECT array_agg(coalesce(f.contact_id, m.contact_id) ORDER BY 1) '
                 'FROM (SELECT DISTINCT q.contact_id FROM (%s) AS q(contact_id)) AS f '
                 'FULL JOIN (SELECT x.contact_id FROM outreach.segment_member x WHERE x.segment_id = $1) AS m '
                 'ON m.contact_id = f.contact_id WHERE f.contact_id IS NULL OR m.contact_id IS NULL',
                 outreach.compile(s.definition, false, s.time_zone))
    INTO ids USING s.id;
  changes := outreach._apply_segment(s.id, ids);
  UPDATE outreach.segment x SET last_evaluated_at = outreach.now(), last_evaluation_duration = clock_timestamp() - started,
    next_evaluation_at = CASE WHEN x.time_dependent THEN outreach.now() + x.evaluate_every END
  WHERE x.id = s.id;
  RETURN changes;
END $$;

CREATE OR REPLACE FUNCTION outreach.go_live(segment text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  s outreach.segment := outreach._segment_by_name(segment);
  not_live text;
  started timestamptz := clock_timestamp();
  at timestamptz := outreach._change_time();
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
    EXECUTE format('WITH f AS (SELECT DISTINCT q.contact_id FROM (%s) AS q(contact_id) WHERE q.contact_id IS NOT NULL), '
                   'ins AS (INSERT INTO outreach.segment_member (segment_id, contact_id, added_at) '
                   '        SELECT $1, f.contact_id, $2 FROM f ON CONFLICT DO NOTHING RETURNING contact_id) '
                   'INSERT INTO outreach.segment_change (segment_id, contact_id, change, changed_at) '
                   'SELECT $1, ins.contact_id, ''added'', $2 FROM ins',
                   outreach.compile(s.definition, false, s.time_zone)) USING s.id, at;
  END IF;
  UPDATE outreach.segment x SET status = 'live', pending_full = false,
    last_evaluated_at = CASE WHEN x.kind <> 'static' THEN outreach.now() END,
    last_evaluation_duration = CASE WHEN x.kind <> 'static' THEN clock_timestamp() - started END,
    next_evaluation_at = CASE WHEN x.time_dependent THEN outreach.now() + x.evaluate_every END
  WHERE x.id = s.id;
  PERFORM outreach._pending_take(s.id);
  PERFORM outreach._membership_invalidate();
END $$;
