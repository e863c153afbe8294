-- scripts/security_matrix.sql: the role × object matrix of docs/security.md, read from the
-- catalog of a database with outreach installed (psql -XAt -f).  scripts/security-matrix.sh
-- writes it into the doc; test/extra/security_matrix.sh fails when the doc differs.
WITH roles(ord, r) AS (VALUES (1, 'outreach_admin'), (2, 'outreach_marketer'), (3, 'outreach_analyst'), (4, 'outreach_sender')),
rel AS (
  SELECT c.oid, c.relname, c.relkind, c.relrowsecurity,
         coalesce(c.reloptions @> '{security_invoker=true}', false) AS invoker
  FROM pg_class c WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind IN ('r', 'v', 'p')
),
cell AS (
  SELECT rel.oid, roles.ord,
         concat_ws(' ',
           CASE WHEN has_table_privilege(roles.r, rel.oid, 'SELECT') THEN 'S'
                WHEN has_any_column_privilege(roles.r, rel.oid, 'SELECT') THEN
                  format('S(%s of %s columns)',
                    (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
                       AND has_column_privilege(roles.r, rel.oid, a.attnum, 'SELECT')),
                    (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped)) END,
           CASE WHEN has_table_privilege(roles.r, rel.oid, 'INSERT') THEN 'I' END,
           CASE WHEN has_table_privilege(roles.r, rel.oid, 'UPDATE') THEN 'U'
                WHEN has_any_column_privilege(roles.r, rel.oid, 'UPDATE') THEN
                  format('U(%s)', (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_attribute a
                                   WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
                                     AND has_column_privilege(roles.r, rel.oid, a.attnum, 'UPDATE'))) END,
           CASE WHEN has_table_privilege(roles.r, rel.oid, 'DELETE') THEN 'D' END) AS p
  FROM rel, roles
),
rel_lines AS (
  SELECT 1 AS part, rel.relname::text AS k,
         format('| `%s` | %s | %s |', rel.relname,
                CASE WHEN rel.relkind = 'v' THEN CASE WHEN rel.invoker THEN 'view (reader''s rights)' ELSE 'view (owner''s rights, scoped)' END
                     ELSE CASE WHEN rel.relrowsecurity THEN 'table, RLS' ELSE 'table' END END,
                (SELECT string_agg(coalesce(nullif(c.p, ''), '—'), ' | ' ORDER BY c.ord) FROM cell c WHERE c.oid = rel.oid)) AS line
  FROM rel
),
fn AS (
  SELECT p.oid, p.proname, p.prosecdef,
         format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)) AS sig
  FROM pg_proc p
  WHERE p.pronamespace = 'outreach'::regnamespace AND p.proname !~ '^_' AND p.prorettype <> 'trigger'::regtype
    AND p.proname !~ '^segment_query_'
),
fn_lines AS (
  SELECT 2 AS part, fn.sig AS k,
         format('| `%s` | %s | %s |', fn.sig, CASE WHEN fn.prosecdef THEN 'owner' ELSE 'caller' END,
                (SELECT string_agg(CASE WHEN has_function_privilege(roles.r, fn.oid, 'EXECUTE') THEN 'x' ELSE '—' END, ' | ' ORDER BY roles.ord)
                 FROM roles)) AS line
  FROM fn
)
SELECT line FROM (
  SELECT 0 AS part, '' AS k, '| table / view | kind | admin | marketer | analyst | sender |' AS line
  UNION ALL SELECT 0, ' ', '|---|---|---|---|---|---|'
  UNION ALL SELECT * FROM rel_lines
  UNION ALL SELECT 2, '', ''
  UNION ALL SELECT 2, ' ', '| function | runs as | admin | marketer | analyst | sender |'
  UNION ALL SELECT 2, '  ', '|---|---|---|---|---|---|'
  UNION ALL SELECT * FROM fn_lines
) x ORDER BY part, k;
