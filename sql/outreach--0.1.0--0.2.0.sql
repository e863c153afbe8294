-- outreach 0.1.0 -> 0.2.0 (ALTER EXTENSION outreach UPDATE).  What changed, and why, is in
-- the commits that changed sql/parts; this script carries an installed 0.1.0 to what a fresh
-- CREATE EXTENSION of 0.2.0 gives (test/sql/extension_upgrade.sql compares the two).
\echo Use "ALTER EXTENSION outreach UPDATE TO '0.2.0'" to load this file. \quit

-- Compiled queries run without JIT.
ALTER FUNCTION outreach.evaluate(outreach.segment_query, text) SET jit = off;
ALTER FUNCTION outreach.evaluate(outreach.segment_query, bigint[], text) SET jit = off;
ALTER FUNCTION outreach.preview(outreach.segment_query, int, text) SET jit = off;

-- Members and history without a foreign key to segment (see 40_segments.sql).
ALTER TABLE outreach.segment_member DROP CONSTRAINT segment_member_segment_id_fkey;
ALTER TABLE outreach.segment_change DROP CONSTRAINT segment_change_segment_id_fkey;

-- Pending deferred changes: one row per statement.  What is pending carries over, one row
-- per segment.
-- (segment_overview reads it: dropped here, created again at the end)
DROP VIEW outreach.segment_overview;
ALTER TABLE outreach.segment_pending RENAME TO segment_pending_0_1_0;
ALTER TABLE outreach.segment_pending_0_1_0 RENAME CONSTRAINT segment_pending_pkey TO segment_pending_0_1_0_pkey;

CREATE TABLE outreach.segment_pending (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  segment_ids bigint[] NOT NULL,
  contact_ids bigint[] NOT NULL
);
COMMENT ON TABLE outreach.segment_pending IS
  'Deferred maintenance: per writing statement, the deferred segments concerned and the contacts touched; outreach.tick() applies them';

INSERT INTO outreach.segment_pending (segment_ids, contact_ids)
SELECT ARRAY[p.segment_id], array_agg(p.contact_id ORDER BY p.contact_id)
FROM outreach.segment_pending_0_1_0 p GROUP BY p.segment_id ORDER BY p.segment_id;
DROP TABLE outreach.segment_pending_0_1_0;

CREATE FUNCTION outreach._pending_take(segment_id bigint) RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  ids bigint[];
BEGIN
  WITH t AS (UPDATE outreach.segment_pending p SET segment_ids = array_remove(p.segment_ids, segment_id)
             WHERE p.segment_ids @> ARRAY[segment_id] RETURNING p.contact_ids)
  SELECT array_agg(DISTINCT c ORDER BY c) INTO ids FROM t, unnest(t.contact_ids) AS c;
  DELETE FROM outreach.segment_pending p WHERE p.segment_ids = '{}';
  RETURN ids;
END $$;

CREATE FUNCTION outreach._segment_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  DELETE FROM outreach.segment_member m WHERE m.segment_id = OLD.id;
  DELETE FROM outreach.segment_change c WHERE c.segment_id = OLD.id;
  PERFORM outreach._pending_take(OLD.id);
  RETURN OLD;
END $$;
CREATE TRIGGER segment_deleted AFTER DELETE ON outreach.segment
  FOR EACH ROW EXECUTE FUNCTION outreach._segment_deleted();


COMMENT ON FUNCTION outreach._apply_segment(bigint, bigint[]) IS
  'Re-evaluates a live segment for the given contacts (any number: bulk sets run as a cursor, see membership.c), writes the difference and cascades; returns the number of membership changes';

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
  EXECUTE format('SELECT array_agg(coalesce(f.contact_id, m.contact_id) ORDER BY 1) '
                 'FROM (SELECT DISTINCT q.contact_id FROM (%s) AS q(contact_id)) AS f '
                 'FULL JOIN (SELECT x.contact_id FROM outreach.segment_member x WHERE x.segment_id = $1) AS m '
                 'ON m.contact_id = f.contact_id WHERE f.contact_id IS NULL OR m.contact_id IS NULL', s.full_sql)
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
                   'SELECT $1, ins.contact_id, ''added'', $2 FROM ins', s.full_sql) USING s.id, at;
  END IF;
  UPDATE outreach.segment x SET status = 'live', pending_full = false,
    last_evaluated_at = CASE WHEN x.kind <> 'static' THEN outreach.now() END,
    last_evaluation_duration = CASE WHEN x.kind <> 'static' THEN clock_timestamp() - started END,
    next_evaluation_at = CASE WHEN x.time_dependent THEN outreach.now() + x.evaluate_every END
  WHERE x.id = s.id;
  PERFORM outreach._pending_take(s.id);
  PERFORM outreach._membership_invalidate();
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
  PERFORM outreach._pending_take(s.id);
END $$;

CREATE OR REPLACE FUNCTION outreach.drop_segment(segment text, cascade boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s outreach.segment := outreach._segment_by_name(segment);
  users text := outreach._segment_dependents(s.id);
  d text;
BEGIN
  IF users IS NOT NULL AND NOT cascade THEN
    RAISE EXCEPTION 'segment "%" is used by other segments', s.name USING ERRCODE = 'dependent_objects_still_exist',
      DETAIL = format('Segments that depend on it: %s.', users),
      HINT = format('Drop or change them first, or call outreach.drop_segment(%L, cascade => true) to drop them too.', s.name);
  END IF;
  FOR d IN SELECT t.name FROM outreach.segment_dependency x JOIN outreach.segment t ON t.id = x.segment_id
           WHERE x.depends_on = s.id ORDER BY t.name LOOP
    PERFORM outreach.drop_segment(d, true);
  END LOOP;
  IF s.status = 'live' THEN
    PERFORM outreach._segment_published(outreach._segment_tables(s.id));
  END IF;
  DELETE FROM outreach.segment x WHERE x.id = s.id;
END $$;

CREATE OR REPLACE FUNCTION outreach.set_segment_mode(segment text, mode text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  s outreach.segment := outreach._segment_by_name(segment);
  ids bigint[];
BEGIN
  IF s.kind = 'static' THEN
    RAISE EXCEPTION 'segment "%" is static and has no maintenance mode', s.name USING ERRCODE = 'wrong_object_type';
  END IF;
  UPDATE outreach.segment x SET mode = set_segment_mode.mode WHERE x.id = s.id;
  PERFORM outreach._membership_invalidate();
  IF mode = 'immediate' AND s.mode = 'deferred' AND s.status = 'live' THEN
    -- catch up now what the tick would have applied
    PERFORM outreach._lock_segment_tables(outreach._segment_tables(s.id));
    IF s.pending_full THEN
      UPDATE outreach.segment x SET pending_full = false WHERE x.id = s.id;
      PERFORM outreach._pending_take(s.id);
      PERFORM outreach._segment_refresh(s.id);
    ELSE
      ids := outreach._pending_take(s.id);
      PERFORM outreach._apply_segment(s.id, ids);
    END IF;
  END IF;
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

  PERFORM outreach._tick_journeys(at);

  UPDATE outreach.tick_run r SET finished_at = clock_timestamp(), deferred_contacts = n_contacts,
    full_evaluations = n_full, membership_changes = n_changes
  WHERE r.id = run_id;
  PERFORM pg_catalog.set_config('outreach.now', coalesce(prev, ''), true);
END $$;

DROP FUNCTION outreach._apply_chunked(bigint, bigint[]);

CREATE VIEW outreach.segment_overview AS
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
       s.id, s.created_at, s.updated_at
FROM outreach.segment s;
COMMENT ON VIEW outreach.segment_overview IS
  'Monitoring: every segment with kind, status, mode, member count, last full evaluation, pending deferred changes and definition';
