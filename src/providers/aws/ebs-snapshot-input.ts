/**
 * An EBS snapshot read as a raw disk through the EBS direct APIs: an ImageInput the engine opens like any
 * other (openImage(input, { format: "raw" })), so a snapshot converts into every output format, or an OVA, in
 * one pass, with no volume, no S3 bucket and no ExportImage task.
 *
 * Its size is the volume's; its holes() are the blocks ListSnapshotBlocks does not list, so the raw driver
 * reports them as unallocated and a conversion reads — and fetches with GetSnapshotBlock — only the written
 * blocks. Blocks come into a small cache (block-cache.ts); a read that continues the previous one is a
 * sequential stretch, and the next written blocks are fetched ahead of it while fewer than `concurrency`
 * requests run (the blocks a read asks for are never held back, so the engine's own parallel reads may add a
 * few), and memory stays at the cache's few MiB whatever the volume's size.
 *
 * Every block's SHA-256 (x-amz-Checksum) is checked before its bytes are used, as the reference asks
 * (https://docs.aws.amazon.com/ebs/latest/userguide/ebsapis-using-checksums.html): a mismatch is fetched once
 * more, then is a VerificationError naming the snapshot and the block. A refused block token (they expire) is
 * listed again from that block; a snapshot deleted while it is read is a clear error rather than a short disk.
 */
import { createHash } from "node:crypto";
import { BodyTooLongError } from "../../formats/inputs/http-connection.js";
import { BlockCache } from "../../formats/inputs/block-cache.js";
import { BoundedInput } from "../../formats/inputs/image-input.js";
import type { HoleFinder } from "../../formats/io/seek-data.js";
import { AwsServiceError } from "../ec2/aws-errors.js";
import type { BlockReply } from "./ebs-block-transport.js";
import type { EbsConnection } from "./ebs-connection.js";
import {
  EBS_BLOCK_SIZE,
  GIB,
  listBlockTokens,
  listSnapshotBlocks,
  tokensCover,
  type BlockTokens,
  type SnapshotBlockMap,
} from "./ebs-snapshot-blocks.js";
import { AbortedError, ChromogenicError, VerificationError } from "../../util/errors.js";

export interface SnapshotInputOptions {
  readonly signal?: AbortSignal;
  /** GetSnapshotBlock requests in flight at most (default 12). */
  readonly concurrency?: number;
  /** The name in messages (default "EBS snapshot snap-…"). */
  readonly label?: string;
  /** Blocks per ListSnapshotBlocks page (default 10,000; tests use the minimum, 100). */
  readonly pageSize?: number;
}

/** What a snapshot input has fetched, for a caller reporting on the transfer. */
export interface SnapshotInputStats {
  /** GetSnapshotBlock replies used (retries of a block not counted twice). */
  blocksFetched: number;
  /** Blocks fetched again after a checksum mismatch or a refused token. */
  blocksRefetched: number;
  /** ListSnapshotBlocks listings made after the first (tokens expired or out of the window). */
  relistings: number;
  /** Fetches under way now, and the most at once. */
  inFlight: number;
  maxInFlight: number;
}

export const DEFAULT_SNAPSHOT_CONCURRENCY = 12;

/** Lists the snapshot's blocks and opens it as a raw disk. */
export async function openSnapshotInput(
  ebs: EbsConnection,
  snapshotId: string,
  options: SnapshotInputOptions = {},
): Promise<EbsSnapshotInput> {
  const map = await listSnapshotBlocks(ebs, snapshotId, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
  });
  return new EbsSnapshotInput(ebs, map, options);
}

export class EbsSnapshotInput extends BoundedInput {
  readonly path: string;
  readonly size: number;
  readonly stats: SnapshotInputStats = {
    blocksFetched: 0,
    blocksRefetched: 0,
    relistings: 0,
    inFlight: 0,
    maxInFlight: 0,
  };
  private readonly indexes: Uint32Array;
  private readonly cache: BlockCache;
  private readonly concurrency: number;
  private tokens: BlockTokens | undefined;
  /** The listing under way for tokens, shared by the reads that wait for it. */
  private listing: Promise<BlockTokens> | undefined;
  private previousLast = -2;
  private readonly controller = new AbortController();
  private readonly signal: AbortSignal;

  /** @internal use openSnapshotInput */
  constructor(
    private readonly ebs: EbsConnection,
    private readonly map: SnapshotBlockMap,
    private readonly options: SnapshotInputOptions = {},
  ) {
    super();
    this.path = options.label ?? `EBS snapshot ${map.snapshotId}`;
    this.size = map.volumeSizeGiB * GIB;
    this.indexes = map.indexes;
    this.tokens = map.firstTokens;
    this.concurrency = Math.max(1, Math.min(64, options.concurrency ?? DEFAULT_SNAPSHOT_CONCURRENCY));
    this.signal = options.signal ? AbortSignal.any([options.signal, this.controller.signal]) : this.controller.signal;
    // The blocks being copied from, those fetched ahead, and a few behind for a reader that looks back.
    this.cache = new BlockCache(
      EBS_BLOCK_SIZE,
      2 * this.concurrency + 4,
      () => EBS_BLOCK_SIZE,
      (index, into) => this.fetchBlock(index, into),
    );
  }

  get snapshotId(): string {
    return this.map.snapshotId;
  }

  /** The written blocks, listed. */
  get blockCount(): number {
    return this.indexes.length;
  }

  /** The bytes the snapshot stores: its written blocks. */
  get allocatedSize(): number {
    return this.indexes.length * EBS_BLOCK_SIZE;
  }

  override holes(): HoleFinder {
    return {
      nextData: (offset) => {
        const at = this.firstListedAtOrAfter(Math.floor(offset / EBS_BLOCK_SIZE));
        if (at >= this.indexes.length) return -1;
        return Math.max(offset, this.indexes[at]! * EBS_BLOCK_SIZE);
      },
      nextHole: (offset) => {
        let block = Math.floor(offset / EBS_BLOCK_SIZE);
        let at = this.firstListedAtOrAfter(block);
        if (at >= this.indexes.length || this.indexes[at] !== block) return Math.min(offset, this.size);
        while (at < this.indexes.length && this.indexes[at] === block) {
          at++;
          block++;
        }
        return Math.min(this.size, block * EBS_BLOCK_SIZE);
      },
    };
  }

  async close(): Promise<void> {
    this.controller.abort();
    this.cache.clear();
  }

  protected async readWithin(position: number, length: number, buf: Buffer): Promise<void> {
    if (this.signal.aborted) throw new AbortedError(`${this.path}: reading was cancelled`);
    if (length === 0) return;
    const first = Math.floor(position / EBS_BLOCK_SIZE);
    const last = Math.floor((position + length - 1) / EBS_BLOCK_SIZE);
    const sequential = first === this.previousLast || first === this.previousLast + 1;
    this.previousLast = last;
    const pending: Promise<void>[] = [];
    for (let index = first; index <= last; index++) {
      const blockStart = index * EBS_BLOCK_SIZE;
      const from = Math.max(position, blockStart);
      const to = Math.min(position + length, blockStart + EBS_BLOCK_SIZE);
      if (!this.isListed(index)) {
        buf.fill(0, from - position, to - position);
        continue;
      }
      pending.push(
        this.cache.with(index, (block) => {
          block.copy(buf, from - position, from - blockStart, to - blockStart);
        }),
      );
      // A long read asks for its blocks a window at a time, so that it alone cannot flood the cache.
      if (pending.length >= this.concurrency) await settleAll(pending.splice(0));
    }
    if (sequential) this.readAhead(last + 1);
    await settleAll(pending);
  }

  /** Starts fetching the written blocks after `from`, while fewer than `concurrency` fetches run. */
  private readAhead(from: number): void {
    let at = this.firstListedAtOrAfter(from);
    for (let n = 0; n < this.concurrency && at < this.indexes.length; n++, at++) {
      if (this.stats.inFlight >= this.concurrency) break;
      this.cache.prefetch(this.indexes[at]!);
    }
  }

  private isListed(index: number): boolean {
    const at = this.firstListedAtOrAfter(index);
    return at < this.indexes.length && this.indexes[at] === index;
  }

  /** The position in `indexes` of the first written block at or after `block` (binary search). */
  private firstListedAtOrAfter(block: number): number {
    let lo = 0;
    let hi = this.indexes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.indexes[mid]! < block) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * A usable token for block `index` (not `stale`, one just refused). Reads waiting at once share one listing;
   * one that the shared listing does not cover (it started further on) lists from its own block next. Only a
   * read's own listings count towards its bound.
   */
  private async tokenFor(index: number, stale?: string): Promise<string> {
    for (let own = 0; ;) {
      const covered = tokensCover(this.tokens, index);
      const token = covered ? this.tokens!.tokens.get(index) : undefined;
      if (token && token !== stale) return token;
      if (covered && token === undefined) break; // listed at first, absent from a listing that covers it now
      if (!this.listing) {
        if (own++ >= 3) break;
        this.stats.relistings++;
        this.listing = listBlockTokens(this.ebs, this.map.snapshotId, index, {
          signal: this.signal,
          ...(this.options.pageSize ? { pageSize: this.options.pageSize } : {}),
        }).finally(() => (this.listing = undefined));
      }
      const listed = await this.listing;
      if (tokensCover(listed, index)) {
        this.tokens = listed;
        stale = undefined;
      }
    }
    throw new ChromogenicError(
      `${this.path}: block ${index} was listed at first but ListSnapshotBlocks no longer gives a token for it; ` +
        "the snapshot changed while it was being read",
      "ECLOUD",
    );
  }

  private async fetchBlock(index: number, into: Buffer): Promise<void> {
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, ++this.stats.inFlight);
    try {
      let stale: string | undefined;
      let mismatches = 0;
      let broken = 0;
      let refused = 0;
      for (;;) {
        const token = await this.tokenFor(index, stale);
        const outcome = await this.getBlock(index, token, into);
        if (outcome === "ok") {
          this.stats.blocksFetched++;
          return;
        }
        this.stats.blocksRefetched++;
        if (outcome.startsWith(BROKEN_BODY)) {
          if (++broken >= 3) {
            throw new ChromogenicError(
              `${this.path}: block ${index}'s data broke off ${broken} times: ${outcome.slice(BROKEN_BODY.length)}`,
              "ECLOUD",
            );
          }
          continue;
        }
        if (outcome === "token refused") {
          if (++refused > 3) {
            throw new ChromogenicError(
              `${this.path}: block ${index}'s token was refused ${refused} times, even freshly listed`,
              "ECLOUD",
            );
          }
          stale = token;
          // Only the listing the refused token came from is dropped: a reply can arrive after a fresh one was taken.
          if (this.tokens?.tokens.get(index) === token) this.tokens = undefined;
          continue;
        }
        if (++mismatches >= 2) {
          throw new VerificationError(
            `${this.path}: block ${index} (bytes ${index * EBS_BLOCK_SIZE}-${(index + 1) * EBS_BLOCK_SIZE - 1}) ` +
              `does not match its SHA-256 checksum (${outcome}), twice; the snapshot's data cannot be trusted`,
          );
        }
      }
    } finally {
      this.stats.inFlight--;
    }
  }

  /** One GetSnapshotBlock into `into`: "ok", "token refused", or what was wrong with the checksum. */
  private async getBlock(index: number, token: string, into: Buffer): Promise<string> {
    const subject = `snapshot ${this.map.snapshotId} block ${index}`;
    let out: BlockReply;
    try {
      out = await this.ebs.send<BlockReply>(
        (signal) => this.ebs.blocks.getBlock(this.map.snapshotId, index, token, signal),
        { call: "GetSnapshotBlock", subject },
        this.signal,
      );
    } catch (e) {
      if (e instanceof AwsServiceError && e.awsCode === "ValidationException" && reasonOf(e) === "INVALID_BLOCK_TOKEN")
        return "token refused";
      if (e instanceof AwsServiceError && e.awsCode === "ResourceNotFoundException") {
        throw new ChromogenicError(
          `${this.path}: the snapshot is gone (deleted while it was being read?): ${e.message}`,
          "ENOENT",
          { cause: e },
        );
      }
      throw e;
    }
    const bad = (detail: string) =>
      new ChromogenicError(`EBS at ${this.ebs.endpoint}: GetSnapshotBlock of ${subject}: ${detail}`, "ECLOUD");
    if (out.dataLength !== EBS_BLOCK_SIZE) {
      out.discard();
      throw bad(`the reply says ${out.dataLength ?? "nothing of"} its length, not ${EBS_BLOCK_SIZE} bytes`);
    }
    if (out.checksumAlgorithm !== "SHA256" || !out.checksum) {
      out.discard();
      throw bad(`the reply carries no SHA256 checksum (algorithm "${out.checksumAlgorithm ?? ""}")`);
    }
    // Hashed as the pieces arrive, each still in the CPU's cache, rather than in one pass over 512 KiB after.
    const hash = createHash("sha256");
    try {
      await out.readInto(into, hash);
    } catch (e) {
      if (e instanceof BodyTooLongError) throw bad(`the reply's body is longer than ${into.length} bytes`);
      if (this.signal.aborted) throw this.ebs.error(e, { call: "GetSnapshotBlock", subject }, this.signal);
      // A connection dropped mid-body, or a body shorter than its block: asked for again, a bounded number of times.
      return `${BROKEN_BODY}${this.ebs.error(e, { call: "GetSnapshotBlock", subject }).message}`;
    }
    const digest = hash.digest("base64");
    return digest === out.checksum ? "ok" : `computed ${digest}, the reply says ${out.checksum}`;
  }
}

/** getBlock's outcome when the reply's body failed to arrive whole (followed by why). */
const BROKEN_BODY = "body broke off: ";

/** The EBS error's Reason field (INVALID_BLOCK_TOKEN, …), kept by the SDK on the error it raised. */
function reasonOf(error: AwsServiceError): string | undefined {
  const reason = (error.cause as { Reason?: unknown } | undefined)?.Reason;
  return typeof reason === "string" ? reason : undefined;
}

/** Waits for every promise, then throws the first failure: a block arriving late must not copy into a reused buffer. */
async function settleAll(pending: Promise<void>[]): Promise<void> {
  const settled = await Promise.allSettled(pending);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}
