/**
 * Guests that try to make the conversion read or write outside themselves, hang it, or exhaust it: links out of
 * the guest (absolute and through ".."), link loops, FIFOs, huge sparse files. Each is a reported skip or a
 * clear verdict, the run finishes, and no host file is read or written.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { convertXenGuest } from "../../../src/operations/conversion/convert-xen-guest.js";
import { plant, type Plant } from "../../helpers/debian-guest.js";
import { scratch } from "../../helpers/tools.js";
import { describeDiff, diffManifests, takeManifest } from "../../helpers/tree-manifest.js";
import {
  DEBIAN_KERNEL,
  debianInitramfs,
  debianVersionString,
  debianXenPlants,
  eraRoot,
  kernelImage,
  plantedRoot,
  ROOT_UUID,
  VIRTIO_INITRAMFS_FILES,
} from "./conversion-trees.js";

const XEN_FSTAB = "/dev/xvda1\t/\text4\tdefaults\t0 1\n/dev/xvda3\tnone\tswap\tsw\t0 0\n";
const HOST_FILES = ["/etc/shadow", "/etc/fstab", "/etc/passwd"];

/** Host files a hostile guest would aim at, as a bait folder outside the guest with Xen-looking content. */
async function bait(t: Parameters<typeof scratch>[0]): Promise<string> {
  const dir = await scratch(t, "chromo-bait-");
  await mkdir(join(dir, "boot"));
  await writeFile(join(dir, "fstab"), XEN_FSTAB);
  await writeFile(join(dir, "inittab"), "co:2345:respawn:/sbin/agetty xvc0 9600 vt100-nav\n");
  await writeFile(join(dir, "rc.local"), "depmod -a\n/usr/bin/ruby /usr/sbin/atmo_boot\n");
  await writeFile(join(dir, `boot/vmlinuz-${DEBIAN_KERNEL}`), kernelImage(debianVersionString(DEBIAN_KERNEL)));
  await writeFile(join(dir, `boot/initrd.img-${DEBIAN_KERNEL}`), await debianInitramfs(VIRTIO_INITRAMFS_FILES));
  return dir;
}

/** Runs the conversion (real, not dry) and checks that neither the bait folder nor the host's files changed. */
async function convertUntouched(
  t: Parameters<typeof scratch>[0],
  root: string,
  baitDir: string,
  options: Parameters<typeof convertXenGuest>[1] = {},
) {
  const baitBefore = await takeManifest(baitDir);
  const hostBefore = await Promise.all(HOST_FILES.map((p) => lstat(p)));
  const report = await convertXenGuest(root, { rootUuid: ROOT_UUID, ...options });
  assert.equal(describeDiff(diffManifests(baitBefore, await takeManifest(baitDir))), "", "the bait was touched");
  const hostAfter = await Promise.all(HOST_FILES.map((p) => lstat(p)));
  for (const [i, path] of HOST_FILES.entries())
    for (const field of ["ino", "size", "mtimeMs", "ctimeMs"] as const)
      assert.equal(hostAfter[i]![field], hostBefore[i]![field], `host ${path} ${field}`);
  return report;
}

test(
  "fstab linked to the host's /etc/shadow, and out of the guest through .. and by absolute path",
  { timeout: 60_000 },
  async (t) => {
    const baitDir = await bait(t);
    for (const target of ["/etc/shadow", `${"../".repeat(12)}${baitDir.slice(1)}/fstab`, `${baitDir}/fstab`]) {
      const root = await plantedRoot(t, [
        ...debianXenPlants().filter((p) => p.path !== "/etc/fstab"),
        { op: "symlink", path: "/etc/fstab", target },
      ]);
      const report = await convertUntouched(t, root, baitDir);
      assert.ok(
        report.warnings.some((w) =>
          w.startsWith(`fstab-uuid: /etc/fstab: is a link to ${target}, which the guest does not have`),
        ),
        report.warnings.join("\n"),
      );
      assert.ok(!report.changes.some((c) => c.edit === "fstab-uuid"));
      assert.equal(await readlink(join(root, "etc/fstab")), target);
    }
  },
);

test("a link out of the guest lands inside it: the guest's own copy at that path is the one edited", async (t) => {
  const baitDir = await bait(t);
  const root = await plantedRoot(t, [
    ...debianXenPlants().filter((p) => p.path !== "/etc/fstab"),
    { op: "symlink", path: "/etc/fstab", target: `${baitDir}/fstab` },
    { op: "file", path: `${baitDir}/fstab`, content: XEN_FSTAB },
  ]);
  const report = await convertUntouched(t, root, baitDir);
  assert.deepEqual(
    report.changes.filter((c) => c.edit === "fstab-uuid").map((c) => c.path),
    [`${baitDir}/fstab`],
  );
  assert.match(await readFile(join(root, baitDir, "fstab"), "latin1"), new RegExp(`^UUID=${ROOT_UUID}\t/\t`));
});

test("link loops: skipped with a warning, the rest converted", { timeout: 60_000 }, async (t) => {
  const baitDir = await bait(t);
  const root = await eraRoot(t, "centos5", [
    { op: "remove", path: "/etc/modprobe.conf" },
    { op: "symlink", path: "/etc/modprobe.conf", target: "/etc/modprobe.conf" },
    { op: "remove", path: "/etc/inittab" },
    { op: "symlink", path: "/etc/inittab", target: "inittab.2" },
    { op: "symlink", path: "/etc/inittab.2", target: "/etc/inittab" },
    { op: "remove", path: "/boot" },
    { op: "symlink", path: "/boot", target: "boot" },
  ]);
  const report = await convertUntouched(t, root, baitDir);
  for (const path of ["/etc/modprobe.conf", "/etc/inittab"])
    assert.ok(
      report.warnings.some((w) => w.includes(`guest path ${path}: too many levels of symbolic links`)),
      `${path}:\n${report.warnings.join("\n")}`,
    );
  assert.ok(
    report.changes.some((c) => c.path === "/etc/fstab"),
    "fstab still converted",
  );
  assert.ok(
    report.changes.some((c) => c.path === "/etc/rc.d/rc.local"),
    "rc.local still converted",
  );
  assert.match(report.blockers.join("\n"), /no kernel a PC can boot \(none in \/boot\)/);
});

test(
  "a FIFO inittab and a FIFO initramfs: nothing blocks, each is a warning or an unknown verdict",
  { timeout: 60_000 },
  async (t) => {
    const baitDir = await bait(t);
    const root = await plantedRoot(t, [...debianXenPlants(), { op: "fifo", path: "/etc/inittab" }]);
    await writeFile(join(root, `boot/vmlinuz-${DEBIAN_KERNEL}`), kernelImage(debianVersionString(DEBIAN_KERNEL)));
    await plant(root, [{ op: "fifo", path: `/boot/initrd.img-${DEBIAN_KERNEL}` }]);
    const report = await convertUntouched(t, root, baitDir);
    assert.ok(report.warnings.includes("serial-console: /etc/inittab: is a fifo, not a regular file; not edited"));
    assert.equal(report.initramfs?.verdict, "unknown");
    assert.equal(
      report.initramfs?.reason,
      `guest file /boot/initrd.img-${DEBIAN_KERNEL}: is a fifo, not a regular file`,
    );
    assert.ok((await lstat(join(root, "etc/inittab"))).isFIFO());
  },
);

test(
  "a 2 GiB sparse rc.local and a 1 GiB sparse kernel are left alone, never read whole",
  { timeout: 60_000 },
  async (t) => {
    const baitDir = await bait(t);
    const huge: Plant[] = [
      { op: "remove", path: "/etc/rc.d/rc.local" },
      {
        op: "file",
        path: "/etc/rc.d/rc.local",
        content: "depmod -a\n/usr/bin/ruby /usr/sbin/atmo_boot\n",
        sparseSize: 2 ** 31,
      },
      { op: "file", path: "/boot/vmlinuz-2.6.18-398.el5", content: "x", sparseSize: 2 ** 30 },
    ];
    const root = await eraRoot(t, "centos5", huge);
    const started = performance.now();
    const report = await convertUntouched(t, root, baitDir);
    assert.ok(performance.now() - started < 20_000, "no huge read");
    assert.ok(
      report.warnings.includes(
        "atmosphere-boot-hooks: /etc/rc.d/rc.local: 2147483648 bytes, too large to edit as text; left alone",
      ),
      report.warnings.join("\n"),
    );
    assert.equal((await lstat(join(root, "etc/rc.d/rc.local"))).size, 2 ** 31);
    assert.match(
      report.blockers.join("\n"),
      /\/boot\/vmlinuz-2\.6\.18-398\.el5: cannot be read \(guest file \/boot\/vmlinuz-2\.6\.18-398\.el5: 1073741824 bytes, more than the 268435456 allowed\)/,
    );
  },
);

test("/boot and the systemd wants folder linked out of the guest: kernel and getty land inside it", async (t) => {
  const baitDir = await bait(t);
  const wantsBait = join(baitDir, "wants");
  await mkdir(wantsBait);
  const root = await plantedRoot(t, [
    ...debianXenPlants().filter((p) => !p.path.startsWith("/boot") && !p.path.includes("getty.target.wants")),
    { op: "symlink", path: "/boot", target: `${baitDir}/boot` },
    { op: "symlink", path: "/etc/systemd/system/getty.target.wants", target: wantsBait },
  ]);
  const ekiDir = await scratch(t, "chromo-eki-");
  await writeFile(join(ekiDir, "kernel"), kernelImage(debianVersionString(DEBIAN_KERNEL)));
  await writeFile(join(ekiDir, "ramdisk"), await debianInitramfs(VIRTIO_INITRAMFS_FILES));
  const report = await convertUntouched(t, root, baitDir, {
    kernel: join(ekiDir, "kernel"),
    ramdisk: join(ekiDir, "ramdisk"),
  });
  // The bait's kernel was never seen: the guest's /boot resolves inside the guest, where there is none yet.
  assert.equal(report.boot?.origin, "external");
  assert.ok((await lstat(join(root, baitDir, "boot", `vmlinuz-${DEBIAN_KERNEL}`))).isFile());
  assert.ok((await lstat(join(root, wantsBait, "serial-getty@ttyS0.service"))).isSymbolicLink());
  assert.equal(report.initramfs?.verdict, "ok");
});

test("an upstart job path already taken by a link out of the guest is left alone", async (t) => {
  const baitDir = await bait(t);
  const root = await eraRoot(t, "ubuntu-upstart", [
    { op: "symlink", path: "/etc/init/ttyS0.conf", target: `${baitDir}/inittab` },
  ]);
  const report = await convertUntouched(t, root, baitDir);
  assert.ok(
    report.warnings.includes("serial-console: /etc/init/ttyS0.conf: already exists with other content; left alone"),
    report.warnings.join("\n"),
  );
  assert.equal(await readlink(join(root, "etc/init/ttyS0.conf")), `${baitDir}/inittab`);
});
