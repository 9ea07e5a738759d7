/**
 * OVAs read from standard input through a real pipe, in order: `info -` shows what `info FILE` shows, and
 * `convert --disk N -` converts each disk identical to its original, with the manifest verified whether it
 * comes after the descriptor or last (bytes the disk's reader skips included). What cannot be read in order
 * is refused saying so: a descriptor that is not first, a disk needing random access, a chunked disk; a
 * tampered or truncated stream is an error; nothing is left behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { formatManifest } from "../../../src/formats/ova/manifest.js";
import { runCliFromStdin } from "../../helpers/cli-stdin.js";
import { guestDisk, vmwareDescriptor, writeTar, type RawEntry } from "../../helpers/ova-tools.js";
import { makeRaw, mixedRegions, qemuCompare, runCli, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;
const STREAM = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
const SPARSE = "http://www.vmware.com/specifications/vmdk.html#sparse";

/** An appliance of two disks exported by chromogenic for `target` (manifest last, as VirtualBox writes it). */
async function exportedOva(dir: string, target: string) {
  const disks = [join(dir, "boot.raw"), join(dir, "data.raw")];
  await makeRaw(disks[0]!, 20 * MiB, mixedRegions(20 * MiB));
  await makeRaw(disks[1]!, 3 * MiB + 512, [{ offset: 4096, data: Buffer.from("second disk") }]);
  const ova = join(dir, `${target}.ova`);
  const r = await runCli(["export", "--target", target, ...disks, ova], process.env);
  assert.equal(r.code, 0, r.stderr);
  return { ova, disks };
}

function manifestOf(entries: readonly RawEntry[]): Buffer {
  const digest = (data: Buffer | undefined) => createHash("sha256").update(data!).digest("hex");
  return Buffer.from(
    formatManifest(entries.map((e) => ({ name: e.name, algorithm: "sha256", digest: digest(e.data) }))),
  );
}

/** The members of a plain USTAR archive (what our exporter writes), read by hand. */
function tarMembers(tar: Buffer): { name: string; dataOffset: number; size: number }[] {
  const found: { name: string; dataOffset: number; size: number }[] = [];
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0;) {
    const name = tar.toString("utf8", at, at + 100).replace(/\0.*$/s, "");
    const size = parseInt(tar.toString("ascii", at + 124, at + 136), 8);
    found.push({ name, dataOffset: at + 512, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return found;
}

/** The offset of the first metadata marker (a grain table) in a streamOptimized VMDK: bytes its reader skips. */
function firstGrainTable(vmdk: Buffer): number {
  let at = Number(vmdk.readBigUInt64LE(64)) * 512;
  while (vmdk.readUInt32LE(at + 8) !== 0) at = Math.ceil((at + 12 + vmdk.readUInt32LE(at + 8)) / 512) * 512;
  return at;
}

for (const target of ["virtualbox", "vmware"]) {
  test(`an OVA exported for ${target} is shown and converted from a pipe, its manifest verified`, async (t) => {
    const dir = await scratch(t);
    const { ova, disks } = await exportedOva(dir, target);
    const fromPipe = await runCliFromStdin(["info", "--json", "-"], { path: ova });
    assert.equal(fromPipe.code, 0, fromPipe.stderr);
    const fromFile = await runCli(["info", "--json", ova], process.env);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.deepEqual({ ...JSON.parse(fromPipe.stdout), path: ova }, JSON.parse(fromFile.stdout));
    assert.match((await runCliFromStdin(["info", "-"], { path: ova })).stdout, /^image: -\nfile format: ova/);

    for (const [i, original] of disks.entries()) {
      const out = join(dir, `disk${i + 1}.qcow2`);
      const r = await runCliFromStdin(["convert", "--json", "--disk", String(i + 1), "-O", "qcow2", "-", out], {
        path: ova,
      });
      assert.equal(r.code, 0, r.stderr);
      const done = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      assert.equal(done.inputFormat, "ova/vmdk");
      assert.equal(done.manifest.verified.length, 3, "the descriptor and both disks are verified");
      assert.equal((await qemuCompare(original, out)).code, 0, `disk ${i + 1} is the original`);
    }
  });
}

test("a manifest right after the descriptor is verified as the members pass, skipped bytes included", async (t) => {
  const dir = await scratch(t);
  const guest = await guestDisk(dir, 8 * MiB);
  const build = async (name: string, disk: Buffer) => {
    const descriptor = {
      name: "vm.ovf",
      data: vmwareDescriptor([{ href: "disk.vmdk", capacity: "8", units: "byte * 2^20", format: STREAM }]),
    };
    const files = [descriptor, { name: "disk.vmdk", data: guest.stream }];
    const path = join(dir, name);
    // The manifest lists the genuine disk; `disk` is what the archive holds.
    await writeTar(path, [descriptor, { name: "vm.mf", data: manifestOf(files) }, { name: "disk.vmdk", data: disk }]);
    return path;
  };
  const good = await build("good.ova", guest.stream);
  const out = join(dir, "out.qcow2");
  const r = await runCliFromStdin(["convert", "--json", "-O", "qcow2", "-", out], { path: good });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").at(-1)!).manifest, {
    algorithm: "sha256",
    verified: ["vm.ovf", "disk.vmdk"],
  });
  assert.equal((await qemuCompare(guest.raw, out)).code, 0);

  // One bit changed in the grain table after the grains: the disk still reads the same, the digest does not.
  const tampered = Buffer.from(guest.stream);
  const at = firstGrainTable(tampered) + 512 + 7;
  tampered[at] = tampered[at]! ^ 1;
  const bad = await build("bad.ova", tampered);
  const refused = await runCliFromStdin(["convert", "-q", "-O", "qcow2", "-", join(dir, "bad.qcow2")], { path: bad });
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /^chromogenic: -: disk\.vmdk does not match the manifest \(sha256 /);
  assert.ok(!(await readdir(dir)).some((n) => n.startsWith("bad.qcow2") || n.includes(".bad.qcow2")));
});

test("what cannot be read in order is refused saying why, with nothing left behind", async (t) => {
  const dir = await scratch(t);
  const guest = await guestDisk(dir, 4 * MiB);
  const ovf = (format: string, extra = "") =>
    vmwareDescriptor([{ href: "disk.vmdk", capacity: "4", units: "byte * 2^20", format, extra }]);
  const half = guest.stream.length / 2 - ((guest.stream.length / 2) % 512);
  const cases = [
    {
      name: "descriptor last",
      entries: [
        { name: "disk.vmdk", data: guest.stream },
        { name: "vm.ovf", data: ovf(STREAM) },
      ],
      code: 1,
      // Not recognised as an OVA at all (nor would the file be): detection says what it is.
      error: /^chromogenic: -: this is a tar archive, not a disk image; .*an OVA would have its \.ovf descriptor first/,
    },
    {
      name: "monolithicSparse disk",
      entries: [
        { name: "vm.ovf", data: ovf(SPARSE) },
        { name: "disk.vmdk", data: guest.sparse },
      ],
      code: 2,
      error: /^chromogenic: -:disk\.vmdk: a monolithicSparse VMDK image needs random access/,
    },
    {
      name: "chunked disk",
      entries: [
        { name: "vm.ovf", data: ovf(STREAM, ` ovf:chunkSize="${half}"`) },
        { name: "disk.vmdk.000000000", data: guest.stream.subarray(0, half) },
        { name: "disk.vmdk.000000001", data: guest.stream.subarray(half) },
      ],
      code: 1,
      error: /^chromogenic: -:disk\.vmdk: disk 1 is stored in chunks, which cannot be read from an OVA read in order/,
    },
  ];
  for (const c of cases) {
    const ova = join(dir, `${c.name.replace(/ /g, "-")}.ova`);
    await writeTar(ova, c.entries);
    const r = await runCliFromStdin(["convert", "-q", "-O", "qcow2", "-", join(dir, "out.qcow2")], { path: ova });
    assert.equal(r.code, c.code, `${c.name}: ${r.stderr}`);
    assert.match(r.stderr, c.error, c.name);
  }
  const { ova } = await exportedOva(dir, "vmware");
  const missing = await runCliFromStdin(["convert", "-q", "--disk", "3", "-O", "qcow2", "-", join(dir, "out.qcow2")], {
    path: ova,
  });
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /-: no disk 3 with content in the appliance \(disks: 1, 2\)/);
  // Cut in the middle of the first disk, and in the manifest's header (the archive's last member).
  const members = tarMembers(await readFile(ova));
  const disk1 = members.find((m) => m.name === "boot-disk1.vmdk")!;
  const manifest = members.find((m) => m.name === "boot.mf")!;
  const cuts = [
    {
      bytes: disk1.dataOffset + disk1.size / 2,
      error: /^chromogenic: -: the OVA ends after \d+ bytes, inside boot-disk1\.vmdk .*: it was cut short/,
    },
    { bytes: manifest.dataOffset - 512 + 100, error: /^chromogenic: -: tar archive ends inside a header/ },
    {
      bytes: manifest.dataOffset + 100,
      error: /^chromogenic: -: the OVA ends after \d+ bytes, inside boot\.mf .*: it was cut short/,
    },
  ];
  for (const { bytes, error } of cuts) {
    const r = await runCliFromStdin(["convert", "-q", "-O", "qcow2", "-", join(dir, "out.qcow2")], {
      path: ova,
      bytes,
    });
    assert.equal(r.code, 1, `cut at ${bytes}: ${r.stderr}`);
    assert.match(r.stderr, error);
  }
  assert.ok(!(await readdir(dir)).some((n) => n.includes("out.qcow2")), "no output or temporary left behind");
});
