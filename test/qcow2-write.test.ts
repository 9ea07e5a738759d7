/**
 * The qcow2 writer, checked by the reference tools: every image must pass `qemu-img check` with no errors and
 * no leaks, read back identical to its raw input in `qemu-img compare`, report the right geometry in
 * `qemu-img info`, and open in libqcow's qcowinfo where libqcow supports the features used.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { open, readFile, stat } from "node:fs/promises";
import { PassThrough } from "node:stream";
import type { CreateOptions, ImageTarget } from "../src/formats/types.js";
import { UsageError } from "../src/formats/errors.js";
import { StreamOutputFile } from "../src/formats/io/output-file.js";
import { TemporaryOutputFile } from "../src/formats/io/replacing-output.js";
import { openImage } from "../src/formats/engine/open-image.js";
import { convertFile, convertImage } from "../src/formats/engine/convert.js";
import { createQcow2Target } from "../src/formats/drivers/qcow2/qcow2-target.js";
import { Qcow2HostFile } from "../src/formats/drivers/qcow2/qcow2-writer-host-file.js";
import { Qcow2Mapping } from "../src/formats/drivers/qcow2/qcow2-writer-mapping.js";
import { encodeQcow2Header } from "../src/formats/drivers/qcow2/qcow2-writer-header.js";
import { CompressionPool, NOT_COMPRESSED } from "../src/formats/engine/compression-pool.js";
import { inflateRawSync, inflateSync, zstdDecompressSync } from "node:zlib";
import { nativeZstdBatch } from "../src/formats/engine/native-zstd-batch.js";
import {
  makeRaw,
  mixedRegions,
  pattern,
  qemuCheck,
  qemuCompare,
  qemuInfo,
  run,
  runCli,
  scratch,
  textPattern,
  type Region,
} from "./helpers/tools.js";

const KiB = 1024;
const MiB = 2 ** 20;

interface Expected {
  readonly clusterSize?: number;
  readonly compression?: "zlib" | "zstd";
}

/** Converts a raw file through the real pipeline (allocation map, read-ahead, zero runs) into qcow2. */
async function convertRaw(input: string, output: string, options: CreateOptions = {}): Promise<void> {
  const { source } = await openImage(input, { format: "raw" });
  try {
    const file = await TemporaryOutputFile.create(output);
    try {
      const target = await createQcow2Target(file, source.virtualSize, options);
      await convertImage(source, target);
      await file.commit();
    } finally {
      await file.discard();
    }
  } finally {
    await source.close();
  }
}

/** Guest clusters of the raw file holding any non-zero byte: exactly the clusters the writer must allocate. */
async function nonZeroClusters(raw: string, clusterSize: number): Promise<number> {
  const bytes = await readFile(raw);
  const zero = Buffer.alloc(clusterSize);
  let count = 0;
  for (let at = 0; at < bytes.length; at += clusterSize) {
    const cluster = bytes.subarray(at, Math.min(at + clusterSize, bytes.length));
    if (!cluster.equals(zero.subarray(0, cluster.length))) count++;
  }
  return count;
}

/** Every check of the reference tools; returns `qemu-img check`'s report for further assertions. */
async function verify(raw: string, qcow2: string, expected: Expected = {}): Promise<Record<string, unknown>> {
  const clusterSize = expected.clusterSize ?? 64 * KiB;
  const { code, report } = await qemuCheck(qcow2);
  assert.equal(code, 0, `qemu-img check failed: ${JSON.stringify(report)}`);
  assert.equal(report["check-errors"], 0);
  assert.equal(report.leaks ?? 0, 0, "leaked clusters");
  assert.equal(report.corruptions ?? 0, 0, "corruptions");
  assert.equal(report["allocated-clusters"] ?? 0, await nonZeroClusters(raw, clusterSize), "allocated clusters");

  const compare = await qemuCompare(raw, qcow2, { strict: false });
  assert.equal(compare.code, 0, `qemu-img compare: ${compare.stdout}${compare.stderr}`);

  const size = (await stat(raw)).size;
  const info = await qemuInfo(qcow2);
  assert.equal(info.format, "qcow2");
  // qemu counts the disk in 512-byte sectors; the writer stores the size rounded up to one.
  assert.equal(info["virtual-size"], Math.ceil(size / 512) * 512);
  assert.equal(info["cluster-size"], clusterSize);
  const specific = (info["format-specific"] as { data: Record<string, unknown> }).data;
  assert.equal(specific.compat, "1.1");
  assert.equal(specific["compression-type"], expected.compression ?? "zlib");
  assert.equal(specific["refcount-bits"], 16);

  // libqcow knows neither zstd nor an empty L1 table; everything else it must read.
  if (expected.compression !== "zstd" && size > 0) {
    const qcowinfo = await run("qcowinfo", [qcow2]);
    assert.equal(qcowinfo.code, 0, qcowinfo.stderr);
    assert.match(qcowinfo.stdout, new RegExp(`\\(${Math.ceil(size / 512) * 512} bytes\\)`));
  }
  return report;
}

async function rawAndQcow2(
  t: Parameters<typeof scratch>[0],
  size: number,
  regions: readonly Region[],
  options: CreateOptions = {},
): Promise<{ raw: string; qcow2: string }> {
  const dir = await scratch(t, "chromo-qcow2w-");
  const raw = join(dir, "in.raw");
  const qcow2 = join(dir, "out.qcow2");
  await makeRaw(raw, size, regions);
  await convertRaw(raw, qcow2, options);
  return { raw, qcow2 };
}

test("default options: mixed content, a size not a multiple of the cluster (nor of 512)", async (t) => {
  const size = 9 * MiB + 1000;
  const { raw, qcow2 } = await rawAndQcow2(t, size, mixedRegions(size));
  await verify(raw, qcow2);
});

for (const clusterSize of [512, 4 * KiB, 64 * KiB, 2 * MiB]) {
  test(`cluster_size ${clusterSize}: mixed content with an odd tail`, async (t) => {
    const size = 7 * MiB + 4096 + 512;
    const { raw, qcow2 } = await rawAndQcow2(t, size, mixedRegions(size), { cluster_size: String(clusterSize) });
    await verify(raw, qcow2, { clusterSize });
  });
}

test("cluster_size accepts suffixes (4k, 2M)", async (t) => {
  const size = 3 * MiB;
  for (const [text, clusterSize] of [
    ["4k", 4 * KiB],
    ["2M", 2 * MiB],
  ] as const) {
    const { raw, qcow2 } = await rawAndQcow2(t, size, [{ offset: MiB, data: pattern(5000, 2) }], {
      cluster_size: text,
    });
    await verify(raw, qcow2, { clusterSize });
  }
});

test("a dense disk (no holes, incompressible) is fully allocated", async (t) => {
  const size = 5 * MiB + 300;
  const { raw, qcow2 } = await rawAndQcow2(t, size, [{ offset: 0, data: pattern(size, 5) }]);
  const report = await verify(raw, qcow2);
  assert.equal(report["allocated-clusters"], Math.ceil(size / (64 * KiB)));
});

test("a sparse disk stays small: only the clusters with data are stored", async (t) => {
  const size = 256 * MiB;
  const { raw, qcow2 } = await rawAndQcow2(t, size, [
    { offset: 3 * MiB + 17, data: pattern(100, 3) },
    { offset: 200 * MiB, data: textPattern(70 * KiB, 4) },
  ]);
  const report = await verify(raw, qcow2);
  assert.equal(report["allocated-clusters"], 3); // 1 cluster, then 70 KiB straddling 2 clusters
  assert.ok((await stat(qcow2)).size < MiB, "a sparse image must not grow with the virtual size");
});

test("an all-zero disk, as holes or as zeros written out, allocates nothing", async (t) => {
  const size = 10 * MiB + 512;
  const holes = await rawAndQcow2(t, size, []);
  assert.equal((await verify(holes.raw, holes.qcow2))["allocated-clusters"] ?? 0, 0);

  const written = await rawAndQcow2(t, size, [{ offset: 0, data: Buffer.alloc(size) }]);
  assert.equal((await verify(written.raw, written.qcow2))["allocated-clusters"] ?? 0, 0);
});

test("tiny and empty disks: 0 bytes, 1 byte, 512 bytes", async (t) => {
  for (const size of [0, 1, 512]) {
    const regions = size > 0 ? [{ offset: 0, data: Buffer.from([0x5a]) }] : [];
    const { raw, qcow2 } = await rawAndQcow2(t, size, regions);
    await verify(raw, qcow2);
  }
});

for (const compression of ["zlib", "zstd"] as const) {
  test(`compression_type=${compression}: compressible clusters compressed, incompressible ones stored as is`, async (t) => {
    const size = 12 * MiB + 4096;
    const regions = [
      ...mixedRegions(size),
      { offset: 6 * MiB, data: pattern(MiB, 21) }, // random: does not shrink
      { offset: 8 * MiB, data: textPattern(3 * MiB, 22) },
      { offset: 11 * MiB, data: Buffer.alloc(MiB, 0x41) }, // compresses to almost nothing
    ];
    const { raw, qcow2 } = await rawAndQcow2(t, size, regions, { compression_type: compression });
    const report = await verify(raw, qcow2, { compression });
    const compressed = report["compressed-clusters"] as number;
    const allocated = report["allocated-clusters"] as number;
    assert.ok(compressed > 0 && compressed < allocated, `${compressed} of ${allocated} clusters compressed`);
    assert.ok((await stat(qcow2)).size < 6 * MiB, "compressed output should be well under the data size");
  });
}

test("compression_level and cluster sizes with compression", async (t) => {
  const size = 6 * MiB + 1536;
  const cases: CreateOptions[] = [
    { compression_type: "zlib", compression_level: "9", cluster_size: "4k" },
    { compression_type: "zstd", compression_level: "19", cluster_size: "2M" },
    { compression_type: "zlib", cluster_size: "2M" },
  ];
  for (const options of cases) {
    const { raw, qcow2 } = await rawAndQcow2(t, size, mixedRegions(size), options);
    await verify(raw, qcow2, {
      clusterSize: options.cluster_size === "4k" ? 4 * KiB : 2 * MiB,
      compression: options.compression_type as "zlib" | "zstd",
    });
  }
});

test("512-byte clusters: hundreds of L2 tables, many refcount blocks and a multi-cluster refcount table", async (t) => {
  // 24 MiB: an L2 table maps 32 KiB, a refcount block counts 128 KiB of file, the table lists 8 blocks per cluster.
  const size = 24 * MiB + 512;
  const regions = [
    { offset: 0, data: pattern(9 * MiB, 31) },
    { offset: 10 * MiB + 100, data: textPattern(8 * MiB, 32) },
    { offset: 20 * MiB, data: pattern(4 * MiB, 33) },
  ];
  const cases: CreateOptions[] = [{ cluster_size: "512" }, { cluster_size: "512", compression_type: "zlib" }];
  for (const options of cases) {
    const { raw, qcow2 } = await rawAndQcow2(t, size, regions, options);
    await verify(raw, qcow2, { clusterSize: 512 });
    const header = Buffer.alloc(64);
    const file = await open(qcow2, "r");
    try {
      await file.read(header, 0, 64, 0);
    } finally {
      await file.close();
    }
    assert.ok(header.readUInt32BE(36) > 700, "L1 entries: more than 700 L2 tables");
    assert.ok(header.readUInt32BE(56) >= 2, "refcount table spans several clusters");
  }
});

/**
 * Drives the target directly with ranges that ignore cluster boundaries: data pieces of odd lengths, zero runs
 * of both kinds, zeros passed as data, a run ending exactly at a cluster end and one ending mid-cluster.
 */
test("ranges need not be cluster-aligned: partial clusters are assembled, zero runs of both kinds", async (t) => {
  const dir = await scratch(t, "chromo-qcow2w-");
  const raw = join(dir, "in.raw");
  const size = 3 * MiB + 777;
  const content = Buffer.alloc(size);
  pattern(100_000, 41).copy(content, 1234);
  textPattern(300_000, 42).copy(content, 700_000);
  pattern(777, 43).copy(content, size - 777);
  await makeRaw(raw, size, [{ offset: 0, data: content }]);

  const cases: CreateOptions[] = [{ cluster_size: "4k" }, { cluster_size: "64k", compression_type: "zstd" }];
  for (const options of cases) {
    const qcow2 = join(dir, `out-${options.cluster_size}-${options.compression_type ?? "none"}.qcow2`);
    const file = await TemporaryOutputFile.create(qcow2);
    const target = await createQcow2Target(file, size, options);
    let offset = 0;
    let step = 0;
    while (offset < size) {
      const length = Math.min(size - offset, [1, 333, 4096, 5000, 65536, 70_001, 4095][step % 7]!);
      const piece = content.subarray(offset, offset + length);
      const zero = piece.equals(Buffer.alloc(length));
      if (zero && step % 3 === 0) await target.writeZeroes(offset, length, "zero");
      else if (zero && step % 3 === 1) await target.writeZeroes(offset, length, "unallocated");
      else await target.writeData(offset, Buffer.from(piece)); // zeros as data too
      offset += length;
      step++;
    }
    await target.finish();
    await file.commit();
    await verify(raw, qcow2, {
      clusterSize: options.cluster_size === "4k" ? 4 * KiB : 64 * KiB,
      compression: options.compression_type as Expected["compression"],
    });
  }
});

test("the caller may reuse its buffer as soon as writeData resolves", async (t) => {
  const dir = await scratch(t, "chromo-qcow2w-");
  const raw = join(dir, "in.raw");
  const size = 8 * MiB;
  const content = textPattern(size, 51);
  pattern(MiB, 52).copy(content, 3 * MiB);
  await makeRaw(raw, size, [{ offset: 0, data: content }]);
  const cases: CreateOptions[] = [{}, { compression_type: "zlib" }];
  for (const options of cases) {
    const qcow2 = join(dir, `reuse-${Object.keys(options).length}.qcow2`);
    const file = await TemporaryOutputFile.create(qcow2);
    const target = await createQcow2Target(file, size, options);
    const scratchBuffer = Buffer.alloc(MiB + 4096);
    for (let offset = 0; offset < size; offset += MiB) {
      content.copy(scratchBuffer, 0, offset, offset + MiB);
      await target.writeData(offset, scratchBuffer.subarray(0, MiB));
      scratchBuffer.fill(0xee); // clobber: the target must have taken what it needs
    }
    await target.finish();
    await file.commit();
    await verify(raw, qcow2, { compression: options.compression_type as Expected["compression"] });
  }
});

test("convertFile writes qcow2 through the driver registry", async (t) => {
  const dir = await scratch(t, "chromo-qcow2w-");
  const input = join(dir, "in.raw");
  const output = join(dir, "out.qcow2");
  const size = 16 * MiB + 512;
  await makeRaw(input, size, mixedRegions(size));
  await convertFile({ input, output, outputFormat: "qcow2", createOptions: { compression_type: "zlib" } });
  await verify(input, output, { compression: "zlib" });
});

test("chromogenic's own qcow2 reader reads the output back identically", async (t) => {
  const size = 5 * MiB + 1000;
  const cases: CreateOptions[] = [{ cluster_size: "512", compression_type: "zlib" }, { compression_type: "zstd" }, {}];
  for (const options of cases) {
    const { raw, qcow2 } = await rawAndQcow2(t, size, mixedRegions(size), options);
    const back = `${qcow2}.raw`;
    await convertFile({ input: qcow2, output: back, outputFormat: "raw" });
    assert.equal((await qemuCompare(raw, back, { strict: false })).code, 0, JSON.stringify(options));
  }
});

test("bad options are refused before anything is written", async (t) => {
  const dir = await scratch(t, "chromo-qcow2w-");
  const bad: CreateOptions[] = [
    { nonsense: "1" },
    { cluster_size: "3000" },
    { cluster_size: "256" },
    { cluster_size: "4M" },
    { cluster_size: "big" },
    { compression_type: "lz4" },
    { compression_type: "zlib", compression_level: "12" },
    { compression_type: "zstd", compression_level: "0" },
    { compression_level: "3" },
    { refcount_bits: "8" },
    { compat: "0.10" },
  ];
  for (const options of bad) {
    const file = await TemporaryOutputFile.create(join(dir, "refused.qcow2"));
    try {
      await assert.rejects(createQcow2Target(file, 64 * MiB, options), UsageError, JSON.stringify(options));
      assert.equal((await file.handle.stat()).size, 0);
    } finally {
      await file.discard();
    }
  }
  // 512-byte clusters cannot address 1 TiB within qemu's 32 MiB L1 limit.
  const file = await TemporaryOutputFile.create(join(dir, "huge.qcow2"));
  try {
    await assert.rejects(createQcow2Target(file, 2 ** 40, { cluster_size: "512" }), /larger cluster_size/);
  } finally {
    await file.discard();
  }
});

test("a sequential output (pipe) is refused with a clear message", async () => {
  const stream = new PassThrough();
  let written = 0;
  stream.on("data", (chunk: Buffer) => (written += chunk.length));
  await assert.rejects(createQcow2Target(new StreamOutputFile(stream), MiB, {}), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /seekable/);
    return true;
  });
  assert.equal(written, 0);
});

test("abort stops the target: later calls fail, compression workers go away", async (t) => {
  const dir = await scratch(t, "chromo-qcow2w-");
  const file = await TemporaryOutputFile.create(join(dir, "aborted.qcow2"));
  try {
    const target: ImageTarget = await createQcow2Target(file, 8 * MiB, { compression_type: "zlib" });
    await target.writeData(0, textPattern(3 * MiB, 61));
    await target.abort();
    await assert.rejects(target.writeData(3 * MiB, textPattern(MiB, 62)), /aborted/);
    await assert.rejects(target.finish(), /aborted/);
  } finally {
    await file.discard();
  }
});

test("writes out of order or past the end are programming errors", async (t) => {
  const dir = await scratch(t, "chromo-qcow2w-");
  const file = await TemporaryOutputFile.create(join(dir, "misuse.qcow2"));
  try {
    const target = await createQcow2Target(file, MiB, {});
    await target.writeData(4096, Buffer.alloc(4096, 1));
    await assert.rejects(target.writeData(0, Buffer.alloc(10, 1)), /increasing order/);
    const other = await createQcow2Target(file, MiB, {});
    await assert.rejects(other.writeData(MiB - 10, Buffer.alloc(20, 1)), /past the disk's end/);
  } finally {
    await file.discard();
  }
});

/**
 * A host cluster's refcount is the number of compressed clusters touching it; 16 bits cap it at 65535, so
 * the packer must move on to a new host cluster before that. Real data would need 128 GiB of 2 MiB clusters
 * to get there, so the layout classes are driven directly with 1-byte "compressed clusters" (`qemu-img check`
 * verifies metadata and refcounts only, never decompresses).
 */
test("compressed packing never overflows a 16-bit refcount", async (t) => {
  const dir = await scratch(t, "chromo-qcow2w-");
  const path = join(dir, "packed.qcow2");
  const clusterSize = 2 * MiB;
  const guestClusters = 70_000;
  const virtualSize = guestClusters * clusterSize;
  const l1Entries = Math.ceil(guestClusters / (clusterSize / 8));
  const file = await TemporaryOutputFile.create(path);
  const host = new Qcow2HostFile(file, clusterSize);
  const mapping = new Qcow2Mapping(host, clusterSize, 21, l1Entries);
  for (let cluster = 0; cluster < guestClusters; cluster++) {
    const offset = await host.appendCompressed(Buffer.from([cluster & 0xff]));
    await mapping.mapCompressed(cluster, offset, 1);
  }
  await mapping.finish();
  const layout = await host.finish(mapping.l1Table);
  await host.writeHeader(
    encodeQcow2Header({
      clusterSize,
      clusterBits: 21,
      virtualSize,
      compression: "zlib",
      l1Entries,
      l1TableOffset: layout.l1TableOffset,
      refcountTableOffset: layout.refcountTableOffset,
      refcountTableClusters: layout.refcountTableClusters,
    }),
  );
  await file.commit();
  const { code, report } = await qemuCheck(path);
  assert.equal(code, 0, JSON.stringify(report));
  assert.equal(report.leaks ?? 0, 0);
  assert.equal(report.corruptions ?? 0, 0);
  assert.equal(report["compressed-clusters"], guestClusters);
});

test("compression pool (codec mode): one independent unit per block, delivered in order", async () => {
  const blocks = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? pattern(4096, i + 1) : textPattern(4096, i)));
  const decoders = {
    "deflate-raw": (b: Buffer) => inflateRawSync(b, { windowBits: 12 }),
    deflate: (b: Buffer) => inflateSync(b),
    zstd: (b: Buffer) => zstdDecompressSync(b),
  } as const;
  for (const kind of ["deflate-raw", "deflate", "zstd"] as const) {
    const delivered: number[] = [];
    const pool = new CompressionPool<number>({
      codec: kind === "zstd" ? { kind, level: 3 } : { kind, level: 6, windowBits: kind === "deflate" ? 15 : 12 },
      blockSize: 4096,
      deliver: async (index, input, output) => {
        delivered.push(index);
        assert.deepEqual(input, blocks[index]);
        assert.deepEqual(decoders[kind](output), blocks[index], `${kind} block ${index}`);
      },
    });
    for (let i = 0; i < blocks.length; i++) await pool.submit(i, Buffer.from(blocks[i]!));
    await pool.drain();
    pool.close();
    assert.deepEqual(
      delivered,
      blocks.map((_, i) => i),
    );
  }
});

test("compression pool skips incompressible runs only after a block that did not shrink", async () => {
  const random = Array.from({ length: 12 }, (_, i) => pattern(65536, 100 + i));
  const text = textPattern(65536, 7);
  const outputs: Buffer[] = [];
  const pool = new CompressionPool<number>({
    codec: { kind: "deflate-raw", level: 4, windowBits: 12, memLevel: 9 },
    blockSize: 65536,
    skipIncompressible: true,
    maxInFlight: 1, // one lane's view: each block sees the verdict on the one before
    deliver: async (_index, _input, output) => void outputs.push(output),
  });
  const blocks = [text, ...random, text];
  for (let i = 0; i < blocks.length; i++) await pool.submit(i, blocks[i]!);
  await pool.drain();
  pool.close();
  assert.ok(outputs[0]!.length > 0 && outputs[0]!.length < 65536, "text compresses");
  assert.ok(
    outputs.slice(1, 13).some((o) => o === NOT_COMPRESSED),
    "random blocks after a miss are skipped",
  );
  assert.ok(outputs[13]!.length > 0 && outputs[13]!.length < 65536, "compressible data after them is compressed");
});

test("zstd: the native batch compressor is built here; it and the stream fallback both write what qemu reads", async (t) => {
  // scripts/setup.sh installs libzstd-dev and scripts/build-native.sh builds the addon; a machine without them
  // silently runs the slower stream lanes, which this test must not mistake for the batch path.
  assert.ok(nativeZstdBatch(), "native/zstd-batch.node is not built (scripts/build-native.sh, libzstd-dev)");
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  const size = 9 * MiB + 4096;
  await makeRaw(input, size, mixedRegions(size));
  const counts: unknown[] = [];
  for (const native of ["on", "off"]) {
    const output = join(dir, `out-${native}.qcow2`);
    // The native compressor is chosen once per process: each run is a process of its own.
    const r = await runCli(["convert", "-q", "-O", "qcow2", "-o", "compression_type=zstd", input, output], {
      ...process.env,
      CHROMOGENIC_NATIVE_ZSTD: native,
    });
    assert.equal(r.code, 0, r.stderr);
    const compare = await run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", input, output]);
    assert.equal(compare.code, 0, `${native}: ${compare.stdout}${compare.stderr}`);
    const { code, report } = await qemuCheck(output);
    assert.equal(code, 0, JSON.stringify(report));
    assert.equal(report.leaks ?? 0, 0);
    counts.push(report["compressed-clusters"]);
  }
  assert.ok(Number(counts[0]) > 0, "clusters were compressed");
  assert.equal(counts[0], counts[1], "both paths compress the same clusters");
});

test("compression pool (native batches): borrowed data is read in place and held until delivered; zeros skipped", async () => {
  assert.ok(nativeZstdBatch(), "native/zstd-batch.node is not built");
  const block = 4096;
  const blocks = Array.from({ length: 600 }, (_, i) =>
    i % 7 === 3 ? Buffer.alloc(block) : i % 3 === 0 ? pattern(block, i + 1) : textPattern(block, i),
  );
  const data = Buffer.concat(blocks);
  const delivered: number[] = [];
  /** Per part: how many blocks had been delivered when its hold was released. */
  const deliveredAtRelease: number[] = [];
  const holds: Promise<void>[] = [];
  const pool = new CompressionPool<number>({
    codec: { kind: "zstd", level: 1 },
    blockSize: block,
    deliverCopiesOutput: true,
    deliver: async (index, input, output) => {
      delivered.push(index);
      assert.deepEqual(input, blocks[index]);
      assert.deepEqual(zstdDecompressSync(output), blocks[index], `block ${index}`);
    },
  });
  // Submitted in two borrowed parts, each larger than one 512 KiB batch.
  const half = 300 * block;
  for (const [first, part] of [
    [0, data.subarray(0, half)],
    [300, data.subarray(half)],
  ] as const) {
    const hold = await pool.submitUnits(first, part, true);
    assert.ok(hold, "borrowed data comes back with a hold");
    holds.push(hold.released.then(() => void (deliveredAtRelease[first / 300] = delivered.length)));
  }
  await pool.drain();
  await Promise.all(holds);
  pool.close();
  const expected = blocks.map((b, i) => (b.every((x) => x === 0) ? -1 : i)).filter((i) => i >= 0);
  assert.deepEqual(delivered, expected, "every non-zero block, in order, zero blocks skipped");
  const inFirstPart = expected.filter((i) => i < 300).length;
  assert.ok(deliveredAtRelease[0]! >= inFirstPart, "the first part's hold is released only after its blocks");
  assert.equal(deliveredAtRelease[1], expected.length, "the second part's hold is released after its last block");
});

test("compression pool (native batches): a failing delivery fails the hold, the next submit and drain", async () => {
  const block = 4096;
  const pool = new CompressionPool<number>({
    codec: { kind: "zstd", level: 1 },
    blockSize: block,
    deliver: async (index) => {
      if (index === 5) throw new Error("disk full at block 5");
    },
  });
  const hold = await pool.submitUnits(0, textPattern(64 * block, 1), true);
  await assert.rejects(hold!.released, /disk full at block 5/);
  await assert.rejects(pool.submitUnits(64, textPattern(4 * block, 2), true), /disk full at block 5/);
  await assert.rejects(pool.drain(), /disk full at block 5/);
  pool.abandon();
});
