-- leads_scoring: score rules in the segment language over lead attributes, activities and
-- interactions; scores current at commit; decay by the tick; the history of scores;
-- qualification at the threshold starting a journey; rule management and its errors.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(41);

SET LOCAL outreach.now = '2026-03-02 09:00:00+00';
DELETE FROM outreach.frequency_cap;
DELETE FROM outreach.quiet_hours;

SELECT ok(outreach.add_score_rule('form', 'has lead_activity where kind = ''form_submitted''', 10) > 0, 'a rule on an activity');
SELECT ok(outreach.add_score_rule('event lead', 'has lead where source = ''event''', 15) > 0, 'a rule on a lead attribute');
SELECT ok(outreach.add_score_rule('attended', 'has lead_activity where kind = ''attended''', 30) > 0, 'a rule on attendance');
SELECT ok(outreach.add_score_rule('opened', 'has interaction where kind = ''opened''', 20, '10 days') > 0, 'a decaying rule on opens');
SELECT ok(outreach.add_score_rule('no phone', 'phone is empty', -5) > 0, 'negative points on a contact field');
SELECT is((SELECT status FROM outreach.segment WHERE name = 'lead score: form'), 'live', 'each rule is a live segment');
SELECT throws_ok('SELECT outreach.stop(''lead score: form'')', '55000', 'segment "lead score: form" belongs to score rule "form"',
                 'a rule''s segment is not stopped directly');
SELECT throws_ok('SELECT outreach.alter_segment(''lead score: form'', ''contact where phone is empty'')', '55000', NULL,
                 'nor changed');
SELECT throws_ok('SELECT outreach.rename_segment(''lead score: form'', ''x'')', '55000', NULL, 'nor renamed');
SELECT throws_ok('SELECT outreach.drop_segment(''lead score: form'')', '23503', NULL, 'nor dropped');

-- Errors.
SELECT throws_ok('SELECT outreach.add_score_rule(''form'', ''phone is empty'', 1)', '42710', 'score rule "form" already exists', 'duplicate name');
SELECT throws_ok('SELECT outreach.add_score_rule('''', ''phone is empty'', 1)', '22004', NULL, 'no name');
SELECT throws_ok('SELECT outreach.add_score_rule(''x'', '''', 1)', '22004', NULL, 'no condition');
SELECT throws_ok('SELECT outreach.add_score_rule(''x'', ''phone is empty'', 0)', '22023', NULL, 'zero points');
SELECT throws_ok('SELECT outreach.add_score_rule(''x'', ''phone is empty'', 1, ''-1 day'')', '22023', NULL, 'negative half-life');
SELECT throws_ok('SELECT outreach.add_score_rule(''x'', ''has lead where score > 3'', 1)', '22023', NULL, 'a rule on the score itself');
SELECT throws_ok('SELECT outreach.add_score_rule(''x'', ''has lead where colour = ''''red'''''', 1)', '42703', NULL,
                 'an unknown field is an error of the segment language');
SELECT throws_ok('SELECT outreach.add_score_rule(''x'', ''phone is'', 1)', '42601', NULL, 'a syntax error');
SELECT is((SELECT count(*) FROM outreach.lead_score_rule WHERE name = 'x'), 0::bigint, 'a refused rule leaves nothing');
SELECT throws_ok('SELECT outreach.drop_score_rule(''nope'')', '42704', NULL, 'dropping an unknown rule');
SELECT throws_ok('SELECT outreach.set_qualification_threshold(0)', '22023', NULL, 'threshold must be positive');

-- The hand-off journey: qualified leads enter it when the score crosses the threshold.
SELECT outreach.set_qualification_threshold(60);
SELECT outreach.create_segment('Qualified leads', 'contact where has lead where status = ''qualified''');
SELECT outreach.go_live('Qualified leads');
SELECT outreach.create_template('navigator', 'email', 'A care navigator will call you. <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}',
  subject => 'Welcome', message_class => 'transactional', sender_postal_address => '1 Main St');
SELECT outreach.create_journey('Navigator hand-off', 'Qualified leads');
SELECT outreach.add_step('Navigator hand-off', 'hello', 'email', template => 'navigator', next => 'done');
SELECT outreach.add_step('Navigator hand-off', 'done', 'end');
SELECT outreach.launch_journey('Navigator hand-off');

-- A form lead with no phone: 10 - 5.
SELECT outreach.capture_lead('ann@example.org', consent_marketing => true) AS ann \gset
SELECT is((SELECT score FROM outreach.lead WHERE id = :ann), 5.00, 'scored at once: form 10, no phone -5');
SELECT is((SELECT array_agg(rule ORDER BY rule) FROM outreach.lead_score_breakdown(:ann)), ARRAY['form', 'no phone'],
          'the breakdown names the rules that hold');
-- At an event, with attendance: + attended 30; the lead stays a form lead (its first source), and
-- now has a phone.
SELECT outreach.capture_lead_from_registration('Flu shot day', 'ann@example.org', '+14155550100', attended => true);
SELECT is((SELECT score FROM outreach.lead WHERE id = :ann), 40.00, 'form 10 + attended 30; the phone removed the -5; the source stays form');
SELECT is((SELECT status FROM outreach.lead WHERE id = :ann), 'new', 'below the threshold: still new');
SELECT is((SELECT count(*) FROM outreach.enrollment), 0::bigint, 'not in the hand-off journey yet');

-- An email opened: +20, reaching 60.
SELECT (outreach.enqueue_message((SELECT contact_id FROM outreach.lead WHERE id = :ann), 'navigator', 'transactional')).id AS msg \gset
UPDATE outreach.message SET status = 'sent', sent_at = outreach.now() WHERE id = :msg;
SELECT outreach.report_interaction(:msg, 'opened');
SELECT is((SELECT score FROM outreach.lead WHERE id = :ann), 60.00, 'the open counts at once');
SELECT results_eq(format('SELECT status, status_changed_by FROM outreach.lead WHERE id = %s', :ann),
                  $$VALUES ('qualified'::text, 'scoring'::text)$$, 'crossing the threshold qualifies the lead, by scoring');
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
            WHERE j.name = 'Navigator hand-off' AND e.contact_id = (SELECT contact_id FROM outreach.lead WHERE id = :ann)),
          1::bigint, 'the qualified lead entered the hand-off journey in the same transaction');
SELECT is((SELECT new_score FROM outreach.lead_score_change WHERE lead_id = :ann ORDER BY id DESC LIMIT 1), 60.00,
          'the history ends at the current score');
SELECT ok((SELECT bool_and(old_score <> new_score) FROM outreach.lead_score_change WHERE lead_id = :ann),
          'the history records changes only');

-- Decay: the open's 20 points halve every 10 days; the tick applies it.
SELECT outreach.tick('2026-03-12 09:00:00+00');
SELECT is((SELECT score FROM outreach.lead WHERE id = :ann), 50.00, 'after one half-life the open counts 10');
SELECT outreach.tick('2026-03-22 09:00:00+00');
SELECT is((SELECT score FROM outreach.lead WHERE id = :ann), 45.00, 'after two, 5');
SELECT is((SELECT reason FROM outreach.lead_score_change WHERE lead_id = :ann ORDER BY id DESC LIMIT 1), 'decay',
          'decay is recorded as such');
SELECT is((SELECT status FROM outreach.lead WHERE id = :ann), 'qualified', 'decay does not unqualify a lead');

-- Status: a disqualified lead keeps its score; reopened, it is rescored.
SELECT outreach.set_lead_status(:ann, 'disqualified');
SELECT outreach.drop_score_rule('attended');
SELECT is((SELECT score FROM outreach.lead WHERE id = :ann), 45.00, 'a disqualified lead''s score is frozen');
SELECT is((SELECT count(*) FROM outreach.segment WHERE name = 'lead score: attended'), 0::bigint, 'the rule''s segment is dropped');
SET LOCAL outreach.now = '2026-03-22 09:00:00+00';
SELECT outreach.set_lead_status(:ann, 'working');
SELECT is((SELECT score FROM outreach.lead WHERE id = :ann), 30.00,
          'reopened: rescored without the dropped rule; rules hold again from now (form 10, open 20)');

-- The threshold lowered: leads above it qualify at once.
SELECT outreach.set_qualification_threshold(12);
SELECT is((SELECT status FROM outreach.lead WHERE id = :ann), 'qualified', 'lowering the threshold qualifies');

-- rescore_leads agrees with the kept scores.
SELECT is(outreach.rescore_leads(), 0, 'a full rescore changes nothing: the scores were current');
SELECT throws_ok('SELECT * FROM outreach.lead_score_breakdown(-1)', 'P0002', NULL, 'breakdown of an unknown lead');

SELECT * FROM finish();
ROLLBACK;
