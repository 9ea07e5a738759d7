#!/bin/bash
# test/infra/network/hosts.sh - "hosts" for the service's distributed tests: network namespaces on one Linux
# bridge, so that worker processes started with `ip netns exec NAME …` share nothing with the machine but the
# bridge. Inside a namespace there is only its own loopback and its bridge address: the machine's 127.0.0.1
# services are not reachable, and there is no default route; what a "host" reaches is what listens on the
# bridge address (Redis and PostgreSQL, started with `--bind $BRIDGE_ADDRESS`).
#
#   bridge  $BRIDGE_NAME (default chromobr0) with $BRIDGE_ADDRESS/24 (default 10.219.19.1); the hosts get
#           .10 to .250 of that /24, the first free one.
#
# Usage: hosts.sh bridge               make the bridge (idempotent); prints its address
#        hosts.sh add NAME             a namespace NAME on the bridge; prints its address
#        hosts.sh del NAME             remove it (and its veth pair); nothing when it does not exist
#        hosts.sh status               the bridge and the namespaces on it
#        hosts.sh down                 remove every namespace on the bridge, then the bridge
# Root only (ip netns, ip link). test/helpers/netns-hosts.ts uses `add`/`del` for each test.
set -euo pipefail
BRIDGE=${BRIDGE_NAME:-chromobr0}
ADDRESS=${BRIDGE_ADDRESS:-10.219.19.1}
PREFIX=${ADDRESS%.*}
LOCK=/run/chromogenic-hosts.lock

die() { echo "network/hosts.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "network namespaces need root"
command -v ip >/dev/null || die "ip is missing (Debian: iproute2)"

bridge_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge || die "cannot make bridge $BRIDGE"
  fi
  # Output captured first: `grep -q` ending a pipe early would fail it under pipefail.
  local have
  have=$(ip -o addr show dev "$BRIDGE")
  grep -q "inet $ADDRESS/" <<<"$have" || ip addr add "$ADDRESS/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# The veth pair of a namespace, named from a hash of it (interface names have 15 bytes at most).
veth_of() { echo "vh$(printf %s "$1" | md5sum | cut -c1-10)"; }

# Namespaces whose veth is on our bridge.
ours() {
  local ns
  for ns in $(ip netns list | awk '{print $1}'); do
    grep -q "master $BRIDGE" <<<"$(ip link show "$(veth_of "$ns")" 2>/dev/null)" && echo "$ns"
  done
  return 0
}

used_addresses() {
  local ns
  for ns in $(ours); do ip netns exec "$ns" ip -o -4 addr show 2>/dev/null | awk '{print $4}' | cut -d/ -f1; done
}

cmd=${1:-status}
case "$cmd" in
  bridge)
    bridge_up
    echo "$ADDRESS" ;;
  add)
    [ $# -eq 2 ] || die "usage: hosts.sh add NAME"
    name=$2
    [[ "$name" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "bad namespace name $name"
    bridge_up
    exec 9>"$LOCK"
    flock 9
    grep -qx "$name" <<<"$(ip netns list | awk '{print $1}')" && die "namespace $name exists"
    used=$(used_addresses)
    addr=
    for i in $(seq 10 250); do
      grep -qx "$PREFIX.$i" <<<"$used" || { addr=$PREFIX.$i; break; }
    done
    [ -n "$addr" ] || die "no free address left on $BRIDGE"
    veth=$(veth_of "$name")
    ip netns add "$name"
    ip link add "$veth" type veth peer name eth0 netns "$name"
    ip link set "$veth" master "$BRIDGE"
    ip link set "$veth" up
    ip netns exec "$name" ip link set lo up
    ip netns exec "$name" ip addr add "$addr/24" dev eth0
    ip netns exec "$name" ip link set eth0 up
    echo "$addr" ;;
  del)
    [ $# -eq 2 ] || die "usage: hosts.sh del NAME"
    ip link del "$(veth_of "$2")" 2>/dev/null || true
    ip netns del "$2" 2>/dev/null || true ;;
  status)
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
      echo "bridge $BRIDGE: $(ip -o -4 addr show dev "$BRIDGE" | awk '{print $4}')"
      for ns in $(ours); do echo "host $ns: $(ip netns exec "$ns" ip -o -4 addr show dev eth0 | awk '{print $4}')"; done
    else
      echo "bridge $BRIDGE: absent"
    fi ;;
  down)
    for ns in $(ours); do "$0" del "$ns"; done
    ip link del "$BRIDGE" 2>/dev/null || true ;;
  *) die "usage: hosts.sh [bridge | add NAME | del NAME | status | down]" ;;
esac
