-- value_sets: the bundled code lists exist, are well formed, and hold the codes Synthea writes.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(49);

-- Every list the templates and docs name exists and is not empty.
SELECT ok((SELECT count(*) FROM outreach.value_set v WHERE v.name = n) > 0, format('value set %s is present', n))
FROM unnest(ARRAY['mammography', 'bilateral mastectomy', 'colonoscopy', 'sigmoidoscopy', 'fecal occult blood test',
                  'stool dna test', 'ct colonography', 'colorectal cancer', 'total colectomy', 'cervical cytology',
                  'hpv test', 'hysterectomy', 'hba1c', 'diabetes', 'systolic blood pressure',
                  'diastolic blood pressure', 'essential hypertension', 'pregnancy', 'esrd', 'dialysis', 'hospice',
                  'influenza vaccine', 'dtap vaccine', 'ipv vaccine', 'mmr vaccine', 'hib vaccine',
                  'hepatitis b vaccine', 'varicella vaccine', 'pneumococcal conjugate vaccine',
                  'hepatitis a vaccine', 'rotavirus vaccine']) n;

-- Codes are well formed for their system (a typo would silently match nothing).
SELECT is_empty($$
  SELECT name, code_system, code FROM outreach.value_set
  WHERE NOT CASE code_system WHEN 'SNOMED' THEN code ~ '^[1-9][0-9]{5,17}$'
                             WHEN 'LOINC'  THEN code ~ '^[0-9]{1,7}-[0-9]$'
                             WHEN 'CVX'    THEN code ~ '^[0-9]{2,3}$'
                             ELSE false END
     OR display IS NULL OR display = ''$$,
  'every code is well formed for SNOMED, LOINC or CVX and has a display');

-- LOINC check digit (mod 10), so a mistyped LOINC code is caught.
SELECT is_empty($$
  SELECT code FROM outreach.value_set v, LATERAL (
    SELECT split_part(v.code, '-', 1) AS body, split_part(v.code, '-', 2)::int AS check_digit) p,
  LATERAL (
    SELECT sum(d) % 10 AS s FROM (
      SELECT CASE WHEN (length(p.body) - i) % 2 = 0
                  THEN (substr(p.body, i, 1)::int * 2) / 10 + (substr(p.body, i, 1)::int * 2) % 10
                  ELSE substr(p.body, i, 1)::int END AS d
      FROM generate_series(1, length(p.body)) i) x) m
  WHERE v.code_system = 'LOINC' AND (10 - m.s) % 10 <> p.check_digit$$,
  'every LOINC code has a valid check digit');

-- The codes Synthea writes land in the right list.
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '71651007'$$, ARRAY['mammography'], 'Synthea mammography 71651007');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '73761001'$$, ARRAY['colonoscopy'], 'Synthea colonoscopy 73761001');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '57905-2'$$, ARRAY['fecal occult blood test'], 'Synthea FIT 57905-2');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '90226004'$$, ARRAY['cervical cytology'], 'Synthea cervical cytology 90226004');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '4548-4'$$, ARRAY['hba1c'], 'Synthea HbA1c 4548-4');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code IN ('8480-6', '8462-4')$$,
              ARRAY['systolic blood pressure', 'diastolic blood pressure'], 'Synthea blood pressure 8480-6 / 8462-4');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '140'$$, ARRAY['influenza vaccine'], 'Synthea influenza CVX 140');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '59621000'$$, ARRAY['essential hypertension'], 'Synthea hypertension 59621000');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '44054006'$$, ARRAY['diabetes'], 'Synthea diabetes 44054006');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '385763009'$$, ARRAY['hospice'], 'Synthea hospice 385763009');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '72892002'$$, ARRAY['pregnancy'], 'Synthea normal pregnancy 72892002');
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '109838007'$$, ARRAY['colorectal cancer'], 'Synthea colon cancer 109838007');
-- Combination vaccines count for each antigen they carry; prediabetes is not diabetes.
SELECT set_eq($$SELECT name FROM outreach.value_set WHERE code = '146' AND code_system = 'CVX'$$,
              ARRAY['dtap vaccine', 'ipv vaccine', 'hib vaccine', 'hepatitis b vaccine'], 'DTaP-IPV-Hib-HepB counts for four antigens');
SELECT is_empty($$SELECT 1 FROM outreach.value_set WHERE code = '15777000'$$, 'prediabetes (15777000) is in no list');
-- Re-running the inserts (as an extension update would) adds nothing.
SELECT lives_ok($$INSERT INTO outreach.value_set (name, code_system, code, display)
                  VALUES ('hba1c', 'LOINC', '4548-4', 'again') ON CONFLICT ON CONSTRAINT value_set_code_unique DO NOTHING$$,
                'a repeated code is absorbed by the unique constraint');
SELECT is((SELECT codes FROM outreach.value_set_summary WHERE name = 'hba1c'), 4::bigint, 'value_set_summary counts the codes of a list');

SELECT * FROM finish();
ROLLBACK;
