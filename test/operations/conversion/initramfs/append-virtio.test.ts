/**
 * Appending the virtio modules to a Xen-only initramfs-tools image (append-virtio.ts) on planted guest roots:
 * the archive appended is read back by our scanner and by the real cpio; every refusal leaves the image as it
 * was, so the caller can fall back to the guest's own tool. The boot on virtio is proved on a whole guest in
 * test/workflows/xen-to-kvm-step.test.ts.
 */
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import assert from "node:assert/strict";
import { chmod, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openGuestFile, openHostFile } from "../../../../src/operations/conversion/bounded-file.js";
import { appendVirtioModules } from "../../../../src/operations/conversion/initramfs/append-virtio.js";
import {
  checkInitramfs,
  type InitramfsCheck,
} from "../../../../src/operations/conversion/initramfs/check-initramfs.js";
import { cpioArchive as writeCpio } from "../../../../src/operations/conversion/initramfs/cpio-writer.js";
import { loadOrder, parseModulesDep } from "../../../../src/operations/conversion/initramfs/module-deps.js";
import { scanInitramfs } from "../../../../src/operations/conversion/initramfs/scan-initramfs.js";
import { sha256File } from "../../../helpers/clean-proof.js";
import { runOk } from "../../../helpers/tools.js";
import type { Plant } from "../../../helpers/debian-guest.js";
import {
  type Compressor,
  cpioArchive,
  cpioNames,
  debianInitramfs,
  DEBIAN_KERNEL,
  file,
  plantedRoot,
  XEN_ONLY_INITRAMFS_FILES,
} from "../conversion-trees.js";

const V = DEBIAN_KERNEL;
const INITRD = `/boot/initrd.img-${V}`;
const ORDER = '/scripts/init-top/udev "$@"\n[ -e /conf/param.conf ] && . /conf/param.conf\n';
const K = "kernel/drivers";
const DEP = [
  `${K}/virtio/virtio.ko:`,
  `${K}/virtio/virtio_ring.ko:`,
  `${K}/virtio/virtio_pci_modern_dev.ko:`,
  `${K}/virtio/virtio_pci.ko: ${K}/virtio/virtio_pci_modern_dev.ko ${K}/virtio/virtio_ring.ko ${K}/virtio/virtio.ko`,
  `${K}/block/virtio_blk.ko: ${K}/virtio/virtio_ring.ko ${K}/virtio/virtio.ko`,
  `${K}/scsi/scsi_common.ko:`,
  `${K}/scsi/scsi_mod.ko: ${K}/scsi/scsi_common.ko`,
  `${K}/scsi/virtio_scsi.ko: ${K}/scsi/scsi_mod.ko ${K}/scsi/scsi_common.ko ${K}/virtio/virtio_ring.ko ${K}/virtio/virtio.ko`,
  `${K}/block/xen-blkfront.ko:`,
  "",
].join("\n");

/** A module file: the ELF magic, then its name (nothing reads further). */
const ko = (path: string) => file(`/lib/modules/${V}/${path}`, `\x7fELF module ${path}\n`);

function modulePlants(dep = DEP): Plant[] {
  const paths = [...dep.matchAll(/^([^:\s]+):/gm)].map((m) => m[1]!);
  return [file(`/lib/modules/${V}/modules.dep`, dep), ...paths.map(ko)];
}

/** The image of a Xen-only initramfs-tools guest (ORDER and insmod inside), made by the real cpio and zstd. */
const xenOnlyImage = (extra: Record<string, string> = {}, compressor: Compressor = "zstd") =>
  debianInitramfs(
    { ...XEN_ONLY_INITRAMFS_FILES, "scripts/init-top/ORDER": ORDER, "usr/bin/insmod": "insmod\n", ...extra },
    compressor,
  );

async function guest(t: Parameters<typeof plantedRoot>[0], image: Buffer, plants = modulePlants()) {
  const root = await plantedRoot(t, [{ op: "dir", path: "/boot" }, ...plants]);
  await writeFile(join(root, INITRD), image);
  await chmod(join(root, INITRD), 0o600);
  return root;
}

async function checkOf(root: string, path = INITRD): Promise<InitramfsCheck> {
  return checkInitramfs({
    version: V,
    guestPath: path,
    open: () => openGuestFile(root, path, 2 ** 30),
    modulesBuiltin: null,
    config: "CONFIG_VIRTIO=m\n",
  });
}

test("modules.dep: dependencies first, each once; a module it does not list is named", () => {
  const order = loadOrder(parseModulesDep(DEP), ["virtio_pci", "virtio_blk", "virtio_scsi"]).map((m) => m.name);
  assert.deepEqual(order, [
    "virtio_pci_modern_dev",
    "virtio_ring",
    "virtio",
    "virtio_pci",
    "virtio_blk",
    "scsi_common",
    "scsi_mod",
    "virtio_scsi",
  ]);
  assert.throws(() => loadOrder(parseModulesDep(`${K}/a.ko: ${K}/b.ko\n`), ["a"]), /lists no module b \(needed by a\)/);
  assert.throws(() => loadOrder(parseModulesDep(`${K}/a.ko: ${K}/a.ko\n`), ["a"]), /a depends on itself/);
});

test("our cpio writer's archives read back by the real cpio", () => {
  const archive = writeCpio([
    { name: "d", mode: 0o755 },
    { name: "d/odd-size", mode: 0o644, data: Buffer.from("12345") },
    { name: "x", mode: 0o600, data: Buffer.alloc(0) },
  ]);
  assert.equal(archive.length % 4, 0);
  assert.deepEqual(cpioNames(archive), ["d", "d/odd-size", "x"]);
  assert.throws(() => writeCpio([{ name: "../escape", mode: 0o644, data: Buffer.alloc(1) }]), /not a plain relative/);
  assert.throws(() => writeCpio([{ name: "/abs", mode: 0o644, data: Buffer.alloc(1) }]), /not a plain relative/);
});

test("a Xen-only image gets the virtio modules appended: seen by our scanner and by cpio, mode kept", async (t) => {
  const original = await xenOnlyImage();
  const root = await guest(t, original);
  const check = await checkOf(root);
  assert.equal(check.verdict, "must-rebuild", check.reason);
  const target = { version: V, initramfs: INITRD, check };

  const before = await sha256File(join(root, INITRD));
  const planned = await appendVirtioModules(root, target, { dryRun: true });
  assert.ok(!planned.appended && "plan" in planned, JSON.stringify(planned));
  assert.deepEqual(planned.plan.modules.slice(-1), ["virtio_scsi"]);
  assert.equal(await sha256File(join(root, INITRD)), before, "a dry run writes nothing");

  const done = await appendVirtioModules(root, target, { dryRun: false });
  assert.ok(done.appended, JSON.stringify(done));
  assert.equal(done.check.verdict, "ok", done.check.reason);
  assert.equal(done.check.drivers.virtio_blk, "module");
  assert.equal(done.check.drivers.virtio_pci, "module");
  assert.equal(done.check.initramfs, INITRD);
  assert.ok(!done.check.reason.includes("chromogenic-new"), done.check.reason);
  assert.deepEqual(done.plan.modules, planned.plan.modules);
  assert.deepEqual(await readdir(join(root, "boot")), [`initrd.img-${V}`], "no temporary file left");
  const st = await stat(join(root, INITRD));
  assert.equal(st.mode & 0o777, 0o600, "the image's mode is kept");

  const image = await readFile(join(root, INITRD));
  assert.deepEqual(image.subarray(0, original.length), original, "the original bytes come first, unchanged");
  // The real zstd and cpio read what was appended on their own: a zstd frame holding the archive.
  const unzstd = spawnSync("zstd", ["-dcq"], { input: image.subarray(original.length) });
  assert.equal(unzstd.status, 0, `zstd (Debian package zstd): ${unzstd.error?.message ?? unzstd.stderr.toString()}`);
  const archive = unzstd.stdout;
  assert.deepEqual(cpioNames(archive), [
    "chromogenic-virtio",
    ...done.plan.modules.map((m) => `chromogenic-virtio/${m}.ko`),
    "scripts/init-top/chromogenic-virtio",
    "scripts/init-top/ORDER",
  ]);
  // Debian's own lsinitramfs still reads the image (it pipes the frames after the first archive through zstd).
  const listed = (await runOk("lsinitramfs", [join(root, INITRD)])).split("\n");
  assert.ok(listed.includes("scripts/init-top/ORDER"), listed.join("\n"));
  // Our scanner sees every part, the new ORDER (ours first, the image's own after) and the script.
  const captured = new Map<string, string>();
  const file = await openHostFile(join(root, INITRD), "initramfs", 2 ** 30);
  const scan = await scanInitramfs(file, {
    visit: (e) => e.name.startsWith("scripts/init-top/"),
    captured: (e, data) => captured.set(e.name, data.toString("latin1")),
  }).finally(() => file.handle.close());
  assert.deepEqual(scan.parts, ["cpio", "zstd", "zstd"]);
  assert.equal(captured.get("scripts/init-top/ORDER"), `/scripts/init-top/chromogenic-virtio "$@"\n${ORDER}`);
  const script = captured.get("scripts/init-top/chromogenic-virtio")!;
  assert.match(script, new RegExp(`for m in ${done.plan.modules.join(" ")}; do`));
  assert.match(script, /insmod "\/chromogenic-virtio\/\$m\.ko"/);

  // Appending again (a second conversion) finds nothing missing and refuses, the image untouched.
  const again = await appendVirtioModules(root, { ...target, check: await checkOf(root) }, { dryRun: false });
  assert.ok(!again.appended && "refused" in again);
  assert.match(again.refused, /no virtio driver is known to be missing/);
});

test("a gzip image gets a gzip member appended right after its own: read by gzip -d, cpio, lsinitramfs, us", async (t) => {
  const original = await xenOnlyImage({}, "gzip");
  const root = await guest(t, original);
  const check = await checkOf(root);
  assert.equal(check.verdict, "must-rebuild", check.reason);
  const done = await appendVirtioModules(root, { version: V, initramfs: INITRD, check }, { dryRun: false });
  assert.ok(done.appended, JSON.stringify(done));
  assert.equal(done.check.verdict, "ok", done.check.reason);
  assert.equal(done.check.drivers.virtio_blk, "module");
  assert.deepEqual(done.check.parts, ["cpio", "gzip"]);
  const image = await readFile(join(root, INITRD));
  assert.deepEqual(image.subarray(0, original.length), original, "the original bytes come first, unchanged");
  assert.deepEqual(image.subarray(original.length, original.length + 2), Buffer.from([0x1f, 0x8b]), "no padding");
  // The real gzip reads the appended member on its own, and cpio the archive in it.
  const gunzip = spawnSync("gzip", ["-dc"], { input: image.subarray(original.length) });
  assert.equal(gunzip.status, 0, gunzip.stderr.toString());
  assert.equal(cpioNames(gunzip.stdout).at(-1), "scripts/init-top/ORDER");
  const listed = (await runOk("lsinitramfs", [join(root, INITRD)])).split("\n");
  assert.ok(listed.includes("scripts/init-top/ORDER"), listed.join("\n"));
  assert.equal((await stat(join(root, INITRD))).mode & 0o777, 0o600, "the image's mode is kept");
});

test("an uncompressed image gets a plain cpio archive, on a 4-byte boundary", async (t) => {
  const original = await cpioArchive({
    ...XEN_ONLY_INITRAMFS_FILES,
    "scripts/init-top/ORDER": ORDER,
    "usr/bin/insmod": "insmod\n",
    odd: "x",
  });
  const root = await guest(t, Buffer.concat([original, Buffer.from([0])]));
  const done = await appendVirtioModules(
    root,
    { version: V, initramfs: INITRD, check: await checkOf(root) },
    {
      dryRun: false,
    },
  );
  assert.ok(done.appended, JSON.stringify(done));
  assert.deepEqual(done.check.parts, ["cpio", "cpio"]);
  const image = await readFile(join(root, INITRD));
  const start = Math.ceil((original.length + 1) / 4) * 4;
  assert.ok(image.subarray(original.length + 1, start).every((b) => b === 0));
  assert.equal(cpioNames(image.subarray(start)).at(-1), "scripts/init-top/ORDER");
});

/** Appending refused, the reason matching `why`, the image unchanged. */
async function refused(t: Parameters<typeof plantedRoot>[0], image: Buffer, plants: Plant[], why: RegExp) {
  const root = await guest(t, image, plants);
  const before = await sha256File(join(root, INITRD));
  const check = await checkOf(root);
  const r = await appendVirtioModules(root, { version: V, initramfs: INITRD, check }, { dryRun: false });
  assert.ok(!r.appended && "refused" in r, JSON.stringify(r));
  assert.match(r.refused, why);
  assert.equal(await sha256File(join(root, INITRD)), before);
  assert.deepEqual(await readdir(join(root, "boot")), [`initrd.img-${V}`]);
}

test("refused, the image untouched, when anything is unusual: the guest's tool then rebuilds it", async (t) => {
  const xz = DEP.replaceAll("virtio_blk.ko", "virtio_blk.ko.xz");
  await refused(t, await xenOnlyImage(), modulePlants(xz), /virtio_blk\.ko\.xz is compressed/);
  const noScsi = DEP.split("\n")
    .filter((l) => !l.startsWith(`${K}/scsi/scsi_mod.ko`))
    .join("\n");
  await refused(t, await xenOnlyImage(), modulePlants(noScsi), /lists no module scsi_mod \(needed by virtio_scsi\)/);
  await refused(t, await xenOnlyImage(), modulePlants().slice(0, 1), /virtio_pci_modern_dev\.ko: does not exist/);
  // A module linked out of the guest reads the guest's own file at that path, which is no module.
  const linked: Plant[] = [
    ...modulePlants().filter((p) => !p.path.endsWith("/virtio.ko")),
    { op: "symlink", path: `/lib/modules/${V}/${K}/virtio/virtio.ko`, target: "/etc/hostname" },
    file("/etc/hostname", "guest\n"),
  ];
  await refused(t, await xenOnlyImage(), linked, /\/etc\/hostname is not an ELF module|virtio\.ko is not an ELF/);
  const dracut = await debianInitramfs({ ...XEN_ONLY_INITRAMFS_FILES, "usr/bin/insmod": "x\n" });
  await refused(t, dracut, modulePlants(), /has no \/scripts\/init-top\/ORDER/);
  const noInsmod = await debianInitramfs({ ...XEN_ONLY_INITRAMFS_FILES, "scripts/init-top/ORDER": ORDER });
  await refused(t, noInsmod, modulePlants(), /has no insmod/);
  // xz: our reader cannot tell where its part ends, so it could not check what would follow it.
  await refused(t, await xenOnlyImage({}, "xz"), modulePlants(), /xz-compressed, past which the check cannot read/);
  const bigOrder = await xenOnlyImage({ "scripts/init-top/ORDER": "#".repeat(70_000) });
  await refused(t, bigOrder, modulePlants(), /ORDER is over 65536 bytes/);
  await refused(
    t,
    await xenOnlyImage(),
    modulePlants().filter((p) => !p.path.endsWith("modules.dep")),
    /no readable/,
  );
});
