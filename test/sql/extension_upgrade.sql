-- extension_upgrade: ALTER EXTENSION outreach UPDATE carries a 0.2.0 install, with its data,
-- to exactly what a fresh CREATE EXTENSION of the current version gives.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
DROP SCHEMA IF EXISTS outreach;   -- 0.2.0 creates the schema in its script
CREATE EXTENSION outreach VERSION '0.2.0' CASCADE;
RESET client_min_messages;
SET outreach.now = '2026-01-01 00:00+00';

-- What an installation of 0.2.0 holds: a live deferred segment with a pending change, a
-- live immediate one with members and history.
INSERT INTO outreach.contact (external_id, status) VALUES ('u1', 'active'), ('u2', 'active'), ('u3', 'active');
INSERT INTO outreach.condition (patient_id, code, description)
SELECT id, 'x', 'X' FROM outreach.contact WHERE external_id IN ('u1', 'u2');
SELECT outreach.create_segment('has x', $$contact where has condition where code = 'x'$$) > 0 AS created;
SELECT outreach.go_live('has x');
SELECT outreach.create_segment('has y', $$contact where has condition where code = 'y'$$) > 0 AS created;
SELECT outreach.go_live('has y');
SELECT outreach.set_segment_mode('has y', 'deferred');
INSERT INTO outreach.condition (patient_id, code, description)
SELECT id, 'y', 'Y' FROM outreach.contact WHERE external_id = 'u3';
SELECT name, members, pending_changes FROM outreach.segment_overview ORDER BY name;

-- The catalog of everything the extension owns, by name (no OIDs).
CREATE FUNCTION pg_temp.fingerprint() RETURNS TABLE (kind text, name text, def text) LANGUAGE sql AS $$
  WITH own AS (SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
               WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'outreach')
  SELECT 'function', p.oid::regprocedure::text,
         concat_ws(' | ', p.prosrc, p.provolatile, p.prosecdef, p.proconfig::text, pg_get_function_result(p.oid),
                   obj_description(p.oid, 'pg_proc'), p.proacl::text)
  FROM own JOIN pg_proc p ON own.classid = 'pg_proc'::regclass AND p.oid = own.objid
  UNION ALL
  SELECT 'relation', c.relname, concat_ws(' | ', c.relkind, c.relpersistence, obj_description(c.oid, 'pg_class'),
         CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END, c.relacl::text, c.reloptions::text,
         c.relrowsecurity, c.relforcerowsecurity)
  FROM own JOIN pg_class c ON own.classid = 'pg_class'::regclass AND c.oid = own.objid
  UNION ALL
  SELECT 'column', c.relname || '.' || a.attname,
         concat_ws(' | ', a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                   pg_get_expr(ad.adbin, ad.adrelid), col_description(c.oid, a.attnum))
  FROM own JOIN pg_class c ON own.classid = 'pg_class'::regclass AND c.oid = own.objid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
  UNION ALL
  SELECT 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
  FROM own JOIN pg_class c ON own.classid = 'pg_class'::regclass AND c.oid = own.objid
  JOIN pg_constraint k ON k.conrelid = c.oid
  UNION ALL
  SELECT 'index', i.relname, pg_get_indexdef(i.oid)
  FROM own JOIN pg_class c ON own.classid = 'pg_class'::regclass AND c.oid = own.objid
  JOIN pg_index x ON x.indrelid = c.oid JOIN pg_class i ON i.oid = x.indexrelid
  UNION ALL
  SELECT 'trigger', c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
  FROM own JOIN pg_class c ON own.classid = 'pg_class'::regclass AND c.oid = own.objid
  JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
  UNION ALL
  SELECT 'policy', c.relname || '.' || pol.polname,
         concat_ws(' | ', pol.polcmd, pol.polpermissive, pol.polroles::regrole[]::text,
                   pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid))
  FROM own JOIN pg_class c ON own.classid = 'pg_class'::regclass AND c.oid = own.objid
  JOIN pg_policy pol ON pol.polrelid = c.oid
  UNION ALL
  SELECT 'column acl', c.relname || '.' || a.attname, a.attacl::text
  FROM own JOIN pg_class c ON own.classid = 'pg_class'::regclass AND c.oid = own.objid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
  UNION ALL
  SELECT 'extension config', c.relname, coalesce(e.extcondition[array_position(e.extconfig, c.oid)], '')
  FROM pg_extension e CROSS JOIN LATERAL unnest(e.extconfig) cfg(oid) JOIN pg_class c ON c.oid = cfg.oid
  WHERE e.extname = 'outreach'
  UNION ALL
  SELECT 'type', t.typname, concat_ws(' | ', t.typtype, t.typlen)
  FROM own JOIN pg_type t ON own.classid = 'pg_type'::regclass AND t.oid = own.objid
$$;

SET client_min_messages = warning;
ALTER EXTENSION outreach UPDATE;
RESET client_min_messages;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'outreach') AS current_version
FROM pg_extension WHERE extname = 'outreach';
-- as in a fresh install: the extension is in schema outreach, which is not one of its members
-- (so pg_dump writes CREATE SCHEMA before CREATE EXTENSION), and pg_cron is not required
SELECT e.extnamespace::regnamespace AS schema,
       (SELECT count(*) FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
          AND d.objid = 'outreach'::regnamespace AND d.deptype = 'e') AS schema_is_member,
       (SELECT count(*) FROM pg_depend d WHERE d.classid = 'pg_extension'::regclass AND d.objid = e.oid
          AND d.refclassid = 'pg_extension'::regclass) AS required_extensions
FROM pg_extension e WHERE e.extname = 'outreach';

-- the data came through: members, history, and the pending change, which the tick applies
SELECT name, members, pending_changes FROM outreach.segment_overview ORDER BY name;
SELECT outreach.tick('2026-01-01 00:01+00');
SELECT name, members, pending_changes FROM outreach.segment_overview ORDER BY name;
SELECT s.name, c.change, count(*) FROM outreach.segment_change c JOIN outreach.segment s ON s.id = c.segment_id
GROUP BY 1, 2 ORDER BY 1, 2;
-- and the new behaviour works on it: dropping a segment removes its members and history
SELECT outreach.stop('has x');
SELECT outreach.drop_segment('has x');
SELECT count(*) AS orphan_rows FROM outreach.segment_change c
WHERE NOT EXISTS (SELECT 1 FROM outreach.segment s WHERE s.id = c.segment_id);

-- the upgraded catalog equals a fresh install's
CREATE TEMP TABLE upgraded AS SELECT * FROM pg_temp.fingerprint();
SET client_min_messages = warning;
DROP EXTENSION outreach CASCADE;
CREATE EXTENSION outreach CASCADE;
RESET client_min_messages;
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.fingerprint();
SELECT count(*) > 300 AS many_objects_compared FROM fresh;
SELECT 'only after the upgrade' AS side, kind, name FROM (SELECT * FROM upgraded EXCEPT SELECT * FROM fresh) u
UNION ALL
SELECT 'only in a fresh install', kind, name FROM (SELECT * FROM fresh EXCEPT SELECT * FROM upgraded) f
ORDER BY 1, 2, 3;
