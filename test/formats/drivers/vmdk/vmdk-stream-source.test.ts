/**
 * streamOptimized VMDKs read from standard input, in order: made by qemu-img (grain tables in the overhead, no
 * end marker), by chromogenic and by VMDKstream (grain directory at the end, end-of-stream marker), and by
 * VMware itself (qemu's sample), fed to the CLI through a real pipe and compared with qemu-img; streams cut
 * short and grains out of order are refused clearly with nothing left behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { convertFile, convertImage } from "../../../../src/formats/engine/convert.js";
import { openImage } from "../../../../src/formats/engine/open-image.js";
import { getDriver } from "../../../../src/formats/registry.js";
import { StreamInput } from "../../../../src/formats/inputs/stream-input.js";
import { TemporaryOutputFile } from "../../../../src/formats/io/replacing-output.js";
import { runCliFromStdin } from "../../../helpers/cli-stdin.js";
import { qemuSampleImage } from "../../../helpers/qemu-samples.js";
import {
  makeRaw,
  qemuCompare,
  qemuImg,
  runCli,
  scratch,
  standardSamples,
  type Sample,
} from "../../../helpers/tools.js";
import { vmdkStreamConvert } from "../../../helpers/vmdk-tools.js";

const SECTOR = 512;

interface Writer {
  readonly name: string;
  make(raw: string, vmdk: string): Promise<unknown>;
}

const QEMU: Writer = {
  name: "qemu-img",
  make: (raw, vmdk) => qemuImg("convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk),
};
const CHROMOGENIC: Writer = {
  name: "chromogenic",
  make: (raw, vmdk) =>
    convertFile({ input: raw, output: vmdk, outputFormat: "vmdk", createOptions: { subformat: "streamOptimized" } }),
};
const VMDKSTREAM: Writer = { name: "VMDKstream", make: vmdkStreamConvert };

const { sparseMixed, oddSize } = standardSamples();

/** A scratch folder with the sample as raw (`in.raw`) and as `writer`'s streamOptimized VMDK (`in.vmdk`). */
async function streamImage(t: Parameters<typeof scratch>[0], writer: Writer, sample: Sample) {
  const dir = await scratch(t);
  const raw = join(dir, "in.raw");
  await makeRaw(raw, sample.size, sample.regions);
  const vmdk = join(dir, "in.vmdk");
  await writer.make(raw, vmdk);
  return { dir, raw, vmdk };
}

/** Where each marker of a streamOptimized file starts, with what it is: checked by hand, apart from our reader. */
interface Marker {
  readonly at: number;
  readonly kind: "grain" | "metadata";
  /** A grain's first sector. */
  readonly lba: number;
  /** A grain's compressed bytes. */
  readonly size: number;
}

function markers(file: Buffer): Marker[] {
  const found: Marker[] = [];
  let at = Number(file.readBigUInt64LE(64)) * SECTOR; // the overhead
  while (at + 16 <= file.length) {
    const value = Number(file.readBigUInt64LE(at));
    const size = file.readUInt32LE(at + 8);
    if (size > 0) {
      found.push({ at, kind: "grain", lba: value, size });
      at = Math.ceil((at + 12 + size) / SECTOR) * SECTOR;
      continue;
    }
    found.push({ at, kind: "metadata", lba: -1, size: 0 });
    if (file.readUInt32LE(at + 12) === 0) break;
    at += SECTOR + value * SECTOR;
  }
  return found;
}

for (const writer of [QEMU, CHROMOGENIC, VMDKSTREAM]) {
  for (const sample of [sparseMixed, oddSize]) {
    test(`a ${writer.name} streamOptimized VMDK (${sample.name}) converts from a pipe to qcow2 and raw`, async (t) => {
      const { dir, raw, vmdk } = await streamImage(t, writer, sample);
      for (const format of ["qcow2", "raw"]) {
        const out = join(dir, `out.${format}`);
        const r = await runCliFromStdin(["convert", "-q", "-O", format, "-", out], { path: vmdk });
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await qemuCompare(raw, out)).code, 0, `${format} output holds the disk`);
      }
      const fromPipe = await runCliFromStdin(["info", "--json", "-"], { path: vmdk });
      assert.equal(fromPipe.code, 0, fromPipe.stderr);
      const fromFile = await runCli(["info", "--json", vmdk], process.env);
      assert.equal(fromFile.code, 0, fromFile.stderr);
      const piped = JSON.parse(fromPipe.stdout);
      const filed = JSON.parse(fromFile.stdout);
      assert.equal(piped.path, "-");
      for (const key of ["format", "virtualSize", "allocatedBytes", "clusterSize", "compression", "formatSpecific"]) {
        assert.deepEqual(piped[key], filed[key], `info's ${key} is the same read from a pipe and from the file`);
      }
    });
  }
}

test("VMware's own streamOptimized sample (grain tables between its grains) converts from a pipe", async (t) => {
  const dir = await scratch(t);
  const image = await qemuSampleImage("iotest-version3.vmdk");
  const out = join(dir, "out.qcow2");
  const r = await runCliFromStdin(["convert", "-q", "-O", "qcow2", "-f", "vmdk", "-", out], { path: image });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await qemuCompare(image, out)).code, 0);
});

for (const writer of [QEMU, CHROMOGENIC]) {
  test(`a ${writer.name} streamOptimized VMDK cut short is refused, mid-grain or between grains`, async (t) => {
    const { dir, vmdk } = await streamImage(t, writer, sparseMixed);
    const file = await readFile(vmdk);
    const grains = markers(file).filter((m) => m.kind === "grain");
    assert.ok(grains.length > 10, "the sample has grains to cut between");
    const cuts = [
      { bytes: grains[3]!.at + 12 + Math.floor(grains[3]!.size / 2), why: /in the middle of the grain/ },
      // qemu-img's file has no end marker: its grain tables' count tells the stream is short.
      { bytes: grains.at(-1)!.at, why: writer === QEMU ? /after \d+ of the \d+ grains/ : /without its footer/ },
    ];
    for (const { bytes, why } of cuts) {
      for (const args of [
        ["convert", "-q", "-O", "qcow2", "-", join(dir, "out.qcow2")],
        ["info", "-"],
      ]) {
        const r = await runCliFromStdin(args, { path: vmdk, bytes });
        assert.equal(r.code, 1, `${args[0]} of ${bytes} bytes: ${r.stderr}`);
        assert.match(r.stderr, /-: the streamOptimized VMDK ends after \d+ bytes, .*cut short/);
        assert.match(r.stderr, why);
      }
    }
    assert.deepEqual((await readdir(dir)).sort(), ["in.raw", "in.vmdk"], "no output or temporary left behind");
  });
}

test("a grain that goes back in a stream read in order is refused, naming where", async (t) => {
  const { dir, vmdk } = await streamImage(t, CHROMOGENIC, sparseMixed);
  const file = await readFile(vmdk);
  const grains = markers(file).filter((m) => m.kind === "grain");
  // The fifth grain claims the first grain's place.
  file.writeBigUInt64LE(BigInt(grains[0]!.lba), grains[4]!.at);
  const bad = join(dir, "back.vmdk");
  await writeFile(bad, file);
  const r = await runCliFromStdin(["convert", "-q", "-O", "qcow2", "-", join(dir, "out.qcow2")], { path: bad });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`grain at stream offset ${grains[4]!.at} holds disk offset 0, before`));
  assert.match(r.stderr, /cannot go back/);
  assert.ok(!(await readdir(dir)).some((name) => name.includes("out")), "no output left behind");
});

/** Opens `bytes` as a VMDK arriving on a pipe, in chunks of `chunk` bytes. */
function openStream(bytes: Buffer, chunk = 65536) {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunk) pieces.push(bytes.subarray(at, at + chunk));
  return openImage(new StreamInput(Readable.from(pieces), "piped.vmdk"));
}

test("hostile markers in a stream are refused with what is wrong", async (t) => {
  const { vmdk } = await streamImage(t, CHROMOGENIC, oddSize);
  const file = await readFile(vmdk);
  const all = markers(file);
  const grain = all.find((m) => m.kind === "grain")!;
  const table = all.find((m) => m.kind === "metadata")!;
  const cases: { name: string; edit(b: Buffer): void; error: RegExp }[] = [
    { name: "unaligned sector", edit: (b) => b.writeBigUInt64LE(3n, grain.at), error: /names sector 3, which is not/ },
    {
      name: "sector past the disk",
      edit: (b) => b.writeBigUInt64LE(2n ** 40n, grain.at),
      error: /which is not the start of a grain/,
    },
    { name: "huge size", edit: (b) => b.writeUInt32LE(2 ** 30, grain.at + 8), error: /compressed size \d+ is beyond/ },
    { name: "unknown marker", edit: (b) => b.writeUInt32LE(9, table.at + 12), error: /unknown marker type 9/ },
    {
      name: "metadata too long",
      edit: (b) => b.writeBigUInt64LE(2n ** 50n, table.at),
      error: /announces \d+ sectors of metadata/,
    },
    { name: "bad zlib", edit: (b) => b.fill(0x55, grain.at + 12, grain.at + 40), error: /not a valid zlib stream/ },
  ];
  for (const c of cases) {
    const bytes = Buffer.from(file);
    c.edit(bytes);
    const { source } = await openStream(bytes);
    try {
      const out = join(await scratch(t), "out.raw");
      const output = await TemporaryOutputFile.create(out);
      try {
        const target = await getDriver("raw").create!(output, source.virtualSize, {});
        await assert.rejects(convertImage(source, target), c.error, c.name);
      } finally {
        await output.discard();
      }
    } finally {
      await source.close();
    }
  }
});

test("the pipeline's reads ahead, large and small pieces, all read a stream right", async (t) => {
  const { dir, raw, vmdk } = await streamImage(t, QEMU, sparseMixed);
  const shapes = [
    // A piece smaller than a grain: one grain is read in four pieces.
    { readAhead: 1, chunkSize: 16 * 1024 },
    { readAhead: 3, chunkSize: 2 ** 20 },
    { readAhead: 8, chunkSize: 4 * 2 ** 20 },
  ];
  for (const shape of shapes) {
    const { source } = await openImage(new StreamInput(createReadStream(vmdk), "piped.vmdk"));
    const out = join(dir, `out-${shape.readAhead}.raw`);
    const output = await TemporaryOutputFile.create(out);
    try {
      const target = await getDriver("raw").create!(output, source.virtualSize, {});
      const stats = await convertImage(source, target, shape);
      await output.commit();
      assert.ok(stats.bytesRead < sparseMixed.size, "unallocated stretches are not read");
    } finally {
      await output.discard();
      await source.close();
    }
    assert.equal((await qemuCompare(raw, out)).code, 0, `readAhead ${shape.readAhead}, pieces ${shape.chunkSize}`);
  }
});

test("a stream is mapped once and read in order: going back or mapping again is refused", async (t) => {
  const { vmdk } = await streamImage(t, CHROMOGENIC, sparseMixed);
  const { source } = await openStream(await readFile(vmdk));
  try {
    const data: { offset: number; length: number }[] = [];
    for await (const e of source.extents()) {
      if (e.kind === "data") data.push(e);
      if (data.length === 3) break;
    }
    const [first, , third] = data;
    await source.read(third!.offset, third!.length);
    await assert.rejects(source.read(first!.offset, first!.length), /comes after the stream moved past it/);
    await assert.rejects(source.read(third!.offset + third!.length, 512), /ahead of the allocation map walked so far/);
    await assert.rejects(async () => {
      for await (const _ of source.extents());
    }, /the stream was already read once/);
  } finally {
    await source.close();
  }
});

test("from a pipe, a descriptor file is refused as needing random access, and anything else as no VMDK", async (t) => {
  const { dir, raw } = await streamImage(t, QEMU, oddSize);
  const descriptor = join(dir, "flat.vmdk");
  await qemuImg("convert", "-O", "vmdk", "-o", "subformat=monolithicFlat", raw, descriptor);
  const refused = await runCliFromStdin(["info", "-"], { path: descriptor });
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /^chromogenic: -: a VMDK descriptor image needs random access/);
  const notVmdk = await runCliFromStdin(["info", "-f", "vmdk", "-"], { path: raw });
  assert.equal(notVmdk.code, 1, notVmdk.stderr);
  assert.match(notVmdk.stderr, /^chromogenic: -: not a VMDK: neither a sparse extent \("KDMV"\) nor a descriptor/);
});
