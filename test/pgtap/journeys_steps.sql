-- Journeys: every step kind on its own, failures, batches, tick statistics and the
-- analytics views.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT * FROM no_plan();

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
CREATE FUNCTION pg_temp.tick(at text) RETURNS outreach.journey_tick_run LANGUAGE sql AS
  $$ SELECT outreach.tick_journeys(at::timestamptz) $$;
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
-- A one-step-at-a-time journey on its own audience segment, launched at `at`.
CREATE FUNCTION pg_temp.journey(name text, members text[], at text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM outreach.create_static_segment(name || '_aud');
  PERFORM outreach.go_live(name || '_aud');
  PERFORM outreach.add_members(name || '_aud', (SELECT array_agg(id) FROM outreach.contact WHERE external_id = ANY (members)));
  PERFORM outreach.create_journey(name, name || '_aud', time_zone => 'Europe/Paris');
END $$;
CREATE FUNCTION pg_temp.launch(name text, at text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('outreach.now', at, true);
  RETURN outreach.launch_journey(name);
END $$;

INSERT INTO outreach.contact (external_id, first_name, email, phone, address_line, city, postal_code, country, time_zone)
SELECT 'js' || i, 'Sam' || i, 'sam' || i || '@example.org', '+1555020000' || i, i || ' Oak St', 'Springfield', '12345', 'US',
       CASE WHEN i = 2 THEN 'America/New_York' WHEN i = 3 THEN NULL ELSE 'UTC' END
FROM generate_series(1, 8) i;
SELECT outreach.create_template('js_mail', 'email',
  'Hi {{contact.first_name}} <a href="{{unsubscribe_url}}">Unsubscribe</a> {{sender.postal_address}}',
  subject => 'News', sender_postal_address => '1 Clinic Way, Springfield');
SELECT outreach.create_template('js_sms', 'sms', 'Hi {{contact.first_name}}');
SELECT outreach.create_template('js_letter', 'letter', 'Dear {{contact.first_name}}');
SELECT outreach.create_template('js_receipt', 'email', 'Confirmed.', subject => 'Confirmed', message_class => 'transactional');
SELECT outreach.create_subscription_list('js_news');
SELECT outreach.create_static_segment(n) FROM unnest(ARRAY['js_vip', 'js_tagged']) n;
SELECT outreach.go_live(n) FROM unnest(ARRAY['js_vip', 'js_tagged']) n;
SELECT outreach.add_members('js_vip', pg_temp.cids('js1'));

-- Message steps: email, SMS and letter, each queued once with the journey's class and list.
SELECT pg_temp.journey('js_msgs', ARRAY['js1', 'js2'], '2030-01-07 12:00+00');
SELECT outreach.add_step('js_msgs', 'mail', 'email', template => 'js_mail', next => 'text');
SELECT outreach.add_step('js_msgs', 'text', 'sms', template => 'js_sms', next => 'paper');
SELECT outreach.add_step('js_msgs', 'paper', 'letter', template => 'js_letter');
SELECT is(pg_temp.launch('js_msgs', '2030-01-07 12:00+00'), 2, 'message journey enrolls two');
SELECT is((SELECT (r.steps, r.messages, r.completed)::text FROM pg_temp.tick('2030-01-07 12:00+00') r), '(6,6,2)',
  'one tick runs three message steps for each and completes them');
SELECT results_eq(
  $$ SELECT s.key, m.channel, m.status, m.message_class FROM outreach.message m
     JOIN outreach.journey_step s ON s.id = m.step_id WHERE m.contact_id = pg_temp.cid('js1') ORDER BY m.id $$,
  $$ VALUES ('mail', 'email', 'queued', 'marketing'), ('text', 'sms', 'queued', 'marketing'),
            ('paper', 'letter', 'queued', 'marketing') $$,
  'email, sms and letter steps queue a message on their channel');
SELECT is(pg_temp.path('js_msgs', 'js1'), 'mail:queued text:queued paper:queued', 'history records each step and outcome');

-- A journey with a subscription list: unsubscribed contacts are suppressed, not skipped.
SELECT outreach.subscribe('js_news', pg_temp.cid('js1'));
SELECT pg_temp.journey('js_list', ARRAY['js1', 'js2'], '2030-01-07 12:00+00');
UPDATE outreach.journey SET subscription_list = 'js_news' WHERE name = 'js_list';
SELECT outreach.add_step('js_list', 'mail', 'email', template => 'js_mail');
SELECT pg_temp.launch('js_list', '2030-01-07 12:00+00');
SELECT pg_temp.tick('2030-01-07 12:00+00');
SELECT results_eq(
  $$ SELECT c.external_id, m.status, m.suppression_reason FROM outreach.message m
     JOIN outreach.contact c ON c.id = m.contact_id JOIN outreach.journey j ON j.id = m.journey_id
     WHERE j.name = 'js_list' ORDER BY 1 $$,
  $$ VALUES ('js1', 'queued', NULL), ('js2', 'suppressed', 'not_subscribed') $$,
  'the journey''s subscription list is checked for every message');

-- Transactional journeys send transactional templates.
SELECT pg_temp.journey('js_tx', ARRAY['js1'], '2030-01-07 12:00+00');
UPDATE outreach.journey SET message_class = 'transactional' WHERE name = 'js_tx';
SELECT outreach.add_step('js_tx', 'receipt', 'email', template => 'js_receipt');
SELECT pg_temp.launch('js_tx', '2030-01-07 12:00+00');
SELECT pg_temp.tick('2030-01-07 12:00+00');
SELECT is((SELECT m.message_class FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'js_tx'),
  'transactional', 'a transactional journey queues transactional messages');

-- wait: a duration from the moment the step was reached.
SELECT pg_temp.journey('js_wait', ARRAY['js1'], '2030-01-07 12:00+00');
SELECT outreach.add_step('js_wait', 'pause', 'wait', duration => '2 days 3 hours', next => 'done');
SELECT outreach.add_step('js_wait', 'done', 'end');
SELECT pg_temp.launch('js_wait', '2030-01-07 12:00+00');
SELECT pg_temp.tick('2030-01-07 12:00+00');
SELECT is((pg_temp.enr('js_wait', 'js1')).next_run_at, '2030-01-09 15:00+00'::timestamptz, 'wait sleeps for its duration');
SELECT is((SELECT r.processed FROM pg_temp.tick('2030-01-09 14:59+00') r), 0, 'nothing is due before the wait ends');
SELECT is((SELECT r.completed FROM pg_temp.tick('2030-01-09 15:00+00') r), 1, 'at the end of the wait it goes on');
SELECT is(pg_temp.path('js_wait', 'js1'), 'pause:waited done:ended', 'wait then end');

-- wait_until: local time of day and weekdays, in the contact's time zone, else the journey's.
SELECT pg_temp.journey('js_until', ARRAY['js1', 'js2', 'js3'], '2030-01-04 12:00+00');   -- a Friday
SELECT outreach.add_step('js_until', 'office', 'wait_until', from_time => '09:00', until_time => '17:00',
                         weekdays => '{1,2,3,4,5}', next => 'done');
SELECT outreach.add_step('js_until', 'done', 'end');
SELECT pg_temp.launch('js_until', '2030-01-04 12:00+00');
SELECT pg_temp.tick('2030-01-04 12:00+00');
SELECT is((pg_temp.enr('js_until', 'js1')).status, 'completed', 'inside the window (Friday 12:00 UTC) it goes on at once');
SELECT is((pg_temp.enr('js_until', 'js2')).next_run_at, '2030-01-04 14:00+00'::timestamptz,
  'for a New York contact it waits until 09:00 New York time');
SELECT is((pg_temp.enr('js_until', 'js3')).status, 'completed',
  'a contact without a time zone uses the journey''s (13:00 in Paris)');
SELECT outreach.stop_journey('js_until');
SELECT outreach.add_members('js_until_aud', pg_temp.cids('js4'));
SELECT is(pg_temp.launch('js_until', '2030-01-04 18:00+00'), 1, 'a late joiner enters on relaunch');
SELECT pg_temp.tick('2030-01-04 18:00+00');
SELECT is((pg_temp.enr('js_until', 'js4')).next_run_at, '2030-01-07 09:00+00'::timestamptz,
  'after hours on Friday it waits for Monday 09:00');
SELECT is(outreach.next_local_window('2030-01-04 23:00+00', 'UTC', '22:00', '06:00'), '2030-01-04 23:00+00'::timestamptz,
  'a window past midnight contains 23:00');
SELECT is(outreach.next_local_window('2030-01-05 07:00+00', 'UTC', '22:00', '06:00'), '2030-01-05 22:00+00'::timestamptz,
  'and after it closes the next one opens at 22:00');
SELECT is(outreach.next_local_window('2030-01-05 09:00+00', 'UTC', '09:00'), '2030-01-05 09:00+00'::timestamptz,
  'a time of day without an end is the exact time');
SELECT is(outreach.next_local_window('2030-03-30 12:00+00', 'Europe/Paris', '09:00'), '2030-03-31 07:00+00'::timestamptz,
  'local times follow daylight saving time');

-- branch_interaction on clicks: an open is not enough.
SELECT pg_temp.journey('js_click', ARRAY['js1', 'js4'], '2030-01-07 12:00+00');
SELECT outreach.add_step('js_click', 'mail', 'email', template => 'js_mail', next => 'clicked?');
SELECT outreach.add_step('js_click', 'clicked?', 'branch_interaction', after_step => 'mail', interaction => 'clicked',
                         timeout => '1 day', yes => 'thanks', no => 'nudge');
SELECT outreach.add_step('js_click', 'thanks', 'end');
SELECT outreach.add_step('js_click', 'nudge', 'sms', template => 'js_sms');
SELECT pg_temp.launch('js_click', '2030-01-07 12:00+00');
SELECT pg_temp.tick('2030-01-07 12:00+00');
SELECT pg_temp.send_all('2030-01-07 12:05+00');
SELECT outreach.report_interaction(m.id, 'opened', at => '2030-01-07 13:00+00') FROM outreach.message m
JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'js_click';
SELECT outreach.report_interaction(m.id, 'clicked', 'https://clinic.example/a', at => '2030-01-07 14:00+00') FROM outreach.message m
JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'js_click' AND m.contact_id = pg_temp.cid('js1');
SELECT pg_temp.tick('2030-01-07 14:01+00');
SELECT is(pg_temp.path('js_click', 'js1'), 'mail:queued clicked?:yes thanks:ended', 'a click takes the yes path');
SELECT is((pg_temp.enr('js_click', 'js4')).status, 'active', 'an open alone does not satisfy a click branch');
SELECT pg_temp.tick('2030-01-08 12:00+00');
SELECT is(pg_temp.path('js_click', 'js4'), 'mail:queued clicked?:no nudge:queued', 'no click within the timeout: the no path');

-- branch_segment.
SELECT pg_temp.journey('js_seg', ARRAY['js1', 'js2'], '2030-01-07 12:00+00');
SELECT outreach.add_step('js_seg', 'vip?', 'branch_segment', segment => 'js_vip', yes => 'gold', no => 'plain');
SELECT outreach.add_step('js_seg', 'gold', 'end');
SELECT outreach.add_step('js_seg', 'plain', 'end');
SELECT pg_temp.launch('js_seg', '2030-01-07 12:00+00');
SELECT pg_temp.tick('2030-01-07 12:00+00');
SELECT is(pg_temp.path('js_seg', 'js1'), 'vip?:yes gold:ended', 'a member of the segment takes the yes path');
SELECT is(pg_temp.path('js_seg', 'js2'), 'vip?:no plain:ended', 'a non-member takes the no path');

-- split: deterministic per enrollment, close to the percentage.
INSERT INTO outreach.contact (external_id, first_name, email)
SELECT 'split' || i, 'S' || i, 's' || i || '@example.org' FROM generate_series(1, 400) i;
SELECT outreach.create_static_segment('js_split_aud');
SELECT outreach.go_live('js_split_aud');
SELECT outreach.add_members('js_split_aud', (SELECT array_agg(id) FROM outreach.contact WHERE external_id LIKE 'split%'));
SELECT outreach.create_journey('js_split', 'js_split_aud');
SELECT outreach.add_step('js_split', 'ab', 'split', percent => 25, yes => 'a', no => 'b');
SELECT outreach.add_step('js_split', 'a', 'end');
SELECT outreach.add_step('js_split', 'b', 'end');
SELECT pg_temp.launch('js_split', '2030-01-07 12:00+00');
SELECT pg_temp.tick('2030-01-07 12:00+00');
SELECT ok((SELECT count(*) FROM outreach.enrollment_step s JOIN outreach.journey j ON j.id = s.journey_id
           WHERE j.name = 'js_split' AND s.step_key = 'ab' AND s.outcome = 'yes') BETWEEN 60 AND 140,
  'a 25% split sends about a quarter down the yes path');
SELECT is((SELECT count(*) FROM outreach.enrollment_step s JOIN outreach.journey j ON j.id = s.journey_id
           WHERE j.name = 'js_split' AND s.step_key = 'ab'), 400::bigint, 'every enrollment is split once');
SELECT is((SELECT count(*) FROM outreach.enrollment_step s JOIN outreach.journey j ON j.id = s.journey_id
           JOIN outreach.enrollment e ON e.id = s.enrollment_id
           WHERE j.name = 'js_split' AND s.step_key = 'ab'
             AND (s.outcome = 'yes') <> ((hashtext(e.id::text || '/ab')::bigint + 2147483648) % 10000 < 2500)), 0::bigint,
  'the split is a function of the enrollment, so a retried tick takes the same path');

-- add_to_segment / remove_from_segment, which other journeys see in the same transaction.
SELECT pg_temp.journey('js_tag', ARRAY['js5', 'js6'], '2030-01-07 12:00+00');
SELECT outreach.add_step('js_tag', 'tag', 'add_to_segment', segment => 'js_tagged', next => 'untag');
SELECT outreach.add_step('js_tag', 'untag', 'remove_from_segment', segment => 'js_vip');
SELECT outreach.create_journey('js_on_tag', 'js_tagged');
SELECT outreach.add_step('js_on_tag', 'hello', 'end');
SELECT pg_temp.launch('js_on_tag', '2030-01-07 12:00+00');
SELECT outreach.add_members('js_vip', pg_temp.cids('js5'));
SELECT pg_temp.launch('js_tag', '2030-01-07 12:00+00');
SELECT pg_temp.tick('2030-01-07 12:00+00');
SELECT set_eq($$ SELECT contact_id FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
                 WHERE s.name = 'js_tagged' $$, pg_temp.cids('js5', 'js6'), 'add_to_segment adds the contact');
SELECT ok(NOT EXISTS (SELECT 1 FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
                      WHERE s.name = 'js_vip' AND m.contact_id = pg_temp.cid('js5')), 'remove_from_segment removes it');
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
           WHERE j.name = 'js_on_tag'), 2::bigint, 'a journey on the tagged segment enrolls them in the same transaction');

-- subscribe / unsubscribe.
SELECT pg_temp.journey('js_sub', ARRAY['js7'], '2030-01-07 12:00+00');
SELECT outreach.add_step('js_sub', 'join', 'subscribe', list => 'js_news', next => 'leave_check');
SELECT outreach.add_step('js_sub', 'leave_check', 'wait', duration => '1 hour', next => 'leave');
SELECT outreach.add_step('js_sub', 'leave', 'unsubscribe', list => 'js_news');
SELECT pg_temp.launch('js_sub', '2030-01-07 12:00+00');
SELECT pg_temp.tick('2030-01-07 12:00+00');
SELECT is((SELECT s.status FROM outreach.subscription s JOIN outreach.subscription_list l ON l.id = s.list_id
           WHERE l.name = 'js_news' AND s.contact_id = pg_temp.cid('js7')), 'subscribed', 'subscribe subscribes the contact');
SELECT pg_temp.tick('2030-01-07 13:00+00');
SELECT is((SELECT s.status FROM outreach.subscription s JOIN outreach.subscription_list l ON l.id = s.list_id
           WHERE l.name = 'js_news' AND s.contact_id = pg_temp.cid('js7')), 'unsubscribed', 'unsubscribe unsubscribes it');
SELECT is(pg_temp.path('js_sub', 'js7'), 'join:subscribed leave_check:waited leave:unsubscribed', 'subscription steps in the history');

-- A failing enrollment is marked failed with its error; the others go on; it can be retried.
SELECT pg_temp.journey('js_fail', ARRAY['js1', 'js2', 'js8'], '2030-01-07 12:00+00');
SELECT outreach.add_step('js_fail', 'mail', 'email', template => 'js_mail', next => 'done');
SELECT outreach.add_step('js_fail', 'done', 'end');
CREATE FUNCTION pg_temp.refuse_js8() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.contact_id = pg_temp.cid('js8') THEN RAISE EXCEPTION 'mail server says no for %', NEW.address; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_js8 BEFORE INSERT ON outreach.message FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_js8();
SELECT pg_temp.launch('js_fail', '2030-01-07 12:00+00');
SELECT is((SELECT (r.processed, r.completed, r.failed)::text FROM pg_temp.tick('2030-01-07 12:00+00') r), '(3,2,1)',
  'one failing enrollment does not stop the others');
SELECT is(((pg_temp.enr('js_fail', 'js8')).status, (pg_temp.enr('js_fail', 'js8')).error,
           (pg_temp.enr('js_fail', 'js8')).current_step, (pg_temp.enr('js_fail', 'js8')).attempt)::text,
  '(failed,"mail server says no for sam8@example.org",mail,1)', 'it is failed with its error, on the step that failed');
SELECT is((SELECT count(*) FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id
           WHERE j.name = 'js_fail' AND m.contact_id = pg_temp.cid('js8')), 0::bigint, 'its partial work is rolled back');
SELECT is((SELECT (failed, done) FROM outreach.journey_step_funnel WHERE journey = 'js_fail' AND step = 'mail')::text,
  '(1,2)', 'the step funnel shows the failure on its step');
DROP TRIGGER refuse_js8 ON outreach.message;
SELECT throws_ok(format('SELECT outreach.retry_enrollment(%s)', (pg_temp.enr('js_fail', 'js1')).id), '55000',
  NULL, 'only failed enrollments can be retried');
SELECT lives_ok(format('SELECT outreach.retry_enrollment(%s)', (pg_temp.enr('js_fail', 'js8')).id), 'retry a failed enrollment');
SELECT is((SELECT r.completed FROM pg_temp.tick('2030-01-07 12:10+00') r), 1, 'the retried enrollment completes');
SELECT is(pg_temp.path('js_fail', 'js8'), 'mail:queued done:ended', 'with its message queued once');

-- A transient error (deadlock, serialization failure) leaves the enrollment due for the next tick.
SELECT pg_temp.journey('js_transient', ARRAY['js1', 'js8'], '2030-01-07 12:00+00');
SELECT outreach.add_step('js_transient', 'mail', 'email', template => 'js_mail');
CREATE FUNCTION pg_temp.deadlock_js8() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.contact_id = pg_temp.cid('js8') THEN RAISE EXCEPTION 'simulated deadlock' USING ERRCODE = 'deadlock_detected'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER deadlock_js8 BEFORE INSERT ON outreach.message FOR EACH ROW EXECUTE FUNCTION pg_temp.deadlock_js8();
SELECT pg_temp.launch('js_transient', '2030-01-07 12:20+00');
SELECT is((SELECT (r.processed, r.completed, r.retried, r.failed)::text FROM pg_temp.tick('2030-01-07 12:20+00') r), '(2,1,1,0)',
  'a transient error is retried, not failed, and not twice in the same tick');
SELECT is(((pg_temp.enr('js_transient', 'js8')).status, (pg_temp.enr('js_transient', 'js8')).error,
           (pg_temp.enr('js_transient', 'js8')).attempt)::text, '(active,"simulated deadlock",1)',
  'the enrollment stays active with the error and the attempt counted');
DROP TRIGGER deadlock_js8 ON outreach.message;
SELECT is((SELECT r.completed FROM pg_temp.tick('2030-01-07 12:21+00') r), 1, 'the next tick completes it');
SELECT is((pg_temp.enr('js_transient', 'js8')).error, NULL, 'and clears the error');

-- Bounded batches: the tick does at most batch_size x max_batches and says more is due.
SELECT outreach.create_journey('js_batch', 'js_split_aud');
SELECT outreach.add_step('js_batch', 'done', 'end');
SELECT pg_temp.launch('js_batch', '2030-01-07 12:00+00');
SELECT is((SELECT (r.processed, r.batches, r.more_due)::text
           FROM outreach.tick_journeys('2030-01-07 12:00+00', batch_size => 50, max_batches => 3) r),
  '(150,3,t)', 'a tick stops after max_batches batches and reports more due');
SELECT is((SELECT (r.processed, r.more_due)::text
           FROM outreach.tick_journeys('2030-01-07 12:01+00', batch_size => 1000, max_batches => 1) r),
  '(250,f)', 'the next tick does the rest');
SELECT throws_ok($$ SELECT outreach.tick_journeys(now(), batch_size => 0) $$, '22023', NULL, 'batch_size must be positive');
SELECT ok((SELECT count(*) >= 2 FROM outreach.journey_tick_run WHERE at IN ('2030-01-07 12:00+00', '2030-01-07 12:01+00')
           AND finished_at >= started_at), 'every tick records its statistics');

-- Analytics views.
SELECT results_eq(
  $$ SELECT enrolled, active, completed, exited, failed, messages, queued, suppressed
     FROM outreach.journey_funnel WHERE journey = 'js_click' $$,
  $$ VALUES (2::bigint, 0::bigint, 2::bigint, 0::bigint, 0::bigint, 3::bigint, 1::bigint, 0::bigint) $$,
  'journey_funnel counts enrollments and messages');
SELECT results_eq(
  $$ SELECT step, reached, done, yes, no, messages, delivered, unique_opens, unique_clicks, ctr, ctor
     FROM outreach.journey_step_funnel WHERE journey = 'js_click' ORDER BY step_id $$,
  $$ VALUES ('mail', 2::bigint, 2::bigint, 0::bigint, 0::bigint, 2::bigint, 2::bigint, 2::bigint, 1::bigint, 0.5000, 0.5000),
            ('clicked?', 2, 2, 1, 1, 0, 0, 0, 0, NULL, NULL),
            ('thanks', 1, 1, 0, 0, 0, 0, 0, 0, NULL, NULL),
            ('nudge', 1, 1, 0, 0, 1, 0, 0, 0, NULL, NULL) $$,
  'journey_step_funnel: reach, branch outcomes, unique opens and clicks, CTR and CTOR per step');
SELECT results_eq(
  $$ SELECT step, channel, status, suppression_reason, messages FROM outreach.journey_message_stats
     WHERE journey = 'js_list' ORDER BY status $$,
  $$ VALUES ('mail', 'email', 'sent', NULL, 1::bigint), ('mail', 'email', 'suppressed', 'not_subscribed', 1::bigint) $$,
  'journey_message_stats: messages by status and suppression reason');

SELECT * FROM finish();
ROLLBACK;
