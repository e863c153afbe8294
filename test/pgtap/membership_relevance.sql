-- Relevance filtering of membership maintenance (membership.c): a changed row is tested
-- against the filters of every use of its entity in each live segment, and only the
-- segments it can concern are re-evaluated; a statement concerning none does not even lock
-- (stamp) its contacts.  Membership correctness under random writes is the differential
-- test's job (test/extra/membership_differential.sh); this checks that the work is skipped.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
RESET client_min_messages;
SELECT * FROM no_plan();

INSERT INTO outreach.contact (external_id, first_name, status, birthdate) VALUES
  ('r1', 'Ann', 'active', '1950-01-01'), ('r2', 'Bob', 'active', '1980-01-01'),
  ('r3', 'Cy', 'active', '1990-01-01');
CREATE FUNCTION pg_temp.cid(ext text) RETURNS bigint LANGUAGE sql AS
  $$ SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.stamped(ext text) RETURNS boolean LANGUAGE sql AS
  $$ SELECT EXISTS (SELECT 1 FROM outreach.contact_stamp WHERE contact_id = pg_temp.cid(ext)) $$;
CREATE FUNCTION pg_temp.members(seg text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(c.external_id, ',' ORDER BY c.external_id), '')
  FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
  JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = seg $$;

DO $$
BEGIN
  PERFORM outreach.create_segment('rel_code', 'contact where has condition where code = ''e11''', 'UTC');
  PERFORM outreach.create_segment('rel_count', 'contact where count(condition where description contains ''asthma'') >= 2', 'UTC');
  PERFORM outreach.create_segment('rel_latest', 'contact where latest(observation.value_numeric where code = ''a1c'') > 8', 'UTC');
  PERFORM outreach.create_segment('rel_nested', 'contact where has condition where has encounter where class = ''emergency''', 'UTC');
  PERFORM outreach.go_live(n) FROM unnest('{rel_code,rel_count,rel_latest}'::text[]) n;
END $$;
TRUNCATE outreach.contact_stamp;

-- rows no live segment looks at: nothing re-evaluated, no contact locked
INSERT INTO outreach.condition (patient_id, code, description) VALUES (pg_temp.cid('r1'), 'j45', 'flu');
SELECT is(pg_temp.stamped('r1'), false, 'an inserted condition matching no segment filter locks no contact');
UPDATE outreach.condition SET code = 'i10' WHERE patient_id = pg_temp.cid('r1');
SELECT is(pg_temp.stamped('r1'), false, 'an update moving a row between codes no segment uses locks no contact');
INSERT INTO outreach.observation (patient_id, code, value_numeric) VALUES (pg_temp.cid('r1'), 'bp', 150);
SELECT is(pg_temp.stamped('r1'), false, 'an observation with another code locks no contact');

-- rows a segment looks at: evaluated as before
INSERT INTO outreach.condition (patient_id, code, description) VALUES (pg_temp.cid('r2'), 'e11', 'diabetes');
SELECT is(pg_temp.stamped('r2'), true, 'a condition matching a filter locks its contact');
SELECT is(pg_temp.members('rel_code'), 'r2', 'and the contact joins');
UPDATE outreach.condition SET code = 'e11' WHERE patient_id = pg_temp.cid('r1');
SELECT is(pg_temp.members('rel_code'), 'r1,r2', 'an update moving a row into a filter is relevant (new row)');
UPDATE outreach.condition SET code = 'x' WHERE patient_id = pg_temp.cid('r2');
SELECT is(pg_temp.members('rel_code'), 'r1', 'an update moving a row out of a filter is relevant (old row)');
INSERT INTO outreach.condition (patient_id, code, description) VALUES
  (pg_temp.cid('r3'), 'z', 'mild asthma'), (pg_temp.cid('r3'), 'z', 'asthma, severe');
SELECT is(pg_temp.members('rel_count'), 'r3', 'count(... where contains) sees the rows matching its filter');
DELETE FROM outreach.condition WHERE patient_id = pg_temp.cid('r1');
SELECT is(pg_temp.members('rel_code'), '', 'a deleted matching row is relevant');
INSERT INTO outreach.observation (patient_id, code, value_numeric) VALUES (pg_temp.cid('r3'), 'a1c', 9);
SELECT is(pg_temp.members('rel_latest'), 'r3', 'latest(... where code) sees its rows');
TRUNCATE outreach.contact_stamp;
INSERT INTO outreach.observation (patient_id, code, value_numeric) VALUES (pg_temp.cid('r3'), 'wt', 3);
SELECT is(pg_temp.stamped('r3'), false, 'a later observation of another code is not relevant to latest(... where code = a1c)');
SELECT is(pg_temp.members('rel_latest'), 'r3', 'and the member stays');

-- a filter reading other rows: tested after locking, on inserts
DO $$ BEGIN PERFORM outreach.go_live('rel_nested'); END $$;
INSERT INTO outreach.encounter (patient_id, class) VALUES (pg_temp.cid('r1'), 'emergency');
INSERT INTO outreach.condition (patient_id, code, encounter_id)
  SELECT pg_temp.cid('r1'), 'q', id FROM outreach.encounter WHERE patient_id = pg_temp.cid('r1');
SELECT is(pg_temp.members('rel_nested'), 'r1', 'a condition linked to an emergency encounter is relevant');
DELETE FROM outreach.encounter WHERE patient_id = pg_temp.cid('r1');
SELECT is(pg_temp.members('rel_nested'), '', 'deleting the encounter (ON DELETE SET NULL on condition) removes the member');

-- a predicate that no longer compiles (its value set was emptied) falls back to evaluating
-- the segment on every change rather than failing the write
INSERT INTO outreach.value_set (name, code_system, code, display) VALUES ('relvs', 'snomed', 'v1', 'v one');
DO $$
BEGIN
  PERFORM outreach.create_segment('rel_vs', 'contact where has condition where code in value_set ''relvs''', 'UTC');
  PERFORM outreach.go_live('rel_vs');
END $$;
DELETE FROM outreach.value_set WHERE name = 'relvs';
SELECT lives_ok($$INSERT INTO outreach.condition (patient_id, code) VALUES (pg_temp.cid('r2'), 'v1')$$,
  'a write succeeds when a segment''s value set has been emptied');
SELECT is(pg_temp.members('rel_vs'), '', 'and the segment is still maintained (no code, no member)');
SELECT is(pg_temp.members('rel_code'), '', 'the other segments too');

SELECT * FROM finish();
ROLLBACK;
