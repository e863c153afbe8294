-- 0.2.0 -> 0.3.0, fhir: template changes (80_templates.sql): value-set parameters are
-- looked up in outreach.value_set_expansion (sets made of inclusions count).
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
