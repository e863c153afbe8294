#!/usr/bin/env bash
# test/extra/synthea_import.sh: outreach.import_synthea on the shared Synthea exports.
#
# For both folders of ../shared/data/synthea (3.x layout) and a 2.x-layout copy derived from
# one of them: per-entity counts equal the CSV, every CSV row is found in the tables with its
# codes, code systems, dates and links (checked by SQL written independently of the importer,
# on the CSV loaded with client-side \copy), a re-run changes nothing, a changed row is
# updated in place.  Then every error case on small broken folders under /tmp, each checked
# for its SQLSTATE, its message (file, line, column) and that nothing was loaded.
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

# The shared data lives beside the repository (CI: a fresh clone with shared/ next to it).
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
TMP=$(mktemp -d /tmp/outreach-synthea.XXXXXX)
chmod 755 "$TMP"
trap 'rm -rf "$TMP"' EXIT

# The server (postgres OS user) reads the files itself: when the checkout sits where it
# cannot (a clone under /root, say), work on a readable copy.
if [ "$(id -un)" != postgres ] && ! runuser -u postgres -- test -r "$DATA/andrew-nguyen-59/patients.csv" 2>/dev/null; then
	mkdir "$TMP/shared" && cp -r "$DATA/." "$TMP/shared/" && chmod -R a+rX "$TMP/shared"
	DATA="$TMP/shared"
fi

fresh() {
	q -c "SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE;" >/dev/null
}
csv_rows() { echo $(($(wc -l <"$1") - 1)); }

# verify FOLDER LABEL: counts and an independent row-by-row comparison of CSV and tables.
verify() {
	local dir=$1 label=$2 f cols sql=""
	for f in organizations payers patients encounters conditions observations procedures immunizations medications allergies; do
		[ -f "$dir/$f.csv" ] || continue
		cols=$(head -1 "$dir/$f.csv" | tr -d '\r' | tr 'A-Z' 'a-z' | sed 's/,/ text, /g')
		sql+="CREATE TEMP TABLE csv_$f ($cols text);
\\copy csv_$f FROM '$dir/$f.csv' WITH (FORMAT csv, HEADER true)
"
	done
	# Each line: entity|csv rows|rows in the table|csv rows found with all their values.
	local out
	out=$(q <<-EOF
	SET timezone = 'UTC';
	-- a plain date is a calendar date in the patient's zone: midnight there; a timestamp is itself
	CREATE FUNCTION pg_temp.ts(v text, tz text) RETURNS timestamptz LANGUAGE sql AS
	  \$f\$ SELECT CASE WHEN v ~ 'T' THEN v::timestamptz ELSE v::timestamp AT TIME ZONE tz END \$f\$;
	$sql
	SELECT 'organizations', (SELECT count(*) FROM csv_organizations),
	       (SELECT count(*) FROM outreach.account WHERE kind = 'medical_center'),
	       (SELECT count(*) FROM csv_organizations o WHERE EXISTS (SELECT 1 FROM outreach.account a
	          WHERE a.external_id = o.id AND a.name = o.name AND a.kind = 'medical_center'));
	SELECT 'payers', (SELECT count(*) FROM csv_payers), (SELECT count(*) FROM outreach.account WHERE kind = 'insurer'),
	       (SELECT count(*) FROM csv_payers o WHERE EXISTS (SELECT 1 FROM outreach.account a
	          WHERE a.external_id = o.id AND a.name = o.name AND a.kind = 'insurer'));
	SELECT 'patients', (SELECT count(*) FROM csv_patients), (SELECT count(*) FROM outreach.contact),
	       (SELECT count(*) FROM csv_patients p WHERE EXISTS (SELECT 1 FROM outreach.contact c
	          WHERE c.external_id = p.id AND c.first_name = p.first AND c.last_name = p.last
	            AND c.birthdate = p.birthdate::date
	            AND c.gender = CASE p.gender WHEN 'F' THEN 'female' WHEN 'M' THEN 'male' END
	            AND c.deceased_at IS NOT DISTINCT FROM pg_temp.ts(nullif(p.deathdate, ''), c.time_zone)
	            AND c.address_line IS NOT DISTINCT FROM p.address AND c.city IS NOT DISTINCT FROM p.city
	            AND c.postal_code IS NOT DISTINCT FROM p.zip
	            AND c.email IS NULL AND c.phone IS NULL AND c.status = 'active'));
	SELECT 'encounters', (SELECT count(*) FROM csv_encounters), (SELECT count(*) FROM outreach.encounter),
	       (SELECT count(*) FROM csv_encounters x WHERE EXISTS (SELECT 1 FROM outreach.encounter e
	          JOIN outreach.contact c ON c.id = e.patient_id
	          WHERE e.external_id = x.id AND c.external_id = x.patient AND e.class = x.encounterclass
	            AND e.code = x.code AND e.code_system = 'SNOMED' AND e.description = x.description
	            AND e.start_at = x.start::timestamptz AND e.end_at IS NOT DISTINCT FROM nullif(x.stop, '')::timestamptz));
	SELECT 'conditions', (SELECT count(*) FROM csv_conditions), (SELECT count(*) FROM outreach.condition),
	       (SELECT count(*) FROM csv_conditions x WHERE EXISTS (SELECT 1 FROM outreach.condition t
	          JOIN outreach.contact c ON c.id = t.patient_id JOIN outreach.encounter e ON e.id = t.encounter_id
	          WHERE c.external_id = x.patient AND e.external_id = x.encounter AND t.code = x.code
	            AND t.code_system = 'SNOMED' AND t.description = x.description AND t.onset_date = x.start::date
	            AND t.abatement_date IS NOT DISTINCT FROM nullif(x.stop, '')::date
	            AND t.clinical_status = CASE WHEN x.stop IS NULL THEN 'active' ELSE 'resolved' END));
	SELECT 'observations', (SELECT count(*) FROM csv_observations), (SELECT count(*) FROM outreach.observation),
	       (SELECT count(*) FROM csv_observations x WHERE EXISTS (SELECT 1 FROM outreach.observation t
	          JOIN outreach.contact c ON c.id = t.patient_id LEFT JOIN outreach.encounter e ON e.id = t.encounter_id
	          WHERE c.external_id = x.patient AND e.external_id IS NOT DISTINCT FROM nullif(x.encounter, '')
	            AND t.code = x.code AND t.code_system = CASE WHEN x.code IN ('QALY', 'DALY', 'QOLS') THEN 'Synthea' ELSE 'LOINC' END
	            AND t.effective_at = pg_temp.ts(x.date, c.time_zone)
	            AND t.unit IS NOT DISTINCT FROM nullif(x.units, '')
	            AND CASE WHEN x.type = 'numeric' THEN t.value_numeric = x.value::numeric AND t.value_text IS NULL
	                     ELSE t.value_text = x.value AND t.value_numeric IS NULL END));
	SELECT 'procedures', (SELECT count(*) FROM csv_procedures), (SELECT count(*) FROM outreach.procedure),
	       (SELECT count(*) FROM csv_procedures x WHERE EXISTS (SELECT 1 FROM outreach.procedure t
	          JOIN outreach.contact c ON c.id = t.patient_id JOIN outreach.encounter e ON e.id = t.encounter_id
	          WHERE c.external_id = x.patient AND e.external_id = x.encounter AND t.code = x.code
	            AND t.code_system = 'SNOMED'
	            AND t.performed_at = pg_temp.ts(coalesce(to_jsonb(x) ->> 'start', to_jsonb(x) ->> 'date'), c.time_zone)));
	SELECT 'immunizations', (SELECT count(*) FROM csv_immunizations), (SELECT count(*) FROM outreach.immunization),
	       (SELECT count(*) FROM csv_immunizations x WHERE EXISTS (SELECT 1 FROM outreach.immunization t
	          JOIN outreach.contact c ON c.id = t.patient_id JOIN outreach.encounter e ON e.id = t.encounter_id
	          WHERE c.external_id = x.patient AND e.external_id = x.encounter AND t.code = x.code
	            AND t.code_system = 'CVX' AND t.administered_at = pg_temp.ts(x.date, c.time_zone)));
	SELECT 'medications', (SELECT count(*) FROM csv_medications), (SELECT count(*) FROM outreach.medication),
	       (SELECT count(*) FROM csv_medications x WHERE EXISTS (SELECT 1 FROM outreach.medication t
	          JOIN outreach.contact c ON c.id = t.patient_id JOIN outreach.encounter e ON e.id = t.encounter_id
	          WHERE c.external_id = x.patient AND e.external_id = x.encounter AND t.code = x.code
	            AND t.code_system = 'RxNorm' AND t.start_at = pg_temp.ts(x.start, c.time_zone)
	            AND t.stop_at IS NOT DISTINCT FROM pg_temp.ts(nullif(x.stop, ''), c.time_zone)));
	SELECT 'allergies', (SELECT count(*) FROM csv_allergies), (SELECT count(*) FROM outreach.allergy),
	       (SELECT count(*) FROM csv_allergies x WHERE EXISTS (SELECT 1 FROM outreach.allergy t
	          JOIN outreach.contact c ON c.id = t.patient_id JOIN outreach.encounter e ON e.id = t.encounter_id
	          WHERE c.external_id = x.patient AND e.external_id = x.encounter AND t.code = x.code
	            AND t.code_system = CASE coalesce(to_jsonb(x) ->> 'system', 'SNOMED-CT') WHEN 'SNOMED-CT' THEN 'SNOMED' ELSE 'RxNorm' END
	            AND t.start_at = pg_temp.ts(x.start, c.time_zone)));
	EOF
	) || { notok "$label: independent comparison query failed"; return; }
	local entity n_csv n_table n_found
	while IFS='|' read -r entity n_csv n_table n_found; do
		[ -n "$entity" ] || continue
		check "$label: $entity: table rows = CSV rows ($n_csv)" "$n_csv" "$n_table"
		check "$label: $entity: every CSV row found with its codes, dates and links" "$n_csv" "$n_found"
	done <<<"$out"
}

# import FOLDER [SYNTH]: prints entity|rows_in_csv|inserted|updated lines.
import() {
	q -c "SELECT entity, rows_in_csv, inserted, updated FROM outreach.import_synthea('$1', ${2:-false}) ORDER BY entity"
}

# A 2.x-layout copy of a 3.x folder: columns 2.x lacks removed, plain dates where 2.x has them.
make_2x() {
	local src=$1 dst=$2
	mkdir -p "$dst"
	cp "$src"/{organizations,payers,conditions,medications}.csv "$dst/"
	cut -d, -f1-25 "$src/patients.csv" >"$dst/patients.csv"
	cut -d, -f1-4,6- "$src/encounters.csv" >"$dst/encounters.csv"
	cut -d, -f1-3,5- "$src/observations.csv" | awk -F, -v OFS=, 'NR > 1 { $1 = substr($1, 1, 10) } { print }' >"$dst/observations.csv"
	cut -d, -f1,3- "$src/procedures.csv" | awk -F, -v OFS=, 'NR == 1 { $1 = "DATE" } NR > 1 { $1 = substr($1, 1, 10) } { print }' >"$dst/procedures.csv"
	awk -F, -v OFS=, 'NR > 1 { $1 = substr($1, 1, 10) } { print }' "$src/immunizations.csv" >"$dst/immunizations.csv"
	cut -d, -f1-5,7 "$src/allergies.csv" >"$dst/allergies.csv"
	chmod -R a+rX "$dst"
}
make_2x "$DATA/andrew-nguyen-59" "$TMP/andrew-2x"

for folder in "$DATA/andrew-nguyen-59" "$DATA/ablack3-cdmfactory-107" "$TMP/andrew-2x"; do
	label=$(basename "$folder")
	fresh
	start=$(date +%s%N)
	first=$(import "$folder") || { notok "$label: import failed"; continue; }
	secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	echo "# $label: imported in ${secs}s"
	while IFS='|' read -r entity n ins upd; do
		check "$label: $entity: rows_in_csv counts the CSV" "$(csv_rows "$folder/$entity.csv")" "$n"
		check "$label: $entity: first import inserts every row" "$n/0" "$ins/$upd"
	done <<<"$first"
	check "$label: every file of the export reported" 10 "$(echo "$first" | wc -l)"
	verify "$folder" "$label"
	second=$(import "$folder") || { notok "$label: re-import failed"; continue; }
	check "$label: re-import inserts and updates nothing" "" "$(echo "$second" | awk -F'|' '$3 != 0 || $4 != 0')"
	verify "$folder" "$label (after re-import)"
done

# Time zone and layout mapping on the 2.x copy (still loaded): a plain date is midnight in the
# patient's zone (California here), the same calendar day in a segment of that zone.
check "2.x: procedure dates read as midnight in the patient's zone" "0|t" \
	"$(q -c "SELECT count(*) FILTER (WHERE t.performed_at <> date_trunc('day', t.performed_at AT TIME ZONE c.time_zone) AT TIME ZONE c.time_zone),
	                count(*) > 0
	         FROM outreach.procedure t JOIN outreach.contact c ON c.id = t.patient_id")"
check "patients of California get America/Los_Angeles" "59" \
	"$(q -c "SELECT count(*) FROM outreach.contact WHERE time_zone = 'America/Los_Angeles'")"

# An edited export updates in place: one condition resolved, one patient renamed.
fresh
src="$DATA/ablack3-cdmfactory-107"
mkdir -p "$TMP/edit"; cp "$src"/*.csv "$TMP/edit/"
import "$TMP/edit" >/dev/null
awk -F, -v OFS=, 'NR == 2 { $2 = "2023-01-01" } { print }' "$src/conditions.csv" >"$TMP/edit/conditions.csv"
awk -F, -v OFS=, 'NR == 3 { $8 = "Renamed1" } { print }' "$src/patients.csv" >"$TMP/edit/patients.csv"
chmod -R a+rX "$TMP/edit"
out=$(import "$TMP/edit")
check "edited export: the changed condition is updated, nothing inserted" "conditions|55|0|1" "$(echo "$out" | grep '^conditions')"
check "edited export: the renamed patient is updated" "patients|107|0|1" "$(echo "$out" | grep '^patients')"
check "edited export: the condition is resolved on its STOP date" "resolved|2023-01-01" \
	"$(q -c "SELECT clinical_status || '|' || abatement_date FROM outreach.condition WHERE id = (SELECT min(id) FROM outreach.condition)")"
check "edited export: still 55 conditions" "55" "$(q -c "SELECT count(*) FROM outreach.condition")"

# A deleted row comes back on re-import (its provenance is stale), without duplicating others.
q -c "DELETE FROM outreach.condition WHERE id = (SELECT max(id) FROM outreach.condition)" >/dev/null
check "deleted condition is re-imported" "conditions|55|1|0" "$(import "$TMP/edit" | grep '^conditions')"

# Synthesised channels (demos): example.org mailboxes and valid E.164 numbers, stable across runs.
fresh
import "$src" true >/dev/null
check "synthesize_channels: every patient has an example.org e-mail and a phone" "107" \
	"$(q -c "SELECT count(*) FROM outreach.contact WHERE email LIKE '%@example.org' AND phone ~ '^\+1[0-9]{10}$' AND preferred_channel = 'email'")"
before=$(q -c "SELECT md5(string_agg(email || phone, ',' ORDER BY id)) FROM outreach.contact")
import "$src" true >/dev/null
check "synthesize_channels: re-import keeps the same channels" "$before" \
	"$(q -c "SELECT md5(string_agg(email || phone, ',' ORDER BY id)) FROM outreach.contact")"
fresh
import "$src" >/dev/null
check "without synthesize_channels: no e-mail, no phone, letter preferred" "107|0|0" \
	"$(q -c "SELECT count(*) FILTER (WHERE preferred_channel = 'letter') || '|' || count(email) || '|' || count(phone) FROM outreach.contact")"

# Two imports of the same export at once: the second waits for the first and finds its rows.
fresh
q -c "SELECT count(*) FROM outreach.import_synthea('$src')" >"$TMP/conc1" 2>&1 &
p1=$!
q -c "SELECT count(*) FROM outreach.import_synthea('$src')" >"$TMP/conc2" 2>&1 &
p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
check "concurrent imports both succeed" "0 0" "$r1 $r2"
check "concurrent imports leave no duplicates" "107|1274|3190|1323" \
	"$(q -c "SELECT (SELECT count(*) FROM outreach.contact) || '|' || (SELECT count(*) FROM outreach.encounter) || '|' || (SELECT count(*) FROM outreach.observation) || '|' || (SELECT count(*) FROM outreach.immunization)")"

# Error cases.  expect_error LABEL FOLDER SQLSTATE MESSAGE-FRAGMENT: the import fails with that
# SQLSTATE and message, and nothing at all was loaded.
expect_error() {
	local label=$1 folder=$2 state=$3 frag=$4 out
	fresh
	out=$("$PSQL" -X -qtA -v VERBOSITY=verbose -c "SELECT * FROM outreach.import_synthea('$folder')" 2>&1)
	if grep -q "ERROR:  $state:" <<<"$out"; then ok "$label: SQLSTATE $state"; else notok "$label: SQLSTATE $state (got: $(echo "$out" | head -3))"; fi
	if grep -qF -- "$frag" <<<"$out"; then ok "$label: message names $frag"; else notok "$label: message names $frag (got: $(echo "$out" | head -3))"; fi
	check "$label: nothing loaded" "0|0|0" \
		"$(q -c "SELECT (SELECT count(*) FROM outreach.contact) || '|' || (SELECT count(*) FROM outreach.account) || '|' || (SELECT count(*) FROM outreach.encounter)")"
}
# broken NAME: a copy of the small export to break.
broken() { rm -rf "$TMP/$1"; mkdir -p "$TMP/$1"; cp "$src"/{organizations,payers,patients,encounters,conditions,observations,immunizations}.csv "$TMP/$1/"; chmod -R a+rX "$TMP/$1"; echo "$TMP/$1"; }
edit() { # FILE AWK-PROGRAM
	awk -F, -v OFS=, "$2" "$1" >"$1.new" && mv "$1.new" "$1" && chmod a+r "$1"
}

expect_error "folder does not exist" "$TMP/nope" 58P01 "does not exist on the database server"
expect_error "relative path" "data/synthea" 22023 "is not an absolute path"
expect_error "a file instead of a folder" "$src/patients.csv" 42809 "is not a folder"
d=$(broken nopatients); rm "$d/patients.csv"
expect_error "folder without patients.csv" "$d" 58P01 'file "patients.csv" is missing'
d=$(broken header); edit "$d/conditions.csv" 'NR == 1 { $5 = "KODE" } { print }'
expect_error "bad header" "$d" 22P04 'file "conditions.csv" has an unexpected header'
d=$(broken emptyfile); : >"$d/encounters.csv"
expect_error "empty file" "$d" 22P04 'file "encounters.csv" has an unexpected header'
d=$(broken extrafield); edit "$d/conditions.csv" 'NR == 4 { $0 = $0 ",extra" } { print }'
expect_error "row with an extra field" "$d" 22P04 'bad row in "conditions.csv" at line 4'
d=$(broken shortrow); edit "$d/immunizations.csv" 'NR == 7 { NF = 3 } { print }'
expect_error "row with too few fields" "$d" 22P04 'bad row in "immunizations.csv" at line 7'
d=$(broken baddate); edit "$d/conditions.csv" 'NR == 5 { $1 = "2020-02-30" } { print }'
expect_error "impossible date" "$d" 22P02 '"conditions.csv" line 5 column START: "2020-02-30"'
d=$(broken badts); edit "$d/encounters.csv" 'NR == 9 { $2 = "yesterday" } { print }'
expect_error "bad timestamp" "$d" 22P02 '"encounters.csv" line 9 column START: "yesterday"'
d=$(broken badday); edit "$d/immunizations.csv" 'NR == 11 { $1 = "2021-02-29T10:00:00Z" } { print }'
expect_error "timestamp on a day that does not exist" "$d" 22P02 '"immunizations.csv" line 11 column DATE: "2021-02-29T10:00:00Z"'
d=$(broken leapday); edit "$d/immunizations.csv" 'NR == 11 { $1 = "2020-02-29T10:00:00Z" } NR == 12 { $1 = "2021-03-31T23:59:59.5+02:00" } { print }'
fresh
check "a leap day and an offset timestamp with fractions are accepted" "2020-02-29 10:00:00+00|2021-03-31 21:59:59.5+00" \
	"$(q -c "SET timezone = 'UTC'; SELECT count(*) FROM outreach.import_synthea('$d');" >/dev/null; q -c "SET timezone = 'UTC'; SELECT string_agg(administered_at::text, '|' ORDER BY id) FROM outreach.immunization WHERE id IN (SELECT min(id) + 9 FROM outreach.immunization UNION SELECT min(id) + 10 FROM outreach.immunization)")"
d=$(broken badnum); edit "$d/observations.csv" 'NR > 1 && $9 == "numeric" && !done { $7 = "12,5"; done = 1 } { print }'
expect_error "bad number in a numeric observation" "$d" 22P04 'bad row in "observations.csv"'
d=$(broken badnum2); line=$(awk -F, 'NR > 1 && $9 == "numeric" { print NR; exit }' "$d/observations.csv")
edit "$d/observations.csv" "NR == $line { \$7 = \"high\" } { print }"
expect_error "text in a numeric observation" "$d" 22P02 "\"observations.csv\" line $line column VALUE: \"high\""
d=$(broken badgender); edit "$d/patients.csv" 'NR == 6 { $15 = "X" } { print }'
expect_error "unknown gender" "$d" 22P02 '"patients.csv" line 6 column GENDER: "X"'
d=$(broken dup); edit "$d/patients.csv" '{ print } NR == 3 { print }'
expect_error "duplicate patient id" "$d" 23505 '"patients.csv" line 4 column Id:'
d=$(broken orphan); edit "$d/conditions.csv" 'NR == 3 { $3 = "no-such-patient" } { print }'
expect_error "condition of an unknown patient" "$d" 23503 '"conditions.csv" line 3 column PATIENT: "no-such-patient"'
d=$(broken orphanenc); edit "$d/immunizations.csv" 'NR == 2 { $3 = "no-such-encounter" } { print }'
expect_error "immunization of an unknown encounter" "$d" 23503 '"immunizations.csv" line 2 column ENCOUNTER'
d=$(broken nobirth); edit "$d/patients.csv" 'NR == 2 { $2 = "" } { print }'
expect_error "patient without birthdate" "$d" 22P02 '"patients.csv" line 2 column BIRTHDATE: empty'
d=$(broken stopbefore); edit "$d/encounters.csv" 'NR == 2 { $3 = "1900-01-01T00:00:00Z" } { print }'
expect_error "encounter ending before it starts" "$d" 22P02 '"encounters.csv" line 2 column STOP'
if [ "$(id -un)" != postgres ]; then
	d=$(broken unreadable); chmod 600 "$d/conditions.csv"
	expect_error "file the server cannot read" "$d" 42501 'cannot read'
fi
# Messages name the column as the file's header spells it, and the line the bad row is on.
d=$(broken missingcol); edit "$d/conditions.csv" 'NR == 4 { NF = 5 } { print }'
expect_error "a row without its last field names the header's column" "$d" 22P04 'missing data for column DESCRIPTION'
d=$(broken multiline); awk -F, -v OFS=, 'NR == 3 { $6 = "\"two\nlines\"" } NR == 5 { $1 = "2020-02-30" } { print }' "$src/conditions.csv" >"$d/conditions.csv"; chmod a+r "$d/conditions.csv"
expect_error "a bad row after a field spanning two lines: its own line" "$d" 22P02 '"conditions.csv" line 6 column START: "2020-02-30"'
d=$(broken proc2x); mkdir -p "$d"; make_2x "$src" "$TMP/proc2x-src" 2>/dev/null
cp "$TMP/proc2x-src"/{patients,encounters,procedures}.csv "$d/" 2>/dev/null
if [ -s "$d/procedures.csv" ] && [ "$(wc -l <"$d/procedures.csv")" -gt 2 ]; then
	edit "$d/procedures.csv" 'NR == 3 { $1 = "2020-13-01" } { print }'
	expect_error "2.x procedures.csv: the date column is named DATE, as in its header" "$d" 22P02 '"procedures.csv" line 3 column DATE: "2020-13-01"'
fi
# An error late in the load order (the last file) still leaves nothing loaded.
d=$(broken late); cp "$src/medications.csv" "$d/"; edit "$d/medications.csv" 'NR == 20 { $1 = "2020-13-01T00:00:00Z" } { print }'
expect_error "bad value in the last file loaded" "$d" 22P02 '"medications.csv" line 20 column START'

finish
