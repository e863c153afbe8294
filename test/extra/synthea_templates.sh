#!/usr/bin/env bash
# test/extra/synthea_templates.sh: each segment template's members on the shared Synthea
# exports equal those of a plain SQL query written independently of the template (from the
# measure logic in docs/segment-templates.md, with year arithmetic instead of the template's
# date ranges), for several measurement years.  Prints "N passed, N failed" last.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PSQL="${PRIVATE_BIN:+$PRIVATE_BIN/}psql"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
notok() { failed=$((failed + 1)); echo "not ok - $*"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
q() { "$PSQL" -X -qtA -v ON_ERROR_STOP=1 "$@"; }

DATA=${SYNTHEA_DATA:-}
if [ -z "$DATA" ]; then
	for c in "$ROOT/../shared/data/synthea" "$ROOT/../../shared/data/synthea"; do
		[ -d "$c" ] && { DATA=$(cd "$c" && pwd); break; }
	done
fi
if [ -z "$DATA" ] || [ ! -f "$DATA/andrew-nguyen-59/patients.csv" ]; then
	# third-party data, not shipped with the project: skipped (and counted as such) without it
	echo "skipped: shared Synthea data not found beside the repository (looked for $ROOT/../shared/data/synthea; set SYNTHEA_DATA)"
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
fi
# The server (postgres OS user) reads the files itself: when the checkout sits where it
# cannot (a clone under /root, say), work on a readable copy.
DATA_COPY=""
if [ "$(id -un)" != postgres ] && ! runuser -u postgres -- test -r "$DATA/andrew-nguyen-59/patients.csv" 2>/dev/null; then
	DATA_COPY=$(mktemp -d /tmp/outreach-synthea-data.XXXXXX); chmod 755 "$DATA_COPY"
	trap 'rm -rf "$DATA_COPY"' EXIT
	cp -r "$DATA/." "$DATA_COPY/" && chmod -R a+rX "$DATA_COPY"
	DATA=$DATA_COPY
fi

# The independent queries.  Helpers: y(ts) is the UTC calendar year of a timestamp, vs(code,
# name) tests value-set membership, age_end(birthdate, year) the age on 31 December.
read -r -d '' INDEPENDENT <<'EOF'
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.y(t timestamptz) RETURNS int LANGUAGE sql AS $$ SELECT extract(year FROM t AT TIME ZONE 'UTC')::int $$;
CREATE FUNCTION pg_temp.y(d date) RETURNS int LANGUAGE sql AS $$ SELECT extract(year FROM d)::int $$;
CREATE FUNCTION pg_temp.vs(code text, name text) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM outreach.value_set v WHERE v.name = vs.name AND v.code = vs.code) $$;
CREATE FUNCTION pg_temp.age_end(b date, yr int) RETURNS int LANGUAGE sql AS $$ SELECT yr - extract(year FROM b)::int $$;
CREATE FUNCTION pg_temp.alive(c outreach.contact) RETURNS boolean LANGUAGE sql AS $$
  SELECT c.status = 'active' AND c.deceased_at IS NULL $$;
CREATE FUNCTION pg_temp.office_visit(pid bigint, yr int) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM outreach.encounter e WHERE e.patient_id = pid
                 AND e.class IN ('wellness', 'ambulatory', 'outpatient', 'virtual', 'home') AND pg_temp.y(e.start_at) = yr) $$;
CREATE FUNCTION pg_temp.hospice(pid bigint, yr int) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM outreach.encounter e WHERE e.patient_id = pid AND e.class = 'hospice'
                 AND pg_temp.y(e.start_at) <= yr AND (e.end_at IS NULL OR pg_temp.y(e.end_at) >= yr))
      OR EXISTS (SELECT 1 FROM outreach.procedure p WHERE p.patient_id = pid AND pg_temp.vs(p.code, 'hospice')
                 AND pg_temp.y(p.performed_at) = yr) $$;
CREATE FUNCTION pg_temp.proc_in(pid bigint, vsname text, y0 int, y1 int) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM outreach.procedure p WHERE p.patient_id = pid AND pg_temp.vs(p.code, vsname)
                 AND pg_temp.y(p.performed_at) BETWEEN y0 AND y1) $$;
CREATE FUNCTION pg_temp.obs_in(pid bigint, vsname text, y0 int, y1 int) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM outreach.observation o WHERE o.patient_id = pid AND pg_temp.vs(o.code, vsname)
                 AND pg_temp.y(o.effective_at) BETWEEN y0 AND y1) $$;
CREATE FUNCTION pg_temp.cond_by(pid bigint, vsname text, yr int) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM outreach.condition k WHERE k.patient_id = pid AND pg_temp.vs(k.code, vsname)
                 AND pg_temp.y(k.onset_date) <= yr) $$;
CREATE FUNCTION pg_temp.cond_during(pid bigint, vsname text, onset_by date, yr int) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM outreach.condition k WHERE k.patient_id = pid AND pg_temp.vs(k.code, vsname)
                 AND k.onset_date <= onset_by AND (k.abatement_date IS NULL OR pg_temp.y(k.abatement_date) >= yr)) $$;
CREATE FUNCTION pg_temp.latest_value(pid bigint, vsname text, yr int) RETURNS numeric LANGUAGE sql AS $$
  SELECT o.value_numeric FROM outreach.observation o
  WHERE o.patient_id = pid AND pg_temp.vs(o.code, vsname) AND o.value_numeric IS NOT NULL AND pg_temp.y(o.effective_at) = yr
  ORDER BY o.effective_at DESC, o.id DESC LIMIT 1 $$;
-- doses on or before the second birthday: aged under 2, or exactly 2 years 0 months 0 days, on the (UTC)
-- day; doses on the same day count once
CREATE FUNCTION pg_temp.doses(pid bigint, vsname text, b date) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(DISTINCT (i.administered_at AT TIME ZONE 'UTC')::date) FROM outreach.immunization i, LATERAL (SELECT age((i.administered_at AT TIME ZONE 'UTC')::date, b) AS a) x
  WHERE i.patient_id = pid AND pg_temp.vs(i.code, vsname)
    AND (extract(year FROM x.a) < 2 OR (extract(year FROM x.a) = 2 AND extract(month FROM x.a) = 0 AND extract(day FROM x.a) = 0)) $$;

CREATE FUNCTION pg_temp.expected(template text, yr int) RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT c.id FROM outreach.contact c WHERE pg_temp.alive(c) AND CASE template
  WHEN 'breast_cancer_screening_gap' THEN
    c.gender = 'female' AND pg_temp.age_end(c.birthdate, yr) BETWEEN 52 AND 74 AND pg_temp.office_visit(c.id, yr)
    AND NOT EXISTS (SELECT 1 FROM outreach.procedure p WHERE p.patient_id = c.id AND pg_temp.vs(p.code, 'mammography')
                    AND p.performed_at AT TIME ZONE 'UTC' >= make_timestamp(yr - 2, 10, 1, 0, 0, 0) AND pg_temp.y(p.performed_at) <= yr)
    AND NOT EXISTS (SELECT 1 FROM outreach.observation o WHERE o.patient_id = c.id AND pg_temp.vs(o.code, 'mammography')
                    AND o.effective_at AT TIME ZONE 'UTC' >= make_timestamp(yr - 2, 10, 1, 0, 0, 0) AND pg_temp.y(o.effective_at) <= yr)
    AND NOT pg_temp.proc_in(c.id, 'bilateral mastectomy', 0, yr) AND NOT pg_temp.cond_by(c.id, 'bilateral mastectomy', yr)
    AND NOT pg_temp.hospice(c.id, yr)
  WHEN 'colorectal_cancer_screening_gap' THEN
    pg_temp.age_end(c.birthdate, yr) BETWEEN 46 AND 75 AND pg_temp.office_visit(c.id, yr)
    AND NOT pg_temp.obs_in(c.id, 'fecal occult blood test', yr, yr) AND NOT pg_temp.proc_in(c.id, 'fecal occult blood test', yr, yr)
    AND NOT pg_temp.obs_in(c.id, 'stool dna test', yr - 2, yr)
    AND NOT pg_temp.proc_in(c.id, 'sigmoidoscopy', yr - 4, yr) AND NOT pg_temp.proc_in(c.id, 'ct colonography', yr - 4, yr)
    AND NOT pg_temp.obs_in(c.id, 'ct colonography', yr - 4, yr)
    AND NOT pg_temp.proc_in(c.id, 'colonoscopy', yr - 9, yr)
    AND NOT pg_temp.cond_by(c.id, 'colorectal cancer', yr) AND NOT pg_temp.proc_in(c.id, 'total colectomy', 0, yr)
    AND NOT pg_temp.hospice(c.id, yr)
  WHEN 'cervical_cancer_screening_gap' THEN
    c.gender = 'female' AND pg_temp.age_end(c.birthdate, yr) BETWEEN 24 AND 64 AND pg_temp.office_visit(c.id, yr)
    AND NOT pg_temp.proc_in(c.id, 'cervical cytology', yr - 2, yr) AND NOT pg_temp.obs_in(c.id, 'cervical cytology', yr - 2, yr)
    AND NOT EXISTS (SELECT 1 FROM outreach.observation o WHERE o.patient_id = c.id AND pg_temp.vs(o.code, 'hpv test')
                    AND pg_temp.y(o.effective_at) BETWEEN yr - 4 AND yr
                    AND extract(year FROM age((o.effective_at AT TIME ZONE 'UTC')::date, c.birthdate)) >= 30)
    AND NOT pg_temp.proc_in(c.id, 'hysterectomy', 0, yr) AND NOT pg_temp.cond_by(c.id, 'hysterectomy', yr)
    AND NOT pg_temp.hospice(c.id, yr)
  WHEN 'diabetes_hba1c_poor_control' THEN
    pg_temp.age_end(c.birthdate, yr) BETWEEN 18 AND 75 AND pg_temp.office_visit(c.id, yr)
    AND pg_temp.cond_during(c.id, 'diabetes', make_date(yr, 12, 31), yr)
    -- the most recent HbA1c of the year (with or without a result): above 9, no result, or none at all
    AND coalesce((SELECT o.value_numeric > 9 FROM outreach.observation o
                  WHERE o.patient_id = c.id AND pg_temp.vs(o.code, 'hba1c') AND pg_temp.y(o.effective_at) = yr
                  ORDER BY o.effective_at DESC, o.id DESC LIMIT 1), true)
    AND NOT pg_temp.hospice(c.id, yr)
  WHEN 'uncontrolled_blood_pressure' THEN
    pg_temp.age_end(c.birthdate, yr) BETWEEN 18 AND 85 AND pg_temp.office_visit(c.id, yr)
    AND pg_temp.cond_during(c.id, 'essential hypertension', make_date(yr, 6, 30), yr)
    AND (pg_temp.latest_value(c.id, 'systolic blood pressure', yr) IS NULL
         OR pg_temp.latest_value(c.id, 'systolic blood pressure', yr) >= 140
         OR pg_temp.latest_value(c.id, 'diastolic blood pressure', yr) >= 90)
    AND NOT pg_temp.cond_during(c.id, 'pregnancy', make_date(yr, 12, 31), yr)
    AND NOT pg_temp.cond_by(c.id, 'esrd', yr) AND NOT pg_temp.proc_in(c.id, 'dialysis', 0, yr)
    AND NOT pg_temp.hospice(c.id, yr)
  WHEN 'childhood_immunization_gap' THEN
    pg_temp.y(c.birthdate) = yr - 2 AND pg_temp.office_visit(c.id, yr)
    AND (pg_temp.doses(c.id, 'dtap vaccine', c.birthdate) < 4 OR pg_temp.doses(c.id, 'ipv vaccine', c.birthdate) < 3
         OR pg_temp.doses(c.id, 'mmr vaccine', c.birthdate) < 1 OR pg_temp.doses(c.id, 'hib vaccine', c.birthdate) < 3
         OR pg_temp.doses(c.id, 'hepatitis b vaccine', c.birthdate) < 3 OR pg_temp.doses(c.id, 'varicella vaccine', c.birthdate) < 1
         OR pg_temp.doses(c.id, 'pneumococcal conjugate vaccine', c.birthdate) < 4 OR pg_temp.doses(c.id, 'hepatitis a vaccine', c.birthdate) < 1
         OR pg_temp.doses(c.id, 'rotavirus vaccine', c.birthdate) < 2 OR pg_temp.doses(c.id, 'influenza vaccine', c.birthdate) < 2)
    AND NOT pg_temp.hospice(c.id, yr)
  WHEN 'influenza_vaccination_gap' THEN
    -- season yr: 1 Aug yr .. 31 Mar yr+1, as season months counted from August.
    c.birthdate <= make_date(yr, 2, 1)
    AND EXISTS (SELECT 1 FROM outreach.encounter e WHERE e.patient_id = c.id
                AND e.start_at AT TIME ZONE 'UTC' >= make_timestamp(yr - 1, 8, 1, 0, 0, 0)
                AND e.start_at AT TIME ZONE 'UTC' < make_timestamp(yr + 1, 4, 1, 0, 0, 0))
    AND NOT EXISTS (SELECT 1 FROM outreach.immunization i WHERE i.patient_id = c.id AND pg_temp.vs(i.code, 'influenza vaccine')
                    AND date_trunc('month', i.administered_at AT TIME ZONE 'UTC') BETWEEN make_timestamp(yr, 8, 1, 0, 0, 0)
                                                                                     AND make_timestamp(yr + 1, 3, 1, 0, 0, 0))
    AND NOT EXISTS (SELECT 1 FROM outreach.encounter e WHERE e.patient_id = c.id AND e.class = 'hospice'
                    AND e.start_at AT TIME ZONE 'UTC' < make_timestamp(yr + 1, 4, 1, 0, 0, 0)
                    AND (e.end_at IS NULL OR e.end_at AT TIME ZONE 'UTC' >= make_timestamp(yr, 8, 1, 0, 0, 0)))
    AND NOT EXISTS (SELECT 1 FROM outreach.procedure p WHERE p.patient_id = c.id AND pg_temp.vs(p.code, 'hospice')
                    AND date_trunc('month', p.performed_at AT TIME ZONE 'UTC') BETWEEN make_timestamp(yr, 8, 1, 0, 0, 0)
                                                                                   AND make_timestamp(yr + 1, 3, 1, 0, 0, 0))
  END $$;

-- Rolling templates at a fixed clock: the last day-count days / years before now.
CREATE FUNCTION pg_temp.expected_rolling(template text, at timestamptz, vsname text) RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT c.id FROM outreach.contact c WHERE pg_temp.alive(c) AND CASE template
  WHEN 'new_diagnosis' THEN
    EXISTS (SELECT 1 FROM outreach.condition k WHERE k.patient_id = c.id AND pg_temp.vs(k.code, vsname)
            AND (at AT TIME ZONE 'UTC')::date - k.onset_date BETWEEN 0 AND 30)
  WHEN 'no_recent_visit' THEN
    c.contact_type = 'patient'
    AND NOT EXISTS (SELECT 1 FROM outreach.encounter e WHERE e.patient_id = c.id
                    AND e.start_at <= at AND age(at, e.start_at) <= interval '2 years')
  END $$;

-- template|parameter|members by the template|members by the independent query|in one only
SELECT t.name, yr,
       (SELECT count(*) FROM outreach.evaluate(outreach.template_query(t.name,
          jsonb_build_object(CASE t.name WHEN 'influenza_vaccination_gap' THEN 'season' ELSE 'measurement_year' END, yr)), 'UTC')),
       (SELECT count(*) FROM pg_temp.expected(t.name, yr)),
       (SELECT count(*) FROM ((SELECT * FROM outreach.evaluate(outreach.template_query(t.name,
          jsonb_build_object(CASE t.name WHEN 'influenza_vaccination_gap' THEN 'season' ELSE 'measurement_year' END, yr)), 'UTC'))
          EXCEPT SELECT * FROM pg_temp.expected(t.name, yr)) a)
     + (SELECT count(*) FROM (SELECT * FROM pg_temp.expected(t.name, yr) EXCEPT (SELECT * FROM outreach.evaluate(outreach.template_query(t.name,
          jsonb_build_object(CASE t.name WHEN 'influenza_vaccination_gap' THEN 'season' ELSE 'measurement_year' END, yr)), 'UTC'))) b)
FROM outreach.segment_template t, generate_series(:y0, :y1) yr
WHERE t.name NOT IN ('new_diagnosis', 'no_recent_visit')
ORDER BY 1, 2;

CREATE TEMP TABLE clocks AS
  SELECT DISTINCT (k.onset_date + 10)::timestamp AT TIME ZONE 'UTC' AS at FROM outreach.condition k
  WHERE k.code IN (SELECT code FROM outreach.value_set WHERE name IN ('pregnancy', 'essential hypertension', 'diabetes', 'colorectal cancer'));
INSERT INTO clocks SELECT make_timestamptz(yr, 6, 30, 12, 0, 0, 'UTC') FROM generate_series(2016, 2023) yr;
CREATE FUNCTION pg_temp.compare_rolling(template text, params jsonb, vsname text) RETURNS TABLE (n_t bigint, n_e bigint, n_diff bigint)
LANGUAGE plpgsql AS $$
DECLARE a timestamptz;
BEGIN
  n_t := 0; n_e := 0; n_diff := 0;
  FOR a IN SELECT at FROM clocks ORDER BY at LOOP
    PERFORM set_config('outreach.now', a::text, true);
    n_t := n_t + (SELECT count(*) FROM outreach.evaluate(outreach.template_query(template, params), 'UTC'));
    n_e := n_e + (SELECT count(*) FROM pg_temp.expected_rolling(template, a, vsname));
    n_diff := n_diff + (SELECT count(*) FROM (
        (SELECT * FROM outreach.evaluate(outreach.template_query(template, params), 'UTC')
         EXCEPT SELECT * FROM pg_temp.expected_rolling(template, a, vsname))
        UNION ALL
        (SELECT * FROM pg_temp.expected_rolling(template, a, vsname)
         EXCEPT SELECT * FROM outreach.evaluate(outreach.template_query(template, params), 'UTC'))) d);
  END LOOP;
  PERFORM set_config('outreach.now', '', true);
  RETURN NEXT;
END $$;
BEGIN;
SELECT 'new_diagnosis', v, r.* FROM unnest(ARRAY['pregnancy', 'essential hypertension', 'diabetes', 'colorectal cancer']) v,
  LATERAL pg_temp.compare_rolling('new_diagnosis', jsonb_build_object('value_set', v), v) r;
SELECT 'no_recent_visit', 'years 2', r.* FROM pg_temp.compare_rolling('no_recent_visit', '{}', NULL) r;
COMMIT;

-- Denominators of the templates that find no gap in Synthea's well-kept records: the data
-- must at least reach their exclusion logic for the comparison to mean something.
SELECT 'denominator', 'childhood_immunization_gap', count(*) FROM outreach.contact c, generate_series(:y0, :y1) yr
WHERE pg_temp.alive(c) AND pg_temp.y(c.birthdate) = yr - 2 AND pg_temp.office_visit(c.id, yr);
SELECT 'denominator', 'diabetes_hba1c_poor_control', count(*) FROM outreach.contact c, generate_series(:y0, :y1) yr
WHERE pg_temp.alive(c) AND pg_temp.age_end(c.birthdate, yr) BETWEEN 18 AND 75 AND pg_temp.office_visit(c.id, yr)
  AND pg_temp.cond_during(c.id, 'diabetes', make_date(yr, 12, 31), yr);
EOF

declare -A total_members denominators
# Passes: each export for 2014-2022, and the 59-patient export once more with its deceased
# patients revived for 1988-2001, the years of its only diabetic (who died in 2000).
for pass in "andrew-nguyen-59 2014 2022" "ablack3-cdmfactory-107 2014 2022" "andrew-nguyen-59 1988 2001 revived"; do
	set -- $pass
	folder="$DATA/$1"; y0=$2; y1=$3; label="$1 $2-$3${4:+ ($4)}"
	q -c "SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE;" >/dev/null
	q -c "SELECT count(*) FROM outreach.import_synthea('$folder')" >/dev/null || { notok "$label: import failed"; continue; }
	[ -z "${4:-}" ] || q -c "UPDATE outreach.contact SET deceased_at = NULL" >/dev/null
	out=$(q -v y0="$y0" -v y1="$y1" <<<"$INDEPENDENT" 2>&1) || { notok "$label: comparison failed: $(echo "$out" | tail -3)"; continue; }
	while IFS='|' read -r name param n_t n_e n_diff; do
		[ -n "$name" ] || continue
		if [ "$name" = denominator ]; then
			denominators[$param]=$(( ${denominators[$param]:-0} + n_t ))
			continue
		fi
		if [ "$n_diff" = 0 ] && [ "$n_t" = "$n_e" ]; then
			ok "$label: $name ($param): $n_t members, the same as the independent query"
		else
			notok "$label: $name ($param): template $n_t, independent query $n_e, $n_diff in only one of them"
		fi
		total_members[$name]=$(( ${total_members[$name]:-0} + n_t ))
	done <<<"$out"
done
# The comparison means something only where the data gives members.
for name in "${!total_members[@]}"; do
	echo "# $name: ${total_members[$name]} members over all years and both exports"
done
for name in breast_cancer_screening_gap colorectal_cancer_screening_gap cervical_cancer_screening_gap \
	uncontrolled_blood_pressure influenza_vaccination_gap new_diagnosis no_recent_visit; do
	if [ "${total_members[$name]:-0}" -gt 0 ]; then ok "$name has members in the shared data"; else notok "$name has members in the shared data"; fi
done
# Synthea's children are fully vaccinated and its diabetic well controlled: these two find no
# gap, so check that their denominators (the patients whose records they judged) are not empty.
for name in childhood_immunization_gap diabetes_hba1c_poor_control; do
	echo "# $name: denominator ${denominators[$name]:-0} patient-years"
	if [ "${denominators[$name]:-0}" -gt 0 ]; then ok "$name judged patients in the shared data"; else notok "$name judged patients in the shared data"; fi
done
# The sample bundled for `make demo`: unmodified, licensed, and its demo script runs.
sample="$ROOT/data/synthea-sample"
if (cd "$sample" && sha256sum --quiet -c SHA256SUMS); then ok "data/synthea-sample matches its SHA256SUMS"; else notok "data/synthea-sample matches its SHA256SUMS"; fi
if grep -q "Apache License" "$sample/LICENSE" && grep -q "761f5e4" "$sample/README.md"; then
	ok "data/synthea-sample carries the Apache-2.0 licence and its attribution"
else
	notok "data/synthea-sample carries the Apache-2.0 licence and its attribution"
fi
TMP=$(mktemp -d /tmp/outreach-synthea-demo.XXXXXX); chmod 755 "$TMP"; trap 'rm -rf "$TMP" ${DATA_COPY:+"$DATA_COPY"}' EXIT
cp -r "$sample" "$TMP/"; chmod -R a+rX "$TMP"
q -c "SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE;" >/dev/null
demo=$("$PSQL" -X -v ON_ERROR_STOP=1 -v synthea_dir="$TMP/synthea-sample" -f "$sample/demo.sql" 2>&1)
if [ $? -eq 0 ] && grep -qE '^ +[0-9]+$' <<<"$(grep -A2 members_now <<<"$demo")"; then
	ok "data/synthea-sample/demo.sql runs: import, template segments, members, a gap closing"
else
	notok "data/synthea-sample/demo.sql runs ($(echo "$demo" | tail -3))"
fi
finish
