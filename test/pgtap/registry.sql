-- registry: dataset configuration (entity registry), built-ins and user tables, every refusal
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(40);

-- built-ins come registered
SELECT set_eq(
  $$ SELECT name FROM outreach.entity $$,
  ARRAY['contact','account','encounter','condition','observation','procedure','immunization','medication','allergy',
        'event','event_registration','lead','lead_activity','interaction','message'],
  'every built-in entity is registered');
SELECT ok((SELECT bool_and(builtin) FROM outreach.entity), 'built-ins are marked built in');
SELECT is((SELECT link_column::text || '->' || link_entity FROM outreach.entity WHERE name = 'condition'),
  'patient_id->contact', 'condition links to contact through patient_id');
SELECT is((SELECT time_column::text FROM outreach.entity WHERE name = 'observation'), 'effective_at',
  'observation orders by effective_at');
SELECT is((SELECT count(*)::int FROM outreach.entity_link WHERE entity = 'condition'), 2,
  'condition links to contact and to encounter');

-- the entity_field view lists fields, types, links and allowed values
SELECT is((SELECT data_type FROM outreach.entity_field WHERE entity = 'contact' AND field = 'birthdate'), 'date',
  'entity_field shows field types');
SELECT is((SELECT allowed_values FROM outreach.entity_field WHERE entity = 'contact' AND field = 'status'),
  ARRAY['active','inactive'], 'entity_field shows allowed values of enumerated fields');
SELECT is((SELECT links_to FROM outreach.entity_field WHERE entity = 'condition' AND field = 'encounter_id'),
  'encounter', 'entity_field shows links');
SELECT is((SELECT data_type FROM outreach.entity_field WHERE entity = 'contact' AND field = 'age'), 'integer',
  'age is listed as a computed contact field');
SELECT ok((SELECT is_time_column FROM outreach.entity_field WHERE entity = 'encounter' AND field = 'start_at'),
  'entity_field marks the time column');

-- a user's own table
CREATE SCHEMA ehr;
CREATE TABLE ehr.diagnosis (patient_ref bigint REFERENCES outreach.contact, icd10 text, noted_on date);
SELECT is(outreach.register_entity('ehr.diagnosis', link_column => 'patient_ref', time_column => 'noted_on'),
  'diagnosis', 'a user table registers under its table name');
SELECT is((SELECT display_name FROM outreach.entity WHERE name = 'diagnosis'), 'Diagnosis', 'display name defaults from the name');
SELECT is((SELECT link_entity FROM outreach.entity WHERE name = 'diagnosis'), 'contact', 'link target inferred from the foreign key');
SELECT ok((SELECT key_column IS NULL FROM outreach.entity WHERE name = 'diagnosis'), 'a table without primary key has no key column');
SELECT set_eq($$ SELECT field FROM outreach.entity_field WHERE entity = 'diagnosis' $$,
  ARRAY['patient_ref','icd10','noted_on'], 'its fields are listed');

-- a user table linked through another registered entity, under another name and display name
CREATE TABLE ehr.lab_result (id bigint PRIMARY KEY, encounter_ref bigint REFERENCES outreach.encounter, loinc text, result numeric, taken_at timestamptz);
SELECT is(outreach.register_entity('ehr.lab_result', 'encounter_ref', 'taken_at', 'Lab result', 'lab'), 'lab',
  'a table linked through encounter registers');
SELECT is((SELECT link_entity FROM outreach.entity WHERE name = 'lab'), 'encounter', 'link goes to encounter');

-- a user table without foreign key, link target given explicitly
CREATE TABLE ehr.note (id bigint PRIMARY KEY, pid bigint, body text);
SELECT is(outreach.register_entity('ehr.note', 'pid', link_entity => 'contact'), 'note', 'explicit link entity');
-- and a later registration picks up foreign keys pointing at it
CREATE TABLE ehr.note_tag (note_id bigint REFERENCES ehr.note, tag text);
SELECT lives_ok($$ SELECT outreach.register_entity('ehr.note_tag', 'note_id') $$, 'an entity can link through a user entity');
SELECT is((SELECT link_entity FROM outreach.entity WHERE name = 'note_tag'), 'note', 'its link target is the user entity');

-- every refused registration
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.nope', 'x') $$, '42P01',
  'table "ehr.nope" does not exist', 'missing table');
CREATE VIEW ehr.v AS SELECT 1 AS x;
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.v', 'x') $$, '42809', '"ehr.v" is not a table', 'views are refused');
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.diagnosis', 'patient_ref', name => 'diag2') $$, '42710',
  'table ehr.diagnosis is already registered as entity "diagnosis"', 'same table twice');
CREATE TABLE ehr.condition (patient_id bigint REFERENCES outreach.contact);
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.condition', 'patient_id') $$, '42710',
  'an entity named "condition" is already registered', 'duplicate name');
SELECT lives_ok($$ SELECT outreach.register_entity('ehr.condition', 'patient_id', name => 'ehr_condition') $$,
  'the duplicate registers under another name');
CREATE TABLE ehr.x1 (patient_id bigint);
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.x1') $$, '22023', 'entity "x1" needs a link to contact',
  'the link is required');
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.x1', 'pat_id') $$, '42703',
  'column "pat_id" does not exist in table ehr.x1', 'missing link column');
CREATE TABLE ehr.x2 (patient_id text);
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.x2', 'patient_id') $$, '42804',
  'column "patient_id" of table ehr.x2 is of type text, but it links to contact.id of type bigint', 'link type mismatch');
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.x1', 'patient_id', 'seen') $$, '42703',
  'column "seen" does not exist in table ehr.x1', 'missing time column');
CREATE TABLE ehr.x3 (patient_id bigint, seen text);
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.x3', 'patient_id', 'seen') $$, '42804',
  'time column "seen" of table ehr.x3 is of type text', 'time column must be a date or timestamp');
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.x1', 'patient_id', link_entity => 'nope') $$, '42704',
  'link target entity "nope" is not registered', 'unknown link target');
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.x1', 'patient_id', link_entity => 'diagnosis') $$, '42830',
  NULL, 'a link target without a key is refused');
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.x1', 'patient_id', name => 'Bad Name') $$, '42602',
  'invalid entity name "Bad Name"', 'entity names are identifiers');
SELECT throws_ok($$ SELECT outreach.register_entity('ehr.lab_result', 'encounter_ref', link_entity => 'contact', name => 'lab2') $$,
  NULL, 'link entity contradicting the foreign key is refused');
-- nothing of the refused registrations was kept
SELECT is((SELECT count(*)::int FROM outreach.entity WHERE name IN ('x1','x2','x3','v','nope','diag2','lab2')), 0,
  'refused registrations leave nothing behind');

-- unregistering
SELECT throws_ok($$ SELECT outreach.unregister_entity('condition') $$, '55006',
  'entity "condition" is built in and cannot be unregistered', 'built-ins stay');
SELECT throws_ok($$ SELECT outreach.unregister_entity('note') $$, '2BP01',
  'entity "note" is the link to contact of other entities', 'an entity others link through stays');
SELECT throws_ok($$ SELECT outreach.unregister_entity('nope') $$, '42704', 'entity "nope" is not registered', 'unknown entity');
SELECT lives_ok($$ SELECT outreach.unregister_entity('diagnosis') $$, 'a user entity unregisters');
SELECT is((SELECT count(*)::int FROM outreach.entity_field WHERE entity = 'diagnosis'), 0, 'and its fields are gone');

SELECT * FROM finish();
ROLLBACK;
