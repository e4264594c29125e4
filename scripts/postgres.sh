#!/usr/bin/env bash
# Throw-away PostgreSQL cluster for the test-suite.
#
#   scripts/postgres.sh start   init (if needed) + start; prints the SQLAlchemy URL
#   scripts/postgres.sh url     prints the SQLAlchemy URL
#   scripts/postgres.sh status  exit 0 if running and accepting connections
#   scripts/postgres.sh halt    stop the server, keep its data (`start` brings it back)
#   scripts/postgres.sh stop    stop the server and delete its data directory
#
# Settings (environment):
#   HANDOFF_TEST_PG_PORT  TCP port on 127.0.0.1        (default 55432)
#   HANDOFF_TEST_PG_DIR   data dir; socket lives in it (default /tmp/handoff-test-pg)
#
# PostgreSQL refuses to run as root, so when invoked as root the server runs as
# the `postgres` system user (from the Debian package), or as a dedicated
# unprivileged `handoff-pg` user created here if `postgres` does not exist.
# Progress goes to stderr; only the URL goes to stdout, so
#   URL=$(scripts/postgres.sh start)
# works.
set -euo pipefail

PORT="${HANDOFF_TEST_PG_PORT:-55432}"
PGDIR="${HANDOFF_TEST_PG_DIR:-/tmp/handoff-test-pg}"
DB_USER=handoff
DB_PASS=handoff
DB_NAME=handoff_test
SUPERUSER=postgres
URL="postgresql+asyncpg://${DB_USER}:${DB_PASS}@127.0.0.1:${PORT}/${DB_NAME}"

log() { echo "postgres.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "$PGDIR" in
    /*) ;;
    *) PGDIR="$PWD/$PGDIR" ;;
esac
PGDIR="${PGDIR%/}"
[[ -n "$PGDIR" && "$PGDIR" != "/" ]] || die "refusing to use '/' as HANDOFF_TEST_PG_DIR"
LOGFILE="$PGDIR/server.log"

find_bindir() {
    local d best=""
    while IFS= read -r d; do
        [[ -x "$d/pg_ctl" && -x "$d/initdb" ]] && best="$d"
    done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V)
    [[ -n "$best" ]] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin (run scripts/system-deps.sh)"
    echo "$best"
}

# Who runs the server: ourselves if unprivileged, else an unprivileged account.
RUN_AS=()
PG_OWNER="$(id -un)"
setup_run_as() {
    [[ $(id -u) -eq 0 ]] || return 0
    if id -u postgres >/dev/null 2>&1; then
        PG_OWNER=postgres
    else
        PG_OWNER=handoff-pg
        if ! id -u "$PG_OWNER" >/dev/null 2>&1; then
            log "creating unprivileged system user $PG_OWNER"
            useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OWNER"
        fi
    fi
    RUN_AS=(runuser -u "$PG_OWNER" --)
}

# Run a command as the server owner, from a directory it can read.
as_owner() { (cd / && "${RUN_AS[@]}" "$@"); }

server_pid() {
    # Prints the postmaster pid if the pid file points at a live postgres process.
    local pid comm
    [[ -f "$PGDIR/postmaster.pid" ]] || return 1
    pid="$(head -n1 "$PGDIR/postmaster.pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/comm" ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    [[ "$comm" == postgres || "$comm" == postmaster ]] || return 1
    # A killed postmaster can linger as an unreaped zombie: that is not running.
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
    echo "$pid"
}

is_ready() { "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2 >/dev/null 2>&1; }

clean_stale_locks() {
    # A killed previous run leaves postmaster.pid (and the socket lock file)
    # behind; if its pid is gone or was reused by something else, remove them.
    if [[ -f "$PGDIR/postmaster.pid" ]] && ! server_pid >/dev/null; then
        log "removing stale postmaster.pid from a previous run"
        rm -f "$PGDIR/postmaster.pid"
    fi
    if [[ ! -f "$PGDIR/postmaster.pid" ]]; then
        rm -f "$PGDIR"/.s.PGSQL."$PORT" "$PGDIR"/.s.PGSQL."$PORT".lock
    fi
}

init_cluster() {
    local want_version
    want_version="$(basename "$(dirname "$BINDIR")")"
    if [[ -f "$PGDIR/PG_VERSION" ]]; then
        if [[ "$(cat "$PGDIR/PG_VERSION")" == "$want_version" ]]; then
            return 0
        fi
        log "existing cluster in $PGDIR is version $(cat "$PGDIR/PG_VERSION"), need $want_version: recreating"
        rm -rf "$PGDIR"
    elif [[ -e "$PGDIR" ]]; then
        log "$PGDIR exists but holds no complete cluster (interrupted initdb?): recreating"
        rm -rf "$PGDIR"
    fi
    mkdir -p "$PGDIR"
    chmod 700 "$PGDIR"
    if [[ ${#RUN_AS[@]} -gt 0 ]]; then
        chown "$PG_OWNER": "$PGDIR"
        as_owner test -w "$PGDIR" \
            || die "user $PG_OWNER cannot write $PGDIR (a parent directory is not accessible); set HANDOFF_TEST_PG_DIR elsewhere, e.g. under /tmp"
    fi
    log "initdb $PGDIR (PostgreSQL $want_version, user $PG_OWNER)"
    if ! as_owner "$BINDIR/initdb" -D "$PGDIR" -U "$SUPERUSER" \
            --auth=trust --encoding=UTF8 --no-locale --no-sync \
            >"$PGDIR.initdb.log" 2>&1; then
        cat "$PGDIR.initdb.log" >&2
        rm -f "$PGDIR.initdb.log"
        die "initdb failed"
    fi
    rm -f "$PGDIR.initdb.log"
    # Loopback only, throw-away data: durability off for speed.
    cat >>"$PGDIR/postgresql.conf" <<CONF

# --- handoff test cluster (scripts/postgres.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
CONF
    # Local connections only; hba from --auth=trust already covers 127.0.0.1/::1.
}

ensure_role_and_db() {
    local psql=("$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" -d postgres)
    "${psql[@]}" >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${DB_USER}') THEN
    CREATE ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASS}';
  ELSE
    ALTER ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASS}';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${DB_NAME}')
\gexec
SQL
}

wait_ready() {
    local i
    for i in $(seq 1 60); do
        is_ready && return 0
        sleep 0.5
    done
    return 1
}

cmd_start() {
    BINDIR="$(find_bindir)"
    setup_run_as
    if server_pid >/dev/null && is_ready; then
        log "already running on 127.0.0.1:$PORT (data $PGDIR)"
        ensure_role_and_db
        echo "$URL"
        return 0
    fi
    if server_pid >/dev/null; then
        log "a server owns $PGDIR but does not answer on port $PORT: restarting it"
        as_owner "$BINDIR/pg_ctl" -D "$PGDIR" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || as_owner "$BINDIR/pg_ctl" -D "$PGDIR" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    if is_ready; then
        die "port $PORT on 127.0.0.1 is taken by another server; set HANDOFF_TEST_PG_PORT"
    fi
    init_cluster
    clean_stale_locks
    log "starting PostgreSQL on 127.0.0.1:$PORT (data $PGDIR, log $LOGFILE)"
    if ! as_owner "$BINDIR/pg_ctl" -D "$PGDIR" -l "$LOGFILE" -w -t 60 \
            -o "-p $PORT -c listen_addresses=127.0.0.1 -k '$PGDIR'" start >/dev/null; then
        log "pg_ctl start failed; server log follows"
        tail -n 40 "$LOGFILE" >&2 || true
        exit 1
    fi
    wait_ready || { tail -n 40 "$LOGFILE" >&2 || true; die "server did not become ready"; }
    ensure_role_and_db
    log "ready"
    echo "$URL"
}

cmd_stop() {
    local pid
    if compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; then
        BINDIR="$(find_bindir)"
        setup_run_as
        if pid="$(server_pid)"; then
            log "stopping PostgreSQL (pid $pid)"
            as_owner "$BINDIR/pg_ctl" -D "$PGDIR" -m fast -w -t 30 stop >/dev/null 2>&1 \
                || as_owner "$BINDIR/pg_ctl" -D "$PGDIR" -m immediate -w -t 30 stop >/dev/null 2>&1 \
                || true
            if pid="$(server_pid)"; then
                log "pg_ctl could not stop it; killing pid $pid"
                kill -KILL "$pid" 2>/dev/null || true
                sleep 1
            fi
        else
            log "not running"
        fi
    fi
    if [[ -e "$PGDIR" ]]; then
        log "removing $PGDIR"
        rm -rf "$PGDIR"
    fi
    rm -f "$PGDIR.initdb.log"
}

cmd_halt() {
    BINDIR="$(find_bindir)"
    setup_run_as
    if server_pid >/dev/null; then
        # Fast shutdown: open sessions are cut off, as when a database server is restarted.
        log "stopping PostgreSQL (data kept in $PGDIR)"
        as_owner "$BINDIR/pg_ctl" -D "$PGDIR" -m fast -w -t 30 stop >/dev/null
    else
        log "not running"
    fi
}

cmd_status() {
    BINDIR="$(find_bindir)"
    if server_pid >/dev/null && is_ready; then
        log "running on 127.0.0.1:$PORT (data $PGDIR)"
        return 0
    fi
    log "not running"
    return 1
}

case "${1:-}" in
    start) cmd_start ;;
    halt) cmd_halt ;;
    stop) cmd_stop ;;
    url) echo "$URL" ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|halt|stop|url|status" >&2
        exit 2
        ;;
esac
