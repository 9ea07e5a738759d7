/**
 * Logical volumes reached without device-mapper (src/guest/attach/linear-volumes.ts), on any host: the cached
 * LVM Xen guest's root volume as a loop device over its extents holds the guest's ext4 (blkid reads its UUID),
 * and a volume in two segments is refused with the reason. Needs root (loop devices) and lvm2.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { attachLoop } from "../../../src/guest/attach/loop-device.js";
import { linearVolumesAsLoops } from "../../../src/guest/attach/linear-volumes.js";
import { lvmConfig } from "../../../src/guest/attach/lvm-config.js";
import { GuestJournal } from "../../../src/guest/journal/guest-journal.js";
import { ROOT_UUID } from "../../helpers/debian-guest.js";
import { runOk } from "../../helpers/tools.js";
import { XEN_LVM_NAMES, xenLvmGuest } from "../../helpers/xen-guests.js";

const MiB = 2 ** 20;

/** A journal in a scratch state folder of its own, undone (loop devices detached) after the test. */
async function scratchJournal(t: test.TestContext): Promise<{ dir: string; journal: GuestJournal }> {
  const dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-linear-lv-"));
  const previous = process.env.CHROMOGENIC_STATE_DIR;
  process.env.CHROMOGENIC_STATE_DIR = join(dir, "state");
  const journal = await GuestJournal.create();
  t.after(async () => {
    await journal.undoAll();
    if (previous === undefined) delete process.env.CHROMOGENIC_STATE_DIR;
    else process.env.CHROMOGENIC_STATE_DIR = previous;
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, journal };
}

test("a linear root volume as a loop device over its extents holds the guest's filesystem", async (t) => {
  const guest = await xenLvmGuest();
  const { journal } = await scratchJournal(t);
  const { size } = await stat(guest.disk);
  const pv = await attachLoop(journal, guest.disk, MiB, size - MiB, true);
  const volumes = await linearVolumesAsLoops(journal, lvmConfig([pv]), XEN_LVM_NAMES.volumeGroup, true);
  assert.ok(Array.isArray(volumes), String(volumes));
  assert.deepEqual(
    volumes.map((v) => v.name),
    [XEN_LVM_NAMES.logicalVolume],
  );
  const probe = await runOk("blkid", ["-p", "-o", "export", volumes[0]!.device]);
  assert.match(probe, /^TYPE=ext4$/m);
  assert.match(probe, new RegExp(`^UUID=${ROOT_UUID}$`, "m"));
});

test("a volume in two segments is refused with the reason; nothing is attached for it", async (t) => {
  const { dir, journal } = await scratchJournal(t);
  const disk = join(dir, "pv.raw");
  await writeFile(disk, "");
  await truncate(disk, 64 * MiB);
  const pv = await attachLoop(journal, disk, 0, 64 * MiB, false);
  const config = lvmConfig([pv]);
  const vg = `chromoseg${process.pid}`;
  // Made inactive and unzeroed (-an -Zn), told not to use device-mapper (--driverloaded n): none is needed.
  // Extending `a` after `b` was placed behind it splits `a` in two runs of extents.
  await runOk("pvcreate", ["--config", config, "-q", pv]);
  await runOk("vgcreate", ["--config", config, "-q", vg, pv]);
  for (const [name, size] of [
    ["a", "8m"],
    ["b", "4m"],
  ])
    await runOk("lvcreate", [
      "--config",
      config,
      "--driverloaded",
      "n",
      "-q",
      "-an",
      "-Zn",
      "-L",
      size!,
      "-n",
      name!,
      vg,
    ]);
  await runOk("lvextend", ["--config", config, "--driverloaded", "n", "-q", "-L", "16m", `${vg}/a`]);
  const refused = await linearVolumesAsLoops(journal, config, vg, true);
  assert.equal(refused, `volume ${vg}/a is 2 segment(s) of linear, linear, not one linear run of extents`);
  assert.equal((await runOk("losetup", ["--associated", pv])).trim(), "", "no loop device over the PV");
});
