#!/usr/bin/env bash
# test/extra/fhir_import.sh: outreach.import_fhir on real FHIR R4 data.
#
# Bundles (Synthea, one patient each) and Bulk Data NDJSON: every mapped field of every
# resource is compared with an independent reading of the JSON files (fhir_expected.py, the
# json module, not the importer); the unmapped resource types are counted as the files give
# them; a re-run changes nothing; a changed value is put back.  Then the error cases on small
# broken folders under /tmp, each checked for its SQLSTATE, for naming the file, the entry
# or line and the FHIRPath-like location, and for leaving nothing loaded.  Uses the shared
# set (../shared/data/fhir) when present, else the sample in data/fhir-sample.
# Prints "N passed, N failed" last.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PSQL="${PRIVATE_BIN:+$PRIVATE_BIN/}psql"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
notok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # description expected actual
	if [ "$2" = "$3" ]; then ok "$1"; else notok "$1 (expected '$2', got '$3')"; fi
}
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
q() { "$PSQL" -X -qtA -v ON_ERROR_STOP=1 "$@"; }

TMP=$(mktemp -d /tmp/outreach-fhir.XXXXXX)
chmod 755 "$TMP"
trap 'rm -rf "$TMP"' EXIT

SHARED=${FHIR_DATA:-}
if [ -z "$SHARED" ]; then
	for c in "$ROOT/../shared/data/fhir" "$ROOT/../../shared/data/fhir"; do
		[ -d "$c/smart-on-fhir-generated-sample-data-55" ] && { SHARED=$(cd "$c" && pwd); break; }
	done
fi
# The server (postgres OS user) reads the files: work on readable copies.
mkdir -p "$TMP/bundles" "$TMP/ndjson"
if [ -n "$SHARED" ]; then
	cp "$SHARED/smart-on-fhir-generated-sample-data-55/"*.json "$TMP/bundles/"
	cp "$SHARED/smart-on-fhir-sample-bulk-fhir-datasets-13/"*.ndjson "$TMP/ndjson/"
	echo "# using the shared FHIR set: $SHARED"
else
	echo "SKIP: shared FHIR data not found beside the repository (../shared/data/fhir); using the smaller data/fhir-sample"
	cp "$ROOT/data/fhir-sample/bundles/"*.json "$TMP/bundles/"
	cp "$ROOT/data/fhir-sample/ndjson/"*.ndjson "$TMP/ndjson/"
fi
chmod -R a+rX "$TMP"

fresh() {
	q -c "SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE;" >/dev/null
}
# compare LABEL DIR...: the independent reading against the tables
compare() {
	local label=$1 line; shift
	local out
	out=$(python3 "$ROOT/test/extra/fhir_expected.py" "$PSQL" "$@" 2>&1) || { notok "$label: fhir_expected.py failed: $(echo "$out" | tail -3)"; return; }
	while IFS= read -r line; do
		case "$line" in
			"ok - "*) ok "$label: ${line#ok - }" ;;
			"not ok - "*) notok "$label: ${line#not ok - }" ;;
			UNMAPPED\ *) UNMAPPED=${line#UNMAPPED } ;;
			SKIPPED_FILES\ *) SKIPPED=${line#SKIPPED_FILES } ;;
		esac
	done <<<"$out"
}
# the importer's own unmapped-type rows as JSON, for comparison with the files
unmapped_reported() {
	q -c "SELECT coalesce(jsonb_object_agg(resource_type, not_mapped), '{}') FROM ($1) r
	      WHERE detail = 'resource type not mapped'" | python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read()), sort_keys=True))'
}

# ---- Bundles ------------------------------------------------------------------------------
fresh
q -c "CREATE TABLE public.fhir_run AS SELECT * FROM outreach.import_fhir('$TMP/bundles')" >/dev/null \
	&& ok "bundles: import_fhir loads the folder" || notok "bundles: import_fhir failed"
compare bundles "$TMP/bundles"
check "bundles: every resource type that is not mapped is reported with its count" "$UNMAPPED" \
	"$(unmapped_reported 'SELECT * FROM public.fhir_run')"
check "bundles: the elements not mapped are counted (Observation.category among them)" "t" \
	"$(q -c "SELECT detail LIKE '%Observation.category: %' AND not_mapped > 0 FROM public.fhir_run WHERE resource_type = '(elements)'")"
check "bundles: placeholder 555 numbers are reported, not stored" "t" \
	"$(q -c "SELECT detail LIKE '%phone numbers not stored%' AND NOT EXISTS (SELECT 1 FROM outreach.contact WHERE phone LIKE '+1555%')
	         FROM public.fhir_run WHERE resource_type = 'Patient'")"
before=$(q -c "SELECT (SELECT count(*) FROM outreach.contact), (SELECT count(*) FROM outreach.observation), (SELECT max(updated_at) FROM outreach.observation), (SELECT count(*) FROM outreach.fhir_coding)")
check "bundles: a re-run inserts and updates nothing" "0|0" \
	"$(q -c "SELECT coalesce(sum(rows_inserted), 0), coalesce(sum(rows_updated), 0) FROM outreach.import_fhir('$TMP/bundles')")"
check "bundles: a re-run leaves every table as it was" "$before" \
	"$(q -c "SELECT (SELECT count(*) FROM outreach.contact), (SELECT count(*) FROM outreach.observation), (SELECT max(updated_at) FROM outreach.observation), (SELECT count(*) FROM outreach.fhir_coding)")"
q -c "UPDATE outreach.observation SET value_numeric = -1 WHERE id = (SELECT min(id) FROM outreach.observation WHERE value_numeric IS NOT NULL);
      UPDATE outreach.encounter SET start_at = start_at - interval '1 hour' WHERE id = (SELECT min(id) FROM outreach.encounter)" >/dev/null
check "bundles: a re-run puts changed rows back, in place" "1|1" \
	"$(q -c "SELECT sum(rows_updated) FILTER (WHERE resource_type = 'Observation'), sum(rows_updated) FILTER (WHERE resource_type = 'Encounter')
	         FROM outreach.import_fhir('$TMP/bundles')")"
compare "bundles after re-run" "$TMP/bundles"
check "bundles: blood-pressure panels give a systolic and a diastolic row each" "t" \
	"$(q -c "SELECT count(*) FILTER (WHERE code = '8480-6') = count(*) FILTER (WHERE code = '55284-4')
	           AND count(*) FILTER (WHERE code = '8462-4') = count(*) FILTER (WHERE code = '55284-4')
	           AND count(*) FILTER (WHERE code = '55284-4') > 0 FROM outreach.observation")"
check "bundles: the care team links patients to the practitioners of their encounters" "t" \
	"$(q -c "SELECT count(DISTINCT contact_id) = (SELECT count(*) FROM outreach.contact WHERE contact_type = 'patient'
	                                              AND EXISTS (SELECT 1 FROM outreach.encounter e WHERE e.patient_id = contact.id))
	         FROM outreach.care_team_member WHERE role = 'encounter_participant'")"

# Measure mode against the outreach segments on the same data (2018, the last complete year):
# the measure's gap, less the deceased and inactive, is exactly the template's segment.
for t in breast_cancer_screening_gap colorectal_cancer_screening_gap cervical_cancer_screening_gap \
	diabetes_hba1c_poor_control childhood_immunization_gap influenza_vaccination_gap; do
	period="[2018-01-01,2019-01-01)"; params='{"measurement_year": 2018}'
	[ "$t" = influenza_vaccination_gap ] && { period="[2018-08-01,2019-04-01)"; params='{"season": 2018}'; }
	check "measure $t: the gap of the measure (alive, active) is the template's segment" "t" \
		"$(q -c "SELECT ARRAY(SELECT m.contact_id FROM outreach.measure_members('$t', '$period', '{}', 'America/New_York') m
		                      JOIN outreach.contact c ON c.id = m.contact_id
		                      WHERE m.gap AND c.deceased_at IS NULL AND c.status = 'active' ORDER BY 1)
		         = ARRAY(SELECT x FROM outreach.evaluate(outreach.template_query('$t', '$params'), 'America/New_York') x ORDER BY 1)")"
done
# (The three sample bundles have no adult of screening age in 2018: this one needs the shared set.)
if [ -n "$SHARED" ]; then
check "measure reports find people on this data (denominators of the year are not all empty)" "t" \
	"$(q -c "SELECT sum(denominator) > 0 FROM (SELECT (outreach.measure_report(t, '[2018-01-01,2019-01-01)', '{}', 'America/New_York')).denominator
	         FROM unnest(ARRAY['colorectal_cancer_screening_gap', 'cervical_cancer_screening_gap', 'uncontrolled_blood_pressure']) t) x")"
fi

# ---- NDJSON (on top of the bundles: other patients) -------------------------------------------
q -c "DROP TABLE IF EXISTS public.fhir_run; CREATE TABLE public.fhir_run AS SELECT * FROM outreach.import_fhir('$TMP/ndjson')" >/dev/null \
	&& ok "ndjson: import_fhir loads the Bulk Data folder" || notok "ndjson: import_fhir failed"
compare "bundles + ndjson" "$TMP/bundles" "$TMP/ndjson"
check "ndjson: every resource type that is not mapped is reported with its count" "$(python3 "$ROOT/test/extra/fhir_expected.py" "$PSQL" "$TMP/ndjson" | sed -n 's/^UNMAPPED //p')" \
	"$(unmapped_reported 'SELECT * FROM public.fhir_run')"
check "ndjson: the export log is skipped and named" "skipped, not resource data: log.ndjson" \
	"$(q -c "SELECT detail FROM public.fhir_run WHERE resource_type = '(files)'")"
check "ndjson: conditional references (Practitioner?identifier=...) resolve to the care team" "t" \
	"$(q -c "SELECT count(*) > 0 FROM outreach.care_team_member m JOIN outreach.contact p ON p.id = m.contact_id
	         WHERE p.external_id IN (SELECT external_id FROM outreach.contact WHERE contact_type = 'patient')
	           AND m.practitioner_id IS NOT NULL AND p.external_id !~ '^Practitioner/'
	           AND EXISTS (SELECT 1 FROM outreach.fhir_source s WHERE s.row_id = p.id AND s.source_file LIKE '%.ndjson')")"
q -c "DROP TABLE IF EXISTS public.fhir_run" >/dev/null

# ---- Two imports at once (FHIR and FHIR, FHIR and CSV) are serialised: no duplicates ----------
fresh
q -c "SELECT count(*) FROM outreach.import_fhir('$TMP/bundles')" >"$TMP/conc1" 2>&1 &
c1=$!
q -c "SELECT count(*) FROM outreach.import_fhir('$TMP/bundles')" >"$TMP/conc2" 2>&1 &
c2=$!
wait $c1; r1=$?; wait $c2; r2=$?
check "two FHIR imports at once both succeed" "0 0" "$r1 $r2"
check "two FHIR imports at once leave no duplicates" "t" \
	"$(q -c "SELECT (SELECT count(*) FROM outreach.contact) = (SELECT count(DISTINCT external_id) FROM outreach.contact)
	           AND (SELECT count(*) FROM outreach.observation) = (SELECT count(*) FROM outreach.fhir_source WHERE entity = 'observation')")"

# ---- The same patients as Synthea CSV and as FHIR give the same segments ----------------------
# (The shared data has no export in both formats: fhir_same_as_csv.py writes one small
# population both ways, as Synthea writes each: CSV timestamps in UTC, FHIR with offsets,
# blood pressure as two CSV rows and one FHIR panel with components.)
python3 "$ROOT/test/extra/fhir_same_as_csv.py" "$TMP/same/csv" "$TMP/same/fhir" && chmod -R a+rX "$TMP/same"
members_all() { # one line per template: name|external ids of its members, in New York
	q -c "SET outreach.now = '2024-06-20 12:00:00+00';
	      SELECT t.name || '|' || coalesce((SELECT string_agg(c.external_id, ',' ORDER BY c.external_id)
	        FROM outreach.evaluate(outreach.template_query(t.name, t.params::jsonb), 'America/New_York') x
	        JOIN outreach.contact c ON c.id = x), '')
	      FROM (VALUES ('breast_cancer_screening_gap', '{\"measurement_year\": 2024}'),
	                   ('colorectal_cancer_screening_gap', '{\"measurement_year\": 2024}'),
	                   ('cervical_cancer_screening_gap', '{\"measurement_year\": 2024}'),
	                   ('diabetes_hba1c_poor_control', '{\"measurement_year\": 2024}'),
	                   ('uncontrolled_blood_pressure', '{\"measurement_year\": 2024}'),
	                   ('childhood_immunization_gap', '{\"measurement_year\": 2024}'),
	                   ('influenza_vaccination_gap', '{\"season\": 2024}'),
	                   ('new_diagnosis', '{\"value_set\": \"diabetes\", \"days\": 30}'),
	                   ('no_recent_visit', '{\"years\": 2}')) t(name, params) ORDER BY t.name"
}
fresh; q -c "SELECT count(*) FROM outreach.import_synthea('$TMP/same/csv')" >/dev/null
from_csv=$(members_all)
fresh; q -c "SELECT count(*) FROM outreach.import_fhir('$TMP/same/fhir')" >/dev/null
from_fhir=$(members_all)
while IFS='|' read -r t m; do
	check "same patients as CSV and as FHIR: $t has the same members" "$m" "$(echo "$from_fhir" | sed -n "s/^$t|//p")"
done <<<"$from_csv"
check "same patients: the comparison is not empty (most templates find someone)" "t" \
	"$([ "$(echo "$from_csv" | grep -c '|.')" -ge 6 ] && echo t || echo f)"

# ---- Errors: each names file, entry or line and location; nothing is loaded ------------------
# bad_case NAME SQLSTATE MESSAGE-REGEX: import $TMP/err/NAME into an empty database
bad_case() {
	local name=$1 state=$2 re=$3 out
	fresh
	out=$(q -c "DO \$\$ BEGIN PERFORM outreach.import_fhir('$TMP/err/$name');
	            EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%|%', SQLSTATE, SQLERRM; END \$\$" 2>&1)
	if [[ "$out" == *"$state|"* ]] && [[ "$out" =~ $re ]]; then ok "error $name: $state, names the place"; else notok "error $name: expected $state and /$re/, got: $out"; fi
	check "error $name: nothing was loaded" "0|0|0" \
		"$(q -c "SELECT (SELECT count(*) FROM outreach.contact), (SELECT count(*) FROM outreach.account), (SELECT count(*) FROM outreach.fhir_source)")"
}
mk() { mkdir -p "$TMP/err/$1"; cat >"$TMP/err/$1/$2"; chmod -R a+rX "$TMP/err"; }
PAT='{"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970-03-04"}}'
ORG='{"fullUrl": "urn:uuid:o1", "resource": {"resourceType": "Organization", "id": "o1", "name": "Clinic"}}'
mk notjson a.json <<<'{"resourceType": "Bundle", "type": "collection", "entry": [ {"resource": '
mk badline Patient.000.ndjson <<EOF
{"resourceType": "Patient", "id": "p1"}
{"resourceType": "Patient", "id": "p2"
EOF
mk nosubject b.json <<EOF
{"resourceType": "Bundle", "type": "transaction", "entry": [$ORG, $PAT,
 {"fullUrl": "urn:uuid:c1", "resource": {"resourceType": "Condition", "id": "c1", "code": {"text": "x"}}}]}
EOF
mk badref b.json <<EOF
{"resourceType": "Bundle", "type": "collection", "entry": [$PAT,
 {"fullUrl": "urn:uuid:c1", "resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "urn:uuid:nobody"}}}]}
EOF
mk unknownpatient Condition.ndjson <<EOF
{"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p9"}}
EOF
mk baddate b.json <<EOF
{"resourceType": "Bundle", "type": "collection", "entry": [$ORG,
 {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-02-30"}}]}
EOF
mk badvalue b.json <<EOF
{"resourceType": "Bundle", "type": "collection", "entry": [$PAT,
 {"fullUrl": "urn:uuid:b1", "resource": {"resourceType": "Observation", "id": "b1", "subject": {"reference": "urn:uuid:p1"},
  "component": [{"code": {"text": "s"}, "valueQuantity": {"value": 120}}, {"code": {"text": "d"}, "valueQuantity": {"value": "80"}}]}}]}
EOF
mk badtype b.json <<<'{"resourceType": "Bundle", "type": "document", "entry": []}'
mk badgender Patient.ndjson <<<'{"resourceType": "Patient", "id": "p1", "gender": "F"}'
mk encbackwards b.json <<EOF
{"resourceType": "Bundle", "type": "collection", "entry": [$PAT,
 {"fullUrl": "urn:uuid:e1", "resource": {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/p1"},
  "period": {"start": "2020-01-02T10:00:00-05:00", "end": "2020-01-02T09:00:00-05:00"}}}]}
EOF
mkdir -p "$TMP/err/empty"; chmod -R a+rX "$TMP/err"
bad_case notjson 22P02 '"a\.json": the file is not JSON'
bad_case badline 22P02 '"Patient\.000\.ndjson" line 2: the line is not JSON'
bad_case nosubject 23503 '"b\.json" entry 2: Condition has no subject .* at Bundle\.entry\[2\]\.resource\.subject'
bad_case badref 23503 'entry 1: reference "urn:uuid:nobody" does not resolve at Bundle\.entry\[1\]\.resource\.subject'
bad_case unknownpatient 23503 '"Condition\.ndjson" line 1: Patient "p9" is neither in this import nor imported before at Condition\.subject'
bad_case baddate 22007 'entry 1: "1970-02-30" is not a FHIR date or dateTime at Bundle\.entry\[1\]\.resource\.birthDate'
bad_case badvalue 22P02 'entry 1: "80" is not a number at Bundle\.entry\[1\]\.resource\.component\[1\]\.valueQuantity\.value'
bad_case badtype 22P02 '"b\.json": Bundle type "document" is not read'
bad_case badgender 22P02 'line 1: "F" is not a FHIR gender .* at Patient\.gender'
bad_case encbackwards 23514 'the encounter ends before it starts at Bundle\.entry\[1\]\.resource\.period\.end'
bad_case empty 58P01 'no FHIR files in'
out=$(q -c "SELECT outreach.import_fhir('relative/path')" 2>&1); [[ "$out" == *"is not an absolute path"* ]] && ok "a relative path is refused" || notok "relative path: $out"
fresh
check "only outreach_admin may import" "t|f|f" \
	"$(q -c "SELECT has_function_privilege('outreach_admin', 'outreach.import_fhir(text)', 'EXECUTE'),
	               has_function_privilege('outreach_analyst', 'outreach.import_fhir(text)', 'EXECUTE'),
	               has_function_privilege('outreach_marketer', 'outreach.import_fhir(text)', 'EXECUTE')")"
finish
