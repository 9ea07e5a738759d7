import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openHostFile } from "../../../../src/operations/conversion/bounded-file.js";
import { scanInitramfs, type InitramfsScan } from "../../../../src/operations/conversion/initramfs/scan-initramfs.js";
import { runOk, scratch } from "../../../helpers/tools.js";
import {
  compress,
  cpioArchive,
  cpioNames,
  debianInitramfs,
  VIRTIO_INITRAMFS_FILES,
  type Compressor,
} from "../conversion-trees.js";

const EARLY = { "kernel/x86/microcode/AuthenticAMD.bin": "amd microcode\n" };
const MAIN = {
  init: "#!/bin/sh\nexec /sbin/init\n",
  "usr/lib/modules/6.1.0-18-amd64/kernel/drivers/block/virtio_blk.ko": "module\n".repeat(1000),
  "usr/lib/modules/6.1.0-18-amd64/kernel/drivers/virtio/virtio_pci.ko.xz": "x",
  "usr/lib/modules/6.1.0-18-amd64/modules.builtin": "kernel/drivers/scsi/sd_mod.ko\n",
  // Names of every length, so each padding case of the newc layout comes up.
  "etc/a": "",
  "etc/ab": "1",
  "etc/abc": "12",
  "etc/abcd": "123",
};

async function scanBytes(
  t: Parameters<typeof scratch>[0],
  bytes: Buffer,
): Promise<{ scan: InitramfsScan; names: string[]; captured: Map<string, string> }> {
  const path = join(await scratch(t, "chromo-initramfs-"), "initrd.img");
  await writeFile(path, bytes);
  const file = await openHostFile(path, "initramfs", 2 ** 30);
  const names: string[] = [];
  const captured = new Map<string, string>();
  try {
    const scan = await scanInitramfs(file, {
      visit: (e) => {
        names.push(e.name);
        return e.name.endsWith("modules.builtin");
      },
      captured: (e, data) => captured.set(e.name, data.toString()),
    });
    return { scan, names, captured };
  } finally {
    await file.handle.close();
  }
}

for (const compressor of ["gzip", "xz", "zstd", "lz4", "bzip2"] as const satisfies readonly Compressor[]) {
  test(`early microcode archive, then a ${compressor}-compressed one: every entry, as cpio lists them`, async (t) => {
    const early = await cpioArchive(EARLY);
    const main = await cpioArchive(MAIN);
    const { scan, names, captured } = await scanBytes(t, Buffer.concat([early, compress(main, compressor)]));
    assert.deepEqual(scan.parts, ["cpio", compressor]);
    assert.deepEqual(names, [...cpioNames(early), ...cpioNames(main)]);
    assert.equal(scan.entries, names.length);
    assert.equal(scan.trailing, undefined);
    assert.equal(captured.get("usr/lib/modules/6.1.0-18-amd64/modules.builtin"), "kernel/drivers/scsi/sd_mod.ko\n");
  });
}

test("Debian's layout: the same entries as Debian's own lsinitramfs lists", async (t) => {
  for (const compressor of ["zstd", "xz", "gzip"] as const) {
    const image = await debianInitramfs(VIRTIO_INITRAMFS_FILES, compressor);
    const { names } = await scanBytes(t, image);
    const path = join(await scratch(t, "chromo-lsinitramfs-"), "initrd.img");
    await writeFile(path, image);
    const listed = (await runOk("lsinitramfs", [path])).split("\n").filter((n) => n);
    assert.deepEqual(names, listed, compressor);
  }
});

test("NUL padding between the parts and after them (the kernel skips it; lz4 refuses it)", async (t) => {
  const early = await cpioArchive(EARLY);
  const main = await cpioArchive(MAIN);
  for (const compressor of ["gzip", "zstd", "lz4"] as const) {
    const image = Buffer.concat([
      Buffer.alloc(512),
      early,
      Buffer.alloc(1024),
      compress(main, compressor),
      Buffer.alloc(4096),
    ]);
    const { scan, names } = await scanBytes(t, image);
    assert.deepEqual(names, [...cpioNames(early), ...cpioNames(main)], compressor);
    // lz4's decompressor refuses the padding: noted, nothing before it lost. A zstd part ends where its frame
    // does (as in the kernel), so the padding after it is skipped like any other.
    if (compressor === "lz4") assert.match(scan.trailing ?? "", /lz4/);
    else assert.equal(scan.trailing, undefined, compressor);
  }
});

test("two uncompressed archives, and archives concatenated inside the compressed part", async (t) => {
  const a = await cpioArchive(EARLY);
  const b = await cpioArchive(MAIN);
  const plain = await scanBytes(t, Buffer.concat([a, b]));
  assert.deepEqual(plain.scan.parts, ["cpio", "cpio"]);
  assert.deepEqual(plain.names, [...cpioNames(a), ...cpioNames(b)]);
  const inner = await scanBytes(t, compress(Buffer.concat([a, Buffer.alloc(8), b]), "xz"));
  assert.deepEqual(inner.scan.parts, ["xz"]);
  assert.deepEqual(inner.names, [...cpioNames(a), ...cpioNames(b)]);
});

test("damaged images are corrupt, named, never read past their end", async (t) => {
  const main = await cpioArchive(MAIN);
  const zstd = compress(main, "zstd");
  const cases: [string, Buffer, RegExp][] = [
    ["empty", Buffer.alloc(4096), /is empty/],
    ["truncated archive", main.subarray(0, 300), /ends inside a cpio archive/],
    ["truncated compressed part", zstd.subarray(0, zstd.length - 40), /zstd/],
    [
      "unknown data after the archive",
      Buffer.concat([main, Buffer.from("MZ garbage")]),
      /starts neither a cpio archive/,
    ],
    [
      "the old portable cpio format",
      Buffer.from("070707" + "0".repeat(120)),
      /no cpio newc header at byte 0 \(the old portable format/,
    ],
    ["a name longer than PATH_MAX", Buffer.from(`070701${"00000000".repeat(11)}00100000${"00000000"}`), /cpio name of/],
    ["bad hex in a header", Buffer.from(`070701${"0000000G".repeat(13)}`), /bad cpio header field/],
  ];
  for (const [what, bytes, message] of cases)
    await assert.rejects(scanBytes(t, bytes), (e: Error & { code?: string }) => {
      assert.equal(e.code, "ECORRUPT", `${what}: ${e.message}`);
      assert.match(e.message, message, what);
      assert.match(e.message, /initramfs .*initrd\.img/, what);
      return true;
    });
});

test("a missing decompressor is named with its Debian package", async (t) => {
  const image = compress(await cpioArchive(MAIN), "xz");
  const path = process.env.PATH;
  process.env.PATH = "/nonexistent";
  try {
    await assert.rejects(scanBytes(t, image), {
      code: "EUNSUPPORTED",
      message: "reading a xz-compressed initramfs needs xz (Debian package xz-utils)",
    });
  } finally {
    process.env.PATH = path;
  }
});
