-- 0.2.0 -> 0.3.0, fhir: template changes (80_templates.sql).  Value-set parameters are
-- looked up in outreach.value_set_expansion (sets made of inclusions count); placeholders are
-- filled by _template_fill, which the measure reports (82_measures.sql) use too.
CREATE OR REPLACE FUNCTION outreach._template_param_value(template text, p jsonb, given jsonb) RETURNS text
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

CREATE OR REPLACE FUNCTION outreach._template_fill(template text, params jsonb, text_in text) RETURNS text
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

CREATE OR REPLACE FUNCTION outreach.template_query(template text, params jsonb DEFAULT '{}') RETURNS outreach.segment_query
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT outreach._template_fill(template, params, NULL)::outreach.segment_query
$$;

REVOKE ALL ON FUNCTION outreach._template_fill(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach._template_fill(text, jsonb, text) TO outreach_admin, outreach_marketer, outreach_analyst;
