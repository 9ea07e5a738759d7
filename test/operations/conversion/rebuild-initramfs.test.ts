import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGuest } from "../../../src/guest/guest-session.js";
import { convertXenGuest } from "../../../src/operations/conversion/convert-xen-guest.js";
import type { InitramfsOutcome } from "../../../src/operations/conversion/conversion-report.js";
import {
  maskCredentials,
  rebuildConvertedInitramfs,
  splitTimings,
} from "../../../src/operations/conversion/rebuild-initramfs.js";
import { sha256File } from "../../helpers/clean-proof.js";
import { HOST_CANARY_DIR, ROOT_UUID } from "../../helpers/debian-guest.js";
import { scratch } from "../../helpers/tools.js";
import { libguestfsEnv } from "../../helpers/virt-sysprep.js";
import { xenOnlyInitramfsGuest } from "../../helpers/xen-only-initramfs-guest.js";
import {
  DEBIAN_KERNEL,
  debianInitramfs,
  debianVersionString,
  debianXenPlants,
  kernelImage,
  plantedRoot,
  XEN_ONLY_INITRAMFS_FILES,
} from "./conversion-trees.js";

const EDITS = ["initramfs-virtio", "initramfs-modules"];

/** Converts the guest on a raw disk in place (mounted on the host, then let go of) with the initramfs edits. */
async function convertDisk(disk: string, prepare?: (root: string) => Promise<void>) {
  const session = await openGuest(disk, { readOnly: false, inPlace: true, format: "raw" });
  try {
    await prepare?.(session.mounted.root);
    return await convertXenGuest(session.mounted.root, { edits: EDITS });
  } finally {
    await session.close();
  }
}

/** Reads guest files from a raw disk, mounted read-only. */
async function readGuest(disk: string, paths: readonly string[]): Promise<(string | null)[]> {
  const session = await openGuest(disk, { readOnly: true, format: "raw" });
  try {
    return await Promise.all(paths.map((p) => readFile(join(session.mounted.root, p), "latin1").catch(() => null)));
  } finally {
    await session.close();
  }
}

/** A copy of the Xen-only-initramfs guest's disk in a scratch folder. */
async function guestCopy(t: Parameters<typeof scratch>[0], name: string): Promise<string> {
  const copy = join(await scratch(t, "chromo-rebuild-"), name);
  await copyFile(await xenOnlyInitramfsGuest(), copy);
  return copy;
}

/**
 * Boots the guest's kernel and (rebuilt) initramfs, copied out of the disk, with the disk on virtio under
 * `qemu -accel tcg` (snapshot=on: the disk is not written), until the serial console shows a login prompt.
 * A stand-in for the boot harness's bootToLogin(disk, { direct }) until that branch is merged.
 */
async function bootOnVirtio(t: Parameters<typeof scratch>[0], disk: string, version: string, initrd: string) {
  const dir = await scratch(t, "chromo-boot-");
  const session = await openGuest(disk, { readOnly: true, format: "raw" });
  try {
    await copyFile(join(session.mounted.root, `boot/vmlinuz-${version}`), join(dir, "vmlinuz"));
    await copyFile(join(session.mounted.root, initrd), join(dir, "initrd"));
  } finally {
    await session.close();
  }
  const args = ["-accel", "tcg", "-m", "1024", "-display", "none", "-nic", "none", "-no-reboot", "-serial", "stdio"];
  args.push("-kernel", join(dir, "vmlinuz"), "-initrd", join(dir, "initrd"));
  args.push("-append", `root=UUID=${ROOT_UUID} ro console=ttyS0 panic=-1`);
  args.push("-drive", `file=${disk},format=raw,if=virtio,snapshot=on`);
  const started = Date.now();
  const qemu = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
  let console_ = "";
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no login prompt in 300 s:\n${console_.slice(-3000)}`)), 300_000);
      qemu.stdout.on("data", (d: Buffer) => {
        console_ = (console_ + d.toString("latin1")).slice(-1_000_000);
        if (/\n\S+ login: /.test(console_)) resolve();
        if (/Kernel panic|Dropping to a shell/.test(console_))
          reject(new Error(`boot failed:\n${console_.slice(-3000)}`));
      });
      qemu.once("exit", (code) => reject(new Error(`qemu exited ${code}:\n${console_.slice(-3000)}`)));
      qemu.once("error", reject);
      t.after(() => clearTimeout(timer));
    });
  } finally {
    qemu.kill("SIGKILL");
  }
  return { seconds: (Date.now() - started) / 1000, console: console_ };
}

/** The temporary folders rebuildConvertedInitramfs gives libguestfs, still there. */
async function guestfsLeftovers(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((n) => n.startsWith("chromogenic-guestfs-"));
}

/** The command lines of running processes that mention `text` (read from /proc). */
async function processesNaming(text: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of (await readdir("/proc")).filter((n) => /^\d+$/.test(n))) {
    const args = await readFile(`/proc/${pid}/cmdline`, "latin1").catch(() => "");
    if (args.includes(text)) out.push(`${pid}: ${args.replace(/\0/g, " ")}`);
  }
  return out;
}

test("a dry run says what would run in the appliance and runs nothing", async (t) => {
  const root = await plantedRoot(t, debianXenPlants());
  await writeFile(join(root, `boot/vmlinuz-${DEBIAN_KERNEL}`), kernelImage(debianVersionString(DEBIAN_KERNEL)));
  await writeFile(join(root, `boot/initrd.img-${DEBIAN_KERNEL}`), await debianInitramfs(XEN_ONLY_INITRAMFS_FILES));
  const report = await convertXenGuest(root, { dryRun: true, edits: EDITS });
  const disk = join(root, "..", "disk.raw");
  await writeFile(disk, "not a disk: nothing may open it");
  const planned = await rebuildConvertedInitramfs(disk, report, { format: "raw" });
  const outcome = planned.initramfs as InitramfsOutcome;
  assert.equal(outcome.rebuilt, false);
  assert.equal(outcome.verdict, "must-rebuild");
  assert.equal(
    outcome.wouldRun,
    `virt-customize --format raw -a ${disk} --no-network --run-command 'update-initramfs -u -k ${DEBIAN_KERNEL}'` +
      " --delete /etc/machine-id --delete /var/lib/random-seed --delete /var/lib/urandom/random-seed" +
      " --delete /var/lib/systemd/random-seed",
  );
  assert.equal(await readFile(disk, "utf8"), "not a disk: nothing may open it");
  // A guest that needs no rebuild has nothing planned: the report comes back as it was.
  const none = { ...report, initramfsRebuild: null };
  assert.equal(await rebuildConvertedInitramfs(disk, none, { format: "raw" }), none);
});

test("virt-customize's timestamps split the appliance's start from the tool's run; secrets are masked", () => {
  const output = [
    "[   0.0] Examining the guest ...",
    "[  43.7] Setting a random seed",
    "[  44.6] Running: update-initramfs -u -k 6.1.0-18-amd64",
    "[ 146.7] Finishing off",
  ].join("\n");
  assert.deepEqual(splitTimings(output), { applianceSeconds: 44.6, toolSeconds: 102.1 });
  assert.equal(splitTimings("virt-customize: error: no operating systems were found"), null);
  assert.equal(maskCredentials("ROOT_PASSWORD=hunter2 and api_key: abc"), "ROOT_PASSWORD=*** and api_key: ***");
});

test("Xen-only initramfs, /etc/initramfs-tools linked out of the guest: rebuilt in the appliance, ok after", async (t) => {
  const input = await guestCopy(t, "input.raw");
  const inputHash = await sha256File(input);
  const disk = join(input, "..", "working.raw");
  await copyFile(input, disk);

  // The host's own folder at the path the guest's link names: it must come through untouched.
  const hostDir = join(HOST_CANARY_DIR, "initramfs-tools");
  await mkdir(hostDir, { recursive: true });
  t.after(() => rm(hostDir, { recursive: true, force: true }));
  await writeFile(join(hostDir, "modules"), "host canary: never edited\n");
  const report = await convertDisk(disk, async (root) => {
    // The guest keeps its configuration at that path inside itself, reached through an absolute link.
    await mkdir(join(root, HOST_CANARY_DIR), { recursive: true });
    await rename(join(root, "etc/initramfs-tools"), join(root, hostDir));
    await symlink(hostDir, join(root, "etc/initramfs-tools"));
  });
  assert.equal(report.initramfs?.verdict, "must-rebuild", report.initramfs?.reason);
  assert.equal(report.initramfs?.drivers.virtio_blk, "missing");
  const change = report.changes.find((c) => c.edit === "initramfs-modules");
  assert.equal(change?.path, `${hostDir}/modules`, "the guest's file behind the link, as the guest names it");
  assert.match(change!.detail!, /MODULES=list: the initramfs holds only the modules listed there/);
  assert.equal(report.initramfsRebuild?.tool, "update-initramfs");
  assert.deepEqual(report.initramfsRebuild?.restore.truncate, ["/etc/machine-id"]);

  const env = await libguestfsEnv();
  const rebuilt = await rebuildConvertedInitramfs(disk, report, { format: "raw", env });
  const outcome = rebuilt.initramfs as InitramfsOutcome;
  t.diagnostic(
    `rebuild: ${outcome.seconds} s in all, ${outcome.applianceSeconds} s until the tool ran, ${outcome.toolSeconds} s the tool`,
  );
  assert.equal(outcome.verdict, "ok", outcome.reason);
  assert.equal(outcome.rebuilt, true);
  assert.equal(outcome.tool, "update-initramfs");
  assert.equal(outcome.drivers.virtio_blk, "module");
  assert.equal(outcome.drivers.virtio_pci, "module");
  assert.ok(outcome.seconds! > 0 && outcome.toolSeconds! > 0 && outcome.applianceSeconds! > 0);
  assert.ok(
    outcome.output!.some((l) => l.includes("Running: update-initramfs")),
    outcome.output!.join("\n"),
  );

  assert.equal(await readFile(join(hostDir, "modules"), "utf8"), "host canary: never edited\n");
  assert.equal(await sha256File(input), inputHash, "the input image is unchanged");
  const [machineId, modules] = await readGuest(disk, ["/etc/machine-id", `${hostDir}/modules`]);
  assert.equal(machineId, "", "the machine ID virt-customize wrote is emptied again");
  assert.match(modules!, /^xen-blkfront\next4\n# chromogenic .*\nvirtio_pci\nvirtio_blk\nvirtio_scsi\nvirtio_net\n$/);

  // The proof: the guest boots with its root disk on virtio, through the rebuilt initramfs.
  const boot = await bootOnVirtio(t, disk, report.initramfsRebuild!.version, report.initramfsRebuild!.initramfs);
  t.diagnostic(`booted on virtio to the login prompt in ${boot.seconds} s`);
  assert.match(boot.console, /virtio_blk virtio\d+: \[vda\]/);

  // A second conversion finds the initramfs fine and plans nothing.
  const again = await convertDisk(disk);
  assert.equal(again.initramfs?.verdict, "ok");
  assert.equal(again.initramfsRebuild, null);
  assert.deepEqual(again.changes, []);
});

test("the time limit stops the appliance with a clear error and leaves no process behind", async (t) => {
  const disk = await guestCopy(t, "limited.raw");
  const report = await convertDisk(disk);
  assert.ok(report.initramfsRebuild);
  await assert.rejects(
    rebuildConvertedInitramfs(disk, report, { format: "raw", env: await libguestfsEnv(), timeoutMs: 3000 }),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, "EGUEST");
      assert.match(e.message, /ran past its time limit of 3 s and was stopped/);
      return true;
    },
  );
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await processesNaming(disk), [], "virt-customize and its qemu are gone");
  assert.deepEqual(await guestfsLeftovers(), [], "libguestfs's temporary folders are removed");

  // Cancelling through the signal stops it the same way.
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 2000);
  await assert.rejects(
    rebuildConvertedInitramfs(disk, report, { format: "raw", env: await libguestfsEnv(), signal: controller.signal }),
    (e: Error & { code?: string }) => e.code === "EABORTED",
  );
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await processesNaming(disk), []);
  assert.deepEqual(await guestfsLeftovers(), []);
});

test("a rebuild that leaves the initramfs without virtio fails, naming the drivers still missing", async (t) => {
  const disk = await guestCopy(t, "unchanged.raw");
  const report = await convertDisk(disk);
  // The guest's tool "runs" but changes nothing, as a tool ignoring its configuration would.
  const ignored = { ...report, initramfsRebuild: { ...report.initramfsRebuild!, command: ["true"] } };
  await assert.rejects(
    rebuildConvertedInitramfs(disk, ignored, { format: "raw", env: await libguestfsEnv() }),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, "EGUEST");
      assert.match(
        e.message,
        /^update-initramfs ran in the libguestfs appliance, but the initramfs \/boot\/initrd\.img-\S+ of kernel \S+ has no virtio_blk and virtio_pci, neither as a module nor built in/,
      );
      return true;
    },
  );
});
