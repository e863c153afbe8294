-- Demo section: a flu-shot day (docs/events.md): an event with two sessions and a waitlist,
-- an invitation to a segment, registrations with codes, a confirmation with the calendar file,
-- a reminder the day before in each patient's local morning, check-in, no-shows marked by the
-- tick, then a thank-you or a "we missed you".
\echo
\echo '== 6. Events: a flu-shot day with registration, waitlist, reminders and follow-ups =='
\echo 'Simulated clock: the week of Saturday 17 October 2026; the event is in New York.'
SET client_min_messages = warning;
SET outreach.now = '2026-10-12 14:00+00';

SELECT outreach.create_event('Flu shot day', '2026-10-17 09:00 America/New_York', '2026-10-17 16:00 America/New_York',
  'America/New_York', venue => 'Springfield Community Clinic, 1 Main St', capacity => 30,
  description => 'Free flu shots for patients 65 and older. Bring your insurance card.') \g /dev/null
SELECT outreach.add_session('Flu shot day', 'Morning', '2026-10-17 09:00 America/New_York', '2026-10-17 12:00 America/New_York', 15) \g /dev/null
SELECT outreach.add_session('Flu shot day', 'Afternoon', '2026-10-17 13:00 America/New_York', '2026-10-17 16:00 America/New_York', 15) \g /dev/null
SELECT outreach.publish_event('Flu shot day') \g /dev/null

-- 1. The invitation: a marketing email to active patients who are 65 or older on the day.
SELECT outreach.create_segment('Flu shot invitees', 'contact where status = ''active'' and birthdate <= date ''1961-10-17''') \g /dev/null
SELECT outreach.go_live('Flu shot invitees') \g /dev/null
SELECT outreach.create_template('flu_invite', 'email',
  '<p>Dear {{contact.first_name}},</p><p>Get your free flu shot at {{event.name}}: {{event.starts_at}}, {{event.venue}}. '
  '<a href="{{event.registration_url}}">Register online</a> or call us.</p>'
  '<p><a href="{{unsubscribe_url}}">Unsubscribe</a> - {{sender.postal_address}}</p>',
  subject => 'Your free flu shot on {{event.name}}',
  sender_postal_address => 'Springfield Community Clinic, 1 Main St, Springfield') \g /dev/null
SELECT outreach.set_template_event('flu_invite', 'Flu shot day', attach_ics => false) \g /dev/null
SELECT outreach.create_journey('Flu shot invitation', 'Flu shot invitees') \g /dev/null
SELECT outreach.add_step('Flu shot invitation', 'invite', 'email', template => 'flu_invite', next => 'done') \g /dev/null
SELECT outreach.add_step('Flu shot invitation', 'done', 'end') \g /dev/null
SELECT outreach.launch_journey('Flu shot invitation') \g /dev/null
SELECT outreach.tick('2026-10-12 14:00+00') \g /dev/null

-- 2. The registrants' journey: confirmation (code + invite.ics), reminder on Friday morning
--    local time, then after the event a thank-you or "we missed you".
SELECT outreach.create_segment('Flu shot registrants', $q$contact where has event_registration
  where (status in ('registered', 'attended', 'no_show') and has event where name = 'Flu shot day')$q$) \g /dev/null
SELECT outreach.go_live('Flu shot registrants') \g /dev/null
SELECT outreach.create_segment('Flu shot attendees', $q$contact where has event_registration
  where (status = 'attended' and has event where name = 'Flu shot day')$q$) \g /dev/null
SELECT outreach.go_live('Flu shot attendees') \g /dev/null
SELECT outreach.create_template('flu_confirm', 'email',
  '<p>Dear {{contact.first_name}}, you are registered for {{event.name}}, {{event.starts_at}}, {{event.venue}}.</p>'
  '<p>Your registration code: <b>{{registration.code}}</b>. The calendar invitation is attached.</p>',
  subject => 'You are registered: {{event.name}} ({{registration.code}})', message_class => 'transactional') \g /dev/null
SELECT outreach.create_template('flu_remind', 'email',
  '<p>See you tomorrow, {{contact.first_name}}: {{event.name}}, {{event.starts_at}}. Your code: {{registration.code}}.</p>',
  subject => 'Tomorrow: {{event.name}}', message_class => 'transactional') \g /dev/null
SELECT outreach.create_template('flu_thanks', 'email', '<p>Thank you for coming, {{contact.first_name}}. Stay healthy!</p>',
  subject => 'Thank you for coming', message_class => 'transactional') \g /dev/null
SELECT outreach.create_template('flu_missed', 'email',
  '<p>We missed you, {{contact.first_name}}. Call us to get your flu shot another day.</p>',
  subject => 'We missed you', message_class => 'transactional') \g /dev/null
SELECT outreach.set_template_event(t, 'Flu shot day', attach_ics => t = 'flu_confirm')
  FROM unnest(ARRAY['flu_confirm', 'flu_remind', 'flu_thanks', 'flu_missed']) t \g /dev/null
SELECT outreach.create_journey('Flu shot day', 'Flu shot registrants', message_class => 'transactional',
                               exit_on_leave => true) \g /dev/null
SELECT outreach.add_step('Flu shot day', 'confirm', 'email', template => 'flu_confirm', next => 'friday morning') \g /dev/null
SELECT outreach.add_step('Flu shot day', 'friday morning', 'wait_until', from_time => '09:00', until_time => '11:00',
                         weekdays => '{5}', next => 'remind') \g /dev/null
SELECT outreach.add_step('Flu shot day', 'remind', 'email', template => 'flu_remind', next => 'sunday') \g /dev/null
SELECT outreach.add_step('Flu shot day', 'sunday', 'wait_until', from_time => '10:00', weekdays => '{7}', next => 'came?') \g /dev/null
SELECT outreach.add_step('Flu shot day', 'came?', 'branch_segment', segment => 'Flu shot attendees', yes => 'thanks', no => 'missed') \g /dev/null
SELECT outreach.add_step('Flu shot day', 'thanks', 'email', template => 'flu_thanks', next => 'done') \g /dev/null
SELECT outreach.add_step('Flu shot day', 'missed', 'email', template => 'flu_missed', next => 'done') \g /dev/null
SELECT outreach.add_step('Flu shot day', 'done', 'end') \g /dev/null
SELECT outreach.launch_journey('Flu shot day') \g /dev/null

-- 3. Tuesday: 40 invitees register (30 seats: 10 go on the waitlist).
SET outreach.now = '2026-10-13 15:00+00';
CREATE TEMP TABLE demo_flu AS
SELECT c.id AS contact_id,
       outreach.register('Flu shot day', c.id, ARRAY[CASE WHEN n % 2 = 0 THEN 'Morning' ELSE 'Afternoon' END], 'web') AS code
FROM (SELECT x.id, row_number() OVER (ORDER BY x.id) AS n
        FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id AND s.name = 'Flu shot invitees'
        JOIN outreach.contact x ON x.id = m.contact_id
       WHERE x.email IS NOT NULL AND NOT x.do_not_email ORDER BY x.id LIMIT 40) c;
SELECT outreach.tick('2026-10-13 15:01+00') \g /dev/null
-- Wednesday: four cancel; the first waitlisted that fit take their seats at once.
SET outreach.now = '2026-10-14 15:00+00';
SELECT count(*) AS cancelled, sum(cardinality(p)) AS promoted_from_waitlist
FROM (SELECT outreach.cancel_registration(code) AS p FROM demo_flu ORDER BY contact_id LIMIT 4) x;
SELECT outreach.tick('2026-10-14 15:01+00') \g /dev/null
-- Friday: hourly ticks send each reminder in the patient's own morning.
SELECT outreach.tick('2026-10-16 00:00+00'::timestamptz + h * interval '1 hour') FROM generate_series(12, 20) h \g /dev/null
-- Saturday: three in four registered patients show up and are checked in by code.
SET outreach.now = '2026-10-17 15:00+00';
SELECT count(outreach.check_in(code)) AS checked_in
FROM demo_flu d JOIN outreach.event_registration r ON r.registration_code = d.code
WHERE r.status = 'registered' AND d.contact_id % 4 <> 0;
-- After the event the tick marks the no-shows; on Sunday morning the follow-ups go out.
SELECT outreach.tick('2026-10-17 20:30+00') \g /dev/null
SELECT outreach.tick('2026-10-18 00:00+00'::timestamptz + h * interval '1 hour') FROM generate_series(13, 21) h \g /dev/null
RESET outreach.now;

\echo 'The event and its sessions (outreach.event_overview):'
SELECT coalesce(session, '(event)') AS scope, capacity, registered, waitlisted, cancelled, attended, no_show,
       no_show_rate, fill_rate
FROM outreach.event_overview WHERE event = 'Flu shot day' ORDER BY session NULLS FIRST;
\echo 'A confirmation as queued (the code is random, so yours differs):'
SELECT m.subject, left(regexp_replace(m.body, '<[^>]+>', '', 'g'), 150) AS body
FROM outreach.message m WHERE m.template_name = 'flu_confirm' ORDER BY m.id LIMIT 1;
\echo 'Its calendar attachment (first lines):'
SELECT a.filename, a.content_type,
       array_to_string((string_to_array(a.content, E'\r\n'))[5:11], ' | ') AS first_lines
FROM outreach.message_attachment a JOIN outreach.message m ON m.id = a.message_id
WHERE m.template_name = 'flu_confirm' ORDER BY a.id LIMIT 1;
\echo 'The journey, step by step:'
SELECT step, kind, reached, waiting, yes, no, messages
FROM outreach.journey_step_funnel WHERE journey = 'Flu shot day' ORDER BY step_id;
\echo 'Invitations queued or suppressed:'
SELECT m.status, m.suppression_reason, count(*) AS messages
FROM outreach.message m WHERE m.template_name = 'flu_invite' GROUP BY 1, 2 ORDER BY 1, 2;
