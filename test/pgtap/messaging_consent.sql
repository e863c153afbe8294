-- messaging_consent: every suppression reason, transactional rules, quiet hours across time
-- zones and DST changes, frequency caps, once per (enrollment, step).
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(62);

SET LOCAL outreach.now = '2026-03-02 15:00:00+00';
DELETE FROM outreach.frequency_cap;

SELECT outreach.create_template('news', 'email',
  'Hi {{contact.first_name | default: ''there''}} <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}',
  subject => 'News', sender_postal_address => '1 Main St, Springfield');
SELECT outreach.create_template('reminder', 'email', 'Your appointment is tomorrow, {{contact.first_name}}.',
  subject => 'Appointment', message_class => 'transactional');
SELECT outreach.create_template('text', 'sms', 'Hi {{contact.first_name}}, reply STOP to opt out');
SELECT outreach.create_template('paper', 'letter', 'Dear {{contact.first_name}},');
SELECT outreach.create_subscription_list('newsletter');

-- A contact with everything in order, and variations that each fail one check.
CREATE TEMP TABLE c AS SELECT * FROM outreach.contact LIMIT 0;
INSERT INTO outreach.contact (external_id, first_name, email, phone, address_line, city, postal_code, country, time_zone)
VALUES ('ok', 'Ok', 'ok@example.org', '+14155550100', '1 Elm St', 'Springfield', '12345', 'US', 'America/New_York');
INSERT INTO outreach.contact (external_id, first_name, email, phone, address_line, city, postal_code, country, time_zone, status)
VALUES ('inactive', 'In', 'in@example.org', '+14155550101', '1 Elm St', 'Springfield', '12345', 'US', 'America/New_York', 'inactive');
INSERT INTO outreach.contact (external_id, first_name, email, phone, time_zone, deceased_at)
VALUES ('deceased', 'De', 'de@example.org', '+14155550102', 'America/New_York', '2026-01-01');
INSERT INTO outreach.contact (external_id, first_name, time_zone, address_line) VALUES ('noaddr', 'No', 'America/New_York', '');
INSERT INTO outreach.contact (external_id, first_name, email, time_zone, address_line, city)
VALUES ('badaddr', 'Bad', 'not-an-email', 'America/New_York', '1 Elm St', 'Springfield');
INSERT INTO outreach.contact (external_id, first_name, email, phone, address_line, city, postal_code, country, time_zone,
                              do_not_email, do_not_sms, do_not_mail)
VALUES ('optout', 'Opt', 'opt@example.org', '+14155550103', '1 Elm St', 'Springfield', '12345', 'US', 'America/New_York', true, true, true);
INSERT INTO outreach.contact (external_id, first_name, email, time_zone) VALUES ('unsub', 'Un', 'un@example.org', 'America/New_York');
INSERT INTO outreach.contact (external_id, first_name, email, time_zone) VALUES ('pending', 'Pe', 'pe@example.org', 'America/New_York');

CREATE FUNCTION pg_temp.cid(ext text) RETURNS bigint LANGUAGE sql AS $$
  SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.send(ext text, tpl text, list text DEFAULT NULL, cls text DEFAULT 'marketing',
                             at timestamptz DEFAULT '2026-03-02 15:00:00+00') RETURNS outreach.message LANGUAGE sql AS $$
  SELECT * FROM outreach.enqueue_message(pg_temp.cid(ext), tpl, cls, list, at => at) $$;
CREATE FUNCTION pg_temp.outcome(m outreach.message) RETURNS text LANGUAGE sql AS $$
  SELECT m.status || coalesce(':' || m.suppression_reason, '') $$;

SELECT outreach.subscribe('newsletter', pg_temp.cid('ok'), 'test');
SELECT outreach.subscribe('newsletter', pg_temp.cid('unsub'), 'test');
SELECT outreach.unsubscribe('newsletter', pg_temp.cid('unsub'), 'test');

-- the checks, in order
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'news', 'newsletter')), 'queued', 'a subscribed, reachable contact is queued');
SELECT is(pg_temp.outcome(pg_temp.send('inactive', 'news')), 'suppressed:contact_inactive', 'inactive contact');
SELECT is(pg_temp.outcome(pg_temp.send('deceased', 'news')), 'suppressed:contact_deceased', 'deceased contact');
SELECT is(pg_temp.outcome(pg_temp.send('noaddr', 'news')), 'suppressed:no_address', 'no email address');
SELECT is(pg_temp.outcome(pg_temp.send('noaddr', 'text')), 'suppressed:no_address', 'no phone');
SELECT is(pg_temp.outcome(pg_temp.send('noaddr', 'paper')), 'suppressed:no_address', 'no postal address (blank line only)');
SELECT is(pg_temp.outcome(pg_temp.send('badaddr', 'news')), 'suppressed:invalid_address', 'malformed email address');
SELECT is(pg_temp.outcome(pg_temp.send('badaddr', 'paper')), 'suppressed:invalid_address', 'incomplete postal address');
SELECT is(pg_temp.outcome(pg_temp.send('optout', 'news')), 'suppressed:opted_out', 'do_not_email');
SELECT is(pg_temp.outcome(pg_temp.send('optout', 'text')), 'suppressed:opted_out', 'do_not_sms');
SELECT is(pg_temp.outcome(pg_temp.send('optout', 'paper')), 'suppressed:opted_out', 'do_not_mail');
SELECT is(pg_temp.outcome(pg_temp.send('unsub', 'news', 'newsletter')), 'suppressed:unsubscribed', 'unsubscribed from the list');
SELECT is(pg_temp.outcome(pg_temp.send('pending', 'news', 'newsletter')), 'suppressed:not_subscribed', 'never subscribed');
SELECT is(pg_temp.outcome(pg_temp.send('unsub', 'news')), 'queued', 'a marketing message without a list needs no subscription');
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'text')), 'queued', 'sms to a valid phone');
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'paper')), 'queued', 'letter to a complete address');
SELECT is((pg_temp.send('ok', 'paper')).address, E'Ok\n1 Elm St\n12345 Springfield\nUS', 'a letter''s address is the postal address');
SELECT is((pg_temp.send('ok', 'text')).address, '+14155550100', 'an sms goes to the phone');
-- inactive and deceased come first: a dead, opted-out contact is recorded as deceased
UPDATE outreach.contact SET do_not_email = true, email = NULL WHERE external_id = 'deceased';
SELECT is(pg_temp.outcome(pg_temp.send('deceased', 'news')), 'suppressed:contact_deceased', 'alive is checked before address and opt-out');
SELECT is((SELECT count(*) FROM outreach.message WHERE status = 'suppressed' AND body IS NOT NULL
             AND suppression_reason IS NOT NULL), 13::bigint, 'every suppressed message is stored with its reason');

-- transactional: no list, no cap; still active, alive, address and do_not_*
SELECT is(pg_temp.outcome(pg_temp.send('pending', 'reminder', 'newsletter', 'transactional')), 'queued', 'transactional skips the list');
SELECT is(pg_temp.outcome(pg_temp.send('optout', 'reminder', NULL, 'transactional')), 'suppressed:opted_out', 'transactional respects do_not_email');
SELECT is(pg_temp.outcome(pg_temp.send('deceased', 'reminder', NULL, 'transactional')), 'suppressed:contact_deceased', 'transactional respects deceased');
SELECT is((pg_temp.send('pending', 'reminder')).message_class, 'transactional', 'the template''s class decides');
SELECT throws_ok($$SELECT pg_temp.send('ok', 'news', NULL, 'transactional')$$, '22023',
  'template "news" is a marketing template and cannot be sent as transactional', 'marketing content cannot pass as transactional');
SELECT throws_ok($$SELECT pg_temp.send('ok', 'nope')$$, '42704', 'template "nope" does not exist', 'unknown template');
SELECT throws_ok($$SELECT pg_temp.send('ok', 'news', 'nope')$$, '42704', 'subscription list "nope" does not exist', 'unknown list');
SELECT throws_ok($$SELECT outreach.enqueue_message(999999, 'news')$$, '23503', 'contact 999999 does not exist', 'unknown contact');

-- an opt-out after queueing suppresses what is still queued
SELECT is(pg_temp.outcome(pg_temp.send('pending', 'text')), 'suppressed:no_address', 'pending has no phone');
UPDATE outreach.contact SET phone = '+14155550199' WHERE external_id = 'pending';
SELECT is(pg_temp.outcome(pg_temp.send('pending', 'text')), 'queued', 'after adding a phone it is queued');
UPDATE outreach.contact SET do_not_sms = true WHERE external_id = 'pending';
SELECT is((SELECT pg_temp.outcome(m) FROM outreach.message m WHERE contact_id = pg_temp.cid('pending') AND channel = 'sms'
           ORDER BY id DESC LIMIT 1), 'suppressed:opted_out', 'setting do_not_sms suppresses queued sms at once');
SELECT is((SELECT count(*) FROM outreach.message m WHERE contact_id = pg_temp.cid('pending') AND channel = 'email'
            AND status = 'queued'), 2::bigint, 'the contact''s queued email is untouched');
UPDATE outreach.contact SET status = 'inactive' WHERE external_id = 'pending';
SELECT is((SELECT count(*) FILTER (WHERE status = 'queued') || '/' || count(*) FILTER (WHERE suppression_reason = 'contact_inactive')
             FROM outreach.message m WHERE contact_id = pg_temp.cid('pending')), '0/2', 'deactivating suppresses every queued message');

-- Quiet hours (21:00-08:00 local for email and sms): the message waits, it is not dropped.
CREATE FUNCTION pg_temp.wait_until(tz text, at timestamptz, channel text DEFAULT 'email') RETURNS text LANGUAGE sql AS $$
  SELECT to_char(outreach.quiet_hours_end(channel, tz, at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') $$;
SELECT is(pg_temp.wait_until('America/New_York', '2026-03-02 15:00Z'), '2026-03-02 15:00', '10:00 EST is outside quiet hours');
SELECT is(pg_temp.wait_until('America/New_York', '2026-03-02 10:00Z'), '2026-03-02 13:00', '05:00 EST waits until 08:00 EST');
SELECT is(pg_temp.wait_until('America/New_York', '2026-03-03 02:00Z'), '2026-03-03 13:00', '21:00 EST (the start) waits until 08:00 next day');
SELECT is(pg_temp.wait_until('America/New_York', '2026-03-02 13:00Z'), '2026-03-02 13:00', '08:00 EST (the end) is outside');
SELECT is(pg_temp.wait_until('America/New_York', '2026-03-08 02:30Z'), '2026-03-08 12:00',
  'spring forward: 21:30 EST Saturday waits until 08:00 EDT Sunday (12:00 UTC)');
SELECT is(pg_temp.wait_until('America/New_York', '2026-11-01 01:30Z'), '2026-11-01 13:00',
  'fall back: 21:30 EDT Saturday waits until 08:00 EST Sunday (13:00 UTC)');
SELECT is(pg_temp.wait_until('America/New_York', '2026-11-01 06:30Z'), '2026-11-01 13:00',
  'fall back: 01:30 EST (second pass) waits until 08:00 EST');
SELECT is(pg_temp.wait_until('Australia/Sydney', '2026-04-04 11:00Z'), '2026-04-04 22:00',
  'southern DST end: 22:00 AEDT waits until 08:00 AEST');
SELECT is(pg_temp.wait_until('Asia/Tokyo', '2026-03-02 13:00Z'), '2026-03-02 23:00', '22:00 JST waits until 08:00 JST');
SELECT is(pg_temp.wait_until('Asia/Kolkata', '2026-03-02 15:00Z'), '2026-03-02 15:00', 'half-hour offset: 20:30 IST is outside');
SELECT is(pg_temp.wait_until('Asia/Kolkata', '2026-03-02 15:45Z'), '2026-03-03 02:30', 'half-hour offset: 21:15 IST waits until 08:00 IST');
SELECT is(pg_temp.wait_until('Europe/London', '2026-03-29 00:30Z'), '2026-03-29 07:00', 'London spring forward: 00:30 GMT waits until 08:00 BST');
SELECT is(pg_temp.wait_until('America/New_York', '2026-03-02 10:00Z', 'letter'), '2026-03-02 10:00', 'letters have no quiet hours');
SELECT is(pg_temp.wait_until(NULL, '2026-03-02 22:00Z'), '2026-03-03 08:00', 'no time zone: the default (UTC)');
UPDATE outreach.messaging_settings SET default_time_zone = 'Asia/Tokyo';
SELECT is(pg_temp.wait_until(NULL, '2026-03-02 22:00Z'), '2026-03-02 23:00', 'no time zone: the configured default');
UPDATE outreach.quiet_hours SET starts = '12:00', ends = '14:00' WHERE channel = 'sms';
SELECT is(pg_temp.wait_until('UTC', '2026-03-02 13:00Z', 'sms'), '2026-03-02 14:00', 'a window that does not wrap midnight');
SELECT is(pg_temp.wait_until('UTC', '2026-03-02 22:00Z', 'sms'), '2026-03-02 22:00', 'each channel has its own window');
SELECT is((SELECT to_char(m.send_after AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || m.status
             FROM pg_temp.send('ok', 'news', 'newsletter', at => '2026-03-08 02:30Z') m),
          '2026-03-08 12:00 queued', 'enqueue_message sets send_after to the end of quiet hours');
SELECT is((SELECT count(*) FROM outreach.claim_messages('w', 100) m WHERE m.contact_id = pg_temp.cid('ok') AND m.send_after > outreach.now()),
          0::bigint, 'a waiting message is not claimed before its time');

-- Frequency caps: rolling windows per channel, marketing only, counting what was not suppressed.
DELETE FROM outreach.message;
INSERT INTO outreach.frequency_cap VALUES ('email', 2, '1 day'), ('email', 3, '7 days');
UPDATE outreach.contact SET time_zone = 'UTC' WHERE external_id = 'ok';
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'news', at => '2026-03-02 09:00Z')), 'queued', 'cap: first');
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'news', at => '2026-03-02 10:00Z')), 'queued', 'cap: second the same day');
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'news', at => '2026-03-02 11:00Z')), 'suppressed:frequency_cap', 'cap: third within a day');
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'reminder', cls => 'transactional', at => '2026-03-02 11:00Z')), 'queued',
  'cap: transactional is not capped');
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'text', at => '2026-03-02 11:00Z')), 'queued', 'cap: other channels count apart');
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'news', at => '2026-03-03 09:30Z')), 'queued', 'cap: the day window rolls on');
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'news', at => '2026-03-04 12:00Z')), 'suppressed:frequency_cap', 'cap: three in seven days');
SELECT is(pg_temp.outcome(pg_temp.send('ok', 'news', at => '2026-03-09 09:01Z')), 'queued', 'cap: the week window rolls on');

-- once per (enrollment, step), also when called again
SELECT is((SELECT count(DISTINCT (outreach.enqueue_message(pg_temp.cid('ok'), 'reminder', 'transactional',
             enrollment_id => 7, step_id => 3)).id) FROM generate_series(1, 3)), 1::bigint,
          'three calls for one (enrollment, step) return one message');
SELECT is((SELECT count(*) FROM outreach.message WHERE enrollment_id = 7 AND step_id = 3), 1::bigint, 'and store one row');

SELECT * FROM finish();
ROLLBACK;
