#!/usr/bin/env bash
# scripts/security-matrix.sh: regenerate the role × object matrix of docs/security.md from the
# catalog of a fresh install in a throwaway cluster (test/extra/security_matrix.sh checks it).
source "$(dirname "$0")/lib.sh"
cd "$OUTREACH_ROOT"
WORK=$(mktemp -d /tmp/outreach-matrix.XXXXXX)
trap 'stop_cluster "$WORK"; rm -rf "$WORK"' EXIT
build_and_install "$WORK"
OUTREACH_PORT=${OUTREACH_PORT:-54339} start_cluster "$WORK" outreach_matrix
"$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -c "create extension outreach cascade" >/dev/null
"$PRIVATE_BIN/psql" -X -At -v ON_ERROR_STOP=1 -f scripts/security_matrix.sql > "$WORK/matrix.md"
python3 - "$WORK/matrix.md" docs/security.md <<'PY'
import sys
matrix = open(sys.argv[1]).read().rstrip('\n')
path = sys.argv[2]
doc = open(path).read()
a = doc.index('<!-- matrix:begin -->') + len('<!-- matrix:begin -->')
b = doc.index('<!-- matrix:end -->')
open(path, 'w').write(doc[:a] + '\n' + matrix + '\n' + doc[b:])
PY
log "docs/security.md: matrix regenerated"
