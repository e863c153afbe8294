#!/usr/bin/env bash
# test/extra/operations_cron.sh: outreach in two databases of one cluster, each ticked by
# pg_cron (one in pg_cron's database through schedule_tick(), one elsewhere through
# cron.schedule_in_database, as docs/operations.md says); the notifications a LISTEN-only
# process gets: an alert once per incident with its JSON payload, and a message held by quiet
# hours announced again by the first tick after it is due, once.  Waits at most ~2.5 minutes
# for pg_cron's minute.  Prints "N passed, N failed" last.
set -uo pipefail

BIN=${PRIVATE_BIN:-$(dirname "$(command -v psql)")}
MAIN=${PGDATABASE:-outreach_test}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
notok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1 (expected '$2', got '$3')"; fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
q() { local db=$1; shift; "$BIN/psql" -X -qtA -v ON_ERROR_STOP=1 -d "$db" "$@"; }

cleanup() {
	q "$MAIN" -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'outreach-tick%'" >/dev/null 2>&1
	q "$MAIN" -c "SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE" >/dev/null 2>&1
	for d in ops_second ops_notify; do "$BIN/dropdb" --if-exists "$d" 2>/dev/null; done
}
trap cleanup EXIT
for d in ops_second ops_notify; do "$BIN/dropdb" --if-exists "$d" 2>/dev/null; done

# ---- two databases, each ticked by pg_cron ---------------------------------------------------
q "$MAIN" -c "SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach; CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null
"$BIN/createdb" ops_second
q ops_second -c "SET client_min_messages = warning; CREATE EXTENSION outreach" >/dev/null && ok "outreach installs in a second database of the cluster"
check "pg_cron's database: schedule_tick() installs its job" "t" "$(q "$MAIN" -c "SELECT outreach.schedule_tick() > 0")"
err=$(q ops_second -c "\\set VERBOSITY verbose" -c "SELECT outreach.schedule_tick()" 2>&1 >/dev/null)
check "another database: schedule_tick() refuses with SQLSTATE 55000" "1" "$(echo "$err" | grep -c '55000')"
hint=$(echo "$err" | sed -n 's/^HINT:  In database [^ ]* run: //p')
check "and its hint gives the command to run in pg_cron's database" "t" "$(echo "$hint" | grep -q "cron.schedule_in_database('outreach-tick:ops_second'" && echo t || echo f)"
q "$MAIN" -c "$hint" >/dev/null && ok "the hint's command runs as written in pg_cron's database"
check "health in the second database says where pg_cron runs" "ok" "$(q ops_second -c "SELECT status FROM outreach.health WHERE \"check\" = 'pg_cron'")"
ticked=""
for _ in $(seq 1 150); do
	a=$(q "$MAIN" -c "SELECT count(*) FROM outreach.tick_run WHERE finished_at IS NOT NULL")
	b=$(q ops_second -c "SELECT count(*) FROM outreach.tick_run WHERE finished_at IS NOT NULL")
	if [ "$a" -gt 0 ] && [ "$b" -gt 0 ]; then ticked=1; break; fi
	sleep 1
done
if [ -n "$ticked" ]; then ok "pg_cron ticked both databases"; else notok "pg_cron ticked both databases (ticks: $MAIN $a, ops_second $b)"; fi
check "health: the tick is on time in pg_cron's database" "ok" "$(q "$MAIN" -c "SELECT status FROM outreach.health WHERE \"check\" = 'tick'")"
check "health: the tick is on time in the second database" "ok" "$(q ops_second -c "SELECT status FROM outreach.health WHERE \"check\" = 'tick'")"
check "health: pg_cron's job runs" "ok" "$(q "$MAIN" -c "SELECT status FROM outreach.health WHERE \"check\" = 'pg_cron'")"
q "$MAIN" -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'outreach-tick%'" >/dev/null

# ---- what a LISTEN-only process receives -----------------------------------------------------
"$BIN/createdb" ops_notify
q ops_notify >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION outreach;
SELECT outreach.tick('2026-03-02 12:00+00');
SQL
# A session that listens gets the notifications of its own commits too.
out=$("$BIN/psql" -X -qtA -v ON_ERROR_STOP=1 -d ops_notify 2>&1 <<'SQL'
LISTEN outreach_alert;
SET outreach.now = '2026-03-02 13:00+00';
SELECT 'raised ' || count(*) FROM outreach.check_alerts();
SELECT 'raised ' || count(*) FROM outreach.check_alerts();
SQL
)
check "an alert is notified once per incident" "1" "$(echo "$out" | grep -c 'notification "outreach_alert"')"
payload=$(echo "$out" | sed -n 's/.*with payload "\(.*\)" received.*/\1/p')
check "its payload is JSON naming the check and the database" "tick|ops_notify|critical" \
	"$(q ops_notify -c "SELECT concat_ws('|', p->>'check', p->>'database', p->>'status') FROM (SELECT \$j\$$payload\$j\$::json AS p) x")"
out=$("$BIN/psql" -X -qtA -v ON_ERROR_STOP=1 -d ops_notify 2>&1 <<'SQL'
LISTEN outreach_outbox;
SET outreach.now = '2026-03-02 22:00+00';
INSERT INTO outreach.contact (external_id, first_name, phone, time_zone) VALUES ('n1', 'Ann', '+14155550100', 'UTC');
SELECT outreach.create_template('txt', 'sms', 'Hi', message_class => 'transactional') > 0;
SELECT 'queued until ' || (outreach.enqueue_message(id, 'txt', 'transactional')).send_after FROM outreach.contact WHERE external_id = 'n1';
SELECT 'tick 1';
SELECT outreach.tick('2026-03-03 07:59+00');
SELECT 'tick 2';
SELECT outreach.tick('2026-03-03 08:00:30+00');
SELECT 'tick 3';
SELECT outreach.tick('2026-03-03 08:01:30+00');
SELECT 'end';
SQL
)
check "a message held by quiet hours is announced when queued" "1" "$(echo "$out" | sed -n '/queued until/,/tick 1/p' | grep -c 'notification "outreach_outbox"')"
check "not by a tick before it is due" "0" "$(echo "$out" | sed -n '/^tick 1/,/^tick 2/p' | grep -c 'notification "outreach_outbox"')"
check "again by the first tick after it is due" "1" "$(echo "$out" | sed -n '/^tick 2/,/^tick 3/p' | grep -c 'notification "outreach_outbox"')"
check "and not by later ticks" "0" "$(echo "$out" | sed -n '/^tick 3/,/^end/p' | grep -c 'notification "outreach_outbox"')"
finish
