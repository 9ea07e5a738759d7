/**
 * Every driver reads every input: an image held somewhere that is not a local file (an HTTP object, an archive
 * member) is detected by its content and read identically to the same file opened by path, for every format and
 * layout qemu-img writes. The images are made by qemu-img and compared with its own `convert -O raw`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { openImage } from "../../../src/formats/engine/open-image.js";
import { SliceInput } from "../../../src/formats/inputs/slice-input.js";
import { makeRaw, mixedRegions, qemuImg, scratch } from "../../helpers/tools.js";
import { extentsOf, qemuRaw, readWhole } from "../../helpers/image-checks.js";
import { MemoryInput } from "../../helpers/memory-input.js";

const MiB = 2 ** 20;
const SIZE = 9 * MiB;

/** qemu-img's format name and options, and the driver that must be detected. */
const LAYOUTS: ReadonlyArray<{ name: string; qemu: string[]; driver: string }> = [
  { name: "raw", qemu: ["-O", "raw"], driver: "raw" },
  { name: "qcow2", qemu: ["-O", "qcow2"], driver: "qcow2" },
  { name: "qcow2 compressed", qemu: ["-O", "qcow2", "-c"], driver: "qcow2" },
  { name: "vmdk monolithicSparse", qemu: ["-O", "vmdk"], driver: "vmdk" },
  { name: "vmdk streamOptimized", qemu: ["-O", "vmdk", "-o", "subformat=streamOptimized"], driver: "vmdk" },
  { name: "vhd dynamic", qemu: ["-O", "vpc"], driver: "vhd" },
  { name: "vhd fixed", qemu: ["-O", "vpc", "-o", "subformat=fixed,force_size=on"], driver: "vhd" },
  { name: "vhdx dynamic", qemu: ["-O", "vhdx"], driver: "vhdx" },
  { name: "vhdx fixed", qemu: ["-O", "vhdx", "-o", "subformat=fixed"], driver: "vhdx" },
  { name: "vdi dynamic", qemu: ["-O", "vdi"], driver: "vdi" },
  { name: "vdi static", qemu: ["-O", "vdi", "-o", "static=on"], driver: "vdi" },
];

for (const layout of LAYOUTS) {
  test(`${layout.name} from a non-file input: detected, read like the file by path and like qemu-img`, async (t) => {
    const dir = await scratch(t);
    const raw = join(dir, "mixed.raw");
    await makeRaw(raw, SIZE, mixedRegions(SIZE));
    const image = join(dir, "image");
    await qemuImg("convert", "-f", "raw", ...layout.qemu, raw, image);
    const expected = await qemuRaw(dir, image, layout.qemu[1]);

    const input = new MemoryInput(await readFile(image), `remote:${layout.name}`);
    const { driver, source } = await openImage(input);
    const byPath = await openImage(image);
    try {
      assert.equal(driver.name, layout.driver, "detected from the content alone");
      assert.equal(source.virtualSize, expected.length);
      assert.ok((await readWhole(source)).equals(expected), "every byte equals qemu-img convert -O raw");
      // Where the format keeps its own allocation table the maps agree; where the disk is stored plainly (raw,
      // fixed VHD, static VDI) the file's holes are the host's to tell, which a remote input cannot.
      const stored = (await extentsOf(byPath.source)).filter((e) => e.kind === "data");
      const covered = (await extentsOf(source)).filter((e) => e.kind === "data");
      for (const e of stored) {
        assert.ok(
          covered.some((c) => c.offset <= e.offset && c.offset + c.length >= e.offset + e.length),
          `data at ${e.offset} (+${e.length}) by path is data through the input too`,
        );
      }
      assert.ok(input.reads > 0);
    } finally {
      await source.close();
      await byPath.source.close();
    }
    assert.ok(input.closed, "the source owns its input");
  });
}

test("an image inside another input (an archive member) reads through a slice, parent kept open or owned", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "mixed.raw");
  await makeRaw(raw, SIZE, mixedRegions(SIZE));
  const image = join(dir, "image.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", raw, image);
  const bytes = await readFile(image);
  // The image stored at offset 1536 of a larger object, after a header and before a trailer.
  const container = Buffer.concat([Buffer.alloc(1536, 0x55), bytes, Buffer.alloc(700, 0xaa)]);
  const parent = new MemoryInput(container, "archive");
  const slice = await SliceInput.of(parent, [{ offset: 1536, length: bytes.length }], "archive:image.qcow2", {
    closesParent: false,
  });
  const { driver, source } = await openImage(slice);
  try {
    assert.equal(driver.name, "qcow2");
    assert.ok((await readWhole(source)).equals(await readFile(raw)));
  } finally {
    await source.close();
  }
  assert.ok(!parent.closed, "a slice that does not own its parent leaves it open");
  await assert.rejects(
    SliceInput.of(parent, [{ offset: container.length - 10, length: 20 }], "archive:bad", { closesParent: true }),
    /lies beyond the end of archive/,
  );
  assert.ok(parent.closed, "a slice that owns its parent closes it when it cannot be made");
});
