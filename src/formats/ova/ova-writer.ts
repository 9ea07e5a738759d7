/**
 * Writes an OVA: a tar holding the .ovf descriptor first, then the disks (streamOptimized VMDKs) in
 * References order, then the .mf manifest — the order DSP0243 allows and VirtualBox itself writes, so an
 * importer can read the descriptor before anything else and the manifest can cover every file.
 *
 * To a file (seekable), nothing is written twice and no temporary VMDK exists: the descriptor's member is
 * reserved at its final length (written once the disk sizes are known, padded with trailing whitespace, which
 * XML allows after the root element); each disk's 512-byte header is left as a hole, the VMDK writer appends
 * straight into the archive through a MemberOutput, and the header is filled in when the size is known. The
 * output is opened (checked and locked) before any input, and given its name only when complete
 * (io/open-output.ts).
 *
 * To a pipe (output "-"), the descriptor must precede the disks yet names their sizes, so each disk is first
 * written to a temporary VMDK (in $TMPDIR), then everything is streamed out in order: that costs disk space
 * for the compressed disks, never for the virtual size.
 *
 * Every member gets a USTAR header while its size fits USTAR (under 8 GiB); a bigger one gets a GNU header
 * with a base-256 size, never PAX (vSphere refuses PAX). Digests are computed while the bytes are written.
 *
 * An input is a path (opened and closed here) or an already-open ImageSource — e.g. a qcow2 read in place
 * from a cloud store over HTTP Range — which is read as is and left open: its caller owns it.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, extname, join } from "node:path";
import type { Writable } from "node:stream";
import type { ImageSource, ReferencePolicy } from "../types.js";
import { UsageError } from "../errors.js";
import { getDriver } from "../registry.js";
import { openImage } from "../engine/open-image.js";
import { convertImage, countLocalData, type PipelineOptions } from "../engine/convert.js";
import { StreamOutputFile, type FileOutput } from "../io/output-file.js";
import { TemporaryOutputFile } from "../io/replacing-output.js";
import { openOutputFile } from "../io/open-output.js";
import { outputModeFor } from "../io/output-mode.js";
import { withForceShare } from "../io/force-share.js";
import {
  controllerSpelling,
  osType,
  nicSpelling,
  type ControllerModel,
  type NicModel,
  type OsTypeName,
} from "./hardware-profile.js";
import { buildOvfDescriptor, type OvfDescriptorSpec, type OvfDiskSpec } from "./ovf-descriptor-writer.js";
import { formatManifest, newDigest, type ManifestAlgorithm, type ManifestEntry } from "./manifest.js";
import { MemberOutput } from "./member-output.js";
import { ovaTarget, type OvaTargetName, type OvfVersion } from "./ova-targets.js";
import {
  TAR_BLOCK,
  USTAR_MAX_SIZE,
  encodeTarHeader,
  flavourForSize,
  tarPadding,
  type TarFlavour,
} from "./tar-header.js";

/** A disk to export: a path to open, or an open source the caller keeps (and closes). */
export type OvaInput = string | ImageSource;

export interface OvaExportRequest extends PipelineOptions {
  readonly inputs: readonly OvaInput[];
  /** Output path, or "-" for standard output. */
  readonly output: string;
  readonly target: OvaTargetName;
  readonly name?: string;
  readonly description?: string;
  readonly cpus?: number;
  readonly memoryMiB?: number;
  readonly nic?: NicModel | "none";
  readonly controller?: ControllerModel;
  readonly osType?: OsTypeName;
  readonly ovfVersion?: OvfVersion;
  readonly manifest?: ManifestAlgorithm | "none";
  readonly hwVersion?: number;
  readonly inputFormat?: string;
  readonly references?: ReferencePolicy;
  /**
   * Members of this many bytes or more get a GNU header. Default (and ceiling): 8 GiB, the first size USTAR
   * cannot hold; tests lower it to exercise GNU headers without writing gigabytes.
   */
  readonly gnuThreshold?: number;
  /** Member modification time in seconds; default SOURCE_DATE_EPOCH or now. */
  readonly mtime?: number;
  /** Where the pipe mode keeps its temporary VMDKs (default: the OS temporary folder). */
  readonly tempDir?: string;
  /** Where the pipe mode writes (default: process.stdout). */
  readonly stream?: Writable;
  /** Read the inputs even while another process writes them, taking no lock (qemu-img -U). */
  readonly forceShare?: boolean;
}

export interface OvaMemberReport {
  readonly name: string;
  readonly size: number;
  readonly flavour: TarFlavour;
  readonly digest?: string;
}

export interface OvaExportResult {
  readonly output: string;
  readonly target: OvaTargetName;
  readonly ovfVersion: OvfVersion;
  readonly manifest: ManifestAlgorithm | "none";
  readonly members: readonly OvaMemberReport[];
  readonly virtualSize: number;
  readonly dataBytes: number;
  readonly seconds: number;
}

const DEFAULT_CPUS = 2;
const DEFAULT_MEMORY_MIB = 2048;
/** Stands for a size in the reserved descriptor: wider than any safe integer, within xs:long. */
const SIZE_PLACEHOLDER = 1e18;
const END_OF_ARCHIVE = Buffer.alloc(2 * TAR_BLOCK);

interface ResolvedExport {
  readonly spec: Omit<OvfDescriptorSpec, "disks">;
  readonly manifest: ManifestAlgorithm | "none";
  readonly baseName: string;
  readonly vmdkOptions: Record<string, string>;
  readonly threshold: number;
  readonly mtime: number;
}

function resolveExport(request: OvaExportRequest): ResolvedExport {
  const target = ovaTarget(request.target);
  if (request.inputs.length === 0) throw new UsageError("export needs at least one input image");
  if (request.inputs.length > target.maxDisks) {
    throw new UsageError(
      `${target.name} takes at most ${target.maxDisks} disks per appliance (${request.inputs.length} given)`,
    );
  }
  const ovfVersion = request.ovfVersion ?? "1.0";
  const nic = request.nic ?? target.defaultNic;
  const controller = request.controller ?? target.defaultController;
  const os = request.osType ?? target.defaultOsType;
  // Validate every spelling before any byte is written.
  osType(os);
  if (nic !== "none") nicSpelling(nic, target.consumer);
  const ctl = controllerSpelling(controller, target.consumer);
  if (controller === "ide" && request.inputs.length > 4)
    throw new UsageError("IDE takes at most 4 disks (2 channels × 2)");
  const cpus = request.cpus ?? DEFAULT_CPUS;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 128) throw new UsageError(`--cpus ${cpus} is not 1..128`);
  const memoryMiB = request.memoryMiB ?? DEFAULT_MEMORY_MIB;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 4 || memoryMiB > 4 * 2 ** 20) {
    throw new UsageError(`--memory ${memoryMiB} is not 4..4194304 MiB`);
  }
  if (target.name === "virtualbox" && request.hwVersion !== undefined) {
    throw new UsageError("--hw-version applies to the vmware and aws targets (VirtualBox's family is virtualbox-2.2)");
  }
  const hwVersion = request.hwVersion ?? target.defaultHwVersion;
  const name = request.name ?? defaultName(request.inputs[0]!);
  if (!name.trim()) throw new UsageError("--name must not be empty");
  const threshold = Math.min(request.gnuThreshold ?? USTAR_MAX_SIZE + 1, USTAR_MAX_SIZE + 1);
  const envEpoch = Number(process.env.SOURCE_DATE_EPOCH);
  const mtime = request.mtime ?? (Number.isFinite(envEpoch) ? envEpoch : Math.floor(Date.now() / 1000));
  return {
    spec: {
      ovfVersion,
      target,
      name,
      description: request.description,
      cpus,
      memoryMiB,
      nic,
      controller,
      osType: os,
      hwVersion,
      machineUuid: randomUUID(),
      producer: "Generated by chromogenic",
    },
    manifest: request.manifest ?? target.defaultManifest(ovfVersion),
    baseName: memberBaseName(name),
    vmdkOptions: {
      subformat: "streamOptimized",
      adapter_type: ctl.vmdkAdapter,
      // ddb.virtualHWVersion: ESXi checks it against the host; the VM's family says the same number.
      ...(target.consumer === "vmware" ? { hwversion: String(hwVersion) } : {}),
    },
    threshold,
    mtime,
  };
}

/** The appliance's name when none is given: the first input's file name without its extension. */
export function defaultName(input: OvaInput): string {
  if (typeof input !== "string") return "appliance";
  const base = basename(input, extname(input));
  return base || "appliance";
}

/** Member names are flat, short, printable ASCII: what every tar reader and importer takes. */
function memberBaseName(name: string): string {
  const safe = name
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[._-]+/, "")
    .slice(0, 60);
  return safe || "appliance";
}

interface DiskPlan {
  readonly source: ImageSource;
  /** The data bytes of a local disk, counted alongside its conversion for its progress's total. */
  readonly dataTotal?: Promise<number | undefined>;
  readonly spec: Omit<OvfDiskSpec, "fileSize" | "populatedSize">;
}

/** Exports `request.inputs` as one appliance. The caller's AbortSignal cancels; nothing half-written remains. */
export async function exportOva(request: OvaExportRequest): Promise<OvaExportResult> {
  const started = performance.now();
  const resolved = resolveExport(request);
  const vmdk = getDriver("vmdk");
  if (!vmdk.create) throw new UsageError("the vmdk driver cannot write: OVA export needs it");
  const firstPath = request.inputs.find((input) => typeof input === "string");
  const output =
    request.output === "-" ? undefined : await openOutputFile(request.output, { mode: await outputModeFor(firstPath) });
  try {
    return await withForceShare(request.forceShare, () => exportTo(request, resolved, output, started));
  } finally {
    await output?.discard();
  }
}

async function exportTo(
  request: OvaExportRequest,
  resolved: ResolvedExport,
  output: FileOutput | undefined,
  started: number,
): Promise<OvaExportResult> {
  const plans: DiskPlan[] = [];
  // Only what this call opened is closed here; sources passed in stay their caller's.
  const opened: ImageSource[] = [];
  try {
    for (let i = 0; i < request.inputs.length; i++) {
      const input = request.inputs[i]!;
      let source: ImageSource;
      if (typeof input === "string") {
        source = (await openImage(input, { format: request.inputFormat, references: request.references })).source;
        opened.push(source);
      } else {
        source = input;
      }
      plans.push({
        source,
        dataTotal: countLocalData(input, source, request),
        spec: {
          diskId: `vmdisk${i + 1}`,
          fileId: `file${i + 1}`,
          href: `${resolved.baseName}-disk${i + 1}.vmdk`,
          capacity: source.virtualSize,
          vboxUuid: randomUUID(),
        },
      });
      if (source.virtualSize > resolved.spec.target.maxDiskBytes) {
        throw new UsageError(
          `${typeof input === "string" ? input : `disk ${i + 1}`}: ${source.virtualSize}-byte disk exceeds what ${resolved.spec.target.name} imports ` +
            `(${resolved.spec.target.maxDiskBytes} bytes)`,
        );
      }
    }
    const result = output
      ? await writeToFile(request, resolved, plans, output)
      : await writeToStream(request, resolved, plans);
    return { ...result, seconds: (performance.now() - started) / 1000 };
  } finally {
    // Counts still walking a disk's map end (they never reject) before its source closes.
    await Promise.all(plans.map((p) => p.dataTotal));
    await Promise.allSettled(opened.map((s) => s.close()));
  }
}

type WriteResult = Omit<OvaExportResult, "seconds">;

function descriptorFor(resolved: ResolvedExport, disks: readonly OvfDiskSpec[]): Buffer {
  return Buffer.from(buildOvfDescriptor({ ...resolved.spec, disks }), "utf8");
}

function header(name: string, size: number, resolved: ResolvedExport): { block: Buffer; flavour: TarFlavour } {
  const flavour = flavourForSize(size, resolved.threshold);
  return {
    block: encodeTarHeader({ name, size, mtime: resolved.mtime, uname: "chromogenic", gname: "chromogenic" }, flavour),
    flavour,
  };
}

async function writeToFile(
  request: OvaExportRequest,
  resolved: ResolvedExport,
  plans: DiskPlan[],
  output: FileOutput,
): Promise<WriteResult> {
  const ovfName = `${resolved.baseName}.ovf`;
  const reserved = descriptorFor(
    resolved,
    plans.map((p) => ({ ...p.spec, fileSize: SIZE_PLACEHOLDER, populatedSize: SIZE_PLACEHOLDER })),
  ).length;
  const members: OvaMemberReport[] = [];
  const manifestEntries: ManifestEntry[] = [];
  const ovfHeader = header(ovfName, reserved, resolved);
  await output.writeAt(ovfHeader.block, 0);
  let pos = TAR_BLOCK + reserved + tarPadding(reserved);
  const disks: OvfDiskSpec[] = [];
  let virtualSize = 0;
  let dataBytes = 0;
  for (const plan of plans) {
    const headerAt = pos;
    const digest = newDigest(resolved.manifest === "none" ? "sha256" : resolved.manifest);
    const member = new MemberOutput(output, headerAt + TAR_BLOCK, digest, plan.spec.href);
    const target = await getDriver("vmdk").create!(member, plan.source.virtualSize, resolved.vmdkOptions);
    const stats = await convertImage(plan.source, target, {
      ...request,
      dataTotal: plan.dataTotal ?? request.dataTotal,
    });
    const size = member.position;
    const h = header(plan.spec.href, size, resolved);
    await output.writeAt(h.block, headerAt);
    const pad = tarPadding(size);
    if (pad) await output.writeAt(Buffer.alloc(pad), headerAt + TAR_BLOCK + size);
    pos = headerAt + TAR_BLOCK + size + pad;
    disks.push({ ...plan.spec, fileSize: size, populatedSize: stats.dataBytes });
    const hex = digest.digest("hex");
    members.push({
      name: plan.spec.href,
      size,
      flavour: h.flavour,
      digest: resolved.manifest === "none" ? undefined : hex,
    });
    if (resolved.manifest !== "none")
      manifestEntries.push({ name: plan.spec.href, algorithm: resolved.manifest, digest: hex });
    virtualSize += plan.source.virtualSize;
    dataBytes += stats.dataBytes;
  }
  const ovf = padTo(descriptorFor(resolved, disks), reserved);
  await output.writeAt(ovf, TAR_BLOCK);
  if (tarPadding(reserved)) await output.writeAt(Buffer.alloc(tarPadding(reserved)), TAR_BLOCK + reserved);
  const ovfDigest = resolved.manifest === "none" ? undefined : newDigest(resolved.manifest).update(ovf).digest("hex");
  members.unshift({ name: ovfName, size: reserved, flavour: ovfHeader.flavour, digest: ovfDigest });
  if (resolved.manifest !== "none") {
    manifestEntries.unshift({ name: ovfName, algorithm: resolved.manifest, digest: ovfDigest! });
    const mfName = `${resolved.baseName}.mf`;
    const mf = Buffer.from(formatManifest(manifestEntries), "utf8");
    const h = header(mfName, mf.length, resolved);
    await output.writeAt(Buffer.concat([h.block, mf, Buffer.alloc(tarPadding(mf.length))]), pos);
    pos += TAR_BLOCK + mf.length + tarPadding(mf.length);
    members.push({ name: mfName, size: mf.length, flavour: h.flavour });
  }
  await output.writeAt(END_OF_ARCHIVE, pos);
  await output.commit();
  return finish(request, resolved, members, virtualSize, dataBytes);
}

/** The final descriptor, padded with spaces (before its last newline) to the length reserved for it. */
function padTo(descriptor: Buffer, length: number): Buffer {
  if (descriptor.length > length) {
    throw new Error(`internal: descriptor grew from ${length} to ${descriptor.length} bytes`);
  }
  const body = descriptor.subarray(0, descriptor.length - 1);
  return Buffer.concat([body, Buffer.alloc(length - descriptor.length, " "), Buffer.from("\n")]);
}

async function writeToStream(
  request: OvaExportRequest,
  resolved: ResolvedExport,
  plans: DiskPlan[],
): Promise<WriteResult> {
  const tempDir = await mkdtemp(join(request.tempDir ?? tmpdir(), "chromogenic-ova-"));
  const temps: TemporaryOutputFile[] = [];
  try {
    const disks: OvfDiskSpec[] = [];
    const digests: string[] = [];
    let virtualSize = 0;
    let dataBytes = 0;
    for (const plan of plans) {
      const temp = await TemporaryOutputFile.create(join(tempDir, plan.spec.href));
      temps.push(temp);
      const digest = newDigest(resolved.manifest === "none" ? "sha256" : resolved.manifest);
      const member = new MemberOutput(temp, 0, digest, plan.spec.href);
      const target = await getDriver("vmdk").create!(member, plan.source.virtualSize, resolved.vmdkOptions);
      const stats = await convertImage(plan.source, target, {
        ...request,
        dataTotal: plan.dataTotal ?? request.dataTotal,
      });
      disks.push({ ...plan.spec, fileSize: member.position, populatedSize: stats.dataBytes });
      digests.push(digest.digest("hex"));
      virtualSize += plan.source.virtualSize;
      dataBytes += stats.dataBytes;
    }
    const out = new StreamOutputFile(request.stream ?? process.stdout);
    const members: OvaMemberReport[] = [];
    const manifestEntries: ManifestEntry[] = [];
    const ovfName = `${resolved.baseName}.ovf`;
    const ovf = descriptorFor(resolved, disks);
    const ovfDigest = resolved.manifest === "none" ? undefined : newDigest(resolved.manifest).update(ovf).digest("hex");
    const ovfHeader = header(ovfName, ovf.length, resolved);
    await out.append(Buffer.concat([ovfHeader.block, ovf, Buffer.alloc(tarPadding(ovf.length))]));
    members.push({ name: ovfName, size: ovf.length, flavour: ovfHeader.flavour, digest: ovfDigest });
    if (resolved.manifest !== "none")
      manifestEntries.push({ name: ovfName, algorithm: resolved.manifest, digest: ovfDigest! });
    for (let i = 0; i < disks.length; i++) {
      const disk = disks[i]!;
      const h = header(disk.href, disk.fileSize, resolved);
      await out.append(h.block);
      await copyFileTo(temps[i]!.handle, out);
      await out.append(Buffer.alloc(tarPadding(disk.fileSize)));
      const digest = resolved.manifest === "none" ? undefined : digests[i]!;
      members.push({ name: disk.href, size: disk.fileSize, flavour: h.flavour, digest });
      if (resolved.manifest !== "none")
        manifestEntries.push({ name: disk.href, algorithm: resolved.manifest, digest: digests[i]! });
    }
    if (resolved.manifest !== "none") {
      const mfName = `${resolved.baseName}.mf`;
      const mf = Buffer.from(formatManifest(manifestEntries), "utf8");
      const h = header(mfName, mf.length, resolved);
      await out.append(Buffer.concat([h.block, mf, Buffer.alloc(tarPadding(mf.length))]));
      members.push({ name: mfName, size: mf.length, flavour: h.flavour });
    }
    await out.append(END_OF_ARCHIVE);
    return finish(request, resolved, members, virtualSize, dataBytes);
  } finally {
    await Promise.allSettled(temps.map((t) => t.discard()));
    await rm(tempDir, { recursive: true, force: true });
  }
}

/** Streams the whole of a temporary file, read through its own handle (it may have no name), into `out`. */
async function copyFileTo(handle: FileHandle, out: StreamOutputFile): Promise<void> {
  const chunk = Buffer.allocUnsafe(4 * 2 ** 20);
  for (let position = 0; ;) {
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    await out.append(Buffer.from(chunk.subarray(0, bytesRead)));
  }
}

function finish(
  request: OvaExportRequest,
  resolved: ResolvedExport,
  members: OvaMemberReport[],
  virtualSize: number,
  dataBytes: number,
): WriteResult {
  return {
    output: request.output,
    target: resolved.spec.target.name,
    ovfVersion: resolved.spec.ovfVersion,
    manifest: resolved.manifest,
    members,
    virtualSize,
    dataBytes,
  };
}
