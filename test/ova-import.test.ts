/**
 * Reading OVAs: `info` shows the appliance, `convert` streams a disk out of the archive (manifest verified
 * alongside), descriptors as VMware and OVF 0.9 write them are understood, and hostile archives are refused
 * with a clear message and nothing written.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { exportOva } from "../src/formats/ova/ova-writer.js";
import { openOva } from "../src/formats/ova/ova-reader.js";
import { convertFile } from "../src/formats/engine/convert.js";
import { makeRaw, mixedRegions, qemuCompare, run, scratch } from "./helpers/tools.js";
import { guestDisk, memberHeader, vmwareDescriptor, writeTar } from "./helpers/ova-tools.js";
import { TAR_BLOCK } from "../src/formats/ova/tar-header.js";

const MiB = 2 ** 20;
const BIN = "bin/chromogenic.js";
const cli = (...args: string[]) => run(process.execPath, [BIN, ...args]);

async function exported(dir: string, target: "virtualbox" | "vmware" = "vmware", ovfVersion: "1.0" | "2.0" = "1.0") {
  const a = join(dir, "a.raw");
  const b = join(dir, "b.raw");
  await makeRaw(a, 20 * MiB, mixedRegions(20 * MiB));
  await makeRaw(b, 7 * MiB + 512, mixedRegions(7 * MiB + 512));
  const ova = join(dir, "app.ova");
  await exportOva({ inputs: [a, b], output: ova, target, ovfVersion, name: "app", cpus: 3, memoryMiB: 1536 });
  return { a, b, ova };
}

test("info shows the appliance: systems, hardware, disks, manifest (text and --json)", async (t) => {
  const dir = await scratch(t);
  const { ova } = await exported(dir, "virtualbox", "2.0");
  const text = await cli("info", ova);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /file format: ova \(OVF 2\.x/);
  assert.match(text.stdout, /hardware family: virtualbox-2\.2/);
  assert.match(text.stdout, /CPUs: 3/);
  assert.match(text.stdout, /memory: 1\.50 GiB/);
  assert.match(text.stdout, /controllers: sata \(AHCI\)/);
  assert.match(text.stdout, /disk 2: app-disk2\.vmdk/);
  assert.match(text.stdout, /manifest: app\.mf \(SHA256/);
  const json = await cli("info", "--json", ova);
  const info = JSON.parse(json.stdout);
  assert.equal(info.format, "ova");
  assert.deepEqual(
    info.disks.map((d: { capacity: number }) => d.capacity),
    [20 * MiB, 7 * MiB + 512],
  );
  assert.equal(info.systems[0].virtualBoxMachine, true);
});

test("convert streams each disk out of the OVA, identical to what went in", async (t) => {
  const dir = await scratch(t);
  const { a, b, ova } = await exported(dir);
  const r1 = await cli("convert", "-q", "-O", "qcow2", ova, join(dir, "d1.qcow2"));
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal((await qemuCompare(a, join(dir, "d1.qcow2"))).code, 0);
  const r2 = await cli("convert", "--json", "-O", "raw", "--disk", "2", ova, join(dir, "d2.raw"));
  assert.equal(r2.code, 0, r2.stderr);
  const done = JSON.parse(r2.stdout.trim().split("\n").at(-1)!);
  assert.equal(done.disk, 2);
  assert.equal(done.manifest.algorithm, "sha256");
  assert.equal((await qemuCompare(b, join(dir, "d2.raw"))).code, 0);
  const bad = await cli("convert", "-O", "raw", "--disk", "3", ova, join(dir, "d3.raw"));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no disk 3/);
});

test("a member that does not match the manifest stops the conversion and leaves nothing", async (t) => {
  const dir = await scratch(t);
  const { ova } = await exported(dir);
  // Flip a byte inside disk 2's data (its metadata stays readable, so only the manifest can tell).
  const header = await memberHeader(ova, "app-disk2.vmdk");
  const h = await open(ova, "r+");
  let pos = 0;
  try {
    const size = (await h.stat()).size;
    for (; pos < size; pos += TAR_BLOCK) {
      const block = Buffer.alloc(TAR_BLOCK);
      await h.read(block, 0, TAR_BLOCK, pos);
      if (block.equals(header)) break;
    }
    const at = pos + TAR_BLOCK + 70 * 1024;
    const byte = Buffer.alloc(1);
    await h.read(byte, 0, 1, at);
    byte[0]! ^= 0xff;
    await h.write(byte, 0, 1, at);
  } finally {
    await h.close();
  }
  const before = (await readdir(dir)).sort();
  const r = await cli("convert", "-q", "-O", "qcow2", ova, join(dir, "out.qcow2"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /app-disk2\.vmdk does not match the manifest/);
  assert.deepEqual((await readdir(dir)).sort(), before);
});

test("VMware-style OVAs: #sparse disks, gzip-compressed and chunked files, capacities in byte * 2^20", async (t) => {
  const dir = await scratch(t);
  const { raw, sparse: sparseBytes, stream: streamBytes } = await guestDisk(dir, 16 * MiB);
  // ovftool --compress gzips the streamOptimized VMDK it writes (VMware's "#sparse" URI names those too).
  const gz = gzipSync(streamBytes);
  // Split the VMDK in two, as ovftool --chunkSize does (every chunk but the last exactly chunkSize bytes).
  const chunk = Math.ceil(streamBytes.length / 2);
  const chunks = [streamBytes.subarray(0, chunk), streamBytes.subarray(chunk)];
  const SPARSE = "http://www.vmware.com/specifications/vmdk.html#sparse";
  const STREAM = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
  const ova = join(dir, "vmw.ova");
  await writeTar(ova, [
    {
      name: "vm.ovf",
      data: vmwareDescriptor([
        { href: "vm-disk1.vmdk", capacity: "16", units: "byte * 2^20", format: SPARSE },
        {
          href: "vm-disk2.vmdk.gz",
          capacity: "16777216",
          units: "byte",
          format: SPARSE,
          extra: ` ovf:compression="gzip" ovf:size="${gz.length}"`,
        },
        {
          href: "vm-disk3.vmdk",
          capacity: "16",
          units: "byte * 2^20",
          format: STREAM,
          extra: ` ovf:chunkSize="${chunk}"`,
        },
      ]),
    },
    { name: "vm-disk1.vmdk", data: sparseBytes },
    { name: "vm-disk2.vmdk.gz", data: gz },
    { name: "vm-disk3.vmdk.000000000", data: chunks[0] },
    { name: "vm-disk3.vmdk.000000001", data: chunks[1] },
  ]);
  const shown = await cli("info", "--json", ova);
  assert.equal(shown.code, 0, shown.stderr);
  const info = JSON.parse(shown.stdout);
  assert.deepEqual(
    info.disks.map((d: { capacity: number; compression?: string; chunks: number }) => [
      d.capacity,
      d.compression ?? null,
      d.chunks,
    ]),
    [
      [16 * MiB, null, 1],
      [16 * MiB, "gzip", 1],
      [16 * MiB, null, 2],
    ],
  );
  assert.equal(info.systems[0].memoryBytes, 2 * 2 ** 30);
  for (const n of [1, 2, 3]) {
    const out = join(dir, `out${n}.raw`);
    const r = await cli("convert", "-q", "-O", "raw", "--disk", String(n), ova, out);
    assert.equal(r.code, 0, `disk ${n}: ${r.stderr}`);
    assert.equal((await qemuCompare(raw, out)).code, 0, `disk ${n} differs`);
  }
});

test("an OVF 0.9 descriptor (<Section xsi:type>, <Content xsi:type>) is understood", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "d.raw");
  await makeRaw(raw, 4 * MiB, mixedRegions(4 * MiB));
  const vmdk = join(dir, "d.vmdk");
  await convertFile({
    input: raw,
    output: vmdk,
    outputFormat: "vmdk",
    createOptions: { subformat: "streamOptimized" },
  });
  const ovf = `<?xml version="1.0"?>
<Envelope xmlns="http://www.vmware.com/schema/ovf/1/envelope" xmlns:ovf="http://www.vmware.com/schema/ovf/1/envelope" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References><File ovf:href="d.vmdk" ovf:id="file1"/></References>
  <Section xsi:type="ovf:DiskSection_Type"><Info>disks</Info>
    <Disk ovf:capacity="4194304" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/specifications/vmdk.html#sparse"/>
  </Section>
  <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="old"><Info>vm</Info>
    <Section xsi:type="ovf:VirtualHardwareSection_Type"><Info>hw</Info>
      <Item><rasd:InstanceId xmlns:rasd="x">1</rasd:InstanceId><rasd:ResourceType xmlns:rasd="x">3</rasd:ResourceType><rasd:VirtualQuantity xmlns:rasd="x">2</rasd:VirtualQuantity></Item>
    </Section>
  </Content>
</Envelope>`;
  const ova = join(dir, "old.ova");
  await writeTar(ova, [
    { name: "old.ovf", data: Buffer.from(ovf) },
    { name: "d.vmdk", data: await readFile(vmdk) },
  ]);
  const info = JSON.parse((await cli("info", "--json", ova)).stdout);
  assert.equal(info.ovfVersion, "0.9");
  assert.equal(info.systems[0].cpus, 2);
  assert.equal(info.disks[0].capacity, 4 * MiB);
  const out = join(dir, "o.raw");
  assert.equal((await cli("convert", "-q", "-O", "raw", ova, out)).code, 0);
  assert.equal((await qemuCompare(raw, out)).code, 0);
});

const MINIMAL_OVF = (href: string, extra = "") =>
  Buffer.from(`<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="${href}" ovf:id="file1"${extra}/></References>
  <DiskSection><Info>d</Info><Disk ovf:capacity="1048576" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>
  <VirtualSystem ovf:id="vm"><Info>vm</Info></VirtualSystem>
</Envelope>`);

test("hostile archives are refused with a clear reason", async (t) => {
  const dir = await scratch(t);
  const disk = Buffer.alloc(1024, 1);
  const cases: { name: string; entries: Parameters<typeof writeTar>[1]; end?: boolean; message: RegExp }[] = [
    {
      name: "dotdot",
      entries: [
        { name: "a.ovf", data: MINIMAL_OVF("../evil.vmdk") },
        { name: "../evil.vmdk", data: disk },
      ],
      message: /"\.\.\/evil\.vmdk".*absolute, contains "\.\."/,
    },
    {
      name: "absolute",
      entries: [
        { name: "a.ovf", data: MINIMAL_OVF("d.vmdk") },
        { name: "/etc/d.vmdk", data: disk },
      ],
      message: /absolute/,
    },
    {
      name: "symlink",
      entries: [
        { name: "a.ovf", data: MINIMAL_OVF("d.vmdk") },
        { name: "d.vmdk", typeflag: "2", linkname: "/etc/shadow" },
      ],
      message: /is a link/,
    },
    {
      name: "hardlink",
      entries: [
        { name: "a.ovf", data: MINIMAL_OVF("d.vmdk") },
        { name: "d.vmdk", typeflag: "1", linkname: "a.ovf" },
      ],
      message: /is a link/,
    },
    {
      name: "fifo",
      entries: [
        { name: "a.ovf", data: MINIMAL_OVF("d.vmdk") },
        { name: "d.vmdk", typeflag: "6" },
      ],
      message: /device or FIFO/,
    },
    {
      name: "chardev",
      entries: [
        { name: "a.ovf", data: MINIMAL_OVF("d.vmdk") },
        { name: "d.vmdk", typeflag: "3" },
      ],
      message: /device or FIFO/,
    },
    {
      name: "missing",
      entries: [{ name: "a.ovf", data: MINIMAL_OVF("d.vmdk") }],
      message: /names file "d\.vmdk", which is not in the archive/,
    },
    {
      name: "url",
      entries: [{ name: "a.ovf", data: MINIMAL_OVF("http://example.invalid/d.vmdk") }],
      message: /is a URL/,
    },
    {
      name: "oversized",
      entries: [
        { name: "a.ovf", data: MINIMAL_OVF("d.vmdk") },
        { name: "d.vmdk", data: disk, claimedSize: 10 * 2 ** 30 },
      ],
      end: false,
      message: /claims 10737418240 bytes but the archive ends/,
    },
    {
      name: "duplicate",
      entries: [
        { name: "a.ovf", data: MINIMAL_OVF("d.vmdk") },
        { name: "d.vmdk", data: disk },
        { name: "d.vmdk", data: disk },
      ],
      message: /two members are named "d\.vmdk"/,
    },
    {
      name: "malformed",
      entries: [{ name: "a.ovf", data: Buffer.from("<Envelope><References></Envelope>") }],
      message: /not well-formed XML/,
    },
    {
      name: "entities",
      entries: [
        {
          name: "a.ovf",
          data: Buffer.from(
            `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">&lol2;</Envelope>`,
          ),
        },
      ],
      message: /declares a DTD or entities/,
    },
    { name: "huge", entries: [{ name: "a.ovf", data: Buffer.alloc(4 * MiB + 1, 0x20) }], message: /beyond/ },
    {
      name: "bad-manifest",
      entries: [
        { name: "a.ovf", data: MINIMAL_OVF("d.vmdk") },
        { name: "d.vmdk", data: disk },
        { name: "a.mf", data: Buffer.from("SHA256 d.vmdk 1234\n") },
      ],
      message: /manifest line 1/,
    },
  ];
  for (const c of cases) {
    const path = join(dir, `${c.name}.ova`);
    await writeTar(path, c.entries, { end: c.end });
    await assert.rejects(openOva(path), c.message, c.name);
  }
  // Through the CLI: one clear line, exit code 1, nothing written.
  const r = await cli("convert", "-O", "raw", join(dir, "symlink.ova"), join(dir, "out.raw"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^chromogenic: .*is a link; an OVA holds regular files only\n$/);
  assert.ok(!(await readdir(dir)).includes("out.raw"));
});
