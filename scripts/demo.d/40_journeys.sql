-- Demo section: a journey on the live segment of section 3/4 (adapted from the demo snippet
-- of test/extra/journeys_demo.sh): email invitation, branch on opened, SMS reminder.
\echo
\echo '== 5. A journey: email invitation, wait 3 days for an open, else an SMS reminder =='
\echo 'The clock is simulated (outreach.now / tick(at)); a simulated worker sends and reports opens.'
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM outreach.segment WHERE name = 'Hypermetropia (active patients)') THEN
    PERFORM outreach.create_segment('Hypermetropia (active patients)',
      'contact where status = ''active'' and has condition where description contains ''Hypermetropia''');
    PERFORM outreach.go_live('Hypermetropia (active patients)');
  END IF;
END $$;

SELECT outreach.create_template('eye_invite', 'email',
  '<p>Dear {{contact.first_name}},</p><p>It is time for your yearly eye exam. '
  '<a href="https://clinic.example/book">Book an appointment</a>.</p>'
  '<p><a href="{{unsubscribe_url}}">Unsubscribe</a> - {{sender.postal_address}}</p>',
  subject => 'Time for your eye exam, {{contact.first_name}}',
  sender_postal_address => 'Springfield Eye Clinic, 1 Clinic Way, Springfield') \g /dev/null
SELECT outreach.create_template('eye_reminder', 'sms',
  'Hi {{contact.first_name}}, a reminder to book your eye exam: https://clinic.example/book') \g /dev/null

SELECT outreach.create_journey('Eye exam invitation', 'Hypermetropia (active patients)',
                               time_zone => 'America/New_York', exit_on_leave => true) \g /dev/null
SELECT outreach.add_step('Eye exam invitation', 'invite', 'email', template => 'eye_invite', next => 'opened?') \g /dev/null
SELECT outreach.add_step('Eye exam invitation', 'opened?', 'branch_interaction', after_step => 'invite',
                         interaction => 'opened', timeout => '3 days', yes => 'done', no => 'reminder') \g /dev/null
SELECT outreach.add_step('Eye exam invitation', 'reminder', 'sms', template => 'eye_reminder', next => 'done') \g /dev/null
SELECT outreach.add_step('Eye exam invitation', 'done', 'end') \g /dev/null

-- Simulated clock: Monday 2 March 2026, 9:00 in New York.
SET outreach.now = '2026-03-02 14:00+00';
SELECT outreach.launch_journey('Eye exam invitation') AS enrolled;
SELECT outreach.tick('2026-03-02 14:00+00') \g /dev/null

-- A simulated delivery worker sends what is due; every third email is opened, some clicked.
SET outreach.now = '2026-03-02 15:00+00';
SELECT count(*) FILTER (WHERE m.channel = 'email') AS emails_sent, count(*) FILTER (WHERE m.channel = 'sms') AS sms_sent
FROM outreach.claim_messages('demo-worker', 1000) m, LATERAL outreach.report_delivery(m.id, 'sent') d;
SELECT count(*) AS opened FROM (
  SELECT outreach.report_interaction(m.id, 'opened', at => '2026-03-03 13:00+00')
  FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id
  WHERE j.name = 'Eye exam invitation' AND m.status = 'sent' AND m.id % 3 = 0) o;
SELECT count(*) AS clicked FROM (
  SELECT outreach.report_interaction(m.id, 'clicked', 'https://clinic.example/book', at => '2026-03-03 13:05+00')
  FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id
  WHERE j.name = 'Eye exam invitation' AND m.status = 'delivered' AND m.id % 6 = 0) c;

SELECT outreach.tick('2026-03-03 13:10+00') \g /dev/null
SELECT outreach.tick('2026-03-05 14:01+00') \g /dev/null
SET outreach.now = '2026-03-05 15:00+00';
SELECT count(*) FILTER (WHERE m.channel = 'sms') AS sms_sent,          -- emails held by quiet hours go out now too
       count(*) FILTER (WHERE m.channel = 'email') AS emails_sent
FROM outreach.claim_messages('demo-worker', 1000) m, LATERAL outreach.report_delivery(m.id, 'sent') d;
RESET outreach.now;

\echo 'Outbox (first 8 messages):'
SELECT m.id, c.first_name || ' ' || c.last_name AS contact, m.channel, s.key AS step, m.status,
       m.suppression_reason, to_char(m.send_after AT TIME ZONE 'UTC', 'Dy DD Mon HH24:MI') AS send_after_utc
FROM outreach.message m JOIN outreach.contact c ON c.id = m.contact_id
JOIN outreach.journey j ON j.id = m.journey_id JOIN outreach.journey_step s ON s.id = m.step_id
WHERE j.name = 'Eye exam invitation' ORDER BY m.id LIMIT 8;
\echo 'Journey funnel:'
SELECT journey, enrolled, active, completed, exited, messages, delivered, suppressed, unique_opens, unique_clicks, ctr, ctor
FROM outreach.journey_funnel WHERE journey = 'Eye exam invitation';
\echo 'Per step:'
SELECT step, kind, reached, waiting, yes, no, messages, delivered, suppressed, unique_opens, unique_clicks, ctr, ctor
FROM outreach.journey_step_funnel WHERE journey = 'Eye exam invitation' ORDER BY step_id;
\echo 'Suppressed messages by reason:'
SELECT step, channel, suppression_reason, messages FROM outreach.journey_message_stats
WHERE journey = 'Eye exam invitation' AND status = 'suppressed' ORDER BY step, channel, suppression_reason;
