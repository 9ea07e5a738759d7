import { lstat, mkdir, mkdtemp, stat } from "node:fs/promises";
import { join } from "node:path";
import { AbortedError, ChromogenicError } from "../../formats/errors.js";
import type { AttachedImage } from "../attach/attach-image.js";
import { readGuestText } from "../guest-files.js";
import { resolveGuestPath } from "../guest-path.js";
import type { GuestJournal } from "../journal/guest-journal.js";
import { probeFilesystem, MOUNTABLE_TYPES } from "./filesystem-probe.js";
import { deviceForFstabSpec, type IdentifiedDevice } from "./fstab-device.js";
import { parseFstab } from "./fstab.js";
import { mountFilesystem, mountOptions } from "./mount-filesystem.js";

/** The guest has no filesystem that looks like a Linux root (etc/fstab and os-release). */
export class NoGuestRootError extends ChromogenicError {
  constructor(message: string) {
    super(message, "ENOROOT");
  }
}

export interface MountedFilesystem {
  readonly guestPath: string;
  readonly device: string;
  readonly type: string;
}

export interface MountedGuest {
  /** Host folder where the guest's / is mounted. */
  readonly root: string;
  readonly mounts: readonly MountedFilesystem[];
  /** The devices and what blkid found on each. */
  readonly devices: readonly IdentifiedDevice[];
  /** fstab lines naming a device of ours we could not mount (unsupported type), and why. */
  readonly skipped: readonly string[];
}

export interface MountOptions {
  readonly journal: GuestJournal;
  readonly readOnly: boolean;
  /** Folder under which the private mount root is made (default: the state folder's `mnt`). */
  readonly mountBase: string;
  readonly signal?: AbortSignal;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Files that say "this is a distribution's root": os-release, or the release files that predate it. */
const RELEASE_FILES = [
  "/etc/os-release",
  "/usr/lib/os-release",
  "/etc/redhat-release",
  "/etc/debian_version",
  "/etc/SuSE-release",
];

/** The guest's root: a filesystem holding etc/fstab and a release file, probed with a read-only mount. */
async function findRoot(
  devices: readonly IdentifiedDevice[],
  options: MountOptions,
  probeDir: string,
): Promise<IdentifiedDevice> {
  for (const d of devices) {
    if (!d.filesystem || !MOUNTABLE_TYPES.has(d.filesystem.type)) continue;
    const id = await mountFilesystem(
      options.journal,
      d.device,
      probeDir,
      d.filesystem.type,
      mountOptions(d.filesystem.type, true),
    );
    try {
      if (!(await exists(await resolveGuestPath(probeDir, "/etc/fstab")))) continue;
      for (const marker of RELEASE_FILES) if (await exists(await resolveGuestPath(probeDir, marker))) return d;
    } finally {
      await options.journal.undo(id);
    }
  }
  throw new NoGuestRootError("no filesystem in the image holds etc/fstab and an os-release (or older release file)");
}

/**
 * Mounts the guest's whole tree as its /etc/fstab describes, under a fresh private folder (mode 0700, so no
 * other host user can reach into it). Each mount point is resolved inside the guest root, so a guest whose
 * fstab or symlinks point a mount at `/../../host/path` still mounts inside its own tree. Mounts are nested in
 * depth order; entries naming other disks, swap, or pseudo filesystems are ignored.
 */
export async function mountGuest(attached: AttachedImage, options: MountOptions): Promise<MountedGuest> {
  const { journal } = options;
  const devices: IdentifiedDevice[] = [];
  for (const d of attached.devices) devices.push({ ...d, filesystem: await probeFilesystem(d.device) });

  const base = await mkdtemp(join(options.mountBase, "guest-"));
  await journal.record({ kind: "directory", path: base });
  const root = join(base, "root");
  await journal.record({ kind: "directory", path: root });
  await mkdir(root, { mode: 0o700 });
  const rootDevice = await findRoot(devices, options, root);
  if (options.signal?.aborted) throw new AbortedError();

  const rootType = rootDevice.filesystem!.type;
  const mounts: MountedFilesystem[] = [];
  const skipped: string[] = [];
  await mountFilesystem(journal, rootDevice.device, root, rootType, mountOptions(rootType, options.readOnly));
  mounts.push({ guestPath: "/", device: rootDevice.device, type: rootType });

  // Read bounded and never opened unless a regular file: a FIFO fstab would block us, a huge one exhaust us.
  // Such a guest gets its root mounted alone; the edits that read fstab report it in their own words.
  const fstab = parseFstab((await readGuestText(root, "/etc/fstab")) ?? "");
  const wanted = fstab
    .filter((e) => e.mountPoint.startsWith("/") && e.mountPoint !== "/")
    .sort((a, b) => depth(a.mountPoint) - depth(b.mountPoint));
  for (const entry of wanted) {
    if (options.signal?.aborted) throw new AbortedError();
    const device = deviceForFstabSpec(entry.spec, devices);
    if (!device || device === rootDevice) continue;
    const type = device.filesystem?.type;
    if (!type || !MOUNTABLE_TYPES.has(type)) {
      if (type !== "swap" && type !== "vfat")
        skipped.push(`${entry.mountPoint}: ${entry.spec} holds ${type ?? "no known filesystem"}`);
      continue;
    }
    // Resolving after the parents are mounted sees the tree as the guest would at boot.
    const target = await resolveGuestPath(root, entry.mountPoint);
    const isDirectory = await lstat(target).then(
      (st) => st.isDirectory(),
      () => false,
    );
    if (!isDirectory) {
      skipped.push(`${entry.mountPoint}: the mount point is missing in the guest`);
      continue;
    }
    const subvol = entry.options.filter((o) => o.startsWith("subvol=") || o.startsWith("subvolid="));
    await mountFilesystem(journal, device.device, target, type, mountOptions(type, options.readOnly, subvol));
    mounts.push({ guestPath: entry.mountPoint, device: device.device, type });
  }
  return { root, mounts, devices, skipped };
}

function depth(path: string): number {
  return path.split("/").filter(Boolean).length;
}
