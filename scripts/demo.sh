#!/usr/bin/env bash
# scripts/demo.sh: `make demo` and `make demo-stop`.
#
# make demo: packages, build, install into a private PostgreSQL tree under .demo/ (ignored),
# a fresh throwaway cluster there with database outreach_demo, a deterministic demo
# population (DEMO_CONTACTS, default 10000; DEMO_SEED, default 42), then a short tour: each
# capability is one file scripts/demo.d/NN_name.sql, run in name order with psql.  A
# capability adds its part of the tour by adding a file.  The cluster stays running.
# make demo-stop (scripts/demo.sh stop): stops it.  Running make demo again starts over.
source "$(dirname "$0")/lib.sh"

# The cluster lives in .demo/ of the checkout when the postgres OS user can reach it there; a
# checkout under a private directory (a clone in /root, say) gets it under /var/tmp instead,
# at a path derived from the checkout's, so `make demo-stop` finds it again.
demo_dir() {
	if ! id postgres >/dev/null 2>&1 || runuser -u postgres -- test -x "$OUTREACH_ROOT" 2>/dev/null \
		|| [ "$(id -un)" = postgres ]; then
		echo "$OUTREACH_ROOT/.demo"
	else
		echo "/var/tmp/outreach-demo-$(printf '%s' "$OUTREACH_ROOT" | md5sum | cut -c1-12)"
	fi
}
DEMO_DIR=$(demo_dir)
DEMO_DB=outreach_demo
export OUTREACH_PORT=${OUTREACH_PORT:-54330}

stop_demo() {
	if [ -d "$DEMO_DIR/root" ]; then
		private_bin_for "$DEMO_DIR"
		if [ -f "$DEMO_DIR/data/postmaster.pid" ]; then
			log "stopping the demo cluster in $DEMO_DIR"
			stop_cluster "$DEMO_DIR"
		fi
	fi
}

if [ "${1:-}" = stop ]; then
	stop_demo
	log "the demo cluster is stopped (its files stay in $DEMO_DIR until the next make demo)"
	exit 0
fi

cd "$OUTREACH_ROOT"
ensure_packages
DEMO_DIR=$(demo_dir)
stop_demo
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
build_and_install "$DEMO_DIR"
start_cluster "$DEMO_DIR" "$DEMO_DB"

# Sections read files through the server (Synthea CSVs): give it a copy it can read.
if [ -d data/synthea-sample ]; then
	cp -r data/synthea-sample "$DEMO_DIR/synthea-sample"
	chmod -R a+rX "$DEMO_DIR/synthea-sample"
fi
PSQL=("$PRIVATE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -P pager=off
      -v contacts="${DEMO_CONTACTS:-10000}" -v seed="${DEMO_SEED:-42}" -v synthea_dir="$DEMO_DIR/synthea-sample")
"${PSQL[@]}" -c "CREATE EXTENSION outreach CASCADE" >/dev/null

for f in scripts/demo.d/*.sql scripts/demo.d/*.sh; do
	[ -f "$f" ] || continue
	case "$f" in
	*.sh) DEMO_DIR="$DEMO_DIR" bash "$f" || die "demo section $f failed" ;;   # sections that run programs
	*) "${PSQL[@]}" -f "$f" || die "demo section $f failed" ;;
	esac
done

cat <<MSG

The demo cluster is running (data in $DEMO_DIR, Unix socket only).  Explore it with:

  $PRIVATE_BIN/psql -h $DEMO_DIR/sock -p $OUTREACH_PORT -U postgres $DEMO_DB

Stop it with:  make demo-stop        (make demo again starts over with a fresh cluster)
MSG
