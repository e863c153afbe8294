-- generator: outreach.generate_population is deterministic, plausible and consistent.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(36);

-- A fingerprint of everything a seed loaded, independent of the ids the rows got: contacts
-- by their number, clinical rows by their patient's number and content, encounter links as
-- offsets from the population's first encounter.
CREATE FUNCTION pg_temp.fingerprint(seed integer) RETURNS text LANGUAGE sql AS $$
  WITH c AS (
    SELECT id, substr(external_id, length(format('pop-%s-', seed)) + 1) AS n,
           to_jsonb(x) - '{id,external_id,account_id,created_at,updated_at}'::text[] AS body
    FROM outreach.contact x WHERE external_id LIKE format('pop-%s-%%', seed)
  ), e0 AS (SELECT min(e.id) AS first FROM outreach.encounter e JOIN c ON c.id = e.patient_id),
  rows AS (
    SELECT 'c' || c.n || c.body::text AS r FROM c
    UNION ALL SELECT 'e' || c.n || (to_jsonb(t) - '{patient_id,created_at,updated_at}'::text[] || jsonb_build_object('id', t.id - e0.first))::text
      FROM outreach.encounter t JOIN c ON c.id = t.patient_id, e0
    UNION ALL SELECT 'd' || c.n || (to_jsonb(t) - '{id,patient_id,created_at,updated_at}'::text[] || jsonb_build_object('encounter_id', t.encounter_id - e0.first))::text
      FROM outreach.condition t JOIN c ON c.id = t.patient_id, e0
    UNION ALL SELECT 'o' || c.n || (to_jsonb(t) - '{id,patient_id,created_at,updated_at}'::text[] || jsonb_build_object('encounter_id', t.encounter_id - e0.first))::text
      FROM outreach.observation t JOIN c ON c.id = t.patient_id, e0
    UNION ALL SELECT 'p' || c.n || (to_jsonb(t) - '{id,patient_id,created_at,updated_at}'::text[] || jsonb_build_object('encounter_id', t.encounter_id - e0.first))::text
      FROM outreach.procedure t JOIN c ON c.id = t.patient_id, e0
    UNION ALL SELECT 'i' || c.n || (to_jsonb(t) - '{id,patient_id,created_at,updated_at}'::text[])::text
      FROM outreach.immunization t JOIN c ON c.id = t.patient_id
    UNION ALL SELECT 'm' || c.n || (to_jsonb(t) - '{id,patient_id,created_at,updated_at}'::text[])::text
      FROM outreach.medication t JOIN c ON c.id = t.patient_id
    UNION ALL SELECT 'a' || c.n || (to_jsonb(t) - '{id,patient_id,created_at,updated_at}'::text[])::text
      FROM outreach.allergy t JOIN c ON c.id = t.patient_id
  )
  SELECT count(*) || ':' || md5(string_agg(r, '|' ORDER BY r)) FROM rows
$$;

-- Determinism and the scale parameter ---------------------------------------------------
CREATE TEMP TABLE first_run AS SELECT * FROM outreach.generate_population(300, 8);
SELECT is((SELECT rows FROM first_run WHERE table_name = 'contact'), 300::bigint, 'contacts = 300 loads 300 contacts');
SELECT is((SELECT count(*) FROM outreach.contact), 300::bigint, 'and nothing else');
SELECT is((SELECT array_agg(table_name ORDER BY table_name) FROM first_run),
          '{account,allergy,condition,contact,encounter,immunization,medication,observation,procedure}'::text[],
          'the summary has one row per table');
SELECT ok((SELECT bool_and(f.rows = (SELECT count(*) FROM outreach.encounter)) FROM first_run f WHERE table_name = 'encounter'),
          'the summary counts what was loaded');
CREATE TEMP TABLE fp AS SELECT pg_temp.fingerprint(8) AS seed8;
SELECT is(outreach.remove_population(8), 300::bigint, 'remove_population removes the seed''s contacts');
SELECT is((SELECT count(*) FROM outreach.condition) + (SELECT count(*) FROM outreach.account), 0::bigint,
          'with their clinical rows and accounts');
SELECT * INTO TEMP second_run FROM outreach.generate_population(300, 8);
SELECT is(pg_temp.fingerprint(8), (SELECT seed8 FROM fp), 'the same seed gives the same population (other ids, same data)');
SELECT ok((SELECT min(id) FROM outreach.contact) > 300, 'a second load takes ids after the first');
SELECT throws_ok($$SELECT * FROM outreach.generate_population(300, 8)$$, '23505',
                 'a population with seed 8 is already loaded', 'loading a seed twice is refused');
SELECT * INTO TEMP other_seed FROM outreach.generate_population(300, 9);
SELECT isnt(pg_temp.fingerprint(9), (SELECT seed8 FROM fp), 'another seed gives another population');
SELECT * INTO TEMP small FROM outreach.generate_population(5, 10);
SELECT is((SELECT rows FROM small WHERE table_name = 'contact'), 5::bigint, 'contacts = 5 loads 5');
SELECT throws_ok($$SELECT * FROM outreach.generate_population(0)$$, '22023',
                 'contacts must be between 1 and 10000000, not 0', 'a population needs at least one contact');
SELECT lives_ok($$INSERT INTO outreach.contact (first_name) VALUES ('After')$$, 'identities continue after the generated ids');

-- Distributions on a larger population ------------------------------------------------
DO $$ BEGIN PERFORM outreach.remove_population(8), outreach.remove_population(9), outreach.remove_population(10); END $$;
DELETE FROM outreach.contact;
SELECT * INTO TEMP big FROM outreach.generate_population(3000, 42, DATE '2026-01-01');
CREATE TEMP VIEW c AS SELECT *, date_part('year', age(DATE '2026-01-01', birthdate)) AS age FROM outreach.contact;

SELECT ok((SELECT min(age) >= 0 AND max(age) <= 100 AND avg(age) BETWEEN 30 AND 45 FROM c), 'ages 0-100, mean 30-45');
SELECT ok((SELECT count(*) FILTER (WHERE age < 18)::float / count(*) BETWEEN 0.15 AND 0.30
              AND count(*) FILTER (WHERE age >= 65)::float / count(*) BETWEEN 0.10 AND 0.25 FROM c),
          'children 15-30 %, 65 and over 10-25 %');
SELECT ok((SELECT count(*) FILTER (WHERE gender = 'female')::float / count(*) BETWEEN 0.45 AND 0.56
              AND count(*) FILTER (WHERE gender = 'male')::float / count(*) BETWEEN 0.43 AND 0.54 FROM c),
          'about as many women as men');
SELECT ok((SELECT count(*) FILTER (WHERE status = 'active')::float / count(*) BETWEEN 0.85 AND 0.95 FROM c), '85-95 % active');
SELECT is((SELECT count(*) FROM c WHERE deceased_at IS NOT NULL AND status <> 'inactive'), 0::bigint, 'the deceased are inactive');
SELECT ok((SELECT count(email)::float / count(*) BETWEEN 0.65 AND 0.90 AND count(phone)::float / count(*) BETWEEN 0.75 AND 0.90 FROM c),
          'most have an email and a phone, not all');
SELECT ok((SELECT count(*) FILTER (WHERE do_not_email)::float / count(*) BETWEEN 0.02 AND 0.10
              AND count(*) FILTER (WHERE do_not_sms)::float / count(*) BETWEEN 0.03 AND 0.13 FROM c), 'some opted out');
SELECT is((SELECT count(*) FROM c WHERE email !~ '^[a-z]+\.[a-z]+\.[0-9]+@example\.(org|com|net)$'), 0::bigint,
          'emails are first.last.N at reserved example domains');
SELECT is((SELECT count(*) FROM c WHERE phone !~ '^\+(1[2-9][0-9]{2}5550[0-9]{3}|442079460[0-9]{3})$'), 0::bigint,
          'phones are E.164 numbers in fictional ranges');
SELECT ok((SELECT count(*) FILTER (WHERE time_zone LIKE 'America/%')::float / count(*) > 0.9
              AND count(DISTINCT time_zone) >= 8 FROM c), 'time zones: mostly American, several of them');
SELECT is((SELECT count(*) FROM c WHERE gender NOT IN (SELECT unnest(outreach.field_allowed_values('outreach.contact', 'gender')))
              OR status NOT IN (SELECT unnest(outreach.field_allowed_values('outreach.contact', 'status')))
              OR preferred_channel NOT IN (SELECT unnest(outreach.field_allowed_values('outreach.contact', 'preferred_channel')))),
          0::bigint, 'contact enumerations hold allowed values');
SELECT is((SELECT count(*) FROM outreach.encounter WHERE class NOT IN (SELECT unnest(outreach.field_allowed_values('outreach.encounter', 'class'))))
          + (SELECT count(*) FROM outreach.condition WHERE clinical_status NOT IN (SELECT unnest(outreach.field_allowed_values('outreach.condition', 'clinical_status')))),
          0::bigint, 'encounter classes and clinical statuses are allowed values');
SELECT ok((SELECT ((SELECT count(*) FROM outreach.encounter) + (SELECT count(*) FROM outreach.condition)
                   + (SELECT count(*) FROM outreach.observation) + (SELECT count(*) FROM outreach.procedure)
                   + (SELECT count(*) FROM outreach.immunization) + (SELECT count(*) FROM outreach.medication)
                   + (SELECT count(*) FROM outreach.allergy))::float / 3000 BETWEEN 7 AND 14), 'about ten clinical rows per contact');
SELECT is((SELECT count(*) FROM outreach.condition WHERE (code, description) NOT IN (VALUES
             ('38101003', 'Hypermetropia (disorder)'), ('57190000', 'Myopia (disorder)'),
             ('44054006', 'Diabetes mellitus type 2 (disorder)'), ('15777000', 'Prediabetes (finding)'),
             ('59621000', 'Essential hypertension (disorder)'), ('55822004', 'Hyperlipidemia (disorder)'),
             ('195967001', 'Asthma (disorder)'), ('162864005', 'Body mass index 30+ - obesity (finding)'),
             ('195662009', 'Acute viral pharyngitis (disorder)'), ('444814009', 'Viral sinusitis (disorder)'))),
          0::bigint, 'conditions carry SNOMED codes with their descriptions');
SELECT ok((SELECT count(DISTINCT c.id) >= 20 FROM c JOIN outreach.condition d ON d.patient_id = c.id
           WHERE c.status = 'active' AND d.description LIKE '%Hypermetropia%' AND d.clinical_status = 'active'),
          'there are active patients with hypermetropia (the seed exercise)');
SELECT ok((SELECT count(DISTINCT c.id) FILTER (WHERE c.status = 'inactive' AND c.deceased_at IS NULL) > 0
              AND count(DISTINCT c.id) FILTER (WHERE c.deceased_at IS NOT NULL) > 0
              AND count(DISTINCT c.id) FILTER (WHERE c.status = 'active' AND c.do_not_email AND c.do_not_sms) > 0
           FROM c JOIN outreach.condition d ON d.patient_id = c.id WHERE d.code = '38101003'),
          'and inactive, deceased and opted-out ones it must leave out');
SELECT is((SELECT count(*) FROM outreach.observation s WHERE s.code = '8480-6' AND NOT EXISTS (
             SELECT 1 FROM outreach.observation d WHERE d.code = '8462-4' AND d.patient_id = s.patient_id
               AND d.effective_at = s.effective_at AND d.encounter_id = s.encounter_id AND d.value_numeric < s.value_numeric)),
          0::bigint, 'every systolic pressure has a lower diastolic at the same time and encounter');
SELECT ok((SELECT avg(o.value_numeric) FILTER (WHERE d.patient_id IS NOT NULL) > 6.5
              AND avg(o.value_numeric) FILTER (WHERE d.patient_id IS NULL) < 6.5
              AND min(o.value_numeric) >= 4 AND max(o.value_numeric) <= 14
           FROM outreach.observation o
           LEFT JOIN (SELECT DISTINCT patient_id FROM outreach.condition WHERE code = '44054006') d ON d.patient_id = o.patient_id
           WHERE o.code = '4548-4'), 'HbA1c: diabetics above 6.5 %, others below');
SELECT ok((SELECT count(*) > 0 FROM outreach.procedure WHERE code = '73761001')
          AND (SELECT count(*) > 0 FROM outreach.procedure p JOIN c ON c.id = p.patient_id WHERE p.code = '71651007' AND c.gender = 'female')
          AND (SELECT count(*) = 0 FROM outreach.procedure p JOIN c ON c.id = p.patient_id WHERE p.code = '71651007' AND c.gender <> 'female')
          AND (SELECT count(*) > 0 FROM outreach.immunization WHERE code = '140'),
          'colonoscopies, mammograms (women only) and influenza vaccinations are there');
SELECT is((SELECT count(*) FROM outreach.encounter e JOIN c ON c.id = e.patient_id
           WHERE e.start_at < TIMESTAMPTZ '2015-12-30' OR e.start_at > TIMESTAMPTZ '2026-01-02' OR e.end_at < e.start_at
              OR e.start_at::date < c.birthdate - 1 OR e.start_at > c.deceased_at),
          0::bigint, 'encounters lie in the ten years before the reference date, in each patient''s life');
SELECT is((SELECT count(*) FROM (
             SELECT encounter_id, patient_id FROM outreach.condition UNION ALL SELECT encounter_id, patient_id FROM outreach.observation
             UNION ALL SELECT encounter_id, patient_id FROM outreach.procedure) x
           JOIN outreach.encounter e ON e.id = x.encounter_id WHERE e.patient_id <> x.patient_id),
          0::bigint, 'clinical rows link to an encounter of their own patient');
SELECT is((SELECT count(*) FROM c JOIN outreach.account a ON a.id = c.account_id
           WHERE NOT (a.kind = 'household' OR (a.kind = 'medical_center' AND c.contact_type = 'practitioner'))),
          0::bigint, 'patients belong to households, practitioners to medical centers');
SELECT ok((SELECT count(*) FILTER (WHERE account_id IS NOT NULL)::float / count(*) BETWEEN 0.6 AND 0.8 FROM c), 'most contacts live in a household');

SELECT * FROM finish();
ROLLBACK;
