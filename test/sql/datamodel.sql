-- datamodel: the built-in tables, their constraints and error messages
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach CASCADE;
RESET client_min_messages;
\set VERBOSITY default

-- every table of DESIGN §2 exists in schema outreach
SELECT t AS table_name, to_regclass('outreach.' || t) IS NOT NULL AS present
FROM unnest(ARRAY['account','contact','condition','observation','procedure','immunization',
                  'encounter','medication','allergy','value_set']) AS t;

INSERT INTO outreach.account (name, kind) VALUES ('Nguyen household', 'household');
INSERT INTO outreach.contact (external_id, first_name, last_name, birthdate, gender, email, phone, time_zone, account_id)
VALUES ('p-1', 'Ada', 'Nguyen', '1980-02-29', 'female', 'ada@example.org', '+14155550123', 'America/Los_Angeles', 1);

-- enumerated columns name the column and list the allowed values
INSERT INTO outreach.contact (first_name, status) VALUES ('Bob', 'Active');
INSERT INTO outreach.contact (first_name, gender) VALUES ('Bob', 'f');
INSERT INTO outreach.contact (first_name, preferred_channel) VALUES ('Bob', 'fax');
INSERT INTO outreach.account (name, kind) VALUES ('X', 'hospital');
INSERT INTO outreach.condition (patient_id, code, clinical_status) VALUES (1, '38101003', 'cured');
INSERT INTO outreach.encounter (patient_id, class) VALUES (1, 'telehealth');
-- phone numbers are E.164, time zones must exist
INSERT INTO outreach.contact (first_name, phone) VALUES ('Bob', '(415) 555-0123');
INSERT INTO outreach.contact (first_name, time_zone) VALUES ('Bob', 'Mars/Olympus');
-- clinical rows need a patient
INSERT INTO outreach.condition (patient_id, code) VALUES (999, '38101003');
-- external ids are unique
INSERT INTO outreach.contact (external_id) VALUES ('p-1');
-- encounters cannot end before they start
\set VERBOSITY terse
INSERT INTO outreach.encounter (patient_id, start_at, end_at) VALUES (1, '2024-01-02', '2024-01-01');
\set VERBOSITY default
-- nothing of the refused rows was kept
SELECT count(*) AS contacts FROM outreach.contact;

-- created_at / updated_at are kept by the database
UPDATE outreach.contact SET updated_at = '2000-01-01', first_name = 'Ada' WHERE id = 1;
SELECT updated_at > '2001-01-01' AS updated_at_kept, created_at <= updated_at AS ordered FROM outreach.contact WHERE id = 1;

-- allowed values are readable back for the validator and BI tools
SELECT outreach.field_allowed_values('outreach.contact', 'status');
SELECT outreach.field_allowed_values('outreach.contact', 'first_name') IS NULL AS free_text;

-- deleting a patient deletes their clinical rows
INSERT INTO outreach.condition (patient_id, code, description) VALUES (1, '38101003', 'Hypermetropia (disorder)');
DELETE FROM outreach.contact WHERE id = 1;
SELECT count(*) AS conditions_left FROM outreach.condition;
