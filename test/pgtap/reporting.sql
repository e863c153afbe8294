-- reporting: every reporting view counts each metric the one way message_outcome defines it,
-- checked against counts computed independently from message and interaction, and the
-- journey views agree with template_engagement for the same messages; every public view and
-- column has a comment.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(12);

SET LOCAL outreach.now = '2026-03-02 15:00:00+00';
DELETE FROM outreach.frequency_cap;
DELETE FROM outreach.quiet_hours;
INSERT INTO outreach.contact (external_id, first_name, email, phone, time_zone)
SELECT 'c' || i, 'Pat' || i, CASE WHEN i % 9 <> 0 THEN 'p' || i || '@example.org' END,
       '+1415555' || lpad(i::text, 4, '0'), 'UTC' FROM generate_series(1, 60) i;
SELECT outreach.create_template('e1', 'email', 'Hi <a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}', subject => 'E1', sender_postal_address => '1 Main St') \g /dev/null
SELECT outreach.create_template('e2', 'email', 'Yo <a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}', subject => 'E2', sender_postal_address => '1 Main St') \g /dev/null
SELECT outreach.create_template('s1', 'sms', 'Hi {{contact.first_name}}') \g /dev/null
-- a journey sends e1 to 40 contacts (some have no email: suppressed); e2 and s1 go out directly
SELECT outreach.create_static_segment('audience') \g /dev/null
SELECT outreach.add_members('audience', (SELECT array_agg(id) FROM outreach.contact WHERE id <= 40)) \g /dev/null
SELECT outreach.go_live('audience') \g /dev/null
SELECT outreach.create_journey('j', 'audience') \g /dev/null
SELECT outreach.add_step('j', 'invite', 'email', template => 'e1', next => 'done') \g /dev/null
SELECT outreach.add_step('j', 'done', 'end') \g /dev/null
SELECT outreach.launch_journey('j') \g /dev/null
SELECT outreach.tick('2026-03-02 15:00:00+00') \g /dev/null
SELECT count(*) FROM (SELECT outreach.enqueue_message(id, 'e2') FROM outreach.contact WHERE id > 30) x \g /dev/null
SELECT count(*) FROM (SELECT outreach.enqueue_message(id, 's1') FROM outreach.contact WHERE id > 40) x \g /dev/null
-- workers: most claimed; outcomes by id; interactions on some
SELECT count(*) FROM outreach.claim_messages('w', 1000) \g /dev/null
UPDATE outreach.message SET status = 'queued', claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL WHERE id % 13 = 0 AND status = 'sending';
SELECT count(*) FROM (SELECT outreach.report_delivery(id, CASE WHEN id % 5 = 0 THEN 'bounced' WHEN id % 7 = 0 THEN 'failed'
                                                          WHEN id % 2 = 0 THEN 'delivered' ELSE 'sent' END)
                      FROM outreach.message WHERE status = 'sending' AND id % 17 <> 0) x \g /dev/null
SELECT count(*) FROM (SELECT outreach.report_interaction(id, 'opened') FROM outreach.message WHERE status IN ('sent', 'delivered') AND id % 3 = 0) x \g /dev/null
SELECT count(*) FROM (SELECT outreach.report_interaction(id, 'clicked', 'https://x.example') FROM outreach.message WHERE status IN ('sent', 'delivered') AND id % 4 = 0) x \g /dev/null
SELECT count(*) FROM (SELECT outreach.report_interaction(id, 'unsubscribed') FROM outreach.message WHERE status IN ('sent', 'delivered') AND id % 11 = 0) x \g /dev/null
SELECT count(*) FROM (SELECT outreach.report_interaction(id, 'complained') FROM outreach.message WHERE status IN ('sent', 'delivered') AND id % 19 = 0) x \g /dev/null

-- the independent counts, per template, from message and interaction only
CREATE TEMP TABLE expected AS
SELECT t.name AS template,
       count(m.id) AS messages,
       count(m.id) FILTER (WHERE m.status IN ('queued', 'sending')) AS queued,
       count(m.id) FILTER (WHERE m.status IN ('sent', 'delivered', 'bounced')) AS sent,
       count(m.id) FILTER (WHERE m.status = 'delivered') AS delivered,
       count(m.id) FILTER (WHERE m.status = 'bounced') AS bounced,
       count(m.id) FILTER (WHERE m.status = 'failed') AS failed,
       count(m.id) FILTER (WHERE m.status = 'suppressed') AS suppressed,
       count(m.id) FILTER (WHERE m.id IN (SELECT message_id FROM outreach.interaction WHERE kind IN ('opened', 'clicked'))) AS opens,
       count(m.id) FILTER (WHERE m.id IN (SELECT message_id FROM outreach.interaction WHERE kind = 'clicked')) AS clicks,
       count(m.id) FILTER (WHERE m.id IN (SELECT message_id FROM outreach.interaction WHERE kind = 'unsubscribed')) AS unsubscribes,
       count(m.id) FILTER (WHERE m.id IN (SELECT message_id FROM outreach.interaction WHERE kind = 'complained')) AS complaints
FROM outreach.template t LEFT JOIN outreach.message m ON m.template_id = t.id
GROUP BY t.name;

SELECT ok((SELECT bool_and(messages > 0 AND sent > 0 AND delivered > 0 AND bounced > 0 AND failed > 0 AND opens > 0 AND clicks > 0)
           FROM expected WHERE template IN ('e1', 'e2')) AND (SELECT suppressed > 0 AND queued > 0 FROM expected WHERE template = 'e1'),
  'the data has every outcome the views count');
SELECT is((SELECT count(*) FROM outreach.message WHERE status = 'sent'), (SELECT count(*) FROM outreach.message WHERE status = 'sent' AND id NOT IN (SELECT message_id FROM outreach.interaction WHERE kind IN ('opened','clicked'))),
  'an open or click moves a sent message to delivered');
SELECT set_eq(
  $$SELECT template, messages, queued, sent, delivered, bounced, failed, suppressed, unique_opens, unique_clicks, unsubscribes, complaints
    FROM outreach.template_engagement$$,
  $$SELECT template, messages, queued, sent, delivered, bounced, failed, suppressed, opens, clicks, unsubscribes, complaints FROM expected$$,
  'template_engagement equals the independent counts');
SELECT results_eq(
  $$SELECT messages, queued, sent, delivered, bounced, messages_failed, suppressed, unique_opens, unique_clicks, unsubscribes, complaints
    FROM outreach.journey_funnel WHERE journey = 'j'$$,
  $$SELECT messages, queued, sent, delivered, bounced, failed, suppressed, opens, clicks, unsubscribes, complaints FROM expected WHERE template = 'e1'$$,
  'journey_funnel counts the journey''s messages as template_engagement counts e1''s');
SELECT results_eq(
  $$SELECT messages, queued, sent, delivered, bounced, messages_failed, suppressed, unique_opens, unique_clicks, unsubscribes, complaints
    FROM outreach.journey_step_funnel WHERE journey = 'j' AND step = 'invite'$$,
  $$SELECT messages, queued, sent, delivered, bounced, failed, suppressed, opens, clicks, unsubscribes, complaints FROM expected WHERE template = 'e1'$$,
  'journey_step_funnel agrees for the step that sent them');
SELECT results_eq(
  $$SELECT ctr, ctor FROM outreach.journey_funnel WHERE journey = 'j'$$,
  $$SELECT round(clicks::numeric / nullif(delivered, 0), 4), round(clicks::numeric / nullif(opens, 0), 4) FROM expected WHERE template = 'e1'$$,
  'CTR is unique clicks over delivered, CTOR unique clicks over unique opens');
SELECT results_eq(
  $$SELECT ctr, ctor FROM outreach.template_engagement WHERE template = 'e1'$$,
  $$SELECT ctr, ctor FROM outreach.journey_funnel WHERE journey = 'j'$$,
  'template_engagement has the same CTR and CTOR');
SELECT is((SELECT sum(messages)::bigint FROM outreach.journey_message_stats WHERE journey = 'j'), (SELECT messages FROM expected WHERE template = 'e1'),
  'journey_message_stats adds up to the same messages');
SELECT is((SELECT sum(messages)::bigint FROM outreach.message_status), (SELECT count(*) FROM outreach.message), 'message_status adds up to every message');

-- comments: every view and every column of a view or table in the schema BI tools browse
SELECT is(array(SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind IN ('r', 'v')
                  AND c.relname NOT LIKE '\_%' AND obj_description(c.oid, 'pg_class') IS NULL ORDER BY 1),
  '{}'::name[], 'every public table and view has a comment');
SELECT is(array(SELECT c.relname || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind IN ('r', 'v') AND c.relname NOT LIKE '\_%'
                  AND col_description(c.oid, a.attnum) IS NULL ORDER BY 1),
  '{}'::text[], 'every column of a public table or view has a comment');
SELECT is(array(SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind = 'v' AND c.relname LIKE '\_%' ORDER BY 1),
  '{}'::name[], 'no internal helper view in the schema BI tools browse');

SELECT * FROM finish();
ROLLBACK;
