#!/usr/bin/env bash
# test/extra/journeys_demo.sh: the journey demo end to end (the psql snippet handed to `make
# demo`): a hypermetropia segment, invitation email, SMS reminder 3 days later to those who did
# not open it, ticks at simulated times, a simulated delivery worker, outbox and funnel.
# Checks the numbers against what the population implies.  Last line: "N passed, N failed".
set -euo pipefail
PSQL=("${PRIVATE_BIN:+$PRIVATE_BIN/}psql" -X -q -v ON_ERROR_STOP=1)
passed=0; failed=0
check() { # name expected actual
	if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok - $1"; else failed=$((failed + 1)); echo "not ok - $1: expected '$2', got '$3'"; fi
}

# Population: 30 patients in New York; even ids have hypermetropia; every 7th has no email,
# every 5th no phone.
"${PSQL[@]}" <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach CASCADE;
INSERT INTO outreach.contact (external_id, first_name, last_name, email, phone, time_zone)
SELECT 'demo' || i, 'Pat' || i, 'Doe', CASE WHEN i % 7 <> 0 THEN 'p' || i || '@example.org' END,
       CASE WHEN i % 5 <> 0 THEN '+155501' || lpad(i::text, 5, '0') END, 'America/New_York'
FROM generate_series(1, 30) i;
INSERT INTO outreach.condition (patient_id, code, description)
SELECT id, '38101003', 'Hypermetropia (disorder)' FROM outreach.contact WHERE substr(external_id, 5)::int % 2 = 0;
SQL

# ---- the demo snippet ---------------------------------------------------------------------
"${PSQL[@]}" <<'SQL'
\pset footer off
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM outreach.segment WHERE name = 'Hypermetropia patients') THEN
    PERFORM outreach.create_segment('Hypermetropia patients',
      'contact where status = ''active'' and has condition where description contains ''Hypermetropia''');
    PERFORM outreach.go_live('Hypermetropia patients');
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

SELECT outreach.create_journey('Eye exam invitation', 'Hypermetropia patients',
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

SELECT outreach.tick('2026-03-03 13:10+00') \g /dev/null   -- openers take the yes path at once
SELECT outreach.tick('2026-03-05 14:01+00') \g /dev/null   -- 3 days later: SMS to the others
SET outreach.now = '2026-03-05 15:00+00';
SELECT count(*) FILTER (WHERE m.channel = 'sms') AS sms_sent,          -- emails held by quiet hours go out now too
       count(*) FILTER (WHERE m.channel = 'email') AS emails_sent
FROM outreach.claim_messages('demo-worker', 1000) m, LATERAL outreach.report_delivery(m.id, 'sent') d;
RESET outreach.now;

\echo 'Outbox:'
SELECT m.id, c.first_name || ' ' || c.last_name AS contact, m.channel, s.key AS step, m.status,
       m.suppression_reason, to_char(m.send_after AT TIME ZONE 'UTC', 'Dy DD Mon HH24:MI') AS send_after_utc
FROM outreach.message m JOIN outreach.contact c ON c.id = m.contact_id
JOIN outreach.journey j ON j.id = m.journey_id JOIN outreach.journey_step s ON s.id = m.step_id
WHERE j.name = 'Eye exam invitation' ORDER BY m.id;
\echo 'Journey funnel:'
SELECT journey, enrolled, active, completed, exited, messages, delivered, suppressed, unique_opens, unique_clicks, ctr, ctor
FROM outreach.journey_funnel WHERE journey = 'Eye exam invitation';
\echo 'Per step:'
SELECT step, kind, reached, waiting, yes, no, messages, delivered, suppressed, unique_opens, unique_clicks, ctr, ctor
FROM outreach.journey_step_funnel WHERE journey = 'Eye exam invitation' ORDER BY step_id;
\echo 'Suppressed messages by reason:'
SELECT step, channel, suppression_reason, messages FROM outreach.journey_message_stats
WHERE journey = 'Eye exam invitation' AND status = 'suppressed' ORDER BY step, channel, suppression_reason;
SQL
# ---- end of the demo snippet --------------------------------------------------------------

q() { "${PSQL[@]}" -tA -c "$1"; }
# 15 patients (even ids); 2 without email (14, 28); 1 in 3 opened.
check "every hypermetropia patient enrolled" 15 "$(q "SELECT enrolled FROM outreach.journey_funnel WHERE journey = 'Eye exam invitation'")"
check "everyone completed" 15 "$(q "SELECT completed FROM outreach.journey_funnel WHERE journey = 'Eye exam invitation'")"
check "one invitation each" 15 "$(q "SELECT count(DISTINCT contact_id) FROM outreach.message m JOIN outreach.journey_step s ON s.id = m.step_id WHERE s.key = 'invite'")"
check "patients without email are suppressed, not skipped" 2 "$(q "SELECT count(*) FROM outreach.message m JOIN outreach.journey_step s ON s.id = m.step_id WHERE s.key = 'invite' AND m.suppression_reason = 'no_address'")"
opened=$(q "SELECT unique_opens FROM outreach.journey_step_funnel WHERE journey = 'Eye exam invitation' AND step = 'invite'")
check "reminders go exactly to those who did not open" "$((15 - opened))" "$(q "SELECT count(*) FROM outreach.message m JOIN outreach.journey_step s ON s.id = m.step_id WHERE s.key = 'reminder'")"
check "openers took the yes path" "$opened" "$(q "SELECT yes FROM outreach.journey_step_funnel WHERE journey = 'Eye exam invitation' AND step = 'opened?'")"
check "reminders only after the 3 days" 0 "$(q "SELECT count(*) FROM outreach.message m JOIN outreach.journey_step s ON s.id = m.step_id WHERE s.key = 'reminder' AND m.created_at < '2026-03-05 14:00+00'")"
check "CTOR is clicks over opens" t "$(q "SELECT ctor = round(unique_clicks::numeric / unique_opens, 4) FROM outreach.journey_funnel WHERE journey = 'Eye exam invitation'")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
