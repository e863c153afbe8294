-- 00_schema.sql: the outreach schema.  Created here (not through the control file's
-- `schema` key) so that it is a member of the extension and DROP EXTENSION removes it.
CREATE SCHEMA outreach;
COMMENT ON SCHEMA outreach IS 'outreach: patient segments, membership, journeys';
