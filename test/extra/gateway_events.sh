#!/usr/bin/env bash
# test/extra/gateway_events.sh: events through outreach-gateway, with the same real servers as
# test/extra/gateway.sh (aiosmtpd on a random loopback port, the installed gateway logging in
# as a member of outreach_sender).
# Calendar attachments: a registration confirmation ticked through a journey arrives as
# multipart/mixed (the multipart/alternative body plus invite.ics), the .ics parsed by
# python3-icalendar has METHOD:REQUEST and the right DTSTART instant (an event in
# America/New_York the day after the DST change), DKIM still verifies; a cancelled event's
# mail carries METHOD:CANCEL.
# Registration page (DESIGN §9): the signed link of an invitation; GET shows the event,
# POST registers once (twice: the same code), a full event waitlists, forged tokens are 4xx and
# change nothing, a cancelled event shows a clear page.
# Everything started here is stopped by PID, also on failure.  Last line: "N passed, N failed".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PSQL=("${PRIVATE_BIN:+$PRIVATE_BIN/}psql" -X -q -v ON_ERROR_STOP=1)
GATEWAY=${PRIVATE_BIN:+$PRIVATE_BIN/}outreach-gateway
[ -x "$GATEWAY" ] || GATEWAY=$ROOT/src/gateway/outreach-gateway
PY=/usr/bin/python3
SERVERS=$ROOT/test/gateway/servers.py
passed=0; failed=0
check() { # name expected actual
	if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok - $1"; else failed=$((failed + 1)); echo "not ok - $1: expected '$2', got '$3'" | tee -a "$W/failures"; fi
}
q() { "${PSQL[@]}" -tA -c "$1"; }

W=$(mktemp -d /tmp/outreach-gateway-events.XXXXXX)
chmod 755 "$W"
SMTP_PID=""; GW_PID=""
stop_pid() { # pid: TERM, wait up to 5 s, then KILL
	local p=$1 i
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null || return 0
	for i in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$p" 2>/dev/null || true
}
cleanup() {
	stop_pid "$GW_PID"; stop_pid "$SMTP_PID"
	if [ "${KEEP_GATEWAY_TEST:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

SMTP_PORT=$($PY "$SERVERS" freeport)
HTTP_PORT=$($PY "$SERVERS" freeport)
BASE="http://127.0.0.1:$HTTP_PORT"
mkdir -p "$W/mail"
wait_for() { # seconds sql: until the query returns t
	local i
	for i in $(seq $(($1 * 10))); do [ "$(q "$2")" = t ] && return 0; sleep 0.1; done
	return 1
}

# ---- database: an event in New York the day after the DST change, templates, a journey ------
"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach CASCADE;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'outreach_gateway_test') THEN
    CREATE ROLE outreach_gateway_test LOGIN IN ROLE outreach_sender;
  END IF;
END $$;
DELETE FROM outreach.quiet_hours;
DELETE FROM outreach.frequency_cap;
INSERT INTO outreach.contact (external_id, first_name, last_name, email, time_zone)
VALUES ('e1', 'Ann', 'Able', 'ann@example.org', 'America/New_York'),
       ('e2', 'Ben', 'Baker', 'ben@example.org', 'America/New_York'),
       ('e3', 'Cat', 'Cole', 'cat@example.org', 'America/New_York'),
       ('e4', 'Dan', 'Dead', 'dan@example.org', 'America/New_York');
-- Monday 15 March 2027, the day after DST starts in New York: 09:00 local is 13:00Z (EDT, -04)
SELECT outreach.create_event('Flu shot day', '2027-03-15 09:00 America/New_York', '2027-03-15 16:00 America/New_York',
  'America/New_York', venue => 'Springfield Clinic, 1 Main St', capacity => 30, code_prefix => 'FLU');
SELECT outreach.publish_event('Flu shot day');
SELECT outreach.create_template('flu_confirm', 'email',
  '<html><body><p>Dear {{contact.first_name}}, you are registered for {{event.name}} on {{event.starts_at}}.</p>'
  '<p>Your code: <b>{{registration.code}}</b></p></body></html>',
  subject => 'Registered: {{event.name}}', format => 'html', message_class => 'transactional');
SELECT outreach.set_template_event('flu_confirm', 'Flu shot day');
SELECT outreach.create_template('flu_cancelled', 'email', 'Sorry {{contact.first_name}}, {{event.name}} is cancelled.',
  subject => 'Cancelled: {{event.name}}', format => 'text', message_class => 'transactional');
SELECT outreach.set_template_event('flu_cancelled', 'Flu shot day');
SELECT outreach.create_segment('Flu registrants', $$contact where has event_registration
  where (status in ('registered', 'attended', 'no_show') and has event where name = 'Flu shot day')$$);
SELECT outreach.go_live('Flu registrants');
SELECT outreach.create_journey('Flu confirm', 'Flu registrants', message_class => 'transactional');
SELECT outreach.add_step('Flu confirm', 'confirm', 'email', template => 'flu_confirm', next => 'done');
SELECT outreach.add_step('Flu confirm', 'done', 'end');
SELECT outreach.launch_journey('Flu confirm');
SQL
SECRET=$(openssl rand -hex 32)
openssl genrsa -out "$W/dkim.pem" 2048 2>/dev/null
openssl rsa -in "$W/dkim.pem" -pubout -outform DER 2>/dev/null | base64 -w0 > "$W/dkim.pub"
cat > "$W/gateway.conf" <<EOF
# written by test/extra/gateway_events.sh
conninfo = "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=outreach_gateway_test"
worker = gateway-events-test
batch_size = 50
concurrency = 1
lease_seconds = 30
retry_base_seconds = 1
retry_max_seconds = 2
poll_seconds = 30
log_level = info
smtp_url = smtp://127.0.0.1:$SMTP_PORT
smtp_starttls = off
from_address = outreach@hospital.example
from_name = St Elsewhere Hospital
public_base_url = $BASE/
link_secret = $SECRET
dkim_selector = test
dkim_key_file = $W/dkim.pem
http_listen = 127.0.0.1:$HTTP_PORT
organization = St Elsewhere Hospital
EOF
$PY "$SERVERS" smtp "$SMTP_PORT" "$W/mail" >>"$W/smtp.log" 2>&1 &
SMTP_PID=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$SMTP_PORT) 2>/dev/null && break; sleep 0.1; done
"$GATEWAY" -c "$W/gateway.conf" >>"$W/gateway.log" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "$BASE/healthz" && break; sleep 0.1; done

cat > "$W/parse.py" <<'PY'
# one JSON object per received message: MIME structure, the calendar part parsed, DKIM
import email, email.policy, glob, json, sys, dkim, icalendar
pub = open(sys.argv[2]).read().strip()
def dns(name, timeout=5):
    return ("v=DKIM1; k=rsa; p=" + pub).encode() if name == b"test._domainkey.hospital.example." else None
out = []
for path in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    raw = open(path, "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    r = {"id": msg["X-Outreach-Message"], "to": str(msg["To"]), "subject": str(msg["Subject"]),
         "type": msg.get_content_type(),
         "parts": [p.get_content_type() for p in msg.iter_parts()] if msg.is_multipart() else [],
         "dkim": bool(dkim.verify(raw, dnsfunc=dns)), "ics": None, "html": ""}
    for part in msg.walk():
        if part.get_content_type() == "text/html": r["html"] = part.get_content()
        if part.get_content_type() == "text/calendar":
            cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            ev = list(cal.walk("VEVENT"))[0]
            r["ics"] = {"filename": part.get_filename(), "disposition": part.get_content_disposition(),
                        "method_param": part.get_param("method"), "cte": part["Content-Transfer-Encoding"],
                        "METHOD": str(cal["METHOD"]), "STATUS": str(ev["STATUS"]), "UID": str(ev["UID"]),
                        "DTSTART": ev.decoded("DTSTART").isoformat(), "SUMMARY": str(ev["SUMMARY"])}
    out.append(r)
json.dump(out, open(sys.argv[3], "w"))
PY
mails() { $PY "$W/parse.py" "$W/mail" "$W/dkim.pub" "$W/mail.json"; }
j() { $PY -c "import json,sys; d=json.load(open('$W/mail.json')); $1"; }

# ---- calendar attachments ---------------------------------------------------------------------
CODE=$(q "SELECT outreach.register('Flu shot day', id) FROM outreach.contact WHERE external_id = 'e1'")
q "SELECT outreach.tick()" >/dev/null
wait_for 20 "SELECT count(*) = 1 FROM outreach.message WHERE template_name = 'flu_confirm' AND status = 'sent'" || true
check "the confirmation was sent" "sent" "$(q "SELECT string_agg(status, ',') FROM outreach.message WHERE template_name = 'flu_confirm'")"
mails
CID=$(q "SELECT id FROM outreach.message WHERE template_name = 'flu_confirm'")
sel="m=[x for x in d if x['id']=='$CID'][0]"
check "multipart/mixed: the alternative body, then the calendar" "multipart/mixed multipart/alternative,text/calendar" \
  "$(j "$sel; print(m['type'], ','.join(m['parts']))")"
check "the body still has the code" "True" "$(j "$sel; print('$CODE' in m['html'])")"
check "the calendar part: invite.ics, an attachment, base64, method=REQUEST" "invite.ics attachment base64 REQUEST" \
  "$(j "$sel; i=m['ics']; print(i['filename'], i['disposition'], i['cte'], i['method_param'])")"
check "python3-icalendar: METHOD:REQUEST, CONFIRMED" "REQUEST CONFIRMED" "$(j "$sel; i=m['ics']; print(i['METHOD'], i['STATUS'])")"
check "DTSTART is the instant of 09:00 in New York (EDT)" "2027-03-15T13:00:00+00:00" "$(j "$sel; print(m['ics']['DTSTART'])")"
check "the UID names the registration" "registration-$(q "SELECT id FROM outreach.event_registration WHERE registration_code = '$CODE'")-$(echo "$CODE" | tr 'A-Z' 'a-z')@outreach" \
  "$(j "$sel; print(m['ics']['UID'])")"
check "DKIM verifies over the message with its attachment" "True" "$(j "$sel; print(m['dkim'])")"

before=$(ls "$W/mail" | grep -c '\.eml$' || true)
q "SELECT outreach.cancel_event('Flu shot day', notify_template => 'flu_cancelled')" >/dev/null
wait_for 20 "SELECT count(*) = 1 FROM outreach.message WHERE template_name = 'flu_cancelled' AND status = 'sent'" || true
mails
XID=$(q "SELECT id FROM outreach.message WHERE template_name = 'flu_cancelled'")
sel="m=[x for x in d if x['id']=='$XID'][0]"
check "the cancellation (plain text) is multipart/mixed with the calendar" "multipart/mixed text/plain,text/calendar" \
  "$(j "$sel; print(m['type'], ','.join(m['parts']))")"
check "a cancelled event's mail carries METHOD:CANCEL (same UID, same DTSTART)" "CANCEL CANCEL CANCELLED True 2027-03-15T13:00:00+00:00" \
  "$(j "$sel; i=m['ics']; c=[x for x in d if x['id']=='$CID'][0]['ics']; print(i['method_param'], i['METHOD'], i['STATUS'], i['UID'] == c['UID'], i['DTSTART'])")"
check "DKIM verifies on the cancellation" "True" "$(j "$sel; print(m['dkim'])")"

# ---- the registration page, from the signed link of an invitation --------------------------------
"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT outreach.create_event('Info evening', '2027-04-20 18:30 Europe/Berlin', '2027-04-20 20:00 Europe/Berlin',
  'Europe/Berlin', kind => 'hybrid', venue => 'Hall <2>', online_url => 'https://meet.example/info', capacity => 1);
SELECT outreach.add_session('Info evening', 'Talk & questions', '2027-04-20 18:30 Europe/Berlin', '2027-04-20 19:30 Europe/Berlin', 5);
SELECT outreach.publish_event('Info evening');
SELECT outreach.create_template('info_invite', 'email',
  '<html><body><p>Dear {{contact.first_name}}, join us for {{event.name}} on {{event.starts_at}}.</p>'
  '<p><a href="{{event.registration_url}}">Register here</a> <a href="https://clinic.example/info">About us</a></p></body></html>',
  subject => 'Invitation: {{event.name}}', message_class => 'transactional');
SELECT outreach.set_template_event('info_invite', 'Info evening', attach_ics => false);
SELECT count(outreach.enqueue_message(id, 'info_invite', 'transactional')) FROM outreach.contact WHERE external_id IN ('e2', 'e3', 'e4');
SQL
wait_for 20 "SELECT count(*) = 3 FROM outreach.message WHERE template_name = 'info_invite' AND status = 'sent'" || true
check "three invitations sent" 3 "$(q "SELECT count(*) FROM outreach.message WHERE template_name = 'info_invite' AND status = 'sent'")"
check "the placeholder is in the stored body, not in any mail" "3 0" \
  "$(q "SELECT count(*) FROM outreach.message WHERE template_name = 'info_invite' AND body LIKE '%https://outreach.invalid/event-registration?event=%'") $(grep -l 'outreach.invalid' "$W"/mail/*.eml | wc -l)"
mails
link() { # external_id: the registration link in that contact's invitation
	j "import re; m=[x for x in d if x['subject'] == 'Invitation: Info evening' and '$1@' in x['to']][0]; print(re.search(r'$BASE/e/[A-Za-z0-9._-]+', m['html']).group(0))"
}
check "a message without attachments stays multipart/alternative" "multipart/alternative" \
  "$(j "print(' '.join(sorted(set(x['type'] for x in d if x['subject'] == 'Invitation: Info evening'))))")"
L2=$(link ben); L3=$(link cat); L4=$(link dan)
check "the registration link is signed for the event and the contact, not click-tracked" \
  "$(q "SELECT id FROM outreach.event WHERE name = 'Info evening'")x$(q "SELECT id FROM outreach.contact WHERE external_id = 'e2'") True" \
  "$(echo "${L2##*/e/}" | cut -d. -f1) $(j "print(any('href=\"$L2\"' in x['html'] for x in d))")"
code=$(curl -s -o "$W/e2.html" -w '%{http_code}' "$L2")
check "GET shows the event in its time zone, the venue (escaped), the online URL, the session with free seats, a form" "200 1 1 1 1 1" \
  "$code $(grep -c 'Tuesday 20 April 2027, 18:30 (Europe/Berlin)' "$W/e2.html") $(grep -c 'Hall &lt;2&gt;' "$W/e2.html") $(grep -c 'href="https://meet.example/info"' "$W/e2.html") $(grep -c 'Talk &amp; questions, Tuesday 20 April 2027, 18:30 (Europe/Berlin) (5 free)' "$W/e2.html") $(grep -c '<form method="post">' "$W/e2.html")"
check "GET changed nothing" 0 "$(q "SELECT count(*) FROM outreach.event_registration r JOIN outreach.event e ON e.id = r.event_id WHERE e.name = 'Info evening'")"
code=$(curl -s -o "$W/e2p.html" -w '%{http_code}' --data-urlencode 'session=Talk & questions' "$L2")
C2=$(grep -o '<strong class="code">[^<]*' "$W/e2p.html" | sed 's/.*>//')
check "POST registers (source gateway, with the session) and shows the code" "200 registered|gateway|{\"Talk & questions\"}" \
  "$code $(q "SELECT s.status || '|' || r.source || '|' || s.sessions::text FROM outreach.event_registration r, outreach.registration_status(r.registration_code) s WHERE r.registration_code = '$C2'")"
code=$(curl -s -o "$W/e2q.html" -w '%{http_code}' -X POST "$L2")
check "POST twice: the same code, one registration" "200 $C2 1" \
  "$code $(grep -o '<strong class="code">[^<]*' "$W/e2q.html" | sed 's/.*>//') $(q "SELECT count(*) FROM outreach.event_registration r JOIN outreach.contact c ON c.id = r.contact_id WHERE c.external_id = 'e2'")"
curl -s -o "$W/e3.html" "$L3"
check "a full event says so before registering" 1 "$(grep -c 'The event is full' "$W/e3.html")"
code=$(curl -s -o "$W/e3p.html" -w '%{http_code}' -X POST "$L3")
C3=$(grep -o '<strong class="code">[^<]*' "$W/e3p.html" | sed 's/.*>//')
check "a full event: POST puts the contact on the waitlist and shows the position" "200 1 waitlisted|1" \
  "$code $(grep -c 'number <strong class="position">1</strong> on the waitlist' "$W/e3p.html") $(q "SELECT status || '|' || waitlist_position FROM outreach.registration_status('$C3')")"
E_ID=$(q "SELECT id FROM outreach.event WHERE name = 'Info evening'")
D_ID=$(q "SELECT id FROM outreach.contact WHERE external_id = 'e4'")
SIG2=${L2##*.}; TOK4=${L4##*/e/}
check "forged: another contact's id with a valid signature: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/e/${E_ID}x$D_ID.$SIG2")"
last=${TOK4: -1}; [ "$last" = A ] && swap=B || swap=A
check "forged: a changed signature: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/e/${TOK4%?}$swap")"
check "forged: another event for the same contact: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/e/$((E_ID - 1))x$D_ID.${TOK4##*.}")"
check "forged: a token of another purpose (the open pixel's): 400" 400 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/e/$(j "import re; m=[x for x in d if 'dan@' in x['to']][0]; print(re.search(r'/o/([A-Za-z0-9._-]+)\.gif', m['html']).group(1))")")"
check "forged tokens registered nobody" 0 "$(q "SELECT count(*) FROM outreach.event_registration WHERE contact_id = $D_ID")"
q "SELECT outreach.cancel_event('Info evening')" >/dev/null
code=$(curl -s -o "$W/e4.html" -w '%{http_code}' "$L4")
check "a cancelled event: a clear page (410), no form" "410 1 0" \
  "$code $(grep -c 'This event was cancelled' "$W/e4.html") $(grep -c '<form' "$W/e4.html")"
check "POST on a cancelled event: 410, nothing changed" "410 0" \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$L4") $(q "SELECT count(*) FROM outreach.event_registration WHERE contact_id = $D_ID")"
sign() { # id: a link signed like the gateway does (sign.c), to reach events no mail linked to
	$PY -c "import hmac, hashlib, base64, sys; print('$BASE/e/' + sys.argv[1] + '.' + base64.urlsafe_b64encode(hmac.new(b'$SECRET', b'event:' + sys.argv[1].encode(), hashlib.sha256).digest()).decode()[:22])" "$1"
}
check "the test signs links like the gateway" "$L4" "$(sign "${E_ID}x$D_ID")"
"${PSQL[@]}" >/dev/null <<'SQL'
SELECT outreach.create_event('Closed talk', now() + interval '2 days', now() + interval '3 days', 'UTC', venue => 'Room 1',
                             registration_closes_at => now() + interval '1 day');
SELECT outreach.publish_event('Closed talk');
UPDATE outreach.event SET registration_closes_at = now() - interval '1 minute' WHERE name = 'Closed talk';
SQL
LC=$(sign "$(q "SELECT id FROM outreach.event WHERE name = 'Closed talk'")x$D_ID")
code=$(curl -s -o "$W/closed.html" -w '%{http_code}' "$LC")
check "a closed registration: a clear page, no form" "200 1 0" "$code $(grep -c 'Registration is closed' "$W/closed.html") $(grep -c '<form' "$W/closed.html")"
check "POST after registration closed: nothing changed" "200 0" \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$LC") $(q "SELECT count(*) FROM outreach.event_registration WHERE contact_id = $D_ID")"
check "an unknown event with a valid signature: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$(sign "999999x$D_ID")")"

stop_pid "$GW_PID"; GW_PID=""
if [ "$failed" -gt 0 ]; then echo "---- gateway log (tail)"; tail -40 "$W/gateway.log"; echo "---- failures"; cat "$W/failures"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
