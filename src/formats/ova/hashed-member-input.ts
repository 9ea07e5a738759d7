/**
 * A member of an OVA read once in order, as an input of its own, whose bytes are hashed as they go by (for the
 * manifest): the driver reading the disk asks for what it needs, and the bytes it skips (a streamOptimized
 * VMDK's grain tables, padding) are read and hashed in between, so the digest covers every byte. When
 * hashing, the input says it is sequential, so a driver that would read at random is refused instead of
 * making the digest wrong; drain() hashes what is left once the driver is done.
 */
import { BoundedInput, type ImageInput } from "../inputs/image-input.js";
import type { MemberHash } from "./member-digests.js";

/** Bytes read at a time to hash what the driver skipped. */
const GAP_READ = 1 * 2 ** 20;

export class HashedMemberInput extends BoundedInput {
  private hashedTo = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private scratch: Buffer | undefined;

  constructor(
    private readonly member: ImageInput,
    private readonly hash: MemberHash | undefined,
  ) {
    super();
  }

  get path(): string {
    return this.member.path;
  }

  get size(): number {
    return this.member.size;
  }

  get allocatedSize(): number {
    return this.member.allocatedSize;
  }

  override get sequential(): boolean {
    return this.hash !== undefined || this.member.sequential;
  }

  protected readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void> {
    // One read at a time, in call order: the bytes between two reads are hashed before the second one's.
    const done = this.queue.then(async () => {
      if (this.hash) await this.hashUpTo(position);
      await this.member.readExact(position, length, buf, what);
      const end = position + length;
      if (this.hash && end > this.hashedTo) {
        this.hash.update(buf.subarray(this.hashedTo - position, length));
        this.hashedTo = end;
      }
    });
    this.queue = done.catch(() => undefined);
    return done;
  }

  /** Hashes the rest of the member and records its digests. */
  async drain(): Promise<void> {
    await this.queue;
    if (!this.hash) return;
    await this.hashUpTo(this.size);
    this.hash.finish();
  }

  private async hashUpTo(position: number): Promise<void> {
    while (this.hashedTo < position) {
      const n = Math.min(GAP_READ, position - this.hashedTo);
      this.scratch ??= Buffer.allocUnsafe(GAP_READ);
      this.hash!.update(await this.member.readExact(this.hashedTo, n, this.scratch, "data"));
      this.hashedTo += n;
    }
  }

  /** The member belongs to the archive: closing this input leaves the archive open. */
  async close(): Promise<void> {}
}
