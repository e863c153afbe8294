#!/usr/bin/env bash
# test/extra/events_ics.sh: the calendar file of a registration, parsed by a real iCalendar
# parser (Debian's python3-icalendar): METHOD:REQUEST with the right instants for an event in
# America/New_York on a DST day boundary, the UID stable per registration, long and escaped
# text folded and unescaped back, and METHOD:CANCEL with the same UID once cancelled.  Also the
# attachment row an email from a template about the event carries.  Last line: "N passed, N failed".
set -euo pipefail
PSQL=("${PRIVATE_BIN:+$PRIVATE_BIN/}psql" -X -q -v ON_ERROR_STOP=1)
PY=/usr/bin/python3           # Debian's python, where python3-icalendar is installed
passed=0; failed=0
check() { # name expected actual
	if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok - $1"; else failed=$((failed + 1)); echo "not ok - $1: expected '$2', got '$3'"; fi
}
q() { "${PSQL[@]}" -tA -c "$1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach CASCADE;
DROP TABLE IF EXISTS ics_code;
INSERT INTO outreach.contact (external_id, first_name, last_name, email, time_zone)
VALUES ('i1', 'Zoë', 'O''Brien, Jr.', 'zoe@example.org', 'America/New_York');
SET outreach.now = '2026-10-20 12:00Z';
-- Sunday 1 November 2026 is the end of DST in New York: 09:00 local is 14:00Z (EST, -05)
SELECT outreach.create_event('Flu shot day — Springfield', '2026-11-01 09:00 America/New_York', '2026-11-01 17:00 America/New_York',
  'America/New_York', kind => 'hybrid', venue => 'Springfield Clinic; Hall 2, 1 Main St',
  online_url => 'https://meet.example/flu', description => repeat('Bring your insurance card. ', 6), code_prefix => 'FLU');
SELECT outreach.add_session('Flu shot day — Springfield', 'Morning', '2026-11-01 09:00 America/New_York', '2026-11-01 12:00 America/New_York', 50);
SELECT outreach.publish_event('Flu shot day — Springfield');
CREATE TABLE ics_code AS SELECT outreach.register('Flu shot day — Springfield', 1, '{Morning}') AS code;
SELECT outreach.create_template('flu_confirm', 'email', 'Your code: {{registration.code}}', subject => 'Registered',
                                message_class => 'transactional');
SELECT outreach.set_template_event('flu_confirm', 'Flu shot day — Springfield');
SELECT outreach.enqueue_message(1, 'flu_confirm', 'transactional');
SQL
code=$(q "SELECT code FROM ics_code")
rid=$(q "SELECT id FROM outreach.event_registration WHERE registration_code = '$code'")
q "SELECT outreach.event_ics('$code')" > "$tmp/request.ics"
q "SELECT content FROM outreach.message_attachment" > "$tmp/attached.ics"
q "SET outreach.now = '2026-10-21 12:00Z'; SELECT outreach.cancel_registration('$code')" >/dev/null
q "SELECT outreach.event_ics('$code')" > "$tmp/cancel.ics"

parse() { # file -> one line per property
	"$PY" - "$1" <<'PY'
import sys, icalendar
raw = open(sys.argv[1], 'rb').read().rstrip(b'\n') + b'\r\n'   # psql -tA adds a newline
cal = icalendar.Calendar.from_ical(raw)
ev = [c for c in cal.walk('VEVENT')][0]
print('METHOD=' + str(cal['METHOD']))
print('VERSION=' + str(cal['VERSION']))
print('UID=' + str(ev['UID']))
print('DTSTART=' + ev.decoded('DTSTART').isoformat())
print('DTEND=' + ev.decoded('DTEND').isoformat())
print('SUMMARY=' + str(ev['SUMMARY']))
print('LOCATION=' + str(ev['LOCATION']))
print('STATUS=' + str(ev['STATUS']))
print('ATTENDEE=' + str(ev['ATTENDEE']) + ' CN=' + ev['ATTENDEE'].params['CN'])
print('DESCRIPTION_HAS_CODE=' + str('Registration code: ' in str(ev['DESCRIPTION'])))
print('DESCRIPTION_LONG=' + str(str(ev['DESCRIPTION']).count('Bring your insurance card.')))
print('LINES_OK=' + str(all(len(l) <= 75 for l in raw.split(b'\r\n'))))
PY
}
parse "$tmp/request.ics" > "$tmp/request.txt"
parse "$tmp/cancel.ics" > "$tmp/cancel.txt"
get() { grep "^$2=" "$1" | cut -d= -f2-; }

check "the .ics parses as METHOD:REQUEST" REQUEST "$(get "$tmp/request.txt" METHOD)"
check "version 2.0" 2.0 "$(get "$tmp/request.txt" VERSION)"
check "DTSTART is the local 09:00 instant (EST after the DST change)" "2026-11-01T14:00:00+00:00" "$(get "$tmp/request.txt" DTSTART)"
check "DTEND is the local 17:00 instant" "2026-11-01T22:00:00+00:00" "$(get "$tmp/request.txt" DTEND)"
check "the summary keeps non-ASCII text" "Flu shot day — Springfield" "$(get "$tmp/request.txt" SUMMARY)"
check "the location unescapes back" "Springfield Clinic; Hall 2, 1 Main St" "$(get "$tmp/request.txt" LOCATION)"
check "the registration is confirmed" CONFIRMED "$(get "$tmp/request.txt" STATUS)"
check "the attendee is the contact" "mailto:zoe@example.org CN=Zoë O'Brien, Jr." "$(get "$tmp/request.txt" ATTENDEE)"
check "the description carries the code" True "$(get "$tmp/request.txt" DESCRIPTION_HAS_CODE)"
check "long text is folded and unfolds whole" 6 "$(get "$tmp/request.txt" DESCRIPTION_LONG)"
check "no line longer than 75 octets" True "$(get "$tmp/request.txt" LINES_OK)"
check "the UID names the registration" "registration-$rid-$(echo "$code" | tr 'A-Z' 'a-z')@outreach" "$(get "$tmp/request.txt" UID)"
check "the email's attachment is the same calendar (but for DTSTAMP)" \
	"$(grep -v '^DTSTAMP' "$tmp/request.ics")" "$(grep -v '^DTSTAMP' "$tmp/attached.ics")"
check "the attachment's content type" "invite.ics|text/calendar; charset=utf-8; method=REQUEST" \
	"$(q "SELECT filename || '|' || content_type FROM outreach.message_attachment")"
check "after cancelling: METHOD:CANCEL" CANCEL "$(get "$tmp/cancel.txt" METHOD)"
check "after cancelling: STATUS:CANCELLED" CANCELLED "$(get "$tmp/cancel.txt" STATUS)"
check "after cancelling: the same UID" "$(get "$tmp/request.txt" UID)" "$(get "$tmp/cancel.txt" UID)"
check "after cancelling: the same instants" "$(get "$tmp/request.txt" DTSTART)" "$(get "$tmp/cancel.txt" DTSTART)"
"${PSQL[@]}" -c "SET client_min_messages = warning; DROP TABLE ics_code; DROP EXTENSION outreach CASCADE" >/dev/null
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
