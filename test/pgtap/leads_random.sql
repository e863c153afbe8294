-- leads_random: a randomized run of captures (form, campaign, import, event, with the same
-- people under other spellings of their email and phone), activities, opens, status
-- changes, conversions and ticks that move the clock.  At the end: no duplicate contact,
-- one open lead per person, and every lead's score equal to an independent recomputation
-- (each rule evaluated afresh with outreach.evaluate, decay recomputed here).
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(11);

-- A new seed each run, printed so a failure can be replayed (put it in setseed below).
SELECT (extract(epoch FROM clock_timestamp())::bigint % 1000) / 1000.0 - 0.5 AS seed \gset
SELECT diag('seed ' || :seed);
SELECT setseed(:seed);
SET LOCAL outreach.now = '2026-03-02 09:00:00+00';
DELETE FROM outreach.frequency_cap;
DELETE FROM outreach.quiet_hours;
SELECT outreach.set_default_country_code('+1');
SELECT outreach.set_qualification_threshold(50);
SELECT outreach.add_score_rule('form', 'has lead_activity where kind = ''form_submitted''', 10);
SELECT outreach.add_score_rule('two forms', 'count(lead_activity where kind = ''form_submitted'') >= 2', 8);
SELECT outreach.add_score_rule('registered', 'has lead_activity where kind = ''registered''', 15, '7 days');
SELECT outreach.add_score_rule('attended', 'has lead_activity where kind = ''attended''', 30);
SELECT outreach.add_score_rule('opened', 'has interaction where kind = ''opened''', 20, '10 days');
SELECT outreach.add_score_rule('event source', 'has lead where source = ''event''', 5);
SELECT outreach.add_score_rule('no phone', 'phone is empty', -3);
SELECT outreach.create_template('hello', 'email', 'Hello {{contact.first_name}}', subject => 'Hi', message_class => 'transactional');

-- Forty people; some are already patients (by email, or by phone only).
CREATE TEMP TABLE person AS
SELECT i, format('p%s@example.org', i) AS email, '+1415555' || lpad(i::text, 4, '0') AS phone FROM generate_series(0, 39) i;
INSERT INTO outreach.contact (external_id, first_name, email, phone)
SELECT 'pat-' || i, 'P' || i, email, CASE WHEN i % 2 = 0 THEN phone END FROM person WHERE i < 6;
INSERT INTO outreach.contact (external_id, first_name, phone) SELECT 'pat-' || i, 'P' || i, phone FROM person WHERE i BETWEEN 6 AND 8;

CREATE TEMP TABLE run_log (step int, action text, ok boolean, detail text);

DO $$
DECLARE
  clock timestamptz := '2026-03-02 09:00:00+00';
  p record;
  r float8;
  em text;
  ph text;
  lid bigint;
  mid bigint;
  act text;
BEGIN
  FOR step IN 1..400 LOOP
    r := random();
    SELECT * INTO p FROM person ORDER BY random() LIMIT 1;
    -- the same person, spelled differently: case, spaces; phone national, spaced or 00-prefixed
    em := CASE floor(random() * 4)::int WHEN 0 THEN upper(p.email) WHEN 1 THEN '  ' || p.email || ' ' WHEN 2 THEN NULL ELSE p.email END;
    ph := CASE floor(random() * 4)::int WHEN 0 THEN NULL WHEN 1 THEN '(415) 555-' || right(p.phone, 4)
                                        WHEN 2 THEN '001 415 555 ' || right(p.phone, 4) ELSE p.phone END;
    IF em IS NULL AND ph IS NULL THEN em := p.email; END IF;
    SELECT l.id INTO lid FROM outreach.lead l ORDER BY random() LIMIT 1;
    BEGIN
      IF r < 0.38 THEN
        act := 'capture';
        PERFORM outreach.capture_lead(em, ph, 'P' || p.i, NULL, (ARRAY['form', 'campaign', 'import'])[1 + floor(random() * 3)::int],
                                      NULL, random() < 0.5);
      ELSIF r < 0.52 THEN
        act := 'event';
        PERFORM outreach.capture_lead_from_registration('Flu shot day', em, ph, 'P' || p.i, consent_marketing => random() < 0.5,
                                                        attended => random() < 0.4);
      ELSIF r < 0.62 AND lid IS NOT NULL THEN
        act := 'activity';
        PERFORM outreach.record_lead_activity(lid, (ARRAY['form_submitted', 'registered', 'attended'])[1 + floor(random() * 3)::int]);
      ELSIF r < 0.70 AND lid IS NOT NULL THEN
        act := 'status';
        PERFORM outreach.set_lead_status(lid, (ARRAY['working', 'qualified', 'disqualified', 'working'])[1 + floor(random() * 4)::int]);
      ELSIF r < 0.78 AND lid IS NOT NULL THEN
        act := 'convert';
        PERFORM outreach.convert_lead(lid);
      ELSIF r < 0.86 THEN
        -- the EHR registers the person as a patient; their open leads are then converted
        -- (the EHR itself never registers a second patient with an email or phone a patient has)
        act := 'ehr';
        IF EXISTS (SELECT 1 FROM outreach.contact c WHERE c.contact_type = 'lead' AND (lower(c.email) = p.email OR c.phone = p.phone))
           AND NOT EXISTS (SELECT 1 FROM outreach.contact c WHERE c.contact_type <> 'lead'
                            AND (lower(c.email) = p.email OR c.phone = p.phone)) THEN
          INSERT INTO outreach.contact (external_id, first_name, email, phone)
          VALUES ('ehr-' || step, 'P' || p.i, CASE WHEN random() < 0.6 THEN p.email END,
                  CASE WHEN random() < 0.6 THEN p.phone END);
          FOR lid IN SELECT l.id FROM outreach.lead l JOIN outreach.contact c ON c.id = l.contact_id
                      WHERE c.contact_type = 'lead' AND l.status <> 'converted' AND (lower(c.email) = p.email OR c.phone = p.phone)
                      ORDER BY l.id LOOP
            IF (SELECT l.status FROM outreach.lead l WHERE l.id = lid) = 'disqualified' THEN
              PERFORM outreach.set_lead_status(lid, 'working');
            END IF;
            PERFORM outreach.convert_lead(lid);
          END LOOP;
        END IF;
      ELSIF r < 0.93 AND lid IS NOT NULL THEN
        act := 'open';
        mid := (outreach.enqueue_message((SELECT l.contact_id FROM outreach.lead l WHERE l.id = lid), 'hello', 'transactional')).id;
        UPDATE outreach.message m SET status = 'sent', sent_at = clock WHERE m.id = mid AND m.status = 'queued';
        IF FOUND THEN PERFORM outreach.report_interaction(mid, 'opened'); END IF;
      ELSE
        act := 'tick';
        clock := clock + make_interval(hours => 1 + floor(random() * 24 * 6)::int);
        PERFORM outreach.tick(clock);
        PERFORM set_config('outreach.now', clock::text, true);
      END IF;
      INSERT INTO run_log VALUES (step, act, true, NULL);
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
      -- a transition the lifecycle refuses (e.g. converting a disqualified lead): expected
      INSERT INTO run_log VALUES (step, act, false, SQLERRM);
    END;
  END LOOP;
END $$;

SELECT cmp_ok((SELECT count(*) FROM run_log WHERE ok AND action IN ('capture', 'event')), '>', 100::bigint, 'many captures ran');
SELECT cmp_ok((SELECT count(DISTINCT lead_id) FROM outreach.lead_conversion), '>', 5::bigint, 'several conversions ran');
SELECT cmp_ok((SELECT count(*) FROM outreach.lead_conversion WHERE matched_on IS NOT NULL), '>', 0::bigint,
              'some conversions matched an existing patient');
SELECT is((SELECT count(*) FROM run_log WHERE NOT ok AND detail NOT LIKE '%cannot%'), 0::bigint,
          'the only refusals were lifecycle transitions');

-- No duplicate contact: no two share a normalised email or a phone.
SELECT is((SELECT count(*) FROM (SELECT lower(btrim(email)) FROM outreach.contact WHERE email IS NOT NULL
                                  GROUP BY 1 HAVING count(*) > 1) d), 0::bigint, 'no two contacts share an email');
SELECT is((SELECT count(*) FROM (SELECT phone FROM outreach.contact WHERE phone IS NOT NULL
                                  GROUP BY 1 HAVING count(*) > 1) d), 0::bigint, 'no two contacts share a phone');
SELECT is((SELECT count(*) FROM (SELECT contact_id FROM outreach.lead WHERE status <> 'converted' GROUP BY 1 HAVING count(*) > 1) d),
          0::bigint, 'one open lead per contact');
SELECT ok((SELECT bool_and(c.contact_type = 'patient' AND l.converted_contact_id = l.contact_id)
             FROM outreach.lead l JOIN outreach.contact c ON c.id = l.contact_id WHERE l.status = 'converted'),
          'every converted lead points to a patient contact');

-- Independent recomputation: the hits are exactly what each rule's query matches now ...
CREATE TEMP TABLE expected_hit AS
SELECT r.id AS rule_id, e.contact_id
  FROM outreach.lead_score_rule r
 CROSS JOIN LATERAL outreach.evaluate(('contact where has lead where status in (''new'', ''working'', ''qualified'') and ('
                                       || r.condition || ')')::outreach.segment_query) AS e(contact_id);
SELECT set_eq('SELECT rule_id, contact_id FROM outreach.lead_score_hit', 'SELECT rule_id, contact_id FROM expected_hit',
              'the rule hits are what each rule''s query matches now');
-- ... and each open lead's score is the sum of their points, halved per elapsed half-life.
-- (decay is applied by the tick: run it at the current time, as pg_cron would)
SELECT outreach.tick(outreach.now()) AS unused \gset
SELECT is((SELECT count(*) FROM outreach.lead l
            WHERE l.status IN ('new', 'working', 'qualified')
              AND l.score <> round(coalesce((
                    SELECT sum(r.points * 0.5 ^ (CASE WHEN r.half_life IS NULL THEN 0
                                 ELSE extract(epoch FROM outreach.now() - h.since) / extract(epoch FROM r.half_life) END))
                      FROM expected_hit x JOIN outreach.lead_score_rule r ON r.id = x.rule_id
                      JOIN outreach.lead_score_hit h ON h.rule_id = x.rule_id AND h.contact_id = x.contact_id
                     WHERE x.contact_id = l.contact_id), 0), 2)),
          0::bigint, 'every open lead''s score equals the recomputation');
SELECT is((SELECT count(*) FROM outreach.lead l JOIN outreach.lead_conversion v ON v.lead_id = l.id
            WHERE l.score <> v.score_at_conversion), 0::bigint, 'converted leads keep the score they converted with');

SELECT * FROM finish();
ROLLBACK;
