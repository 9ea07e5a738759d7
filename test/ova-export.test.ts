/**
 * OVA export, checked with the tools importers are judged by: DMTF's OVF schemas (xmllint), GNU tar,
 * sha*sum -c on the manifest, qemu-img on the disks. VirtualBox and ESXi are not available here; what their
 * importers require (from VirtualBox's ovfreader.cpp / ApplianceImplImport.cpp and VMware's documented
 * refusals) is encoded as explicit checks on the descriptor below.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- parsed descriptors are walked dynamically in assertions */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { createWriteStream } from "node:fs";
import { XMLParser } from "fast-xml-parser";
import { exportOva } from "../src/formats/ova/ova-writer.js";
import { openImage } from "../src/formats/engine/open-image.js";
import type { ImageSource } from "../src/formats/types.js";
import { decodeTarHeader } from "../src/formats/ova/tar-header.js";
import { makeRaw, mixedRegions, pattern, qemuCompare, qemuInfo, run, scratch } from "./helpers/tools.js";
import { extractAll, memberHeader, schemaFor, tarList, xmllintValidate } from "./helpers/ova-tools.js";
import { doneOf } from "./helpers/event-lines.js";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

async function sampleDisk(dir: string, name = "disk.raw", size = 24 * MiB + 512) {
  const path = join(dir, name);
  await makeRaw(path, size, mixedRegions(size));
  return path;
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@", removeNSPrefix: false });
function parseOvf(text: string) {
  return parser.parse(text) as Record<string, any>;
}
const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

for (const target of ["virtualbox", "vmware", "aws"] as const) {
  for (const ovfVersion of ["1.0", "2.0"] as const) {
    test(`${target} OVF ${ovfVersion}: schema-valid descriptor, .ovf first/.mf last, manifest verifies, disks identical`, async (t) => {
      const dir = await scratch(t);
      const a = await sampleDisk(dir, "a.raw");
      const b = await sampleDisk(dir, "b.raw", 8 * MiB);
      const ova = join(dir, "out.ova");
      const result = await exportOva({ inputs: [a, b], output: ova, target, ovfVersion, name: "demo" });
      const list = await tarList(ova);
      assert.deepEqual(
        list.map((m) => m.name),
        ["demo.ovf", "demo-disk1.vmdk", "demo-disk2.vmdk", "demo.mf"],
      );
      const x = join(dir, "x");
      await mkdir(x);
      await extractAll(ova, x);
      // Schema: DMTF's envelope schema for the version; VirtualBox's section declared as an OVF extension.
      const valid = await xmllintValidate(join(x, "demo.ovf"), schemaFor(ovfVersion, target === "virtualbox"));
      assert.equal(valid.code, 0, valid.stderr);
      // Manifest: exact line format, checked by coreutils.
      const mf = await readFile(join(x, "demo.mf"), "utf8");
      const alg = result.manifest;
      assert.match(mf, new RegExp(`^${String(alg).toUpperCase()}\\(demo\\.ovf\\)= [0-9a-f]+\\n`));
      const sum = await run("sh", ["-c", `cd '${x}' && ${alg}sum -c demo.mf`]);
      assert.equal(sum.code, 0, sum.stdout + sum.stderr);
      // Disks: streamOptimized VMDKs with the inputs' content.
      for (const [i, input] of [a, b].entries()) {
        const vmdk = join(x, `demo-disk${i + 1}.vmdk`);
        const info = await qemuInfo(vmdk);
        assert.equal(info.format, "vmdk");
        assert.match(JSON.stringify(info), /streamOptimized/);
        assert.equal((await qemuCompare(input, vmdk)).code, 0, `disk ${i + 1} differs`);
      }
      // The descriptor's sizes are the members' sizes.
      const doc = parseOvf(await readFile(join(x, "demo.ovf"), "utf8"));
      const files = asList(doc.Envelope.References.File);
      for (const f of files) {
        assert.equal(Number(f["@ovf:size"]), (await stat(join(x, f["@ovf:href"]))).size);
      }
    });
  }
}

test("virtualbox: what VirtualBox's importer requires of the descriptor", async (t) => {
  const dir = await scratch(t);
  const a = await sampleDisk(dir, "a.raw");
  const b = await sampleDisk(dir, "b.raw", 4 * MiB);
  for (const ovfVersion of ["1.0", "2.0"] as const) {
    const ova = join(dir, `vb${ovfVersion}.ova`);
    const r = await exportOva({ inputs: [a, b], output: ova, target: "virtualbox", ovfVersion, name: "vb" });
    // VirtualBox's own manifest pairing: SHA-1 with OVF 1.0, SHA-256 with OVF 2.0.
    assert.equal(r.manifest, ovfVersion === "2.0" ? "sha256" : "sha1");
    const x = join(dir, `x${ovfVersion}`);
    await mkdir(x);
    await extractAll(ova, x);
    const text = await readFile(join(x, "vb.ovf"), "utf8");
    assert.doesNotMatch(text, /BusNumber/, "rasd:BusNumber is not a RASD property");
    const env = parseOvf(text).Envelope;
    const vs = env.VirtualSystem;
    const hw = vs.VirtualHardwareSection;
    assert.equal(hw.System["vssd:VirtualSystemType"], "virtualbox-2.2");
    const disks = asList(env.DiskSection.Disk);
    const items = asList(hw.Item);
    const byId = new Map(items.map((i: any) => [String(i["rasd:InstanceID"]), i]));
    // Every disk item hangs off a controller item VirtualBox knows, and names a disk of the DiskSection.
    const diskItems = items.filter((i: any) => String(i["rasd:ResourceType"]) === "17");
    assert.equal(diskItems.length, 2);
    for (const item of diskItems) {
      const parent = byId.get(String(item["rasd:Parent"]));
      assert.ok(parent, "disk item's Parent is a controller item");
      assert.equal(String(parent["rasd:ResourceType"]), "20");
      assert.equal(parent["rasd:ResourceSubType"], "AHCI");
      const id = /^ovf:\/disk\/(.+)$/.exec(item["rasd:HostResource"])![1];
      assert.ok(disks.some((d: any) => d["@ovf:diskId"] === id));
    }
    // Memory in units VirtualBox accepts; NIC subtype VirtualBox maps.
    const mem = items.find((i: any) => String(i["rasd:ResourceType"]) === "4");
    assert.ok(["MegaBytes", "MB", "byte * 2^20"].includes(mem["rasd:AllocationUnits"]));
    const nic = items.find((i: any) => String(i["rasd:ResourceType"]) === "10");
    assert.ok(["E1000", "PCNet32", "virtio-net"].includes(nic["rasd:ResourceSubType"]));
    // Every disk has format and capacity (ovfreader refuses a Disk without them).
    for (const d of disks) {
      assert.ok(d["@ovf:format"].endsWith("#streamOptimized"));
      assert.ok(Number(d["@ovf:capacity"]) > 0);
    }
    // vbox:Machine: not required, ovf:Info, uuid and name, a settings version.
    const m = vs["vbox:Machine"];
    assert.equal(m["@ovf:required"], "false");
    assert.ok(m["ovf:Info"]);
    assert.match(m["@uuid"], /^\{[0-9a-f-]{36}\}$/);
    assert.equal(m["@name"], "vb");
    assert.ok(m["@version"]);
    // Its attachments name the DiskSection's disks: braces there, bare in vbox:uuid, valid RFC 4122 v4.
    const images = asList(m.StorageControllers.StorageController).flatMap((c: any) =>
      asList(c.AttachedDevice).map((a: any) => a.Image["@uuid"]),
    );
    assert.equal(images.length, 2);
    for (const braced of images) {
      const bare = /^\{(.+)\}$/.exec(braced)![1]!;
      assert.match(bare, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok(
        disks.some((d: any) => d["@vbox:uuid"] === bare),
        `no Disk with vbox:uuid=${bare}`,
      );
    }
    // Without the VirtualBox section declared, DMTF's schema alone rejects only that section.
    const plain = await xmllintValidate(join(x, "vb.ovf"), schemaFor(ovfVersion, false));
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /Machine/);
  }
});

test("vmware: vmx-NN family, no VirtualBox elements, SHA-256 by default, options honoured or refused", async (t) => {
  const dir = await scratch(t);
  const a = await sampleDisk(dir, "a.raw", 4 * MiB);
  const ova = join(dir, "v.ova");
  const r = await exportOva({
    inputs: [a],
    output: ova,
    target: "vmware",
    hwVersion: 19,
    cpus: 4,
    memoryMiB: 8192,
    nic: "e1000e",
    controller: "scsi-pvscsi",
    osType: "ubuntu64",
    description: "web <frontend> & cache",
  });
  assert.equal(r.manifest, "sha256");
  const x = join(dir, "x");
  await mkdir(x);
  await extractAll(ova, x);
  const text = await readFile(join(x, "a.ovf"), "utf8");
  assert.doesNotMatch(text, /virtualbox|vbox:/i);
  assert.match(text, /<vssd:VirtualSystemType>vmx-19<\/vssd:VirtualSystemType>/);
  assert.match(text, /vmw:osType="ubuntu64Guest"/);
  assert.match(text, /<rasd:ResourceSubType>VirtualSCSI<\/rasd:ResourceSubType>/);
  assert.match(text, /<rasd:ResourceSubType>E1000e<\/rasd:ResourceSubType>/);
  assert.match(text, /web &lt;frontend&gt; &amp; cache/);
  assert.equal((await xmllintValidate(join(x, "a.ovf"), schemaFor("1.0", false))).code, 0);
  const vmdk = await readFile(join(x, "a-disk1.vmdk"));
  assert.match(vmdk.subarray(512, 2048).toString("latin1"), /ddb.virtualHWVersion = "19"/);
  await assert.rejects(
    exportOva({ inputs: [a], output: join(dir, "n.ova"), target: "vmware", nic: "virtio" }),
    /virtio/,
  );
  await assert.rejects(
    exportOva({ inputs: [a], output: join(dir, "n.ova"), target: "virtualbox", nic: "vmxnet3" }),
    /vmxnet3/,
  );
  await assert.rejects(
    exportOva({ inputs: [a], output: join(dir, "n.ova"), target: "virtualbox", hwVersion: 13 }),
    /hw-version/,
  );
  assert.deepEqual((await readdir(dir)).sort(), ["a.raw", "v.ova", "x"]);
});

test("aws: at most 21 disks; SHA-256 manifest", async (t) => {
  const dir = await scratch(t);
  const a = await sampleDisk(dir, "a.raw", MiB);
  await assert.rejects(
    exportOva({ inputs: Array(22).fill(a), output: join(dir, "x.ova"), target: "aws" }),
    /at most 21/,
  );
  const r = await exportOva({ inputs: [a], output: join(dir, "ok.ova"), target: "aws" });
  assert.equal(r.manifest, "sha256");
});

test("a member past the threshold gets a GNU header (9 GiB sparse disk, threshold lowered: nothing big written)", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "big.raw");
  await makeRaw(raw, 9 * GiB, [
    { offset: 0, data: pattern(64 * 1024, 3) },
    { offset: 9 * GiB - 4096, data: pattern(4096, 5) },
  ]);
  const ova = join(dir, "big.ova");
  const r = await exportOva({ inputs: [raw], output: ova, target: "vmware", name: "big", gnuThreshold: 64 * 1024 });
  const disk = r.members.find((m) => m.name === "big-disk1.vmdk")!;
  assert.ok(disk.size >= 64 * 1024, `VMDK of ${disk.size} bytes should pass the lowered threshold`);
  assert.equal(disk.flavour, "gnu");
  assert.equal(r.members.find((m) => m.name === "big.mf")!.flavour, "ustar");
  assert.ok((await stat(ova)).size < 64 * MiB);
  const header = await memberHeader(ova, "big-disk1.vmdk");
  assert.equal(header.toString("latin1", 257, 265), "ustar  \0", "GNU magic");
  assert.equal(decodeTarHeader(header, "t").size, disk.size);
  const list = await tarList(ova);
  assert.deepEqual(
    list.map((m) => [m.name, m.size]),
    r.members.map((m) => [m.name, m.size]),
  );
  const x = join(dir, "x");
  await mkdir(x);
  await extractAll(ova, x);
  assert.equal((await qemuCompare(raw, join(x, "big-disk1.vmdk"))).code, 0);
});

test("to a pipe: the same members, in order, through temporary VMDKs that are removed", async (t) => {
  const dir = await scratch(t);
  const a = await sampleDisk(dir, "a.raw", 6 * MiB);
  const tmp = join(dir, "tmp");
  await mkdir(tmp);
  const piped = join(dir, "piped.ova");
  const stream = new PassThrough();
  const done = new Promise((resolve, reject) => {
    const file = createWriteStream(piped);
    stream.pipe(file);
    file.on("finish", () => resolve(undefined));
    file.on("error", reject);
  });
  const r = await exportOva({ inputs: [a], output: "-", target: "virtualbox", name: "p", stream, tempDir: tmp });
  stream.end();
  await done;
  assert.deepEqual(await readdir(tmp), [], "temporary VMDKs removed");
  const list = await tarList(piped);
  assert.deepEqual(
    list.map((m) => [m.name, m.size]),
    r.members.map((m) => [m.name, m.size]),
  );
  const x = join(dir, "x");
  await mkdir(x);
  await extractAll(piped, x);
  assert.equal((await run("sh", ["-c", `cd '${x}' && sha1sum -c p.mf`])).code, 0);
  assert.equal((await xmllintValidate(join(x, "p.ovf"), schemaFor("1.0", true))).code, 0);
  assert.equal((await qemuCompare(a, join(x, "p-disk1.vmdk"))).code, 0);
});

test("an open ImageSource is exported as is and left open for its caller, even when the export fails", async (t) => {
  const dir = await scratch(t);
  const a = await sampleDisk(dir, "a.raw", 4 * MiB);
  const q = join(dir, "b.qcow2");
  await run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", "-c", await sampleDisk(dir, "b.raw", 6 * MiB), q]);
  const { source } = await openImage(q);
  let closes = 0;
  const watched: ImageSource = {
    format: source.format,
    virtualSize: source.virtualSize,
    read: (o, l, into) => source.read(o, l, into),
    extents: (o, l) => source.extents(o, l),
    details: () => source.details(),
    close: () => {
      closes++;
      return source.close();
    },
  };
  try {
    const ova = join(dir, "s.ova");
    const r = await exportOva({ inputs: [a, watched], output: ova, target: "vmware", name: "mixed" });
    assert.equal(r.virtualSize, 4 * MiB + 6 * MiB);
    assert.equal(closes, 0, "the caller's source is not closed by exportOva");
    // Still usable after the export: the caller owns it.
    assert.equal((await watched.read(0, 512)).length, 512);
    const x = join(dir, "x");
    await mkdir(x);
    await extractAll(ova, x);
    assert.equal((await qemuCompare(a, join(x, "mixed-disk1.vmdk"))).code, 0);
    assert.equal((await qemuCompare(q, join(x, "mixed-disk2.vmdk"))).code, 0);
    // Without --name, an appliance of open sources is called "appliance".
    const unnamed = await exportOva({ inputs: [watched], output: join(dir, "u.ova"), target: "aws" });
    assert.equal(unnamed.members[0]!.name, "appliance.ovf");
    // An export failing after the source was taken (the next input cannot be opened) leaves it open too.
    await assert.rejects(
      exportOva({ inputs: [watched, join(dir, "missing.raw")], output: join(dir, "f.ova"), target: "vmware" }),
      /missing\.raw/,
    );
    assert.equal(closes, 0);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith("f.ova")),
      [],
      "nothing half-written",
    );
  } finally {
    await source.close();
  }
});

test("--manifest none writes no .mf; sha512 is honoured", async (t) => {
  const dir = await scratch(t);
  const a = await sampleDisk(dir, "a.raw", MiB);
  const none = await exportOva({ inputs: [a], output: join(dir, "n.ova"), target: "vmware", manifest: "none" });
  assert.deepEqual(
    none.members.map((m) => m.name),
    ["a.ovf", "a-disk1.vmdk"],
  );
  const sha512 = await exportOva({ inputs: [a], output: join(dir, "s.ova"), target: "vmware", manifest: "sha512" });
  const x = join(dir, "x");
  await mkdir(x);
  await extractAll(join(dir, "s.ova"), x);
  assert.match(await readFile(join(x, "a.mf"), "utf8"), /^SHA512\(a\.ovf\)= [0-9a-f]{128}$/m);
  assert.equal(sha512.manifest, "sha512");
});

test("chromogenic export: CLI options, JSON result, usage errors exit 2 and leave nothing", async (t) => {
  const dir = await scratch(t);
  const a = await sampleDisk(dir, "a.raw", 2 * MiB);
  const cli = (...args: string[]) => run(process.execPath, ["bin/chromogenic.js", ...args]);
  const ok = await cli(
    "export",
    "--json",
    "--target",
    "vmware",
    "--name",
    "cli vm",
    "--cpus",
    "1",
    "--memory",
    "512",
    "--nic",
    "e1000",
    "--controller",
    "sata",
    "--ovf-version",
    "2.0",
    "--manifest",
    "sha1",
    "--hw-version",
    "vmx-14",
    a,
    join(dir, "cli.ova"),
  );
  assert.equal(ok.code, 0, ok.stderr);
  const done = doneOf(ok.stdout, "export");
  assert.equal(done.manifest, "sha1");
  assert.equal(done.ovfVersion, "2.0");
  assert.deepEqual(
    (done.members as { name: string }[]).map((m) => m.name),
    ["cli_vm.ovf", "cli_vm-disk1.vmdk", "cli_vm.mf"],
  );
  for (const bad of [
    ["--target", "hyperv"],
    ["--target", "vmware", "--nic", "rtl8139"],
    ["--target", "vmware", "--hw-version", "99"],
    ["--target", "vmware", "--ovf-version", "3"],
    ["--target", "vmware", "--manifest", "md5"],
    ["--target", "vmware", "--format", "zip"],
  ]) {
    const r = await cli("export", ...bad, a, join(dir, "bad.ova"));
    assert.equal(r.code, 2, `${bad.join(" ")}: ${r.stderr}`);
  }
  assert.deepEqual((await readdir(dir)).sort(), ["a.raw", "cli.ova"]);
});
