-- 0.2.0 -> 0.3.0, events (64_events.sql): outreach.tick() marks the no-shows of ended events
-- (outreach._tick_events) before journeys advance.  Same text as in 40_segments.sql.
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
BEGIN
  IF at IS NULL THEN
    RAISE EXCEPTION 'outreach.tick() needs a time' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'Call outreach.tick() for now, or outreach.tick(timestamptz ''...'') for an explicit clock.';
  END IF;
  PERFORM pg_catalog.set_config('outreach.now',
    to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00', true);
  INSERT INTO outreach.tick_run (at) VALUES (at) RETURNING id INTO run_id;

  -- FOR KEY SHARE: a segment dropped meanwhile is waited for and skipped (no orphan members)
  FOR s IN SELECT x.id, x.pending_full FROM outreach.segment x
           WHERE x.status = 'live' AND x.mode = 'deferred' AND x.kind <> 'static'
             AND (x.pending_full OR EXISTS (SELECT 1 FROM outreach.segment_pending p WHERE p.segment_ids @> ARRAY[x.id]))
           ORDER BY x.id FOR KEY SHARE OF x LOOP
    IF s.pending_full THEN
      UPDATE outreach.segment x SET pending_full = false WHERE x.id = s.id;
      PERFORM outreach._pending_take(s.id);
      n_changes := n_changes + outreach._segment_refresh(s.id);
      n_full := n_full + 1;
    ELSE
      ids := outreach._pending_take(s.id);
      n_contacts := n_contacts + coalesce(cardinality(ids), 0);
      n_changes := n_changes + outreach._apply_segment(s.id, ids);
    END IF;
  END LOOP;

  FOR s IN SELECT x.id FROM outreach.segment x
           WHERE x.status = 'live' AND x.kind <> 'static' AND x.time_dependent
             AND (x.next_evaluation_at IS NULL OR x.next_evaluation_at <= at)
           ORDER BY x.id FOR KEY SHARE OF x LOOP
    n_changes := n_changes + outreach._segment_refresh(s.id);
    n_full := n_full + 1;
  END LOOP;

  PERFORM outreach._tick_events(at);              -- no-shows of ended events (64_events.sql)
  PERFORM outreach._tick_journeys(at);

  UPDATE outreach.tick_run r SET finished_at = clock_timestamp(), deferred_contacts = n_contacts,
    full_evaluations = n_full, membership_changes = n_changes
  WHERE r.id = run_id;
  PERFORM pg_catalog.set_config('outreach.now', coalesce(prev, ''), true);
END $$;

