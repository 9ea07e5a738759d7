#!/usr/bin/env bash
# Builds the benchmark's input disks in bench/work/ (gitignored). Each output is cached: it is
# rebuilt only when missing (delete the file, or pass --force, to rebuild).
#
#   debian.raw         4 GiB sparse raw disk, GPT, one Linux partition at 1 MiB holding an ext4
#                      Debian bookworm root filesystem (mmdebstrap --variant=standard plus
#                      linux-image-amd64: about 0.8 GiB of data)
#   debian-zlib.qcow2  debian.raw converted by `qemu-img convert -c -O qcow2` (zlib), the input
#                      of the qcow2-zlib->raw case
#   debian-stream.vmdk debian.raw converted by qemu-img to a streamOptimized VMDK, the input of
#                      the vmdk-stream->raw case
#   random.raw         1 GiB of /dev/urandom (incompressible)
#
# Needs root (mmdebstrap's root mode, mkfs.ext4 -d preserving ownership) and network access to
# Debian's archive. Nothing is mounted: the filesystem is built with `mkfs.ext4 -d ROOTDIR`.
#
# Environment: MIRROR (default http://deb.debian.org/debian), SUITE (default bookworm),
# KEEP_ROOTFS=1 keeps the unpacked root directory in bench/work/rootfs for reuse.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$HERE/work"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SUITE="${SUITE:-bookworm}"
DISK_SIZE=$((4 * 1024 * 1024 * 1024))
RANDOM_SIZE_MIB=1024
FORCE=0

for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h | --help)
      sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "make-test-disks: unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

log() { printf '[make-test-disks] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "make-test-disks: must run as root (mmdebstrap root mode, mkfs.ext4 -d ownership)" >&2
  exit 1
fi

# --- tools -------------------------------------------------------------------------------
need_pkgs=()
command -v mmdebstrap > /dev/null || need_pkgs+=(mmdebstrap)
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v mkfs.ext4 > /dev/null || need_pkgs+=(e2fsprogs)
command -v sfdisk > /dev/null || need_pkgs+=(fdisk)
command -v qemu-img > /dev/null || need_pkgs+=(qemu-utils)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${need_pkgs[@]}"
fi

mkdir -p "$WORK"
SECONDS=0

# --- (a) Debian disk ---------------------------------------------------------------------
DISK="$WORK/debian.raw"
if [ "$FORCE" -eq 1 ]; then rm -f "$DISK" "$WORK/debian-zlib.qcow2" "$WORK/debian-stream.vmdk" "$WORK/random.raw"; fi

if [ ! -f "$DISK" ]; then
  ROOTFS="$WORK/rootfs"
  PART="$WORK/debian.part.tmp"
  TMPDISK="$WORK/debian.raw.tmp"
  rm -f "$PART" "$TMPDISK"

  if [ ! -d "$ROOTFS" ] || [ ! -e "$ROOTFS/etc/debian_version" ]; then
    rm -rf "$ROOTFS"
    log "mmdebstrap $SUITE (variant standard + linux-image-amd64) -> $ROOTFS"
    t0=$SECONDS
    mmdebstrap --mode=root --variant=standard --include=linux-image-amd64 \
      "$SUITE" "$ROOTFS" "$MIRROR"
    log "mmdebstrap took $((SECONDS - t0)) s"
  else
    log "reusing existing root directory $ROOTFS"
  fi
  log "root filesystem data: $(du -sh --apparent-size "$ROOTFS" | cut -f1) apparent, $(du -sh "$ROOTFS" | cut -f1) allocated"

  log "partitioning $TMPDISK (GPT, one Linux partition at 1 MiB)"
  truncate -s "$DISK_SIZE" "$TMPDISK"
  printf 'label: gpt\nstart=2048, type=linux, name="root"\n' | sfdisk --quiet "$TMPDISK"
  # start and size (in 512-byte sectors) of partition 1
  read -r PSTART PSIZE < <(sfdisk --dump "$TMPDISK" | sed -n 's/.*start= *\([0-9]*\), *size= *\([0-9]*\).*/\1 \2/p' | head -n1)
  if [ -z "${PSTART:-}" ] || [ -z "${PSIZE:-}" ]; then
    echo "make-test-disks: could not read the partition table back" >&2
    exit 1
  fi
  log "partition 1: start sector $PSTART, $PSIZE sectors ($((PSIZE * 512 / 1048576)) MiB)"

  log "mkfs.ext4 -d $ROOTFS (no mount)"
  t0=$SECONDS
  truncate -s $((PSIZE * 512)) "$PART"
  mkfs.ext4 -q -F -L debian-root -b 4096 -d "$ROOTFS" "$PART"
  if ! e2fsck -fn "$PART" > /dev/null 2>&1; then
    echo "make-test-disks: e2fsck found problems in the new filesystem" >&2
    exit 1
  fi
  log "mkfs.ext4 took $((SECONDS - t0)) s"

  log "placing the filesystem at byte offset $((PSTART * 512)) (dd conv=notrunc,sparse)"
  dd if="$PART" of="$TMPDISK" bs=64K seek=$((PSTART * 512 / 65536)) conv=notrunc,sparse status=none
  rm -f "$PART"
  mv "$TMPDISK" "$DISK"
  if [ "${KEEP_ROOTFS:-0}" != 1 ]; then rm -rf "$ROOTFS"; fi
else
  log "cached: $DISK"
fi

# --- qcow2 (zlib) copy of the Debian disk, made by qemu-img ------------------------------
QZ="$WORK/debian-zlib.qcow2"
if [ ! -f "$QZ" ]; then
  log "qemu-img convert -c -O qcow2 debian.raw -> $QZ"
  qemu-img convert -c -O qcow2 "$DISK" "$QZ.tmp"
  mv "$QZ.tmp" "$QZ"
else
  log "cached: $QZ"
fi

# --- streamOptimized VMDK copy of the Debian disk, made by qemu-img ------------------------
QV="$WORK/debian-stream.vmdk"
if [ ! -f "$QV" ]; then
  log "qemu-img convert -O vmdk -o subformat=streamOptimized debian.raw -> $QV"
  qemu-img convert -O vmdk -o subformat=streamOptimized "$DISK" "$QV.tmp"
  mv "$QV.tmp" "$QV"
else
  log "cached: $QV"
fi

# --- (b) incompressible image -------------------------------------------------------------
RND="$WORK/random.raw"
if [ ! -f "$RND" ]; then
  log "writing $RANDOM_SIZE_MIB MiB of /dev/urandom -> $RND"
  dd if=/dev/urandom of="$RND.tmp" bs=1M count="$RANDOM_SIZE_MIB" iflag=fullblock status=none
  mv "$RND.tmp" "$RND"
else
  log "cached: $RND"
fi

# --- summary ------------------------------------------------------------------------------
log "done in ${SECONDS} s"
printf '%-20s %14s %14s %10s\n' FILE APPARENT_BYTES ALLOCATED_BYTES ALLOC_MIB
for f in "$DISK" "$QZ" "$RND"; do
  app=$(stat -c %s "$f")
  alloc=$(($(stat -c %b "$f") * $(stat -c %B "$f")))
  printf '%-20s %14s %14s %10s\n' "$(basename "$f")" "$app" "$alloc" "$((alloc / 1048576))"
done
echo
sfdisk --list "$DISK" | sed 's/^/  /'
echo
du -h --apparent-size "$DISK" "$QZ" "$RND" | sed 's/^/  apparent  /'
du -h "$DISK" "$QZ" "$RND" | sed 's/^/  allocated /'
