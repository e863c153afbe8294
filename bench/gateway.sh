#!/usr/bin/env bash
# bench/gateway.sh: emails per second through outreach-gateway to a local SMTP sink, with one
# and with four SMTP connections, beside (a) the outbox's own claim+report rate without any
# sending (the database side alone: single-row claim_messages/report_delivery and the
# gateway's batch calls) and (b) the sink's own rate when a plain smtplib client floods it
# (the SMTP server's ceiling).  Everything runs in one throwaway cluster and is stopped on exit.
# Nothing asserts a time.  Usage: bash bench/gateway.sh   (N=3000 messages per case)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$OUTREACH_ROOT"
ensure_packages
N=${N:-3000}
BENCH_DIR=$(mktemp -d /tmp/outreach-bench-gateway.XXXXXX)
chmod 755 "$BENCH_DIR"
export OUTREACH_PORT=${OUTREACH_PORT:-$(/usr/bin/python3 test/gateway/servers.py freeport)}
SINK_PID=""
cleanup() {
	[ -z "$SINK_PID" ] || { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true; }
	stop_cluster "$BENCH_DIR"; rm -rf "$BENCH_DIR"
}
trap cleanup EXIT
build_and_install "$BENCH_DIR" >/dev/null 2>&1
start_cluster "$BENCH_DIR" outreach_bench
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1)
sql() { "${PSQL[@]}" -tA -c "$1"; }
"${PSQL[@]}" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION outreach CASCADE;
DELETE FROM outreach.quiet_hours; DELETE FROM outreach.frequency_cap;
INSERT INTO outreach.contact (external_id, first_name, email) SELECT 'b' || i, 'Pat' || i, 'p' || i || '@example.org' FROM generate_series(1, $N) i;
SELECT outreach.create_template('bench', 'email', subject => 'Your exam, {{contact.first_name}}',
  body => '<p>Dear {{contact.first_name}}, <a href="https://clinic.example/book">book</a>.</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a> {{sender.postal_address}}</p>',
  sender_postal_address => '1 Clinic Way');
SQL
enqueue() { sql "SELECT count(outreach.enqueue_message(id, 'bench')) FROM outreach.contact" >/dev/null; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n / (ms / 1000.0) }'; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# (a) the database side alone
enqueue
t=$(date +%s%N)
sql "DO \$\$ DECLARE m record; BEGIN LOOP
       SELECT * INTO m FROM outreach.claim_messages('single', 1); EXIT WHEN m.id IS NULL;
       PERFORM outreach.report_delivery(m.id, 'sent', NULL, false, 'single'); END LOOP; END \$\$" >/dev/null
single_ms=$(ms_since "$t")
enqueue
t=$(date +%s%N)
sql "DO \$\$ DECLARE ids bigint[]; BEGIN LOOP
       SELECT array_agg(id) INTO ids FROM outreach.gateway_claim('batch', 100); EXIT WHEN ids IS NULL;
       PERFORM outreach.gateway_report(ids, array_fill('sent'::text, ARRAY[cardinality(ids)]), array_fill(NULL::text, ARRAY[cardinality(ids)]),
                                      array_fill(false, ARRAY[cardinality(ids)]), 'batch'); END LOOP; END \$\$" >/dev/null
batch_ms=$(ms_since "$t")
# the same with a calendar file (about 1.5 kB, like an event's invite.ics) on every message:
# gateway_claim reads and base64-encodes the attachments of the batch in its one statement
enqueue
sql "INSERT INTO outreach.message_attachment (message_id, contact_id, filename, content_type, content, created_at)
     SELECT m.id, m.contact_id, 'invite.ics', 'text/calendar; charset=utf-8; method=REQUEST',
            'BEGIN:VCALENDAR' || repeat(E'\r\nDESCRIPTION:Bring your insurance card and a list of your medicines.', 25) || E'\r\nEND:VCALENDAR\r\n', now()
       FROM outreach.message m WHERE m.status = 'queued'" >/dev/null
t=$(date +%s%N)
sql "DO \$\$ DECLARE ids bigint[]; BEGIN LOOP
       SELECT array_agg(id) INTO ids FROM outreach.gateway_claim('batch', 100); EXIT WHEN ids IS NULL;
       PERFORM outreach.gateway_report(ids, array_fill('sent'::text, ARRAY[cardinality(ids)]), array_fill(NULL::text, ARRAY[cardinality(ids)]),
                                      array_fill(false, ARRAY[cardinality(ids)]), 'batch'); END LOOP; END \$\$" >/dev/null
attach_ms=$(ms_since "$t")

# (b) the sink's ceiling, and (c) the gateway
SMTP_PORT=$(/usr/bin/python3 test/gateway/servers.py freeport)
mkdir -p "$BENCH_DIR/sink"
/usr/bin/python3 test/gateway/servers.py smtp "$SMTP_PORT" "$BENCH_DIR/sink" --count-only >"$BENCH_DIR/sink.log" 2>&1 &
SINK_PID=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$SMTP_PORT) 2>/dev/null && break; sleep 0.1; done
sink_rate() { # connections
	/usr/bin/python3 - "$SMTP_PORT" "$N" "$1" <<'PY'
import smtplib, sys, threading, time
port, n, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
msg = b"From: a@hospital.example\r\nTo: b@example.org\r\nSubject: x\r\n\r\n" + b"body line\r\n" * 40
def work(k):
    s = smtplib.SMTP("127.0.0.1", port)
    for _ in range(k): s.sendmail("a@hospital.example", ["b@example.org"], msg)
    s.quit()
t = time.time()
ts = [threading.Thread(target=work, args=(n // conns,)) for _ in range(conns)]
[x.start() for x in ts]; [x.join() for x in ts]
print(int(n / (time.time() - t)))
PY
}
sink1=$(sink_rate 1); sink4=$(sink_rate 4)

gateway_rate() { # connections
	cat > "$BENCH_DIR/gw.conf" <<EOF
conninfo = "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=postgres"
worker = bench
batch_size = 200
report_every = 100
concurrency = $1
smtp_url = smtp://127.0.0.1:$SMTP_PORT
smtp_starttls = off
from_address = outreach@hospital.example
public_base_url = https://outreach.hospital.example
link_secret = $(openssl rand -hex 32)
log_level = warning
http_listen =
EOF
	enqueue
	local t ms sent
	t=$(date +%s%N)
	if [ -x /usr/bin/time ]; then   # the gateway's own CPU time (user + sys), to show what it costs alone
		/usr/bin/time -f "%U %S" -o "$BENCH_DIR/cpu.$1" "$PRIVATE_BIN/outreach-gateway" -c "$BENCH_DIR/gw.conf" --once 2>>"$BENCH_DIR/gw.log"
	else
		"$PRIVATE_BIN/outreach-gateway" -c "$BENCH_DIR/gw.conf" --once 2>>"$BENCH_DIR/gw.log"
	fi
	ms=$(ms_since "$t")
	sent=$(sql "SELECT count(*) FROM outreach.message WHERE status = 'sent' AND claimed_by = 'bench' AND sent_at > now() - interval '10 minutes'")
	sql "UPDATE outreach.message SET claimed_by = 'bench-done' WHERE claimed_by = 'bench'" >/dev/null
	[ "$sent" -eq "$N" ] || echo "warning: $sent of $N sent" >&2
	rate "$N" "$ms"
}
gw1=$(gateway_rate 1); gw4=$(gateway_rate 4)

printf '\n%-62s %10s\n' "case ($N messages, $(nproc) cores, one run)" "msgs/s"
printf '%-62s %10s\n' "outbox only: claim_messages(1) + report_delivery per message" "$(rate "$N" "$single_ms")"
printf '%-62s %10s\n' "outbox only: gateway_claim(100) + gateway_report batch" "$(rate "$N" "$batch_ms")"
printf '%-62s %10s\n' "outbox only: the same, each message with a 1.5 kB attachment" "$(rate "$N" "$attach_ms")"
printf '%-62s %10s\n' "SMTP sink ceiling: smtplib client, 1 connection" "$sink1"
printf '%-62s %10s\n' "SMTP sink ceiling: smtplib client, 4 connections" "$sink4"
printf '%-62s %10s\n' "outreach-gateway --once to the sink, 1 connection" "$gw1"
printf '%-62s %10s\n' "outreach-gateway --once to the sink, 4 connections" "$gw4"
for c in 1 4; do
	[ -f "$BENCH_DIR/cpu.$c" ] && printf '%-62s %10s\n' "gateway's own CPU (user+sys) per message, $c connection(s)" \
		"$(awk -v n="$N" '{ printf "%.3f ms", ($1 + $2) * 1000 / n }' "$BENCH_DIR/cpu.$c")"
done
printf '\ngateway / sink ceiling: %s (1 connection), %s (4 connections)\n' \
	"$(awk -v a="$gw1" -v b="$sink1" 'BEGIN { printf "%.2f", a / b }')" "$(awk -v a="$gw4" -v b="$sink4" 'BEGIN { printf "%.2f", a / b }')"
