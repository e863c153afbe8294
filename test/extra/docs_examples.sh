#!/usr/bin/env bash
# test/extra/docs_examples.sh: the documentation's examples run as written.
#   * the README's tour (its ```sql block) in a new database with outreach, and in a database
#     set up like `make demo`'s (scripts/demo.d, a smaller population): no error, no name clash,
#     the tour's patient joins the tour's segment at commit, the journey queues her email;
#   * every ```sql block of docs/operations.md, in order, in a database with outreach;
#   * every other docs/*.md: its ```sql blocks, in order, in a new database with outreach and a
#     small population (outreach.generate_population), after the set-up its examples need
#     (setup_for below); a block just after an HTML comment "<!-- not run: reason -->" is
#     illustrative (placeholders, output shown for reading) and is skipped, and counted.
# Prints "N passed, N failed" last.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PRIVATE_BIN:-$(dirname "$(command -v psql)")}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
notok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1 (expected '$2', got '$3')"; fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
q() { local db=$1; shift; "$BIN/psql" -X -qtA -v ON_ERROR_STOP=1 -d "$db" "$@"; }

TMP=$(mktemp -d /tmp/outreach-docs.XXXXXX); chmod 755 "$TMP"
DBS="ops_docs_fresh ops_docs_demo ops_docs_ops ops_docs_base ops_docs_each"
# roles the docs' examples create (cluster-wide): dropped before and after
DOC_ROLES="outreach_gateway alice gateway"
drop_roles() { for r in $DOC_ROLES; do "$BIN/psql" -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done; }
cleanup() { for d in $DBS; do "$BIN/dropdb" --if-exists "$d" 2>/dev/null; done; drop_roles; rm -rf "$TMP"; }
trap cleanup EXIT
for d in $DBS; do "$BIN/dropdb" --if-exists "$d" 2>/dev/null; done
drop_roles

# sql_blocks FILE [HEADING]: the ```sql blocks of FILE (under HEADING only, if given), each
# followed by a line "-- end of block N".
sql_blocks() {
	awk -v heading="${2:-}" '
		BEGIN { insec = (heading == "") }
		/^## / { insec = (heading == "" || $0 == heading) }
		/^<!-- not run:/ { skip = 1; next }
		/^```sql$/ { if (insec && !skip) { inb = 1; n++ } ; skip = 0; next }
		/^[^[:space:]]/ { skip = 0 }
		/^```/ { if (inb) { print ";  -- end of block " n; inb = 0 } ; next }
		inb { print }
	' "$1"
}

sql_blocks "$ROOT/README.md" "## A short tour" >"$TMP/tour.sql"
check "the README has a tour" "t" "$([ "$(wc -l <"$TMP/tour.sql")" -gt 20 ] && echo t || echo f)"

tour_checks() { # DB LABEL
	check "$2: the tour's patient is in the tour's segment" "1" \
		"$(q "$1" -c "SELECT count(*) FROM outreach.segment_members WHERE segment = 'Tour: hypermetropia' AND external_id = 'tour-1'")"
	check "$2: the tour's journey queued her invitation" "1" \
		"$(q "$1" -c "SELECT count(*) FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id JOIN outreach.contact c ON c.id = m.contact_id WHERE j.name = 'Tour: eye exam' AND c.external_id = 'tour-1' AND m.channel = 'email'")"
}

# ---- the tour in a new database --------------------------------------------------------------
"$BIN/createdb" ops_docs_fresh
q ops_docs_fresh -c "SET client_min_messages = warning; CREATE EXTENSION outreach" >/dev/null
if out=$(q ops_docs_fresh -f "$TMP/tour.sql" 2>&1); then ok "the README tour runs in a new database"; else notok "the README tour in a new database: $(echo "$out" | grep -E 'ERROR' | head -3)"; fi
tour_checks ops_docs_fresh "new database"

# ---- the tour in a database set up like make demo's ------------------------------------------
"$BIN/createdb" ops_docs_demo
q ops_docs_demo -c "SET client_min_messages = warning; CREATE EXTENSION outreach" >/dev/null
cp -r "$ROOT/data/synthea-sample" "$TMP/" && chmod -R a+rX "$TMP"
demo_ok=1
for f in "$ROOT"/scripts/demo.d/*.sql; do
	if ! out=$("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d ops_docs_demo -v contacts=1000 -v seed=7 -v synthea_dir="$TMP/synthea-sample" -f "$f" 2>&1); then
		demo_ok=""; notok "demo section $(basename "$f") for the tour: $(echo "$out" | grep ERROR | head -2)"
	fi
done
[ -n "$demo_ok" ] && ok "the demo database is set up"
if out=$(q ops_docs_demo -f "$TMP/tour.sql" 2>&1); then ok "the README tour runs in the demo database"; else notok "the README tour in the demo database: $(echo "$out" | grep -E 'ERROR' | head -3)"; fi
tour_checks ops_docs_demo "demo database"

# ---- docs/operations.md ----------------------------------------------------------------------
sql_blocks "$ROOT/docs/operations.md" >"$TMP/ops.sql"
blocks=$(grep -c -- '-- end of block' "$TMP/ops.sql")
check "docs/operations.md has SQL examples" "t" "$([ "$blocks" -ge 5 ] && echo t || echo f)"
"$BIN/createdb" ops_docs_ops
q ops_docs_ops -c "SET client_min_messages = warning; CREATE EXTENSION outreach" >/dev/null
if out=$(q ops_docs_ops -f "$TMP/ops.sql" 2>&1); then
	ok "every SQL example of docs/operations.md runs ($blocks blocks)"
else
	notok "docs/operations.md examples: $(echo "$out" | grep -E 'ERROR' | head -3)"
fi

# ---- every other doc, each in a new database with a small population --------------------------
# setup_for DOC: what the doc's examples assume exists (templates, segments, roles...).
tmpl() { # name channel [class]: a template with what a message of its class needs
	echo "SELECT outreach.create_template('$1', '$2', 'Hello {{contact.first_name}} {{unsubscribe_url}} {{sender.postal_address}}', CASE WHEN '$2' = 'email' THEN 'Hello' END, message_class => '${3:-marketing}', sender_postal_address => '1 Main St, Springfield');"
}
setup_for() {
	case "$1" in
	events) echo "SET outreach.now = '2026-09-15 12:00+00';"   # before the event's dates
		for t in flu_cancelled flu_confirm flu_remind flu_thanks flu_missed; do tmpl "$t" email transactional; done ;;
	journeys)
		echo "SELECT outreach.create_segment('Hypermetropia patients', \$\$contact where has condition where description contains 'Hypermetropia'\$\$);"
		echo "SELECT outreach.go_live('Hypermetropia patients');"
		tmpl eye_invite email; tmpl eye_reminder sms
		# the preferred-channel and experiment examples add steps to a journey 'recall'
		tmpl recall_email email; tmpl recall_sms sms; tmpl recall_letter letter; tmpl recall_plain email; tmpl recall_urgent email
		echo "SELECT outreach.create_journey('recall', 'Hypermetropia patients');" ;;
	security)
		echo "CREATE ROLE gateway;"
		echo "INSERT INTO outreach.account (name, kind) VALUES ('Northside Clinic', 'medical_center');" ;;
	templates)
		tmpl 'flu reminder' email
		echo "SELECT outreach.create_segment('due for flu shot', 'contact where age >= 65'); SELECT outreach.go_live('due for flu shot');" ;;
	esac
}
"$BIN/createdb" ops_docs_base
q ops_docs_base -c "SET client_min_messages = warning; CREATE EXTENSION outreach" -c "SELECT count(*) FROM outreach.generate_population(300, 7)" >/dev/null
run_docs=""; skipped_total=0
for doc in "$ROOT"/docs/*.md; do
	name=$(basename "$doc" .md)
	[ "$name" = operations ] && continue                       # above, in a database of its own
	all=$(grep -c '^```sql$' "$doc"); [ "$all" -eq 0 ] && continue
	sql_blocks "$doc" >"$TMP/$name.sql"
	blocks=$(grep -c -- '-- end of block' "$TMP/$name.sql"); skipped=$((all - blocks))
	skipped_total=$((skipped_total + skipped))
	notes=$(grep -c '^<!-- not run: ' "$doc")
	check "docs/$name.md: each \"not run\" note marks one skipped block" "$notes" "$skipped"
	[ "$blocks" -eq 0 ] && continue
	"$BIN/dropdb" --if-exists ops_docs_each 2>/dev/null
	"$BIN/createdb" -T ops_docs_base ops_docs_each
	{ echo "SET client_min_messages = warning;"; setup_for "$name"; echo "RESET client_min_messages;"; cat "$TMP/$name.sql"; } >"$TMP/$name.run.sql"
	if out=$(q ops_docs_each -f "$TMP/$name.run.sql" 2>&1); then
		ok "docs/$name.md: its $blocks SQL example(s) run ($skipped marked not run)"; run_docs="$run_docs $name"
	else
		notok "docs/$name.md examples: $(echo "$out" | grep -E 'ERROR|DETAIL' | head -4)"
	fi
	drop_roles
done
echo "# docs whose examples ran:$run_docs; blocks marked not run: $skipped_total"
finish
