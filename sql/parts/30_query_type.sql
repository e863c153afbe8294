-- 30_query_type.sql: the segment language's SQL type, outreach.segment_query (DESIGN §3).
--
-- Input parses the text and stores its canonical form, so equality is equality of the
-- canonical texts; output prints that form.  The binary form is a version byte and the
-- text; receive repeats every check of input.  Names are not checked here but when a query
-- is compiled, so a query may be written before the entities it uses are registered.

CREATE TYPE outreach.segment_query;

-- input and receive are STABLE, not IMMUTABLE: an ambiguous date such as date '01/02/2024'
-- is read according to DateStyle (and stored in ISO form, so its meaning is fixed then).
CREATE FUNCTION outreach.segment_query_in(cstring) RETURNS outreach.segment_query
  AS 'MODULE_PATHNAME', 'segment_query_in' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION outreach.segment_query_out(outreach.segment_query) RETURNS cstring
  AS 'MODULE_PATHNAME', 'segment_query_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION outreach.segment_query_recv(internal) RETURNS outreach.segment_query
  AS 'MODULE_PATHNAME', 'segment_query_recv' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION outreach.segment_query_send(outreach.segment_query) RETURNS bytea
  AS 'MODULE_PATHNAME', 'segment_query_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE outreach.segment_query (
  INPUT = outreach.segment_query_in,
  OUTPUT = outreach.segment_query_out,
  RECEIVE = outreach.segment_query_recv,
  SEND = outreach.segment_query_send,
  INTERNALLENGTH = VARIABLE,
  STORAGE = extended,
  CATEGORY = 'U'
);
COMMENT ON TYPE outreach.segment_query IS
  'A segment definition in the outreach segment language; stored and printed in canonical form.';

CREATE FUNCTION outreach.segment_query_eq(outreach.segment_query, outreach.segment_query) RETURNS boolean
  AS 'MODULE_PATHNAME', 'segment_query_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION outreach.segment_query_ne(outreach.segment_query, outreach.segment_query) RETURNS boolean
  AS 'MODULE_PATHNAME', 'segment_query_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION outreach.segment_query_lt(outreach.segment_query, outreach.segment_query) RETURNS boolean
  AS 'MODULE_PATHNAME', 'segment_query_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION outreach.segment_query_le(outreach.segment_query, outreach.segment_query) RETURNS boolean
  AS 'MODULE_PATHNAME', 'segment_query_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION outreach.segment_query_gt(outreach.segment_query, outreach.segment_query) RETURNS boolean
  AS 'MODULE_PATHNAME', 'segment_query_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION outreach.segment_query_ge(outreach.segment_query, outreach.segment_query) RETURNS boolean
  AS 'MODULE_PATHNAME', 'segment_query_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION outreach.segment_query_cmp(outreach.segment_query, outreach.segment_query) RETURNS integer
  AS 'MODULE_PATHNAME', 'segment_query_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION outreach.segment_query_hash(outreach.segment_query) RETURNS integer
  AS 'MODULE_PATHNAME', 'segment_query_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR outreach.= (
  LEFTARG = outreach.segment_query, RIGHTARG = outreach.segment_query,
  FUNCTION = outreach.segment_query_eq, COMMUTATOR = OPERATOR(outreach.=),
  NEGATOR = OPERATOR(outreach.<>), RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR outreach.<> (
  LEFTARG = outreach.segment_query, RIGHTARG = outreach.segment_query,
  FUNCTION = outreach.segment_query_ne, COMMUTATOR = OPERATOR(outreach.<>),
  NEGATOR = OPERATOR(outreach.=), RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR outreach.< (
  LEFTARG = outreach.segment_query, RIGHTARG = outreach.segment_query,
  FUNCTION = outreach.segment_query_lt, COMMUTATOR = OPERATOR(outreach.>),
  NEGATOR = OPERATOR(outreach.>=), RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR outreach.<= (
  LEFTARG = outreach.segment_query, RIGHTARG = outreach.segment_query,
  FUNCTION = outreach.segment_query_le, COMMUTATOR = OPERATOR(outreach.>=),
  NEGATOR = OPERATOR(outreach.>), RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR outreach.> (
  LEFTARG = outreach.segment_query, RIGHTARG = outreach.segment_query,
  FUNCTION = outreach.segment_query_gt, COMMUTATOR = OPERATOR(outreach.<),
  NEGATOR = OPERATOR(outreach.<=), RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR outreach.>= (
  LEFTARG = outreach.segment_query, RIGHTARG = outreach.segment_query,
  FUNCTION = outreach.segment_query_ge, COMMUTATOR = OPERATOR(outreach.<=),
  NEGATOR = OPERATOR(outreach.<), RESTRICT = scalargesel, JOIN = scalargejoinsel
);

-- Ordering is the byte order of the canonical texts: it makes DISTINCT, GROUP BY, unique
-- indexes and merge joins work; it has no meaning beyond that.
CREATE OPERATOR CLASS outreach.segment_query_ops
  DEFAULT FOR TYPE outreach.segment_query USING btree AS
    OPERATOR 1 outreach.<,
    OPERATOR 2 outreach.<=,
    OPERATOR 3 outreach.=,
    OPERATOR 4 outreach.>=,
    OPERATOR 5 outreach.>,
    FUNCTION 1 outreach.segment_query_cmp(outreach.segment_query, outreach.segment_query);

CREATE OPERATOR CLASS outreach.segment_query_hash_ops
  DEFAULT FOR TYPE outreach.segment_query USING hash AS
    OPERATOR 1 outreach.=,
    FUNCTION 1 outreach.segment_query_hash(outreach.segment_query);

-- The parse tree of a text, fully parenthesised, for tests and debugging: without locations,
-- two texts mean the same query exactly when their trees are equal.
CREATE FUNCTION outreach._segment_query_tree(q text, with_locations boolean DEFAULT false) RETURNS text
  AS 'MODULE_PATHNAME', 'segment_query_tree' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION outreach._segment_query_tree(text, boolean) IS
  'The parse tree of a segment query text, fully parenthesised (for tests and debugging).';
