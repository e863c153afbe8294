-- bench/access.sql: what organization scoping (row-level security and the scoped API) costs.
-- Loaded by bench/access.sh into a database with a generated population.  Every figure is a
-- median of :repeat runs; each "on" case is compared with its "off" case in the same run.
-- Nothing here asserts a time.
\set ON_ERROR_STOP 1
CREATE SCHEMA IF NOT EXISTS abench;
GRANT USAGE ON SCHEMA abench TO PUBLIC;
CREATE TABLE abench.result (ord serial, name text, on_ms double precision, off_ms double precision, note text);
GRANT ALL ON abench.result TO PUBLIC;
GRANT ALL ON SEQUENCE abench.result_ord_seq TO PUBLIC;

CREATE FUNCTION abench.median(double precision[]) RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
  SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest($1) x $$;
CREATE FUNCTION abench.time_once(stmt text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  EXECUTE stmt;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
-- ms of one run of stmt as role r
CREATE FUNCTION abench.once_as(r name, stmt text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE ms double precision;
BEGIN
  EXECUTE format('SET LOCAL ROLE %I', r);
  ms := abench.time_once(stmt);
  RESET ROLE;
  RETURN ms;
END $$;
-- medians of n runs of the "on" and the "off" statement, alternated (the machine is shared:
-- load changes hit both alike), after one warm-up of each
CREATE FUNCTION abench.compare(on_role name, on_stmt text, off_role name, off_stmt text, n int,
                               OUT on_ms double precision, OUT off_ms double precision) LANGUAGE plpgsql AS $$
DECLARE a double precision[] := '{}'; b double precision[] := '{}';
BEGIN
  PERFORM abench.once_as(on_role, on_stmt); PERFORM abench.once_as(off_role, off_stmt);
  FOR i IN 1..n LOOP
    a := a || abench.once_as(on_role, on_stmt);
    b := b || abench.once_as(off_role, off_stmt);
  END LOOP;
  on_ms := abench.median(a); off_ms := abench.median(b);
END $$;
-- ms per statement of k single-row statements as role r, each a statement of its own with
-- a cached plan (as an application's prepared statement), after 20 warm-up statements.
-- kind: 'update contact' or 'insert condition'.
CREATE FUNCTION abench.writes_as(r name, kind text, k int) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; ids bigint[]; ms double precision;
BEGIN
  SELECT array_agg(id) INTO ids FROM (SELECT id FROM outreach.contact ORDER BY random() LIMIT k + 20) x;
  EXECUTE format('SET LOCAL ROLE %I', r);
  FOR i IN 1..k + 20 LOOP
    IF i = 21 THEN t0 := clock_timestamp(); END IF;
    IF kind = 'update contact' THEN
      UPDATE outreach.contact SET do_not_sms = NOT do_not_sms WHERE id = ids[i];
    ELSE
      INSERT INTO outreach.condition (patient_id, code, description) VALUES (ids[i], '1', 'bench');
    END IF;
  END LOOP;
  ms := extract(epoch FROM clock_timestamp() - t0) * 1000 / k;
  RESET ROLE;
  RETURN ms;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA abench TO PUBLIC;

-- Ten organizations; every contact in one of them.  bench_mk is granted all ten (it sees what
-- the superuser sees, through the policies), bench_half five of them.
INSERT INTO outreach.account (name) SELECT 'Org ' || g FROM generate_series(0, 9) g;
UPDATE outreach.contact c SET account_id = (SELECT a.id FROM outreach.account a WHERE a.name = 'Org ' || (c.id % 10));
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_mk') THEN CREATE ROLE bench_mk; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_half') THEN CREATE ROLE bench_half; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_clinical') THEN CREATE ROLE bench_clinical; END IF;
END $$;
GRANT outreach_marketer TO bench_mk, bench_half;
GRANT USAGE ON SCHEMA outreach TO bench_clinical;
GRANT SELECT, INSERT ON outreach.condition TO bench_clinical;
GRANT SELECT (id, account_id) ON outreach.contact TO bench_clinical;
GRANT SELECT ON outreach.contact_organization TO bench_clinical;
GRANT EXECUTE ON FUNCTION outreach._scope(), outreach._scope_compute(),
  outreach.allowed_value(text, text, text[]) TO bench_clinical;
GRANT SELECT ON outreach.organization_grant TO bench_clinical;
SELECT outreach.grant_organization(r, 'Org ' || g) FROM generate_series(0, 9) g, unnest('{bench_mk,bench_clinical}'::name[]) r;
SELECT outreach.grant_organization('bench_half', 'Org ' || g) FROM generate_series(0, 4) g;
SELECT outreach.create_segment('bench_seed', $q$contact where status = 'active' and has condition where description contains 'Hypermetropia'$q$);
SELECT outreach.go_live('bench_seed');
VACUUM ANALYZE;

\set q '$q$contact where status = ''active'' and has condition where description contains ''Hypermetropia''$q$'
-- evaluation: the 0.2 body (no check, no scope, no audit) as superuser vs the API as a
-- marketer whose organizations cover everyone (same result), and one covering half
INSERT INTO abench.result (name, on_ms, off_ms, note)
SELECT 'evaluate, seed exercise (marketer, 10 of 10 organizations)', c.on_ms, c.off_ms,
       (SELECT count(*) FROM outreach._evaluate_unchecked(:q, NULL)) || ' contacts'
FROM abench.compare('bench_mk', format('SELECT count(*) FROM outreach.evaluate(%s)', :'q'),
                    current_user, format('SELECT count(*) FROM outreach._evaluate_unchecked(%s, NULL)', :'q'), :repeat) c;
INSERT INTO abench.result (name, on_ms, off_ms, note)
SELECT 'evaluate, seed exercise (admin: check and audit, no scope)', c.on_ms, c.off_ms, NULL
FROM abench.compare(current_user, format('SELECT count(*) FROM outreach.evaluate(%s)', :'q'),
                    current_user, format('SELECT count(*) FROM outreach._evaluate_unchecked(%s, NULL)', :'q'), :repeat) c;
INSERT INTO abench.result (name, on_ms, off_ms, note)
SELECT 'evaluate, seed exercise (marketer, 5 of 10 organizations)', c.on_ms, c.off_ms, 'half the contacts returned'
FROM abench.compare('bench_half', format('SELECT count(*) FROM outreach.evaluate(%s)', :'q'),
                    current_user, format('SELECT count(*) FROM outreach._evaluate_unchecked(%s, NULL)', :'q'), :repeat) c;
INSERT INTO abench.result (name, on_ms, off_ms, note)
SELECT 'preview, seed exercise (marketer, 10 of 10)', c.on_ms, c.off_ms, NULL
FROM abench.compare('bench_mk', format('SELECT * FROM outreach.preview(%s)', :'q'),
                    current_user, format('SELECT * FROM outreach._preview_unchecked(%s, 10, NULL)', :'q'), :repeat) c;
INSERT INTO abench.result (name, on_ms, off_ms, note)
SELECT 'read segment_members of the live segment (RLS on contact and segment_member)', c.on_ms, c.off_ms,
       'off: superuser (bypasses RLS)'
FROM abench.compare('bench_mk', 'SELECT count(*), max(email) FROM outreach.segment_members WHERE segment = ''bench_seed''',
                    current_user, 'SELECT count(*), max(email) FROM outreach.segment_members WHERE segment = ''bench_seed''', :repeat) c;

-- single-row writes as a scoped role, RLS on vs disabled on the table (membership
-- maintenance and the consent audit run in both)
CREATE TEMP TABLE w (name text, on_ms double precision, off_ms double precision);
INSERT INTO w SELECT 'single-row UPDATE contact (do_not_sms) as marketer',
  abench.writes_as('bench_mk', 'update contact', :writes), NULL;
ALTER TABLE outreach.contact DISABLE ROW LEVEL SECURITY;
UPDATE w SET off_ms = abench.writes_as('bench_mk', 'update contact', :writes);
ALTER TABLE outreach.contact ENABLE ROW LEVEL SECURITY;
INSERT INTO w SELECT 'single-row INSERT condition as a scoped clinical writer',
  abench.writes_as('bench_clinical', 'insert condition', :writes), NULL;
ALTER TABLE outreach.condition DISABLE ROW LEVEL SECURITY;
UPDATE w SET off_ms = abench.writes_as('bench_clinical', 'insert condition', :writes)
WHERE name LIKE '%INSERT condition%';
ALTER TABLE outreach.condition ENABLE ROW LEVEL SECURITY;
INSERT INTO abench.result (name, on_ms, off_ms) SELECT * FROM w;
DELETE FROM outreach.condition WHERE description = 'bench';

SELECT format('| %s | %s ms | %s ms | %s× | %s |', name, round(on_ms::numeric, 2), round(off_ms::numeric, 2),
              round((on_ms / nullif(off_ms, 0))::numeric, 2), coalesce(note, '')) FROM abench.result ORDER BY ord;
