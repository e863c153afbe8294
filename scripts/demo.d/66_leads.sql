-- Demo section: a lead captured at the flu-shot event, scored, qualified (which starts a
-- care-navigator hand-off journey), and converted to a patient; a lead without consent gets
-- no marketing; social posts with sentiment.  See docs/leads.md and docs/social.md.
\echo
\echo '== Leads: captured at the flu-shot event, scored, qualified, converted =='

SELECT outreach.set_qualification_threshold(50) \g /dev/null
SELECT outreach.set_default_country_code('+1') \g /dev/null   -- national numbers are US numbers
SELECT outreach.add_score_rule('attended an event', 'has lead_activity where kind = ''attended''', 30) \g /dev/null
SELECT outreach.add_score_rule('registered for an event', 'has lead_activity where kind = ''registered''', 15, '30 days') \g /dev/null
SELECT outreach.add_score_rule('submitted a form', 'has lead_activity where kind = ''form_submitted''', 10) \g /dev/null
SELECT outreach.add_score_rule('opened an email', 'has interaction where kind = ''opened''', 20, '30 days') \g /dev/null
SELECT name, points, half_life, condition FROM outreach.lead_score_rule ORDER BY id;

-- Qualified leads enter a hand-off journey the moment scoring qualifies them.
SELECT outreach.create_segment('Qualified leads', 'contact where has lead where status = ''qualified''') \g /dev/null
SELECT outreach.go_live('Qualified leads') \g /dev/null
SELECT outreach.create_template('navigator_intro', 'email',
  '<p>Hi {{contact.first_name | default: ''there''}}, a care navigator will call you this week.</p>'
  '<p><a href="{{unsubscribe_url}}">Unsubscribe</a> - {{sender.postal_address}}</p>',
  subject => 'Your care navigator', sender_postal_address => 'Springfield Health, 1 Clinic Way, Springfield') \g /dev/null
SELECT outreach.create_journey('Care navigator hand-off', 'Qualified leads') \g /dev/null
SELECT outreach.add_step('Care navigator hand-off', 'intro', 'email', template => 'navigator_intro', next => 'done') \g /dev/null
SELECT outreach.add_step('Care navigator hand-off', 'done', 'end') \g /dev/null
SELECT outreach.launch_journey('Care navigator hand-off') \g /dev/null

\echo 'Maria registers at the flu-shot event and attends; she agrees to hear from us:'
SELECT outreach.capture_lead_from_registration('Flu shot day', ' Maria.Garcia@Example.org', '+1 (617) 555-0142',
  'Maria', 'Garcia', consent_marketing => true, attended => true) AS maria \gset
-- When the events part is installed and the event exists, the lead contact registers for it
-- like any contact (a lead is a contact).
DO $$
DECLARE
  n bigint := 0;
BEGIN
  IF to_regprocedure('outreach.register(text,bigint,text[])') IS NOT NULL AND to_regclass('outreach.event') IS NOT NULL THEN
    EXECUTE 'SELECT count(*) FROM outreach.event e WHERE e.name = ''Flu shot day''' INTO n;
  END IF;
  IF n > 0 THEN
    EXECUTE 'SELECT outreach.register(''Flu shot day'', (SELECT contact_id FROM outreach.lead WHERE email = ''maria.garcia@example.org''))';
  END IF;
END $$;
SELECT id, status, source, source_detail, score, email, phone FROM outreach.lead WHERE id = :maria;

\echo 'A week later she fills in the volunteer form (same person, other spelling: one lead):'
SELECT outreach.capture_lead('maria.garcia@example.org', '6175550142'::text, source => 'form',
                             source_detail => 'Volunteer sign-up') = :maria AS same_lead;
SELECT id, status, status_changed_by, score FROM outreach.lead WHERE id = :maria;
SELECT * FROM outreach.lead_score_breakdown(:maria);
SELECT old_score, new_score, reason FROM outreach.lead_score_change WHERE lead_id = :maria ORDER BY id;
SELECT j.name AS journey, e.status, e.current_step FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id
 WHERE e.contact_id = (SELECT contact_id FROM outreach.lead WHERE id = :maria);

\echo 'A lead who did not agree to marketing gets none (suppressed, reason recorded):'
SELECT outreach.capture_lead('tom.baker@example.org', first_name => 'Tom') AS tom \gset
SELECT status, suppression_reason FROM outreach.enqueue_message((SELECT contact_id FROM outreach.lead WHERE id = :tom), 'navigator_intro');

\echo 'Maria books her first appointment: convert her to a patient (matched on email or phone, never a duplicate):'
SELECT outreach.convert_lead(:maria) AS patient_contact;
SELECT c.id, c.contact_type, c.first_name, c.email, c.phone, c.do_not_email
  FROM outreach.contact c WHERE c.id = (SELECT converted_contact_id FROM outreach.lead WHERE id = :maria);
SELECT from_status, to_status, changed_by, reason FROM outreach.lead_status_change WHERE lead_id = :maria ORDER BY id;
SELECT * FROM outreach.lead_funnel ORDER BY source, status;

\echo
\echo '== Social activities: posts, replies, sentiment =='
SELECT outreach.create_social_post('facebook', 'Springfield Health', 'Free flu shots this Saturday, quick and friendly!') AS post \gset
SELECT outreach.report_social_post(:post, 'published', 'fb_demo_1') \g /dev/null
SELECT outreach.record_social_engagement(:post, 'like', 42) \g /dev/null
SELECT outreach.record_social_engagement(:post, 'share', 7) \g /dev/null
SELECT count(outreach.record_social_engagement(:post, 'reply', body => b, external_id => 'r' || n))
  FROM unnest(ARRAY['Great idea, thank you!', 'Last year the wait was terrible and nobody helped.',
                    'Not bad at all, see you there :)', 'Is parking available?']) WITH ORDINALITY u(b, n) \g /dev/null
SELECT body, round(sentiment::numeric, 2) AS sentiment FROM outreach.social_engagement WHERE kind = 'reply' ORDER BY sentiment;
SELECT channel, week, posts, engagement, avg_post_sentiment, avg_reply_sentiment, most_negative_replies FROM outreach.social_overview;
