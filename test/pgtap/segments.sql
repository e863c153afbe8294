-- segments: lifecycle by name, maintenance by the triggers on every kind of write, static
-- and compound segments, deferred mode and the tick, time-dependent segments, history, and
-- every refused operation with its SQLSTATE.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(101);

CREATE FUNCTION pg_temp.cid(ext text) RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.members(seg text) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(c.external_id ORDER BY c.external_id), '{}') FROM outreach.segment_member m
  JOIN outreach.segment s ON s.id = m.segment_id JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = seg $$;

INSERT INTO outreach.contact (external_id, first_name, status, gender, birthdate) VALUES
  ('p1', 'Ann', 'active', 'female', '1950-03-01'), ('p2', 'Bob', 'active', 'male', '1980-05-05'),
  ('p3', 'Cy', 'inactive', 'male', '2008-06-01'), ('p4', 'Di', 'active', 'female', '1990-01-01');
INSERT INTO outreach.condition (patient_id, code, description) VALUES
  (pg_temp.cid('p1'), 'x', 'Hypermetropia'), (pg_temp.cid('p2'), 'x', 'Asthma');

-- creation
SELECT ok(outreach.create_segment('hyper', 'contact where status = ''active'' and has condition where description contains ''hypermetropia''') > 0,
  'create_segment returns the new id');
SELECT is((SELECT kind || '/' || status || '/' || mode FROM outreach.segment_overview WHERE name = 'hyper'),
  'dynamic/draft/immediate', 'a new query segment is dynamic, draft, immediate');
SELECT is(pg_temp.members('hyper'), '{}'::text[], 'a draft segment has no members');
SELECT throws_ok($$ SELECT outreach.create_segment('hyper', 'contact') $$, '42710', NULL, 'duplicate segment names are refused');
SELECT throws_ok($$ SELECT outreach.create_segment('  ', 'contact') $$, '22023', NULL, 'blank names are refused');
SELECT throws_ok($$ SELECT outreach.create_segment('nodef', NULL) $$, '22004', NULL, 'a dynamic segment needs a definition');
SELECT throws_ok($$ SELECT outreach.create_segment('bad', 'contact where') $$, '42601', NULL, 'syntax errors are reported');
SELECT throws_ok($$ SELECT outreach.create_segment('bad', 'contact where colour = ''red''') $$, '42703', NULL, 'unknown fields are reported');
SELECT ok(NOT EXISTS (SELECT 1 FROM outreach.segment WHERE name IN ('bad', 'nodef')), 'failed creations leave nothing behind');

-- going live evaluates once
SELECT lives_ok($$ SELECT outreach.go_live('hyper') $$, 'go_live');
SELECT is(pg_temp.members('hyper'), ARRAY['p1'], 'going live evaluates the segment');
SELECT is((SELECT count(*)::int FROM outreach.segment_change c JOIN outreach.segment s ON s.id = c.segment_id WHERE s.name = 'hyper' AND change = 'added'), 1,
  'going live writes the additions to the history');
SELECT ok((SELECT last_evaluated_at IS NOT NULL AND last_evaluation_duration IS NOT NULL FROM outreach.segment_overview WHERE name = 'hyper'),
  'the overview shows the last full evaluation');
SELECT throws_ok($$ SELECT outreach.go_live('hyper') $$, '55000', 'segment "hyper" is already live', 'going live twice is refused');
SELECT throws_ok($$ SELECT outreach.go_live('nope') $$, '42704', 'segment "nope" does not exist', 'unknown segment names are reported');

-- maintenance by the triggers
INSERT INTO outreach.condition (patient_id, code, description) VALUES (pg_temp.cid('p4'), 'y', 'hypermetropia, mild');
SELECT is(pg_temp.members('hyper'), ARRAY['p1','p4'], 'INSERT on a clinical table adds the contact');
UPDATE outreach.contact SET status = 'inactive' WHERE external_id = 'p1';
SELECT is(pg_temp.members('hyper'), ARRAY['p4'], 'UPDATE of the contact removes it');
UPDATE outreach.contact SET status = 'active' WHERE external_id = 'p1';
SELECT is(pg_temp.members('hyper'), ARRAY['p1','p4'], 'UPDATE back adds it again');
UPDATE outreach.condition SET patient_id = pg_temp.cid('p2') WHERE patient_id = pg_temp.cid('p4');
SELECT is(pg_temp.members('hyper'), ARRAY['p1','p2'], 'UPDATE of the link column affects the old and the new contact');
DELETE FROM outreach.condition WHERE patient_id = pg_temp.cid('p2') AND code = 'y';
SELECT is(pg_temp.members('hyper'), ARRAY['p1'], 'DELETE removes the contact');
DO $$ BEGIN
  EXECUTE format('COPY outreach.condition (patient_id, code, description) FROM PROGRAM %L',
                 format('printf "%s\tz\tHypermetropia\n"', pg_temp.cid('p2')));
END $$;
SELECT is(pg_temp.members('hyper'), ARRAY['p1','p2'], 'COPY adds the contact');
DELETE FROM outreach.condition WHERE code = 'z';
SELECT is((SELECT string_agg(change, ',' ORDER BY id) FROM outreach.segment_change c WHERE c.segment_id = (SELECT id FROM outreach.segment WHERE name = 'hyper')),
  'added,added,removed,added,added,removed,removed,added,removed', 'every change is in the history, in order');

-- history replays to current membership
SELECT is((SELECT array_agg(x ORDER BY x) FROM outreach.segment_members_at('hyper', clock_timestamp()) x),
  ARRAY[pg_temp.cid('p1')], 'segment_members_at(now) equals the current members');
SELECT is((SELECT array_agg(x ORDER BY x) FROM outreach.segment_members_at('hyper', '2000-01-01') x), NULL,
  'segment_members_at before anything happened is empty');
SELECT is((SELECT array_agg(external_id ORDER BY external_id) FROM outreach.segment_members WHERE segment = 'hyper'),
  ARRAY['p1'], 'segment_members joins members to contacts');

-- TRUNCATE re-evaluates fully
CREATE TEMP TABLE saved_conditions AS SELECT * FROM outreach.condition;
TRUNCATE outreach.condition;
SELECT is(pg_temp.members('hyper'), '{}'::text[], 'TRUNCATE empties segments that need the rows');
INSERT INTO outreach.condition SELECT * FROM saved_conditions;
SELECT is(pg_temp.members('hyper'), ARRAY['p1'], 'multi-row INSERT brings them back');

-- compound and `in segment`
SELECT outreach.create_segment('asthma', 'contact where has condition where description = ''Asthma''');
SELECT outreach.go_live('asthma');
SELECT is(pg_temp.members('asthma'), ARRAY['p2'], 'second segment live');
SELECT outreach.create_segment('either', 'segment ''hyper'' union segment ''asthma''');
SELECT is((SELECT kind FROM outreach.segment WHERE name = 'either'), 'compound', 'a query of segment terms makes a compound segment');
SELECT outreach.go_live('either');
SELECT is(pg_temp.members('either'), ARRAY['p1','p2'], 'compound segment evaluated');
SELECT outreach.create_segment('asthma_women', 'contact where in segment ''asthma'' and gender = ''female''');
SELECT outreach.go_live('asthma_women');
INSERT INTO outreach.condition (patient_id, code, description) VALUES (pg_temp.cid('p4'), 'a', 'Asthma');
SELECT is(pg_temp.members('asthma'), ARRAY['p2','p4'], 'base segment follows the insert');
SELECT is(pg_temp.members('either'), ARRAY['p1','p2','p4'], 'the change cascades to the compound segment');
SELECT is(pg_temp.members('asthma_women'), ARRAY['p4'], 'the change cascades to `in segment`');
DELETE FROM outreach.condition WHERE description = 'Asthma';
SELECT is(pg_temp.members('either'), ARRAY['p1'], 'removals cascade too');
SELECT is(pg_temp.members('asthma_women'), '{}'::text[], 'removals cascade to `in segment`');

-- refusals around dependencies
SELECT throws_ok($$ SELECT outreach.stop('asthma') $$, '2BP01', 'segment "asthma" is used by live segments', 'stop is refused while live segments use it');
SELECT throws_ok($$ SELECT outreach.drop_segment('asthma') $$, '2BP01', 'segment "asthma" is used by other segments', 'drop is refused while segments use it');
SELECT throws_like($$ SELECT outreach.rename_segment('asthma', 'asthma2') $$, '%other segments refer to it%', 'rename is refused while segments refer to it');
CREATE FUNCTION pg_temp.err_detail(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN NULL; EXCEPTION WHEN others THEN
  DECLARE d text; BEGIN GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL; RETURN d; END; END $$;
SELECT is(pg_temp.err_detail($$ SELECT outreach.stop('asthma') $$), 'Live segments that depend on it: asthma_women, either.',
  'the refusal names the dependents');
SELECT lives_ok($$ SELECT outreach.stop('asthma', cascade => true) $$, 'stop with cascade');
SELECT is((SELECT string_agg(name || '=' || status, ',' ORDER BY name) FROM outreach.segment WHERE name IN ('asthma', 'either', 'asthma_women')),
  'asthma=stopped,asthma_women=stopped,either=stopped', 'cascade stops the dependents');
SELECT is(pg_temp.members('either'), '{}'::text[], 'a stopped segment has no members');
SELECT throws_ok($$ SELECT outreach.stop('asthma') $$, '55000', 'segment "asthma" is not live', 'stopping a stopped segment is refused');
SELECT throws_ok($$ SELECT outreach.go_live('either') $$, '55000', 'segment "either" depends on segments that are not live',
  'going live before the segments it uses is refused');
SELECT lives_ok($$ SELECT outreach.go_live('asthma'); SELECT outreach.go_live('either') $$, 're-go-live');
SELECT is(pg_temp.members('either'), ARRAY['p1'], 're-going live evaluates again');
SELECT lives_ok($$ SELECT outreach.drop_segment('asthma', cascade => true) $$, 'drop with cascade');
SELECT ok(NOT EXISTS (SELECT 1 FROM outreach.segment WHERE name IN ('asthma', 'either', 'asthma_women')), 'cascade drops the dependents');
INSERT INTO outreach.condition (patient_id, code, description) VALUES (pg_temp.cid('p4'), 'a', 'Asthma');
SELECT is(pg_temp.members('hyper'), ARRAY['p1'], 'maintenance goes on after dropping segments');

-- rename, alter
SELECT lives_ok($$ SELECT outreach.rename_segment('hyper', 'farsighted') $$, 'rename');
SELECT throws_ok($$ SELECT outreach.rename_segment('hyper', 'x') $$, '42704', NULL, 'the old name is gone');
SELECT outreach.create_static_segment('vip');
SELECT throws_ok($$ SELECT outreach.rename_segment('farsighted', 'vip') $$, '42710', NULL, 'renaming onto an existing name is refused');
SELECT lives_ok($$ SELECT outreach.alter_segment('farsighted', 'contact where has condition where description contains ''asthma''') $$,
  'alter_segment on a live segment');
SELECT is(pg_temp.members('farsighted'), ARRAY['p4'], 'a live segment re-evaluates on a new definition');
INSERT INTO outreach.condition (patient_id, code, description) VALUES (pg_temp.cid('p1'), 'a', 'asthma');
SELECT is(pg_temp.members('farsighted'), ARRAY['p1','p4'], 'triggers follow the new definition');
SELECT throws_ok($$ SELECT outreach.alter_segment('vip', 'contact') $$, '42809', NULL, 'a static segment has no definition to alter');

-- static segments
SELECT is(outreach.add_members('vip', ARRAY[pg_temp.cid('p1'), pg_temp.cid('p2')]), 2::bigint, 'add_members by ids');
SELECT is(outreach.add_members('vip', ARRAY[pg_temp.cid('p1')]), 0::bigint, 'adding a member twice adds nothing');
SELECT throws_ok($$ SELECT outreach.add_members('vip', ARRAY[-5]) $$, '23503', 'contacts do not exist: -5', 'unknown contact ids are refused');
SELECT throws_ok($$ SELECT outreach.add_members('farsighted', ARRAY[1]) $$, '42809', NULL, 'members of a dynamic segment cannot be added by hand');
SELECT is(outreach.remove_members('vip', ARRAY[pg_temp.cid('p2')]), 1::bigint, 'remove_members by ids');
SELECT is(outreach.add_members('vip', 'contact where gender = ''female'''::outreach.segment_query), 1::bigint, 'add_members by a one-off query');
SELECT is(pg_temp.members('vip'), ARRAY['p1','p4'], 'static members');
SELECT outreach.go_live('vip');
SELECT outreach.create_segment('vip_asthma', 'segment ''vip'' intersect segment ''farsighted''');
SELECT outreach.go_live('vip_asthma');
SELECT is(pg_temp.members('vip_asthma'), ARRAY['p1','p4'], 'compound over a static segment');
SELECT outreach.remove_members('vip', 'contact where external_id = ''p4'''::outreach.segment_query);
SELECT is(pg_temp.members('vip_asthma'), ARRAY['p1'], 'hand changes of a live static segment cascade');

-- deferred mode and the tick
SELECT lives_ok($$ SELECT outreach.set_segment_mode('farsighted', 'deferred') $$, 'set_segment_mode deferred');
SELECT throws_ok($$ SELECT outreach.set_segment_mode('farsighted', 'lazy') $$, '23514', NULL, 'unknown modes are refused');
DELETE FROM outreach.condition WHERE patient_id = pg_temp.cid('p1') AND description = 'asthma';
SELECT is(pg_temp.members('farsighted'), ARRAY['p1','p4'], 'a deferred segment does not change in the writing transaction');
SELECT is((SELECT pending_changes FROM outreach.segment_overview WHERE name = 'farsighted'), 1::bigint, 'the affected contact is pending');
SELECT outreach.tick('2030-01-01 12:00+00');
SELECT is(pg_temp.members('farsighted'), ARRAY['p4'], 'the tick applies pending changes');
SELECT is(pg_temp.members('vip_asthma'), '{}'::text[], 'and cascades them');
SELECT is((SELECT changed_at FROM outreach.segment_change WHERE change = 'removed' ORDER BY id DESC LIMIT 1), '2030-01-01 12:00+00'::timestamptz,
  'changes made by the tick carry its clock');
SELECT is((SELECT deferred_contacts FROM outreach.tick_run ORDER BY id DESC LIMIT 1), 1::bigint, 'the tick run is recorded');
SELECT is(current_setting('outreach.now', true), '', 'the tick restores the clock');
TRUNCATE outreach.condition;
SELECT is((SELECT pending_full_evaluation FROM outreach.segment_overview WHERE name = 'farsighted'), true, 'TRUNCATE marks a deferred segment for a full evaluation');
SELECT outreach.tick('2030-01-01 12:01+00');
SELECT is(pg_temp.members('farsighted'), '{}'::text[], 'the tick evaluates it fully');
INSERT INTO outreach.condition SELECT * FROM saved_conditions WHERE description = 'Asthma';
SELECT lives_ok($$ SELECT outreach.set_segment_mode('farsighted', 'immediate') $$, 'back to immediate');
SELECT is(pg_temp.members('farsighted'), ARRAY['p2'], 'switching to immediate applies what was pending');

-- time-dependent segments
SET LOCAL outreach.now = '2026-01-01 00:00+00';
SELECT outreach.create_segment('adults', 'contact where age >= 18', 'UTC');
SELECT outreach.go_live('adults');
RESET outreach.now;
SELECT is(pg_temp.members('adults'), ARRAY['p1','p2','p4'], 'p3 is 17 on 2026-01-01');
SELECT is((SELECT time_dependent FROM outreach.segment_overview WHERE name = 'adults'), true, 'age makes a segment time-dependent');
SELECT outreach.set_segment_schedule('adults', '7 days');
SELECT outreach.tick('2026-06-02 00:00+00');
SELECT is(pg_temp.members('adults'), ARRAY['p1','p2','p3','p4'], 'the tick re-evaluates a due time-dependent segment');
UPDATE outreach.contact SET birthdate = '2020-01-01' WHERE external_id = 'p2';
SELECT is(pg_temp.members('adults'), ARRAY['p1','p3','p4'], 'writes still update time-dependent segments at once');

-- registry hooks
CREATE TABLE public.segments_test_lab (id bigint PRIMARY KEY, enc bigint REFERENCES outreach.encounter, result text);
SELECT outreach.register_entity('public.segments_test_lab', link_column => 'enc', name => 'lab');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.segments_test_lab'::regclass AND tgname LIKE 'outreach_membership_%'), 4,
  'registering a table attaches the four maintenance triggers');
SELECT outreach.create_segment('lab_pos', 'contact where has encounter where has lab where result = ''pos''');
SELECT outreach.go_live('lab_pos');
INSERT INTO outreach.encounter (id, patient_id, class) OVERRIDING SYSTEM VALUE VALUES (900001, pg_temp.cid('p4'), 'ambulatory');
INSERT INTO public.segments_test_lab VALUES (1, 900001, 'pos');
SELECT is(pg_temp.members('lab_pos'), ARRAY['p4'], 'a user table linked through encounter maintains membership');
UPDATE public.segments_test_lab SET result = 'neg';
SELECT is(pg_temp.members('lab_pos'), '{}'::text[], 'and its updates too');
SELECT throws_ok($$ SELECT outreach.unregister_entity('lab') $$, '2BP01', NULL, 'an entity used by segments cannot be unregistered');
SELECT outreach.drop_segment('lab_pos');
SELECT lives_ok($$ SELECT outreach.unregister_entity('lab') $$, 'unused entity unregisters');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.segments_test_lab'::regclass AND tgname LIKE 'outreach_membership_%'), 0,
  'unregistering detaches the triggers');

-- accounts reach contacts through contact.account_id
INSERT INTO outreach.account (name, kind) VALUES ('Smiths', 'other');
UPDATE outreach.contact SET account_id = (SELECT id FROM outreach.account WHERE name = 'Smiths') WHERE external_id IN ('p1', 'p3');
SELECT outreach.create_segment('households', 'contact where has account where kind = ''household''');
SELECT outreach.go_live('households');
SELECT is(pg_temp.members('households'), '{}'::text[], 'no household yet');
UPDATE outreach.account SET kind = 'household' WHERE name = 'Smiths';
SELECT is(pg_temp.members('households'), ARRAY['p1','p3'], 'an account change reaches its contacts');

-- the pg_cron job
SELECT ok(outreach.schedule_tick() > 0, 'schedule_tick installs a job');
SELECT is((SELECT schedule || ' ' || command FROM cron.job WHERE jobname = 'outreach-tick'), '* * * * * SELECT outreach.tick()',
  'the job runs the tick every minute');
SELECT is(outreach.unschedule_tick(), true, 'unschedule_tick removes it');
SELECT is(outreach.unschedule_tick(), false, 'unscheduling twice reports there was none');

SELECT throws_ok($$ SELECT outreach.set_segment_mode('vip', 'deferred') $$, '42809', NULL, 'a static segment has no maintenance mode');
SELECT throws_ok($$ SELECT outreach.create_static_segment('vip') $$, '42710', NULL, 'static segment names are unique too');
SELECT throws_ok($$ SELECT outreach.tick(NULL) $$, '22004', NULL, 'the tick needs a time');
SELECT throws_ok($$ SELECT * FROM outreach.consume_segment_changes('', 10) $$, '22023', NULL, 'a consumer needs a name');
SELECT throws_ok($$ SELECT * FROM outreach.consume_segment_changes('r', 0) $$, '22023', NULL, 'a consumer reads at least one row');
SELECT throws_ok($$ SELECT outreach.set_segment_schedule('adults', '10 seconds') $$, '23514', NULL, 'schedules under a minute are refused');
SELECT throws_ok($$ SELECT outreach._membership_trigger() $$, '39P01', NULL, 'the trigger function cannot be called directly');

SELECT * FROM finish();
ROLLBACK;
