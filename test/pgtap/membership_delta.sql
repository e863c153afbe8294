-- Maintenance by delta (membership.c, docs/segments.md "Maintenance by delta") and the
-- contacts concerned through nested relations (segment_query_back_paths).  Each case
-- checks the members against a fresh evaluate() and, where delta promises to skip work,
-- that the contact was not even locked (contact_stamp).  Random coverage is the job of the
-- differential tests (test/extra/differential_fuzz.sh, membership_differential.sh).
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
RESET client_min_messages;
SELECT * FROM no_plan();
SET outreach.now = '2026-06-15 12:00:00+00';

INSERT INTO outreach.contact (external_id, first_name, status, birthdate) VALUES
  ('d1', 'Ann', 'active', '1950-01-01'), ('d2', 'Bob', 'active', '1980-01-01'),
  ('d3', 'Cy', 'inactive', '1990-01-01'), ('d4', 'Dora', 'active', '1960-01-01');
CREATE FUNCTION pg_temp.cid(ext text) RETURNS bigint LANGUAGE sql AS
  $$ SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.stamped(ext text) RETURNS boolean LANGUAGE sql AS
  $$ SELECT EXISTS (SELECT 1 FROM outreach.contact_stamp WHERE contact_id = pg_temp.cid(ext)) $$;
CREATE FUNCTION pg_temp.members(seg text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(c.external_id, ',' ORDER BY c.external_id), '')
  FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
  JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = seg $$;
CREATE FUNCTION pg_temp.fresh(seg text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(c.external_id, ',' ORDER BY c.external_id), '')
  FROM outreach.segment s, outreach.evaluate(s.definition, s.time_zone) e(id)
  JOIN outreach.contact c ON c.id = e.id WHERE s.name = seg $$;
-- every live segment equals a fresh evaluation
CREATE FUNCTION pg_temp.all_fresh() RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(s.name, ',' ORDER BY s.name), 'all equal')
  FROM outreach.segment s WHERE s.status = 'live' AND pg_temp.members(s.name) <> pg_temp.fresh(s.name) $$;

DO $$
BEGIN
  PERFORM outreach.create_segment('d_or', 'contact where has condition where code = ''e11'' or has condition where code = ''i10''', 'UTC');
  PERFORM outreach.create_segment('d_and', 'contact where status = ''active'' and has condition where code = ''e11''', 'UTC');
  PERFORM outreach.create_segment('d_no', 'contact where has no condition where code = ''e11''', 'UTC');
  PERFORM outreach.create_segment('d_mixed', 'contact where has condition where code = ''e11'' and count(observation where code = ''bp'') >= 1', 'UTC');
  PERFORM outreach.create_segment('d_nested', 'contact where has condition where has encounter where has condition where code = ''x''', 'UTC');
  PERFORM outreach.create_segment('d_enc', 'contact where has condition where has encounter where class = ''emergency''', 'UTC');
  PERFORM outreach.go_live(n) FROM unnest('{d_or,d_and,d_no,d_mixed}'::text[]) n;
END $$;
SELECT is(pg_temp.members('d_no'), 'd1,d2,d3,d4', 'has no: everyone without the condition');
TRUNCATE outreach.contact_stamp;

-- INSERT of a row satisfying a has atom that decides the formula
INSERT INTO outreach.condition (patient_id, code) VALUES (pg_temp.cid('d1'), 'e11');
SELECT is(pg_temp.members('d_or'), 'd1', 'a disjunct made true by the new row: member');
SELECT is(pg_temp.members('d_and'), 'd1', 'a conjunct made true, the rest re-evaluated: member');
SELECT is(pg_temp.members('d_no'), 'd2,d3,d4', 'has no made false by the new row: no longer a member');
SELECT is(pg_temp.all_fresh(), 'all equal', 'every segment equals a fresh evaluation');
INSERT INTO outreach.condition (patient_id, code) VALUES (pg_temp.cid('d3'), 'e11');
SELECT is(pg_temp.members('d_and'), 'd1', 'an inactive contact stays out (the other conjunct is re-evaluated)');
SELECT is(pg_temp.members('d_or'), 'd1,d3', 'and joins the disjunction');

-- an UPDATE that leaves every atom as it was changes nothing and locks nothing
TRUNCATE outreach.contact_stamp;
UPDATE outreach.condition SET description = 'type 2 diabetes', onset_date = '2020-01-01' WHERE patient_id = pg_temp.cid('d1');
SELECT is(pg_temp.stamped('d1'), false, 'an update keeping a has atom true locks no contact (no nested segment live)');
SELECT is(pg_temp.all_fresh(), 'all equal', 'and every segment still equals a fresh evaluation');

-- DELETE: the atom is re-evaluated for the contact
INSERT INTO outreach.condition (patient_id, code) VALUES (pg_temp.cid('d1'), 'e11');
DELETE FROM outreach.condition WHERE id = (SELECT max(id) FROM outreach.condition WHERE patient_id = pg_temp.cid('d1'));
SELECT is(pg_temp.members('d_or'), 'd1,d3', 'deleting one of two matching rows: still a member');
DELETE FROM outreach.condition WHERE patient_id = pg_temp.cid('d1');
SELECT is(pg_temp.members('d_or'), 'd3', 'deleting the last one: out');
SELECT is(pg_temp.members('d_no'), 'd1,d2,d4', 'and back into has no');
SELECT is(pg_temp.all_fresh(), 'all equal', 'every segment equals a fresh evaluation after deletes');

-- UPDATE moving a row between contacts (patient_id) and between codes
INSERT INTO outreach.condition (patient_id, code) VALUES (pg_temp.cid('d2'), 'i10');
UPDATE outreach.condition SET patient_id = pg_temp.cid('d4') WHERE patient_id = pg_temp.cid('d2');
SELECT is(pg_temp.members('d_or'), 'd3,d4', 'a row moved to another patient: the old one leaves, the new one joins');
UPDATE outreach.condition SET code = 'e11' WHERE patient_id = pg_temp.cid('d4');
SELECT is(pg_temp.members('d_and'), 'd4', 'a row moved from one atom to another');
SELECT is(pg_temp.all_fresh(), 'all equal', 'every segment equals a fresh evaluation after moves');

-- an aggregate over the same statement's entity is re-evaluated, not decided by delta
INSERT INTO outreach.observation (patient_id, code, value_numeric) VALUES (pg_temp.cid('d4'), 'bp', 120);
SELECT is(pg_temp.members('d_mixed'), 'd4', 'count() atom: re-evaluated');
DELETE FROM outreach.observation WHERE patient_id = pg_temp.cid('d4');
SELECT is(pg_temp.members('d_mixed'), '', 'and out again');

-- a multi-row statement touching several contacts at once
INSERT INTO outreach.condition (patient_id, code)
  SELECT id, CASE WHEN external_id IN ('d1', 'd2') THEN 'e11' ELSE 'i10' END FROM outreach.contact;
SELECT is(pg_temp.all_fresh(), 'all equal', 'a multi-row insert: every segment equals a fresh evaluation');
DELETE FROM outreach.condition WHERE code = 'i10';
SELECT is(pg_temp.all_fresh(), 'all equal', 'a multi-row delete: every segment equals a fresh evaluation');

-- the same with delta off: the settings agree
SET outreach.membership_delta = off;
INSERT INTO outreach.condition (patient_id, code) VALUES (pg_temp.cid('d3'), 'i10');
SELECT is(pg_temp.all_fresh(), 'all equal', 'with outreach.membership_delta off the members are the same');
RESET outreach.membership_delta;

-- Nested relations across patients (issue 16): A's condition points at B's encounter.
SELECT outreach.go_live(n) FROM unnest('{d_nested,d_enc}'::text[]) n;
INSERT INTO outreach.encounter (patient_id, start_at, class) VALUES (pg_temp.cid('d2'), '2026-01-01', 'ambulatory');
INSERT INTO outreach.condition (patient_id, code, encounter_id)
  SELECT pg_temp.cid('d1'), 'a', max(id) FROM outreach.encounter;
SELECT is(pg_temp.members('d_nested'), '', 'nested: nobody yet');
INSERT INTO outreach.condition (patient_id, code, encounter_id)
  SELECT pg_temp.cid('d2'), 'x', max(id) FROM outreach.encounter;
SELECT is(pg_temp.members('d_nested'), 'd1,d2', 'a condition of B on B''s encounter makes A a member too');
UPDATE outreach.condition SET code = 'y' WHERE code = 'x';
SELECT is(pg_temp.members('d_nested'), '', 'and its update takes both out');
UPDATE outreach.condition SET code = 'x' WHERE code = 'y';
DELETE FROM outreach.condition WHERE code = 'x';
SELECT is(pg_temp.members('d_nested'), '', 'its delete too');
UPDATE outreach.encounter SET class = 'emergency';
SELECT is(pg_temp.members('d_enc'), 'd1', 'a change of B''s encounter reaches A, whose condition points at it');
UPDATE outreach.condition SET encounter_id = NULL WHERE patient_id = pg_temp.cid('d1');
SELECT is(pg_temp.members('d_enc'), '', 'unlinking the condition takes A out');
SELECT is(pg_temp.all_fresh(), 'all equal', 'every segment equals a fresh evaluation at the end');

SELECT * FROM finish();
ROLLBACK;
