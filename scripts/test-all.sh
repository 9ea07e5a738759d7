#!/usr/bin/env bash
# The whole test suite from a fresh clone, as root: the Debian packages the tests check against, the
# project's setup, the real OpenStack services the provider tests need (Keystone, two Glance regions,
# Nova on qemu TCG; ≈3.5 min to start on a fresh machine, they fail rather than skip without it), then
# `npm test`. The services are stopped however the tests end.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
bash scripts/setup.sh --test
trap 'bash test/infra/redis/start.sh stop >/dev/null 2>&1 || true; bash test/infra/postgres/start.sh stop >/dev/null 2>&1 || true; bash test/infra/network/hosts.sh down >/dev/null 2>&1 || true; bash test/infra/swift/start.sh stop >/dev/null 2>&1 || true; bash test/infra/network/start.sh stop >/dev/null 2>&1 || true; bash test/infra/openstack/aio.sh stop >/dev/null 2>&1 || true' EXIT
# From a known state: `clean` drops what earlier runs left (databases, images) but keeps the packages.
bash test/infra/openstack/aio.sh clean >/dev/null
bash test/infra/openstack/aio.sh start all
# In front of the stack: TLS fronts with a private CA and a forward proxy, for the network tests.
bash test/infra/network/start.sh
# Swift with s3api on loopback: the S3 server of the providers/ec2 tests (≈15 s to start); its second proxy
# takes EC2 credentials from the stack's Keystone.
bash test/infra/swift/start.sh start --keystone http://127.0.0.1:5000
# OpenStack's ec2-api on the stack, with that Swift as its S3 (< 1 min); `aio.sh stop` in the trap ends it.
bash test/infra/openstack/aio.sh start ec2
# The service's distributed mode: a bridge for the two-"host" tests (network namespaces made by each test), and
# Redis (BullMQ's queue) and PostgreSQL (the shared job store) on loopback and on the bridge's address only.
bridge=$(bash test/infra/network/hosts.sh bridge)
bash test/infra/redis/start.sh start --bind "$bridge"
bash test/infra/postgres/start.sh start --bind "$bridge"
npm test
