-- templates: every bundled segment template on hand-built patients at its boundaries (age
-- edges, window edges, exclusions), parameter checking, and segments made from templates.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SET LOCAL timezone = 'UTC';
SELECT plan(43);

-- Builders.  Patients are named by external_id; results are compared by name, restricted to
-- the prefix of the template under test.
CREATE FUNCTION pg_temp.pat(ext text, gender text, born date, status text DEFAULT 'active',
                            deceased timestamptz DEFAULT NULL, ctype text DEFAULT 'patient') RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO outreach.contact (external_id, gender, birthdate, status, deceased_at, contact_type)
  VALUES (ext, gender, born, status, deceased, ctype) RETURNING id $$;
CREATE FUNCTION pg_temp.id(ext text) RETURNS bigint LANGUAGE sql AS $$
  SELECT id FROM outreach.contact WHERE external_id = ext $$;
CREATE FUNCTION pg_temp.enc(ext text, class text, s timestamptz, e timestamptz DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$ INSERT INTO outreach.encounter (patient_id, class, start_at, end_at) VALUES (pg_temp.id(ext), class, s, e) $$;
CREATE FUNCTION pg_temp.proc(ext text, code text, at timestamptz) RETURNS void
LANGUAGE sql AS $$ INSERT INTO outreach.procedure (patient_id, code, performed_at) VALUES (pg_temp.id(ext), code, at) $$;
CREATE FUNCTION pg_temp.obs(ext text, code text, at timestamptz, v numeric DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$ INSERT INTO outreach.observation (patient_id, code, effective_at, value_numeric) VALUES (pg_temp.id(ext), code, at, v) $$;
CREATE FUNCTION pg_temp.cond(ext text, code text, onset date, abated date DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$ INSERT INTO outreach.condition (patient_id, code, onset_date, abatement_date, clinical_status)
                   VALUES (pg_temp.id(ext), code, onset, abated, CASE WHEN abated IS NULL THEN 'active' ELSE 'resolved' END) $$;
CREATE FUNCTION pg_temp.imm(ext text, code text, at timestamptz, n int DEFAULT 1) RETURNS void
LANGUAGE sql AS $$ INSERT INTO outreach.immunization (patient_id, code, administered_at)
                   SELECT pg_temp.id(ext), code, at + (i || ' days')::interval FROM generate_series(0, n - 1) i $$;
CREATE FUNCTION pg_temp.members(template text, params jsonb, prefix text) RETURNS SETOF text
LANGUAGE sql AS $$
  SELECT c.external_id FROM outreach.contact c
  WHERE c.id IN (SELECT outreach.evaluate(outreach.template_query(template, params), 'UTC'))
    AND c.external_id LIKE prefix || '%' $$;

-- ---------------------------------------------------------------------------------------
-- Breast cancer screening gap, measurement year 2022: women 52-74 at 31 Dec 2022
-- (born 1948-01-01 .. 1970-12-31), visit in 2022, no mammography 2020-10-01 .. 2022-12-31.
SELECT pg_temp.pat(x, g, b::date) FROM (VALUES
  ('bcs_in', 'female', '1960-05-05'), ('bcs_age52', 'female', '1970-12-31'), ('bcs_age51', 'female', '1971-01-01'),
  ('bcs_age74', 'female', '1948-01-01'), ('bcs_age75', 'female', '1947-12-31'), ('bcs_male', 'male', '1960-01-01'),
  ('bcs_novisit', 'female', '1960-01-01'), ('bcs_inpatient', 'female', '1960-01-01'),
  ('bcs_mammo_edge', 'female', '1960-01-01'), ('bcs_mammo_before', 'female', '1960-01-01'),
  ('bcs_mammo_obs', 'female', '1960-01-01'), ('bcs_mammo_after', 'female', '1960-01-01'),
  ('bcs_mastectomy', 'female', '1960-01-01'), ('bcs_mastectomy_hx', 'female', '1960-01-01'),
  ('bcs_hospice', 'female', '1960-01-01'), ('bcs_hospice_2021', 'female', '1960-01-01')) v(x, g, b);
SELECT pg_temp.pat('bcs_deceased', 'female', '1960-01-01', 'active', '2022-11-01');
SELECT pg_temp.pat('bcs_inactive', 'female', '1960-01-01', 'inactive');
SELECT pg_temp.enc(external_id, 'wellness', '2022-03-01') FROM outreach.contact
 WHERE external_id LIKE 'bcs%' AND external_id NOT IN ('bcs_novisit', 'bcs_inpatient');
SELECT pg_temp.enc('bcs_novisit', 'wellness', '2021-12-31 23:00');
SELECT pg_temp.enc('bcs_inpatient', 'inpatient', '2022-05-01');
SELECT pg_temp.proc('bcs_mammo_edge', '71651007', '2020-10-01 00:00');
SELECT pg_temp.proc('bcs_mammo_before', '71651007', '2020-09-30 23:59');
SELECT pg_temp.obs('bcs_mammo_obs', '24606-6', '2021-06-01');
SELECT pg_temp.proc('bcs_mammo_after', '71651007', '2023-01-01 00:00');
SELECT pg_temp.proc('bcs_mastectomy', '456903003', '2010-01-01');
SELECT pg_temp.cond('bcs_mastectomy_hx', '429009003', '2015-01-01');
SELECT pg_temp.enc('bcs_hospice', 'hospice', '2022-06-01');
SELECT pg_temp.enc('bcs_hospice_2021', 'hospice', '2021-01-01', '2021-02-01');

SELECT set_eq($$SELECT pg_temp.members('breast_cancer_screening_gap', '{"measurement_year": 2022}', 'bcs')$$,
  ARRAY['bcs_in', 'bcs_age52', 'bcs_age74', 'bcs_mammo_before', 'bcs_mammo_after', 'bcs_hospice_2021'],
  'breast: age edges 52/74 at year end, 27-month window starts 1 Oct two years back, mastectomy, hospice, visit class, deceased and inactive');
SELECT set_eq($$SELECT pg_temp.members('breast_cancer_screening_gap', '{"measurement_year": 2022, "age_min": 50, "age_max": 51}', 'bcs')$$,
  ARRAY['bcs_age51'], 'breast: the age band is a parameter');
SELECT set_eq($$SELECT pg_temp.members('breast_cancer_screening_gap', '{"measurement_year": 2023}', 'bcs_mammo')$$,
  ARRAY[]::text[], 'breast: in 2023 nobody has a visit, so nobody is in the denominator');

-- ---------------------------------------------------------------------------------------
-- Colorectal cancer screening gap, 2022: 46-75 at year end (born 1947 .. 1976).
SELECT pg_temp.pat(x, 'male', b::date) FROM (VALUES
  ('crc_in', '1960-01-01'), ('crc_age46', '1976-12-31'), ('crc_age45', '1977-01-01'), ('crc_age75', '1947-01-01'),
  ('crc_age76', '1946-12-31'), ('crc_colo_edge', '1960-01-01'), ('crc_colo_old', '1960-01-01'),
  ('crc_fit', '1960-01-01'), ('crc_fit_2021', '1960-01-01'), ('crc_dna', '1960-01-01'), ('crc_dna_old', '1960-01-01'),
  ('crc_sig', '1960-01-01'), ('crc_sig_old', '1960-01-01'), ('crc_cancer', '1960-01-01'),
  ('crc_colectomy', '1960-01-01'), ('crc_hospice', '1960-01-01')) v(x, b);
SELECT pg_temp.enc(external_id, 'ambulatory', '2022-07-01') FROM outreach.contact WHERE external_id LIKE 'crc%';
SELECT pg_temp.proc('crc_colo_edge', '73761001', '2013-01-01 00:00');
SELECT pg_temp.proc('crc_colo_old', '73761001', '2012-12-31 23:59');
SELECT pg_temp.obs('crc_fit', '57905-2', '2022-12-31 12:00', 0);
SELECT pg_temp.obs('crc_fit_2021', '57905-2', '2021-12-31 12:00', 0);
SELECT pg_temp.obs('crc_dna', '77353-1', '2020-01-01 00:00');
SELECT pg_temp.obs('crc_dna_old', '77353-1', '2019-12-31 23:00');
SELECT pg_temp.proc('crc_sig', '44441009', '2018-01-01 00:00');
SELECT pg_temp.proc('crc_sig_old', '44441009', '2017-12-31 23:00');
SELECT pg_temp.cond('crc_cancer', '109838007', '2019-05-01', '2020-01-01');
SELECT pg_temp.proc('crc_colectomy', '26390003', '2005-01-01');
SELECT pg_temp.proc('crc_hospice', '385763009', '2022-05-01');

SELECT set_eq($$SELECT pg_temp.members('colorectal_cancer_screening_gap', '{"measurement_year": 2022}', 'crc')$$,
  ARRAY['crc_in', 'crc_age46', 'crc_age75', 'crc_colo_old', 'crc_fit_2021', 'crc_dna_old', 'crc_sig_old'],
  'colorectal: age edges 46/75, colonoscopy 10 years, FIT this year, stool DNA 3 years, sigmoidoscopy 5 years, cancer (even resolved), colectomy, hospice');

-- ---------------------------------------------------------------------------------------
-- Cervical cancer screening gap, 2022: women 24-64 at year end (born 1958 .. 1998).
SELECT pg_temp.pat(x, g, b::date) FROM (VALUES
  ('ccs_in', 'female', '1980-01-01'), ('ccs_age24', 'female', '1998-12-31'), ('ccs_age23', 'female', '1999-01-01'),
  ('ccs_age64', 'female', '1958-01-01'), ('ccs_age65', 'female', '1957-12-31'), ('ccs_male', 'male', '1980-01-01'),
  ('ccs_cyto', 'female', '1980-01-01'), ('ccs_cyto_old', 'female', '1980-01-01'), ('ccs_cyto_obs', 'female', '1980-01-01'),
  ('ccs_hpv30', 'female', '1992-12-31'), ('ccs_hpv29', 'female', '1993-01-01'), ('ccs_hpv_old', 'female', '1980-01-01'),
  ('ccs_hpv_window', 'female', '1980-01-01'), ('ccs_hpv_day_before_30', 'female', '1992-12-31'),
  ('ccs_hyst', 'female', '1980-01-01'), ('ccs_no_cervix', 'female', '1980-01-01')) v(x, g, b);
SELECT pg_temp.enc(external_id, 'outpatient', '2022-02-01') FROM outreach.contact WHERE external_id LIKE 'ccs%';
SELECT pg_temp.proc('ccs_cyto', '90226004', '2020-01-01 00:00');
SELECT pg_temp.proc('ccs_cyto_old', '90226004', '2019-12-31 23:59');
SELECT pg_temp.obs('ccs_cyto_obs', '10524-7', '2021-03-03');
SELECT pg_temp.obs('ccs_hpv30', '30167-1', '2022-12-31 00:00');             -- on her 30th birthday
SELECT pg_temp.obs('ccs_hpv_day_before_30', '30167-1', '2022-12-30 23:59'); -- aged 29 at the test
SELECT pg_temp.obs('ccs_hpv_window', '30167-1', '2018-01-01 00:00');
SELECT pg_temp.obs('ccs_hpv29', '30167-1', '2021-01-01');
SELECT pg_temp.obs('ccs_hpv_old', '30167-1', '2017-12-31 23:00');
SELECT pg_temp.proc('ccs_hyst', '116140006', '2010-01-01');
SELECT pg_temp.cond('ccs_no_cervix', '723171001', '2012-01-01');

SELECT set_eq($$SELECT pg_temp.members('cervical_cancer_screening_gap', '{"measurement_year": 2022}', 'ccs')$$,
  ARRAY['ccs_in', 'ccs_age24', 'ccs_age64', 'ccs_cyto_old', 'ccs_hpv29', 'ccs_hpv_old', 'ccs_hpv_day_before_30'],
  'cervical: age edges 24/64, cytology 3 years (procedure or observation), HPV 5 years only when 30 or older at the test, hysterectomy and absent cervix');

-- ---------------------------------------------------------------------------------------
-- Diabetes with HbA1c > 9 or missing, 2022: 18-75 (born 1947 .. 2004), diabetes active in 2022.
SELECT pg_temp.pat(x, 'female', b::date) FROM (VALUES
  ('dm_missing', '1960-01-01'), ('dm_high', '1960-01-01'), ('dm_at9', '1960-01-01'), ('dm_latest_good', '1960-01-01'),
  ('dm_latest_bad', '1960-01-01'), ('dm_prev_year', '1960-01-01'), ('dm_no_diabetes', '1960-01-01'),
  ('dm_resolved', '1960-01-01'), ('dm_resolved_2022', '1960-01-01'), ('dm_onset_2023', '1960-01-01'),
  ('dm_age17', '2005-01-01'), ('dm_age18', '2004-12-31'), ('dm_novisit', '1960-01-01'),
  ('dm_latest_no_result', '1960-01-01'), ('dm_old_no_result', '1960-01-01')) v(x, b);
SELECT pg_temp.enc(external_id, 'wellness', '2022-04-01') FROM outreach.contact
 WHERE external_id LIKE 'dm%' AND external_id <> 'dm_novisit';
SELECT pg_temp.enc('dm_novisit', 'emergency', '2022-04-01');
SELECT pg_temp.cond(external_id, '44054006', '2015-01-01') FROM outreach.contact
 WHERE external_id LIKE 'dm%' AND external_id NOT IN ('dm_no_diabetes', 'dm_resolved', 'dm_resolved_2022', 'dm_onset_2023');
SELECT pg_temp.cond('dm_resolved', '44054006', '2015-01-01', '2021-12-31');
SELECT pg_temp.cond('dm_resolved_2022', '44054006', '2015-01-01', '2022-01-01');
SELECT pg_temp.cond('dm_onset_2023', '44054006', '2023-01-01');
SELECT pg_temp.obs('dm_high', '4548-4', '2022-06-01', 9.5);
SELECT pg_temp.obs('dm_at9', '4548-4', '2022-06-01', 9.0);
SELECT pg_temp.obs('dm_latest_good', '4548-4', '2022-02-01', 10), pg_temp.obs('dm_latest_good', '4548-4', '2022-08-01', 7);
SELECT pg_temp.obs('dm_latest_bad', '4548-4', '2022-02-01', 7), pg_temp.obs('dm_latest_bad', '4548-4', '2022-08-01', 10);
SELECT pg_temp.obs('dm_prev_year', '4548-4', '2021-12-31 23:00', 6);
-- the most recent test without a result is poor control; an earlier one without a result is not
SELECT pg_temp.obs('dm_latest_no_result', '4548-4', '2022-02-01', 7), pg_temp.obs('dm_latest_no_result', '4548-4', '2022-08-01');
SELECT pg_temp.obs('dm_old_no_result', '4548-4', '2022-02-01'), pg_temp.obs('dm_old_no_result', '4548-4', '2022-08-01', 7);
SELECT pg_temp.obs('dm_no_diabetes', '4548-4', '2022-06-01', 12);
SELECT pg_temp.obs(external_id, '4548-4', '2022-06-01', 6) FROM outreach.contact
 WHERE external_id IN ('dm_resolved', 'dm_onset_2023', 'dm_age17', 'dm_age18', 'dm_novisit');

SELECT set_eq($$SELECT pg_temp.members('diabetes_hba1c_poor_control', '{"measurement_year": 2022}', 'dm')$$,
  ARRAY['dm_missing', 'dm_high', 'dm_latest_bad', 'dm_prev_year', 'dm_resolved_2022', 'dm_latest_no_result'],
  'diabetes: most recent HbA1c of the year > 9 or none, diabetes overlapping the year, age 18 edge, office-type visit');
SELECT set_eq($$SELECT pg_temp.members('diabetes_hba1c_poor_control', '{"measurement_year": 2022, "threshold": 8.5}', 'dm_at9')$$,
  ARRAY['dm_at9'], 'diabetes: the threshold is a parameter (9.0 > 8.5)');
SELECT set_eq($$SELECT pg_temp.members('diabetes_hba1c_poor_control', '{"measurement_year": 2022, "age_max": 17, "age_min": 17}', 'dm')$$,
  ARRAY[]::text[], 'diabetes: the 17-year-old has a good HbA1c, so even in her own age band she has no gap');

-- ---------------------------------------------------------------------------------------
-- Uncontrolled blood pressure, 2022: 18-85, essential hypertension before 1 July 2022.
SELECT pg_temp.pat(x, 'male', '1960-01-01') FROM unnest(ARRAY[
  'bp_high', 'bp_ok', 'bp_140', 'bp_139_89', 'bp_dia90', 'bp_none', 'bp_latest_ok', 'bp_onset_jul1', 'bp_onset_jun30',
  'bp_pregnant', 'bp_esrd', 'bp_dialysis', 'bp_no_htn']) x;
SELECT pg_temp.pat('bp_age86', 'male', '1936-12-31');
SELECT pg_temp.enc(external_id, 'ambulatory', '2022-03-01') FROM outreach.contact WHERE external_id LIKE 'bp%';
SELECT pg_temp.cond(external_id, '59621000', '2020-01-01') FROM outreach.contact
 WHERE external_id LIKE 'bp%' AND external_id NOT IN ('bp_onset_jul1', 'bp_onset_jun30', 'bp_no_htn');
SELECT pg_temp.cond('bp_onset_jul1', '59621000', '2022-07-01');
SELECT pg_temp.cond('bp_onset_jun30', '59621000', '2022-06-30');
CREATE FUNCTION pg_temp.bp(ext text, at timestamptz, sys numeric, dia numeric) RETURNS void LANGUAGE sql AS $$
  SELECT pg_temp.obs(ext, '8480-6', at, sys); SELECT pg_temp.obs(ext, '8462-4', at, dia) $$;
SELECT pg_temp.bp(x, '2022-05-01', s, d) FROM (VALUES
  ('bp_high', 150, 80), ('bp_ok', 130, 80), ('bp_140', 140, 80), ('bp_139_89', 139, 89), ('bp_dia90', 120, 90),
  ('bp_onset_jul1', 150, 95), ('bp_onset_jun30', 150, 95), ('bp_pregnant', 150, 95), ('bp_esrd', 150, 95),
  ('bp_dialysis', 150, 95), ('bp_no_htn', 150, 95), ('bp_age86', 150, 95)) v(x, s, d);
SELECT pg_temp.bp('bp_latest_ok', '2022-03-01', 150, 95), pg_temp.bp('bp_latest_ok', '2022-09-01', 120, 70);
SELECT pg_temp.bp('bp_none', '2021-12-01', 120, 70);
SELECT pg_temp.cond('bp_pregnant', '72892002', '2022-02-01', '2022-10-01');
SELECT pg_temp.cond('bp_esrd', '46177005', '2019-01-01');
SELECT pg_temp.proc('bp_dialysis', '302497006', '2021-01-01');

SELECT set_eq($$SELECT pg_temp.members('uncontrolled_blood_pressure', '{"measurement_year": 2022}', 'bp')$$,
  ARRAY['bp_high', 'bp_140', 'bp_dia90', 'bp_none', 'bp_onset_jun30'],
  'blood pressure: >= 140 or >= 90 on the latest reading of the year, none in the year, diagnosis before 1 July, pregnancy, ESRD, dialysis, age 85 edge');
SELECT set_eq($$SELECT pg_temp.members('uncontrolled_blood_pressure', '{"measurement_year": 2022, "systolic_max": 130}', 'bp_ok')$$,
  ARRAY['bp_ok'], 'blood pressure: the thresholds are parameters');

-- ---------------------------------------------------------------------------------------
-- Childhood immunization gap, 2022: children born in 2020.
CREATE FUNCTION pg_temp.all_doses(ext text, flu int DEFAULT 2) RETURNS void LANGUAGE sql AS $$
  SELECT pg_temp.imm(ext, '20', '2020-06-01', 4); SELECT pg_temp.imm(ext, '10', '2020-07-01', 3);
  SELECT pg_temp.imm(ext, '03', '2021-06-01', 1); SELECT pg_temp.imm(ext, '49', '2020-08-01', 3);
  SELECT pg_temp.imm(ext, '08', '2020-09-01', 3); SELECT pg_temp.imm(ext, '21', '2021-06-01', 1);
  SELECT pg_temp.imm(ext, '133', '2020-10-01', 4); SELECT pg_temp.imm(ext, '83', '2021-07-01', 1);
  SELECT pg_temp.imm(ext, '119', '2020-11-01', 2);
  SELECT pg_temp.imm(ext, '140', '2021-10-01', flu) WHERE flu > 0 $$;
SELECT pg_temp.pat(x, 'female', b::date) FROM (VALUES
  ('cis_complete', '2020-03-01'), ('cis_one_flu', '2020-03-01'), ('cis_combo', '2020-03-01'),
  ('cis_late_dose', '2020-03-01'), ('cis_born_jan1', '2020-01-01'), ('cis_born_dec31', '2020-12-31'),
  ('cis_born_2019', '2019-12-31'), ('cis_born_2021', '2021-01-01'), ('cis_novisit', '2020-03-01'),
  ('cis_on_birthday', '2020-03-01'), ('cis_after_birthday', '2020-03-01'), ('cis_leap', '2020-02-29'),
  ('cis_same_day', '2020-03-01')) v(x, b);
SELECT pg_temp.enc(external_id, 'wellness', '2022-03-01') FROM outreach.contact
 WHERE external_id LIKE 'cis%' AND external_id <> 'cis_novisit';
SELECT pg_temp.all_doses(x) FROM unnest(ARRAY['cis_complete', 'cis_born_2019', 'cis_born_2021']) x;
SELECT pg_temp.all_doses('cis_one_flu', 1);
-- Combination vaccine: three DTaP-IPV-Hib-HepB (CVX 146) and one DTaP cover DTaP, IPV, Hib and HepB.
SELECT pg_temp.imm('cis_combo', '146', '2020-06-01', 3), pg_temp.imm('cis_combo', '20', '2021-06-01', 1),
       pg_temp.imm('cis_combo', '03', '2021-06-01'), pg_temp.imm('cis_combo', '21', '2021-06-01'),
       pg_temp.imm('cis_combo', '133', '2020-10-01', 4), pg_temp.imm('cis_combo', '83', '2021-07-01'),
       pg_temp.imm('cis_combo', '119', '2020-11-01', 2), pg_temp.imm('cis_combo', '140', '2021-10-01', 2);
SELECT pg_temp.all_doses('cis_late_dose', 1), pg_temp.imm('cis_late_dose', '140', '2023-01-01 00:00');
-- the second dose of influenza on the second birthday counts, the day after does not
SELECT pg_temp.all_doses('cis_on_birthday', 1), pg_temp.imm('cis_on_birthday', '140', '2022-03-01 23:59');
SELECT pg_temp.all_doses('cis_after_birthday', 1), pg_temp.imm('cis_after_birthday', '140', '2022-03-02 00:00');
-- born 29 February 2020: the second birthday is 28 February 2022
SELECT pg_temp.all_doses('cis_leap', 1), pg_temp.imm('cis_leap', '140', '2022-02-28 12:00');
-- a second influenza dose recorded on the day of the first (at another time) is the same day of service
SELECT pg_temp.all_doses('cis_same_day', 1), pg_temp.imm('cis_same_day', '140', '2021-10-01 15:00');

SELECT set_eq($$SELECT pg_temp.members('childhood_immunization_gap', '{"measurement_year": 2022}', 'cis')$$,
  ARRAY['cis_one_flu', 'cis_late_dose', 'cis_born_jan1', 'cis_born_dec31', 'cis_after_birthday', 'cis_same_day'],
  'childhood: born in the year two before, each antigen''s dose count (one per day), combination vaccines count per antigen, doses after the second birthday do not count');

-- ---------------------------------------------------------------------------------------
-- Influenza vaccination gap, season 2022 (1 Aug 2022 .. 31 Mar 2023).
SELECT pg_temp.pat(x, 'male', b::date) FROM (VALUES
  ('flu_in', '1980-01-01'), ('flu_aug1', '1980-01-01'), ('flu_jul31', '1980-01-01'), ('flu_mar31', '1980-01-01'),
  ('flu_apr1', '1980-01-01'), ('flu_6months', '2022-02-01'), ('flu_baby', '2022-02-02'),
  ('flu_enc_old', '1980-01-01'), ('flu_enc_edge', '1980-01-01')) v(x, b);
SELECT pg_temp.enc(external_id, 'ambulatory', '2022-05-01') FROM outreach.contact
 WHERE external_id LIKE 'flu%' AND external_id NOT IN ('flu_enc_old', 'flu_enc_edge');
SELECT pg_temp.enc('flu_enc_old', 'ambulatory', '2021-07-31 23:00');
SELECT pg_temp.enc('flu_enc_edge', 'ambulatory', '2021-08-01 00:00');
SELECT pg_temp.imm('flu_aug1', '140', '2022-08-01 00:00');
SELECT pg_temp.imm('flu_jul31', '140', '2022-07-31 23:59');
SELECT pg_temp.imm('flu_mar31', '150', '2023-03-31 23:00');
SELECT pg_temp.imm('flu_apr1', '140', '2023-04-01 00:00');

SELECT set_eq($$SELECT pg_temp.members('influenza_vaccination_gap', '{"season": 2022}', 'flu')$$,
  ARRAY['flu_in', 'flu_jul31', 'flu_apr1', 'flu_6months', 'flu_enc_edge'],
  'influenza: season window 1 Aug .. 31 Mar, 6 months old at season start, encounter in the year before');

-- ---------------------------------------------------------------------------------------
-- Rolling templates: the clock is outreach.now.
SET LOCAL outreach.now = '2022-06-30 12:00:00+00';
SELECT pg_temp.pat(x, 'female', '1970-01-01') FROM unnest(ARRAY[
  'nd_today', 'nd_30days', 'nd_31days', 'nd_other', 'nd_future']) x;
SELECT pg_temp.cond('nd_today', '44054006', '2022-06-30'), pg_temp.cond('nd_30days', '44054006', '2022-05-31'),
       pg_temp.cond('nd_31days', '44054006', '2022-05-30'), pg_temp.cond('nd_other', '59621000', '2022-06-15'),
       pg_temp.cond('nd_future', '44054006', '2022-07-01');
SELECT set_eq($$SELECT pg_temp.members('new_diagnosis', '{"value_set": "diabetes"}', 'nd')$$,
  ARRAY['nd_today', 'nd_30days'], 'new diagnosis: onset from 30 days ago to today, in the value set');
SELECT set_eq($$SELECT pg_temp.members('new_diagnosis', '{"value_set": "essential hypertension", "days": 15}', 'nd')$$,
  ARRAY['nd_other'], 'new diagnosis: value set and days are parameters');

SELECT pg_temp.pat(x, 'male', '1970-01-01') FROM unnest(ARRAY['nrv_none', 'nrv_recent', 'nrv_old', 'nrv_edge']) x;
SELECT pg_temp.pat('nrv_deceased', 'male', '1970-01-01', 'active', '2021-01-01');
SELECT pg_temp.pat('nrv_practitioner', 'male', '1970-01-01', 'active', NULL, 'practitioner');
SELECT pg_temp.enc('nrv_recent', 'wellness', '2022-01-01'), pg_temp.enc('nrv_old', 'wellness', '2020-06-30 11:59'),
       pg_temp.enc('nrv_edge', 'wellness', '2020-06-30 12:00');
SELECT set_eq($$SELECT pg_temp.members('no_recent_visit', '{}', 'nrv')$$,
  ARRAY['nrv_none', 'nrv_old'], 'no recent visit: none in the last 2 years to the minute, patients only, living');
SELECT set_eq($$SELECT pg_temp.members('no_recent_visit', '{"years": 3}', 'nrv')$$,
  ARRAY['nrv_none'], 'no recent visit: years is a parameter');

-- ---------------------------------------------------------------------------------------
-- Every template compiles (outreach.compile shows its SQL) and its text round-trips.
SELECT ok(bool_and(outreach.compile(outreach.template_query(name, CASE WHEN name = 'new_diagnosis'
            THEN '{"value_set": "diabetes"}'::jsonb ELSE '{}' END)) LIKE 'SELECT%'),
          'every template compiles with its defaults') FROM outreach.segment_template;
SELECT ok(outreach.template_query('no_recent_visit', '{"years": 5}')::text::outreach.segment_query
          OPERATOR(outreach.=) outreach.template_query('no_recent_visit', '{"years": 5}'), 'template text is canonical and round-trips');
SELECT ok(outreach.template_query('breast_cancer_screening_gap', '{"measurement_year": 2024}')::text
          LIKE '%age at date ''2024-12-31'' between 52 and 74 %performed_at >= date ''2022-10-01''%',
          'placeholders: age_min, age_max, and arithmetic on measurement_year');
SELECT ok(outreach.template_query('breast_cancer_screening_gap', '{"measurement_year": "2024"}')::text
          = outreach.template_query('breast_cancer_screening_gap', '{"measurement_year": 2024}')::text,
          'a number may be given as a JSON string');
SELECT ok(outreach.template_query('breast_cancer_screening_gap')::text
          LIKE format('%%start_at >= date ''%s-01-01''%%', extract(year FROM outreach.now() AT TIME ZONE 'UTC')),
          'measurement_year defaults to the current year of outreach.now()');
SELECT ok(outreach.template_query('influenza_vaccination_gap')::text LIKE '%administered_at >= date ''2021-08-01''%',
          'season defaults to the season that began on the last 1 August (2021 on 2022-06-30)');
SELECT ok(length(description) > 100 AND (measure IS NOT NULL OR name IN ('new_diagnosis', 'no_recent_visit')),
          format('template %s documents its logic', name)) FROM outreach.segment_template ORDER BY name;

-- Parameter errors.
SELECT throws_ok($$SELECT outreach.template_query('breast_cancer_screening', '{}')$$, '42704',
  'segment template "breast_cancer_screening" does not exist', 'unknown template');
SELECT throws_ok($$SELECT outreach.template_query('breast_cancer_screening_gap', '{"year": 2022}')$$, '22023',
  'template "breast_cancer_screening_gap" has no parameter "year"', 'unknown parameter');
SELECT throws_ok($$SELECT outreach.template_query('breast_cancer_screening_gap', '{"measurement_year": "2022; drop"}')$$, '22023',
  NULL, 'a non-number for an integer parameter');
SELECT throws_ok($$SELECT outreach.template_query('breast_cancer_screening_gap', '{"measurement_year": 1800}')$$, '22003',
  NULL, 'a year out of range');
SELECT throws_ok($$SELECT outreach.template_query('new_diagnosis', '{}')$$, '22023',
  'template "new_diagnosis" needs parameter "value_set"', 'a required parameter');
SELECT throws_ok($$SELECT outreach.template_query('new_diagnosis', '{"value_set": "diabetis"}')$$, '42704',
  'value set "diabetis" does not exist', 'an unknown value set');
SELECT throws_ok($$SELECT outreach.template_query('new_diagnosis', '{"value_set": "x'' or true --"}')$$, '42704',
  NULL, 'a value set name cannot inject into the query');
SELECT throws_ok($$SELECT outreach.template_query('no_recent_visit', '[2]')$$, '22023',
  'template parameters must be a JSON object', 'parameters must be an object');

-- A segment made from a template: live, with the template's members.
SELECT lives_ok($$SELECT outreach.create_segment_from_template('bcs 2022', 'breast_cancer_screening_gap',
                    '{"measurement_year": 2022}', 'UTC')$$, 'create_segment_from_template');
SELECT lives_ok($$SELECT outreach.go_live('bcs 2022')$$, 'the template segment goes live');
SELECT set_eq($$SELECT c.external_id FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
                JOIN outreach.contact c ON c.id = m.contact_id WHERE s.name = 'bcs 2022' AND c.external_id LIKE 'bcs%'$$,
  ARRAY['bcs_in', 'bcs_age52', 'bcs_age74', 'bcs_mammo_before', 'bcs_mammo_after', 'bcs_hospice_2021'],
  'the live segment holds the template''s members');
SELECT pg_temp.proc('bcs_in', '71651007', '2022-05-05');
SELECT ok(NOT EXISTS (SELECT 1 FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
                      WHERE s.name = 'bcs 2022' AND m.contact_id = pg_temp.id('bcs_in')),
          'a mammography closes the gap at once: the patient leaves the live segment');

SELECT * FROM finish();
ROLLBACK;
