-- content_engagement: languages (contact.language, template variants and their fallback,
-- dates per language), test sends (allow-list, never a contact, never in the outbox,
-- analytics or caps), previews over a segment's members with their problems, and the
-- built-in behavioural entities message and interaction kept live.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SET LOCAL timezone = 'UTC';
SET LOCAL outreach.now = '2026-10-01 12:00+00';
SELECT plan(51);

CREATE FUNCTION pg_temp.con(ext text, first text, lang text, email text DEFAULT NULL, phone text DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO outreach.contact (external_id, first_name, language, email, phone, birthdate, time_zone)
  VALUES (ext, first, lang, email, phone, '1980-03-04', 'Europe/Paris') RETURNING id $$;
CREATE FUNCTION pg_temp.cid(ext text) RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.members(seg text) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(c.external_id ORDER BY c.external_id), '{}') FROM outreach.segment_member m
    JOIN outreach.segment s ON s.id = m.segment_id JOIN outreach.contact c ON c.id = m.contact_id
   WHERE s.name = seg AND c.external_id LIKE 'ce-%' $$;

SELECT pg_temp.con('ce-en', 'Ann', 'en-US', 'ann@patients.example', '+15550101');
SELECT pg_temp.con('ce-es', 'José', 'es-MX', 'jose@patients.example', '+15550102');
SELECT pg_temp.con('ce-fr', NULL, 'fr', 'fr@patients.example');
SELECT pg_temp.con('ce-none', 'Kim', NULL, 'kim@patients.example');

-- contact.language -------------------------------------------------------------------------
SELECT has_column('outreach', 'contact', 'language', 'contact.language exists');
SELECT throws_ok($$ UPDATE outreach.contact SET language = 'english!' WHERE external_id = 'ce-en' $$, '23514', NULL,
                 'contact.language must look like a BCP 47 tag');
SELECT lives_ok($$ UPDATE outreach.contact SET language = 'zh-Hant-TW' WHERE external_id = 'ce-none'; UPDATE outreach.contact SET language = NULL WHERE external_id = 'ce-none' $$,
                'multi-subtag tags are accepted');
SELECT ok('contact.language' = ANY (outreach.template_tokens()), 'templates may use {{contact.language}}');

-- variants and fallback ----------------------------------------------------------------------
SELECT outreach.create_template('reminder', 'sms', 'Hi {{contact.first_name | default: ''there''}}, born {{contact.birthdate | date: ''%e %B''}}',
                                message_class => 'transactional');
SELECT outreach.add_template_variant('reminder', 'es', NULL, 'Hola {{contact.first_name | default: ''amigo''}}, {{contact.birthdate | date: ''%e %B''}}');
SELECT outreach.add_template_variant('reminder', 'en-US', NULL, 'Howdy {{contact.first_name}}, {{contact.birthdate | date: ''long''}}');
SELECT is((SELECT body FROM outreach.preview_template('reminder', pg_temp.cid('ce-en'))), 'Howdy Ann, March 4, 1980',
          'exact tag: the en-US variant');
SELECT is((SELECT body FROM outreach.preview_template('reminder', pg_temp.cid('ce-es'))), 'Hola José, 4 marzo',
          'primary subtag: es-MX gets the es variant, dates in Spanish');
SELECT is((SELECT body FROM outreach.preview_template('reminder', pg_temp.cid('ce-fr'))), 'Hi there, born 4 March',
          'no variant: the template''s own text, in its default language (en)');
SELECT is((SELECT body FROM outreach.preview_template('reminder', pg_temp.cid('ce-none'))), 'Hi Kim, born 4 March',
          'no language: the template''s own text');
UPDATE outreach.content_settings SET default_language = 'fr';
SELECT is((SELECT body FROM outreach.preview_template('reminder', pg_temp.cid('ce-none'))), 'Hi Kim, born 4 mars',
          'the default language formats the template''s own text');
UPDATE outreach.content_settings SET default_language = 'en';
SELECT outreach.add_template_variant('reminder', 'ES', NULL, 'Hola {{contact.first_name}}');
SELECT is((SELECT count(*) FROM outreach.template_variant v JOIN outreach.template t ON t.id = v.template_id WHERE t.name = 'reminder'),
          2::bigint, 'adding a variant again replaces it (tags compare case-insensitively)');
SELECT throws_ok($$ SELECT outreach.add_template_variant('reminder', 'e', NULL, 'x') $$, '22023', NULL, 'invalid tag: 22023');
SELECT throws_ok($$ SELECT outreach.add_template_variant('reminder', 'de', NULL, '{{contact.nme}}') $$, '42704', NULL,
                 'variants are checked like templates (unknown token)');
SELECT throws_ok($$ SELECT outreach.add_template_variant('reminder', 'de', 'Betreff', 'x') $$, '23514', NULL,
                 'only email variants have a subject');
SELECT throws_ok($$ SELECT outreach.add_template_variant('remindr', 'de', NULL, 'x') $$, '42704', NULL, 'unknown template');
SELECT outreach.create_template('news', 'email', '<p>{{#if contact.first_name}}Hi {{contact.first_name}}{{/if}}</p><a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}',
                                subject => 'News', sender_postal_address => '1 Main St');
SELECT throws_ok($$ SELECT outreach.add_template_variant('news', 'de', 'Neuigkeiten', '<p>Hallo</p>') $$, '23514', NULL,
                 'a marketing email variant needs the unsubscribe link');
SELECT lives_ok($$ SELECT outreach.add_template_variant('news', 'de', 'Neuigkeiten', '<p>Hallo</p><a href="{{unsubscribe_url}}">x</a> {{sender.postal_address}}') $$,
                'a complete marketing email variant');
SELECT throws_ok($$ UPDATE outreach.template SET channel = 'sms', subject = NULL, format = 'text', body = 'x' WHERE name = 'news' $$,
                 '23514', 'template "news" (de): only email templates have a subject',
                 'changing the template''s channel checks its variants again');
SELECT lives_ok($$ SELECT outreach.drop_template_variant('news', 'DE') $$, 'drop_template_variant');
SELECT throws_ok($$ SELECT outreach.drop_template_variant('news', 'de') $$, '42704', NULL, 'dropping a missing variant');

-- loops over real data: the contact's upcoming registrations ---------------------------------
SELECT outreach.create_event('Flu day', '2026-10-06 09:00+00', '2026-10-06 17:00+00', time_zone => 'Europe/Paris', capacity => 10, venue => 'Main clinic');
SELECT outreach.publish_event('Flu day');
SELECT outreach.register('Flu day', pg_temp.cid('ce-en'));
SELECT outreach.create_template('upcoming', 'sms',
  '{{#each contact.registrations as r}}{{r.event}} {{r.starts_at | date: ''%a %e %b %H:%M''}};{{else}}nothing{{/each}}',
  message_class => 'transactional');
SELECT is((SELECT body FROM outreach.preview_template('upcoming', pg_temp.cid('ce-en'))), 'Flu day Tue 6 Oct 11:00;',
          'each over the contact''s upcoming registrations, times in the contact''s zone');
SELECT is((SELECT body FROM outreach.preview_template('upcoming', pg_temp.cid('ce-fr'))), 'nothing', 'each: else when there is none');

-- test sends -----------------------------------------------------------------------------
SELECT throws_ok($$ SELECT outreach.send_test('news', 'me@clinic.example', pg_temp.cid('ce-en')) $$, '42501', NULL,
                 'a domain not on the allow-list is refused');
SELECT lives_ok($$ SELECT outreach.allow_test_destination('email_domain', '@Clinic.example') $$, 'allow a staff domain');
SELECT lives_ok($$ SELECT outreach.allow_test_destination('email_domain', 'patients.example') $$, 'allow another domain');
SELECT throws_ok($$ SELECT outreach.allow_test_destination('fax', 'x') $$, '22023', NULL, 'unknown destination kind');
SELECT throws_ok($$ SELECT outreach.send_test('news', 'ann@patients.example', pg_temp.cid('ce-en')) $$, '22023', NULL,
                 'a contact''s own address is refused even on an allowed domain');
SELECT throws_ok($$ SELECT outreach.send_test('news', 'not an address', pg_temp.cid('ce-en')) $$, '22023', NULL, 'an invalid address');
SELECT throws_ok($$ SELECT outreach.send_test('news', 'me@clinic.example', -1) $$, '23503', NULL, 'an unknown contact');
SELECT throws_ok($$ SELECT outreach.send_test('reminder', '+15550199', pg_temp.cid('ce-en')) $$, '42501', NULL,
                 'an SMS number not on the allow-list');
SELECT outreach.allow_test_destination('phone', '+15550199');
SELECT outreach.allow_test_destination('phone', '+15550101');
SELECT throws_ok($$ SELECT outreach.send_test('reminder', '+15550101', pg_temp.cid('ce-en')) $$, '22023', NULL,
                 'a contact''s phone is refused');
-- caps count outreach.message rows; test messages are never there (checked below)
SELECT isnt(outreach.send_test('news', 'Me@clinic.example', pg_temp.cid('ce-en')), NULL, 'test send queued');
SELECT isnt(outreach.send_test('reminder', '+15550199', pg_temp.cid('ce-es')), NULL, 'test SMS queued');
SELECT is((SELECT subject FROM outreach.test_message WHERE channel = 'email'), '[TEST] News', 'the subject is marked [TEST]');
SELECT ok((SELECT body LIKE '<p>Hi Ann</p>%' FROM outreach.test_message WHERE channel = 'email'), 'rendered for the chosen contact');
SELECT is((SELECT body FROM outreach.test_message WHERE channel = 'sms'), '[TEST] Hola José', 'SMS marked, in the contact''s language');
SELECT is((SELECT count(*) FROM outreach.message), 0::bigint, 'no message in the outbox: nothing reaches a contact');
SELECT is((SELECT coalesce(sum(sent + delivered), 0) FROM outreach.template_engagement), 0::numeric, 'nothing in analytics');
SELECT is((SELECT array_agg(address ORDER BY id) FROM outreach.claim_test_messages('w1', 10)), ARRAY['Me@clinic.example', '+15550199'],
          'workers claim test messages');
SELECT lives_ok($$ SELECT outreach.report_test_message((SELECT min(id) FROM outreach.test_message), 'sent') $$, 'and report them');
SELECT throws_ok($$ SELECT outreach.report_test_message((SELECT min(id) FROM outreach.test_message), 'sent') $$, '55000', NULL,
                 'a finished test message cannot be reported again');

-- behavioural segments --------------------------------------------------------------------
SELECT outreach.create_template('visit', 'email', '<p>Hello</p>', subject => 'Visit', message_class => 'transactional');
SELECT outreach.create_segment('ce delivered', $$contact where has message where (channel = 'email' and status = 'delivered')$$);
SELECT outreach.go_live('ce delivered');
SELECT outreach.create_segment('ce openers', $$contact where count(interaction where kind = 'opened' and occurred_at within last 90 days) >= 2$$);
SELECT outreach.go_live('ce openers');
SELECT is(pg_temp.members('ce delivered'), '{}'::text[], 'message is a built-in entity: nobody delivered yet');
SELECT (outreach.enqueue_message(pg_temp.cid(x), 'visit', 'transactional')).id FROM unnest(ARRAY['ce-en', 'ce-es']) x;
SELECT count(*) FROM outreach.claim_messages('w1', 10);
SELECT outreach.report_delivery(m.id, 'delivered') FROM outreach.message m;
SELECT is(pg_temp.members('ce delivered'), ARRAY['ce-en', 'ce-es'], 'has message where status = delivered follows delivery at once');
SELECT outreach.report_interaction(m.id, 'opened', at => '2026-09-20 10:00+00') FROM outreach.message m;
SELECT is(pg_temp.members('ce openers'), '{}'::text[], 'one open is not two');
SELECT outreach.report_interaction(m.id, 'opened', at => '2026-09-25 10:00+00') FROM outreach.message m
  WHERE m.contact_id = pg_temp.cid('ce-es');
SELECT is(pg_temp.members('ce openers'), ARRAY['ce-es'], 'count(interaction where kind = opened ...) >= 2 kept live');

SELECT lives_ok($$ SELECT outreach.compile($q$contact where has message where (channel = 'email' and status = 'delivered' and sent_at within last 6 months)
          and has no interaction where kind = 'opened'$q$) $$, 'docs: the re-engagement segment compiles');
SELECT lives_ok($$ SELECT outreach.compile($q$contact where has interaction where (kind = 'clicked' and has message where template_name = 'flu reminder')$q$) $$,
                'docs: interaction -> message compiles');
SELECT lives_ok($$ SELECT outreach.compile($q$contact where has interaction where kind in ('bounced', 'complained')$q$) $$,
                'docs: bounced or complained compiles');
SELECT outreach.create_segment('ce never open', $$contact where has message where (channel = 'email' and status = 'delivered') and has no interaction where kind = 'opened'$$);
SELECT outreach.go_live('ce never open');
SELECT is(pg_temp.members('ce never open'), '{}'::text[], 'everyone delivered has opened');

-- previews over a segment ----------------------------------------------------------------
SELECT outreach.create_segment('ce paris', $$contact where time_zone = 'Europe/Paris'$$);
SELECT outreach.go_live('ce paris');
SELECT is((SELECT array_agg(p.language || ':' || coalesce(array_to_string(p.problems, '|'), '') ORDER BY c.external_id)
             FROM outreach.preview_segment_messages('reminder', 'ce paris', 10) p JOIN outreach.contact c ON c.id = p.contact_id),
          ARRAY['en-US:', 'ES:', 'en:missing contact.first_name: its default (or nothing) is shown', 'en:'],
          'a preview lists each sampled member''s language and missing values');
SELECT outreach.create_template('long sms', 'sms', repeat('{{contact.first_name | upcase | default: ''friend''}} ', 60), message_class => 'transactional');
SELECT is((SELECT count(*) FROM outreach.preview_segment_messages('long sms', 'ce paris', 2, max_sms_parts => 1) p
            WHERE EXISTS (SELECT 1 FROM unnest(p.problems) x WHERE x LIKE 'SMS needs % parts (more than 1)')), 2::bigint, 'SMS needing more than K parts is a problem');
SELECT throws_ok($$ SELECT * FROM outreach.preview_segment_messages('reminder', 'nope', 3) $$, '42704', NULL, 'unknown segment');

SELECT * FROM finish();
ROLLBACK;
