/**
 * A disk of an OVA as an ImageSource, read where it lies in the archive: the VMDK member (or its chunks, read
 * as one) is exposed as a SliceInput and opened by the VMDK driver, so converting a disk out of an OVA reads
 * only the grains it needs and extracts nothing. A disk without ovf:format is read as what its content is,
 * detected by the registry as for any input, and read in place too.
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
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { CorruptImageError, UnsupportedFeatureError } from "../errors.js";
import { SliceInput } from "../inputs/slice-input.js";
import { FileInput } from "../inputs/file-input.js";
import { openImage } from "../engine/open-image.js";
import type { ImageSource } from "../types.js";
import type { OvaArchive, OvaDisk } from "./ova-reader.js";
import type { OvfDisk, OvfFileRef } from "./ovf-descriptor-reader.js";

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
  checkReadable(label, disk.disk, disk.file);
  if (disk.file.compression === "gzip") return inflateAndOpen(ova, disk, label);
  // A declared VMDK is opened as one; an undeclared disk is whatever its content says.
  return (await openImage(await openDiskSlice(ova, disk), { format: declared ? "vmdk" : undefined })).source;
}

/** Refuses a disk declared in a format other than VMDK, or stored with a compression other than gzip. */
export function checkReadable(label: string, disk: OvfDisk, file: OvfFileRef): void {
  if (disk.format !== "" && !isVmdkFormat(disk.format)) {
    throw new UnsupportedFeatureError(
      `${label}: disk format "${disk.format}" is not VMDK; chromogenic reads VMDK disks from OVAs`,
    );
  }
  if (file.compression !== undefined && file.compression !== "gzip") {
    throw new UnsupportedFeatureError(`${label}: compression "${file.compression}" is not supported (gzip is)`);
  }
}

/** The stored bytes of `disk` (its member, or its chunks as one), read in place. */
export async function openDiskSlice(ova: OvaArchive, disk: OvaDisk): Promise<SliceInput> {
  const ranges = disk.members.map((m) => ({ offset: m.dataOffset, length: m.size }));
  return SliceInput.of(await FileInput.open(ova.path), ranges, `${ova.path}:${disk.file.href}`, {
    closesParent: true,
  });
}

/**
 * Inflates the disk's gzip-compressed members into a temporary file, within the bomb limit, and opens it as a
 * VMDK when declared, else as what its content is. The file is removed when the source closes.
 */
async function inflateAndOpen(ova: OvaArchive, disk: OvaDisk, label: string): Promise<ImageSource> {
  const limit = Math.ceil(disk.disk.capacity * 1.02) + 64 * 2 ** 20;
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
    await pipeline(concatStreams(sources), createGunzip(), cap, out).catch((e: unknown) => {
      if (e instanceof CorruptImageError) throw e;
      throw new CorruptImageError(`${label}: gzip data is corrupt: ${(e as Error).message}`, { cause: e });
    });
    const { source } = await openImage(path, { format: disk.disk.format ? "vmdk" : undefined });
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
