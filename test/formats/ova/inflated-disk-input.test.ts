/**
 * Gzip-compressed OVA disks (ovf:compression="gzip", what ovftool --compress writes) are read as they inflate:
 * nothing goes to $TMPDIR, from a file or from a pipe. What cannot be read in order is refused saying what to
 * do, a descriptor-only VMDK as when it is stored uncompressed; a disk that inflates past what its declared
 * capacity can need (a "zip bomb") is refused; broken gzip data is refused naming the file; and a signal ends a
 * long inflation at once, leaving nothing behind.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { gzipSync } from "node:zlib";
import { convertFile } from "../../../src/formats/engine/convert.js";
import { runCliFromStdin } from "../../helpers/cli-stdin.js";
import { guestDisk, vmwareDescriptor, writeTar } from "../../helpers/ova-tools.js";
import { CLI, makeRaw, qemuCompare, runCli, scratch } from "../../helpers/tools.js";
import { assertRefusedInOneLine } from "../../helpers/cli-refusal.js";
import { outputOpenIn } from "../../helpers/process-files.js";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const STREAM = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
const SECTOR = 512;
/** Where a VMDK sparse header keeps its overhead (sectors before the first grain or marker). */
const OVERHEAD_AT = 64;
/** Grain-table marker type, and the most sectors of metadata the reader lets a marker announce (32 MiB). */
const MARKER_GRAIN_TABLE = 1;
const MAX_MARKER_SECTORS = (32 * MiB) / SECTOR;

/** An OVA in `dir` holding one disk of `capacity` bytes stored as `stored`, gzip-compressed unless `plain`. */
async function ovaWith(dir: string, name: string, stored: Buffer, capacity: number, plain = false): Promise<string> {
  const ova = join(dir, name);
  const extra = plain ? "" : ' ovf:compression="gzip"';
  await writeTar(ova, [
    {
      name: "vm.ovf",
      data: vmwareDescriptor([{ href: "disk.vmdk", capacity: String(capacity), units: "byte", format: STREAM, extra }]),
    },
    { name: "disk.vmdk", data: stored },
  ]);
  return ova;
}

/** A fresh, empty $TMPDIR for the CLI, and the environment that sets it. */
async function emptyTmpdir(dir: string) {
  const tmp = join(dir, "tmp");
  await mkdir(tmp);
  /** What the CLI put there (Node's own compile cache aside). */
  const used = async () => (await readdir(tmp)).filter((n) => !n.startsWith("node-compile-cache"));
  return { env: { ...process.env, TMPDIR: tmp }, used };
}

/**
 * A streamOptimized VMDK of `capacity` bytes holding no data, gzip-compressed, whose stream carries `padding`
 * bytes of zeros (in grain-table markers, which a reader skips) before its tables: that many bytes to inflate,
 * from next to nothing compressed. Several gzip members, one repeated: gunzip reads them as one stream.
 */
async function paddedStreamGz(dir: string, capacity: number, padding: number): Promise<Buffer> {
  const raw = join(dir, "empty.raw");
  await makeRaw(raw, capacity);
  const vmdk = join(dir, "empty.vmdk");
  await convertFile({
    input: raw,
    output: vmdk,
    outputFormat: "vmdk",
    createOptions: { subformat: "streamOptimized" },
  });
  const bytes = await readFile(vmdk);
  const overhead = Number(bytes.readBigUInt64LE(OVERHEAD_AT)) * SECTOR;
  const marker = Buffer.alloc(SECTOR);
  marker.writeBigUInt64LE(BigInt(MAX_MARKER_SECTORS), 0);
  marker.writeUInt32LE(MARKER_GRAIN_TABLE, 12);
  const unit = gzipSync(Buffer.concat([marker, Buffer.alloc(MAX_MARKER_SECTORS * SECTOR)]));
  const units = Math.ceil(padding / (MAX_MARKER_SECTORS * SECTOR));
  return Buffer.concat([
    gzipSync(bytes.subarray(0, overhead)),
    ...Array.from({ length: units }, () => unit),
    gzipSync(bytes.subarray(overhead)),
  ]);
}

test("a gzip-compressed streamOptimized disk converts from a file and from a pipe, nothing in $TMPDIR", async (t) => {
  const dir = await scratch(t);
  const disk = await guestDisk(dir, 16 * MiB);
  const ova = await ovaWith(dir, "gz.ova", gzipSync(disk.stream), 16 * MiB);
  const tmp = await emptyTmpdir(dir);
  const fromFile = join(dir, "from-file.qcow2");
  const r = await runCli(["convert", "-q", "-O", "qcow2", ova, fromFile], tmp.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await qemuCompare(disk.raw, fromFile)).code, 0, "converted from the file: differs");
  const fromPipe = join(dir, "from-pipe.raw");
  const p = await runCliFromStdin(["convert", "-q", "-O", "raw", "-", fromPipe], { path: ova });
  assert.equal(p.code, 0, p.stderr);
  assert.equal((await qemuCompare(disk.raw, fromPipe)).code, 0, "converted from the pipe: differs");
  assert.deepEqual(await tmp.used(), [], "nothing written to $TMPDIR");
});

test("what cannot be read as it inflates is refused saying what to do; a descriptor as when uncompressed", async (t) => {
  const dir = await scratch(t);
  const disk = await guestDisk(dir, 16 * MiB);
  const descriptor = Buffer.from(
    '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n' +
      'RW 32768 FLAT "disk-flat.vmdk" 0\n',
  );
  const cases = [
    { name: "sparse.ova", stored: gzipSync(disk.sparse), refusal: /a monolithicSparse VMDK image cannot be read so/ },
    { name: "descriptor.ova", stored: gzipSync(descriptor), refusal: /a VMDK descriptor image cannot be read so/ },
  ];
  const tmp = await emptyTmpdir(dir);
  for (const c of cases) {
    const ova = await ovaWith(dir, c.name, c.stored, 16 * MiB);
    // The OVA as a file, and on a pipe (named "-" then).
    for (const [input, shownAs] of [
      [ova, `.*${c.name}`],
      ["-", "-"],
    ] as const) {
      const args = ["convert", "-q", "-O", "raw", input, join(dir, "out.raw")];
      const r = input === "-" ? await runCliFromStdin(args, { path: ova }) : await runCli(args, tmp.env);
      const start = `^chromogenic: ${shownAs}:disk\\.vmdk: a gzip-compressed disk is read as it inflates`;
      assertRefusedInOneLine(r, new RegExp(start), `${c.name} from ${input}`);
      assert.match(r.stderr, c.refusal, c.name);
      assert.match(r.stderr, /extract the file from the OVA, gunzip it and convert the disk file/, c.name);
    }
  }
  // The same descriptor stored uncompressed is refused too: its extents cannot be in an archive.
  const plain = await ovaWith(dir, "plain-descriptor.ova", descriptor, 16 * MiB, true);
  const r = await runCli(["convert", "-q", "-O", "raw", plain, join(dir, "out.raw")], tmp.env);
  assertRefusedInOneLine(
    r,
    /plain-descriptor\.ova:disk\.vmdk: the image names its extent "disk-flat\.vmdk", which cannot be opened/,
    "uncompressed",
  );
  assert.deepEqual(await tmp.used(), [], "nothing written to $TMPDIR");
  assert.ok(!(await readdir(dir)).includes("out.raw"));
});

test("gzip data that is corrupt or cut short is refused naming the disk", async (t) => {
  const dir = await scratch(t);
  const disk = await guestDisk(dir, 16 * MiB);
  const gz = gzipSync(disk.stream);
  const corrupt = Buffer.from(gz);
  corrupt.fill(0x55, 4096, 8192);
  const cases = [
    { name: "corrupt.ova", stored: corrupt, message: /the gzip data is corrupt \(.+\)$/m },
    {
      name: "cut.ova",
      stored: gz.subarray(0, gz.length >> 1),
      message: /the gzip data ends before its compressed stream does/,
    },
    { name: "not-gzip.ova", stored: disk.stream, message: /the gzip data is corrupt \(incorrect header check\)/ },
  ];
  for (const c of cases) {
    const ova = await ovaWith(dir, c.name, c.stored, 16 * MiB);
    const r = await runCli(["convert", "-q", "-O", "raw", ova, join(dir, "out.raw")], process.env);
    assertRefusedInOneLine(r, new RegExp(`^chromogenic: .*${c.name}:disk\\.vmdk: `), c.name);
    assert.match(r.stderr, c.message, c.name);
  }
  assert.ok(!(await readdir(dir)).includes("out.raw"));
});

test("a disk that inflates past what its declared capacity can need is refused early (zip bomb)", async (t) => {
  const dir = await scratch(t);
  // 1 MiB declared; 160 MiB to inflate (the limit is 1.02 × 1 MiB + 64 MiB), from some 160 KiB of gzip.
  const ova = await ovaWith(dir, "bomb.ova", await paddedStreamGz(dir, MiB, 160 * MiB), MiB);
  const tmp = await emptyTmpdir(dir);
  const r = await runCli(["convert", "-q", "-O", "raw", ova, join(dir, "out.raw")], tmp.env);
  assertRefusedInOneLine(r, /bomb\.ova:disk\.vmdk: the gzip data inflates past 68178412 bytes/, "bomb");
  assert.deepEqual(await tmp.used(), [], "nothing written to $TMPDIR");
  assert.ok(!(await readdir(dir)).includes("out.raw"));
});

/**
 * Starts `convert` of an OVA whose disk takes long to inflate, and resolves once its temporary output exists (it
 * is then inflating); fails as soon as anything appears in $TMPDIR. The CLI is killed after the test.
 */
async function startLongInflation(t: TestContext) {
  const dir = await scratch(t);
  // 64 GiB declared, 12 GiB of padding to inflate: some 12 MiB of gzip, many seconds of inflating.
  const ova = await ovaWith(dir, "long.ova", await paddedStreamGz(dir, 64 * GiB, 12 * GiB), 64 * GiB);
  const out = join(dir, "out");
  await mkdir(out);
  const tmp = await emptyTmpdir(dir);
  const child = spawn(process.execPath, [CLI, "convert", "-q", "-O", "qcow2", ova, join(out, "disk.qcow2")], {
    env: tmp.env,
  });
  t.after(() => child.kill("SIGKILL"));
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  // The output is made (unnamed until complete) before the disk is read.
  await outputOpenIn(child.pid!, out, []);
  assert.deepEqual(await tmp.used(), [], "nothing is inflated into $TMPDIR");
  return { child, exited, stderr: () => stderr, left: () => readdir(out), tmpUsed: tmp.used };
}

test("SIGTERM ends a long inflation at once and leaves nothing; after kill -9 $TMPDIR holds nothing", async (t) => {
  const run = await startLongInflation(t);
  await sleep(500);
  const started = Date.now();
  run.child.kill("SIGTERM");
  const ended = await Promise.race([run.exited, sleep(20_000).then(() => undefined)]);
  assert.ok(ended, "still running 20 s after SIGTERM");
  const seconds = (Date.now() - started) / 1000;
  assert.ok(seconds < 3, `took ${seconds} s`);
  assert.equal(ended.code, 130, run.stderr());
  assert.deepEqual(await run.left(), [], "no output and no temporary output");
  assert.deepEqual(await run.tmpUsed(), [], "nothing in $TMPDIR");

  const killed = await startLongInflation(t);
  await sleep(500);
  killed.child.kill("SIGKILL");
  await killed.exited;
  assert.deepEqual(await killed.tmpUsed(), [], "nothing in $TMPDIR for `guest cleanup` to find");
});
