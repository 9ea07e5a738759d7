# test/infra/openstack/ec2-api.sh - sourced by aio.sh (not run on its own): the `ec2` stage.
# OpenStack's EC2 API, ec2-api 15.0.0 (Zed), on the stack's Keystone, Glance, Nova and Cinder, with Swift's
# s3api behind s3token as its S3 (test/infra/swift/start.sh --keystone). `aio.sh start ec2` on a running
# `start all`; `aio.sh stop` stops it with the rest, `aio.sh clean` forgets it.
#
# - ec2-api is no Debian package: its source (../shared/third-party, or $CHROMOGENIC_THIRD_PARTY, or PyPI)
#   is unpacked under $EC2 and run from there on Debian's Python packages, with PBR_VERSION set because the
#   unpacked tree has no git or package metadata for pbr to read the version from.
# - Patches (ec2-api-patches/, applied in order; each says why in its header) make it work with Debian 12's
#   Keystone (security fixes), novaclient and the stack's two Glance regions, and with the AWS SDK v3's
#   strict timestamps.
# - It listens on 127.0.0.1:$EC2API_PORT, one process; its database is sqlite (it is the only writer).
# - The cloud key ($EC2/cloud-key.pem) decrypts bundles; bundles are encrypted to its self-signed
#   certificate ($EC2/cloud-cert.pem), which the tests read.
# - The tests' EC2 user is a project of its own (ec2-user in proj-ec2): ec2-api fetches bundles from S3
#   with the FIRST EC2 credential Keystone lists for the user, of any project, so that user must have
#   exactly one, and other suites must not add theirs to it. Its credentials: $OSP/ec2-credentials.json and
#   the eucarc-style $OSP/ec2-eucarc.
# - proj-ec2 also holds a STOPPED volume-backed server, "ec2-vol-backed" (see volume_server in aio.sh):
#   CreateImage on a running one would have Nova quiesce it through its compute host, which is not running.
EC2=$OSP/ec2-api
EC2API_PORT=${EC2API_PORT:-8788}
EC2API_S3_URL=${EC2API_S3_URL:-http://127.0.0.1:8081}
# The SigV4 region ec2-api signs its S3 requests for: Swift's s3api `location`.
EC2API_S3_REGION=${EC2API_S3_REGION:-us-east-1}
EC2_USER=ec2-user
EC2_PROJECT=proj-ec2
EC2_USER_PASS=${EC2_USER_PASS:-pass-ec2}
EC2API_VERSION=15.0.0
EC2_GLANCE_POLICY=/etc/glance/policy.d/50-chromogenic-ec2.yaml
# What ec2-api imports (its requirements.txt), as Debian 12 packages; most come with Nova and Cinder already.
EC2API_PKGS="python3-botocore python3-migrate python3-routes python3-paste python3-pastedeploy python3-webob
  python3-httplib2 python3-lxml python3-babel python3-eventlet python3-cryptography python3-keystoneclient
  python3-keystonemiddleware python3-novaclient python3-glanceclient python3-cinderclient python3-neutronclient
  python3-oslo.cache python3-oslo.db python3-oslo.service python3-oslo.log python3-openstacksdk openssl patch"

ec2api_python() { # ec2api_python MODULE ARGS...: run one of ec2-api's entry points from the unpacked tree
  local module=$1; shift
  PBR_VERSION=$EC2API_VERSION PYTHONPATH=$EC2/src /usr/bin/python3 -c \
    "import sys; sys.argv[0] = '$module'; from ec2api.cmd.$module import main; main()" "$@"
}

# The source tarball: $CHROMOGENIC_THIRD_PARTY, then ../shared/third-party from the repository's root, then PyPI.
ec2api_tarball() {
  local repo d
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
  for d in "${CHROMOGENIC_THIRD_PARTY:-}" "$repo/../shared/third-party"; do
    [ -n "$d" ] && [ -f "$d/ec2-api-$EC2API_VERSION.tar.gz" ] && { echo "$d/ec2-api-$EC2API_VERSION.tar.gz"; return; }
  done
  mkdir -p "$EC2/download"
  python3 -m pip download --no-deps --no-binary :all: -d "$EC2/download" "ec2-api==$EC2API_VERSION" \
    >>"$LOG/ec2-api-install.log" 2>&1 || die "ec2-api $EC2API_VERSION: not in \$CHROMOGENIC_THIRD_PARTY, not in $repo/../shared/third-party, and pip download failed (see $LOG/ec2-api-install.log)"
  ls "$EC2/download"/ec2[-_]api-$EC2API_VERSION.tar.gz
}

install_ec2() {
  local t0 p missing=() tarball stamp; t0=$(now)
  for p in $EC2API_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    $APT "${missing[@]}" >>"$LOG/apt-ec2.log" 2>&1 || die "apt ec2-api (see $LOG/apt-ec2.log)"
  fi
  # Unpacked again whenever the patches change: the stamp is their checksum.
  stamp=$(cat "$(dirname "${BASH_SOURCE[0]}")"/ec2-api-patches/*.patch | sha256sum | cut -c1-64)
  if [ "$(cat "$EC2/src/.patches" 2>/dev/null)" != "$stamp" ]; then
    tarball=$(ec2api_tarball) || exit 1
    rm -rf "$EC2/src" "$EC2/src.new"; mkdir -p "$EC2/src.new"
    tar -xzf "$tarball" -C "$EC2/src.new" --strip-components=1 || die "unpack $tarball"
    for p in "$(dirname "${BASH_SOURCE[0]}")"/ec2-api-patches/*.patch; do
      patch -d "$EC2/src.new" -p1 < "$p" >>"$LOG/ec2-api-install.log" 2>&1 || die "ec2-api: $p does not apply"
    done
    echo "$stamp" > "$EC2/src.new/.patches"
    mv "$EC2/src.new" "$EC2/src"
  fi
  tmark "install_ec2 (packages, ec2-api source)" "$t0"
}

config_ec2() {
  local t0; t0=$(now)
  mkdir -p "$EC2/decrypt" "$EC2/lock" "$EC2/state"
  # The cloud's key pair: what bundles are encrypted to. Kept across restarts (bundles made for it stay valid).
  if [ ! -f "$EC2/cloud-cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=chromogenic test cloud (ec2-api)" \
      -keyout "$EC2/cloud-key.pem" -out "$EC2/cloud-cert.pem" >>"$LOG/ec2-api-install.log" 2>&1 \
      || die "openssl: cloud key pair"
  fi
  cp "$EC2/src/etc/ec2api/api-paste.ini" "$EC2/api-paste.ini"
  # full_vpc_support is gone from ec2-api 15.0.0 (it would be ignored); EC2 Classic stays on, so nothing
  # asks Neutron for a default VPC.
  cat > "$EC2/ec2api.conf" <<EOF
[DEFAULT]
my_ip = 127.0.0.1
ec2api_listen = 127.0.0.1
ec2api_listen_port = $EC2API_PORT
ec2api_workers = 1
api_paste_config = $EC2/api-paste.ini
keystone_ec2_tokens_url = $KS/v3/ec2tokens
state_path = $EC2/state
log_file = $LOG/ec2-api.log
x509_root_private_key = $EC2/cloud-key.pem
image_decryption_dir = $EC2/decrypt
s3_url = $EC2API_S3_URL
s3_region = $EC2API_S3_REGION
disable_ec2_classic = false
os_region_name = RegionOne
[database]
connection = sqlite:///$EC2/ec2api.sqlite
[keystone_authtoken]
$(ks_auth_section ec2api)
[oslo_concurrency]
lock_path = $EC2/lock
EOF
  # ModifyImageAttribute's launchPermission for group "all" makes the image public in Glance, which Glance
  # leaves to admins by default: a role of its own lets the EC2 user do that (oslo.policy rereads policy.d).
  cat > "$EC2_GLANCE_POLICY" <<'EOF'
# chromogenic aio, ec2 stage (test/infra/openstack/ec2-api.sh): ec2-api's launch permission for "all"
"publicize_image": "role:admin or role:image_publisher"
EOF
  ec2api_python manage --config-file "$EC2/ec2api.conf" db_sync >>"$LOG/ec2-api-manage.log" 2>&1 \
    || die "ec2-api db_sync (see $LOG/ec2-api-manage.log)"
  tmark "config_ec2 (cloud key, db_sync)" "$t0"
}

# Keystone: the ec2api service user and catalog entry, the EC2 user and project, the roles Swift's
# keystoneauth knows, the admin's role in proj-ec2 (it boots the volume-backed server there), the EC2 user's
# image_publisher role (see config_ec2), and the EC2
# user's one EC2 credential (as `openstack ec2 credentials create` makes it). Prints "ACCESS SECRET PROJECT_ID".
# A volumev3 endpoint must exist: RegisterImage asks for a Cinder client always.
keystone_ec2() {
  admin_env
  /usr/bin/python3 $OSP/ks_setup.py "$SERVICE_PASS" svcuser:ec2api svcuser:swift \
      "endpoint:ec2:ec2api:RegionOne:http://127.0.0.1:$EC2API_PORT" \
      "tenant:$EC2_PROJECT:$EC2_USER:$EC2_USER_PASS" >>"$LOG/ks_setup.log" 2>&1 \
      || die "keystone setup for ec2-api (see $LOG/ks_setup.log)"
  EC2_USER=$EC2_USER EC2_PROJECT=$EC2_PROJECT /usr/bin/python3 - 2>>"$LOG/ks_setup.log" <<'PY'
import json, os, secrets, sys
import openstack
conn = openstack.connect(auth_type="password", auth_url=os.environ["OS_AUTH_URL"],
    username=os.environ["OS_USERNAME"], password=os.environ["OS_PASSWORD"],
    project_name=os.environ["OS_PROJECT_NAME"], user_domain_name="Default", project_domain_name="Default")
idn = conn.identity
volume = [s for s in idn.services() if s.type == "volumev3"]
if not volume or not list(idn.endpoints(service_id=volume[0].id)):
    sys.exit("no volumev3 endpoint in the catalog: ec2-api's RegisterImage needs Cinder (aio.sh start all)")
for name in ("ResellerAdmin", "member", "admin", "image_publisher"):
    idn.find_role(name) or idn.create_role(name=name)
dom = idn.find_domain("default")
project = idn.find_project(os.environ["EC2_PROJECT"], domain_id=dom.id)
user = idn.find_user(os.environ["EC2_USER"], domain_id=dom.id)
admin, admin_role = idn.find_user("admin", domain_id=dom.id), idn.find_role("admin")
for who, role in ((admin, admin_role), (user, idn.find_role("image_publisher"))):
    if not idn.validate_user_has_project_role(project, who, role):
        idn.assign_project_role_to_user(project, who, role)
creds = list(idn.credentials(user_id=user.id, type="ec2"))
keep = next((c for c in creds if c.project_id == project.id), None)
for c in creds:
    if c is not keep:
        idn.delete_credential(c)  # exactly one: ec2-api uses the first one listed for S3
if keep:
    blob = json.loads(keep.blob)
else:
    blob = {"access": secrets.token_hex(16), "secret": secrets.token_hex(20), "trust_id": None}
    idn.create_credential(type="ec2", user_id=user.id, project_id=project.id, blob=json.dumps(blob))
print(blob["access"], blob["secret"], project.id)
PY
}

# Where the tests read the EC2 user's credentials and endpoints: JSON, and the same as eucarc variables.
write_ec2_credentials() { # ACCESS SECRET PROJECT_ID
  cat > "$OSP/ec2-credentials.json" <<EOF
{
  "ec2Url": "http://127.0.0.1:$EC2API_PORT/",
  "s3Url": "$EC2API_S3_URL",
  "s3Region": "$EC2API_S3_REGION",
  "accessKeyId": "$1",
  "secretAccessKey": "$2",
  "projectId": "$3",
  "user": "$EC2_USER",
  "password": "$EC2_USER_PASS",
  "project": "$EC2_PROJECT",
  "cloudCert": "$EC2/cloud-cert.pem",
  "volumeBackedServer": "ec2-vol-backed"
}
EOF
  cat > "$OSP/ec2-eucarc" <<EOF
export EC2_URL=http://127.0.0.1:$EC2API_PORT/
export S3_URL=$EC2API_S3_URL
export EC2_ACCESS_KEY=$1
export EC2_SECRET_KEY=$2
export EUCALYPTUS_CERT=$EC2/cloud-cert.pem
export EC2_USER_ID=$3
EOF
  write_openrc "$OSP/$EC2_USER-openrc" "$EC2_USER" "$EC2_USER_PASS" "$EC2_PROJECT" RegionOne
  log "EC2 credentials of $EC2_USER: $OSP/ec2-credentials.json (and $OSP/ec2-eucarc)"
}

start_ec2() {
  local t0 creds; t0=$(now)
  creds=$(keystone_ec2) || die "keystone setup for ec2-api (see $LOG/ks_setup.log)"
  # shellcheck disable=SC2086 # three words
  write_ec2_credentials $creds
  volume_server ec2-vol-backed "$EC2_PROJECT" stopped
  # Restarted, not left running: a new configuration or newly patched source must be what answers.
  stop_bg ec2-api
  start_bg ec2-api env PBR_VERSION=$EC2API_VERSION PYTHONPATH="$EC2/src" /usr/bin/python3 -c \
    "import sys; sys.argv[0] = 'ec2-api'; from ec2api.cmd.api import main; main()" --config-file "$EC2/ec2api.conf"
  wait_http "http://127.0.0.1:$EC2API_PORT/" 60
  # One signed call end to end (SigV4 -> Keystone's ec2tokens -> RegionOne's Glance): a broken setup fails here.
  /usr/bin/python3 - "$OSP/ec2-credentials.json" <<'PY' >>"$LOG/ec2-api.out" 2>&1 || die "ec2-api DescribeImages failed (see $LOG/ec2-api.log)"
import json, sys
import botocore.session
c = json.load(open(sys.argv[1]))
ec2 = botocore.session.get_session().create_client("ec2", region_name="RegionOne", endpoint_url=c["ec2Url"],
    aws_access_key_id=c["accessKeyId"], aws_secret_access_key=c["secretAccessKey"])
names = [i["Name"] for i in ec2.describe_images()["Images"]]
print("ec2-api DescribeImages:", names)
sys.exit(0 if "tinyos" in names else "the public image tinyos (RegionOne's Glance) is not among them")
PY
  tmark "start_ec2 (ec2-api up, DescribeImages answered)" "$t0"
}

stop_ec2() { stop_bg ec2-api; }
# Everything but the unpacked source (like the packages, it stays): database, cloud key, credentials.
clean_ec2() {
  rm -rf "$EC2/ec2api.sqlite" "$EC2/ec2api.conf" "$EC2/api-paste.ini" "$EC2/decrypt" "$EC2/state" "$EC2/lock" \
         "$EC2/cloud-key.pem" "$EC2/cloud-cert.pem" "$OSP/ec2-credentials.json" "$OSP/ec2-eucarc" \
         "$EC2_GLANCE_POLICY"
}
