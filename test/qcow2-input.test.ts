/**
 * The qcow2 reader opened from an ImageInput that is not a file (openQcow2FromInput): what the workflows use to
 * read a Glance image in place through HTTP Range requests. Images qemu-img writes (zlib-compressed,
 * extended_l2, 512-byte and 2 MiB clusters) must read back byte-identical to `qemu-img convert -O raw`, with the
 * same map as the same image opened by path; an image naming a backing or external data file is refused with a
 * clear error (an input has no directory to find it in) and the input is closed; a hostile table offset is a
 * CorruptImageError naming the input's label.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openQcow2FromInput, qcow2Driver } from "../src/formats/drivers/qcow2/qcow2-driver.js";
import { CorruptImageError, UnsupportedFeatureError } from "../src/formats/errors.js";
import { BoundedInput } from "../src/formats/io/image-input.js";
import { openReaderSource, readableInPlace } from "../src/workflows/reader-source.js";
import type { ImageReader } from "../src/providers/provider.js";
import { makeRaw, mixedRegions, qemuImg, scratch } from "./helpers/tools.js";
import { extentsOf, qemuRaw, readWhole } from "./helpers/image-checks.js";

const MiB = 2 ** 20;
/** Not a multiple of any cluster size above 512 bytes. */
const SIZE = 13 * MiB + 7 * 512;

/** An image held in memory: an ImageInput with no path behind it, counting its reads and whether it was closed. */
class MemoryInput extends BoundedInput {
  reads = 0;
  closed = false;

  constructor(
    private readonly bytes: Buffer,
    readonly path: string,
  ) {
    super();
  }

  get size(): number {
    return this.bytes.length;
  }

  get allocatedSize(): number {
    return this.bytes.length;
  }

  protected async readWithin(position: number, length: number, buf: Buffer): Promise<void> {
    this.reads++;
    this.bytes.copy(buf, 0, position, position + length);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A positional reader over memory, like the Glance Range reader: the workflows' ImageReader. */
function memoryReader(bytes: Buffer): ImageReader & { closed: boolean } {
  return {
    size: bytes.length,
    closed: false,
    async read(buffer: Buffer, position: number): Promise<number> {
      return bytes.copy(buffer, 0, position, Math.min(bytes.length, position + buffer.length));
    },
    async close() {
      this.closed = true;
    },
  };
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
    const source = await openQcow2FromInput(input, "glance:test-image");
    const byPath = await qcow2Driver.open(image, {});
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

test("qcow2 from an input: the workflows' reader bridge opens qcow2 in place and reads it like qemu", async (t) => {
  assert.ok(readableInPlace("qcow2"));
  const dir = await scratch(t);
  const raw = await mixedRaw(dir);
  const image = join(dir, "image.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", "-c", raw, image);
  const reader = memoryReader(await readFile(image));
  const source = await openReaderSource(reader, "qcow2", "openstack:x");
  try {
    assert.equal(source.format, "qcow2");
    assert.ok((await readWhole(source)).equals(await qemuRaw(dir, image)));
  } finally {
    await source.close();
  }
  assert.ok(reader.closed);
});

test("qcow2 from an input: a backing file is refused clearly, naming it, and the input is closed", async (t) => {
  const dir = await scratch(t);
  const base = join(dir, "base.raw");
  await makeRaw(base, 4 * MiB, mixedRegions(4 * MiB));
  const overlay = join(dir, "overlay.qcow2");
  await qemuImg("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay);
  const input = new MemoryInput(await readFile(overlay), "glance:overlay");
  await assert.rejects(openQcow2FromInput(input, "glance:overlay"), (e: unknown) => {
    assert.ok(e instanceof UnsupportedFeatureError, String(e));
    assert.match(e.message, /^glance:overlay: /);
    assert.match(e.message, /backing file "base\.raw"/);
    assert.match(e.message, /cannot be opened when the image is read from a byte stream or remote store/);
    return true;
  });
  assert.ok(input.closed, "a refused open closes the input");
  // The bridge refuses the same way.
  const reader = memoryReader(await readFile(overlay));
  await assert.rejects(openReaderSource(reader, "qcow2", "openstack:o"), /openstack:o: .*backing file "base\.raw"/);
  assert.ok(reader.closed);
});

test("qcow2 from an input: an external data file is refused clearly", async (t) => {
  const dir = await scratch(t);
  const image = join(dir, "ext.qcow2");
  // An absolute name: qemu-img creates a relative data file in its working directory, not beside the image.
  await qemuImg("create", "-f", "qcow2", "-o", `data_file=${join(dir, "ext.data")}`, image, "4M");
  const input = new MemoryInput(await readFile(image), "glance:ext");
  await assert.rejects(
    openQcow2FromInput(input, "glance:ext"),
    (e: unknown) =>
      e instanceof UnsupportedFeatureError && /glance:ext: .*external data file ".*\/ext\.data"/.test(e.message),
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
