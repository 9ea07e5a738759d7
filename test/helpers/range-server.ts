/**
 * A real HTTP server on 127.0.0.1 for the tests of HTTP inputs: it serves one image the way a static file
 * server does (single byte ranges, ETag, Last-Modified, If-Match, If-Unmodified-Since), records every request
 * it receives with its headers, and lets a test take over any request — drop the connection, answer 503,
 * redirect — through `handle`, falling back to `serveImage` for the rest.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pattern } from "./tools.js";

const MiB = 2 ** 20;

export interface ServedImage {
  readonly size: number;
  /** The bytes from `start` up to (not including) `end`. */
  bytes(start: number, end: number): Buffer;
  readonly etag?: string;
  readonly lastModified?: string;
}

export function servedBuffer(data: Buffer, validators: { etag?: string; lastModified?: string } = {}): ServedImage {
  return { size: data.length, bytes: (start, end) => data.subarray(start, end), ...validators };
}

export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** Answers a request itself and returns true, or returns false to let the server serve the image. */
export type RequestHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  index: number,
) => boolean | Promise<boolean> | undefined;

const SLICE = 256 * 1024;

export class RangeServer {
  readonly received: ReceivedRequest[] = [];
  /** Requests being answered now, and the most at any time. */
  active = 0;
  maxActive = 0;
  /** False: ignore Range and send the whole image with 200, as some servers do. */
  ranges = true;
  /** False: ignore If-Match and If-Unmodified-Since, as some servers do. */
  conditions = true;
  /** Milliseconds to wait before answering each request (to see requests overlap). */
  delayMs = 0;
  handle: RequestHandler | undefined;
  private readonly server;

  private constructor(
    public image: ServedImage,
    private readonly tls?: { readonly key: string; readonly cert: string },
  ) {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.onRequest(req, res);
    this.server = tls ? createTlsServer(tls, handler) : createServer(handler);
  }

  /**
   * A server listening on 127.0.0.1 on a free port, closed when the test ends; with `tls` (PEM key and
   * certificate) it speaks HTTPS.
   */
  static async start(
    t: { after(fn: () => Promise<void>): void },
    image: ServedImage,
    tls?: { readonly key: string; readonly cert: string },
  ): Promise<RangeServer> {
    const s = new RangeServer(image, tls);
    await new Promise<void>((resolve) => s.server.listen(0, "127.0.0.1", resolve));
    t.after(async () => {
      s.server.closeAllConnections();
      await new Promise<void>((resolve) => s.server.close(() => resolve()));
    });
    return s;
  }

  get origin(): string {
    return `${this.tls ? "https" : "http"}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  url(path = "/images/disk.img"): string {
    return this.origin + path;
  }

  /** The Range headers received, in order ("bytes=0-8388607"…). */
  rangesAsked(): (string | undefined)[] {
    return this.received.map((r) => r.headers.range);
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const index = this.received.length;
    this.received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    res.on("close", () => this.active--);
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      if (await this.handle?.(req, res, index)) return;
      await this.serveImage(req, res);
    } catch {
      res.destroy();
    }
  }

  /** What a static file server answers: the image, a range of it, 412 or 416. */
  async serveImage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const image = this.image;
    if (req.method !== "GET") {
      res.writeHead(405, { allow: "GET" }).end();
      return;
    }
    const validators: Record<string, string> = {};
    if (image.etag) validators.etag = image.etag;
    if (image.lastModified) validators["last-modified"] = image.lastModified;
    if (this.conditions && this.failsConditions(req)) {
      res.writeHead(412, validators).end();
      return;
    }
    const range = this.ranges ? /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "") : null;
    let start = 0;
    let end = image.size; // exclusive
    if (range && (range[1] || range[2])) {
      if (range[1]) {
        start = Number(range[1]);
        end = range[2] ? Math.min(image.size, Number(range[2]) + 1) : image.size;
      } else {
        start = Math.max(0, image.size - Number(range[2]));
      }
      if (start >= image.size || end <= start) {
        res.writeHead(416, { "content-range": `bytes */${image.size}`, ...validators }).end();
        return;
      }
    }
    const headers: Record<string, string | number> = {
      "content-type": "application/octet-stream",
      "content-length": end - start,
      ...validators,
    };
    if (this.ranges) headers["accept-ranges"] = "bytes";
    if (range) headers["content-range"] = `bytes ${start}-${end - 1}/${image.size}`;
    res.writeHead(range ? 206 : 200, headers);
    await pipeline(Readable.from(slices(image, start, end)), res).catch(() => undefined);
  }

  private failsConditions(req: IncomingMessage): boolean {
    const ifMatch = req.headers["if-match"];
    if (ifMatch && ifMatch !== "*" && !ifMatch.split(/\s*,\s*/).includes(this.image.etag ?? "")) return true;
    const since = req.headers["if-unmodified-since"];
    const modified = this.image.lastModified;
    return Boolean(since && modified && Date.parse(modified) > Date.parse(since));
  }
}

function* slices(image: ServedImage, start: number, end: number): Generator<Buffer> {
  for (let at = start; at < end; at += SLICE) yield image.bytes(at, Math.min(end, at + SLICE));
}

/**
 * A large image that costs no memory to serve: a 1 MiB + 4099 byte pattern repeated, so that no two 8 MiB
 * blocks hold the same bytes at the same place (a block copied to the wrong offset shows).
 */
export class RepeatingImage implements ServedImage {
  private readonly period = pattern(MiB + 4099, 31);

  constructor(
    readonly size: number,
    readonly etag = '"repeating"',
  ) {}

  bytes(start: number, end: number): Buffer {
    const out = Buffer.allocUnsafe(end - start);
    for (let done = 0; done < out.length;) done += this.period.copy(out, done, (start + done) % this.period.length);
    return out;
  }

  /** Whether `data` is the image's bytes at `position`, compared in place (no copy made). */
  holdsAt(position: number, data: Buffer): boolean {
    for (let done = 0; done < data.length;) {
      const from = (position + done) % this.period.length;
      const n = Math.min(data.length - done, this.period.length - from);
      if (this.period.compare(data, done, done + n, from, from + n) !== 0) return false;
      done += n;
    }
    return true;
  }
}
