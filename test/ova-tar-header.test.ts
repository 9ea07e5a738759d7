import { test } from "node:test";
import assert from "node:assert/strict";
import { open } from "node:fs/promises";
import { join } from "node:path";
import {
  TAR_BLOCK,
  USTAR_MAX_SIZE,
  decodeTarHeader,
  encodeTarHeader,
  flavourForSize,
  tarPadding,
} from "../src/formats/ova/tar-header.js";
import { scratch } from "./helpers/tools.js";
import { tarList } from "./helpers/ova-tools.js";

const GiB = 2 ** 30;

test("USTAR up to 8 GiB - 1, GNU from 8 GiB; a lower threshold switches earlier", () => {
  assert.equal(flavourForSize(0), "ustar");
  assert.equal(flavourForSize(USTAR_MAX_SIZE), "ustar");
  assert.equal(flavourForSize(USTAR_MAX_SIZE + 1), "gnu");
  assert.equal(flavourForSize(9 * GiB), "gnu");
  assert.equal(flavourForSize(4096, 4096), "gnu");
  assert.equal(flavourForSize(4095, 4096), "ustar");
  // A threshold above USTAR's capacity cannot make an unencodable USTAR header.
  assert.equal(flavourForSize(USTAR_MAX_SIZE + 1, 100 * GiB), "gnu");
  assert.throws(() => encodeTarHeader({ name: "x", size: USTAR_MAX_SIZE + 1, mtime: 0 }, "ustar"), RangeError);
});

test("a USTAR header: magic, octal size, checksum, decodes back", () => {
  const h = encodeTarHeader({ name: "disk1.vmdk", size: 123456, mtime: 1_700_000_000 }, "ustar");
  assert.equal(h.length, TAR_BLOCK);
  assert.equal(h.toString("latin1", 257, 265), "ustar\u000000");
  assert.equal(h.toString("ascii", 124, 136), "00000361100\0");
  const d = decodeTarHeader(h, "t");
  assert.deepEqual(
    [d.name, d.size, d.type, d.flavour, d.mtime],
    ["disk1.vmdk", 123456, "file", "ustar", 1_700_000_000],
  );
});

test("a 9 GiB member gets a GNU header with a base-256 size", () => {
  const size = 9 * GiB + 512;
  const h = encodeTarHeader({ name: "big.vmdk", size, mtime: 0 }, "gnu");
  assert.equal(h.toString("latin1", 257, 265), "ustar  \0");
  assert.equal(h[124], 0x80, "base-256 marker");
  assert.equal(Number(h.subarray(128, 136).readBigUInt64BE()), size);
  assert.equal(decodeTarHeader(h, "t").size, size);
  assert.equal(decodeTarHeader(h, "t").flavour, "gnu");
});

test("a damaged header is refused by its checksum; names must be short printable ASCII", () => {
  const h = encodeTarHeader({ name: "a.ovf", size: 1, mtime: 0 }, "ustar");
  h[0] = 0x62;
  assert.throws(() => decodeTarHeader(h, "t"), /checksum/);
  assert.throws(() => encodeTarHeader({ name: "x".repeat(101), size: 0, mtime: 0 }, "ustar"), RangeError);
  assert.throws(() => encodeTarHeader({ name: "é.vmdk", size: 0, mtime: 0 }, "ustar"), RangeError);
});

test("GNU tar lists a 9 GiB member written with our GNU header (archive kept sparse: no 9 GiB written)", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "big.tar");
  const size = 9 * GiB;
  const h = await open(path, "w");
  try {
    await h.write(encodeTarHeader({ name: "big.vmdk", size, mtime: 1_700_000_000 }, "gnu"), 0, TAR_BLOCK, 0);
    // The member's data is a hole; then the two end-of-archive blocks.
    const end = TAR_BLOCK + size + tarPadding(size);
    await h.truncate(end + 2 * TAR_BLOCK);
  } finally {
    await h.close();
  }
  const list = await tarList(path);
  assert.deepEqual(
    list.map((m) => [m.name, m.size]),
    [["big.vmdk", size]],
  );
});
