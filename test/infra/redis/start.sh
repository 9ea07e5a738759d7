#!/bin/bash
# test/infra/redis/start.sh - a real Redis (Debian's redis-server, 7.0) for the service's BullMQ queue: its own
# configuration and data folder, password required, AOF on. Not the package's own instance (its port, its
# /var/lib/redis): nothing here touches it.
#
#   127.0.0.1:$REDIS_PORT (default 16379), and the bridge address given with --bind (the "hosts" in network
#   namespaces of test/infra/network/hosts.sh reach it there). Password $REDIS_PASSWORD (default redis-secret):
#   URL redis://:redis-secret@127.0.0.1:16379.
#
# Durability: `appendonly yes` with `appendfsync always`. BullMQ keeps the whole queue in Redis, and a job the
# API has answered 201 for must survive a Redis that dies at any moment (kill -9, power loss), not only a clean
# restart; `everysec` could lose the last second of adds, completions and lock moves. The queue writes a few
# commands per job, so an fsync per write costs nothing that matters here. `maxmemory-policy noeviction`:
# BullMQ's keys must never be evicted (it warns at start otherwise).
#
# Files: $REDIS_STATE (default /var/tmp/chromogenic-redis): redis.conf, data/ (appendonlydir), redis.log,
# redis.pid, bind (the extra address of the last `start --bind`, kept for the next plain `start`).
# The server runs as the `redis` user, in the foreground of its own session.
#
# Usage: start.sh [start [--bind ADDRESS] | stop | kill | status | url | clean]
#   start   idempotent: a running server answering PING is left alone (a different --bind restarts it);
#           waits until it answers
#   stop    TERM (Redis writes the AOF and exits), KILL after 15 s
#   kill    KILL at once: a crash, for the durability tests
#   url     prints the URL on 127.0.0.1 (`url --bind` prints it on the bridge address)
#   clean   stop and drop the state folder
set -euo pipefail
STATE=${REDIS_STATE:-/var/tmp/chromogenic-redis}
PORT=${REDIS_PORT:-16379}
PASSWORD=${REDIS_PASSWORD:-redis-secret}
PIDFILE=$STATE/redis.pid

die() { echo "redis/start.sh: $*" >&2; exit 1; }
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

running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
answers() { [ "$(REDISCLI_AUTH=$PASSWORD redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ]; }

stop_server() { # stop_server SIGNAL
  running || { rm -f "$PIDFILE"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  kill "-$1" "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$PIDFILE"
}

case "$cmd" in
  stop) stop_server TERM; exit 0 ;;
  kill) stop_server KILL; exit 0 ;;
  clean) stop_server TERM; rm -rf "$STATE"; exit 0 ;;
  status)
    if running && answers; then echo "redis: running (pid $(cat "$PIDFILE"), port $PORT)"; else echo "redis: stopped"; fi
    exit 0 ;;
  url)
    host=127.0.0.1
    if [ "$url_on_bridge" = 1 ]; then
      [ -s "$STATE/bind" ] || die "no bridge address: start with --bind ADDRESS first"
      host=$(cat "$STATE/bind")
    fi
    echo "redis://:$PASSWORD@$host:$PORT"
    exit 0 ;;
  start) ;;
  *) die "$usage" ;;
esac

command -v redis-server >/dev/null || die "redis-server is missing (Debian: apt-get install -y redis-server)"
command -v redis-cli >/dev/null || die "redis-cli is missing (Debian: redis-tools)"
id redis >/dev/null 2>&1 || die "no redis user (it comes with Debian's redis-server package)"
mkdir -p "$STATE/data"
chmod 755 "$STATE" # the redis user reaches its data folder through it

# The extra address: the one asked for, else the one of the last start.
[ -z "$bind_extra" ] && [ -s "$STATE/bind" ] && bind_extra=$(cat "$STATE/bind")
if [ -n "$bind_extra" ]; then
  grep -q "inet $bind_extra/" <<<"$(ip -o addr show)" ||
    die "no interface has $bind_extra (bash test/infra/network/hosts.sh bridge makes the bridge)"
fi
if running && answers; then
  if [ "$(cat "$STATE/bind" 2>/dev/null)" = "$bind_extra" ]; then
    echo "redis already up on port $PORT${bind_extra:+ (and $bind_extra)}; state in $STATE"
    exit 0
  fi
  stop_server TERM
fi
if [ -n "$bind_extra" ]; then echo "$bind_extra" >"$STATE/bind"; else rm -f "$STATE/bind"; fi

cat >"$STATE/redis.conf" <<EOF
bind 127.0.0.1 $bind_extra
port $PORT
requirepass $PASSWORD
daemonize no
dir $STATE/data
logfile $STATE/redis.log
appendonly yes
appendfsync always
appenddirname appendonlydir
save ""
maxmemory-policy noeviction
EOF
chown -R redis:redis "$STATE/data"
touch "$STATE/redis.log" && chown redis:redis "$STATE/redis.log"
chmod 600 "$STATE/redis.conf"
chown redis:redis "$STATE/redis.conf"

setsid setpriv --reuid=redis --regid=redis --clear-groups redis-server "$STATE/redis.conf" </dev/null >>"$STATE/redis.log" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 100); do
  answers && break
  running || die "redis-server exited while starting; see $STATE/redis.log: $(tail -n 5 "$STATE/redis.log")"
  sleep 0.1
done
answers || die "redis-server did not answer on 127.0.0.1:$PORT within 10 s; see $STATE/redis.log"
echo "redis up: redis://:***@127.0.0.1:$PORT${bind_extra:+ and $bind_extra:$PORT} (AOF on); state in $STATE"
