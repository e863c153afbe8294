-- segment_storage: how membership is stored and applied at scale: the pending rows of
-- deferred segments (one per statement), what deleting a segment removes now that members
-- and history have no foreign key, bulk statements applied through one cursor, and compound
-- queries over contacts compiled to one scan (with NULL-safe except).
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(26);
SET LOCAL outreach.now = '2026-01-01 00:00+00';

CREATE FUNCTION pg_temp.members(seg text) RETURNS bigint[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(m.contact_id ORDER BY m.contact_id), '{}') FROM outreach.segment_member m
  JOIN outreach.segment s ON s.id = m.segment_id WHERE s.name = seg $$;
CREATE FUNCTION pg_temp.evaluated(seg text) RETURNS bigint[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(e ORDER BY e), '{}') FROM outreach.evaluate((SELECT definition FROM outreach.segment WHERE name = seg)) e $$;

-- 3,000 contacts, a third with a condition 'a'
INSERT INTO outreach.contact (external_id, status, city)
SELECT 's' || g, CASE WHEN g % 7 = 0 THEN 'inactive' ELSE 'active' END,
       CASE WHEN g % 10 = 0 THEN NULL WHEN g % 3 = 0 THEN 'Shelbyville' ELSE 'Springfield' END
FROM generate_series(1, 3000) g;
INSERT INTO outreach.condition (patient_id, code, description)
SELECT c.id, 'a', 'A' FROM outreach.contact c WHERE c.external_id LIKE 's%' AND c.id % 3 = 0;

SELECT outreach.create_segment('has a', $$contact where has condition where code = 'a'$$);
SELECT outreach.create_segment('has b', $$contact where has condition where code = 'b'$$);
SELECT outreach.create_segment('has a or b', $$contact where has condition where code in ('a', 'b')$$);
SELECT outreach.go_live('has a');
SELECT outreach.go_live('has b');
SELECT outreach.go_live('has a or b');

-- a bulk statement (more than 1,000 contacts) is evaluated once, through a cursor
INSERT INTO outreach.condition (patient_id, code, description)
SELECT c.id, 'b', 'B' FROM outreach.contact c WHERE c.external_id LIKE 's%' AND c.id % 2 = 0;
SELECT is(cardinality(pg_temp.members('has b')), 1500, 'a 1,500-contact INSERT adds 1,500 members');
SELECT is(pg_temp.members('has b'), pg_temp.evaluated('has b'), 'the bulk-applied members equal a fresh evaluation');
SELECT is((SELECT count(*) FROM outreach.segment_change c JOIN outreach.segment s ON s.id = c.segment_id
           WHERE s.name = 'has b' AND c.change = 'added'), 1500::bigint, 'and each has its history row');
DELETE FROM outreach.condition WHERE code = 'b';
SELECT is(pg_temp.members('has b'), '{}'::bigint[], 'a bulk DELETE removes them all');

-- deferred: one pending row per statement, whatever the number of segments and contacts
SELECT outreach.set_segment_mode('has a', 'deferred');
SELECT outreach.set_segment_mode('has a or b', 'deferred');
DELETE FROM outreach.condition WHERE code = 'a' AND patient_id % 2 = 0;
SELECT is((SELECT count(*) FROM outreach.segment_pending), 1::bigint, 'one pending row for the statement');
SELECT is((SELECT segment_ids FROM outreach.segment_pending),
          (SELECT array_agg(id ORDER BY id) FROM outreach.segment WHERE name IN ('has a', 'has a or b')),
          'naming both deferred segments');
SELECT is((SELECT pending_changes FROM outreach.segment_overview WHERE name = 'has a'), 500::bigint,
          'segment_overview counts the pending contacts');
SELECT is(cardinality(pg_temp.members('has a')), 1000, 'nothing applied yet');
UPDATE outreach.condition SET code = 'a' WHERE code = 'a' AND patient_id % 2 = 1 AND patient_id % 5 = 0;
SELECT is((SELECT count(*) FROM outreach.segment_pending), 2::bigint, 'a second statement, a second row');
SELECT is((SELECT pending_changes FROM outreach.segment_overview WHERE name = 'has a'), 600::bigint,
          'pending contacts are counted once per contact');
SELECT outreach.stop('has a or b');
SELECT is((SELECT array_agg(DISTINCT s ORDER BY s) FROM outreach.segment_pending p, unnest(p.segment_ids) s),
          (SELECT array_agg(id) FROM outreach.segment WHERE name = 'has a'), 'stop takes the segment out of the pending rows');
SELECT is((SELECT pending_changes FROM outreach.segment_overview WHERE name = 'has a'), 600::bigint,
          'and leaves the other segment''s pending contacts');
SELECT outreach.tick('2026-01-01 00:01+00');
SELECT is(cardinality(pg_temp.members('has a')), 500, 'the tick applies them');
SELECT is(pg_temp.members('has a'), pg_temp.evaluated('has a'), 'equal to a fresh evaluation');
SELECT is((SELECT count(*) FROM outreach.segment_pending), 0::bigint, 'and nothing is left pending');
SELECT is((SELECT deferred_contacts FROM outreach.tick_run ORDER BY id DESC LIMIT 1), 600::bigint, 'the run counts the contacts');

-- deleting a segment removes its members, history and pending rows (no foreign key does it)
DELETE FROM outreach.condition WHERE code = 'a' AND patient_id % 9 = 0;
SELECT ok((SELECT count(*) FROM outreach.segment_pending) > 0, 'something pending for "has a"');
SELECT outreach.stop('has a');
SELECT outreach.drop_segment('has a');
SELECT is((SELECT count(*) FROM outreach.segment_change c WHERE NOT EXISTS (SELECT 1 FROM outreach.segment s WHERE s.id = c.segment_id)),
          0::bigint, 'drop_segment removes the history');
SELECT is((SELECT count(*) FROM outreach.segment_pending), 0::bigint, 'and the pending rows');
DELETE FROM outreach.segment WHERE name = 'has b';
SELECT is((SELECT count(*) FROM outreach.segment_member m WHERE NOT EXISTS (SELECT 1 FROM outreach.segment s WHERE s.id = m.segment_id))
          + (SELECT count(*) FROM outreach.segment_change c WHERE NOT EXISTS (SELECT 1 FROM outreach.segment s WHERE s.id = c.segment_id)),
          0::bigint, 'a DELETE of a segment row by hand removes members and history too');

-- compound over contacts: one scan, NULL-safe except
SELECT unalike(outreach.compile($$(contact where has condition where code = 'a') union (contact where status = 'active')
                                 except (contact where status = 'inactive')$$), '%UNION%',
              'a set operation over contacts compiles to one scan');
SELECT is((SELECT array_agg(e ORDER BY e) FROM outreach.evaluate(
             $$(contact where external_id starts with 's') except (contact where city = 'Shelbyville')$$::outreach.segment_query) e),
          (SELECT array_agg(id ORDER BY id) FROM outreach.contact WHERE external_id LIKE 's%' AND city IS DISTINCT FROM 'Shelbyville'),
          'except keeps the contacts whose filter is NULL (no city)');
SELECT is((SELECT array_agg(e ORDER BY e) FROM outreach.evaluate(
             $$((contact where status = 'active') union (contact where status = 'inactive'))
               intersect (contact where has condition where code = 'a')$$::outreach.segment_query) e),
          (SELECT array_agg(c.id ORDER BY c.id) FROM outreach.contact c WHERE c.status IN ('active', 'inactive')
             AND EXISTS (SELECT 1 FROM outreach.condition d WHERE d.patient_id = c.id AND d.code = 'a')),
          'union and intersect combine as OR and AND');

-- has-terms of the same relation under OR (or a union) merge into one EXISTS
SELECT is((SELECT count(*)::int FROM regexp_matches(outreach.compile(
             $$contact where has condition where code = 'a' or status = 'inactive' or has condition where code = 'b'$$), 'EXISTS', 'g')),
          1, 'two has condition terms under OR compile to one EXISTS');
SELECT is((SELECT count(*)::int FROM regexp_matches(outreach.compile(
             $$(contact where has condition where code = 'a') union (contact where has condition where code = 'b')$$), 'EXISTS', 'g')),
          1, 'and so do two unioned contact terms');
SELECT is((SELECT array_agg(e ORDER BY e) FROM outreach.evaluate(
             $$contact where external_id starts with 's' and (has condition where code = 'a' or city = 'Shelbyville' or has condition where code = 'zzz')$$::outreach.segment_query) e),
          (SELECT array_agg(c.id ORDER BY c.id) FROM outreach.contact c WHERE c.external_id LIKE 's%'
             AND (c.city = 'Shelbyville' OR EXISTS (SELECT 1 FROM outreach.condition d WHERE d.patient_id = c.id AND d.code IN ('a', 'zzz')))),
          'the merged form returns the same contacts');

SELECT * FROM finish();
ROLLBACK;
