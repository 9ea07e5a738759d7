#!/bin/bash
# test/infra/network/start.sh - the network the "real networks" tests need, in front of the running test stack
# (test/infra/openstack/aio.sh start): a private CA, nginx terminating TLS for Keystone and both Glance regions,
# and tinyproxy as the forward proxy. Everything listens on loopback; nothing here needs the stack's internals
# beyond its ports. Idempotent: a second run restarts nginx and tinyproxy with the same files.
#
#   127.0.0.1:15000  https Keystone   (also on 127.0.0.2, whose name the certificate does not carry)
#   127.0.0.1:15001  https Keystone that requires a client certificate signed by the CA
#   127.0.0.1:19292  https Glance RegionOne      127.0.0.1:19293  https Glance RegionTwo
#   127.0.0.1:25000  https Keystone, 29292/29293 https Glance: the same, but only for connections from
#                    127.0.0.3, the address tinyproxy connects from: the direct path is refused (HTTP 403)
#   127.0.0.1:18888  tinyproxy (CONNECT to the 25000/29292/29293 fronts only); its log: $NET/tinyproxy.log
#
# Keystone's catalog names its services by http://127.0.0.1:PORT; nginx rewrites those URLs in Keystone's
# replies (sub_filter) to the https front of the same path, so every request of a client stays on TLS.
# Files: $NET (default /var/tmp/chromogenic-network): ca.pem, client.pem, client.key, other-ca.pem, logs.
#
# Usage: start.sh [start|stop|status]
set -euo pipefail
NET=${NET:-/var/tmp/chromogenic-network}
cmd=${1:-start}
mkdir -p "$NET"

stop() {
  for p in nginx tinyproxy; do
    if [ -s "$NET/$p.pid" ] && kill -0 "$(cat "$NET/$p.pid")" 2>/dev/null; then kill "$(cat "$NET/$p.pid")"; fi
    rm -f "$NET/$p.pid"
  done
}

case "$cmd" in
  stop) stop; exit 0 ;;
  status)
    for p in nginx tinyproxy; do
      if [ -s "$NET/$p.pid" ] && kill -0 "$(cat "$NET/$p.pid")" 2>/dev/null; then echo "$p: running"; else echo "$p: stopped"; fi
    done
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

for tool in openssl nginx tinyproxy; do
  command -v "$tool" >/dev/null || { echo "start.sh: $tool is missing (Debian: openssl nginx-light tinyproxy)" >&2; exit 1; }
done

# --- the CA and certificates (made once) -------------------------------------------------------------------
if [ ! -s "$NET/server.pem" ]; then
  cd "$NET"
  ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${ec[@]}" -days 3650 -subj /CN=chromogenic-test-ca -keyout ca.key -out ca.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -x509 "${ec[@]}" -days 3650 -subj /CN=unrelated-ca -keyout other-ca.key -out other-ca.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
  printf 'extendedKeyUsage=clientAuth\n' >client.ext
  for who in server client; do
    openssl req -new "${ec[@]}" -subj "/CN=chromogenic-test-$who" -keyout "$who.key" -out "$who.csr" 2>/dev/null
    openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile "$who.ext" -out "$who.pem" 2>/dev/null
  done
  chmod 644 ./*.pem ./*.key
  cd - >/dev/null
fi

# --- nginx ---------------------------------------------------------------------------------------------------
# One TLS front per service; `rewrite` maps the catalog's http URLs to the fronts of the same family.
front() { # front LISTEN... -- UPSTREAM_PORT FAMILY EXTRA
  local listens=() up fam extra
  while [ "$1" != -- ]; do listens+=("$1"); shift; done
  shift; up=$1 fam=$2 extra=${3:-}
  echo "  server {"
  for l in "${listens[@]}"; do echo "    listen $l ssl;"; done
  cat <<EOF
    ssl_certificate $NET/server.pem;
    ssl_certificate_key $NET/server.key;
    ssl_client_certificate $NET/ca.pem;
    $extra
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    proxy_read_timeout 600s;
    proxy_send_timeout 600s;
    location / {
      proxy_pass http://127.0.0.1:$up;
      proxy_set_header Host 127.0.0.1:$up;
      proxy_set_header Accept-Encoding "";
      sub_filter_types application/json;
      sub_filter_once off;
      sub_filter 'http://127.0.0.1:5000' 'https://127.0.0.1:${fam}5000';
      sub_filter 'http://127.0.0.1:9292' 'https://127.0.0.1:${fam}9292';
      sub_filter 'http://127.0.0.1:9293' 'https://127.0.0.1:${fam}9293';
      proxy_redirect http://127.0.0.1:$up/ /;
    }
  }
EOF
}
proxied="allow 127.0.0.3; deny all;"
{
  cat <<EOF
pid $NET/nginx.pid;
error_log $NET/nginx-error.log;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log $NET/nginx-access.log;
  client_body_temp_path $NET/nginx-body;
  proxy_temp_path $NET/nginx-proxy;
EOF
  front 127.0.0.1:15000 127.0.0.2:15000 -- 5000 1
  front 127.0.0.1:15001 -- 5000 1 "ssl_verify_client on;"
  front 127.0.0.1:19292 -- 9292 1
  front 127.0.0.1:19293 -- 9293 1
  front 127.0.0.1:25000 -- 5000 2 "$proxied"
  front 127.0.0.1:29292 -- 9292 2 "$proxied"
  front 127.0.0.1:29293 -- 9293 2 "$proxied"
  echo "}"
} >"$NET/nginx.conf"

# --- tinyproxy -------------------------------------------------------------------------------------------------
cat >"$NET/tinyproxy.conf" <<EOF
Port 18888
Listen 127.0.0.1
Bind 127.0.0.3
Timeout 600
LogFile "$NET/tinyproxy.log"
LogLevel Connect
PidFile "$NET/tinyproxy.pid"
MaxClients 50
Allow 127.0.0.1
ConnectPort 25000
ConnectPort 29292
ConnectPort 29293
EOF

stop
nginx -t -c "$NET/nginx.conf" -g 'daemon on;' >/dev/null 2>&1 || { nginx -t -c "$NET/nginx.conf"; exit 1; }
nginx -c "$NET/nginx.conf" -g 'daemon on;'
: >"$NET/tinyproxy.log"
[ "$(id -u)" = 0 ] && chown nobody "$NET/tinyproxy.log" 2>/dev/null || true
tinyproxy -c "$NET/tinyproxy.conf"
for _ in $(seq 50); do
  [ -s "$NET/tinyproxy.pid" ] && [ -s "$NET/nginx.pid" ] && break
  sleep 0.1
done
curl -fsS --cacert "$NET/ca.pem" https://127.0.0.1:15000/v3 >/dev/null || { echo "start.sh: Keystone does not answer through TLS (is the stack up?)" >&2; exit 1; }
curl -fsS --cacert "$NET/ca.pem" -x http://127.0.0.1:18888 https://127.0.0.1:25000/v3 >/dev/null || { echo "start.sh: Keystone does not answer through tinyproxy" >&2; exit 1; }
echo "network fronts up: TLS 15000/15001/19292/19293, proxy 18888 → 25000/29292/29293 (files in $NET)"
