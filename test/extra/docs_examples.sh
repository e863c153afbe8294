#!/usr/bin/env bash
# test/extra/docs_examples.sh: the documentation's examples run as written.
#   * the README's tour (its ```sql block) in a new database with outreach, and in a database
#     set up like `make demo`'s (scripts/demo.d, a smaller population): no error, no name clash,
#     the tour's patient joins the tour's segment at commit, the journey queues her email;
#   * every ```sql block of docs/operations.md, in order, in a database with outreach.
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
DBS="ops_docs_fresh ops_docs_demo ops_docs_ops"
cleanup() { for d in $DBS; do "$BIN/dropdb" --if-exists "$d" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT
for d in $DBS; do "$BIN/dropdb" --if-exists "$d" 2>/dev/null; done

# sql_blocks FILE [HEADING]: the ```sql blocks of FILE (under HEADING only, if given), each
# followed by a line "-- end of block N".
sql_blocks() {
	awk -v heading="${2:-}" '
		/^## / { insec = (heading == "" || $0 == heading) }
		/^```sql$/ { if (insec) { inb = 1; n++ } ; next }
		/^```/ { if (inb) { print "-- end of block " n; inb = 0 } ; next }
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
blocks=$(grep -c '^-- end of block' "$TMP/ops.sql")
check "docs/operations.md has SQL examples" "t" "$([ "$blocks" -ge 5 ] && echo t || echo f)"
"$BIN/createdb" ops_docs_ops
q ops_docs_ops -c "SET client_min_messages = warning; CREATE EXTENSION outreach" >/dev/null
if out=$(q ops_docs_ops -f "$TMP/ops.sql" 2>&1); then
	ok "every SQL example of docs/operations.md runs ($blocks blocks)"
else
	notok "docs/operations.md examples: $(echo "$out" | grep -E 'ERROR' | head -3)"
fi
finish
