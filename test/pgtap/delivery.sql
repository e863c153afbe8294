-- delivery: the SQL side of outreach-gateway (sql/parts/85_delivery.sql): batch claim and
-- report, retries with a limit, release, the double opt-in confirmation mail, the endpoint
-- functions and their refusals, and who may call what.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(58);

DELETE FROM outreach.quiet_hours;
INSERT INTO outreach.contact (external_id, first_name, last_name, email, phone)
VALUES ('d1', 'Ann', 'Able', 'ann@example.org', '+15550000001'),
       ('d2', 'Ben', 'Noemail', NULL, '+15550000002'),
       ('d3', 'Cat', 'Third', 'cat@example.org', NULL);
SELECT outreach.create_template('t_mail', 'email', subject => 'Hello',
  body => '<p><a href="https://clinic.example/a?x=1&y=2">A</a> <a href="{{unsubscribe_url}}">U</a> {{sender.postal_address}}</p>',
  sender_postal_address => '1 Way');
CREATE TEMP TABLE ids AS
SELECT c.external_id, (outreach.enqueue_message(c.id, 't_mail')).id AS mid FROM outreach.contact c WHERE c.external_id IN ('d1', 'd3');

-- claim ------------------------------------------------------------------------------------
CREATE TEMP TABLE claimed AS SELECT * FROM outreach.gateway_claim('w1', 10, '1 minute', 3);
SELECT is((SELECT count(*) FROM claimed), 2::bigint, 'gateway_claim claims the due messages');
SELECT is((SELECT html FROM claimed LIMIT 1), true, 'an HTML template is flagged html');
SELECT ok((SELECT bool_and(c.unsubscribe_url = 'https://outreach.invalid/unsubscribe?token=' || m.unsubscribe_token)
             FROM claimed c JOIN outreach.message m ON m.id = c.id), 'the placeholder unsubscribe URL is returned for rewriting');
SELECT is((SELECT contact_name FROM claimed c JOIN ids i ON i.mid = c.id WHERE i.external_id = 'd1'), 'Ann Able', 'the contact name for To:');
SELECT ok((SELECT bool_and(open_pixel AND click_tracking) FROM claimed), 'tracking is on by default');
SELECT is((SELECT count(*) FROM outreach.message WHERE status = 'sending' AND claimed_by = 'w1'), 2::bigint, 'claimed messages are leased to the worker');

-- report -----------------------------------------------------------------------------------
SELECT results_eq(
  $$SELECT id, outcome FROM outreach.gateway_report(ARRAY(SELECT mid FROM ids ORDER BY external_id), '{sent,retry}', '{ok,"smtp 451"}',
                                                     '{f,f}', 'w1', ARRAY[NULL, outreach.now() + interval '1 hour']::timestamptz[], 3)$$,
  $$SELECT mid, 'ok'::text FROM ids ORDER BY external_id$$, 'gateway_report reports a batch, one outcome per row');
SELECT is((SELECT status FROM outreach.message m JOIN ids ON ids.mid = m.id WHERE external_id = 'd1'), 'sent', 'sent is recorded');
SELECT is((SELECT status || ' ' || (send_after > outreach.now() + interval '59 minutes')::text || ' ' || detail
             FROM outreach.message m JOIN ids ON ids.mid = m.id WHERE external_id = 'd3'),
          'queued true smtp 451', 'retry puts the message back, due at retry_at, with the reply');
SELECT is((SELECT outcome FROM outreach.gateway_report(ARRAY(SELECT mid FROM ids WHERE external_id = 'd1'), '{sent}', '{x}', '{f}', 'w2')),
          'ok', 'reporting the same status again changes nothing');
SELECT is((SELECT outcome FROM outreach.gateway_report(ARRAY(SELECT mid FROM ids WHERE external_id = 'd3'), '{retry}', '{x}', '{f}', 'w1')),
          'worker "w1" no longer holds message ' || (SELECT mid FROM ids WHERE external_id = 'd3'),
          'a row the worker no longer holds is refused without failing the batch');
SELECT throws_ok($$SELECT * FROM outreach.gateway_report('{1,2}', '{sent}', '{x}', '{f}', 'w1')$$, '2202E',
                 'gateway_report needs arrays of one length', 'arrays of different lengths are refused');
SELECT throws_ok($$SELECT * FROM outreach.gateway_report('{1}', '{sent}', '{x}', '{f}', ' ')$$, '22023',
                 'a worker name is required', 'a worker name is required');

-- retries stop at max_attempts ----------------------------------------------------------------
UPDATE outreach.message SET send_after = outreach.now() WHERE id = (SELECT mid FROM ids WHERE external_id = 'd3');
SELECT is((SELECT count(*) FROM outreach.gateway_claim('w1', 10, '1 minute', 3)), 1::bigint, 'the retried message is claimed again');
SELECT is((SELECT attempts FROM outreach.message WHERE id = (SELECT mid FROM ids WHERE external_id = 'd3')), 2, 'its second attempt');
SELECT is((SELECT outcome FROM outreach.gateway_report(ARRAY(SELECT mid FROM ids WHERE external_id = 'd3'), '{retry}', '{"smtp 451"}', '{f}', 'w1',
                                                       ARRAY[outreach.now()]::timestamptz[], 2)), 'ok', 'retry at the limit');
SELECT is((SELECT status || ': ' || detail FROM outreach.message WHERE id = (SELECT mid FROM ids WHERE external_id = 'd3')),
          'failed: gave up after 2 attempts: smtp 451', 'at max_attempts a retry becomes failed');

-- bounce ----------------------------------------------------------------------------------------
SELECT outreach.enqueue_message(id, 't_mail') FROM outreach.contact WHERE external_id = 'd3';
SELECT is((SELECT count(*) FROM outreach.gateway_claim('w1')), 1::bigint, 'claim for the bounce');
SELECT is((SELECT outcome FROM outreach.gateway_report(ARRAY(SELECT max(id) FROM outreach.message), '{bounced}', '{"smtp 550"}', '{t}', 'w1')),
          'ok', 'a hard bounce is reported');
SELECT is((SELECT do_not_email FROM outreach.contact WHERE external_id = 'd3'), true, 'a hard bounce opts the contact out of email');

-- release, renew, next due --------------------------------------------------------------------
SELECT outreach.enqueue_message(id, 't_mail') FROM outreach.contact WHERE external_id = 'd1';
SELECT is((SELECT count(*) FROM outreach.gateway_claim('w9')), 1::bigint, 'claim for release');
SELECT is(outreach.gateway_renew(ARRAY(SELECT max(id) FROM outreach.message), 'w9', '1 hour'), 1, 'gateway_renew extends the worker''s lease');
SELECT is(outreach.gateway_renew(ARRAY(SELECT max(id) FROM outreach.message), 'other', '1 hour'), 0, 'not another worker''s');
SELECT is(outreach.gateway_release('w9'), 1, 'gateway_release gives back what the worker claimed');
SELECT is((SELECT status FROM outreach.message WHERE id = (SELECT max(id) FROM outreach.message)), 'queued', 'the message is queued again');
SELECT ok(outreach.gateway_next_due() <= outreach.now(), 'gateway_next_due: the released message is due');

-- endpoint functions ----------------------------------------------------------------------------
SELECT is(outreach.gateway_click((SELECT mid FROM ids WHERE external_id = 'd1'), 'https://clinic.example/a?x=1&y=2'),
          'https://clinic.example/a?x=1&y=2', 'a click on a link of the message returns it');
SELECT throws_ok(format('SELECT outreach.gateway_click(%s, %L)', (SELECT mid FROM ids WHERE external_id = 'd1'), 'https://evil.example/'),
                 '22023', 'the link is not in message ' || (SELECT mid FROM ids WHERE external_id = 'd1'), 'a click to any other URL is refused');
SELECT throws_ok(format('SELECT outreach.gateway_open(%s)', (SELECT max(id) FROM outreach.message)), 'P0002',
                 'message ' || (SELECT max(id) FROM outreach.message) || ' was not sent', 'a message that was not sent has no working links');
SELECT is((SELECT done FROM outreach.gateway_unsubscribe_info((SELECT mid FROM ids WHERE external_id = 'd1'))), false, 'not unsubscribed yet');
SELECT is(outreach.gateway_unsubscribe((SELECT mid FROM ids WHERE external_id = 'd1')), true, 'unsubscribe');
SELECT is(outreach.gateway_unsubscribe((SELECT mid FROM ids WHERE external_id = 'd1')), false, 'a second unsubscribe changes nothing');
SELECT throws_ok(format('SELECT outreach.gateway_update_preferences(%s, %L)', (SELECT mid FROM ids WHERE external_id = 'd1'), '{"preferred_channel": "fax"}'),
                 '22023', 'invalid preferred channel "fax"', 'an unknown preferred channel is refused');
SELECT is((SELECT (outreach.gateway_update_preferences((SELECT mid FROM ids WHERE external_id = 'd1'), '{"email": true, "sms": false}'))->'channels'->'sms'->>'allowed'),
          'false', 'the preference centre changes channels');
SELECT outreach.create_subscription_list('Eye news');
SELECT outreach.subscribe('Eye news', id) FROM outreach.contact WHERE external_id = 'd1';
SELECT is((SELECT (outreach.gateway_update_preferences((SELECT mid FROM ids WHERE external_id = 'd1'), '{"lists": {"Eye news": false}}'))->'lists'),
          '[{"name": "Eye news", "status": "unsubscribed"}]'::jsonb, 'the preference centre unsubscribes from a list');
SELECT is((SELECT unsubscribe_source FROM outreach.subscription s JOIN outreach.contact c ON c.id = s.contact_id WHERE c.external_id = 'd1'),
          'preference centre (message ' || (SELECT mid FROM ids WHERE external_id = 'd1') || ')', 'with the preference centre as the source');
SELECT throws_ok(format('SELECT outreach.gateway_update_preferences(%s, %L)', (SELECT mid FROM ids WHERE external_id = 'd1'), '{"lists": {"Other": true}}'),
                 '22023', 'list "Other" is not one of this contact''s lists', 'only the contact''s own lists can be changed');
SELECT throws_ok($$SELECT outreach.gateway_inbound_sms('5550000001', 'STOP')$$, '22023', 'invalid sender number "5550000001"',
                 'an inbound number that is not E.164 is refused');
SELECT is(outreach.gateway_inbound_sms('+15550000001', ' start '), 'You will receive our text messages again. Reply STOP to stop.', 'START');
SELECT is(outreach.gateway_inbound_sms('+15550000001', 'hello'), NULL, 'other texts get no reply');

-- double opt-in confirmation mail ----------------------------------------------------------
SELECT outreach.create_subscription_list('News', double_opt_in => true);
SELECT outreach.subscribe('News', id) FROM outreach.contact WHERE external_id IN ('d1', 'd2');
SELECT is((SELECT string_agg(c.external_id || ':' || m.status || ':' || coalesce(m.suppression_reason, '') || ':' || (strpos(m.body, 'https://outreach.invalid/confirm?token=' || s.confirmation_token) > 0)::text, ' ' ORDER BY c.external_id)
             FROM outreach.message m JOIN outreach.contact c ON c.id = m.contact_id
             JOIN outreach.subscription s ON s.contact_id = c.id AND s.list_id = m.subscription_list_id
            WHERE m.template_name = 'outreach:confirm_subscription'),
          'd1:queued::true d2:suppressed:no_address:true', 'subscribing to a double opt-in list queues the confirmation mail (suppressed without an address)');

-- events: attachments in the claim, the registration link, the registration page's functions ----
SELECT outreach.create_event('Gateway day', outreach.now() + interval '10 days', outreach.now() + interval '10 days 2 hours',
                             'America/New_York', venue => 'Hall 1', capacity => 1);
SELECT outreach.add_session('Gateway day', 'Morning', outreach.now() + interval '10 days', outreach.now() + interval '10 days 1 hour', 5);
SELECT outreach.publish_event('Gateway day');
SELECT outreach.create_template('t_event', 'email', subject => 'Your code',
  body => '<p>{{registration.code}} <a href="{{event.registration_url}}">Register</a></p>', message_class => 'transactional');
SELECT outreach.set_template_event('t_event', 'Gateway day');
UPDATE outreach.message SET status = 'failed' WHERE status IN ('queued', 'sending');   -- out of the way of the claims below
INSERT INTO outreach.contact (external_id, first_name, email) VALUES ('d4', 'Dee', 'dee@example.org');
CREATE TEMP TABLE ev_code AS SELECT outreach.register('Gateway day', id) AS code FROM outreach.contact WHERE external_id = 'd1';
CREATE TEMP TABLE ev_ids AS
SELECT c.external_id, (outreach.enqueue_message(c.id, 't_event', 'transactional')).id AS mid FROM outreach.contact c WHERE c.external_id IN ('d1', 'd4');
SELECT is((SELECT string_agg(i.external_id || ':' || (strpos(m.body, 'https://outreach.invalid/event-registration?event=' || e.id || '"') > 0)::text, ' ' ORDER BY i.external_id)
             FROM ev_ids i JOIN outreach.message m ON m.id = i.mid, outreach.event e WHERE e.name = 'Gateway day'),
          'd1:true d4:true', '{{event.registration_url}} renders the placeholder the gateway signs, with the event id');
CREATE TEMP TABLE ev_claimed AS SELECT * FROM outreach.gateway_claim('w-ev', 10, '1 minute', 3);
SELECT is((SELECT string_agg(i.external_id || ':' || (x.contact_id = c.id)::text || ':' || (x.attachments IS NOT NULL)::text, ' ' ORDER BY i.external_id)
             FROM ev_claimed x JOIN ev_ids i ON i.mid = x.id JOIN outreach.contact c ON c.external_id = i.external_id),
          'd1:true:true d4:true:false', 'gateway_claim returns the contact and the attachments (only the registrant has an .ics)');
SELECT is((SELECT split_part(x.attachments, chr(31), 1) || '|' || split_part(x.attachments, chr(31), 2) || '|'
                  || (convert_from(decode(split_part(x.attachments, chr(31), 3), 'base64'), 'UTF8') = a.content)::text
             FROM ev_claimed x JOIN ev_ids i ON i.mid = x.id AND i.external_id = 'd1' JOIN outreach.message_attachment a ON a.message_id = x.id),
          'invite.ics|text/calendar; charset=utf-8; method=REQUEST|true', 'the packed attachment: file name, content type, the content in base64');
SELECT is((SELECT max(length(l)) FROM ev_claimed x, regexp_split_to_table(split_part(x.attachments, chr(31), 3), E'\n') l
            WHERE x.attachments IS NOT NULL), 76, 'the base64 comes in lines of 76 characters');
SELECT is((SELECT x->>'state' || '|' || (x->>'free_seats') || '|' || (x->'sessions'->0->>'name') || '|' || (x->'sessions'->0->>'free_seats') || '|' || (x->'registration'->>'code')
             FROM outreach.contact c, outreach.event e, outreach.gateway_event_info(e.id, c.id) x WHERE c.external_id = 'd1' AND e.name = 'Gateway day'),
          'open|0|Morning|5|' || (SELECT code FROM ev_code), 'gateway_event_info: open, free seats, sessions, the contact''s registration');
SELECT is((SELECT (x->>'registration') IS NULL AND x->>'starts_at' LIKE '%(America/New_York)'
             FROM outreach.contact c, outreach.event e, outreach.gateway_event_info(e.id, c.id) x WHERE c.external_id = 'd4' AND e.name = 'Gateway day'),
          true, 'gateway_event_info: no registration yet; times in the event''s time zone');
SELECT throws_ok($$SELECT outreach.gateway_event_info(-1, 1)$$, 'P0002', NULL, 'gateway_event_info of an unknown event is refused');
SELECT is((SELECT g.code = (SELECT code FROM ev_code) AND g.status = 'registered'
             FROM outreach.contact c, outreach.event e, outreach.gateway_register(e.id, c.id) g WHERE c.external_id = 'd1' AND e.name = 'Gateway day'),
          true, 'gateway_register twice returns the first code');
CREATE TEMP TABLE ev_wait AS
SELECT g.* FROM outreach.contact c, outreach.event e, outreach.gateway_register(e.id, c.id, '{Morning}') g WHERE c.external_id = 'd4' AND e.name = 'Gateway day';
SELECT is((SELECT g.status || '|' || g.waitlist_position || '|' || r.source FROM ev_wait g JOIN outreach.event_registration r ON r.registration_code = g.code),
          'waitlisted|1|gateway', 'gateway_register on a full event: waitlisted with its position, source gateway');
SELECT throws_ok($$SELECT outreach.gateway_register(e.id, c.id, '{Evening}') FROM outreach.contact c, outreach.event e WHERE c.external_id = 'd2' AND e.name = 'Gateway day'$$,
                 '42704', NULL, 'gateway_register with an unknown session is refused');
SELECT throws_ok($$SELECT outreach.gateway_register(-1, 1)$$, 'P0002', NULL, 'gateway_register of an unknown event is refused');
SELECT is(outreach.cancel_event('Gateway day'), 2, 'cancel_event cancels both registrations');
SELECT is((SELECT x->>'state' FROM outreach.contact c, outreach.event e, outreach.gateway_event_info(e.id, c.id) x WHERE c.external_id = 'd2' AND e.name = 'Gateway day'),
          'cancelled', 'gateway_event_info says when the event is cancelled');
SELECT throws_ok($$SELECT outreach.gateway_register(e.id, c.id) FROM outreach.contact c, outreach.event e WHERE c.external_id = 'd2' AND e.name = 'Gateway day'$$,
                 '55000', NULL, 'gateway_register for a cancelled event is refused');
SELECT ok(has_function_privilege('outreach_sender', 'outreach.gateway_register(bigint, bigint, text[])', 'EXECUTE')
          AND has_function_privilege('outreach_sender', 'outreach.gateway_event_info(bigint, bigint)', 'EXECUTE')
          AND NOT has_function_privilege('outreach_marketer', 'outreach.gateway_register(bigint, bigint, text[])', 'EXECUTE')
          AND NOT has_function_privilege('outreach_analyst', 'outreach.gateway_event_info(bigint, bigint)', 'EXECUTE'),
          'only the gateway (outreach_sender) and admins may call the registration page''s functions');

-- privileges ------------------------------------------------------------------------------------
SELECT ok(has_function_privilege('outreach_sender', 'outreach.gateway_claim(text, integer, interval, integer)', 'EXECUTE')
          AND has_function_privilege('outreach_sender', 'outreach.gateway_click(bigint, text)', 'EXECUTE'),
          'outreach_sender may call the gateway functions');
SELECT ok(NOT has_function_privilege('outreach_sender', 'outreach.set_template_tracking(text, boolean, boolean)', 'EXECUTE')
          AND NOT has_function_privilege('outreach_analyst', 'outreach.gateway_claim(text, integer, interval, integer)', 'EXECUTE'),
          'other roles may not, and the sender may not change templates');

SELECT * FROM finish();
ROLLBACK;
