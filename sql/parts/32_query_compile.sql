-- 32_query_compile.sql: validating segment queries against the registry, compiling them to
-- SQL, and evaluating them (DESIGN §3).  The compiler is C (src/query_compile.c); evaluate
-- and preview run the SQL it produces.

CREATE FUNCTION outreach.compile(q outreach.segment_query, restricted boolean DEFAULT false,
                                 time_zone text DEFAULT NULL) RETURNS text
LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'outreach_compile';
COMMENT ON FUNCTION outreach.compile(outreach.segment_query, boolean, text) IS
  'The SQL a segment query runs (one column, contact_id): validated against the registry; restricted => takes $1 bigint[] and evaluates only those contacts; relative dates in time_zone (default: the session''s)';

CREATE FUNCTION outreach.validate(q outreach.segment_query, segment_name text DEFAULT NULL,
                                  time_zone text DEFAULT NULL) RETURNS void
LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'outreach_validate';
COMMENT ON FUNCTION outreach.validate(outreach.segment_query, text, text) IS
  'Checks a segment query against the registry as compile does; with segment_name, also refuses references back to that segment through other segments';

CREATE FUNCTION outreach.query_dependencies(q outreach.segment_query,
  OUT entities text[], OUT segments text[], OUT time_dependent boolean)
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'outreach_query_dependencies';
COMMENT ON FUNCTION outreach.query_dependencies(outreach.segment_query) IS
  'What a query reads directly: entity names, segment names, and whether the clock changes its result (relative dates, age)';

-- The compiled queries run without JIT (SET jit = off below, and in go_live, re-evaluation
-- and maintenance): the planner costs a correlated EXISTS under OR by its per-row form, so
-- even a 50 ms query passes jit_above_cost, and compiling took 360 ms of a 480 ms evaluate.
CREATE FUNCTION outreach.evaluate(q outreach.segment_query, time_zone text DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
  RETURN QUERY EXECUTE outreach.compile(q, false, time_zone);
END $$;
COMMENT ON FUNCTION outreach.evaluate(outreach.segment_query, text) IS
  'The ids of the contacts matching a segment query now';

CREATE FUNCTION outreach.evaluate(q outreach.segment_query, contact_ids bigint[], time_zone text DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
  IF contact_ids IS NULL THEN
    RAISE EXCEPTION 'contact_ids must not be NULL' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'Pass an empty array to evaluate no contacts, or call evaluate(q) for everyone.';
  END IF;
  RETURN QUERY EXECUTE outreach.compile(q, true, time_zone) USING contact_ids;
END $$;
COMMENT ON FUNCTION outreach.evaluate(outreach.segment_query, bigint[], text) IS
  'Of the given contacts, the ids of those matching a segment query now';

CREATE FUNCTION outreach.preview(q outreach.segment_query, sample_size int DEFAULT 10, time_zone text DEFAULT NULL)
RETURNS TABLE (member_count bigint, sample bigint[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
  IF sample_size IS NULL OR sample_size < 0 OR sample_size > 10000 THEN
    RAISE EXCEPTION 'sample_size must be between 0 and 10000, not %', coalesce(sample_size::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'WITH m AS MATERIALIZED (%s) SELECT (SELECT count(*) FROM m), ARRAY(SELECT contact_id FROM m ORDER BY contact_id LIMIT %s)',
    outreach.compile(q, false, time_zone), sample_size);
END $$;
COMMENT ON FUNCTION outreach.preview(outreach.segment_query, int, text) IS
  'How many contacts a segment query matches now, and the smallest ids among them as a sample';
