-- templates_time_zones: a date-only source value is a calendar date in the patient's time zone.
-- For every care-gap template, patients in a zone west of UTC (America/New_York) and east of
-- it (Asia/Tokyo) have a record dated exactly on a window boundary (it counts) and one day
-- outside it (it does not), stored as the importers store a plain date; the template is
-- evaluated in the patients' zone.  Under the 0.2 rule (plain date = midnight UTC) the
-- New York cases fail: 1 April at midnight UTC is 31 March in New York.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(44);

-- The stored value of a plain date: midnight in the zone, the same for FHIR and Synthea CSV.
SELECT is(outreach._fhir_ts('2024-04-01', 'America/New_York'), '2024-04-01 00:00:00-04'::timestamptz,
          'FHIR: a plain date is midnight in the patient''s zone (west of UTC)');
SELECT is(outreach._fhir_ts('2024-04-01', 'Asia/Tokyo'), '2024-04-01 00:00:00+09'::timestamptz,
          'FHIR: a plain date is midnight in the patient''s zone (east of UTC)');
SELECT is(outreach._synthea_ts('2024-04-01', 'America/New_York'), outreach._fhir_ts('2024-04-01', 'America/New_York'),
          'Synthea 2.x CSV and FHIR store a plain date alike');
SELECT is(outreach._fhir_ts('2024-04-01T21:19:51-04:00', 'Asia/Tokyo'), '2024-04-02 01:19:51+00'::timestamptz,
          'a dateTime with an offset is that instant, whatever the patient''s zone');
SELECT is(outreach._synthea_ts('2024-04-01T01:19:51Z', 'America/New_York'), '2024-04-01 01:19:51+00'::timestamptz,
          'a Synthea 3.x timestamp (Z) is that instant');
SELECT is(outreach._fhir_date('2014-05-07T21:19:51-04:00'), '2014-05-07'::date,
          'a date column takes the local date a dateTime was written in (8 May in UTC, 7 May where it happened)');
SELECT is(outreach._fhir_ts('2024-02', 'UTC'), '2024-02-01 00:00:00+00'::timestamptz, 'a partial date is its first day');

-- Fixture.  d(date, zone) stores a plain date as the importers do.
CREATE FUNCTION pg_temp.d(v text, tz text) RETURNS timestamptz LANGUAGE sql AS $$ SELECT outreach._fhir_ts(v, tz) $$;
CREATE TABLE pg_temp.case_patient (template text, tz text, expect_member boolean, id bigint);

CREATE FUNCTION pg_temp.patient(template text, tz text, member boolean, gender text, birth date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE pid bigint;
BEGIN
  INSERT INTO outreach.contact (first_name, gender, birthdate, time_zone) VALUES (template, gender, birth, tz) RETURNING id INTO pid;
  INSERT INTO pg_temp.case_patient VALUES (template, tz, member, pid);
  RETURN pid;
END $$;
CREATE FUNCTION pg_temp.visit(pid bigint, v text, tz text, cls text DEFAULT 'wellness') RETURNS void LANGUAGE sql AS $$
  INSERT INTO outreach.encounter (patient_id, class, start_at) VALUES (pid, cls, pg_temp.d(v, tz))
$$;
CREATE FUNCTION pg_temp.proc(pid bigint, code text, v text, tz text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO outreach.procedure (patient_id, code, code_system, performed_at) VALUES (pid, code, 'SNOMED', pg_temp.d(v, tz))
$$;
CREATE FUNCTION pg_temp.obs(pid bigint, code text, val numeric, v text, tz text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO outreach.observation (patient_id, code, code_system, value_numeric, effective_at) VALUES (pid, code, 'LOINC', val, pg_temp.d(v, tz))
$$;
CREATE FUNCTION pg_temp.cond(pid bigint, code text, onset date) RETURNS void LANGUAGE sql AS $$
  INSERT INTO outreach.condition (patient_id, code, code_system, onset_date) VALUES (pid, code, 'SNOMED', onset)
$$;
CREATE FUNCTION pg_temp.vax(pid bigint, code text, v text, tz text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO outreach.immunization (patient_id, code, code_system, administered_at) VALUES (pid, code, 'CVX', pg_temp.d(v, tz))
$$;

DO $$
DECLARE
  tz text;
  p bigint;
  ok boolean;
  today date;
  vaccines text[] := ARRAY['20:4', '10:3', '03:1', '48:3', '08:3', '21:1', '133:4', '83:1', '119:2'];
  v text;
  k int;
  n int := 0;
BEGIN
  FOREACH tz IN ARRAY ARRAY['America/New_York', 'Asia/Tokyo'] LOOP
    FOREACH ok IN ARRAY ARRAY[true, false] LOOP
      -- Breast: a mammography on 1 October two years back counts; on 30 September it does not.
      p := pg_temp.patient('breast_cancer_screening_gap', tz, NOT ok, 'female', '1960-01-01');
      PERFORM pg_temp.visit(p, '2024-06-15', tz);
      PERFORM pg_temp.proc(p, '71651007', CASE WHEN ok THEN '2022-10-01' ELSE '2022-09-30' END, tz);
      -- Colorectal: a colonoscopy on 1 January nine years back counts.
      p := pg_temp.patient('colorectal_cancer_screening_gap', tz, NOT ok, 'male', '1960-01-01');
      PERFORM pg_temp.visit(p, '2024-06-15', tz);
      PERFORM pg_temp.proc(p, '73761001', CASE WHEN ok THEN '2015-01-01' ELSE '2014-12-31' END, tz);
      -- Cervical: a cytology on 1 January two years back counts.
      p := pg_temp.patient('cervical_cancer_screening_gap', tz, NOT ok, 'female', '1990-01-01');
      PERFORM pg_temp.visit(p, '2024-06-15', tz);
      PERFORM pg_temp.proc(p, '90226004', CASE WHEN ok THEN '2022-01-01' ELSE '2021-12-31' END, tz);
      -- HbA1c: a controlled result on 1 January of the year counts as the year's test.
      p := pg_temp.patient('diabetes_hba1c_poor_control', tz, NOT ok, 'male', '1970-01-01');
      PERFORM pg_temp.visit(p, '2024-06-15', tz);
      PERFORM pg_temp.cond(p, '44054006', '2020-01-01');
      PERFORM pg_temp.obs(p, '4548-4', 5.5, CASE WHEN ok THEN '2024-01-01' ELSE '2023-12-31' END, tz);
      -- Blood pressure: a controlled reading on 31 December counts; on 1 January after, not.
      p := pg_temp.patient('uncontrolled_blood_pressure', tz, NOT ok, 'male', '1970-01-01');
      PERFORM pg_temp.visit(p, '2024-06-15', tz);
      PERFORM pg_temp.cond(p, '59621000', '2020-01-01');
      PERFORM pg_temp.obs(p, '8480-6', 120, CASE WHEN ok THEN '2024-12-31' ELSE '2025-01-01' END, tz);
      PERFORM pg_temp.obs(p, '8462-4', 80, CASE WHEN ok THEN '2024-12-31' ELSE '2025-01-01' END, tz);
      -- Childhood: every dose early, the second influenza dose on the second birthday (counts)
      -- or the day after (does not).
      p := pg_temp.patient('childhood_immunization_gap', tz, NOT ok, 'female', '2022-05-10');
      PERFORM pg_temp.visit(p, '2024-06-15', tz);
      FOREACH v IN ARRAY vaccines LOOP
        FOR k IN 1..split_part(v, ':', 2)::int LOOP
          n := n + 1;
          PERFORM pg_temp.vax(p, split_part(v, ':', 1), ('2022-06-01'::date + k * 40 + n % 7)::text, tz);
        END LOOP;
      END LOOP;
      PERFORM pg_temp.vax(p, '140', '2023-01-15', tz);
      PERFORM pg_temp.vax(p, '140', CASE WHEN ok THEN '2024-05-10' ELSE '2024-05-11' END, tz);
      -- Influenza, season 2024: a vaccine on 1 August counts; on 31 July it does not.
      p := pg_temp.patient('influenza_vaccination_gap', tz, NOT ok, 'male', '1980-01-01');
      PERFORM pg_temp.visit(p, '2024-03-01', tz, 'ambulatory');
      PERFORM pg_temp.vax(p, '140', CASE WHEN ok THEN '2024-08-01' ELSE '2024-07-31' END, tz);
      -- ... and on 31 March after counts, on 1 April not.
      p := pg_temp.patient('influenza_vaccination_gap', tz, NOT ok, 'male', '1980-01-01');
      PERFORM pg_temp.visit(p, '2024-03-01', tz, 'ambulatory');
      PERFORM pg_temp.vax(p, '140', CASE WHEN ok THEN '2025-03-31' ELSE '2025-04-01' END, tz);
      -- Rolling templates at 2024-06-01 20:00 UTC: 1 June in New York, already 2 June in Tokyo.
      today := ('2024-06-01 20:00:00+00'::timestamptz AT TIME ZONE tz)::date;
      p := pg_temp.patient('new_diagnosis', tz, ok, 'male', '1970-01-01');
      PERFORM pg_temp.cond(p, '44054006', CASE WHEN ok THEN today - 30 ELSE today - 31 END);
      p := pg_temp.patient('no_recent_visit', tz, NOT ok, 'male', '1970-01-01');
      PERFORM pg_temp.visit(p, (CASE WHEN ok THEN today - interval '2 years' + interval '1 day'
                                     ELSE today - interval '2 years' - interval '1 day' END)::date::text, tz);
    END LOOP;
  END LOOP;
END $$;

SET LOCAL outreach.now = '2024-06-01 20:00:00+00';
SELECT set_eq(
  format($$SELECT id FROM pg_temp.case_patient WHERE template = %L AND tz = %L
           AND id = ANY (ARRAY(SELECT outreach.evaluate(outreach.template_query(%L, %L::jsonb), %L)))$$,
         t.template, z.tz, t.template, t.params, z.tz),
  format($$SELECT id FROM pg_temp.case_patient WHERE template = %L AND tz = %L AND expect_member$$, t.template, z.tz),
  format('%s in %s: the record on the window boundary counts, the one a day outside does not', t.template, z.tz))
FROM (VALUES ('breast_cancer_screening_gap', '{"measurement_year": 2024}'),
             ('colorectal_cancer_screening_gap', '{"measurement_year": 2024}'),
             ('cervical_cancer_screening_gap', '{"measurement_year": 2024}'),
             ('diabetes_hba1c_poor_control', '{"measurement_year": 2024}'),
             ('uncontrolled_blood_pressure', '{"measurement_year": 2024}'),
             ('childhood_immunization_gap', '{"measurement_year": 2024}'),
             ('influenza_vaccination_gap', '{"season": 2024}'),
             ('new_diagnosis', '{"value_set": "diabetes", "days": 30}'),
             ('no_recent_visit', '{"years": 2}')) t(template, params)
CROSS JOIN (VALUES ('America/New_York'), ('Asia/Tokyo')) z(tz);

-- Each case really is on the boundary: its member and non-member differ.
SELECT ok((SELECT count(*) FILTER (WHERE expect_member) > 0 AND count(*) FILTER (WHERE NOT expect_member) > 0
           FROM pg_temp.case_patient WHERE template = t AND tz = z), format('%s in %s has a member and a non-member case', t, z))
FROM unnest(ARRAY['breast_cancer_screening_gap', 'colorectal_cancer_screening_gap', 'cervical_cancer_screening_gap',
                  'diabetes_hba1c_poor_control', 'uncontrolled_blood_pressure', 'childhood_immunization_gap',
                  'influenza_vaccination_gap', 'new_diagnosis', 'no_recent_visit']) t,
     unnest(ARRAY['America/New_York', 'Asia/Tokyo']) z;

-- The 0.2 rule, for contrast: the same plain date stored as midnight UTC falls on the day
-- before in New York, so the screened patient would look unscreened.
SELECT is(('2022-10-01'::date::timestamp AT TIME ZONE 'UTC' AT TIME ZONE 'America/New_York')::date, '2022-09-30'::date,
          'midnight UTC of 1 October is still 30 September in New York (why the rule is needed)');
SELECT * FROM finish();
ROLLBACK;
