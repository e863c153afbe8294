-- 82_measures.sql: care-gap measure reports (measure mode beside the outreach templates).
--
-- Owns: outreach.measure_definition (per care-gap template: its measure's denominator,
-- denominator exclusions and numerator, each a segment query with the template's
-- placeholders, or for the blood-pressure numerator a SQL query), outreach.measure_report()
-- (the counts and the rate, for admins and analysts) and outreach.measure_members() (who is
-- where, admins only).
--
-- Measure mode differs from the outreach segments of the templates: it follows the public
-- measure for a measurement period.  The denominator counts patients alive at the period's
-- end (one who died after it is counted; an outreach segment leaves every deceased contact
-- out) whatever their contact status; exclusions are reported, not silently dropped; the
-- numerator is the measure's own (for an inverse measure such as HbA1c poor control, being
-- in it is the bad outcome).  Blood pressure follows CMS165: the most recent day with a
-- reading in the period, and on that day the lowest systolic and the lowest diastolic.
-- docs/segment-templates.md, "Measure reports".

CREATE TABLE outreach.measure_definition (
  template     text PRIMARY KEY REFERENCES outreach.segment_template ON DELETE CASCADE ON UPDATE CASCADE,
  period_kind  text NOT NULL CONSTRAINT measure_definition_period_kind CHECK (outreach.allowed_value(period_kind,
                 'measure_definition.period_kind', '{year,season}')),
  inverse      boolean NOT NULL DEFAULT false,
  denominator  text NOT NULL,
  exclusions   text,
  numerator    text,
  numerator_sql text,
  CONSTRAINT measure_definition_one_numerator CHECK ((numerator IS NULL) <> (numerator_sql IS NULL))
);
COMMENT ON TABLE outreach.measure_definition IS
  'Measure mode of a care-gap template: denominator, exclusions and numerator as segment queries with the template''s {{placeholders}} (numerator_sql: a SQL query of contact ids, $1/$2 the period''s start and end, $3 the parameters)';
COMMENT ON COLUMN outreach.measure_definition.period_kind IS
  'The measurement period measure_report requires: year (a calendar year, {{measurement_year}}) or season (an influenza season, 1 August to 31 March, {{season}})';
COMMENT ON COLUMN outreach.measure_definition.inverse IS 'True when being in the numerator is the bad outcome (e.g. HbA1c poor control): a lower rate is better';
COMMENT ON COLUMN outreach.measure_definition.denominator IS
  'Segment query (with the template''s {{placeholders}}) of the eligible population: patients alive at the period''s end, whatever their contact status';
COMMENT ON COLUMN outreach.measure_definition.exclusions IS
  'Segment query of the denominator patients excluded from the rate (e.g. hospice, mastectomy); reported as a count; NULL: no exclusions';
COMMENT ON COLUMN outreach.measure_definition.numerator IS
  'Segment query of the denominator patients who meet the measure; NULL when numerator_sql gives the numerator (exactly one of the two is set)';
COMMENT ON COLUMN outreach.measure_definition.numerator_sql IS
  'SQL returning contact ids, for numerators the segment language cannot say (blood pressure per CMS165): $1/$2 the period''s start and end (timestamptz), $3 the parameters with defaults (jsonb), $4 the time zone; ids outside the denominator are ignored';
SELECT outreach._dump('outreach.measure_definition',
  $f$WHERE template NOT IN ('breast_cancer_screening_gap','colorectal_cancer_screening_gap','cervical_cancer_screening_gap','diabetes_hba1c_poor_control','uncontrolled_blood_pressure','childhood_immunization_gap','influenza_vaccination_gap')$f$);

-- Shared pieces, spelled out: alive at the end of the period, the qualifying visit, hospice.
INSERT INTO outreach.measure_definition (template, period_kind, inverse, denominator, exclusions, numerator, numerator_sql) VALUES
('breast_cancer_screening_gap', 'year', false,
 $q$contact where gender = 'female' and (deceased_at is empty or deceased_at >= date '{{measurement_year + 1}}-01-01')
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where has procedure where (code in value_set 'bilateral mastectomy' and performed_at < date '{{measurement_year + 1}}-01-01')
  or has condition where (code in value_set 'bilateral mastectomy' and onset_date <= date '{{measurement_year}}-12-31')
  or has encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  or has procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where has procedure where (code in value_set 'mammography'
    and performed_at >= date '{{measurement_year - 2}}-10-01' and performed_at < date '{{measurement_year + 1}}-01-01')
  or has observation where (code in value_set 'mammography'
    and effective_at >= date '{{measurement_year - 2}}-10-01' and effective_at < date '{{measurement_year + 1}}-01-01')$q$, NULL),

('colorectal_cancer_screening_gap', 'year', false,
 $q$contact where (deceased_at is empty or deceased_at >= date '{{measurement_year + 1}}-01-01')
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where has condition where (code in value_set 'colorectal cancer' and onset_date <= date '{{measurement_year}}-12-31')
  or has procedure where (code in value_set 'total colectomy' and performed_at < date '{{measurement_year + 1}}-01-01')
  or has encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  or has procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where has observation where (code in value_set 'fecal occult blood test'
    and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  or has procedure where (code in value_set 'fecal occult blood test'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')
  or has observation where (code in value_set 'stool dna test'
    and effective_at >= date '{{measurement_year - 2}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  or has procedure where ((code in value_set 'sigmoidoscopy' or code in value_set 'ct colonography')
    and performed_at >= date '{{measurement_year - 4}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')
  or has observation where (code in value_set 'ct colonography'
    and effective_at >= date '{{measurement_year - 4}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  or has procedure where (code in value_set 'colonoscopy'
    and performed_at >= date '{{measurement_year - 9}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$, NULL),

('cervical_cancer_screening_gap', 'year', false,
 $q$contact where gender = 'female' and (deceased_at is empty or deceased_at >= date '{{measurement_year + 1}}-01-01')
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where has procedure where (code in value_set 'hysterectomy' and performed_at < date '{{measurement_year + 1}}-01-01')
  or has condition where (code in value_set 'hysterectomy' and onset_date <= date '{{measurement_year}}-12-31')
  or has encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  or has procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where has procedure where (code in value_set 'cervical cytology'
    and performed_at >= date '{{measurement_year - 2}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')
  or has observation where (code in value_set 'cervical cytology'
    and effective_at >= date '{{measurement_year - 2}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  or has observation where (code in value_set 'hpv test' and effective_at >= contact.birthdate + 30 years
    and effective_at >= date '{{measurement_year - 4}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')$q$, NULL),

('diabetes_hba1c_poor_control', 'year', true,
 $q$contact where (deceased_at is empty or deceased_at >= date '{{measurement_year + 1}}-01-01')
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has condition where (code in value_set 'diabetes' and onset_date <= date '{{measurement_year}}-12-31'
    and (abatement_date is empty or abatement_date >= date '{{measurement_year}}-01-01'))
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where has encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  or has procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where latest(observation.value_numeric where code in value_set 'hba1c'
         and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01') > {{threshold}}
    or latest(observation.value_numeric where code in value_set 'hba1c'
         and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01') is empty
    or has no observation where (code in value_set 'hba1c'
         and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')$q$, NULL),

('uncontrolled_blood_pressure', 'year', false,
 $q$contact where (deceased_at is empty or deceased_at >= date '{{measurement_year + 1}}-01-01')
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has condition where (code in value_set 'essential hypertension' and onset_date <= date '{{measurement_year}}-06-30'
    and (abatement_date is empty or abatement_date >= date '{{measurement_year}}-01-01'))
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where has condition where (code in value_set 'pregnancy' and onset_date <= date '{{measurement_year}}-12-31'
    and (abatement_date is empty or abatement_date >= date '{{measurement_year}}-01-01'))
  or has condition where (code in value_set 'esrd' and onset_date <= date '{{measurement_year}}-12-31')
  or has procedure where (code in value_set 'dialysis' and performed_at < date '{{measurement_year + 1}}-01-01')
  or has encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  or has procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$,
 NULL,
 -- Controlled (the numerator): on the most recent day with a blood-pressure reading in the
 -- period (a day in the report's time zone, $4), the lowest systolic is below systolic_max
 -- and the lowest diastolic below diastolic_max.
 $s$WITH r AS (
      SELECT o.patient_id, (o.effective_at AT TIME ZONE $4)::date AS day, vs.name, o.value_numeric
      FROM outreach.observation o
      JOIN outreach.value_set_expansion vs ON (vs.code_system, vs.code) = (o.code_system, o.code)
       AND vs.name IN ('systolic blood pressure', 'diastolic blood pressure')
      WHERE o.value_numeric IS NOT NULL AND o.effective_at >= $1 AND o.effective_at < $2
    ), last_day AS (
      SELECT r.patient_id, max(r.day) AS day FROM r GROUP BY r.patient_id
    )
    SELECT r.patient_id FROM r JOIN last_day l ON l.patient_id = r.patient_id AND l.day = r.day
    GROUP BY r.patient_id
    HAVING min(r.value_numeric) FILTER (WHERE r.name = 'systolic blood pressure') < ($3 ->> 'systolic_max')::numeric
       AND min(r.value_numeric) FILTER (WHERE r.name = 'diastolic blood pressure') < ($3 ->> 'diastolic_max')::numeric$s$),

('childhood_immunization_gap', 'year', false,
 $q$contact where (deceased_at is empty or deceased_at >= date '{{measurement_year + 1}}-01-01')
  and age at date '{{measurement_year}}-12-31' = 2
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where has encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  or has procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$,
 $q$contact where count(distinct day of immunization.administered_at where code in value_set 'dtap vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 4
    and count(distinct day of immunization.administered_at where code in value_set 'ipv vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 3
    and count(distinct day of immunization.administered_at where code in value_set 'mmr vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 1
    and count(distinct day of immunization.administered_at where code in value_set 'hib vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 3
    and count(distinct day of immunization.administered_at where code in value_set 'hepatitis b vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 3
    and count(distinct day of immunization.administered_at where code in value_set 'varicella vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 1
    and count(distinct day of immunization.administered_at where code in value_set 'pneumococcal conjugate vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 4
    and count(distinct day of immunization.administered_at where code in value_set 'hepatitis a vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 1
    and count(distinct day of immunization.administered_at where code in value_set 'rotavirus vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 2
    and count(distinct day of immunization.administered_at where code in value_set 'influenza vaccine' and administered_at < contact.birthdate + 2 years + 1 day) >= 2$q$, NULL),

('influenza_vaccination_gap', 'season', false,
 $q$contact where (deceased_at is empty or deceased_at >= date '{{season + 1}}-04-01')
  and birthdate <= date '{{season}}-02-01'
  and has encounter where (start_at >= date '{{season - 1}}-08-01' and start_at < date '{{season + 1}}-04-01')$q$,
 $q$contact where has encounter where (class = 'hospice' and start_at < date '{{season + 1}}-04-01'
    and (end_at is empty or end_at >= date '{{season}}-08-01'))
  or has procedure where (code in value_set 'hospice'
    and performed_at >= date '{{season}}-08-01' and performed_at < date '{{season + 1}}-04-01')$q$,
 $q$contact where has immunization where (code in value_set 'influenza vaccine'
    and administered_at >= date '{{season}}-08-01' and administered_at < date '{{season + 1}}-04-01')$q$, NULL);

-- The three sets of a measure for a period, as arrays of contact ids.
CREATE FUNCTION outreach._measure_sets(template text, period daterange, params jsonb, time_zone text,
                                       OUT denominator bigint[], OUT excluded bigint[], OUT numerator bigint[],
                                       OUT inverse boolean, OUT period_start timestamptz, OUT period_end timestamptz)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m      outreach.measure_definition;
  p      jsonb := coalesce(params, '{}');
  y      int;
  key    text;
  filled jsonb := '{}';
  e      jsonb;
  t      outreach.segment_template;
  expected daterange;
BEGIN
  SELECT * INTO m FROM outreach.measure_definition d WHERE d.template = _measure_sets.template;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'template "%" has no measure definition', template USING ERRCODE = 'undefined_object',
      HINT = 'Measure reports exist for: ' || (SELECT string_agg(d.template, ', ' ORDER BY d.template) FROM outreach.measure_definition d) || '.';
  END IF;
  IF period IS NULL OR lower_inf(period) OR upper_inf(period) OR isempty(period) THEN
    RAISE EXCEPTION 'a measurement period is required' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Pass a date range such as ''[2024-01-01,2025-01-01)'' (a calendar year; for influenza a season, ''[2024-08-01,2025-04-01)'').';
  END IF;
  y := extract(year FROM lower(period));
  key := CASE m.period_kind WHEN 'season' THEN 'season' ELSE 'measurement_year' END;
  expected := CASE m.period_kind WHEN 'season' THEN daterange(make_date(y, 8, 1), make_date(y + 1, 4, 1))
                                 ELSE daterange(make_date(y, 1, 1), make_date(y + 1, 1, 1)) END;
  IF period <> expected THEN
    RAISE EXCEPTION 'measurement period % does not fit template "%"', period, template USING ERRCODE = 'invalid_parameter_value',
      DETAIL = CASE m.period_kind WHEN 'season' THEN 'Its measure runs over an influenza season, 1 August to 31 March.'
                                  ELSE 'Its measure runs over a calendar year.' END,
      HINT = format('Pass %L.', expected);
  END IF;
  IF p ? key AND p ->> key <> y::text THEN
    RAISE EXCEPTION 'parameter "%" (%) disagrees with the period %', key, p ->> key, period USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Leave it out: the period sets it.';
  END IF;
  p := p || jsonb_build_object(key, y);
  inverse := m.inverse;
  period_start := lower(period)::timestamp AT TIME ZONE time_zone;
  period_end := upper(period)::timestamp AT TIME ZONE time_zone;
  denominator := ARRAY(SELECT outreach.evaluate(outreach._template_fill(template, p, m.denominator)::outreach.segment_query, time_zone));
  excluded := CASE WHEN m.exclusions IS NULL THEN '{}'::bigint[] ELSE
    ARRAY(SELECT outreach.evaluate(outreach._template_fill(template, p, m.exclusions)::outreach.segment_query, denominator, time_zone)) END;
  IF m.numerator IS NOT NULL THEN
    numerator := ARRAY(SELECT outreach.evaluate(outreach._template_fill(template, p, m.numerator)::outreach.segment_query, denominator, time_zone));
  ELSE
    -- the SQL numerator gets every parameter with its default
    SELECT * INTO t FROM outreach.segment_template st WHERE st.name = template;
    FOR e IN SELECT x FROM jsonb_array_elements(t.parameters) x LOOP
      filled := filled || jsonb_build_object(e ->> 'name', outreach._template_param_value(template, e, p -> (e ->> 'name')));
    END LOOP;
    EXECUTE format('SELECT array_agg(n.patient_id) FROM (%s) n(patient_id) WHERE n.patient_id = ANY ($5)', m.numerator_sql)
      INTO numerator USING period_start, period_end, filled, time_zone, denominator;
    numerator := coalesce(numerator, '{}');
  END IF;
END $$;

CREATE FUNCTION outreach.measure_report(template text, period daterange, params jsonb DEFAULT '{}', time_zone text DEFAULT 'UTC')
RETURNS TABLE (measure text, measurement_period daterange, denominator bigint, exclusions bigint, numerator bigint,
               performance_denominator bigint, rate numeric, inverse boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s record;
BEGIN
  SELECT * INTO s FROM outreach._measure_sets(measure_report.template, measure_report.period, params, time_zone);
  measure := measure_report.template;
  measurement_period := measure_report.period;
  denominator := cardinality(s.denominator);
  exclusions := cardinality(s.excluded);
  numerator := (SELECT count(*) FROM unnest(s.numerator) n WHERE n <> ALL (s.excluded));
  performance_denominator := denominator - exclusions;
  rate := CASE WHEN performance_denominator > 0 THEN round(numerator::numeric / performance_denominator, 4) END;
  inverse := s.inverse;
  RETURN NEXT;
END $$;
COMMENT ON FUNCTION outreach.measure_report(text, daterange, jsonb, text) IS
  'A care-gap template''s measure for a period: denominator (alive at the period''s end), exclusions, numerator, rate = numerator / (denominator - exclusions); inverse: lower is better';

CREATE FUNCTION outreach.measure_members(template text, period daterange, params jsonb DEFAULT '{}', time_zone text DEFAULT 'UTC')
RETURNS TABLE (contact_id bigint, excluded boolean, in_numerator boolean, gap boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s record;
BEGIN
  SELECT * INTO s FROM outreach._measure_sets(measure_members.template, measure_members.period, params, time_zone);
  RETURN QUERY
    SELECT d, d = ANY (s.excluded), d = ANY (s.numerator) AND NOT d = ANY (s.excluded),
           NOT d = ANY (s.excluded) AND (d = ANY (s.numerator)) = s.inverse
    FROM unnest(s.denominator) d ORDER BY d;
END $$;
COMMENT ON FUNCTION outreach.measure_members(text, daterange, jsonb, text) IS
  'The denominator of a measure report, one row per contact: excluded, in the numerator, and in the gap (not excluded and not meeting the measure)';

REVOKE ALL ON FUNCTION outreach._measure_sets(text, daterange, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.measure_report(text, daterange, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.measure_members(text, daterange, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach.measure_report(text, daterange, jsonb, text) TO outreach_admin, outreach_analyst;
GRANT EXECUTE ON FUNCTION outreach.measure_members(text, daterange, jsonb, text) TO outreach_admin;
-- Read-only for every role: measure_report runs a definition's numerator_sql with the
-- extension owner's rights, so only the owner (a superuser) may change definitions.
GRANT SELECT ON outreach.measure_definition TO outreach_admin, outreach_analyst, outreach_marketer;
