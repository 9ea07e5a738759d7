#!/bin/bash
# test/infra/postgres/start.sh - a real PostgreSQL (Debian's postgresql, 15) for the service's shared job store:
# a cluster of its own (initdb under the state folder, not the package's /var/lib/postgresql cluster), with a
# database and a role for chromogenic, password authentication (scram-sha-256) over TCP only.
#
#   127.0.0.1:$PG_PORT (default 15432), and the bridge address given with --bind (the "hosts" in network
#   namespaces of test/infra/network/hosts.sh reach it there; pg_hba admits that /24).
#   Database and role chromogenic, password $PG_PASSWORD (default chromogenic-secret):
#   URL postgres://chromogenic:chromogenic-secret@127.0.0.1:15432/chromogenic
#
# Files: $PG_STATE (default /var/tmp/chromogenic-postgres): data/ (the cluster; chromogenic.conf there is
# rewritten at each start), run/ (its Unix socket, for the postgres superuser only), postgres.log, postgres.pid,
# bind. The server runs as the `postgres` user in the foreground of its own session; fsync and synchronous
# commits stay on (the defaults): a job the store said it saved is on disk.
#
# Usage: start.sh [start [--bind ADDRESS] | stop | kill | status | url [--bind] | clean]
#   start   idempotent: a running server is left alone (a different --bind restarts it); waits until it
#           accepts connections, then makes the role and the database when missing
#   stop    fast shutdown (TERM), KILL after 30 s;  kill: KILL at once (a crash)
#   url     the connection URL on 127.0.0.1 (`url --bind`: on the bridge address)
#   clean   stop and drop the state folder
set -euo pipefail
STATE=${PG_STATE:-/var/tmp/chromogenic-postgres}
PORT=${PG_PORT:-15432}
PASSWORD=${PG_PASSWORD:-chromogenic-secret}
DATA=$STATE/data
PIDFILE=$STATE/postgres.pid

die() { echo "postgres/start.sh: $*" >&2; exit 1; }
usage="usage: start.sh [start [--bind ADDRESS] | stop | kill | status | url [--bind] | clean]"

cmd=${1:-start}
[ $# -gt 0 ] && shift
bind_extra=
url_on_bridge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bind)
      if [ "$cmd" = url ]; then url_on_bridge=1; shift; continue; fi
      [ $# -ge 2 ] || die "--bind needs an address, e.g. 10.219.19.1"
      bind_extra=$2
      shift 2 ;;
    *) die "unknown argument $1 ($usage)" ;;
  esac
done

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
as_postgres() { setpriv --reuid=postgres --regid=postgres --clear-groups --reset-env "$@"; }
running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; }

stop_server() { # stop_server SIGNAL
  running || { rm -f "$PIDFILE"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  kill "-$1" "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$PIDFILE"
}

case "$cmd" in
  stop) stop_server TERM; exit 0 ;;
  kill) stop_server KILL; exit 0 ;;
  clean) stop_server TERM; rm -rf "$STATE"; exit 0 ;;
  status)
    if running && ready; then echo "postgres: running (pid $(cat "$PIDFILE"), port $PORT)"; else echo "postgres: stopped"; fi
    exit 0 ;;
  url)
    host=127.0.0.1
    if [ "$url_on_bridge" = 1 ]; then
      [ -s "$STATE/bind" ] || die "no bridge address: start with --bind ADDRESS first"
      host=$(cat "$STATE/bind")
    fi
    echo "postgres://chromogenic:$PASSWORD@$host:$PORT/chromogenic"
    exit 0 ;;
  start) ;;
  *) die "$usage" ;;
esac

[ -n "$BIN" ] && [ -x "$BIN/postgres" ] || die "PostgreSQL is missing (Debian: apt-get install -y postgresql)"
id postgres >/dev/null 2>&1 || die "no postgres user (it comes with Debian's postgresql package)"
[ "$(id -u)" = 0 ] || die "run as root (the server runs as the postgres user)"

[ -z "$bind_extra" ] && [ -s "$STATE/bind" ] && bind_extra=$(cat "$STATE/bind")
if [ -n "$bind_extra" ]; then
  grep -q "inet $bind_extra/" <<<"$(ip -o addr show)" ||
    die "no interface has $bind_extra (bash test/infra/network/hosts.sh bridge makes the bridge)"
fi
if running && ready; then
  if [ "$(cat "$STATE/bind" 2>/dev/null)" = "$bind_extra" ]; then
    echo "postgres already up on port $PORT${bind_extra:+ (and $bind_extra)}; state in $STATE"
    exit 0
  fi
  stop_server TERM
fi
stop_server TERM # a pid file whose server does not answer
if [ -n "$bind_extra" ]; then echo "$bind_extra" >"$STATE/bind"; else rm -f "$STATE/bind"; fi

mkdir -p "$STATE/run"
chown postgres:postgres "$STATE" "$STATE/run"
chmod 755 "$STATE"
if [ ! -s "$DATA/PG_VERSION" ]; then
  rm -rf "$DATA"
  install -d -o postgres -g postgres -m 700 "$DATA"
  as_postgres "$BIN/initdb" -D "$DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 || die "initdb failed; see $STATE/initdb.log"
  echo "include_if_exists = 'chromogenic.conf'" >>"$DATA/postgresql.conf"
fi

listen=127.0.0.1${bind_extra:+,$bind_extra}
cat >"$DATA/chromogenic.conf" <<EOF
listen_addresses = '$listen'
port = $PORT
unix_socket_directories = '$STATE/run'
password_encryption = scram-sha-256
max_connections = 200
EOF
# Who may connect: the superuser over the socket (peer), chromogenic by password over TCP from loopback and
# from the bridge's /24; nothing else.
{
  echo "local all postgres peer"
  echo "host chromogenic chromogenic 127.0.0.1/32 scram-sha-256"
  [ -n "$bind_extra" ] && echo "host chromogenic chromogenic ${bind_extra%.*}.0/24 scram-sha-256"
} >"$DATA/pg_hba.conf"
chown postgres:postgres "$DATA/chromogenic.conf" "$DATA/pg_hba.conf"
touch "$STATE/postgres.log" && chown postgres:postgres "$STATE/postgres.log"

setsid setpriv --reuid=postgres --regid=postgres --clear-groups --reset-env "$BIN/postgres" -D "$DATA" \
  </dev/null >>"$STATE/postgres.log" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 150); do
  ready && break
  running || die "postgres exited while starting; see $STATE/postgres.log: $(tail -n 5 "$STATE/postgres.log")"
  sleep 0.2
done
ready || die "postgres did not accept connections on 127.0.0.1:$PORT within 30 s; see $STATE/postgres.log"

# The role and the database, made once; the password set at every start (PG_PASSWORD may change).
as_postgres "$BIN/psql" -q -X -v ON_ERROR_STOP=1 -h "$STATE/run" -p "$PORT" -d postgres \
  -v password="$PASSWORD" >/dev/null <<'EOF' || die "cannot make the chromogenic role and database"
SELECT 'CREATE ROLE chromogenic LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chromogenic') \gexec
ALTER ROLE chromogenic PASSWORD :'password';
SELECT 'CREATE DATABASE chromogenic OWNER chromogenic' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'chromogenic') \gexec
EOF
echo "postgres up: postgres://chromogenic:***@127.0.0.1:$PORT/chromogenic${bind_extra:+ and on $bind_extra}; state in $STATE"
