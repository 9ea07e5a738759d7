/**
 * Hostile and broken VMDKs: valid files patched or cut, descriptors naming files outside their folder, fuzzed
 * headers. Each must be refused with a typed error that says what is wrong, quickly and without a huge
 * allocation; nothing outside the image's folder may be opened unless the caller allowed it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, symlink, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import zlib from "node:zlib";
import { convertFile } from "../src/formats/engine/convert.js";
import { openImage } from "../src/formats/engine/open-image.js";
import {
  ChromogenicError,
  CorruptImageError,
  ReferenceRefusedError,
  UnsupportedFeatureError,
} from "../src/formats/errors.js";
import { qemuSampleImage } from "./helpers/qemu-samples.js";
import { makeRaw, mixedRegions, pattern, qemuImg, scratch } from "./helpers/tools.js";
import { MiB } from "./helpers/vmdk-tools.js";
import { readWhole } from "./helpers/image-checks.js";
import { patch, u32, u64 } from "./helpers/patching.js";

/** Sparse header field offsets (VMware Virtual Disk Format 5.0). */
const AT = { version: 4, flags: 8, capacity: 12, grainSize: 20, gtesPerGt: 44, gdOffset: 56, newline: 73 } as const;

/** Opens the image and reads all of it (table loads happen on demand); resolves to the error, if any. */
async function openAndRead(path: string, options: Parameters<typeof openImage>[1] = {}): Promise<void> {
  const { source } = await openImage(path, options);
  try {
    await readWhole(source);
    for await (const _ of source.extents());
  } finally {
    await source.close();
  }
}

async function qemuVmdk(dir: string, name: string, subformat: string, size = 8 * MiB): Promise<string> {
  const input = join(dir, `${name}.raw`);
  await makeRaw(input, size, mixedRegions(size));
  const image = join(dir, `${name}.vmdk`);
  await qemuImg("convert", "-O", "vmdk", "-o", `subformat=${subformat}`, input, image);
  return image;
}

// ---------------------------------------------------------------------------------------------------------
// truncated and out-of-bounds

test("a streamOptimized file cut in the middle is refused as truncated", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, 8 * MiB, mixedRegions(8 * MiB));
  const image = join(dir, "stream.vmdk");
  await convertFile({ input, output: image, outputFormat: "vmdk", createOptions: { subformat: "streamOptimized" } });
  const full = await readFile(image);
  for (const cut of [Math.floor(full.length / 2), full.length - 512, full.length - 700]) {
    await writeFile(image, full.subarray(0, cut));
    await assert.rejects(openAndRead(image), (e: unknown) => {
      assert.ok(e instanceof CorruptImageError, String(e));
      assert.match(e.message, /truncated|not completely written/);
      return true;
    });
  }
});

test("a qemu-style streamOptimized (directory up front) cut in the middle fails clearly on its grains", async (t) => {
  const dir = await scratch(t);
  const image = await qemuVmdk(dir, "qs", "streamOptimized");
  const full = await readFile(image);
  await writeFile(image, full.subarray(0, Math.floor(full.length / 2)));
  await assert.rejects(openAndRead(image), (e: unknown) => {
    assert.ok(e instanceof CorruptImageError, String(e));
    assert.match(e.message, /outside the file|beyond the end of the file/);
    return true;
  });
});

test("a grain table entry pointing outside the file is refused", async (t) => {
  const dir = await scratch(t);
  const image = await qemuVmdk(dir, "gt", "monolithicSparse");
  const head = await readFile(image);
  const gdSector = Number(head.readBigUInt64LE(AT.gdOffset));
  const firstTable = head.length > gdSector * 512 ? (await readFile(image)).readUInt32LE(gdSector * 512) : 0;
  await patch(image, firstTable * 512, u32(0x7fffff00));
  await assert.rejects(openAndRead(image), /grain table 0 entry 0 points to sector 2147483392, outside the file/);
});

test("a grain directory entry pointing outside the file is refused at open", async (t) => {
  const dir = await scratch(t);
  const image = await qemuVmdk(dir, "gd", "monolithicSparse");
  const gdSector = Number((await readFile(image)).readBigUInt64LE(AT.gdOffset));
  await patch(image, gdSector * 512, u32(0x10000000));
  await assert.rejects(openImage(image), (e: unknown) => {
    assert.ok(e instanceof CorruptImageError);
    assert.match(e.message, /grain directory entry 0 points to a grain table at sector 268435456, outside the file/);
    return true;
  });
});

test("absurd header sizes are refused before anything is allocated", async (t) => {
  const dir = await scratch(t);
  const base = await qemuVmdk(dir, "base", "monolithicSparse");
  const original = await readFile(base);
  const cases: { what: string; at: number; bytes: Buffer; error: RegExp }[] = [
    { what: "zero entries per table", at: AT.gtesPerGt, bytes: u32(0), error: /entries per grain table/ },
    { what: "huge entries per table", at: AT.gtesPerGt, bytes: u32(1 << 20), error: /entries per grain table/ },
    { what: "grain not a power of two", at: AT.grainSize, bytes: u64(96n), error: /not a power of two/ },
    { what: "grain over 2 MiB", at: AT.grainSize, bytes: u64(8192n), error: /grain size/ },
    { what: "capacity beyond 64 TiB", at: AT.capacity, bytes: u64(1n << 40n), error: /capacity/ },
    // 64 TiB of 512-byte grains, one per table: a 512 MiB directory if believed.
    {
      what: "a directory far over the table limit",
      at: AT.capacity,
      bytes: Buffer.concat([u64(1n << 37n), u64(1n)]),
      error: /grain directory would need/,
    },
    { what: "version 4", at: AT.version, bytes: u32(4), error: /version 4 is not supported/ },
    { what: "newline check bytes altered", at: AT.newline, bytes: Buffer.from("\n \n\n"), error: /text mode/ },
  ];
  for (const c of cases) {
    const image = join(dir, "patched.vmdk");
    await writeFile(image, original);
    await patch(image, c.at, c.bytes);
    if (c.what === "a directory far over the table limit") await patch(image, AT.gtesPerGt, u32(1));
    const before = process.memoryUsage().rss;
    await assert.rejects(openImage(image), (e: unknown) => {
      assert.ok(e instanceof ChromogenicError, `${c.what}: ${String(e)}`);
      assert.match(e.message, c.error, c.what);
      return true;
    });
    assert.ok(process.memoryUsage().rss - before < 64 * MiB, `${c.what}: no large allocation`);
  }
});

test("QEMU's fuzzed afl9.vmdk (huge grain directory) is refused quickly without a huge allocation", async () => {
  const image = await qemuSampleImage("afl9.vmdk");
  const before = process.memoryUsage().rss;
  const started = performance.now();
  await assert.rejects(openImage(image), (e: unknown) => {
    assert.ok(e instanceof CorruptImageError, String(e));
    assert.match(e.message, /capacity|grain directory/);
    return true;
  });
  assert.ok(performance.now() - started < 2000);
  assert.ok(process.memoryUsage().rss - before < 64 * MiB);
});

// ---------------------------------------------------------------------------------------------------------
// compressed grains

/** A streamOptimized image of one random grain, and where that grain's marker is. */
async function oneGrainStream(dir: string): Promise<{ image: string; marker: number }> {
  const input = join(dir, "one.raw");
  await makeRaw(input, MiB, [{ offset: 0, data: pattern(65536, 3) }]);
  const image = join(dir, "one.vmdk");
  await convertFile({ input, output: image, outputFormat: "vmdk", createOptions: { subformat: "streamOptimized" } });
  return { image, marker: 128 * 512 }; // the first grain follows the 64 KiB overhead
}

test("a compressed grain that inflates beyond the grain size is refused (no zip bomb)", async (t) => {
  const dir = await scratch(t);
  const { image, marker } = await oneGrainStream(dir);
  const bomb = zlib.deflateSync(Buffer.alloc(4 * MiB, 0x41));
  assert.ok(bomb.length < 60_000, "the bomb fits where the grain was");
  await patch(image, marker + 8, u32(bomb.length));
  await patch(image, marker + 12, bomb);
  await assert.rejects(openAndRead(image), /inflates to more than the grain size 65536/);
});

test("a grain marker with an absurd size, the wrong sector, or garbage data is refused", async (t) => {
  const dir = await scratch(t);
  const cases: { what: string; at: number; bytes: Buffer; error: RegExp }[] = [
    { what: "size", at: 8, bytes: u32(0x7fffffff), error: /compressed size 2147483647 is outside/ },
    { what: "zero size", at: 8, bytes: u32(0), error: /compressed size 0 is outside/ },
    { what: "sector", at: 0, bytes: u64(128n), error: /marker names sector 128/ },
    { what: "data", at: 12, bytes: Buffer.alloc(64, 0xff), error: /not a valid zlib stream/ },
  ];
  for (const c of cases) {
    const { image, marker } = await oneGrainStream(dir);
    await patch(image, marker + c.at, c.bytes);
    await assert.rejects(openAndRead(image), (e: unknown) => {
      assert.ok(e instanceof CorruptImageError, `${c.what}: ${String(e)}`);
      assert.match(e.message, c.error);
      return true;
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// references: extents must stay in the descriptor's folder

/** A monolithicFlat pair in `folder`: descriptor text (to rewrite) and the flat extent's path. */
async function flatPair(folder: string): Promise<{ descriptor: string; text: string; flat: string }> {
  await mkdir(folder, { recursive: true });
  const image = await qemuVmdk(folder, "disk", "monolithicFlat", 2 * MiB);
  const text = (await readFile(image, "latin1")).replace(/\0+$/, "");
  return { descriptor: image, text, flat: join(folder, "disk-flat.vmdk") };
}

test("extents beside the descriptor open by default; absolute paths and .. are refused", async (t) => {
  const dir = await scratch(t);
  const { descriptor, text, flat } = await flatPair(join(dir, "vm"));
  await openAndRead(descriptor); // sibling extent: the format's normal layout

  const outside = join(dir, "secret.raw");
  await writeFile(outside, pattern(2 * MiB, 9));
  for (const name of [outside, "../secret.raw", "sub/../../secret.raw"]) {
    await writeFile(descriptor, text.replace('"disk-flat.vmdk"', `"${name}"`));
    await assert.rejects(openImage(descriptor), (e: unknown) => {
      assert.ok(e instanceof ReferenceRefusedError, `${name}: ${String(e)}`);
      assert.match(e.message, /extent/);
      return true;
    });
  }
  // Allowed explicitly, the same absolute reference opens.
  await writeFile(descriptor, text.replace('"disk-flat.vmdk"', `"${outside}"`));
  const { source } = await openImage(descriptor, { references: { allowedPaths: [outside] } });
  try {
    assert.ok((await source.read(0, 4096)).equals(pattern(2 * MiB, 9).subarray(0, 4096)));
  } finally {
    await source.close();
  }
  assert.ok(flat);
});

test("a symlink in the descriptor's folder leading outside it is refused unless that real path is allowed", async (t) => {
  const dir = await scratch(t);
  const { descriptor, text } = await flatPair(join(dir, "vm"));
  const outside = join(dir, "elsewhere", "target.raw");
  await mkdir(join(dir, "elsewhere"));
  await writeFile(outside, pattern(2 * MiB, 5));
  await symlink(outside, join(dir, "vm", "link.vmdk"));
  await writeFile(descriptor, text.replace('"disk-flat.vmdk"', '"link.vmdk"'));
  await assert.rejects(openImage(descriptor), (e: unknown) => {
    assert.ok(e instanceof ReferenceRefusedError, String(e));
    assert.match(e.message, /outside the image's folder/);
    return true;
  });
  const { source } = await openImage(descriptor, { references: { allowedPaths: [outside] } });
  await source.close();
});

test("a missing extent, unsupported extent types and delta disks are refused with what they are", async (t) => {
  const dir = await scratch(t);
  const { descriptor, text } = await flatPair(join(dir, "vm"));
  await writeFile(descriptor, text.replace('"disk-flat.vmdk"', '"gone-flat.vmdk"'));
  await assert.rejects(openImage(descriptor), /does not exist/);

  for (const [type, error] of [
    ["VMFSSPARSE", /snapshot deltas/],
    ["VMFSRDM", /raw device/],
    ["SESPARSE", /snapshot deltas/],
  ] as const) {
    await writeFile(descriptor, text.replace(/ FLAT "disk-flat.vmdk" 0/, ` ${type} "disk-flat.vmdk"`));
    await assert.rejects(openImage(descriptor), (e: unknown) => {
      assert.ok(e instanceof UnsupportedFeatureError, String(e));
      assert.match(e.message, error);
      return true;
    });
  }

  // A real delta disk made by qemu: parentCID and parentFileNameHint name its base.
  const base = await qemuVmdk(dir, "base", "monolithicSparse");
  const child = join(dir, "child.vmdk");
  await qemuImg("create", "-q", "-f", "vmdk", "-b", base, "-F", "vmdk", child);
  await assert.rejects(openImage(child), (e: unknown) => {
    assert.ok(e instanceof UnsupportedFeatureError, String(e));
    assert.match(e.message, /delta disk/);
    assert.match(e.message, /base\.vmdk/);
    return true;
  });
});

test("a descriptor too large, malformed extent lines, and a COWD extent are refused", async (t) => {
  const dir = await scratch(t);
  const big = join(dir, "big.vmdk");
  await writeFile(big, '# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\n');
  await truncate(big, 2 * MiB);
  await assert.rejects(openImage(big, { format: "vmdk" }), /too large .* for a VMDK descriptor/);

  const { descriptor, text } = await flatPair(join(dir, "vm"));
  await writeFile(descriptor, text.replace(/RW \d+ FLAT/, "RW -5 FLAT"));
  await assert.rejects(openImage(descriptor), /extent line is malformed/);

  const cowd = join(dir, "cowd.vmdk");
  const head = Buffer.alloc(2048);
  head.write("COWD", 0, "latin1");
  await writeFile(cowd, head);
  await assert.rejects(openImage(cowd), UnsupportedFeatureError);
});
