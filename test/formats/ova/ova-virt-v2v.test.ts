/**
 * A real importer takes our OVAs: Debian's virt-v2v 2.2 imports a `--target vmware` OVA of a Debian guest
 * made by `chromogenic export` and converts the guest to run on KVM, to a local qcow2 disk and libvirt XML.
 *
 * virt-v2v reads the OVF (name, memory, CPUs, controller, NIC), checks the manifest's SHA-256 sums, reads the
 * streamOptimized VMDK in place inside the tar (qemu-nbd at the member's offset), inspects the guest and
 * rewrites it for KVM (virtio modules into the initramfs, which it rebuilds under TCG: most of the run's 3-4
 * minutes). Any warning it prints is held against a list of the ones the guest explains; a new one fails the
 * test, since it may be a hint that our descriptor could be better.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the libvirt XML is walked dynamically in assertions */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { XMLParser } from "fast-xml-parser";
import { openGuest } from "../../../src/guest/guest-session.js";
import { readGuestText } from "../../../src/guest/guest-files.js";
import {
  BOOTABLE_GUEST_HOSTNAME,
  BOOTABLE_GUEST_MARKER,
  bootableDebianGuest,
} from "../../helpers/bootable-debian-guest.js";
import { isRoot } from "../../helpers/guest-images.js";
import { qemuCheck, qemuInfo, runCli, scratch } from "../../helpers/tools.js";
import { requireVirtV2v, runVirtV2v, virtV2vWarnings, type VirtV2vRun } from "../../helpers/virt-v2v.js";

const skip = !(await isRoot()) ? "needs root (mmdebstrap builds the guest; the output is mounted to read it)" : false;

const NAME = "v2v-debian";

/** Warnings virt-v2v gives for this guest whatever the OVA says, each with why it is not the OVA's doing. */
const EXPECTED_WARNINGS: readonly { readonly text: RegExp; readonly why: string }[] = [
  {
    text: /^could not determine a way to update the configuration of Grub2$/,
    why: "Debian has neither grubby nor Perl's Bootloader::Tools, the two ways virt-v2v 2.2 sets a default kernel",
  },
];

/** virt-v2v's whole output, for assertion messages: a failing CI run says why. */
function transcript(run: VirtV2vRun): string {
  return `exit ${run.code} after ${run.seconds.toFixed(0)} s\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@" });
const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

test(
  "virt-v2v -i ova imports a vmware OVA of a Debian guest to a local qcow2 that has the guest's files",
  { skip, timeout: 15 * 60_000 },
  async (t) => {
    await requireVirtV2v();
    const guest = await bootableDebianGuest();
    if (guest.buildSeconds > 0) t.diagnostic(`bootable Debian guest built in ${guest.buildSeconds.toFixed(0)} s`);
    const dir = await scratch(t, "chromo-v2v-");
    const ova = join(dir, `${NAME}.ova`);
    const exported = await runCli(
      ["export", "--format", "ova", "--target", "vmware", "--name", NAME, "--quiet", guest.raw, ova],
      process.env,
    );
    assert.equal(exported.code, 0, exported.stderr);

    // What virt-v2v understood of the descriptor, before any conversion (it only parses the OVF for this).
    const source = await runVirtV2v(["-i", "ova", ova, "--print-source"]);
    assert.equal(source.code, 0, transcript(source));
    assert.match(source.stdout, new RegExp(`source name: ${NAME}\\n`));
    assert.match(source.stdout, /hypervisor type: vmware\n/);
    assert.match(source.stdout, /memory: 2147483648 \(bytes\)\n/);
    assert.match(source.stdout, /nr vCPUs: 2\n/);
    assert.match(source.stdout, /disks:\n\s+0 \[scsi\]\n/);
    assert.match(source.stdout, /NICs:\n\s+Bridge "VM Network" \[vmxnet3\]\n/);

    const out = join(dir, "out");
    await mkdir(out);
    const run = await runVirtV2v(["-i", "ova", ova, "-o", "local", "-os", out, "-of", "qcow2"]);
    t.diagnostic(`virt-v2v -i ova -o local took ${run.seconds.toFixed(1)} s`);
    assert.equal(run.code, 0, `virt-v2v failed: ${transcript(run)}`);
    const warnings = virtV2vWarnings(`${run.stdout}\n${run.stderr}`);
    for (const w of warnings) t.diagnostic(`virt-v2v warning: ${w}`);
    const unexplained = warnings.filter((w) => !EXPECTED_WARNINGS.some((e) => e.text.test(w)));
    assert.deepEqual(unexplained, [], `virt-v2v warned about something new:\n${transcript(run)}`);

    // The disk: where virt-v2v -o local puts it, a consistent qcow2 of the source's size.
    const disk = join(out, `${NAME}-sda`);
    assert.ok((await stat(disk).catch(() => null))?.isFile(), `no output disk ${disk}:\n${transcript(run)}`);
    const check = await qemuCheck(disk);
    assert.equal(check.code, 0, JSON.stringify(check.report));
    const info = await qemuInfo(disk);
    assert.equal(info.format, "qcow2");
    assert.equal(info["virtual-size"], (await stat(guest.raw)).size);

    // The libvirt XML names that disk, and keeps the descriptor's memory and CPUs.
    const domain = (xml.parse(await readFile(join(out, `${NAME}.xml`), "utf8")) as Record<string, any>).domain;
    assert.equal(domain.name, NAME);
    assert.equal(String(domain.vcpu), "2");
    assert.equal(domain.memory["#text"], 2 * 2 ** 20);
    assert.equal(domain.memory["@unit"], "KiB");
    const disks = asList(domain.devices.disk);
    assert.equal(disks.length, 1);
    assert.equal(disks[0].source["@file"], disk);
    assert.equal(disks[0].driver["@type"], "qcow2");
    assert.equal(disks[0].target["@bus"], "virtio");

    // The guest's filesystem came through, and the conversion wrote into it.
    const converted = await openGuest(disk, { readOnly: true, workDir: dir });
    try {
      const root = converted.mounted.root;
      assert.equal(await readGuestText(root, BOOTABLE_GUEST_MARKER.path), BOOTABLE_GUEST_MARKER.content);
      assert.equal(await readGuestText(root, "/etc/hostname"), `${BOOTABLE_GUEST_HOSTNAME}\n`);
      assert.match((await readGuestText(root, "/etc/os-release")) ?? "", /^VERSION_ID="12"$/m);
      assert.match(
        (await readGuestText(root, "/etc/initramfs-tools/modules")) ?? "",
        /added by virt-v2v[\s\S]*^virtio_blk$/m,
        "virt-v2v did not add the virtio modules to the initramfs list",
      );
    } finally {
      await converted.close();
    }
  },
);
