-- journeys_engine: the set-based tick and batch outbox of 0.3 (issue 15).
--   * _enqueue_batch against enqueue_message on a random population (the single-message
--     door is the oracle): same status, reason, address, text, send time, cap counting;
--   * _render_contact against _render_for;
--   * no per-tick cap, the time budget, how far behind; a bad enrollment isolated in a big
--     batch; caps across journeys inside one batch; exactly once with a message already there;
--   * a step and the end step after it in one round (history of both, the enrollment written
--     once), not when the step exited it; a step and the wait after it in one round; the
--     pacing row only for messages that may count;
--   * report_deliveries and report_interactions: outcomes and argument errors.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(53);

CREATE TEMP TABLE seed AS SELECT coalesce(nullif(current_setting('outreach_test.seed', true), '')::float8,
                                          (extract(epoch FROM clock_timestamp())::bigint % 1000) / 1000.0) AS s;
SELECT diag('random seed: ' || s) FROM seed;
SELECT setseed(s) FROM seed;

SET LOCAL outreach.now = '2026-03-08 03:30:00+00';
DELETE FROM outreach.frequency_cap;
INSERT INTO outreach.frequency_cap VALUES ('email', 2, '7 days'), ('sms', 1, '1 day');
SELECT outreach.create_template('news', 'email',
  'Hi {{contact.first_name | default: ''there''}} from {{contact.account.name | default: ''us''}}, born {{contact.birthdate}} <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}} <b>{{contact.last_name}}</b>',
  subject => 'News for {{contact.first_name}} & co', sender_postal_address => '1 Main St, Springfield');
SELECT outreach.create_template('text', 'sms', 'Hi {{contact.first_name}}, reply STOP to opt out {{contact.do_not_sms}} {{contact.deceased_at}}');
SELECT outreach.create_template('paper', 'letter', 'Dear {{contact.first_name}} {{contact.last_name}},');
SELECT outreach.create_template('reminder', 'email', 'See you tomorrow, {{contact.first_name}}', subject => 'Reminder', message_class => 'transactional');
SELECT outreach.create_subscription_list('newsletter');
INSERT INTO outreach.account (name) VALUES ('Clinic <One> & "Two"');

CREATE TEMP TABLE pop AS
SELECT i,
       (ARRAY['active', 'active', 'active', 'inactive'])[1 + floor(random() * 4)::int] AS status,
       CASE WHEN random() < 0.1 THEN timestamptz '2025-06-01 10:00+02' END AS deceased_at,
       (ARRAY['e' || i || '@example.org', 'e' || i || '@example.org', NULL, '', 'broken-' || i])[1 + floor(random() * 5)::int] AS email,
       CASE WHEN random() < 0.7 THEN '+1415556' || lpad(i::text, 4, '0') END AS phone,
       (ARRAY['full', 'full', 'none', 'partial'])[1 + floor(random() * 4)::int] AS postal,
       random() < 0.15 AS do_not_email, random() < 0.15 AS do_not_sms, random() < 0.15 AS do_not_mail,
       (ARRAY['none', 'subscribed', 'subscribed', 'unsubscribed'])[1 + floor(random() * 4)::int] AS sub,
       (ARRAY['America/New_York', 'Europe/London', 'Asia/Tokyo', 'Pacific/Chatham', NULL])[1 + floor(random() * 5)::int] AS tz,
       floor(random() * 3)::int AS prior_email,
       random() < 0.3 AS prior_sms,
       CASE WHEN random() < 0.5 THEN (SELECT id FROM outreach.account LIMIT 1) END AS account_id,
       CASE WHEN random() < 0.8 THEN date '1950-01-01' + floor(random() * 20000)::int END AS birthdate
  FROM generate_series(1, 600) i;
INSERT INTO outreach.contact (id, external_id, first_name, last_name, status, deceased_at, email, phone, address_line, city,
                              postal_code, country, do_not_email, do_not_sms, do_not_mail, time_zone, account_id, birthdate)
SELECT 200000 + i, 'b' || i, CASE WHEN i % 7 <> 0 THEN 'F<' || i || '>' END, 'L&' || i, status, deceased_at, email, phone,
       CASE WHEN postal <> 'none' THEN i || ' Elm St' END, CASE WHEN postal <> 'none' THEN 'Springfield' END,
       CASE WHEN postal = 'full' THEN '12345' END, CASE WHEN postal <> 'none' THEN 'US' END,
       do_not_email, do_not_sms, do_not_mail, tz, account_id, birthdate
  FROM pop;
SELECT count(outreach.subscribe('newsletter', 200000 + i, 'test')) FROM pop WHERE sub IN ('subscribed', 'unsubscribed');
SELECT count(*) FROM (SELECT outreach.unsubscribe('newsletter', 200000 + i, 'test') FROM pop WHERE sub = 'unsubscribed') x;
INSERT INTO outreach.message (contact_id, template_name, channel, message_class, status, unsubscribe_token, send_after, created_at, updated_at)
SELECT 200000 + i, 'history', 'email', 'marketing', 'sent', 'bh' || i || '-' || n, timestamptz '2026-03-05', timestamptz '2026-03-05', timestamptz '2026-03-05'
  FROM pop, generate_series(1, 2) n WHERE n <= prior_email
UNION ALL
SELECT 200000 + i, 'history', 'sms', 'marketing', 'delivered', 'bhs' || i, '2026-03-08 01:00+00', '2026-03-08 01:00+00', '2026-03-08 01:00+00'
  FROM pop WHERE prior_sms;

-- the requests: every contact gets the four templates, twice the newsletter (the cap counts
-- the first one of the batch for the second)
CREATE TEMP TABLE req AS
SELECT row_number() OVER (ORDER BY p.i, x.k) AS n, p.i, x.tpl, x.cls, x.list
  FROM pop p, (VALUES (1, 'news', 'marketing', 'newsletter'), (2, 'text', 'marketing', NULL), (3, 'paper', 'marketing', NULL),
                      (4, 'reminder', 'transactional', NULL), (5, 'news', 'marketing', 'newsletter')) x(k, tpl, cls, list);

-- the oracle: enqueue_message, one by one, in a subtransaction that is undone afterwards
-- (PL/pgSQL variables survive the rollback and carry the results out)
CREATE TEMP TABLE single (n bigint, status text, suppression_reason text, address text, subject text, body text,
                          sms_segments int, send_after timestamptz, channel text, message_class text);
CREATE FUNCTION pg_temp.single_run() RETURNS SETOF single LANGUAGE plpgsql AS $$
DECLARE r record; m outreach.message; acc single[] := '{}';
BEGIN
  BEGIN
    FOR r IN SELECT * FROM req ORDER BY n LOOP
      m := outreach.enqueue_message(200000 + r.i, r.tpl, r.cls, r.list, -1, r.n, -1, '2026-03-08 03:30+00');
      acc := acc || ROW(r.n, m.status, m.suppression_reason, m.address, m.subject,
                        replace(m.body, m.unsubscribe_token, 'TOKEN'), m.sms_segments, m.send_after, m.channel, m.message_class)::single;
    END LOOP;
    RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
  EXCEPTION WHEN SQLSTATE 'P0001' THEN
    RETURN QUERY SELECT * FROM unnest(acc);
  END;
END $$;
CREATE TEMP TABLE single_kept AS SELECT * FROM pg_temp.single_run();
SELECT is((SELECT count(*) FROM outreach.message WHERE enrollment_id IS NOT NULL), 0::bigint, 'the oracle run left nothing behind');

CREATE TEMP TABLE batch_out AS
SELECT * FROM outreach._enqueue_batch(ARRAY(SELECT ROW(r.n, -1, -1, 200000 + r.i, r.tpl, r.cls, r.list)::outreach.message_request
                                              FROM req r ORDER BY r.n), '2026-03-08 03:30+00');
CREATE TEMP TABLE batch AS
SELECT q.enrollment_id AS n, m.status, m.suppression_reason, m.address, m.subject,
       replace(m.body, m.unsubscribe_token, 'TOKEN') AS body, m.sms_segments, m.send_after, m.channel, m.message_class, q.error
  FROM batch_out q LEFT JOIN outreach.message m ON m.id = q.message_id;

SELECT is((SELECT count(*) FROM batch), 3000::bigint, 'the batch answers every request');
SELECT is((SELECT count(*) FROM batch WHERE error IS NOT NULL), 0::bigint, 'with no error');
SELECT is((SELECT count(*) FROM single_kept s JOIN batch b USING (n)
            WHERE (s.status, s.suppression_reason, s.address, s.channel, s.message_class)
                  IS DISTINCT FROM (b.status, b.suppression_reason, b.address, b.channel, b.message_class)), 0::bigint,
          'the batch judges consent, addresses and caps as enqueue_message does, message for message');
SELECT is((SELECT count(*) FROM single_kept s JOIN batch b USING (n) WHERE s.send_after IS DISTINCT FROM b.send_after), 0::bigint,
          'the batch holds messages for quiet hours as enqueue_message does');
SELECT is((SELECT count(*) FROM single_kept s JOIN batch b USING (n)
            WHERE (s.subject, s.body, s.sms_segments) IS DISTINCT FROM (b.subject, b.body, b.sms_segments)), 0::bigint,
          'the batch renders (in C) what enqueue_message renders');
SELECT ok((SELECT count(DISTINCT suppression_reason) FROM batch) >= 7, 'the population exercises the reasons');
SELECT ok((SELECT count(*) FROM batch b JOIN req r USING (n) WHERE r.tpl = 'news' AND b.suppression_reason = 'frequency_cap') > 0
          AND (SELECT count(*) FROM batch WHERE status = 'queued') > 300, 'caps bite and many messages are queued');
SELECT diag(string_agg(coalesce(suppression_reason, status) || ': ' || c, ', ' ORDER BY 1))
  FROM (SELECT suppression_reason, status, count(*) c FROM batch GROUP BY 1, 2) x;
-- exactly once: a second batch of the same (enrollment, step) returns the same messages
CREATE TEMP TABLE again AS SELECT * FROM outreach._enqueue_batch(ARRAY(SELECT ROW(r.n, -1, -1, 200000 + r.i, r.tpl, r.cls, r.list)::outreach.message_request
                                                               FROM req r WHERE r.n <= 50), '2026-03-08 04:00+00');
SELECT is((SELECT count(*) FROM again q LEFT JOIN outreach.message m ON m.id = q.message_id
            WHERE m.created_at IS DISTINCT FROM '2026-03-08 03:30+00'), 0::bigint,
          'the same (enrollment, step) again queues nothing new');
SELECT is((SELECT count(*) FROM outreach.message WHERE enrollment_id IS NOT NULL), 3000::bigint, 'one message per (enrollment, step)');
-- errors come back per request
SELECT is((SELECT array_agg(q.error ORDER BY q.enrollment_id DESC) FROM outreach._enqueue_batch(ARRAY[
             ROW(-90001, -2, -1, 200001, 'nope', 'marketing', NULL)::outreach.message_request,
             ROW(-90002, -2, -1, 200001, 'news', 'transactional', NULL)::outreach.message_request,
             ROW(-90003, -2, -1, 200001, 'news', 'marketing', 'no list')::outreach.message_request], now()) q),
          ARRAY['template "nope" does not exist', 'template "news" is a marketing template and cannot be sent as transactional',
                'subscription list "no list" does not exist'],
          'a request that cannot be sent comes back with its error');

-- _render_contact and _render_for agree
SELECT is((SELECT count(*) FROM outreach.contact c LEFT JOIN outreach.account a ON a.id = c.account_id,
                  outreach.template t,
                  LATERAL outreach._render_for(t, c, 'tok') f
            WHERE c.id > 200000 AND t.name IN ('news', 'text', 'paper')
              AND (outreach._render_contact(t.body, t.format = 'html', t.tokens, c, a, 'https://outreach.invalid/unsubscribe?token=tok', t.sender_postal_address),
                   outreach._render_contact(t.subject, false, t.tokens, c, a, 'https://outreach.invalid/unsubscribe?token=tok', t.sender_postal_address))
                  IS DISTINCT FROM (f.body, f.subject)), 0::bigint,
          'the C batch renderer gives what _render_for gives (escaping, defaults, dates, booleans, accounts)');
SELECT ok(outreach._render_batchable(ARRAY['contact.first_name', 'unsubscribe_url', 'sender.postal_address', 'contact.account.name'])
          AND NOT outreach._render_batchable(ARRAY['contact.first_name', 'event.name']),
          'templates with tokens of other families go through _render_for');
SELECT throws_ok($$ SELECT outreach._render_contact('x', false, NULL, c, NULL, NULL, NULL) FROM outreach.contact c LIMIT 1 $$,
                 '22004', NULL, '_render_contact needs the tokens');

-- The tick ------------------------------------------------------------------------------
DELETE FROM outreach.frequency_cap;
CREATE FUNCTION pg_temp.audience(name text, ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM outreach.create_static_segment(name);
  PERFORM outreach.go_live(name);
  PERFORM outreach.add_members(name, ids);
END $$;
INSERT INTO outreach.contact (id, external_id, first_name, email, time_zone)
SELECT 300000 + i, 'k' || i, 'K' || i, 'k' || i || '@example.org', 'UTC' FROM generate_series(1, 1200) i;
SELECT pg_temp.audience('je_big', ARRAY(SELECT 300000 + i FROM generate_series(1, 1200) i));
SELECT outreach.create_journey('je_big', 'je_big', message_class => 'transactional');
SELECT outreach.add_step('je_big', 'mail', 'email', template => 'reminder', next => 'done');
SELECT outreach.add_step('je_big', 'done', 'end');
SELECT is(outreach.launch_journey('je_big'), 1200, 'launch enrolls the whole audience in one statement');

-- the time budget: spent before the first batch
UPDATE outreach.messaging_settings SET journey_tick_budget = '1 microsecond';
SELECT is((SELECT (r.processed, r.time_boxed, r.more_due, r.due_left)::text FROM outreach.tick_journeys('2026-03-09 12:00+00') r),
          '(0,t,t,1200)', 'a tick whose time budget is spent stops and says how far behind it is');
SELECT is((SELECT oldest_due_at FROM outreach.journey_tick_run ORDER BY id DESC LIMIT 1), '2026-03-08 03:30+00'::timestamptz,
          'and since when');
UPDATE outreach.messaging_settings SET journey_tick_budget = '50 seconds';

-- a bad enrollment among 1,200 in batches of 500: it fails alone, the rest go on
CREATE FUNCTION pg_temp.refuse_k77() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.contact_id = 300077 THEN RAISE EXCEPTION 'k77 is refused'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_k77 BEFORE INSERT ON outreach.message FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_k77();
SELECT is((SELECT (r.processed, r.completed, r.failed, r.batches, r.messages, r.more_due, r.due_left, r.time_boxed)::text
             FROM outreach.tick_journeys('2026-03-09 12:00+00', batch_size => 500) r),
          '(1200,1199,1,3,1199,f,0,f)', 'no cap per tick: every batch is done; one bad enrollment fails alone');
DROP TRIGGER refuse_k77 ON outreach.message;
SELECT is((SELECT (e.status, e.error, e.current_step)::text FROM outreach.enrollment e WHERE e.contact_id = 300077),
          '(failed,"k77 is refused",mail)', 'it is failed with its error on its step');
SELECT is((SELECT count(*) FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'je_big'),
          1199::bigint, 'one message for each of the others');
SELECT is((SELECT count(*) FROM outreach.enrollment_step s JOIN outreach.journey j ON j.id = s.journey_id
            WHERE j.name = 'je_big' AND s.step_key = 'done'), 1199::bigint, 'and each of them ended');
SELECT throws_ok($$ SELECT outreach.tick_journeys(now(), max_batches => 0) $$, '22023', NULL, 'max_batches must be positive when given');

-- the frequency cap across journeys inside one batch: the first in order is queued
INSERT INTO outreach.frequency_cap VALUES ('email', 1, '1 day');
SELECT outreach.create_template('promo', 'email', 'Hi <a href="{{unsubscribe_url}}">x</a> {{sender.postal_address}}',
                                subject => 'Promo', sender_postal_address => '1 Main St');
SELECT pg_temp.audience('je_cap', ARRAY[300001::bigint, 300002]);
SELECT outreach.create_journey('je_cap_a', 'je_cap');
SELECT outreach.add_step('je_cap_a', 'mail', 'email', template => 'promo');
SELECT outreach.create_journey('je_cap_b', 'je_cap');
SELECT outreach.add_step('je_cap_b', 'mail', 'email', template => 'promo');
SELECT outreach.launch_journey('je_cap_a'), outreach.launch_journey('je_cap_b');
SELECT is((SELECT r.batches FROM outreach.tick_journeys('2026-03-10 12:00+00') r), 1, 'both journeys in one batch');
SELECT is((SELECT array_agg(m.status || coalesce('/' || m.suppression_reason, '') ORDER BY m.contact_id, m.journey_id)
             FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name LIKE 'je_cap_%'),
          ARRAY['queued', 'suppressed/frequency_cap', 'queued', 'suppressed/frequency_cap'],
          'a contact in two journeys of one batch gets one message under a cap of one');
SELECT is((SELECT count(*) FROM outreach.contact_pacing WHERE contact_id IN (300001, 300002) AND channel = 'email'), 2::bigint,
          'the batch writes the pacing rows');

-- exactly once: the message of a step already there is used, not queued again
SELECT pg_temp.audience('je_once', ARRAY[300010::bigint]);
SELECT outreach.create_journey('je_once', 'je_once', message_class => 'transactional');
SELECT outreach.add_step('je_once', 'mail', 'email', template => 'reminder');
SELECT outreach.launch_journey('je_once');
SELECT outreach.enqueue_message(300010, 'reminder', 'transactional', NULL, j.id, e.id, s.id, '2026-03-10 11:00+00')
  FROM outreach.journey j JOIN outreach.enrollment e ON e.journey_id = j.id JOIN outreach.journey_step s ON s.journey_id = j.id
 WHERE j.name = 'je_once';
SELECT is((SELECT r.messages FROM outreach.tick_journeys('2026-03-10 12:05+00') r), 1, 'the tick does the step');
SELECT is((SELECT count(*)::text || ' ' || min(m.created_at)::text FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id
            WHERE j.name = 'je_once'), '1 2026-03-10 11:00:00+00', 'with the message that was already there');

-- a template dropped under a live journey fails its enrollments only
SELECT outreach.create_template('gone', 'email', 'Bye', subject => 'Bye', message_class => 'transactional');
SELECT pg_temp.audience('je_gone', ARRAY[300020::bigint, 300021]);
SELECT outreach.create_journey('je_gone', 'je_gone', message_class => 'transactional');
SELECT outreach.add_step('je_gone', 'mail', 'email', template => 'gone');
SELECT outreach.launch_journey('je_gone');
SELECT outreach.drop_template('gone');
SELECT is((SELECT (r.processed, r.failed)::text FROM outreach.tick_journeys('2026-03-10 12:10+00') r), '(2,2)',
          'a step whose template is gone fails');
SELECT is((SELECT array_agg(DISTINCT e.error) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
            WHERE j.name = 'je_gone'), ARRAY['template "gone" does not exist'], 'with the reason');

-- A step followed by an end step: the enrollment ends in the same round (written once),
-- with both history rows in order; one that a step has already ended does not get the end
SELECT pg_temp.audience('je_fold', ARRAY[300040::bigint, 300041]);
SELECT outreach.create_journey('je_fold', 'je_fold', message_class => 'transactional');
SELECT outreach.add_step('je_fold', 'mail', 'email', template => 'reminder', next => 'done');
SELECT outreach.add_step('je_fold', 'done', 'end');
SELECT outreach.launch_journey('je_fold');
SELECT is((SELECT (r.processed, r.steps, r.messages, r.completed, r.exited)::text FROM outreach.tick_journeys('2026-03-10 12:20+00') r),
          '(2,4,2,2,0)', 'a message step and its end step in one tick');
SELECT is((SELECT array_agg(s.step_key || '/' || s.outcome || '/' || s.done_at::text ORDER BY s.id)
             FROM outreach.enrollment_step s JOIN outreach.enrollment e ON e.id = s.enrollment_id WHERE e.contact_id = 300040
              AND s.journey_id = (SELECT id FROM outreach.journey WHERE name = 'je_fold')),
          ARRAY['mail/queued/2026-03-10 12:20:00+00', 'done/ended/2026-03-10 12:20:00+00'], 'history: the message step, then the end step');
SELECT is((SELECT array_agg(DISTINCT (e.status, e.current_step, e.ended_at, e.next_run_at)::text)
             FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id WHERE j.name = 'je_fold'),
          ARRAY['(completed,,"2026-03-10 12:20:00+00",)'], 'the enrollments are completed');
-- a step followed by a wait: moved with the time it waits until, in the same round
SELECT pg_temp.audience('je_pause', ARRAY[300043::bigint]);
SELECT outreach.create_journey('je_pause', 'je_pause', message_class => 'transactional');
SELECT outreach.add_step('je_pause', 'mail', 'email', template => 'reminder', next => 'pause');
SELECT outreach.add_step('je_pause', 'pause', 'wait', duration => '1 day', next => 'done');
SELECT outreach.add_step('je_pause', 'done', 'end');
SELECT outreach.launch_journey('je_pause');
SELECT is((SELECT (r.processed, r.steps, r.completed)::text FROM outreach.tick_journeys('2026-03-10 12:21+00') r),
          '(1,1,0)', 'a message step, then a wait that has not passed');
SELECT is((SELECT (e.status, e.current_step, e.step_entered_at, e.next_run_at)::text
             FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id WHERE j.name = 'je_pause'),
          '(active,pause,"2026-03-10 12:21:00+00","2026-03-11 12:21:00+00")', 'the enrollment waits on the wait step until a day later');
SELECT is((SELECT (r.processed, r.steps, r.completed)::text FROM outreach.tick_journeys('2026-03-11 12:21+00') r),
          '(1,2,1)', 'a day later: the wait is done and the journey ends');
SELECT is((SELECT array_agg(s.step_key || '/' || s.outcome ORDER BY s.id) FROM outreach.enrollment_step s
             JOIN outreach.journey j ON j.id = s.journey_id WHERE j.name = 'je_pause'),
          ARRAY['mail/queued', 'pause/waited', 'done/ended'], 'history of the three steps');
SELECT outreach.create_static_segment('je_tag_out');
SELECT outreach.go_live('je_tag_out');
SELECT pg_temp.audience('je_tag', ARRAY[300042::bigint]);
SELECT outreach.create_journey('je_tag', 'je_tag', message_class => 'transactional', suppression => 'je_tag_out');
SELECT outreach.add_step('je_tag', 'tag', 'add_to_segment', segment => 'je_tag_out', next => 'done');
SELECT outreach.add_step('je_tag', 'done', 'end');
SELECT outreach.launch_journey('je_tag');
SELECT is((SELECT (r.processed, r.steps, r.completed, r.exited)::text FROM outreach.tick_journeys('2026-03-10 12:25+00') r),
          '(1,1,0,1)', 'a step that puts the contact in the suppression segment exits it: no end step');
SELECT is((SELECT (e.status, e.exit_reason, (SELECT array_agg(s.step_key) FROM outreach.enrollment_step s WHERE s.enrollment_id = e.id))::text
             FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id WHERE j.name = 'je_tag'),
          '(exited,"in the suppression segment",{tag})', 'exited, with the history of the step it did');

-- the pacing row: not for a marketing message the contact's own row suppresses (opted out)
INSERT INTO outreach.contact (id, external_id, first_name, email, time_zone, do_not_email)
VALUES (301350, 'k-pace-a', 'Pa', 'pa@example.org', 'UTC', false), (301351, 'k-pace-b', 'Pb', 'pb@example.org', 'UTC', true);
SELECT pg_temp.audience('je_pace', ARRAY[301350::bigint, 301351]);
SELECT outreach.create_journey('je_pace', 'je_pace');
SELECT outreach.add_step('je_pace', 'mail', 'email', template => 'promo');
SELECT outreach.launch_journey('je_pace');
SELECT is((SELECT r.messages FROM outreach.tick_journeys('2026-03-10 12:30+00') r), 2, 'two marketing messages');
SELECT is((SELECT array_agg(m.contact_id || ' ' || m.status || coalesce('/' || m.suppression_reason, '') ORDER BY m.contact_id)
             FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'je_pace'),
          ARRAY['301350 queued', '301351 suppressed/opted_out'], 'one queued, one suppressed (opted out)');
SELECT is((SELECT array_agg(p.contact_id ORDER BY p.contact_id) FROM outreach.contact_pacing p WHERE p.contact_id IN (301350, 301351)),
          ARRAY[301350::bigint], 'only the queued one writes its pacing row');

-- Batch reporting -------------------------------------------------------------------------
SET LOCAL outreach.now = '2026-03-11 12:00+00';
CREATE TEMP TABLE got AS SELECT id FROM outreach.claim_messages('wb', 3);
SELECT is((SELECT count(*) FROM got), 3::bigint, 'a worker claims three');
SELECT is((SELECT array_agg(r.outcome ORDER BY r.ord)
             FROM outreach.report_deliveries((SELECT array_agg(id ORDER BY id) FROM got) || ARRAY[-1::bigint],
                                             ARRAY['sent', 'sent', 'failed', 'sent'], worker => 'wb') WITH ORDINALITY r(message_id, status, outcome, detail, ord)),
          ARRAY['recorded', 'recorded', 'recorded', 'refused'], 'one round trip records three outcomes and refuses an unknown id');
SELECT is((SELECT array_agg(r.outcome || '/' || r.status ORDER BY r.ord)
             FROM outreach.report_deliveries((SELECT array_agg(id ORDER BY id) FROM got),
                                             ARRAY['sent', 'delivered', 'delivered'], ARRAY['again', 'ok', 'late'])
                  WITH ORDINALITY r(message_id, status, outcome, detail, ord)),
          ARRAY['unchanged/sent', 'recorded/delivered', 'refused/failed'],
          'a repeated report changes nothing, a later one is recorded, an impossible one is refused');
SELECT throws_ok($$ SELECT * FROM outreach.report_deliveries(ARRAY[1::bigint, 2], ARRAY['sent']) $$, '22023',
                 'report_deliveries needs arrays of one length', 'arrays of different lengths are refused');
SELECT throws_ok($$ SELECT * FROM outreach.report_deliveries(ARRAY[1::bigint], ARRAY['lost']) $$, '22023',
                 'invalid delivery status "lost"', 'an invalid status is refused for the whole call');
SELECT throws_ok($$ SELECT * FROM outreach.report_deliveries(ARRAY[1::bigint, 1], ARRAY['sent', 'sent']) $$, '22023',
                 'message 1 is listed twice', 'a message listed twice is refused');
SELECT throws_ok($$ SELECT * FROM outreach.report_deliveries(ARRAY[1::bigint], ARRAY['sent'], hard_bounces => ARRAY[true]) $$, '22023',
                 'hard_bounce applies to status bounced only', 'hard_bounce only with bounced');
SELECT is((SELECT array_agg(r.outcome ORDER BY r.ord)
             FROM outreach.report_interactions((SELECT array_agg(id ORDER BY id) FROM got) || (SELECT min(id) FROM outreach.message WHERE status = 'queued'),
                                               ARRAY['opened', 'clicked', 'opened', 'opened'],
                                               ARRAY[NULL, 'https://example.org/x', NULL, NULL])
                  WITH ORDINALITY r(message_id, interaction_id, outcome, detail, ord)),
          ARRAY['recorded', 'recorded', 'refused', 'refused'],
          'interactions in one call: sent messages record them, failed and queued ones refuse');
SELECT is((SELECT status FROM outreach.message WHERE id = (SELECT min(id) FROM got)), 'delivered', 'an open proves delivery');
SELECT throws_ok($$ SELECT * FROM outreach.report_interactions(ARRAY[1::bigint], ARRAY['clicked']) $$, '22004',
                 'a click needs the url that was clicked', 'a click without its url is refused');

-- a hard bounce in a batch opts the contact out of the channel
CREATE TEMP TABLE hb AS SELECT m.id, m.contact_id FROM outreach.claim_messages('wb', 1) m;
SELECT is((SELECT r.outcome FROM outreach.report_deliveries((SELECT array_agg(id) FROM hb), ARRAY['bounced'],
                                                           hard_bounces => ARRAY[true]) r), 'recorded', 'a hard bounce is recorded');
SELECT is((SELECT (CASE m.channel WHEN 'email' THEN c.do_not_email WHEN 'sms' THEN c.do_not_sms ELSE c.do_not_mail END,
                   (SELECT count(*) FROM outreach.interaction i WHERE i.message_id = hb.id AND i.kind = 'bounced'))::text
             FROM hb JOIN outreach.contact c ON c.id = hb.contact_id JOIN outreach.message m ON m.id = hb.id), '(t,1)',
          'it is an interaction and opts the contact out of the channel');

SELECT * FROM finish();
ROLLBACK;
