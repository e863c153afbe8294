-- Journeys: definition API, lifecycle, enrollment and re-entry rules, every step kind,
-- the tick (failures, stopped journeys, statistics) and the analytics views.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT * FROM no_plan();

-- Fixture ---------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.cid(ext text) RETURNS bigint LANGUAGE sql AS
  $$ SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.cids(VARIADIC ext text[]) RETURNS bigint[] LANGUAGE sql AS
  $$ SELECT array_agg(id ORDER BY id) FROM outreach.contact WHERE external_id = ANY (ext) $$;
CREATE FUNCTION pg_temp.enr(journey text, ext text) RETURNS outreach.enrollment LANGUAGE sql AS $$
  SELECT e.* FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
  WHERE j.name = journey AND e.contact_id = pg_temp.cid(ext) ORDER BY e.id DESC LIMIT 1 $$;
CREATE FUNCTION pg_temp.path(journey text, ext text) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(s.step_key || ':' || s.outcome, ' ' ORDER BY s.id)
  FROM outreach.enrollment_step s JOIN outreach.enrollment e ON e.id = s.enrollment_id
  JOIN outreach.journey j ON j.id = e.journey_id
  WHERE j.name = journey AND e.contact_id = pg_temp.cid(ext) $$;
-- A delivery worker: claims what is due at `at` and reports it sent.
CREATE FUNCTION pg_temp.send_all(at text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE m outreach.message; n int := 0;
BEGIN
  PERFORM set_config('outreach.now', at, true);
  FOR m IN SELECT * FROM outreach.claim_messages('test worker', 1000) LOOP
    PERFORM outreach.report_delivery(m.id, 'sent');
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
CREATE FUNCTION pg_temp.tick(at text) RETURNS outreach.journey_tick_run LANGUAGE sql AS
  $$ SELECT outreach.tick_journeys(at::timestamptz) $$;

INSERT INTO outreach.contact (external_id, first_name, email, phone, address_line, city, postal_code, country, time_zone)
SELECT 'jt' || i, 'Pat' || i, 'pat' || i || '@example.org', '+1555010000' || i, i || ' Main St', 'Springfield', '12345', 'US',
       CASE WHEN i = 2 THEN 'America/New_York' ELSE 'UTC' END
FROM generate_series(1, 9) i;
UPDATE outreach.contact SET email = NULL WHERE external_id = 'jt3';

SELECT outreach.create_template('jt_invite', 'email',
  'Hello {{contact.first_name}}, book your eye exam. <a href="{{unsubscribe_url}}">Unsubscribe</a> {{sender.postal_address}}',
  subject => 'Your eye exam', sender_postal_address => '1 Clinic Way, Springfield');
SELECT outreach.create_template('jt_remind', 'sms', 'Reminder {{contact.first_name}}: book your eye exam.');
SELECT outreach.create_template('jt_letter', 'letter', 'Dear {{contact.first_name}}, please book your eye exam.');
SELECT outreach.create_template('jt_receipt', 'email', 'Your appointment is confirmed.', subject => 'Confirmed',
                                message_class => 'transactional');
SELECT outreach.create_subscription_list('jt_news');

SELECT outreach.create_static_segment(n) FROM unnest(ARRAY['jt_audience', 'jt_vip', 'jt_optout', 'jt_tagged', 'jt_draft']) n;
SELECT outreach.go_live(n) FROM unnest(ARRAY['jt_audience', 'jt_vip', 'jt_optout', 'jt_tagged']) n;

-- Definition API ------------------------------------------------------------------------------
SELECT throws_ok($$ SELECT outreach.create_journey('jt_x', 'no such segment') $$, '42704',
  'audience segment "no such segment" does not exist', 'create_journey refuses an unknown audience');
SELECT throws_ok($$ SELECT outreach.create_journey('jt_x', 'jt_audience', suppression => 'nope') $$, '42704',
  'suppression segment "nope" does not exist', 'create_journey refuses an unknown suppression segment');
SELECT throws_ok($$ SELECT outreach.create_journey('jt_x', 'jt_audience', message_class => 'spam') $$, '23514',
  NULL, 'message_class is marketing or transactional');
SELECT throws_ok($$ SELECT outreach.create_journey('jt_x', 'jt_audience', time_zone => 'Mars/Olympus') $$, '23514',
  NULL, 'the time zone must be known');
SELECT throws_ok($$ SELECT outreach.create_journey('jt_x', 'jt_audience', starts_at => '2030-02-01', ends_at => '2030-01-01') $$,
  '23514', NULL, 'starts_at must come before ends_at');
SELECT lives_ok($$ SELECT outreach.create_journey('jt_x', 'jt_audience') $$, 'create_journey makes a draft journey');
SELECT is((SELECT status FROM outreach.journey WHERE name = 'jt_x'), 'draft', 'a new journey is a draft');
SELECT throws_ok($$ SELECT outreach.create_journey('jt_x', 'jt_audience') $$, '42710',
  'journey "jt_x" already exists', 'journey names are unique');
SELECT throws_ok($$ SELECT outreach.add_step('jt_nope', 'a', 'end') $$, '42704',
  'journey "jt_nope" does not exist', 'add_step names the unknown journey');
SELECT throws_ok($$ SELECT outreach.add_step('jt_x', 'a', 'teleport') $$, '23514', NULL, 'add_step refuses an unknown kind');
SELECT lives_ok($$ SELECT outreach.add_step('jt_x', 'a', 'end') $$, 'add_step adds a step');
SELECT is((SELECT entry_step FROM outreach.journey WHERE name = 'jt_x'), 'a', 'the first step added is the entry step');
SELECT throws_ok($$ SELECT outreach.add_step('jt_x', 'a', 'end') $$, '42710',
  'journey "jt_x" already has a step "a"', 'step keys are unique per journey');
SELECT throws_ok($$ SELECT outreach.stop_journey('jt_x') $$, '55000', 'journey "jt_x" is draft, not live',
  'only a live journey can be stopped');
SELECT lives_ok($$ SELECT outreach.drop_journey('jt_x') $$, 'a draft journey can be dropped');

-- Validation: every problem, reported at once -------------------------------------------------
SELECT outreach.create_journey('jt_bad', 'jt_draft', subscription_list => 'no_list', message_class => 'transactional');
SELECT outreach.add_step('jt_bad', 'start', 'email', template => 'jt_invite', next => 'nowhere');
SELECT outreach.add_step('jt_bad', 'no_tpl', 'sms');
SELECT outreach.add_step('jt_bad', 'ghost_tpl', 'letter', template => 'no such template');
SELECT outreach.add_step('jt_bad', 'wrong_channel', 'sms', template => 'jt_letter');
SELECT outreach.add_step('jt_bad', 'w0', 'wait');
SELECT outreach.add_step('jt_bad', 'w_neg', 'wait', duration => '-1 day');
SELECT outreach.add_step('jt_bad', 'wu', 'wait_until', weekdays => '{0,8}');
SELECT outreach.add_step('jt_bad', 'wu_empty', 'wait_until', from_time => '09:00', until_time => '09:00');
SELECT outreach.add_step('jt_bad', 'bi_none', 'branch_interaction');
SELECT outreach.add_step('jt_bad', 'bi_wait', 'branch_interaction', after_step => 'w0', interaction => 'opened',
                         timeout => '1 day', yes => 'e', no => 'e');
SELECT outreach.add_step('jt_bad', 'bi_letter', 'branch_interaction', after_step => 'ghost_tpl', interaction => 'opened',
                         timeout => '1 day', yes => 'e', no => 'e');
SELECT outreach.add_step('jt_bad', 'bi_later', 'branch_interaction', after_step => 'later_mail', interaction => 'clicked',
                         timeout => '1 day', yes => 'later_mail', no => 'e');
SELECT outreach.add_step('jt_bad', 'later_mail', 'email', template => 'jt_receipt', next => 'e');
SELECT outreach.add_step('jt_bad', 'bi_ghost', 'branch_interaction', after_step => 'ghost', interaction => 'opened',
                         timeout => '1 day', yes => 'e', no => 'e');
SELECT outreach.add_step('jt_bad', 'bs', 'branch_segment', segment => 'no such segment', next => 'e');
SELECT outreach.add_step('jt_bad', 'bs_none', 'branch_segment');
SELECT outreach.add_step('jt_bad', 'sp', 'split', percent => 100, yes => 'loop_a', no => 'e');
SELECT outreach.add_step('jt_bad', 'loop_a', 'add_to_segment', segment => 'jt_tagged', next => 'loop_b');
SELECT outreach.add_step('jt_bad', 'loop_b', 'remove_from_segment', segment => 'jt_audience', next => 'loop_a');
SELECT outreach.add_step('jt_bad', 'seg_missing', 'add_to_segment', next => 'e');
SELECT outreach.add_step('jt_bad', 'sub', 'subscribe', list => 'nope', next => 'e');
SELECT outreach.add_step('jt_bad', 'unsub', 'unsubscribe');
SELECT outreach.add_step('jt_bad', 'e', 'end', next => 'start', yes => 'start');

SELECT set_eq(
  $$ SELECT coalesce(step, '-') || ': ' || problem FROM outreach.validate_journey('jt_bad') $$,
  ARRAY[
    '-: audience segment "jt_draft" is draft, not live',
    '-: subscription list "no_list" does not exist',
    'start: next step "nowhere" does not exist',
    'start: template "jt_invite" is a marketing template in a transactional journey',
    'no_tpl: unreachable from the entry step "start"',
    'no_tpl: an sms step needs a template',
    'ghost_tpl: unreachable from the entry step "start"',
    'ghost_tpl: template "no such template" does not exist',
    'wrong_channel: unreachable from the entry step "start"',
    'wrong_channel: template "jt_letter" is for letter, not sms',
    'wrong_channel: template "jt_letter" is a marketing template in a transactional journey',
    'w0: unreachable from the entry step "start"',
    'w0: a wait step needs a positive duration',
    'w_neg: unreachable from the entry step "start"',
    'w_neg: a wait step needs a positive duration',
    'wu: unreachable from the entry step "start"',
    'wu: a wait_until step needs a from_time (the local time of day to wait for)',
    'wu: weekdays must be ISO day numbers 1 (Monday) to 7 (Sunday)',
    'wu_empty: unreachable from the entry step "start"',
    'wu_empty: the window from_time .. until_time is empty',
    'bi_none: unreachable from the entry step "start"',
    'bi_none: a branch_interaction step needs a yes step',
    'bi_none: a branch_interaction step needs a no step',
    'bi_none: a branch_interaction step needs an interaction (opened or clicked)',
    'bi_none: a branch_interaction step needs a positive timeout',
    'bi_none: a branch_interaction step needs after_step (the earlier message step)',
    'bi_wait: unreachable from the entry step "start"',
    'bi_wait: branches on step "w0", which is a wait step, not a message',
    'bi_letter: unreachable from the entry step "start"',
    'bi_letter: branches on letter step "ghost_tpl": letters report no opens or clicks',
    'bi_later: unreachable from the entry step "start"',
    'bi_later: branches on step "later_mail", which never comes before it',
    'later_mail: unreachable from the entry step "start"',
    'bi_ghost: unreachable from the entry step "start"',
    'bi_ghost: after_step "ghost" does not exist',
    'bs: unreachable from the entry step "start"',
    'bs: a branch_segment step needs a yes step',
    'bs: a branch_segment step needs a no step',
    'bs: a branch_segment step takes yes and no, not next',
    'bs: segment "no such segment" does not exist',
    'bs_none: unreachable from the entry step "start"',
    'bs_none: a branch_segment step needs a yes step',
    'bs_none: a branch_segment step needs a no step',
    'bs_none: a branch_segment step needs a segment',
    'sp: unreachable from the entry step "start"',
    'sp: a split step needs a percent between 0 and 100 (exclusive)',
    'loop_a: unreachable from the entry step "start"',
    'loop_b: unreachable from the entry step "start"',
    'seg_missing: unreachable from the entry step "start"',
    'seg_missing: an add_to_segment step needs a segment',
    'sub: unreachable from the entry step "start"',
    'sub: subscription list "nope" does not exist',
    'unsub: unreachable from the entry step "start"',
    'unsub: an unsubscribe step needs a list',
    'e: unreachable from the entry step "start"',
    'e: only branch and split steps have yes and no steps',
    'e: an end step has no next step',
    'loop_a: cycle without a wait: loop_a -> loop_b -> loop_a'
  ],
  'validate_journey reports every problem of the graph');

SELECT throws_like($$ SELECT outreach.launch_journey('jt_bad') $$, 'journey "jt_bad" cannot go live',
  'launch refuses an invalid journey');
SELECT is((SELECT status FROM outreach.journey WHERE name = 'jt_bad'), 'draft', 'a refused launch leaves the journey a draft');
CREATE FUNCTION pg_temp.launch_detail(j text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
  PERFORM outreach.launch_journey(j);
  RETURN NULL;
EXCEPTION WHEN invalid_object_definition THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  RETURN d;
END $$;
SELECT alike(pg_temp.launch_detail('jt_bad'), '58 problem(s):%step "e": an end step has no next step%',
  'the launch error lists every problem in its detail');

SELECT outreach.create_journey('jt_empty', 'jt_audience', ends_at => '2000-01-01');
SELECT set_eq($$ SELECT problem FROM outreach.validate_journey('jt_empty') $$,
  ARRAY['the journey has no steps', 'the journey ended at ' || '2000-01-01'::timestamptz],
  'a journey needs steps and an end in the future');
SELECT outreach.create_journey('jt_selfsup', 'jt_audience', suppression => 'jt_audience');
SELECT outreach.add_step('jt_selfsup', 'a', 'end');
SELECT outreach.set_entry_step('jt_selfsup', 'zz');
SELECT set_eq($$ SELECT problem FROM outreach.validate_journey('jt_selfsup') $$,
  ARRAY['the suppression segment is the audience segment', 'the entry step "zz" does not exist',
        'unreachable from the entry step "zz"'],
  'the entry step must exist and the suppression segment differ from the audience');

-- Lifecycle and enrollment ---------------------------------------------------------------------
SELECT outreach.add_members('jt_audience', pg_temp.cids('jt1', 'jt2', 'jt3'));
SELECT outreach.create_journey('jt_eye', 'jt_audience', time_zone => 'Europe/Paris', suppression => 'jt_optout',
                               exit_on_leave => true);
SELECT outreach.add_step('jt_eye', 'invite', 'email', template => 'jt_invite', next => 'opened?');
SELECT outreach.add_step('jt_eye', 'opened?', 'branch_interaction', after_step => 'invite', interaction => 'opened',
                         timeout => '3 days', yes => 'done', no => 'reminder');
SELECT outreach.add_step('jt_eye', 'reminder', 'sms', template => 'jt_remind', next => 'done');
SELECT outreach.add_step('jt_eye', 'done', 'end');
SELECT is_empty($$ SELECT * FROM outreach.validate_journey('jt_eye') $$, 'a sound journey has no problems');

SET LOCAL outreach.now = '2030-01-07 10:00+00';
SELECT is(outreach.launch_journey('jt_eye'), 3, 'launch enrolls the current members of the audience');
SELECT is((SELECT status FROM outreach.journey WHERE name = 'jt_eye'), 'live', 'launch makes the journey live');
SELECT throws_ok($$ SELECT outreach.launch_journey('jt_eye') $$, '55000', 'journey "jt_eye" is already live',
  'a live journey cannot be launched again');
SELECT throws_ok($$ SELECT outreach.add_step('jt_eye', 'extra', 'end') $$, '55000',
  'cannot change the steps of journey "jt_eye" while it is live', 'steps are frozen once live');
SELECT throws_ok($$ UPDATE outreach.journey_step SET template = 'jt_letter' WHERE key = 'invite' $$, '55000',
  NULL, 'steps cannot be updated behind the API either');
SELECT throws_ok($$ SELECT outreach.drop_journey('jt_eye') $$, '55000', 'journey "jt_eye" is live', 'a live journey cannot be dropped');

SELECT outreach.add_members('jt_audience', pg_temp.cids('jt4'));
SELECT is((pg_temp.enr('jt_eye', 'jt4')).status, 'active', 'a contact joining the audience enters in the same transaction');
SELECT is((pg_temp.enr('jt_eye', 'jt4')).current_step, 'invite', 'and starts at the entry step');
SELECT outreach.add_members('jt_optout', pg_temp.cids('jt5'));
SELECT outreach.add_members('jt_audience', pg_temp.cids('jt5'));
SELECT is((pg_temp.enr('jt_eye', 'jt5')), NULL, 'a contact in the suppression segment does not enter');

-- Reconciliation: a member the trigger never saw (membership written without history).
INSERT INTO outreach.segment_member (segment_id, contact_id)
SELECT id, pg_temp.cid('jt6') FROM outreach.segment WHERE name = 'jt_audience';
SELECT is((pg_temp.enr('jt_eye', 'jt6')), NULL, 'a member without a segment_change row is not enrolled by the trigger');

-- Tick 1: messages for everyone at the entry step.
SELECT is((SELECT (r.enrolled, r.processed, r.messages, r.failed)::text FROM pg_temp.tick('2030-01-07 10:00+00') r),
  '(1,5,5,0)', 'the tick enrolls the missed member and sends the invitation to all five');
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
           WHERE j.name = 'jt_eye' AND e.contact_id = pg_temp.cid('jt1')), 1::bigint, 'a contact is enrolled once');
SELECT results_eq(
  $$ SELECT c.external_id, m.channel, m.status, m.suppression_reason FROM outreach.message m
     JOIN outreach.contact c ON c.id = m.contact_id JOIN outreach.journey j ON j.id = m.journey_id
     WHERE j.name = 'jt_eye' ORDER BY c.external_id $$,
  $$ VALUES ('jt1', 'email', 'queued', NULL), ('jt2', 'email', 'queued', NULL), ('jt3', 'email', 'suppressed', 'no_address'),
            ('jt4', 'email', 'queued', NULL), ('jt6', 'email', 'queued', NULL) $$,
  'email steps queue one message per enrollment, suppressed ones with their reason');
SELECT ok((SELECT bool_and(m.enrollment_id = e.id AND m.step_id = s.id) FROM outreach.message m
           JOIN outreach.enrollment e ON e.id = m.enrollment_id JOIN outreach.journey_step s ON s.id = m.step_id
           WHERE s.key = 'invite'), 'messages carry their enrollment and step');
SELECT is((pg_temp.enr('jt_eye', 'jt1')).next_run_at, '2030-01-10 10:00+00'::timestamptz,
  'the interaction branch sleeps until its timeout');
SELECT is((SELECT (r.processed, r.messages)::text FROM pg_temp.tick('2030-01-07 10:00+00') r), '(0,0)',
  'a second tick at the same time does nothing');
SELECT is((SELECT count(*) FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'jt_eye'),
  5::bigint, 'and queues no message twice');

-- The worker sends; jt1 opens, jt2 clicks (a click counts as an open), jt4 opens too late.
SELECT is(pg_temp.send_all('2030-01-07 14:00+00'), 4, 'the worker sends the four queued invitations');
SELECT outreach.report_interaction(m.id, 'opened', at => '2030-01-08 09:00+00') FROM outreach.message m
WHERE m.contact_id = pg_temp.cid('jt1') AND m.template_name = 'jt_invite';
SELECT outreach.report_interaction(m.id, 'clicked', 'https://clinic.example/book', at => '2030-01-08 12:00+00') FROM outreach.message m
WHERE m.contact_id = pg_temp.cid('jt2') AND m.template_name = 'jt_invite';
SELECT is((pg_temp.enr('jt_eye', 'jt1')).next_run_at, '2030-01-08 09:00+00'::timestamptz,
  'an open wakes the enrollment waiting on it');

SELECT is((SELECT (r.processed, r.completed)::text FROM pg_temp.tick('2030-01-08 12:01+00') r), '(2,2)',
  'the next tick takes the yes path for both');
SELECT is(pg_temp.path('jt_eye', 'jt1'), 'invite:queued opened?:yes done:ended', 'jt1 opened: yes path, no reminder');
SELECT is(pg_temp.path('jt_eye', 'jt2'), 'invite:queued opened?:yes done:ended', 'jt2 clicked: counts as opened');
SELECT is((pg_temp.enr('jt_eye', 'jt4')).status, 'active', 'jt4 still waits');

SELECT outreach.report_interaction(m.id, 'opened', at => '2030-01-11 09:00+00') FROM outreach.message m
WHERE m.contact_id = pg_temp.cid('jt4') AND m.template_name = 'jt_invite';
SELECT is((SELECT (r.processed, r.messages, r.completed)::text FROM pg_temp.tick('2030-01-11 10:00+00') r), '(3,3,3)',
  'after the timeout the no path sends the reminder');
SELECT is(pg_temp.path('jt_eye', 'jt4'), 'invite:queued opened?:no reminder:queued done:ended',
  'an open after the timeout does not count');
SELECT is(pg_temp.path('jt_eye', 'jt3'), 'invite:suppressed opened?:no reminder:queued done:ended',
  'a suppressed email leads to the reminder');
SELECT is((pg_temp.enr('jt_eye', 'jt1')).status, 'completed', 'an enrollment that reaches the end is completed');

-- Re-entry off: leaving and re-joining does not enroll again.
SELECT outreach.remove_members('jt_audience', pg_temp.cids('jt1'));
SELECT outreach.add_members('jt_audience', pg_temp.cids('jt1'));
SELECT pg_temp.tick('2030-01-12 10:00+00');
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
           WHERE j.name = 'jt_eye' AND e.contact_id = pg_temp.cid('jt1')), 1::bigint,
  'without re-entry a contact never enters twice');

-- Exit on leave, and joining the suppression segment, end an active enrollment at once.
SELECT outreach.add_members('jt_audience', pg_temp.cids('jt7', 'jt8'));
SELECT outreach.remove_members('jt_audience', pg_temp.cids('jt7'));
SELECT is(((pg_temp.enr('jt_eye', 'jt7')).status, (pg_temp.enr('jt_eye', 'jt7')).exit_reason)::text,
  '(exited,"left the audience segment")', 'exit_on_leave exits the contact in the same transaction');
SELECT outreach.add_members('jt_optout', pg_temp.cids('jt8'));
SELECT is(((pg_temp.enr('jt_eye', 'jt8')).status, (pg_temp.enr('jt_eye', 'jt8')).exit_reason)::text,
  '(exited,"in the suppression segment")', 'joining the suppression segment exits the contact');

-- Stopped journeys neither enroll nor advance; launching again resumes.
SELECT outreach.add_members('jt_audience', pg_temp.cids('jt9'));
SELECT outreach.stop_journey('jt_eye');
SELECT is((SELECT (r.processed, r.enrolled)::text FROM pg_temp.tick('2030-01-13 10:00+00') r), '(0,0)',
  'a stopped journey does not advance');
SELECT is((pg_temp.enr('jt_eye', 'jt9')).current_step, 'invite', 'its enrollments stay where they are');
SET LOCAL outreach.now = '2030-01-13 11:00+00';
SELECT is(outreach.launch_journey('jt_eye'), 0, 'launching a stopped journey again resumes it');
SELECT is((SELECT r.processed FROM pg_temp.tick('2030-01-13 11:00+00') r), 1, 'and its enrollments advance again');

-- Re-entry on: a new enrollment after the previous one ended and the contact re-joined.
SELECT outreach.create_journey('jt_again', 'jt_vip', allow_reentry => true, exit_on_leave => false);
SELECT outreach.add_step('jt_again', 'tag', 'add_to_segment', segment => 'jt_tagged');
SELECT outreach.add_members('jt_vip', pg_temp.cids('jt1'));
SET LOCAL outreach.now = '2030-01-14 10:00+00';
SELECT is(outreach.launch_journey('jt_again'), 1, 'launch enrolls the vip member');
SELECT outreach.remove_members('jt_vip', pg_temp.cids('jt1'));
SELECT outreach.add_members('jt_vip', pg_temp.cids('jt1'));
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
           WHERE j.name = 'jt_again'), 1::bigint, 're-entry waits until the previous enrollment has ended');
SELECT pg_temp.tick('2030-01-14 10:00+00');
SELECT is((pg_temp.enr('jt_again', 'jt1')).status, 'completed', 'a step without next completes the enrollment');
SELECT pg_temp.tick('2030-01-14 10:01+00');
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
           WHERE j.name = 'jt_again'), 1::bigint, 'a completed member is not re-enrolled while it stays in the segment');
SELECT outreach.remove_members('jt_vip', pg_temp.cids('jt1'));
SELECT outreach.add_members('jt_vip', pg_temp.cids('jt1'));
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
           WHERE j.name = 'jt_again'), 2::bigint, 'with re-entry, re-joining after the end enrolls again');
SELECT pg_temp.tick('2030-01-14 10:02+00');
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
           WHERE j.name = 'jt_again'), 2::bigint, 'and the tick adds no third enrollment');

-- Start and end of the enrollment window.
SELECT outreach.create_journey('jt_window', 'jt_vip', starts_at => '2030-02-01', ends_at => '2030-03-01');
SELECT outreach.add_step('jt_window', 'stop', 'end');
SET LOCAL outreach.now = '2030-01-20 10:00+00';
SELECT is(outreach.launch_journey('jt_window'), 0, 'before starts_at nobody enters');
SELECT is((SELECT r.enrolled FROM pg_temp.tick('2030-02-01 00:00+00') r), 1, 'at starts_at the tick enrolls the members');
SET LOCAL outreach.now = '2030-02-10 10:00+00';
SELECT outreach.add_members('jt_vip', pg_temp.cids('jt2'));
SELECT is((pg_temp.enr('jt_window', 'jt2')).status, 'active', 'inside the window a joining contact enters');
SET LOCAL outreach.now = '2030-03-02 10:00+00';
SELECT outreach.add_members('jt_vip', pg_temp.cids('jt3'));
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
           WHERE j.name = 'jt_window'), 2::bigint, 'after ends_at nobody enters');
SELECT outreach.stop_journey('jt_window');
SELECT is(outreach.launch_journey('jt_window'), 0, 'a stopped journey past its end can be resumed to finish, enrolling nobody');

-- End to end on a dynamic segment: a clinical write enrolls the patient in the same
-- transaction, and outreach.tick (the pg_cron job) advances the journey.
SELECT outreach.create_segment('jt_hyper', 'contact where status = ''active'' and has condition where description contains ''Hypermetropia''');
SELECT outreach.go_live('jt_hyper');
SELECT outreach.create_journey('jt_dynamic', 'jt_hyper', exit_on_leave => true);
SELECT outreach.add_step('jt_dynamic', 'tag', 'add_to_segment', segment => 'jt_hyper', next => 'bye');
SELECT outreach.add_step('jt_dynamic', 'bye', 'end');
SELECT is((SELECT problem FROM outreach.validate_journey('jt_dynamic')),
  'segment "jt_hyper" is dynamic; only static segments take members by hand', 'add_to_segment needs a static segment');
UPDATE outreach.journey_step SET segment = 'jt_tagged'
WHERE key = 'tag' AND journey_id = (SELECT id FROM outreach.journey WHERE name = 'jt_dynamic');
SET LOCAL outreach.now = '2030-04-01 10:00+00';
SELECT is(outreach.launch_journey('jt_dynamic'), 0, 'nobody has the condition yet');
INSERT INTO outreach.condition (patient_id, code, description, onset_date)
VALUES (pg_temp.cid('jt9'), '38101003', 'Hypermetropia (disorder)', '2029-12-01');
SELECT is((pg_temp.enr('jt_dynamic', 'jt9')).status, 'active', 'the condition insert enrolls the patient in the same transaction');
SELECT lives_ok($$ SELECT outreach.tick('2030-04-01 10:05+00') $$, 'outreach.tick runs the journey tick');
SELECT is((pg_temp.enr('jt_dynamic', 'jt9')).status, 'completed', 'and advances the journey');
SELECT ok(EXISTS (SELECT 1 FROM outreach.journey_tick_run WHERE at = '2030-04-01 10:05+00' AND processed >= 1 AND finished_at IS NOT NULL),
  'with its statistics recorded');
UPDATE outreach.condition SET clinical_status = 'resolved', description = 'resolved' WHERE patient_id = pg_temp.cid('jt9');
SELECT ok(NOT EXISTS (SELECT 1 FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
                      WHERE s.name = 'jt_hyper' AND m.contact_id = pg_temp.cid('jt9')), 'the patient leaves the segment');

-- Segments used by journeys cannot be dropped; renamed ones are followed by the steps.
SELECT throws_ok($$ SELECT outreach.drop_segment('jt_vip') $$, '2BP01', 'segment "jt_vip" is used by journeys',
  'a journey''s audience cannot be dropped');
SELECT throws_ok($$ SELECT outreach.drop_segment('jt_tagged') $$, '2BP01', 'segment "jt_tagged" is used by journeys',
  'nor a segment a step adds contacts to');
SELECT outreach.rename_segment('jt_tagged', 'jt_tagged_renamed');
SELECT is((SELECT s.segment FROM outreach.journey_step s JOIN outreach.journey j ON j.id = s.journey_id
           WHERE j.name = 'jt_dynamic' AND s.key = 'tag'), 'jt_tagged_renamed', 'a live journey''s step follows a renamed segment');
SELECT throws_ok($$ UPDATE outreach.journey_step SET segment = 'jt_vip' WHERE key = 'tag'
                   AND journey_id = (SELECT id FROM outreach.journey WHERE name = 'jt_dynamic') $$, '55000', NULL,
  'but cannot be pointed at another segment');

SELECT * FROM finish();
ROLLBACK;
