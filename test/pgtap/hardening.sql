-- hardening: the reproductions of issue 19 (defects 1-4, 7-9) and of the compiler side of
-- issue 20, each a test of its class.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(40);

-- Defect 4: touch_updated_at on a table whose updated_at is not a timestamptz is refused at
-- trigger time (it crashed the backend for text, stored garbage for date and int4).
CREATE TABLE pg_temp.t_text (id int PRIMARY KEY, updated_at text);
CREATE TABLE pg_temp.t_date (id int PRIMARY KEY, updated_at date);
CREATE TABLE pg_temp.t_int (id int PRIMARY KEY, updated_at int4);
CREATE TABLE pg_temp.t_ok (id int PRIMARY KEY, updated_at timestamptz);
CREATE TRIGGER t BEFORE UPDATE ON pg_temp.t_text FOR EACH ROW EXECUTE FUNCTION outreach.touch_updated_at();
CREATE TRIGGER t BEFORE UPDATE ON pg_temp.t_date FOR EACH ROW EXECUTE FUNCTION outreach.touch_updated_at();
CREATE TRIGGER t BEFORE UPDATE ON pg_temp.t_int FOR EACH ROW EXECUTE FUNCTION outreach.touch_updated_at();
CREATE TRIGGER t BEFORE UPDATE ON pg_temp.t_ok FOR EACH ROW EXECUTE FUNCTION outreach.touch_updated_at();
INSERT INTO pg_temp.t_text VALUES (1, 'x');
INSERT INTO pg_temp.t_date VALUES (1, '2000-01-01');
INSERT INTO pg_temp.t_int VALUES (1, 7);
INSERT INTO pg_temp.t_ok VALUES (1, '2000-01-01');
SELECT throws_ok($$ UPDATE pg_temp.t_text SET id = 1 $$, '42804',
  'column "updated_at" of table "t_text" has type text, not timestamp with time zone',
  'touch_updated_at refuses a text updated_at (it used to crash the server)');
SELECT throws_ok($$ UPDATE pg_temp.t_date SET id = 1 $$, '42804', NULL, 'touch_updated_at refuses a date updated_at');
SELECT throws_ok($$ UPDATE pg_temp.t_int SET id = 1 $$, '42804', NULL, 'touch_updated_at refuses an int4 updated_at');
UPDATE pg_temp.t_ok SET id = 1;
SELECT ok((SELECT updated_at > '2001-01-01' FROM pg_temp.t_ok), 'touch_updated_at still sets a timestamptz updated_at');
-- internal trigger functions are not executable by PUBLIC
SELECT ok(NOT EXISTS (
  SELECT 1 FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
  WHERE p.oid IN ('outreach.touch_updated_at()'::regprocedure, 'outreach._membership_trigger()'::regprocedure,
                  'outreach._segment_deleted()'::regprocedure)
    AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
  'the internal trigger functions of data model and segments are not executable by PUBLIC');
-- and the trigger still fires for a role that may write the table
CREATE ROLE hardening_writer;
GRANT USAGE ON SCHEMA outreach TO hardening_writer;
GRANT SELECT, UPDATE ON outreach.account TO hardening_writer;
-- a marketer (98_access.sql), so the organization policy on account can be evaluated for it
GRANT outreach_marketer TO hardening_writer;
INSERT INTO outreach.account (name, kind) VALUES ('A', 'household');
UPDATE outreach.account SET updated_at = '2000-01-01';
SET LOCAL ROLE hardening_writer;
UPDATE outreach.account SET name = 'B';
RESET ROLE;
SELECT ok((SELECT updated_at > '2001-01-01' FROM outreach.account), 'a role without EXECUTE on touch_updated_at still fires it');

-- Defect 1: one three-valued semantics for the whole-population and the restricted form.
CREATE FUNCTION pg_temp.cid(ext text) RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.ext(q text) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(c.external_id ORDER BY c.external_id), '{}') FROM outreach.evaluate(q::outreach.segment_query) e JOIN outreach.contact c ON c.id = e $$;
CREATE FUNCTION pg_temp.ext_restricted(q text) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(c.external_id ORDER BY c.external_id), '{}')
  FROM outreach.evaluate(q::outreach.segment_query, ARRAY(SELECT id FROM outreach.contact)) e JOIN outreach.contact c ON c.id = e $$;
INSERT INTO outreach.contact (external_id, first_name) VALUES ('none', 'N'), ('x', 'X'), ('y', 'Y'), ('null', 'U');
INSERT INTO outreach.immunization (patient_id, code, administered_at) VALUES
  (pg_temp.cid('x'), 'y', '2020-01-01'), (pg_temp.cid('x'), 'x', '2021-01-01'),
  (pg_temp.cid('y'), 'y', '2021-01-01'), (pg_temp.cid('null'), NULL, '2021-01-01');
SELECT is(pg_temp.ext($$contact where not (latest(immunization.code) != 'x')$$), '{x}',
  'not (latest(...) != v): unknown (no rows, NULL value) stays out, as in SQL');
SELECT is(pg_temp.ext_restricted($$contact where not (latest(immunization.code) != 'x')$$), '{x}',
  'the restricted form agrees (0.2.0: 308 against 0)');
SELECT is(pg_temp.ext($$contact where not (latest(immunization.code) is empty)$$), '{none,x,y}',
  'not (latest(...) is empty) includes contacts without rows (is empty is false for them)');
SELECT is(pg_temp.ext($$contact where latest(immunization.code) is not empty$$), '{x,y}',
  'latest(...) is not empty needs a newest row');
SELECT is(pg_temp.ext_restricted($$contact where not (latest(immunization.code) is empty)$$), '{none,x,y}',
  'and the restricted form agrees');
SELECT is(pg_temp.ext($$contact where not (max(immunization.code) > 'x') and not (count(immunization) > 1)$$),
  pg_temp.ext_restricted($$contact where not (max(immunization.code) > 'x') and not (count(immunization) > 1)$$),
  'aggregates under not: both forms agree');
SELECT outreach.create_segment('notlatest', $$contact where not (latest(immunization.code) != 'x')$$);
SELECT outreach.go_live('notlatest');
INSERT INTO outreach.immunization (patient_id, code, administered_at) VALUES (pg_temp.cid('y'), 'x', '2022-01-01');
UPDATE outreach.contact SET first_name = 'Z' WHERE external_id = 'none';
DELETE FROM outreach.immunization WHERE patient_id = pg_temp.cid('x') AND code = 'x';
SELECT is((SELECT array_agg(c.external_id ORDER BY c.external_id) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
           JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = 'notlatest'),
  pg_temp.ext($$contact where not (latest(immunization.code) != 'x')$$),
  'a live segment under not equals a fresh evaluation after ordinary writes');

-- Issue 20: stored compiled SQL is never executed.  A role that may write outreach.segment
-- rewrites full_sql / restricted_sql; maintenance, the tick and re-evaluation still run
-- what the compiler makes of the definition.
CREATE TABLE pg_temp.ran (who text);
CREATE FUNCTION pg_temp.payload() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN INSERT INTO pg_temp.ran VALUES (current_user); RETURN 1; END $$;
SELECT outreach.create_segment('tampered', 'contact where first_name = ''X''');
SELECT outreach.go_live('tampered');
UPDATE outreach.segment SET full_sql = 'SELECT pg_temp.payload()', restricted_sql = 'SELECT pg_temp.payload() WHERE $1 IS NOT NULL'
WHERE name = 'tampered';
SELECT outreach._membership_invalidate();
UPDATE outreach.contact SET first_name = 'X' WHERE external_id = 'y';
SELECT outreach.set_segment_schedule('tampered', '1 minute');
SELECT outreach.alter_segment('tampered', 'contact where first_name = ''X''');
SELECT is((SELECT count(*)::int FROM pg_temp.ran), 0, 'rewritten compiled SQL is never run (maintenance, re-evaluation)');
SELECT is((SELECT array_agg(c.external_id ORDER BY c.external_id) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
           JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = 'tampered'), '{x,y}',
  'the members are those of the definition');

-- Issue 20: a role with CREATE on public shadows count(text) and an operator on
-- (numeric, integer); a superuser's write with live segments on them does not call either.
CREATE TABLE public.hardening_called (what text);
GRANT INSERT ON public.hardening_called TO PUBLIC;
CREATE ROLE hardening_schemer;
GRANT CREATE, USAGE ON SCHEMA public TO hardening_schemer;
SET LOCAL ROLE hardening_schemer;
CREATE FUNCTION public.hardening_count_step(bigint, text) RETURNS bigint LANGUAGE sql AS
  $$ INSERT INTO public.hardening_called VALUES ('count(text) as ' || current_user) RETURNING 1::bigint $$;
CREATE AGGREGATE public.count(text) (sfunc = public.hardening_count_step, stype = bigint, initcond = '0');
CREATE FUNCTION public.hardening_gt(numeric, integer) RETURNS boolean LANGUAGE sql AS
  $$ INSERT INTO public.hardening_called VALUES ('>(numeric, integer) as ' || current_user) RETURNING true $$;
CREATE OPERATOR public.> (leftarg = numeric, rightarg = integer, function = public.hardening_gt);
RESET ROLE;
SET LOCAL search_path = public, pg_catalog;
SELECT outreach.create_segment('shadowed', 'contact where count(condition.code) >= 1 or has observation where value_numeric > 7');
SELECT outreach.go_live('shadowed');
INSERT INTO outreach.condition (patient_id, code) VALUES (pg_temp.cid('none'), 'c1');
INSERT INTO outreach.observation (patient_id, code, value_numeric) VALUES (pg_temp.cid('y'), 'o', 9);
SELECT ok(EXISTS (SELECT 1 FROM outreach.evaluate('contact where count(condition.code) >= 1')), 'evaluate as superuser with public first');
RESET search_path;
SELECT is((SELECT count(*)::int FROM public.hardening_called), 0,
  'neither the count(text) nor the operator shadow in public ran in a superuser''s write or evaluate');
SELECT is((SELECT array_agg(c.external_id ORDER BY c.external_id) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
           JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = 'shadowed'), '{none,y}',
  'and the segment was maintained with pg_catalog''s count and >');
SELECT unalike(outreach.compile('contact where count(condition.code) >= 1 and has observation where value_numeric > 7 and first_name in (''a'') and age between 1 and 2'),
  '% count(%', 'compiled SQL calls no unqualified count');
SELECT unalike(regexp_replace(outreach.compile('contact where count(condition.code) >= 1 and has observation where value_numeric > 7 and first_name in (''a'') and birthdate not between date ''2000-01-01'' and date ''2001-01-01'' and last_name contains ''x'''),
                             'OPERATOR\(pg_catalog\.[^)]*\)', '', 'g'),
  '%[=<>~]%', 'compiled SQL has no operator outside OPERATOR(pg_catalog.x)');

-- Defect 8: a segment's run-time error never aborts a clinical write.  A birthdate beyond
-- the timestamp range makes the age arithmetic of a live segment fail.
SELECT outreach.create_segment('aged', 'contact where age in (30, 31)');
SELECT outreach.go_live('aged');
SELECT outreach.create_segment('aged_deferred', 'contact where age in (30, 31)');
SELECT outreach.set_segment_mode('aged_deferred', 'deferred');
SELECT outreach.go_live('aged_deferred');
SELECT lives_ok($$ INSERT INTO outreach.contact (external_id, first_name, birthdate) VALUES ('far', 'F', '300000-01-01') $$,
  'a write whose segment maintenance fails at run time commits');
SELECT is((SELECT maintenance FROM outreach.segment_overview WHERE name = 'aged'), 'failed',
  'the segment is marked failed in segment_overview');
SELECT ok((SELECT maintenance_error FROM outreach.segment_overview WHERE name = 'aged') LIKE '%out of range%',
  'with the error');
INSERT INTO outreach.contact (external_id, first_name, birthdate)
  VALUES ('thirty', 'T', (outreach.now() - interval '30 years 2 days')::date);
SELECT lives_ok($$ SELECT outreach.tick() $$, 'the tick goes on when a segment''s re-evaluation fails');
SELECT is((SELECT maintenance FROM outreach.segment_overview WHERE name = 'aged_deferred'), 'failed',
  'a deferred segment failing in the tick is marked failed');
UPDATE outreach.contact SET birthdate = '1990-01-01' WHERE external_id = 'far';
SELECT outreach.tick();
SELECT is((SELECT array_agg(maintenance ORDER BY name) FROM outreach.segment_overview WHERE name IN ('aged', 'aged_deferred')),
  '{ok,ok}', 'once the data is fixed, the tick repairs both');
SELECT is((SELECT array_agg(c.external_id ORDER BY c.external_id) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
           JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = 'aged'), '{thirty}',
  'and their members equal a fresh evaluation');

-- Defect 3: a registered table and the catalog.
CREATE SCHEMA ehr;
CREATE TABLE ehr.dx (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, patient_id bigint REFERENCES outreach.contact, icd text, extra text);
SELECT outreach.register_entity('ehr.dx', link_column => 'patient_id', name => 'dx');
INSERT INTO ehr.dx (patient_id, icd) VALUES (pg_temp.cid('x'), 'E11');
SELECT outreach.create_segment('dx_e11', 'contact where has dx where icd = ''E11''');
SELECT outreach.go_live('dx_e11');
SELECT throws_ok($$ DROP TABLE ehr.dx $$, '2BP01', 'table ehr.dx is registered as entity "dx"',
  'DROP TABLE of a registered entity is refused');
SELECT throws_ok($$ DROP SCHEMA ehr CASCADE $$, '2BP01', NULL, 'and so is dropping its schema');
-- a rename keeps the registration; a new table under the old name is not read
ALTER TABLE ehr.dx RENAME TO dx_old;
CREATE TABLE ehr.dx (id bigint, patient_id bigint, icd text);
INSERT INTO ehr.dx VALUES (1, pg_temp.cid('y'), 'E11');
INSERT INTO ehr.dx_old (patient_id, icd) VALUES (pg_temp.cid('none'), 'E11');
UPDATE outreach.contact SET first_name = first_name;
SELECT is((SELECT array_agg(c.external_id ORDER BY c.external_id) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
           JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = 'dx_e11'), '{none,x}',
  'after a rename the live segment reads the renamed table, not a new one under the old name');
SELECT is(ARRAY(SELECT c.external_id FROM outreach.evaluate('contact where has dx where icd = ''E11''') e
                JOIN outreach.contact c ON c.id = e ORDER BY 1), '{none,x}', 'and so does evaluate');
DROP TABLE ehr.dx;
-- a column dropped under a live segment: writes commit, the segment is marked failed
SELECT outreach.create_segment('dx_extra', 'contact where has dx where extra is empty');
SELECT outreach.go_live('dx_extra');
ALTER TABLE ehr.dx_old DROP COLUMN extra;
SELECT lives_ok($$ INSERT INTO ehr.dx_old (patient_id, icd) VALUES (pg_temp.cid('y'), 'E11') $$,
  'a write to a table whose column a live segment used commits');
SELECT is((SELECT maintenance FROM outreach.segment_overview WHERE name = 'dx_extra'), 'failed',
  'and that segment is marked failed');
-- the same for a deferred segment that the tick is the first to recompile
ALTER TABLE ehr.dx_old ADD COLUMN note text;
SELECT outreach.create_segment('dx_note', 'contact where has dx where note is empty');
SELECT outreach.set_segment_mode('dx_note', 'deferred');
SELECT outreach.go_live('dx_note');
INSERT INTO ehr.dx_old (patient_id, icd) VALUES (pg_temp.cid('y'), 'E12');
ALTER TABLE ehr.dx_old DROP COLUMN note;
SELECT lives_ok($$ SELECT outreach.tick() $$, 'the tick goes on when a deferred segment no longer compiles');
SELECT is((SELECT maintenance FROM outreach.segment_overview WHERE name = 'dx_note'), 'failed',
  'and marks it failed');
SELECT outreach.drop_segment('dx_note');
-- the state 0.2.0 allowed (the table dropped under the registry): every function still works
ALTER EVENT TRIGGER outreach_entity_table_dropped DISABLE;
DROP TABLE ehr.dx_old;
ALTER EVENT TRIGGER outreach_entity_table_dropped ENABLE;
SELECT lives_ok($$ UPDATE outreach.contact SET do_not_email = true WHERE external_id = 'x' $$,
  'an opt-out commits after the registered table was dropped (0.2.0: relation does not exist)');
SELECT lives_ok($$ SELECT outreach.stop('dx_e11') $$, 'stop works');
SELECT lives_ok($$ SELECT outreach.drop_segment('dx_e11'); SELECT outreach.drop_segment('dx_extra') $$, 'drop_segment works');
SELECT lives_ok($$ SELECT outreach.unregister_entity('dx') $$, 'unregister_entity works');
SELECT lives_ok($$ SELECT outreach.tick() $$, 'and the tick');

SELECT * FROM finish();
ROLLBACK;
