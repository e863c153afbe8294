# scripts/lib.sh: shared set-up for `make test`, `make demo` and `make bench`.
#
# Owns: installing the Debian packages outreach needs, building it, installing it into a
# private copy of the PostgreSQL installation (so parallel runs and the system install never
# interfere), and starting/stopping a throwaway cluster as the `postgres` OS user on a Unix
# socket only (listen_addresses = '').  Source it; it defines functions and sets no traps.

set -euo pipefail

OUTREACH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
OUTREACH_PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-$PG_MAJOR-cron postgresql-$PG_MAJOR-pgtap libtap-parser-sourcehandler-pgtap-perl make gcc python3-icalendar python3 tzdata"
# outreach-gateway (build, and its end-to-end test: a local SMTP server, DKIM check, curl, openssl)
OUTREACH_PACKAGES="$OUTREACH_PACKAGES pkg-config libpq-dev libcurl4-openssl-dev libmicrohttpd-dev libssl-dev python3-aiosmtpd python3-dkim curl openssl"

log() { printf '%s\n' "==> $*" >&2; }
die() { printf '%s\n' "error: $*" >&2; exit 1; }

# Install whatever Debian package is missing.  Needs root (or sudo) only when something is missing.
ensure_packages() {
	local missing=() p
	for p in $OUTREACH_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing Debian packages: ${missing[*]}"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pg_bindir() { "$(pg_config_path)" --bindir; }
pg_config_path() { echo "/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"; }

# build_and_install DIR: build outreach and install it into DIR/root, a private copy of the
# server's bin/lib/share trees.  PostgreSQL finds share/ and lib/ relative to its binary, so
# the copied server loads our freshly built extension without touching the system install.
build_and_install() {
	local dir=$1 pgc bindir libdir sharedir
	pgc=$(pg_config_path)
	[ -x "$pgc" ] || die "pg_config for PostgreSQL $PG_MAJOR not found at $pgc"
	bindir=$("$pgc" --bindir); libdir=$("$pgc" --pkglibdir); sharedir=$("$pgc" --sharedir)
	log "building outreach"
	make -C "$OUTREACH_ROOT" -s PG_CONFIG="$pgc" >/dev/null
	log "installing into a private PostgreSQL tree under $dir/root"
	rm -rf "$dir/root"
	mkdir -p "$dir/root$bindir" "$dir/root$libdir" "$dir/root$sharedir"
	cp -a "$bindir/." "$dir/root$bindir/"
	cp -a "$libdir/." "$dir/root$libdir/"
	cp -a "$sharedir/." "$dir/root$sharedir/"
	make -C "$OUTREACH_ROOT" -s PG_CONFIG="$pgc" install DESTDIR="$dir/root" >/dev/null
	PRIVATE_BIN="$dir/root$bindir"
	export PRIVATE_BIN
}

as_postgres() {
	# from / so that a checkout the postgres user cannot enter (e.g. under /root) does not matter
	if [ "$(id -un)" = postgres ]; then "$@"; else (cd / && runuser -u postgres -- "$@"); fi
}

# start_cluster DIR DBNAME: initdb in DIR/data, socket in DIR/sock, pg_cron preloaded and
# pointed at DBNAME, which is created.  Exports PGHOST, PGPORT, PGDATABASE, PGUSER.
start_cluster() {
	local dir=$1 db=$2
	id postgres >/dev/null 2>&1 || die "the postgres OS user does not exist (install postgresql-$PG_MAJOR)"
	chmod 755 "$dir"
	mkdir -p "$dir/sock" "$dir/log"
	chown postgres "$dir/sock" "$dir/log"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		rm -rf "$dir/data"
		mkdir -p "$dir/data"
		chown postgres "$dir/data"
		as_postgres "$PRIVATE_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
			|| { cat "$dir/initdb.log"; die "initdb failed"; }
		cat >>"$dir/data/postgresql.conf" <<-EOF
			listen_addresses = ''
			unix_socket_directories = '$dir/sock'
			port = ${OUTREACH_PORT:-54329}
			shared_preload_libraries = 'pg_cron'
			cron.database_name = '$db'
			cron.use_background_workers = on
			max_worker_processes = 32
			fsync = off
			synchronous_commit = off
			full_page_writes = off
			max_prepared_transactions = 10
			shared_buffers = ${OUTREACH_SHARED_BUFFERS:-256MB}
			work_mem = 32MB
			maintenance_work_mem = 512MB
			max_wal_size = 4GB
			timezone = 'UTC'
			log_min_messages = warning
		EOF
	fi
	as_postgres "$PRIVATE_BIN/pg_ctl" -D "$dir/data" -l "$dir/log/server.log" -w -t 60 start >/dev/null \
		|| { tail -30 "$dir/log/server.log" >&2; die "the server did not start"; }
	export PGHOST="$dir/sock" PGPORT=${OUTREACH_PORT:-54329} PGUSER=postgres PGDATABASE=$db
	"$PRIVATE_BIN/psql" -X -q -d postgres -c "select 1" >/dev/null
	if ! "$PRIVATE_BIN/psql" -X -qtA -d postgres -c "select 1 from pg_database where datname = '$db'" | grep -q 1; then
		"$PRIVATE_BIN/createdb" "$db"
	fi
}

stop_cluster() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	as_postgres "$PRIVATE_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# private_bin_for DIR: set PRIVATE_BIN for an existing private install (demo stop, reruns).
private_bin_for() {
	PRIVATE_BIN="$1/root$(pg_bindir)"
	export PRIVATE_BIN
}
