/**
 * What `chromogenic info X.ova` reports: the appliance (its systems and their hardware, networks), each disk
 * (capacity, format, how it is stored), the manifest's algorithm and the reader's warnings (what the manifest
 * does not cover). Read from the descriptor and the tar headers — plus the first bytes of a disk that declares
 * no format — so fast on any size of archive. The manifest is verified by convert, which reads the disks anyway.
 * An OVA on a pipe can only be read through (ova-in-order.ts): its members are met, and its disks skipped.
 */
import { detectFormat } from "../registry.js";
import { UnreadableFormatError } from "../errors.js";
import { openDiskSlice } from "./ova-disk-source.js";
import type { ImageInput } from "../inputs/image-input.js";
import { hrefToMemberName } from "./file-members.js";
import { OvaInOrder } from "./ova-in-order.js";
import { openOva, type OvaArchive, type OvaDisk } from "./ova-reader.js";
import type { OvfVersionFamily } from "./ovf-descriptor-reader.js";

export interface OvaInfo {
  /** Tells an OVA's info from a disk image's (imageInfo returns either). */
  readonly kind: "appliance";
  readonly path: string;
  readonly format: "ova";
  readonly ovfVersion: OvfVersionFamily;
  readonly descriptor: string;
  readonly manifest: { readonly file: string; readonly algorithm: string; readonly files: number } | null;
  readonly networks: readonly string[];
  readonly systems: readonly {
    readonly id: string;
    readonly name?: string;
    readonly hardwareFamily?: string;
    readonly os?: string;
    readonly cpus?: number;
    readonly memoryBytes?: number;
    readonly controllers: readonly string[];
    readonly nics: readonly string[];
    readonly disks: readonly string[];
    readonly virtualBoxMachine: boolean;
  }[];
  readonly disks: readonly {
    readonly index: number;
    readonly diskId: string;
    readonly file: string;
    /** The ovf:format URI; "" when the descriptor gives none. */
    readonly format: string;
    /** For a disk without ovf:format stored uncompressed: the format its content has (else found by convert). */
    readonly contentFormat?: string;
    readonly capacity: number;
    readonly populatedSize?: number;
    readonly storedSize: number;
    readonly compression?: string;
    readonly chunks: number;
  }[];
  readonly warnings: readonly string[];
}

/**
 * The appliance in an OVA file (a path), or in an OVA read in order from `location` (an input, which this
 * closes), standard input among them.
 */
export async function ovaInfo(location: string | ImageInput): Promise<OvaInfo> {
  if (typeof location !== "string") return ovaInfoInOrder(location);
  const ova = await openOva(location);
  return describeOva(ova, async (disk) => {
    if (disk.file.compression !== undefined) return undefined;
    const input = await openDiskSlice(ova, disk);
    try {
      return await contentFormat(input);
    } finally {
      await input.close();
    }
  });
}

/** An OVA met in order: the first bytes of each disk that declares no format are looked at as they pass. */
async function ovaInfoInOrder(input: ImageInput): Promise<OvaInfo> {
  try {
    const ova = await OvaInOrder.open(input, { verify: false });
    const undeclared = new Set<string>();
    for (const disk of ova.descriptor.disks) {
      const file = ova.descriptor.files.find((f) => f.id === disk.fileRef);
      if (!file || disk.format !== "" || file.compression !== undefined) continue;
      const name = hrefToMemberName(file, input.path);
      // A file stored in chunks starts with its first chunk.
      for (const first of [name, `${name}.000000000`, `${name}.000`]) undeclared.add(first);
    }
    const formats = new Map<string, string | undefined>();
    for (let m = await ova.next(); m; m = await ova.next()) {
      if (undeclared.has(m.name)) formats.set(m.name, await contentFormat(await ova.take(m)));
    }
    const { archive } = await ova.finish();
    return await describeOva(archive, async (disk) =>
      disk.file.compression === undefined ? formats.get(disk.members[0]!.name) : undefined,
    );
  } finally {
    await input.close();
  }
}

/** What info shows of an assembled OVA; `contentFormatOf` names what a disk declaring no format holds. */
async function describeOva(
  ova: OvaArchive,
  contentFormatOf: (disk: OvaDisk) => Promise<string | undefined>,
): Promise<OvaInfo> {
  const d = ova.descriptor;
  const disks: OvaInfo["disks"][number][] = [];
  // One file after another and each once: a descriptor may list very many disks, of one file even.
  const contentFormats = new Map<string, string | undefined>();
  for (const x of ova.disks) {
    const undeclared = x.disk.format === "";
    if (undeclared && !contentFormats.has(x.file.id)) contentFormats.set(x.file.id, await contentFormatOf(x));
    disks.push({
      index: x.index,
      diskId: x.disk.diskId,
      file: x.file.href,
      format: x.disk.format,
      contentFormat: undeclared ? contentFormats.get(x.file.id) : undefined,
      capacity: x.disk.capacity,
      populatedSize: x.disk.populatedSize,
      storedSize: x.storedSize,
      compression: x.file.compression,
      chunks: x.members.length,
    });
  }
  return {
    kind: "appliance",
    path: ova.path,
    format: "ova",
    ovfVersion: d.version,
    descriptor: ova.descriptorMember.name,
    manifest:
      ova.manifest && ova.manifestMember
        ? {
            file: ova.manifestMember.name,
            algorithm: ova.manifest.values().next().value?.algorithm ?? "none",
            files: ova.manifest.size,
          }
        : null,
    networks: d.networks,
    systems: d.systems.map((s) => ({
      id: s.id,
      name: s.name,
      hardwareFamily: s.virtualSystemType,
      os: s.osDescription ?? (s.osId !== undefined ? `CIM OS ${s.osId}` : undefined),
      cpus: s.cpus,
      memoryBytes: s.memoryBytes,
      controllers: s.controllers.map((c) => `${c.kind}${c.subtype ? ` (${c.subtype})` : ""}`),
      nics: s.nics.map((n) => `${n.subtype ?? "ethernet"}${n.network ? ` on ${n.network}` : ""}`),
      disks: s.disks.map((x) => x.diskId),
      virtualBoxMachine: s.hasVBoxMachine,
    })),
    disks,
    warnings: ova.warnings,
  };
}

/** The format of what a disk's bytes hold, from their first bytes. */
async function contentFormat(input: ImageInput): Promise<string> {
  try {
    return (await detectFormat(input)).name;
  } catch (e) {
    // A format no driver reads is still worth naming in `info`; converting that disk is what fails.
    if (e instanceof UnreadableFormatError) return `${e.format} (not readable)`;
    throw e;
  }
}
