/**
 * OVAs that ovftool and virt-v2v accept and a strict reader would refuse: ovf:compression="identity", disks
 * without ovf:format (VMDK, qcow2 and raw content), hrefs with backslashes, split disks without ovf:chunkSize,
 * manifests that leave files out or hold lines that are not digests. Each variant is built around real disks
 * (our exporter's and qemu-img's), shown by `info`, converted by `convert` to qcow2 and compared with the
 * original by `qemu-img compare`. What stays unsafe stays refused: a digest mismatch, traversal spelled with
 * backslashes, a chunk series with a gap, a duplicate or a whole disk in it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { formatManifest } from "../../../src/formats/ova/manifest.js";
import { openOva } from "../../../src/formats/ova/ova-reader.js";
import { CLI, qemuCompare, run, runCli, scratch } from "../../helpers/tools.js";
import { guestDisk, vmwareDescriptor, writeTar, type RawEntry } from "../../helpers/ova-tools.js";

const MiB = 2 ** 20;
const SIZE = 16 * MiB;
const STREAM = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
const SPARSE = "http://www.vmware.com/specifications/vmdk.html#sparse";
const cli = (...args: string[]) => run(process.execPath, [CLI, ...args]);

function sha256Manifest(entries: readonly RawEntry[]): Buffer {
  return Buffer.from(
    formatManifest(
      entries.map((e) => ({
        name: e.name,
        algorithm: "sha256",
        digest: createHash("sha256")
          .update(e.data ?? Buffer.alloc(0))
          .digest("hex"),
      })),
    ),
  );
}

/**
 * `convert --disk N -O qcow2`, then `qemu-img compare` against the original disk; the temporary copy of a
 * disk that cannot be read in place (gzip, raw) must be gone afterwards.
 */
async function convertsToOriginal(ova: string, disk: number, raw: string, out: string) {
  const tmp = join(dirname(out), `tmp-${disk}`);
  await mkdir(tmp);
  const r = await runCli(["convert", "-q", "-O", "qcow2", "--disk", String(disk), ova, out], {
    ...process.env,
    TMPDIR: tmp,
  });
  assert.equal(r.code, 0, `disk ${disk}: ${r.stderr}`);
  const cmp = await qemuCompare(raw, out);
  assert.equal(cmp.code, 0, `disk ${disk} differs from the original: ${cmp.stdout}${cmp.stderr}`);
  // (Node keeps its own compile cache there too.)
  const leftovers = (await readdir(tmp)).filter((name) => name.startsWith("chromogenic-"));
  assert.deepEqual(leftovers, [], `disk ${disk}: temporary files left behind`);
  return r;
}

test("identity compression, undeclared formats, backslash hrefs and unsized split disks are read", async (t) => {
  const dir = await scratch(t);
  const disks = await guestDisk(dir, SIZE);
  const rawBytes = await readFile(disks.raw);
  const third = Math.ceil(disks.stream.length / 3);
  const split = [0, 1, 2].map((i) => disks.stream.subarray(i * third, (i + 1) * third));
  const capacity = { capacity: String(SIZE), units: "byte" };
  const members: RawEntry[] = [
    {
      name: "vm.ovf",
      data: vmwareDescriptor([
        {
          href: "d1.vmdk",
          ...capacity,
          format: STREAM,
          extra: ` ovf:compression="identity" ovf:size="${disks.stream.length}"`,
        },
        { href: "d2.vmdk", ...capacity },
        { href: "d3.img", ...capacity },
        { href: "disks\\d4.vmdk", ...capacity, format: SPARSE },
        { href: "d5.vmdk", ...capacity, format: STREAM, extra: ` ovf:size="${disks.stream.length}"` },
        { href: "d6.img.gz", ...capacity, extra: ' ovf:compression="gzip"' },
        { href: "d7.img", ...capacity },
      ]),
    },
    { name: "d1.vmdk", data: disks.stream },
    { name: "d2.vmdk", data: disks.qemuSparse },
    { name: "d3.img", data: disks.qcow2 },
    { name: "disks/d4.vmdk", data: disks.sparse },
    ...split.map((data, i) => ({ name: `d5.vmdk.00000000${i}`, data })),
    { name: "d6.img.gz", data: gzipSync(rawBytes) },
    { name: "d7.img", data: rawBytes },
  ];
  const ova = join(dir, "lenient.ova");
  await writeTar(ova, [...members, { name: "vm.mf", data: sha256Manifest(members) }]);

  const shown = await cli("info", "--json", ova);
  assert.equal(shown.code, 0, shown.stderr);
  const info = JSON.parse(shown.stdout);
  assert.deepEqual(
    info.disks.map((d: { format: string; contentFormat?: string; compression?: string; chunks: number }) => [
      d.format === "" ? "" : d.format.replace(/^.*#/, "#"),
      d.contentFormat ?? null,
      d.compression ?? null,
      d.chunks,
    ]),
    [
      ["#streamOptimized", null, null, 1],
      ["", "vmdk", null, 1],
      ["", "qcow2", null, 1],
      ["#sparse", null, null, 1],
      ["#streamOptimized", null, null, 3],
      ["", null, "gzip", 1],
      ["", "raw", null, 1],
    ],
  );
  assert.deepEqual(info.warnings, []);
  const text = await cli("info", ova);
  assert.match(text.stdout, /disk 2: d2\.vmdk[^]*?format: not declared \(its content is vmdk\)/);
  assert.match(text.stdout, /stored: [^\n]*, 3 chunks/);
  assert.doesNotMatch(text.stdout, /warning:/);

  for (let n = 1; n <= 7; n++) await convertsToOriginal(ova, n, disks.raw, join(dir, `out${n}.qcow2`));
  const json = await cli("convert", "--json", "-O", "qcow2", "--disk", "5", ova, join(dir, "json5.qcow2"));
  const done = JSON.parse(json.stdout.trim().split("\n").at(-1)!);
  assert.equal(done.inputFormat, "ova/vmdk");
  // Every member the manifest lists was read and matched, the three chunks included.
  assert.deepEqual([...done.manifest.verified].sort(), [...members.map((m) => m.name)].sort());
  assert.deepEqual(done.warnings, []);
});

test("a manifest that omits files, lists absent ones or has stray lines is checked for what it lists, with warnings", async (t) => {
  const dir = await scratch(t);
  const disks = await guestDisk(dir, SIZE);
  const descriptor: RawEntry = {
    name: "vm.ovf",
    data: vmwareDescriptor([
      { href: "d1.vmdk", capacity: String(SIZE), units: "byte", format: STREAM },
      { href: "d2.vmdk", capacity: String(SIZE), units: "byte", format: SPARSE },
    ]),
  };
  const d1: RawEntry = { name: "d1.vmdk", data: disks.stream };
  const d2: RawEntry = { name: "d2.vmdk", data: disks.sparse };
  // Lists the descriptor and d1 (so those are verified), leaves d2 out, names a file the archive lacks, and
  // has a line that is no digest — what virt-v2v warns about and goes on.
  const manifest = Buffer.concat([
    sha256Manifest([descriptor, d1, { name: "vm.nvram", data: Buffer.from("gone") }]),
    Buffer.from("# written by some tool\n"),
  ]);
  const ova = join(dir, "partial.ova");
  await writeTar(ova, [descriptor, d1, d2, { name: "vm.mf", data: manifest }]);
  const expected = [
    /vm\.mf line 4 is not "ALGORITHM\(file\)= digest"; ignored: "# written by some tool"/,
    /vm\.mf lists "vm\.nvram", which is not in the archive; ignored/,
    /vm\.mf does not list d2\.vmdk; its content is not verified/,
  ];

  const json = JSON.parse((await cli("info", "--json", ova)).stdout);
  assert.equal(json.warnings.length, 3, json.warnings.join("\n"));
  expected.forEach((re, i) => assert.match(json.warnings[i], re));
  assert.equal(json.manifest.files, 2);
  const text = await cli("info", ova);
  assert.equal(text.code, 0, text.stderr);
  for (const re of expected) assert.match(text.stdout, new RegExp(`^warning: ${re.source}`, "m"));

  // convert: the warnings on stderr (even with -q), the disk converted all the same.
  for (const n of [1, 2]) {
    const r = await convertsToOriginal(ova, n, disks.raw, join(dir, `out${n}.qcow2`));
    for (const re of expected) assert.match(r.stderr, new RegExp(`^chromogenic: warning: ${re.source}`, "m"));
  }
  // --json: one `message` event per warning before the work, and the list again in the result.
  const r = await cli("convert", "--json", "-O", "qcow2", "--disk", "2", ova, join(dir, "json.qcow2"));
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const messages = events.filter((e) => e.event === "message");
  assert.deepEqual(
    messages.map((m) => m.level),
    ["warning", "warning", "warning"],
  );
  expected.forEach((re, i) => assert.match(messages[i].text, re));
  assert.equal(
    events.findIndex((e) => e.event === "message"),
    0,
  );
  const done = events.at(-1);
  assert.deepEqual(done.manifest.verified, ["vm.ovf", "d1.vmdk"]);
  assert.equal(done.warnings.length, 3);
});

test("a file that does not match a lenient manifest is still refused, and nothing is written", async (t) => {
  const dir = await scratch(t);
  const disks = await guestDisk(dir, SIZE);
  const descriptor: RawEntry = {
    name: "vm.ovf",
    data: vmwareDescriptor([{ href: "d1.vmdk", capacity: String(SIZE), units: "byte", format: STREAM }]),
  };
  const altered = Buffer.from(disks.stream);
  altered[altered.length - 2000]! ^= 0xff;
  const manifest = Buffer.concat([
    Buffer.from("not a digest\n"),
    sha256Manifest([{ name: "d1.vmdk", data: disks.stream }]),
  ]);
  const ova = join(dir, "altered.ova");
  await writeTar(ova, [descriptor, { name: "d1.vmdk", data: altered }, { name: "vm.mf", data: manifest }]);
  const before = (await readdir(dir)).sort();
  const r = await cli("convert", "-q", "-O", "qcow2", ova, join(dir, "out.qcow2"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /d1\.vmdk does not match the manifest/);
  assert.match(r.stderr, /warning: vm\.mf does not list vm\.ovf/);
  assert.deepEqual((await readdir(dir)).sort(), before);
});

test("what stays unsafe stays refused: backslash traversal, drive paths, broken chunk series", async (t) => {
  const dir = await scratch(t);
  const disks = await guestDisk(dir, SIZE);
  const half = Math.ceil(disks.stream.length / 2);
  const [c0, c1] = [disks.stream.subarray(0, half), disks.stream.subarray(half)];
  const ovf = (href: string, extra = "") =>
    vmwareDescriptor([{ href, capacity: String(SIZE), units: "byte", format: STREAM, extra }]);
  const cases: { name: string; entries: RawEntry[]; message: RegExp }[] = [
    {
      name: "backslash-traversal",
      entries: [
        { name: "vm.ovf", data: ovf("..\\..\\etc\\d.vmdk") },
        { name: "etc/d.vmdk", data: disks.stream },
      ],
      message: /"\.\.\/\.\.\/etc\/d\.vmdk".*absolute, contains "\.\."/,
    },
    {
      name: "backslash-inner-traversal",
      entries: [
        { name: "vm.ovf", data: ovf("disks\\..\\..\\d.vmdk") },
        { name: "d.vmdk", data: disks.stream },
      ],
      message: /contains "\.\."/,
    },
    {
      name: "drive-letter",
      entries: [
        { name: "vm.ovf", data: ovf("C:\\vms\\d.vmdk") },
        { name: "vms/d.vmdk", data: disks.stream },
      ],
      message: /absolute Windows path/,
    },
    {
      name: "gap",
      entries: [
        { name: "vm.ovf", data: ovf("d.vmdk") },
        { name: "d.vmdk.000000000", data: c0 },
        { name: "d.vmdk.000000002", data: c1 },
      ],
      message: /chunk d\.vmdk\.000000001 of "d\.vmdk" is missing \(the next member is d\.vmdk\.000000002\)/,
    },
    {
      name: "not-from-zero",
      entries: [
        { name: "vm.ovf", data: ovf("d.vmdk") },
        { name: "d.vmdk.000000001", data: c0 },
        { name: "d.vmdk.000000002", data: c1 },
      ],
      message: /chunk d\.vmdk\.000000000 of "d\.vmdk" is missing/,
    },
    {
      name: "same-number-twice",
      entries: [
        { name: "vm.ovf", data: ovf("d.vmdk") },
        { name: "d.vmdk.000000000", data: c0 },
        { name: "d.vmdk.000000001", data: c1 },
        { name: "d.vmdk.001", data: c1 },
      ],
      message: /numbered with 9 and 3 digits/,
    },
    {
      name: "declared-chunks-gap",
      entries: [
        { name: "vm.ovf", data: ovf("d.vmdk", ` ovf:chunkSize="${half}"`) },
        { name: "d.vmdk.000000000", data: c0 },
        { name: "d.vmdk.000000002", data: c1 },
      ],
      message: /chunk d\.vmdk\.000000001 of "d\.vmdk" is missing/,
    },
    {
      name: "uneven-chunks",
      entries: [
        { name: "vm.ovf", data: ovf("d.vmdk") },
        { name: "d.vmdk.000000000", data: c0.subarray(0, 4096) },
        { name: "d.vmdk.000000001", data: c0.subarray(4096) },
        { name: "d.vmdk.000000002", data: c1 },
      ],
      message: /chunk d\.vmdk\.000000001 of "d\.vmdk" is \d+ bytes; the first chunk's size is 4096/,
    },
    {
      // virt-v2v's "snapshots" (RHBZ#1570407): each numbered member a whole disk, not a chunk.
      name: "whole-disks",
      entries: [
        { name: "vm.ovf", data: ovf("d.vmdk") },
        { name: "d.vmdk.000000000", data: disks.stream },
        { name: "d.vmdk.000000001", data: disks.stream },
      ],
      message: /d\.vmdk\.000000001 starts with a VMDK header of its own/,
    },
  ];
  for (const c of cases) {
    const path = join(dir, `${c.name}.ova`);
    await writeTar(path, c.entries);
    await assert.rejects(openOva(path), c.message, c.name);
  }
  const r = await cli("info", join(dir, "backslash-traversal.ova"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^chromogenic: .*contains "\.\."/);
  const gap = await cli("convert", "-O", "qcow2", join(dir, "gap.ova"), join(dir, "gap.qcow2"));
  assert.equal(gap.code, 1);
  assert.match(gap.stderr, /is missing/);
  assert.ok(!(await readdir(dir)).includes("gap.qcow2"));
});
