#!/usr/bin/env bash
# test/extra/security_matrix.sh: the role × object matrix in docs/security.md is the one the
# catalog of a fresh install has (scripts/security_matrix.sql), so the doc never drifts.
# Regenerate the doc with scripts/security-matrix.sh.  Prints "N passed, N failed" last.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PSQL="${PRIVATE_BIN:+$PRIVATE_BIN/}psql"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
notok() { failed=$((failed + 1)); echo "not ok - $*"; }

"$PSQL" -X -q -v ON_ERROR_STOP=1 -c "set client_min_messages = warning" -c "drop extension if exists outreach cascade" \
	-c "create extension outreach cascade" >/dev/null
catalog=$("$PSQL" -X -At -v ON_ERROR_STOP=1 -f "$ROOT/scripts/security_matrix.sql")
doc=$(sed -n '/<!-- matrix:begin -->/,/<!-- matrix:end -->/p' "$ROOT/docs/security.md" | sed '1d;$d')
"$PSQL" -X -q -c "set client_min_messages = warning" -c "drop extension if exists outreach cascade" >/dev/null

if [ -n "$catalog" ] && [ "$catalog" = "$doc" ]; then
	ok "docs/security.md has the catalog's role × object matrix"
else
	notok "docs/security.md differs from the catalog (run scripts/security-matrix.sh):"
	diff <(echo "$doc") <(echo "$catalog") | head -40
fi
# and is not empty
listed=$(echo "$catalog" | grep -c '^| `' || true)
if [ "$listed" -gt 100 ]; then ok "the matrix lists $listed tables, views and functions"; else notok "the matrix lists only $listed objects"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
