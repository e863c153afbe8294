-- messaging_outbox: subscription lists (double opt-in, expiry, unsubscribe), the outbox
-- lifecycle, claims and leases, delivery reports, interactions and the reporting views.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(59);

SET LOCAL outreach.now = '2026-03-02 15:00:00+00';
DELETE FROM outreach.frequency_cap;
DELETE FROM outreach.quiet_hours;

SELECT outreach.create_template('news', 'email',
  'Hi {{contact.first_name}} <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}',
  subject => 'News', sender_postal_address => '1 Main St, Springfield');
SELECT outreach.create_template('plain', 'email',
  'Hi <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}',
  subject => 'Plain', sender_postal_address => '1 Main St, Springfield');
SELECT outreach.create_template('text', 'sms', 'Hi {{contact.first_name}}, reply STOP to opt out');
INSERT INTO outreach.contact (external_id, first_name, email, phone, time_zone) VALUES
  ('a', 'Ann', 'ann@example.org', '+14155550100', 'UTC'),
  ('b', 'Bob', 'bob@example.org', '+14155550101', 'UTC');
CREATE FUNCTION pg_temp.cid(ext text) RETURNS bigint LANGUAGE sql AS $$
  SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.lid(list text) RETURNS bigint LANGUAGE sql AS $$
  SELECT id FROM outreach.subscription_list WHERE name = list $$;

-- Subscription lists
SELECT outreach.create_subscription_list('newsletter');
SELECT outreach.create_subscription_list('research', double_opt_in => true, confirmation_ttl => '1 hour');
SELECT throws_ok($$SELECT outreach.create_subscription_list('newsletter')$$, '42710',
  'subscription list "newsletter" already exists', 'list names are unique');
SELECT is(outreach.subscribe('newsletter', pg_temp.cid('a'), 'web form'), NULL, 'single opt-in returns no token');
SELECT is((SELECT status || '/' || subscribe_source FROM outreach.subscription WHERE contact_id = pg_temp.cid('a') AND list_id = pg_temp.lid('newsletter')),
  'subscribed/web form', 'subscribed with its source');
SELECT is(outreach.subscribe('newsletter', pg_temp.cid('a'), 'again'), NULL, 'subscribing twice is harmless');
SELECT is((SELECT subscribe_source FROM outreach.subscription WHERE contact_id = pg_temp.cid('a') AND list_id = pg_temp.lid('newsletter')), 'web form',
  'and keeps the first subscription');
CREATE TEMP TABLE tok AS SELECT outreach.subscribe('research', pg_temp.cid('a'), 'clinic') AS t;
SELECT ok((SELECT length(t) = 32 FROM tok), 'double opt-in returns a token');
SELECT is((SELECT status FROM outreach.subscription s JOIN outreach.subscription_list l ON l.id = s.list_id
            WHERE l.name = 'research' AND contact_id = pg_temp.cid('a')), 'pending', 'pending until confirmed');
SELECT is((SELECT (outreach.enqueue_message(pg_temp.cid('a'), 'news', subscription_list => 'research')).suppression_reason),
  'not_subscribed', 'a pending subscription does not receive list messages');
SELECT is((SELECT (outreach.confirm_subscription(t)).status FROM tok), 'subscribed', 'confirming subscribes');
SELECT throws_ok($$SELECT outreach.confirm_subscription((SELECT t FROM tok))$$, '22023', 'unknown confirmation token',
  'a token works once');
CREATE TEMP TABLE tok2 AS SELECT outreach.subscribe('research', pg_temp.cid('b'), 'clinic') AS t;
SET LOCAL outreach.now = '2026-03-02 16:00:01+00';
SELECT throws_ok($$SELECT outreach.confirm_subscription((SELECT t FROM tok2))$$, '22023',
  'confirmation token for list "research" and contact ' || pg_temp.cid('b') || ' has expired', 'an expired token is refused clearly');
CREATE TEMP TABLE tok3 AS SELECT outreach.subscribe('research', pg_temp.cid('b'), 'clinic') AS t;
SELECT is((SELECT (outreach.confirm_subscription(t)).status FROM tok3), 'subscribed', 'subscribing again issues a fresh token');
SET LOCAL outreach.now = '2026-03-02 15:00:00+00';

-- unsubscribing records time and source and suppresses what is still queued for the list
SELECT outreach.enqueue_message(pg_temp.cid('a'), 'news', subscription_list => 'newsletter');
SELECT outreach.enqueue_message(pg_temp.cid('a'), 'plain', subscription_list => 'research');
SELECT outreach.unsubscribe('newsletter', pg_temp.cid('a'), 'phone call');
SELECT is((SELECT status || '/' || unsubscribe_source || '/' || (unsubscribed_at = outreach.now())
             FROM outreach.subscription s JOIN outreach.subscription_list l ON l.id = s.list_id
            WHERE l.name = 'newsletter' AND contact_id = pg_temp.cid('a')), 'unsubscribed/phone call/true', 'unsubscribe with time and source');
SELECT is((SELECT suppression_reason FROM outreach.message WHERE template_name = 'news' AND subscription_list_id = pg_temp.lid('newsletter')), 'unsubscribed',
  'the queued newsletter message is suppressed');
SELECT is((SELECT status FROM outreach.message WHERE template_name = 'plain'), 'queued', 'other lists are untouched');
SELECT is(outreach.subscribe('newsletter', pg_temp.cid('a'), 'resubscribed'), NULL, 'resubscribing is allowed');
SELECT throws_ok($$SELECT outreach.subscribe('nope', 1, 'x')$$, '42704', 'subscription list "nope" does not exist', 'unknown list');
SELECT throws_ok($$SELECT outreach.subscribe('newsletter', 999999, 'x')$$, '23503', 'contact 999999 does not exist', 'unknown contact');
DELETE FROM outreach.message;

-- Claims: due messages only, SKIP LOCKED, leases, attempts
SELECT outreach.enqueue_message(pg_temp.cid('a'), 'news', at => '2026-03-02 14:00Z');
SELECT outreach.enqueue_message(pg_temp.cid('b'), 'news', at => '2026-03-02 14:30Z');
SELECT outreach.enqueue_message(pg_temp.cid('b'), 'text', at => '2026-03-02 18:00Z');
SELECT throws_ok($$SELECT outreach.claim_messages('')$$, '22023', 'a worker name is required', 'workers are named');
SELECT throws_ok($$SELECT outreach.claim_messages('w', 0)$$, '22023', 'batch_size must be at least 1', 'batch size checked');
CREATE TEMP TABLE c1 AS SELECT * FROM outreach.claim_messages('w1', 1, '10 minutes');
SELECT is((SELECT count(*) FROM c1), 1::bigint, 'batch size is respected');
SELECT is((SELECT contact_id FROM c1), pg_temp.cid('a'), 'oldest due first');
SELECT is((SELECT status || '/' || claimed_by || '/' || attempts FROM c1), 'sending/w1/1', 'claimed: sending, by, attempts');
SELECT is((SELECT count(*) FROM outreach.claim_messages('w2', 10, '1 hour')), 1::bigint, 'the future message is not due yet');
SELECT is((SELECT count(*) FROM outreach.claim_messages('w3', 10)), 0::bigint, 'nothing left to claim');
SET LOCAL outreach.now = '2026-03-02 15:10:00+00';
CREATE TEMP TABLE c2 AS SELECT * FROM outreach.claim_messages('w4', 10);
SELECT is((SELECT string_agg(claimed_by || ':' || attempts, ',' ORDER BY id) FROM c2), 'w4:2',
  'after the lease expires the claim returns to the pool (attempts 2); the 1-hour lease of w2 has not');
SELECT throws_ok(format('SELECT outreach.report_delivery(%s, ''sent'', worker => ''w1'')', (SELECT id FROM c1)), '55000',
  format('worker "w1" no longer holds message %s', (SELECT id FROM c1)), 'a worker whose lease was taken over is told so');

-- Delivery reports and their lifecycle
CREATE TEMP TABLE ids AS SELECT (SELECT id FROM c1) AS a_news,
  (SELECT id FROM outreach.message WHERE contact_id = pg_temp.cid('b') AND channel = 'email') AS b_news,
  (SELECT id FROM outreach.message WHERE channel = 'sms') AS b_text;
SELECT is((SELECT (outreach.report_delivery(a_news, 'sent', worker => 'w4')).status FROM ids), 'sent', 'sending -> sent');
SELECT is((SELECT (outreach.report_delivery(a_news, 'sent')).status FROM ids), 'sent', 'the same report twice is harmless');
SELECT is((SELECT (outreach.report_delivery(a_news, 'delivered', 'smtp 250')).detail FROM ids), 'smtp 250', 'sent -> delivered with detail');
SELECT throws_ok(format('SELECT outreach.report_delivery(%s, ''failed'')', (SELECT a_news FROM ids)), '55000',
  format('cannot mark message %s as failed: it is delivered', (SELECT a_news FROM ids)), 'delivered is final');
SELECT throws_ok(format('SELECT outreach.report_delivery(%s, ''sent'')', (SELECT b_text FROM ids)), '55000',
  format('cannot mark message %s as sent: it is queued', (SELECT b_text FROM ids)), 'a queued message must be claimed first');
SELECT throws_ok(format('SELECT outreach.report_delivery(%s, ''opened'')', (SELECT b_text FROM ids)), '22023',
  'invalid delivery status "opened"', 'unknown delivery status');
SELECT throws_ok($$SELECT outreach.report_delivery(999999, 'sent')$$, 'P0002', 'message 999999 does not exist', 'unknown message');
SELECT throws_ok(format('SELECT outreach.report_delivery(%s, ''failed'', hard_bounce => true)', (SELECT b_news FROM ids)), '22023',
  'hard_bounce applies to status bounced only', 'hard_bounce only with bounced');
SELECT throws_ok(format('SELECT outreach.report_interaction(%s, ''opened'')', (SELECT b_text FROM ids)), '55000',
  format('message %s was never sent, so it cannot be opened', (SELECT b_text FROM ids)), 'no interaction with an unsent message');

-- a hard bounce sets do_not_email and suppresses that contact's queued email
SELECT outreach.enqueue_message(pg_temp.cid('b'), 'plain');
SELECT is((SELECT (outreach.report_delivery(b_news, 'bounced', 'mailbox unknown', hard_bounce => true)).status FROM ids), 'bounced',
  'sending -> bounced');
SELECT is((SELECT do_not_email FROM outreach.contact WHERE external_id = 'b'), true, 'a hard bounce sets do_not_email');
SELECT is((SELECT suppression_reason FROM outreach.message WHERE template_name = 'plain'), 'opted_out',
  'and suppresses the contact''s queued email');
SELECT is((SELECT status FROM outreach.message WHERE channel = 'sms'), 'queued', 'but not their sms');
SELECT is((SELECT count(*) FROM outreach.interaction WHERE kind = 'bounced'), 1::bigint, 'a bounce is an interaction too');

-- interactions
SELECT outreach.report_interaction(a_news, 'opened', at => '2026-03-02 16:00Z') FROM ids;
SELECT outreach.report_interaction(a_news, 'opened', at => '2026-03-02 17:00Z') FROM ids;
SELECT outreach.report_interaction(a_news, 'clicked', 'https://clinic.example/book') FROM ids;
SELECT throws_ok(format('SELECT outreach.report_interaction(%s, ''clicked'')', (SELECT a_news FROM ids)), '22004',
  'a click needs the url that was clicked', 'clicks carry their url');
SELECT throws_ok(format('SELECT outreach.report_interaction(%s, ''liked'')', (SELECT a_news FROM ids)), '22023',
  'invalid interaction kind "liked"', 'unknown interaction kind');
SELECT is((SELECT string_agg(kind || coalesce(':' || url, ''), ',' ORDER BY id) FROM outreach.interaction i, ids WHERE message_id = a_news),
  'opened,opened,clicked:https://clinic.example/book', 'interactions are recorded');
SELECT is((SELECT unique_opens || '/' || unique_clicks || '/' || sent || '/' || bounced FROM outreach.template_engagement WHERE template = 'news'),
  '1/1/2/1', 'engagement counts unique opens and clicks per template');

-- an open proves delivery
SELECT outreach.enqueue_message(pg_temp.cid('a'), 'plain', subscription_list => 'research');
CREATE TEMP TABLE c3 AS SELECT * FROM outreach.claim_messages('w5');
SELECT outreach.report_delivery(id, 'sent') FROM c3 WHERE template_name = 'plain';
SELECT outreach.report_interaction(id, 'opened') FROM c3 WHERE template_name = 'plain';
SELECT is((SELECT m.status FROM outreach.message m JOIN c3 USING (id) WHERE m.template_name = 'plain'), 'delivered',
  'an open on a sent message marks it delivered');

-- the unsubscribe link: leaves the message's list at once, every queued message of that list goes
SELECT outreach.enqueue_message(pg_temp.cid('a'), 'news', subscription_list => 'research');
SELECT is(outreach.unsubscribe_by_token(m.unsubscribe_token) > 0, true, 'the unsubscribe token leads to its message')
  FROM outreach.message m JOIN c3 USING (id) WHERE m.template_name = 'plain';
SELECT is((SELECT s.status || '/' || s.unsubscribe_source FROM outreach.subscription s JOIN outreach.subscription_list l ON l.id = s.list_id
            JOIN c3 ON c3.template_name = 'plain'
            WHERE l.name = 'research' AND s.contact_id = pg_temp.cid('a')), 'unsubscribed/message ' || (SELECT id FROM c3 WHERE template_name = 'plain'),
  'unsubscribed from the list the message came from');
SELECT is((SELECT status || ':' || suppression_reason FROM outreach.message WHERE template_name = 'news' AND subscription_list_id IS NOT NULL),
  'suppressed:unsubscribed', 'the list''s queued message is suppressed at once');
SELECT is((SELECT do_not_email FROM outreach.contact WHERE external_id = 'a'), false, 'a list unsubscribe is not a channel opt-out');
-- without a list it is a channel opt-out; so is a complaint
SELECT outreach.report_interaction(a_news, 'unsubscribed') FROM ids;
SELECT is((SELECT do_not_email FROM outreach.contact WHERE external_id = 'a'), true, 'unsubscribing from a list-less message opts out of the channel');
SELECT throws_ok($$SELECT outreach.unsubscribe_by_token('nope')$$, '22023', 'unknown unsubscribe token', 'unknown unsubscribe token');
UPDATE outreach.contact SET do_not_sms = false, do_not_email = false;
SET LOCAL outreach.now = '2026-03-02 18:00:00+00';
SELECT count(*) FROM outreach.claim_messages('w6');
SELECT outreach.report_delivery(b_text, 'sent', worker => 'w6') FROM ids;
SELECT outreach.report_interaction(b_text, 'complained') FROM ids;
SELECT is((SELECT do_not_sms FROM outreach.contact WHERE external_id = 'b'), true, 'a complaint opts out of the channel');

-- a message whose leases keep running out fails after max_attempts claims
DELETE FROM outreach.message;
SELECT outreach.enqueue_message(pg_temp.cid('a'), 'plain', at => '2026-03-02 18:00Z');
SELECT count(*) FROM outreach.claim_messages('crashy', max_attempts => 2);
SET LOCAL outreach.now = '2026-03-02 18:06:00+00';
SELECT is((SELECT attempts FROM outreach.claim_messages('crashy', max_attempts => 2)), 2, 'an expired lease is claimed again');
SET LOCAL outreach.now = '2026-03-02 18:12:00+00';
SELECT is((SELECT count(*) FROM outreach.claim_messages('crashy', max_attempts => 2)), 0::bigint, 'but not beyond max_attempts');
SELECT is((SELECT status || ': ' || detail FROM outreach.message), 'failed: no delivery result after 2 claims (last by crashy)',
  'it fails, saying why');
SELECT throws_ok($$SELECT outreach.claim_messages('w', max_attempts => 0)$$, '22023', 'max_attempts must be at least 1', 'max_attempts checked');

SELECT is((SELECT sum(messages) FROM outreach.message_status), (SELECT count(*) FROM outreach.message)::numeric,
  'message_status covers every message');
SELECT is((SELECT messages FROM outreach.message_status WHERE status = 'failed'), 1::bigint,
  'message_status counts by status');

SELECT * FROM finish();
ROLLBACK;
