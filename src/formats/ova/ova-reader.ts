/**
 * Opens an OVA for reading: indexes the tar (headers only), reads and parses the descriptor and the manifest,
 * and resolves every disk to the member(s) holding it (file-members.ts). Nothing is extracted. Refused, with
 * the reason: a descriptor naming a file the archive does not hold (or naming it by an absolute path, a URL or
 * a path with ".."), a disk whose file is missing or listed twice, a manifest with no digest line, and
 * everything tar-index.ts refuses. What the manifest leaves uncovered becomes a warning (manifest-check.ts);
 * the manifest is verified by verifyOvaManifest (reading each member once, in order).
 */
import { CorruptImageError, UnsupportedFeatureError } from "../errors.js";
import { FileInput } from "../inputs/file-input.js";
import { MAX_MANIFEST_BYTES, parseManifest, type ManifestEntry, type ParsedManifest } from "./manifest.js";
import { manifestCoverage, verifyManifest, type ManifestCheck } from "./manifest-check.js";
import { MemberIndex } from "./file-members.js";
import {
  MAX_DESCRIPTOR_BYTES,
  parseOvfDescriptor,
  type OvfDescriptor,
  type OvfDisk,
  type OvfFileRef,
} from "./ovf-descriptor-reader.js";
import { indexTar, type TarMember } from "./tar-index.js";

export type { ManifestCheck } from "./manifest-check.js";

export interface OvaDisk {
  /** 1-based position in the DiskSection, as `convert --disk N` counts. */
  readonly index: number;
  readonly disk: OvfDisk;
  readonly file: OvfFileRef;
  /** The member(s) holding the file, in order (several when the file is chunked). */
  readonly members: readonly TarMember[];
  /** Bytes of the stored file (sum of its members). */
  readonly storedSize: number;
}

export interface OvaArchive {
  readonly path: string;
  readonly members: readonly TarMember[];
  readonly descriptorMember: TarMember;
  readonly descriptor: OvfDescriptor;
  readonly manifestMember?: TarMember;
  /** The manifest's entries by the member each designates (those naming absent files are left out). */
  readonly manifest?: ReadonlyMap<string, ManifestEntry>;
  readonly disks: readonly OvaDisk[];
  /** What the reader let pass but the user should know (a file the manifest does not cover, …). */
  readonly warnings: readonly string[];
}

export async function openOva(path: string): Promise<OvaArchive> {
  const file = await FileInput.open(path);
  try {
    const members = await indexTar(file, path);
    return await assembleOva({
      path,
      members,
      read: (member, length, what) => file.readExact(member.dataOffset, length, undefined, what),
    });
  } finally {
    await file.close();
  }
}

/**
 * What an OVA is made from: its members, and a way to read a member's first bytes (the descriptor and the
 * manifest whole, a chunk's head). openOva reads them from the file; an OVA read in order (ova-in-order.ts)
 * keeps them as they pass.
 */
export interface OvaContent {
  readonly path: string;
  readonly members: readonly TarMember[];
  read(member: TarMember, length: number, what: string): Promise<Buffer>;
}

/** Parses the descriptor and the manifest and resolves every disk to its member(s), with the checks above. */
export async function assembleOva({ path, members, read }: OvaContent): Promise<OvaArchive> {
  const index = new MemberIndex(members);
  const descriptors = members.filter((m) => /\.ovf$/i.test(m.name));
  if (descriptors.length === 0) throw new CorruptImageError(`${path}: no .ovf descriptor in the archive`);
  if (descriptors.length > 1)
    throw new UnsupportedFeatureError(`${path}: ${descriptors.length} .ovf descriptors; an OVA holds one`);
  const descriptorMember = descriptors[0]!;
  checkDescriptorSize(path, descriptorMember);
  const where = `${path}:${descriptorMember.name}`;
  const descriptor = parseOvfDescriptor(await read(descriptorMember, descriptorMember.size, "OVF descriptor"), where);
  const manifests = members.filter((m) => /\.mf$/i.test(m.name));
  if (manifests.length > 1) throw new CorruptImageError(`${path}: ${manifests.length} manifests; an OVA holds one`);
  const manifestMember = manifests[0];
  let manifest: ParsedManifest | undefined;
  if (manifestMember) {
    checkManifestSize(path, manifestMember);
    const text = (await read(manifestMember, manifestMember.size, "manifest")).toString("utf8");
    manifest = parseManifest(text, `${path}:${manifestMember.name}`);
  }

  // Every referenced file must be in the archive, under a name that stays inside it.
  const readHead = (m: TarMember, length: number) => read(m, Math.min(length, m.size), `head of ${m.name}`);
  const filesById = new Map<string, { file: OvfFileRef; members: TarMember[] }>();
  for (const f of descriptor.files) {
    if (filesById.has(f.id)) throw new CorruptImageError(`${where}: file id "${f.id}" is declared twice`);
    filesById.set(f.id, { file: f, members: await index.membersOf(f, readHead, where) });
  }
  const disks: OvaDisk[] = [];
  descriptor.disks.forEach((disk, i) => {
    if (!disk.fileRef) return; // a blank disk the importer creates; nothing to read
    const entry = filesById.get(disk.fileRef);
    if (!entry)
      throw new CorruptImageError(
        `${where}: disk ${disk.diskId} refers to file "${disk.fileRef}", which References does not list`,
      );
    const storedSize = entry.members.reduce((n, m) => n + m.size, 0);
    if (entry.file.size !== undefined && entry.file.compression === undefined && entry.file.size !== storedSize) {
      throw new CorruptImageError(
        `${where}: file ${entry.file.href} is declared as ${entry.file.size} bytes but the archive holds ${storedSize}`,
      );
    }
    disks.push({ index: i + 1, disk, file: entry.file, members: entry.members, storedSize });
  });
  const used = [descriptorMember, ...[...filesById.values()].flatMap((e) => e.members)];
  const coverage =
    manifest && manifestMember
      ? manifestCoverage(manifest, manifestMember.name, index.byName, used)
      : { listed: undefined, warnings: [] };
  return {
    path,
    members,
    descriptorMember,
    descriptor,
    manifestMember,
    manifest: coverage.listed,
    disks,
    warnings: coverage.warnings,
  };
}

/** Refuses a descriptor too large to be one, before it is read. */
export function checkDescriptorSize(path: string, member: TarMember): void {
  if (member.size > MAX_DESCRIPTOR_BYTES) {
    throw new CorruptImageError(
      `${path}: descriptor ${member.name} is ${member.size} bytes, beyond ${MAX_DESCRIPTOR_BYTES}`,
    );
  }
}

/** Refuses a manifest too large to be one, before it is read. */
export function checkManifestSize(path: string, member: TarMember): void {
  if (member.size > MAX_MANIFEST_BYTES) {
    throw new CorruptImageError(
      `${path}: manifest ${member.name} is ${member.size} bytes, beyond ${MAX_MANIFEST_BYTES}`,
    );
  }
}

/**
 * Reads every member the manifest lists, in archive order, and compares digests; undefined when the OVA has
 * no manifest. What it does not list was reported among openOva's warnings.
 */
export async function verifyOvaManifest(ova: OvaArchive, signal?: AbortSignal): Promise<ManifestCheck | undefined> {
  if (!ova.manifest) return undefined;
  return verifyManifest(ova.path, ova.members, ova.manifest, signal);
}
