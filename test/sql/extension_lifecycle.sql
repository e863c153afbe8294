-- extension_lifecycle: CREATE works without pg_cron, DROP removes everything outreach created
-- but the (then empty) schema named in the control file
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
DROP EXTENSION IF EXISTS pg_cron CASCADE;
RESET client_min_messages;

-- pg_cron is optional (a database other than cron.database_name can have outreach)
CREATE EXTENSION outreach;
SELECT extname, extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'outreach') AS current_version
FROM pg_extension WHERE extname IN ('outreach', 'pg_cron') ORDER BY 1;

-- a user table registered for segmentation, with a row
CREATE SCHEMA life_ehr;
CREATE TABLE life_ehr.diagnosis (patient_ref bigint, icd10 text, noted_on date);
SELECT outreach.register_entity('life_ehr.diagnosis', 'patient_ref', 'noted_on', link_entity => 'contact');
INSERT INTO life_ehr.diagnosis VALUES (1, 'H52.0', '2024-05-01');

SET client_min_messages = warning;
DROP EXTENSION outreach CASCADE;
RESET client_min_messages;
-- nothing of outreach is left: an empty schema, no functions, no types, no triggers on user tables
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'outreach';
SELECT count(*) AS objects_in_schema FROM pg_class WHERE relnamespace = 'outreach'::regnamespace;
DROP SCHEMA outreach;
SELECT count(*) AS functions FROM pg_proc WHERE prosrc LIKE 'outreach_%' OR pronamespace::regnamespace::text = 'outreach';
SELECT count(*) AS triggers_on_user_table FROM pg_trigger WHERE tgrelid = 'life_ehr.diagnosis'::regclass;
-- the user's table and data stay
SELECT * FROM life_ehr.diagnosis;
DROP SCHEMA life_ehr CASCADE;

-- and it installs again
SET client_min_messages = warning;
CREATE EXTENSION outreach CASCADE;
RESET client_min_messages;
SELECT count(*) > 0 AS registered FROM outreach.entity;
