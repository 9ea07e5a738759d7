/**
 * The VMDK driver against the real tools: every layout qemu-img writes (and Bochs' bximage, Red Hat's
 * VMDKstream, a VMware-made sample) must read back identical to `qemu-img convert -O raw`; the images we write
 * (monolithicSparse and streamOptimized) must pass `qemu-img check`, compare identical to their input, read back
 * identical through our reader, agree with libvmdk's vmdkinfo, and a streamOptimized written into a pipe must
 * be byte for byte the file written to disk. Hostile images are in vmdk-hostile.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { once } from "node:events";
import { convertFile, convertImage } from "../src/formats/engine/convert.js";
import { openImage } from "../src/formats/engine/open-image.js";
import { UsageError } from "../src/formats/errors.js";
import { StreamOutputFile } from "../src/formats/io/output-file.js";
import { TemporaryOutputFile } from "../src/formats/io/replacing-output.js";
import { detectFormat, getDriver } from "../src/formats/registry.js";
import { qemuSampleImage } from "./helpers/qemu-samples.js";
import {
  makeRaw,
  mixedRegions,
  pattern,
  qemuCheck,
  qemuCompare,
  qemuImg,
  qemuInfo,
  run,
  type Region,
  type Sample,
  scratch,
  standardSamples,
  textPattern,
} from "./helpers/tools.js";
import { MiB, bximageConvert, vmdkStreamConvert, vmdkinfo } from "./helpers/vmdk-tools.js";
import { assertCovers, assertZerosOutsideData, extentsOf, qemuRaw, readWhole } from "./helpers/image-checks.js";

const GiB = 2 ** 30;
const roundUp = (n: number, unit: number) => Math.ceil(n / unit) * unit;

/** Opens `image`, checks it reads identical to qemu's reading and its map is sane; returns the details. */
async function checkAgainstQemu(dir: string, image: string, options: Parameters<typeof openImage>[1] = {}) {
  assert.equal((await detectFormat(image)).name, "vmdk");
  const { source } = await openImage(image, options);
  try {
    assert.equal(source.virtualSize, (await qemuInfo(image))["virtual-size"]);
    const disk = await readWhole(source);
    assert.ok(disk.equals(await qemuRaw(dir, image)), "every byte matches qemu's reading");
    const extents = await extentsOf(source);
    assertCovers(extents, source.virtualSize);
    assertZerosOutsideData(disk, extents);
    return { details: await source.details(), extents, disk };
  } finally {
    await source.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// reading what qemu-img writes

const QEMU_VARIANTS: readonly { name: string; options: string }[] = [
  { name: "monolithicSparse", options: "subformat=monolithicSparse" },
  {
    name: "monolithicSparse, compat6, lsilogic",
    options: "subformat=monolithicSparse,compat6=on,adapter_type=lsilogic",
  },
  { name: "monolithicSparse with zeroed grains (header v2)", options: "zeroed_grain=on" },
  { name: "monolithicFlat", options: "subformat=monolithicFlat" },
  { name: "twoGbMaxExtentSparse", options: "subformat=twoGbMaxExtentSparse,adapter_type=buslogic" },
  { name: "twoGbMaxExtentFlat", options: "subformat=twoGbMaxExtentFlat,adapter_type=legacyESX" },
  { name: "streamOptimized", options: "subformat=streamOptimized" },
];

for (const variant of QEMU_VARIANTS) {
  test(`a qemu-img ${variant.name} VMDK reads identical to qemu-img convert -O raw`, async (t) => {
    const dir = await scratch(t);
    const size = 40 * MiB + 4096 + 512; // two grain tables' worth and an odd tail
    const input = join(dir, "in.raw");
    await makeRaw(input, size, [...mixedRegions(size), { offset: 33 * MiB - 100, data: pattern(200, 5) }]);
    const image = join(dir, "disk.vmdk");
    await qemuImg("convert", "-O", "vmdk", "-o", variant.options, input, image);
    const { details, extents } = await checkAgainstQemu(dir, image);
    const info = await qemuInfo(image);
    const specific = (info["format-specific"] as { data: { "create-type": string; cid: number } }).data;
    assert.equal(details.format, "vmdk");
    assert.equal(details.formatSpecific.createType, specific["create-type"]);
    assert.equal(parseInt(String(details.formatSpecific.cid), 16), specific.cid);
    if (variant.options.includes("compat6")) assert.equal(details.formatSpecific.hardwareVersion, "6");
    const adapter = /adapter_type=(\w+)/.exec(variant.options)?.[1] ?? "ide";
    assert.equal(details.formatSpecific.adapterType, adapter);
    if (!variant.name.includes("Flat")) {
      assert.equal(details.clusterSize, 65536);
      // Only grains holding data are data: the holes between the regions are not.
      const data = extents.filter((e) => e.kind === "data").reduce((n, e) => n + e.length, 0);
      assert.ok(data < 8 * MiB, `sparse image maps only its grains as data (got ${data})`);
    }
    if (variant.name === "streamOptimized") assert.equal(details.compression, "deflate");
    // libvmdk, where it can read the layout, sees the same disk.
    const lib = await vmdkinfo(image);
    if (lib) {
      assert.equal(lib.mediaSize, details.virtualSize);
      assert.equal(lib.cid, specific.cid);
      assert.equal(lib.extents, details.formatSpecific.extents);
    }
    if (variant.name.includes("zeroed")) assert.equal(details.formatSpecific.headerVersion, 2);
  });
}

test("zeroed-grain entries (header v2) map as zero extents and read as zeros", async (t) => {
  const dir = await scratch(t);
  const image = join(dir, "z.vmdk");
  await qemuImg("create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", image, "8M");
  await run("qemu-io", ["-f", "vmdk", "-c", "write -P 0x5a 0 2M", "-c", "write -z 1M 512K", image]);
  const { extents, disk } = await checkAgainstQemu(dir, image);
  assert.deepEqual(
    extents.map((e) => [e.offset, e.length, e.kind]),
    [
      [0, MiB, "data"],
      [MiB, 512 * 1024, "zero"],
      [MiB + 512 * 1024, 512 * 1024, "data"],
      [2 * MiB, 6 * MiB, "unallocated"],
    ],
  );
  assert.equal(disk[MiB + 1000], 0);
  assert.equal(disk[10], 0x5a);
});

for (const subformat of ["twoGbMaxExtentSparse", "twoGbMaxExtentFlat"]) {
  test(`a ${subformat} disk larger than 2 GiB reads across its extent files`, async (t) => {
    const dir = await scratch(t);
    const size = 2 * GiB + 3 * MiB;
    const input = join(dir, "in.raw");
    const regions: Region[] = [
      { offset: 0, data: pattern(70_000, 1) },
      { offset: 2 * GiB - 300_000, data: textPattern(700_000, 2) }, // crosses the first extent's end
      { offset: size - 5000, data: pattern(5000, 3) },
    ];
    await makeRaw(input, size, regions);
    const image = join(dir, "big.vmdk");
    await qemuImg("convert", "-O", "vmdk", "-o", `subformat=${subformat}`, input, image);
    const files = (await readdir(dir)).filter((f) => f.startsWith("big"));
    assert.equal(files.length, 3, "a descriptor and two extent files");
    const { source } = await openImage(image);
    try {
      assert.equal(source.virtualSize, size);
      const details = await source.details();
      assert.equal(details.formatSpecific.extents, 2);
      const crossing = regions[1]!;
      const got = await source.read(crossing.offset - 10, crossing.data.length + 20);
      assert.ok(got.subarray(10, 10 + crossing.data.length).equals(crossing.data));
      assert.ok(got.subarray(0, 10).equals(Buffer.alloc(10)));
      assertCovers(await extentsOf(source), size);
    } finally {
      await source.close();
    }
    const back = join(dir, "back.raw");
    await convertFile({ input: image, output: back, outputFormat: "raw" });
    assert.equal((await qemuCompare(input, back)).code, 0);
  });
}

// ---------------------------------------------------------------------------------------------------------
// reading what other tools write

test("Bochs bximage's header-version-1 VMDK reads identical to its input", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  const size = 10 * MiB;
  await makeRaw(input, size, mixedRegions(size));
  const image = join(dir, "bochs.vmdk");
  await bximageConvert(input, image);
  const { details, disk } = await checkAgainstQemu(dir, image);
  assert.equal(details.formatSpecific.headerVersion, 1);
  assert.ok(disk.equals(await readFile(input)));
});

test("VMDKstream's streamOptimized output (short last grain, its own descriptor) reads identical", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  // Not a whole grain: VMDKstream compresses a short last grain, which qemu 7.2 itself fails to read, so the
  // reference here is the input itself.
  const size = 9 * MiB + 777;
  await makeRaw(input, size, [...mixedRegions(size), { offset: size - 777, data: pattern(777, 8) }]);
  const image = join(dir, "stream.vmdk");
  await vmdkStreamConvert(input, image);
  assert.equal((await detectFormat(image)).name, "vmdk");
  const { source } = await openImage(image);
  try {
    assert.equal(source.virtualSize, roundUp(size, 512));
    const disk = await readWhole(source);
    assert.ok(disk.subarray(0, size).equals(await readFile(input)), "every byte matches the input");
    assert.ok(disk.subarray(size).equals(Buffer.alloc(disk.length - size)));
    const extents = await extentsOf(source);
    assertCovers(extents, source.virtualSize);
    assertZerosOutsideData(disk, extents);
    const details = await source.details();
    assert.equal(details.formatSpecific.createType, "streamOptimized");
    assert.equal(details.formatSpecific.adapterType, "lsilogic");
    assert.equal(details.compression, "deflate");
  } finally {
    await source.close();
  }
  // A whole number of grains, which qemu can read too.
  const aligned = join(dir, "aligned.raw");
  await makeRaw(aligned, 5 * MiB, mixedRegions(5 * MiB));
  const alignedImage = join(dir, "aligned.vmdk");
  await vmdkStreamConvert(aligned, alignedImage);
  await checkAgainstQemu(dir, alignedImage);
});

test("VMware's own header-v3 streamOptimized sample (qemu iotests) reads identical to qemu", async (t) => {
  const dir = await scratch(t);
  const image = await qemuSampleImage("iotest-version3.vmdk");
  const { source } = await openImage(image);
  try {
    const details = await source.details();
    assert.equal(details.formatSpecific.headerVersion, 3);
    assert.equal(details.formatSpecific.adapterType, "lsilogic");
    assert.equal(details.formatSpecific.hardwareVersion, "8");
    assert.equal(source.virtualSize, 16 * GiB);
    // The 16 GiB disk holds a few MiB: compare through a sparse raw conversion instead of memory.
    const ours = join(dir, "ours.raw");
    await convertFile({ input: image, output: ours, outputFormat: "raw" });
    assert.equal((await qemuCompare(image, ours)).code, 0);
  } finally {
    await source.close();
  }
});

// ---------------------------------------------------------------------------------------------------------
// writing

const { sparseMixed, oddSize } = standardSamples();
const SAMPLES: readonly Sample[] = [
  sparseMixed,
  { name: "dense", size: 9 * MiB, regions: [{ offset: 0, data: pattern(9 * MiB, 5) }] },
  oddSize,
  { name: "all zeros", size: 16 * MiB, regions: [] },
  { name: "tiny", size: 4096, regions: [{ offset: 512, data: pattern(100, 6) }] },
];

for (const subformat of ["monolithicSparse", "streamOptimized"] as const) {
  for (const sample of SAMPLES) {
    test(`writes a ${subformat} VMDK (${sample.name}) that qemu checks clean and reads identical`, async (t) => {
      const dir = await scratch(t);
      const input = join(dir, "in.raw");
      await makeRaw(input, sample.size, sample.regions);
      const output = join(dir, "out.vmdk");
      await convertFile({ input, output, outputFormat: "vmdk", createOptions: { subformat } });
      const check = await qemuCheck(output);
      assert.equal(check.code, 0, `qemu-img check: ${JSON.stringify(check.report)}`);
      assert.equal((await qemuCompare(input, output)).code, 0, "qemu reads our output as the input");
      const info = await qemuInfo(output);
      assert.equal(info.format, "vmdk");
      assert.equal(info["virtual-size"], roundUp(sample.size, 512));
      const specific = (info["format-specific"] as { data: { "create-type": string } }).data;
      assert.equal(specific["create-type"], subformat);

      const { disk, details } = await checkAgainstQemu(dir, output);
      assert.ok(disk.subarray(0, sample.size).equals(await readFile(input)), "our reader reads our output back");
      assert.equal(details.formatSpecific.createType, subformat);
      assert.equal(details.formatSpecific.adapterType, subformat === "streamOptimized" ? "lsilogic" : "ide");
      assert.equal(details.formatSpecific.hardwareVersion, "4");
      assert.equal(details.formatSpecific.toolsVersion, "2147483647");

      const lib = await vmdkinfo(output);
      assert.ok(lib, "vmdkinfo reads our output");
      assert.equal(lib.mediaSize, roundUp(sample.size, 512));
      assert.equal(lib.cid, parseInt(String(details.formatSpecific.cid), 16));
      assert.equal(lib.parentCid, 0xffffffff);
      assert.equal(lib.diskType, subformat === "streamOptimized" ? "Stream optimized" : "Monolithic sparse");

      // Stored grains: only those holding data (the sample's own data grains, never all-zero ones).
      const fileSize = (await stat(output)).size;
      const nonZeroGrains = new Set<number>();
      for (const r of sample.regions) {
        for (let g = Math.floor(r.offset / 65536); g * 65536 < r.offset + r.data.length; g++) {
          const from = Math.max(r.offset, g * 65536) - r.offset;
          const to = Math.min(r.offset + r.data.length, (g + 1) * 65536) - r.offset;
          if (!r.data.subarray(from, to).equals(Buffer.alloc(to - from))) nonZeroGrains.add(g);
        }
      }
      if (subformat === "monolithicSparse") {
        assert.ok(fileSize <= (nonZeroGrains.size + 2) * 65536 + 1024 * 1024, `file of ${fileSize} bytes is sparse`);
      }
    });
  }
}

test("write options land in the descriptor: adapter type, geometry, hardware and tools versions", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, 64 * MiB, [{ offset: 0, data: pattern(4096, 1) }]);
  const cases: { options: Record<string, string>; heads: string; hw: string }[] = [
    { options: { adapter_type: "buslogic", hwversion: "13", toolsversion: "12345" }, heads: "255", hw: "13" },
    { options: { compat6: "on" }, heads: "16", hw: "6" },
    { options: { subformat: "streamOptimized", adapter_type: "ide", compression_level: "9" }, heads: "16", hw: "4" },
  ];
  for (const [i, c] of cases.entries()) {
    const output = join(dir, `o${i}.vmdk`);
    await convertFile({ input, output, outputFormat: "vmdk", createOptions: c.options });
    assert.equal((await qemuCompare(input, output)).code, 0);
    const text = (await readFile(output)).subarray(512, 512 * 21).toString("latin1");
    assert.match(text, /^# Disk DescriptorFile\n/);
    assert.match(text, new RegExp(`ddb.geometry.heads = "${c.heads}"`));
    assert.match(text, new RegExp(`ddb.virtualHWVersion = "${c.hw}"`));
    const cylinders = Number(/ddb.geometry.cylinders = "(\d+)"/.exec(text)?.[1]);
    assert.equal(cylinders, Math.floor((64 * MiB) / 512 / (Number(c.heads) * 63)));
    assert.match(text, new RegExp(`RW 131072 SPARSE "o${i}.vmdk"`));
    if ("toolsversion" in c.options) assert.match(text, /ddb.toolsVersion = "12345"/);
  }
});

test("bad write options are refused before anything is written", async () => {
  const driver = getDriver("vmdk");
  const bad: Record<string, string>[] = [
    { subformat: "monolithicFlat" },
    { adapter_type: "nvme" },
    { hwversion: "3" },
    { compat6: "on", hwversion: "7" },
    { compression_level: "5" }, // monolithicSparse is not compressed
    { subformat: "streamOptimized", compression_level: "10" },
    { toolsversion: "abc" },
    { cid: "ffffffff" },
    { colour: "blue" },
  ];
  for (const options of bad) {
    const output = { seekable: true, position: 0 } as never;
    await assert.rejects(driver.create!(output, MiB, options), UsageError, JSON.stringify(options));
  }
  const pipe = new StreamOutputFile(new (await import("node:stream")).PassThrough());
  await assert.rejects(driver.create!(pipe, MiB, {}), /seekable/);
});

test("a streamOptimized VMDK written into a pipe is byte-identical to the one written to a file", async (t) => {
  const dir = await scratch(t);
  const size = 48 * MiB + 1536;
  const input = join(dir, "in.raw");
  await makeRaw(input, size, [...mixedRegions(size), { offset: 40 * MiB, data: textPattern(3 * MiB, 9) }]);
  const options = { subformat: "streamOptimized", cid: "1234abcd" } as const;

  await mkdir(join(dir, "file"));
  const seekable = join(dir, "file", "disk.vmdk");
  await convertFile({ input, output: seekable, outputFormat: "vmdk", createOptions: options });

  const piped = join(dir, "piped.vmdk");
  const cat = spawn("sh", ["-c", `cat > '${piped}'`], { stdio: ["pipe", "ignore", "inherit"] });
  const { source } = await openImage(input);
  try {
    const target = await getDriver("vmdk").create!(new StreamOutputFile(cat.stdin), size, options);
    assert.equal(target.access, "sequential");
    await convertImage(source, target);
  } finally {
    await source.close();
  }
  cat.stdin.end();
  const [code] = await once(cat, "exit");
  assert.equal(code, 0);
  const a = await readFile(seekable);
  const b = await readFile(piped);
  assert.equal(b.length, a.length);
  assert.ok(a.equals(b), "the piped stream equals the file");
  assert.equal((await qemuCompare(input, piped)).code, 0);
  assert.equal((await qemuCheck(piped)).code, 0);
});

test("a large, mostly empty disk streams with little output and its map survives the round trip", async (t) => {
  const dir = await scratch(t);
  const size = 100 * GiB;
  const input = join(dir, "in.raw");
  const regions: Region[] = [
    { offset: 0, data: pattern(100_000, 1) },
    { offset: 37 * GiB + 12345, data: textPattern(3 * MiB, 2) },
    { offset: size - 4096, data: pattern(4096, 3) },
  ];
  await makeRaw(input, size, regions);
  for (const subformat of ["streamOptimized", "monolithicSparse"] as const) {
    const output = join(dir, `${subformat}.vmdk`);
    await convertFile({ input, output, outputFormat: "vmdk", createOptions: { subformat } });
    assert.ok((await stat(output)).blocks * 512 < 32 * MiB, "tables of empty ranges cost (almost) nothing");
    assert.equal((await qemuCheck(output)).code, 0);
    const { source } = await openImage(output);
    try {
      for (const r of regions) assert.ok((await source.read(r.offset, r.data.length)).equals(r.data));
      const data = (await extentsOf(source)).filter((e) => e.kind === "data");
      assert.equal(data.length, 3);
    } finally {
      await source.close();
    }
  }
});

test("a seekable-only layout writes through TemporaryOutputFile and names itself in its extent line", async (t) => {
  const dir = await scratch(t);
  const output = await TemporaryOutputFile.create(join(dir, "named.vmdk"));
  const target = await getDriver("vmdk").create!(output, 2 * MiB, {});
  await target.writeData(0, pattern(65536 + 100, 3));
  await target.writeZeroes(65536 + 100, 2 * MiB - 65536 - 100, "unallocated");
  await target.finish();
  await output.commit();
  const text = (await readFile(join(dir, "named.vmdk"))).subarray(512, 1536).toString("latin1");
  assert.match(text, /RW 4096 SPARSE "named.vmdk"/);
  assert.equal((await qemuCheck(join(dir, "named.vmdk"))).code, 0);
});
