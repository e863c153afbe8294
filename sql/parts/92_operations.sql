-- 92_operations.sql: operating outreach for years (DESIGN §10, issue 11).  Owns:
--   * backups: the pg_dump marks of every 0.2.0 table that holds user data, the rows the
--     extension ships itself (left out of dumps), and what a restore must not do (fire the
--     side effects of triggers on rows that are only being copied back);
--   * scheduling: the tick from pg_cron in any database, or from any scheduler;
--   * health checks, alerts, retention and the progress of long operations (below).
-- docs/operations.md is the guide.  Tables of later parts mark themselves.

-- Backups --------------------------------------------------------------------------------

-- True while pg_restore (or psql running a plain dump) copies table data back: every dump
-- sets check_function_bodies = false and copies rows with COPY ... FROM stdin.  Triggers of
-- the extension's own tables test it in their WHEN clause, so a restored row does not run its
-- side effects a second time (re-evaluate membership, enroll, wake a journey, notify
-- workers): their results are restored with the rows.  A bulk load with COPY in a session
-- that turned check_function_bodies off would skip them too; keep it on (the default).
-- Inlined into the WHEN clauses (a plain SQL function without SET, every name qualified), so
-- a normal row insert pays one current_setting() call, no function call.
CREATE FUNCTION outreach._restoring() RETURNS boolean
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'outreach_restoring';
REVOKE ALL ON FUNCTION outreach._restoring() FROM PUBLIC;
COMMENT ON FUNCTION outreach._restoring() IS
  'Internal: true while a dump''s COPY restores table data (check_function_bodies off and a COPY statement)';

-- Rows the extension ships itself (value sets, segment templates), by key.  A dump leaves
-- them out, since CREATE EXTENSION on the restoring side inserts them; the user's own rows
-- in the same tables are dumped.  Filled below from what the earlier parts inserted: on an
-- upgrade, the value sets of the original install (their created_at is the install's time,
-- which is the built-in entities' registered_at) and of this upgrade.
CREATE TABLE outreach._shipped_row (
  relation regclass NOT NULL,
  key      text[] NOT NULL,
  PRIMARY KEY (relation, key)
);
COMMENT ON TABLE outreach._shipped_row IS
  'Internal: rows the extension ships in tables that also hold user rows; pg_dump leaves them out';
INSERT INTO outreach._shipped_row (relation, key)
SELECT 'outreach.value_set'::regclass, ARRAY[v.name, v.code_system, v.code] FROM outreach.value_set v
WHERE v.created_at = now()
   OR v.created_at = (SELECT e.registered_at FROM outreach.entity e WHERE e.name = 'contact')
ON CONFLICT DO NOTHING;
INSERT INTO outreach._shipped_row (relation, key)
SELECT 'outreach.segment_template'::regclass, ARRAY[t.name] FROM outreach.segment_template t
ON CONFLICT DO NOTHING;

-- Clinical data and contacts.
SELECT outreach._dump('outreach.account');
SELECT outreach._dump('outreach.contact');
SELECT outreach._dump('outreach.encounter');
SELECT outreach._dump('outreach.condition');
SELECT outreach._dump('outreach.observation');
SELECT outreach._dump('outreach.procedure');
SELECT outreach._dump('outreach.immunization');
SELECT outreach._dump('outreach.medication');
SELECT outreach._dump('outreach.allergy');
SELECT outreach._dump('outreach.value_set',
  $$WHERE NOT EXISTS (SELECT 1 FROM outreach._shipped_row s WHERE s.relation = 'outreach.value_set'::pg_catalog.regclass
                      AND s.key = ARRAY[value_set.name, value_set.code_system, value_set.code])$$);
SELECT outreach._dump('outreach.synthea_source_row');
SELECT outreach._dump('outreach.segment_template',
  $$WHERE NOT EXISTS (SELECT 1 FROM outreach._shipped_row s WHERE s.relation = 'outreach.segment_template'::pg_catalog.regclass
                      AND s.key = ARRAY[segment_template.name])$$);
-- The registry: the user's entities and links (the built-in ones come with the extension).
-- Their membership triggers are on the user's own tables, which are not members of the
-- extension, so pg_dump writes them with the tables (after the data) and they come back.
SELECT outreach._dump('outreach.entity', 'WHERE NOT builtin');
SELECT outreach._dump('outreach.entity_link',
  $$WHERE NOT (entity_link.entity IN (SELECT e.name FROM outreach.entity e WHERE e.builtin)
               AND entity_link.target_entity IN (SELECT e.name FROM outreach.entity e WHERE e.builtin))$$);
-- Segments, live membership, history, pending deferred changes, the tick's history.
-- contact_stamp (unlogged) is a per-contact lock row that maintenance recreates.
SELECT outreach._dump('outreach.segment');
SELECT outreach._dump('outreach.segment_entity');
SELECT outreach._dump('outreach.segment_dependency');
SELECT outreach._dump('outreach.segment_member');
SELECT outreach._dump('outreach.segment_change');
SELECT outreach._dump('outreach.segment_pending');
SELECT outreach._dump('outreach.segment_change_consumer');
SELECT outreach._dump('outreach.tick_run');
-- Messaging: settings (shipped rows the admin may change: restored over the defaults, see
-- _restore_replaces_rows), templates, lists, consents, the outbox and interactions.
SELECT outreach._dump('outreach.messaging_settings');
SELECT outreach._dump('outreach.quiet_hours');
SELECT outreach._dump('outreach.frequency_cap');
SELECT outreach._dump('outreach.template');
SELECT outreach._dump('outreach.subscription_list');
SELECT outreach._dump('outreach.subscription');
SELECT outreach._dump('outreach.message');
SELECT outreach._dump('outreach.interaction');
-- Journeys mid-flight.
SELECT outreach._dump('outreach.journey');
SELECT outreach._dump('outreach.journey_step');
SELECT outreach._dump('outreach.enrollment');
SELECT outreach._dump('outreach.enrollment_step');
SELECT outreach._dump('outreach.journey_tick_run');


-- A table dumped whole (no filter) is restored as it was dumped: its COPY starts by emptying
-- it, so the rows CREATE EXTENSION shipped (settings the admin may have changed or deleted:
-- messaging_settings, quiet_hours, frequency_cap, ...) give way to the dumped ones instead of
-- colliding with them.  Every such table gets the trigger at the end of this part.
CREATE FUNCTION outreach._restore_replaces_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  present boolean;
BEGIN
  EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s)', TG_RELID::regclass) INTO present;
  IF present THEN
    EXECUTE pg_catalog.format('DELETE FROM %s', TG_RELID::regclass);
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION outreach._restore_replaces_rows() FROM PUBLIC;

-- Transaction ids do not travel: in a new cluster they start again near zero, so the xid of a
-- restored membership change (and a reader's position) would lie in the future, and
-- consume_segment_changes would wait for it forever.  Restored changes are from finished
-- transactions: they get xid 0, readers keep their last id and resume after it.
CREATE FUNCTION outreach._restore_change_xid() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_TABLE_NAME = 'segment_change' THEN
    NEW.xid := '0'::xid8;
  ELSE
    NEW.last_xid := '0'::xid8;
  END IF;
  RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION outreach._restore_change_xid() FROM PUBLIC;
CREATE TRIGGER outreach_restore_change_xid BEFORE INSERT ON outreach.segment_change
  FOR EACH ROW WHEN (outreach._restoring()) EXECUTE FUNCTION outreach._restore_change_xid();
CREATE TRIGGER outreach_restore_change_xid BEFORE INSERT ON outreach.segment_change_consumer
  FOR EACH ROW WHEN (outreach._restoring()) EXECUTE FUNCTION outreach._restore_change_xid();

-- Scheduling -----------------------------------------------------------------------------

-- pg_cron runs in one database per cluster (cron.database_name).  In that database,
-- schedule_tick() installs the job itself (creating the pg_cron extension if it is preloaded
-- but not created yet); in any other database it says what to run in pg_cron's database
-- (cron.schedule_in_database), or let any scheduler call outreach.tick() every minute.
CREATE OR REPLACE FUNCTION outreach.schedule_tick() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  cron_db text := pg_catalog.current_setting('cron.database_name', true);
  job bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    IF cron_db IS NULL THEN
      RAISE EXCEPTION 'pg_cron is not loaded in this server' USING ERRCODE = 'object_not_in_prerequisite_state',
        DETAIL = 'schedule_tick() installs a pg_cron job; pg_cron must be in shared_preload_libraries.',
        HINT = 'Add pg_cron to shared_preload_libraries and restart, or have any scheduler run "SELECT outreach.tick()" in this database every minute.';
    ELSIF cron_db <> pg_catalog.current_database() THEN
      RAISE EXCEPTION 'pg_cron runs in database "%", not in "%"', cron_db, pg_catalog.current_database()
        USING ERRCODE = 'object_not_in_prerequisite_state',
        DETAIL = 'pg_cron keeps its jobs in one database per cluster (cron.database_name).',
        HINT = pg_catalog.format('In database %s run: SELECT cron.schedule_in_database(%L, ''* * * * *'', ''SELECT outreach.tick()'', %L);',
                                 cron_db, 'outreach-tick:' || pg_catalog.current_database(), pg_catalog.current_database());
    END IF;
    CREATE EXTENSION pg_cron;
  END IF;
  EXECUTE 'SELECT cron.schedule_in_database($1, ''* * * * *'', ''SELECT outreach.tick()'', $2)'
    INTO job USING 'outreach-tick', pg_catalog.current_database();
  RETURN job;
END $$;
COMMENT ON FUNCTION outreach.schedule_tick() IS
  'Installs (or updates) the pg_cron job "outreach-tick" running outreach.tick() every minute in this database (which must be pg_cron''s); returns the job id';

CREATE OR REPLACE FUNCTION outreach.unschedule_tick() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  done boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    RETURN false;
  END IF;
  EXECUTE 'SELECT coalesce(bool_or(cron.unschedule(j.jobid)), false) FROM cron.job j
           WHERE j.jobname = ''outreach-tick'' AND j.database = pg_catalog.current_database()' INTO done;
  RETURN done;
END $$;
COMMENT ON FUNCTION outreach.unschedule_tick() IS
  'Removes the pg_cron job "outreach-tick" of this database; false when there was none';

-- Settings --------------------------------------------------------------------------------

-- One row per setting: health thresholds, retention periods, batch sizes.  The admin
-- changes them with outreach.set_operations_setting(name, value) (checked against the kind)
-- or a plain UPDATE; docs/operations.md lists them with their defaults.
CREATE TABLE outreach.operations_setting (
  name        text PRIMARY KEY,
  value       text NOT NULL,
  kind        text NOT NULL
              CONSTRAINT operations_setting_kind_allowed CHECK (outreach.allowed_value(kind, 'operations_setting.kind', '{interval,number,integer}')),
  description text NOT NULL,
  CONSTRAINT operations_setting_value_valid CHECK (
    CASE kind WHEN 'interval' THEN value ~ '^[0-9 a-z:.]+$' AND value::interval >= interval '0'
              WHEN 'number' THEN value ~ '^[0-9]+(\.[0-9]+)?$'
              ELSE value ~ '^[0-9]+$' AND value::numeric BETWEEN 1 AND 2147483647 END)
);
COMMENT ON TABLE outreach.operations_setting IS
  'Operations settings: health thresholds, retention periods and batch sizes (see docs/operations.md); change with outreach.set_operations_setting()';
COMMENT ON COLUMN outreach.operations_setting.name IS 'Setting name, e.g. tick_late_critical or retention_tick_run';
COMMENT ON COLUMN outreach.operations_setting.value IS 'The value, as text in the setting''s kind';
COMMENT ON COLUMN outreach.operations_setting.kind IS 'interval, number (a rate such as 0.05) or integer (a count)';
COMMENT ON COLUMN outreach.operations_setting.description IS 'What the setting controls';
INSERT INTO outreach.operations_setting (name, value, kind, description) VALUES
  ('tick_late_warning',        '3 minutes',  'interval', 'health tick: warning when the last tick finished longer ago than this'),
  ('tick_late_critical',       '10 minutes', 'interval', 'health tick: critical when the last tick finished longer ago than this'),
  ('queue_age_warning',        '15 minutes', 'interval', 'health queue: warning when the oldest due queued message waits longer than this'),
  ('queue_age_critical',       '1 hour',     'interval', 'health queue: critical when the oldest due queued message waits longer than this'),
  ('lease_overdue_warning',    '0 minutes',  'interval', 'health leases: warning when a claimed message is past its lease by more than this'),
  ('lease_overdue_critical',   '1 hour',     'interval', 'health leases: critical when a claimed message is past its lease by more than this'),
  ('failed_enrollments_window','1 day',      'interval', 'health enrollments: the window in which failed enrollments are counted'),
  ('failed_enrollments_warning','1',         'integer',  'health enrollments: warning from this many failed enrollments in the window'),
  ('failed_enrollments_critical','50',       'integer',  'health enrollments: critical from this many failed enrollments in the window'),
  ('rate_window',              '7 days',     'interval', 'health bounce and complaint rates: the window of sent messages'),
  ('rate_min_messages',        '50',         'integer',  'health bounce and complaint rates: fewer sent messages in the window than this is always ok'),
  ('bounce_rate_warning',      '0.02',       'number',   'health bounces: warning from this share of sent messages bounced'),
  ('bounce_rate_critical',     '0.05',       'number',   'health bounces: critical from this share of sent messages bounced'),
  ('complaint_rate_warning',   '0.001',      'number',   'health complaints: warning from this share of sent messages complained about'),
  ('complaint_rate_critical',  '0.003',      'number',   'health complaints: critical from this share of sent messages complained about'),
  ('deferred_backlog_warning', '100000',     'integer',  'health deferred: warning from this many contacts waiting for the tick in deferred segments'),
  ('deferred_backlog_critical','1000000',    'integer',  'health deferred: critical from this many contacts waiting for the tick'),
  ('segment_late_warning',     '1 hour',     'interval', 'health segments: warning when a time-dependent segment''s re-evaluation is late by more than this'),
  ('segment_late_critical',    '1 day',      'interval', 'health segments: critical when it is late by more than this'),
  ('alerts_every',             '1 minute',   'interval', 'the tick checks health and raises alerts at most this often'),
  ('retention_every',          '10 minutes', 'interval', 'the tick runs a retention batch at most this often'),
  ('retention_batch',          '10000',      'integer',  'retention: at most this many rows of each kind purged per run'),
  ('retention_tick_run',       '30 days',    'interval', 'retention: tick_run and journey_tick_run rows older than this are purged'),
  ('retention_segment_change', '2 years',    'interval', 'retention: membership history older than this is compacted (segment_members_at stays exact back to this horizon)'),
  ('retention_interaction',    '2 years',    'interval', 'retention: interactions older than this are purged (not those of running enrollments)'),
  ('retention_message',        '3 years',    'interval', 'retention: finished messages older than this are purged with their interactions (not those of running enrollments)'),
  ('retention_message_body',   '30 days',    'interval', 'retention: subject and body of finished messages older than this are dropped (PHI); the row and its outcome stay'),
  ('retention_alert',          '1 year',     'interval', 'retention: resolved alerts older than this are purged'),
  ('retention_cron_history',   '7 days',     'interval', 'retention: pg_cron run details of the outreach jobs older than this are purged (in pg_cron''s database)');
SELECT outreach._dump('outreach.operations_setting');
GRANT SELECT ON outreach.operations_setting TO outreach_admin, outreach_analyst;
GRANT UPDATE (value) ON outreach.operations_setting TO outreach_admin;

CREATE FUNCTION outreach._setting(name text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT s.value FROM outreach.operations_setting s WHERE s.name = $1
$$;
REVOKE ALL ON FUNCTION outreach._setting(text) FROM PUBLIC;

CREATE FUNCTION outreach.set_operations_setting(name text, value text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  s outreach.operations_setting;
BEGIN
  SELECT * INTO s FROM outreach.operations_setting x WHERE x.name = name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown operations setting "%"', name USING ERRCODE = 'undefined_object',
      HINT = 'SELECT name, value, description FROM outreach.operations_setting lists them.';
  END IF;
  BEGIN
    UPDATE outreach.operations_setting x SET value = btrim(value) WHERE x.name = name;
  EXCEPTION WHEN check_violation OR invalid_datetime_format OR invalid_text_representation OR not_null_violation THEN
    RAISE EXCEPTION 'invalid value "%" for operations setting "%"', value, name USING ERRCODE = 'invalid_parameter_value',
      DETAIL = pg_catalog.format('The setting is a non-negative %s.', s.kind),
      HINT = CASE s.kind WHEN 'interval' THEN 'Write an interval such as ''15 minutes''.'
                         WHEN 'number' THEN 'Write a decimal number such as 0.05.'
                         ELSE 'Write a whole number such as 100.' END;
  END;
END $$;
REVOKE ALL ON FUNCTION outreach.set_operations_setting(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach.set_operations_setting(text, text) TO outreach_admin;
COMMENT ON FUNCTION outreach.set_operations_setting(text, text) IS
  'Changes an operations setting (health threshold, retention period, batch size), checked against its kind';

-- Health ----------------------------------------------------------------------------------

-- One row per check, ok / warning / critical, with the measured value and a detail a person
-- can act on.  Read from outreach.health; outreach.check_alerts() turns critical checks into
-- alerts.  Times are outreach.now() (tests drive the clock).
CREATE FUNCTION outreach._health() RETURNS TABLE (check_name text, status text, value numeric, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  clock timestamptz := outreach.now();
  last_tick timestamptz;
  age interval;
  n bigint;
  total bigint;
  rate numeric;
  cron_db text := pg_catalog.current_setting('cron.database_name', true);
  job record;
  run record;
  has_work boolean;
BEGIN
  -- tick: running and on time
  SELECT max(r.at) INTO last_tick FROM outreach.tick_run r WHERE r.finished_at IS NOT NULL;
  has_work := EXISTS (SELECT 1 FROM outreach.segment s WHERE s.status = 'live' AND (s.mode = 'deferred' OR s.time_dependent))
           OR EXISTS (SELECT 1 FROM outreach.journey j WHERE j.status = 'live');
  age := clock - last_tick;
  check_name := 'tick'; value := round(extract(epoch FROM age)::numeric);
  IF last_tick IS NULL THEN
    status := CASE WHEN has_work THEN 'critical' ELSE 'ok' END; value := NULL;
    detail := CASE WHEN has_work THEN 'no tick has run yet, and live deferred or time-dependent segments or live journeys need it; run SELECT outreach.schedule_tick() or call outreach.tick() every minute'
                   ELSE 'no tick has run yet (nothing needs it yet)' END;
  ELSIF age > outreach._setting('tick_late_critical')::interval THEN
    status := 'critical'; detail := pg_catalog.format('the last tick ran %s ago (critical after %s); is the pg_cron job or scheduler running?', date_trunc('second', age), outreach._setting('tick_late_critical'));
  ELSIF age > outreach._setting('tick_late_warning')::interval THEN
    status := 'warning'; detail := pg_catalog.format('the last tick ran %s ago (warning after %s)', date_trunc('second', age), outreach._setting('tick_late_warning'));
  ELSE
    status := 'ok'; detail := pg_catalog.format('the last tick ran %s ago', date_trunc('second', greatest(age, interval '0')));
  END IF;
  RETURN NEXT;

  -- pg_cron: can its job connect?  Its launcher records a failed run ("connection failed")
  -- when the job cannot connect, and the tick never runs.
  check_name := 'pg_cron'; value := NULL;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    status := 'ok';
    detail := CASE WHEN cron_db IS NULL THEN 'pg_cron is not loaded; the tick check shows whether another scheduler calls outreach.tick()'
                   ELSE pg_catalog.format('pg_cron runs in database %s; schedule this database''s tick there (docs/operations.md); the tick check shows whether it runs', cron_db) END;
  ELSE
    EXECUTE 'SELECT j.jobid, j.active FROM cron.job j WHERE j.jobname = ''outreach-tick'' AND j.database = pg_catalog.current_database() LIMIT 1' INTO job;
    IF job.jobid IS NULL THEN
      status := CASE WHEN last_tick IS NULL AND has_work THEN 'warning' ELSE 'ok' END;
      detail := 'no pg_cron job "outreach-tick" for this database (SELECT outreach.schedule_tick() installs it; another scheduler will do too)';
    ELSE
      EXECUTE 'SELECT d.status, d.return_message, d.start_time,
                      (SELECT count(*) FROM cron.job_run_details f WHERE f.jobid = $1 AND f.status = ''failed''
                         AND f.start_time > pg_catalog.now() - interval ''1 hour'') AS failures
               FROM cron.job_run_details d WHERE d.jobid = $1 AND d.status IN (''succeeded'', ''failed'')
               ORDER BY d.runid DESC LIMIT 1' INTO run USING job.jobid;
      value := run.failures;
      IF NOT job.active THEN
        status := 'warning'; detail := pg_catalog.format('the pg_cron job %s is not active', job.jobid);
      ELSIF run.status = 'failed' THEN
        status := 'critical';
        detail := pg_catalog.format('the last run of pg_cron job %s failed: %s%s', job.jobid, coalesce(run.return_message, '(no message)'),
          CASE WHEN run.return_message ILIKE '%connection%'
               THEN ' (pg_cron cannot connect: set cron.use_background_workers = on, or cron.host to the socket directory with a trust/peer entry in pg_hba.conf; see docs/operations.md)' ELSE '' END);
      ELSE
        status := 'ok'; detail := CASE WHEN run.status IS NULL THEN pg_catalog.format('pg_cron job %s has not run yet', job.jobid)
                                       ELSE pg_catalog.format('pg_cron job %s: last run %s', job.jobid, run.status) END;
      END IF;
    END IF;
  END IF;
  RETURN NEXT;

  -- queue: depth and the age of the oldest due message
  SELECT count(*), clock - min(m.send_after) INTO n, age FROM outreach.message m
  WHERE m.status = 'queued' AND m.send_after <= clock;
  check_name := 'queue'; value := round(coalesce(extract(epoch FROM age), 0)::numeric);
  status := CASE WHEN age > outreach._setting('queue_age_critical')::interval THEN 'critical'
                 WHEN age > outreach._setting('queue_age_warning')::interval THEN 'warning' ELSE 'ok' END;
  detail := CASE WHEN n = 0 THEN 'no message is due'
                 ELSE pg_catalog.format('%s due message(s), the oldest due for %s%s', n, date_trunc('second', age),
                        CASE WHEN status <> 'ok' THEN '; are the delivery workers running (LISTEN outreach_outbox, claim_messages)?' ELSE '' END) END;
  RETURN NEXT;

  -- leases: claimed and not reported past the lease
  SELECT count(*), clock - min(m.lease_expires_at) INTO n, age FROM outreach.message m
  WHERE m.status = 'sending' AND m.lease_expires_at < clock;
  check_name := 'leases'; value := n;
  status := CASE WHEN n = 0 THEN 'ok'
                 WHEN age > outreach._setting('lease_overdue_critical')::interval THEN 'critical'
                 WHEN age > outreach._setting('lease_overdue_warning')::interval THEN 'warning' ELSE 'ok' END;
  detail := CASE WHEN n = 0 THEN 'no claimed message is past its lease'
                 ELSE pg_catalog.format('%s claimed message(s) past their lease, the oldest by %s; a worker claimed them and did not report (they return to the pool at the next claim)', n, date_trunc('second', age)) END;
  RETURN NEXT;

  -- failed enrollments in the window
  SELECT count(*) INTO n FROM outreach.enrollment e
  WHERE e.status = 'failed' AND e.ended_at > clock - outreach._setting('failed_enrollments_window')::interval;
  check_name := 'failed_enrollments'; value := n;
  status := CASE WHEN n >= outreach._setting('failed_enrollments_critical')::bigint THEN 'critical'
                 WHEN n >= outreach._setting('failed_enrollments_warning')::bigint THEN 'warning' ELSE 'ok' END;
  detail := pg_catalog.format('%s enrollment(s) failed in the last %s%s', n, outreach._setting('failed_enrollments_window'),
                              CASE WHEN n > 0 THEN '; see outreach.enrollment.error' ELSE '' END);
  RETURN NEXT;

  -- bounce and complaint rates over the window of sent messages
  -- sent = handed to the provider: sent, delivered or bounced (a bounce may be reported
  -- without a 'sent' report first), by when that happened
  SELECT count(*), count(*) FILTER (WHERE m.status = 'bounced') INTO total, n FROM outreach.message m
  WHERE m.status IN ('sent', 'delivered', 'bounced')
    AND coalesce(m.sent_at, m.finished_at, m.updated_at) > clock - outreach._setting('rate_window')::interval;
  rate := CASE WHEN total > 0 THEN round(n::numeric / total, 4) END;
  check_name := 'bounce_rate'; value := rate;
  status := CASE WHEN total < outreach._setting('rate_min_messages')::bigint THEN 'ok'
                 WHEN rate >= outreach._setting('bounce_rate_critical')::numeric THEN 'critical'
                 WHEN rate >= outreach._setting('bounce_rate_warning')::numeric THEN 'warning' ELSE 'ok' END;
  detail := pg_catalog.format('%s of %s message(s) sent in the last %s bounced%s', n, total, outreach._setting('rate_window'),
                              CASE WHEN total < outreach._setting('rate_min_messages')::bigint THEN ' (too few to judge)' ELSE '' END);
  RETURN NEXT;
  SELECT count(DISTINCT i.message_id) INTO n FROM outreach.interaction i JOIN outreach.message m ON m.id = i.message_id
  WHERE i.kind = 'complained' AND m.status IN ('sent', 'delivered', 'bounced')
    AND coalesce(m.sent_at, m.finished_at, m.updated_at) > clock - outreach._setting('rate_window')::interval;
  rate := CASE WHEN total > 0 THEN round(n::numeric / total, 5) END;
  check_name := 'complaint_rate'; value := rate;
  status := CASE WHEN total < outreach._setting('rate_min_messages')::bigint THEN 'ok'
                 WHEN rate >= outreach._setting('complaint_rate_critical')::numeric THEN 'critical'
                 WHEN rate >= outreach._setting('complaint_rate_warning')::numeric THEN 'warning' ELSE 'ok' END;
  detail := pg_catalog.format('%s of %s message(s) sent in the last %s drew a complaint%s', n, total, outreach._setting('rate_window'),
                              CASE WHEN total < outreach._setting('rate_min_messages')::bigint THEN ' (too few to judge)' ELSE '' END);
  RETURN NEXT;

  -- deferred backlog: contacts waiting for the tick in deferred segments
  SELECT coalesce(sum(cardinality(p.contact_ids)), 0) INTO n FROM outreach.segment_pending p;
  check_name := 'deferred_backlog'; value := n;
  status := CASE WHEN n >= outreach._setting('deferred_backlog_critical')::bigint THEN 'critical'
                 WHEN n >= outreach._setting('deferred_backlog_warning')::bigint THEN 'warning' ELSE 'ok' END;
  detail := pg_catalog.format('%s contact change(s) wait for the tick in deferred segments', n);
  RETURN NEXT;

  -- time-dependent segments whose re-evaluation is late
  SELECT count(*), clock - min(s.next_evaluation_at) INTO n, age FROM outreach.segment s
  WHERE s.status = 'live' AND s.kind <> 'static' AND s.time_dependent
    AND s.next_evaluation_at < clock - outreach._setting('segment_late_warning')::interval;
  check_name := 'stale_segments'; value := n;
  status := CASE WHEN n = 0 THEN 'ok'
                 WHEN age > outreach._setting('segment_late_critical')::interval THEN 'critical' ELSE 'warning' END;
  detail := CASE WHEN n = 0 THEN 'every time-dependent segment was re-evaluated on time'
                 ELSE pg_catalog.format('%s time-dependent segment(s) late for re-evaluation, the latest by %s (see segment_overview.next_evaluation_at)', n, date_trunc('second', age)) END;
  RETURN NEXT;
END $$;
REVOKE ALL ON FUNCTION outreach._health() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach._health() TO outreach_admin, outreach_analyst;

CREATE VIEW outreach.health AS
SELECT h.check_name AS "check", h.status, h.value, h.detail FROM outreach._health() h;
COMMENT ON VIEW outreach.health IS
  'One row per health check (tick, pg_cron, queue, leases, failed_enrollments, bounce_rate, complaint_rate, deferred_backlog, stale_segments): ok, warning or critical with a detail; thresholds in operations_setting';
COMMENT ON COLUMN outreach.health."check" IS 'The check''s name';
COMMENT ON COLUMN outreach.health.status IS 'ok, warning or critical';
COMMENT ON COLUMN outreach.health.value IS 'What was measured: seconds (tick, queue), a count, or a rate (0..1)';
COMMENT ON COLUMN outreach.health.detail IS 'What was found, and what to do about it';
GRANT SELECT ON outreach.health TO outreach_admin, outreach_analyst;

-- Alerts: one row per incident (a check critical from raised_at until resolved_at).
CREATE TABLE outreach.alert (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  check_name  text NOT NULL,
  status      text NOT NULL DEFAULT 'critical',
  detail      text NOT NULL,
  value       numeric,
  raised_at   timestamptz NOT NULL,
  resolved_at timestamptz
);
CREATE UNIQUE INDEX alert_one_open ON outreach.alert (check_name) WHERE resolved_at IS NULL;
SELECT outreach._dump('outreach.alert');
COMMENT ON TABLE outreach.alert IS
  'Alert history: one row per incident of a critical health check, from when it was raised until it resolved; NOTIFY outreach_alert announces each new one';
COMMENT ON COLUMN outreach.alert.check_name IS 'The health check that turned critical';
COMMENT ON COLUMN outreach.alert.status IS 'The check''s status when raised (critical)';
COMMENT ON COLUMN outreach.alert.detail IS 'The check''s detail when raised';
COMMENT ON COLUMN outreach.alert.value IS 'The check''s value when raised';
COMMENT ON COLUMN outreach.alert.raised_at IS 'When the check was first seen critical';
COMMENT ON COLUMN outreach.alert.resolved_at IS 'When the check was first seen not critical again (NULL: still open)';
GRANT SELECT ON outreach.alert TO outreach_admin, outreach_analyst;

-- Raise an alert for each check that turned critical (NOTIFY outreach_alert with a JSON
-- payload, once per incident) and resolve those that recovered.  The tick calls it every
-- alerts_every; call it
-- also from your monitoring (every few minutes): a tick that stopped cannot report itself.
CREATE FUNCTION outreach.check_alerts() RETURNS SETOF outreach.alert
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  clock timestamptz := outreach.now();
  h record;
  a outreach.alert;
BEGIN
  -- one checker at a time, so two concurrent calls raise an incident once
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outreach.check_alerts'));
  FOR h IN SELECT * FROM outreach._health() LOOP
    IF h.status = 'critical' THEN
      IF NOT EXISTS (SELECT 1 FROM outreach.alert x WHERE x.check_name = h.check_name AND x.resolved_at IS NULL) THEN
        INSERT INTO outreach.alert (check_name, status, detail, value, raised_at)
        VALUES (h.check_name, h.status, h.detail, h.value, clock) RETURNING * INTO a;
        PERFORM pg_catalog.pg_notify('outreach_alert', pg_catalog.json_build_object(
          'alert_id', a.id, 'database', pg_catalog.current_database(), 'check', a.check_name,
          'status', a.status, 'value', a.value, 'detail', a.detail, 'raised_at', a.raised_at)::text);
        RETURN NEXT a;
      END IF;
    ELSE
      UPDATE outreach.alert x SET resolved_at = clock WHERE x.check_name = h.check_name AND x.resolved_at IS NULL;
    END IF;
  END LOOP;
END $$;
REVOKE ALL ON FUNCTION outreach.check_alerts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach.check_alerts() TO outreach_admin;
COMMENT ON FUNCTION outreach.check_alerts() IS
  'Raises an alert (row in outreach.alert, NOTIFY outreach_alert with JSON) for each health check newly critical, resolves recovered ones; returns the new alerts';

-- Retention -------------------------------------------------------------------------------

-- Purge what has outlived its period, at most retention_batch rows of each kind per call (the
-- tick calls it every retention_every; a backlog is worked off over successive runs, or at
-- once with CALL outreach.purge_backlog()).  Never touched: queued or
-- claimed messages, messages and interactions of running enrollments, messages inside the
-- longest frequency-cap window, membership history a reader has not consumed, and for every
-- segment and contact the last change before the horizon (so segment_members_at stays exact
-- from the horizon on and current members keep their 'added' row).
CREATE FUNCTION outreach.purge(batch integer DEFAULT NULL) RETURNS TABLE (kind text, purged bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  clock timestamptz := outreach.now();
  lim integer := coalesce(batch, outreach._setting('retention_batch')::integer);
  horizon timestamptz;
  keep_messages timestamptz;
  n bigint;
BEGIN
  IF lim IS NULL OR lim < 1 THEN
    RAISE EXCEPTION 'batch must be at least 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;

  horizon := clock - outreach._setting('retention_tick_run')::interval;
  DELETE FROM outreach.tick_run r WHERE r.id IN (
    SELECT x.id FROM outreach.tick_run x WHERE x.at < horizon AND x.finished_at IS NOT NULL ORDER BY x.id LIMIT lim);
  GET DIAGNOSTICS n = ROW_COUNT; kind := 'tick_run'; purged := n; RETURN NEXT;
  DELETE FROM outreach.journey_tick_run r WHERE r.id IN (
    SELECT x.id FROM outreach.journey_tick_run x WHERE x.at < horizon AND x.finished_at IS NOT NULL ORDER BY x.id LIMIT lim);
  GET DIAGNOSTICS n = ROW_COUNT; kind := 'journey_tick_run'; purged := n; RETURN NEXT;

  -- membership history before the horizon: a row that a later row (also before it)
  -- supersedes, or a 'removed' row (the contact was not a member at the horizon); what is
  -- left per segment and contact is the 'added' row of a member at the horizon.  Lower ids
  -- go first, so a batch never leaves an 'added' row whose 'removed' row it deleted.  Rows a
  -- reader has not consumed yet stay.
  horizon := clock - outreach._setting('retention_segment_change')::interval;
  DELETE FROM outreach.segment_change sc WHERE sc.id IN (
    SELECT x.id FROM outreach.segment_change x
    WHERE x.changed_at < horizon
      AND NOT EXISTS (SELECT 1 FROM outreach.segment_change_consumer c WHERE (x.xid, x.id) > (c.last_xid, c.last_id))
      AND (x.change = 'removed' OR EXISTS (
             SELECT 1 FROM outreach.segment_change y
             WHERE y.segment_id = x.segment_id AND y.contact_id = x.contact_id AND y.changed_at < horizon
               AND (y.changed_at, y.id) > (x.changed_at, x.id)))
    ORDER BY x.id LIMIT lim);
  GET DIAGNOSTICS n = ROW_COUNT; kind := 'segment_change'; purged := n; RETURN NEXT;

  -- messages: finished, old, not of a running enrollment, outside every frequency-cap window
  horizon := clock - outreach._setting('retention_message')::interval;
  keep_messages := clock - coalesce((SELECT max(f.per) FROM outreach.frequency_cap f), interval '0');
  horizon := least(horizon, keep_messages);
  DELETE FROM outreach.message m WHERE m.id IN (
    SELECT x.id FROM outreach.message x
    WHERE x.status NOT IN ('queued', 'sending') AND coalesce(x.finished_at, x.updated_at) < horizon
      AND x.created_at < horizon
      AND NOT EXISTS (SELECT 1 FROM outreach.enrollment e WHERE e.id = x.enrollment_id AND e.status = 'active')
    ORDER BY x.id LIMIT lim);
  GET DIAGNOSTICS n = ROW_COUNT; kind := 'message'; purged := n; RETURN NEXT;

  horizon := clock - outreach._setting('retention_interaction')::interval;
  DELETE FROM outreach.interaction i WHERE i.id IN (
    SELECT x.id FROM outreach.interaction x JOIN outreach.message m ON m.id = x.message_id
    WHERE x.occurred_at < horizon
      AND NOT EXISTS (SELECT 1 FROM outreach.enrollment e WHERE e.id = m.enrollment_id AND e.status = 'active')
    ORDER BY x.id LIMIT lim);
  GET DIAGNOSTICS n = ROW_COUNT; kind := 'interaction'; purged := n; RETURN NEXT;

  -- rendered bodies (PHI) of finished messages: dropped earlier, the row and outcome stay
  horizon := clock - outreach._setting('retention_message_body')::interval;
  UPDATE outreach.message m SET body = NULL, subject = NULL WHERE m.id IN (
    SELECT x.id FROM outreach.message x
    WHERE x.status NOT IN ('queued', 'sending') AND coalesce(x.finished_at, x.updated_at) < horizon
      AND (x.body IS NOT NULL OR x.subject IS NOT NULL)
    ORDER BY x.id LIMIT lim);
  GET DIAGNOSTICS n = ROW_COUNT; kind := 'message_body'; purged := n; RETURN NEXT;

  horizon := clock - outreach._setting('retention_alert')::interval;
  DELETE FROM outreach.alert a WHERE a.id IN (
    SELECT x.id FROM outreach.alert x WHERE x.resolved_at < horizon ORDER BY x.id LIMIT lim);
  GET DIAGNOSTICS n = ROW_COUNT; kind := 'alert'; purged := n; RETURN NEXT;

  -- pg_cron's run history of this database's outreach jobs (pg_cron's database only)
  n := 0;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    EXECUTE 'DELETE FROM cron.job_run_details d WHERE d.runid IN (
               SELECT x.runid FROM cron.job_run_details x JOIN cron.job j ON j.jobid = x.jobid
               WHERE j.jobname LIKE ''outreach-%'' AND x.end_time < $1 ORDER BY x.runid LIMIT $2)'
      USING clock - outreach._setting('retention_cron_history')::interval, lim;
    GET DIAGNOSTICS n = ROW_COUNT;
  END IF;
  kind := 'cron_history'; purged := n; RETURN NEXT;
END $$;
REVOKE ALL ON FUNCTION outreach.purge(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach.purge(integer) TO outreach_admin;
COMMENT ON FUNCTION outreach.purge(integer) IS
  'Retention: purges at most batch rows (default retention_batch) of each kind past its period; the tick runs it every retention_every; returns what it purged per kind';

-- The tick's operations work ------------------------------------------------------------

-- State of the operations work done by the tick (one row).
CREATE TABLE outreach.operations_state (
  singleton       boolean PRIMARY KEY DEFAULT true CONSTRAINT operations_state_one_row CHECK (singleton),
  due_notified_to timestamptz,
  alerts_checked_at timestamptz,
  purged_at       timestamptz
);
INSERT INTO outreach.operations_state DEFAULT VALUES;
SELECT outreach._dump('outreach.operations_state');
COMMENT ON TABLE outreach.operations_state IS
  'Internal state of the tick''s operations work: up to when messages that became due have been announced';
COMMENT ON COLUMN outreach.operations_state.due_notified_to IS
  'The tick announced (NOTIFY outreach_outbox) every queued message whose send_after is up to this time';
COMMENT ON COLUMN outreach.operations_state.singleton IS 'Always true: the table has one row';
COMMENT ON COLUMN outreach.operations_state.alerts_checked_at IS 'The tick''s clock when it last checked alerts';
COMMENT ON COLUMN outreach.operations_state.purged_at IS 'The tick''s clock when it last ran a retention batch';

-- The delayed-message contract: a message queued with a later send_after (quiet hours, a
-- frequency window) was announced on outreach_outbox when it was queued, before it was due.
-- The first tick at or after its send_after announces it again ('queued', the payload
-- workers already listen for), once.  A worker that prefers to poll sleeps until
-- outreach.next_due_at().
CREATE FUNCTION outreach._notify_due(at timestamptz) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  since timestamptz;
  due boolean;
BEGIN
  SELECT s.due_notified_to INTO since FROM outreach.operations_state s FOR UPDATE;
  IF at = since THEN
    RETURN false;
  ELSIF at < since THEN   -- the clock went back (tests, a restored copy): announce what is due
    since := NULL;
  END IF;
  SELECT EXISTS (SELECT 1 FROM outreach.message m
                 WHERE m.status = 'queued' AND m.send_after <= at
                   AND (since IS NULL OR m.send_after > since)
                   AND m.send_after > m.created_at)
    INTO due;
  UPDATE outreach.operations_state SET due_notified_to = at;
  IF due THEN
    PERFORM pg_catalog.pg_notify('outreach_outbox', 'queued');
  END IF;
  RETURN due;
END $$;
REVOKE ALL ON FUNCTION outreach._notify_due(timestamptz) FROM PUBLIC;

CREATE FUNCTION outreach.next_due_at() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT min(m.send_after) FROM outreach.message m WHERE m.status = 'queued'
$$;
REVOKE ALL ON FUNCTION outreach.next_due_at() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach.next_due_at() TO outreach_admin, outreach_sender;
COMMENT ON FUNCTION outreach.next_due_at() IS
  'When the next queued message is due (its send_after; in the past: due now; NULL: none queued): a polling worker sleeps until then';

-- After every tick (its tick_run row is finished): announce messages that became due, raise
-- and resolve alerts, purge one batch.  A trigger on tick_run, so the tick of 40_segments.sql
-- needs no change.
-- Health and retention read whole tables: at most every alerts_every / retention_every
-- (of the tick's clock), not every minute.
CREATE FUNCTION outreach._after_tick() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  st outreach.operations_state;
BEGIN
  PERFORM outreach._notify_due(NEW.at);
  SELECT * INTO st FROM outreach.operations_state;
  IF st.alerts_checked_at IS NULL OR NEW.at >= st.alerts_checked_at + outreach._setting('alerts_every')::interval
     OR NEW.at < st.alerts_checked_at THEN
    UPDATE outreach.operations_state SET alerts_checked_at = NEW.at;
    PERFORM outreach.check_alerts();
  END IF;
  IF st.purged_at IS NULL OR NEW.at >= st.purged_at + outreach._setting('retention_every')::interval
     OR NEW.at < st.purged_at THEN
    UPDATE outreach.operations_state SET purged_at = NEW.at;
    PERFORM outreach.purge();
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION outreach._after_tick() FROM PUBLIC;
CREATE TRIGGER outreach_after_tick AFTER UPDATE OF finished_at ON outreach.tick_run
  FOR EACH ROW WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL)
  EXECUTE FUNCTION outreach._after_tick();

-- Progress of long operations ---------------------------------------------------------------

-- A long operation calls outreach._progress(operation, done, total) as it goes:
--   * a NOTICE with what and how far, at most every 5 seconds (and at the end);
--   * its session's application_name becomes "outreach: <operation> <done>/<total>", which
--     every other session sees at once in pg_stat_activity (an uncommitted table row would
--     not be visible; no dblink needed), hence the view outreach.running_operation.  The
--     caller's application_name comes back when the operation ends (_progress_done) or with
--     the transaction.
-- Operations run in one transaction each (purge_backlog: one per batch), so
-- pg_cancel_backend(pid) rolls back what the current transaction did and leaves nothing
-- half done.
CREATE FUNCTION outreach._progress(operation text, done bigint, total bigint DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  started text := pg_catalog.current_setting('outreach_progress.started', true);
  noticed text := pg_catalog.current_setting('outreach_progress.noticed', true);
  now_s double precision := extract(epoch FROM pg_catalog.clock_timestamp());
  label text;
BEGIN
  IF started IS NULL OR started = '' THEN
    PERFORM pg_catalog.set_config('outreach_progress.saved_name', pg_catalog.current_setting('application_name'), true);
    PERFORM pg_catalog.set_config('outreach_progress.started', now_s::text, true);
    PERFORM pg_catalog.set_config('outreach_progress.noticed', now_s::text, true);
    started := now_s::text; noticed := now_s::text;
  END IF;
  label := pg_catalog.format('%s %s%s', operation, done, CASE WHEN total IS NOT NULL THEN '/' || total ELSE '' END);
  PERFORM pg_catalog.set_config('application_name', pg_catalog.left('outreach: ' || label, 63), true);
  IF now_s - noticed::double precision >= 5 OR (total IS NOT NULL AND done >= total AND done > 0) THEN
    PERFORM pg_catalog.set_config('outreach_progress.noticed', now_s::text, true);
    RAISE NOTICE '%', pg_catalog.format('%s: %s%s, %s s', operation, done,
      CASE WHEN total > 0 THEN pg_catalog.format(' of %s (%s%%)', total, round(100.0 * done / total)) ELSE '' END,
      round((now_s - started::double precision)::numeric, 1));
  END IF;
END $$;
REVOKE ALL ON FUNCTION outreach._progress(text, bigint, bigint) FROM PUBLIC;
COMMENT ON FUNCTION outreach._progress(text, bigint, bigint) IS
  'Internal: a long operation reports how far it is (NOTICE every 5 s, application_name for outreach.running_operation)';

CREATE FUNCTION outreach._progress_done() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  saved text := pg_catalog.current_setting('outreach_progress.saved_name', true);
BEGIN
  IF pg_catalog.current_setting('outreach_progress.started', true) IS DISTINCT FROM '' 
     AND pg_catalog.current_setting('outreach_progress.started', true) IS NOT NULL THEN
    PERFORM pg_catalog.set_config('application_name', coalesce(saved, ''), true);
    PERFORM pg_catalog.set_config('outreach_progress.started', '', true);
  END IF;
END $$;
REVOKE ALL ON FUNCTION outreach._progress_done() FROM PUBLIC;
COMMENT ON FUNCTION outreach._progress_done() IS 'Internal: the long operation ended; the session''s application_name comes back';
-- Imports (import_synthea, import_fhir) run with their admin caller's rights, not the owner's.
GRANT EXECUTE ON FUNCTION outreach._progress(text, bigint, bigint), outreach._progress_done() TO outreach_admin;

CREATE VIEW outreach.running_operation WITH (security_barrier) AS
SELECT a.pid,
       a.datname AS database,
       a.usename AS user_name,
       pg_catalog.split_part(p.label, ' ', 1) AS operation,
       CASE WHEN pg_catalog.split_part(p.progress, '/', 1) ~ '^[0-9]{1,18}$'
            THEN pg_catalog.split_part(p.progress, '/', 1)::bigint END AS done,
       CASE WHEN pg_catalog.split_part(p.progress, '/', 2) ~ '^[0-9]{1,18}$'
            THEN pg_catalog.split_part(p.progress, '/', 2)::bigint END AS total,
       a.xact_start AS started_at,
       pg_catalog.now() - a.xact_start AS running_for,
       a.wait_event_type, a.wait_event
FROM pg_catalog.pg_stat_activity a,
     LATERAL (SELECT pg_catalog.substr(a.application_name, 11) AS label) l,
     LATERAL (SELECT l.label, pg_catalog.split_part(l.label, ' ', 2) AS progress) p
WHERE a.application_name LIKE 'outreach: %' AND a.state <> 'idle';
COMMENT ON VIEW outreach.running_operation IS
  'Long outreach operations running now in any session (from pg_stat_activity): what, how far, since when; cancel one with pg_cancel_backend(pid)';
COMMENT ON COLUMN outreach.running_operation.pid IS 'The backend running it (pg_cancel_backend(pid) cancels it; nothing half done stays)';
COMMENT ON COLUMN outreach.running_operation.database IS 'Its database';
COMMENT ON COLUMN outreach.running_operation.user_name IS 'Who runs it';
COMMENT ON COLUMN outreach.running_operation.operation IS 'What runs, e.g. purge_backlog';
COMMENT ON COLUMN outreach.running_operation.done IS 'How many units (rows, contacts) are done';
COMMENT ON COLUMN outreach.running_operation.total IS 'How many there are in all (NULL: not known in advance)';
COMMENT ON COLUMN outreach.running_operation.started_at IS 'When its (current) transaction started';
COMMENT ON COLUMN outreach.running_operation.running_for IS 'How long it has been running';
COMMENT ON COLUMN outreach.running_operation.wait_event_type IS 'What it waits for, if anything (pg_stat_activity)';
COMMENT ON COLUMN outreach.running_operation.wait_event IS 'The wait event, if any (pg_stat_activity)';
GRANT SELECT ON outreach.running_operation TO outreach_admin, outreach_analyst;

-- Work off a retention backlog (the first purge after years of history, a shortened period)
-- batch by batch, each committed, with progress; cancelling it keeps the batches done.
CREATE PROCEDURE outreach.purge_backlog(batch integer DEFAULT NULL)
LANGUAGE plpgsql AS $$
-- (a procedure that commits cannot have SET search_path: every name is qualified)
DECLARE
  n bigint;
  total bigint := 0;
  started timestamptz := pg_catalog.clock_timestamp();
  noticed timestamptz := pg_catalog.clock_timestamp();
  saved text := pg_catalog.current_setting('application_name');
BEGIN
  LOOP
    SELECT pg_catalog.sum(p.purged) INTO n FROM outreach.purge(batch) p;
    total := total + n;
    -- session-level, so it stays visible across the commits (restored below)
    PERFORM pg_catalog.set_config('application_name', 'outreach: purge_backlog ' || total, false);
    IF pg_catalog.clock_timestamp() - noticed >= interval '5 seconds' THEN
      noticed := pg_catalog.clock_timestamp();
      RAISE NOTICE 'purge_backlog: % row(s) purged, % s', total,
        round(extract(epoch FROM noticed - started)::numeric, 1);
    END IF;
    COMMIT;
    EXIT WHEN n = 0;
  END LOOP;
  PERFORM pg_catalog.set_config('application_name', saved, false);
  RAISE NOTICE 'purge_backlog: % row(s) purged in all', total;
END $$;
REVOKE ALL ON PROCEDURE outreach.purge_backlog(integer) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE outreach.purge_backlog(integer) TO outreach_admin;
COMMENT ON PROCEDURE outreach.purge_backlog(integer) IS
  'Retention: purges batch after batch, each committed, until nothing is past its period (CALL outreach.purge_backlog();), with progress';

-- Reporting: each metric defined once ------------------------------------------------------

-- The metric definitions, per message.  Every reporting view counts from here, so
-- journey_funnel, journey_step_funnel and template_engagement agree for the same messages:
--   sent       handed to the provider: status sent, delivered or bounced
--   delivered  reached the provider's delivered state (status delivered; an open or click
--              proves delivery and sets it)
--   opened     an 'opened' or a 'clicked' interaction (a click implies an open)
--   ctr        unique clicks / delivered;  ctor  unique clicks / unique opens
-- (This part replaces the 0.2.0 reporting views of 50_messaging.sql and 60_journeys.sql,
-- whose definitions differed, and drops their internal helper view.)
CREATE VIEW outreach.message_outcome WITH (security_invoker = true) AS
SELECT m.id AS message_id, m.contact_id, m.journey_id, m.step_id, m.template_id, m.template_name,
       m.channel, m.message_class, m.status, m.suppression_reason, m.created_at, m.send_after, m.sent_at,
       m.status IN ('queued', 'sending') AS queued,
       m.status IN ('sent', 'delivered', 'bounced') AS sent,
       m.status = 'delivered' AS delivered,
       m.status = 'bounced' AS bounced,
       m.status = 'failed' AS failed,
       m.status = 'suppressed' AS suppressed,
       coalesce(i.opened, false) AS opened,
       coalesce(i.clicked, false) AS clicked,
       coalesce(i.unsubscribed, false) AS unsubscribed,
       coalesce(i.complained, false) AS complained
FROM outreach.message m
LEFT JOIN LATERAL (
  SELECT bool_or(x.kind IN ('opened', 'clicked')) AS opened, bool_or(x.kind = 'clicked') AS clicked,
         bool_or(x.kind = 'unsubscribed') AS unsubscribed, bool_or(x.kind = 'complained') AS complained
  FROM outreach.interaction x WHERE x.message_id = m.id
) i ON true;
COMMENT ON VIEW outreach.message_outcome IS
  'One row per message with every reporting metric defined once (sent, delivered, opened, clicked...); the reporting views count from it';
COMMENT ON COLUMN outreach.message_outcome.message_id IS 'The message (outreach.message.id)';
COMMENT ON COLUMN outreach.message_outcome.contact_id IS 'Its recipient (outreach.contact.id)';
COMMENT ON COLUMN outreach.message_outcome.journey_id IS 'The journey that sent it (NULL: sent outside journeys)';
COMMENT ON COLUMN outreach.message_outcome.step_id IS 'The journey step that sent it';
COMMENT ON COLUMN outreach.message_outcome.template_id IS 'Its template (NULL if the template was dropped)';
COMMENT ON COLUMN outreach.message_outcome.template_name IS 'Its template''s name when it was queued';
COMMENT ON COLUMN outreach.message_outcome.channel IS 'email, sms or letter';
COMMENT ON COLUMN outreach.message_outcome.message_class IS 'marketing or transactional';
COMMENT ON COLUMN outreach.message_outcome.status IS 'queued, sending, sent, delivered, bounced, failed or suppressed';
COMMENT ON COLUMN outreach.message_outcome.suppression_reason IS 'Why it was suppressed (status suppressed only)';
COMMENT ON COLUMN outreach.message_outcome.created_at IS 'When it was queued (or suppressed)';
COMMENT ON COLUMN outreach.message_outcome.send_after IS 'When it may be sent (after quiet hours)';
COMMENT ON COLUMN outreach.message_outcome.sent_at IS 'When a worker reported it sent';
COMMENT ON COLUMN outreach.message_outcome.queued IS 'Waiting to be handed to the provider: status queued or sending';
COMMENT ON COLUMN outreach.message_outcome.sent IS 'Handed to the provider: status sent, delivered or bounced';
COMMENT ON COLUMN outreach.message_outcome.delivered IS 'Reached the provider''s delivered state (status delivered; an open or click proves it)';
COMMENT ON COLUMN outreach.message_outcome.bounced IS 'The provider bounced it (status bounced)';
COMMENT ON COLUMN outreach.message_outcome.failed IS 'Given up before the provider took it (status failed)';
COMMENT ON COLUMN outreach.message_outcome.suppressed IS 'Never sent: consent, address or pacing (status suppressed)';
COMMENT ON COLUMN outreach.message_outcome.opened IS 'Opened: an opened or clicked interaction (a click implies an open)';
COMMENT ON COLUMN outreach.message_outcome.clicked IS 'A clicked interaction';
COMMENT ON COLUMN outreach.message_outcome.unsubscribed IS 'An unsubscribed interaction';
COMMENT ON COLUMN outreach.message_outcome.complained IS 'A complained (spam report) interaction';
-- Per message (with contact_id): read with the caller's own rights on message and
-- interaction (security_invoker), so row-level security applies; the aggregate views above
-- it are for the analyst.
GRANT SELECT ON outreach.message_outcome TO outreach_admin;

CREATE OR REPLACE VIEW outreach.template_engagement AS
SELECT t.id AS template_id, t.name AS template, t.channel,
       count(o.message_id) FILTER (WHERE o.sent) AS sent,
       count(o.message_id) FILTER (WHERE o.delivered) AS delivered,
       count(o.message_id) FILTER (WHERE o.bounced) AS bounced,
       count(o.message_id) FILTER (WHERE o.suppressed) AS suppressed,
       count(o.message_id) FILTER (WHERE o.opened) AS unique_opens,
       count(o.message_id) FILTER (WHERE o.clicked) AS unique_clicks,
       count(o.message_id) FILTER (WHERE o.unsubscribed) AS unsubscribes,
       count(o.message_id) AS messages,
       count(o.message_id) FILTER (WHERE o.queued) AS queued,
       count(o.message_id) FILTER (WHERE o.failed) AS failed,
       count(o.message_id) FILTER (WHERE o.complained) AS complaints,
       round(count(o.message_id) FILTER (WHERE o.clicked)::numeric / nullif(count(o.message_id) FILTER (WHERE o.delivered), 0), 4) AS ctr,
       round(count(o.message_id) FILTER (WHERE o.clicked)::numeric / nullif(count(o.message_id) FILTER (WHERE o.opened), 0), 4) AS ctor
FROM outreach.template t
LEFT JOIN outreach.message_outcome o ON o.template_id = t.id
GROUP BY t.id, t.name, t.channel;

CREATE OR REPLACE VIEW outreach.journey_funnel AS
SELECT j.id AS journey_id, j.name AS journey, j.status,
       coalesce(e.enrolled, 0) AS enrolled, coalesce(e.active, 0) AS active,
       coalesce(e.completed, 0) AS completed, coalesce(e.exited, 0) AS exited, coalesce(e.failed, 0) AS failed,
       coalesce(m.messages, 0) AS messages, coalesce(m.queued, 0) AS queued, coalesce(m.delivered, 0) AS delivered,
       coalesce(m.bounced, 0) AS bounced, coalesce(m.suppressed, 0) AS suppressed,
       coalesce(m.unique_opens, 0) AS unique_opens, coalesce(m.unique_clicks, 0) AS unique_clicks,
       round(m.unique_clicks::numeric / nullif(m.delivered, 0), 4) AS ctr,
       round(m.unique_clicks::numeric / nullif(m.unique_opens, 0), 4) AS ctor,
       coalesce(m.sent, 0) AS sent, coalesce(m.messages_failed, 0) AS messages_failed,
       coalesce(m.unsubscribes, 0) AS unsubscribes, coalesce(m.complaints, 0) AS complaints
FROM outreach.journey j
LEFT JOIN (
  SELECT x.journey_id, count(*) AS enrolled,
         count(*) FILTER (WHERE x.status = 'active') AS active,
         count(*) FILTER (WHERE x.status = 'completed') AS completed,
         count(*) FILTER (WHERE x.status = 'exited') AS exited,
         count(*) FILTER (WHERE x.status = 'failed') AS failed
  FROM outreach.enrollment x GROUP BY x.journey_id
) e ON e.journey_id = j.id
LEFT JOIN (
  SELECT o.journey_id, count(*) AS messages,
         count(*) FILTER (WHERE o.queued) AS queued, count(*) FILTER (WHERE o.sent) AS sent,
         count(*) FILTER (WHERE o.delivered) AS delivered, count(*) FILTER (WHERE o.bounced) AS bounced,
         count(*) FILTER (WHERE o.failed) AS messages_failed, count(*) FILTER (WHERE o.suppressed) AS suppressed,
         count(*) FILTER (WHERE o.opened) AS unique_opens, count(*) FILTER (WHERE o.clicked) AS unique_clicks,
         count(*) FILTER (WHERE o.unsubscribed) AS unsubscribes, count(*) FILTER (WHERE o.complained) AS complaints
  FROM outreach.message_outcome o WHERE o.journey_id IS NOT NULL GROUP BY o.journey_id
) m ON m.journey_id = j.id;

CREATE OR REPLACE VIEW outreach.journey_step_funnel AS
SELECT j.id AS journey_id, j.name AS journey, s.id AS step_id, s.key AS step, s.kind,
       coalesce(h.done, 0) + coalesce(a.waiting, 0) AS reached,
       coalesce(a.waiting, 0) AS waiting, coalesce(h.done, 0) AS done,
       coalesce(h.yes, 0) AS yes, coalesce(h.no, 0) AS no, coalesce(f.failed, 0) AS failed,
       coalesce(m.messages, 0) AS messages, coalesce(m.queued, 0) AS queued, coalesce(m.delivered, 0) AS delivered,
       coalesce(m.bounced, 0) AS bounced, coalesce(m.suppressed, 0) AS suppressed,
       coalesce(m.unique_opens, 0) AS unique_opens, coalesce(m.unique_clicks, 0) AS unique_clicks,
       round(m.unique_clicks::numeric / nullif(m.delivered, 0), 4) AS ctr,
       round(m.unique_clicks::numeric / nullif(m.unique_opens, 0), 4) AS ctor,
       coalesce(m.sent, 0) AS sent, coalesce(m.messages_failed, 0) AS messages_failed,
       coalesce(m.unsubscribes, 0) AS unsubscribes, coalesce(m.complaints, 0) AS complaints
FROM outreach.journey j
JOIN outreach.journey_step s ON s.journey_id = j.id
LEFT JOIN (
  SELECT x.step_id, count(*) AS done,
         count(*) FILTER (WHERE x.outcome = 'yes') AS yes,
         count(*) FILTER (WHERE x.outcome = 'no') AS no
  FROM outreach.enrollment_step x GROUP BY x.step_id
) h ON h.step_id = s.id
LEFT JOIN (
  SELECT x.journey_id, x.current_step, count(*) AS waiting
  FROM outreach.enrollment x WHERE x.status = 'active' GROUP BY x.journey_id, x.current_step
) a ON a.journey_id = j.id AND a.current_step = s.key
LEFT JOIN (
  SELECT x.journey_id, x.current_step, count(*) AS failed
  FROM outreach.enrollment x WHERE x.status = 'failed' GROUP BY x.journey_id, x.current_step
) f ON f.journey_id = j.id AND f.current_step = s.key
LEFT JOIN (
  SELECT o.step_id, count(*) AS messages,
         count(*) FILTER (WHERE o.queued) AS queued, count(*) FILTER (WHERE o.sent) AS sent,
         count(*) FILTER (WHERE o.delivered) AS delivered, count(*) FILTER (WHERE o.bounced) AS bounced,
         count(*) FILTER (WHERE o.failed) AS messages_failed, count(*) FILTER (WHERE o.suppressed) AS suppressed,
         count(*) FILTER (WHERE o.opened) AS unique_opens, count(*) FILTER (WHERE o.clicked) AS unique_clicks,
         count(*) FILTER (WHERE o.unsubscribed) AS unsubscribes, count(*) FILTER (WHERE o.complained) AS complaints
  FROM outreach.message_outcome o WHERE o.step_id IS NOT NULL GROUP BY o.step_id
) m ON m.step_id = s.id;

DROP VIEW outreach._journey_message_engagement;

-- Comments for BI tools: every table, view and column of the schema ------------------------

COMMENT ON TABLE outreach.account IS 'Accounts: households, medical centers, insurers, employers (kind), with a parent account';
COMMENT ON TABLE outreach.encounter IS 'Clinical encounters (visits) of patients';
COMMENT ON TABLE outreach.condition IS 'Patients'' conditions (diagnoses), SNOMED coded';
COMMENT ON TABLE outreach.observation IS 'Observations (labs, vital signs), LOINC coded, with a numeric or text value';
COMMENT ON TABLE outreach.procedure IS 'Procedures performed on patients';
COMMENT ON TABLE outreach.immunization IS 'Immunizations given to patients';
COMMENT ON TABLE outreach.medication IS 'Medications of patients, with start and stop';
COMMENT ON TABLE outreach.allergy IS 'Allergies and intolerances of patients';
COMMENT ON TABLE outreach.value_set IS 'Named code lists used by `code in value_set ''name''` (shipped ones and your own)';
COMMENT ON TABLE outreach.segment_entity IS 'Which registered entities each segment reads (its maintenance triggers)';
COMMENT ON TABLE outreach.segment_dependency IS 'Which segments each segment is built from (compound segments, `in segment`)';
COMMENT ON TABLE outreach.contact_stamp IS 'Internal (unlogged): per-contact serialisation of membership maintenance';
COMMENT ON VIEW outreach.entity_overview IS 'Registered entities: table, key, link to contact, time column, links';
COMMENT ON COLUMN outreach.alert.id IS 'Alert id';

DO $comments$
DECLARE
  r record;
BEGIN
  -- 1. columns with a meaning of their own
  FOR r IN SELECT * FROM (VALUES
    ('account', 'name', 'Account name'), ('account', 'kind', 'household, medical_center, insurer, employer or other'),
    ('account', 'parent_id', 'Parent account (outreach.account.id)'),
    ('contact', 'first_name', 'Given name'), ('contact', 'last_name', 'Family name'), ('contact', 'birthdate', 'Date of birth'),
    ('contact', 'gender', 'Administrative gender'), ('contact', 'email', 'Email address (NULL: none)'),
    ('contact', 'phone', 'Mobile phone number in E.164 form, e.g. +14155550100 (NULL: none)'),
    ('contact', 'address_line', 'Postal address: street line'), ('contact', 'city', 'Postal address: city'),
    ('contact', 'state', 'Postal address: state or region'), ('contact', 'postal_code', 'Postal address: postal code'),
    ('contact', 'country', 'Postal address: country'), ('contact', 'time_zone', 'IANA time zone for quiet hours and local-time waits (NULL: messaging_settings.default_time_zone)'),
    ('contact', 'status', 'active or inactive; inactive contacts get no messages'), ('contact', 'contact_type', 'patient or another kind of contact'),
    ('contact', 'preferred_channel', 'Channel the contact prefers: email, sms or letter'),
    ('contact', 'do_not_email', 'Opted out of email'), ('contact', 'do_not_sms', 'Opted out of SMS'), ('contact', 'do_not_mail', 'Opted out of letters'),
    ('contact', 'deceased_at', 'Time of death (never messaged after it)'), ('contact', 'account_id', 'Household or other account (outreach.account.id)'),
    ('encounter', 'class', 'Encounter class: ambulatory, emergency, inpatient, wellness...'), ('encounter', 'start_at', 'When the encounter started'),
    ('encounter', 'end_at', 'When the encounter ended'),
    ('condition', 'clinical_status', 'active, resolved...'), ('condition', 'onset_date', 'When the condition began'),
    ('condition', 'abatement_date', 'When it ended (NULL: ongoing)'),
    ('observation', 'value_numeric', 'Numeric result'), ('observation', 'value_text', 'Text result'), ('observation', 'unit', 'Unit of the numeric result'),
    ('observation', 'effective_at', 'When it was observed'),
    ('procedure', 'performed_at', 'When it was performed'), ('immunization', 'administered_at', 'When it was given'),
    ('medication', 'start_at', 'When the medication started'), ('medication', 'stop_at', 'When it stopped (NULL: ongoing)'),
    ('allergy', 'start_at', 'When the allergy was recorded as starting'), ('allergy', 'stop_at', 'When it stopped (NULL: ongoing)'),
    ('value_set', 'name', 'Value set name, as written in `in value_set ''name''`'), ('value_set', 'display', 'Human-readable name of the code'),
    ('entity', 'name', 'Entity name as written in segment queries'), ('entity', 'relation', 'The table'),
    ('entity', 'display_name', 'Name shown to users'), ('entity', 'link_entity', 'The entity the primary link leads to'),
    ('entity', 'builtin', 'Shipped with outreach (not unregistrable)'), ('entity', 'registered_at', 'When it was registered'),
    ('entity_link', 'entity', 'The entity whose column links'), ('entity_link', 'link_column', 'The linking column'),
    ('entity_link', 'target_entity', 'The entity whose key it references'), ('entity_link', 'is_primary', 'The link registration named (the way to contact)'),
    ('segment', 'name', 'Segment name (unique)'), ('segment', 'kind', 'dynamic (a query), static (members by hand) or compound (a query over segments)'),
    ('segment', 'status', 'draft, live (membership maintained) or stopped'), ('segment', 'mode', 'immediate (maintained at commit) or deferred (by the tick)'),
    ('segment', 'definition', 'The segment query (NULL for static segments)'), ('segment', 'time_zone', 'Time zone of relative dates and ages'),
    ('segment', 'time_dependent', 'Uses relative dates or age: the tick re-evaluates it every evaluate_every'),
    ('segment', 'next_evaluation_at', 'When the tick re-evaluates it next (time-dependent segments)'),
    ('segment', 'last_evaluated_at', 'When it was last evaluated in full'), ('segment', 'last_evaluation_duration', 'How long that took'),
    ('segment', 'version', 'Incremented by every change of definition'),
    ('segment_entity', 'segment_id', 'The segment'), ('segment_entity', 'entity', 'An entity it reads'),
    ('segment_dependency', 'segment_id', 'The segment'), ('segment_dependency', 'depends_on', 'A segment it is built from'),
    ('segment_member', 'segment_id', 'The segment'), ('segment_member', 'added_at', 'When the contact joined'),
    ('segment_change', 'segment_id', 'The segment'), ('segment_change', 'change', 'added or removed'), ('segment_change', 'changed_at', 'When'),
    ('segment_pending', 'segment_ids', 'The deferred segments concerned'), ('segment_pending', 'contact_ids', 'The contacts to re-evaluate'),
    ('segment_change_consumer', 'name', 'Reader name'), ('segment_change_consumer', 'last_xid', 'Position: transaction id of the last change read'),
    ('segment_change_consumer', 'last_id', 'Position: id of the last change read'), ('segment_change_consumer', 'consumed', 'Changes read so far'),
    ('contact_stamp', 'stamped_by', 'Last transaction that re-evaluated the contact'),
    ('tick_run', 'at', 'The clock the tick ran with'), ('tick_run', 'started_at', 'Wall-clock start'), ('tick_run', 'finished_at', 'Wall-clock end (NULL: running or failed)'),
    ('tick_run', 'deferred_contacts', 'Contacts re-evaluated for deferred segments'), ('tick_run', 'full_evaluations', 'Segments evaluated in full'),
    ('tick_run', 'membership_changes', 'Members added or removed'),
    ('messaging_settings', 'singleton', 'Always true: the table has one row'), ('messaging_settings', 'default_time_zone', 'Time zone for contacts without one'),
    ('messaging_settings', 'unsubscribe_base_url', 'Base of {{unsubscribe_url}} (the token is appended)'),
    ('quiet_hours', 'starts', 'Local time quiet hours start'), ('quiet_hours', 'ends', 'Local time they end (before starts: past midnight)'),
    ('frequency_cap', 'max_messages', 'At most this many marketing messages'), ('frequency_cap', 'per', 'per rolling window of this length'),
    ('template', 'name', 'Template name (unique)'), ('template', 'format', 'html or text'), ('template', 'subject', 'Subject (email), with {{placeholders}}'),
    ('template', 'body', 'Body with {{placeholders}}'), ('template', 'sender_postal_address', 'Sender''s postal address (required in marketing email)'),
    ('template', 'tokens', 'Placeholders the template uses'),
    ('subscription_list', 'name', 'List name (unique)'), ('subscription_list', 'double_opt_in', 'Subscribing needs a confirmation'),
    ('subscription_list', 'confirmation_ttl', 'How long a confirmation link is valid'),
    ('subscription', 'list_id', 'The list'), ('subscription', 'status', 'pending, subscribed or unsubscribed'),
    ('subscription', 'requested_at', 'When subscribing was requested'), ('subscription', 'subscribed_at', 'When it took effect'),
    ('subscription', 'subscribe_source', 'Where the subscription came from'), ('subscription', 'unsubscribed_at', 'When the contact unsubscribed'),
    ('subscription', 'unsubscribe_source', 'How they unsubscribed'), ('subscription', 'confirmation_token', 'Double opt-in token'),
    ('subscription', 'token_expires_at', 'When the token expires'),
    ('message', 'template_name', 'Template name when queued'), ('message', 'subscription_list_id', 'List it was sent for (marketing)'),
    ('message', 'enrollment_id', 'The enrollment that sent it'), ('message', 'status', 'queued, sending, sent, delivered, bounced, failed or suppressed'),
    ('message', 'suppression_reason', 'Why it was suppressed'), ('message', 'address', 'Email address, phone number or postal address it goes to'),
    ('message', 'subject', 'Rendered subject (dropped after retention_message_body)'), ('message', 'body', 'Rendered body (PHI; dropped after retention_message_body)'),
    ('message', 'sms_segments', 'SMS segments the body takes'), ('message', 'unsubscribe_token', 'Token of its unsubscribe link'),
    ('message', 'send_after', 'Not before this time (quiet hours)'), ('message', 'claimed_by', 'Worker that claimed it'),
    ('message', 'claimed_at', 'When it was claimed'), ('message', 'lease_expires_at', 'Claim lease end (status sending)'),
    ('message', 'attempts', 'Claims so far'), ('message', 'sent_at', 'When reported sent'), ('message', 'delivered_at', 'When reported delivered'),
    ('message', 'finished_at', 'When it reached a final status'), ('message', 'detail', 'Worker''s detail (provider id, error)'),
    ('interaction', 'kind', 'opened, clicked, unsubscribed, bounced or complained'), ('interaction', 'url', 'Clicked URL'),
    ('interaction', 'occurred_at', 'When it happened'),
    ('journey', 'name', 'Journey name (unique)'), ('journey', 'audience_segment_id', 'Segment whose members enter'),
    ('journey', 'suppression_segment_id', 'Segment whose members never enter (and exit)'), ('journey', 'subscription_list', 'List its marketing messages need'),
    ('journey', 'status', 'draft, live, stopped or ended'), ('journey', 'starts_at', 'Entries from'), ('journey', 'ends_at', 'Entries until'),
    ('journey', 'time_zone', 'Time zone of local-time waits'), ('journey', 'exit_on_leave', 'Contacts who leave the audience exit'),
    ('journey', 'allow_reentry', 'Contacts may enter again after ending'), ('journey', 'entry_step', 'First step'),
    ('journey', 'went_live_at', 'When launched'), ('journey', 'stopped_at', 'When stopped'),
    ('journey_step', 'key', 'Step name within the journey'), ('journey_step', 'kind', 'email, sms, letter, wait, branch_*, split, add_to_segment, subscribe, end'),
    ('journey_step', 'template', 'Template (message steps)'), ('journey_step', 'duration', 'Wait duration'),
    ('journey_step', 'from_time', 'Local-time window start (waits)'), ('journey_step', 'until_time', 'Local-time window end'),
    ('journey_step', 'weekdays', 'ISO weekdays of the window'), ('journey_step', 'after_step', 'Message step a branch_interaction looks at'),
    ('journey_step', 'interaction', 'opened or clicked (branch_interaction)'), ('journey_step', 'timeout', 'How long a branch waits'),
    ('journey_step', 'segment', 'Segment of a branch or add step'), ('journey_step', 'list', 'Subscription list of a subscribe step'),
    ('journey_step', 'percent', 'Share taking the yes path of a split'), ('journey_step', 'next_step', 'Next step'),
    ('journey_step', 'yes_step', 'Next step when yes'), ('journey_step', 'no_step', 'Next step when no'),
    ('enrollment', 'status', 'active, completed, exited or failed'), ('enrollment', 'current_step', 'Step it is at'),
    ('enrollment', 'step_entered_at', 'When it reached it'), ('enrollment', 'next_run_at', 'When the tick handles it next'),
    ('enrollment', 'entered_at', 'When the contact entered'), ('enrollment', 'ended_at', 'When it ended'),
    ('enrollment', 'exit_reason', 'Why it exited'), ('enrollment', 'entry_change_id', 'segment_change row it entered with'),
    ('enrollment', 'ended_change_id', 'Last audience change when it ended'), ('enrollment', 'attempt', 'Failed attempts so far'),
    ('enrollment', 'error', 'Last error (failed)'),
    ('enrollment_step', 'step_key', 'Step name'), ('enrollment_step', 'kind', 'Step kind'), ('enrollment_step', 'outcome', 'What happened (message status, yes/no...)'),
    ('enrollment_step', 'done_at', 'When'),
    ('journey_tick_run', 'at', 'The clock it ran with'), ('journey_tick_run', 'started_at', 'Wall-clock start'), ('journey_tick_run', 'finished_at', 'Wall-clock end'),
    ('journey_tick_run', 'enrolled', 'Contacts enrolled'), ('journey_tick_run', 'exited', 'Enrollments exited'), ('journey_tick_run', 'processed', 'Enrollments handled'),
    ('journey_tick_run', 'steps', 'Steps done'), ('journey_tick_run', 'messages', 'Messages queued'), ('journey_tick_run', 'completed', 'Enrollments completed'),
    ('journey_tick_run', 'failed', 'Enrollments failed'), ('journey_tick_run', 'retried', 'Enrollments retried'), ('journey_tick_run', 'batches', 'Batches'),
    ('journey_tick_run', 'more_due', 'Due work left for the next tick'),
    ('segment_template', 'name', 'Template name'), ('segment_template', 'title', 'Title'), ('segment_template', 'measure', 'Quality measure it follows (e.g. CMS125)'),
    ('segment_template', 'description', 'What it selects'),
    ('synthea_source_row', 'entity', 'Imported entity'), ('synthea_source_row', 'source_key', 'Key of the row in the Synthea CSV'),
    ('synthea_source_row', 'row_id', 'The row it became'),
    -- views: computed or renamed columns
    ('segment_members', 'segment', 'Segment name'),
    ('segment_overview', 'members', 'Current members'), ('segment_overview', 'pending_changes', 'Contacts waiting for the tick (deferred)'),
    ('segment_overview', 'pending_full_evaluation', 'The next tick re-evaluates it in full'), ('segment_overview', 'definition', 'The query as text'),
    ('segment_overview', 'uses_segments', 'Segments it is built from'),
    ('entity_field', 'entity', 'Entity'), ('entity_field', 'field', 'Field (column) name'), ('entity_field', 'data_type', 'Its type'),
    ('entity_field', 'is_key', 'The entity''s key'), ('entity_field', 'links_to', 'Entity the field links to'), ('entity_field', 'is_time_column', 'The entity''s time column'),
    ('entity_field', 'allowed_values', 'Values the field allows (enumerations)'), ('entity_field', 'position', 'Column position'),
    ('entity_overview', 'entity', 'Entity name'), ('entity_overview', 'table_name', 'The table'),
    ('entity_overview', 'link_column', 'Primary link: the column leading to contact'), ('entity_overview', 'links', 'Every link, as column -> entity'),
    ('value_set_summary', 'codes', 'Codes in the value set'), ('value_set_summary', 'code_systems', 'Code systems used'),
    ('message_status', 'messages', 'Messages'), ('journey_message_stats', 'messages', 'Messages'),
    ('journey_message_stats', 'journey', 'Journey name'), ('journey_message_stats', 'step', 'Step name'),
    ('journey_funnel', 'journey', 'Journey name'), ('journey_funnel', 'status', 'Journey status'),
    ('journey_step_funnel', 'journey', 'Journey name'), ('journey_step_funnel', 'step', 'Step name'), ('journey_step_funnel', 'step_id', 'Step id'),
    ('journey_step_funnel', 'kind', 'Step kind'), ('journey_step_funnel', 'reached', 'Enrollments that reached the step (done + waiting)'),
    ('journey_step_funnel', 'waiting', 'Enrollments at the step now'), ('journey_step_funnel', 'done', 'Enrollments that did it'),
    ('journey_step_funnel', 'yes', 'Took the yes path (branches, splits)'), ('journey_step_funnel', 'no', 'Took the no path'),
    ('template_engagement', 'template', 'Template name'),
    -- events (64_events.sql)
    ('event', 'starts_at', 'When the event starts'), ('event', 'ends_at', 'When it ends'), ('event', 'time_zone', 'The event''s own time zone'),
    ('event', 'venue', 'Where it takes place (in person, hybrid)'), ('event', 'online_url', 'Where to join (virtual, hybrid)'),
    ('event', 'registration_opens_at', 'Registration opens (NULL: on publishing)'), ('event', 'organizer_email', 'Organizer in the .ics'),
    ('event', 'published_at', 'When it was published'), ('event', 'cancelled_at', 'When it was cancelled'), ('event', 'completed_at', 'When it was completed (no-shows marked)'),
    ('event_session', 'event_id', 'The event'), ('event_session', 'starts_at', 'When the session starts'), ('event_session', 'ends_at', 'When it ends'),
    ('event_session', 'capacity', 'Seats (NULL: the event''s capacity)'),
    ('event_registration', 'event_id', 'The event'), ('event_registration', 'source', 'Where the registration came from'),
    ('event_registration', 'waitlisted_at', 'When it joined the waitlist'), ('event_registration', 'promoted_at', 'When it got a seat from the waitlist'),
    ('event_registration', 'checked_in_at', 'When the contact checked in'), ('event_registration', 'cancelled_at', 'When it was cancelled'),
    ('event_registration', 'cancel_reason', 'Why it was cancelled'),
    ('event_registration_session', 'registration_id', 'The registration'), ('event_registration_session', 'session_id', 'A session of interest'),
    ('event_seats', 'event_id', 'The event'), ('event_seats', 'session_id', 'The session (0: the event as a whole)'), ('event_seats', 'taken', 'Seats held'),
    ('event_overview', 'starts_at', 'When the event or session starts'), ('event_overview', 'capacity', 'Seats of the event or session'),
    ('event_overview', 'event', 'Event name'), ('event_overview', 'event_status', 'Event status'), ('event_overview', 'session', 'Session name (NULL: the whole event)'),
    ('event_overview', 'registered', 'Seats held (registered, attended, no-show)'), ('event_overview', 'waitlisted', 'On the waitlist'),
    ('event_overview', 'cancelled', 'Cancelled registrations'), ('event_overview', 'attended', 'Checked in'), ('event_overview', 'no_show', 'Did not come'),
    ('event_overview', 'no_show_rate', 'No-shows over seats held, of events that took place'), ('event_overview', 'fill_rate', 'Seats held over capacity'),
    ('template_event', 'event_id', 'The event its {{event.*}} tokens show'), ('template_event', 'attach_ics', 'Email carries the event''s .ics'),
    ('message_attachment', 'filename', 'File name'), ('message_attachment', 'content_type', 'MIME type'), ('message_attachment', 'content', 'File content'),
    -- leads and social (66_leads.sql)
    ('lead', 'first_name', 'Given name as captured'), ('lead', 'last_name', 'Family name as captured'), ('lead', 'email', 'Email as captured'),
    ('lead', 'phone', 'Phone as captured'), ('lead', 'source', 'Where the lead came from (form, event, import...)'), ('lead', 'source_detail', 'More about the source'),
    ('lead', 'status_changed_at', 'When the status last changed'), ('lead', 'status_changed_by', 'Who changed it (a role, or scoring)'),
    ('lead', 'score', 'Current score'), ('lead', 'score_updated_at', 'When the score last changed'), ('lead', 'qualified_at', 'When it qualified'),
    ('lead', 'converted_contact_id', 'The patient contact it became'), ('lead', 'converted_at', 'When it was converted'), ('lead', 'converted_by', 'Who converted it'),
    ('lead', 'captured_at', 'When it was captured'),
    ('lead_activity', 'lead_id', 'The lead'), ('lead_activity', 'detail', 'What happened'), ('lead_activity', 'occurred_at', 'When'),
    ('lead_conversion', 'lead_id', 'The lead'), ('lead_conversion', 'lead_contact_id', 'The lead''s own contact'),
    ('lead_conversion', 'matched_on', 'What matched an existing patient (email, phone; NULL: created)'),
    ('lead_conversion', 'score_at_conversion', 'Score when converted'), ('lead_conversion', 'moved', 'What was carried over to the patient'),
    ('lead_conversion', 'converted_by', 'Who converted it'), ('lead_conversion', 'converted_at', 'When'),
    ('lead_conversion_weekly', 'week', 'Week of conversion'), ('lead_conversion_weekly', 'conversions', 'Conversions'),
    ('lead_conversion_weekly', 'matched_existing', 'Conversions that matched an existing patient'),
    ('lead_conversion_weekly', 'avg_score_at_conversion', 'Average score when converted'), ('lead_conversion_weekly', 'avg_days_to_convert', 'Average days from capture to conversion'),
    ('lead_funnel', 'source', 'Lead source'), ('lead_funnel', 'leads', 'Leads'), ('lead_funnel', 'avg_score', 'Average score'),
    ('lead_funnel', 'ever_qualified', 'Leads that qualified at some point'), ('lead_funnel', 'first_captured', 'First capture'), ('lead_funnel', 'last_captured', 'Last capture'),
    ('lead_score_change', 'lead_id', 'The lead'), ('lead_score_change', 'old_score', 'Score before'), ('lead_score_change', 'new_score', 'Score after'),
    ('lead_score_change', 'reason', 'Why (rules changed, decay, rescore)'), ('lead_score_change', 'changed_at', 'When'),
    ('lead_score_hit', 'rule_id', 'The score rule'), ('lead_score_hit', 'since', 'Since when the rule holds (the start of decay)'),
    ('lead_score_rule', 'condition', 'Condition in the segment language'), ('lead_score_rule', 'points', 'Points while it holds'),
    ('lead_score_rule', 'half_life', 'Points halve every half_life (NULL: no decay)'),
    ('lead_settings', 'qualification_threshold', 'Score at which an open lead qualifies'), ('lead_settings', 'default_country_code', 'Country code of national phone numbers'),
    ('lead_status_change', 'lead_id', 'The lead'), ('lead_status_change', 'from_status', 'Status before'), ('lead_status_change', 'to_status', 'Status after'),
    ('lead_status_change', 'reason', 'Why'), ('lead_status_change', 'changed_by', 'Who (a role, or scoring)'), ('lead_status_change', 'changed_at', 'When'),
    ('social_post', 'account', 'Social account it is posted from'), ('social_post', 'body', 'Text of the post'), ('social_post', 'media_url', 'Attached media'),
    ('social_post', 'scheduled_at', 'When it is to be published'), ('social_post', 'published_at', 'When it was published'), ('social_post', 'detail', 'Connector''s detail'),
    ('social_post', 'sentiment', 'Sentiment of the post, -1 to 1'), ('social_post', 'created_by', 'Who wrote it'),
    ('social_engagement', 'post_id', 'The post'), ('social_engagement', 'quantity', 'How many (likes, shares)'), ('social_engagement', 'body', 'Text (comments, replies)'),
    ('social_engagement', 'author', 'Who wrote it'), ('social_engagement', 'sentiment', 'Sentiment of the text, -1 to 1'), ('social_engagement', 'occurred_at', 'When'),
    ('social_overview', 'week', 'Week of publication (UTC)'), ('social_overview', 'posts', 'Posts published'), ('social_overview', 'likes', 'Likes'),
    ('social_overview', 'shares', 'Shares'), ('social_overview', 'comments', 'Comments'), ('social_overview', 'replies', 'Replies'),
    ('social_overview', 'engagement', 'Likes, shares, comments and replies'), ('social_overview', 'avg_post_sentiment', 'Average sentiment of the posts'),
    ('social_overview', 'avg_reply_sentiment', 'Average sentiment of the replies'), ('social_overview', 'most_negative_replies', 'The three most negative replies'),
    -- delivery (85_delivery.sql)
    ('delivery_settings', 'singleton', 'Always true: the table has one row'), ('delivery_settings', 'confirmation_subject', 'Subject of the double opt-in confirmation mail'),
    ('delivery_settings', 'confirmation_body', 'Body of the confirmation mail ({{confirm_url}})'), ('delivery_settings', 'sms_help_reply', 'Reply to an SMS HELP'),
    ('delivery_settings', 'sms_stop_reply', 'Reply to an SMS STOP'), ('delivery_settings', 'sms_start_reply', 'Reply to an SMS START'),
    ('template_tracking', 'open_pixel', 'The gateway adds an open pixel'), ('template_tracking', 'click_tracking', 'The gateway rewrites links to tracked click URLs')
  ) v(rel, col, txt) LOOP
    -- (tables of other 0.3 parts are commented here too when they are installed; a column
    -- their part commented keeps its comment)
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass('outreach.' || r.rel)
                 AND a.attname = r.col AND NOT a.attisdropped)
       AND pg_catalog.col_description(pg_catalog.to_regclass('outreach.' || r.rel),
             (SELECT a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass('outreach.' || r.rel) AND a.attname = r.col)) IS NULL THEN
      EXECUTE pg_catalog.format('COMMENT ON COLUMN outreach.%I.%I IS %L', r.rel, r.col, r.txt);
    END IF;
  END LOOP;

  -- 2. columns that mean the same in every table (those still without a comment)
  FOR r IN SELECT c.relname, a.attname, g.txt
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           JOIN (VALUES
             ('id', 'Id (identity)'), ('created_at', 'When the row was created'), ('updated_at', 'When the row was last changed'),
             ('patient_id', 'The patient (outreach.contact.id)'), ('contact_id', 'The contact (outreach.contact.id)'),
             ('encounter_id', 'The encounter it was recorded in (outreach.encounter.id)'), ('external_id', 'Id in the source system (e.g. FHIR/Synthea id)'),
             ('code', 'Code in code_system'), ('code_system', 'Code system: SNOMED, LOINC, CVX, RxNorm...'), ('description', 'Description of the code'),
             ('journey_id', 'The journey (outreach.journey.id)'), ('segment_id', 'The segment (outreach.segment.id)'),
             ('message_id', 'The message (outreach.message.id)'), ('template_id', 'The template (outreach.template.id)'),
             ('step_id', 'The journey step (outreach.journey_step.id)'), ('enrollment_id', 'The enrollment (outreach.enrollment.id)'),
             ('channel', 'email, sms or letter'), ('message_class', 'marketing or transactional'), ('key_column', 'Single-column key'),
             ('link_column', 'Column leading to contact'), ('time_column', 'The column latest(...) orders by'),
             ('display_name', 'Name shown to users'), ('suppression_reason', 'Why messages were suppressed'),
             ('messages', 'Messages (all outcomes)'), ('queued', 'Messages waiting to be handed to the provider (queued, sending)'),
             ('sent', 'Messages handed to the provider (sent, delivered, bounced)'),
             ('delivered', 'Messages that reached the provider''s delivered state'), ('bounced', 'Messages bounced'),
             ('suppressed', 'Messages never sent (consent, address, pacing)'), ('messages_failed', 'Messages given up before the provider took them'),
             ('unique_opens', 'Messages opened (an open or a click)'), ('unique_clicks', 'Messages clicked'),
             ('unsubscribes', 'Messages that led to an unsubscribe'), ('complaints', 'Messages that drew a complaint'),
             ('ctr', 'Click-through rate: unique clicks / delivered'), ('ctor', 'Click-to-open rate: unique clicks / unique opens'),
             ('enrolled', 'Enrollments'), ('active', 'Enrollments running'), ('completed', 'Enrollments completed'),
             ('exited', 'Enrollments exited'), ('failed', 'Enrollments failed'), ('template', 'Template name'),
             ('builtin', 'Shipped with outreach'), ('registered_at', 'When it was registered'), ('name', 'Name'),
             ('status', 'Status'), ('kind', 'Kind'), ('mode', 'immediate or deferred')
           ) g(col, txt) ON g.col = a.attname
           WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind IN ('r', 'v') AND c.relname NOT LIKE '\_%'
             AND c.relkind = 'r' AND pg_catalog.col_description(c.oid, a.attnum) IS NULL LOOP
    EXECUTE pg_catalog.format('COMMENT ON COLUMN outreach.%I.%I IS %L', r.relname, r.attname, r.txt);
  END LOOP;

  -- 3. view columns that pass a table column through: its comment
  FOR r IN SELECT v.relname, va.attname, min(pg_catalog.col_description(t.oid, ta.attnum)) AS txt
           FROM pg_catalog.pg_class v
           JOIN pg_catalog.pg_attribute va ON va.attrelid = v.oid AND va.attnum > 0 AND NOT va.attisdropped
           JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = v.oid
           JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid
             AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
           JOIN pg_catalog.pg_class t ON t.oid = d.refobjid AND t.relkind = 'r'
           JOIN pg_catalog.pg_attribute ta ON ta.attrelid = t.oid AND ta.attnum = d.refobjsubid AND ta.attname = va.attname
           WHERE v.relnamespace = 'outreach'::regnamespace AND v.relkind = 'v' AND v.relname NOT LIKE '\_%'
             AND pg_catalog.col_description(v.oid, va.attnum) IS NULL
             AND pg_catalog.col_description(t.oid, ta.attnum) IS NOT NULL
           GROUP BY v.relname, va.attname
           HAVING count(DISTINCT pg_catalog.col_description(t.oid, ta.attnum)) = 1 LOOP
    EXECUTE pg_catalog.format('COMMENT ON COLUMN outreach.%I.%I IS %L', r.relname, r.attname, r.txt);
  END LOOP;

  -- 4. the rest of the views: the generic meanings
  FOR r IN SELECT c.relname, a.attname, g.txt
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           JOIN (VALUES
             ('messages', 'Messages (all outcomes)'), ('queued', 'Messages waiting to be handed to the provider (queued, sending)'),
             ('sent', 'Messages handed to the provider (sent, delivered, bounced)'),
             ('delivered', 'Messages that reached the provider''s delivered state'), ('bounced', 'Messages bounced'),
             ('suppressed', 'Messages never sent (consent, address, pacing)'), ('messages_failed', 'Messages given up before the provider took them'),
             ('unique_opens', 'Messages opened (an open or a click)'), ('unique_clicks', 'Messages clicked'),
             ('unsubscribes', 'Messages that led to an unsubscribe'), ('complaints', 'Messages that drew a complaint'),
             ('ctr', 'Click-through rate: unique clicks / delivered'), ('ctor', 'Click-to-open rate: unique clicks / unique opens'),
             ('enrolled', 'Enrollments'), ('active', 'Enrollments running'), ('completed', 'Enrollments completed'),
             ('exited', 'Enrollments exited'), ('failed', 'Enrollments failed (journeys) / messages failed (templates)'),
             ('template_id', 'The template (outreach.template.id)'), ('journey_id', 'The journey (outreach.journey.id)'),
             ('segment_id', 'The segment (outreach.segment.id)'), ('contact_id', 'The contact (outreach.contact.id)'),
             ('channel', 'email, sms or letter'), ('message_class', 'marketing or transactional'), ('status', 'Status'),
             ('suppression_reason', 'Why messages were suppressed'), ('name', 'Name'), ('kind', 'Kind')
           ) g(col, txt) ON g.col = a.attname
           WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind = 'v' AND c.relname NOT LIKE '\_%'
             AND pg_catalog.col_description(c.oid, a.attnum) IS NULL LOOP
    EXECUTE pg_catalog.format('COMMENT ON COLUMN outreach.%I.%I IS %L', r.relname, r.attname, r.txt);
  END LOOP;
END
$comments$;

-- (The restore guards of every part's triggers and tables are set in 99_restore_guard.sql,
-- after the last part.)
