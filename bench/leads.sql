-- bench/leads.sql: what lead scoring costs, measured in one run against its own baseline.
--   psql -X -q -f bench/leads.sql      (any database with outreach; it creates and drops its
--                                        own rows in one transaction that it rolls back)
-- Prints, per case, milliseconds and the ratio to the baseline of the same run:
--   capture:  N captures of new leads with no score rule (baseline) vs with 6 rules
--             (each rule a live segment re-evaluated for the new contact, then the rescore);
--   clinical: N condition inserts for patients into a live clinical segment, without rules
--             (baseline) vs with the 6 rules present (the lead trigger on segment_change must
--             cost next to nothing when no rule segment changed).
-- Nothing here asserts a time.
\set n 1000
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE TEMP TABLE bench_result (name text, ms numeric);
CREATE FUNCTION pg_temp.capture_many(tag text, n int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  FOR i IN 1..n LOOP
    PERFORM outreach.capture_lead(format('%s%s@bench.example', tag, i), NULL, 'B', NULL, 'form', NULL, true);
  END LOOP;
  RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
END $$;
CREATE FUNCTION pg_temp.conditions(n int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  FOR i IN 1..n LOOP
    INSERT INTO outreach.condition (patient_id, code, description)
    SELECT id, '44054006', 'Diabetes' FROM outreach.contact WHERE external_id = 'bench-pat-' || (1 + i % 500);
  END LOOP;
  RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
END $$;
INSERT INTO outreach.contact (external_id, first_name) SELECT 'bench-pat-' || i, 'P' FROM generate_series(1, 500) i;
SELECT outreach.create_segment('bench diabetics', 'contact where has condition where code = ''44054006''') \g /dev/null
SELECT outreach.go_live('bench diabetics') \g /dev/null

INSERT INTO bench_result SELECT 'capture, no rules', pg_temp.capture_many('a', :n);
INSERT INTO bench_result SELECT 'clinical, no rules', pg_temp.conditions(:n);

SELECT outreach.add_score_rule('b form', 'has lead_activity where kind = ''form_submitted''', 10) \g /dev/null
SELECT outreach.add_score_rule('b forms', 'count(lead_activity where kind = ''form_submitted'') >= 2', 5) \g /dev/null
SELECT outreach.add_score_rule('b attended', 'has lead_activity where kind = ''attended''', 30) \g /dev/null
SELECT outreach.add_score_rule('b opened', 'has interaction where kind = ''opened''', 20, '30 days') \g /dev/null
SELECT outreach.add_score_rule('b event', 'has lead where source = ''event''', 5) \g /dev/null
SELECT outreach.add_score_rule('b no phone', 'phone is empty', -3) \g /dev/null

INSERT INTO bench_result SELECT 'capture, 6 rules', pg_temp.capture_many('b', :n);
INSERT INTO bench_result SELECT 'clinical, 6 rules', pg_temp.conditions(:n);

SELECT name, :n AS statements, ms, round(ms / :n, 3) AS ms_each,
       round(ms / (SELECT b.ms FROM bench_result b WHERE b.name = split_part(r.name, ',', 1) || ', no rules'), 2) AS ratio
  FROM bench_result r ORDER BY split_part(name, ',', 1), ms;
ROLLBACK;
