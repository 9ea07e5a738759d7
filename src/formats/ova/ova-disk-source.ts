/**
 * A disk of an OVA as an ImageSource, read where it lies in the archive: the VMDK member (or its chunks, read
 * as one) is exposed as an InputSlice and handed to the VMDK driver (openVmdkFromInput), so converting a
 * disk out of an OVA reads only the grains it needs and extracts nothing. A disk without ovf:format is read
 * as what its content is (disk-content-format.ts): in place when its driver reads byte ranges (VMDK, qcow2),
 * otherwise copied out to a temporary file first.
 *
 * A gzip-compressed file (ovf:compression="gzip", as ovftool --compress writes) cannot be read at random, so
 * it is inflated to a temporary file first — and inflation stops with an error once the output passes what a
 * disk of the declared capacity can hold (capacity plus 2% and 64 MiB of metadata): a small archive must not
 * be able to fill the disk (a "zip bomb").
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { CorruptImageError, UnsupportedFeatureError } from "../errors.js";
import { InputSlice } from "../io/input-slice.js";
import { openImage } from "../engine/open-image.js";
import type { ImageSource } from "../types.js";
import { openVmdkFromInput } from "../drivers/vmdk/vmdk-driver.js";
import { openQcow2FromInput } from "../drivers/qcow2/qcow2-driver.js";
import type { ImageInput } from "../io/image-input.js";
import { InputFile } from "../io/input-file.js";
import { diskContentFormat } from "./disk-content-format.js";
import type { OvaArchive, OvaDisk } from "./ova-reader.js";

/** The drivers that read a disk from byte ranges of the archive (each owns the input it is given). */
const IN_PLACE_READERS: Readonly<Record<string, (input: ImageInput, label: string) => Promise<ImageSource>>> = {
  vmdk: openVmdkFromInput,
  qcow2: openQcow2FromInput,
};

/** The format URIs that name a VMDK (VMware's, OVF 0.9's "#sparse", VirtualBox's "#compressed"). */
export function isVmdkFormat(uri: string): boolean {
  return /vmdk/i.test(uri);
}

export function ovaDisk(ova: OvaArchive, index: number): OvaDisk {
  const disk = ova.disks.find((d) => d.index === index);
  if (!disk) {
    const have = ova.disks.map((d) => d.index).join(", ") || "none";
    throw new UnsupportedFeatureError(`${ova.path}: no disk ${index} with content in the appliance (disks: ${have})`);
  }
  return disk;
}

export async function openOvaDisk(ova: OvaArchive, index: number): Promise<ImageSource> {
  const disk = ovaDisk(ova, index);
  const label = `${ova.path}:${disk.file.href}`;
  const declared = disk.disk.format;
  if (declared !== "" && !isVmdkFormat(declared)) {
    throw new UnsupportedFeatureError(
      `${label}: disk format "${declared}" is not VMDK; chromogenic reads VMDK disks from OVAs`,
    );
  }
  if (disk.file.compression === "gzip") return copyOutAndOpen(ova, disk, label, { inflate: true });
  if (disk.file.compression) {
    throw new UnsupportedFeatureError(`${label}: compression "${disk.file.compression}" is not supported (gzip is)`);
  }
  const input = await openDiskSlice(ova, disk);
  let format: string;
  try {
    format = declared ? "vmdk" : await diskContentFormat(input);
  } catch (e) {
    await input.close();
    throw e;
  }
  const open = IN_PLACE_READERS[format];
  if (open) return open(input, label);
  // A format whose driver opens files only: copied out of the archive first (no bigger than its members).
  await input.close();
  return copyOutAndOpen(ova, disk, label, { inflate: false, format });
}

/** The stored bytes of `disk` (its member, or its chunks as one), read in place. */
export function openDiskSlice(ova: OvaArchive, disk: OvaDisk): Promise<InputSlice> {
  const ranges = disk.members.map((m) => ({ offset: m.dataOffset, length: m.size }));
  return InputSlice.open(ova.path, ranges, `${ova.path}:${disk.file.href}`);
}

/** The content format of an undeclared disk `path` (a copied-out file). */
async function fileContentFormat(path: string): Promise<string> {
  const file = await InputFile.open(path);
  try {
    return await diskContentFormat(file);
  } finally {
    await file.close();
  }
}

/**
 * Copies the disk's members into a temporary file — inflating them when gzip-compressed, within the bomb
 * limit — and opens it with the driver of `how.format` (else VMDK when declared, else what the content is).
 * The file is removed when the source closes.
 */
async function copyOutAndOpen(
  ova: OvaArchive,
  disk: OvaDisk,
  label: string,
  how: { readonly inflate: boolean; readonly format?: string },
): Promise<ImageSource> {
  const limit = how.inflate ? Math.ceil(disk.disk.capacity * 1.02) + 64 * 2 ** 20 : Infinity;
  const dir = await mkdtemp(join(tmpdir(), "chromogenic-ova-disk-"));
  const path = join(dir, "disk");
  try {
    let written = 0;
    const cap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        written += chunk.length;
        if (written > limit) {
          done(
            new CorruptImageError(
              `${label}: gzip data expands past ${limit} bytes, more than a ${disk.disk.capacity}-byte disk can need`,
            ),
          );
        } else done(null, chunk);
      },
    });
    const sources = disk.members.map((m) =>
      createReadStream(ova.path, { start: m.dataOffset, end: m.dataOffset + m.size - 1 }),
    );
    const out = createWriteStream(path, { flags: "wx" });
    await pipeline(concatStreams(sources), how.inflate ? createGunzip() : new PassThrough(), cap, out).catch(
      (e: unknown) => {
        if (e instanceof CorruptImageError || !how.inflate) throw e;
        throw new CorruptImageError(`${label}: gzip data is corrupt: ${(e as Error).message}`, { cause: e });
      },
    );
    const format = how.format ?? (disk.disk.format ? "vmdk" : await fileContentFormat(path));
    const { source } = await openImage(path, { format });
    return withCleanup(source, () => rm(dir, { recursive: true, force: true }));
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

async function* concatStreams(streams: AsyncIterable<Buffer>[]): AsyncGenerator<Buffer> {
  for (const s of streams) for await (const chunk of s) yield chunk;
}

function withCleanup(source: ImageSource, cleanup: () => Promise<void>): ImageSource {
  return {
    format: source.format,
    virtualSize: source.virtualSize,
    read: (o, l, into) => source.read(o, l, into),
    extents: (o, l) => source.extents(o, l),
    details: () => source.details(),
    close: async () => {
      try {
        await source.close();
      } finally {
        await cleanup();
      }
    },
  };
}
