#!/usr/bin/env bash
# test/extra/dump_restore.sh: a populated outreach database survives pg_dump / pg_restore.
#
# Population (small, bounded): contacts with clinical rows, a user table registered as an
# entity, live segments immediate and deferred (with a pending change), a static segment, a
# compound one, a segment on the user table, a journey mid-flight (emails sent and opened,
# contacts waiting in a 3-day branch, messages queued for later), a subscription list,
# changed quiet hours, a segment_change reader with a position, history.
# Round trips, each restored with pg_restore from a custom-format dump:
#   1. a database other than cron.database_name -> another database of the same cluster
#   2. the same dump -> a new cluster (initdb here, no pg_cron at all)
#   3. a 0.2.0 install upgraded to 0.3.0 (in pg_cron's database) -> another database
# Each proves: every outreach table has the same rows (content hashes; segment_change's
# transaction ids excepted, see docs/operations.md); live segments are still maintained at
# commit (built-in and user table); the deferred change is applied by the tick; the journey
# continues and sends each step once; identity sequences continue; the reader resumes.
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

TMP=$(mktemp -d /tmp/outreach-dump.XXXXXX); chmod 755 "$TMP"
NEWPID=""
cleanup() {
	if [ -n "$NEWPID" ] && [ -f "$TMP/data/postmaster.pid" ]; then
		(cd / && runuser -u postgres -- "$BIN/pg_ctl" -D "$TMP/data" -m fast -w stop >/dev/null 2>&1) || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

for d in ops_src ops_copy ops_up_copy; do "$BIN/dropdb" --if-exists "$d" 2>/dev/null; done

# populate DB VERSION_SQL: the population, written with the 0.2.0 API so it runs on both.
populate() {
	q "$1" >/dev/null 2>"$TMP/populate.err" <<'SQL' || { notok "populating $1: $(cat "$TMP/populate.err")"; finish; }
SET client_min_messages = warning;
SET outreach.now = '2026-03-02 14:00+00';
CREATE SCHEMA IF NOT EXISTS ehr;
CREATE TABLE ehr.diagnosis (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                            patient_ref bigint REFERENCES outreach.contact, icd10 text, noted_on date);
SELECT outreach.register_entity('ehr.diagnosis', 'patient_ref', 'noted_on');
INSERT INTO outreach.contact (external_id, first_name, email, phone, time_zone)
SELECT 'c' || i, 'Pat' || i, 'p' || i || '@example.org', '+1555010' || lpad(i::text, 4, '0'), 'America/New_York'
FROM generate_series(1, 40) i;
INSERT INTO outreach.condition (patient_id, code, description)
SELECT id, 'x', 'X' FROM outreach.contact WHERE id % 2 = 0;
INSERT INTO ehr.diagnosis (patient_ref, icd10, noted_on) SELECT id, 'H52', '2025-01-01' FROM outreach.contact WHERE id % 5 = 0;
SELECT outreach.create_segment('has x', $$contact where has condition where code = 'x'$$);
SELECT outreach.go_live('has x');
SELECT outreach.create_segment('has y', $$contact where has condition where code = 'y'$$);
SELECT outreach.go_live('has y');
SELECT outreach.set_segment_mode('has y', 'deferred');
INSERT INTO outreach.condition (patient_id, code, description) VALUES (3, 'y', 'Y');   -- pending
SELECT outreach.create_segment('h52', $$contact where has diagnosis where icd10 = 'H52'$$);
SELECT outreach.go_live('h52');
SELECT outreach.create_static_segment('vip');
SELECT outreach.add_members('vip', ARRAY[1, 7, 9]::bigint[]);
SELECT outreach.go_live('vip');
SELECT outreach.create_segment('x or vip', $$segment 'has x' union segment 'vip'$$);
SELECT outreach.go_live('x or vip');
SELECT outreach.create_subscription_list('newsletter');
SELECT outreach.subscribe('newsletter', id) FROM outreach.contact WHERE id <= 10;
DELETE FROM outreach.quiet_hours WHERE channel = 'sms';
UPDATE outreach.quiet_hours SET starts = '20:00' WHERE channel = 'email';
SELECT outreach.create_template('invite', 'email', '<p>Hello {{contact.first_name}}</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a> {{sender.postal_address}}</p>',
  subject => 'Eye exam', sender_postal_address => '1 Clinic Way');
SELECT outreach.create_template('reminder', 'sms', 'Reminder, {{contact.first_name}}');
SELECT outreach.create_journey('eyes', 'has x', time_zone => 'America/New_York');
SELECT outreach.add_step('eyes', 'invite', 'email', template => 'invite', next => 'opened?');
SELECT outreach.add_step('eyes', 'opened?', 'branch_interaction', after_step => 'invite',
                         interaction => 'opened', timeout => '3 days', yes => 'done', no => 'reminder');
SELECT outreach.add_step('eyes', 'reminder', 'sms', template => 'reminder', next => 'done');
SELECT outreach.add_step('eyes', 'done', 'end');
SELECT outreach.launch_journey('eyes');
SELECT outreach.tick('2026-03-02 14:00+00');
-- a worker sends 10 of the emails, 3 are opened; the rest stay queued
SELECT count(*) FROM outreach.claim_messages('w', 10) m, LATERAL outreach.report_delivery(m.id, 'sent') d;
SELECT outreach.report_interaction(m.id, 'opened', at => '2026-03-02 16:00+00')
FROM (SELECT id FROM outreach.message WHERE status = 'sent' ORDER BY id LIMIT 3) m;
SELECT outreach.tick('2026-03-02 16:05+00');
-- a reader consumed part of the history
SELECT count(*) FROM outreach.consume_segment_changes('reader', 5);
SQL
}

# snapshot DB: one line per outreach table (and the user table): name, rows, content hash.
# segment_change.xid and the readers' last_xid are transaction ids of the source cluster; the
# restore resets them (docs/operations.md), so they are left out of the hash, as are the
# install times of the rows the extension ships itself.
snapshot() {
	q "$1" <<'SQL'
CREATE TEMP TABLE snap (t text, n bigint, h text);
DO $$
DECLARE r record; cols text; n bigint; h text;
BEGIN
  FOR r IN SELECT c.oid::regclass AS rel, c.relname FROM pg_class c
           WHERE c.relnamespace IN ('outreach'::regnamespace, 'ehr'::regnamespace) AND c.relkind = 'r'
             AND c.relpersistence = 'p' ORDER BY 2 LOOP
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols FROM pg_attribute a
    WHERE a.attrelid = r.rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attname NOT IN ('xid', 'last_xid')
      -- rows the extension ships carry the time of the install that made them
      AND NOT (r.relname IN ('entity', 'value_set') AND a.attname IN ('registered_at', 'created_at', 'updated_at'));
    EXECUTE format('SELECT count(*), md5(coalesce(string_agg(x::text, '','' ORDER BY x::text), '''')) FROM (SELECT %s FROM %s) x', cols, r.rel)
      INTO n, h;
    INSERT INTO snap VALUES (r.relname, n, h);
  END LOOP;
END $$;
SELECT t || ' ' || n || ' ' || h FROM snap ORDER BY t;
SQL
}

# verify DB LABEL SNAPSHOT_FILE: the restored database equals the snapshot and keeps working.
verify() {
	local db=$1 label=$2 snap=$3 diffs
	diffs=$(diff <(snapshot "$db") "$snap")
	if [ -z "$diffs" ]; then ok "$label: every table has the same rows ($(wc -l <"$snap") tables)"; else notok "$label: rows differ: $diffs"; fi
	check "$label: the extension is in schema outreach" "outreach" "$(q "$db" -c "SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'outreach'")"
	local max_contact max_change
	max_contact=$(q "$db" -c "SELECT max(id) FROM outreach.contact")
	max_change=$(q "$db" -c "SELECT max(id) FROM outreach.segment_change")
	# live, immediate: a clinical insert changes membership at commit (and the compound segment)
	q "$db" -c "INSERT INTO outreach.condition (patient_id, code, description) VALUES (1, 'x', 'X')" >/dev/null
	check "$label: a clinical insert after the restore updates the live segment at commit" "t|t" \
		"$(q "$db" -c "SELECT bool_or(segment = 'has x'), bool_or(segment = 'x or vip') FROM outreach.segment_members WHERE contact_id = 1")"
	# the user table's triggers came back with it
	q "$db" -c "INSERT INTO ehr.diagnosis (patient_ref, icd10, noted_on) VALUES (1, 'H52', '2026-01-01')" >/dev/null
	check "$label: a registered user table still maintains its segment" "1" \
		"$(q "$db" -c "SELECT count(*) FROM outreach.segment_members WHERE segment = 'h52' AND contact_id = 1")"
	check "$label: the user table's identity continues" "t" "$(q "$db" -c "SELECT max(id) > 8 FROM ehr.diagnosis")"
	# identity sequences continue
	check "$label: contact ids continue after the restored ones" "t" \
		"$(q "$db" -c "INSERT INTO outreach.contact (external_id) VALUES ('new') RETURNING id > $max_contact")"
	check "$label: segment_change ids continue" "t" "$(q "$db" -c "SELECT min(id) > $max_change FROM outreach.segment_change WHERE contact_id = 1 AND segment_id = (SELECT id FROM outreach.segment WHERE name = 'has x')")"
	# the reader resumes after its position: the 5 it read are not delivered again, new ones are
	check "$label: the segment_change reader resumes where it was" "t|t" \
		"$(q "$db" -c "SELECT min(id) > 5, bool_or(contact_id = 1) FROM outreach.consume_segment_changes('reader', 100000)")"
	# deferred: the pending change is applied by the tick
	q "$db" -c "SELECT outreach.tick('2026-03-02 16:10+00')" >/dev/null
	check "$label: the deferred segment's pending change is applied by the tick" "3" \
		"$(q "$db" -c "SELECT string_agg(contact_id::text, ',') FROM outreach.segment_members WHERE segment = 'has y'")"
	# the journey continues: 3 days later the non-openers get their SMS, nobody gets an email twice
	local emails_before
	emails_before=$(q "$db" -c "SELECT count(*) FROM outreach.message WHERE channel = 'email'")
	q "$db" -c "SELECT outreach.tick('2026-03-05 16:10+00')" >/dev/null
	check "$label: the journey continues: every waiting non-opener gets the reminder" "0" \
		"$(q "$db" -c "SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id WHERE j.name = 'eyes' AND e.status = 'active' AND e.current_step = 'opened?'")"
	check "$label: SMS reminders were queued" "t" "$(q "$db" -c "SELECT count(*) > 0 FROM outreach.message WHERE channel = 'sms'")"
	check "$label: no email queued again by the restore or the tick" "$emails_before" \
		"$(q "$db" -c "SELECT count(*) FROM outreach.message WHERE channel = 'email'")"
	check "$label: no step messaged twice" "0" \
		"$(q "$db" -c "SELECT count(*) FROM (SELECT enrollment_id, step_id FROM outreach.message WHERE enrollment_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d")"
	check "$label: openers were not reminded" "0" \
		"$(q "$db" -c "SELECT count(*) FROM outreach.message s JOIN outreach.interaction i ON i.contact_id = s.contact_id AND i.kind = 'opened' WHERE s.channel = 'sms'")"
}

# ---- 1. a database that is not pg_cron's, dumped and restored into another database -----------
"$BIN/createdb" ops_src
if q ops_src -c "SET client_min_messages = warning; CREATE EXTENSION outreach" >/dev/null 2>"$TMP/err"; then
	ok "CREATE EXTENSION works in a database other than cron.database_name"
else
	notok "CREATE EXTENSION in a second database: $(cat "$TMP/err")"; finish
fi
populate ops_src
snapshot ops_src >"$TMP/src.snap"
check "the snapshot sees the population" "t" "$(awk '$1=="segment_member" {print ($2>20)?"t":"f"}' "$TMP/src.snap")"
"$BIN/pg_dump" -Fc -f "$TMP/src.dump" ops_src 2>"$TMP/dump.err" || notok "pg_dump: $(cat "$TMP/dump.err")"
data_entries=$("$BIN/pg_restore" -l "$TMP/src.dump" | grep -c 'TABLE DATA outreach ')
check "the dump holds the data of every outreach table that has user data" "t" "$([ "$data_entries" -ge 33 ] && echo t || echo "f ($data_entries)")"
"$BIN/createdb" ops_copy
if "$BIN/pg_restore" -d ops_copy "$TMP/src.dump" 2>"$TMP/restore.err"; then
	ok "pg_restore into another database of the cluster reports no error"
else
	notok "pg_restore into ops_copy: $(head -20 "$TMP/restore.err")"
fi
verify ops_copy "same cluster" "$TMP/src.snap"

# ---- 2. the same dump into a new cluster, without pg_cron -------------------------------------
mkdir -p "$TMP/data" "$TMP/sock" "$TMP/log"; chown postgres "$TMP/data" "$TMP/sock" "$TMP/log"
(cd / && runuser -u postgres -- "$BIN/initdb" -D "$TMP/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8) >"$TMP/initdb.log" 2>&1
cat >>"$TMP/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$TMP/sock'
port = $PGPORT
fsync = off
timezone = 'UTC'
EOF
if (cd / && runuser -u postgres -- "$BIN/pg_ctl" -D "$TMP/data" -l "$TMP/log/new.log" -w -t 60 start) >/dev/null; then
	NEWPID=1
	PGHOST_NEW="$TMP/sock"
	PGHOST="$PGHOST_NEW" "$BIN/createdb" -p "$PGPORT" restored
	if PGHOST="$PGHOST_NEW" "$BIN/pg_restore" -d restored "$TMP/src.dump" 2>"$TMP/restore2.err"; then
		ok "pg_restore into a new cluster (no pg_cron) reports no error"
	else
		notok "pg_restore into a new cluster: $(head -20 "$TMP/restore2.err")"
	fi
	PGHOST="$PGHOST_NEW" verify restored "new cluster" "$TMP/src.snap"
	(cd / && runuser -u postgres -- "$BIN/pg_ctl" -D "$TMP/data" -m fast -w stop) >/dev/null; NEWPID=""
else
	notok "a new cluster did not start: $(tail -5 "$TMP/log/new.log")"
fi

# ---- 3. a 0.2.0 install (pg_cron's database), upgraded, dumped, restored -----------------------
MAIN=${PGDATABASE:-outreach_test}
q "$MAIN" -c "SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; DROP SCHEMA IF EXISTS ehr CASCADE; DROP SCHEMA IF EXISTS outreach CASCADE; CREATE EXTENSION outreach VERSION '0.2.0' CASCADE" >/dev/null
populate "$MAIN"
q "$MAIN" -c "SET client_min_messages = warning; ALTER EXTENSION outreach UPDATE" >/dev/null
check "the upgrade reached the current version" "t" "$(q "$MAIN" -c "SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'outreach') FROM pg_extension WHERE extname = 'outreach'")"
snapshot "$MAIN" >"$TMP/up.snap"
"$BIN/pg_dump" -Fc -f "$TMP/up.dump" "$MAIN" 2>"$TMP/dump.err" || notok "pg_dump: $(cat "$TMP/dump.err")"
# pg_cron lives in its own database only: leave its objects out of a copy elsewhere
"$BIN/pg_restore" -l "$TMP/up.dump" | grep -vE ' pg_cron | cron ' >"$TMP/up.list"
"$BIN/createdb" ops_up_copy
if "$BIN/pg_restore" -L "$TMP/up.list" -d ops_up_copy "$TMP/up.dump" 2>"$TMP/restore3.err"; then
	ok "pg_restore of an upgraded install reports no error"
else
	notok "pg_restore of an upgraded install: $(head -20 "$TMP/restore3.err")"
fi
verify ops_up_copy "after an upgrade" "$TMP/up.snap"

q "$MAIN" -c "SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; DROP SCHEMA IF EXISTS ehr CASCADE" >/dev/null
for d in ops_src ops_copy ops_up_copy; do "$BIN/dropdb" --if-exists "$d"; done
finish
