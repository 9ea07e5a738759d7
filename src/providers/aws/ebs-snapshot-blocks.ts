/**
 * Which blocks of a snapshot hold data, and the tokens to fetch them, through ListSnapshotBlocks
 * (https://docs.aws.amazon.com/ebs/latest/APIReference/API_ListSnapshotBlocks.html). A block not listed was
 * never written and reads as zeros.
 *
 * The listing is taken from a server that may be wrong: every page's NextToken must be new (PageGuard), the
 * pages are bounded in number, every index must lie inside the volume and come after the one before it, and the
 * block size must be the 512 KiB the API documents. The indexes of the whole snapshot are kept (4 bytes each);
 * block tokens only for a window of them, fetched again from the index a read needs: tokens expire (the page's
 * ExpiryTime), so a token list of a large snapshot taken at the start would be stale before the end.
 */
import { ListSnapshotBlocksCommand, type ListSnapshotBlocksCommandOutput } from "@aws-sdk/client-ebs";
import { PageGuard } from "../ec2/s3-listing.js";
import type { EbsConnection } from "./ebs-connection.js";
import { ChromogenicError } from "../../util/errors.js";

/** The only block size the EBS direct APIs use. */
export const EBS_BLOCK_SIZE = 512 * 1024;
export const GIB = 1024 ** 3;
/** The largest page the API gives (MaxResults' documented range is 100 to 10,000). */
export const MAX_PAGE_SIZE = 10_000;
/** A token this close to its expiry is not used: the request would arrive after it. */
const EXPIRY_MARGIN_MS = 60_000;

export interface SnapshotBlockMap {
  readonly snapshotId: string;
  readonly volumeSizeGiB: number;
  /** The written blocks' indexes, increasing. */
  readonly indexes: Uint32Array;
  /** The first page's tokens, so that a small snapshot is read without listing again. */
  readonly firstTokens: BlockTokens;
}

/** Block tokens for a run of a snapshot's blocks, valid until `expiresAt` (ms since the epoch). */
export interface BlockTokens {
  /** Blocks from `from` up to (not including) `until` are covered: an index in that range missing here is a hole. */
  readonly from: number;
  readonly until: number;
  readonly tokens: ReadonlyMap<number, string>;
  readonly expiresAt: number;
}

export interface ListBlocksOptions {
  /** Blocks asked for per page (MaxResults, 100 to 10,000; default 10,000). */
  readonly pageSize?: number;
  /** Pages read at most before the listing is an error (default: enough for the volume at 100 per page). */
  readonly maxPages?: number;
  readonly signal?: AbortSignal;
}

interface Page {
  readonly indexes: number[];
  readonly tokens: Map<number, string>;
  readonly volumeSizeGiB: number;
  readonly expiresAt: number;
  readonly nextToken: string | undefined;
}

/** Reads one page and checks what does not depend on the pages before it. */
async function readPage(
  ebs: EbsConnection,
  snapshotId: string,
  request: { nextToken?: string; startingBlockIndex?: number; pageSize: number },
  signal: AbortSignal | undefined,
): Promise<Page> {
  const subject = `snapshot ${snapshotId}`;
  const out = await ebs.send<ListSnapshotBlocksCommandOutput>(
    new ListSnapshotBlocksCommand({
      SnapshotId: snapshotId,
      MaxResults: request.pageSize,
      ...(request.nextToken !== undefined
        ? { NextToken: request.nextToken }
        : { StartingBlockIndex: request.startingBlockIndex ?? 0 }),
    }),
    { call: "ListSnapshotBlocks", subject },
    signal,
  );
  const what = `EBS at ${ebs.endpoint}: ListSnapshotBlocks of ${subject}`;
  const bad = (detail: string) => new ChromogenicError(`${what}: ${detail}`, "ECLOUD");
  if (out.BlockSize !== EBS_BLOCK_SIZE) {
    throw bad(`the block size is ${out.BlockSize ?? "missing"}, not the ${EBS_BLOCK_SIZE} bytes the API documents`);
  }
  const volumeSizeGiB = out.VolumeSize ?? NaN;
  if (!Number.isSafeInteger(volumeSizeGiB) || volumeSizeGiB < 1 || volumeSizeGiB > 64 * 1024) {
    throw bad(`the volume size ${out.VolumeSize ?? "(missing)"} GiB is not a size of an EBS volume`);
  }
  const volumeBlocks = (volumeSizeGiB * GIB) / EBS_BLOCK_SIZE;
  const indexes: number[] = [];
  const tokens = new Map<number, string>();
  for (const block of out.Blocks ?? []) {
    const index = block.BlockIndex;
    if (index === undefined || !Number.isSafeInteger(index) || index < 0 || index >= volumeBlocks) {
      throw bad(`block index ${index ?? "(missing)"} lies outside the ${volumeSizeGiB} GiB volume`);
    }
    if (!block.BlockToken) throw bad(`block ${index} comes without a block token`);
    indexes.push(index);
    tokens.set(index, block.BlockToken);
  }
  const expiresAt = out.ExpiryTime instanceof Date ? out.ExpiryTime.getTime() : Date.now() + 10 * 60_000;
  return { indexes, tokens, volumeSizeGiB, expiresAt, nextToken: out.NextToken || undefined };
}

/** Lists every written block of `snapshotId`: the map a snapshot input answers holes() from. */
export async function listSnapshotBlocks(
  ebs: EbsConnection,
  snapshotId: string,
  options: ListBlocksOptions = {},
): Promise<SnapshotBlockMap> {
  const pageSize = options.pageSize ?? MAX_PAGE_SIZE;
  const what = `EBS at ${ebs.endpoint}: ListSnapshotBlocks of snapshot ${snapshotId}`;
  let indexes = new Uint32Array(1024);
  let count = 0;
  let guard: PageGuard | undefined;
  let volumeSizeGiB = 0;
  let firstTokens: BlockTokens | undefined;
  let nextToken: string | undefined;
  for (;;) {
    const page = await readPage(ebs, snapshotId, { pageSize, ...(nextToken ? { nextToken } : {}) }, options.signal);
    if (!guard) {
      volumeSizeGiB = page.volumeSizeGiB;
      const volumeBlocks = (volumeSizeGiB * GIB) / EBS_BLOCK_SIZE;
      // Pages may come short or empty; a server paging forever still ends here.
      guard = new PageGuard(what, options.maxPages ?? Math.ceil(volumeBlocks / 100) + 100);
    } else if (page.volumeSizeGiB !== volumeSizeGiB) {
      throw new ChromogenicError(
        `${what}: the volume size went from ${volumeSizeGiB} to ${page.volumeSizeGiB} GiB between two pages`,
        "ECLOUD",
      );
    }
    guard.page([]);
    for (const index of page.indexes) {
      const previous = count ? indexes[count - 1]! : -1;
      if (index <= previous) {
        throw new ChromogenicError(
          `${what}: block ${index} listed after block ${previous}; a listing must move forward`,
          "ECLOUD",
        );
      }
      if (count === indexes.length) {
        const grown = new Uint32Array(indexes.length * 2);
        grown.set(indexes);
        indexes = grown;
      }
      indexes[count++] = index;
    }
    firstTokens ??= {
      from: 0,
      until: page.nextToken ? (page.indexes.at(-1) ?? -1) + 1 : Infinity,
      tokens: page.tokens,
      expiresAt: page.expiresAt,
    };
    if (!page.nextToken) break;
    nextToken = guard.next(page.nextToken);
  }
  return { snapshotId, volumeSizeGiB, indexes: indexes.slice(0, count), firstTokens: firstTokens! };
}

/**
 * The tokens of the blocks from `from` on (one page), listed again for a read that needs them: the first
 * page of a listing started at that index. An empty page before the end (allowed by the reference) is passed
 * over by following its NextToken, a bounded number of times.
 */
export async function listBlockTokens(
  ebs: EbsConnection,
  snapshotId: string,
  from: number,
  options: { pageSize?: number; signal?: AbortSignal } = {},
): Promise<BlockTokens> {
  const what = `EBS at ${ebs.endpoint}: ListSnapshotBlocks of snapshot ${snapshotId} from block ${from}`;
  const guard = new PageGuard(what, 100);
  const pageSize = options.pageSize ?? MAX_PAGE_SIZE;
  let nextToken: string | undefined;
  for (;;) {
    const page = await readPage(
      ebs,
      snapshotId,
      { pageSize, ...(nextToken ? { nextToken } : { startingBlockIndex: from }) },
      options.signal,
    );
    guard.page([]);
    const first = page.indexes[0];
    if (first !== undefined && first < from) {
      throw new ChromogenicError(`${what}: the page starts at block ${first}, before the one asked for`, "ECLOUD");
    }
    if (page.indexes.length || !page.nextToken) {
      const last = page.indexes.at(-1);
      return {
        from,
        until: page.nextToken && last !== undefined ? last + 1 : Infinity,
        tokens: page.tokens,
        expiresAt: page.expiresAt,
      };
    }
    nextToken = guard.next(page.nextToken);
  }
}

/** Whether `tokens` can still be used for block `index`. */
export function tokensCover(tokens: BlockTokens | undefined, index: number, now = Date.now()): boolean {
  return !!tokens && index >= tokens.from && index < tokens.until && now < tokens.expiresAt - EXPIRY_MARGIN_MS;
}
