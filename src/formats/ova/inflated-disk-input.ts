/**
 * A gzip-compressed disk of an OVA (ovf:compression="gzip", as ovftool --compress writes) read as it inflates:
 * its stored bytes are read front to back, inflated, and handed on as an input read once in order, which the
 * drivers that read in order take as they take a pipe. Nothing is written anywhere: an OVA whose disk inflates
 * to terabytes costs no disk space, and a cancelled conversion has no temporary file to remove.
 *
 * Inflation still costs time, so it stops with an error once it passes what a disk of the declared capacity
 * can need (a "zip bomb": a small archive whose disk would inflate for hours).
 */
import { Readable } from "node:stream";
import { createGunzip, type Gunzip } from "node:zlib";
import { ChromogenicError, CorruptImageError } from "../errors.js";
import type { ImageInput } from "../inputs/image-input.js";
import { StreamInput } from "../inputs/stream-input.js";

/** Stored bytes read at a time; inflated bytes handed on at a time. */
const STORED_READ = 1 * 2 ** 20;
const INFLATED_CHUNK = 256 * 2 ** 10;

/**
 * The most a gzip-compressed disk of `capacity` bytes may inflate to: the disk, plus 2% and 64 MiB for a
 * format's metadata and for grains that compress badly.
 */
export function inflationLimit(capacity: number): number {
  return Math.ceil(capacity * 1.02) + 64 * 2 ** 20;
}

export class InflatedDiskInput extends StreamInput {
  private constructor(
    stream: Readable,
    label: string,
    private readonly stored: ImageInput,
    /** Settles once inflation has stopped and no read of `stored` is in flight. */
    private readonly stopped: () => Promise<void>,
  ) {
    super(stream, label);
  }

  /**
   * The inflated content of `stored` (which this input owns: closed with it), refused once past `limit` bytes.
   * `label` names the disk in messages ("appliance.ova:disk1.vmdk.gz").
   */
  static of(stored: ImageInput, label: string, limit: number): InflatedDiskInput {
    let started = false;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const chunks = inflate(stored, label, limit, () => (started = true), finish);
    const stopped = () => (started ? finished : Promise.resolve());
    return new InflatedDiskInput(Readable.from(chunks), label, stored, stopped);
  }

  override async close(): Promise<void> {
    await super.close();
    try {
      await this.stopped();
    } finally {
      await this.stored.close();
    }
  }
}

async function* inflate(
  stored: ImageInput,
  label: string,
  limit: number,
  onStart: () => void,
  onStop: () => void,
): AsyncGenerator<Buffer> {
  onStart();
  const gunzip = createGunzip({ chunkSize: INFLATED_CHUNK });
  let stop = false;
  // Fed as fast as it is drained: at most one read of stored bytes and zlib's buffers are held at once.
  const feeding = (async () => {
    try {
      for (let at = 0; at < stored.size && !stop; at += STORED_READ) {
        const n = Math.min(STORED_READ, stored.size - at);
        const bytes = await stored.readExact(at, n, undefined, "gzip-compressed data");
        if (!stop && !gunzip.write(bytes)) await drained(gunzip);
      }
      if (!stop) gunzip.end();
    } catch (e) {
      gunzip.destroy(e as Error);
    }
  })();
  let inflated = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      inflated += chunk.length;
      if (inflated > limit) {
        throw new CorruptImageError(
          `${label}: the gzip data inflates past ${limit} bytes, more than the disk's declared capacity can need`,
        );
      }
      yield chunk;
    }
  } catch (e) {
    throw inflationError(e, label);
  } finally {
    stop = true;
    gunzip.destroy();
    await feeding;
    onStop();
  }
}

/** Resolves once `gunzip` takes more input, or is gone. */
function drained(gunzip: Gunzip): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      gunzip.off("drain", done);
      gunzip.off("close", done);
      resolve();
    };
    gunzip.on("drain", done);
    gunzip.on("close", done);
  });
}

/** zlib's errors ("incorrect header check", "unexpected end of file") said of the user's file. */
function inflationError(e: unknown, label: string): unknown {
  if (e instanceof ChromogenicError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? "";
  if (!code.startsWith("Z_")) return e;
  const what = code === "Z_BUF_ERROR" ? "ends before its compressed stream does" : "is corrupt";
  return new CorruptImageError(`${label}: the gzip data ${what} (${(e as Error).message})`, { cause: e });
}
