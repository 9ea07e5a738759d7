#!/bin/bash
# test/infra/openstack/aio.sh - chromogenic's copy of the shared AIO recipe
# (see README.md here). Stand up a small but REAL OpenStack (Zed, from Debian
# bookworm packages) on one machine WITHOUT systemd, for integration tests of an
# image-management tool (Glance v2 upload/download, Nova server snapshot).
#
# Usage:  aio.sh start [stage1|all|cinder|ec2]  stage1 (default) = keystone + both glances, what the
#                                      Glance/Keystone tests need; all = stage1 + nova + stage3;
#                                      cinder = stage3 alone (on a running `all`); ec2 = the ec2 stage
#         aio.sh stop | clean | status  (clean = stop + drop all state, packages stay)
#         aio.sh restart glance         rewrite both Glance configs and restart only the two glance-api
#                                       daemons (a few seconds; Keystone, Nova and the data stay)
#         aio.sh CMD...                 the individual steps below, as in the reference recipe
#   all          = install1 db config1 start1 verify1 install2 mq config2 start2 image verify2
#                  install3 config3 start3 volume_server
#   stage1       = install1 db config1 start1 verify1   keystone + 2 glance, no nova
#   stage2       = install2 mq config2 start2 image verify2
#   stage3       = install3 config3 start3 volume_server   Cinder (fake backend) + a volume-backed server
#                  record "vol-backed" (admin project) on a fake compute host; `start cinder` = stage3
#   ec2          = install_ec2 config_ec2 start_ec2: OpenStack's ec2-api on a running `all` (ec2-api.sh)
#   verify_fake  = extra: 2nd nova-compute with nova's FakeDriver, boot+snapshot there (it leaves that
#                  host enabled while it runs: never while tests run; volume_server is the careful one)
#   stop | stop2 (nova side only) | status | clean (stop + drop all dbs/stores/logs)
#
# Stage 1: MariaDB (:3306), Keystone (uwsgi :5000), glance-api "RegionOne" (:9292)
#          and a second, independent glance-api (own db+store) as "RegionTwo" (:9293);
#          projects proj-a/proj-b with users user-a/user-b (role member).
# Stage 2: RabbitMQ (:5672), neutron-server (:9696, API only, no agents),
#          placement (uwsgi :8778), nova-api (:8774), nova-conductor, nova-scheduler,
#          nova-compute (libvirt + qemu TCG; kvm if it really works; or fake)
#          + libvirtd/virtlogd. A tiny bootable image "tinyos" is built locally.
# Everything listens on 127.0.0.1 only. Logs: $OSP/logs  PIDs: $OSP/run/*.pid
# openrc: $OSP/admin-openrc $OSP/admin-region2-openrc $OSP/user-{a,b}-openrc
# Knobs (env): OSP=/var/tmp/openstack-aio  NOVA_VIRT=auto|kvm|qemu|fake  ADMIN_PASS SERVICE_PASS DB_PASS
#   KEYSTONE_TOKEN_EXPIRATION (seconds, default 90): short on purpose, so that the client's
#   token renewal is exercised by the tests instead of hidden by a 4-hour token.
#   GLANCE_WEB_DOWNLOAD_PORT (default 9280): the one port on 127.0.0.1 RegionOne's web-download may
#   fetch from (the tests serve an image there); see write_glance_conf for the import settings.
set -u -o pipefail

OSP=${OSP:-/var/tmp/openstack-aio}
LOG=$OSP/logs
RUN=$OSP/run
ADMIN_PASS=${ADMIN_PASS:-admin-secret}
SERVICE_PASS=${SERVICE_PASS:-service-secret}
DB_PASS=${DB_PASS:-db-secret}
# qemu (TCG): on the CI machine kind /dev/kvm exists (kvm_pvm) but cannot boot a guest (see README.md)
NOVA_VIRT=${NOVA_VIRT:-qemu}
KEYSTONE_TOKEN_EXPIRATION=${KEYSTONE_TOKEN_EXPIRATION:-90}
GLANCE_WEB_DOWNLOAD_PORT=${GLANCE_WEB_DOWNLOAD_PORT:-9280}
KS=http://127.0.0.1:5000
DBH=127.0.0.1
mkdir -p "$LOG" "$RUN"

export DEBIAN_FRONTEND=noninteractive
APT="apt-get -o DPkg::Lock::Timeout=1200 install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"

log()  { echo "[$(date +%T)] $*" | tee -a "$LOG/setup.log" >&2; }
die()  { log "FATAL: $*"; exit 1; }
now()  { date +%s.%N; }
tmark() { # tmark NAME START_EPOCH  -> append a timing line
  printf '%-40s %7.1f s\n' "$1" "$(echo "$(now) - $2" | bc)" | tee -a "$LOG/timings.txt" >&2
}

# start_bg NAME CMD...   start a daemon in its own session, pid -> $RUN/NAME.pid
start_bg() {
  local name=$1; shift
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    log "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0
  fi
  setsid "$@" >>"$LOG/$name.out" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
  log "started $name pid $!"
}
# stop_bg NAME : TERM the process group we started (setsid => pgid == pid)
stop_bg() {
  local name=$1 pid
  [ -f "$RUN/$name.pid" ] || return 0
  pid=$(cat "$RUN/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
    log "stopped $name ($pid)"
  fi
  rm -f "$RUN/$name.pid"
}
wait_http() { # wait_http URL [TIMEOUT]: until URL answers with any HTTP status
  local url=$1 t=${2:-60}
  for _ in $(seq 1 $((t*2))); do
    curl -s -o /dev/null --max-time 2 "$url" && return 0; sleep 0.5
  done
  die "timeout waiting for $url"
}
write_openrc() { # FILE USER PASS PROJECT REGION
  cat > "$1" <<EOF
export OS_AUTH_URL=$KS/v3
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=$2
export OS_PASSWORD=$3
export OS_PROJECT_NAME=$4
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=$5
export OS_INTERFACE=public
EOF
}
admin_env() { . "$OSP/admin-openrc"; }
ensure_policy_rc() { # forbid maintainer scripts from starting daemons
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    touch "$OSP/.policy-rc-created-by-us"
  fi
}
ks_auth_section() { # ks_auth_section USERNAME -> keystone_authtoken-like block
  cat <<EOF
www_authenticate_uri = $KS
auth_url = $KS
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $SERVICE_PASS
region_name = RegionOne
EOF
}

# ---------------------------------------------------------------- embedded helpers
write_helpers() {
cat > "$OSP/ks_setup.py" <<'KS_SETUP_EOF'
#!/usr/bin/python3
"""Idempotent keystone catalog/user setup in ONE process (the openstack CLI
costs ~2.5 s per call on this 2-core box).  Reads OS_* env of the admin.
usage: ks_setup.py SERVICE_PASS spec...
  spec: region:NAME | svcuser:NAME | endpoint:TYPE:NAME:REGION:URL |
        tenant:PROJECT:USER:PASS   (member role) | flavor:... (not here)
"""
import os, sys
import openstack

conn = openstack.connect(auth_type="password",
    auth_url=os.environ["OS_AUTH_URL"], username=os.environ["OS_USERNAME"],
    password=os.environ["OS_PASSWORD"], project_name=os.environ["OS_PROJECT_NAME"],
    user_domain_name="Default", project_domain_name="Default",
    region_name=os.environ.get("OS_REGION_NAME", "RegionOne"))
idn = conn.identity
svc_pass = sys.argv[1]
dom = idn.find_domain("default") or idn.find_domain("Default")

def project(name):
    return idn.find_project(name, domain_id=dom.id) or idn.create_project(name=name, domain_id=dom.id)

def user(name, pw):
    return idn.find_user(name, domain_id=dom.id) or idn.create_user(name=name, password=pw, domain_id=dom.id)

def role(name):
    return idn.find_role(name) or idn.create_role(name=name)

def grant(proj, usr, rol):
    if not idn.validate_user_has_project_role(proj, usr, rol):
        idn.assign_project_role_to_user(proj, usr, rol)

service = project("service")
admin_role = role("admin")
member_role = role("member")
for spec in sys.argv[2:]:
    kind, _, rest = spec.partition(":")
    if kind == "region":
        if not idn.find_region(rest):
            idn.create_region(id=rest)
    elif kind == "svcuser":
        grant(service, user(rest, svc_pass), admin_role)
    elif kind == "endpoint":
        typ, name, region, url = rest.split(":", 3)
        svc = next((s for s in idn.services() if s.type == typ), None) \
            or idn.create_service(name=name, type=typ)
        have = {e.interface for e in idn.endpoints(service_id=svc.id, region_id=region)}
        for iface in ("public", "internal", "admin"):
            if iface not in have:
                idn.create_endpoint(service_id=svc.id, interface=iface, url=url, region_id=region)
    elif kind == "tenant":
        p, u, pw = rest.split(":")
        grant(project(p), user(u, pw), member_role)
    else:
        sys.exit("bad spec " + spec)
    print("ok", spec)
KS_SETUP_EOF
cat > "$OSP/mkimage.sh" <<'MKIMAGE_EOF'
#!/bin/bash
# mkimage.sh OUTDIR : build a tiny bootable x86 BIOS disk (MBR + syslinux + FAT,
# Debian kernel + busybox initramfs), no root mounts/loop devices needed.
set -euo pipefail
OUT=${1:-/var/tmp/openstack-aio/img}
mkdir -p "$OUT"; cd "$OUT"
if ! ls boot/vmlinuz-* >/dev/null 2>&1; then
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
  apt-get download "$pkg" >/dev/null 2>&1
  dpkg-deb --fsys-tarfile ${pkg}_*.deb | tar -x --wildcards './boot/vmlinuz-*'
  rm -f ${pkg}_*.deb
fi
K=$(ls boot/vmlinuz-* | head -1)
rm -rf initrd; mkdir -p initrd/{bin,proc,sys,dev,tmp}
cp /bin/busybox initrd/bin/busybox
cat > initrd/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "TINYOS-BOOTED-OK $(uname -r)"
echo "TINYOS-BOOTED-OK" > /dev/ttyS0 2>/dev/null
while true; do sleep 3600; done
INIT
chmod +x initrd/init
(cd initrd && find . | cpio -o -H newc 2>/dev/null | gzip -9) > initrd.gz
cat > syslinux.cfg <<'CFG'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=tty0 console=ttyS0,115200 panic=10 quiet loglevel=3
CFG
rm -f part.img disk.raw
mkfs.fat -C -n TINYOS part.img 20480 >/dev/null     # 20 MiB FAT
syslinux --install part.img
mcopy -i part.img "$K" ::/vmlinuz
mcopy -i part.img initrd.gz ::/initrd.gz
mcopy -i part.img syslinux.cfg ::/syslinux.cfg
truncate -s 1M disk.raw; cat part.img >> disk.raw
printf 'label: dos\nstart=2048, type=6, bootable\n' | sfdisk -q disk.raw
dd if=/usr/lib/syslinux/mbr/mbr.bin of=disk.raw bs=440 count=1 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 -c disk.raw tinyos.qcow2
rm -f part.img
ls -la tinyos.qcow2 disk.raw
MKIMAGE_EOF
chmod +x "$OSP/ks_setup.py" "$OSP/mkimage.sh"
}
write_helpers
# The ec2 stage: OpenStack's ec2-api (functions only)
. "$(dirname "${BASH_SOURCE[0]}")/ec2-api.sh"

# ======================================================================
# STAGE 1: mariadb + keystone + glance
# ======================================================================
install1() {
  local t0; t0=$(now)
  ensure_policy_rc
  # openstack-pkg-tools debconf questions all default to false (do not touch db,
  # do not register endpoints); pin them anyway so a changed default can't bite.
  debconf-set-selections <<'EOF'
keystone keystone/configure_db boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
glance-common glance/configure_db boolean false
glance-common glance/configure_rabbit boolean false
glance-common glance/configure_ksat boolean false
glance-api glance/configure_api-endpoint boolean false
EOF
  apt-get -o DPkg::Lock::Timeout=1200 update -qq >>"$LOG/apt-update.log" 2>&1 || die "apt-get update"
  $APT mariadb-server python3-pymysql keystone glance-api python3-openstackclient \
       crudini curl bc iproute2 qemu-utils >>"$LOG/apt-stage1.log" 2>&1 \
     || die "apt stage 1 (see $LOG/apt-stage1.log)"
  tmark "install1 (apt mariadb+keystone+glance)" "$t0"
}

db() { # start mariadb (no systemd) and create all databases/users (idempotent)
  local t0; t0=$(now)
  mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
  if ! mysqladmin ping >/dev/null 2>&1; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >>"$LOG/mariadb-install.log" 2>&1
    start_bg mariadb /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
        --innodb-buffer-pool-size=64M --max-connections=500 --skip-name-resolve
    for _ in $(seq 1 60); do mysqladmin ping >/dev/null 2>&1 && break; sleep 0.5; done
    mysqladmin ping >/dev/null 2>&1 || die "mariadb did not start"
  fi
  for d in keystone:keystone glance1:glance glance2:glance placement:placement \
           nova_api:nova nova:nova nova_cell0:nova neutron:neutron; do
    mysql -uroot -e "CREATE DATABASE IF NOT EXISTS ${d%%:*};
      CREATE USER IF NOT EXISTS '${d##*:}'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
      CREATE USER IF NOT EXISTS '${d##*:}'@'localhost' IDENTIFIED BY '$DB_PASS';
      GRANT ALL ON ${d%%:*}.* TO '${d##*:}'@'127.0.0.1';
      GRANT ALL ON ${d%%:*}.* TO '${d##*:}'@'localhost';" || die "mysql create ${d}"
  done
  tmark "db (mariadb up + databases)" "$t0"
}

config_keystone() {
  local c=/etc/keystone/keystone.conf
  [ -f $c.dist ] || cp $c $c.dist
  cat > $c <<EOF
[DEFAULT]
log_dir = $LOG
log_file = keystone.log
[database]
connection = mysql+pymysql://keystone:$DB_PASS@$DBH/keystone
[token]
provider = fernet
expiration = $KEYSTONE_TOKEN_EXPIRATION
[fernet_tokens]
key_repository = /etc/keystone/fernet-keys/
[credential]
key_repository = /etc/keystone/credential-keys/
# Not cached: the credential manager pops the encrypted blob off the record it reads from the cache, and the
# in-memory backend hands out the cached object itself, so the second read of an EC2 credential (ec2tokens,
# s3tokens, a listing) fails with KeyError 'encrypted_blob'.
caching = false
[identity]
# bcrypt cost 4 instead of 12: every password auth is ~0.3 s faster (CI only!)
password_hash_rounds = 4
[cache]
# in-process cache: keystone requests drop from ~300 ms to ~10 ms on this box.
# Only safe with ONE keystone process (see uwsgi ini) - no cross-process invalidation.
enabled = true
backend = dogpile.cache.memory
[oslo_policy]
policy_dirs = /etc/keystone/policy.d
EOF
  # Our own small uwsgi ini (Debian's has 8 procs x 32 threads + apparmor plugin).
  # NB: with an sqlite backend keystone gave "database is locked" 500s even
  # with 1 process / 1 thread -> use MariaDB.
  cat > $OSP/keystone-uwsgi.ini <<EOF
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:5000
wsgi-file = /usr/bin/keystone-wsgi-public
master = true
processes = 1
threads = 4
lazy-apps = true
enable-threads = true
die-on-term = true
buffer-size = 65535
# http-socket does not do keep-alive: without this header clients reuse the
# connection and get 'Connection reset by peer' / 'Remote end closed connection'
add-header = Connection: close
chdir = /var/lib/keystone
EOF
  keystone-manage db_sync >>"$LOG/keystone-manage.log" 2>&1 || die "keystone db_sync"
  if [ ! -f /etc/keystone/fernet-keys/0 ]; then
    keystone-manage fernet_setup --keystone-user root --keystone-group root >>"$LOG/keystone-manage.log" 2>&1
    keystone-manage credential_setup --keystone-user root --keystone-group root >>"$LOG/keystone-manage.log" 2>&1
  fi
  # bootstrap is idempotent
  keystone-manage bootstrap --bootstrap-password "$ADMIN_PASS" \
      --bootstrap-username admin --bootstrap-project-name admin \
      --bootstrap-role-name admin --bootstrap-service-name keystone \
      --bootstrap-region-id RegionOne \
      --bootstrap-admin-url $KS/v3/ --bootstrap-public-url $KS/v3/ \
      --bootstrap-internal-url $KS/v3/ >>"$LOG/keystone-manage.log" 2>&1 || die "keystone bootstrap"
  write_openrc "$OSP/admin-openrc" admin "$ADMIN_PASS" admin RegionOne
  write_openrc "$OSP/admin-region2-openrc" admin "$ADMIN_PASS" admin RegionTwo
}

# glance instance N: 1 -> :9292 (RegionOne), 2 -> :9293 (RegionTwo); own db + store
config_glance() {
  write_glance_conf "$1"
  glance-manage --config-file /etc/glance/glance-api-$1.conf db_sync >>"$LOG/glance-manage-$1.log" 2>&1 \
    || die "glance-$1 db_sync"
}

# Interoperable import, per region (Zed option names, glance/common/config.py and
# glance/async_/flows/_internal_plugins/__init__.py):
# - RegionOne offers glance-direct, web-download and copy-image (Zed's default list, spelled out) but NOT
#   glance-download, so the client's "not advertised" error is tested against a real Glance.
# - RegionTwo also offers glance-download (in Glance since Zed, off by default): it pulls an image from
#   RegionOne's Glance with the caller's token, which is how images are copied between regions server-side.
# - [import_filtering_opts] is as narrow as the tests allow. The defaults (http/https on ports 80/443, no
#   loopback or link-local: Debian's fix for CVE-2026-71196..71198) would refuse every URL here. Here an
#   allowed_hosts list admits only 127.0.0.1, and allowed_ports only the port each region needs: RegionOne
#   the test HTTP server's ($GLANCE_WEB_DOWNLOAD_PORT), RegionTwo RegionOne's Glance (9292). The same filter
#   guards glance-download's fetches from the other Glance.
write_glance_conf() {
  local n=$1 port=$((9291 + $1)) c=/etc/glance/glance-api-$1.conf d=/var/lib/glance/g$1 methods ports
  mkdir -p $d/images $d/staging $d/lock $d/cache
  if [ "$n" = 1 ]; then
    methods="['glance-direct', 'web-download', 'copy-image']"; ports="$GLANCE_WEB_DOWNLOAD_PORT"
  else
    methods="['glance-direct', 'web-download', 'copy-image', 'glance-download']"; ports=9292
  fi
  cat > $c <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
workers = 1
log_file = $LOG/glance-api-$n.log
node_staging_uri = file://$d/staging
image_cache_dir = $d/cache
enabled_import_methods = $methods
[import_filtering_opts]
allowed_schemes = [http]
allowed_hosts = [127.0.0.1]
allowed_ports = [$ports]
[database]
connection = mysql+pymysql://glance:$DB_PASS@$DBH/glance$n
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = $d/images/
[keystone_authtoken]
$(ks_auth_section glance)
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $d/lock
EOF
}

# Only the two glance-api daemons: new config, same databases and stores. Others' running tests see
# Glance refuse connections for a few seconds.
restart_glance() {
  local t0 n; t0=$(now)
  for n in 1 2; do write_glance_conf $n; stop_bg glance-api-$n; done
  for n in 1 2; do start_bg glance-api-$n glance-api --config-file /etc/glance/glance-api-$n.conf; done
  wait_http http://127.0.0.1:9292/ 90
  wait_http http://127.0.0.1:9293/ 90
  tmark "restart glance" "$t0"
}

config1() {
  local t0; t0=$(now)
  config_keystone
  config_glance 1
  config_glance 2
  tmark "config1 (db_sync x3, keystone bootstrap)" "$t0"
}

start1() {
  local t0; t0=$(now)
  start_bg keystone uwsgi --ini $OSP/keystone-uwsgi.ini
  wait_http $KS/v3 60
  tmark "keystone up" "$t0"
  admin_env
  /usr/bin/python3 $OSP/ks_setup.py "$SERVICE_PASS" region:RegionTwo svcuser:glance \
      endpoint:image:glance:RegionOne:http://127.0.0.1:9292 \
      endpoint:image:glance:RegionTwo:http://127.0.0.1:9293 \
      tenant:proj-a:user-a:pass-a tenant:proj-b:user-b:pass-b >>"$LOG/ks_setup.log" 2>&1 \
      || die "keystone setup (see $LOG/ks_setup.log)"
  for p in a b; do write_openrc "$OSP/user-$p-openrc" user-$p pass-$p proj-$p RegionOne; done
  tmark "keystone catalog/users" "$t0"
  start_bg glance-api-1 glance-api --config-file /etc/glance/glance-api-1.conf
  start_bg glance-api-2 glance-api --config-file /etc/glance/glance-api-2.conf
  wait_http http://127.0.0.1:9292/ 90
  wait_http http://127.0.0.1:9293/ 90
  tmark "start1 (keystone+glance up)" "$t0"
}

verify1() {
  local t0 f=$OSP/test.qcow2 id
  t0=$(now)
  [ -f $f ] || qemu-img create -f qcow2 $f 64M >/dev/null
  admin_env
  id=$(openstack image create --file $f --disk-format qcow2 --container-format bare \
        probe-admin-r1 -f value -c id) || die "image create RegionOne"
  tmark "first image upload (admin, RegionOne)" "$t0"
  rm -f $OSP/dl.qcow2
  openstack image save --file $OSP/dl.qcow2 "$id" || die "image save"
  cmp $f $OSP/dl.qcow2 || die "downloaded image differs"
  log "RegionOne upload/download OK ($id)"
  OS_REGION_NAME=RegionTwo openstack image create --file $f --disk-format qcow2 \
      --container-format bare probe-admin-r2 -f value -c id >/dev/null || die "image create RegionTwo"
  log "RegionTwo images: $(OS_REGION_NAME=RegionTwo openstack image list -f value -c Name | tr '\n' ' ')"
  log "RegionOne images: $(openstack image list -f value -c Name | tr '\n' ' ')"
  ( . $OSP/user-a-openrc; openstack image create --file $f --disk-format qcow2 --container-format bare \
      --private img-of-a -f value -c id >/dev/null ) || die "user-a image create"
  ( . $OSP/user-b-openrc; openstack image list -f value -c Name | grep -x img-of-a >/dev/null ) && die "B sees A's private image"
  ( . $OSP/user-a-openrc; openstack image list -f value -c Name | grep -x img-of-a >/dev/null ) || die "A does not see its image"
  log "project isolation OK (user-b cannot see user-a's private image)"
  tmark "verify1" "$t0"
}


# ======================================================================
# STAGE 2: rabbitmq + placement + nova (libvirt/qemu TCG, or fake driver)
# ======================================================================
install2() {
  local t0; t0=$(now)
  ensure_policy_rc
  debconf-set-selections <<'EOF'
placement-common placement/configure_db boolean false
placement-common placement/configure_ksat boolean false
nova-common nova/configure_db boolean false
nova-common nova/configure_rabbit boolean false
nova-common nova/configure_ksat boolean false
nova-common nova/configure_placement boolean false
nova-common nova/configure_neutron boolean false
neutron-common neutron/configure_db boolean false
neutron-common neutron/configure_rabbit boolean false
neutron-common neutron/configure_ksat boolean false
neutron-common neutron/configure_nova boolean false
EOF
  # nova-compute-kvm (not -qemu: that one pulls qemu-system for ALL arches)
  $APT rabbitmq-server placement-api nova-api nova-conductor nova-scheduler \
       nova-compute nova-compute-kvm qemu-system-x86 libvirt-daemon-system neutron-server \
       syslinux syslinux-common mtools dosfstools busybox-static cpio fdisk \
       >>"$LOG/apt-stage2.log" 2>&1 || die "apt stage 2 (see $LOG/apt-stage2.log)"
  tmark "install2 (apt rabbit+placement+nova+libvirt)" "$t0"
}

mq() { # rabbitmq on 127.0.0.1 only; guest/guest is allowed from localhost
  local t0; t0=$(now)
  cat > /etc/rabbitmq/rabbitmq-env.conf <<'EOF'
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  export ERL_EPMD_ADDRESS=127.0.0.1
  mkdir -p /var/log/rabbitmq /run/rabbitmq; chown rabbitmq: /var/log/rabbitmq /run/rabbitmq
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    start_bg rabbitmq env ERL_EPMD_ADDRESS=127.0.0.1 /usr/sbin/rabbitmq-server
    for _ in $(seq 1 120); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
    rabbitmqctl -q status >/dev/null 2>&1 || die "rabbitmq did not start (see /var/log/rabbitmq)"
    # epmd daemonizes out of our process group: remember its pid to stop it later
    ss -ltnpH 'sport = :4369' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 > "$RUN/epmd.pid"
    # beam.smp also leaves our process group (su): remember it too
    ss -ltnpH 'sport = :5672' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 > "$RUN/rabbitmq-beam.pid"
  fi
  tmark "mq (rabbitmq up)" "$t0"
}

virt_type() {
  case $NOVA_VIRT in
    kvm|qemu|fake) echo $NOVA_VIRT ;;
    auto) # /dev/kvm may exist but not work (e.g. PVM nested kvm): test-boot
      if [ -e /dev/kvm ]; then
        timeout 20 qemu-system-x86_64 -machine pc,accel=kvm -m 64 -nographic \
           -nic none -no-reboot -kernel "$(ls $OSP/img/boot/vmlinuz-* | head -1)" \
           -append "console=ttyS0 panic=-1" -display none > "$LOG/kvm-probe.log" 2>&1
      fi
      if grep -qa 'Linux version' "$LOG/kvm-probe.log" 2>/dev/null; then echo kvm; else echo qemu; fi ;;
  esac
}

config2() {
  local t0 vt; t0=$(now)
  [ -f $OSP/img/tinyos.qcow2 ] || bash $OSP/mkimage.sh $OSP/img >>"$LOG/mkimage.log" 2>&1 || die mkimage
  vt=$(virt_type); echo "$vt" > "$OSP/virt_type"; log "nova virt type: $vt"
  # --- neutron: API-only (no agents, no mechanism drivers). Nova cannot live
  # without it: GET /servers/{id} lists ports + security groups in neutron.
  [ -f /etc/neutron/neutron.conf.dist ] || cp /etc/neutron/neutron.conf /etc/neutron/neutron.conf.dist
  mkdir -p /var/lib/neutron/lock
  cat > /etc/neutron/neutron.conf <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9696
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
auth_strategy = keystone
core_plugin = ml2
# 'router' is needed although unused: it imports the port_forwarding model;
# without it GET /v2.0/ports -> 500 "type object 'Port' has no attribute
# 'port_forwardings'" (neutron 21.0.0 / Zed bug) and every nova server GET fails
service_plugins = router
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
transport_url = rabbit://guest:guest@127.0.0.1:5672/
log_file = $LOG/neutron-server.log
[database]
connection = mysql+pymysql://neutron:$DB_PASS@$DBH/neutron
[keystone_authtoken]
$(ks_auth_section neutron)
[oslo_concurrency]
lock_path = /var/lib/neutron/lock
[oslo_policy]
policy_dirs = /etc/neutron/policy.d
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers =
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
[securitygroup]
enable_security_group = true
EOF
  neutron-db-manage --config-file /etc/neutron/neutron.conf upgrade head \
      >>"$LOG/neutron-db-manage.log" 2>&1 || die "neutron-db-manage"

  # --- placement
  [ -f /etc/placement/placement.conf.dist ] || cp /etc/placement/placement.conf /etc/placement/placement.conf.dist
  cat > /etc/placement/placement.conf <<EOF
[DEFAULT]
log_file = $LOG/placement-api.log
[api]
auth_strategy = keystone
[placement_database]
connection = mysql+pymysql://placement:$DB_PASS@$DBH/placement
[keystone_authtoken]
$(ks_auth_section placement)
EOF
  cat > $OSP/placement-uwsgi.ini <<EOF
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:8778
wsgi-file = /usr/bin/placement-api
master = true
processes = 1
threads = 2
lazy-apps = true
enable-threads = true
die-on-term = true
buffer-size = 65535
add-header = Connection: close
EOF
  placement-manage db sync >>"$LOG/placement-manage.log" 2>&1 || die "placement db sync"

  # --- nova: controller config (api/conductor/scheduler) and compute config
  [ -f /etc/nova/nova.conf.dist ] || cp /etc/nova/nova.conf /etc/nova/nova.conf.dist
  mkdir -p /var/lib/nova/instances /var/lib/nova/lock
  local common cells
  common=$(cat <<EOF
[DEFAULT]
my_ip = 127.0.0.1
host = aio
transport_url = rabbit://guest:guest@127.0.0.1:5672/
state_path = /var/lib/nova
instances_path = /var/lib/nova/instances
log_dir = $LOG
[api]
auth_strategy = keystone
[keystone_authtoken]
$(ks_auth_section nova)
[placement]
$(ks_auth_section nova)
[glance]
region_name = RegionOne
valid_interfaces = public
[neutron]
$(ks_auth_section nova)
[oslo_concurrency]
lock_path = /var/lib/nova/lock
[vnc]
enabled = false
[spice]
enabled = false
[oslo_messaging_notifications]
driver = noop
EOF
)
  cat > /etc/nova/nova.conf <<EOF
$common
[DEFAULT]
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = 8774
osapi_compute_workers = 1
[api_database]
connection = mysql+pymysql://nova:$DB_PASS@$DBH/nova_api
[database]
connection = mysql+pymysql://nova:$DB_PASS@$DBH/nova
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 5
EOF
  # nova-compute must not have DB credentials -> separate file
  if [ "$vt" = fake ]; then
    drv="compute_driver = fake.FakeDriver"; virt=""
  else
    drv="compute_driver = libvirt.LibvirtDriver"
    virt="[libvirt]
virt_type = $vt
cpu_mode = none"
  fi
  cat > /etc/nova/nova-cpu.conf <<EOF
$common
[DEFAULT]
$drv
reserved_host_memory_mb = 256
$virt
[workarounds]
EOF
  # libvirt: run qemu as root (we run nova-compute as root), no apparmor/selinux
  if [ "$vt" != fake ]; then
    [ -f /etc/libvirt/qemu.conf.dist ] || cp /etc/libvirt/qemu.conf /etc/libvirt/qemu.conf.dist
    cp /etc/libvirt/qemu.conf.dist /etc/libvirt/qemu.conf
    cat >> /etc/libvirt/qemu.conf <<'EOF'
user = "root"
group = "root"
security_driver = "none"
# no per-VM mount namespace: in a chroot/container libvirt fails with "Failed
# disable mount propagation out of the root filesystem: Invalid argument"
namespaces = [ ]
EOF
    rm -f /etc/libvirt/qemu/networks/autostart/default.xml
  fi
  nova-manage --config-file /etc/nova/nova.conf api_db sync >>"$LOG/nova-manage.log" 2>&1 || die "nova api_db sync"
  nova-manage --config-file /etc/nova/nova.conf cell_v2 map_cell0 >>"$LOG/nova-manage.log" 2>&1 || die "map_cell0"
  cells=$(nova-manage --config-file /etc/nova/nova.conf cell_v2 list_cells 2>/dev/null)
  echo "$cells" | grep -q ' cell1 ' || \
    nova-manage --config-file /etc/nova/nova.conf cell_v2 create_cell --name cell1 >>"$LOG/nova-manage.log" 2>&1 || die "create_cell"
  nova-manage --config-file /etc/nova/nova.conf db sync >>"$LOG/nova-manage.log" 2>&1 || die "nova db sync"
  tmark "config2 (placement+nova db sync, cells)" "$t0"
}

start2() {
  local t0 vt; t0=$(now); vt=$(cat "$OSP/virt_type")
  admin_env
  /usr/bin/python3 $OSP/ks_setup.py "$SERVICE_PASS" svcuser:placement svcuser:nova svcuser:neutron \
      endpoint:network:neutron:RegionOne:http://127.0.0.1:9696 \
      endpoint:placement:placement:RegionOne:http://127.0.0.1:8778 \
      endpoint:compute:nova:RegionOne:http://127.0.0.1:8774/v2.1 >>"$LOG/ks_setup.log" 2>&1 \
      || die "keystone setup (see $LOG/ks_setup.log)"
  tmark "keystone entries for nova/placement" "$t0"
  start_bg placement-api uwsgi --ini $OSP/placement-uwsgi.ini
  start_bg neutron-server neutron-server --config-file /etc/neutron/neutron.conf
  wait_http http://127.0.0.1:8778/ 60
  wait_http http://127.0.0.1:9696/ 90
  # neutron 21.0.0 + SQLAlchemy 1.4: GET /v2.0/ports is a 500 ("type object 'Port'
  # has no attribute 'port_forwardings'") until *some* other query has configured
  # the ORM mappers in the API worker. Warm it up with a network list.
  for _ in 1 2 3; do openstack network list >/dev/null 2>&1 && break; sleep 2; done
  openstack port list >/dev/null || die "neutron port list still failing"
  if [ "$vt" != fake ]; then
    mkdir -p /run/libvirt
    start_bg virtlogd /usr/sbin/virtlogd
    start_bg libvirtd /usr/sbin/libvirtd
    for _ in $(seq 1 60); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.5; done
    virsh -c qemu:///system version >/dev/null 2>&1 || die "libvirtd not answering"
  fi
  start_bg nova-api nova-api --config-file /etc/nova/nova.conf
  start_bg nova-conductor nova-conductor --config-file /etc/nova/nova.conf
  start_bg nova-scheduler nova-scheduler --config-file /etc/nova/nova.conf
  start_bg nova-compute nova-compute --config-file /etc/nova/nova-cpu.conf
  wait_http http://127.0.0.1:8774/ 90
  # wait for the compute service to register, then map it into cell1
  for _ in $(seq 1 120); do
    kill -0 "$(cat $RUN/nova-compute.pid)" 2>/dev/null || die "nova-compute died, see $LOG/nova-compute.log"
    openstack compute service list --service nova-compute -f value -c State 2>/dev/null | grep up >/dev/null && break
    sleep 2
  done
  openstack compute service list -f value -c Binary -c State | tee -a "$LOG/setup.log" >&2
  nova-manage --config-file /etc/nova/nova.conf cell_v2 discover_hosts --verbose >>"$LOG/nova-manage.log" 2>&1
  for _ in $(seq 1 60); do
    openstack hypervisor list -f value -c State 2>/dev/null | grep up >/dev/null && break; sleep 2
  done
  openstack hypervisor list | tee -a "$LOG/setup.log" >&2
  openstack flavor show m1.tiny >/dev/null 2>&1 || \
    openstack flavor create --ram 128 --disk 1 --vcpus 1 --public m1.tiny >/dev/null
  tmark "start2 (nova up, compute mapped)" "$t0"
}

image() { # build + upload the tiny bootable image (public, RegionOne)
  local t0; t0=$(now)
  [ -f $OSP/img/tinyos.qcow2 ] || bash $OSP/mkimage.sh $OSP/img >>"$LOG/mkimage.log" 2>&1 || die mkimage
  admin_env
  if ! openstack image show tinyos >/dev/null 2>&1; then
    openstack image create --file $OSP/img/tinyos.qcow2 --disk-format qcow2 \
      --container-format bare --public tinyos >/dev/null || die "upload tinyos"
  fi
  tmark "image (build+upload tinyos)" "$t0"
}

wait_status() { # wait_status 'server|image' ID WANTED TIMEOUT
  local kind=$1 id=$2 want=$3 t=$4 st=""
  for _ in $(seq 1 $t); do
    st=$(openstack $kind show "$id" -f value -c status 2>/dev/null)
    [ "$st" = "$want" ] && return 0
    case $st in ERROR|error|killed|deleted) break ;; esac
    sleep 1
  done
  log "$kind $id status '$st' (wanted $want)"; return 1
}

verify2() {
  local t0 sid iid
  admin_env
  openstack server delete --wait vm1 >/dev/null 2>&1 || true
  openstack image delete vm1-snap >/dev/null 2>&1 || true
  t0=$(now)
  sid=$(openstack --os-compute-api-version 2.37 server create --flavor m1.tiny \
        --image tinyos --nic none vm1 -f value -c id) || die "server create"
  wait_status server "$sid" ACTIVE 300 || { openstack server show "$sid" -f json | grep -A3 fault; die "server not ACTIVE"; }
  tmark "boot server to ACTIVE" "$t0"
  for _ in $(seq 1 60); do
    openstack console log show "$sid" 2>/dev/null | grep TINYOS-BOOTED-OK >/dev/null && break; sleep 1
  done
  if openstack console log show "$sid" 2>/dev/null | grep TINYOS-BOOTED-OK >/dev/null; then
    tmark "guest printed TINYOS-BOOTED-OK" "$t0"
  else log "guest console has no boot marker (fake driver or slow boot)"; fi
  t0=$(now)
  openstack server image create --name vm1-snap "$sid" >/dev/null || die "server image create"
  iid=$(openstack image show vm1-snap -f value -c id)
  wait_status image "$iid" active 600 || die "snapshot image not active"
  tmark "snapshot -> active glance image" "$t0"
  openstack image show vm1-snap -f value -c disk_format -c size -c status | tr '\n' ' ' | tee -a "$LOG/setup.log" >&2; echo >&2
  rm -f $OSP/snap.qcow2
  openstack image save --file $OSP/snap.qcow2 "$iid" || die "snapshot download"
  qemu-img info $OSP/snap.qcow2 | tee -a "$LOG/setup.log" >&2
  t0=$(now)
  openstack server delete --wait "$sid" || log "server delete failed"
  tmark "server delete" "$t0"
}

# Extra experiment: a 2nd nova-compute (host "aio-fake") with nova's FakeDriver
verify_fake() {
  local t0 sid iid st
  admin_env
  sed -e 's/^compute_driver = .*/compute_driver = fake.FakeDriver/' \
      -e 's/^host = aio$/host = aio-fake/' /etc/nova/nova-cpu.conf > /etc/nova/nova-fake.conf
  start_bg nova-compute-fake nova-compute --config-file /etc/nova/nova-fake.conf
  for _ in $(seq 1 60); do
    openstack compute service list --service nova-compute --host aio-fake -f value -c State 2>/dev/null | grep up >/dev/null && break; sleep 2
  done
  nova-manage --config-file /etc/nova/nova.conf cell_v2 discover_hosts >>"$LOG/nova-manage.log" 2>&1
  for _ in $(seq 1 30); do openstack hypervisor list -f value | grep fake-mini >/dev/null && break; sleep 2; done
  openstack server delete --wait vm-fake >/dev/null 2>&1 || true
  openstack image delete vm-fake-snap >/dev/null 2>&1 || true
  t0=$(now)
  sid=$(openstack --os-compute-api-version 2.74 server create --flavor m1.tiny --image tinyos \
        --nic none --host aio-fake vm-fake -f value -c id) || die "fake server create"
  wait_status server "$sid" ACTIVE 120 || die "fake server not ACTIVE"
  tmark "fake driver: boot to ACTIVE" "$t0"
  t0=$(now)
  openstack server image create --name vm-fake-snap "$sid" >/dev/null || die "fake snapshot"
  iid=$(openstack image show vm-fake-snap -f value -c id)
  wait_status image "$iid" active 60 && tmark "fake driver: snapshot active" "$t0"
  st=$(openstack image show "$iid" -f value -c status)
  log "fake driver snapshot image status after wait: $st (server task_state: $(openstack server show $sid -f value -c OS-EXT-STS:task_state))"
  openstack server delete --wait "$sid" || log "fake server delete failed"
  stop_bg nova-compute-fake
  openstack compute service delete "$(openstack compute service list --host aio-fake -f value -c ID)" 2>/dev/null || true
}

# ======================================================================
# STAGE 3 (the end of `all`; `start cinder` alone): Cinder, fake backend, one volume-backed server
# ======================================================================
# No LVM here (no device-mapper) and no NFS client in this kernel, so no Cinder backend can hold real
# volume data. Cinder's own FakeLoggingVolumeDriver (shipped in python3-cinder as cinder.tests.fake_driver)
# keeps volume records without data, and Nova's FakeDriver "attaches" them without os-brick. That is enough
# for what the tests need: a REAL Nova server booted from a volume (image "" and volumes attached), which
# the client must refuse to snapshot clearly. The fake compute host ("aio-fake") is enabled only for the
# few seconds of that boot and then disabled and stopped, so no other server is ever scheduled onto it.
install3() {
  local t0; t0=$(now)
  ensure_policy_rc
  debconf-set-selections <<'EOF'
cinder-common cinder/configure_db boolean false
cinder-common cinder/configure_rabbit boolean false
cinder-common cinder/configure_ksat boolean false
cinder-api cinder/register-endpoint boolean false
EOF
  $APT cinder-api cinder-scheduler cinder-volume >>"$LOG/apt-stage3.log" 2>&1 \
    || die "apt stage 3 (see $LOG/apt-stage3.log)"
  tmark "install3 (apt cinder)" "$t0"
}

config3() {
  local t0; t0=$(now)
  mysql -uroot -e "CREATE DATABASE IF NOT EXISTS cinder;
    CREATE USER IF NOT EXISTS 'cinder'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    CREATE USER IF NOT EXISTS 'cinder'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON cinder.* TO 'cinder'@'127.0.0.1'; GRANT ALL ON cinder.* TO 'cinder'@'localhost';" \
    || die "mysql create cinder"
  [ -f /etc/cinder/cinder.conf.dist ] || cp /etc/cinder/cinder.conf /etc/cinder/cinder.conf.dist
  mkdir -p /var/lib/cinder/lock
  cat > /etc/cinder/cinder.conf <<EOF
[DEFAULT]
my_ip = 127.0.0.1
host = aio
transport_url = rabbit://guest:guest@127.0.0.1:5672/
auth_strategy = keystone
# The volume service tells the scheduler its capacity every periodic_interval; a scheduler that missed the
# first report (both start together) refuses every volume until the next one, 60 s by default.
periodic_interval = 5
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = 8776
osapi_volume_workers = 1
state_path = /var/lib/cinder
log_dir = $LOG
glance_api_servers = http://127.0.0.1:9292
enabled_backends = fake
default_volume_type = fake
[database]
connection = mysql+pymysql://cinder:$DB_PASS@$DBH/cinder
[keystone_authtoken]
$(ks_auth_section cinder)
[oslo_concurrency]
lock_path = /var/lib/cinder/lock
[oslo_messaging_notifications]
driver = noop
[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake
EOF
  cinder-manage --config-file /etc/cinder/cinder.conf db sync >>"$LOG/cinder-manage.log" 2>&1 || die "cinder db sync"
  tmark "config3 (cinder db sync)" "$t0"
}

start3() {
  local t0; t0=$(now)
  admin_env
  /usr/bin/python3 $OSP/ks_setup.py "$SERVICE_PASS" svcuser:cinder \
      'endpoint:volumev3:cinderv3:RegionOne:http://127.0.0.1:8776/v3/%(project_id)s' >>"$LOG/ks_setup.log" 2>&1 \
      || die "keystone setup for cinder (see $LOG/ks_setup.log)"
  start_bg cinder-api cinder-api --config-file /etc/cinder/cinder.conf
  start_bg cinder-scheduler cinder-scheduler --config-file /etc/cinder/cinder.conf
  start_bg cinder-volume cinder-volume --config-file /etc/cinder/cinder.conf
  wait_http http://127.0.0.1:8776/ 90
  for _ in $(seq 1 60); do
    openstack volume service list -f value -c Binary -c State 2>/dev/null | grep 'cinder-volume up' >/dev/null && break
    sleep 2
  done
  openstack volume service list -f value -c Binary -c State | grep 'cinder-volume up' >/dev/null \
    || die "cinder-volume not up (see $LOG/cinder-volume.log)"
  openstack volume type show fake >/dev/null 2>&1 || \
    openstack volume type create --property volume_backend_name=fake fake >/dev/null || die "volume type"
  tmark "start3 (cinder up)" "$t0"
}

# The volume-backed server "vol-backed" (admin project), booted on the fake compute host. Idempotent.
# `volume_server NAME PROJECT stopped` makes another one in PROJECT (the admin needs a role there) and powers
# it off while the fake host still runs (the ec2 stage's, for CreateImage).
# The fake host must never receive anyone else's server: it is disabled as soon as it registers (on later
# runs its service record already is), enabled only between this create and the scheduler's choice (a few
# seconds), and stopped at the end. Raw API calls, not the openstack CLI, keep that window short.
volume_server() {
  local name=${1:-vol-backed} power=${3:-running} t0 vid sid host=""; t0=$(now)
  admin_env
  local -x OS_PROJECT_NAME=${2:-admin}
  if openstack server show "$name" -f value -c status >/dev/null 2>&1; then
    log "$name already exists"; return 0
  fi
  # A volume the scheduler could not place yet (no capacity report received) ends in "error": make it again.
  local vstatus=""
  for _ in $(seq 1 6); do
    if ! openstack volume show "$name-root" >/dev/null 2>&1; then
      openstack volume create --size 1 --type fake "$name-root" >/dev/null || die "volume create"
    fi
    vid=$(openstack volume show "$name-root" -f value -c id)
    for _ in $(seq 1 30); do
      vstatus=$(openstack volume show "$vid" -f value -c status)
      case $vstatus in available|error) break ;; esac; sleep 1
    done
    [ "$vstatus" = error ] || break
    log "$name-root went to error (scheduler had no backend yet): making it again"
    openstack volume delete "$vid" >/dev/null 2>&1
    for _ in $(seq 1 30); do openstack volume show "$vid" >/dev/null 2>&1 || break; sleep 1; done
    sleep 5
  done
  [ "$vstatus" = available ] || die "$name-root is '$vstatus', not available (see $LOG/cinder-scheduler.log)"
  openstack volume set --bootable "$vid" || die "volume set bootable"
  sed -e 's/^compute_driver = .*/compute_driver = fake.FakeDriver/' \
      -e 's/^host = aio$/host = aio-fake/' /etc/nova/nova-cpu.conf > /etc/nova/nova-fake.conf
  local tok nova=http://127.0.0.1:8774/v2.1 svc=""
  tok=$(openstack token issue -f value -c id)
  nova_api() { curl -sS -H "X-Auth-Token: $tok" -H "OpenStack-API-Version: compute 2.53" \
               -H "Content-Type: application/json" "$@"; }
  fake_service() { nova_api "$nova/os-services?host=aio-fake&binary=nova-compute" | python3 -c \
      'import json,sys; s=json.load(sys.stdin)["services"]; print(s[0]["id"] + " " + s[0]["status"] + " " + s[0]["state"] if s else "")'; }
  set_fake() { nova_api -X PUT "$nova/os-services/${svc%% *}" -o /dev/null \
      -d "{\"status\": \"$1\"$([ "$1" = disabled ] && echo ', "disabled_reason": "chromogenic aio: volume-backed record only"')}"; }
  start_bg nova-compute-fake nova-compute --config-file /etc/nova/nova-fake.conf
  for _ in $(seq 1 240); do
    svc=$(fake_service); [ -n "$svc" ] && break; sleep 0.25
  done
  [ -n "$svc" ] || { stop_bg nova-compute-fake; die "fake nova-compute did not register"; }
  case $svc in *" enabled "*) set_fake disabled ;; esac
  nova-manage --config-file /etc/nova/nova.conf cell_v2 discover_hosts >>"$LOG/nova-manage.log" 2>&1
  # Enabling syncs the placement trait COMPUTE_STATUS_DISABLED through the compute, which must be up (its
  # first heartbeat since it started), or the scheduler finds no host.
  for _ in $(seq 1 120); do
    case $(fake_service) in *" up") break ;; esac; sleep 0.5
  done
  # Tokens live 90 s here, and the build hands this one to Cinder for the attachment: a token issued before
  # the waits above could expire mid-build on a loaded machine (Cinder then answers 401 and the server ends
  # in ERROR).
  tok=$(openstack token issue -f value -c id)
  set_fake enabled
  sid=$(nova_api -X POST "$nova/servers" -d "{\"server\": {\"name\": \"$name\", \"flavorRef\": \"$(openstack flavor show m1.tiny -f value -c id)\",
      \"networks\": \"none\", \"availability_zone\": \"nova:aio-fake\",
      \"block_device_mapping_v2\": [{\"boot_index\": 0, \"uuid\": \"$vid\", \"source_type\": \"volume\",
      \"destination_type\": \"volume\", \"delete_on_termination\": false}]}}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin).get("server", {}).get("id", ""))')
  for _ in $(seq 1 120); do
    [ -n "$sid" ] || break
    host=$(nova_api "$nova/servers/$sid" | python3 -c \
      'import json,sys; s=json.load(sys.stdin)["server"]; print(s.get("OS-EXT-SRV-ATTR:host") or ("ERROR" if s["status"] == "ERROR" else ""))')
    [ -n "$host" ] && break; sleep 0.25
  done
  set_fake disabled   # whatever happened: nothing else may land on the fake host
  [ "$host" = aio-fake ] || { stop_bg nova-compute-fake; die "$name was not scheduled to aio-fake (host '$host')"; }
  wait_status server "$sid" ACTIVE 60 || { stop_bg nova-compute-fake; die "$name not ACTIVE"; }
  if [ "$power" = stopped ]; then
    nova_api -X POST "$nova/servers/$sid/action" -d '{"os-stop": null}' -o /dev/null
    wait_status server "$sid" SHUTOFF 60 || { stop_bg nova-compute-fake; die "$name not SHUTOFF"; }
  fi
  stop_bg nova-compute-fake
  tmark "volume_server (volume-backed server record)" "$t0"
}

# ======================================================================
ALL_SERVICES="ec2-api cinder-volume cinder-scheduler cinder-api nova-compute-fake nova-compute nova-scheduler nova-conductor nova-api neutron-server placement-api libvirtd virtlogd rabbitmq glance-api-2 glance-api-1 keystone mariadb"
stop() {
  # rabbit: ask it nicely first (its pgroup is su->sh->beam)
  stop2
  if [ -f "$RUN/rabbitmq.pid" ]; then rabbitmqctl stop >/dev/null 2>&1 || true; fi
  for s in $ALL_SERVICES; do
    if [ $s = mariadb ] && [ -f "$RUN/mariadb.pid" ]; then mysqladmin shutdown 2>/dev/null || true; fi
    stop_bg $s
  done
  for f in rabbitmq-beam epmd; do
    if [ -f "$RUN/$f.pid" ]; then
      p=$(cat "$RUN/$f.pid")   # only if it is still epmd/beam (pid reuse)
      case "$(ps -o comm= -p "$p" 2>/dev/null)" in epmd|beam.smp) kill "$p" ;; esac
      rm -f "$RUN/$f.pid"
    fi
  done
}

clean() { # stop everything and forget all state (packages stay installed)
  stop
  mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
  start_bg mariadb /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --skip-name-resolve
  for _ in $(seq 1 60); do mysqladmin ping >/dev/null 2>&1 && break; sleep 0.5; done
  for d in keystone glance1 glance2 placement nova_api nova nova_cell0 neutron cinder; do
    mysql -uroot -e "DROP DATABASE IF EXISTS $d"
  done
  mysqladmin shutdown; sleep 2; rm -f "$RUN/mariadb.pid"
  rm -rf /var/lib/glance/g1 /var/lib/glance/g2 /var/lib/nova/instances/* \
         /etc/keystone/fernet-keys /etc/keystone/credential-keys \
         "$OSP"/*-openrc "$OSP/virt_type" "$OSP/snap.qcow2" "$OSP/dl.qcow2"
  clean_ec2
  if [ -d /var/lib/rabbitmq/mnesia ]; then rm -rf /var/lib/rabbitmq/mnesia; fi
  [ -d "$LOG" ] && mv "$LOG" "$LOG.$(date +%Y%m%d-%H%M%S)"; mkdir -p "$LOG"
}
stop2() { # nova side only (keeps db/mq/keystone/glance); destroys libvirt guests
  for s in nova-compute nova-scheduler nova-conductor nova-api neutron-server placement-api; do stop_bg $s; done
  if [ -f "$RUN/libvirtd.pid" ]; then
    for d in $(virsh -c qemu:///system list --name 2>/dev/null); do virsh -c qemu:///system destroy "$d" >/dev/null 2>&1; done
  fi
  stop_bg libvirtd; stop_bg virtlogd
}
status() {
  for f in "$RUN"/*.pid; do
    [ -f "$f" ] || continue
    n=$(basename "$f" .pid); p=$(cat "$f")
    if kill -0 "$p" 2>/dev/null; then
      printf '%-16s pid %-7s RSS(group) %6d MiB\n' "$n" "$p" \
        "$(ps -o rss= -g "$p" 2>/dev/null | awk '{s+=$1} END {print int(s/1024)}')"
    else printf '%-16s pid %-7s DEAD\n' "$n" "$p"; fi
  done
  free -m | sed -n 1,2p
}

[ $# -eq 0 ] && set -- start
case ${1:-} in
  start)
    case ${2:-stage1} in
      stage1) set -- stage1 ;;
      all)    set -- all ;;
      cinder) set -- stage3 ;;
      ec2)    set -- install_ec2 config_ec2 start_ec2 ;;
      *) echo "usage: $0 start [stage1|all|cinder|ec2]"; exit 2 ;;
    esac ;;
  restart)
    case ${2:-} in
      glance) set -- restart_glance ;;
      *) echo "usage: $0 restart glance"; exit 2 ;;
    esac ;;
esac
for cmd in "$@"; do
  case $cmd in
    all)    for c in install1 db config1 start1 verify1 install2 mq config2 start2 image verify2 \
                     install3 config3 start3 volume_server; do $c; done ;;
    stage1) for c in install1 db config1 start1 verify1; do $c; done ;;
    stage2) for c in install2 mq config2 start2 image verify2; do $c; done ;;
    stage3) for c in install3 config3 start3 volume_server; do $c; done ;;
    install1|db|config1|start1|verify1|install2|mq|config2|start2|image|verify2|verify_fake|stop|stop2|status|clean|restart_glance|install3|config3|start3|volume_server|install_ec2|config_ec2|start_ec2|stop_ec2|clean_ec2) $cmd ;;
    *) echo "unknown command $cmd"; exit 2 ;;
  esac
done
