/**
 * Writing a raw disk's bytes into a new EBS snapshot with the EBS direct APIs
 * (https://docs.aws.amazon.com/ebs/latest/userguide/writesnapshots.html): StartSnapshot, PutSnapshotBlock for
 * each 512 KiB block that is not all zeros (a block never written reads as zeros, so a sparse disk costs only
 * its data), CompleteSnapshot with the number of blocks written and their aggregated checksum.
 *
 * The disk comes as a stream in order. Blocks are cut from it as they arrive: an all-zero block lying whole in
 * one chunk is recognised there and dropped (a sparse disk's zeros are never copied); any other block is copied
 * into a buffer of a pool of `concurrency` + 1, which is what is sent. No chunk is kept once the next one is
 * asked for — a producer may reuse its buffers — so memory is the pool's few MiB whatever the chunks' size.
 * Up to `concurrency` blocks are in flight; the stream is not read further while they are.
 *
 * Every block carries its SHA-256 (base64). CompleteSnapshot's LINEAR aggregate is the SHA-256 of the written
 * blocks' raw 32-byte digests concatenated in increasing block index order, base64
 * (https://docs.aws.amazon.com/ebs/latest/APIReference/API_CompleteSnapshot.html); the digests are folded in
 * as the confirmed prefix grows, so none is kept longer than its block is in flight.
 *
 * Resuming: as the prefix of blocks confirmed written grows (every few MiB, not every block), `resume.save`
 * is given { snapshotId, nextBlock, blocksWritten, prefixChecksum }. A call given that state writes into the
 * same pending snapshot: it reads the stream from the start again but sends nothing below nextBlock, only
 * hashing those blocks to rebuild the aggregate — and if that prefix's aggregate differs from the one saved,
 * the disk is not the one that was being written, and the call stops before sending anything.
 */
import {
  CompleteSnapshotCommand,
  StartSnapshotCommand,
  type CompleteSnapshotCommandOutput,
  type StartSnapshotCommandOutput,
} from "@aws-sdk/client-ebs";
import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import type { EbsConnection } from "./ebs-connection.js";
import { EBS_BLOCK_SIZE, GIB } from "./ebs-snapshot-blocks.js";
import { AbortedError, ChromogenicError, UsageError } from "../../util/errors.js";

export interface WriteSnapshotRequest {
  readonly volumeSizeGiB: number;
  readonly description?: string;
  readonly tags?: Readonly<Record<string, string>>;
  /** Minutes AWS keeps the pending snapshot open without a write before it fails it (StartSnapshot's Timeout). */
  readonly timeoutMinutes?: number;
  /** PutSnapshotBlock requests in flight at most (default 12). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  /** Bytes of the disk consumed so far, and the disk's size. */
  readonly onProgress?: (bytes: number, total?: number) => void;
  /** Told the new snapshot's id before any block is written: on a failure, the caller deletes it. */
  readonly onStarted?: (snapshotId: string) => void | Promise<void>;
  readonly resume?: { readonly state?: unknown; save(state: unknown): Promise<void> };
  /** StartSnapshot's idempotency token (default a fresh UUID). */
  readonly clientToken?: string;
  /**
   * Waits until the snapshot is "completed" (EC2 DescribeSnapshots, the caller's); without it the call returns
   * when CompleteSnapshot has accepted the snapshot, its status then possibly still "pending".
   */
  readonly waitUntilCompleted?: (snapshotId: string, signal?: AbortSignal) => Promise<void>;
}

export interface WriteSnapshotResult {
  readonly snapshotId: string;
  /** Blocks the snapshot holds (ChangedBlocksCount), those written before a resume included. */
  readonly blocksWritten: number;
  /** Bytes sent with PutSnapshotBlock by this call. */
  readonly bytesSent: number;
  /** CompleteSnapshot's answer, or "completed" once waitUntilCompleted returned. */
  readonly status: string;
}

/** What `resume.save` is given and a resumed call accepts. */
export const SnapshotWriteState = z.object({
  snapshotId: z.string().regex(/^snap-[0-9a-f]+$/),
  /** Every written block below this index is confirmed written. */
  nextBlock: z.number().int().nonnegative(),
  /** Non-zero blocks below nextBlock. */
  blocksWritten: z.number().int().nonnegative(),
  /** The LINEAR aggregate of those blocks' digests (base64), to recognise the same disk on resuming. */
  prefixChecksum: z.string(),
});
export type SnapshotWriteState = z.infer<typeof SnapshotWriteState>;

export const DEFAULT_WRITE_CONCURRENCY = 12;
/** The confirmed prefix grows by this much between two saves of the resume state. */
const SAVE_EVERY_BYTES = 16 * 1024 * 1024;
const ZERO_BLOCK = Buffer.alloc(EBS_BLOCK_SIZE);

export async function writeSnapshot(
  ebs: EbsConnection,
  data: AsyncIterable<Uint8Array>,
  request: WriteSnapshotRequest,
): Promise<WriteSnapshotResult> {
  const { volumeSizeGiB, signal } = request;
  if (!Number.isSafeInteger(volumeSizeGiB) || volumeSizeGiB < 1 || volumeSizeGiB > 64 * 1024) {
    throw new UsageError(`an EBS snapshot's volume size is 1 to 65536 GiB, not ${volumeSizeGiB}`);
  }
  const concurrency = Math.max(1, Math.min(64, request.concurrency ?? DEFAULT_WRITE_CONCURRENCY));
  const volumeBytes = volumeSizeGiB * GIB;
  let resumed: SnapshotWriteState | undefined;
  if (request.resume?.state !== undefined) {
    const parsed = SnapshotWriteState.safeParse(request.resume.state);
    if (!parsed.success)
      throw new UsageError(`the saved state of a snapshot write is not one: ${parsed.error.message}`);
    resumed = parsed.data;
    if (resumed.nextBlock * EBS_BLOCK_SIZE > volumeBytes) {
      throw new UsageError(`the saved state of snapshot ${resumed.snapshotId} lies beyond its ${volumeSizeGiB} GiB`);
    }
  }
  const snapshotId = resumed?.snapshotId ?? (await startSnapshot(ebs, request));
  const subject = `snapshot ${snapshotId}`;
  const writer = new BlockWriter(ebs, snapshotId, concurrency, volumeBytes, request, resumed);
  try {
    for await (const chunk of data) {
      if (signal?.aborted) throw new AbortedError(`writing ${subject} was cancelled`);
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (writer.position + bytes.length > volumeBytes) {
        throw new UsageError(
          `the disk is longer than the ${volumeSizeGiB} GiB volume of ${subject}: it has more than ${volumeBytes} bytes`,
        );
      }
      for (let at = 0; at < bytes.length;) at += await writer.take(bytes.subarray(at));
      request.onProgress?.(writer.position, volumeBytes);
    }
    await writer.finish();
  } catch (e) {
    await writer.drain();
    throw e;
  }
  const checksum = writer.aggregate();
  const completed = await ebs.send<CompleteSnapshotCommandOutput>(
    new CompleteSnapshotCommand({
      SnapshotId: snapshotId,
      ChangedBlocksCount: writer.blocksWritten,
      Checksum: checksum,
      ChecksumAlgorithm: "SHA256",
      ChecksumAggregationMethod: "LINEAR",
    }),
    { call: "CompleteSnapshot", subject },
    signal,
  );
  let status = completed.Status ?? "pending";
  if (status === "error") {
    throw new ChromogenicError(
      `EBS at ${ebs.endpoint}: CompleteSnapshot of ${subject} answered status "error"`,
      "ECLOUD",
    );
  }
  if (status !== "completed" && request.waitUntilCompleted) {
    await request.waitUntilCompleted(snapshotId, signal);
    status = "completed";
  }
  return { snapshotId, blocksWritten: writer.blocksWritten, bytesSent: writer.bytesSent, status };
}

async function startSnapshot(ebs: EbsConnection, request: WriteSnapshotRequest): Promise<string> {
  const tags = Object.entries(request.tags ?? {}).map(([Key, Value]) => ({ Key, Value }));
  const out = await ebs.send<StartSnapshotCommandOutput>(
    new StartSnapshotCommand({
      VolumeSize: request.volumeSizeGiB,
      ClientToken: request.clientToken ?? randomUUID(),
      ...(request.description !== undefined ? { Description: request.description } : {}),
      ...(tags.length ? { Tags: tags } : {}),
      ...(request.timeoutMinutes !== undefined ? { Timeout: request.timeoutMinutes } : {}),
    }),
    { call: "StartSnapshot", subject: `a snapshot of ${request.volumeSizeGiB} GiB` },
    request.signal,
  );
  const bad = (detail: string) =>
    new ChromogenicError(`EBS at ${ebs.endpoint}: StartSnapshot answered ${detail}`, "ECLOUD");
  if (!out.SnapshotId || !/^snap-[0-9a-f]+$/.test(out.SnapshotId))
    throw bad(`no usable snapshot id ("${out.SnapshotId}")`);
  if (out.BlockSize !== EBS_BLOCK_SIZE) throw bad(`a block size of ${out.BlockSize}, not ${EBS_BLOCK_SIZE} bytes`);
  if (out.Status && out.Status !== "pending") throw bad(`snapshot ${out.SnapshotId} in status "${out.Status}"`);
  await request.onStarted?.(out.SnapshotId!);
  return out.SnapshotId!;
}

/** A block sent, in the queue until it and every block before it are confirmed. */
interface Sent {
  readonly index: number;
  readonly digest: Buffer;
  done: Promise<void>;
  settled: boolean;
}

/** Cuts the stream into blocks, sends the non-zero ones, and keeps the confirmed prefix and its aggregate. */
class BlockWriter {
  /** Bytes of the disk taken so far. */
  position = 0;
  /** Non-zero blocks confirmed (the resumed prefix's included). */
  blocksWritten = 0;
  bytesSent = 0;
  private readonly linear = createHash("sha256");
  private partial: Buffer | undefined;
  private readonly pool: Buffer[] = [];
  /** Sent blocks in index order; the head is the first one not yet confirmed. */
  private readonly queue: Sent[] = [];
  private running = 0;
  private lastSaved = 0;
  private resumeChecked: boolean;
  private failure: unknown;
  private readonly subject: string;

  constructor(
    private readonly ebs: EbsConnection,
    private readonly snapshotId: string,
    private readonly concurrency: number,
    private readonly volumeBytes: number,
    private readonly request: WriteSnapshotRequest,
    private readonly resumed: SnapshotWriteState | undefined,
  ) {
    this.subject = `snapshot ${snapshotId}`;
    this.resumeChecked = !resumed;
    this.lastSaved = resumed?.nextBlock ?? 0;
  }

  /** Takes the start of `bytes` into the current block; returns how many bytes it took. */
  async take(bytes: Buffer): Promise<number> {
    const index = Math.floor(this.position / EBS_BLOCK_SIZE);
    const offset = this.position % EBS_BLOCK_SIZE;
    const n = Math.min(EBS_BLOCK_SIZE - offset, bytes.length);
    this.position += n;
    if (offset === 0 && n === EBS_BLOCK_SIZE && bytes.subarray(0, n).equals(ZERO_BLOCK)) {
      // A zero block whole in this chunk: recognised where it lies, never copied.
      await this.block(index, ZERO_BLOCK, false);
      return n;
    }
    this.partial ??= this.pool.pop() ?? Buffer.allocUnsafeSlow(EBS_BLOCK_SIZE);
    bytes.copy(this.partial, offset, 0, n);
    if (offset + n === EBS_BLOCK_SIZE) {
      const block = this.partial;
      this.partial = undefined;
      await this.block(index, block, true);
    }
    return n;
  }

  /** The stream ended: its last block padded with zeros, every block confirmed. */
  async finish(): Promise<void> {
    const offset = this.position % EBS_BLOCK_SIZE;
    if (this.partial && offset) {
      const block = this.partial;
      this.partial = undefined;
      block.fill(0, offset);
      await this.block(Math.floor(this.position / EBS_BLOCK_SIZE), block, true);
    }
    await this.drain();
    if (this.failure !== undefined) throw this.failure;
    this.fold();
    if (!this.resumeChecked) {
      throw new ChromogenicError(
        `resuming ${this.subject}: the disk ends after ${this.position} bytes, before the ` +
          `${this.resumed!.nextBlock * EBS_BLOCK_SIZE} bytes written before the interruption`,
        "EUSAGE",
      );
    }
  }

  /** Waits for every block in flight to settle. */
  async drain(): Promise<void> {
    await Promise.allSettled(this.queue.map((b) => b.done));
  }

  /** CompleteSnapshot's LINEAR checksum, once every block is confirmed. */
  aggregate(): string {
    return this.linear.digest("base64");
  }

  private async block(index: number, block: Buffer, pooled: boolean): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const zero = block.equals(ZERO_BLOCK);
    if (this.resumed && index < this.resumed.nextBlock) {
      // Written before the interruption: only its digest is needed, for the aggregate.
      if (!zero) {
        this.linear.update(createHash("sha256").update(block).digest());
        this.blocksWritten++;
      }
      if (pooled) this.pool.push(block);
      if (index + 1 === this.resumed.nextBlock) this.checkResumedPrefix();
      return;
    }
    if (!this.resumeChecked) this.checkResumedPrefix(); // nextBlock 0
    if (zero) {
      if (pooled) this.pool.push(block);
      await this.progress();
      return;
    }
    const digest = createHash("sha256").update(block).digest();
    const sent: Sent = { index, digest, done: Promise.resolve(), settled: false };
    this.running++;
    sent.done = this.put(index, block, digest).then(
      () => {
        this.bytesSent += EBS_BLOCK_SIZE;
      },
      (e: unknown) => {
        this.failure ??= e;
      },
    );
    sent.done = sent.done.finally(() => {
      sent.settled = true;
      this.running--;
      if (pooled) this.pool.push(block);
    });
    this.queue.push(sent);
    while (this.running >= this.concurrency && this.failure === undefined) {
      await Promise.race(this.queue.filter((b) => !b.settled).map((b) => b.done));
    }
    if (this.failure !== undefined) throw this.failure;
    await this.progress();
  }

  /** Folds the confirmed blocks at the head of the queue into the aggregate. */
  private fold(): void {
    while (this.queue[0]?.settled && this.failure === undefined) {
      this.linear.update(this.queue.shift()!.digest);
      this.blocksWritten++;
    }
  }

  /** The confirmed prefix grew: every few MiB, the resume state is saved. */
  private async progress(): Promise<void> {
    this.fold();
    const save = this.request.resume?.save;
    const confirmed = this.queue[0]?.index ?? Math.floor(this.position / EBS_BLOCK_SIZE);
    if (!save || (confirmed - this.lastSaved) * EBS_BLOCK_SIZE < SAVE_EVERY_BYTES) return;
    this.lastSaved = confirmed;
    const state: SnapshotWriteState = {
      snapshotId: this.snapshotId,
      nextBlock: confirmed,
      blocksWritten: this.blocksWritten,
      prefixChecksum: this.linear.copy().digest("base64"),
    };
    await save(state);
  }

  /** On reaching the resumed state's nextBlock: the prefix just hashed must be the one that was written. */
  private checkResumedPrefix(): void {
    const resumed = this.resumed!;
    this.resumeChecked = true;
    const prefix = this.linear.copy().digest("base64");
    if (prefix !== resumed.prefixChecksum || this.blocksWritten !== resumed.blocksWritten) {
      throw new ChromogenicError(
        `resuming ${this.subject}: the disk's first ${resumed.nextBlock * EBS_BLOCK_SIZE} bytes are not those ` +
          "written before the interruption; it cannot be continued with this disk",
        "EUSAGE",
      );
    }
  }

  private async put(index: number, block: Buffer, digest: Buffer): Promise<void> {
    const subject = `${this.subject} block ${index}`;
    const progress = Math.min(100, Math.floor((this.position / this.volumeBytes) * 100));
    const stored = await this.ebs.send<string | undefined>(
      (signal) => this.ebs.blocks.putBlock(this.snapshotId, index, block, digest, progress, signal),
      { call: "PutSnapshotBlock", subject },
      this.request.signal,
    );
    const checksum = digest.toString("base64");
    if (stored !== undefined && stored !== checksum) {
      throw new ChromogenicError(
        `EBS at ${this.ebs.endpoint}: PutSnapshotBlock of ${subject} stored checksum ${stored}, not the ` +
          `block's ${checksum}`,
        "ECLOUD",
      );
    }
  }
}
