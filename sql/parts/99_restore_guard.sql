-- 99_restore_guard.sql: last part.  Makes every trigger and every whole-dumped table of
-- the extension safe for pg_restore (see outreach._restoring() and _restore_replaces_rows in
-- 92_operations.sql).  Last so that the triggers and dump marks of every part are covered.

-- Every trigger of the extension's tables that fires on INSERT or TRUNCATE gets
-- WHEN (NOT outreach._restoring()): restoring segment_change must not enroll contacts again,
-- restoring a clinical row must not re-evaluate membership (segment_member is restored as it
-- was), restoring the steps of a live journey is not an edit of a live journey.  Triggers of
-- every part are rewritten here, the audit and access parts' included.
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

-- Last: every table dumped whole gets the restore trigger (see _restore_replaces_rows), the
-- tables of every part included.
DO $replace$
DECLARE
  t regclass;
BEGIN
  FOR t IN
    SELECT c.oid::regclass FROM pg_catalog.pg_extension e
    CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(e.extconfig), pg_catalog.unnest(e.extcondition)) AS x(oid, cond)
    JOIN pg_catalog.pg_class c ON c.oid = x.oid
    WHERE e.extname = 'outreach' AND c.relkind = 'r' AND coalesce(x.cond, '') = ''
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger tg WHERE tg.tgrelid = c.oid AND tg.tgname = 'outreach_restore_replaces_rows')
    ORDER BY c.relname
  LOOP
    EXECUTE pg_catalog.format('CREATE TRIGGER outreach_restore_replaces_rows BEFORE INSERT ON %s FOR EACH STATEMENT '
                              'WHEN (outreach._restoring()) EXECUTE FUNCTION outreach._restore_replaces_rows()', t);
  END LOOP;
END
$replace$;
