/**
 * The qcow2 reader opened from an ImageInput that is not a file: what the workflows use to read a Glance image
 * in place through HTTP Range requests. Images qemu-img writes (zlib-compressed,
 * extended_l2, 512-byte and 2 MiB clusters) must read back byte-identical to `qemu-img convert -O raw`, with the
 * same map as the same image opened by path; an image naming a backing or external data file is refused with a
 * clear error (an input that is not a local file has no folder to find it in) and the input is closed; a hostile table offset is a
 * CorruptImageError naming the input's label.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CorruptImageError, ReferenceRefusedError } from "../src/formats/errors.js";
import { openImage } from "../src/formats/engine/open-image.js";
import type { ImageSource } from "../src/formats/types.js";
import { makeRaw, mixedRegions, qemuImg, scratch } from "./helpers/tools.js";
import { extentsOf, qemuRaw, readWhole } from "./helpers/image-checks.js";
import { MemoryInput } from "./helpers/memory-input.js";

const MiB = 2 ** 20;
/** Not a multiple of any cluster size above 512 bytes. */
const SIZE = 13 * MiB + 7 * 512;

async function openQcow2FromInput(input: MemoryInput): Promise<ImageSource> {
  return (await openImage(input, { format: "qcow2" })).source;
}

async function mixedRaw(dir: string): Promise<string> {
  const raw = join(dir, "mixed.raw");
  await makeRaw(raw, SIZE, mixedRegions(SIZE));
  return raw;
}

const cases: ReadonlyArray<{ name: string; args: string[]; compressed?: boolean }> = [
  { name: "default (64 KiB clusters)", args: [] },
  { name: "zlib-compressed", args: ["-c", "-o", "compression_type=zlib"], compressed: true },
  { name: "extended_l2=on", args: ["-o", "extended_l2=on"] },
  {
    name: "extended_l2=on, compressed, 128 KiB clusters",
    args: ["-c", "-o", "extended_l2=on,cluster_size=128k"],
    compressed: true,
  },
  { name: "cluster_size=512", args: ["-o", "cluster_size=512"] },
  { name: "cluster_size=512, zlib-compressed", args: ["-c", "-o", "cluster_size=512"], compressed: true },
  { name: "cluster_size=2M", args: ["-o", "cluster_size=2M"] },
  { name: "cluster_size=2M, zlib-compressed", args: ["-c", "-o", "cluster_size=2M"], compressed: true },
];

for (const c of cases) {
  test(`qcow2 from an input: qemu-img convert ${c.name} reads back identical to qemu-img's raw, same map as by path`, async (t) => {
    const dir = await scratch(t);
    const raw = await mixedRaw(dir);
    const image = join(dir, "image.qcow2");
    await qemuImg("convert", "-f", "raw", "-O", "qcow2", ...c.args, raw, image);
    const expected = await qemuRaw(dir, image);
    assert.ok(expected.equals(await readFile(raw)), "qemu-img itself reads the image back as written");

    const input = new MemoryInput(await readFile(image), "glance:test-image");
    const source = await openQcow2FromInput(input);
    const { source: byPath } = await openImage(image);
    try {
      assert.equal(source.format, "qcow2");
      assert.equal(source.virtualSize, SIZE);
      const got = await readWhole(source);
      assert.equal(got.length, expected.length);
      assert.ok(got.equals(expected), "every byte equals qemu-img convert -O raw");
      assert.deepEqual(await extentsOf(source), await extentsOf(byPath), "same data/zero/unallocated map");
      const details = await source.details();
      assert.equal(details.virtualSize, SIZE);
      if (c.compressed) assert.ok((details.formatSpecific.compressedClusters as number) > 0);
      else assert.equal(details.formatSpecific.compressedClusters, 0);
      assert.ok(input.reads > 0, "everything came through the input");
    } finally {
      await source.close();
      await byPath.close();
    }
    assert.ok(input.closed, "the source owns its input and closes it");
  });
}

test("qcow2 from an input: a backing file is refused clearly, naming it, and the input is closed", async (t) => {
  const dir = await scratch(t);
  const base = join(dir, "base.raw");
  await makeRaw(base, 4 * MiB, mixedRegions(4 * MiB));
  const overlay = join(dir, "overlay.qcow2");
  await qemuImg("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay);
  const input = new MemoryInput(await readFile(overlay), "glance:overlay");
  await assert.rejects(openQcow2FromInput(input), (e: unknown) => {
    assert.ok(e instanceof ReferenceRefusedError, String(e));
    assert.match(e.message, /^glance:overlay: /);
    assert.match(e.message, /backing file "base\.raw"/);
    assert.match(e.message, /an image read from an archive, a URL or a pipe has no folder/);
    return true;
  });
  assert.ok(input.closed, "a refused open closes the input");
});

test("qcow2 from an input: an external data file is refused clearly", async (t) => {
  const dir = await scratch(t);
  const image = join(dir, "ext.qcow2");
  // An absolute name: qemu-img creates a relative data file in its working directory, not beside the image.
  await qemuImg("create", "-f", "qcow2", "-o", `data_file=${join(dir, "ext.data")}`, image, "4M");
  const input = new MemoryInput(await readFile(image), "glance:ext");
  await assert.rejects(
    openQcow2FromInput(input),
    (e: unknown) =>
      e instanceof ReferenceRefusedError && /glance:ext: .*external data file ".*\/ext\.data"/.test(e.message),
  );
  assert.ok(input.closed);
});

test("qcow2 from an input: hostile tables are CorruptImageErrors naming the input, not huge allocations", async (t) => {
  const dir = await scratch(t);
  const raw = await mixedRaw(dir);
  const image = join(dir, "image.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", raw, image);
  const good = await readFile(image);

  // L1 table moved past the end of the input.
  const farL1 = Buffer.from(good);
  farL1.writeBigUInt64BE(BigInt(good.length + 65536) & ~0xffffn, 40);
  const a = new MemoryInput(farL1, "glance:far-l1");
  await assert.rejects(
    openQcow2FromInput(a),
    (e: unknown) => e instanceof CorruptImageError && /glance:far-l1/.test(e.message),
  );
  assert.ok(a.closed);

  // A virtual size of 2^60 bytes with a one-entry L1 table: refused from the header, nothing allocated by it.
  const huge = Buffer.from(good);
  huge.writeBigUInt64BE(2n ** 60n, 24);
  const b = new MemoryInput(huge, "glance:huge");
  await assert.rejects(
    openQcow2FromInput(b),
    (e: unknown) => e instanceof CorruptImageError && /glance:huge/.test(e.message),
  );
  assert.ok(b.closed);

  // Cut short in the middle of the data: a read there names the input and the offset.
  const short = good.subarray(0, good.length - 64 * 1024);
  await writeFile(join(dir, "short.qcow2"), short);
  const c = new MemoryInput(Buffer.from(short), "glance:short");
  const source = await openQcow2FromInput(c);
  try {
    await assert.rejects(
      readWhole(source),
      (e: unknown) => e instanceof CorruptImageError && /glance:short/.test(e.message),
    );
  } finally {
    await source.close();
  }
});
