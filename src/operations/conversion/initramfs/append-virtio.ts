/**
 * Gives an initramfs-tools initramfs the virtio drivers without running any program: a cpio archive appended to
 * the image, which the kernel unpacks after the others (it unpacks every archive of the image in turn, a later
 * file replacing an earlier one of the same path). After a zstd part the archive is wrapped in a zstd frame of
 * stored blocks (no compressor runs), after a gzip part in a gzip member of its own (the kernel, gzip -d and our
 * reader all go on from one member to the next), so the guest's lsinitramfs still reads the image. The archive
 * holds:
 *
 * - the modules the check found missing (virtio_pci, virtio_blk, virtio_scsi) and the modules they depend on,
 *   copied from the guest's own /lib/modules/VERSION (the kernel's modules.dep gives the dependencies);
 * - /scripts/init-top/chromogenic-virtio, which insmods them in dependency order;
 * - /scripts/init-top/ORDER, the image's own with that script run first (initramfs-tools' init runs exactly the
 *   scripts ORDER lists, before udev looks for the root disk).
 *
 * Anything unusual (no ORDER, compressed modules, a part we cannot see past, a module modules.dep does not
 * list, sizes past the bounds) is a refusal with the reason: the caller then rebuilds the image with the
 * guest's own tool in the appliance. The new image is written beside the old one under a temporary name,
 * checked with our own reader, and renamed over it, keeping its owner and mode.
 */
import { constants } from "node:fs";
import { copyFile, lstat, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { gzipSync } from "node:zlib";
import { resolveGuestPath } from "../../../guest/guest-path.js";
import { readGuestText } from "../../../guest/guest-files.js";
import { ChromogenicError } from "../../../util/errors.js";
import { MAX_RAMDISK_BYTES } from "../boot-kernels.js";
import { openGuestFile, readHead } from "../bounded-file.js";
import { checkInitramfs, type InitramfsCheck } from "./check-initramfs.js";
import { cpioArchive, type CpioFile } from "./cpio-writer.js";
import { loadOrder, parseModulesDep, type ModuleFile } from "./module-deps.js";
import { scanInitramfs } from "./scan-initramfs.js";
import { zstdStoredFrame } from "./zstd-frame.js";

/** The drivers appended when the check finds them missing: what a virtio disk (block or SCSI) boots from. */
export const APPENDED_DRIVERS = ["virtio_pci", "virtio_blk", "virtio_scsi"] as const;

/** Where the modules go in the initramfs: a folder of our own, so no path of the image's is replaced. */
export const MODULE_DIR = "chromogenic-virtio";
export const SCRIPT = "scripts/init-top/chromogenic-virtio";
const ORDER = "scripts/init-top/ORDER";
const ORDER_LINE = `/${SCRIPT} "$@"`;

/** Bounds: one module (the largest virtio ones are about 100 KiB), all of them, and the ORDER file. */
const MAX_MODULE_BYTES = 16 * 2 ** 20;
const MAX_MODULES_BYTES = 64 * 2 ** 20;
const MAX_ORDER_BYTES = 64 * 1024;
/** The insmod programs initramfs-tools copies in (klibc's or kmod's), by their path inside the image. */
const INSMOD = /^(?:usr\/)?s?bin\/insmod$/;

export interface AppendTarget {
  readonly version: string;
  /** The guest path of the initramfs (the real file, not a link to it). */
  readonly initramfs: string;
  readonly check: InitramfsCheck;
}

export interface AppendPlan {
  /** The modules appended, in load order. */
  readonly modules: readonly string[];
  /** Bytes added to the image. */
  readonly bytes: number;
}

export type AppendResult =
  | { readonly appended: true; readonly plan: AppendPlan; readonly check: InitramfsCheck; readonly seconds: number }
  | { readonly appended: false; readonly plan: AppendPlan; readonly dryRun: true }
  | { readonly appended: false; readonly refused: string };

/** A refusal: the caller falls back to the guest's own tool. */
class Refused extends Error {}

/** The loader script: each module unless the kernel has it already (loaded earlier, or built in with /sys/module). */
function loaderScript(modules: readonly ModuleFile[]): string {
  return [
    "#!/bin/sh",
    "# Written by chromogenic: loads the virtio drivers this initramfs was made without (Xen to KVM).",
    'PREREQ=""',
    'prereqs() { echo "$PREREQ"; }',
    'case "$1" in prereqs) prereqs; exit 0 ;; esac',
    `for m in ${modules.map((m) => m.name).join(" ")}; do`,
    `  [ -d "/sys/module/$m" ] || insmod "/${MODULE_DIR}/$m.ko" || echo "chromogenic-virtio: insmod $m failed" >&2`,
    "done",
    "",
  ].join("\n");
}

/** The image's ORDER with our script run first (a line of ours already there is not repeated). */
function newOrder(original: string): string {
  const kept = original.split("\n").filter((l) => l.trim() !== ORDER_LINE);
  return [ORDER_LINE, ...kept].join("\n");
}

async function readModule(root: string, version: string, module: ModuleFile): Promise<Buffer> {
  if (!module.path.endsWith(".ko"))
    throw new Refused(`module ${module.path} is compressed, which the image's insmod may not read`);
  const guestPath = module.path.startsWith("/") ? module.path : `/lib/modules/${version}/${module.path}`;
  let file;
  try {
    file = await openGuestFile(root, guestPath, MAX_MODULE_BYTES);
  } catch (e) {
    if (e instanceof ChromogenicError) throw new Refused(e.message);
    throw e;
  }
  try {
    const data = await readHead(file, file.size);
    if (data.length !== file.size || data.readUInt32BE(0) !== 0x7f454c46)
      throw new Refused(`${guestPath} is not an ELF module`);
    return data;
  } finally {
    await file.handle.close();
  }
}

interface ImageFacts {
  order: { data: Buffer; mode: number } | null;
  insmod: boolean;
  parts: readonly string[];
}

async function readImage(root: string, initramfs: string): Promise<ImageFacts> {
  const facts: ImageFacts = { order: null, insmod: false, parts: [] };
  const file = await openGuestFile(root, initramfs, MAX_RAMDISK_BYTES);
  try {
    const scan = await scanInitramfs(file, {
      visit: (entry) => {
        if (INSMOD.test(entry.name)) facts.insmod = true;
        if (entry.name !== ORDER) return false;
        if (entry.size > MAX_ORDER_BYTES)
          throw new Refused(`${initramfs}: its ${ORDER} is over ${MAX_ORDER_BYTES} bytes`);
        return true;
      },
      captured: (entry, data) => (facts.order = { data, mode: entry.mode & 0o7777 }),
    });
    if (scan.trailing !== undefined)
      throw new Refused(`${initramfs}: bytes after its compressed part (${scan.trailing})`);
    // Our reader sees past uncompressed and zstd parts, and into a gzip member that follows a last gzip part:
    // what it cannot see past, it could not check.
    const last = scan.parts.length - 1;
    const unseen = scan.parts.filter((p, i) => p !== "cpio" && p !== "zstd" && !(p === "gzip" && i === last));
    if (unseen.length) throw new Refused(`${initramfs}: ${unseen[0]}-compressed, past which the check cannot read`);
    facts.parts = scan.parts;
  } finally {
    await file.handle.close();
  }
  return facts;
}

async function plan(root: string, target: AppendTarget): Promise<{ plan: AppendPlan; appended: Buffer }> {
  const { version, initramfs, check } = target;
  const wanted = APPENDED_DRIVERS.filter((d) => check.drivers[d] === "missing");
  if (!wanted.length) throw new Refused("no virtio driver is known to be missing");
  const depText = await readGuestText(root, `/lib/modules/${version}/modules.dep`);
  if (depText === null) throw new Refused(`the guest has no readable /lib/modules/${version}/modules.dep`);
  let modules: ModuleFile[];
  try {
    modules = loadOrder(parseModulesDep(depText), wanted);
  } catch (e) {
    throw new Refused((e as Error).message);
  }
  const files: CpioFile[] = [{ name: MODULE_DIR, mode: 0o755 }];
  let total = 0;
  for (const m of modules) {
    const data = await readModule(root, version, m);
    total += data.length;
    if (total > MAX_MODULES_BYTES) throw new Refused(`the modules to add are over ${MAX_MODULES_BYTES} bytes`);
    files.push({ name: `${MODULE_DIR}/${m.name}.ko`, mode: 0o644, data });
  }
  const image = await readImage(root, initramfs);
  if (!image.order) throw new Refused(`${initramfs} has no /${ORDER} (not an initramfs-tools image)`);
  if (!image.insmod) throw new Refused(`${initramfs} has no insmod to load modules with`);
  files.push({ name: SCRIPT, mode: 0o755, data: Buffer.from(loaderScript(modules)) });
  files.push({
    name: ORDER,
    mode: image.order.mode,
    data: Buffer.from(newOrder(image.order.data.toString("latin1")), "latin1"),
  });
  const archive = cpioArchive(files);
  // After a zstd part, the archive goes in a zstd frame of its own (see zstdStoredFrame), after a gzip part in
  // a gzip member (the fastest level: the modules are a few hundred KiB); after plain cpio, as is.
  const lastPart = image.parts.at(-1);
  const appended =
    lastPart === "zstd" ? zstdStoredFrame(archive) : lastPart === "gzip" ? gzipSync(archive, { level: 1 }) : archive;
  return { plan: { modules: modules.map((m) => m.name), bytes: appended.length }, appended };
}

/**
 * Appends `bytes` to a copy of `host`: a cpio archive after NULs that put it on a 4-byte boundary (the kernel
 * looks for an archive only there), a zstd frame or gzip member right after the one before it (zstd -d refuses
 * the NULs; gzip -d and node's zlib stop at them, and our check would then not see what was appended).
 */
async function writeCopy(host: string, copy: string, bytes: Buffer): Promise<void> {
  const st = await lstat(host);
  await copyFile(host, copy, constants.COPYFILE_EXCL);
  const handle = await open(copy, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    const { size } = await handle.stat();
    if (size !== st.size) throw new Error(`${copy}: copied ${size} of ${st.size} bytes`);
    const plainCpio = bytes.toString("latin1", 0, 4) === "0707";
    const padding = Buffer.alloc(plainCpio ? (4 - (size % 4)) % 4 : 0);
    await handle.write(Buffer.concat([padding, bytes]), 0, padding.length + bytes.length, size);
    await handle.chown(st.uid, st.gid);
    await handle.chmod(st.mode & 0o7777);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Appends the missing virtio drivers to the initramfs `target` names, in the guest mounted read-write at `root`
 * (a dry run only plans). Returns what was appended and the check of the new image, or why it was not done.
 */
export async function appendVirtioModules(
  root: string,
  target: AppendTarget,
  options: { readonly dryRun: boolean },
): Promise<AppendResult> {
  const started = Date.now();
  let planned;
  try {
    planned = await plan(root, target);
  } catch (e) {
    if (e instanceof Refused) return { appended: false, refused: e.message };
    if (e instanceof ChromogenicError) return { appended: false, refused: e.message };
    throw e;
  }
  if (options.dryRun) return { appended: false, plan: planned.plan, dryRun: true };
  const host = await resolveGuestPath(root, target.initramfs, { followLast: false });
  const st = await lstat(host);
  if (!st.isFile()) return { appended: false, refused: `${target.initramfs} is not a regular file` };
  if (st.size + planned.appended.length + 3 > MAX_RAMDISK_BYTES)
    return { appended: false, refused: `${target.initramfs} would grow past ${MAX_RAMDISK_BYTES} bytes` };
  const copyName = `.${basename(host)}.chromogenic-new`;
  const copy = join(dirname(host), copyName);
  const copyGuest = posix.join(posix.dirname(target.initramfs), copyName);
  await rm(copy, { force: true });
  try {
    await writeCopy(host, copy, planned.appended);
    const check = await checkInitramfs({
      version: target.version,
      guestPath: copyGuest,
      open: () => openGuestFile(root, copyGuest, MAX_RAMDISK_BYTES),
      modulesBuiltin: await readGuestText(root, `/lib/modules/${target.version}/modules.builtin`),
      config: await readGuestText(root, `/boot/config-${target.version}`),
    });
    if (check.verdict !== "ok") {
      await rm(copy, { force: true });
      return { appended: false, refused: `the appended image would not do: ${check.reason}` };
    }
    await rename(copy, host);
    const reason = check.reason.replace(copyGuest, target.initramfs);
    return {
      appended: true,
      plan: planned.plan,
      check: { ...check, initramfs: target.initramfs, reason },
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } catch (e) {
    await rm(copy, { force: true });
    throw e;
  }
}
