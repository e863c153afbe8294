-- 0.2.0 -> 0.3.0, operations: generate_population reports its progress, phase by phase (outreach._progress, outreach.running_operation).

CREATE OR REPLACE FUNCTION outreach.generate_population(
  contacts       integer DEFAULT 1000,
  seed           integer DEFAULT 42,
  reference_date date    DEFAULT DATE '2026-01-01'
) RETURNS TABLE (table_name text, rows bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET jit = off AS $$
#variable_conflict use_column
DECLARE
  v_n    constant integer := contacts;
  s      constant integer := seed;
  ref    constant date := reference_date;
  prefix constant text := format('pop-%s-', seed);

  -- Where people live: US-heavy, with the zip prefix / area code / zone that go together.
  loc_city    text[] := '{New York,Brooklyn,Boston,Philadelphia,Atlanta,Miami,Charlotte,Detroit,Columbus,Indianapolis,Chicago,Houston,Dallas,San Antonio,Minneapolis,Nashville,Denver,Salt Lake City,Albuquerque,Phoenix,Los Angeles,San Diego,San Francisco,Seattle,Portland,Las Vegas,Anchorage,Honolulu,San Juan,Toronto,Vancouver,London}';
  loc_state   text[] := '{NY,NY,MA,PA,GA,FL,NC,MI,OH,IN,IL,TX,TX,TX,MN,TN,CO,UT,NM,AZ,CA,CA,CA,WA,OR,NV,AK,HI,PR,ON,BC,NULL}';
  loc_country text[] := '{US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,US,CA,CA,GB}';
  loc_zip     text[] := '{100,112,021,191,303,331,282,482,432,462,606,770,752,782,554,372,802,841,871,850,900,921,941,981,972,891,995,968,009,M5V,V6B,SW1A}';
  loc_area    text[] := '{212,718,617,215,404,305,704,313,614,317,312,713,214,210,612,615,303,801,505,602,213,619,415,206,503,702,907,808,787,416,604,20}';
  loc_tz      text[] := '{America/New_York,America/New_York,America/New_York,America/New_York,America/New_York,America/New_York,America/New_York,America/Detroit,America/New_York,America/Indiana/Indianapolis,America/Chicago,America/Chicago,America/Chicago,America/Chicago,America/Chicago,America/Chicago,America/Denver,America/Denver,America/Denver,America/Phoenix,America/Los_Angeles,America/Los_Angeles,America/Los_Angeles,America/Los_Angeles,America/Los_Angeles,America/Los_Angeles,America/Anchorage,Pacific/Honolulu,America/Puerto_Rico,America/Toronto,America/Vancouver,Europe/London}';
  loc_slots   integer[] := outreach._gen_slots('{9,5,4,4,3,3,3,3,3,2,7,5,4,3,3,3,4,2,2,4,8,3,3,3,2,2,1,1,1,1,1,1}');

  first_f text[] := '{Mary,Patricia,Jennifer,Linda,Elizabeth,Barbara,Susan,Jessica,Sarah,Karen,Lisa,Nancy,Betty,Sandra,Margaret,Ashley,Kimberly,Emily,Donna,Michelle,Carol,Amanda,Melissa,Deborah,Stephanie,Rebecca,Sharon,Laura,Cynthia,Amy,Olivia,Emma,Sophia,Ava,Isabella,Mia,Ana,Maria,Camila,Aaliyah,Mei,Priya,Fatima,Yuki,Grace}';
  first_m text[] := '{James,Robert,John,Michael,David,William,Richard,Joseph,Thomas,Christopher,Charles,Daniel,Matthew,Anthony,Mark,Donald,Steven,Andrew,Paul,Joshua,Kenneth,Kevin,Brian,George,Timothy,Ronald,Jason,Edward,Jeffrey,Ryan,Liam,Noah,Ethan,Lucas,Mateo,Jose,Luis,Carlos,Wei,Hiroshi,Arjun,Omar,Kwame,Dmitri,Samuel}';
  last_names text[] := '{Smith,Johnson,Williams,Brown,Jones,Garcia,Miller,Davis,Rodriguez,Martinez,Hernandez,Lopez,Gonzalez,Wilson,Anderson,Thomas,Taylor,Moore,Jackson,Martin,Lee,Perez,Thompson,White,Harris,Sanchez,Clark,Ramirez,Lewis,Robinson,Walker,Young,Allen,King,Wright,Scott,Torres,Nguyen,Hill,Flores,Green,Adams,Nelson,Baker,Hall,Rivera,Campbell,Mitchell,Carter,Roberts,Kim,Patel,Chen,Wang,Singh,Okafor,Cohen,Murphy,Kowalski,Schmidt}';
  streets text[] := '{Main,Oak,Pine,Maple,Cedar,Elm,Washington,Lake,Hill,Park,Sunset,Lincoln,Jackson,River,Church,Highland,Forest,Meadow,Spring,Chestnut}';
  street_kinds text[] := '{Street,Avenue,Road,Lane,Drive,Court,Boulevard,Way}';
  domains text[] := '{example.org,example.org,example.com,example.net}';

  -- Encounter classes with their SNOMED type and weight.
  enc_class text[] := '{wellness,ambulatory,outpatient,emergency,urgentcare,virtual,inpatient,home}';
  enc_code  text[] := '{162673000,185349003,185347001,50849002,702927004,448337001,32485007,439740005}';
  enc_desc  text[] := '{General examination of patient (procedure),Encounter for check up (procedure),Encounter for problem (procedure),Emergency room admission (procedure),Urgent care clinic (environment),Telemedicine consultation with patient (procedure),Hospital admission (procedure),Home visit (procedure)}';
  enc_slots integer[] := outreach._gen_slots('{28,34,14,6,6,8,3,1}');

  -- Conditions (SNOMED); the plan's conds array holds indexes into these.
  cond_code text[] := '{38101003,57190000,44054006,15777000,59621000,55822004,195967001,162864005,195662009,444814009}';
  cond_desc text[] := '{Hypermetropia (disorder),Myopia (disorder),Diabetes mellitus type 2 (disorder),Prediabetes (finding),Essential hypertension (disorder),Hyperlipidemia (disorder),Asthma (disorder),Body mass index 30+ - obesity (finding),Acute viral pharyngitis (disorder),Viral sinusitis (disorder)}';

  acc_base bigint;
  con_base bigint;
  enc_base bigint;
  n_centers integer := least(50, 1 + v_n / 20000);
  n_insurers constant integer := 5;
  cnt bigint;
  counts bigint[] := '{}';
BEGIN
  IF v_n IS NULL OR v_n < 1 OR v_n > 10000000 THEN
    RAISE EXCEPTION 'contacts must be between 1 and 10000000, not %', coalesce(v_n::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A few hundred contacts are enough for tests; 1000000 is the benchmark scale.';
  END IF;
  IF s IS NULL OR ref IS NULL THEN
    RAISE EXCEPTION 'seed and reference_date must not be NULL' USING ERRCODE = 'null_value_not_allowed',
      DETAIL = 'The generator is deterministic: the same seed and reference date give the same population.';
  END IF;
  IF ref < DATE '1900-01-01' + 3660 OR ref > DATE '2200-01-01' THEN
    RAISE EXCEPTION 'reference_date % is out of range', ref USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Birthdates go back 100 years and clinical dates 10 years before the reference date.',
      HINT = 'Pick a date between 1910 and 2200, e.g. DATE ''2026-01-01''.';
  END IF;

  -- Ids are assigned here, so keep other writers out until the transaction ends.
  LOCK TABLE outreach.account, outreach.contact, outreach.encounter IN SHARE ROW EXCLUSIVE MODE;

  IF EXISTS (SELECT 1 FROM outreach.contact c WHERE c.external_id = prefix || '1') THEN
    RAISE EXCEPTION 'a population with seed % is already loaded', s USING ERRCODE = 'unique_violation',
      DETAIL = format('Contact %L exists.', prefix || '1'),
      HINT = format('Remove it first with SELECT outreach.remove_population(%s), or use another seed.', s);
  END IF;

  acc_base := outreach._gen_next_id('outreach.account');
  con_base := outreach._gen_next_id('outreach.contact');
  enc_base := outreach._gen_next_id('outreach.encounter');

  IF to_regclass('pg_temp._outreach_population') IS NOT NULL THEN
    DROP TABLE pg_temp._outreach_population;
  END IF;
  -- Progress: the phases done of 11 (plan, the nine tables, statistics).
  PERFORM outreach._progress('generate_population', 0, 11);
  -- The per-contact plan: demographics, which conditions they have, how many encounters and
  -- the ids those encounters get.  Every later statement is one scan of this table.
  CREATE TEMP TABLE _outreach_population ON COMMIT DROP AS
  WITH a AS (
    SELECT g.n,
           CASE g.n WHEN 1 THEN 52 WHEN 2 THEN 67 WHEN 3 THEN 84 WHEN 4 THEN 38 WHEN 5 THEN 29
             ELSE CASE WHEN outreach._gen_rand(s, g.n, 1) < 0.84
                       THEN floor(outreach._gen_rand(s, g.n, 2) * 65)::integer
                       ELSE 65 + floor(35 * (1 - sqrt(outreach._gen_rand(s, g.n, 2))))::integer END
           END AS age_y,
           CASE g.n WHEN 1 THEN 'female' WHEN 2 THEN 'male' WHEN 3 THEN 'female' WHEN 4 THEN 'male' WHEN 5 THEN 'female'
             ELSE CASE WHEN outreach._gen_rand(s, g.n, 3) < 0.505 THEN 'female'
                       WHEN outreach._gen_rand(s, g.n, 3) < 0.99 THEN 'male'
                       WHEN outreach._gen_rand(s, g.n, 3) < 0.995 THEN 'other' ELSE 'unknown' END
           END AS gender,
           g.n > 5 AND outreach._gen_rand(s, g.n, 4) < 0.7 AS in_household,
           (g.n - 1) / 4 + 1 AS block
    FROM generate_series(1, v_n) AS g(n)
  ), b AS (
    SELECT a.*,
           CASE WHEN a.in_household THEN -a.block ELSE a.n END AS home_key,
           a.age_y * 365 + floor(outreach._gen_rand(s, a.n, 5) * 365)::integer AS age_days,
           CASE WHEN a.n <= 5 THEN 'patient'
                WHEN a.age_y >= 25 AND outreach._gen_rand(s, a.n, 6) < 0.01 THEN 'practitioner'
                WHEN outreach._gen_rand(s, a.n, 6) > 0.997 THEN 'other'
                ELSE 'patient' END AS contact_type,
           CASE WHEN a.n = 3 THEN true WHEN a.n <= 5 THEN false
                ELSE outreach._gen_rand(s, a.n, 7) < CASE WHEN a.age_y < 60 THEN 0.003 WHEN a.age_y < 75 THEN 0.02
                                                          WHEN a.age_y < 85 THEN 0.06 ELSE 0.15 END END AS deceased
    FROM a
  ), c AS (
    SELECT b.*,
           ref - b.age_days AS birthdate,
           CASE WHEN b.deceased THEN ref - CASE WHEN b.n = 3 THEN 200
                  ELSE 1 + floor(outreach._gen_rand(s, b.n, 8) * least(b.age_days, 3650))::integer END END AS deceased_on,
           loc_slots[1 + floor(outreach._gen_rand(s, b.home_key, 10) * cardinality(loc_slots))::integer] AS loc,
           b.contact_type = 'patient' AND (b.n <= 4 OR outreach._gen_rand(s, b.n, 20) < 0.06 + 0.0015 * b.age_y) AS hypermetropia,
           b.contact_type = 'patient' AND (b.n = 5 OR (b.n > 5 AND b.age_y >= 6 AND outreach._gen_rand(s, b.n, 21) < 0.22)) AS myopia,
           b.contact_type = 'patient' AND b.n > 5 AND outreach._gen_rand(s, b.n, 22) <
             CASE WHEN b.age_y < 20 THEN 0.002 WHEN b.age_y < 45 THEN 0.03 WHEN b.age_y < 65 THEN 0.13 ELSE 0.24 END AS diabetes,
           b.contact_type = 'patient' AND b.n > 5 AND outreach._gen_rand(s, b.n, 24) <
             CASE WHEN b.age_y < 30 THEN 0.02 WHEN b.age_y < 45 THEN 0.10 WHEN b.age_y < 65 THEN 0.30 ELSE 0.55 END AS hypertension,
           b.contact_type = 'patient' AND b.n > 5 AND b.age_y >= 35 AND outreach._gen_rand(s, b.n, 25) < 0.15 AS hyperlipidemia,
           b.contact_type = 'patient' AND b.n > 5 AND outreach._gen_rand(s, b.n, 26) < 0.08 AS asthma,
           b.contact_type = 'patient' AND b.n > 5 AND b.age_y >= 18 AND outreach._gen_rand(s, b.n, 27) < 0.25 AS obesity,
           b.contact_type = 'patient' AND b.n > 5 AND outreach._gen_rand(s, b.n, 28) < 0.20 AS pharyngitis,
           b.contact_type = 'patient' AND b.n > 5 AND outreach._gen_rand(s, b.n, 29) < 0.20 AS sinusitis
    FROM b
  ), d AS (
    SELECT c.*,
           NOT c.diabetes AND c.contact_type = 'patient' AND c.n > 5 AND c.age_y >= 18 AND outreach._gen_rand(s, c.n, 23) < 0.10 AS prediabetes,
           greatest(c.birthdate, ref - 3652) AS span_start,
           greatest(1, coalesce(c.deceased_on, ref) - greatest(c.birthdate, ref - 3652)) AS span_days,
           CASE WHEN c.contact_type <> 'patient' OR (c.n > 5 AND outreach._gen_rand(s, c.n, 30) < 0.08) THEN 0
                ELSE least(20, 1 + floor(-ln(1 - outreach._gen_rand(s, c.n, 31))
                     * (2.0 + (c.diabetes::integer + c.hypertension::integer + c.asthma::integer) * 0.8
                        + CASE WHEN c.age_y >= 65 THEN 1.0 WHEN c.age_y < 5 THEN 1.5 ELSE 0 END))::integer)
           END AS e
    FROM c
  )
  SELECT d.n, con_base + d.n AS id, d.age_y, d.gender, d.in_household, d.block, d.home_key, d.contact_type,
         d.birthdate, d.deceased_on, d.loc, loc_tz[d.loc] AS tz,
         d.diabetes, d.prediabetes, d.hypertension, d.hyperlipidemia, d.asthma, d.obesity,
         array_remove(ARRAY[CASE WHEN d.hypermetropia THEN 1 END, CASE WHEN d.myopia THEN 2 END,
                            CASE WHEN d.diabetes THEN 3 END, CASE WHEN d.prediabetes THEN 4 END,
                            CASE WHEN d.hypertension THEN 5 END, CASE WHEN d.hyperlipidemia THEN 6 END,
                            CASE WHEN d.asthma THEN 7 END, CASE WHEN d.obesity THEN 8 END,
                            CASE WHEN d.pharyngitis THEN 9 END, CASE WHEN d.sinusitis THEN 10 END], NULL) AS conds,
         d.span_start, d.span_days, d.e,
         enc_base + 1 + sum(d.e) OVER (ORDER BY d.n ROWS UNBOUNDED PRECEDING) - d.e AS enc_first
  FROM d;
  ANALYZE pg_temp._outreach_population;
  RAISE DEBUG 'generate_population: plan ready at %', clock_timestamp();

  PERFORM outreach._progress('generate_population', 1, 11);
  -- Accounts: a health system with its medical centers, insurers, and one household per
  -- block of four contact numbers that has members.
  INSERT INTO outreach.account (id, name, kind, parent_id, external_id)
  SELECT acc_base + i,
         CASE WHEN i = 1 THEN 'Example Health System'
              ELSE format('Example %s Medical Center', loc_city[loc_slots[1 + floor(outreach._gen_rand(s, i, 40) * cardinality(loc_slots))::integer]]) END,
         'medical_center', CASE WHEN i > 1 THEN acc_base + 1 END, format('%scenter-%s', prefix, i)
  FROM generate_series(1, n_centers) AS i;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  INSERT INTO outreach.account (id, name, kind, external_id)
  SELECT acc_base + n_centers + i, (ARRAY['Example Health Plan','Example Mutual','Example Medicare Advantage','Example Medicaid Plan','Example Employer Plan'])[i],
         'insurer', format('%sinsurer-%s', prefix, i)
  FROM generate_series(1, n_insurers) AS i;
  INSERT INTO outreach.account (id, name, kind, external_id)
  SELECT acc_base + n_centers + n_insurers + h.block,
         last_names[1 + floor(outreach._gen_rand(s, -h.block, 11) * cardinality(last_names))::integer] || ' household',
         'household', format('%shousehold-%s', prefix, h.block)
  FROM (SELECT DISTINCT p.block FROM pg_temp._outreach_population p WHERE p.in_household) AS h
  ORDER BY h.block;
  counts := counts || (SELECT count(*) FROM outreach.account x WHERE x.id > acc_base);

  PERFORM outreach._progress('generate_population', 2, 11);
  INSERT INTO outreach.contact (id, external_id, first_name, last_name, birthdate, gender, email, phone,
                                address_line, city, state, postal_code, country, time_zone, status, contact_type,
                                preferred_channel, do_not_email, do_not_sms, do_not_mail, deceased_at, account_id)
  SELECT p.id, prefix || p.n, x.first_name, x.last_name, p.birthdate, p.gender, x.email, x.phone,
         x.address_line, loc_city[p.loc], loc_state[p.loc], x.postal_code, loc_country[p.loc], p.tz,
         CASE WHEN p.deceased_on IS NOT NULL OR p.n = 2 THEN 'inactive'
              WHEN p.n <= 5 THEN 'active'
              WHEN outreach._gen_rand(s, p.n, 50) < 0.08 THEN 'inactive' ELSE 'active' END,
         p.contact_type,
         CASE WHEN outreach._gen_rand(s, p.n, 51) < 0.05 THEN NULL
              WHEN x.email IS NOT NULL AND NOT x.dne AND outreach._gen_rand(s, p.n, 52) < 0.65 THEN 'email'
              WHEN x.phone IS NOT NULL AND NOT x.dns THEN 'sms'
              ELSE 'letter' END,
         x.dne, x.dns, x.dnm,
         CASE WHEN p.deceased_on IS NOT NULL
              THEN timezone(p.tz, p.deceased_on + make_interval(mins => floor(outreach._gen_rand(s, p.n, 53) * 1440)::integer)) END,
         CASE WHEN p.contact_type = 'practitioner'
              THEN acc_base + 1 + floor(outreach._gen_rand(s, p.n, 54) * n_centers)::integer
              WHEN p.in_household THEN acc_base + n_centers + n_insurers + p.block END
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL (
    SELECT f.first_name, l.last_name,
           CASE WHEN p.n <= 5 OR (p.age_y >= 13 AND outreach._gen_rand(s, p.n, 60) < 0.88)
                THEN lower(f.first_name) || '.' || lower(l.last_name) || '.' || p.n || '@'
                     || domains[1 + floor(outreach._gen_rand(s, p.n, 61) * cardinality(domains))::integer] END AS email,
           CASE WHEN p.n <= 5 OR outreach._gen_rand(s, p.n, 62) < 0.82
                THEN CASE WHEN loc_country[p.loc] = 'GB'
                          THEN '+442079460' || lpad(floor(outreach._gen_rand(s, p.n, 63) * 1000)::integer::text, 3, '0')
                          ELSE '+1' || loc_area[p.loc] || '5550' || (100 + floor(outreach._gen_rand(s, p.n, 63) * 100)::integer) END
           END AS phone,
           (1 + floor(outreach._gen_rand(s, p.home_key, 12) * 9899)::integer) || ' '
             || streets[1 + floor(outreach._gen_rand(s, p.home_key, 13) * cardinality(streets))::integer] || ' '
             || street_kinds[1 + floor(outreach._gen_rand(s, p.home_key, 14) * cardinality(street_kinds))::integer] AS address_line,
           CASE loc_country[p.loc]
             WHEN 'US' THEN loc_zip[p.loc] || lpad(floor(outreach._gen_rand(s, p.home_key, 15) * 100)::integer::text, 2, '0')
             WHEN 'CA' THEN loc_zip[p.loc] || ' ' || (floor(outreach._gen_rand(s, p.home_key, 15) * 10)::integer)
                            || substr('ABCEGHJKLMNPRSTVXY', 1 + floor(outreach._gen_rand(s, p.home_key, 16) * 18)::integer, 1)
                            || (floor(outreach._gen_rand(s, p.home_key, 17) * 10)::integer)
             ELSE loc_zip[p.loc] || ' ' || (1 + floor(outreach._gen_rand(s, p.home_key, 15) * 9)::integer) || 'AA' END AS postal_code,
           p.n = 4 OR (p.n > 5 AND outreach._gen_rand(s, p.n, 64) < 0.06) AS dne,
           p.n = 4 OR (p.n > 5 AND outreach._gen_rand(s, p.n, 65) < 0.08) AS dns,
           p.n = 4 OR (p.n > 5 AND outreach._gen_rand(s, p.n, 66) < 0.03) AS dnm
    FROM (SELECT CASE WHEN p.gender = 'female' OR (p.gender IN ('other', 'unknown') AND outreach._gen_rand(s, p.n, 67) < 0.5)
                      THEN first_f[1 + floor(outreach._gen_rand(s, p.n, 68) * cardinality(first_f))::integer]
                      ELSE first_m[1 + floor(outreach._gen_rand(s, p.n, 68) * cardinality(first_m))::integer] END AS first_name) f,
         (SELECT last_names[1 + floor(outreach._gen_rand(s, p.home_key, 11) * cardinality(last_names))::integer] AS last_name) l
  ) x
  ORDER BY p.n;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  counts := counts || cnt;
  RAISE DEBUG 'generate_population: % rows at %', cnt, clock_timestamp();

  PERFORM outreach._progress('generate_population', 3, 11);
  -- Encounters, in order over each contact's span; inpatient stays last days.
  INSERT INTO outreach.encounter (id, patient_id, class, code, code_system, description, start_at, end_at)
  SELECT p.enc_first + j - 1, p.id, enc_class[k.c], enc_code[k.c], 'SNOMED', enc_desc[k.c], t.at,
         t.at + CASE WHEN enc_class[k.c] = 'inpatient'
                     THEN make_interval(days => 1 + floor(outreach._gen_rand(s, p.n * 64 + j, 304) * 6)::integer)
                     ELSE make_interval(mins => 15 + 5 * floor(outreach._gen_rand(s, p.n * 64 + j, 304) * 10)::integer) END
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL generate_series(1, p.e) AS j
  CROSS JOIN LATERAL (SELECT CASE WHEN p.age_y < 18 AND outreach._gen_rand(s, p.n * 64 + j, 305) < 0.5 THEN 1
                                  ELSE enc_slots[1 + floor(outreach._gen_rand(s, p.n * 64 + j, 303) * cardinality(enc_slots))::integer] END AS c) k
  CROSS JOIN LATERAL (SELECT outreach._gen_encounter_start(s, p.n, j, p.e, p.span_start, p.span_days, p.tz) AS at OFFSET 0) t
  WHERE p.e > 0
  ORDER BY p.n, j;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  counts := counts || cnt;
  RAISE DEBUG 'generate_population: % rows at %', cnt, clock_timestamp();

  PERFORM outreach._progress('generate_population', 4, 11);
  -- Conditions, diagnosed at one of the contact's encounters (or on a day in the span).
  INSERT INTO outreach.condition (patient_id, code, code_system, description, clinical_status, onset_date, abatement_date, encounter_id)
  SELECT p.id, cond_code[k], 'SNOMED', cond_desc[k], st.status, o.onset,
         CASE WHEN st.status = 'resolved' THEN least(ref, o.onset + 7 + floor(outreach._gen_rand(s, p.n * 64 + k, 403) * 14)::integer) END,
         CASE WHEN o.j IS NOT NULL THEN p.enc_first + o.j - 1 END
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL unnest(p.conds) AS k
  CROSS JOIN LATERAL (
    SELECT q.j, CASE WHEN q.j IS NOT NULL
                     THEN timezone(p.tz, outreach._gen_encounter_start(s, p.n, q.j, p.e, p.span_start, p.span_days, p.tz))::date
                     ELSE p.span_start + floor(outreach._gen_rand(s, p.n * 64 + k, 402) * p.span_days)::integer END AS onset
    FROM (SELECT CASE WHEN p.e > 0 THEN 1 + floor(outreach._gen_rand(s, p.n * 64 + k, 401) * p.e)::integer END AS j) q
  ) o
  CROSS JOIN LATERAL (
    SELECT CASE WHEN k IN (9, 10) THEN 'resolved'
                WHEN k = 7 AND outreach._gen_rand(s, p.n * 64 + k, 404) < 0.2 THEN 'inactive'
                WHEN k = 8 AND outreach._gen_rand(s, p.n * 64 + k, 404) < 0.1 THEN 'resolved'
                WHEN k = 5 AND outreach._gen_rand(s, p.n * 64 + k, 404) < 0.03 THEN 'remission'
                ELSE 'active' END AS status
  ) st
  ORDER BY p.n, k;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  counts := counts || cnt;
  RAISE DEBUG 'generate_population: % rows at %', cnt, clock_timestamp();

  PERFORM outreach._progress('generate_population', 5, 11);
  -- Observations: blood pressure pairs (same time, same encounter), HbA1c, BMI.
  INSERT INTO outreach.observation (patient_id, code, code_system, description, value_numeric, unit, effective_at, encounter_id)
  SELECT p.id, v.code, 'LOINC', v.description, v.value, v.unit, v.at, p.enc_first + j - 1
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL generate_series(1, p.e) AS j
  CROSS JOIN LATERAL (
    SELECT outreach._gen_encounter_start(s, p.n, j, p.e, p.span_start, p.span_days, p.tz) AS at,
           (p.age_y < 18 OR outreach._gen_rand(s, p.n * 64 + j, 305) >= 0.5)
             AND enc_slots[1 + floor(outreach._gen_rand(s, p.n * 64 + j, 303) * cardinality(enc_slots))::integer] = 6 AS virtual,
           outreach._gen_normal(s, p.n * 64 + j, 501) AS z1,
           outreach._gen_normal(s, p.n * 64 + j, 502) AS z2,
           outreach._gen_normal(s, p.n * 64 + j, 503) AS z3,
           outreach._gen_rand(s, p.n * 64 + j, 504) AS r_bp,
           outreach._gen_rand(s, p.n * 64 + j, 505) AS r_a1c,
           outreach._gen_rand(s, p.n * 64 + j, 506) AS r_bmi
    OFFSET 0
  ) t
  CROSS JOIN LATERAL (
    SELECT round(greatest(85, least(210, CASE WHEN p.hypertension THEN 142 ELSE 108 + 0.2 * p.age_y END + 12 * t.z1)))::numeric AS sys
    OFFSET 0
  ) bp
  CROSS JOIN LATERAL (
    VALUES ('8480-6', 'Systolic blood pressure', bp.sys, 'mm[Hg]', t.at, p.age_y >= 3 AND NOT t.virtual AND t.r_bp < 0.4),
           ('8462-4', 'Diastolic blood pressure', round(greatest(45, least(130, bp.sys * 0.62 + 3 + 6 * t.z2)))::numeric, 'mm[Hg]', t.at,
            p.age_y >= 3 AND NOT t.virtual AND t.r_bp < 0.4),
           ('4548-4', 'Hemoglobin A1c/Hemoglobin.total in Blood',
            round((CASE WHEN p.diabetes THEN greatest(5.8, least(13.5, 7.6 + 1.1 * t.z3))
                        WHEN p.prediabetes THEN greatest(5.7, least(6.4, 6.0 + 0.2 * t.z3))
                        ELSE greatest(4.3, least(5.6, 5.2 + 0.25 * t.z3)) END)::numeric, 1), '%', t.at + interval '15 minutes',
            NOT t.virtual AND t.r_a1c < CASE WHEN p.diabetes THEN 0.7 WHEN p.prediabetes THEN 0.3 WHEN p.age_y >= 45 THEN 0.05 ELSE 0 END),
           ('39156-5', 'Body mass index (BMI) [Ratio]',
            round((CASE WHEN p.obesity THEN 30 + 9 * t.r_bmi * t.r_bmi + 2 * abs(t.z3) ELSE 19 + 10.9 * t.r_bmi END)::numeric, 1),
            'kg/m2', t.at + interval '5 minutes',
            p.age_y >= 18 AND NOT t.virtual AND j = p.e AND t.r_bp < 0.8)
  ) AS v(code, description, value, unit, at, wanted)
  WHERE v.wanted
  ORDER BY p.n, j;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  counts := counts || cnt;
  RAISE DEBUG 'generate_population: % rows at %', cnt, clock_timestamp();

  PERFORM outreach._progress('generate_population', 6, 11);
  -- Procedures: colonoscopy (45-85), mammography every ~2 years (women 40-80), diabetic eye
  -- exams, spirometry for asthma.  Encounter-bound ones share their encounter's time.
  INSERT INTO outreach.procedure (patient_id, code, code_system, description, performed_at, encounter_id)
  SELECT p.id, v.code, 'SNOMED', v.description, v.at, v.encounter_id
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL (
    SELECT pr.code, pr.description, k,
           CASE WHEN p.e > 0 THEN 1 + floor(outreach._gen_rand(s, p.n * 64 + k, 601) * p.e)::integer END AS j
    FROM (VALUES (1, '73761001', 'Colonoscopy (procedure)',
                  p.age_y BETWEEN 45 AND 85 AND outreach._gen_rand(s, p.n, 70) < 0.3),
                 (2, '36228007', 'Ophthalmic examination and evaluation (procedure)',
                  p.diabetes AND outreach._gen_rand(s, p.n, 71) < 0.55),
                 (3, '127783003', 'Spirometry (procedure)', p.asthma AND outreach._gen_rand(s, p.n, 72) < 0.4)
         ) AS pr(k, code, description, wanted)
    WHERE pr.wanted
  ) q
  CROSS JOIN LATERAL (
    SELECT q.code, q.description,
           CASE WHEN q.j IS NOT NULL
                THEN outreach._gen_encounter_start(s, p.n, q.j, p.e, p.span_start, p.span_days, p.tz) + interval '20 minutes'
                ELSE timezone(p.tz, (p.span_start + floor(outreach._gen_rand(s, p.n * 64 + q.k, 602) * p.span_days)::integer) + time '10:00') END AS at,
           CASE WHEN q.j IS NOT NULL THEN p.enc_first + q.j - 1 END AS encounter_id
  ) v
  UNION ALL
  SELECT p.id, '71651007', 'SNOMED', 'Mammography (procedure)', m.at, NULL
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL generate_series(1, 1 + floor(outreach._gen_rand(s, p.n, 74) * 4)::integer) AS i
  CROSS JOIN LATERAL (
    SELECT timezone(p.tz, (ref - floor(outreach._gen_rand(s, p.n, 75) * 1100)::integer - (i - 1) * (700 + floor(outreach._gen_rand(s, p.n * 64 + i, 76) * 60)::integer))
                          + make_interval(mins => 480 + 15 * floor(outreach._gen_rand(s, p.n * 64 + i, 77) * 36)::integer)) AS at
  ) m
  WHERE p.gender = 'female' AND p.contact_type = 'patient' AND p.age_y BETWEEN 40 AND 80 AND outreach._gen_rand(s, p.n, 73) < 0.65
    AND m.at::date >= p.span_start AND m.at::date < p.span_start + p.span_days;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  counts := counts || cnt;
  RAISE DEBUG 'generate_population: % rows at %', cnt, clock_timestamp();

  PERFORM outreach._progress('generate_population', 7, 11);
  -- Immunizations: seasonal influenza (CVX 140) per season, Td (113), COVID-19 mRNA (208).
  INSERT INTO outreach.immunization (patient_id, code, code_system, description, administered_at)
  SELECT p.id, '140', 'CVX', 'Influenza, seasonal, injectable, preservative free', f.at
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL (SELECT least(0.95, 0.6 * outreach._gen_rand(s, p.n, 80) ^ 2 + CASE WHEN p.age_y >= 65 THEN 0.2 WHEN p.age_y < 10 THEN 0.1 ELSE 0 END) AS propensity) pr
  CROSS JOIN LATERAL generate_series(1, 10) AS y
  CROSS JOIN LATERAL (
    SELECT timezone(p.tz, (make_date(extract(year FROM ref - 100)::integer - y + 1, 9, 15)
                           + floor(outreach._gen_rand(s, p.n * 64 + y, 81) * 100)::integer) + time '11:00') AS at
  ) f
  WHERE p.contact_type = 'patient' AND outreach._gen_rand(s, p.n * 64 + y, 82) < pr.propensity
    AND f.at::date >= p.birthdate + 183 AND f.at::date >= p.span_start AND f.at::date < p.span_start + p.span_days
  UNION ALL
  SELECT p.id, '113', 'CVX', 'Td (adult) preservative free',
         timezone(p.tz, (p.span_start + floor(outreach._gen_rand(s, p.n, 84) * p.span_days)::integer) + time '14:00')
  FROM pg_temp._outreach_population p
  WHERE p.contact_type = 'patient' AND p.age_y >= 18 AND outreach._gen_rand(s, p.n, 83) < 0.3
  UNION ALL
  SELECT p.id, '208', 'CVX', 'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose', c.at
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL generate_series(1, 1 + floor(outreach._gen_rand(s, p.n, 86) * 2)::integer) AS i
  CROSS JOIN LATERAL (
    SELECT timezone(p.tz, (ref - 1700 + floor(outreach._gen_rand(s, p.n, 87) * 200)::integer + (i - 1) * 21) + time '09:30') AS at
  ) c
  WHERE p.contact_type = 'patient' AND p.age_y >= 17 AND outreach._gen_rand(s, p.n, 85) < 0.55
    AND c.at::date >= p.span_start AND c.at::date < p.span_start + p.span_days;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  counts := counts || cnt;
  RAISE DEBUG 'generate_population: % rows at %', cnt, clock_timestamp();

  PERFORM outreach._progress('generate_population', 8, 11);
  -- Medications (RxNorm) for chronic conditions; allergies.
  INSERT INTO outreach.medication (patient_id, code, code_system, description, start_at)
  SELECT p.id, m.code, 'RxNorm', m.description,
         timezone(p.tz, (p.span_start + floor(outreach._gen_rand(s, p.n * 64 + m.k, 91) * p.span_days)::integer) + time '12:00')
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL (VALUES (1, '860975', '24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet', p.diabetes, 0.8),
                             (2, '314076', 'lisinopril 10 MG Oral Tablet', p.hypertension, 0.7),
                             (3, '312961', 'simvastatin 20 MG Oral Tablet', p.hyperlipidemia, 0.6),
                             (4, '745679', '200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler', p.asthma, 0.6)
                     ) AS m(k, code, description, has, prob)
  WHERE m.has AND outreach._gen_rand(s, p.n * 64 + m.k, 90) < m.prob;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  counts := counts || cnt;
  RAISE DEBUG 'generate_population: % rows at %', cnt, clock_timestamp();

  PERFORM outreach._progress('generate_population', 9, 11);
  INSERT INTO outreach.allergy (patient_id, code, code_system, description, start_at)
  SELECT p.id, a.code, 'SNOMED', a.description, timezone(p.tz, p.birthdate + (a.k * 400 % greatest(1, p.age_y * 365 + 1)) + time '12:00')
  FROM pg_temp._outreach_population p
  CROSS JOIN LATERAL (VALUES (1, '91936005', 'Allergy to penicillin (finding)', 0.06),
                             (2, '91935009', 'Allergy to peanuts (finding)', 0.02),
                             (3, '300916003', 'Latex allergy (finding)', 0.01)
                     ) AS a(k, code, description, prob)
  WHERE p.contact_type = 'patient' AND outreach._gen_rand(s, p.n * 64 + a.k, 95) < a.prob;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  counts := counts || cnt;
  RAISE DEBUG 'generate_population: % rows at %', cnt, clock_timestamp();

  -- Identities continue after the explicit ids.
  PERFORM outreach._gen_set_next_id('outreach.account');
  PERFORM outreach._gen_set_next_id('outreach.contact');
  PERFORM outreach._gen_set_next_id('outreach.encounter');
  DROP TABLE pg_temp._outreach_population;

  PERFORM outreach._progress('generate_population', 10, 11);
  -- Fresh statistics, so the first segments evaluated on the population get good plans.
  ANALYZE outreach.account, outreach.contact, outreach.encounter, outreach.condition, outreach.observation,
          outreach.procedure, outreach.immunization, outreach.medication, outreach.allergy;

  PERFORM outreach._progress_done();
  FOR i IN 1 .. cardinality(counts) LOOP
    table_name := (ARRAY['account','contact','encounter','condition','observation','procedure','immunization','medication','allergy'])[i];
    rows := counts[i];
    RETURN NEXT;
  END LOOP;
END $$;
