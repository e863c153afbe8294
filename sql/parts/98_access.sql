-- 98_access.sql: who may do what (DESIGN §8).  Last part on purpose: it works from the
-- catalog, so the tables, views and functions every earlier part created are covered.
--
-- Owns:
--   * the privileges of the four group roles of 01_roles.sql on the 0.2.0 objects, and the
--     revocation of everything from PUBLIC on every object of schema outreach;
--   * organization scoping: outreach.contact_organization, outreach.organization_grant,
--     grant_organization() / revoke_organization(), and row-level security on contact and on
--     every table with a contact_id or patient_id column (plus the tables reachable only
--     through one of those);
--   * segmentation privileges per registered entity and field (segmentation_grant,
--     grant_segmentation() / revoke_segmentation()), checked whenever a query is compiled,
--     validated, stored, taken live, evaluated or previewed;
--   * the identifier-free, small-count-suppressed reporting views of outreach_analyst;
--   * which API functions run as the extension owner (SECURITY DEFINER, pinned search_path)
--     and, for those, the checks of the real caller.
--
-- The caller.  A SECURITY DEFINER function sees current_user = its owner.  The functions
-- here act for outreach._caller(): the role set with SET ROLE, else the session user.  That
-- is the role a person or application logged in as; a function owned by another role that
-- calls outreach on its caller's behalf gets its caller's rights (docs/security.md).

-- ---------------------------------------------------------------------------------------
-- Organizations
-- ---------------------------------------------------------------------------------------

CREATE TABLE outreach.contact_organization (
  contact_id bigint NOT NULL REFERENCES outreach.contact (id) ON DELETE CASCADE,
  account_id bigint NOT NULL REFERENCES outreach.account (id) ON DELETE CASCADE,
  PRIMARY KEY (contact_id, account_id)
);
CREATE INDEX contact_organization_account ON outreach.contact_organization (account_id, contact_id);
SELECT outreach._dump('outreach.contact_organization');
COMMENT ON TABLE outreach.contact_organization IS
  'The organizations (accounts) a contact belongs to besides contact.account_id; a role granted one of them sees the contact';
COMMENT ON COLUMN outreach.contact_organization.contact_id IS 'The contact (outreach.contact.id) who also belongs to the organization';
COMMENT ON COLUMN outreach.contact_organization.account_id IS 'The additional organization (outreach.account.id); roles granted it see the contact';

CREATE TABLE outreach.organization_grant (
  grantee    name NOT NULL,
  account_id bigint REFERENCES outreach.account (id) ON DELETE CASCADE,
  granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  granted_by name NOT NULL,
  UNIQUE NULLS NOT DISTINCT (grantee, account_id)
);
SELECT outreach._dump('outreach.organization_grant');
COMMENT ON TABLE outreach.organization_grant IS
  'Organizations (accounts) whose patients a role sees; account_id NULL means every organization';
COMMENT ON COLUMN outreach.organization_grant.grantee IS 'The role granted the organization; roles inheriting from it see the same patients';
COMMENT ON COLUMN outreach.organization_grant.account_id IS 'The organization (outreach.account.id) whose patients the role sees; NULL: every organization (granted with ''*'')';
COMMENT ON COLUMN outreach.organization_grant.granted_at IS 'When grant_organization recorded the grant (transaction time)';
COMMENT ON COLUMN outreach.organization_grant.granted_by IS 'The role that called grant_organization';

-- The helpers the policies evaluate are plain SQL without a SET clause, every name
-- qualified, so the planner inlines them and a query pays for them once (an InitPlan), not
-- per row or per GUC switch.

-- The role a request acts for (see the header): SET ROLE's role, else the session user.
CREATE FUNCTION outreach._caller() RETURNS name
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none' THEN pg_catalog.session_user()::name
              ELSE pg_catalog.current_setting('role')::name END
$$;

-- Sees every organization: superusers, roles that bypass row-level security, and members of
-- outreach_admin.
CREATE FUNCTION outreach._unscoped(r name) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT pg_catalog.pg_has_role(r, 'outreach_admin', 'USAGE')
      OR coalesce((SELECT a.rolsuper OR a.rolbypassrls FROM pg_catalog.pg_roles a WHERE a.rolname OPERATOR(pg_catalog.=) r), false)
$$;

-- The organizations role r sees: NULL for all of them, else the accounts granted to r or to
-- a role r inherits from.  Runs with the privileges of whoever calls it: a policy (the
-- querying role, which reads its own grants only) or a SECURITY DEFINER function (which
-- reads every grant).
CREATE FUNCTION outreach._scope_of(r name) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN outreach._unscoped(r) THEN NULL
    WHEN pg_catalog.bool_or(g.account_id IS NULL) THEN NULL
    ELSE coalesce(pg_catalog.array_agg(g.account_id) FILTER (WHERE g.account_id IS NOT NULL), '{}') END
  FROM outreach.organization_grant g
  WHERE pg_catalog.pg_has_role(r, pg_catalog.to_regrole(g.grantee), 'USAGE')
$$;

-- What policies read: the querying role's scope.  (Policies do not apply to superusers and
-- BYPASSRLS roles, so only the admin group matters here.)  _scope() is C (src/access.c): it
-- keeps _scope_compute()'s result per user until the transaction ends, a subtransaction
-- rolls back or organization_grant changes, so the policies of a statement pay for it once.
CREATE FUNCTION outreach._scope_compute() RETURNS bigint[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
  accounts bigint[];
  every boolean;
BEGIN
  IF pg_catalog.pg_has_role(current_user, 'outreach_admin', 'USAGE') THEN
    RETURN NULL;
  END IF;
  SELECT pg_catalog.bool_or(g.account_id IS NULL),
         coalesce(pg_catalog.array_agg(g.account_id) FILTER (WHERE g.account_id IS NOT NULL), '{}')
    INTO every, accounts
  FROM outreach.organization_grant g
  WHERE pg_catalog.pg_has_role(current_user, pg_catalog.to_regrole(g.grantee), 'USAGE');
  RETURN CASE WHEN every THEN NULL ELSE accounts END;
END $$;

CREATE FUNCTION outreach._scope() RETURNS bigint[]
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'outreach_scope';

CREATE FUNCTION outreach._scope_reset() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'outreach_scope_reset';

-- Whether contact cid belongs to one of the organizations in scope (NULL scope: all).
-- Read by the SECURITY DEFINER functions, which bypass the policies.
CREATE FUNCTION outreach._in_scope(cid bigint, scope bigint[]) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT scope IS NULL OR EXISTS (
    SELECT 1 FROM outreach.contact c WHERE c.id OPERATOR(pg_catalog.=) cid
      AND (c.account_id OPERATOR(pg_catalog.=) ANY (scope)
           OR EXISTS (SELECT 1 FROM outreach.contact_organization co
                      WHERE co.contact_id OPERATOR(pg_catalog.=) c.id AND co.account_id OPERATOR(pg_catalog.=) ANY (scope))))
$$;

-- The contacts of the organizations in scope (a set, for semi-joins with large results;
-- a contact may appear twice, which a semi-join ignores).
CREATE FUNCTION outreach._scope_contacts(scope bigint[]) RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
  SELECT c.id FROM outreach.contact c WHERE c.account_id OPERATOR(pg_catalog.=) ANY (scope)
  UNION ALL
  SELECT co.contact_id FROM outreach.contact_organization co WHERE co.account_id OPERATOR(pg_catalog.=) ANY (scope)
$$;

CREATE FUNCTION outreach._account_id(account text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  aid bigint;
BEGIN
  SELECT a.id INTO aid FROM outreach.account a WHERE a.name = account OR a.external_id = account
  ORDER BY a.name = account DESC LIMIT 1;
  IF aid IS NULL AND account ~ '^[0-9]+$' THEN
    SELECT a.id INTO aid FROM outreach.account a WHERE a.id = account::bigint;
  END IF;
  IF aid IS NULL THEN
    RAISE EXCEPTION 'organization "%" does not exist', account USING ERRCODE = 'undefined_object',
      HINT = 'Organizations are rows of outreach.account, named by name, external_id or id; ''*'' means every organization.';
  END IF;
  RETURN aid;
END $$;

CREATE FUNCTION outreach._require_role(r name) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF r IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles a WHERE a.rolname = r) THEN
    RAISE EXCEPTION 'role "%" does not exist', coalesce(r::text, 'NULL') USING ERRCODE = 'undefined_object';
  END IF;
END $$;

-- grant_organization(role, account): role (and every role that inherits from it) sees the
-- patients of account; '*' means every organization.
CREATE FUNCTION outreach.grant_organization(role name, account text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  aid bigint;
BEGIN
  PERFORM outreach._require_role(role);
  IF account IS NULL THEN
    RAISE EXCEPTION 'grant_organization needs an organization' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'Name an account, or pass ''*'' for every organization.';
  END IF;
  IF account <> '*' THEN
    aid := outreach._account_id(account);
  END IF;
  IF EXISTS (SELECT 1 FROM outreach.organization_grant g WHERE g.grantee = role AND g.account_id IS NOT DISTINCT FROM aid) THEN
    RETURN;
  END IF;
  INSERT INTO outreach.organization_grant (grantee, account_id, granted_by) VALUES (role, aid, outreach._caller());
  PERFORM outreach._audit('grant', 'organization', account, pg_catalog.jsonb_build_object('role', role, 'account_id', aid));
END $$;
COMMENT ON FUNCTION outreach.grant_organization(name, text) IS
  'Lets a role (and the roles inheriting from it) see the patients of an organization (account name, external id or id; ''*'' = all)';

CREATE FUNCTION outreach.revoke_organization(role name, account text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  aid bigint;
  n bigint;
BEGIN
  IF account IS NULL THEN
    RAISE EXCEPTION 'revoke_organization needs an organization' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'Name an account, or pass ''*'' for the grant of every organization.';
  END IF;
  IF account <> '*' THEN
    aid := outreach._account_id(account);
  END IF;
  DELETE FROM outreach.organization_grant g WHERE g.grantee = role AND g.account_id IS NOT DISTINCT FROM aid;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM outreach._audit('revoke', 'organization', account, pg_catalog.jsonb_build_object('role', role, 'account_id', aid));
  END IF;
END $$;
COMMENT ON FUNCTION outreach.revoke_organization(name, text) IS
  'Takes back an organization granted with grant_organization';

-- ---------------------------------------------------------------------------------------
-- Row-level security
-- ---------------------------------------------------------------------------------------
-- contact: in scope when its account, or one of its contact_organization rows, is granted.
-- Every other table with patient data: in scope when its contact is visible (the EXISTS on
-- contact applies contact's own policy, an index probe per row).  The extension owner (the
-- maintenance triggers, the ticks, the SECURITY DEFINER functions) is not subject to them.

CREATE TRIGGER scope_reset AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON outreach.organization_grant
  FOR EACH STATEMENT EXECUTE FUNCTION outreach._scope_reset();
ALTER TABLE outreach.organization_grant ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_grants ON outreach.organization_grant
  USING (pg_catalog.pg_has_role(current_user, pg_catalog.to_regrole(grantee), 'USAGE'));

ALTER TABLE outreach.contact_organization ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_scope ON outreach.contact_organization
  USING ((SELECT outreach._scope()) IS NULL OR account_id = ANY ((SELECT outreach._scope())::bigint[]));

ALTER TABLE outreach.contact ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_scope ON outreach.contact
  USING ((SELECT outreach._scope()) IS NULL
         OR account_id = ANY ((SELECT outreach._scope())::bigint[])
         OR EXISTS (SELECT 1 FROM outreach.contact_organization co WHERE co.contact_id = contact.id));

DO $rls$
DECLARE
  t record;
BEGIN
  FOR t IN
    SELECT c.oid::regclass AS rel, min(a.attname) AS col
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind IN ('r', 'p')
      AND a.attname IN ('contact_id', 'patient_id')
      AND c.relname NOT IN ('contact_organization')
    GROUP BY c.oid
  LOOP
    EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t.rel);
    EXECUTE pg_catalog.format(
      'CREATE POLICY organization_scope ON %s USING ((SELECT outreach._scope()) IS NULL '
      'OR EXISTS (SELECT 1 FROM outreach.contact c WHERE c.id = %I))', t.rel, t.col);
  END LOOP;
END
$rls$;

-- Reachable only through a table above.  An account (an organization, or a household of
-- the generator and imports) is visible when granted or when one of its contacts is.
ALTER TABLE outreach.account ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_scope ON outreach.account
  USING ((SELECT outreach._scope()) IS NULL
         OR id = ANY ((SELECT outreach._scope())::bigint[])
         OR EXISTS (SELECT 1 FROM outreach.contact c WHERE c.account_id = account.id));
ALTER TABLE outreach.enrollment_step ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_scope ON outreach.enrollment_step
  USING ((SELECT outreach._scope()) IS NULL
         OR EXISTS (SELECT 1 FROM outreach.enrollment e WHERE e.id = enrollment_id));
ALTER TABLE outreach.segment_pending ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON outreach.segment_pending USING (false);
ALTER TABLE outreach.synthea_source_row ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON outreach.synthea_source_row USING (false);

-- Member lists read through the views are exports too: each query of segment_members writes
-- one audit row (an InitPlan, once per query, not per row).  The view keeps its columns and
-- definition (read back from the catalog) and gains the audit condition.
CREATE FUNCTION outreach._audit_read(view_name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM outreach._audit('export', 'view', view_name);
  RETURN true;
END $$;
DO $members$
BEGIN
  EXECUTE pg_catalog.format(
    'CREATE OR REPLACE VIEW outreach.segment_members AS SELECT v.* FROM (%s) v WHERE (SELECT outreach._audit_read(%L))',
    rtrim(pg_catalog.pg_get_viewdef('outreach.segment_members'::regclass), ';'), 'segment_members');
END
$members$;

-- Views run with the rights of whoever reads them, so the policies and column privileges
-- of the tables behind them apply (a view must not show what its tables hide).  Reporting
-- views (named report_*, like the analyst's below) are the exception: they are made to be
-- read without rights on the tables, and filter by the reader's organizations and suppress
-- small counts themselves.
DO $views$
DECLARE
  v regclass;
BEGIN
  FOR v IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
           WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind = 'v' AND c.relname !~ '^report_'
  LOOP
    EXECUTE pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', v);
  END LOOP;
END
$views$;
GRANT SELECT ON outreach.segment_pending TO outreach_marketer;

-- ---------------------------------------------------------------------------------------
-- Segmentation rights: targeting is not browsing
-- ---------------------------------------------------------------------------------------

CREATE TABLE outreach.segmentation_grant (
  entity     text NOT NULL REFERENCES outreach.entity (name) ON DELETE CASCADE ON UPDATE CASCADE,
  field      name,
  grantee    name NOT NULL,
  granted_by name NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  UNIQUE NULLS NOT DISTINCT (entity, field, grantee)
);
-- Dumped whole: a restore replaces the default grants with the dumped ones, so a revoked
-- default stays revoked (99_restore_guard.sql).
SELECT outreach._dump('outreach.segmentation_grant');
COMMENT ON TABLE outreach.segmentation_grant IS
  'Who may use a registered entity (field NULL: every field) in segment queries, without any right to read its rows';
COMMENT ON COLUMN outreach.segmentation_grant.entity IS 'The registered entity (outreach.entity.name) the grantee may segment on';
COMMENT ON COLUMN outreach.segmentation_grant.field IS 'The entity field (outreach.entity_field.field) the grantee may use in queries; NULL: every field of the entity';
COMMENT ON COLUMN outreach.segmentation_grant.grantee IS 'The role given the right; roles inheriting from it have it too';
COMMENT ON COLUMN outreach.segmentation_grant.granted_by IS 'The role that called grant_segmentation (an admin or the table''s owner); outreach for the built-in grants to outreach_marketer';
COMMENT ON COLUMN outreach.segmentation_grant.granted_at IS 'When the right was granted (transaction time)';
INSERT INTO outreach.segmentation_grant (entity, field, grantee, granted_by)
SELECT e.name, NULL, 'outreach_marketer', 'outreach' FROM outreach.entity e WHERE e.builtin
ON CONFLICT DO NOTHING;
GRANT SELECT ON outreach.segmentation_grant TO outreach_marketer;

-- The (entity, field) pairs a query reads, from its parse tree: a node's own field belongs to
-- its relation (has / count / latest ...) or, without one, to the relation it is nested in.
CREATE FUNCTION outreach._segmentation_refs(q outreach.segment_query)
RETURNS TABLE (entity text, field text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  tree text := outreach._segment_query_tree(q::text, false);
  tok text;
  ctx text[] := ARRAY['contact'];   -- relation each open node's children read
  own text[] := ARRAY[NULL];        -- relation of each open node (NULL: none)
  flds text[] := ARRAY[''];         -- fields of each open node, '|'-separated
  d int := 1;
  f text;
  unq text;
BEGIN
  FOR tok IN SELECT m[1] FROM regexp_matches(tree,
      '(''(?:[^'']|'''')*''|\(relation (?:"(?:[^"]|"")*"|[a-z_0-9]+)|\(contact_field (?:"(?:[^"]|"")*"|[a-z_0-9]+)|\([a-z_]+|\)|field=(?:"(?:[^"]|"")*"|[a-z_0-9]+))', 'g') m
  LOOP
    IF left(tok, 1) = '''' THEN
      CONTINUE;
    ELSIF tok LIKE '(relation %' THEN
      unq := substr(tok, 11);
      IF left(unq, 1) = '"' THEN unq := replace(substr(unq, 2, length(unq) - 2), '""', '"'); END IF;
      own[d] := unq;
      ctx[d] := unq;
      d := d + 1; ctx[d] := unq; own[d] := NULL; flds[d] := '';   -- the relation's own ")"
    ELSIF tok LIKE '(contact_field %' THEN
      unq := substr(tok, 16);
      IF left(unq, 1) = '"' THEN unq := replace(substr(unq, 2, length(unq) - 2), '""', '"'); END IF;
      entity := 'contact'; field := unq; RETURN NEXT;
      d := d + 1; ctx[d] := ctx[d - 1]; own[d] := NULL; flds[d] := '';
    ELSIF left(tok, 1) = '(' THEN
      d := d + 1; ctx[d] := ctx[d - 1]; own[d] := NULL; flds[d] := '';
    ELSIF tok = ')' THEN
      FOREACH f IN ARRAY coalesce(string_to_array(nullif(flds[d], ''), '|'), '{}') LOOP
        entity := coalesce(own[d], ctx[d - 1], 'contact'); field := f; RETURN NEXT;
      END LOOP;
      d := d - 1;
    ELSE
      unq := substr(tok, 7);
      IF left(unq, 1) = '"' THEN unq := replace(substr(unq, 2, length(unq) - 2), '""', '"'); END IF;
      flds[d] := CASE WHEN flds[d] = '' THEN unq ELSE flds[d] || '|' || unq END;
    END IF;
  END LOOP;
END $$;

-- Refuses a query that uses an entity or field role r may not segment on.  Allowed: roles
-- that see every organization (admin, superusers), the owner of the entity's table, and the
-- grantees of outreach.segmentation_grant.  (The registry takes tables only, so what a
-- segment reads as the extension owner is rows of a table whose owner allowed it.)
CREATE FUNCTION outreach._check_segmentation(q outreach.segment_query)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r name := outreach._caller();
  ref record;
  e outreach.entity;
BEGIN
  IF q IS NULL OR outreach._unscoped(r) THEN
    RETURN;
  END IF;
  FOR ref IN
    SELECT DISTINCT x.entity, x.field FROM (
      SELECT d.e AS entity, NULL::text AS field FROM outreach.query_dependencies(q) qd, unnest(qd.entities) d(e)
      UNION ALL SELECT s.entity, s.field FROM outreach._segmentation_refs(q) s
      UNION ALL SELECT 'contact', NULL) x
    ORDER BY 1, 2 NULLS FIRST
  LOOP
    SELECT * INTO e FROM outreach.entity x WHERE x.name = ref.entity;
    CONTINUE WHEN NOT FOUND;   -- not an entity: the compiler reports it
    CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = e.relation AND pg_catalog.pg_has_role(r, c.relowner, 'USAGE'));
    CONTINUE WHEN EXISTS (
      SELECT 1 FROM outreach.segmentation_grant g JOIN pg_catalog.pg_roles a ON a.rolname = g.grantee
      WHERE g.entity = e.name AND pg_catalog.pg_has_role(r, a.oid, 'USAGE')
        AND (ref.field IS NULL OR g.field IS NULL OR g.field = ref.field));
    IF ref.field IS NULL THEN
      RAISE EXCEPTION 'permission denied to segment on entity "%"', e.name USING ERRCODE = 'insufficient_privilege',
        DETAIL = format('Role %s has no segmentation right on %s.', r, e.name),
        HINT = format('The owner of %s or an admin can allow it: SELECT outreach.grant_segmentation(%L, %L);', e.relation, e.name, r);
    ELSE
      RAISE EXCEPTION 'permission denied to segment on field "%.%"', e.name, ref.field USING ERRCODE = 'insufficient_privilege',
        DETAIL = format('Role %s may segment on some fields of %s, not on %s.', r, e.name, ref.field),
        HINT = format('The owner of %s or an admin can allow it: SELECT outreach.grant_segmentation(%L, %L, ARRAY[%L]);', e.relation, e.name, r, ref.field);
    END IF;
  END LOOP;
END $$;

CREATE FUNCTION outreach._require_entity_owner(entity text) RETURNS outreach.entity
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e outreach.entity;
  r name := outreach._caller();
BEGIN
  SELECT * INTO e FROM outreach.entity x WHERE x.name = entity;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'entity "%" is not registered', entity USING ERRCODE = 'undefined_object',
      HINT = 'outreach.entity_overview lists the registered entities.';
  END IF;
  IF NOT outreach._unscoped(r) AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = e.relation AND pg_catalog.pg_has_role(r, c.relowner, 'USAGE')) THEN
    RAISE EXCEPTION 'permission denied to grant segmentation on entity "%"', entity USING ERRCODE = 'insufficient_privilege',
      DETAIL = format('Only the owner of %s or an admin decides who segments on it.', e.relation);
  END IF;
  RETURN e;
END $$;

-- grant_segmentation(entity, role, fields): role may use entity (those fields only, or all
-- when fields is NULL) in segment queries.  Called by an admin or the owner of its table.
CREATE FUNCTION outreach.grant_segmentation(entity text, role name, fields text[] DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e outreach.entity := outreach._require_entity_owner(entity);
  bad text;
BEGIN
  PERFORM outreach._require_role(role);
  SELECT f INTO bad FROM unnest(fields) f
  WHERE NOT EXISTS (SELECT 1 FROM outreach.entity_field x WHERE x.entity = e.name AND x.field = f) LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'entity "%" has no field "%"', e.name, bad USING ERRCODE = 'undefined_column',
      HINT = 'outreach.entity_field lists the fields of each entity.';
  END IF;
  INSERT INTO outreach.segmentation_grant (entity, field, grantee, granted_by)
  SELECT e.name, f, role, outreach._caller() FROM unnest(coalesce(fields, ARRAY[NULL::text])) f
  ON CONFLICT DO NOTHING;
  PERFORM outreach._audit('grant', 'segmentation', e.name, pg_catalog.jsonb_build_object('role', role, 'fields', fields));
END $$;
COMMENT ON FUNCTION outreach.grant_segmentation(text, name, text[]) IS
  'Lets a role use a registered entity (given fields, or all) in segment queries; by an admin or the owner of the table';

CREATE FUNCTION outreach.revoke_segmentation(entity text, role name, fields text[] DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e outreach.entity := outreach._require_entity_owner(entity);
BEGIN
  DELETE FROM outreach.segmentation_grant g
  WHERE g.entity = e.name AND g.grantee = role
    AND (fields IS NULL OR g.field = ANY (fields));
  PERFORM outreach._audit('revoke', 'segmentation', e.name, pg_catalog.jsonb_build_object('role', role, 'fields', fields));
END $$;
COMMENT ON FUNCTION outreach.revoke_segmentation(text, name, text[]) IS
  'Takes back segmentation rights (given fields, or every grant of the role on the entity)';

-- ---------------------------------------------------------------------------------------
-- The API functions that read patients for their caller: checked and scoped
-- ---------------------------------------------------------------------------------------
-- Each keeps its name and signature; the body written by its part is renamed to an internal
-- _..._unchecked function that only the extension owner may call.

CREATE FUNCTION outreach._move_comment(from_fn regprocedure, to_fn regprocedure) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('COMMENT ON FUNCTION %s IS %L', to_fn, pg_catalog.obj_description(from_fn, 'pg_proc'));
  EXECUTE format('COMMENT ON FUNCTION %s IS %L', from_fn,
                 'Internal: the unchecked body of ' || regexp_replace(to_fn::text, '\(.*', '') || ', called by it after its access checks');
END $$;

-- compile and validate: the same C functions behind a check of the caller's rights (in C,
-- src/access.c, so that their errors read exactly as before).
CREATE OR REPLACE FUNCTION outreach.compile(q outreach.segment_query, restricted boolean DEFAULT false,
                                            time_zone text DEFAULT NULL) RETURNS text
LANGUAGE c STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outreach_compile_checked';
CREATE OR REPLACE FUNCTION outreach.validate(q outreach.segment_query, segment_name text DEFAULT NULL,
                                             time_zone text DEFAULT NULL) RETURNS void
LANGUAGE c STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'outreach_validate_checked';

ALTER FUNCTION outreach.evaluate(outreach.segment_query, text) RENAME TO _evaluate_unchecked;
CREATE FUNCTION outreach.evaluate(q outreach.segment_query, time_zone text DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  scope bigint[] := outreach._scope_of(outreach._caller());
BEGIN
  PERFORM outreach._check_segmentation(q);
  PERFORM outreach._audit('export', 'query', q::text, '{"function": "evaluate"}');
  IF scope IS NULL THEN
    RETURN QUERY SELECT e FROM outreach._evaluate_unchecked(q, time_zone) e;
  ELSE
    RETURN QUERY SELECT e FROM outreach._evaluate_unchecked(q, time_zone) e WHERE e IN (SELECT x FROM outreach._scope_contacts(scope) x);
  END IF;
END $$;
SELECT outreach._move_comment('outreach._evaluate_unchecked(outreach.segment_query, text)',
                              'outreach.evaluate(outreach.segment_query, text)');

ALTER FUNCTION outreach.evaluate(outreach.segment_query, bigint[], text) RENAME TO _evaluate_unchecked;
CREATE FUNCTION outreach.evaluate(q outreach.segment_query, contact_ids bigint[], time_zone text DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
  IF contact_ids IS NULL THEN
    RAISE EXCEPTION 'contact_ids must not be NULL' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'Pass an empty array to evaluate no contacts, or call evaluate(q) for everyone.';
  END IF;
  PERFORM outreach._check_segmentation(q);
  IF outreach._scope_of(outreach._caller()) IS NULL THEN
    RETURN QUERY SELECT e FROM outreach._evaluate_unchecked(q, contact_ids, time_zone) e;
  ELSE
    RETURN QUERY SELECT e FROM outreach._evaluate_unchecked(q, contact_ids, time_zone) e
                 WHERE e IN (SELECT x FROM outreach._scope_contacts(outreach._scope_of(outreach._caller())) x);
  END IF;
END $$;
SELECT outreach._move_comment('outreach._evaluate_unchecked(outreach.segment_query, bigint[], text)',
                              'outreach.evaluate(outreach.segment_query, bigint[], text)');

ALTER FUNCTION outreach.preview(outreach.segment_query, int, text) RENAME TO _preview_unchecked;
CREATE FUNCTION outreach.preview(q outreach.segment_query, sample_size int DEFAULT 10, time_zone text DEFAULT NULL)
RETURNS TABLE (member_count bigint, sample bigint[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
  IF sample_size IS NULL OR sample_size < 0 OR sample_size > 10000 THEN
    RAISE EXCEPTION 'sample_size must be between 0 and 10000, not %', coalesce(sample_size::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM outreach._check_segmentation(q);
  PERFORM outreach._audit('export', 'query', q::text, '{"function": "preview"}');
  DECLARE
    scope bigint[] := outreach._scope_of(outreach._caller());
  BEGIN
    IF scope IS NULL THEN
      RETURN QUERY SELECT * FROM outreach._preview_unchecked(q, sample_size, time_zone);
    ELSE
      RETURN QUERY
        WITH m AS MATERIALIZED (SELECT e FROM outreach._evaluate_unchecked(q, time_zone) e
                                WHERE e IN (SELECT x FROM outreach._scope_contacts(scope) x))
        SELECT (SELECT count(*) FROM m), ARRAY(SELECT e FROM m ORDER BY e LIMIT sample_size);
    END IF;
  END;
END $$;
SELECT outreach._move_comment('outreach._preview_unchecked(outreach.segment_query, integer, text)',
                              'outreach.preview(outreach.segment_query, integer, text)');

-- Storing a definition (create_segment, alter_segment, create_segment_from_template) and
-- taking a segment live check the stored query for the caller.
ALTER FUNCTION outreach.create_segment(text, outreach.segment_query, text) RENAME TO _create_segment_unchecked;
CREATE FUNCTION outreach.create_segment(name text, q outreach.segment_query, time_zone text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM outreach._check_segmentation(q);
  RETURN outreach._create_segment_unchecked(name, q, time_zone);
END $$;
SELECT outreach._move_comment('outreach._create_segment_unchecked(text, outreach.segment_query, text)',
                              'outreach.create_segment(text, outreach.segment_query, text)');

ALTER FUNCTION outreach.alter_segment(text, outreach.segment_query) RENAME TO _alter_segment_unchecked;
CREATE FUNCTION outreach.alter_segment(segment text, q outreach.segment_query) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM outreach._check_segmentation(q);
  PERFORM outreach._alter_segment_unchecked(segment, q);
END $$;
SELECT outreach._move_comment('outreach._alter_segment_unchecked(text, outreach.segment_query)',
                              'outreach.alter_segment(text, outreach.segment_query)');

ALTER FUNCTION outreach.go_live(text) RENAME TO _go_live_unchecked;
CREATE FUNCTION outreach.go_live(segment text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
  PERFORM outreach._check_segmentation(s.definition) FROM outreach.segment s WHERE s.name = segment;
  PERFORM outreach._go_live_unchecked(segment);
END $$;
SELECT outreach._move_comment('outreach._go_live_unchecked(text)', 'outreach.go_live(text)');

ALTER FUNCTION outreach.segment_members_at(text, timestamptz) RENAME TO _segment_members_at_unchecked;
CREATE FUNCTION outreach.segment_members_at(segment text, at timestamptz) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  scope bigint[] := outreach._scope_of(outreach._caller());
BEGIN
  PERFORM outreach._audit('export', 'segment', segment, '{"function": "segment_members_at"}');
  RETURN QUERY SELECT e FROM outreach._segment_members_at_unchecked(segment, at) e
               WHERE scope IS NULL OR e IN (SELECT x FROM outreach._scope_contacts(scope) x);
END $$;
SELECT outreach._move_comment('outreach._segment_members_at_unchecked(text, timestamptz)',
                              'outreach.segment_members_at(text, timestamptz)');

-- A contact of another organization does not exist for the caller: the same error as an
-- unknown id, and nothing about the contact in it.
ALTER FUNCTION outreach._require_contact(bigint) RENAME TO _require_contact_exists;
CREATE FUNCTION outreach._require_contact(contact_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM outreach._require_contacts(ARRAY[contact_id]);
  PERFORM outreach._require_contact_exists(contact_id);
END $$;

CREATE FUNCTION outreach._require_contacts(contact_ids bigint[]) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  scope bigint[] := outreach._scope_of(outreach._caller());
  bad bigint;
BEGIN
  IF scope IS NULL THEN
    RETURN;
  END IF;
  SELECT c INTO bad FROM unnest(contact_ids) c WHERE c IS NOT NULL AND NOT outreach._in_scope(c, scope) LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'contact % does not exist', bad USING ERRCODE = 'foreign_key_violation';
  END IF;
END $$;

ALTER FUNCTION outreach.add_members(text, bigint[]) RENAME TO _add_members_unchecked;
CREATE FUNCTION outreach.add_members(segment text, contact_ids bigint[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM outreach._require_contacts(contact_ids);
  RETURN outreach._add_members_unchecked(segment, contact_ids);
END $$;
SELECT outreach._move_comment('outreach._add_members_unchecked(text, bigint[])', 'outreach.add_members(text, bigint[])');

ALTER FUNCTION outreach.remove_members(text, bigint[]) RENAME TO _remove_members_unchecked;
CREATE FUNCTION outreach.remove_members(segment text, contact_ids bigint[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM outreach._require_contacts(contact_ids);
  RETURN outreach._remove_members_unchecked(segment, contact_ids);
END $$;
SELECT outreach._move_comment('outreach._remove_members_unchecked(text, bigint[])', 'outreach.remove_members(text, bigint[])');

ALTER FUNCTION outreach.preview_template(text, bigint) RENAME TO _preview_template_unchecked;
CREATE FUNCTION outreach.preview_template(template text, contact_id bigint)
RETURNS TABLE (subject text, body text, sms_segments integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM outreach._require_contacts(ARRAY[contact_id]);
  RETURN QUERY SELECT * FROM outreach._preview_template_unchecked(template, contact_id);
END $$;
SELECT outreach._move_comment('outreach._preview_template_unchecked(text, bigint)', 'outreach.preview_template(text, bigint)');

ALTER FUNCTION outreach.retry_enrollment(bigint) RENAME TO _retry_enrollment_unchecked;
CREATE FUNCTION outreach.retry_enrollment(enrollment_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- another organization's enrollment reads like one that is not failed: nothing about it
  IF NOT outreach._in_scope((SELECT e.contact_id FROM outreach.enrollment e WHERE e.id = enrollment_id),
                            outreach._scope_of(outreach._caller())) THEN
    RAISE EXCEPTION 'enrollment % is not failed', enrollment_id
      USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only failed enrollments can be retried.';
  END IF;
  PERFORM outreach._retry_enrollment_unchecked(enrollment_id);
END $$;
SELECT outreach._move_comment('outreach._retry_enrollment_unchecked(bigint)', 'outreach.retry_enrollment(bigint)');

-- ---------------------------------------------------------------------------------------
-- Journeys message their creator's organizations only
-- ---------------------------------------------------------------------------------------
-- Segments are shared definitions (their membership covers every organization); a journey
-- created by an organization-scoped role keeps that role's organizations, and enrolls (so
-- messages) only their patients.  A journey created by an admin is not restricted.
CREATE TABLE outreach.journey_scope (
  journey_id bigint PRIMARY KEY REFERENCES outreach.journey (id) ON DELETE CASCADE,
  accounts   bigint[] NOT NULL,
  scoped_by  name NOT NULL
);
SELECT outreach._dump('outreach.journey_scope');
COMMENT ON TABLE outreach.journey_scope IS
  'The organizations a journey may enroll patients of: those of the organization-scoped role that created it';
COMMENT ON COLUMN outreach.journey_scope.journey_id IS 'The journey (outreach.journey.id); a journey without a row here is not restricted';
COMMENT ON COLUMN outreach.journey_scope.accounts IS 'Ids of the organizations (outreach.account.id) whose patients the journey may enroll, fixed when it was created';
COMMENT ON COLUMN outreach.journey_scope.scoped_by IS 'The organization-scoped role that created the journey and whose organizations it keeps';

CREATE FUNCTION outreach._journey_scope_created() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r name := outreach._caller();
  scope bigint[] := outreach._scope_of(r);
BEGIN
  IF scope IS NOT NULL THEN
    INSERT INTO outreach.journey_scope (journey_id, accounts, scoped_by) VALUES (NEW.id, scope, r);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER journey_scope AFTER INSERT ON outreach.journey
  FOR EACH ROW EXECUTE FUNCTION outreach._journey_scope_created();

-- An enrollment of a patient outside the journey's organizations is not made (the row is
-- skipped; the contact is reconsidered if it joins one of them).
CREATE FUNCTION outreach._enrollment_in_scope() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  accounts bigint[];
BEGIN
  SELECT s.accounts INTO accounts FROM outreach.journey_scope s WHERE s.journey_id = NEW.journey_id;
  IF FOUND AND NOT outreach._in_scope(NEW.contact_id, accounts) THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER enrollment_in_scope BEFORE INSERT ON outreach.enrollment
  FOR EACH ROW EXECUTE FUNCTION outreach._enrollment_in_scope();

-- ---------------------------------------------------------------------------------------
-- Templates: a template exposes only contact fields its author may read
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION outreach._template_html_check(body text, part text) RETURNS void
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'outreach_template_html_check';
COMMENT ON FUNCTION outreach._template_html_check(text, text) IS
  'Internal: refuses template tokens in an HTML body where escaping does not protect (unquoted attributes, script, style, event handlers, URL starts)';

-- Runs after template_validate (triggers fire in name order), which fills NEW.tokens.
-- Also refuses control characters in a subject (a header: a line break there would start
-- another header) and tokens where HTML escaping does not protect.
CREATE FUNCTION outreach._template_visible_tokens() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r name := outreach._caller();
  col text;
BEGIN
  IF NEW.subject ~ '[\x01-\x1f\x7f]' THEN
    RAISE EXCEPTION 'subject of template "%" contains a control character', NEW.name
      USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'A subject is a mail header; a line break in it would start another header.',
      HINT = 'Write the subject on one line without tabs or control characters.';
  END IF;
  PERFORM outreach._template_html_check(NEW.body, format('body of template "%s"', NEW.name))
  WHERE NEW.format = 'html';
  IF outreach._unscoped(r) THEN
    RETURN NEW;
  END IF;
  FOR col IN SELECT substr(t, 9) FROM unnest(NEW.tokens) t WHERE t ~ '^contact\.[a-z_0-9]+$' LOOP
    IF NOT pg_catalog.has_column_privilege(r, 'outreach.contact', col, 'SELECT') THEN
      RAISE EXCEPTION 'permission denied to use token "contact.%" in template "%"', col, NEW.name
        USING ERRCODE = 'insufficient_privilege',
        DETAIL = format('Role %s may not read column %s of outreach.contact, so its templates may not show it.', r, col),
        HINT = 'Remove the token, or ask an admin to grant SELECT on that column.';
    END IF;
  END LOOP;
  FOR col IN SELECT substr(t, 17) FROM unnest(NEW.tokens) t WHERE t ~ '^contact\.account\.[a-z_0-9]+$' LOOP
    IF NOT pg_catalog.has_column_privilege(r, 'outreach.account', col, 'SELECT') THEN
      RAISE EXCEPTION 'permission denied to use token "contact.account.%" in template "%"', col, NEW.name
        USING ERRCODE = 'insufficient_privilege',
        DETAIL = format('Role %s may not read column %s of outreach.account, so its templates may not show it.', r, col);
    END IF;
  END LOOP;
  RETURN NEW;
END $$;
CREATE TRIGGER template_visible_tokens BEFORE INSERT OR UPDATE ON outreach.template
  FOR EACH ROW EXECUTE FUNCTION outreach._template_visible_tokens();

-- ---------------------------------------------------------------------------------------
-- Reporting for outreach_analyst: counts only, no identifiers, small cells suppressed
-- ---------------------------------------------------------------------------------------

CREATE TABLE outreach.access_settings (
  singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  min_cell_size integer NOT NULL DEFAULT 11 CHECK (min_cell_size BETWEEN 1 AND 1000)
);
SELECT outreach._dump('outreach.access_settings');
COMMENT ON TABLE outreach.access_settings IS
  'Access settings (one row, absent = defaults): min_cell_size, the smallest non-zero count the reporting views show (smaller ones are NULL; default 11)';
COMMENT ON COLUMN outreach.access_settings.singleton IS 'Always true: the table holds at most one row';
COMMENT ON COLUMN outreach.access_settings.min_cell_size IS
  'Smallest non-zero count the report_* views show, 1 to 1000 (default 11); counts from 1 to min_cell_size - 1 show as NULL so small groups cannot be singled out';

-- A count as reported: NULL when between 1 and min_cell_size - 1.
CREATE FUNCTION outreach._cell(n bigint) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN n > 0 AND n < coalesce((SELECT s.min_cell_size FROM outreach.access_settings s), 11) THEN NULL ELSE n END
$$;

-- The views below run with their owner's rights (so an analyst needs no right on the
-- tables) and restrict every count to the reader's organizations themselves.
CREATE VIEW outreach.report_segment_sizes AS
WITH sc AS (SELECT outreach._scope() AS scope)
SELECT s.name AS segment, s.kind, s.status,
       outreach._cell((SELECT count(*) FROM outreach.segment_member m JOIN outreach.contact c ON c.id = m.contact_id
                       WHERE m.segment_id = s.id
                         AND (sc.scope IS NULL OR c.account_id = ANY (sc.scope)
                              OR EXISTS (SELECT 1 FROM outreach.contact_organization co
                                         WHERE co.contact_id = c.id AND co.account_id = ANY (sc.scope))))) AS members
FROM outreach.segment s, sc;
COMMENT ON VIEW outreach.report_segment_sizes IS
  'Reporting: members per segment in the reader''s organizations; counts below access_settings.min_cell_size are NULL';
COMMENT ON COLUMN outreach.report_segment_sizes.segment IS 'Segment name (outreach.segment.name)';
COMMENT ON COLUMN outreach.report_segment_sizes.kind IS 'dynamic, static or compound';
COMMENT ON COLUMN outreach.report_segment_sizes.status IS 'draft, live or stopped';
COMMENT ON COLUMN outreach.report_segment_sizes.members IS 'Current members who are patients of the reader''s organizations; NULL when 1 to access_settings.min_cell_size - 1';

CREATE VIEW outreach.report_journey_funnel AS
WITH sc AS (SELECT outreach._scope() AS scope),
e AS (
  SELECT e.journey_id, e.status FROM outreach.enrollment e JOIN outreach.contact c ON c.id = e.contact_id, sc
  WHERE sc.scope IS NULL OR c.account_id = ANY (sc.scope)
     OR EXISTS (SELECT 1 FROM outreach.contact_organization co WHERE co.contact_id = c.id AND co.account_id = ANY (sc.scope))
),
m AS (
  SELECT m.journey_id, m.status,
         EXISTS (SELECT 1 FROM outreach.interaction i WHERE i.message_id = m.id AND i.kind IN ('opened', 'clicked')) AS opened,
         EXISTS (SELECT 1 FROM outreach.interaction i WHERE i.message_id = m.id AND i.kind = 'clicked') AS clicked
  FROM outreach.message m JOIN outreach.contact c ON c.id = m.contact_id, sc
  WHERE m.journey_id IS NOT NULL AND (sc.scope IS NULL OR c.account_id = ANY (sc.scope)
     OR EXISTS (SELECT 1 FROM outreach.contact_organization co WHERE co.contact_id = c.id AND co.account_id = ANY (sc.scope)))
)
SELECT j.name AS journey, j.status,
       outreach._cell((SELECT count(*) FROM e WHERE e.journey_id = j.id)) AS enrolled,
       outreach._cell((SELECT count(*) FROM e WHERE e.journey_id = j.id AND e.status = 'active')) AS active,
       outreach._cell((SELECT count(*) FROM e WHERE e.journey_id = j.id AND e.status = 'completed')) AS completed,
       outreach._cell((SELECT count(*) FROM e WHERE e.journey_id = j.id AND e.status = 'exited')) AS exited,
       outreach._cell((SELECT count(*) FROM e WHERE e.journey_id = j.id AND e.status = 'failed')) AS failed,
       outreach._cell((SELECT count(*) FROM m WHERE m.journey_id = j.id)) AS messages,
       outreach._cell((SELECT count(*) FROM m WHERE m.journey_id = j.id AND m.status IN ('sent', 'delivered'))) AS delivered,
       outreach._cell((SELECT count(*) FROM m WHERE m.journey_id = j.id AND m.opened)) AS unique_opens,
       outreach._cell((SELECT count(*) FROM m WHERE m.journey_id = j.id AND m.clicked)) AS unique_clicks
FROM outreach.journey j;
COMMENT ON VIEW outreach.report_journey_funnel IS
  'Reporting: enrollments and messages per journey in the reader''s organizations; small counts NULL';
COMMENT ON COLUMN outreach.report_journey_funnel.journey IS 'Journey name (outreach.journey.name)';
COMMENT ON COLUMN outreach.report_journey_funnel.status IS 'The journey''s status: draft, live or stopped';
COMMENT ON COLUMN outreach.report_journey_funnel.enrolled IS 'Enrollments, any status, of the reader''s patients; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_journey_funnel.active IS 'Enrollments still running through the journey; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_journey_funnel.completed IS 'Enrollments that reached an end step; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_journey_funnel.exited IS 'Enrollments ended early: the contact left the audience segment or entered the suppression segment; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_journey_funnel.failed IS 'Enrollments stopped by an error (a step that could not run); outreach.retry_enrollment resumes one; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_journey_funnel.messages IS 'Messages the journey created, all outcomes; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_journey_funnel.delivered IS 'Messages the provider took (status sent or delivered); NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_journey_funnel.unique_opens IS 'Messages opened at least once (an open or a click interaction); NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_journey_funnel.unique_clicks IS 'Messages with at least one click interaction; NULL when 1 to access_settings.min_cell_size - 1';

CREATE VIEW outreach.report_message_status AS
WITH sc AS (SELECT outreach._scope() AS scope)
SELECT m.channel, m.message_class, m.status, outreach._cell(count(*)) AS messages
FROM outreach.message m JOIN outreach.contact c ON c.id = m.contact_id, sc
WHERE sc.scope IS NULL OR c.account_id = ANY (sc.scope)
   OR EXISTS (SELECT 1 FROM outreach.contact_organization co WHERE co.contact_id = c.id AND co.account_id = ANY (sc.scope))
GROUP BY m.channel, m.message_class, m.status;
COMMENT ON VIEW outreach.report_message_status IS
  'Reporting: messages by channel, class and status in the reader''s organizations; small counts NULL';
COMMENT ON COLUMN outreach.report_message_status.channel IS 'email, sms or letter';
COMMENT ON COLUMN outreach.report_message_status.message_class IS 'marketing or transactional';
COMMENT ON COLUMN outreach.report_message_status.status IS 'Message status: queued, sending, sent, delivered, bounced, failed or suppressed';
COMMENT ON COLUMN outreach.report_message_status.messages IS 'Messages to the reader''s patients with this channel, class and status; NULL when 1 to access_settings.min_cell_size - 1';

GRANT SELECT ON outreach.report_segment_sizes, outreach.report_journey_funnel, outreach.report_message_status
  TO outreach_analyst, outreach_marketer;

-- The 0.3 areas' reports for analysts, by the same rules.  Their own views (event_overview,
-- lead_funnel, lead_conversion_weekly) run with the reader's rights, so they serve the
-- marketer, who may read registrations and leads; these serve the analyst, who may not.
CREATE VIEW outreach.report_event_overview AS
WITH sc AS (SELECT outreach._scope() AS scope),
reg AS (
  SELECT r.id, r.event_id, r.status FROM outreach.event_registration r, sc
  WHERE sc.scope IS NULL OR EXISTS (SELECT 1 FROM outreach.contact c WHERE c.id = r.contact_id AND (c.account_id = ANY (sc.scope) OR EXISTS (SELECT 1 FROM outreach.contact_organization co WHERE co.contact_id = c.id AND co.account_id = ANY (sc.scope))))
),
per AS (
  SELECT r.event_id, NULL::bigint AS session_id, r.status FROM reg r
  UNION ALL
  SELECT r.event_id, rs.session_id, r.status FROM reg r JOIN outreach.event_registration_session rs ON rs.registration_id = r.id
),
counts AS (
  SELECT p.event_id, p.session_id,
         pg_catalog.count(*) FILTER (WHERE p.status IN ('registered', 'attended', 'no_show')) AS registered,
         pg_catalog.count(*) FILTER (WHERE p.status = 'waitlisted') AS waitlisted,
         pg_catalog.count(*) FILTER (WHERE p.status = 'cancelled') AS cancelled,
         pg_catalog.count(*) FILTER (WHERE p.status = 'attended') AS attended,
         pg_catalog.count(*) FILTER (WHERE p.status = 'no_show') AS no_show
  FROM per p GROUP BY p.event_id, p.session_id
),
scopes AS (
  SELECT e.id AS event_id, NULL::bigint AS session_id, NULL::text AS session, e.starts_at, e.capacity FROM outreach.event e
  UNION ALL
  SELECT s.event_id, s.id, s.name, s.starts_at, coalesce(s.capacity, e.capacity)
  FROM outreach.event_session s JOIN outreach.event e ON e.id = s.event_id
)
SELECT e.name AS event, e.kind, e.status AS event_status, sc.session, sc.starts_at, sc.capacity,
       outreach._cell(coalesce(c.registered, 0)) AS registered, outreach._cell(coalesce(c.waitlisted, 0)) AS waitlisted,
       outreach._cell(coalesce(c.cancelled, 0)) AS cancelled, outreach._cell(coalesce(c.attended, 0)) AS attended,
       outreach._cell(coalesce(c.no_show, 0)) AS no_show,
       CASE WHEN outreach._cell(c.attended + c.no_show) IS NOT NULL
            THEN pg_catalog.round(c.no_show::numeric / nullif(c.attended + c.no_show, 0), 3) END AS no_show_rate,
       CASE WHEN outreach._cell(c.registered) IS NOT NULL
            THEN pg_catalog.round(c.registered::numeric / nullif(sc.capacity, 0), 3) END AS fill_rate
FROM scopes sc JOIN outreach.event e ON e.id = sc.event_id
LEFT JOIN counts c ON c.event_id = sc.event_id AND c.session_id IS NOT DISTINCT FROM sc.session_id;
COMMENT ON VIEW outreach.report_event_overview IS
  'Reporting: event_overview for analysts: registrations of the reader''s organizations per event and session; counts below access_settings.min_cell_size (and rates built on them) are NULL';
COMMENT ON COLUMN outreach.report_event_overview.event IS 'Event name (outreach.event.name)';
COMMENT ON COLUMN outreach.report_event_overview.kind IS 'in_person, virtual or hybrid';
COMMENT ON COLUMN outreach.report_event_overview.event_status IS 'The event''s status: draft, published, cancelled or completed';
COMMENT ON COLUMN outreach.report_event_overview.session IS 'Session name; NULL on the row for the event as a whole';
COMMENT ON COLUMN outreach.report_event_overview.starts_at IS 'When the event (or the session) starts';
COMMENT ON COLUMN outreach.report_event_overview.capacity IS 'Seats of the event, or of the session (the event''s when the session sets none); NULL: unlimited';
COMMENT ON COLUMN outreach.report_event_overview.registered IS 'Registrations holding a seat (registered, attended, no_show); NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_event_overview.waitlisted IS 'Registrations on the waitlist; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_event_overview.cancelled IS 'Cancelled registrations; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_event_overview.attended IS 'Registrations checked in; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_event_overview.no_show IS 'Registrations marked as not having come; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_event_overview.no_show_rate IS
  'no_show / (attended + no_show), 0 to 1, three decimals; NULL when nobody was marked yet or that count is below access_settings.min_cell_size';
COMMENT ON COLUMN outreach.report_event_overview.fill_rate IS
  'Seats held over capacity (registered / capacity, three decimals); NULL without capacity or when registered is NULL';

CREATE VIEW outreach.report_lead_funnel AS
WITH sc AS (SELECT outreach._scope() AS scope)
SELECT l.source, l.status, outreach._cell(pg_catalog.count(*)) AS leads,
       CASE WHEN outreach._cell(pg_catalog.count(*)) IS NOT NULL THEN pg_catalog.round(pg_catalog.avg(l.score), 2) END AS avg_score,
       outreach._cell(pg_catalog.count(*) FILTER (WHERE l.qualified_at IS NOT NULL)) AS ever_qualified
FROM outreach.lead l, sc
WHERE sc.scope IS NULL OR EXISTS (SELECT 1 FROM outreach.contact c WHERE c.id = l.contact_id AND (c.account_id = ANY (sc.scope) OR EXISTS (SELECT 1 FROM outreach.contact_organization co WHERE co.contact_id = c.id AND co.account_id = ANY (sc.scope))))
GROUP BY l.source, l.status;
COMMENT ON VIEW outreach.report_lead_funnel IS
  'Reporting: lead_funnel for analysts: leads of the reader''s organizations per source and status; small counts NULL';
COMMENT ON COLUMN outreach.report_lead_funnel.source IS 'Where the leads came from: campaign, event, form or import';
COMMENT ON COLUMN outreach.report_lead_funnel.status IS 'Lead status: new, working, qualified, disqualified or converted';
COMMENT ON COLUMN outreach.report_lead_funnel.leads IS 'Leads with this source and status; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_lead_funnel.avg_score IS 'Average current score of those leads, two decimals; NULL when leads is NULL';
COMMENT ON COLUMN outreach.report_lead_funnel.ever_qualified IS 'Of those, leads that qualified at some point (qualified_at set); NULL when 1 to access_settings.min_cell_size - 1';

CREATE VIEW outreach.report_lead_conversions AS
WITH sc AS (SELECT outreach._scope() AS scope)
SELECT pg_catalog.date_trunc('week', v.converted_at) AS week, outreach._cell(pg_catalog.count(*)) AS conversions,
       outreach._cell(pg_catalog.count(*) FILTER (WHERE v.matched_on IS NOT NULL)) AS matched_existing,
       CASE WHEN outreach._cell(pg_catalog.count(*)) IS NOT NULL
            THEN pg_catalog.round(pg_catalog.avg(v.score_at_conversion), 2) END AS avg_score_at_conversion
FROM outreach.lead_conversion v JOIN outreach.lead l ON l.id = v.lead_id, sc
WHERE sc.scope IS NULL OR EXISTS (SELECT 1 FROM outreach.contact c WHERE c.id = l.contact_id AND (c.account_id = ANY (sc.scope) OR EXISTS (SELECT 1 FROM outreach.contact_organization co WHERE co.contact_id = c.id AND co.account_id = ANY (sc.scope))))
GROUP BY 1;
COMMENT ON VIEW outreach.report_lead_conversions IS
  'Reporting: lead_conversion_weekly for analysts: conversions per week in the reader''s organizations; small counts NULL';
COMMENT ON COLUMN outreach.report_lead_conversions.week IS 'Start (Monday 00:00, in the session''s time zone) of the week the leads were converted in';
COMMENT ON COLUMN outreach.report_lead_conversions.conversions IS 'Leads converted to patients that week; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_lead_conversions.matched_existing IS 'Conversions that matched an existing patient (by email or phone) instead of creating one; NULL when 1 to access_settings.min_cell_size - 1';
COMMENT ON COLUMN outreach.report_lead_conversions.avg_score_at_conversion IS 'Average lead score when converted, two decimals; NULL when conversions is NULL';

GRANT SELECT ON outreach.report_event_overview, outreach.report_lead_funnel, outreach.report_lead_conversions
  TO outreach_analyst, outreach_marketer;
-- Social posts and replies are public, not patient data: the analyst reads them and their overview.
GRANT SELECT ON outreach.social_post, outreach.social_engagement TO outreach_analyst;

-- ---------------------------------------------------------------------------------------
-- Privileges (the matrix of docs/security.md, generated from the catalog)
-- ---------------------------------------------------------------------------------------
-- Nothing for PUBLIC on any object of the schema, whichever part created it; the earlier
-- parts grant their own objects to the roles that use them, this one grants the 0.2.0 ones.
REVOKE ALL ON ALL TABLES IN SCHEMA outreach FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA outreach FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outreach FROM PUBLIC;

-- outreach_admin: every table, view and sequence, every function (the admin-only API runs
-- with its caller's rights, so the internal helpers it calls too); the audit log is
-- read-only (97_audit.sql).
GRANT ALL ON ALL TABLES IN SCHEMA outreach TO outreach_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA outreach TO outreach_admin;
-- ... but measure definitions: their numerator SQL runs with the owner's rights
-- (82_measures.sql), so changing them is the extension owner's alone.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON outreach.measure_definition FROM outreach_admin;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON outreach.audit_log FROM outreach_admin;
-- The test clock (outreach.now, a superuser setting): admins may move it too.  Granting a
-- setting needs a superuser; a non-superuser install leaves it to superusers.
DO $clock$
BEGIN
  IF (SELECT a.rolsuper FROM pg_catalog.pg_roles a WHERE a.rolname = current_user) THEN
    GRANT SET ON PARAMETER outreach.now TO outreach_admin;
  END IF;
END
$clock$;
DO $admin$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = 'outreach'::regnamespace AND p.prorettype <> 'trigger'::regtype
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO outreach_admin', f);
  END LOOP;
END
$admin$;

-- What every outreach role may call: the type's functions, the clock, the CHECK helpers of
-- the tables, and what the row-level security policies evaluate.
DO $common$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = 'outreach'::regnamespace
             AND (p.proname LIKE 'segment\_query\_%'
                  OR p.proname IN ('now', 'allowed_value', 'valid_phone', 'valid_time_zone', 'field_allowed_values',
                                   '_scope', '_scope_compute', '_cell', '_audit_read'))
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO outreach_marketer, outreach_analyst, outreach_sender', f);
  END LOOP;
END
$common$;
GRANT SELECT ON outreach.organization_grant TO outreach_marketer, outreach_analyst, outreach_sender;

-- outreach_marketer: segments, journeys, templates, lists; contacts' identity and channels
-- (every contact column but deceased_at), never a clinical row.
GRANT SELECT (id, external_id, first_name, last_name, birthdate, gender, email, phone, address_line, city, state,
              postal_code, country, time_zone, status, contact_type, preferred_channel, do_not_email, do_not_sms,
              do_not_mail, account_id, created_at, updated_at)
  ON outreach.contact TO outreach_marketer;
GRANT UPDATE (email, phone, preferred_channel, time_zone, do_not_email, do_not_sms, do_not_mail)
  ON outreach.contact TO outreach_marketer;
GRANT SELECT ON outreach.contact_organization, outreach.account,
  outreach.segment, outreach.segment_member, outreach.segment_entity, outreach.segment_dependency,
  outreach.segment_change, outreach.segment_members, outreach.segment_overview, outreach.segment_template,
  outreach.segment_failure,
  outreach.entity, outreach.entity_link, outreach.entity_field, outreach.entity_overview,
  outreach.value_set, outreach.value_set_summary,
  outreach.template, outreach.subscription_list, outreach.subscription, outreach.message, outreach.interaction,
  outreach.message_status, outreach.template_engagement, outreach.frequency_cap, outreach.quiet_hours,
  outreach.messaging_settings,
  outreach.journey, outreach.journey_step, outreach.journey_scope, outreach.enrollment, outreach.enrollment_step,
  outreach.journey_funnel, outreach.journey_step_funnel, outreach.journey_message_stats,
  outreach.message_outcome
  TO outreach_marketer;

DO $marketer$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = 'outreach'::regnamespace AND p.proname IN (
             -- the query language
             'compile', 'validate', 'query_dependencies', 'evaluate', 'preview',
             -- segments
             'create_segment', 'create_static_segment', 'rename_segment', 'alter_segment', 'go_live', 'stop',
             'drop_segment', 'set_segment_mode', 'set_segment_schedule', 'add_members', 'remove_members',
             'segment_members_at', 'template_query', 'create_segment_from_template',
             -- templates and lists
             'template_tokens', 'create_template', 'alter_template', 'drop_template', 'preview_template',
             'sms_segments', 'create_subscription_list', 'subscribe', 'unsubscribe', 'quiet_hours_end',
             -- journeys
             'create_journey', 'add_step', 'set_entry_step', 'validate_journey', 'launch_journey', 'stop_journey',
             'drop_journey', 'retry_enrollment', 'next_local_window')
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO outreach_marketer', f);
  END LOOP;
END
$marketer$;

-- outreach_sender: claim messages, report deliveries and interactions, the links a patient
-- follows (unsubscribe, double opt-in); nothing else.
GRANT EXECUTE ON FUNCTION outreach.claim_messages(text, integer, interval, integer),
  outreach.report_delivery(bigint, text, text, boolean, text),
  outreach.report_interaction(bigint, text, text, timestamptz),
  outreach.unsubscribe_by_token(text),
  outreach.confirm_subscription(text)
  TO outreach_sender;

-- Functions that change or read what their caller may not touch directly run as the
-- extension owner, with the checks below for the caller (segmentation rights, organization
-- scope).  Trigger functions too: membership maintenance sees every organization whoever
-- writes the row that triggers it.
DO $definer$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = 'outreach'::regnamespace AND (p.prorettype = 'trigger'::regtype OR p.proname IN (
             'create_segment', 'create_static_segment', 'rename_segment', 'alter_segment', 'go_live', 'stop',
             'drop_segment', 'set_segment_mode', 'set_segment_schedule', 'add_members', 'remove_members',
             'segment_members_at', 'create_segment_from_template', 'template_query',
             'create_template', 'alter_template', 'drop_template', 'preview_template',
             'create_subscription_list', 'subscribe', 'unsubscribe',
             'create_journey', 'add_step', 'set_entry_step', 'validate_journey', 'launch_journey', 'stop_journey',
             'drop_journey', 'retry_enrollment',
             'claim_messages', 'report_delivery', 'report_interaction', 'unsubscribe_by_token', 'confirm_subscription',
             -- admin-only, but the owner analyzes the tables it fills
             'generate_population', 'remove_population'))
  LOOP
    EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f);
  END LOOP;
END
$definer$;

DROP FUNCTION outreach._move_comment(regprocedure, regprocedure);   -- needed by this script only

-- Functions default to EXECUTE for PUBLIC: whatever was created above, nothing for PUBLIC.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outreach FROM PUBLIC;
-- The owner of a registered table decides who segments on it, whatever group it is in.
GRANT EXECUTE ON FUNCTION outreach.grant_segmentation(text, name, text[]), outreach.revoke_segmentation(text, name, text[])
  TO outreach_marketer, outreach_analyst;
