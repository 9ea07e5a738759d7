/**
 * `chromogenic bootable` end to end, through the CLI, on the bootable Debian guest (a Debian 12 root with its
 * kernel and initramfs in /boot and nothing in the disk's first sectors): every disk it writes is booted under
 * qemu (TCG, SeaBIOS) until the login prompt on the serial console. Needs root (loop devices, mounts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openImage } from "../../src/formats/engine/open-image.js";
import { readPartitionTable } from "../../src/guest/partitions/read-partition-table.js";
import type { BootableReport } from "../../src/workflows/bootable.js";
import { bareRootOf, bootableDebianGuest } from "../helpers/bootable-debian-guest.js";
import { bootToLogin } from "../helpers/boot-in-qemu.js";
import { HOST_CANARY_DIR } from "../helpers/debian-guest.js";
import { doneOf, errorOf } from "../helpers/event-lines.js";
import { guestScratch, leftovers, type GuestScratch } from "../helpers/clean-proof.js";
import { interruptWhen, whileMounted, type Interrupted } from "../helpers/interrupt-run.js";
import { qemuCompare, qemuInfo, run, runCli, runOk, sha256File } from "../helpers/tools.js";

const MiB = 2 ** 20;

/** The CLI's bootable with --json, its state dir (journals, mounts) in the test's scratch folder. */
async function bootable(
  s: GuestScratch,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(["bootable", "--json", ...args], s.env);
}

/** The files in a scratch folder, but for its state dir. */
async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n !== "state").sort();
}

/** Nothing of a run is left: no mount or loop device over `dir`'s files, no working disk, no temporary output. */
async function assertNothingLeft(dir: string): Promise<void> {
  assert.deepEqual(await leftovers(dir), [], "mounts or loop devices left");
  const names = (await readdir(dir)).filter((n) => n !== "state");
  assert.deepEqual(
    names.filter((n) => n.includes("chromogenic") || n.endsWith(".partial")),
    [],
    `leftovers in ${dir}: ${names.join(", ")}`,
  );
}

/** An ext filesystem's size in bytes, from its superblock at `offset` in a raw file. */
async function extSize(raw: string, offset: number): Promise<number> {
  const h = await open(raw, "r");
  const sb = Buffer.alloc(1024);
  await h.read(sb, 0, 1024, offset + 1024).finally(() => h.close());
  assert.equal(sb.readUInt16LE(56), 0xef53);
  const blocks = sb.readUInt32LE(4) + sb.readUInt32LE(0x150) * 2 ** 32;
  return blocks * (1024 << sb.readUInt32LE(24));
}

test("bootable: a partitioned guest without boot code boots on virtio and SATA; a second run copies it", async (t) => {
  const guest = await bootableDebianGuest();
  const s = await guestScratch(t);
  const dir = s.dir;
  const before = await sha256File(guest.raw);
  const out = join(dir, "bootable.qcow2");

  const r = await bootable(s, ["-O", "qcow2", guest.raw, out]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const report = doneOf(r.stdout, "bootable") as unknown as BootableReport;
  assert.equal(report.layout?.mode, "kept");
  assert.equal(report.layout?.table, "gpt");
  assert.equal(report.loader?.coreLba, 34);
  assert.equal(report.kernel?.initramfs?.startsWith("/boot/initrd.img-"), true);
  assert.deepEqual(
    report.changes.map((c) => [c.action, c.path]),
    [
      ["backup", "/boot/grub/grub.cfg"],
      ["copy", "/boot/grub/i386-pc"],
      ["create", "/boot/grub/grub.cfg"],
    ],
  );
  assert.equal(await sha256File(guest.raw), before, "the input is never modified");
  assert.equal((await qemuInfo(out)).format, "qcow2");
  await assertNothingLeft(dir);

  // The table read back: the root partition as it was, a BIOS boot partition added in the gap before it.
  const { source } = await openImage(out);
  const table = await readPartitionTable(source, out).finally(() => source.close());
  assert.deepEqual(
    table?.partitions.map((p) => [p.number, p.offset / 512, p.role]),
    [
      [1, 2048, "filesystem"],
      [2, 34, "bios-boot"],
    ],
  );

  const virtio = await bootToLogin(out, { format: "qcow2", bus: "virtio", signal: t.signal });
  t.diagnostic(`virtio: login prompt after ${virtio.seconds.toFixed(1)} s`);
  assert.match(virtio.serial, /GNU GRUB|Booting/);
  const sata = await bootToLogin(out, { format: "qcow2", bus: "sata", signal: t.signal });
  t.diagnostic(`SATA: login prompt after ${sata.seconds.toFixed(1)} s`);

  // A disk that boots is copied unchanged, and the report says why.
  const again = join(dir, "again.raw");
  const second = await bootable(s, ["-O", "raw", out, again]);
  assert.equal(second.code, 0, second.stderr + second.stdout);
  const secondReport = doneOf(second.stdout, "bootable") as unknown as BootableReport;
  assert.equal(secondReport.alreadyBootable?.loader, "grub");
  assert.equal(secondReport.alreadyBootable?.config, "/boot/grub/grub.cfg");
  assert.equal(secondReport.layout, undefined);
  assert.equal((await qemuCompare(out, again)).code, 0, "copied unchanged");
  await assertNothingLeft(dir);
});

test("bootable: a bare filesystem gets an MBR, is grown to --size and boots", async (t) => {
  const guest = await bootableDebianGuest();
  const s = await guestScratch(t);
  const dir = s.dir;
  const bare = join(dir, "root.ext4");
  await bareRootOf(guest.raw, bare);
  const before = await sha256File(bare);
  const out = join(dir, "bootable.raw");

  const plan = await bootable(s, ["--dry-run", "--table", "gpt", bare]);
  assert.equal(plan.code, 0, plan.stderr);
  const planned = doneOf(plan.stdout, "bootable") as unknown as BootableReport;
  assert.deepEqual([planned.dryRun, planned.layout?.mode, planned.layout?.table], [true, "new", "gpt"]);
  assert.deepEqual(await filesIn(dir), ["root.ext4"], "a dry run writes nothing");

  const reportFile = join(dir, "report.json");
  const r = await bootable(s, ["--size", "1G", "--report", reportFile, bare, out]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const report = JSON.parse(await readFile(reportFile, "utf8")) as BootableReport;
  const { event: _event, command: _command, ...done } = doneOf(r.stdout, "bootable");
  assert.deepEqual(report, done, "--report holds the result the done event carries");
  assert.equal(report.layout?.table, "mbr");
  assert.deepEqual(report.filesystems?.grown, [{ partition: 1, type: "ext4", from: 512 * MiB, to: 1023 * MiB }]);
  assert.equal(await sha256File(bare), before);

  const dump = await runOk("sfdisk", ["--dump", out]);
  assert.match(dump, /^label: dos$/m);
  assert.match(dump, /1 : start=\s*2048, size=\s*2095104, type=83, bootable$/m);
  assert.equal(await extSize(out, MiB), 1023 * MiB, "the filesystem fills its partition");
  const fsck = await run("sh", [
    "-c",
    `dd if='${out}' bs=1M skip=1 status=none of='${dir}/p1' && e2fsck -fn '${dir}/p1'`,
  ]);
  assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  await rm(join(dir, "p1"));
  await rm(reportFile);
  await assertNothingLeft(dir);

  const boot = await bootToLogin(out, { signal: t.signal });
  t.diagnostic(`bare filesystem on MBR: login prompt after ${boot.seconds.toFixed(1)} s`);
});

test("bootable: an MBR disk with no room for GRUB's core before its partition gets extlinux and boots", async (t) => {
  const guest = await bootableDebianGuest();
  const s = await guestScratch(t);
  const dir = s.dir;
  const bare = join(dir, "root.ext4");
  await bareRootOf(guest.raw, bare);
  // A partition at sector 32: 31 sectors before it, where GRUB's core (55 sectors for ext4) cannot go.
  const disk = join(dir, "dos32.raw");
  await writeFile(join(dir, "table"), "label: dos\nstart=32, type=83\n");
  await runOk("sh", [
    "-c",
    `truncate -s ${512 * MiB + 32 * 512} '${disk}' && sfdisk -q '${disk}' < '${dir}/table' && ` +
      `dd if='${bare}' of='${disk}' bs=512 seek=32 conv=notrunc,sparse status=none`,
  ]);
  await rm(bare);
  await rm(join(dir, "table"));
  const out = join(dir, "extlinux.qcow2");
  const r = await bootable(s, ["-O", "qcow2", disk, out]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const report = doneOf(r.stdout, "bootable") as unknown as BootableReport;
  assert.deepEqual(report.loader, { name: "extlinux", config: "/boot/extlinux/extlinux.conf" });
  await assertNothingLeft(dir);

  const boot = await bootToLogin(out, { format: "qcow2", signal: t.signal });
  t.diagnostic(`extlinux on an MBR at sector 32: login prompt after ${boot.seconds.toFixed(1)} s`);
  const again = await bootable(s, ["--dry-run", out]);
  assert.equal((doneOf(again.stdout, "bootable") as unknown as BootableReport).alreadyBootable?.loader, "syslinux");
});

test("bootable: a filesystem that does not fit --size is a clear error; nothing appears", async (t) => {
  const guest = await bootableDebianGuest();
  const s = await guestScratch(t);
  const dir = s.dir;
  const bare = join(dir, "root.ext4");
  await bareRootOf(guest.raw, bare);
  const out = join(dir, "small.qcow2");
  const r = await bootable(s, ["-O", "qcow2", "--size", "256M", bare, out]);
  assert.equal(r.code, 2);
  const error = errorOf(r.stdout);
  assert.equal(error.code, "EUSAGE");
  assert.match(error.message, /its filesystem needs a disk of at least 513 MiB .*--size 256 MiB/);
  assert.deepEqual(await filesIn(dir), ["root.ext4"]);
});

test("bootable: a guest whose /boot/grub is a link out of the guest is refused; the host is untouched", async (t) => {
  const guest = await bootableDebianGuest();
  const s = await guestScratch(t);
  const dir = s.dir;
  const bare = join(dir, "hostile.ext4");
  await bareRootOf(guest.raw, bare);
  // Made with debugfs on the image itself: nothing is mounted, no guest path is followed on the host.
  const edits = ["rm /boot/grub/grub.cfg", "rmdir /boot/grub", `symlink /boot/grub ${HOST_CANARY_DIR}`].join("\n");
  await writeFile(join(dir, "edits"), edits + "\n");
  await runOk("debugfs", ["-w", "-f", join(dir, "edits"), bare]);
  await mkdir(HOST_CANARY_DIR, { recursive: true });
  const canary = join(HOST_CANARY_DIR, "grub.cfg");
  await writeFile(canary, "the host's own file\n");
  const before = (await readdir(HOST_CANARY_DIR)).sort();

  const out = join(dir, "out.raw");
  const r = await bootable(s, [bare, out]);
  assert.equal(r.code, 1, r.stderr);
  const error = errorOf(r.stdout);
  assert.equal(error.code, "ENOTBOOTABLE");
  assert.match(error.message, /\/boot\/grub is a symbolic link \(to \/var\/tmp\/chromogenic-canary\)/);
  assert.equal(await readFile(canary, "utf8"), "the host's own file\n");
  assert.deepEqual((await readdir(HOST_CANARY_DIR)).sort(), before);
  await rm(join(dir, "edits"));
  assert.deepEqual(await filesIn(dir), ["hostile.ext4"], "nothing under the output's name");
  await assertNothingLeft(dir);
  // The dry run says the same before anything is copied.
  const dry = await bootable(s, ["--dry-run", bare]);
  assert.equal(errorOf(dry.stdout).code, "ENOTBOOTABLE");
});

test("bootable: SIGTERM with the new disk mounted, and kill -9 + guest cleanup: nothing is left", async (t) => {
  const guest = await bootableDebianGuest();
  const s = await guestScratch(t);
  const bare = join(s.dir, "root.ext4");
  await bareRootOf(guest.raw, bare);
  const before = await sha256File(bare);
  const out = join(s.dir, "out.qcow2");
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    let run: Interrupted | null = null;
    for (let attempt = 0; attempt < 5 && !run; attempt++) {
      run = await interruptWhen(s.dir, s.env, ["bootable", "-O", "qcow2", bare, out], signal, whileMounted(s.dir));
      if (!run) await rm(out, { force: true }); // it finished first: try again
    }
    assert.ok(run, `${signal}: the run was never caught with the disk mounted`);
    t.diagnostic(`${signal}: caught holding ${run.heldAtStop} mounts/loop devices`);
    if (signal === "SIGKILL") {
      const cleanup = await runCli(["guest", "cleanup"], s.env);
      assert.equal(cleanup.code, 0, cleanup.stderr);
    } else assert.equal(run.code, 130, run.stderr);
    await assertNothingLeft(s.dir);
    assert.deepEqual(await filesIn(s.dir), ["root.ext4"], `${signal}: stray files`);
  }
  assert.equal(await sha256File(bare), before);
});
