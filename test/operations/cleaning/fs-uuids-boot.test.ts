/**
 * fs-uuids on guests that really boot (the cached Debian bookworm guest made bootable by `chromogenic bootable`,
 * booted to a login prompt in qemu): the UUID changes only where everything that names it follows, and the
 * guest boots either way.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { placedCoreImage } from "../../../src/operations/boot/grub-boot-sectors.js";
import { GRUB_I386_PC_DIR } from "../../../src/operations/boot/grub-core-image.js";
import { bootToLogin } from "../../helpers/boot-in-qemu.js";
import { bootableDebianGuest } from "../../helpers/bootable-debian-guest.js";
import { guestScratch } from "../../helpers/clean-proof.js";
import { isRoot } from "../../helpers/guest-images.js";
import { runCli, runOk } from "../../helpers/tools.js";
import { filesystemUuid, inFilesystem } from "./partition-checks.js";

const skip = !(await isRoot()) ? "needs root (loop devices and mounts)" : false;
/** `bootable` keeps the guest's partition (at 1 MiB); GRUB's core goes into the BIOS boot partition it adds at LBA 34. */
const CORE_LBA = 34;

/** A disk `bootable` made from the cached guest: its GRUB core finds the root filesystem by UUID. */
async function bootableDisk(dir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const guest = await bootableDebianGuest();
  const disk = join(dir, "boot.raw");
  const r = await runCli(["bootable", "-O", "raw", guest.raw, disk], env);
  assert.equal(r.code, 0, r.stderr);
  return disk;
}

test(
  "fs-uuids keeps a UUID GRUB's compressed core image names (chromogenic bootable's disk), and the guest boots",
  { skip },
  async (t) => {
    const { dir, env } = await guestScratch(t);
    const disk = await bootableDisk(dir, env);
    const before = await filesystemUuid(disk);
    const r = await runCli(["clean", "-a", disk, "--enable", "fs-uuids"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /UUID \S+ kept so the guest still boots: the BIOS boot code \(GRUB's core image\) names it/);
    assert.equal(await filesystemUuid(disk), before);
    const boot = await bootToLogin(disk, { signal: t.signal });
    t.diagnostic(`login prompt after ${boot.seconds.toFixed(1)} s`);
  },
);

test(
  "fs-uuids with grub-install's usual BIOS core (prefix by partition): new root UUID, grub.cfg and fstab follow, boots",
  { skip },
  async (t) => {
    const { dir, env } = await guestScratch(t);
    const disk = await bootableDisk(dir, env);
    // The core grub-install makes for a plain partition on the boot disk: no UUID, the prefix by partition.
    const scratch = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-core-"));
    t.after(() => rm(scratch, { recursive: true, force: true }));
    await writeFile(join(scratch, "early.cfg"), "set root=(hd0,gpt1)\nset prefix=($root)/boot/grub\n");
    await runOk("grub-mkimage", [
      "--format=i386-pc",
      `--directory=${GRUB_I386_PC_DIR}`,
      `--config=${join(scratch, "early.cfg")}`,
      "--prefix=(hd0,gpt1)/boot/grub",
      `--output=${join(scratch, "core.img")}`,
      ...["biosdisk", "part_gpt", "ext2"],
    ]);
    const core = placedCoreImage(await readFile(join(scratch, "core.img")), CORE_LBA);
    const fh = await open(disk, "r+");
    await fh.write(core, 0, core.length, CORE_LBA * 512).finally(() => fh.close());

    const before = await filesystemUuid(disk);
    const r = await runCli(["clean", "-a", disk, "--enable", "fs-uuids"], env);
    assert.equal(r.code, 0, r.stderr);
    const after = await filesystemUuid(disk);
    assert.notEqual(after, before);
    assert.match(r.stdout, /fs-uuids: edit 2, set-uuid 1/);
    await inFilesystem(disk, dir, async (root) => {
      const fstab = await readFile(join(root, "etc/fstab"), "utf8");
      const grub = await readFile(join(root, "boot/grub/grub.cfg"), "utf8");
      for (const [name, text] of [
        ["fstab", fstab],
        ["grub.cfg", grub],
      ] as const) {
        assert.ok(text.includes(after), `${name} names the new UUID`);
        assert.ok(!text.includes(before), `${name} no longer names the old one`);
      }
    });
    const boot = await bootToLogin(disk, { signal: t.signal });
    t.diagnostic(`login prompt after ${boot.seconds.toFixed(1)} s`);
  },
);
