-- Events (DESIGN §6): every function and error path (SQLSTATE), capacity and waitlist, codes,
-- check-in, no-shows by the tick, cancelling, template tokens and the .ics attachment,
-- segments over registrations, a journey branching on attended / no-show, event_overview,
-- privileges.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT * FROM no_plan();

CREATE FUNCTION pg_temp.cid(ext text) RETURNS bigint LANGUAGE sql AS
  $$ SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.st(code text) RETURNS text LANGUAGE sql AS
  $$ SELECT status FROM outreach.event_registration WHERE registration_code = code $$;
SET LOCAL client_min_messages = warning;
DELETE FROM outreach.quiet_hours;
DELETE FROM outreach.frequency_cap;

INSERT INTO outreach.contact (external_id, first_name, last_name, email, time_zone)
SELECT 'ev' || i, 'Pat' || i, 'Doe', 'pat' || i || '@example.org', 'America/New_York' FROM generate_series(1, 12) i;
UPDATE outreach.contact SET deceased_at = '2025-05-01' WHERE external_id = 'ev11';
UPDATE outreach.contact SET status = 'inactive' WHERE external_id = 'ev12';

SET LOCAL outreach.now = '2026-10-01 12:00+00';

-- create_event ----------------------------------------------------------------------------
SELECT throws_ok($$ SELECT outreach.create_event(NULL, '2026-10-06 13:00Z', '2026-10-06 21:00Z', venue => 'x') $$,
  '22004', 'an event needs a name', 'create_event needs a name');
SELECT throws_ok($$ SELECT outreach.create_event('x', '2026-10-06 13:00Z', '2026-10-06 12:00Z', venue => 'x') $$,
  '22023', 'event "x" ends before it starts', 'create_event refuses an end before the start');
SELECT throws_ok($$ SELECT outreach.create_event('x', '2026-10-06 13:00Z', '2026-10-06 21:00Z') $$,
  '22023', 'event "x" needs a venue', 'an in-person event needs a venue');
SELECT throws_ok($$ SELECT outreach.create_event('x', '2026-10-06 13:00Z', '2026-10-06 21:00Z', kind => 'virtual') $$,
  '22023', 'event "x" needs an online URL', 'a virtual event needs an online URL');
SELECT throws_ok($$ SELECT outreach.create_event('x', '2026-10-06 13:00Z', '2026-10-06 21:00Z', kind => 'hybrid', venue => 'Hall') $$,
  '22023', 'event "x" needs an online URL', 'a hybrid event needs an online URL too');
SELECT throws_ok($$ SELECT outreach.create_event('x', '2026-10-06 13:00Z', '2026-10-06 21:00Z', kind => 'gala', venue => 'x', online_url => 'u') $$,
  '23514', NULL, 'the kind is in_person, virtual or hybrid');
SELECT throws_ok($$ SELECT outreach.create_event('x', '2026-10-06 13:00Z', '2026-10-06 21:00Z', venue => 'x', time_zone => 'Mars/Base') $$,
  '23514', NULL, 'the time zone must be known');
SELECT throws_ok($$ SELECT outreach.create_event('x', '2026-10-06 13:00Z', '2026-10-06 21:00Z', venue => 'x', capacity => 0) $$,
  '23514', NULL, 'capacity is positive');
SELECT throws_ok($$ SELECT outreach.create_event('x', '2026-10-06 13:00Z', '2026-10-06 21:00Z', venue => 'x', code_prefix => 'INFO') $$,
  '22023', 'invalid registration code prefix "INFO"', 'a code prefix cannot use I or O');

SELECT ok(outreach.create_event('Flu shot day', '2026-10-06 13:00Z', '2026-10-06 21:00Z', 'America/New_York',
                                venue => 'Springfield Clinic, 1 Main St', capacity => 3,
                                registration_opens_at => '2026-09-01 00:00Z', description => 'Free flu shots') > 0,
          'create_event makes an event');
SELECT is((SELECT (status, code_prefix) FROM outreach.event WHERE name = 'Flu shot day'), ('draft'::text, 'FLU'::text)::record,
          'a new event is a draft; its code prefix comes from its name');
SELECT throws_ok($$ SELECT outreach.create_event('Flu shot day', '2026-10-06 13:00Z', '2026-10-06 21:00Z', venue => 'x') $$,
  '42710', 'event "Flu shot day" already exists', 'event names are unique');
SELECT is(outreach._code_prefix('Information session'), 'NFR', 'a default prefix skips the letters codes do not use');

-- add_session -----------------------------------------------------------------------------
SELECT throws_ok($$ SELECT outreach.add_session('Flu shot dya', 'Morning', '2026-10-06 13:00Z', '2026-10-06 16:00Z') $$,
  '42704', 'event "Flu shot dya" does not exist', 'add_session names the unknown event');
SELECT throws_ok($$ SELECT outreach.add_session('Flu shot day', 'Night', '2026-10-06 21:00Z', '2026-10-06 23:00Z') $$,
  '22023', 'session "Night" lies outside event "Flu shot day"', 'a session lies within its event');
SELECT throws_ok($$ SELECT outreach.add_session('Flu shot day', 'Odd', '2026-10-06 16:00Z', '2026-10-06 15:00Z') $$,
  '22023', 'session "Odd" of event "Flu shot day" needs a start before its end', 'a session starts before it ends');
SELECT throws_ok($$ SELECT outreach.add_session('Flu shot day', 'Odd', '2026-10-06 13:00Z', '2026-10-06 15:00Z', 0) $$,
  '22023', 'session capacity must be at least 1', 'a session capacity is positive');
SELECT ok(outreach.add_session('Flu shot day', 'Morning', '2026-10-06 13:00Z', '2026-10-06 16:00Z', capacity => 1) > 0,
          'add_session adds a session');
SELECT ok(outreach.add_session('Flu shot day', 'Afternoon', '2026-10-06 17:00Z', '2026-10-06 21:00Z') > 0,
          'a session without capacity is limited by the event');
SELECT throws_ok($$ SELECT outreach.add_session('Flu shot day', 'Morning', '2026-10-06 13:00Z', '2026-10-06 16:00Z') $$,
  '42710', 'event "Flu shot day" already has a session "Morning"', 'session names are unique per event');

-- register before publishing, then publish -------------------------------------------------
SELECT throws_ok(format($$ SELECT outreach.register('Flu shot day', %s) $$, pg_temp.cid('ev1')),
  '55000', 'event "Flu shot day" is not published yet', 'an unpublished event refuses registrations');
SELECT lives_ok($$ SELECT outreach.publish_event('Flu shot day') $$, 'publish_event publishes a draft');
SELECT lives_ok($$ SELECT outreach.publish_event('Flu shot day') $$, 'publishing twice changes nothing');
SELECT is((SELECT status FROM outreach.event WHERE name = 'Flu shot day'), 'published', 'the event is published');

-- register: errors --------------------------------------------------------------------------
SELECT throws_ok($$ SELECT outreach.register('Nope', 1) $$, '42704', 'event "Nope" does not exist', 'register names the unknown event');
SELECT throws_ok($$ SELECT outreach.register('Flu shot day', -5) $$, '23503', 'contact -5 does not exist', 'register needs a contact');
SELECT throws_ok(format($$ SELECT outreach.register('Flu shot day', %s) $$, pg_temp.cid('ev11')),
  '22023', format('contact %s is deceased', pg_temp.cid('ev11')), 'a deceased contact cannot register');
SELECT throws_ok(format($$ SELECT outreach.register('Flu shot day', %s) $$, pg_temp.cid('ev12')),
  '22023', format('contact %s is inactive', pg_temp.cid('ev12')), 'an inactive contact cannot register');
SELECT throws_ok(format($$ SELECT outreach.register('Flu shot day', %s, '{Evening}') $$, pg_temp.cid('ev1')),
  '42704', 'event "Flu shot day" has no session Evening', 'register names an unknown session');
SELECT throws_ok(format($$ SET LOCAL outreach.now = '2026-08-01 00:00Z'; SELECT outreach.register('Flu shot day', %s) $$, pg_temp.cid('ev1')),
  '55000', 'registration for event "Flu shot day" is not open yet', 'registration opens at registration_opens_at');
SET LOCAL outreach.now = '2026-10-01 12:00+00';

-- register: seats, codes, waitlist ---------------------------------------------------------
CREATE TEMP TABLE codes (ext text PRIMARY KEY, code text);
INSERT INTO codes SELECT 'ev1', outreach.register('Flu shot day', pg_temp.cid('ev1'), '{Morning}');
SELECT matches((SELECT code FROM codes WHERE ext = 'ev1'), '^FLU-[2-9A-HJ-NP-Z]{6}$', 'a code is the prefix and 6 characters without 0, O, 1, I');
SELECT is(pg_temp.st((SELECT code FROM codes WHERE ext = 'ev1')), 'registered', 'a free seat is taken');
SELECT is(outreach.register('Flu shot day', pg_temp.cid('ev1'), '{Afternoon}'), (SELECT code FROM codes WHERE ext = 'ev1'),
          'registering twice returns the existing code');
SELECT is((SELECT count(*) FROM outreach.event_registration WHERE contact_id = pg_temp.cid('ev1')), 1::bigint,
          'registering twice makes no second registration');
-- Morning (capacity 1) is full: ev2 waits although the event has seats
INSERT INTO codes SELECT 'ev2', outreach.register('Flu shot day', pg_temp.cid('ev2'), '{Morning}');
SELECT is(pg_temp.st((SELECT code FROM codes WHERE ext = 'ev2')), 'waitlisted', 'a full session puts the registration on the waitlist');
SELECT is((SELECT waitlist_position FROM outreach.registration_status((SELECT code FROM codes WHERE ext = 'ev2'))), 1,
          'the first on the waitlist has position 1');
INSERT INTO codes SELECT 'ev3', outreach.register('Flu shot day', pg_temp.cid('ev3'), '{Afternoon}');
INSERT INTO codes SELECT 'ev4', outreach.register('Flu shot day', pg_temp.cid('ev4'), source => 'phone');
SELECT is((SELECT array_agg(pg_temp.st(code) ORDER BY ext) FROM codes WHERE ext IN ('ev3', 'ev4')), '{registered,registered}',
          'the event''s last seats are taken');
SELECT is((SELECT source FROM outreach.event_registration WHERE registration_code = (SELECT code FROM codes WHERE ext = 'ev4')), 'phone',
          'the source is recorded');
-- the event (capacity 3) is full now
INSERT INTO codes SELECT 'ev5', outreach.register('Flu shot day', pg_temp.cid('ev5'), '{Afternoon}');
INSERT INTO codes SELECT 'ev6', outreach.register('Flu shot day', pg_temp.cid('ev6'));
SELECT is((SELECT array_agg(w.waitlist_position ORDER BY c.ext) FROM codes c, outreach.registration_status(c.code) w
            WHERE c.ext IN ('ev2', 'ev5', 'ev6')), '{1,2,3}', 'a full event waitlists in order of arrival');
SELECT is((SELECT count(DISTINCT code) FROM codes), 6::bigint, 'every registration has its own code');
SELECT is((SELECT (registration_code, event, status, sessions) FROM outreach.registration_status(lower((SELECT code FROM codes WHERE ext = 'ev1')))),
          ((SELECT code FROM codes WHERE ext = 'ev1'), 'Flu shot day'::text, 'registered'::text, '{Morning}'::text[])::record,
          'registration_status finds a code typed in lower case');
SELECT throws_ok($$ SELECT * FROM outreach.registration_status('FLU-XXXXXX') $$, 'P0002',
  'registration code "FLU-XXXXXX" does not exist', 'an unknown code is an error');

-- cancel_registration and FIFO promotion ---------------------------------------------------
SELECT throws_ok($$ SELECT outreach.cancel_registration('FLU-ZZZZZZ') $$, 'P0002', NULL, 'cancel_registration needs a known code');
-- ev3 leaves the afternoon: ev2 (first) waits for the morning, so ev5 (second, afternoon) gets the seat
SELECT is(outreach.cancel_registration((SELECT code FROM codes WHERE ext = 'ev3')), ARRAY[(SELECT code FROM codes WHERE ext = 'ev5')],
          'a freed seat goes to the first waitlisted registration that fits');
SELECT is((SELECT array_agg(pg_temp.st(code) ORDER BY ext) FROM codes WHERE ext IN ('ev2', 'ev3', 'ev5', 'ev6')),
          '{waitlisted,cancelled,registered,waitlisted}', 'cancelled, promoted, still waiting');
SELECT is((SELECT waitlist_position FROM outreach.registration_status((SELECT code FROM codes WHERE ext = 'ev6'))), 2,
          'positions move up');
SELECT is(outreach.cancel_registration((SELECT code FROM codes WHERE ext = 'ev3')), '{}'::text[], 'cancelling twice changes nothing');
-- ev1 leaves: the morning seat and an event seat go to ev2 (first in line)
SELECT is(outreach.cancel_registration((SELECT code FROM codes WHERE ext = 'ev1')), ARRAY[(SELECT code FROM codes WHERE ext = 'ev2')],
          'the first waitlisted gets the seat (FIFO)');
SELECT is(outreach.cancel_registration((SELECT code FROM codes WHERE ext = 'ev6')), '{}'::text[], 'a waitlisted registration can cancel');
SELECT isnt(outreach.register('Flu shot day', pg_temp.cid('ev1')), (SELECT code FROM codes WHERE ext = 'ev1'),
            'registering again after cancelling gives a new code');
SELECT is(pg_temp.st(outreach.register('Flu shot day', pg_temp.cid('ev1'))), 'waitlisted', 'the new registration waits');
SELECT is((SELECT array_agg(taken ORDER BY session_id) FROM outreach.event_seats s JOIN outreach.event e ON e.id = s.event_id
            WHERE e.name = 'Flu shot day'),
          (SELECT ARRAY[(SELECT count(*)::int FROM outreach.event_registration r JOIN outreach.event e ON e.id = r.event_id
                          WHERE e.name = 'Flu shot day' AND r.status IN ('registered', 'attended', 'no_show'))]
                  || array_agg((SELECT count(*)::int FROM outreach.event_registration_session rs JOIN outreach.event_registration r ON r.id = rs.registration_id
                                 WHERE rs.session_id = s.id AND r.status IN ('registered', 'attended', 'no_show')) ORDER BY s.id)
             FROM outreach.event_session s JOIN outreach.event e ON e.id = s.event_id WHERE e.name = 'Flu shot day'),
          'the seat counters equal a recount');

-- a registration deleted with its contact (erasure) gives its seat to the waitlist ---------------
SELECT outreach.create_event('Erasure', '2026-10-20 13:00Z', '2026-10-20 15:00Z', venue => 'Room', capacity => 1);
SELECT outreach.add_session('Erasure', 'Only', '2026-10-20 13:00Z', '2026-10-20 15:00Z', 1);
SELECT outreach.publish_event('Erasure');
INSERT INTO outreach.contact (external_id, first_name) VALUES ('gone', 'Gone');
SELECT outreach.register('Erasure', pg_temp.cid('gone'), '{Only}');
CREATE TEMP TABLE ecode AS SELECT outreach.register('Erasure', pg_temp.cid('ev9'), '{Only}') AS code;
SELECT is(pg_temp.st((SELECT code FROM ecode)), 'waitlisted', 'the second registration waits');
DELETE FROM outreach.contact WHERE external_id = 'gone';
SELECT is(pg_temp.st((SELECT code FROM ecode)), 'registered', 'deleting a seat holder promotes the waitlist');
SELECT is((SELECT array_agg(taken || '/' || waitlisted ORDER BY session_id) FROM outreach.event_seats s JOIN outreach.event e ON e.id = s.event_id
            WHERE e.name = 'Erasure'), '{1/0,1/0}', 'the counters follow the deletion');
DELETE FROM outreach.event_session WHERE name = 'Only';
SELECT is((SELECT count(*) FROM outreach.event_seats s JOIN outreach.event e ON e.id = s.event_id WHERE e.name = 'Erasure'), 1::bigint,
          'a deleted session takes its counter with it');
DELETE FROM outreach.event WHERE name = 'Erasure';
SELECT is((SELECT count(*) FROM outreach.event_registration WHERE registration_code = (SELECT code FROM ecode)), 0::bigint,
          'a deleted event takes its registrations with it');

-- registration window ------------------------------------------------------------------------
SELECT throws_ok(format($$ SET LOCAL outreach.now = '2026-10-06 13:30Z'; SELECT outreach.register('Flu shot day', %s) $$, pg_temp.cid('ev7')),
  '55000', 'registration for event "Flu shot day" is closed', 'registration closes when the event starts');
SET LOCAL outreach.now = '2026-10-01 12:00+00';

-- check_in ----------------------------------------------------------------------------------
SELECT throws_ok(format($$ SELECT outreach.check_in(%L) $$, (SELECT code FROM codes WHERE ext = 'ev2')),
  '55000', 'event "Flu shot day" has not started', 'check-in opens on the event''s day');
SET LOCAL outreach.now = '2026-10-06 14:00+00';
SELECT is(outreach.check_in((SELECT code FROM codes WHERE ext = 'ev2')), '2026-10-06 14:00+00'::timestamptz, 'check_in records the time');
SET LOCAL outreach.now = '2026-10-06 15:00+00';
SELECT is(outreach.check_in((SELECT code FROM codes WHERE ext = 'ev2')), '2026-10-06 14:00+00'::timestamptz,
          'checking in twice says when the first check-in was');
SELECT is(pg_temp.st((SELECT code FROM codes WHERE ext = 'ev2')), 'attended', 'a checked-in registration attended');
SELECT throws_ok(format($$ SELECT outreach.check_in(%L) $$, (SELECT code FROM codes WHERE ext = 'ev3')),
  '55000', format('registration %s is cancelled', (SELECT code FROM codes WHERE ext = 'ev3')), 'a cancelled registration cannot check in');
SELECT throws_ok(format($$ SELECT outreach.check_in(%L) $$, (SELECT registration_code FROM outreach.event_registration WHERE status = 'waitlisted')),
  '55000', NULL, 'a waitlisted registration cannot check in');
SELECT throws_ok(format($$ SELECT outreach.cancel_registration(%L) $$, (SELECT code FROM codes WHERE ext = 'ev2')),
  '55000', format('registration %s cannot be cancelled: it is attended', (SELECT code FROM codes WHERE ext = 'ev2')),
  'an attended registration cannot be cancelled');

-- segments over registrations, membership at once --------------------------------------------
SELECT outreach.create_segment('flu attended', $$contact where has event_registration where (status = 'attended' and has event where name = 'Flu shot day')$$);
SELECT outreach.go_live('flu attended');
SELECT outreach.create_segment('flu no-show', $$contact where has event_registration where status = 'no_show'$$);
SELECT outreach.go_live('flu no-show');
SELECT is((SELECT array_agg(contact_id) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id WHERE s.name = 'flu attended'),
          ARRAY[pg_temp.cid('ev2')], 'has event_registration where status = ''attended'' finds the attendee (through has event)');
SELECT outreach.check_in((SELECT code FROM codes WHERE ext = 'ev4'));
SELECT is((SELECT count(*) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id WHERE s.name = 'flu attended'),
          2::bigint, 'a check-in changes membership in the same transaction');

-- the tick: no-shows after the event -------------------------------------------------------------
SELECT outreach.tick('2026-10-06 20:00+00');
SELECT is(pg_temp.st((SELECT code FROM codes WHERE ext = 'ev5')), 'registered', 'nothing is a no-show before the event ends');
SELECT outreach.tick('2026-10-06 21:00+00');
SELECT is(pg_temp.st((SELECT code FROM codes WHERE ext = 'ev5')), 'no_show', 'after the event an unchecked registration is a no-show');
SELECT is((SELECT status FROM outreach.event WHERE name = 'Flu shot day'), 'completed', 'the event is completed');
SELECT is((SELECT count(*) FROM outreach.event_registration WHERE status = 'waitlisted'), 1::bigint, 'the waitlist stays as it was');
SELECT is((SELECT array_agg(contact_id) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id WHERE s.name = 'flu no-show'),
          ARRAY[pg_temp.cid('ev5')], 'the no-show segment follows the tick');
SELECT throws_ok(format($$ SELECT outreach.register('Flu shot day', %s) $$, pg_temp.cid('ev8')),
  '55000', 'event "Flu shot day" is over', 'a completed event refuses registrations');
SELECT throws_ok($$ SELECT outreach.publish_event('Flu shot day') $$, '55000', 'event "Flu shot day" is completed and cannot be published',
  'a completed event cannot be published again');
SELECT throws_ok($$ SELECT outreach.cancel_event('Flu shot day') $$, '55000', 'event "Flu shot day" is completed and cannot be cancelled',
  'a completed event cannot be cancelled');
SELECT throws_ok($$ SELECT outreach.add_session('Flu shot day', 'Late', '2026-10-06 13:00Z', '2026-10-06 14:00Z') $$,
  '55000', 'event "Flu shot day" is completed', 'a completed event takes no new sessions');
SET LOCAL outreach.now = '2026-10-07 09:00+00';
SELECT is(outreach.check_in((SELECT code FROM codes WHERE ext = 'ev5')), '2026-10-07 09:00+00'::timestamptz,
          'a no-show can be checked in late (paper list)');
SELECT is((SELECT (registered, waitlisted, cancelled, attended, no_show, capacity, fill_rate, no_show_rate) FROM outreach.event_overview
            WHERE event = 'Flu shot day' AND session IS NULL),
          (3::bigint, 1::bigint, 3::bigint, 3::bigint, 0::bigint, 3, 1.000, 0.000)::record, 'event_overview per event');
SELECT is((SELECT (registered, attended, capacity) FROM outreach.event_overview WHERE event = 'Flu shot day' AND session = 'Morning'),
          (1::bigint, 1::bigint, 1)::record, 'event_overview per session');

-- tokens, .ics, cancel_event ---------------------------------------------------------------------
SET LOCAL outreach.now = '2026-11-01 12:00+00';
SELECT outreach.create_event('Webinar', '2026-11-10 17:00Z', '2026-11-10 18:00Z', 'Europe/Amsterdam', kind => 'hybrid',
                             venue => 'Room 1; Main, St', online_url => 'https://meet.example/abc', capacity => 5);
SELECT outreach.publish_event('Webinar');
CREATE TEMP TABLE wcode AS SELECT outreach.register('Webinar', pg_temp.cid('ev1')) AS code;
SELECT outreach.create_template('webinar_confirm', 'email',
  'Code {{registration.code}} for {{event.name}} at {{event.starts_at}}, {{event.venue}} / {{event.online_url}}',
  subject => 'See you at {{event.name}}', message_class => 'transactional');
SELECT ok('registration.code' = ANY (tokens), 'templates may use {{registration.code}}') FROM outreach.template WHERE name = 'webinar_confirm';
SELECT throws_ok($$ SELECT outreach.set_template_event('webinar_confirm', 'Nope') $$, '42704', 'event "Nope" does not exist',
  'set_template_event names the unknown event');
SELECT outreach.create_template('webinar_sms', 'sms', 'Code {{registration.code}}');
SELECT throws_ok($$ SELECT outreach.set_template_event('webinar_sms', 'Webinar') $$, '22023', NULL, 'only email carries a calendar file');
SELECT lives_ok($$ SELECT outreach.set_template_event('webinar_sms', 'Webinar', attach_ics => false) $$, 'an SMS template can name an event');
SELECT outreach.set_template_event('webinar_confirm', 'Webinar');
SELECT is((SELECT body FROM outreach.preview_template('webinar_confirm', pg_temp.cid('ev1'))),
          format('Code %s for Webinar at Tuesday 10 November 2026, 18:00 (Europe/Amsterdam), Room 1; Main, St / https://meet.example/abc',
                 (SELECT code FROM wcode)), 'event tokens render in the event''s time zone');
CREATE TEMP TABLE wmsg AS SELECT (outreach.enqueue_message(pg_temp.cid('ev1'), 'webinar_confirm', 'transactional')).id;
SELECT is((SELECT (filename, content_type) FROM outreach.message_attachment WHERE message_id = (SELECT id FROM wmsg)),
          ('invite.ics'::text, 'text/calendar; charset=utf-8; method=REQUEST'::text)::record, 'the email carries the registration''s invite.ics');
SELECT is((SELECT content FROM outreach.message_attachment WHERE message_id = (SELECT id FROM wmsg)), outreach.event_ics((SELECT code FROM wcode)),
          'the attachment is event_ics of the registration');
SELECT matches(outreach.event_ics((SELECT code FROM wcode)), E'METHOD:REQUEST\r\n', 'METHOD:REQUEST while registered');
SELECT matches(outreach.event_ics((SELECT code FROM wcode)), E'DTSTART:20261110T170000Z\r\n', 'UTC instants');
SELECT matches(outreach.event_ics((SELECT code FROM wcode)), E'LOCATION:Room 1\\\\; Main\\\\, St\r\n', 'text is escaped');
SELECT ok((SELECT bool_and(octet_length(l) <= 75) FROM regexp_split_to_table(outreach.event_ics((SELECT code FROM wcode)), E'\r\n') l),
          'lines are folded at 75 octets');
SELECT is(outreach.event_ics((SELECT code FROM wcode)) ~ ('UID:registration-\d+-' || lower((SELECT code FROM wcode))), true, 'UID names the registration');
SELECT is((SELECT count(*) FROM outreach.message_attachment a JOIN outreach.message m ON m.id = a.message_id WHERE m.template_name = 'webinar_sms'),
          0::bigint, 'SMS gets no attachment');
SELECT throws_ok($$ SELECT outreach.cancel_event('Nope') $$, '42704', NULL, 'cancel_event names the unknown event');
SELECT is(outreach.cancel_event('Webinar', 'webinar_confirm'), 1, 'cancel_event cancels every live registration');
SELECT is(pg_temp.st((SELECT code FROM wcode)), 'cancelled', 'the registration is cancelled');
SELECT is((SELECT cancel_reason FROM outreach.event_registration WHERE registration_code = (SELECT code FROM wcode)), 'event_cancelled',
          'with the reason');
SELECT is((SELECT count(*) FROM outreach.message WHERE template_name = 'webinar_confirm'), 2::bigint, 'each registrant is notified');
SELECT matches((SELECT a.content FROM outreach.message_attachment a JOIN outreach.message m ON m.id = a.message_id
                 WHERE m.template_name = 'webinar_confirm' ORDER BY a.id DESC LIMIT 1), E'METHOD:CANCEL\r\n',
               'the notification carries METHOD:CANCEL');
SELECT is(outreach.event_ics((SELECT code FROM wcode)) ~ ('UID:registration-\d+-' || lower((SELECT code FROM wcode))), true,
          'the UID stays the same when cancelled');
SELECT is(outreach.cancel_event('Webinar'), 0, 'cancelling twice changes nothing');
SELECT throws_ok(format($$ SELECT outreach.register('Webinar', %s) $$, pg_temp.cid('ev2')),
  '55000', 'event "Webinar" is cancelled', 'a cancelled event refuses registrations');
SELECT throws_ok($$ SELECT outreach.publish_event('Webinar') $$, '55000', NULL, 'a cancelled event cannot be published');

-- a journey: confirmation on registration, then thank-you or "we missed you" ------------------------
SELECT outreach.create_event('Screening', '2026-11-20 14:00Z', '2026-11-20 18:00Z', 'America/New_York', venue => 'Clinic', capacity => 3);
SELECT outreach.publish_event('Screening');
SELECT outreach.create_segment('screening registrants',
  $$contact where has event_registration where (status in ('registered', 'attended', 'no_show') and has event where name = 'Screening')$$);
SELECT outreach.go_live('screening registrants');
SELECT outreach.create_segment('screening attended',
  $$contact where has event_registration where (status = 'attended' and has event where name = 'Screening')$$);
SELECT outreach.go_live('screening attended');
SELECT outreach.create_template('scr_confirm', 'email', 'Your code is {{registration.code}}', subject => 'Registered',
                                message_class => 'transactional');
SELECT outreach.set_template_event('scr_confirm', 'Screening');
SELECT outreach.create_template('scr_thanks', 'email', 'Thank you', subject => 'Thanks', message_class => 'transactional');
SELECT outreach.create_template('scr_missed', 'email', 'We missed you', subject => 'Missed you', message_class => 'transactional');
SELECT outreach.create_journey('Screening follow-up', 'screening registrants', message_class => 'transactional', exit_on_leave => true);
SELECT outreach.add_step('Screening follow-up', 'confirm', 'email', template => 'scr_confirm', next => 'wait');
SELECT outreach.add_step('Screening follow-up', 'wait', 'wait', duration => '10 days', next => 'came?');
SELECT outreach.add_step('Screening follow-up', 'came?', 'branch_segment', segment => 'screening attended', yes => 'thanks', no => 'missed');
SELECT outreach.add_step('Screening follow-up', 'thanks', 'email', template => 'scr_thanks', next => 'done');
SELECT outreach.add_step('Screening follow-up', 'missed', 'email', template => 'scr_missed', next => 'done');
SELECT outreach.add_step('Screening follow-up', 'done', 'end');
SELECT outreach.launch_journey('Screening follow-up');
CREATE TEMP TABLE scodes AS
  SELECT e.ext, outreach.register('Screening', pg_temp.cid(e.ext)) AS code FROM unnest(ARRAY['ev3', 'ev4', 'ev6', 'ev7']) e(ext);
SELECT is(pg_temp.st((SELECT code FROM scodes WHERE ext = 'ev7')), 'waitlisted', 'the fourth registrant waits');
SELECT outreach.tick('2026-11-01 12:01+00');
SELECT is((SELECT array_agg(m.body ORDER BY c.external_id) FROM outreach.message m JOIN outreach.contact c ON c.id = m.contact_id
            WHERE m.template_name = 'scr_confirm'),
          (SELECT array_agg('Your code is ' || code ORDER BY ext) FROM scodes WHERE ext <> 'ev7'),
          'registering starts the journey: confirmation with the code (not for the waitlisted)');
SELECT is((SELECT count(*) FROM outreach.message_attachment a JOIN outreach.message m ON m.id = a.message_id WHERE m.template_name = 'scr_confirm'),
          3::bigint, 'each confirmation carries the calendar file');
SET LOCAL outreach.now = '2026-11-02 12:00+00';
SELECT outreach.cancel_registration((SELECT code FROM scodes WHERE ext = 'ev6'));
SELECT outreach.tick('2026-11-02 12:01+00');
SELECT is((SELECT m.body FROM outreach.message m WHERE m.template_name = 'scr_confirm' AND m.contact_id = pg_temp.cid('ev7')),
          'Your code is ' || (SELECT code FROM scodes WHERE ext = 'ev7'), 'the promoted registrant is notified through the journey');
SELECT is((SELECT e.status FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
            WHERE j.name = 'Screening follow-up' AND e.contact_id = pg_temp.cid('ev6')), 'exited', 'the cancelled registrant leaves the journey');
SET LOCAL outreach.now = '2026-11-20 15:00+00';
SELECT outreach.check_in((SELECT code FROM scodes WHERE ext = 'ev3'));
SELECT outreach.tick('2026-11-20 18:30+00');
SELECT outreach.tick('2026-11-11 12:02+00'::timestamptz + interval '10 days');
SELECT is((SELECT array_agg(c.external_id || ':' || m.template_name ORDER BY c.external_id) FROM outreach.message m
             JOIN outreach.contact c ON c.id = m.contact_id WHERE m.template_name IN ('scr_thanks', 'scr_missed')),
          '{ev3:scr_thanks,ev4:scr_missed,ev7:scr_missed}', 'the journey branches on attended / no-show');

-- privileges ---------------------------------------------------------------------------------------
SELECT ok(has_function_privilege('outreach_marketer', 'outreach.register(text, bigint, text[], text)', 'EXECUTE'), 'marketers register');
SELECT ok(has_function_privilege('outreach_admin', 'outreach.cancel_registration(text)', 'EXECUTE'), 'admins cancel');
SELECT ok(NOT has_function_privilege('outreach_analyst', 'outreach.check_in(text)', 'EXECUTE'), 'analysts do not check in');
SELECT ok(NOT has_function_privilege('outreach_marketer', 'outreach._promote_waitlist(bigint)', 'EXECUTE'), 'helpers are not granted');
SELECT ok(has_table_privilege('outreach_analyst', 'outreach.report_event_overview', 'SELECT'), 'analysts read report_event_overview');
SELECT ok(NOT has_table_privilege('outreach_analyst', 'outreach.event_registration', 'SELECT'), 'analysts do not read registrations');
SELECT ok(has_table_privilege('outreach_sender', 'outreach.message_attachment', 'SELECT'), 'senders read attachments');
SELECT is((SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'outreach'
            AND c::regclass::text IN ('outreach.event', 'outreach.event_session', 'outreach.event_seats', 'outreach.event_registration',
                                      'outreach.event_registration_session', 'outreach.template_event', 'outreach.message_attachment')),
          7::bigint, 'every events table is dumped by pg_dump');

SELECT * FROM finish();
ROLLBACK;
