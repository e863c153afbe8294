-- 00_schema.sql: the outreach schema.  Since 0.3.0 it comes from the control file's
-- `schema = outreach` key: CREATE EXTENSION creates it when missing, \dx shows it, and it is
-- not a member of the extension, so pg_dump writes CREATE SCHEMA before
-- CREATE EXTENSION ... WITH SCHEMA outreach and a dump restores (DROP EXTENSION leaves the
-- empty schema; DROP SCHEMA outreach removes it).
COMMENT ON SCHEMA outreach IS 'outreach: patient segments, membership, journeys';
