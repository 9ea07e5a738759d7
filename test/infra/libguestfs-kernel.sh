#!/usr/bin/env bash
# A kernel for libguestfs's supermin appliance (virt-sysprep in the cleaning tests and benchmark), without
# installing linux-image-amd64 (whose postinst spends most of a minute building an initramfs supermin never
# uses): the kernel package is downloaded, unpacked with `dpkg -x` and its modules indexed with `depmod -b`.
# Cached under $CACHE (default /var/cache/chromogenic/libguestfs-kernel): a second run only prints.
#
#   test/infra/libguestfs-kernel.sh          ensure the kernel, print the environment supermin needs
#   . <(test/infra/libguestfs-kernel.sh)     ... and export it into the current shell
#
# Output lines (also written to $CACHE/env): SUPERMIN_KERNEL, SUPERMIN_MODULES, SUPERMIN_KERNEL_VERSION,
# LIBGUESTFS_BACKEND=direct and LIBGUESTFS_BACKEND_SETTINGS=force_tcg (without force_tcg libguestfs sees
# /dev/kvm, tries KVM and qemu aborts on this kind of machine).
set -euo pipefail
CACHE="${CACHE:-/var/cache/chromogenic/libguestfs-kernel}"
ENV_FILE="$CACHE/env"

# supermin copies the modules into the appliance's /lib/modules, taking that directory's attributes from the
# host's own /lib/modules, which a machine without an installed kernel (a container) does not have.
[ -d /lib/modules ] || { [ "$(id -u)" -eq 0 ] && mkdir -p /lib/modules; }

if [ -f "$ENV_FILE" ]; then
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  if [ -f "$SUPERMIN_KERNEL" ] && [ -d "$SUPERMIN_MODULES" ]; then
    sed 's/^/export /' "$ENV_FILE"
    exit 0
  fi
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "libguestfs-kernel: must run as root (writes $CACHE)" >&2
  exit 1
fi
mkdir -p "$CACHE"
# The real package behind the linux-image-amd64 metapackage, e.g. linux-image-6.1.0-56-amd64.
pkg="$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)"
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg="$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)"
fi
if [ -z "$pkg" ]; then
  echo "libguestfs-kernel: cannot find the kernel package behind linux-image-amd64" >&2
  exit 1
fi
version="${pkg#linux-image-}"
dir="$CACHE/$version"
tmp="$(mktemp -d "$CACHE/.download.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
rm -rf "$dir.tmp"
dpkg -x "$tmp"/*.deb "$dir.tmp"
depmod -b "$dir.tmp" "$version"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
cat > "$ENV_FILE.tmp" <<ENV
SUPERMIN_KERNEL=$dir/boot/vmlinuz-$version
SUPERMIN_MODULES=$dir/lib/modules/$version
SUPERMIN_KERNEL_VERSION=$version
LIBGUESTFS_BACKEND=direct
LIBGUESTFS_BACKEND_SETTINGS=force_tcg
ENV
mv "$ENV_FILE.tmp" "$ENV_FILE"
sed 's/^/export /' "$ENV_FILE"
