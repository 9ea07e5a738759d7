/**
 * Positional reads of a Glance image's data with HTTP Range requests (Glance answers 206), so the format engine
 * can convert an image where it is stored, with no local copy. Data comes in fixed blocks kept in a small
 * cache; a read that continues from a cached block also starts fetching the block after its last one
 * (read-ahead), so a sequential reader — the convert pipeline walking a raw disk in order, or qcow2's
 * L2-table-then-clusters pattern, whose tables sit beside the data they map — finds its next block already on
 * the way, while an isolated read (a qcow2 L1 table, a VMDK grain directory, a far L2 table) costs one block,
 * not two. A block whose connection drops is fetched again, up to a few times.
 */
import type { GlanceClient } from "./glance-client.js";
import type { GlanceImage } from "./glance-image.js";
import { BoundedInput } from "../../formats/inputs/image-input.js";
import { CorruptImageError } from "../../formats/errors.js";
import { OpenStackError } from "./errors.js";
import { describeCause, sleep } from "./keystone-session.js";
import { DEFAULT_RETRY_POLICY, retryDelayMs } from "./retry-policy.js";

const BLOCK = 8 * 2 ** 20;
/** Blocks kept (and fetched) at once: the pipeline's 4 reads in flight plus read-ahead. */
const CACHED_BLOCKS = 8;
const MAX_ATTEMPTS = 4;

/** What a reader has cost so far: how efficient a format's access pattern is over HTTP. */
export interface RangeReaderStats {
  /** Range requests sent (retries included). */
  requests: number;
  /** Bytes those requests returned. */
  bytesFetched: number;
}

/** A Glance image's data as an input the format engine reads in place. */
export class GlanceRangeInput extends BoundedInput {
  constructor(
    readonly path: string,
    readonly size: number,
    readonly stats: Readonly<RangeReaderStats>,
    private readonly readAt: (buffer: Buffer, position: number) => Promise<number>,
    readonly close: () => Promise<void>,
  ) {
    super();
  }

  /** Not on this host: the remote bytes' length stands in. */
  get allocatedSize(): number {
    return this.size;
  }

  protected async readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void> {
    const n = await this.readAt(buf.subarray(0, length), position);
    if (n !== length) throw new CorruptImageError(`${this.path}: ${what} at ${position}: the image ended early`);
  }
}

export function openGlanceRangeInput(
  glance: GlanceClient,
  image: GlanceImage,
  options: { signal?: AbortSignal } = {},
): GlanceRangeInput {
  const size = image.size ?? 0;
  const call = `glance range read of image ${image.id}`;
  const blocks = new Map<number, Promise<Buffer>>();
  let closed = false;
  const stats: RangeReaderStats = { requests: 0, bytesFetched: 0 };

  const fetchBlock = async (index: number): Promise<Buffer> => {
    const start = index * BLOCK;
    const end = Math.min(size, start + BLOCK) - 1;
    for (let attempt = 1; ; attempt++) {
      try {
        stats.requests++;
        const response = await glance.service.send({
          method: "GET",
          path: `/v2/images/${encodeURIComponent(image.id)}/file`,
          callName: "GET /v2/images/{id}/file (range)",
          headers: { range: `bytes=${start}-${end}` },
          expect: [206],
          signal: options.signal,
        });
        const data = Buffer.from(await response.arrayBuffer());
        stats.bytesFetched += data.length;
        if (data.length !== end - start + 1) {
          throw new Error(`asked for ${end - start + 1} bytes at ${start}, got ${data.length}`);
        }
        return data;
      } catch (e) {
        if (options.signal?.aborted || closed || e instanceof OpenStackError || attempt >= MAX_ATTEMPTS) {
          if (e instanceof OpenStackError) throw e;
          throw new OpenStackError(
            { cloud: glance.cloud, call },
            `reading bytes ${start}-${end}: ${describeCause(e)}`,
            {
              cause: e,
            },
          );
        }
        await sleep(retryDelayMs(DEFAULT_RETRY_POLICY, attempt), options.signal);
      }
    }
  };

  const block = (index: number): Promise<Buffer> => {
    let p = blocks.get(index);
    if (p) {
      // Refresh its place in the LRU order.
      blocks.delete(index);
      blocks.set(index, p);
      return p;
    }
    p = fetchBlock(index);
    p.catch(() => blocks.delete(index));
    blocks.set(index, p);
    while (blocks.size > CACHED_BLOCKS) blocks.delete(blocks.keys().next().value!);
    return p;
  };

  const read = async (buffer: Buffer, position: number): Promise<number> => {
    if (closed) throw new Error(`${call}: reader closed`);
    const end = Math.min(size, position + buffer.length);
    if (end <= position) return 0;
    const first = Math.floor(position / BLOCK);
    const last = Math.floor((end - 1) / BLOCK);
    // A read continuing from a block already fetched is part of a sequential stretch: worth reading ahead.
    const sequential = blocks.has(first) || blocks.has(first - 1);
    const wanted = [];
    for (let i = first; i <= last; i++) wanted.push(block(i));
    if (sequential && (last + 1) * BLOCK < size) block(last + 1).catch(() => undefined); // read-ahead
    const data = await Promise.all(wanted);
    let done = 0;
    for (let i = first; i <= last; i++) {
      const b = data[i - first]!;
      const from = Math.max(position + done - i * BLOCK, 0);
      const n = Math.min(b.length - from, end - position - done);
      b.copy(buffer, done, from, from + n);
      done += n;
    }
    return done;
  };
  const close = async () => {
    closed = true;
    blocks.clear();
  };
  return new GlanceRangeInput(`glance:${image.id}`, size, stats, read, close);
}
