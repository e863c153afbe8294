-- measures: measure mode of the care-gap templates (outreach.measure_report, measure_members).
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(18);

-- Hypertensive adults with a visit in 2024, blood pressure recorded in New York.
CREATE FUNCTION pg_temp.bp_patient(name text, died timestamptz DEFAULT NULL) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE pid bigint;
BEGIN
  INSERT INTO outreach.contact (first_name, gender, birthdate, time_zone, deceased_at)
  VALUES (name, 'male', '1960-01-01', 'America/New_York', died) RETURNING id INTO pid;
  INSERT INTO outreach.condition (patient_id, code, code_system, onset_date) VALUES (pid, '59621000', 'SNOMED', '2015-01-01');
  INSERT INTO outreach.encounter (patient_id, class, start_at) VALUES (pid, 'ambulatory', '2024-03-01 10:00-05');
  RETURN pid;
END $$;
CREATE FUNCTION pg_temp.bp(pid bigint, at timestamptz, sys numeric, dia numeric) RETURNS void LANGUAGE sql AS $$
  INSERT INTO outreach.observation (patient_id, code, code_system, value_numeric, effective_at)
  VALUES (pid, '8480-6', 'LOINC', sys, at), (pid, '8462-4', 'LOINC', dia, at)
$$;
CREATE TABLE pg_temp.p (name text PRIMARY KEY, id bigint);
INSERT INTO pg_temp.p VALUES
  ('lowest of the last day', pg_temp.bp_patient('lowest of the last day')),
  ('last day high', pg_temp.bp_patient('last day high')),
  ('died after the year', pg_temp.bp_patient('died after the year', '2025-02-01 00:00+00')),
  ('died in the year', pg_temp.bp_patient('died in the year', '2024-11-01 00:00+00')),
  ('dialysis', pg_temp.bp_patient('dialysis')),
  ('no reading', pg_temp.bp_patient('no reading'));
-- Two readings on the most recent day (a day in New York): the lowest of each counts, 130/85.
SELECT pg_temp.bp(id, '2024-10-01 09:00-04', 130, 85) FROM pg_temp.p WHERE name = 'lowest of the last day';
SELECT pg_temp.bp(id, '2024-10-01 23:30-04', 150, 95) FROM pg_temp.p WHERE name = 'lowest of the last day';
-- Controlled earlier, uncontrolled on the last day.
SELECT pg_temp.bp(id, '2024-05-01 09:00-04', 120, 70) FROM pg_temp.p WHERE name = 'last day high';
SELECT pg_temp.bp(id, '2024-09-01 09:00-04', 150, 70) FROM pg_temp.p WHERE name = 'last day high';
SELECT pg_temp.bp(id, '2024-06-01 09:00-04', 120, 70) FROM pg_temp.p WHERE name IN ('died after the year', 'died in the year', 'dialysis');
INSERT INTO outreach.procedure (patient_id, code, code_system, performed_at)
SELECT id, '302497006', 'SNOMED', '2024-02-01 10:00-05' FROM pg_temp.p WHERE name = 'dialysis';

SELECT results_eq(
  $$SELECT denominator, exclusions, numerator, performance_denominator, rate, inverse
    FROM outreach.measure_report('uncontrolled_blood_pressure', '[2024-01-01,2025-01-01)', '{}', 'America/New_York')$$,
  $$VALUES (5::bigint, 1::bigint, 2::bigint, 4::bigint, 0.5000::numeric, false)$$,
  'blood pressure: denominator alive at the year''s end, dialysis excluded, 2 of 4 controlled');
SELECT set_eq(
  $$SELECT p.name FROM outreach.measure_members('uncontrolled_blood_pressure', '[2024-01-01,2025-01-01)', '{}', 'America/New_York') m
    JOIN pg_temp.p p ON p.id = m.contact_id WHERE m.in_numerator$$,
  ARRAY['lowest of the last day', 'died after the year'],
  'controlled: the lowest systolic and diastolic of the most recent day, also for a patient who died after the period');
SELECT set_eq(
  $$SELECT p.name FROM outreach.measure_members('uncontrolled_blood_pressure', '[2024-01-01,2025-01-01)', '{}', 'America/New_York') m
    JOIN pg_temp.p p ON p.id = m.contact_id WHERE m.gap$$,
  ARRAY['last day high', 'no reading'],
  'the gap: uncontrolled on the last day, or never measured');
SELECT ok(NOT EXISTS (SELECT 1 FROM outreach.measure_members('uncontrolled_blood_pressure', '[2024-01-01,2025-01-01)', '{}', 'America/New_York') m
                      JOIN pg_temp.p p ON p.id = m.contact_id WHERE p.name = 'died in the year'),
          'a patient who died before the period''s end is not in the denominator');
SELECT ok((SELECT excluded FROM outreach.measure_members('uncontrolled_blood_pressure', '[2024-01-01,2025-01-01)', '{}', 'America/New_York') m
           JOIN pg_temp.p p ON p.id = m.contact_id WHERE p.name = 'dialysis'), 'dialysis is reported as an exclusion');
-- The outreach segment leaves every deceased contact out; measure mode keeps those alive at the end.
SELECT ok((SELECT id FROM pg_temp.p WHERE name = 'died after the year') <> ALL (ARRAY(
             SELECT outreach.evaluate(outreach.template_query('uncontrolled_blood_pressure', '{"measurement_year": 2024}'), 'America/New_York'))),
          'the outreach segment does not message a deceased patient, even one who counts in the measure');
-- The day is the report's time zone's: in Tokyo 23:30 in New York is already the next day.
SELECT is((SELECT numerator FROM outreach.measure_report('uncontrolled_blood_pressure', '[2024-01-01,2025-01-01)', '{}', 'Asia/Tokyo')),
          1::bigint, 'in Tokyo the two readings fall on different days: the last day has only the high one (150/95)');

-- Other templates, one patient each: the influenza season and an inverse measure.
INSERT INTO outreach.contact (id, first_name, birthdate, time_zone) VALUES (910001, 'flu yes', '1980-01-01', 'UTC'), (910002, 'flu no', '1980-01-01', 'UTC');
INSERT INTO outreach.encounter (patient_id, start_at) VALUES (910001, '2024-03-01'), (910002, '2024-03-01');
INSERT INTO outreach.immunization (patient_id, code, code_system, administered_at) VALUES (910001, '140', 'CVX', '2024-10-01');
SELECT results_eq(
  $$SELECT contact_id, in_numerator FROM outreach.measure_members('influenza_vaccination_gap', '[2024-08-01,2025-04-01)')
    WHERE contact_id IN (910001, 910002) ORDER BY 1$$,
  $$VALUES (910001::bigint, true), (910002::bigint, false)$$, 'influenza: a season from 1 August to 31 March');
INSERT INTO outreach.contact (id, first_name, birthdate) VALUES (920001, 'a1c', '1970-01-01');
INSERT INTO outreach.condition (patient_id, code, code_system, onset_date) VALUES (920001, '44054006', 'SNOMED', '2010-01-01');
INSERT INTO outreach.encounter (patient_id, class, start_at) VALUES (920001, 'wellness', '2024-03-01');
SELECT results_eq(
  $$SELECT denominator, numerator, inverse FROM outreach.measure_report('diabetes_hba1c_poor_control', '[2024-01-01,2025-01-01)')$$,
  $$VALUES (1::bigint, 1::bigint, true)$$, 'HbA1c poor control is an inverse measure: no test counts as poor control');

-- Errors.
SELECT throws_ok($$SELECT * FROM outreach.measure_report('uncontrolled_blood_pressure', '[2024-01-01,2024-07-01)')$$, '22023',
                 'measurement period [2024-01-01,2024-07-01) does not fit template "uncontrolled_blood_pressure"',
                 'a period that is not the measure''s calendar year is refused');
SELECT throws_ok($$SELECT * FROM outreach.measure_report('influenza_vaccination_gap', '[2024-01-01,2025-01-01)')$$, '22023', NULL,
                 'an influenza report needs a season');
SELECT throws_ok($$SELECT * FROM outreach.measure_report('new_diagnosis', '[2024-01-01,2025-01-01)')$$, '42704',
                 'template "new_diagnosis" has no measure definition', 'a template without a measure is an error');
SELECT throws_ok($$SELECT * FROM outreach.measure_report('uncontrolled_blood_pressure', '[2024-01-01,2025-01-01)', '{"measurement_year": 2023}')$$,
                 '22023', NULL, 'a measurement_year that disagrees with the period is refused');
SELECT throws_ok($$SELECT * FROM outreach.measure_report('uncontrolled_blood_pressure', NULL)$$, '22023', 'a measurement period is required',
                 'the period is required');

-- Privileges: analysts get the counts, only admins the member lists.
SELECT ok(has_function_privilege('outreach_analyst', 'outreach.measure_report(text, daterange, jsonb, text)', 'EXECUTE'),
          'analysts may run measure reports (aggregates)');
SELECT ok(NOT has_function_privilege('outreach_analyst', 'outreach.measure_members(text, daterange, jsonb, text)', 'EXECUTE')
          AND has_function_privilege('outreach_admin', 'outreach.measure_members(text, daterange, jsonb, text)', 'EXECUTE'),
          'member lists are for admins only');
SELECT ok(NOT has_function_privilege('outreach_marketer', 'outreach.measure_report(text, daterange, jsonb, text)', 'EXECUTE'),
          'marketers do not run measure reports');
SELECT ok(NOT has_table_privilege('outreach_admin', 'outreach.measure_definition', 'UPDATE')
          AND NOT has_table_privilege('outreach_admin', 'outreach.measure_definition', 'INSERT'),
          'measure definitions (run with the owner''s rights) cannot be changed by admins');
SELECT * FROM finish();
ROLLBACK;
