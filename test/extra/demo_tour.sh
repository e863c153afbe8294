#!/usr/bin/env bash
# test/extra/demo_tour.sh: the `make demo` tour, section by section (scripts/demo.d/*.sql), on
# the test cluster with a smaller population, so the demo a newcomer runs cannot rot unseen.
# Then checks what the tour must leave true: live membership equals a fresh evaluation,
# history replays to membership, and no message was queued to anyone who may not get it.
# Last line: "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PSQL=("${PRIVATE_BIN:+$PRIVATE_BIN/}psql" -X -q -P pager=off)
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
notok() { failed=$((failed + 1)); echo "not ok - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1: expected '$2', got '$3'"; fi; }

TMP=$(mktemp -d /tmp/outreach-demo-tour.XXXXXX); chmod 755 "$TMP"
trap 'rm -rf "$TMP"' EXIT
cp -r "$ROOT/data/synthea-sample" "$TMP/" && chmod -R a+rX "$TMP"

"${PSQL[@]}" -c "set client_min_messages = warning" -c "drop extension if exists outreach cascade" \
	-c "create extension outreach cascade" >/dev/null

for f in "$ROOT"/scripts/demo.d/*.sql; do
	n=$(basename "$f")
	if out=$("${PSQL[@]}" -v ON_ERROR_STOP=1 -v contacts=2000 -v seed=7 -v synthea_dir="$TMP/synthea-sample" -f "$f" 2>&1); then
		ok "demo section $n runs"
	else
		notok "demo section $n runs: $(echo "$out" | grep -E 'ERROR|FATAL' | head -3)"
	fi
done

q() { "${PSQL[@]}" -tA -v ON_ERROR_STOP=1 -c "$1" 2>&1; }

# every live immediate segment the tour made holds exactly what its query matches now
for s in $(q "select id from outreach.segment where status = 'live' and kind <> 'static' and mode = 'immediate' order by id"); do
	name=$(q "select name from outreach.segment where id = $s")
	diff=$(q "select count(*) from ((select contact_id from outreach.segment_member where segment_id = $s
	            except select * from outreach.evaluate((select definition from outreach.segment where id = $s),
	                                                  (select time_zone from outreach.segment where id = $s)))
	           union all
	           (select * from outreach.evaluate((select definition from outreach.segment where id = $s),
	                                            (select time_zone from outreach.segment where id = $s))
	            except select contact_id from outreach.segment_member where segment_id = $s)) d")
	check "live segment '$name' equals a fresh evaluation" 0 "$diff"
done

# history replays to current membership
bad=$(q "with last as (select distinct on (segment_id, contact_id) segment_id, contact_id, change
                       from outreach.segment_change order by segment_id, contact_id, id desc)
         select count(*) from (
           (select segment_id, contact_id from last where change = 'added'
            except select segment_id, contact_id from outreach.segment_member)
           union all
           (select m.segment_id, m.contact_id from outreach.segment_member m
            join outreach.segment s on s.id = m.segment_id and s.kind <> 'static'
            except select segment_id, contact_id from last where change = 'added')) d")
check "segment history replays to current membership" 0 "$bad"

# the tour queued messages, and none to anyone who may not get them
queued=$(q "select count(*) from outreach.message where status <> 'suppressed'")
if [ "${queued:-0}" -gt 0 ] 2>/dev/null; then ok "the tour queued messages ($queued)"; else notok "the tour queued messages (got '$queued')"; fi
bad=$(q "select count(*) from outreach.message m join outreach.contact c on c.id = m.contact_id
         where m.status <> 'suppressed' and (c.status <> 'active' or c.deceased_at is not null
           or (m.channel = 'email' and (c.do_not_email or c.email is null))
           or (m.channel = 'sms' and (c.do_not_sms or c.phone is null))
           or (m.channel = 'letter' and c.do_not_mail))")
check "no message queued to an inactive, deceased, unreachable or opted-out contact" 0 "$bad"

"${PSQL[@]}" -c "set client_min_messages = warning" -c "drop extension outreach cascade" >/dev/null
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
