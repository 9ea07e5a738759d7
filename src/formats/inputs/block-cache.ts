/**
 * The fixed-size blocks of a remote input held in memory: at most `capacity` of them, least recently used
 * first out, each either in or on its way. Their buffers are reused rather than left to the garbage collector:
 * a fresh 8 MiB buffer per request lets hundreds of MiB of dead blocks pile up between two collections, and
 * the process's RSS with them. A block is pinned while a read waits for it and copies from it, and its buffer
 * goes to another block only once it is out of the cache, unpinned and no longer being filled.
 */

interface Block {
  readonly buffer: Buffer;
  readonly length: number;
  ready: Promise<void>;
  /** Its load has finished, well or not: nothing writes into the buffer any more. */
  settled: boolean;
  pins: number;
  /** Out of the cache: its buffer is reused as soon as nothing holds it. */
  evicted: boolean;
  /** Its buffer went to the spares (once only: another block may be using it now). */
  recycled: boolean;
}

/** A spare buffer kept for the next block: in a sequential read one block leaves as the next one comes. */
const SPARE_BUFFERS = 1;

export class BlockCache {
  private readonly blocks = new Map<number, Block>();
  private spare: Buffer[] = [];

  constructor(
    private readonly blockSize: number,
    private readonly capacity: number,
    /** Bytes in block `index` (the last one may be short). */
    private readonly lengthOf: (index: number) => number,
    /** Fills `into` with block `index`'s bytes. */
    private readonly load: (index: number, into: Buffer) => Promise<void>,
  ) {}

  has(index: number): boolean {
    return this.blocks.has(index);
  }

  /** Takes bytes already fetched as block `index` (the first block, which opening the input fetched). */
  adopt(index: number, bytes: Buffer): void {
    this.insert(index, { buffer: bytes, length: bytes.length, ready: Promise.resolve(), settled: true });
  }

  /**
   * Waits for block `index` — fetching it unless it is cached or on its way — and runs `use` on its bytes
   * while the block is pinned, so that its buffer cannot be handed to another block meanwhile.
   */
  async with<T>(index: number, use: (bytes: Buffer) => T): Promise<T> {
    const block = this.touch(index) ?? this.start(index);
    block.pins++;
    try {
      await block.ready;
      return use(block.buffer.subarray(0, block.length));
    } finally {
      block.pins--;
      this.recycle(block);
    }
  }

  /** Starts fetching block `index` unless it is cached or on its way; a failure is only forgotten. */
  prefetch(index: number): void {
    if (!this.blocks.has(index)) this.start(index);
  }

  clear(): void {
    this.blocks.clear();
    this.spare = [];
  }

  private touch(index: number): Block | undefined {
    const block = this.blocks.get(index);
    if (block) {
      // Map iteration follows insertion: inserting again makes it the most recently used.
      this.blocks.delete(index);
      this.blocks.set(index, block);
    }
    return block;
  }

  private start(index: number): Block {
    const length = this.lengthOf(index);
    const buffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.blockSize);
    const block = this.insert(index, { buffer, length, ready: Promise.resolve(), settled: false });
    block.ready = this.load(index, buffer.subarray(0, length)).then(
      () => {
        block.settled = true;
        this.recycle(block);
      },
      (e: unknown) => {
        // Forgotten, so that the next read asks again and sees a new error rather than this one.
        block.settled = true;
        if (this.blocks.get(index) === block) this.blocks.delete(index);
        block.evicted = true;
        this.recycle(block);
        throw e;
      },
    );
    block.ready.catch(() => undefined); // a read-ahead nobody waits for
    return block;
  }

  private insert(index: number, fields: Pick<Block, "buffer" | "length" | "ready" | "settled">): Block {
    const block: Block = { ...fields, pins: 0, evicted: false, recycled: false };
    this.blocks.set(index, block);
    for (const [oldest, old] of this.blocks) {
      if (this.blocks.size <= this.capacity) break;
      this.blocks.delete(oldest);
      old.evicted = true;
      this.recycle(old);
    }
    return block;
  }

  private recycle(block: Block): void {
    if (!block.evicted || !block.settled || block.pins > 0 || block.recycled) return;
    block.recycled = true;
    if (block.buffer.length === this.blockSize && this.spare.length < SPARE_BUFFERS) this.spare.push(block.buffer);
  }
}
