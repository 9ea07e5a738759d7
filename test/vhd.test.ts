import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyFile, open, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { openImage } from "../src/formats/engine/open-image.js";
import { convertFile, convertImage } from "../src/formats/engine/convert.js";
import { getDriver } from "../src/formats/registry.js";
import { describeCreateOptions } from "../src/formats/engine/create-option-docs.js";
import type { CreateOptions } from "../src/formats/types.js";
import { StreamOutputFile } from "../src/formats/io/output-file.js";
import { CorruptImageError, UnsupportedFeatureError, UsageError } from "../src/formats/errors.js";
import { makeRaw, mixedRegions, pattern, qemuImg, run, runOk, scratch, textPattern } from "./helpers/tools.js";
import { qemuSampleImage } from "./helpers/qemu-samples.js";
import { assertSameRaw, extentsOf, vhdiinfo, withSource } from "./helpers/image-checks.js";
import { editFooters, editStructure } from "./helpers/vhd-edits.js";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

// ---------------------------------------------------------------------------------------------------------------
// Helpers

async function qemuVirtualSize(path: string, format: string): Promise<number> {
  const info = JSON.parse(await qemuImg("info", "-f", format, "--output=json", path)) as { "virtual-size": number };
  return info["virtual-size"];
}

/** `qemu-img convert -O raw` of an image, the reference our reader is held to. */
async function qemuToRaw(dir: string, input: string, format: string, name: string): Promise<string> {
  const out = join(dir, `${name}.qemu.raw`);
  await qemuImg("convert", "-f", format, "-O", "raw", input, out);
  return out;
}

async function oursToRaw(dir: string, input: string, name: string, inputOptions?: Record<string, string>) {
  const out = join(dir, `${name}.ours.raw`);
  const result = await convertFile({ input, output: out, outputFormat: "raw", inputOptions });
  return { path: out, result };
}

/** A small dynamic VHD written by qemu-img holding the standard mix of content. */
async function qemuDynamicVhd(dir: string, name = "qemu", size = 16 * MiB): Promise<{ vhd: string; raw: string }> {
  const raw = join(dir, `${name}.src.raw`);
  await makeRaw(raw, size, mixedRegions(size));
  const vhd = join(dir, `${name}.vhd`);
  await qemuImg("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", raw, vhd);
  return { vhd, raw };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading what qemu-img writes

for (const opts of [
  "subformat=dynamic",
  "subformat=fixed",
  "subformat=dynamic,force_size=on",
  "subformat=fixed,force_size=on",
]) {
  test(`qemu-img VHD (${opts}) reads identical to qemu-img convert -O raw, odd sizes included`, async (t) => {
    const dir = await scratch(t);
    for (const size of [64 * MiB + 4096 + 512, 3 * MiB + 7 * 512, 5 * MiB + 123]) {
      const name = `s${size}`;
      const raw = join(dir, `${name}.raw`);
      await makeRaw(raw, size, mixedRegions(size));
      const vhd = join(dir, `${name}.vhd`);
      await qemuImg("convert", "-f", "raw", "-O", "vpc", "-o", opts, raw, vhd);
      const ours = await oursToRaw(dir, vhd, name);
      assert.equal(ours.result.inputFormat, "vhd", "fixed and dynamic VHDs are both detected by content");
      assert.equal(ours.result.virtualSize, await qemuVirtualSize(vhd, "vpc"), "qemu and chromogenic agree on size");
      await assertSameRaw(ours.path, await qemuToRaw(dir, vhd, "vpc", name));
    }
  });
}

test("dynamic VHD: blocks qemu left unallocated are reported unallocated, data blocks as data", async (t) => {
  const dir = await scratch(t);
  const { vhd } = await qemuDynamicVhd(dir, "map", 16 * MiB);
  await withSource(vhd, async (source) => {
    const extents = await extentsOf(source);
    // mixedRegions puts data in the first block (0..2 MiB) and nothing from 6 MiB on: those blocks stay out.
    assert.equal(extents[0]!.kind, "data");
    const tail = extents.find((e) => e.offset <= 8 * MiB && e.offset + e.length > 8 * MiB);
    assert.equal(tail?.kind, "unallocated");
    const details = await source.details();
    assert.equal(details.formatSpecific.diskType, "dynamic");
    assert.equal(details.clusterSize, 2 * MiB);
    assert.ok(details.allocatedBytes! < source.virtualSize);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Writing

const outputCases: { opts: Record<string, string>; type: "dynamic" | "fixed"; forceSize: boolean }[] = [
  { opts: {}, type: "dynamic", forceSize: true },
  { opts: { subformat: "fixed" }, type: "fixed", forceSize: true },
  { opts: { force_size: "off" }, type: "dynamic", forceSize: false },
  { opts: { subformat: "fixed", force_size: "off" }, type: "fixed", forceSize: false },
  { opts: { block_size: "512K" }, type: "dynamic", forceSize: true },
  { opts: { block_size: "64M" }, type: "dynamic", forceSize: true },
];

for (const c of outputCases) {
  const label =
    Object.entries(c.opts)
      .map(([k, v]) => `${k}=${v}`)
      .join(",") || "defaults";
  test(`raw → vhd (${label}): qemu-img and vhdiinfo see the same disk, and it reads back identical`, async (t) => {
    const dir = await scratch(t);
    const size = 40 * MiB + 3 * 512 + 100; // not a whole sector: the VHD rounds up to sectors
    const input = join(dir, "in.raw");
    await makeRaw(input, size, mixedRegions(size));
    const output = join(dir, "out.vhd");
    await convertFile({ input, output, outputFormat: "vhd", createOptions: c.opts });

    // qemu-img probes fixed VHDs as raw (it looks at offset 0 only), so the format is given explicitly.
    const compare = await run("qemu-img", ["compare", "-f", "raw", "-F", "vpc", input, output]);
    assert.equal(compare.code, 0, compare.stdout + compare.stderr);

    const sectorSize = Math.ceil(size / 512) * 512;
    let expected = sectorSize;
    if (!c.forceSize) {
      // force_size=off must round up to a geometry exactly like qemu-img's default does.
      const reference = join(dir, "qemu.vhd");
      await qemuImg("convert", "-f", "raw", "-O", "vpc", "-o", `subformat=${c.type}`, input, reference);
      expected = await qemuVirtualSize(reference, "vpc");
      assert.ok(expected > sectorSize);
    }
    assert.equal(await qemuVirtualSize(output, "vpc"), expected);
    const info = await vhdiinfo(output);
    assert.equal(info.mediaSize, expected);
    assert.equal(info.diskType, c.type);

    await withSource(output, async (source) => {
      assert.equal(source.virtualSize, expected);
      const d = await source.details();
      assert.equal(d.formatSpecific.diskType, c.type);
      assert.equal(d.formatSpecific.creatorApp, c.forceSize ? "qem2" : "qemu");
      assert.equal(d.formatSpecific.uniqueId, info.identifier);
      if (c.type === "dynamic") {
        assert.equal(d.clusterSize, c.opts.block_size === "512K" ? 512 * 1024 : c.opts.block_size ? 64 * MiB : 2 * MiB);
        // Only blocks holding data are stored: the file is far smaller than the disk.
        assert.ok((await stat(output)).blocks * 512 < size / 2, "all-zero blocks must stay unallocated");
      } else {
        assert.equal((await stat(output)).size, expected + 512);
      }
    });
    // Round trip: raw → vhd → raw.
    const back = await oursToRaw(dir, output, "back");
    const r = await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", input, back.path]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
}

test("the vpc alias names the VHD driver, and the driver documents its options", async () => {
  const d = getDriver("vpc");
  assert.equal(d.name, "vhd");
  assert.deepEqual(
    (await describeCreateOptions(d)).map((o) => o.name),
    ["subformat", "force_size", "block_size"],
  );
  assert.deepEqual(
    d.openOptions?.map((o) => o.name),
    ["size"],
  );
});

test("VHD create options are validated before anything is written", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, MiB);
  for (const [opts, message] of [
    [{ subformat: "sparse" }, /subformat=sparse/],
    [{ force_size: "maybe" }, /force_size=maybe/],
    [{ block_size: "3M" }, /power of two/],
    [{ block_size: "1K" }, /power of two/],
    [{ subformat: "fixed", block_size: "2M" }, /dynamic only/],
    [{ colour: "blue" }, /unknown option/],
  ] as const) {
    await assert.rejects(
      convertFile({ input, output: join(dir, "x.vhd"), outputFormat: "vhd", createOptions: opts as CreateOptions }),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
    );
  }
  await makeRaw(input, 2041 * GiB);
  await assert.rejects(
    convertFile({ input, output: join(dir, "big.vhd"), outputFormat: "vhd" }),
    /maximum of 2040 GiB/,
  );
});

test("a fixed VHD streams to a sequential output; a dynamic one is refused there with a clear error", async (t) => {
  const dir = await scratch(t);
  const size = 6 * MiB + 512 * 3;
  const input = join(dir, "in.raw");
  await makeRaw(input, size, mixedRegions(size));

  const streamed = join(dir, "streamed.vhd");
  const stream = createWriteStream(streamed);
  const { source } = await openImage(input);
  try {
    const target = await getDriver("vhd").create!(new StreamOutputFile(stream), size, { subformat: "fixed" });
    assert.equal(target.access, "sequential");
    await convertImage(source, target);
    stream.end();
    await once(stream, "finish");
  } finally {
    await source.close();
  }
  assert.equal((await stat(streamed)).size, size + 512);
  const compare = await run("qemu-img", ["compare", "-f", "raw", "-F", "vpc", input, streamed]);
  assert.equal(compare.code, 0, compare.stdout + compare.stderr);
  // The stream wrote every zero: the data region is byte-identical to the input.
  assert.deepEqual((await readFile(streamed)).subarray(0, size), await readFile(input));

  const refused = join(dir, "refused.vhd");
  const refusedStream = createWriteStream(refused);
  await assert.rejects(
    getDriver("vhd").create!(new StreamOutputFile(refusedStream), size, {}),
    (e: unknown) => e instanceof UsageError && /cannot be written to a stream/.test(e.message),
  );
  refusedStream.end();
  await once(refusedStream, "finish");
  assert.equal((await stat(refused)).size, 0, "nothing is written before the refusal");
});

test("qcow2 → vhd keeps the disk identical (qcow2 from our writer and from qemu-img)", async (t) => {
  const dir = await scratch(t);
  const size = 24 * MiB + 4096;
  const raw = join(dir, "in.raw");
  await makeRaw(raw, size, [...mixedRegions(size), { offset: 9 * MiB, data: textPattern(3 * MiB, 5) }]);
  const qemuQcow2 = join(dir, "qemu.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", raw, qemuQcow2);
  const ourQcow2 = join(dir, "ours.qcow2");
  await convertFile({ input: raw, output: ourQcow2, outputFormat: "qcow2" });
  for (const [name, qcow2] of [
    ["qemu", qemuQcow2],
    ["ours", ourQcow2],
  ] as const) {
    for (const subformat of ["dynamic", "fixed"] as const) {
      const vhd = join(dir, `${name}-${subformat}.vhd`);
      const result = await convertFile({
        input: qcow2,
        output: vhd,
        outputFormat: "vhd",
        createOptions: { subformat },
      });
      assert.equal(result.inputFormat, "qcow2");
      const compare = await run("qemu-img", ["compare", "-f", "raw", "-F", "vpc", raw, vhd]);
      assert.equal(compare.code, 0, `${name} ${subformat}: ${compare.stdout}${compare.stderr}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The size ambiguity

test("size rule: Virtual PC's sample uses the geometry, Hyper-V's and Disk2vhd's the footer; size= overrides", async () => {
  const hyperv = await qemuSampleImage("hyperv2012r2-dynamic.vhd");
  const vpc = await qemuSampleImage("virtualpc-dynamic.vhd");
  const d2v = await qemuSampleImage("d2v-zerofilled.vhd");
  await withSource(hyperv, async (s) => {
    const d = await s.details();
    assert.equal(s.virtualSize, 136365211648);
    assert.equal(d.formatSpecific.sizeRule, "footer");
    assert.equal(d.formatSpecific.creatorApp, "win ");
    assert.equal(d.formatSpecific.currentSize, 136365211648);
    assert.equal(d.formatSpecific.chsSize, 136363130880);
    assert.equal(d.formatSpecific.diskType, "dynamic");
  });
  await withSource(vpc, async (s) => {
    assert.equal(s.virtualSize, 136363130880);
    assert.equal((await s.details()).formatSpecific.sizeRule, "chs");
  });
  await withSource(d2v, async (s) => assert.equal(s.virtualSize, 263454720));
  // Overrides, both ways.
  await withSource(hyperv, async (s) => assert.equal(s.virtualSize, 136363130880), { size: "chs" });
  await withSource(vpc, async (s) => assert.equal(s.virtualSize, 136365211648), { size: "footer" });
  await assert.rejects(openImage(vpc, { driverOptions: { size: "largest" } }), UsageError);
  await assert.rejects(openImage(vpc, { driverOptions: { colour: "blue" } }), /unknown open option/);
});

test("bximage VHDs are sized by their footer (their geometry wraps above 32 GiB)", async (t) => {
  const dir = await scratch(t);
  const small = join(dir, "bx10.vhd");
  const large = join(dir, "bx200.vhd");
  await runOk("bximage", ["-func=create", "-hd=10M", "-imgmode=vpc", "-q", small]);
  await runOk("bximage", ["-func=create", "-hd=200G", "-imgmode=vpc", "-q", large]);

  // Small: the geometry and the footer agree; data written by qemu into it reads back like qemu reads it.
  await runOk("qemu-io", ["-f", "vpc", "-c", "write -P 0xa5 1M 64k", "-c", "write -P 0x3c 7M 4k", small]);
  const ours = await oursToRaw(dir, small, "bx10");
  await assertSameRaw(ours.path, await qemuToRaw(dir, small, "vpc", "bx10"));
  const content = await readFile(ours.path);
  assert.equal(content[MiB], 0xa5);
  assert.equal(content[7 * MiB + 4095], 0x3c);

  // Large: bximage's cylinder count does not fit 16 bits, so the geometry is garbage; the footer is right.
  await withSource(large, async (s) => {
    const d = await s.details();
    assert.equal(d.formatSpecific.creatorApp, "bxic");
    assert.equal(d.formatSpecific.sizeRule, "footer");
    assert.match(String(d.formatSpecific.sizeRuleReason), /bximage/);
    assert.equal(s.virtualSize, d.formatSpecific.currentSize);
    assert.ok(s.virtualSize > 199 * GiB && s.virtualSize <= 200 * GiB);
    assert.ok((d.formatSpecific.chsSize as number) < 20 * GiB, "the wrapped geometry is far smaller");
    assert.equal((await vhdiinfo(large)).mediaSize, s.virtualSize);
  });
  await withSource(large, async (s) => assert.ok(s.virtualSize < 20 * GiB), { size: "chs" });
});

// ---------------------------------------------------------------------------------------------------------------
// QEMU's sample images

for (const [name, size] of [
  ["hyperv2012r2-dynamic.vhd", 136365211648],
  ["virtualpc-dynamic.vhd", 136363130880],
  ["d2v-zerofilled.vhd", 263454720],
] as const) {
  test(`QEMU sample ${name} reads identical to qemu-img convert -O raw`, async (t) => {
    const dir = await scratch(t);
    const sample = await qemuSampleImage(name);
    const ours = await oursToRaw(dir, sample, "sample");
    assert.equal(ours.result.virtualSize, size);
    assert.equal(await qemuVirtualSize(sample, "vpc"), size);
    await assertSameRaw(ours.path, await qemuToRaw(dir, sample, "vpc", "sample"));
    const info = await vhdiinfo(sample);
    await withSource(sample, async (s) => {
      const d = await s.details();
      assert.equal(info.mediaSize, d.formatSpecific.currentSize);
      assert.equal(info.identifier, d.formatSpecific.uniqueId);
      assert.equal(info.diskType, d.formatSpecific.diskType);
      assert.equal(d.formatSpecific.footerCopies, "both, identical");
    });
  });
}

test("fuzzed afl5.img (VHD with a huge block table) is refused clearly, without a huge allocation", async (t) => {
  const before = process.memoryUsage().arrayBuffers;
  const afl5 = await qemuSampleImage("afl5.img");
  await assert.rejects(openImage(afl5, { format: "vhd" }), (e: unknown) => {
    assert.ok(e instanceof CorruptImageError, String(e));
    assert.match(e.message, /afl5\.img: VHD dynamic disk header .* beyond the end of the file/);
    return true;
  });
  // The same huge table in an otherwise valid image: refused by the table limit, still before any allocation.
  const dir = await scratch(t);
  const { vhd } = await qemuDynamicVhd(dir, "huge", 4 * MiB);
  await editStructure(vhd, 512, 1024, (b) => b.writeUInt32BE(1073741825, 28));
  await assert.rejects(openImage(vhd), (e: unknown) => {
    assert.ok(e instanceof CorruptImageError, String(e));
    assert.match(e.message, /1073741825 entries .* exceeds the 33554432-byte limit/);
    return true;
  });
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * MiB, "no allocation sized by the table");
});

// ---------------------------------------------------------------------------------------------------------------
// Hostile and damaged images

test("bad checksums: both footers damaged is refused; a damaged copy at 0 falls back to the footer at the end", async (t) => {
  const dir = await scratch(t);
  const { vhd, raw } = await qemuDynamicVhd(dir, "sum", 8 * MiB);
  const headOnly = join(dir, "head-only.vhd");
  await copyFile(vhd, headOnly);
  await editStructure(headOnly, 0, 512, (b) => (b[100] = 0x55), false);
  await withSource(headOnly, async (s) => {
    assert.equal((await s.details()).formatSpecific.footerCopies, "end only");
    assert.deepEqual(await s.read(0, 8 * MiB), await readFile(raw));
  });
  const size = (await stat(headOnly)).size;
  await editStructure(headOnly, size - 512, 512, (b) => (b[100] = 0x55), false);
  await assert.rejects(openImage(headOnly, { format: "vhd" }), (e: unknown) => {
    assert.ok(e instanceof CorruptImageError);
    assert.match(e.message, /footer copy at offset 0 has a bad checksum/);
    return true;
  });

  const badHeader = join(dir, "bad-header.vhd");
  await copyFile(vhd, badHeader);
  await editStructure(badHeader, 512, 1024, (b) => (b[700] = b[700]! ^ 1), false);
  await assert.rejects(openImage(badHeader), /dynamic disk header has a bad checksum/);

  // A fixed VHD's only footer is at the end.
  const fixed = join(dir, "fixed.vhd");
  await qemuImg("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", raw, fixed);
  await editStructure(fixed, (await stat(fixed)).size - 512, 512, (b) => (b[200] = 1), false);
  await assert.rejects(openImage(fixed, { format: "vhd" }), /footer at the end of the file has a bad checksum/);
});

test("a BAT entry pointing beyond the file, or a truncated file, is refused with the block named", async (t) => {
  const dir = await scratch(t);
  const { vhd } = await qemuDynamicVhd(dir, "bat", 8 * MiB);
  const beyond = join(dir, "beyond.vhd");
  await copyFile(vhd, beyond);
  const h = await open(beyond, "r+");
  const entry = Buffer.alloc(4);
  entry.writeUInt32BE(0x00ff_0000, 0); // sector 16.7M: 8 GiB into a 3 MiB file
  await h.write(entry, 0, 4, 1536 + 4 * 1);
  await h.close();
  await assert.rejects(openImage(beyond), (e: unknown) => {
    assert.ok(e instanceof CorruptImageError);
    assert.match(e.message, /VHD block 1 .* lies beyond the end of the file/);
    return true;
  });

  const truncated = join(dir, "truncated.vhd");
  await copyFile(vhd, truncated);
  await truncate(truncated, 2 * MiB);
  await assert.rejects(openImage(truncated, { format: "vhd" }), /lies beyond the end of the file/);
});

test("absurd sizes and layouts are refused before anything is sized by them", async (t) => {
  const dir = await scratch(t);
  const { vhd, raw } = await qemuDynamicVhd(dir, "absurd", 8 * MiB);
  const cases: [string, (path: string) => Promise<void>, RegExp][] = [
    ["current size 2^62", (p) => editFooters(p, (b) => b.writeBigUInt64BE(2n ** 62n, 48)), /outside the allowed range/],
    [
      "table too small for the disk",
      (p) => editStructure(p, 512, 1024, (b) => b.writeUInt32BE(1, 28)),
      /too small \(max table entries 1\): .* needs 5/,
    ],
    [
      "block size not a power of two",
      (p) => editStructure(p, 512, 1024, (b) => b.writeUInt32BE(3 * MiB, 32)),
      /block size 3145728 is not a power of two/,
    ],
    ["unknown disk type", (p) => editFooters(p, (b) => b.writeUInt32BE(6, 60)), /disk type unknown \(6\)/],
  ];
  for (const [what, edit, message] of cases) {
    const path = join(dir, `${what.replaceAll(" ", "-")}.vhd`);
    await copyFile(vhd, path);
    await edit(path);
    await assert.rejects(openImage(path, { format: "vhd" }), message, what);
  }
  // A fixed VHD whose footer claims more than the file holds is truncated, not read past its end.
  const fixed = join(dir, "fixed.vhd");
  await qemuImg("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", raw, fixed);
  await editStructure(fixed, (await stat(fixed)).size - 512, 512, (b) => b.writeBigUInt64BE(BigInt(64 * MiB), 48));
  await assert.rejects(openImage(fixed, { format: "vhd" }), /does not fit in the file's .* the file is truncated/);
});

test("a differencing VHD is refused, naming its parent", async (t) => {
  const dir = await scratch(t);
  const { vhd } = await qemuDynamicVhd(dir, "child", 4 * MiB);
  await editFooters(vhd, (b) => b.writeUInt32BE(4, 60));
  await editStructure(vhd, 512, 1024, (b) => Buffer.from("base-disk.vhd", "utf16le").swap16().copy(b, 64));
  await assert.rejects(openImage(vhd), (e: unknown) => {
    assert.ok(e instanceof UnsupportedFeatureError, String(e));
    assert.match(e.message, /differencing VHD over parent "base-disk\.vhd" is not supported/);
    return true;
  });
});

test("sector bitmaps: sectors whose bit is 0 read as zeros and are reported unallocated", async (t) => {
  const dir = await scratch(t);
  const size = 4 * MiB;
  const raw = join(dir, "in.raw");
  const data = pattern(2 * MiB, 3);
  await makeRaw(raw, size, [{ offset: 0, data }]);
  const vhd = join(dir, "bitmap.vhd");
  await convertFile({ input: raw, output: vhd, outputFormat: "vhd" });
  // Block 0's bitmap sits where its BAT entry points. Clear sector 3 (bit 4 of byte 0, most significant first)
  // and sectors 8..15 (byte 1).
  const file = await readFile(vhd);
  const bitmapAt = file.readUInt32BE(1536) * 512;
  const h = await open(vhd, "r+");
  await h.write(Buffer.from([0xef, 0x00]), 0, 2, bitmapAt);
  await h.close();
  const expected = Buffer.from(data);
  expected.fill(0, 3 * 512, 4 * 512);
  expected.fill(0, 8 * 512, 16 * 512);
  await withSource(vhd, async (s) => {
    assert.deepEqual(await s.read(0, 2 * MiB), expected);
    assert.deepEqual(await s.read(3 * 512 - 10, 30), expected.subarray(3 * 512 - 10, 3 * 512 + 20));
    const extents = (await extentsOf(s)).filter((e) => e.offset < 2 * MiB);
    assert.deepEqual(
      extents.map((e) => [e.offset, e.length, e.kind]),
      [
        [0, 3 * 512, "data"],
        [3 * 512, 512, "unallocated"],
        [4 * 512, 4 * 512, "data"],
        [8 * 512, 8 * 512, "unallocated"],
        [16 * 512, 2 * MiB - 16 * 512, "data"],
      ],
    );
  });
});

test("probe: fixed VHD found by its footer at the end, dynamic by its copy at 0, plain data stays raw", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "plain.raw");
  await writeFile(raw, pattern(MiB, 9));
  const fixed = join(dir, "fixed.vhd");
  await qemuImg("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", raw, fixed);
  const dynamic = join(dir, "dynamic.vhd");
  await qemuImg("convert", "-f", "raw", "-O", "vpc", raw, dynamic);
  for (const [path, format] of [
    [raw, "raw"],
    [fixed, "vhd"],
    [dynamic, "vhd"],
  ] as const) {
    const { driver, source } = await openImage(path);
    await source.close();
    assert.equal(driver.name, format, path);
  }
});
