-- journeys_experiments: preferred-channel send steps and A/B(/n) experiment steps (issue 18
-- items 4 and 6), through the set-based tick.
--   * message step: the preferred channel, then the fallback order, consent on each; a
--     contact reachable on none gets one suppressed message with the reason; exactly once;
--   * experiment: seeded outcomes with a known winner (decided once every variant has its
--     minimum sample; the held audience gets the winner), three equal variants (no winner
--     at the deadline: the default variant), exactly once, results with Wilson intervals;
--   * the statistics helpers against known values; argument errors.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(46);

SET LOCAL outreach.now = '2030-01-07 12:00+00';
DELETE FROM outreach.frequency_cap;
DELETE FROM outreach.quiet_hours;
SELECT outreach.create_template('pc_email', 'email', 'Hello {{contact.first_name}} <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}', subject => 'Hello', sender_postal_address => '1 Main St, Springfield');
SELECT outreach.create_template('pc_sms', 'sms', 'Hello {{contact.first_name}}, reply STOP to opt out');
SELECT outreach.create_template('pc_letter', 'letter', 'Dear {{contact.first_name}}');
SELECT outreach.create_template('va', 'email', 'Variant A <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}', subject => 'A', sender_postal_address => '1 Main St, Springfield');
SELECT outreach.create_template('vb', 'email', 'Variant B <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}', subject => 'B', sender_postal_address => '1 Main St, Springfield');
SELECT outreach.create_template('vc', 'sms', 'Variant C, reply STOP to opt out');

CREATE FUNCTION pg_temp.journey(name text, contacts bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM outreach.create_static_segment(name || '_aud');
  PERFORM outreach.go_live(name || '_aud');
  PERFORM outreach.add_members(name || '_aud', contacts);
  PERFORM outreach.create_journey(name, name || '_aud');
END $$;
CREATE FUNCTION pg_temp.tick(at text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('outreach.now', at, true);
  PERFORM outreach.tick_journeys(at::timestamptz);
END $$;

-- Preferred channel ----------------------------------------------------------------------
INSERT INTO outreach.contact (id, external_id, first_name, email, phone, address_line, city, postal_code, country,
                              preferred_channel, do_not_email, do_not_sms, do_not_mail)
VALUES (900001, 'pc1', 'One',   'one@example.org', '+14155550001', '1 Elm', 'Springfield', '12345', 'US', 'sms', false, false, false),
       (900002, 'pc2', 'Two',   'two@example.org', '+14155550002', NULL, NULL, NULL, NULL, 'sms', false, true, false),
       (900003, 'pc3', 'Three', NULL, '+14155550003', NULL, NULL, NULL, NULL, 'email', false, false, false),
       (900004, 'pc4', 'Four',  NULL, NULL, '4 Elm', 'Springfield', '12345', 'US', NULL, false, false, false),
       (900005, 'pc5', 'Five',  'five@example.org', NULL, '5 Elm', 'Springfield', '12345', 'US', 'email', true, false, true),
       (900006, 'pc6', 'Six',   'six@example.org', '+14155550006', NULL, NULL, NULL, NULL, 'letter', false, false, false);
SELECT pg_temp.journey('pc', ARRAY[900001, 900002, 900003, 900004, 900005, 900006]::bigint[]);
SELECT isnt(outreach.add_channel_step('pc', 'send', '{"email": "pc_email", "sms": "pc_sms", "letter": "pc_letter"}'),
            NULL, 'a message step with one template per channel');
SELECT outreach.launch_journey('pc');
SELECT pg_temp.tick('2030-01-07 12:00+00');

CREATE TEMP VIEW pc_sent AS
SELECT m.contact_id, m.channel, m.template_name, m.status, m.suppression_reason
  FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'pc';
SELECT is((SELECT channel FROM pc_sent WHERE contact_id = 900001), 'sms', 'the preferred channel when the contact consents on it');
SELECT is((SELECT channel FROM pc_sent WHERE contact_id = 900002), 'email', 'opted out of the preferred channel: the first fallback, email');
SELECT is((SELECT channel FROM pc_sent WHERE contact_id = 900003), 'sms', 'no address on the preferred channel nor on email: SMS');
SELECT is((SELECT channel || '/' || template_name FROM pc_sent WHERE contact_id = 900004), 'letter/pc_letter',
          'no preferred channel, no email or phone: a letter with the letter template');
SELECT is((SELECT status || '/' || channel || '/' || suppression_reason FROM pc_sent WHERE contact_id = 900005),
          'suppressed/email/opted_out', 'reachable and consenting on no channel: one suppressed message with the preferred channel''s reason');
SELECT is((SELECT channel FROM pc_sent WHERE contact_id = 900006), 'email',
          'preferred letter without a postal address: the fallback order');
SELECT is((SELECT count(*) FROM pc_sent WHERE status = 'queued'), 5::bigint, 'five queued');
SELECT pg_temp.tick('2030-01-08 12:00+00');
SELECT is((SELECT count(*) FROM pc_sent), 6::bigint, 'exactly one message per (enrollment, step) after another tick');
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
            WHERE j.name = 'pc' AND e.status = 'completed'), 6::bigint, 'every enrollment completed');
SELECT is((SELECT array_agg(DISTINCT outcome ORDER BY outcome) FROM outreach.enrollment_step es
             JOIN outreach.journey j ON j.id = es.journey_id WHERE j.name = 'pc'),
          ARRAY['queued', 'suppressed'], 'the step history records the message outcome');

-- fallback order of the step; a channel without a template is skipped
SELECT pg_temp.journey('pc2', ARRAY[900001, 900002]::bigint[]);
SELECT outreach.add_channel_step('pc2', 'send', '{"email": "pc_email", "letter": "pc_letter"}', fallback => '{letter,email}');
SELECT outreach.launch_journey('pc2');
SELECT pg_temp.tick('2030-01-09 12:00+00');
SELECT is((SELECT array_agg(m.channel ORDER BY m.contact_id) FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id
            WHERE j.name = 'pc2'), ARRAY['letter', 'email'],
          'preferred sms has no template: the step''s own order (letter, then email when there is no postal address)');

SELECT throws_ok($$ SELECT outreach.add_channel_step('pc2', 'x', '{"fax": "pc_email"}') $$, '22023', NULL,
                 'unknown channel refused');
SELECT throws_ok($$ SELECT outreach.add_channel_step('pc2', 'x', '{"sms": "pc_email"}') $$, '22023', NULL,
                 'a template for another channel refused');
SELECT throws_ok($$ SELECT outreach.add_channel_step('pc2', 'x', '{"email": "nope"}') $$, '42704', NULL,
                 'an unknown template refused');
SELECT throws_ok($$ SELECT outreach.add_channel_step('pc2', 'x', '{}') $$, '22023', NULL, 'no templates refused');
SELECT throws_ok($$ SELECT outreach.add_channel_step('pc2', 'x', '{"email": "pc_email"}', fallback => '{email,pigeon}') $$,
                 '22023', NULL, 'an unknown fallback channel refused');
SELECT throws_ok($$ SELECT outreach.add_channel_step('pc2', 'x', '{"email": "pc_email"}', fallback => '{sms}') $$,
                 '22023', NULL, 'a fallback order without any templated channel refused');

-- Statistics helpers ----------------------------------------------------------------------
SELECT ok(abs(outreach._normal_cdf(1.959964) - 0.975) < 1e-6, 'Phi(1.96) = 0.975');
SELECT ok(abs(outreach._normal_quantile(0.975) - 1.959964) < 1e-4, 'the 97.5 % normal quantile is 1.96');
-- Wilson 95 % interval of 10 / 100: 0.0552 .. 0.1744
SELECT ok(abs(w.low - 0.0552) < 5e-4 AND abs(w.high - 0.1744) < 5e-4, 'Wilson interval of 10/100') FROM outreach._wilson(10, 100, 0.95) w;
-- 20/100 against 35/100: z = 2.375, p = 0.0175
SELECT ok(abs(outreach._two_proportion_p(35, 100, 20, 100) - 0.0175) < 5e-4, 'two-proportion z-test p-value');
SELECT is(outreach._two_proportion_p(0, 50, 0, 50), 1::float8, 'no successes at all: no difference');

-- Experiment with a known winner -----------------------------------------------------------
INSERT INTO outreach.contact (id, external_id, first_name, email, phone)
SELECT 910000 + i, 'ex' || i, 'P' || i, 'p' || i || '@example.org', '+1415600' || lpad(i::text, 4, '0')
  FROM generate_series(1, 800) i;
SELECT pg_temp.journey('exp', ARRAY(SELECT 910000 + i FROM generate_series(1, 800) i)::bigint[]);
SELECT outreach.add_experiment_step('exp', 'ab', '{"a": "va", "b": "vb"}', 50, metric => 'opened',
                                    metric_window => '3 days', min_sample => 100, confidence => 0.95,
                                    decide_within => '14 days', next => 'done');
SELECT outreach.add_step('exp', 'done', 'end');
SELECT outreach.launch_journey('exp');
SELECT pg_temp.tick('2030-01-10 12:00+00');

CREATE TEMP VIEW exp_msg AS
SELECT m.*, outreach._experiment_arm(m.enrollment_id, 'ab', 50, 2) AS arm,
       row_number() OVER (PARTITION BY outreach._experiment_arm(m.enrollment_id, 'ab', 50, 2) ORDER BY m.id) AS rn
  FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'exp';
SELECT ok((SELECT count(*) FROM exp_msg) BETWEEN 320 AND 480, 'about half the audience is in the test');
SELECT ok((SELECT bool_and(arm IS NOT NULL AND template_name = (ARRAY['va', 'vb'])[arm]) FROM exp_msg),
          'each test enrollment gets its variant''s template');
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
            WHERE j.name = 'exp' AND e.status = 'active' AND e.current_step = 'ab'),
          800 - (SELECT count(*) FROM exp_msg), 'the held audience waits at the step');
-- seeded outcomes: a opens 10 %, b opens 30 % (every tenth, every third and a bit)
INSERT INTO outreach.interaction (message_id, contact_id, kind, occurred_at)
SELECT id, contact_id, 'opened', created_at + interval '1 hour' FROM exp_msg
 WHERE (arm = 1 AND rn % 10 = 0) OR (arm = 2 AND rn % 10 IN (0, 3, 6));
-- an open after the window does not count
INSERT INTO outreach.interaction (message_id, contact_id, kind, occurred_at)
SELECT id, contact_id, 'opened', created_at + interval '5 days' FROM exp_msg WHERE arm = 1 AND rn % 10 = 5;

SELECT pg_temp.tick('2030-01-11 12:00+00');
SELECT is((SELECT decision FROM outreach.journey_experiment x JOIN outreach.journey j ON j.id = x.journey_id WHERE j.name = 'exp'),
          NULL::text, 'no decision before the metric window has passed');
SELECT is((SELECT count(*) FROM exp_msg WHERE arm IS NULL), 0::bigint, 'the held audience gets nothing before the decision');

SELECT pg_temp.tick('2030-01-13 13:00+00');
SELECT is((SELECT decision || ':' || winner FROM outreach.journey_experiment x JOIN outreach.journey j ON j.id = x.journey_id
            WHERE j.name = 'exp'), 'winner:b', 'the variant with the higher open rate wins');
SELECT is((SELECT array_agg(DISTINCT template_name) FROM exp_msg WHERE arm IS NULL), ARRAY['vb'], 'the held audience gets the winner');
SELECT is((SELECT count(*) FROM exp_msg), 800::bigint, 'everyone has a message now');
SELECT pg_temp.tick('2030-01-14 13:00+00');
SELECT is((SELECT count(*) FROM exp_msg), 800::bigint, 'exactly once: no message twice after more ticks');
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
            WHERE j.name = 'exp' AND e.status = 'completed'), 800::bigint, 'every enrollment went on to the next step');
SET LOCAL outreach.now = '2030-01-14 13:00+00';
SELECT results_eq($$ SELECT variant, decision, chosen, observed = sent, rate > ci_low AND rate < ci_high
                       FROM outreach.experiment_results WHERE journey = 'exp' ORDER BY variant $$,
                  $$ VALUES ('a', 'winner', false, true, true), ('b', 'winner', true, true, true) $$,
                  'experiment_results: each variant, the decision, the rate inside its Wilson interval');
SELECT ok((SELECT rate FROM outreach.experiment_results WHERE journey = 'exp' AND variant = 'a') BETWEEN 0.07 AND 0.13,
          'the late open is not counted (a about 10 %)');

-- Three equal variants: no winner, the default variant -----------------------------------
SELECT pg_temp.journey('tie', ARRAY(SELECT 910000 + i FROM generate_series(1, 800) i)::bigint[]);
SELECT outreach.add_experiment_step('tie', 'abc', '{"a": "va", "b": "vb", "c": "vc"}', 75, metric => 'clicked',
                                    metric_window => '2 days', min_sample => 100, confidence => 0.95,
                                    decide_within => '7 days', default_variant => 'c');
SELECT outreach.launch_journey('tie');
SELECT pg_temp.tick('2030-02-01 12:00+00');
CREATE TEMP VIEW tie_msg AS
SELECT m.*, outreach._experiment_arm(m.enrollment_id, 'abc', 75, 3) AS arm,
       row_number() OVER (PARTITION BY outreach._experiment_arm(m.enrollment_id, 'abc', 75, 3) ORDER BY m.id) AS rn
  FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'tie';
INSERT INTO outreach.interaction (message_id, contact_id, kind, url, occurred_at)
SELECT id, contact_id, 'clicked', 'https://example.org/x', created_at + interval '1 hour' FROM tie_msg WHERE rn % 5 = 0;
SELECT pg_temp.tick('2030-02-04 12:00+00');
SELECT is((SELECT decision FROM outreach.journey_experiment x JOIN outreach.journey j ON j.id = x.journey_id WHERE j.name = 'tie'),
          NULL::text, 'equal rates with the samples in: no decision before the deadline');
SELECT is((SELECT count(*) FROM tie_msg WHERE arm IS NULL), 0::bigint, 'the held audience still waits');
SELECT pg_temp.tick('2030-02-08 12:00+00');
SELECT is((SELECT decision || ':' || winner FROM outreach.journey_experiment x JOIN outreach.journey j ON j.id = x.journey_id
            WHERE j.name = 'tie'), 'no winner:c', 'no winner by the deadline: the default variant');
SELECT is((SELECT array_agg(DISTINCT template_name) FROM tie_msg WHERE arm IS NULL), ARRAY['vc'], 'the held audience gets the default');
SET LOCAL outreach.now = '2030-02-08 12:00+00';
SELECT is((SELECT array_agg(DISTINCT decision) FROM outreach.experiment_results WHERE journey = 'tie'), ARRAY['no winner'],
          'experiment_results says no winner');

-- Three variants, a segment-join conversion: the best wins against each other (Bonferroni) ---
SELECT outreach.create_static_segment('converted');
SELECT pg_temp.journey('conv', ARRAY(SELECT 910000 + i FROM generate_series(1, 600) i)::bigint[]);
SELECT outreach.add_experiment_step('conv', 'abc', '{"a": "va", "b": "vb", "c": "vc"}', 90, metric => 'conversion',
                                    conversion_segment => 'converted', metric_window => '2 days', min_sample => 50);
SELECT outreach.launch_journey('conv');
SELECT pg_temp.tick('2030-03-01 12:00+00');
CREATE TEMP VIEW conv_msg AS
SELECT m.*, outreach._experiment_arm(m.enrollment_id, 'abc', 90, 3) AS arm,
       row_number() OVER (PARTITION BY outreach._experiment_arm(m.enrollment_id, 'abc', 90, 3) ORDER BY m.id) AS rn
  FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id WHERE j.name = 'conv';
-- b converts half the time, a and c a tenth; joins are dated on the simulated clock
SELECT outreach.add_members('converted', ARRAY(SELECT contact_id FROM conv_msg
                                                 WHERE (arm = 2 AND rn % 2 = 0) OR (arm <> 2 AND rn % 10 = 0)));
UPDATE outreach.segment_change sc SET changed_at = '2030-03-02 12:00+00'
  FROM outreach.segment sg WHERE sg.id = sc.segment_id AND sg.name = 'converted';
SELECT pg_temp.tick('2030-03-04 12:00+00');
SELECT is((SELECT decision || ':' || winner FROM outreach.journey_experiment x JOIN outreach.journey j ON j.id = x.journey_id
            WHERE j.name = 'conv'), 'winner:b', 'conversions: the variant that converts best wins against both others');
SET LOCAL outreach.now = '2030-03-04 12:00+00';
SELECT ok((SELECT rate FROM outreach.experiment_results WHERE journey = 'conv' AND variant = 'b') BETWEEN 0.45 AND 0.55
          AND (SELECT count(*) FROM conv_msg WHERE arm IS NULL AND template_name = 'vb') > 0,
          'the conversion rate of b is about a half; the held tenth got b');

-- argument errors
SELECT pg_temp.journey('bad', ARRAY[900001]::bigint[]);
SELECT throws_ok($$ SELECT outreach.add_experiment_step('bad', 'x', '{"a": "va"}', 50) $$, '22023', NULL, 'one variant refused');
SELECT throws_ok($$ SELECT outreach.add_experiment_step('bad', 'x', '{"a": "va", "b": "vb"}', 0) $$, '22023', NULL, 'test share 0 refused');
SELECT throws_ok($$ SELECT outreach.add_experiment_step('bad', 'x', '{"a": "va", "b": "vb"}', 50, metric => 'conversion') $$,
                 '22023', NULL, 'conversion without a segment refused');
SELECT throws_ok($$ SELECT outreach.add_experiment_step('bad', 'x', '{"a": "va", "b": "vb"}', 50, default_variant => 'z') $$,
                 '22023', NULL, 'an unknown default variant refused');

SELECT * FROM finish();
ROLLBACK;
