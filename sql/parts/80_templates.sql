-- 80_templates.sql: the catalogue of segment templates (HEDIS/eCQM-style care gaps and a few
-- plain ones).
--
-- A template is a segment query in the segment language with {{...}} placeholders for its
-- parameters.  outreach.template_query(template, params) checks the parameters, fills them in
-- and returns an ordinary outreach.segment_query, so outreach.compile() shows its SQL and
-- outreach.create_segment() takes it like any hand-written query.  A placeholder is a
-- parameter name, or for integer parameters a sum such as {{measurement_year - age_max}};
-- a value_set parameter is filled in as a quoted string.  docs/segment-templates.md says, per
-- template, which measure logic it follows and where it simplifies.

CREATE TABLE outreach.segment_template (
  name        text PRIMARY KEY CONSTRAINT segment_template_name_format CHECK (name ~ '^[a-z][a-z0-9_]*$'),
  title       text NOT NULL,
  measure     text,
  description text NOT NULL,
  parameters  jsonb NOT NULL DEFAULT '[]'
              CONSTRAINT segment_template_parameters_array CHECK (jsonb_typeof(parameters) = 'array'),
  body        text NOT NULL
);
COMMENT ON TABLE outreach.segment_template IS
  'Segment templates: named, parameterised segment queries; see outreach.template_query() and docs/segment-templates.md';
COMMENT ON COLUMN outreach.segment_template.parameters IS
  'Array of {name, type (year, integer, number, value_set), default (a value, "current_year", "current_season" or null = required), description}';
COMMENT ON COLUMN outreach.segment_template.body IS
  'The segment query with {{parameter}} placeholders (integer parameters may be combined: {{measurement_year - 2}})';

-- The value of one parameter as text ready to go into the query, after checking it.
CREATE FUNCTION outreach._template_param_value(template text, p jsonb, given jsonb) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  pname text := p ->> 'name';
  ptype text := p ->> 'type';
  v     jsonb := given;
  t     text;
  lo    numeric;
  hi    numeric;
BEGIN
  IF v IS NULL OR v = 'null'::jsonb THEN
    v := p -> 'default';
    IF v IS NULL OR v = 'null'::jsonb THEN
      RAISE EXCEPTION 'template "%" needs parameter "%"', template, pname USING ERRCODE = 'invalid_parameter_value',
        DETAIL = coalesce(p ->> 'description', ''),
        HINT = format('Pass it in the parameters, e.g. ''{"%s": ...}''.', pname);
    END IF;
    IF v = '"current_year"'::jsonb THEN
      v := to_jsonb(extract(year FROM outreach.now() AT TIME ZONE 'UTC')::int);
    ELSIF v = '"current_season"'::jsonb THEN
      -- The influenza season that began on the last 1 August.
      v := to_jsonb(extract(year FROM (outreach.now() AT TIME ZONE 'UTC') - interval '7 months')::int);
    END IF;
  END IF;
  t := CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}' WHEN 'number' THEN v::text ELSE NULL END;

  IF ptype IN ('year', 'integer') THEN
    IF t IS NULL OR t !~ '^-?\d{1,9}$' THEN
      RAISE EXCEPTION 'parameter "%" of template "%" must be a whole number, not %', pname, template, v
        USING ERRCODE = 'invalid_parameter_value', DETAIL = coalesce(p ->> 'description', '');
    END IF;
    lo := CASE ptype WHEN 'year' THEN 1900 ELSE coalesce((p ->> 'min')::numeric, 0) END;
    hi := CASE ptype WHEN 'year' THEN 2200 ELSE coalesce((p ->> 'max')::numeric, 100000) END;
    IF t::numeric NOT BETWEEN lo AND hi THEN
      RAISE EXCEPTION 'parameter "%" of template "%" is out of range: %', pname, template, t
        USING ERRCODE = 'numeric_value_out_of_range', DETAIL = format('It must be between %s and %s.', lo, hi);
    END IF;
    RETURN t::bigint::text;
  ELSIF ptype = 'number' THEN
    IF t IS NULL OR t !~ '^-?(\d+(\.\d*)?|\.\d+)$' THEN
      RAISE EXCEPTION 'parameter "%" of template "%" must be a number, not %', pname, template, v
        USING ERRCODE = 'invalid_parameter_value', DETAIL = coalesce(p ->> 'description', '');
    END IF;
    RETURN t::numeric::text;
  ELSIF ptype = 'value_set' THEN
    IF t IS NULL OR t = '' THEN
      RAISE EXCEPTION 'parameter "%" of template "%" must name a value set, not %', pname, template, v
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM outreach.value_set_expansion vs WHERE vs.name = t) THEN
      RAISE EXCEPTION 'value set "%" does not exist', t USING ERRCODE = 'undefined_object',
        DETAIL = format('Parameter "%s" of template "%s" names the code list to use.', pname, template),
        HINT = coalesce('Did you mean "' || (SELECT vs.name FROM outreach.value_set_expansion vs
                          ORDER BY outreach._edit_distance(vs.name, t, 100) LIMIT 1) || '"? ', '')
               || 'outreach.value_set_summary lists the value sets.';
    END IF;
    RETURN quote_literal(t);
  END IF;
  RAISE EXCEPTION 'parameter "%" of template "%" has unknown type "%"', pname, template, ptype
    USING ERRCODE = 'invalid_parameter_value', HINT = 'Parameter types are year, integer, number and value_set.';
END $$;

-- Not every server has fuzzystrmatch; a small edit distance for "did you mean" hints.
CREATE FUNCTION outreach._edit_distance(a text, b text, max_d integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  la int := length(a); lb int := length(b);
  prev int[]; cur int[];
  i int; j int;
BEGIN
  IF abs(la - lb) > max_d THEN RETURN max_d + 1; END IF;
  prev := array(SELECT generate_series(0, lb));
  FOR i IN 1..la LOOP
    cur := array[i];
    FOR j IN 1..lb LOOP
      cur := cur || least(prev[j + 1] + 1, cur[j] + 1,
                          prev[j] + CASE WHEN substr(a, i, 1) = substr(b, j, 1) THEN 0 ELSE 1 END);
    END LOOP;
    prev := cur;
  END LOOP;
  RETURN least(prev[lb + 1], max_d + 1);
END $$;
COMMENT ON FUNCTION outreach._edit_distance(text, text, integer) IS
  'Edit distance of two strings, capped at max_d + 1 (for "did you mean" hints)';

-- A text with a template's placeholders filled in from params (checked, defaults applied):
-- the template's body, or another text written with the same parameters (measure pieces).
CREATE FUNCTION outreach._template_fill(template text, params jsonb, text_in text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  t       outreach.segment_template;
  vals    jsonb := '{}';
  types   jsonb := '{}';
  p       jsonb;
  k       text;
  body    text;
  m       text[];
  expr    text;
  term    text[];
  total   bigint;
  sign    int;
  out     text := '';
  pos     int;
BEGIN
  SELECT * INTO t FROM outreach.segment_template st WHERE st.name = template;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'segment template "%" does not exist', template USING ERRCODE = 'undefined_object',
      HINT = coalesce('Did you mean "' || (SELECT st.name FROM outreach.segment_template st
                        ORDER BY outreach._edit_distance(st.name, coalesce(template, ''), 100), st.name LIMIT 1) || '"? ', '')
             || 'SELECT name, title FROM outreach.segment_template lists them.';
  END IF;
  params := coalesce(params, '{}');
  IF jsonb_typeof(params) <> 'object' THEN
    RAISE EXCEPTION 'template parameters must be a JSON object' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Write them as ''{"measurement_year": 2024, "age_min": 50}''.';
  END IF;
  FOR k IN SELECT jsonb_object_keys(params) LOOP
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(t.parameters) e WHERE e ->> 'name' = k) THEN
      RAISE EXCEPTION 'template "%" has no parameter "%"', template, k USING ERRCODE = 'invalid_parameter_value',
        DETAIL = format('Its parameters are: %s.',
                        coalesce((SELECT string_agg(e ->> 'name', ', ') FROM jsonb_array_elements(t.parameters) e), 'none'));
    END IF;
  END LOOP;
  FOR p IN SELECT e FROM jsonb_array_elements(t.parameters) e LOOP
    vals := vals || jsonb_build_object(p ->> 'name', outreach._template_param_value(template, p, params -> (p ->> 'name')));
    types := types || jsonb_build_object(p ->> 'name', p ->> 'type');
  END LOOP;

  -- Fill the placeholders in, left to right.
  body := coalesce(text_in, t.body);
  LOOP
    pos := strpos(body, '{{');
    EXIT WHEN pos = 0;
    out := out || left(body, pos - 1);
    body := substr(body, pos + 2);
    pos := strpos(body, '}}');
    IF pos = 0 THEN
      RAISE EXCEPTION 'template "%" has an unclosed placeholder', template USING ERRCODE = 'invalid_parameter_value';
    END IF;
    expr := btrim(left(body, pos - 1));
    body := substr(body, pos + 2);
    IF expr ~ '^[a-z_][a-z0-9_]*$' AND vals ? expr THEN
      out := out || (vals ->> expr);
      CONTINUE;
    END IF;
    -- A sum of integer parameters and integer literals.
    IF expr !~ '^[a-z0-9_]+(\s*[-+]\s*[a-z0-9_]+)*$' THEN
      RAISE EXCEPTION 'template "%" has a bad placeholder "{{%}}"', template, expr USING ERRCODE = 'invalid_parameter_value',
        HINT = 'A placeholder is a parameter name or a sum such as {{measurement_year - 2}}.';
    END IF;
    total := 0; sign := 1;
    FOR term IN SELECT regexp_matches(expr, '([-+]?)\s*([a-z0-9_]+)', 'g') LOOP
      sign := CASE WHEN term[1] = '-' THEN -1 ELSE 1 END;
      IF term[2] ~ '^\d+$' THEN
        total := total + sign * term[2]::bigint;
      ELSIF vals ? term[2] AND types ->> term[2] IN ('year', 'integer') THEN
        total := total + sign * (vals ->> term[2])::bigint;
      ELSE
        RAISE EXCEPTION 'template "%" uses unknown or non-integer parameter "%" in "{{%}}"', template, term[2], expr
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
    END LOOP;
    out := out || total::text;
  END LOOP;
  out := out || body;
  RETURN out;
END $$;

CREATE FUNCTION outreach.template_query(template text, params jsonb DEFAULT '{}') RETURNS outreach.segment_query
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT outreach._template_fill(template, params, NULL)::outreach.segment_query
$$;
COMMENT ON FUNCTION outreach.template_query(text, jsonb) IS
  'The segment query of a template with its parameters filled in (params: a JSON object; missing ones take their defaults)';

CREATE FUNCTION outreach.create_segment_from_template(name text, template text, params jsonb DEFAULT '{}',
                                                      time_zone text DEFAULT NULL) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT outreach.create_segment(name, outreach.template_query(template, params), time_zone)
$$;
COMMENT ON FUNCTION outreach.create_segment_from_template(text, text, jsonb, text) IS
  'Creates a dynamic segment (in draft) from a template; go_live() it to fill it';

-- The bundled catalogue.  Shared pieces, spelled out in each body so each template reads on
-- its own: the qualifying visit of the measurement year (an encounter of an office-type
-- class), and the hospice exclusion (a hospice encounter overlapping the period, or a hospice
-- service in it).
INSERT INTO outreach.segment_template (name, title, measure, description, parameters, body) VALUES
('breast_cancer_screening_gap',
 'Breast cancer screening gap',
 'CMS125 (Breast Cancer Screening), simplified',
 'Women aged age_min to age_max at the end of the measurement year, with a qualifying visit in the year, and no mammography from 1 October two years before the year to its end (27 months). Excluded: bilateral mastectomy (procedure or history finding) before the end of the year; hospice in the year; deceased or inactive contacts. Simplified: a qualifying visit is any wellness, ambulatory, outpatient, virtual or home encounter; two unilateral mastectomies, frailty with advanced illness, palliative care and long-term care are not checked; mammography counts as a procedure or as an imaging observation.',
 '[{"name": "measurement_year", "type": "year", "default": "current_year", "description": "The calendar year measured."},
   {"name": "age_min", "type": "integer", "default": 52, "max": 120, "description": "Youngest age at the end of the year."},
   {"name": "age_max", "type": "integer", "default": 74, "max": 120, "description": "Oldest age at the end of the year."}]',
 $q$contact where status = 'active' and deceased_at is empty and gender = 'female'
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')
  and has no procedure where (code in value_set 'mammography'
    and performed_at >= date '{{measurement_year - 2}}-10-01' and performed_at < date '{{measurement_year + 1}}-01-01')
  and has no observation where (code in value_set 'mammography'
    and effective_at >= date '{{measurement_year - 2}}-10-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  and has no procedure where (code in value_set 'bilateral mastectomy' and performed_at < date '{{measurement_year + 1}}-01-01')
  and has no condition where (code in value_set 'bilateral mastectomy' and onset_date <= date '{{measurement_year}}-12-31')
  and has no encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  and has no procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$),

('colorectal_cancer_screening_gap',
 'Colorectal cancer screening gap',
 'CMS130 (Colorectal Cancer Screening), simplified',
 'Adults aged age_min to age_max at the end of the measurement year, with a qualifying visit in the year, and none of: a fecal occult blood test (FIT or guaiac) in the year; a stool DNA test in the year or the 2 before; a flexible sigmoidoscopy or CT colonography in the year or the 4 before; a colonoscopy in the year or the 9 before. Excluded: colorectal cancer or total colectomy before the end of the year; hospice in the year; deceased or inactive contacts. Simplified: a qualifying visit is any wellness, ambulatory, outpatient, virtual or home encounter; a test counts whether it is recorded as a procedure or an observation; frailty with advanced illness, palliative care and long-term care are not checked.',
 '[{"name": "measurement_year", "type": "year", "default": "current_year", "description": "The calendar year measured."},
   {"name": "age_min", "type": "integer", "default": 46, "max": 120, "description": "Youngest age at the end of the year."},
   {"name": "age_max", "type": "integer", "default": 75, "max": 120, "description": "Oldest age at the end of the year."}]',
 $q$contact where status = 'active' and deceased_at is empty
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')
  and has no observation where (code in value_set 'fecal occult blood test'
    and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  and has no procedure where (code in value_set 'fecal occult blood test'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')
  and has no observation where (code in value_set 'stool dna test'
    and effective_at >= date '{{measurement_year - 2}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  and has no procedure where ((code in value_set 'sigmoidoscopy' or code in value_set 'ct colonography')
    and performed_at >= date '{{measurement_year - 4}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')
  and has no observation where (code in value_set 'ct colonography'
    and effective_at >= date '{{measurement_year - 4}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  and has no procedure where (code in value_set 'colonoscopy'
    and performed_at >= date '{{measurement_year - 9}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')
  and has no condition where (code in value_set 'colorectal cancer' and onset_date <= date '{{measurement_year}}-12-31')
  and has no procedure where (code in value_set 'total colectomy' and performed_at < date '{{measurement_year + 1}}-01-01')
  and has no encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  and has no procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$),

('cervical_cancer_screening_gap',
 'Cervical cancer screening gap',
 'CMS124 (Cervical Cancer Screening), simplified',
 'Women aged age_min to age_max at the end of the measurement year, with a qualifying visit in the year, and neither a cervical cytology in the year or the 2 before, nor an HPV test in the year or the 4 before taken on or after her 30th birthday. Excluded: hysterectomy with no residual cervix (procedure, or the history / absence-of-cervix finding) before the end of the year; hospice in the year; deceased or inactive contacts. Simplified: a qualifying visit is any wellness, ambulatory, outpatient, virtual or home encounter; palliative care is not checked.',
 '[{"name": "measurement_year", "type": "year", "default": "current_year", "description": "The calendar year measured."},
   {"name": "age_min", "type": "integer", "default": 24, "max": 120, "description": "Youngest age at the end of the year."},
   {"name": "age_max", "type": "integer", "default": 64, "max": 120, "description": "Oldest age at the end of the year."}]',
 $q$contact where status = 'active' and deceased_at is empty and gender = 'female'
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')
  and has no procedure where (code in value_set 'cervical cytology'
    and performed_at >= date '{{measurement_year - 2}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')
  and has no observation where (code in value_set 'cervical cytology'
    and effective_at >= date '{{measurement_year - 2}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  and has no observation where (code in value_set 'hpv test' and effective_at >= contact.birthdate + 30 years
    and effective_at >= date '{{measurement_year - 4}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01')
  and has no procedure where (code in value_set 'hysterectomy' and performed_at < date '{{measurement_year + 1}}-01-01')
  and has no condition where (code in value_set 'hysterectomy' and onset_date <= date '{{measurement_year}}-12-31')
  and has no encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  and has no procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$),

('diabetes_hba1c_poor_control',
 'Diabetes with poor or missing HbA1c control',
 'CMS122 (Diabetes: Hemoglobin A1c Poor Control), simplified',
 'Adults aged age_min to age_max at the end of the measurement year with diabetes active during the year (onset before its end, not resolved before its start) and a qualifying visit in the year, whose most recent HbA1c test of the year has a result above threshold or no result, or who have no HbA1c test in the year. This is the measure''s numerator (an inverse measure: being in it is the gap). Excluded: hospice in the year; deceased or inactive contacts. Simplified: frailty with advanced illness and palliative care are not checked; a qualifying visit is any wellness, ambulatory, outpatient, virtual or home encounter.',
 '[{"name": "measurement_year", "type": "year", "default": "current_year", "description": "The calendar year measured."},
   {"name": "age_min", "type": "integer", "default": 18, "max": 120, "description": "Youngest age at the end of the year."},
   {"name": "age_max", "type": "integer", "default": 75, "max": 120, "description": "Oldest age at the end of the year."},
   {"name": "threshold", "type": "number", "default": 9, "description": "HbA1c percentage above which control is poor."}]',
 $q$contact where status = 'active' and deceased_at is empty
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has condition where (code in value_set 'diabetes' and onset_date <= date '{{measurement_year}}-12-31'
    and (abatement_date is empty or abatement_date >= date '{{measurement_year}}-01-01'))
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')
  and (latest(observation.value_numeric where code in value_set 'hba1c'
         and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01') > {{threshold}}
    or latest(observation.value_numeric where code in value_set 'hba1c'
         and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01') is empty
    or has no observation where (code in value_set 'hba1c'
         and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01'))
  and has no encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  and has no procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$),

('uncontrolled_blood_pressure',
 'Hypertension with uncontrolled or unmeasured blood pressure',
 'CMS165 (Controlling High Blood Pressure), gap = not in numerator, simplified',
 'Adults aged age_min to age_max at the end of the measurement year with essential hypertension diagnosed before 1 July of the year and not resolved before it starts, and a qualifying visit in the year, whose most recent systolic reading of the year is at least systolic_max or whose most recent diastolic reading is at least diastolic_max, or who have no blood-pressure reading in the year (the measure counts them as not controlled). Excluded: pregnancy during the year; end-stage renal disease or dialysis before the end of the year; hospice in the year; deceased or inactive contacts. Simplified: the most recent systolic and diastolic readings are taken separately (Synthea and most EHRs record them as a pair at the same time, so they are the same reading); readings taken in acute settings are not removed; frailty and advanced illness, palliative care and kidney transplant are not checked.',
 '[{"name": "measurement_year", "type": "year", "default": "current_year", "description": "The calendar year measured."},
   {"name": "age_min", "type": "integer", "default": 18, "max": 120, "description": "Youngest age at the end of the year."},
   {"name": "age_max", "type": "integer", "default": 85, "max": 120, "description": "Oldest age at the end of the year."},
   {"name": "systolic_max", "type": "integer", "default": 140, "max": 400, "description": "Controlled means a systolic reading below this."},
   {"name": "diastolic_max", "type": "integer", "default": 90, "max": 400, "description": "Controlled means a diastolic reading below this."}]',
 $q$contact where status = 'active' and deceased_at is empty
  and age at date '{{measurement_year}}-12-31' between {{age_min}} and {{age_max}}
  and has condition where (code in value_set 'essential hypertension' and onset_date <= date '{{measurement_year}}-06-30'
    and (abatement_date is empty or abatement_date >= date '{{measurement_year}}-01-01'))
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')
  and (latest(observation.value_numeric where code in value_set 'systolic blood pressure' and value_numeric is not empty
         and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01') >= {{systolic_max}}
    or latest(observation.value_numeric where code in value_set 'diastolic blood pressure' and value_numeric is not empty
         and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01') >= {{diastolic_max}}
    or has no observation where (code in value_set 'systolic blood pressure' and value_numeric is not empty
         and effective_at >= date '{{measurement_year}}-01-01' and effective_at < date '{{measurement_year + 1}}-01-01'))
  and has no condition where (code in value_set 'pregnancy' and onset_date <= date '{{measurement_year}}-12-31'
    and (abatement_date is empty or abatement_date >= date '{{measurement_year}}-01-01'))
  and has no condition where (code in value_set 'esrd' and onset_date <= date '{{measurement_year}}-12-31')
  and has no procedure where (code in value_set 'dialysis' and performed_at < date '{{measurement_year + 1}}-01-01')
  and has no encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  and has no procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$),

('childhood_immunization_gap',
 'Childhood immunization gap',
 'CMS117 (Childhood Immunization Status), simplified',
 'Children who turn 2 during the measurement year, with a qualifying visit in the year, who lack any of: 4 DTaP, 3 IPV, 1 MMR, 3 Hib, 3 hepatitis B, 1 varicella, 4 pneumococcal conjugate, 1 hepatitis A, 2 rotavirus, 2 influenza doses (combination vaccines count for each antigen they carry). Excluded: hospice in the year; deceased or inactive contacts. Doses count on or before the second birthday, one per day of service. Simplified: minimum intervals (e.g. MMR on or after the first birthday), the 3-dose rotavirus schedule, history of the illness in place of a vaccine, and contraindications are not checked; a qualifying visit is any wellness, ambulatory, outpatient, virtual or home encounter.',
 '[{"name": "measurement_year", "type": "year", "default": "current_year", "description": "The calendar year in which the children turn 2."}]',
 $q$contact where status = 'active' and deceased_at is empty
  and age at date '{{measurement_year}}-12-31' = 2
  and has encounter where (class in ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home')
    and start_at >= date '{{measurement_year}}-01-01' and start_at < date '{{measurement_year + 1}}-01-01')
  and (count(distinct day of immunization.administered_at where code in value_set 'dtap vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 4
    or count(distinct day of immunization.administered_at where code in value_set 'ipv vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 3
    or count(distinct day of immunization.administered_at where code in value_set 'mmr vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 1
    or count(distinct day of immunization.administered_at where code in value_set 'hib vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 3
    or count(distinct day of immunization.administered_at where code in value_set 'hepatitis b vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 3
    or count(distinct day of immunization.administered_at where code in value_set 'varicella vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 1
    or count(distinct day of immunization.administered_at where code in value_set 'pneumococcal conjugate vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 4
    or count(distinct day of immunization.administered_at where code in value_set 'hepatitis a vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 1
    or count(distinct day of immunization.administered_at where code in value_set 'rotavirus vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 2
    or count(distinct day of immunization.administered_at where code in value_set 'influenza vaccine' and administered_at < contact.birthdate + 2 years + 1 day) < 2)
  and has no encounter where (class = 'hospice' and start_at < date '{{measurement_year + 1}}-01-01'
    and (end_at is empty or end_at >= date '{{measurement_year}}-01-01'))
  and has no procedure where (code in value_set 'hospice'
    and performed_at >= date '{{measurement_year}}-01-01' and performed_at < date '{{measurement_year + 1}}-01-01')$q$),

('influenza_vaccination_gap',
 'Influenza vaccination gap',
 'In the spirit of CMS147 (Preventive Care: Influenza Immunization), simplified',
 'Contacts at least 6 months old when the season starts (1 August of the season year), seen in the 12 months before the season or during it (any encounter from 1 August of the year before to 31 March), with no influenza vaccine from 1 August of the season year to 31 March of the next. Excluded: hospice during the season; deceased or inactive contacts. Simplified: any encounter counts as being in care (the measure requires a visit during the season itself, which an outreach campaign before the season would never see); contraindications, allergies and declined vaccines are not checked.',
 '[{"name": "season", "type": "year", "default": "current_season", "description": "The year the season starts (season 2024 runs from 1 August 2024 to 31 March 2025); by default the season that began on the last 1 August."}]',
 $q$contact where status = 'active' and deceased_at is empty
  and birthdate <= date '{{season}}-02-01'
  and has encounter where (start_at >= date '{{season - 1}}-08-01' and start_at < date '{{season + 1}}-04-01')
  and has no immunization where (code in value_set 'influenza vaccine'
    and administered_at >= date '{{season}}-08-01' and administered_at < date '{{season + 1}}-04-01')
  and has no encounter where (class = 'hospice' and start_at < date '{{season + 1}}-04-01'
    and (end_at is empty or end_at >= date '{{season}}-08-01'))
  and has no procedure where (code in value_set 'hospice'
    and performed_at >= date '{{season}}-08-01' and performed_at < date '{{season + 1}}-04-01')$q$),

('new_diagnosis',
 'New diagnosis',
 NULL,
 'Contacts with a condition from the given value set whose onset is within the last days days (today included). Rolling: membership follows the clock, so a contact leaves the segment days after the onset. Deceased and inactive contacts are left out.',
 '[{"name": "value_set", "type": "value_set", "default": null, "description": "The value set of the diagnosis, e.g. diabetes."},
   {"name": "days", "type": "integer", "default": 30, "min": 1, "max": 36500, "description": "How many days back an onset counts as new."}]',
 $q$contact where status = 'active' and deceased_at is empty
  and has condition where (code in value_set {{value_set}} and onset_date within last {{days}} days)$q$),

('no_recent_visit',
 'No visit in the last years',
 NULL,
 'Active, living patients with no encounter of any class in the last years years (2 by default). Rolling: membership follows the clock.',
 '[{"name": "years", "type": "integer", "default": 2, "min": 1, "max": 100, "description": "How many years without an encounter."}]',
 $q$contact where status = 'active' and deceased_at is empty and contact_type = 'patient'
  and has no encounter where start_at within last {{years}} years$q$);

-- 0.3: template_query fills placeholders through _template_fill (measure pieces use it too).
REVOKE ALL ON FUNCTION outreach._template_fill(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach._template_fill(text, jsonb, text) TO outreach_admin, outreach_marketer, outreach_analyst;
