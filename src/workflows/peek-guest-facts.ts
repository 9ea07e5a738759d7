/**
 * The guest facts of a raw disk that only passes through as a stream (a same-format copy into a store that
 * must be told how the disk starts): its first MiB is held back, its partition table read from that, and the
 * stream handed on whole — the held bytes first — so nothing is read twice and nothing lands on disk.
 * A table whose primary copy is damaged would need the backup at the disk's end, which has not arrived: the
 * facts are then "unknown", as they are for anything that is not a partitioned disk.
 */
import { openImage } from "../formats/engine/open-image.js";
import { CorruptImageError } from "../formats/errors.js";
import { BoundedInput } from "../formats/inputs/image-input.js";
import { firmwareSupport } from "../guest/inspect/firmware-support.js";
import type { GuestFacts } from "../providers/provider.js";

/** The MBR, the GPT header and a full 128-entry array end at 17 KiB; 1 MiB leaves room for larger arrays. */
const HEAD_BYTES = 2 ** 20;

export async function peekGuestFacts(
  data: AsyncIterable<Uint8Array>,
  size: number,
  where: string,
): Promise<{ facts: GuestFacts; data: AsyncIterable<Uint8Array> }> {
  const iterator = data[Symbol.asyncIterator]();
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  let ended = false;
  while (heldBytes < Math.min(HEAD_BYTES, size)) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    held.push(next.value);
    heldBytes += next.value.byteLength;
  }
  const head = Buffer.concat(held);
  let firmware: GuestFacts["firmware"] = "unknown";
  try {
    const { source } = await openImage(new HeadInput(head, size, where), { format: "raw" });
    try {
      firmware = await firmwareSupport(source, where);
    } finally {
      await source.close();
    }
  } catch {
    // Not a partitioned disk, or one whose table lies beyond the head: nothing is claimed.
  }
  async function* whole(): AsyncIterable<Uint8Array> {
    yield* held;
    if (ended) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { facts: { firmware }, data: whole() };
}

/** The head of a disk of `size` bytes; a read beyond the head fails (the caller then claims nothing). */
class HeadInput extends BoundedInput {
  constructor(
    private readonly head: Buffer,
    readonly size: number,
    readonly path: string,
  ) {
    super();
  }

  get allocatedSize(): number {
    return this.head.length;
  }

  protected async readWithin(position: number, length: number, buf: Buffer): Promise<void> {
    if (position + length > this.head.length) {
      throw new CorruptImageError(`${this.path}: bytes at ${position} have not arrived yet`);
    }
    this.head.copy(buf, 0, position, position + length);
  }

  async close(): Promise<void> {}
}
