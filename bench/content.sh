#!/usr/bin/env bash
# bench/content.sh: template renders per second (issue 18), before and after the 0.3 content
# work, in one run on one cluster.  Builds outreach, installs it into a private PostgreSQL
# tree under .bench/content/ (ignored), starts a throwaway cluster, loads CONTACTS contacts
# (default 20000, with accounts and languages) and times, REPEAT times each (default 5),
# alternating the cases:
#
#   before      the plain template of bench/run.sh case 6 rendered the way main did before the
#               content work: bench.render_for_before() is the previous outreach._render_for
#               (contact, account, message and event tokens; no variant lookup, no loop
#               tokens) over the same C renderer entry point
#   plain       the same template through today's outreach._render_for (variant lookup, the
#               message language; the C renderer's plain path), called the same way
#   language    a template using the 0.3 language (if/else, filters, date, a content block)
#               through outreach._render_for (src/template_lang.c)
#
# Prints renders per second (median) per case and the ratio to "before".  Nothing asserts.
source "$(dirname "$0")/../scripts/lib.sh"

BENCH_DIR=${BENCH_DIR:-"$OUTREACH_ROOT/.bench/content"}
CONTACTS=${CONTACTS:-20000}
REPEAT=${REPEAT:-5}
export OUTREACH_PORT=${OUTREACH_PORT:-$((40000 + RANDOM % 20000))}

cd "$OUTREACH_ROOT"
ensure_packages
if [ -d "$BENCH_DIR/root" ]; then private_bin_for "$BENCH_DIR"; stop_cluster "$BENCH_DIR"; fi
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
trap 'stop_cluster "$BENCH_DIR"' EXIT
build_and_install "$BENCH_DIR"
start_cluster "$BENCH_DIR" outreach_bench
export PGOPTIONS="-c outreach.now=2026-01-01T00:00:00+00 -c client_min_messages=warning"
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1)

log "loading $CONTACTS contacts"
"${PSQL[@]}" <<SQL
CREATE EXTENSION outreach CASCADE;
INSERT INTO outreach.account (name) SELECT 'Practice ' || i FROM generate_series(1, 100) i;
INSERT INTO outreach.contact (external_id, first_name, last_name, city, email, birthdate, time_zone, language, account_id)
SELECT 'b' || i, CASE WHEN i % 10 <> 0 THEN 'First' || i END, 'Last' || i, 'City' || (i % 50), 'b' || i || '@example.org',
       date '1950-01-01' + (i % 20000), 'Europe/Paris', (ARRAY['en', 'es-MX', 'fr', 'de', NULL])[1 + i % 5],
       1 + i % 100
  FROM generate_series(1, $CONTACTS) i;
ANALYZE;
SQL
"${PSQL[@]}" <<'SQL'
CREATE SCHEMA bench;
-- outreach._render_for as it was before the content work (main at the start of issue 18)
CREATE FUNCTION bench.render_for_before(t outreach.template, c outreach.contact, unsubscribe_token text,
                                        OUT subject text, OUT body text, OUT sms_segments integer)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  keys text[];
  vals text[];
  base text;
BEGIN
  SELECT s.unsubscribe_base_url INTO base FROM outreach.messaging_settings s;
  SELECT array_agg(k), array_agg(v) INTO keys, vals FROM (
    SELECT 'contact.' || e.key AS k, e.value AS v FROM jsonb_each_text(to_jsonb(c)) e
    UNION ALL
    SELECT 'contact.account.' || e.key, e.value
      FROM outreach.account a, jsonb_each_text(to_jsonb(a)) e WHERE a.id = c.account_id
    UNION ALL
    VALUES ('unsubscribe_url', base || '?token=' || $3), ('sender.postal_address', t.sender_postal_address)
    UNION ALL
    SELECT * FROM outreach._event_tokens(t.id, c.id)) x;
  subject := outreach._render(t.subject, false, keys, vals);
  body := outreach._render(t.body, t.format = 'html', keys, vals);
  sms_segments := CASE WHEN t.channel = 'sms' THEN outreach.sms_segments(body) END;
END $$;
SELECT outreach.create_template(name => 'bench email', channel => 'email',
  subject => 'Your check-up, {{contact.first_name | default: ''friend''}}',
  body => '<p>Hello {{contact.first_name | default: ''there''}} {{contact.last_name}},</p><p>{{contact.account.name}} invites you to a check-up in {{contact.city}}.</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a> · {{sender.postal_address}}</p>',
  sender_postal_address => 'Bench Clinic, 1 Main St, Springfield, IL 62701');
SELECT outreach.create_content_block('bench_footer', '<p><a href="{{unsubscribe_url}}">Unsubscribe</a> · {{sender.postal_address}}</p>');
SELECT outreach.create_template(name => 'bench language', channel => 'email',
  subject => 'Your check-up, {{contact.first_name | default: ''friend'' | capitalize}}',
  body => '<p>{{#if contact.first_name}}Hello {{contact.first_name | upcase}}{{else}}Hello{{/if}} {{contact.last_name | truncate: 20}},</p><p>{{contact.account.name}} invites you{{#if contact.city != ''City0''}} to {{contact.city}}{{/if}}; born {{contact.birthdate | date: ''long''}}.</p>{{> bench_footer}}',
  sender_postal_address => 'Bench Clinic, 1 Main St, Springfield, IL 62701');
CREATE FUNCTION bench.time_once(sql text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
  t0 := clock_timestamp();
  EXECUTE sql;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
SQL

log "timing $REPEAT runs of $CONTACTS renders per case"
"${PSQL[@]}" -v repeat="$REPEAT" <<SQL | tee "$BENCH_DIR/results.txt"
CREATE TEMP TABLE runs (name text, ms float8);
DO \$\$
DECLARE
  before text := \$q\$SELECT count(r.*) FROM outreach.contact c, LATERAL bench.render_for_before((SELECT t FROM outreach.template t WHERE t.name = 'bench email'), c, 'x') r\$q\$;
  plain text := \$q\$SELECT count(r.*) FROM outreach.contact c, LATERAL outreach._render_for((SELECT t FROM outreach.template t WHERE t.name = 'bench email'), c, 'x') r\$q\$;
  lang text := \$q\$SELECT count(r.*) FROM outreach.contact c, LATERAL outreach._render_for((SELECT t FROM outreach.template t WHERE t.name = 'bench language'), c, 'x') r\$q\$;
BEGIN
  PERFORM bench.time_once(before); PERFORM bench.time_once(plain); PERFORM bench.time_once(lang);
  FOR i IN 1..$REPEAT LOOP
    INSERT INTO runs VALUES ('before', bench.time_once(before)), ('plain', bench.time_once(plain)),
                            ('language', bench.time_once(lang));
  END LOOP;
END \$\$;
WITH m AS (SELECT name, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM runs GROUP BY name)
SELECT m.name AS "case", round(m.ms::numeric, 1) AS "median ms", round(($CONTACTS / (m.ms / 1000))::numeric) AS "renders/s",
       round(((SELECT b.ms FROM m b WHERE b.name = 'before') / m.ms)::numeric, 2) AS "renders/s vs before"
  FROM m ORDER BY array_position(ARRAY['before', 'plain', 'language'], m.name);
SQL
