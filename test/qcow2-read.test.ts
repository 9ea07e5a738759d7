/**
 * The qcow2 read side against qemu: images qemu-img and qemu-io write with every option must read back
 * byte-identical to `qemu-img convert -O raw`, with the same data/zero/unallocated map as `qemu-img map`;
 * hostile images (patched qemu-made files) must be refused with typed errors naming the problem; named
 * files (backing, external data) are opened only when the caller allows them.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { copyFile, readFile, symlink, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import zlib from "node:zlib";
import { openImage } from "../src/formats/engine/open-image.js";
import { nativeInflateBatch } from "../src/formats/engine/native-inflate-batch.js";
import { qcow2Driver } from "../src/formats/drivers/qcow2/qcow2-driver.js";
import { CorruptImageError, ReferenceRefusedError, UnsupportedFeatureError } from "../src/formats/errors.js";
import type { Extent, ImageSource, OpenOptions } from "../src/formats/types.js";
import {
  makeRaw,
  mixedRegions,
  pattern,
  qemuImg,
  qemuInfo,
  run,
  runOk,
  scratch,
  textPattern,
} from "./helpers/tools.js";
import { extentsOf, qemuRaw, readWhole } from "./helpers/image-checks.js";

const MiB = 2 ** 20;
/** Not a multiple of any cluster size above 512 bytes (qemu rounds sizes to 512 itself). */
const ODD_SIZE = 13 * MiB + 7 * 512;

// ---------------------------------------------------------------------------------------------------------
// helpers

async function open(path: string, options: OpenOptions = {}): Promise<ImageSource> {
  return (await openImage(path, { ...options, format: "qcow2" })).source;
}

interface QemuMapEntry {
  readonly start: number;
  readonly length: number;
  readonly present: boolean;
  readonly zero: boolean;
  readonly data: boolean;
}

async function qemuMap(image: string): Promise<QemuMapEntry[]> {
  return JSON.parse(await qemuImg("map", "--output=json", image)) as QemuMapEntry[];
}

/** Extents must tile [start, end) in order, and no two neighbours may share a kind (they would be merged). */
function assertTiles(extents: readonly Extent[], start: number, end: number): void {
  let pos = start;
  for (const [i, e] of extents.entries()) {
    assert.equal(e.offset, pos, `extent ${i} starts at ${e.offset}, expected ${pos}`);
    assert.ok(e.length > 0, `extent ${i} is empty`);
    if (i > 0) assert.notEqual(e.kind, extents[i - 1]!.kind, `extents ${i - 1} and ${i} were not merged`);
    pos += e.length;
  }
  assert.equal(pos, end);
}

/**
 * Our map against qemu's: "data" exactly where qemu says data; elsewhere, "unallocated" exactly where qemu
 * says not present (no backing file here), else "zero".
 */
function assertSameMap(ours: readonly Extent[], theirs: readonly QemuMapEntry[]): void {
  let i = 0;
  for (const q of theirs) {
    const qEnd = q.start + q.length;
    while (i < ours.length && ours[i]!.offset + ours[i]!.length <= q.start) i++;
    for (let j = i; j < ours.length && ours[j]!.offset < qEnd; j++) {
      const e = ours[j]!;
      const expected = q.data ? "data" : q.present ? "zero" : "unallocated";
      assert.equal(e.kind, expected, `at ${Math.max(e.offset, q.start)}: ours ${e.kind}, qemu ${JSON.stringify(q)}`);
    }
  }
}

async function mixedRaw(dir: string, size = ODD_SIZE): Promise<string> {
  const path = join(dir, "source.raw");
  await makeRaw(path, size, mixedRegions(size));
  return path;
}

/** Reads whole via our driver and via qemu, compares bytes and (optionally) maps. */
async function assertReadsLikeQemu(dir: string, image: string, compareMap = true): Promise<ImageSource> {
  const source = await open(image);
  try {
    const [ours, theirs] = await Promise.all([readWhole(source), qemuRaw(dir, image)]);
    assert.equal(source.virtualSize, theirs.length);
    assert.ok(ours.equals(theirs), `${image}: bytes differ from qemu-img convert -O raw`);
    const extents = await extentsOf(source);
    assertTiles(extents, 0, source.virtualSize);
    if (compareMap) assertSameMap(extents, await qemuMap(image));
    return source;
  } catch (e) {
    await source.close();
    throw e;
  }
}

const header = {
  l1Offset: (b: Buffer) => Number(b.readBigUInt64BE(40)),
  refcountOffset: (b: Buffer) => Number(b.readBigUInt64BE(48)),
  clusterSize: (b: Buffer) => 2 ** b.readUInt32BE(20),
  /** Host offset of the L2 table for L1 entry `index`. */
  l2Offset: (b: Buffer, index = 0) => Number(b.readBigUInt64BE(header.l1Offset(b) + index * 8) & 0x00fffffffffffe00n),
};

/** A qemu-made image read into memory, patched by `patch`, written to `name`. */
async function patched(
  dir: string,
  source: string,
  name: string,
  patch: (b: Buffer) => Buffer | void,
): Promise<string> {
  const original = await readFile(source);
  const result = patch(original) ?? original;
  const path = join(dir, name);
  await writeFile(path, result);
  return path;
}

/** Opens and reads the whole disk: hostile images may fail at either step. */
async function openAndReadAll(path: string, options: OpenOptions = {}): Promise<void> {
  const source = await open(path, options);
  try {
    await readWhole(source);
    await extentsOf(source);
  } finally {
    await source.close();
  }
}

/**
 * Makes the rest of test `t` inflate zlib clusters with the native batch inflater (which must be built here:
 * scripts/build-native.sh) or with node:zlib, as CHROMOGENIC_NATIVE_INFLATE chooses at each read.
 */
function withInflater(t: TestContext, inflater: "batch" | "node:zlib"): void {
  const before = process.env.CHROMOGENIC_NATIVE_INFLATE;
  t.after(() => {
    if (before === undefined) delete process.env.CHROMOGENIC_NATIVE_INFLATE;
    else process.env.CHROMOGENIC_NATIVE_INFLATE = before;
  });
  process.env.CHROMOGENIC_NATIVE_INFLATE = inflater === "batch" ? "on" : "off";
  if (inflater === "batch") {
    assert.ok(nativeInflateBatch(), "native/inflate-batch.node is not built (scripts/build-native.sh)");
  } else {
    assert.equal(nativeInflateBatch(), null);
  }
}

/** A standard 64 KiB-cluster v3 image of the mixed content, made by qemu. */
async function goodImage(dir: string, options = "compat=1.1"): Promise<string> {
  const raw = await mixedRaw(dir);
  const image = join(dir, "good.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", "-o", options, raw, image);
  return image;
}

// ---------------------------------------------------------------------------------------------------------
// images qemu-img writes, one option at a time

const convertCases: ReadonlyArray<{ name: string; args: string[] }> = [
  { name: "compat=0.10", args: ["-o", "compat=0.10"] },
  { name: "compat=1.1", args: ["-o", "compat=1.1"] },
  { name: "cluster_size=512", args: ["-o", "cluster_size=512"] },
  { name: "cluster_size=4k", args: ["-o", "cluster_size=4k"] },
  { name: "cluster_size=64k", args: ["-o", "cluster_size=64k"] },
  { name: "cluster_size=2M", args: ["-o", "cluster_size=2M"] },
  { name: "compressed zlib", args: ["-c", "-o", "compression_type=zlib"] },
  { name: "compressed zstd", args: ["-c", "-o", "compression_type=zstd"] },
  { name: "compressed zlib, compat=0.10", args: ["-c", "-o", "compat=0.10"] },
  { name: "compressed zstd, cluster_size=2M", args: ["-c", "-o", "compression_type=zstd,cluster_size=2M"] },
  { name: "compressed zlib, cluster_size=512", args: ["-c", "-o", "cluster_size=512"] },
  { name: "extended_l2=on", args: ["-o", "extended_l2=on"] },
  { name: "extended_l2=on, cluster_size=128k", args: ["-o", "extended_l2=on,cluster_size=128k"] },
  { name: "extended_l2=on, compressed", args: ["-c", "-o", "extended_l2=on,cluster_size=128k"] },
  { name: "lazy_refcounts=on", args: ["-o", "lazy_refcounts=on"] },
  { name: "preallocation=off", args: ["-o", "preallocation=off"] },
  { name: "preallocation=metadata", args: ["-o", "preallocation=metadata"] },
  { name: "preallocation=falloc", args: ["-o", "preallocation=falloc"] },
  { name: "preallocation=full", args: ["-o", "preallocation=full"] },
  { name: "refcount_bits=1", args: ["-o", "refcount_bits=1"] },
  { name: "refcount_bits=64", args: ["-o", "refcount_bits=64"] },
];

for (const c of convertCases) {
  test(`qcow2 read: qemu-img convert ${c.name} reads back identical, same map`, async (t) => {
    const dir = await scratch(t);
    const raw = await mixedRaw(dir);
    const image = join(dir, "image.qcow2");
    await qemuImg("convert", "-f", "raw", "-O", "qcow2", ...c.args, raw, image);
    const source = await assertReadsLikeQemu(dir, image);
    try {
      // The source raw is the ground truth too (qemu and we could agree on a wrong answer otherwise).
      assert.ok((await readWhole(source)).equals(await readFile(raw)));
      const info = await qemuInfo(image);
      const details = await source.details();
      const specific = (info["format-specific"] as { data: Record<string, unknown> }).data;
      assert.equal(details.format, "qcow2");
      assert.equal(details.virtualSize, info["virtual-size"]);
      assert.equal(details.clusterSize, info["cluster-size"]);
      assert.equal(details.compression, specific["compression-type"] ?? "zlib");
      assert.equal(details.formatSpecific.compat, specific.compat);
      assert.equal(details.formatSpecific.refcountBits, specific["refcount-bits"]);
      assert.equal(details.formatSpecific.lazyRefcounts, specific["lazy-refcounts"] ?? false);
      assert.equal(details.formatSpecific.extendedL2, specific["extended-l2"] ?? false);
      if (c.args.includes("-c")) assert.ok((details.formatSpecific.compressedClusters as number) > 0);
      else assert.equal(details.formatSpecific.compressedClusters, 0);
      let dataBytes = 0;
      for (const e of await extentsOf(source)) if (e.kind === "data") dataBytes += e.length;
      assert.equal(details.allocatedBytes, dataBytes);
    } finally {
      await source.close();
    }
  });
}

test("qcow2 read: qcowinfo agrees on version and virtual size", async (t) => {
  const dir = await scratch(t);
  const raw = await mixedRaw(dir);
  for (const compat of ["0.10", "1.1"]) {
    const image = join(dir, `info-${compat}.qcow2`);
    await qemuImg("convert", "-f", "raw", "-O", "qcow2", "-o", `compat=${compat},cluster_size=4k`, raw, image);
    const text = await runOk("qcowinfo", [image]);
    const version = Number(/Format version\s*:\s*(\d+)/.exec(text)?.[1]);
    const mediaSize = Number(/Media size\s*:.*\((\d+) bytes\)/.exec(text)?.[1]);
    const encryption = /Encryption method\s*:\s*(\S+)/.exec(text)?.[1];
    const source = await open(image);
    try {
      const details = await source.details();
      assert.equal(details.formatSpecific.version, version, text);
      assert.equal(details.virtualSize, mediaSize, text);
      assert.equal(encryption, "None");
      assert.equal(details.clusterSize, 4096);
    } finally {
      await source.close();
    }
  }
});

// ---------------------------------------------------------------------------------------------------------
// images written cluster by cluster with qemu-io: zero clusters, subclusters, partial clusters

async function qemuIo(image: string, ...commands: string[]): Promise<void> {
  await runOk("qemu-io", ["-f", "qcow2", ...commands.flatMap((c) => ["-c", c]), image]);
}

test("qcow2 read: zero clusters written by qemu-io (zero flag, with and without allocation)", async (t) => {
  const dir = await scratch(t);
  const image = await goodImage(dir);
  // Over allocated data (keeps the host cluster: ZERO_ALLOC), unmapped (ZERO_PLAIN), and over a hole.
  await qemuIo(image, "write -z 1M 128k", "write -z -u 2M 64k", "write -z 9M 192k", "write -P 0xa5 9M 512");
  const source = await assertReadsLikeQemu(dir, image);
  try {
    const extents = await extentsOf(source);
    const zeroBytes = extents.filter((e) => e.kind === "zero").reduce((n, e) => n + e.length, 0);
    assert.ok(zeroBytes >= 128 * 1024 + 64 * 1024, `expected zero extents, got ${JSON.stringify(extents)}`);
    const at1M = extents.find((e) => e.offset <= MiB && MiB < e.offset + e.length);
    assert.equal(at1M?.kind, "zero");
    const bytes = await source.read(MiB - 100, 200);
    assert.ok(bytes.subarray(100).equals(Buffer.alloc(100)));
  } finally {
    await source.close();
  }
});

test("qcow2 read: v2 image after qemu-io zero writes (no zero flag in v2)", async (t) => {
  const dir = await scratch(t);
  const image = await goodImage(dir, "compat=0.10");
  await qemuIo(image, "write -z 1M 128k", "write -P 0x11 3M 5000");
  (await assertReadsLikeQemu(dir, image)).close();
});

test("qcow2 read: extended L2 subclusters written by qemu-io", async (t) => {
  const dir = await scratch(t);
  const image = join(dir, "sub.qcow2");
  await qemuImg("create", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=128k", image, String(ODD_SIZE));
  await qemuIo(
    image,
    "write -P 0x55 4k 4k", // one subcluster of a fresh cluster
    "write -z 64k 8k", // zero subclusters in the same cluster
    "write -P 0x66 200k 100k", // spans two clusters, partial subclusters
    "write -P 0x77 1M 128k", // a whole cluster
    "write -z 1M 4k", // a zero subcluster over allocated data
    "write -P 0x88 12M 4k",
  );
  const source = await assertReadsLikeQemu(dir, image);
  try {
    const extents = await extentsOf(source);
    // Subcluster granularity: a 4 KiB data extent at 4k inside an otherwise unallocated 128 KiB cluster.
    assert.deepEqual(
      extents.find((e) => e.offset === 4096),
      { offset: 4096, length: 4096, kind: "data" },
    );
    assert.ok(extents.some((e) => e.kind === "zero" && e.offset === 64 * 1024 && e.length === 8192));
    const middle = await source.read(4096 - 10, 20);
    assert.ok(middle.subarray(0, 10).equals(Buffer.alloc(10)));
    assert.ok(middle.subarray(10).equals(Buffer.alloc(10, 0x55)));
  } finally {
    await source.close();
  }
});

test("qcow2 read: extents of a sub-range start mid-cluster and match the full map", async (t) => {
  const dir = await scratch(t);
  const image = join(dir, "sub.qcow2");
  await qemuImg("create", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k", image, String(ODD_SIZE));
  await qemuIo(image, "write -P 1 6k 2k", "write -z 70k 2k", "write -P 2 5M 3M");
  const source = await open(image);
  try {
    const full = await extentsOf(source);
    const from = 5 * 1024 + 17;
    const to = 6 * MiB + 3;
    const part = await extentsOf(source, from, to - from);
    assertTiles(part, from, to);
    for (const e of part) {
      const covering = full.find((f) => f.offset <= e.offset && e.offset < f.offset + f.length);
      assert.equal(covering?.kind, e.kind, `kind at ${e.offset}`);
    }
    await assert.rejects(() => extentsOf(source, ODD_SIZE - 10, 11), RangeError);
    await assert.rejects(() => source.read(ODD_SIZE - 10, 11), RangeError);
    await assert.rejects(() => source.read(-1, 1), RangeError);
    assert.equal((await source.read(ODD_SIZE, 0)).length, 0);
  } finally {
    await source.close();
  }
});

const compressedReadCases = [
  { type: "zlib", inflater: "batch" },
  { type: "zlib", inflater: "node:zlib" },
  { type: "zstd" },
] as const;

for (const c of compressedReadCases) {
  const label = "inflater" in c ? `${c.type}, ${c.inflater}` : c.type;
  test(`qcow2 read: many concurrent unaligned reads of a compressed image match the raw source (${label})`, async (t) => {
    if ("inflater" in c) withInflater(t, c.inflater);
    const dir = await scratch(t);
    const raw = join(dir, "source.raw");
    const size = 12 * MiB;
    await makeRaw(raw, size, [
      { offset: 0, data: textPattern(5 * MiB, 5) },
      { offset: 6 * MiB, data: pattern(MiB, 3) },
      { offset: 8 * MiB, data: textPattern(3 * MiB, 8) },
    ]);
    const expected = await readFile(raw);
    const image = join(dir, `c-${c.type}.qcow2`);
    await qemuImg("convert", "-c", "-f", "raw", "-O", "qcow2", "-o", `compression_type=${c.type}`, raw, image);
    const source = await open(image);
    try {
      let seed = 12345;
      const next = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const reads = Array.from({ length: 200 }, () => {
        const offset = next(size - 1);
        const length = 1 + next(Math.min(300 * 1024, size - offset));
        return source.read(offset, length).then((got) => {
          assert.ok(got.equals(expected.subarray(offset, offset + length)), `read ${offset}+${length}`);
        });
      });
      // The engine's reads: whole 4 MiB pieces, two at a time, into buffers it reuses.
      const pieces = [Buffer.alloc(4 * MiB), Buffer.alloc(4 * MiB)];
      for (let at = 0; at < size; at += 8 * MiB) {
        const got = await Promise.all(
          pieces.map((piece, i) => {
            const offset = at + i * 4 * MiB;
            return offset < size ? source.read(offset, Math.min(4 * MiB, size - offset), piece) : null;
          }),
        );
        got.forEach((g, i) => {
          if (g)
            assert.ok(g.equals(expected.subarray(at + i * 4 * MiB, at + i * 4 * MiB + g.length)), `piece ${at}+${i}`);
        });
      }
      await Promise.all(reads);
    } finally {
      await source.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// backing files and external data files

test("qcow2 read: an allowed raw backing file supplies unallocated ranges", async (t) => {
  const dir = await scratch(t);
  const base = join(dir, "base.raw");
  await makeRaw(base, 10 * MiB, [
    { offset: 0, data: pattern(2 * MiB, 21) },
    { offset: 6 * MiB, data: pattern(MiB, 22) },
  ]);
  const overlay = join(dir, "overlay.qcow2");
  // Relative name, larger than the base (its tail reads as zeros), some clusters overwritten or zeroed.
  await runOk("qemu-img", ["create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay, String(ODD_SIZE)]);
  await qemuIo(overlay, "write -P 0x42 1M 100k", "write -z 6M 64k", "write -P 0x43 12M 64k");

  await assert.rejects(
    () => open(overlay),
    (e: unknown) => {
      assert.ok(e instanceof ReferenceRefusedError);
      assert.match(e.message, /backing file "base\.raw"/);
      assert.match(e.message, /--allow-reference PATH/);
      assert.match(e.message, /allowedPaths/);
      return true;
    },
  );

  const source = await open(overlay, { references: { allowedPaths: [base] } });
  try {
    assert.ok((await readWhole(source)).equals(await qemuRaw(dir, overlay)));
    const details = await source.details();
    assert.equal(details.backingFile, "base.raw");
    assert.equal(details.backingFormat, "raw");
    const extents = await extentsOf(source);
    assertTiles(extents, 0, ODD_SIZE);
    // 0..1M comes from the base (data there), 6M is a zero cluster here, past 10M the base has ended.
    assert.equal(extents.find((e) => e.offset === 0)?.kind, "data");
    assert.equal(extents.find((e) => e.offset === 6 * MiB)?.kind, "zero");
    const tail = extents.find((e) => e.offset <= 11 * MiB && 11 * MiB < e.offset + e.length);
    assert.equal(tail?.kind, "unallocated");
  } finally {
    await source.close();
  }
});

test("qcow2 read: a qcow2 backing chain, allowed via a symlinked path", async (t) => {
  const dir = await scratch(t);
  const raw = await mixedRaw(dir);
  const base = join(dir, "base.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k", raw, base);
  const mid = join(dir, "mid.qcow2");
  await qemuImg("create", "-f", "qcow2", "-b", base, "-F", "qcow2", mid);
  await qemuIo(mid, "write -P 0x31 2M 300k");
  const top = join(dir, "top.qcow2");
  await qemuImg("create", "-f", "qcow2", "-b", mid, "-F", "qcow2", "-o", "cluster_size=128k", top);
  await qemuIo(top, "write -P 0x32 2200k 10k", "write -z 0 4k");
  const alias = join(dir, "alias-to-base.qcow2");
  await symlink(base, alias);

  // The middle image is allowed but not the base: refused one level down.
  await assert.rejects(() => open(top, { references: { allowedPaths: [mid] } }), ReferenceRefusedError);
  const source = await open(top, { references: { allowedPaths: [mid, alias] } });
  try {
    assert.ok((await readWhole(source)).equals(await qemuRaw(dir, top)));
  } finally {
    await source.close();
  }
});

test("qcow2 read: backing chains that loop or run deeper than 16 are refused", async (t) => {
  const dir = await scratch(t);
  const a = join(dir, "a.qcow2");
  const b = join(dir, "b.qcow2");
  await qemuImg("create", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", a, "1M");
  await qemuImg("create", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", b, "1M");
  await assert.rejects(
    () => open(a, { references: { allowedPaths: [a, b] } }),
    (e: unknown) => {
      assert.ok(e instanceof CorruptImageError);
      assert.match(e.message, /backing chain loops/);
      return true;
    },
  );

  const chain: string[] = [join(dir, "layer0.qcow2")];
  await qemuImg("create", "-f", "qcow2", chain[0]!, "1M");
  for (let i = 1; i <= 17; i++) {
    chain.push(join(dir, `layer${i}.qcow2`));
    await qemuImg("create", "-f", "qcow2", "-b", `layer${i - 1}.qcow2`, "-F", "qcow2", chain[i]!);
  }
  // 16 images in a chain are fine; 17 are not.
  const ok = await open(chain[15]!, { references: { allowedPaths: chain } });
  await ok.close();
  await assert.rejects(() => open(chain[17]!, { references: { allowedPaths: chain } }), /deeper than 16/);
});

test("qcow2 read: a backing file naming /etc/shadow or a FIFO is refused without being opened", async (t) => {
  const dir = await scratch(t);
  const evil = join(dir, "evil.qcow2");
  await qemuImg("create", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw", evil, "1M");
  const decoy = join(dir, "decoy.raw");
  await makeRaw(decoy, MiB);
  for (const options of [{}, { references: { allowedPaths: [] } }, { references: { allowedPaths: [decoy] } }]) {
    await assert.rejects(
      () => open(evil, options),
      (e: unknown) => {
        assert.ok(e instanceof ReferenceRefusedError);
        assert.match(e.message, /\/etc\/shadow/);
        return true;
      },
    );
  }
  // Opening a FIFO for reading blocks until a writer comes: if the driver opened it, this test would hang.
  const fifo = join(dir, "trap.fifo");
  await runOk("mkfifo", [fifo]);
  const trapped = join(dir, "trapped.qcow2");
  await qemuImg("create", "-f", "qcow2", "-u", "-b", "trap.fifo", "-F", "raw", trapped, "1M");
  await assert.rejects(() => open(trapped, { references: { allowedPaths: [decoy] } }), ReferenceRefusedError);
});

test("qcow2 read: an external data file is refused unless allowed, then read through", async (t) => {
  const dir = await scratch(t);
  for (const rawFlag of ["off", "on"]) {
    const image = join(dir, `ext-${rawFlag}.qcow2`);
    const data = join(dir, `ext-${rawFlag}.data`);
    await qemuImg("create", "-f", "qcow2", "-o", `data_file=${data},data_file_raw=${rawFlag}`, image, String(ODD_SIZE));
    await qemuIo(image, "write -P 0x5a 0 70k", "write -P 0x5b 3M 1M", "write -z 3M 64k");

    await assert.rejects(
      () => open(image),
      (e: unknown) => {
        assert.ok(e instanceof ReferenceRefusedError);
        assert.match(e.message, /external data file/);
        assert.ok(e.message.includes(data), e.message);
        return true;
      },
    );
    const source = await open(image, { references: { allowedPaths: [data] } });
    try {
      assert.ok((await readWhole(source)).equals(await qemuRaw(dir, image)));
      const details = await source.details();
      assert.equal(details.dataFile, data);
      assert.equal(details.formatSpecific.rawExternalData, rawFlag === "on");
      const head = await source.read(0, 10);
      assert.ok(head.equals(Buffer.alloc(10, 0x5a)));
    } finally {
      await source.close();
    }
  }
});

// ---------------------------------------------------------------------------------------------------------
// hostile images: qemu-made files with fields patched

interface HostileCase {
  readonly name: string;
  readonly base?: "plain" | "zlib" | "zstd" | "lazy";
  readonly patch: (b: Buffer) => Buffer | void;
  readonly error: new (...args: never[]) => Error;
  readonly message: RegExp;
}

/** The L2 entry index (in the first L2 table) of the first compressed cluster. */
function firstCompressedEntry(b: Buffer): { at: number; hostOffset: number } {
  const l2 = header.l2Offset(b);
  const clusterBits = b.readUInt32BE(20);
  for (let i = 0; i < header.clusterSize(b) / 8; i++) {
    const entry = b.readBigUInt64BE(l2 + i * 8);
    if (entry & (1n << 62n)) {
      const offsetBits = BigInt(70 - clusterBits);
      return { at: l2 + i * 8, hostOffset: Number(entry & ((1n << offsetBits) - 1n)) };
    }
  }
  throw new Error("no compressed cluster in the image");
}

/** Appends `stream` at a sector boundary and points the first compressed cluster's L2 entry at it. */
function withCompressedStream(b: Buffer, stream: Buffer): Buffer {
  const { at } = firstCompressedEntry(b);
  const clusterBits = b.readUInt32BE(20);
  const start = Math.ceil(b.length / 512) * 512;
  const sectors = Math.ceil(stream.length / 512);
  const out = Buffer.alloc(start + sectors * 512);
  b.copy(out);
  stream.copy(out, start);
  const descriptor = (1n << 62n) | (BigInt(sectors - 1) << BigInt(70 - clusterBits)) | BigInt(start);
  out.writeBigUInt64BE(descriptor, at);
  return out;
}

const hostileCases: readonly HostileCase[] = [
  {
    name: "file truncated inside the header",
    patch: (b) => b.subarray(0, 60),
    error: CorruptImageError,
    message: /too short for a qcow2 header/,
  },
  {
    name: "file truncated before its tables",
    patch: (b) => b.subarray(0, header.clusterSize(b) * 2),
    error: CorruptImageError,
    message: /beyond the end of the file/,
  },
  {
    name: "L1 table offset beyond the file",
    patch: (b) => void b.writeBigUInt64BE(BigInt(header.clusterSize(b) * 100000), 40),
    error: CorruptImageError,
    message: /L1 table at offset \d+ .* beyond the end of the file/,
  },
  {
    name: "refcount table offset beyond the file",
    patch: (b) => void b.writeBigUInt64BE(BigInt(header.clusterSize(b) * 100000), 48),
    error: CorruptImageError,
    message: /refcount table at offset \d+ .* beyond the end of the file/,
  },
  {
    name: "absurd l1_size",
    patch: (b) => void b.writeUInt32BE(0xffffffff, 36),
    error: CorruptImageError,
    message: /l1_size 4294967295 .* exceeds/,
  },
  {
    name: "l1_size too small for the virtual size",
    patch: (b) => void b.writeUInt32BE(0, 36),
    error: CorruptImageError,
    message: /l1_size 0 is too small/,
  },
  {
    name: "cluster_bits 8",
    patch: (b) => void b.writeUInt32BE(8, 20),
    error: CorruptImageError,
    message: /cluster_bits 8 is outside/,
  },
  {
    name: "cluster_bits 22",
    patch: (b) => void b.writeUInt32BE(22, 20),
    error: CorruptImageError,
    message: /cluster_bits 22 is outside/,
  },
  {
    name: "cluster_bits 63",
    patch: (b) => void b.writeUInt32BE(63, 20),
    error: CorruptImageError,
    message: /cluster_bits 63 is outside/,
  },
  {
    name: "virtual size beyond the 64 TiB limit",
    patch: (b) => void b.writeBigUInt64BE(1n << 60n, 24),
    error: CorruptImageError,
    message: /virtual size/,
  },
  {
    name: "unaligned L1 table offset",
    patch: (b) => void b.writeBigUInt64BE(BigInt(header.l1Offset(b) + 512), 40),
    error: CorruptImageError,
    message: /L1 table offset \d+ is not aligned/,
  },
  {
    name: "L1 table overlapping the refcount table",
    patch: (b) => void b.writeBigUInt64BE(BigInt(header.refcountOffset(b)), 40),
    error: CorruptImageError,
    message: /overlaps the L1 table|overlaps the refcount table/,
  },
  {
    name: "unaligned L2 table offset",
    patch: (b) => void b.writeBigUInt64BE((1n << 63n) | BigInt(header.l2Offset(b) + 512), header.l1Offset(b)),
    error: CorruptImageError,
    message: /L2 table for guest offset 0 is at host offset \d+, not aligned/,
  },
  {
    name: "L2 table beyond the file",
    patch: (b) => void b.writeBigUInt64BE(BigInt(header.clusterSize(b) * 1000000), header.l1Offset(b)),
    error: CorruptImageError,
    message: /L2 table for guest offset 0 .* beyond the end of the file/,
  },
  {
    name: "L2 table overlapping the L1 table",
    patch: (b) => void b.writeBigUInt64BE(BigInt(header.l1Offset(b)), header.l1Offset(b)),
    error: CorruptImageError,
    message: /L2 table .* overlaps the L1 table/,
  },
  {
    name: "L2 table overlapping the refcount table",
    patch: (b) => void b.writeBigUInt64BE(BigInt(header.refcountOffset(b)), header.l1Offset(b)),
    error: CorruptImageError,
    message: /L2 table .* overlaps the refcount table/,
  },
  {
    name: "data cluster beyond the file",
    patch: (b) => void b.writeBigUInt64BE((1n << 63n) | BigInt(header.clusterSize(b) * 1000000), header.l2Offset(b)),
    error: CorruptImageError,
    message: /L2 entry for guest offset 0 points to host offset \d+, beyond the end of the file/,
  },
  {
    name: "unaligned data cluster",
    patch: (b) => {
      const at = header.l2Offset(b);
      b.writeBigUInt64BE(b.readBigUInt64BE(at) + 512n, at);
    },
    error: CorruptImageError,
    message: /L2 entry for guest offset 0 points to host offset \d+, not aligned/,
  },
  {
    name: "crypt_method AES",
    patch: (b) => void b.writeUInt32BE(1, 32),
    error: UnsupportedFeatureError,
    message: /encrypted \(AES\)/,
  },
  {
    name: "unknown incompatible feature bit 5",
    patch: (b) => void b.writeBigUInt64BE(b.readBigUInt64BE(72) | (1n << 5n), 72),
    error: UnsupportedFeatureError,
    message: /incompatible qcow2 features .*bit 5/,
  },
  {
    name: "corrupt bit",
    patch: (b) => void b.writeBigUInt64BE(b.readBigUInt64BE(72) | 2n, 72),
    error: CorruptImageError,
    message: /marked this qcow2 image corrupt/,
  },
  {
    name: "version 4",
    patch: (b) => void b.writeUInt32BE(4, 4),
    error: UnsupportedFeatureError,
    message: /version 4/,
  },
  {
    name: "header_length not a multiple of 8",
    patch: (b) => void b.writeUInt32BE(107, 100),
    error: CorruptImageError,
    message: /header_length 107/,
  },
  {
    name: "header extension longer than the header cluster",
    patch: (b) => {
      const first = b.readUInt32BE(100);
      b.writeUInt32BE(0x12345678, first);
      b.writeUInt32BE(0x7fffffff, first + 4);
    },
    error: CorruptImageError,
    message: /header extension 0x12345678 .* claims 2147483647 bytes/,
  },
  {
    name: "backing file name longer than 1023 bytes",
    patch: (b) => {
      b.writeBigUInt64BE(BigInt(header.clusterSize(b) - 1024), 8);
      b.writeUInt32BE(5000, 16);
    },
    error: CorruptImageError,
    message: /backing file name length 5000/,
  },
  {
    name: "compression type bit with an unknown compression_type",
    patch: (b) => {
      b.writeBigUInt64BE(b.readBigUInt64BE(72) | (1n << 3n), 72);
      b[104] = 7;
    },
    error: UnsupportedFeatureError,
    message: /compression_type 7/,
  },
  {
    name: "external data file bit without a data file name",
    patch: (b) => void b.writeBigUInt64BE(b.readBigUInt64BE(72) | (1n << 2n), 72),
    error: UnsupportedFeatureError,
    message: /external data file but does not record/,
  },
  {
    name: "zlib cluster that inflates past the cluster size",
    base: "zlib",
    patch: (b) => withCompressedStream(b, zlib.deflateRawSync(Buffer.alloc(4 * MiB), { windowBits: 12 })),
    error: CorruptImageError,
    message: /compressed cluster at guest offset \d+ decompresses to more than the cluster size 65536/,
  },
  {
    name: "zstd cluster that inflates past the cluster size",
    base: "zstd",
    patch: (b) => withCompressedStream(b, zlib.zstdCompressSync(Buffer.alloc(4 * MiB))),
    error: CorruptImageError,
    message: /decompresses to more than the cluster size 65536/,
  },
  {
    name: "zlib cluster that inflates short of the cluster size",
    base: "zlib",
    patch: (b) => withCompressedStream(b, zlib.deflateRawSync(Buffer.alloc(1000), { windowBits: 12 })),
    error: CorruptImageError,
    message: /decompresses to 1000 bytes instead of the cluster size 65536/,
  },
  {
    name: "zstd cluster holding garbage",
    base: "zstd",
    patch: (b) => withCompressedStream(b, pattern(3000, 77)),
    error: CorruptImageError,
    message: /no further valid frame/,
  },
  {
    name: "zlib cluster holding garbage",
    base: "zlib",
    patch: (b) => withCompressedStream(b, Buffer.alloc(3000, 0xff)),
    error: CorruptImageError,
    message: /is not valid deflate data/,
  },
  {
    name: "compressed cluster beyond the file",
    base: "zlib",
    patch: (b) => {
      const { at } = firstCompressedEntry(b);
      b.writeBigUInt64BE((1n << 62n) | BigInt(b.length + 4096), at);
    },
    error: CorruptImageError,
    message: /compressed data at host offset \d+, outside the file/,
  },
];

for (const c of hostileCases) {
  // zlib clusters read whole go through the batch inflater when it is built: both paths must refuse alike.
  for (const inflater of c.base === "zlib" ? (["batch", "node:zlib"] as const) : [undefined]) {
    test(`qcow2 hostile: ${c.name}${inflater ? ` (${inflater})` : ""}`, async (t) => {
      if (inflater) withInflater(t, inflater);
      await refusesHostile(t, c);
    });
  }
}

async function refusesHostile(t: TestContext, c: HostileCase): Promise<void> {
  const dir = await scratch(t);
  const raw = await mixedRaw(dir);
  const good = join(dir, "good.qcow2");
  const args =
    c.base === "zlib"
      ? ["-c", "-o", "compression_type=zlib"]
      : c.base === "zstd"
        ? ["-c", "-o", "compression_type=zstd"]
        : ["-o", "compat=1.1"];
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", ...args, raw, good);
  const bad = await patched(dir, good, "bad.qcow2", c.patch);
  await assert.rejects(
    () => openAndReadAll(bad),
    (e: unknown) => {
      assert.ok(e instanceof c.error, `expected ${c.error.name}, got ${String(e)}`);
      assert.match((e as Error).message, c.message);
      assert.ok((e as Error).message.startsWith(bad), `message should name the file: ${(e as Error).message}`);
      return true;
    },
  );
}

test("qcow2 hostile: a real LUKS-encrypted image is refused as unsupported", async (t) => {
  const dir = await scratch(t);
  const image = join(dir, "luks.qcow2");
  // qemu benchmarks PBKDF on the CPU first, which fails now and then on VMs ("Unable to get accurate CPU
  // usage"); a few attempts make that rare.
  let r = { code: 1, stdout: "", stderr: "" };
  for (let attempt = 0; attempt < 6 && r.code !== 0; attempt++) {
    r = await run("qemu-img", [
      "create",
      "-f",
      "qcow2",
      "--object",
      "secret,id=sec0,data=chromogenic",
      "-o",
      "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
      image,
      "1M",
    ]);
  }
  if (r.code !== 0) {
    t.skip(`qemu-img cannot create LUKS images here: ${r.stderr}`);
    return;
  }
  await assert.rejects(
    () => open(image),
    (e: unknown) => {
      assert.ok(e instanceof UnsupportedFeatureError);
      assert.match(e.message, /encrypted \(LUKS\)/);
      return true;
    },
  );
});

test("qcow2 read: dirty bit with lazy refcounts is still readable (we never write)", async (t) => {
  const dir = await scratch(t);
  const good = await goodImage(dir, "lazy_refcounts=on");
  const dirty = await patched(dir, good, "dirty.qcow2", (b) => {
    b.writeBigUInt64BE(b.readBigUInt64BE(72) | 1n, 72);
  });
  const source = await open(dirty);
  try {
    assert.ok((await readWhole(source)).equals(await qemuRaw(dir, good)));
    const details = await source.details();
    assert.equal(details.formatSpecific.dirty, true);
    assert.equal(details.formatSpecific.lazyRefcounts, true);
  } finally {
    await source.close();
  }
});

test("qcow2 read: probe scores qcow2 v2/v3 and rejects other files", async () => {
  const head = (magic: number, version: number) => {
    const b = Buffer.alloc(512);
    b.writeUInt32BE(magic, 0);
    b.writeUInt32BE(version, 4);
    return { head: b, size: 1 << 20, readTail: async () => Buffer.alloc(0) };
  };
  assert.equal(await qcow2Driver.probe(head(0x514649fb, 2)), 100);
  assert.equal(await qcow2Driver.probe(head(0x514649fb, 3)), 100);
  assert.equal(await qcow2Driver.probe(head(0x514649fb, 1)), 0);
  assert.equal(await qcow2Driver.probe(head(0x12345678, 3)), 0);
  assert.equal(await qcow2Driver.probe({ head: Buffer.alloc(3), size: 3, readTail: async () => Buffer.alloc(0) }), 0);
});

test("qcow2 read: a truncated data area reads as a typed error, never as silent zeros", async (t) => {
  const dir = await scratch(t);
  const good = await goodImage(dir);
  const bytes = await readFile(good);
  const cut = join(dir, "cut.qcow2");
  await copyFile(good, cut);
  // Keep the metadata (it sits in the first clusters qemu allocates) and cut off most data clusters.
  const l2 = header.l2Offset(bytes);
  await truncate(cut, l2 + header.clusterSize(bytes) * 4);
  await assert.rejects(
    () => openAndReadAll(cut),
    (e: unknown) => {
      assert.ok(e instanceof CorruptImageError, String(e));
      assert.match(
        (e as Error).message,
        /L2 entry for guest offset \d+ points to host offset \d+, beyond the end of the file/,
      );
      return true;
    },
  );
});
