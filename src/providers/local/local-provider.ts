/**
 * An image store in a directory: `<id>.img` holds the bytes (sparse: zero blocks are never written), `<id>.json`
 * the metadata (name, disk format, size, SHA-256, properties, visibility). Uploads are written as
 * `.<id>.img.partial` and renamed only once complete and hashed, after the metadata, so a crash leaves either
 * nothing visible or a whole image. It is the embedded default: every workflow runs on it with no cloud.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import { AbortedError, ChromogenicError, UnsupportedFeatureError } from "../../formats/errors.js";
import type { ImageInput } from "../../formats/inputs/image-input.js";
import { FileInput } from "../../formats/inputs/file-input.js";
import { PRIVATE_OUTPUT_MODE } from "../../formats/io/output-mode.js";
import { readableFormats } from "../../formats/registry.js";
import type {
  CreateImageFromInstanceRequest,
  DownloadOptions,
  ImageProvider,
  ProviderCapabilities,
  ProviderImage,
  UploadImageRequest,
  UploadOptions,
} from "../provider.js";
import { LocalImageRecordSchema, type LocalImageRecord } from "./local-image-record.js";
import { isXenGuestImage } from "../xen-guest-image.js";

/** Blocks of zeros this long (aligned to the position in the image) are left as holes. */
const SPARSE_BLOCK = 64 * 1024;

/** A local store's error: a missing image, a record or data that does not check out, a refused id. */
export class LocalImageError extends ChromogenicError {
  constructor(message: string) {
    super(message, "ESTORE");
  }
}

export class LocalProvider implements ImageProvider {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  get label(): string {
    return `local:${this.root}`;
  }

  async capabilities(): Promise<ProviderCapabilities> {
    return {
      diskFormats: readableFormats(),
      canCreateImageFromInstance: false,
      resumableDownload: true,
      sharing: false,
      randomAccess: true,
      hashAlgorithm: "sha256",
    };
  }

  private dataPath(id: string): string {
    return join(this.root, `${checkId(id)}.img`);
  }

  private recordPath(id: string): string {
    return join(this.root, `${checkId(id)}.json`);
  }

  private partialPath(id: string): string {
    return join(this.root, `.${checkId(id)}.img.partial`);
  }

  private async readRecord(id: string): Promise<LocalImageRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.recordPath(id), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new LocalImageError(`${this.recordPath(id)}: not a valid image record: ${(e as Error).message}`);
    }
    const parsed = LocalImageRecordSchema.safeParse(json);
    if (!parsed.success) throw new LocalImageError(`${this.recordPath(id)}: not a valid image record: ${parsed.error}`);
    return parsed.data;
  }

  async *listImages(): AsyncIterable<ProviderImage> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    for (const name of names.sort()) {
      if (!name.endsWith(".json") || name.startsWith(".")) continue;
      const id = name.slice(0, -".json".length);
      if (!isId(id)) continue;
      const record = await this.readRecord(id);
      // A record whose data is not renamed into place yet is an upload that never finished.
      if (record && (await exists(this.dataPath(id)))) yield toProviderImage(record);
    }
  }

  async getImage(idOrName: string): Promise<ProviderImage | undefined> {
    if (isId(idOrName)) {
      const record = await this.readRecord(idOrName);
      if (record && (await exists(this.dataPath(idOrName)))) return toProviderImage(record);
    }
    const matches: ProviderImage[] = [];
    for await (const image of this.listImages()) if (image.name === idOrName) matches.push(image);
    if (matches.length > 1) {
      throw new LocalImageError(
        `${matches.length} images in ${this.label} are named "${idOrName}" (${matches.map((m) => m.id).join(", ")}): use an id`,
      );
    }
    return matches[0];
  }

  private async requireImage(id: string): Promise<LocalImageRecord> {
    const record = isId(id) ? await this.readRecord(id) : undefined;
    if (!record || !(await exists(this.dataPath(id)))) throw new LocalImageError(`${this.label}: no image ${id}`);
    return record;
  }

  async localImagePath(id: string): Promise<string | undefined> {
    const record = await this.requireImage(id);
    const size = (await stat(this.dataPath(id))).size;
    if (size !== record.sizeBytes) throw this.sizeMismatch(id, size, record.sizeBytes);
    return this.dataPath(id);
  }

  private sizeMismatch(id: string, bytes: number, recorded: number): LocalImageError {
    return new LocalImageError(`${this.label}: image ${id} has ${bytes} bytes, its record says ${recorded}`);
  }

  async *downloadImage(id: string, options: DownloadOptions = {}): AsyncIterable<Uint8Array> {
    const record = await this.requireImage(id);
    const offset = options.offset ?? 0;
    const hash = offset === 0 && options.verify !== false ? createHash("sha256") : undefined;
    let bytes = offset;
    const stream = createReadStream(this.dataPath(id), {
      start: offset,
      highWaterMark: 1024 * 1024,
      signal: options.signal,
    });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      hash?.update(chunk);
      options.onProgress?.(bytes, record.sizeBytes);
      yield chunk;
    }
    if (bytes !== record.sizeBytes) throw this.sizeMismatch(id, bytes, record.sizeBytes);
    if (hash && hash.digest("hex") !== record.sha256) {
      throw new LocalImageError(`${this.label}: image ${id}'s data no longer matches its recorded SHA-256`);
    }
  }

  /**
   * The image's data read in place. Its size is checked against the record (its SHA-256 is checked by the
   * reads that go through it whole, downloadImage's): a store file cut short or grown must not pass for the image.
   */
  async openImageInput(id: string): Promise<ImageInput> {
    const record = await this.requireImage(id);
    const input = await FileInput.open(this.dataPath(id));
    if (input.size !== record.sizeBytes) {
      await input.close();
      throw new LocalImageError(
        `${this.label}: image ${id} has ${input.size} bytes, its record says ${record.sizeBytes}`,
      );
    }
    return input;
  }

  async uploadImage(
    request: UploadImageRequest,
    data: AsyncIterable<Uint8Array>,
    options: UploadOptions = {},
  ): Promise<ProviderImage> {
    if (!readableFormats().includes(request.diskFormat)) {
      throw new LocalImageError(`${this.label} stores ${readableFormats().join(", ")}, not "${request.diskFormat}"`);
    }
    await mkdir(this.root, { recursive: true });
    const id = randomUUID();
    const partial = this.partialPath(id);
    // Readable by the store's owner only, like its records: a store's images are private unless shared, and a
    // disk image holds everything its guest held.
    const handle = await open(partial, "wx", PRIVATE_OUTPUT_MODE);
    let committed = false;
    try {
      await options.onCreated?.(id);
      const hash = createHash("sha256");
      let position = 0;
      for await (const chunk of data) {
        if (options.signal?.aborted) throw new AbortedError();
        const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        hash.update(buf);
        await writeSparse(handle, buf, position);
        position += buf.length;
        options.onProgress?.(position, request.sizeBytes);
      }
      if (request.sizeBytes !== undefined && position !== request.sizeBytes) {
        throw new LocalImageError(`the data had ${position} bytes, ${request.sizeBytes} were announced`);
      }
      await handle.truncate(position);
      await handle.sync();
      await handle.close();
      const sha256 = hash.digest("hex");
      const trusted = options.trustedHash;
      if (trusted?.algorithm === "sha256" && trusted.value !== sha256) {
        throw new LocalImageError(`the data's SHA-256 is ${sha256}, ${trusted.value} was expected`);
      }
      const record: LocalImageRecord = {
        id,
        name: request.name,
        diskFormat: request.diskFormat,
        sizeBytes: position,
        sha256,
        properties: { ...request.properties },
        visibility: request.visibility ?? "private",
        createdAt: new Date().toISOString(),
      };
      await writeFileAtomically(this.recordPath(id), JSON.stringify(record, null, 2) + "\n");
      await rename(partial, this.dataPath(id));
      committed = true;
      return toProviderImage(record);
    } finally {
      if (!committed) {
        await handle.close().catch(() => undefined);
        await rm(partial, { force: true });
        await rm(this.recordPath(id), { force: true });
      }
    }
  }

  /** Removes the image, or what an interrupted upload of that id left. Missing images are not an error. */
  async deleteImage(id: string): Promise<void> {
    await rm(this.dataPath(id), { force: true });
    await rm(this.partialPath(id), { force: true });
    await rm(this.recordPath(id), { force: true });
  }

  async createImageFromInstance(request: CreateImageFromInstanceRequest): Promise<ProviderImage> {
    throw new UnsupportedFeatureError(
      `${this.label} is a directory of images and has no instances: cannot snapshot "${request.instance}" ` +
        "(use --image, or a cloud that runs instances)",
    );
  }
}

function isId(s: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s);
}

/** Ids become file names: anything but a UUID could name a path outside the store. */
function checkId(id: string): string {
  if (!isId(id)) throw new LocalImageError(`"${id}" is not a local image id`);
  return id;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function writeSparse(handle: FileHandle, buf: Buffer, position: number) {
  let i = 0;
  while (i < buf.length) {
    const blockEnd = Math.min(buf.length, i + SPARSE_BLOCK - ((position + i) % SPARSE_BLOCK));
    const piece = buf.subarray(i, blockEnd);
    if (!isZero(piece)) {
      let done = 0;
      while (done < piece.length) {
        const { bytesWritten } = await handle.write(piece, done, piece.length - done, position + i + done);
        done += bytesWritten;
      }
    }
    i = blockEnd;
  }
}

const ZEROS = Buffer.alloc(SPARSE_BLOCK);
function isZero(b: Buffer): boolean {
  return b.equals(ZEROS.subarray(0, b.length));
}

export async function writeFileAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  const h = await open(temp, "w", 0o600);
  try {
    await h.writeFile(text);
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(temp, path);
}

function toProviderImage(r: LocalImageRecord): ProviderImage {
  return {
    id: r.id,
    name: r.name,
    state: "ready",
    rawStatus: "ready",
    diskFormat: r.diskFormat,
    sizeBytes: r.sizeBytes,
    visibility: r.visibility,
    hash: { algorithm: "sha256", value: r.sha256 },
    properties: r.properties,
    createdAt: r.createdAt,
    ...(isXenGuestImage(r.properties) ? { xenGuest: true } : {}),
  };
}
