-- operations: health checks (each both ways), alerts once per incident, settings, retention
-- in bounded batches that spares what live segments, running journeys and readers need, the
-- delayed-message notification, restore detection.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(62);

SET LOCAL outreach.now = '2026-03-02 15:00:00+00';
DELETE FROM outreach.frequency_cap;
DELETE FROM outreach.quiet_hours;
CREATE FUNCTION pg_temp.h(c text) RETURNS text LANGUAGE sql AS $$
  SELECT status FROM outreach.health WHERE "check" = c $$;
CREATE FUNCTION pg_temp.at(t text) RETURNS void LANGUAGE sql AS $$
  SELECT set_config('outreach.now', t, true) $$;

SELECT is((SELECT array_agg("check" ORDER BY "check") FROM outreach.health),
  ARRAY['bounce_rate','complaint_rate','deferred_backlog','failed_enrollments','leases','pg_cron','queue','stale_segments','tick'],
  'outreach.health has one row per check');
SELECT is((SELECT count(*) FROM outreach.health WHERE status <> 'ok'), 0::bigint, 'an empty install is healthy');

-- settings
SELECT throws_ok($$SELECT outreach.set_operations_setting('no_such', '1')$$, '42704', NULL, 'unknown settings are refused');
SELECT throws_ok($$SELECT outreach.set_operations_setting('tick_late_warning', 'soon')$$, '22023', NULL, 'an interval setting refuses a non-interval');
SELECT throws_ok($$SELECT outreach.set_operations_setting('retention_batch', '-3')$$, '22023', NULL, 'a count setting refuses a negative');
SELECT lives_ok($$SELECT outreach.set_operations_setting('tick_late_warning', '4 minutes')$$, 'a valid setting is accepted');
SELECT is(outreach._setting('tick_late_warning'), '4 minutes', 'and stored');

-- tick: critical when live work needs it and it never ran / stopped; ok when on time
INSERT INTO outreach.contact (external_id, first_name, email, phone, time_zone)
SELECT 'c' || i, 'Pat' || i, 'p' || i || '@example.org', '+1415555' || lpad(i::text, 4, '0'), 'UTC' FROM generate_series(1, 30) i;
SELECT outreach.create_segment('has y', $$contact where has condition where code = 'y'$$);
SELECT outreach.go_live('has y');
SELECT outreach.set_segment_mode('has y', 'deferred');
SELECT is(pg_temp.h('tick'), 'critical', 'tick: critical when a deferred segment is live and no tick ever ran');
SELECT outreach.tick('2026-03-02 15:00:00+00');
SELECT is(pg_temp.h('tick'), 'ok', 'tick: ok right after a tick');
SELECT pg_temp.at('2026-03-02 15:05:00+00');
SELECT is(pg_temp.h('tick'), 'warning', 'tick: warning after tick_late_warning');
SELECT pg_temp.at('2026-03-02 15:11:00+00');
SELECT is(pg_temp.h('tick'), 'critical', 'tick: critical after tick_late_critical');
SELECT matches((SELECT detail FROM outreach.health WHERE "check" = 'tick'), 'ran 00:11:00 ago', 'the detail says how late');

-- alerts: once per incident, resolved when the check recovers, a new incident alerts again
SELECT is((SELECT array_agg(check_name) FROM outreach.check_alerts()), ARRAY['tick'], 'a critical check raises an alert');
SELECT is((SELECT count(*) FROM outreach.check_alerts()), 0::bigint, 'and not again while the incident lasts');
SELECT outreach.tick('2026-03-02 15:11:00+00');
SELECT isnt((SELECT resolved_at FROM outreach.alert WHERE check_name = 'tick'), NULL, 'the tick resolves the alert when the check recovers');
SELECT pg_temp.at('2026-03-02 15:30:00+00');
SELECT is((SELECT count(*) FROM outreach.check_alerts()), 1::bigint, 'a new incident raises a new alert');
SELECT is((SELECT count(*) FROM outreach.alert WHERE check_name = 'tick'), 2::bigint, 'the alert history keeps both incidents');
SELECT outreach.tick('2026-03-02 15:30:00+00');

-- deferred backlog, both ways
SELECT outreach.set_operations_setting('deferred_backlog_critical', '2');
INSERT INTO outreach.condition (patient_id, code, description) SELECT id, 'y', 'Y' FROM outreach.contact WHERE id <= 3;
SELECT is(pg_temp.h('deferred_backlog'), 'critical', 'deferred_backlog: critical over the threshold');
SELECT outreach.tick('2026-03-02 15:30:30+00');
SELECT is(pg_temp.h('deferred_backlog'), 'ok', 'deferred_backlog: ok once the tick applied it');

-- stale time-dependent segments, both ways
SELECT outreach.create_segment('adults', $$contact where age >= 18$$);
SELECT outreach.go_live('adults');
UPDATE outreach.segment SET next_evaluation_at = '2026-02-28 00:00+00' WHERE name = 'adults';
SELECT is(pg_temp.h('stale_segments'), 'critical', 'stale_segments: critical when re-evaluation is a day late');
UPDATE outreach.segment SET next_evaluation_at = '2026-03-02 14:00+00' WHERE name = 'adults';
SELECT is(pg_temp.h('stale_segments'), 'warning', 'stale_segments: warning when an hour late');
SELECT outreach.tick('2026-03-02 15:30:40+00');
SELECT is(pg_temp.h('stale_segments'), 'ok', 'stale_segments: ok once the tick re-evaluated it');

-- queue: the oldest due message, both ways; leases, both ways
SELECT outreach.create_template('note', 'email', 'Hi <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}',
  subject => 'Note', sender_postal_address => '1 Main St', message_class => 'transactional');
SELECT pg_temp.at('2026-03-02 13:00:00+00');
SELECT (outreach.enqueue_message(id, 'note', 'transactional')).status FROM outreach.contact WHERE id <= 20;
SELECT pg_temp.at('2026-03-02 15:31:00+00');
SELECT is(pg_temp.h('queue'), 'critical', 'queue: critical when the oldest due message waited over an hour');
SELECT is((SELECT value FROM outreach.health WHERE "check" = 'queue'), 9060::numeric, 'queue: the value is its age in seconds');
SELECT is((SELECT count(*) FROM outreach.claim_messages('w', 100, '5 minutes')), 20::bigint, 'a worker claims them');
SELECT is(pg_temp.h('queue'), 'ok', 'queue: ok once claimed');
SELECT is(pg_temp.h('leases'), 'ok', 'leases: ok within the lease');
SELECT pg_temp.at('2026-03-02 16:40:00+00');
SELECT is(pg_temp.h('leases'), 'critical', 'leases: critical an hour past the lease');
SELECT outreach.report_delivery(id, 'sent') FROM outreach.message WHERE id <= 10;
SELECT outreach.report_delivery(id, 'bounced') FROM outreach.message WHERE id > 10;
SELECT is(pg_temp.h('leases'), 'ok', 'leases: ok once reported');

-- bounce and complaint rates, both ways (with a small minimum sample)
SELECT is(pg_temp.h('bounce_rate'), 'ok', 'bounce_rate: too few messages to judge is ok');
SELECT outreach.set_operations_setting('rate_min_messages', '10');
SELECT is(pg_temp.h('bounce_rate'), 'critical', 'bounce_rate: critical at half bounced');
SELECT is((SELECT value FROM outreach.health WHERE "check" = 'bounce_rate'), 0.5::numeric, 'bounce_rate: the value is the share');
SELECT outreach.set_operations_setting('bounce_rate_critical', '0.6');
SELECT outreach.set_operations_setting('bounce_rate_warning', '0.6');
SELECT is(pg_temp.h('bounce_rate'), 'ok', 'bounce_rate: ok under thresholds the admin raised');
SELECT is(pg_temp.h('complaint_rate'), 'ok', 'complaint_rate: ok without complaints');
SELECT outreach.report_interaction(1, 'complained');
SELECT is(pg_temp.h('complaint_rate'), 'critical', 'complaint_rate: critical at one in twenty');

-- failed enrollments, both ways
SELECT outreach.create_static_segment('vip');
SELECT outreach.add_members('vip', ARRAY[1, 2]::bigint[]);
SELECT outreach.go_live('vip');
SELECT outreach.create_journey('j', 'vip');
SELECT outreach.add_step('j', 'wait', 'wait', duration => '10 days', next => 'done');
SELECT outreach.add_step('j', 'done', 'end');
SELECT outreach.launch_journey('j');
SELECT is(pg_temp.h('failed_enrollments'), 'ok', 'failed_enrollments: ok without failures');
UPDATE outreach.enrollment SET status = 'failed', ended_at = outreach.now(), error = 'boom' WHERE contact_id = 1;
SELECT is(pg_temp.h('failed_enrollments'), 'warning', 'failed_enrollments: warning from one failure');
SELECT outreach.set_operations_setting('failed_enrollments_critical', '1');
SELECT is(pg_temp.h('failed_enrollments'), 'critical', 'failed_enrollments: critical from the critical threshold');

-- pg_cron (this is pg_cron's database): job failures are reported, with what to do
CREATE EXTENSION IF NOT EXISTS pg_cron;
SELECT outreach.schedule_tick();
SELECT is(pg_temp.h('pg_cron'), 'ok', 'pg_cron: ok when its job has not failed');
INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status, return_message, start_time, end_time)
SELECT jobid, 900001, current_database(), 'postgres', 'SELECT outreach.tick()', 'failed', 'connection failed', now(), now()
FROM cron.job WHERE jobname = 'outreach-tick';
SELECT is(pg_temp.h('pg_cron'), 'critical', 'pg_cron: critical when the job cannot connect');
SELECT matches((SELECT detail FROM outreach.health WHERE "check" = 'pg_cron'), 'cron.use_background_workers', 'and the detail says which settings work');
INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status, return_message, start_time, end_time)
SELECT jobid, 900002, current_database(), 'postgres', 'SELECT outreach.tick()', 'succeeded', '1 row', now(), now()
FROM cron.job WHERE jobname = 'outreach-tick';
SELECT is(pg_temp.h('pg_cron'), 'ok', 'pg_cron: ok again after a run that succeeded');
SELECT outreach.unschedule_tick();

-- the delayed-message notification: announced once by the first tick at or after send_after
INSERT INTO outreach.quiet_hours VALUES ('sms', '21:00', '08:00');
SELECT outreach.create_template('txt', 'sms', 'Hi', message_class => 'transactional');
SELECT pg_temp.at('2026-03-02 22:00:00+00');
SELECT is((outreach.enqueue_message(3, 'txt', 'transactional')).send_after, '2026-03-03 08:00:00+00'::timestamptz, 'a message in quiet hours waits');
SELECT outreach.tick('2026-03-02 22:00:00+00');
SELECT is(outreach.next_due_at(), '2026-03-03 08:00:00+00'::timestamptz, 'next_due_at says when it is due');
SELECT is(outreach._notify_due('2026-03-03 07:59:00+00'), false, 'no announcement before it is due');
SELECT is(outreach._notify_due('2026-03-03 08:00:30+00'), true, 'the first tick after send_after announces it');
SELECT is(outreach._notify_due('2026-03-03 08:01:30+00'), false, 'and the next tick does not again');

-- retention: bounded batches, and nothing a live segment, running journey or reader needs
SELECT outreach.set_operations_setting('retention_batch', '10');
INSERT INTO outreach.tick_run (at, finished_at) SELECT '2025-01-01 00:00+00'::timestamptz + i * interval '1 minute', '2025-01-02' FROM generate_series(1, 25) i;
SELECT pg_temp.at('2026-03-03 09:00:00+00');
SELECT is((SELECT purged FROM outreach.purge() WHERE kind = 'tick_run'), 10::bigint, 'the purge removes one batch at a time');
SELECT is((SELECT purged FROM outreach.purge() WHERE kind = 'tick_run') + (SELECT purged FROM outreach.purge() WHERE kind = 'tick_run'),
  15::bigint, 'and the rest over the next calls');
SELECT is((SELECT count(*) FROM outreach.tick_run WHERE at < '2026-01-01'), 0::bigint, 'until every old tick_run row is gone');
SELECT ok((SELECT count(*) FROM outreach.tick_run) > 0, 'recent tick_run rows stay');
-- bodies: of finished messages only, the row and outcome stay
SELECT outreach.set_operations_setting('retention_message_body', '1 hour');
SELECT outreach.purge(100);
SELECT is((SELECT count(*) FROM outreach.message WHERE status IN ('sent', 'bounced') AND body IS NULL), 20::bigint, 'bodies of finished messages are dropped');
SELECT is((SELECT count(*) FROM outreach.message WHERE status = 'queued' AND body IS NOT NULL), 1::bigint, 'a queued message keeps its body');
-- membership history: compacted before the horizon, exact after it, unconsumed rows stay
SELECT outreach.set_operations_setting('retention_segment_change', '1 day');
SELECT outreach.create_static_segment('old');
SELECT outreach.go_live('old');
SELECT pg_temp.at('2026-01-01 00:00:00+00');
SELECT outreach.add_members('old', ARRAY[5, 6]::bigint[]);
SELECT pg_temp.at('2026-01-02 00:00:00+00');
SELECT outreach.remove_members('old', ARRAY[6]::bigint[]);
UPDATE outreach.segment_change SET changed_at = CASE change WHEN 'added' THEN '2026-01-01'::timestamptz ELSE '2026-01-02' END
WHERE segment_id = (SELECT id FROM outreach.segment WHERE name = 'old');
SELECT pg_temp.at('2026-03-03 09:00:00+00');
SELECT outreach.purge(1000);
SELECT is((SELECT array_agg(contact_id || ':' || change ORDER BY contact_id) FROM outreach.segment_change
           WHERE segment_id = (SELECT id FROM outreach.segment WHERE name = 'old')),
  ARRAY['5:added'], 'old history is compacted to the current member''s join');
SELECT is(array(SELECT outreach.segment_members_at('old', '2026-03-02')), ARRAY[5]::bigint[], 'segment_members_at stays exact after the horizon');
SELECT ok((SELECT count(*) FROM outreach.segment_change WHERE changed_at >= '2026-03-02') > 0, 'recent history stays');
-- a reader that has not consumed old changes keeps them
SELECT outreach.create_static_segment('old2') \g /dev/null
SELECT outreach.go_live('old2') \g /dev/null
SELECT outreach.add_members('old2', ARRAY[7]::bigint[]) \g /dev/null
SELECT outreach.remove_members('old2', ARRAY[7]::bigint[]) \g /dev/null
UPDATE outreach.segment_change SET changed_at = '2026-01-01', xid = '1' WHERE segment_id = (SELECT id FROM outreach.segment WHERE name = 'old2');
INSERT INTO outreach.segment_change_consumer (name, last_xid, last_id) VALUES ('slow reader', '0', 0);
SELECT outreach.purge(1000) \g /dev/null
SELECT is((SELECT count(*) FROM outreach.segment_change WHERE segment_id = (SELECT id FROM outreach.segment WHERE name = 'old2')),
  2::bigint, 'history a reader has not consumed is kept');
DELETE FROM outreach.segment_change_consumer WHERE name = 'slow reader';
SELECT outreach.purge(1000) \g /dev/null
SELECT is((SELECT count(*) FROM outreach.segment_change WHERE segment_id = (SELECT id FROM outreach.segment WHERE name = 'old2')),
  0::bigint, 'and purged once no reader needs it (the contact left before the horizon)');
-- messages of a running enrollment stay
SELECT outreach.set_operations_setting('retention_message', '1 hour');
UPDATE outreach.message SET enrollment_id = (SELECT id FROM outreach.enrollment WHERE status = 'active' LIMIT 1) WHERE id = 11;
UPDATE outreach.message SET status = 'sending', lease_expires_at = '2026-03-02 16:00+00', finished_at = NULL WHERE id = 12;
SELECT outreach.purge(1000);
SELECT is((SELECT array_agg(id ORDER BY id) FROM outreach.message), ARRAY[11, 12, 21]::bigint[],
  'finished messages past retention are purged, not a running enrollment''s, an unreported one nor a queued one');
SELECT throws_ok($$SELECT * FROM outreach.purge(0)$$, '22023', NULL, 'a purge batch is at least one row');

-- restore detection: only a dump's COPY with check_function_bodies off
SELECT is(outreach._restoring(), false, 'a normal session is not restoring');
SET LOCAL check_function_bodies = off;
SELECT is(outreach._restoring(), false, 'check_function_bodies off alone is not a restore');
RESET check_function_bodies;

SELECT * FROM finish();
ROLLBACK;
