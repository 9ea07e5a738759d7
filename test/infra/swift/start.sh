#!/bin/bash
# test/infra/swift/start.sh - a real OpenStack Swift (Debian's python3-swift, 2.30 "Zed") with the s3api
# middleware on loopback: the S3 server the providers/ec2 tests talk to. Nothing listens beyond 127.0.0.1.
#
#   127.0.0.1:8080  proxy: s3api + tempauth. S3 credentials (access key / secret):
#                     test:tester   / testing    account AUTH_test, admin of it
#                     test2:tester2 / testing2   account AUTH_test2, admin of it (permission tests)
#                     test:reader   / reading    account AUTH_test, no rights of its own
#                   region us-east-1, path-style addressing, SigV4 checked.
#   127.0.0.1:8081  (only with --keystone URL) a second proxy on the same storage with
#                   authtoken s3api s3token keystoneauth: EC2 credentials from that Keystone
#                   (`openstack ec2 credentials create`) sign S3 requests. Its service user is
#                   $SWIFT_KS_USER (default swift) / $SWIFT_KS_PASSWORD (default service-secret) in project
#                   "service", domain Default: the caller creates it in Keystone (`aio.sh start ec2` does, with
#                   ks_setup.py `svcuser:swift`) before the proxy is used.
#   127.0.0.1:6200/6201/6202  object / container / account servers; one replica, one device "d1".
#
# Files: $SWIFT_STATE (default /var/tmp/chromogenic-swift): etc/ (swift.conf, rings, server configs),
# node/d1 (the device, on a filesystem with user xattrs: a loop-mounted XFS file when the state folder's
# filesystem has none), run/*.pid, logs/*.log. Every server runs in the foreground of its own session
# (`workers = 0`, one process each), started by a small Python launcher because the Debian package ships
# the servers' modules but not their swift-*-server scripts.
#
# Usage: start.sh [start [--keystone URL] | stop | clean | status]
#   start   idempotent: servers already running are left alone; waits until the proxy answers
#   stop    TERM each server's session, KILL after 15 s
#   clean   stop, unmount the loop device if one was made, drop the state folder
set -euo pipefail
STATE=${SWIFT_STATE:-/var/tmp/chromogenic-swift}
ETC=$STATE/etc
RUN=$STATE/run
LOGS=$STATE/logs
NODE=$STATE/node
SWIFT_KS_USER=${SWIFT_KS_USER:-swift}
SWIFT_KS_PASSWORD=${SWIFT_KS_PASSWORD:-service-secret}
SERVERS=(object container account proxy)
# Debian's own interpreter: the one whose dist-packages hold python3-swift (a pyenv python3 on PATH does not).
PY=${SWIFT_PYTHON:-/usr/bin/python3}

die() { echo "swift/start.sh: $*" >&2; exit 1; }

cmd=${1:-start}
[ $# -gt 0 ] && shift
keystone=
while [ $# -gt 0 ]; do
  case "$1" in
    --keystone) [ $# -ge 2 ] || die "--keystone needs a URL, e.g. http://127.0.0.1:5000"; keystone=$2; shift 2 ;;
    *) die "unknown argument $1 (usage: start.sh [start [--keystone URL] | stop | clean | status])" ;;
  esac
done

running() { [ -s "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

stop_one() {
  local name=$1 pid
  [ -s "$RUN/$name.pid" ] || return 0
  pid=$(cat "$RUN/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$RUN/$name.pid"
}

stop_all() { for s in proxy-keystone "${SERVERS[@]}"; do stop_one "$s"; done; }

case "$cmd" in
  stop) stop_all; exit 0 ;;
  clean)
    stop_all
    if mountpoint -q "$NODE" 2>/dev/null; then umount "$NODE"; fi
    rm -rf "$STATE"
    exit 0 ;;
  status)
    for s in "${SERVERS[@]}" proxy-keystone; do
      if running "$s"; then echo "$s: running (pid $(cat "$RUN/$s.pid"))"; else echo "$s: stopped"; fi
    done
    exit 0 ;;
  start) ;;
  *) die "usage: start.sh [start [--keystone URL] | stop | clean | status]" ;;
esac

[ -x "$PY" ] || die "$PY is missing (Debian: python3)"
command -v curl >/dev/null || die "curl is missing"
"$PY" -c 'import swift.common.middleware.s3api.s3api' 2>/dev/null ||
  die "python3-swift is missing (Debian: apt-get install -y --no-install-recommends python3-swift)"
if [ -n "$keystone" ]; then
  "$PY" -c 'import keystonemiddleware.auth_token, keystoneclient.v3' 2>/dev/null ||
    die "--keystone needs python3-keystonemiddleware and python3-keystoneclient (Debian packages)"
fi
mkdir -p "$ETC" "$RUN" "$LOGS" "$NODE"

# --- the device: Swift keeps object metadata in user xattrs -------------------------------------------------
has_user_xattrs() {
  "$PY" - "$1" <<'EOF'
import os, sys
probe = os.path.join(sys.argv[1], ".xattr-probe")
open(probe, "w").close()
try:
    os.setxattr(probe, "user.chromogenic", b"1")
except OSError:
    sys.exit(1)
finally:
    os.unlink(probe)
EOF
}
if ! has_user_xattrs "$NODE"; then
  command -v mkfs.xfs >/dev/null || die "$NODE has no user xattrs and mkfs.xfs is missing (Debian: xfsprogs)"
  [ -s "$STATE/node.img" ] || { truncate -s 2G "$STATE/node.img" && mkfs.xfs -q "$STATE/node.img"; }
  mount -o loop "$STATE/node.img" "$NODE" || die "cannot loop-mount $STATE/node.img on $NODE (root needed)"
  has_user_xattrs "$NODE" || die "$NODE has no user xattrs even on XFS"
fi
mkdir -p "$NODE/d1"

# --- configuration ------------------------------------------------------------------------------------------
cat >"$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = chromogenic-test
swift_hash_path_prefix = chromogenic-test

[storage-policy:0]
name = gold
default = yes
EOF

storage_conf() { # storage_conf SERVER PORT
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
mount_check = false
devices = $NODE
swift_dir = $ETC
log_name = $1-server

[pipeline:main]
pipeline = $1-server

[app:$1-server]
use = egg:swift#$1
EOF
}
storage_conf object 6200 >"$ETC/object-server.conf"
storage_conf container 6201 >"$ETC/container-server.conf"
storage_conf account 6202 >"$ETC/account-server.conf"

proxy_conf() { # proxy_conf PORT AUTH-MIDDLEWARES [MIDDLEWARES-BEFORE-S3API]
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 0
swift_dir = $ETC
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk ${3:+$3 }s3api $2 copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
EOF
  # The rest are Swift's own middlewares with their defaults. `cache` is where tempauth keeps its tokens; S3
  # requests carry their own signature and need no memcached running.
  local m
  for m in catch_errors gatekeeper healthcheck proxy-logging:proxy_logging cache:memcache listing_formats bulk \
    copy slo dlo; do
    printf '\n[filter:%s]\nuse = egg:swift#%s\n' "${m%%:*}" "${m#*:}"
  done
}
{
  proxy_conf 8080 tempauth
  cat <<EOF

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_reader = reading
EOF
} >"$ETC/proxy-server.conf"

if [ -n "$keystone" ]; then
  ks=${keystone%/}
  ks=${ks%/v3}
  # How s3token and authtoken sign in to Keystone: as the Swift service user.
  service_auth="auth_url = $ks
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $SWIFT_KS_USER
password = $SWIFT_KS_PASSWORD"
  {
    # authtoken before s3api, as s3api's documentation has it: after it, authtoken finds no token on an S3
    # request (s3token passes none on) and marks the identity s3token established invalid: 403 for everyone.
    proxy_conf 8081 "s3token keystoneauth" authtoken
    cat <<EOF

[filter:s3token]
use = egg:swift#s3token
auth_uri = $ks/v3
# Keystone answers /v3/s3tokens for admins and service users only (its ec2tokens/s3tokens security fix):
# s3token asks with the service user's token.
$service_auth

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $ks
$service_auth
delay_auth_decision = True

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member
EOF
  } >"$ETC/proxy-keystone.conf"
fi

# --- rings: one replica on the one device, made once --------------------------------------------------------
ring() { # ring NAME PORT
  [ -s "$ETC/$1.ring.gz" ] && return 0
  local b="$ETC/$1.builder"
  rm -f "$b"
  builder() { "$PY" -c 'import sys; from swift.cli.ringbuilder import main; main(["swift-ring-builder"] + sys.argv[1:])' "$@"; }
  builder "$b" create 8 1 1 >/dev/null || die "ring builder: create $1 failed"
  builder "$b" add "r1z1-127.0.0.1:$2/d1" 100 >/dev/null || die "ring builder: add to $1 failed"
  # rebalance exits 1 for "warnings" (a ring of one device is always lopsided); the ring file is what counts.
  builder "$b" rebalance >/dev/null || true
  [ -s "$ETC/$1.ring.gz" ] || die "ring builder: no $1.ring.gz made"
}
ring object 6200
ring container 6201
ring account 6202

# --- start -----------------------------------------------------------------------------------------------------
# The launcher points Swift at $ETC/swift.conf before its policies are read, then runs the server in the
# foreground with its log on stderr (-v), which lands in logs/NAME.log.
cat >"$ETC/run-server.py" <<'EOF'
import sys
from swift.common import utils

utils.set_swift_dir(sys.argv[1])
from swift.common import constraints, storage_policy  # noqa: E402  (read after the swift dir is set)

constraints.reload_constraints()
storage_policy.reload_storage_policies()
from swift.common.wsgi import run_wsgi  # noqa: E402

sys.exit(run_wsgi(sys.argv[2], sys.argv[3], verbose=True))
EOF

start_one() { # start_one NAME CONF APP-SECTION
  running "$1" && return 0
  setsid "$PY" "$ETC/run-server.py" "$ETC" "$ETC/$2" "$3" >>"$LOGS/$1.log" 2>&1 </dev/null &
  echo $! >"$RUN/$1.pid"
}
for s in object container account; do start_one "$s" "$s-server.conf" "$s-server"; done
start_one proxy proxy-server.conf proxy-server
[ -n "$keystone" ] && start_one proxy-keystone proxy-keystone.conf proxy-server

wait_up() { # wait_up NAME URL: until URL answers with any HTTP status, while the server lives
  for _ in $(seq 1 120); do
    curl -s -o /dev/null --max-time 2 "$2" && return 0
    running "$1" || die "$1 exited while starting; see $LOGS/$1.log: $(tail -n 5 "$LOGS/$1.log" 2>/dev/null)"
    sleep 0.5
  done
  die "$1 did not answer at $2 within 60 s; see $LOGS/$1.log"
}
wait_up object http://127.0.0.1:6200/
wait_up container http://127.0.0.1:6201/
wait_up account http://127.0.0.1:6202/
wait_up proxy http://127.0.0.1:8080/healthcheck
[ "$(curl -s --max-time 5 http://127.0.0.1:8080/healthcheck)" = OK ] || die "the proxy's healthcheck is not OK"
# An unsigned S3 request must be refused by s3api (403 AccessDenied): the middleware is in the pipeline.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:8080/chromogenic-probe -H 'Authorization: AWS test:tester:bad')
[ "$code" = 403 ] || die "s3api did not answer an S3 request on :8080 (HTTP $code); see $LOGS/proxy.log"
if [ -n "$keystone" ]; then
  wait_up proxy-keystone http://127.0.0.1:8081/healthcheck
fi
echo "swift up: S3 at http://127.0.0.1:8080 (test:tester / testing)${keystone:+, Keystone S3 at http://127.0.0.1:8081}; state in $STATE"
