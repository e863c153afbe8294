-- hardening: the reproductions of issue 19 (defects 1-4, 7-9) and of the compiler side of
-- issue 20, each a test of its class.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(13);

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
SELECT is((SELECT array_agg(c.external_id ORDER BY 1) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
           JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = 'notlatest'),
  pg_temp.ext($$contact where not (latest(immunization.code) != 'x')$$),
  'a live segment under not equals a fresh evaluation after ordinary writes');

SELECT * FROM finish();
ROLLBACK;
