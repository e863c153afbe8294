#!/usr/bin/env bash
# Demo section: outreach-gateway delivers a journey's emails to a local mailbox.  A local
# SMTP server (aiosmtpd, test/gateway/servers.py) writes every message it receives to
# $DEMO_DIR/mailbox/*.eml; the gateway runs once (--once) and exits; the server is stopped.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -P pager=off)
echo
echo "== 7. Delivery: outreach-gateway sends a journey's emails to a local mailbox =="
MAILBOX=$DEMO_DIR/mailbox
rm -rf "$MAILBOX"; mkdir -p "$MAILBOX"
PORT=$(/usr/bin/python3 "$ROOT/test/gateway/servers.py" freeport)
/usr/bin/python3 "$ROOT/test/gateway/servers.py" smtp "$PORT" "$MAILBOX" >"$DEMO_DIR/smtp.log" 2>&1 &
SMTP_PID=$!
trap 'kill $SMTP_PID 2>/dev/null || true; wait $SMTP_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

"${PSQL[@]}" <<'SQL'
SELECT outreach.create_template('gateway_demo_invite', 'email',
  '<p>Dear {{contact.first_name}},</p><p>Our flu-shot days are here. '
  '<a href="https://clinic.example/flu">Book your flu shot</a>.</p>'
  '<p><a href="{{unsubscribe_url}}">Unsubscribe</a> - {{sender.postal_address}}</p>',
  subject => 'Your flu shot, {{contact.first_name}}',
  sender_postal_address => 'Springfield Clinic, 1 Clinic Way, Springfield') \g /dev/null
SELECT outreach.create_static_segment('Gateway demo patients') \g /dev/null
SELECT outreach.add_members('Gateway demo patients', ARRAY(
  SELECT id FROM outreach.contact WHERE email IS NOT NULL AND status = 'active' AND deceased_at IS NULL AND NOT do_not_email
  ORDER BY id LIMIT 5)) \g /dev/null
SELECT outreach.go_live('Gateway demo patients') \g /dev/null
SELECT outreach.create_journey('Gateway demo invitation', 'Gateway demo patients') \g /dev/null
SELECT outreach.add_step('Gateway demo invitation', 'invite', 'email', template => 'gateway_demo_invite', next => 'done') \g /dev/null
SELECT outreach.add_step('Gateway demo invitation', 'done', 'end') \g /dev/null
-- quiet hours off for this section, so the mail goes now whatever the time of day
CREATE TEMP TABLE saved_quiet_hours AS SELECT * FROM outreach.quiet_hours;
DELETE FROM outreach.quiet_hours;
SELECT outreach.launch_journey('Gateway demo invitation') AS enrolled;
SELECT outreach.tick() \g /dev/null
INSERT INTO outreach.quiet_hours SELECT * FROM saved_quiet_hours;
SQL
cat > "$DEMO_DIR/gateway.conf" <<CONF
conninfo = "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=postgres"
worker = demo-gateway
smtp_url = smtp://127.0.0.1:$PORT
smtp_starttls = off
from_address = outreach@clinic.example
from_name = Springfield Clinic
public_base_url = http://127.0.0.1:8025
link_secret = demo-only-secret-0123456789abcdef0123456789
http_listen = 127.0.0.1:8025
log_level = warning
CONF
"$PRIVATE_BIN/outreach-gateway" -c "$DEMO_DIR/gateway.conf" --once
"${PSQL[@]}" -c "SELECT m.id, m.address, m.status, m.detail FROM outreach.message m JOIN outreach.journey j ON j.id = m.journey_id
                 WHERE j.name = 'Gateway demo invitation' ORDER BY m.id"
echo "The mailbox: $(ls "$MAILBOX" | grep -c '\.eml$') message(s) in $MAILBOX/*.eml, e.g.:"
first=$(ls "$MAILBOX"/*.eml | sed -n 1p)   # sed reads all: head would end ls with SIGPIPE (pipefail)
sed -n '/^From:/p;/^To:/p;/^Subject:/p;/^Message-ID:/p;/^List-Unsubscribe/p' "$first"
ics=$(grep -l '^Content-Disposition: attachment; filename="invite.ics"' "$MAILBOX"/*.eml 2>/dev/null | sed -n 1p || true)
if [ -n "$ics" ]; then
	echo "The events section's mails went out too; those about the flu-shot day carry invite.ics, e.g. $ics:"
	sed -n '/^Subject:/p;/^Content-Type: multipart\/mixed/p;/^Content-Type: text\/calendar/p' "$ics"
fi
echo "Run the gateway with its HTTP endpoints (open, click, unsubscribe pages on http://127.0.0.1:8025):"
echo "  $PRIVATE_BIN/outreach-gateway -c $DEMO_DIR/gateway.conf      (docs/delivery.md)"
