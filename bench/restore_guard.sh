#!/usr/bin/env bash
# bench/restore_guard.sh: what the restore guard costs on the membership write path.
# 92_operations.sql gives segment_change a row trigger WHEN (outreach._restoring()) (inlined:
# one current_setting() per row).  Times going live on 3 segments of ~95,000 members each
# (~285,000 segment_change rows) with the trigger and without it, alternating, RUNS times,
# in one throwaway cluster; prints the medians and their ratio.
source "$(dirname "$0")/../scripts/lib.sh"
RUNS=${RUNS:-3}
W=$(mktemp -d /tmp/outreach-bench-guard.XXXXXX); chmod 755 "$W"
trap 'stop_cluster "$W"; rm -rf "$W"' EXIT
build_and_install "$W" >/dev/null
start_cluster "$W" outreach_bench
P=("$PRIVATE_BIN/psql" -X -qtA -v ON_ERROR_STOP=1)
one() { # with|without -> milliseconds of the three go_live calls
	"${P[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach;
INSERT INTO outreach.contact (external_id, birthdate) SELECT 'c' || i, DATE '1950-01-01' + (i % 20000) FROM generate_series(1, 100000) i;
SELECT outreach.create_segment('s' || i, 'contact where birthdate < ''1990-01-01''') FROM generate_series(1, 3) i;
SQL
	[ "$1" = without ] && "${P[@]}" -c "DROP TRIGGER outreach_restore_change_xid ON outreach.segment_change" >/dev/null
	"${P[@]}" -c '\timing on' -c "SELECT outreach.go_live('s1')" -c "SELECT outreach.go_live('s2')" -c "SELECT outreach.go_live('s3')" \
		| awk '/^Time:/ {s += $2} END {printf "%.0f\n", s}'
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
with=(); without=()
for _ in $(seq 1 "$RUNS"); do with+=("$(one with)"); without+=("$(one without)"); done
mw=$(printf '%s\n' "${with[@]}" | median); mo=$(printf '%s\n' "${without[@]}" | median)
echo "go_live x3 (~285k segment_change rows): with guard ${mw} ms, without ${mo} ms (runs: ${with[*]} / ${without[*]})"
awk -v a="$mw" -v b="$mo" 'BEGIN {printf "ratio with/without: %.2f\n", a / b}'
