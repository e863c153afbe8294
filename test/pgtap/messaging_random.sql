-- messaging_random: thousands of contacts with random consent states, addresses, lists, time
-- zones, send times (around DST changes) and message histories.  Every contact gets a list
-- newsletter, an unlisted SMS, a letter and a transactional email through enqueue_message;
-- an independent oracle written here says who may receive what.  Zero messages may be
-- queued to anyone who should not get one, and every suppression must carry the oracle's
-- reason.  Then a random third unsubscribe or opt out, and nothing of theirs may stay queued.
-- Two workers hold a third of the queued messages each when consent changes (issue 19,
-- defect 5): those of the changed contacts are withdrawn, the lease expiry gives none of
-- them to a third worker, and the first worker's late reports are kept for audit.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(17);

-- a different population on every run; the seed is printed so a failure can be replayed
CREATE TEMP TABLE seed AS SELECT coalesce(nullif(current_setting('outreach_test.seed', true), '')::float8,
                                          (extract(epoch FROM clock_timestamp())::bigint % 1000) / 1000.0) AS s;
SELECT diag('random seed: ' || s) FROM seed;
SELECT setseed(s) FROM seed;

SET LOCAL outreach.now = '2026-03-10 00:00:00+00';
DELETE FROM outreach.frequency_cap;
INSERT INTO outreach.frequency_cap VALUES ('email', 2, '7 days'), ('sms', 1, '1 day');
SELECT outreach.create_template('news', 'email',
  'Hi {{contact.first_name | default: ''there''}} <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}',
  subject => 'News', sender_postal_address => '1 Main St, Springfield');
SELECT outreach.create_template('text', 'sms', 'Hi {{contact.first_name}}, reply STOP to opt out');
SELECT outreach.create_template('paper', 'letter', 'Dear {{contact.first_name}},');
SELECT outreach.create_template('reminder', 'email', 'See you tomorrow', subject => 'Reminder', message_class => 'transactional');
SELECT outreach.create_subscription_list('newsletter', double_opt_in => true);

CREATE TEMP TABLE pop AS
SELECT i,
       (ARRAY['active', 'active', 'active', 'inactive'])[1 + floor(random() * 4)::int] AS status,
       CASE WHEN random() < 0.1 THEN timestamptz '2025-06-01' END AS deceased_at,
       (ARRAY['p' || i || '@example.org', 'p' || i || '@example.org', 'p' || i || '@example.org', NULL, '', 'broken-' || i])[1 + floor(random() * 6)::int] AS email,
       CASE WHEN random() < 0.7 THEN '+1415555' || lpad(i::text, 4, '0') END AS phone,
       (ARRAY['full', 'full', 'none', 'partial'])[1 + floor(random() * 4)::int] AS postal,
       random() < 0.15 AS do_not_email, random() < 0.15 AS do_not_sms, random() < 0.15 AS do_not_mail,
       (ARRAY['none', 'pending', 'subscribed', 'subscribed', 'subscribed', 'unsubscribed'])[1 + floor(random() * 6)::int] AS sub,
       (ARRAY['America/New_York', 'Europe/London', 'Asia/Tokyo', 'Australia/Sydney', 'Asia/Kolkata', 'Pacific/Chatham', NULL])[1 + floor(random() * 7)::int] AS tz,
       floor(random() * 4)::int AS prior_email,            -- earlier newsletters in the last 6 days
       random() < 0.3 AS prior_sms_today,
       CASE WHEN random() < 0.5 THEN timestamptz '2026-03-07 12:00Z' ELSE timestamptz '2026-10-31 12:00Z' END
         + random() * interval '3 days' AS at
  FROM generate_series(1, 3000) i;

INSERT INTO outreach.contact (id, external_id, first_name, status, deceased_at, email, phone, address_line, city, postal_code, country,
                              do_not_email, do_not_sms, do_not_mail, time_zone)
SELECT 100000 + i, 'r' || i, 'P' || i, status, deceased_at, email, phone,
       CASE WHEN postal <> 'none' THEN i || ' Elm St' END, CASE WHEN postal <> 'none' THEN 'Springfield' END,
       CASE WHEN postal = 'full' THEN '12345' END, CASE WHEN postal <> 'none' THEN 'US' END,
       do_not_email, do_not_sms, do_not_mail, tz
  FROM pop;

-- list states, through the public functions (pending = double opt-in never confirmed)
SELECT count(outreach.subscribe('newsletter', 100000 + i, 'random')) FROM pop WHERE sub IN ('pending', 'subscribed', 'unsubscribed');
SELECT count(outreach.confirm_subscription(s.confirmation_token))
  FROM pop JOIN outreach.subscription s ON s.contact_id = 100000 + i WHERE sub IN ('subscribed', 'unsubscribed');
SELECT count(*) FROM (SELECT outreach.unsubscribe('newsletter', 100000 + i, 'random') FROM pop WHERE sub = 'unsubscribed') x;

-- history the frequency caps must count: sent newsletters, plus suppressed ones that must not count
INSERT INTO outreach.message (contact_id, template_name, channel, message_class, status, suppression_reason, unsubscribe_token,
                              send_after, created_at, updated_at, sent_at)
SELECT 100000 + i, 'history', 'email', 'marketing', 'sent', NULL, 'h' || i || '-' || n,
       p.at - n * interval '1 day', p.at - n * interval '1 day', p.at, p.at - n * interval '1 day'
  FROM pop p, generate_series(1, 3) n WHERE n <= p.prior_email
UNION ALL
SELECT 100000 + i, 'history', 'email', 'marketing', 'suppressed', 'frequency_cap', 'hs' || i,
       p.at - interval '1 hour', p.at - interval '1 hour', p.at, NULL FROM pop p
UNION ALL
SELECT 100000 + i, 'history', 'sms', 'marketing', 'delivered', NULL, 'hsms' || i,
       p.at - interval '3 hours', p.at - interval '3 hours', p.at, p.at - interval '3 hours' FROM pop p WHERE p.prior_sms_today;

-- send everything
CREATE TEMP TABLE sent AS
SELECT p.i, x.tpl, m.*
  FROM pop p, (VALUES ('news', 'marketing', 'newsletter'), ('text', 'marketing', NULL), ('paper', 'marketing', NULL),
                      ('reminder', 'transactional', NULL)) x(tpl, cls, list),
       LATERAL outreach.enqueue_message(100000 + p.i, x.tpl, x.cls, x.list, at => p.at) m;

-- the oracle: the first reason in the documented order, or NULL
CREATE TEMP TABLE oracle AS
SELECT p.i, x.tpl,
       CASE
         WHEN p.status <> 'active' THEN 'contact_inactive'
         WHEN p.deceased_at IS NOT NULL THEN 'contact_deceased'
         WHEN x.channel = 'email' AND coalesce(p.email, '') = '' THEN 'no_address'
         WHEN x.channel = 'email' AND p.email LIKE 'broken-%' THEN 'invalid_address'
         WHEN x.channel = 'email' AND p.do_not_email THEN 'opted_out'
         WHEN x.channel = 'sms' AND p.phone IS NULL THEN 'no_address'
         WHEN x.channel = 'sms' AND p.do_not_sms THEN 'opted_out'
         WHEN x.channel = 'letter' AND p.postal = 'none' THEN 'no_address'
         WHEN x.channel = 'letter' AND p.postal = 'partial' THEN 'invalid_address'
         WHEN x.channel = 'letter' AND p.do_not_mail THEN 'opted_out'
         WHEN x.tpl = 'reminder' THEN NULL
         WHEN x.tpl = 'news' AND p.sub = 'unsubscribed' THEN 'unsubscribed'
         WHEN x.tpl = 'news' AND p.sub IN ('none', 'pending') THEN 'not_subscribed'
         WHEN x.tpl = 'news' AND p.prior_email >= 2 THEN 'frequency_cap'
         WHEN x.tpl = 'text' AND p.prior_sms_today THEN 'frequency_cap'
       END AS reason
  FROM pop p, (VALUES ('news', 'email'), ('text', 'sms'), ('paper', 'letter'), ('reminder', 'email')) x(tpl, channel);

SELECT is((SELECT count(*) FROM sent), 12000::bigint, 'one message per contact and template');
SELECT is((SELECT count(*) FROM sent s JOIN oracle o USING (i, tpl) WHERE o.reason IS NOT NULL AND s.status <> 'suppressed'),
          0::bigint, 'zero messages queued to anyone who should not get one');
SELECT is((SELECT count(*) FROM sent s JOIN oracle o USING (i, tpl) WHERE o.reason IS NULL AND s.status <> 'queued'),
          0::bigint, 'everyone who may receive a message has it queued');
SELECT is((SELECT count(*) FROM sent s JOIN oracle o USING (i, tpl) WHERE s.suppression_reason IS DISTINCT FROM o.reason),
          0::bigint, 'every suppression carries the right reason');
SELECT ok((SELECT count(DISTINCT suppression_reason) FROM sent) = 8, 'the population exercises all eight reasons');
SELECT diag(string_agg(coalesce(suppression_reason, 'queued') || ': ' || n, ', ' ORDER BY suppression_reason NULLS FIRST))
  FROM (SELECT suppression_reason, count(*) n FROM sent GROUP BY 1) x;

-- quiet hours: a queued message goes at its time, or at 08:00 local when that time is between 21:00 and 08:00
SELECT is((SELECT count(*) FROM sent s JOIN pop p USING (i)
            WHERE s.status = 'queued' AND s.channel <> 'letter'
              AND NOT (CASE WHEN (p.at AT TIME ZONE coalesce(p.tz, 'UTC'))::time >= '21:00'
                              OR (p.at AT TIME ZONE coalesce(p.tz, 'UTC'))::time < '08:00'
                            THEN s.send_after > p.at AND s.send_after - p.at <= interval '12 hours'
                                 AND (s.send_after AT TIME ZONE coalesce(p.tz, 'UTC'))::time = '08:00'
                            ELSE s.send_after = p.at END)),
          0::bigint, 'no queued email or sms is due inside quiet hours in the contact''s time zone');
SELECT is((SELECT count(*) FROM sent s JOIN pop p USING (i) WHERE s.status = 'queued' AND s.channel = 'letter' AND s.send_after <> p.at),
          0::bigint, 'letters are not held');
SELECT ok((SELECT count(*) FROM sent WHERE status = 'queued' AND send_after > created_at) > 100, 'many messages wait for morning');

-- workers hold two thirds of what is queued when consent changes
SET LOCAL outreach.now = '2027-01-01 00:00+00';
CREATE TEMP TABLE claimed AS SELECT m.id, 'random-w1' AS worker FROM outreach.claim_messages('random-w1',
  (SELECT count(*)::int / 3 FROM outreach.message WHERE status = 'queued'), '5 minutes') m;
INSERT INTO claimed SELECT m.id, 'random-w2' FROM outreach.claim_messages('random-w2',
  (SELECT count(*)::int / 2 FROM outreach.message WHERE status = 'queued'), '5 minutes') m;
SELECT diag('claimed: ' || count(*)) FROM claimed;

-- a random third now unsubscribes, opts out of sms, or becomes inactive: nothing of theirs stays queued
CREATE TEMP TABLE change AS SELECT i, (ARRAY['unsubscribe', 'sms', 'inactive'])[1 + floor(random() * 3)::int] AS what
  FROM pop WHERE random() < 0.33;
SELECT count(*) FROM (SELECT outreach.unsubscribe('newsletter', 100000 + i, 'random') FROM change WHERE what = 'unsubscribe') x;
UPDATE outreach.contact c SET do_not_sms = true FROM change x WHERE c.id = 100000 + x.i AND x.what = 'sms';
UPDATE outreach.contact c SET status = 'inactive' FROM change x WHERE c.id = 100000 + x.i AND x.what = 'inactive';
SELECT is((SELECT count(*) FROM outreach.message m JOIN change x ON m.contact_id = 100000 + x.i
            WHERE m.status = 'queued'
              AND (x.what = 'inactive' OR (x.what = 'sms' AND m.channel = 'sms')
                   OR (x.what = 'unsubscribe' AND m.template_name = 'news'))), 0::bigint,
          'after unsubscribes and opt-outs nothing of theirs stays queued');
SELECT is((SELECT count(*) FROM outreach.message m JOIN change x ON m.contact_id = 100000 + x.i JOIN sent s ON s.id = m.id
            WHERE s.status = 'queued' AND m.status = 'suppressed'
              AND NOT (x.what = 'inactive' OR (x.what = 'sms' AND m.channel = 'sms')
                       OR (x.what = 'unsubscribe' AND m.template_name = 'news'))), 0::bigint,
          'and nothing else of theirs was suppressed');
-- and a second round finds them all refused
CREATE TEMP TABLE sent2 AS
SELECT x.i, m.*
  FROM change x, (VALUES ('news', 'newsletter'), ('text', NULL)) t(tpl, list),
       LATERAL outreach.enqueue_message(100000 + x.i, t.tpl, 'marketing', t.list, at => '2026-12-01 15:00Z') m
 WHERE (x.what = 'unsubscribe' AND t.tpl = 'news') OR (x.what = 'sms' AND t.tpl = 'text') OR x.what = 'inactive';
SELECT is((SELECT count(*) FROM sent2 WHERE status = 'queued'), 0::bigint, 'a later tick queues nothing for them');

-- claims and lease expiry
SELECT is((SELECT count(*) FROM outreach.message m JOIN change x ON m.contact_id = 100000 + x.i
            WHERE m.status = 'sending'
              AND (x.what = 'inactive' OR (x.what = 'sms' AND m.channel = 'sms')
                   OR (x.what = 'unsubscribe' AND m.template_name = 'news'))), 0::bigint,
          'no claimed message of a contact who withdrew consent stays claimed');
SELECT is((SELECT count(*) FROM outreach.message m
            WHERE m.withdrawn_at IS NOT NULL
              AND NOT (m.id IN (SELECT id FROM claimed) AND m.status = 'suppressed'
                       AND EXISTS (SELECT 1 FROM change x WHERE m.contact_id = 100000 + x.i
                                     AND (x.what = 'inactive' OR (x.what = 'sms' AND m.channel = 'sms')
                                          OR (x.what = 'unsubscribe' AND m.template_name = 'news'))))), 0::bigint,
          'only claimed messages of contacts who withdrew are withdrawn, suppressed');
SET LOCAL outreach.now = '2027-01-01 00:10+00';
CREATE TEMP TABLE reclaimed AS SELECT m.* FROM outreach.claim_messages('random-w3', 100000) m;
SELECT is((SELECT count(*) FROM reclaimed m JOIN change x ON m.contact_id = 100000 + x.i
            WHERE x.what = 'inactive' OR (x.what = 'sms' AND m.channel = 'sms')
               OR (x.what = 'unsubscribe' AND m.template_name = 'news')), 0::bigint,
          'after the leases expire a third worker gets nothing of theirs');
SELECT is((SELECT count(*) FROM claimed c JOIN outreach.message m ON m.id = c.id
            WHERE m.withdrawn_at IS NULL AND m.claimed_by <> 'random-w3'), 0::bigint,
          'and every other expired lease is taken over');
SELECT is((SELECT array_agg(DISTINCT r.outcome ORDER BY r.outcome)
             FROM outreach.report_deliveries((SELECT array_agg(id ORDER BY id) FROM claimed WHERE worker = 'random-w1'),
                                             (SELECT array_agg('sent'::text) FROM claimed WHERE worker = 'random-w1'),
                                             worker => 'random-w1') r),
          ARRAY['late', 'refused'],
          'the first worker''s reports: late for withdrawn messages, refused for those taken over');
SELECT is((SELECT count(*) FROM outreach.message m JOIN claimed c ON c.id = m.id AND c.worker = 'random-w1'
            WHERE (m.withdrawn_at IS NOT NULL) <> (m.late_report IS NOT NULL AND m.status = 'suppressed')), 0::bigint,
          'every late report is kept on its withdrawn message, which stays suppressed');

SELECT * FROM finish();
ROLLBACK;
