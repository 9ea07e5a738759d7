/**
 * Formats chromogenic does not read are refused by name instead of being taken for raw disks: the disk formats
 * qemu probes for that chromogenic lacks (qcow v1, QED, Parallels, LUKS, Bochs, cloop, DMG) and the compressors
 * and archives disks are shipped in. Each file is made by the format's own tool wherever one exists here, from
 * a raw disk with known content; `-f raw` then copies the file's bytes unchanged, and ordinary raw disks and
 * OVAs are still what they were.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { open, readFile, readdir, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { openImage } from "../../src/formats/engine/open-image.js";
import { detectFormat } from "../../src/formats/registry.js";
import { UnreadableFormatError } from "../../src/formats/errors.js";
import { recogniseForeignFormat } from "../../src/formats/foreign-formats.js";
import { exportOva } from "../../src/formats/ova/ova-writer.js";
import type { ProbeInput } from "../../src/formats/types.js";
import { makeRaw, pattern, run, scratch } from "../helpers/tools.js";
import { qemuSampleImage } from "../helpers/qemu-samples.js";

const MiB = 2 ** 20;
const BIN = "bin/chromogenic.js";
const cli = (...args: string[]) => run(process.execPath, [BIN, ...args]);

/** Runs a tool that must be installed and succeed; a missing one fails naming the Debian package to install. */
async function tool(pkg: string, cmd: string, ...args: string[]): Promise<string> {
  let r;
  // qemu-img's LUKS key derivation times itself first and gives up ("Unable to get accurate CPU usage") when
  // its thread's CPU clock has not moved, as on a busy machine: that measurement, not the image, is retried.
  for (let attempt = 1; ; attempt++) {
    try {
      r = await run(cmd, args);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        throw new Error(`${cmd} is missing: install the Debian package ${pkg} (scripts/setup.sh --test does)`);
      }
      throw e;
    }
    if (attempt >= 3 || !/Unable to get accurate CPU usage/.test(r.stderr)) break;
  }
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** A 4 MiB raw disk with data at its start, middle and end, from which every foreign file is made. */
async function rawDisk(dir: string): Promise<string> {
  const path = join(dir, "disk.raw");
  await makeRaw(path, 4 * MiB, [
    { offset: 0, data: pattern(64 * 1024, 3) },
    { offset: 2 * MiB, data: pattern(300 * 1024, 5) },
    { offset: 4 * MiB - 4096, data: pattern(4096, 7) },
  ]);
  return path;
}

/** The minimal UDIF trailer, laid out as https://keramics.github.io/udif.html ("File footer") describes. */
function udifTrailer(dataForkLength: number): Buffer {
  const t = Buffer.alloc(512);
  t.write("koly", 0, "latin1");
  t.writeUInt32BE(4, 4); // version
  t.writeUInt32BE(512, 8); // size of the footer
  t.writeUInt32BE(1, 12); // flags: flattened
  t.writeBigUInt64BE(0n, 24); // data fork offset
  t.writeBigUInt64BE(BigInt(dataForkLength), 32); // data fork size
  t.writeUInt32BE(1, 56); // segment number
  t.writeUInt32BE(1, 60); // number of segments
  t.writeUInt32BE(1, 432); // image variant
  t.writeBigUInt64BE(BigInt(dataForkLength / 512), 436); // sectors
  return t;
}

interface ForeignCase {
  /** The format's name as the refusal gives it. */
  readonly format: string;
  /** Where the file comes from, for the test's title. */
  readonly madeBy: string;
  /** Makes the foreign file from the raw disk in `dir`; returns its path. */
  readonly make: (dir: string, disk: string) => Promise<string>;
}

/** A case whose file `cmd` (from Debian package `pkg`) makes from the disk; `args` gets the disk's and file's paths. */
function byTool(
  format: string,
  pkg: string,
  cmd: string,
  name: string,
  args: (disk: string, file: string) => string[],
  madeBy = cmd,
): ForeignCase {
  return {
    format,
    madeBy,
    make: async (dir, disk) => {
      const file = join(dir, name);
      await tool(pkg, cmd, ...args(disk, file));
      return file;
    },
  };
}

const qemuImgConvert = (format: string, qemuFormat: string, ...options: string[]) =>
  byTool(format, "qemu-utils", "qemu-img", `disk.${qemuFormat}`, (d, f) => [
    "convert",
    "-f",
    "raw",
    "-O",
    qemuFormat,
    ...options,
    d,
    f,
  ]);

// A short key derivation (iter-time in ms): the default 2 s per key slot is for real secrets.
const LUKS_SECRET = ["--object", "secret,id=sec0,data=chromogenic", "-o", "key-secret=sec0,iter-time=10"];

const CASES: readonly ForeignCase[] = [
  qemuImgConvert("qcow", "qcow"),
  qemuImgConvert("QED", "qed"),
  qemuImgConvert("Parallels", "parallels"),
  // An image Parallels itself wrote, with the older "WithoutFreeSpace" magic (qemu's sample images are made by
  // each format's native tool).
  {
    format: "Parallels",
    madeBy: "Parallels itself, from qemu's sample images",
    make: () => qemuSampleImage("parallels-v1"),
  },
  qemuImgConvert("LUKS", "luks", ...LUKS_SECRET),
  // LUKS2, which qemu does not read but cryptsetup writes by default.
  {
    format: "LUKS",
    madeBy: "cryptsetup",
    make: async (dir) => {
      const path = join(dir, "disk.luks2");
      const key = join(dir, "key");
      await writeFile(key, "chromogenic");
      await makeRaw(path, 20 * MiB);
      await tool(
        "cryptsetup-bin",
        "cryptsetup",
        "luksFormat",
        "--batch-mode",
        "--type",
        "luks2",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        "--key-file",
        key,
        path,
      );
      return path;
    },
  },
  // Bochs's growing layout, the one qemu's bochs driver reads, and Bochs's sparse one, which qemu does not.
  byTool("Bochs", "bximage", "bximage", "disk.bochs", (d, f) => ["-func=convert", "-imgmode=growing", "-q", d, f]),
  byTool("Bochs sparse", "bximage", "bximage", "disk.sparse", (d, f) => [
    "-func=convert",
    "-imgmode=sparse",
    "-q",
    d,
    f,
  ]),
  byTool("cloop", "cloop-utils", "create_compressed_fs", "disk.cloop", (d, f) => [d, f]),
  { format: "DMG", madeBy: "macOS, from qemu's sample images", make: () => qemuSampleImage("simple-dmg.dmg") },
  {
    // A minimal one: the disk's bytes as an uncompressed data fork, then the UDIF trailer.
    format: "DMG",
    madeBy: "crafted trailer",
    make: async (dir, disk) => {
      const path = join(dir, "disk.dmg");
      const data = await readFile(disk);
      await writeFile(path, Buffer.concat([data, udifTrailer(data.length)]));
      return path;
    },
  },
  byTool("gzip", "gzip", "gzip", "disk.raw.gz", (d) => ["-k", "-1", d]),
  byTool("xz", "xz-utils", "xz", "disk.raw.xz", (d) => ["-k", "-0", "-T1", d]),
  byTool("bzip2", "bzip2", "bzip2", "disk.raw.bz2", (d) => ["-k", "-1", d]),
  byTool("zstd", "zstd", "zstd", "disk.raw.zst", (d) => ["-q", "-k", d]),
  // pzstd starts with a skippable frame holding the frame sizes.
  byTool("zstd", "zstd", "pzstd", "disk.pzst", (d, f) => ["-q", "-p", "2", d, "-o", f]),
  byTool("lz4", "lz4", "lz4", "disk.raw.lz4", (d, f) => ["-q", d, f]),
  // The legacy frame the Linux kernel uses.
  byTool("lz4", "lz4", "lz4", "disk.raw.lz4l", (d, f) => ["-q", "-l", d, f], "lz4 -l"),
  byTool("zip", "zip", "zip", "disk.zip", (d, f) => ["-q", "-j", f, d]),
  byTool("7z", "7zip", "7zz", "disk.7z", (d, f) => ["a", "-bd", f, d]),
  byTool("tar", "tar", "tar", "disk.tar", (d, f) => ["-cf", f, "-C", dirname(d), basename(d)], "GNU tar"),
  // A pax archive starts with an extended header, not the member.
  byTool(
    "tar",
    "tar",
    "tar",
    "disk.pax.tar",
    (d, f) => ["--format=pax", "-cf", f, "-C", dirname(d), basename(d)],
    "tar --format=pax",
  ),
];

const sha256 = async (path: string) =>
  createHash("sha256")
    .update(await readFile(path))
    .digest("hex");

/** The probe input of a whole file, as detection hands it; `tail: false` for one that cannot show its tail. */
async function probeInput(path: string, opts: { tail?: boolean } = {}): Promise<ProbeInput> {
  const data = await readFile(path);
  return {
    head: data.subarray(0, 4096),
    size: data.length,
    readTail: (n) =>
      opts.tail === false
        ? Promise.reject(new Error("this input is read in order only"))
        : Promise.resolve(data.subarray(data.length - Math.min(n, data.length))),
  };
}

/** No foreign format is recognised in the file, and `info` shows it as `format`. */
async function assertNotForeign(path: string, format: string): Promise<void> {
  assert.equal(await recogniseForeignFormat(await probeInput(path)), undefined, path);
  const info = await cli("info", path);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, new RegExp(`file format: ${format}`));
}

/** `convert -O qcow2` of `input` succeeds and its output holds the same disk as the raw file `reference`. */
async function assertConvertsTo(input: string, reference: string, output: string): Promise<void> {
  const convert = await cli("convert", "-q", "-O", "qcow2", input, output);
  assert.equal(convert.code, 0, convert.stderr);
  assert.equal((await run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", reference, output])).code, 0);
}

for (const c of CASES) {
  test(`${c.format} (${c.madeBy}) is refused by name; -f raw copies it`, async (t) => {
    const dir = await scratch(t);
    const disk = await rawDisk(dir);
    const file = await c.make(dir, disk);

    const recognised = await recogniseForeignFormat(await probeInput(file));
    assert.equal(recognised?.name, c.format);

    const info = await cli("info", file);
    assert.equal(info.code, 1, info.stdout);
    assert.equal(info.stdout, "");
    const refusal = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: this is .*${c.format}`);
    assert.match(info.stderr, refusal);

    const before = await readdir(dir);
    const out = join(dir, "out.qcow2");
    const convert = await cli("convert", "-q", "-O", "qcow2", file, out);
    assert.equal(convert.code, 1, convert.stderr);
    assert.match(convert.stderr, refusal);
    assert.deepEqual(await readdir(dir), before, "nothing written, not even a temporary file");

    await assert.rejects(openImage(file), (e: unknown) => {
      assert.ok(e instanceof UnreadableFormatError);
      assert.equal(e.code, "EUNREADABLEFORMAT");
      assert.equal(e.format, c.format);
      return true;
    });

    // -f raw says the file is a raw disk: nothing is refused and its bytes are the disk.
    const asRaw = await cli("info", "-f", "raw", file);
    assert.equal(asRaw.code, 0, asRaw.stderr);
    assert.match(asRaw.stdout, /file format: raw/);
    const copy = join(dir, "copy.raw");
    const converted = await cli("convert", "-q", "-f", "raw", "-O", "raw", file, copy);
    assert.equal(converted.code, 0, converted.stderr);
    assert.equal(await sha256(copy), await sha256(file));
  });
}

test("a DMG's trailer is skipped when the input cannot show its tail; head signatures still count", async (t) => {
  const dir = await scratch(t);
  const disk = await rawDisk(dir);
  const dmg = await CASES.find((c) => c.format === "DMG")!.make(dir, disk);
  assert.equal((await recogniseForeignFormat(await probeInput(dmg)))?.name, "DMG");
  assert.equal(await recogniseForeignFormat(await probeInput(dmg, { tail: false })), undefined);
  const gz = await CASES.find((c) => c.format === "gzip")!.make(dir, disk);
  assert.equal((await recogniseForeignFormat(await probeInput(gz, { tail: false })))?.name, "gzip");
});

test("qcow2 (versions 2 and 3) is still read, not refused as qcow", async (t) => {
  const dir = await scratch(t);
  const disk = await rawDisk(dir);
  for (const compat of ["0.10", "1.1"]) {
    const path = join(dir, `disk-${compat}.qcow2`);
    await tool("qemu-utils", "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", `compat=${compat}`, disk, path);
    assert.equal((await detectFormat(path)).name, "qcow2");
  }
});

test("ordinary raw disks are still raw: random bytes, MBR and GPT disks, zeros, a tiny file", async (t) => {
  const dir = await scratch(t);
  const random = join(dir, "random.raw");
  await writeFile(random, pattern(3 * MiB + 512, 11));
  const mbr = join(dir, "mbr.raw");
  await makeRaw(mbr, 8 * MiB);
  await tool("fdisk", "sh", "-c", `printf 'label: dos\\n,,L\\n' | sfdisk -q "${mbr}"`);
  const gpt = join(dir, "gpt.raw");
  await makeRaw(gpt, 8 * MiB);
  await tool("fdisk", "sh", "-c", `printf 'label: gpt\\n,,L\\n' | sfdisk -q "${gpt}"`);
  const zeros = join(dir, "zeros.raw");
  await makeRaw(zeros, 16 * MiB);
  const tiny = join(dir, "tiny.raw");
  await writeFile(tiny, Buffer.from("QFI")); // shorter than any signature

  for (const path of [random, mbr, gpt, zeros, tiny]) await assertNotForeign(path, "raw");
  await assertConvertsTo(mbr, mbr, join(dir, "mbr.qcow2"));
});

test("an OVA is still an OVA: its first member is the .ovf descriptor", async (t) => {
  const dir = await scratch(t);
  const disk = await rawDisk(dir);
  const ova = join(dir, "app.ova");
  await exportOva({
    inputs: [disk],
    output: ova,
    target: "vmware",
    ovfVersion: "1.0",
    name: "app",
    cpus: 1,
    memoryMiB: 512,
  });
  await assertNotForeign(ova, "ova");
  await assertConvertsTo(ova, disk, join(dir, "disk.qcow2"));
});

test("a file whose head is a damaged tar header is raw, not a tar archive", async (t) => {
  const dir = await scratch(t);
  const disk = await rawDisk(dir);
  const tar = await CASES.find((c) => c.format === "tar")!.make(dir, disk);
  const h = await open(tar, "r+");
  try {
    await h.write(Buffer.from("9"), 0, 1, 150); // inside the checksum field
  } finally {
    await h.close();
  }
  await assertNotForeign(tar, "raw");
});
