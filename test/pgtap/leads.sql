-- leads: capture (form, campaign, event registration, CSV import), de-duplication on
-- normalised email and phone, the status lifecycle with who and when, consent for leads,
-- conversion (new patient, matched on email, matched on phone, merge of consent,
-- subscriptions, messages, interactions, enrollments), segmenting leads, every error path.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(90);

SET LOCAL outreach.now = '2026-03-02 09:00:00+00';
DELETE FROM outreach.frequency_cap;

-- Normalisation.
SELECT is(outreach.normalize_email('  Ann.Lee@Example.ORG '), 'ann.lee@example.org', 'email: trimmed, lower case');
SELECT is(outreach.normalize_email('   '), NULL, 'blank email: NULL');
SELECT is(outreach.normalize_phone('+1 (415) 555-0100'), '+14155550100', 'phone: punctuation removed');
SELECT is(outreach.normalize_phone('0044 20 7946 0958'), '+442079460958', 'phone: 00 read as +');
SELECT is(outreach.normalize_phone('020 7946 0958', '+44'), '+442079460958', 'national phone: country code, trunk 0 dropped');
SELECT is(outreach.normalize_phone(''), NULL, 'blank phone: NULL');
SELECT throws_ok('SELECT outreach.normalize_phone(''555-0100'')', '22023', 'invalid phone number "555-0100"',
                 'a national number without a default country code is refused');
SELECT throws_ok('SELECT outreach.normalize_phone(''+1 abc'')', '22023', NULL, 'letters are not a phone number');

-- Capture from a form; the same person again (other spelling) is the same lead.
SELECT outreach.capture_lead(' Ann.Lee@Example.org', '+1 415 555 0100', 'Ann', 'Lee') AS ann \gset
SELECT is(outreach.capture_lead('ann.lee@example.org', NULL, 'Ann'), :ann::bigint, 'same email (other case): same lead');
SELECT is(outreach.capture_lead('other@example.org', '+14155550100'), :ann::bigint, 'same phone: same lead');
SELECT is((SELECT count(*) FROM outreach.contact), 1::bigint, 'one contact for the person');
SELECT is((SELECT count(*) FROM outreach.lead), 1::bigint, 'one lead for the person');
SELECT results_eq(
  format('SELECT c.contact_type, c.email, c.phone, c.first_name, c.do_not_email, c.do_not_sms, c.do_not_mail
            FROM outreach.contact c JOIN outreach.lead l ON l.contact_id = c.id WHERE l.id = %s', :ann),
  $$VALUES ('lead'::text, 'ann.lee@example.org'::text, '+14155550100'::text, 'Ann'::text, true, true, true)$$,
  'a lead is a contact of type lead; without consent every do_not_* is set');
SELECT results_eq(
  format('SELECT source, status, status_changed_by, captured_at FROM outreach.lead WHERE id = %s', :ann),
  $$VALUES ('form'::text, 'new'::text, session_user::text COLLATE "default", timestamptz '2026-03-02 09:00:00+00')$$,
  'source form, status new, who and when');
SELECT is((SELECT array_agg(kind ORDER BY id) FROM outreach.lead_activity WHERE lead_id = :ann),
          ARRAY['form_submitted', 'form_submitted', 'form_submitted'], 'each capture is an activity');
SELECT is((SELECT count(*) FROM outreach.lead_status_change WHERE lead_id = :ann AND to_status = 'new'), 1::bigint,
          'the creation is in the status history');

-- Consent: a lead who never agreed gets no marketing; the reason is recorded.
SELECT outreach.create_template('news', 'email',
  'Hi {{contact.first_name}} <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}',
  subject => 'News', sender_postal_address => '1 Main St, Springfield');
SELECT results_eq(
  format('SELECT status, suppression_reason FROM outreach.enqueue_message((SELECT contact_id FROM outreach.lead WHERE id = %s), ''news'')', :ann),
  $$VALUES ('suppressed'::text, 'opted_out'::text)$$,
  'a lead without marketing consent: the marketing message is suppressed as opted_out');
-- A later capture with consent opts in.
SELECT outreach.capture_lead('ann.lee@example.org', consent_marketing => true);
SELECT results_eq(
  format('SELECT status, suppression_reason FROM outreach.enqueue_message((SELECT contact_id FROM outreach.lead WHERE id = %s), ''news'')', :ann),
  $$VALUES ('queued'::text, NULL::text)$$, 'after consenting, the lead gets marketing like any contact');
-- A "no" later is not a withdrawal.
SELECT outreach.capture_lead('ann.lee@example.org', consent_marketing => false);
SELECT is((SELECT do_not_email FROM outreach.contact c JOIN outreach.lead l ON l.contact_id = c.id WHERE l.id = :ann), false,
          'an unticked box later does not withdraw consent');

-- Capture errors.
SELECT throws_ok('SELECT outreach.capture_lead(NULL, NULL, ''Bob'')', '22004',
                 'a lead needs an email address or a phone number', 'neither email nor phone');
SELECT throws_ok('SELECT outreach.capture_lead(''not-an-email'')', '22023', 'invalid email address "not-an-email"', 'bad email');
SELECT throws_ok('SELECT outreach.capture_lead(''b@example.org'', ''12'')', '22023', NULL, 'bad phone');
SELECT throws_ok('SELECT outreach.capture_lead(''b@example.org'', source => ''radio'')', '22023', NULL, 'unknown source');
SELECT throws_ok('SELECT outreach.capture_lead(''b@example.org'', source => ''event'')', '22023', NULL,
                 'event leads go through capture_lead_from_registration');
SELECT is((SELECT count(*) FROM outreach.contact WHERE email = 'b@example.org'), 0::bigint, 'a refused capture leaves nothing');
SELECT throws_ok('SELECT outreach.set_default_country_code(''one'')', '22023', NULL, 'a country code is digits');
SELECT outreach.set_default_country_code('+44');
SELECT outreach.capture_lead(NULL, '07700 900123', 'Ivy') AS ivy \gset
SELECT is((SELECT phone FROM outreach.lead WHERE id = :ivy), '+447700900123',
          'with a default country code, a national number is captured in E.164');
SELECT outreach.set_default_country_code(NULL);

-- Capture at an event.
SELECT outreach.capture_lead_from_registration('Flu shot day', 'bob@example.org', '+14155550111', 'Bob',
                                               consent_marketing => true, attended => true,
                                               registration_code => 'FLU-7KQ3X') AS bob \gset
SELECT results_eq(format('SELECT source, source_detail FROM outreach.lead WHERE id = %s', :bob),
                  $$VALUES ('event'::text, 'Flu shot day'::text)$$, 'event lead: source event, the event named');
SELECT is((SELECT array_agg(kind || ':' || detail ORDER BY id) FROM outreach.lead_activity WHERE lead_id = :bob),
          ARRAY['registered:Flu shot day (FLU-7KQ3X)', 'attended:Flu shot day (FLU-7KQ3X)'], 'registered and attended recorded');
SELECT is((SELECT do_not_email FROM outreach.contact c JOIN outreach.lead l ON l.contact_id = c.id WHERE l.id = :bob), false,
          'consent given at the event: no opt-out');
SELECT throws_ok('SELECT outreach.capture_lead_from_registration('''', ''x@example.org'')', '22004', NULL, 'the event must be named');

-- A capture that matches an existing patient keeps the patient's row and consent.
INSERT INTO outreach.contact (external_id, first_name, email, phone, do_not_email)
VALUES ('pat-1', 'Carol', 'carol@example.org', '+14155550122', true);
SELECT outreach.capture_lead('CAROL@example.org', consent_marketing => true, source => 'campaign', source_detail => 'Spring') AS carol \gset
SELECT results_eq(format('SELECT c.external_id, c.contact_type, c.do_not_email FROM outreach.contact c
                           JOIN outreach.lead l ON l.contact_id = c.id WHERE l.id = %s', :carol),
                  $$VALUES ('pat-1'::text, 'patient'::text, true)$$, 'an existing patient stays a patient with their consent');

-- Activities.
SELECT ok(outreach.record_lead_activity(:bob, 'form_submitted', 'volunteer form') > 0, 'an activity is recorded');
SELECT throws_ok(format('SELECT outreach.record_lead_activity(%s, %L)', :bob, 'clicked'), '22023', NULL, 'unknown activity');
SELECT throws_ok('SELECT outreach.record_lead_activity(-1, ''attended'')', 'P0002', 'lead -1 does not exist', 'unknown lead');
SELECT is(outreach.record_contact_lead_activity((SELECT contact_id FROM outreach.lead WHERE id = :bob), 'attended', 'Screening drive'),
          :bob::bigint, 'an activity by contact lands on the contact''s open lead');
SELECT is(outreach.record_contact_lead_activity((SELECT id FROM outreach.contact WHERE external_id = 'pat-1'), 'registered'),
          :carol::bigint, 'a patient with an open lead gets it too');
INSERT INTO outreach.contact (external_id, first_name) VALUES ('pat-2', 'Dora');
SELECT is(outreach.record_contact_lead_activity((SELECT id FROM outreach.contact WHERE external_id = 'pat-2'), 'registered'),
          NULL::bigint, 'a contact without an open lead: nothing recorded, NULL');
SELECT throws_ok('SELECT outreach.record_contact_lead_activity(-1, ''registered'')', '23503', NULL, 'unknown contact');

-- Status lifecycle.
SELECT lives_ok(format('SELECT outreach.set_lead_status(%s, %L, %L)', :bob, 'working', 'called back'), 'new -> working');
SELECT results_eq(format('SELECT from_status, to_status, reason, changed_by FROM outreach.lead_status_change
                           WHERE lead_id = %s ORDER BY id DESC LIMIT 1', :bob),
                  $$VALUES ('new'::text, 'working'::text, 'called back'::text, session_user::text COLLATE "default")$$, 'the change is recorded with who and why');
SELECT lives_ok(format('SELECT outreach.set_lead_status(%s, %L)', :bob, 'qualified'), 'working -> qualified');
SELECT is((SELECT qualified_at FROM outreach.lead WHERE id = :bob), timestamptz '2026-03-02 09:00:00+00', 'qualified_at set');
SELECT lives_ok(format('SELECT outreach.set_lead_status(%s, %L)', :bob, 'qualified'), 'the same status again changes nothing');
SELECT throws_ok(format('SELECT outreach.set_lead_status(%s, %L)', :bob, 'new'), '55000', 'lead ' || :bob || ' cannot go from qualified to new',
                 'qualified -> new is refused');
SELECT throws_ok(format('SELECT outreach.set_lead_status(%s, %L)', :bob, 'converted'), '22023', NULL, 'converted only through convert_lead');
SELECT throws_ok(format('SELECT outreach.set_lead_status(%s, %L)', :bob, 'lost'), '22023', NULL, 'unknown status');
SELECT throws_ok('SELECT outreach.set_lead_status(-1, ''working'')', 'P0002', NULL, 'unknown lead');

-- Leads are segmentable.
SELECT set_eq('SELECT * FROM outreach.evaluate(''contact where has lead where source = ''''event'''''')',
              format('SELECT contact_id FROM outreach.lead WHERE id = %s', :bob), 'has lead where source = ... works');
SELECT set_eq('SELECT * FROM outreach.evaluate(''contact where contact_type = ''''lead'''''')',
              'SELECT contact_id FROM outreach.lead WHERE source IN (''form'', ''event'')', 'contact_type = lead selects lead contacts');

-- CSV import.
CREATE FUNCTION pg_temp.write_file(path text, body text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('COPY (SELECT x FROM unnest(string_to_array(%L, E''\n'')) WITH ORDINALITY u(x, o) ORDER BY o) TO %L WITH (FORMAT text)',
                 body, path);
END $$;
SELECT '/tmp/outreach_leads_' || pg_backend_pid() || '_' AS dir \gset
SELECT pg_temp.write_file(:'dir' || 'bad.csv', E'email,phone,first_name,consent_marketing\n'
  'dan@example.org,,Dan,yes\n'
  'not-an-email,,Eve,no\n'
  ',,Nobody,\n'
  'fay@example.org,12,Fay,maybe');
SELECT throws_ok(format('SELECT * FROM outreach.import_leads(%L)', :'dir' || 'bad.csv'), '22P04',
                 format('lead import of "%s" failed: 4 bad line(s)', :'dir' || 'bad.csv'), 'a bad file is refused');
CREATE FUNCTION pg_temp.import_detail(path text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
  PERFORM * FROM outreach.import_leads(path);
  RETURN NULL;
EXCEPTION WHEN bad_copy_file_format THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  RETURN d;
END $$;
SELECT is(pg_temp.import_detail(:'dir' || 'bad.csv'),
  E'line 3: invalid email address "not-an-email"\nline 4: neither email nor phone\nline 5: invalid phone number "12"\nline 5: consent_marketing "maybe" is not yes/no',
  'every bad line is listed with its number');
SELECT is((SELECT count(*) FROM outreach.contact WHERE email = 'dan@example.org'), 0::bigint, 'nothing of a bad file is loaded');
SELECT pg_temp.write_file(:'dir' || 'cols.csv', E'email,age\na@example.org,3');
SELECT throws_ok(format('SELECT * FROM outreach.import_leads(%L)', :'dir' || 'cols.csv'), '22P04', NULL, 'unknown column');
SELECT pg_temp.write_file(:'dir' || 'nokey.csv', E'first_name\nAnn');
SELECT throws_ok(format('SELECT * FROM outreach.import_leads(%L)', :'dir' || 'nokey.csv'), '22P04', NULL, 'neither email nor phone column');
SELECT pg_temp.write_file(:'dir' || 'ragged.csv', E'email,phone\na@example.org,+14155550199,extra');
SELECT throws_ok(format('SELECT * FROM outreach.import_leads(%L)', :'dir' || 'ragged.csv'), '22P04', NULL, 'a ragged line');
SELECT throws_ok('SELECT * FROM outreach.import_leads(''relative.csv'')', '22023', NULL, 'a relative path');
SELECT throws_ok(format('SELECT * FROM outreach.import_leads(%L)', :'dir' || 'missing.csv'), '58P01', NULL, 'a missing file');
SELECT pg_temp.write_file(:'dir' || 'good.csv', E'email,phone,first_name,last_name,consent_marketing\n'
  'dan@example.org,,Dan,Day,yes\n'
  '"ANN.LEE@example.org",,Ann,,no\n'
  'gus@example.org,+1 415 555 0133,Gus,"Grey, Jr",\n'
  'dan@example.org,+14155550144,Dan,,');
SELECT results_eq(format('SELECT line, created FROM outreach.import_leads(%L) ORDER BY line', :'dir' || 'good.csv'),
  $$VALUES (2::bigint, true), (3, false), (4, true), (5, false)$$,
  'a good file: new leads created, known people matched (also within the file)');
SELECT results_eq($$SELECT l.source, c.last_name, c.phone, c.do_not_email FROM outreach.lead l JOIN outreach.contact c ON c.id = l.contact_id
                    WHERE c.email = 'gus@example.org'$$,
                  $$VALUES ('import'::text, 'Grey, Jr'::text, '+14155550133'::text, true)$$, 'imported fields, normalised phone, no consent');
SELECT is((SELECT do_not_email FROM outreach.contact WHERE email = 'dan@example.org'), false, 'consent_marketing yes');
SELECT is((SELECT count(*) FROM outreach.contact WHERE lower(email) IN ('dan@example.org', 'ann.lee@example.org')), 2::bigint,
          'no duplicate contact from the import');

-- Permissions.
SET LOCAL ROLE outreach_analyst;
SELECT throws_ok('SELECT outreach.capture_lead(''z@example.org'')', '42501', NULL, 'an analyst cannot capture leads');
SELECT lives_ok('SELECT * FROM outreach.report_lead_funnel', 'an analyst reads the lead funnel (report_lead_funnel)');
SELECT throws_ok('SELECT * FROM outreach.lead_funnel', '42501', NULL, 'an analyst does not read the marketer''s lead_funnel');
RESET ROLE;
SET LOCAL ROLE outreach_marketer;
SELECT throws_ok(format('SELECT * FROM outreach.import_leads(%L)', :'dir' || 'good.csv'), '42501', NULL,
                 'importing a server file needs pg_read_server_files');
RESET ROLE;

-- Conversion 1: no patient matches; the lead's contact becomes the patient.
SELECT outreach.convert_lead(:bob) AS bob_contact \gset
SELECT is(:bob_contact::bigint, (SELECT contact_id FROM outreach.lead WHERE id = :bob), 'converted to its own contact');
SELECT results_eq(format('SELECT l.status, l.converted_contact_id, c.contact_type FROM outreach.lead l
                           JOIN outreach.contact c ON c.id = l.contact_id WHERE l.id = %s', :bob),
                  format('VALUES (''converted''::text, %s::bigint, ''patient''::text)', :bob_contact), 'lead converted, contact a patient');
SELECT is(outreach.convert_lead(:bob), :bob_contact::bigint, 'converting again returns the same contact');
SELECT is((SELECT count(*) FROM outreach.lead_conversion WHERE lead_id = :bob), 1::bigint, 'one conversion recorded');
SELECT throws_ok(format('SELECT outreach.set_lead_status(%s, %L)', :bob, 'working'), '55000', NULL, 'a converted lead is final');

-- Conversion 2: matched on email; consent, subscriptions, messages, interactions move; the
-- lead's contact is merged away.
SELECT outreach.create_subscription_list('newsletter');
SELECT outreach.subscribe('newsletter', (SELECT contact_id FROM outreach.lead WHERE id = :ann));
INSERT INTO outreach.contact (external_id, first_name, email, do_not_sms) VALUES ('pat-ann', 'Annie', 'ANN.LEE@example.org', true);
SELECT id AS pat_ann FROM outreach.contact WHERE external_id = 'pat-ann' \gset
SELECT contact_id AS ann_lead_contact FROM outreach.lead WHERE id = :ann \gset
SELECT m.id AS msg FROM outreach.message m WHERE m.contact_id = :ann_lead_contact AND m.status = 'queued' \gset
UPDATE outreach.message SET status = 'sent', sent_at = outreach.now() WHERE id = :msg;
SELECT outreach.report_interaction(:msg, 'opened');
SELECT is(outreach.convert_lead(:ann), :pat_ann::bigint, 'matched the patient on email');
SELECT is((SELECT count(*) FROM outreach.contact WHERE id = :ann_lead_contact), 0::bigint, 'the lead''s own contact is merged away');
SELECT is((SELECT count(*) FROM outreach.contact WHERE lower(email) = 'ann.lee@example.org'), 1::bigint, 'one contact for Ann');
SELECT results_eq(format('SELECT first_name, phone, do_not_email, do_not_sms FROM outreach.contact WHERE id = %s', :pat_ann),
                  $$VALUES ('Annie'::text, '+14155550100'::text, false, true)$$,
                  'the patient keeps their name, gains the phone, an opt-out on either side wins');
SELECT is((SELECT status FROM outreach.subscription WHERE contact_id = :pat_ann), 'subscribed', 'subscription carried over');
SELECT is((SELECT count(*) FROM outreach.message WHERE contact_id = :pat_ann), 2::bigint, 'messages carried over');
SELECT is((SELECT count(*) FROM outreach.interaction WHERE contact_id = :pat_ann), 1::bigint, 'interactions carried over');
SELECT is((SELECT count(*) FROM outreach.lead_activity WHERE lead_id = :ann AND contact_id = :pat_ann),
          (SELECT count(*) FROM outreach.lead_activity WHERE lead_id = :ann), 'activities carried over');
SELECT results_eq(format('SELECT contact_id, lead_contact_id, matched_on FROM outreach.lead_conversion WHERE lead_id = %s', :ann),
                  format('VALUES (%s::bigint, %s::bigint, ''email''::text)', :pat_ann, :ann_lead_contact), 'the conversion records the match');

-- Conversion 3: matched on phone.
INSERT INTO outreach.contact (external_id, first_name, phone) VALUES ('pat-gus', 'Gus', '+14155550133');
SELECT is(outreach.convert_lead((SELECT l.id FROM outreach.lead l JOIN outreach.contact c ON c.id = l.contact_id WHERE c.email = 'gus@example.org')),
          (SELECT id FROM outreach.contact WHERE external_id = 'pat-gus'), 'matched the patient on phone');
SELECT is((SELECT matched_on FROM outreach.lead_conversion ORDER BY id DESC LIMIT 1), 'phone', 'recorded as a phone match');

-- Conversion errors.
SELECT outreach.capture_lead('hal@example.org') AS hal \gset
SELECT outreach.set_lead_status(:hal, 'disqualified', 'out of area');
SELECT throws_ok(format('SELECT outreach.convert_lead(%s)', :hal), '55000', NULL, 'a disqualified lead is not converted');
SELECT throws_ok('SELECT outreach.convert_lead(-1)', 'P0002', NULL, 'unknown lead');
SELECT lives_ok(format('SELECT outreach.set_lead_status(%s, %L)', :hal, 'working'), 'a disqualified lead can be reopened');

-- Reports.
SELECT results_eq('SELECT week, conversions, matched_existing FROM outreach.lead_conversion_weekly',
                  $$VALUES (timestamptz '2026-03-02 00:00:00+00', 3::bigint, 2::bigint)$$,
                  'lead_conversion_weekly: conversions per week, how many matched a patient');
SELECT results_eq($$SELECT leads FROM outreach.lead_funnel WHERE source = 'event' AND status = 'converted'$$,
                  $$VALUES (1::bigint)$$, 'lead_funnel counts per source and status');
SET LOCAL ROLE outreach_analyst;
SELECT lives_ok('SELECT * FROM outreach.report_lead_conversions', 'an analyst reads the conversion report (report_lead_conversions)');
SELECT throws_ok('SELECT * FROM outreach.lead', '42501', NULL, 'an analyst does not read leads themselves');
RESET ROLE;

-- Backups: every table of leads and social activities is dumped by pg_dump.
SELECT is((SELECT array_agg(t ORDER BY t) FROM unnest(ARRAY['lead', 'lead_activity', 'lead_status_change', 'lead_score_change',
            'lead_conversion', 'lead_score_rule', 'lead_score_hit', 'lead_settings', 'social_post', 'social_engagement']) t
            WHERE ('outreach.' || t)::regclass <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'outreach')::oid[])),
          NULL, 'every lead and social table is marked for pg_dump');

SELECT * FROM finish();
ROLLBACK;
