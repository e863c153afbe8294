-- 0.2.0 -> 0.3.0, operations: launch_journey reports its progress (outreach._progress, outreach.running_operation).

CREATE OR REPLACE FUNCTION outreach.launch_journey(journey text) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  j outreach.journey := outreach._journey(journey);
  problems text;
  n int;
  at timestamptz := outreach.now();
BEGIN
  -- Serialise with concurrent launches / stops of the same journey.
  PERFORM 1 FROM outreach.journey WHERE id = j.id FOR UPDATE;
  SELECT * INTO j FROM outreach.journey WHERE id = j.id;
  IF j.status = 'live' THEN
    RAISE EXCEPTION 'journey "%" is already live', j.name USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  SELECT count(*)::text || E' problem(s):\n' ||
         string_agg(CASE WHEN v.step IS NULL THEN v.problem ELSE format('step "%s": %s', v.step, v.problem) END, E'\n')
  INTO problems
  FROM outreach.validate_journey(j.name) v
  HAVING count(*) > 0;
  IF problems IS NOT NULL THEN
    RAISE EXCEPTION 'journey "%" cannot go live', j.name
      USING ERRCODE = 'invalid_object_definition',
            DETAIL = problems,
            HINT = 'Fix every problem listed (outreach.validate_journey lists them too) and launch again.';
  END IF;
  UPDATE outreach.journey SET status = 'live', went_live_at = coalesce(went_live_at, at), stopped_at = NULL
  WHERE id = j.id;
  PERFORM outreach._progress('launch_journey', 0);
  n := outreach._enroll_members(j.id, at);
  PERFORM outreach._progress('launch_journey', n);
  PERFORM outreach._progress_done();
  RETURN n;
END $$;
