-- 01_roles.sql: the group roles of DESIGN §8 and the helpers every later part uses to
-- make its tables safe to back up.
--
-- Roles are cluster-wide, not members of the extension: they are created when missing
-- (install, upgrade, restore into a new cluster) and left alone when they exist, so a
-- second database with outreach, or a re-install, keeps the grants an admin gave them.
--   outreach_admin     everything, settings and roles included
--   outreach_marketer  segments, journeys, templates, lists, events, leads; contacts'
--                      identity and channels, never clinical rows
--   outreach_analyst   reporting views and counts without direct identifiers
--   outreach_sender    claim messages, report deliveries and interactions; nothing else
-- Each part grants its own functions and tables to the roles that should use them; the
-- access part (98_access.sql) revokes everything else from PUBLIC and enables row-level
-- security on every table that holds patient data.
DO $roles$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['outreach_admin', 'outreach_marketer', 'outreach_analyst', 'outreach_sender'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$roles$;

GRANT USAGE ON SCHEMA outreach TO outreach_admin, outreach_marketer, outreach_analyst, outreach_sender;

-- outreach._dump(table, filter): pg_dump dumps this table's rows (those matching filter, a
-- WHERE clause, when the extension ships rows of its own) and the sequences it owns, so
-- identity keys continue after a restore.  Every part calls it for each table that holds
-- user data.
CREATE FUNCTION outreach._dump(tbl regclass, filter text DEFAULT '') RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s regclass;
BEGIN
  PERFORM pg_catalog.pg_extension_config_dump(tbl, filter);
  FOR s IN
    SELECT d.objid::regclass FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
      AND d.refobjid = tbl AND d.deptype IN ('a', 'i') AND c.relkind = 'S'
  LOOP
    PERFORM pg_catalog.pg_extension_config_dump(s, '');
  END LOOP;
END
$$;
REVOKE ALL ON FUNCTION outreach._dump(regclass, text) FROM PUBLIC;
COMMENT ON FUNCTION outreach._dump(regclass, text) IS
  'Internal: mark a table (rows matching filter) and the sequences it owns for pg_dump';
