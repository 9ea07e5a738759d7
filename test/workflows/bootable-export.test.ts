/**
 * `export --bootable` of a local disk, through the CLI: a pygrub Xen disk (test/helpers/xen-guests.ts), detected
 * as Xen without being told, packed as a VirtualBox OVA whose disk — converted back by chromogenic — boots to
 * its login prompt on IDE under qemu; the input is never changed and the private working folder is gone. A disk
 * that already boots is packed as it is. Needs root (loop devices, mounts) and qemu-system-x86.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { BootableOvaResult } from "../../src/workflows/bootable-export.js";
import { bootToLogin } from "../helpers/boot-in-qemu.js";
import { guestScratch, leftovers } from "../helpers/clean-proof.js";
import { doneOf } from "../helpers/event-lines.js";
import { qemuCompare, runCli, sha256File } from "../helpers/tools.js";
import { XEN_GUEST_HOSTNAME, xenPygrubGuest } from "../helpers/xen-guests.js";

test("export --bootable of a local pygrub disk: the VirtualBox OVA's disk boots on IDE; once bootable, packed as it is", async (t) => {
  const guest = await xenPygrubGuest();
  const s = await guestScratch(t);
  const before = await sha256File(guest.disk);
  const ova = join(s.dir, "xen.ova");
  const r = await runCli(
    ["export", "--json", "--target", "virtualbox", "--controller", "ide", "--bootable", guest.disk, ova],
    s.env,
  );
  assert.equal(r.code, 0, r.stderr);
  const done = doneOf(r.stdout, "export") as unknown as BootableOvaResult;
  assert.equal(done.bootable.xenToKvm?.xenGuest, true, "detected as a Xen guest");
  assert.equal(done.bootable.loader, "grub");
  assert.equal(await sha256File(guest.disk), before, "the input was changed");
  assert.deepEqual(
    (await readdir(s.dir)).filter((n) => n !== "state"),
    ["xen.ova"],
    "the working folder is gone",
  );
  assert.deepEqual(await leftovers(s.dir), [], "mounts or loop devices left");
  const back = join(s.dir, "back.raw");
  const c = await runCli(["convert", "-O", "raw", ova, back], s.env);
  assert.equal(c.code, 0, c.stderr);
  const boot = await bootToLogin(back, { format: "raw", bus: "ide", signal: t.signal });
  assert.match(boot.serial, new RegExp(`${XEN_GUEST_HOSTNAME} login:`));

  // That disk boots already: a second export packs it unchanged and says so.
  const again = join(s.dir, "again.ova");
  const a = await runCli(["export", "--json", "--target", "virtualbox", "--bootable", back, again], s.env);
  assert.equal(a.code, 0, a.stderr);
  const repacked = doneOf(a.stdout, "export") as unknown as BootableOvaResult;
  assert.equal(repacked.bootable.alreadyBootable?.loader, "grub");
  const unpacked = join(s.dir, "again.raw");
  assert.equal((await runCli(["convert", "-O", "raw", again, unpacked], s.env)).code, 0);
  assert.equal((await qemuCompare(back, unpacked)).code, 0, "the disk was changed");
});
