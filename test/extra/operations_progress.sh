#!/usr/bin/env bash
# test/extra/operations_progress.sh: long operations seen from another session and cancelled.
#   * outreach._progress: a NOTICE with what and how far; outreach.running_operation in another
#     session shows the operation, done and total while it runs; the caller's
#     application_name comes back after it;
#   * CALL outreach.purge_backlog(): visible while it runs, pg_cancel_backend stops it, the
#     batches it committed stay and no batch is half done;
#   * a go_live cancelled by pg_cancel_backend leaves the segment as it was (no members), after
#     its work and in the middle of its evaluation (seen as go_live in running_operation);
#   * import_synthea shows its phase (step of 22) while it loads; cancelled then, it loads nothing.
# Bounded: about 20 seconds.  Prints "N passed, N failed" last.
set -uo pipefail

BIN=${PRIVATE_BIN:-$(dirname "$(command -v psql)")}
DB=ops_progress
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
notok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1 (expected '$2', got '$3')"; fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
q() { "$BIN/psql" -X -qtA -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
TMP=$(mktemp -d /tmp/outreach-progress.XXXXXX)
BG=""
cleanup() { [ -n "$BG" ] && kill "$BG" 2>/dev/null; "$BIN/dropdb" --if-exists "$DB" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
"$BIN/dropdb" --if-exists "$DB" 2>/dev/null
"$BIN/createdb" "$DB"
q -c "SET client_min_messages = warning; CREATE EXTENSION outreach" >/dev/null

# wait_for SQL: poll (up to 20 s) until SQL returns a non-empty value; prints it
wait_for() {
	local v
	for _ in $(seq 1 200); do
		v=$(q -c "$1"); [ -n "$v" ] && { echo "$v"; return 0; }
		sleep 0.1
	done
	return 1
}

# ---- _progress: NOTICE, running_operation, application_name restored ---------------------------
out=$("$BIN/psql" -X -qtA -d "$DB" -c "SELECT outreach._progress('demo_op', 10, 10)" 2>&1)
check "a finished step reports a NOTICE with what and how far" "1" "$(echo "$out" | grep -c 'NOTICE:  demo_op: 10 of 10 (100%)')"
PGAPPNAME=worker "$BIN/psql" -X -qtA -d "$DB" -c "SELECT outreach._progress('demo_op', 5, 10), pg_sleep(3)" >/dev/null 2>&1 &
BG=$!
seen=$(wait_for "SELECT operation || ' ' || done || ' ' || total FROM outreach.running_operation WHERE operation = 'demo_op'")
check "another session sees the running operation and how far it is" "demo_op 5 10" "$seen"
wait "$BG"; BG=""
check "the caller's application_name comes back when the operation ends" "worker" \
	"$(PGAPPNAME=worker "$BIN/psql" -X -qtA -d "$DB" -c "BEGIN" -c "SELECT outreach._progress('x', 1, 2)" -c "SELECT outreach._progress_done()" -c "SHOW application_name" -c "COMMIT" 2>/dev/null | tail -1)"

# ---- purge_backlog: visible, cancelled, whole batches only --------------------------------------
q >/dev/null <<'SQL'
INSERT INTO outreach.tick_run (at, finished_at)
SELECT '2020-01-01'::timestamptz + i * interval '1 minute', '2020-01-02' FROM generate_series(1, 20000) i;
-- slow each batch down (test only) so the operation can be watched and cancelled mid-way
CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
CREATE TRIGGER slow AFTER DELETE ON outreach.tick_run FOR EACH STATEMENT EXECUTE FUNCTION public.slow();
SQL
"$BIN/psql" -X -qtA -d "$DB" -c "CALL outreach.purge_backlog(1000)" >"$TMP/purge.out" 2>&1 &
BG=$!
row=$(wait_for "SELECT pid || ' ' || done FROM outreach.running_operation WHERE operation = 'purge_backlog' AND done >= 2000")
if [ -n "$row" ]; then ok "purge_backlog shows its progress to other sessions ($row)"; else notok "purge_backlog shows its progress to other sessions"; fi
pid=${row%% *}
q -c "SELECT pg_cancel_backend($pid)" >/dev/null
wait "$BG"; BG=""
check "pg_cancel_backend stops it" "1" "$(grep -c 'canceling statement due to user request' "$TMP/purge.out")"
left=$(q -c "SELECT count(*) FROM outreach.tick_run WHERE at < '2021-01-01'")
check "the batches it committed stay, none is half done" "0" "$(( (20000 - left) % 1000 ))"
check "and it had purged some but not all" "t" "$([ "$left" -lt 20000 ] && [ "$left" -gt 0 ] && echo t || echo "f ($left)")"

# ---- a cancelled go_live leaves nothing ----------------------------------------------------------
q >/dev/null <<'SQL'
INSERT INTO outreach.contact (external_id, birthdate) SELECT 'c' || i, DATE '1950-01-01' + i FROM generate_series(1, 3000) i;
SELECT outreach.create_segment('adults', 'contact where age >= 18');
SQL
"$BIN/psql" -X -qtA -d "$DB" -c "SELECT outreach.go_live('adults'), pg_sleep(20)" >"$TMP/golive.out" 2>&1 &
BG=$!
pid=$(wait_for "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND wait_event = 'PgSleep' AND query LIKE '%go_live%'")
q -c "SELECT pg_cancel_backend($pid)" >/dev/null
wait "$BG"; BG=""
check "a go_live cancelled after its work leaves the segment a draft" "draft" "$(q -c "SELECT status FROM outreach.segment WHERE name = 'adults'")"
check "and without members or history" "0 0" "$(q -c "SELECT (SELECT count(*) FROM outreach.segment_member), (SELECT count(*) FROM outreach.segment_change)" | tr '|' ' ')"

# ---- go_live: seen while it evaluates, cancelled mid-way ----------------------------------------
q >/dev/null <<'SQL'
-- slow the writing of members down (test only) so go_live can be watched and cancelled mid-way
CREATE FUNCTION public.slow_member() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
CREATE TRIGGER slow_member AFTER INSERT ON outreach.segment_member FOR EACH STATEMENT EXECUTE FUNCTION public.slow_member();
SQL
"$BIN/psql" -X -qtA -d "$DB" -c "SELECT outreach.go_live('adults')" >"$TMP/golive2.out" 2>&1 &
BG=$!
row=$(wait_for "SELECT pid || ' ' || done FROM outreach.running_operation WHERE operation = 'go_live'")
check "go_live shows its phase to other sessions while it evaluates (0 members written so far)" "0" "${row#* }"
q -c "SELECT pg_cancel_backend(${row%% *})" >/dev/null
wait "$BG"; BG=""
check "pg_cancel_backend stops go_live mid-evaluation" "1" "$(grep -c 'canceling statement due to user request' "$TMP/golive2.out")"
check "the segment stays a draft without members or history" "draft 0 0" \
	"$(q -c "SELECT s.status, (SELECT count(*) FROM outreach.segment_member), (SELECT count(*) FROM outreach.segment_change) FROM outreach.segment s WHERE s.name = 'adults'" | tr '|' ' ')"
q -c "DROP TRIGGER slow_member ON outreach.segment_member" >/dev/null

# ---- import_synthea: seen phase by phase, cancelled while loading, loads nothing -----------------
cp -r "$(cd "$(dirname "$0")/../.." && pwd)/data/synthea-sample" "$TMP/" && chmod -R a+rX "$TMP"
q >/dev/null <<'SQL'
-- slow the load of encounters down (test only): the import is then in its load phase
CREATE FUNCTION public.slow_encounter() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
CREATE TRIGGER slow_encounter AFTER INSERT ON outreach.encounter FOR EACH STATEMENT EXECUTE FUNCTION public.slow_encounter();
SQL
before=$(q -c "SELECT (SELECT count(*) FROM outreach.contact) || ' ' || (SELECT count(*) FROM outreach.account)")
"$BIN/psql" -X -qtA -d "$DB" -c "SELECT * FROM outreach.import_synthea('$TMP/synthea-sample')" >"$TMP/synthea.out" 2>&1 &
BG=$!
row=$(wait_for "SELECT pid || ' ' || done || ' ' || total FROM outreach.running_operation WHERE operation = 'import_synthea' AND done > 10")
set -- $row
check "import_synthea shows its step (of 22) to other sessions: past staging and checks, loading" "t 22" \
	"$([ -n "$row" ] && [ "$2" -gt 10 ] && [ "$2" -lt 22 ] && echo t || echo "f ($row)") ${3:-}"
q -c "SELECT pg_cancel_backend(${1:-0})" >/dev/null
wait "$BG"; BG=""
check "pg_cancel_backend stops import_synthea" "1" "$(grep -c 'canceling statement due to user request' "$TMP/synthea.out")"
check "a cancelled import_synthea loads nothing: contacts and accounts as before, no encounter" "$before 0" \
	"$(q -c "SELECT (SELECT count(*) FROM outreach.contact) || ' ' || (SELECT count(*) FROM outreach.account) || ' ' || (SELECT count(*) FROM outreach.encounter)")"
check "and leaves no operation running" "0" "$(q -c "SELECT count(*) FROM outreach.running_operation")"
finish
