#!/usr/bin/env bash
# bench/deadlock_load.sh: the deadlock load test of issue 19 (defect 7) at full length:
# 4 clients, DURATION seconds (default 60): ticks, opt-outs, multi-contact statements and
# clinical writes under pgbench, in a throwaway cluster of its own (port OUTREACH_PORT,
# default 54332).  Reports transactions, ticks, failed transactions and the deadlocks the
# server counted (pg_stat_database); the last line is "N passed, N failed".  make test runs
# the same script (test/extra/deadlock_load.sh) for 20 seconds.
source "$(dirname "$0")/../scripts/lib.sh"
export OUTREACH_PORT=${OUTREACH_PORT:-54332}
DIR=$(mktemp -d /tmp/outreach-deadlock-bench.XXXXXX)
chmod 755 "$DIR"
trap 'stop_cluster "$DIR"; rm -rf "$DIR"' EXIT
cd "$OUTREACH_ROOT"
ensure_packages
build_and_install "$DIR"
start_cluster "$DIR" outreach_deadlock
DURATION=${DURATION:-60} CLIENTS=${CLIENTS:-4} CONTACTS=${CONTACTS:-2000} bash test/extra/deadlock_load.sh
