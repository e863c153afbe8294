-- 00_schema-ops.sql (ops): the schema leaves the extension and becomes its schema, as a
-- fresh 0.3.0 install has it (control file `schema = outreach`).  0.2.0 created the schema in
-- its script (a member, so pg_dump left it out) with the extension itself in public.
ALTER EXTENSION outreach DROP SCHEMA outreach;
UPDATE pg_catalog.pg_depend d SET refobjid = 'outreach'::regnamespace
WHERE d.classid = 'pg_catalog.pg_extension'::regclass
  AND d.objid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'outreach')
  AND d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.deptype = 'n';
UPDATE pg_catalog.pg_extension SET extnamespace = 'outreach'::regnamespace WHERE extname = 'outreach';
