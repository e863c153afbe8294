-- 60_journeys-engine.sql (0.2.0 -> 0.3.0, engine): the set-based journey tick replaces the
-- per-enrollment walk; launch enrolls with one set-based statement; tick runs record how far
-- behind they are; grants.

ALTER TABLE outreach.journey_tick_run
  ADD COLUMN due_left bigint NOT NULL DEFAULT 0,
  ADD COLUMN oldest_due_at timestamptz,
  ADD COLUMN time_boxed boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN outreach.journey_tick_run.due_left IS
  'How far behind the tick is: enrollments still due at its clock when it finished (held by another tick, retried later, or left by the time budget)';
COMMENT ON COLUMN outreach.journey_tick_run.oldest_due_at IS 'The oldest next_run_at among those still due';
COMMENT ON COLUMN outreach.journey_tick_run.time_boxed IS 'The tick stopped because its time budget (messaging_settings.journey_tick_budget) was spent';

DROP FUNCTION outreach._advance_enrollment(bigint, timestamptz);

CREATE TYPE outreach.journey_decision AS (
  enrollment_id bigint,
  journey_id    bigint,
  step_id       bigint,
  step_key      text,
  kind          text,
  outcome       text,
  next_step     text,
  message_id    bigint,
  wait_until    timestamptz,
  error         text
);

DROP INDEX outreach.enrollment_due;
CREATE INDEX enrollment_due ON outreach.enrollment (next_run_at, id) WHERE status = 'active';

-- The history is written twice per message by the tick; nothing reads it by journey and step.
DROP INDEX outreach.enrollment_step_journey_id_step_key_idx;

-- the trigger is not even called when the statement computed ended_change_id itself
DROP TRIGGER enrollment_ended ON outreach.enrollment;
CREATE TRIGGER enrollment_ended BEFORE UPDATE OF status ON outreach.enrollment
  FOR EACH ROW WHEN (NEW.status <> 'active' AND OLD.status = 'active'
                     AND NEW.ended_change_id IS NOT DISTINCT FROM OLD.ended_change_id)
  EXECUTE FUNCTION outreach._enrollment_ended();

CREATE OR REPLACE FUNCTION outreach._enrollment_ended() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.status <> 'active' AND OLD.status = 'active' AND NEW.ended_change_id IS NOT DISTINCT FROM OLD.ended_change_id THEN
    SELECT max(sc.id) FILTER (WHERE sc.segment_id = (SELECT j.audience_segment_id FROM outreach.journey j WHERE j.id = NEW.journey_id))
      INTO NEW.ended_change_id
    FROM outreach.segment_change sc
    WHERE sc.contact_id = NEW.contact_id;
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION outreach._enroll_members(jid bigint, at timestamptz) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  j outreach.journey;
  n int;
BEGIN
  SELECT * INTO j FROM outreach.journey WHERE id = jid;
  IF j.status <> 'live' OR (j.starts_at IS NOT NULL AND at < j.starts_at) OR (j.ends_at IS NOT NULL AND at >= j.ends_at) THEN
    RETURN 0;
  END IF;
  -- One statement over the whole audience: hash joins against the audience's last 'added'
  -- change per contact and its enrollments (re-entry needs a join after the last one ended).
  INSERT INTO outreach.enrollment (journey_id, contact_id, current_step, step_entered_at, next_run_at, entered_at, entry_change_id)
  SELECT j.id, m.contact_id, j.entry_step, at, at, at, lc.change_id
  FROM outreach.segment_member m
  LEFT JOIN (SELECT sc.contact_id, max(sc.id) AS change_id FROM outreach.segment_change sc
             WHERE sc.segment_id = j.audience_segment_id AND sc.change = 'added' GROUP BY sc.contact_id) lc
         ON lc.contact_id = m.contact_id
  WHERE m.segment_id = j.audience_segment_id
    AND EXISTS (SELECT 1 FROM outreach.contact c WHERE c.id = m.contact_id)
    AND NOT EXISTS (SELECT 1 FROM outreach.segment_member sm
                    WHERE sm.segment_id = j.suppression_segment_id AND sm.contact_id = m.contact_id)
    AND NOT EXISTS (SELECT 1 FROM outreach.enrollment e
                    WHERE e.journey_id = j.id AND e.contact_id = m.contact_id
                      AND (NOT j.allow_reentry OR e.status = 'active'
                           OR greatest(e.entry_change_id, e.ended_change_id, 0) >= coalesce(lc.change_id, 0)))
  ORDER BY m.contact_id
  ON CONFLICT (journey_id, contact_id) WHERE status = 'active' DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION outreach._journey_segment_members(kind text, segment text, contacts bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  SET enable_seqscan = on SET enable_hashjoin = on SET enable_mergejoin = on SET enable_material = on AS $$
BEGIN
  IF kind = 'add_to_segment' THEN
    PERFORM outreach.add_members(segment, contacts);
  ELSE
    PERFORM outreach.remove_members(segment, contacts);
  END IF;
END $$;

CREATE OR REPLACE FUNCTION outreach._journey_take_batch(at timestamptz, batch_size int, cursor_at timestamptz, cursor_id bigint,
                                             skip bigint[])
RETURNS bigint[] LANGUAGE sql SET search_path = pg_catalog, pg_temp SET jit = off
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_sort = off AS $$
  SELECT array_agg(due.id ORDER BY due.next_run_at, due.id) FROM (
    SELECT e.id, e.next_run_at FROM outreach.enrollment e
    WHERE e.status = 'active' AND e.next_run_at <= $1 AND (e.next_run_at, e.id) > ($3, $4)
      AND EXISTS (SELECT 1 FROM outreach.journey j WHERE j.id = e.journey_id AND j.status = 'live')
      AND NOT e.id = ANY ($5)
    ORDER BY e.next_run_at, e.id
    LIMIT $2
    FOR UPDATE OF e SKIP LOCKED) due
$$;

CREATE OR REPLACE FUNCTION outreach._journey_run_batch(ids bigint[], at timestamptz,
                                            OUT steps int, OUT messages int, OUT completed int, OUT exited int,
                                            OUT failed int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off AS $$
DECLARE
  rounds int := 0;
  run bigint[];
  kinds text[];
  d outreach.journey_decision[];
  ends outreach.journey_decision[];
  missing bigint[];
  suppressing boolean;
  sends outreach.message_request[];
  decided int;
  moved int;
  reqs outreach.message_request[];
  n int;
BEGIN
  -- (Below, "status IS NOT DISTINCT FROM 'active'" rather than "=": the same for a NOT NULL
  -- column, but it does not match the predicate of the partial index enrollment_due, so a
  -- lookup by id uses the primary key even when stale statistics make every index look free;
  -- and a contact's last audience change is found through the contact's few changes, the
  -- segment filtered in the aggregate, never by intersecting with the whole segment's history.)
  steps := 0; messages := 0; completed := 0; exited := 0; failed := 0;
  LOOP
    SELECT array_agg(e.id), array_agg(DISTINCT s.kind) FILTER (WHERE s.kind IS NOT NULL),
           array_agg(e.id) FILTER (WHERE s.id IS NULL), bool_or(j.suppression_segment_id IS NOT NULL),
           array_agg(ROW(e.id, s.id, j.id, e.contact_id, s.template, j.message_class, j.subscription_list)::outreach.message_request
                     ORDER BY e.contact_id, e.id) FILTER (WHERE s.kind IN ('email', 'sms', 'letter'))
      INTO run, kinds, missing, suppressing, sends
      FROM outreach.enrollment e
      JOIN outreach.journey j ON j.id = e.journey_id
      LEFT JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
     WHERE e.id = ANY (ids) AND e.status IS NOT DISTINCT FROM 'active' AND e.next_run_at <= at;
    EXIT WHEN run IS NULL;
    -- contacts in the suppression segment leave before their next step (when a journey of
    -- the batch has one)
    IF suppressing THEN
      UPDATE outreach.enrollment e
         SET status = 'exited', exit_reason = 'in the suppression segment', ended_at = at, next_run_at = NULL
        FROM outreach.journey j
       WHERE e.id = ANY (run) AND j.id = e.journey_id
         AND j.suppression_segment_id IS NOT NULL
         AND EXISTS (SELECT 1 FROM outreach.segment_member sm
                      WHERE sm.segment_id = j.suppression_segment_id AND sm.contact_id = e.contact_id);
      GET DIAGNOSTICS n = ROW_COUNT;
      exited := exited + n;
      IF n > 0 THEN
        SELECT array_agg(e.id), array_agg(DISTINCT s.kind) FILTER (WHERE s.kind IS NOT NULL),
               array_agg(e.id) FILTER (WHERE s.id IS NULL),
               array_agg(ROW(e.id, s.id, j.id, e.contact_id, s.template, j.message_class, j.subscription_list)::outreach.message_request
                         ORDER BY e.contact_id, e.id) FILTER (WHERE s.kind IN ('email', 'sms', 'letter'))
          INTO run, kinds, missing, sends
          FROM outreach.enrollment e
          JOIN outreach.journey j ON j.id = e.journey_id
          LEFT JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
         WHERE e.id = ANY (run) AND e.status IS NOT DISTINCT FROM 'active';
        EXIT WHEN run IS NULL;
      END IF;
    END IF;
    rounds := rounds + 1;
    IF rounds > 100 THEN
      UPDATE outreach.enrollment e
         SET status = 'failed', error = format('enrollment %s did 100 steps in one tick without waiting', e.id),
             attempt = e.attempt + 1, ended_at = at, next_run_at = NULL
       WHERE e.id = ANY (run);
      GET DIAGNOSTICS n = ROW_COUNT;
      failed := failed + n;
      EXIT;
    END IF;

    -- a step that does not exist
    IF missing IS NOT NULL THEN
      UPDATE outreach.enrollment e
         SET status = 'failed', error = format('journey "%s" has no step "%s"', j.name, e.current_step),
             attempt = e.attempt + 1, ended_at = at, next_run_at = NULL
        FROM outreach.journey j
       WHERE e.id = ANY (missing) AND j.id = e.journey_id;
      GET DIAGNOSTICS n = ROW_COUNT;
      failed := failed + n;
    END IF;

    d := '{}';
    IF 'wait' = ANY (kinds) THEN
      d := d || ARRAY(
        SELECT ROW(e.id, e.journey_id, s.id, s.key, s.kind,
                   CASE WHEN at >= e.step_entered_at + s.duration THEN 'waited' END, s.next_step, NULL,
                   CASE WHEN at < e.step_entered_at + s.duration THEN e.step_entered_at + s.duration END, NULL)::outreach.journey_decision
          FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
         WHERE e.id = ANY (run) AND s.kind = 'wait');
    END IF;
    IF 'wait_until' = ANY (kinds) THEN
      d := d || ARRAY(
        SELECT ROW(w.id, w.journey_id, w.sid, w.key, 'wait_until',
                   CASE WHEN w.target IS NOT NULL AND at >= w.target THEN 'waited' END, w.next_step, NULL,
                   CASE WHEN at < w.target THEN w.target END,
                   CASE WHEN w.target IS NULL THEN format('step "%s" of journey "%s" has no reachable time window', w.key, w.jname) END
                  )::outreach.journey_decision
          FROM (SELECT e.id, e.journey_id, s.id AS sid, s.key, s.next_step, j.name AS jname,
                       outreach.next_local_window(e.step_entered_at, coalesce(c.time_zone, j.time_zone),
                                                  s.from_time, s.until_time, s.weekdays) AS target
                  FROM outreach.enrollment e
                  JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
                  JOIN outreach.journey j ON j.id = e.journey_id
                  JOIN outreach.contact c ON c.id = e.contact_id
                 WHERE e.id = ANY (run) AND s.kind = 'wait_until') w);
    END IF;
    IF 'branch_interaction' = ANY (kinds) THEN
      -- A click implies the message was opened (open tracking misses many opens).
      d := d || ARRAY(
        SELECT ROW(b.id, b.journey_id, b.sid, b.key, 'branch_interaction',
                   CASE WHEN b.found THEN 'yes' WHEN at >= b.target THEN 'no' END,
                   CASE WHEN b.found THEN b.yes_step WHEN at >= b.target THEN b.no_step END, NULL,
                   CASE WHEN NOT b.found AND at < b.target THEN b.target END, NULL)::outreach.journey_decision
          FROM (SELECT e.id, e.journey_id, s.id AS sid, s.key, s.yes_step, s.no_step, e.step_entered_at + s.timeout AS target,
                       EXISTS (SELECT 1 FROM outreach.journey_step rs
                                 JOIN outreach.message m ON m.enrollment_id = e.id AND m.step_id = rs.id
                                 JOIN outreach.interaction i ON i.message_id = m.id
                                WHERE rs.journey_id = e.journey_id AND rs.key = s.after_step
                                  AND i.kind = ANY (CASE s.interaction WHEN 'opened' THEN ARRAY['opened', 'clicked'] ELSE ARRAY['clicked'] END)
                                  AND i.occurred_at <= e.step_entered_at + s.timeout) AS found
                  FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
                 WHERE e.id = ANY (run) AND s.kind = 'branch_interaction') b);
    END IF;
    IF 'branch_segment' = ANY (kinds) THEN
      d := d || ARRAY(
        SELECT ROW(b.id, b.journey_id, b.sid, b.key, 'branch_segment', CASE WHEN b.member THEN 'yes' ELSE 'no' END,
                   CASE WHEN b.member THEN b.yes_step ELSE b.no_step END, NULL, NULL, NULL)::outreach.journey_decision
          FROM (SELECT e.id, e.journey_id, s.id AS sid, s.key, s.yes_step, s.no_step,
                       EXISTS (SELECT 1 FROM outreach.segment_member sm JOIN outreach.segment sg ON sg.id = sm.segment_id
                                WHERE sg.name = s.segment AND sm.contact_id = e.contact_id) AS member
                  FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
                 WHERE e.id = ANY (run) AND s.kind = 'branch_segment') b);
    END IF;
    IF 'split' = ANY (kinds) THEN
      -- Deterministic per enrollment and step, so a retried tick takes the same path.
      d := d || ARRAY(
        SELECT ROW(b.id, b.journey_id, b.sid, b.key, 'split', CASE WHEN b.yes THEN 'yes' ELSE 'no' END,
                   CASE WHEN b.yes THEN b.yes_step ELSE b.no_step END, NULL, NULL, NULL)::outreach.journey_decision
          FROM (SELECT e.id, e.journey_id, s.id AS sid, s.key, s.yes_step, s.no_step,
                       (hashtext(e.id::text || '/' || s.key)::bigint + 2147483648) % 10000 < s.percent * 100 AS yes
                  FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
                 WHERE e.id = ANY (run) AND s.kind = 'split') b);
    END IF;
    IF 'add_to_segment' = ANY (kinds) OR 'remove_from_segment' = ANY (kinds) THEN
      -- one call per static segment with all its contacts of this round
      PERFORM outreach._journey_segment_members(x.kind, x.segment, x.contacts)
         FROM (SELECT s.kind, s.segment, array_agg(DISTINCT e.contact_id ORDER BY e.contact_id) AS contacts
                 FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
                WHERE e.id = ANY (run) AND s.kind IN ('add_to_segment', 'remove_from_segment')
                GROUP BY s.kind, s.segment ORDER BY s.segment, s.kind) x;
      d := d || ARRAY(
        SELECT ROW(e.id, e.journey_id, s.id, s.key, s.kind,
                   CASE s.kind WHEN 'add_to_segment' THEN 'added' ELSE 'removed' END, s.next_step, NULL, NULL, NULL)::outreach.journey_decision
          FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
         WHERE e.id = ANY (run) AND s.kind IN ('add_to_segment', 'remove_from_segment'));
    END IF;
    IF 'subscribe' = ANY (kinds) OR 'unsubscribe' = ANY (kinds) THEN
      PERFORM outreach._journey_subscribe(e.contact_id, s.list, s.kind = 'subscribe')
         FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
        WHERE e.id = ANY (run) AND s.kind IN ('subscribe', 'unsubscribe')
        ORDER BY e.contact_id, e.id;
      d := d || ARRAY(
        SELECT ROW(e.id, e.journey_id, s.id, s.key, s.kind, s.kind || 'd', s.next_step, NULL, NULL, NULL)::outreach.journey_decision
          FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
         WHERE e.id = ANY (run) AND s.kind IN ('subscribe', 'unsubscribe'));
    END IF;
    IF 'end' = ANY (kinds) THEN
      d := d || ARRAY(
        SELECT ROW(e.id, e.journey_id, s.id, s.key, 'end', 'ended', NULL, NULL, NULL, NULL)::outreach.journey_decision
          FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
         WHERE e.id = ANY (run) AND s.kind = 'end');
    END IF;
    IF kinds && ARRAY['message', 'experiment'] THEN   -- 62_experiments: held audiences wait
      d := d || ARRAY(SELECT h FROM outreach._journey_held(run, at) h);
    END IF;
    IF kinds && ARRAY['email', 'sms', 'letter', 'message', 'experiment'] THEN
      reqs := coalesce(sends, '{}');   -- gathered with the round's enrollments above
      IF kinds && ARRAY['message', 'experiment'] THEN   -- 62_experiments: the template chosen per enrollment
        reqs := reqs || ARRAY(SELECT r FROM outreach._journey_chosen(run, at) r ORDER BY r.contact_id, r.enrollment_id);
      END IF;
      d := d || ARRAY(
        SELECT ROW(q.enrollment_id, s.journey_id, s.id, s.key, s.kind, CASE WHEN q.error IS NULL THEN q.status END,
                   s.next_step, q.message_id, NULL, q.error)::outreach.journey_decision
          FROM outreach._enqueue_batch(reqs, at) q JOIN outreach.journey_step s ON s.id = q.step_id);
      messages := messages + (SELECT count(*) FROM unnest(d) x WHERE x.kind IN ('email', 'sms', 'letter', 'message', 'experiment') AND x.error IS NULL);
    END IF;

    -- An enrollment whose next step is an end step ends in this round: the end step's history
    -- row is written as the next round would write it, and the enrollment is written once
    -- (completed) instead of twice (moved, then completed).  One whose next step is a wait
    -- (of a positive duration) is moved with the time it waits until, as the next round would
    -- set it (a wait that has not passed writes no history).  Only what the next round would
    -- have done: still active after this round's steps, not in the suppression segment (the
    -- next round would have let it exit first).
    SELECT array_agg(CASE WHEN f.sid IS NULL THEN ROW(x.enrollment_id, x.journey_id, x.step_id, x.step_key, x.kind, x.outcome,
                                                      x.next_step, x.message_id, x.wait_until, x.error)::outreach.journey_decision
                          WHEN f.skind = 'wait' THEN ROW(x.enrollment_id, x.journey_id, x.step_id, x.step_key, x.kind, x.outcome,
                                                         x.next_step, x.message_id, at + f.duration, x.error)::outreach.journey_decision
                          ELSE ROW(x.enrollment_id, x.journey_id, x.step_id, x.step_key, x.kind, x.outcome,
                                   NULL, x.message_id, x.wait_until, x.error)::outreach.journey_decision END ORDER BY x.ord),
           array_agg(ROW(x.enrollment_id, x.journey_id, f.sid, f.skey, 'end', 'ended', NULL, NULL, NULL, NULL)::outreach.journey_decision
                     ORDER BY x.ord) FILTER (WHERE f.skind = 'end'),
           count(*) FILTER (WHERE x.error IS NULL AND x.outcome IS NOT NULL)
      INTO d, ends, decided
      FROM unnest(d) WITH ORDINALITY x(enrollment_id, journey_id, step_id, step_key, kind, outcome, next_step, message_id,
                                       wait_until, error, ord)
      LEFT JOIN LATERAL (
        SELECT s.id AS sid, s.key AS skey, s.kind AS skind, s.duration
          FROM outreach.journey_step s, outreach.enrollment e, outreach.journey j
         WHERE x.error IS NULL AND x.outcome IS NOT NULL
           AND s.journey_id = x.journey_id AND s.key = x.next_step
           AND (s.kind = 'end' OR (s.kind = 'wait' AND s.duration > interval '0'))
           AND e.id = x.enrollment_id AND e.status IS NOT DISTINCT FROM 'active' AND j.id = e.journey_id
           AND NOT EXISTS (SELECT 1 FROM outreach.segment_member sm
                            WHERE sm.segment_id = j.suppression_segment_id AND sm.contact_id = e.contact_id)) f ON true;
    d := coalesce(d, '{}') || coalesce(ends, '{}');

    -- apply: failures, waits, history, moves, completions
    UPDATE outreach.enrollment e
       SET status = 'failed', error = x.error, attempt = e.attempt + 1, ended_at = at, next_run_at = NULL
      FROM unnest(d) x
     WHERE x.error IS NOT NULL AND e.id = x.enrollment_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    failed := failed + n;
    UPDATE outreach.enrollment e SET next_run_at = x.wait_until
      FROM unnest(d) x
     WHERE x.error IS NULL AND x.outcome IS NULL AND e.id = x.enrollment_id;
    INSERT INTO outreach.enrollment_step (enrollment_id, journey_id, step_id, step_key, kind, outcome, message_id, done_at)
    SELECT x.enrollment_id, x.journey_id, x.step_id, x.step_key, x.kind, x.outcome, x.message_id, at
      FROM unnest(d) WITH ORDINALITY x WHERE x.error IS NULL AND x.outcome IS NOT NULL ORDER BY x.enrollment_id, x.ordinality;
    GET DIAGNOSTICS n = ROW_COUNT;
    steps := steps + n;
    -- a step may have ended the enrollment (e.g. removing the contact from the audience)
    UPDATE outreach.enrollment e SET current_step = x.next_step, step_entered_at = at, next_run_at = coalesce(x.wait_until, at),
           error = NULL
      FROM unnest(d) x
     WHERE x.error IS NULL AND x.outcome IS NOT NULL AND x.next_step IS NOT NULL AND e.id = x.enrollment_id
       AND e.status IS NOT DISTINCT FROM 'active';
    GET DIAGNOSTICS moved = ROW_COUNT;
    UPDATE outreach.enrollment e
       SET status = 'completed', ended_at = at, next_run_at = NULL, current_step = NULL, error = NULL,
           ended_change_id = y.change_id
      FROM (SELECT x.enrollment_id,
                   (SELECT max(sc.id) FILTER (WHERE sc.segment_id = j.audience_segment_id) FROM outreach.segment_change sc
                     WHERE sc.contact_id = e2.contact_id) AS change_id
              FROM (SELECT DISTINCT z.enrollment_id FROM unnest(d) z
                     WHERE z.error IS NULL AND z.outcome IS NOT NULL AND z.next_step IS NULL) x
              JOIN outreach.enrollment e2 ON e2.id = x.enrollment_id
              JOIN outreach.journey j ON j.id = e2.journey_id) y
     WHERE e.id = y.enrollment_id AND e.status IS NOT DISTINCT FROM 'active';
    GET DIAGNOSTICS n = ROW_COUNT;
    completed := completed + n;
    -- enrollments a step ended in another way (exit on leaving the audience): counted when
    -- some enrollment with an outcome was neither moved nor completed
    IF decided > moved + n THEN
      exited := exited + (SELECT count(DISTINCT e.id) FROM unnest(d) x JOIN outreach.enrollment e ON e.id = x.enrollment_id
                           WHERE x.error IS NULL AND x.outcome IS NOT NULL AND e.status = 'exited');
    END IF;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION outreach.tick_journeys(at timestamptz DEFAULT outreach.now(), batch_size int DEFAULT 1000,
                                       max_batches int DEFAULT NULL)
RETURNS outreach.journey_tick_run
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run outreach.journey_tick_run;
  prev text := current_setting('outreach.now', true);
  deadline timestamptz;
  jid bigint;
  ids bigint[];
  retry_later bigint[] := '{}';
  cursor_at timestamptz := '-infinity';
  cursor_id bigint := 0;
  los int[];
  his int[];
  lo int;
  hi int;
  mid int;
  r record;
  state text;
  msg text;
BEGIN
  IF batch_size IS NULL OR batch_size < 1 OR (max_batches IS NOT NULL AND max_batches < 1) THEN
    RAISE EXCEPTION 'batch_size and max_batches must be at least 1' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Leave max_batches NULL to work until nothing is due or the time budget is spent.';
  END IF;
  PERFORM set_config('outreach.now', at::text, true);
  INSERT INTO outreach.journey_tick_run (at, started_at) VALUES (at, clock_timestamp()) RETURNING * INTO run;
  deadline := clock_timestamp() + coalesce((SELECT s.journey_tick_budget FROM outreach.messaging_settings s), interval '50 seconds');

  FOR jid IN SELECT id FROM outreach.journey WHERE status = 'live' ORDER BY id LOOP
    run.exited := run.exited + outreach._exit_departed(jid, at);
    run.enrolled := run.enrolled + outreach._enroll_members(jid, at);
  END LOOP;

  LOOP
    EXIT WHEN max_batches IS NOT NULL AND run.batches >= max_batches;
    IF clock_timestamp() >= deadline THEN
      run.time_boxed := true;
      EXIT;
    END IF;
    -- keyset cursor: what this tick advanced (or skipped) is behind it
    ids := outreach._journey_take_batch(at, batch_size, cursor_at, cursor_id, retry_later);
    EXIT WHEN ids IS NULL;
    cursor_id := ids[cardinality(ids)];
    SELECT e.next_run_at INTO cursor_at FROM outreach.enrollment e WHERE e.id = cursor_id;
    run.batches := run.batches + 1;
    los := ARRAY[1];
    his := ARRAY[cardinality(ids)];
    WHILE cardinality(los) > 0 LOOP
      lo := los[cardinality(los)];
      hi := his[cardinality(his)];
      los := los[1:cardinality(los) - 1];
      his := his[1:cardinality(his) - 1];
      BEGIN
        r := outreach._journey_run_batch(ids[lo:hi], at);
        run.processed := run.processed + (hi - lo + 1);
        run.steps := run.steps + r.steps;
        run.messages := run.messages + r.messages;
        run.completed := run.completed + r.completed;
        run.exited := run.exited + r.exited;
        run.failed := run.failed + r.failed;
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        IF lo < hi THEN
          -- the subtransaction rolled the part back: redo it as two halves
          mid := (lo + hi) / 2;
          los := los || ARRAY[mid + 1, lo];
          his := his || ARRAY[hi, mid];
        ELSIF state IN ('40P01', '40001', '55P03') THEN
          -- transient: the work was rolled back; the enrollment stays due for the next tick
          UPDATE outreach.enrollment SET error = msg, attempt = attempt + 1 WHERE id = ids[lo];
          run.processed := run.processed + 1;
          run.retried := run.retried + 1;
          retry_later := retry_later || ids[lo];
        ELSE
          UPDATE outreach.enrollment
          SET status = 'failed', error = msg, attempt = attempt + 1, ended_at = at, next_run_at = NULL
          WHERE id = ids[lo];
          run.processed := run.processed + 1;
          run.failed := run.failed + 1;
        END IF;
      END;
    END LOOP;
  END LOOP;

  SELECT count(*), min(e.next_run_at) INTO run.due_left, run.oldest_due_at
    FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
   WHERE e.status = 'active' AND e.next_run_at <= at AND j.status = 'live';
  run.more_due := run.due_left > 0;
  run.finished_at := clock_timestamp();
  UPDATE outreach.journey_tick_run
  SET finished_at = run.finished_at, enrolled = run.enrolled, exited = run.exited, processed = run.processed,
      steps = run.steps, messages = run.messages, completed = run.completed, failed = run.failed,
      retried = run.retried, batches = run.batches, more_due = run.more_due, due_left = run.due_left,
      oldest_due_at = run.oldest_due_at, time_boxed = run.time_boxed
  WHERE id = run.id;
  PERFORM set_config('outreach.now', coalesce(prev, ''), true);
  RETURN run;
END $$;
COMMENT ON FUNCTION outreach.tick_journeys(timestamptz, int, int) IS
  'Journey tick: enroll, exit, advance everything due in batches of batch_size (at most max_batches when given, within messaging_settings.journey_tick_budget); returns the run statistics, with how far behind it is';

-- Grants (0.3) ---------------------------------------------------------------------------
-- Marketers build, launch and stop journeys; the tick is the admin's (pg_cron runs it as the
-- extension owner).  Internal _helpers get no grants.
REVOKE ALL ON FUNCTION outreach._journey_run_batch(bigint[], timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._journey_segment_members(text, text, bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._journey_take_batch(timestamptz, int, timestamptz, bigint, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  outreach.create_journey(text, text, text, text, timestamptz, timestamptz, text, boolean, boolean, text),
  outreach.add_step(text, text, text, text, text, interval, time, time, int[], text, text, interval, text, text, numeric, text, text),
  outreach.set_entry_step(text, text),
  outreach.validate_journey(text),
  outreach.launch_journey(text),
  outreach.stop_journey(text),
  outreach.drop_journey(text),
  outreach.retry_enrollment(bigint),
  outreach.next_local_window(timestamptz, text, time, time, int[])
  TO outreach_marketer, outreach_admin;
GRANT EXECUTE ON FUNCTION outreach.tick_journeys(timestamptz, int, int) TO outreach_admin;

CREATE OR REPLACE FUNCTION outreach._journey_interaction_wake() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- (every batch report inserts its bounces, often none: without an open or click there is
  -- nothing to wake, and the join below could be planned from the active enrollments)
  IF NOT EXISTS (SELECT 1 FROM added i WHERE i.kind IN ('opened', 'clicked')) THEN
    RETURN NULL;
  END IF;
  UPDATE outreach.enrollment e
  SET next_run_at = least(e.next_run_at, w.occurred_at)
  FROM (
    SELECT m.enrollment_id, min(i.occurred_at) AS occurred_at
    FROM added i
    JOIN outreach.message m ON m.id = i.message_id
    WHERE i.kind IN ('opened', 'clicked') AND m.enrollment_id IS NOT NULL
    GROUP BY m.enrollment_id
  ) w
  WHERE e.id = w.enrollment_id AND e.status = 'active'
    AND EXISTS (SELECT 1 FROM outreach.journey_step s
                JOIN outreach.message m ON m.enrollment_id = e.id
                JOIN outreach.journey_step rs ON rs.id = m.step_id
                WHERE s.journey_id = e.journey_id AND s.key = e.current_step AND s.kind = 'branch_interaction'
                  AND rs.journey_id = e.journey_id AND rs.key = s.after_step);
  RETURN NULL;
END $$;
