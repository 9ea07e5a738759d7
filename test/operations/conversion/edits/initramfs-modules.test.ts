import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { convertXenGuest } from "../../../../src/operations/conversion/convert-xen-guest.js";
import type { XenConversionReport } from "../../../../src/operations/conversion/conversion-report.js";
import { NOTE_PREFIX } from "../../../../src/operations/conversion/line-changes.js";
import { HOST_CANARY_DIR, type Plant } from "../../../helpers/debian-guest.js";
import { takeManifest, diffManifests, describeDiff } from "../../../helpers/tree-manifest.js";
import {
  debianInitramfs,
  debianVersionString,
  file,
  kernelImage,
  plantedRoot,
  VIRTIO_INITRAMFS_FILES,
  XEN_ONLY_INITRAMFS_FILES,
} from "../conversion-trees.js";

const EDITS = ["initramfs-virtio", "initramfs-modules"];
const NOTE = `${NOTE_PREFIX} the virtio drivers a KVM machine boots from`;
const VIRTIO = ["virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net"];

interface GuestShape {
  readonly release: string;
  /** The initramfs file name in /boot. */
  readonly initramfs: string;
  readonly tool: string | null;
  readonly plants?: readonly Plant[];
  readonly virtio?: boolean;
}

/** A guest with one kernel, its initramfs (Xen drivers only unless `virtio`), its modules folder and its tool. */
async function guest(t: Parameters<typeof plantedRoot>[0], shape: GuestShape): Promise<string> {
  const root = await plantedRoot(t, [
    file(`/lib/modules/${shape.release}/modules.order`, ""),
    // The kernel package's build configuration, which update-initramfs reads.
    file(`/boot/config-${shape.release}`, "CONFIG_RD_GZIP=y\n"),
    ...(shape.tool ? [file(shape.tool, "stub\n", 0o755)] : []),
    ...(shape.plants ?? []),
  ]);
  await mkdir(join(root, "boot"), { recursive: true });
  await writeFile(join(root, `boot/vmlinuz-${shape.release}`), kernelImage(debianVersionString(shape.release)));
  await writeFile(
    join(root, "boot", shape.initramfs),
    await debianInitramfs(shape.virtio ? VIRTIO_INITRAMFS_FILES : XEN_ONLY_INITRAMFS_FILES, "gzip"),
  );
  return root;
}

/** A dry run (which changes nothing and reports what the real run does), the run, and a run changing nothing. */
async function convertTwice(root: string): Promise<XenConversionReport> {
  const before = await takeManifest(root);
  const dry = await convertXenGuest(root, { edits: EDITS, dryRun: true });
  assert.equal(describeDiff(diffManifests(before, await takeManifest(root))), "");
  const real = await convertXenGuest(root, { edits: EDITS });
  assert.deepEqual(dry.changes, real.changes);
  assert.deepEqual(dry.initramfsRebuild, real.initramfsRebuild);
  const again = await convertXenGuest(root, { edits: EDITS });
  assert.deepEqual(again.changes, []);
  assert.deepEqual(again.initramfsRebuild, real.initramfsRebuild, "still to be rebuilt: it has not run yet");
  return real;
}

const DEBIAN = "6.1.0-18-amd64";

test("initramfs-tools with MODULES=list (set in conf.d): the missing virtio drivers are listed", async (t) => {
  const root = await guest(t, {
    release: DEBIAN,
    initramfs: `initrd.img-${DEBIAN}`,
    tool: "/usr/sbin/update-initramfs",
    plants: [
      file("/etc/initramfs-tools/initramfs.conf", "MODULES=most\nBUSYBOX=auto\n"),
      file("/etc/initramfs-tools/conf.d/xen", 'MODULES="list"  # Xen front ends only\n'),
      file("/etc/initramfs-tools/modules", "# modules\nxen-blkfront\nvirtio-pci\n"),
      file("/etc/machine-id", ""),
    ],
  });
  const report = await convertTwice(root);
  assert.equal(report.initramfs?.verdict, "must-rebuild");
  assert.deepEqual(
    report.changes.map((c) => [c.edit, c.action, c.path, c.detail]),
    [
      [
        "initramfs-modules",
        "edit",
        "/etc/initramfs-tools/modules",
        "added 4 lines at the end (MODULES=list: the initramfs holds only the modules listed there, so this list is what matters)",
      ],
    ],
  );
  assert.equal(
    await readFile(join(root, "etc/initramfs-tools/modules"), "latin1"),
    ["# modules", "xen-blkfront", "virtio-pci", NOTE, "virtio_blk", "virtio_scsi", "virtio_net", ""].join("\n"),
  );
  assert.deepEqual(report.initramfsRebuild, {
    tool: "update-initramfs",
    version: DEBIAN,
    initramfs: `/boot/initrd.img-${DEBIAN}`,
    command: ["update-initramfs", "-u", "-k", DEBIAN],
    restore: {
      truncate: ["/etc/machine-id"],
      remove: ["/var/lib/random-seed", "/var/lib/urandom/random-seed", "/var/lib/systemd/random-seed"],
    },
  });
});

test("initramfs-tools without a modules file: it is created", async (t) => {
  const root = await guest(t, { release: DEBIAN, initramfs: `initrd.img-${DEBIAN}`, tool: "/sbin/update-initramfs" });
  const report = await convertTwice(root);
  assert.deepEqual(
    report.changes.map((c) => [c.action, c.path, c.detail]),
    [
      [
        "create",
        "/etc/initramfs-tools/modules",
        "created (MODULES=most already takes most disk drivers; listing virtio makes sure)",
      ],
    ],
  );
  assert.equal(await readFile(join(root, "etc/initramfs-tools/modules"), "latin1"), [NOTE, ...VIRTIO, ""].join("\n"));
});

test("dracut (RHEL 6 and later): a dracut.conf.d file; mkinitrd (CentOS 5): --with arguments, no file", async (t) => {
  const rhel = "3.10.0-1160.el7.x86_64";
  const dracut = await guest(t, { release: rhel, initramfs: `initramfs-${rhel}.img`, tool: "/usr/bin/dracut" });
  const report = await convertTwice(dracut);
  assert.deepEqual(
    report.changes.map((c) => [c.action, c.path]),
    [["create", "/etc/dracut.conf.d/virtio.conf"]],
  );
  assert.equal(
    await readFile(join(dracut, "etc/dracut.conf.d/virtio.conf"), "latin1"),
    `${NOTE}\nadd_drivers+=" virtio_pci virtio_blk virtio_scsi virtio_net "\n`,
  );
  assert.deepEqual(report.initramfsRebuild?.command, ["dracut", "-f", `/boot/initramfs-${rhel}.img`, rhel]);

  const centos5 = "2.6.18-419.el5";
  const mkinitrd = await guest(t, { release: centos5, initramfs: `initrd-${centos5}.img`, tool: "/sbin/mkinitrd" });
  const old = await convertTwice(mkinitrd);
  assert.deepEqual(old.changes, []);
  assert.deepEqual(old.initramfsRebuild?.command, [
    "mkinitrd",
    ...VIRTIO.map((d) => `--with=${d}`),
    "-f",
    `/boot/initrd-${centos5}.img`,
    centos5,
  ]);
});

test("nothing to do with virtio inside; blocked without a tool or modules", async (t) => {
  const fine = await guest(t, {
    release: DEBIAN,
    initramfs: `initrd.img-${DEBIAN}`,
    tool: "/usr/sbin/update-initramfs",
    virtio: true,
  });
  const ok = await convertXenGuest(fine, { edits: EDITS });
  assert.equal(ok.initramfs?.verdict, "ok");
  assert.deepEqual(ok.changes, []);
  assert.equal(ok.initramfsRebuild, null);
  assert.match(ok.edits.find((e) => e.name === "initramfs-modules")!.skipped!, /needs no rebuild/);

  const toolless = await guest(t, { release: DEBIAN, initramfs: `initrd.img-${DEBIAN}`, tool: null });
  const blocked = await convertXenGuest(toolless, { edits: EDITS });
  assert.equal(blocked.initramfsRebuild, null);
  assert.deepEqual(blocked.blockers, [
    "the guest has no update-initramfs, dracut or mkinitrd to rebuild its initramfs with virtio",
  ]);

  await rm(join(toolless, `lib/modules/${DEBIAN}`), { recursive: true });
  const noModules = await convertXenGuest(toolless, { edits: EDITS, dryRun: true });
  assert.deepEqual(noModules.blockers, [
    `the guest has no /lib/modules/${DEBIAN}, so its initramfs cannot be rebuilt with virtio`,
  ]);
});

test("/etc/initramfs-tools linked to a host folder: the guest's own path is written, the host's never", async (t) => {
  const hostDir = join(HOST_CANARY_DIR, "initramfs-tools-edit");
  await mkdir(hostDir, { recursive: true });
  t.after(() => rm(hostDir, { recursive: true, force: true }));
  await writeFile(join(hostDir, "modules"), "host canary\n");
  const root = await guest(t, {
    release: DEBIAN,
    initramfs: `initrd.img-${DEBIAN}`,
    tool: "/usr/sbin/update-initramfs",
    plants: [{ op: "symlink", path: "/etc/initramfs-tools", target: hostDir }],
  });
  const report = await convertTwice(root);
  assert.deepEqual(
    report.changes.map((c) => [c.action, c.path]),
    [["create", `${hostDir}/modules`]],
  );
  assert.equal(await readFile(join(root, hostDir, "modules"), "latin1"), [NOTE, ...VIRTIO, ""].join("\n"));
  assert.equal(await readFile(join(hostDir, "modules"), "latin1"), "host canary\n");
  assert.equal(report.initramfsRebuild?.tool, "update-initramfs");
});
