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
CREATE FUNCTION outreach._restoring() RETURNS boolean
LANGUAGE sql VOLATILE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_catalog.current_setting('check_function_bodies') = 'off'
     AND pg_catalog.current_query() ~* '^\s*copy\s'
$$;
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

-- Every trigger of the extension's tables that fires on INSERT or TRUNCATE gets
-- WHEN (NOT outreach._restoring()): restoring segment_change must not enroll contacts again,
-- restoring a clinical row must not re-evaluate membership (segment_member is restored as it
-- was), restoring the steps of a live journey is not an edit of a live journey.  Triggers of
-- the parts above are rewritten here; later parts (audit, access) decide for their own.
DO $wrap$
DECLARE
  t record;
  def text;
BEGIN
  FOR t IN
    SELECT tg.oid, tg.tgname, tg.tgrelid::regclass AS rel, pg_catalog.pg_get_triggerdef(tg.oid) AS def
    FROM pg_catalog.pg_trigger tg
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = tg.tgrelid
      AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
    JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'outreach'
    WHERE NOT tg.tgisinternal AND tg.tgqual IS NULL AND (tg.tgtype & (4 | 32)) <> 0
    ORDER BY tg.tgrelid, tg.tgname
  LOOP
    def := pg_catalog.regexp_replace(t.def, ' EXECUTE FUNCTION ', ' WHEN (NOT outreach._restoring()) EXECUTE FUNCTION ');
    EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
    EXECUTE def;
  END LOOP;
END
$wrap$;

-- Settings tables ship default rows that the admin may change or delete: a restore replaces
-- them with the dumped rows (the COPY of the table starts by emptying it).
CREATE FUNCTION outreach._restore_replaces_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE pg_catalog.format('DELETE FROM %s', TG_RELID::regclass);
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION outreach._restore_replaces_rows() FROM PUBLIC;
CREATE TRIGGER outreach_restore_replaces_rows BEFORE INSERT ON outreach.messaging_settings
  FOR EACH STATEMENT WHEN (outreach._restoring()) EXECUTE FUNCTION outreach._restore_replaces_rows();
CREATE TRIGGER outreach_restore_replaces_rows BEFORE INSERT ON outreach.quiet_hours
  FOR EACH STATEMENT WHEN (outreach._restoring()) EXECUTE FUNCTION outreach._restore_replaces_rows();
CREATE TRIGGER outreach_restore_replaces_rows BEFORE INSERT ON outreach.frequency_cap
  FOR EACH STATEMENT WHEN (outreach._restoring()) EXECUTE FUNCTION outreach._restore_replaces_rows();

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
