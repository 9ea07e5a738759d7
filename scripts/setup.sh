#!/usr/bin/env bash
# Sets up a fresh clone: the Debian packages chromogenic drives (when run as root),
# the npm dependencies, a supported Node.js from the npm registry, and the build.
#   scripts/setup.sh            runtime packages only
#   scripts/setup.sh --test     also the packages the test suite checks against
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# qemu-utils is the reference every format is checked against; e2fsprogs/fdisk build sample guests;
# gcc, libc6-dev and libzstd-dev build the native helpers (SEEK_DATA, batched zstd); zstd is for compression checks.
# xz-utils, zstd, lz4 and bzip2 decompress the initramfs images the Xen to KVM conversion checks for virtio.
# grub-pc-bin and extlinux: `bootable` writes GRUB for BIOS PCs from the first (grub-mkimage, boot.img, the i386-pc
# modules), and extlinux where GRUB's core image has no room. qemu-system-common's qemu-storage-daemon shows a
# non-raw image read-only for `clean --dry-run` and inspection (no working copy).
runtime_pkgs=(qemu-utils e2fsprogs fdisk gcc libc6-dev libzstd-dev xz-utils zstd lz4 bzip2 grub-pc-bin extlinux qemu-system-common)
# virt-v2v imports our OVAs in test/formats/ova; it depends on neither nbdkit (its output side) nor libnbd-bin
# (nbdcopy, its copier), so they are listed too. lz4, zip, cloop-utils and cryptsetup-bin make the foreign
# formats that detection must refuse by name. The boot proofs (test/helpers/boot-in-qemu.ts) start disks in
# qemu-system-x86 under SeaBIOS or ovmf; grub-*-bin, syslinux, mtools and dosfstools make boot code without a
# mount; initramfs-tools-core's lsinitramfs lists what an initramfs holds. cpio makes and lists the initramfs
# images of the conversion's tests; file reads a kernel's header independently of us; gdisk checks our GPTs.
test_pkgs=(libqcow-utils zstd libvhdi-utils bximage bzip2 xz-utils lz4 zip cloop-utils cryptsetup-bin python3-vmdkstream libvmdk-utils libxml2-utils 7zip xfsprogs btrfs-progs lvm2 attr libguestfs-tools mmdebstrap virt-v2v nbdkit libnbd-bin qemu-system-x86 ovmf grub-pc-bin grub-efi-amd64-bin syslinux syslinux-common mtools dosfstools initramfs-tools-core cpio file gdisk openssl nginx-light tinyproxy)
# The Eucalyptus tests: euca2ools 3.4 (the bundle oracle, from ../shared/third-party) runs on Debian's Python
# with these; Swift with s3api (python3-swift, keystonemiddleware for its Keystone proxy) is the S3 server; a real
# OpenSSH server stands in for a node controller.
test_pkgs+=(python3-lxml python3-requests python3-six python3-yaml)
test_pkgs+=(python3-swift python3-keystonemiddleware)
test_pkgs+=(openssh-server)
# OpenStack's ec2-api, run from its source by test/infra/openstack/ec2-api.sh, imports these (and patch applies
# the stack's fixes to it).
test_pkgs+=(python3-botocore python3-migrate python3-routes python3-paste python3-pastedeploy python3-webob
  python3-httplib2 python3-keystonemiddleware python3-novaclient python3-glanceclient
  python3-cinderclient python3-neutronclient python3-oslo.db python3-oslo.service python3-oslo.cache patch)
# The service's distributed mode: BullMQ's queue on Redis (test/infra/redis/start.sh, AOF on) and the shared job
# store on PostgreSQL (test/infra/postgres/start.sh, a cluster of its own); iproute2 makes the network namespaces
# of the two-host tests (test/infra/network/hosts.sh).
test_pkgs+=(redis-server redis-tools postgresql iproute2)
# The service's web page is tested in a real headless browser: Debian's chromium, driven by puppeteer-core
# (which downloads no browser of its own).
test_pkgs+=(chromium)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  pkgs=("${runtime_pkgs[@]}")
  [ "$want_test" = 1 ] && pkgs+=("${test_pkgs[@]}")
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # virt-sysprep (the cleaning proofs' reference) needs a kernel for its appliance: unpacked, cached, no package.
  if [ "$want_test" = 1 ]; then bash test/infra/libguestfs-kernel.sh >/dev/null; fi
else
  echo "setup: not root or no apt-get; make sure these are installed: ${runtime_pkgs[*]}" >&2
fi

# npm ci keeps the lockfile's versions; the `node` devDependency brings Node.js 24 into
# node_modules/.bin, which npm puts first on PATH for every script.
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi

# The node package fetches its binary in a preinstall script; if a future npm skipped it,
# run it ourselves rather than silently testing on the system's Node.
if ! node_modules/.bin/node -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)' 2>/dev/null; then
  (cd node_modules/node && node installArchSpecificPackage)
fi
echo "setup: Node.js $(node_modules/.bin/node --version) at node_modules/.bin/node" >&2
npm run --silent build

# The manual page and the shell completions (generated from the command definitions, kept in git) where man,
# bash-completion and zsh look, when this user may write there.
if [ "$(id -u)" = 0 ]; then
  install -Dm644 man/chromogenic.1 /usr/local/share/man/man1/chromogenic.1
  install -Dm644 completions/chromogenic.bash /usr/local/share/bash-completion/completions/chromogenic
  install -Dm644 completions/_chromogenic /usr/local/share/zsh/site-functions/_chromogenic
  echo "setup: chromogenic(1) and bash/zsh completions installed under /usr/local/share" >&2
fi
