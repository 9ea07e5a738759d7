/**
 * The bootable step of the job commands, through the CLI on the local store (no cloud needed), on the Xen
 * guests of test/helpers/xen-guests.ts (Debian 12 made as Eucalyptus and old AWS images are):
 * - `export --bootable --format ova --target virtualbox` of a bare Xen root with its kernel outside: the OVA's
 *   disk, read back by chromogenic and by qemu-img from the extracted VMDK, boots to its login prompt on SATA
 *   (VirtualBox's controller) under qemu;
 * - `migrate` of a pygrub disk its store marks `hypervisor_type=xen`: made bootable without being asked, the
 *   Xen marks not carried over, the new image boots on virtio; `--no-bootable` copies the same image as it is;
 * - `migrate` of a bare root whose store names its kernel and ramdisk (kernel_id/ramdisk_id, an EMI's EKI/ERI):
 *   they are fetched from the store and installed in the guest, which boots on virtio without them;
 * - `export --bootable` of a disk that already boots: delivered unchanged, and the result says so;
 * - a guest the step cannot make boot: the job fails and leaves no file, mount or loop device behind;
 * - Ctrl-C while the guest is mounted: nothing held or left, and `resume` finishes the job.
 * Needs root (loop devices, mounts) and qemu-system-x86.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { JobResult } from "../../src/workflows/image-job.js";
import type { JobState } from "../../src/workflows/job-state.js";
import { bootToLogin } from "../helpers/boot-in-qemu.js";
import { guestScratch, leftovers, type GuestScratch } from "../helpers/clean-proof.js";
import { doneOf, eventLines } from "../helpers/event-lines.js";
import { extractAll } from "../helpers/ova-tools.js";
import { qemuCheck, qemuCompare, runCli, runOk, sha256File } from "../helpers/tools.js";
import { interruptWhen, whileMounted } from "../helpers/interrupt-run.js";
import { XEN_GUEST_HOSTNAME, xenBareExt4Guest, xenOnlyInitramfsGuest, xenPygrubGuest } from "../helpers/xen-guests.js";

const LOGIN = new RegExp(`${XEN_GUEST_HOSTNAME} login:`);

type Done = JobResult & { event: "done" };

/** `image upload` of `disk` into the local store at `store`: the new image's id. */
async function upload(
  s: GuestScratch,
  store: string,
  disk: string,
  name: string,
  properties: string[] = [],
  format?: string,
) {
  const args = [...properties.flatMap((p) => ["--property", p]), ...(format ? ["--format", format] : [])];
  const r = await runCli(["image", "upload", "--json", "--cloud", `local:${store}`, ...args, disk, name], s.env);
  assert.equal(r.code, 0, r.stderr);
  return (doneOf(r.stdout, "image upload") as unknown as { id: string }).id;
}

/** `export --json --cloud local:STORE --image IMAGE … OUT`. */
function exportFromStore(s: GuestScratch, store: string, image: string, out: string, args: string[]) {
  return runCli(["export", "--json", "--cloud", `local:${store}`, "--image", image, ...args, out], s.env);
}

/** `migrate --json` of `id` from the local store `from` to `to` as qcow2, which must succeed. */
async function migrateToQcow2(s: GuestScratch, from: string, to: string, id: string) {
  const r = await runCli(
    ["migrate", "--json", "--from", `local:${from}`, "--to", `local:${to}`, "--image", id, "--format", "qcow2"],
    s.env,
  );
  assert.equal(r.code, 0, r.stderr);
  return { r, done: doneOf(r.stdout, "migrate") as unknown as Done };
}

/** The local store's record of an image (`<id>.json` beside `<id>.img`). */
async function storeRecord(store: string, id: string): Promise<{ properties: Record<string, string> }> {
  return JSON.parse(await readFile(join(store, `${id}.json`), "utf8"));
}

/** A finished job leaves its state and nothing else: no temporary file named, none in its folder. */
async function assertJobClean(s: GuestScratch, jobId: string): Promise<JobState> {
  const folder = join(s.dir, "state", "jobs", jobId);
  const state = JSON.parse(await readFile(join(folder, "state.json"), "utf8")) as JobState;
  assert.deepEqual(state.files, {}, "temporary files still named in the state");
  assert.deepEqual(await readdir(folder), ["state.json"], `${folder} keeps temporary files`);
  assert.deepEqual(await leftovers(s.dir), [], "mounts or loop devices left");
  return state;
}

test("export --bootable as a VirtualBox OVA: a Xen root with its kernel outside boots from the OVA's disk on SATA", async (t) => {
  const guest = await xenBareExt4Guest();
  const s = await guestScratch(t);
  const store = join(s.dir, "store");
  const id = await upload(s, store, guest.disk, "eucalyptus-root");
  const stored = await sha256File(join(store, `${id}.img`));
  const ova = join(s.dir, "xen.ova");
  const r = await exportFromStore(s, store, "eucalyptus-root", ova, [
    "--format",
    "ova",
    "--target",
    "virtualbox",
    "--bootable",
    "--kernel",
    guest.kernel!,
    "--ramdisk",
    guest.initrd!,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const done = doneOf(r.stdout, "export") as unknown as Done;
  assert.equal(done.plan.bootable, true);
  assert.equal(done.plan.sourceAccess, "local-file", "the local store's file is the step's input, not copied");
  assert.equal(done.bootable?.alreadyBootable, undefined);
  assert.equal(done.bootable?.loader, "grub");
  assert.equal(done.bootable?.xenToKvm?.xenGuest, true, "detected as a Xen guest (fstab on /dev/xvda1)");
  assert.ok((done.bootable?.xenToKvm?.changes ?? 0) > 0);
  // The boot layer's phases reach the job's events, each naming the job.
  const phases = eventLines(r.stdout).filter((e) => e.event === "phase" && e.state === "start");
  for (const phase of ["copy", "attach", "boot", "commit", "convert", "verify"])
    assert.ok(
      phases.some((e) => e.event === "phase" && e.phase === phase && e.job === done.job),
      `phase ${phase} in the job's events`,
    );
  assert.equal(await sha256File(join(store, `${id}.img`)), stored, "the stored image was changed");
  await assertJobClean(s, done.job);

  // The OVA converted back to a disk, by chromogenic and (from the extracted VMDK) by qemu-img: the same disk.
  const back = join(s.dir, "back.qcow2");
  const c = await runCli(["convert", "-O", "qcow2", ova, back], s.env);
  assert.equal(c.code, 0, c.stderr);
  const members = join(s.dir, "ova");
  await runOk("mkdir", [members]);
  await extractAll(ova, members);
  const vmdk = (await readdir(members)).find((n) => n.endsWith(".vmdk"));
  assert.ok(vmdk, "the OVA holds a VMDK");
  const byQemu = join(s.dir, "back-qemu.raw");
  await runOk("qemu-img", ["convert", "-O", "raw", join(members, vmdk), byQemu]);
  assert.equal((await qemuCompare(back, byQemu)).code, 0, "chromogenic and qemu-img read the OVA's disk alike");
  const boot = await bootToLogin(back, { format: "qcow2", bus: "sata", signal: t.signal });
  assert.match(boot.serial, LOGIN);
});

test("migrate from a store that marks the image as Xen: made bootable unasked, boots; one that boots goes unchanged", async (t) => {
  const guest = await xenPygrubGuest();
  const s = await guestScratch(t);
  const from = join(s.dir, "eucalyptus");
  const to = join(s.dir, "openstack");
  const id = await upload(s, from, guest.disk, "xen-pygrub", [
    "hypervisor_type=xen",
    "vm_mode=xen",
    "os_distro=debian",
  ]);
  const { done } = await migrateToQcow2(s, from, to, id);
  assert.equal(done.plan.bootable, true);
  assert.ok(
    done.plan.notes.some((n) => /the source is a Xen guest/.test(n)),
    done.plan.notes.join("; "),
  );
  assert.equal(done.bootable?.xenToKvm?.xenGuest, true);
  const made = done.image!;
  assert.deepEqual((await storeRecord(to, made.id)).properties, {
    os_distro: "debian",
    chromogenic_job: done.job,
  });
  await assertJobClean(s, done.job);
  const boot = await bootToLogin(join(to, `${made.id}.img`), { format: "qcow2", bus: "virtio", signal: t.signal });
  assert.match(boot.serial, LOGIN);

  // --no-bootable: the same image copied as it is (in its own format, a passthrough: the very bytes).
  const asIs = await runCli(
    [
      "migrate",
      "--json",
      "--no-bootable",
      "--from",
      `local:${from}`,
      "--to",
      `local:${to}`,
      "--image",
      id,
      "--format",
      "raw",
    ],
    s.env,
  );
  assert.equal(asIs.code, 0, asIs.stderr);
  const copied = doneOf(asIs.stdout, "migrate") as unknown as Done;
  assert.deepEqual([copied.plan.mode, copied.plan.bootable, copied.bootable], ["passthrough", undefined, undefined]);
  assert.equal(await sha256File(join(to, `${copied.image!.id}.img`)), await sha256File(join(from, `${id}.img`)));
  assert.equal((await storeRecord(to, copied.image!.id)).properties.hypervisor_type, "xen");

  // The image made bootable above already boots: export --bootable delivers it unchanged and says so.
  const out = join(s.dir, "again.raw");
  const e = await exportFromStore(s, to, made.id, out, ["--format", "raw", "--bootable"]);
  assert.equal(e.code, 0, e.stderr);
  const exported = doneOf(e.stdout, "export") as unknown as Done;
  const boots = exported.bootable?.alreadyBootable;
  assert.equal(boots?.loader, "grub");
  assert.match(boots?.config ?? "", /\/boot\/grub\/grub\.cfg$/);
  assert.ok(boots?.kernel.endsWith(`vmlinuz-${guest.kernelVersion}`), boots?.kernel);
  assert.equal(exported.bootable?.changes, 0);
  assert.equal(exported.bootable?.xenToKvm, undefined, "nothing converted");
  assert.equal((await qemuCompare(join(to, `${made.id}.img`), out)).code, 0, "the disk was changed");
  await assertJobClean(s, exported.job);
});

test("migrate of an AMI-style root whose store keeps its kernel and ramdisk: they become the disk's own, it boots", async (t) => {
  const guest = await xenBareExt4Guest();
  const s = await guestScratch(t);
  const from = join(s.dir, "eucalyptus");
  const to = join(s.dir, "openstack");
  const eki = await upload(s, from, guest.kernel!, "eki-vmlinuz", [], "raw");
  const eri = await upload(s, from, guest.initrd!, "eri-initrd", [], "raw");
  const id = await upload(s, from, guest.disk, "emi-root", [`kernel_id=${eki}`, `ramdisk_id=${eri}`, "vm_mode=xen"]);
  const { r, done } = await migrateToQcow2(s, from, to, id);
  assert.equal(done.plan.bootable, true);
  assert.equal(done.bootable?.xenToKvm?.xenGuest, true);
  assert.equal(done.bootable?.loader, "grub");
  const messages = eventLines(r.stdout).filter((e) => e.event === "message");
  for (const [role, eid] of [
    ["kernel", eki],
    ["ramdisk", eri],
  ])
    assert.ok(
      messages.some((m) => m.event === "message" && m.text.includes(`source's ${role} ${eid}`)),
      `the ${role} ${eid} fetched from the source store`,
    );
  const made = done.image!;
  const properties = (await storeRecord(to, made.id)).properties;
  assert.equal(properties.kernel_id, undefined, "the new image still names an external kernel");
  assert.equal(properties.ramdisk_id, undefined, "the new image still names an external ramdisk");
  await assertJobClean(s, done.job);
  const boot = await bootToLogin(join(to, `${made.id}.img`), { format: "qcow2", bus: "virtio", signal: t.signal });
  assert.match(boot.serial, LOGIN);
});

test("a guest the step cannot make boot: the job fails, and leaves no output, temporary file, mount or loop device", async (t) => {
  // Its only ramdisk holds the Xen frontends alone and the guest has no kernel configuration to rebuild it with.
  const guest = await xenOnlyInitramfsGuest();
  const s = await guestScratch(t);
  const store = join(s.dir, "store");
  await upload(s, store, guest.disk, "xen-only");
  const out = join(s.dir, "refused.vdi");
  const r = await exportFromStore(s, store, "xen-only", out, [
    "--format",
    "vdi",
    "--kernel",
    guest.kernel!,
    "--ramdisk",
    guest.initrd!,
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot make this guest boot: .*give a ramdisk with virtio_blk and virtio_pci/);
  const jobs = await readdir(join(s.dir, "state", "jobs"));
  assert.equal(jobs.length, 1);
  const state = await assertJobClean(s, jobs[0]!);
  assert.equal(state.status, "failed");
  assert.deepEqual(
    (await readdir(s.dir)).filter((n) => n !== "state" && n !== "store"),
    [],
    "no output or temporary output",
  );
});

test("Ctrl-C while the disk is being made bootable: nothing held or left, and `resume` makes it", async (t) => {
  const guest = await xenBareExt4Guest();
  const s = await guestScratch(t);
  const store = join(s.dir, "store");
  await upload(s, store, guest.disk, "eucalyptus-root");
  const out = join(s.dir, "resumed.qcow2");
  const args = ["--format", "qcow2", "--kernel", guest.kernel!, "--ramdisk", guest.initrd!];
  const stopped = await interruptWhen(
    s.dir,
    s.env,
    ["export", "--cloud", `local:${store}`, "--image", "eucalyptus-root", ...args, out],
    "SIGINT",
    whileMounted(s.dir),
  );
  assert.ok(stopped, "the run ended before the guest was mounted");
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.ok(stopped.heldAtStop > 0, "caught while the guest was mounted");
  assert.deepEqual(await leftovers(s.dir), [], "mounts or loop devices left");
  const [jobId, ...others] = await readdir(join(s.dir, "state", "jobs"));
  assert.deepEqual(others, []);
  const folder = join(s.dir, "state", "jobs", jobId!);
  assert.deepEqual(await readdir(folder), ["state.json"], "the working disk and temporary output are gone");
  assert.deepEqual(await readdir(s.dir).then((n) => n.filter((f) => f.startsWith("resumed"))), []);

  const r = await runCli(["resume", "--json", jobId!], s.env);
  assert.equal(r.code, 0, r.stderr);
  const done = doneOf(r.stdout, "resume") as unknown as Done;
  assert.equal(done.bootable?.xenToKvm?.xenGuest, true);
  assert.equal((await qemuCheck(out)).code, 0);
  await assertJobClean(s, jobId!);
});
