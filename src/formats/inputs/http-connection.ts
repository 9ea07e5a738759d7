/**
 * One HTTP/1.1 connection (plain or TLS) that carries one request at a time and hands a body's bytes straight
 * to where they are wanted.
 *
 * Why not node:http: its client gives a body as Buffers it allocates, two per socket read (the read, then the
 * parser's copy), and the streams and events around them cost more CPU than the transfer itself — 0.55 s to
 * read 304 MiB on loopback, on a machine where the conversion those bytes feed needs both cores
 * (docs/PERFORMANCE.md). Here the socket reads with `onread` into buffers we choose: the head into a 64 KiB
 * scratch buffer, a body's bytes into the caller's block itself, so a 4 MiB block arrives in a few large reads
 * with no copy and no allocation (0.09 s for the same transfer).
 *
 * What a server sends is checked: the head is bounded and parsed strictly (http-head.ts), a body is framed by
 * its Content-Length, its chunks or the connection's end, and a body longer than the buffer it was asked into is
 * an error, never a write past it. A connection returns to its pool only when its reply was read to the end
 * and nothing else arrived.
 */
import { connect as netConnect, isIP, type OnReadOpts, type Socket } from "node:net";
import { Readable } from "node:stream";
import { connect as tlsConnect, type ConnectionOptions as TlsOptions } from "node:tls";
import { MalformedHeadError, checkRequestField, parseResponseHead, type ResponseHead } from "./http-head.js";

/** Holds a response head (which must fit) and the bytes read past it. */
const SCRATCH_BYTES = 64 * 1024;
/** A chunk-size line or a trailer line longer than this is refused. */
const MAX_LINE_BYTES = 4096;
/** All trailer lines together. */
const MAX_TRAILER_BYTES = 16 * 1024;

/** A body longer than the buffer it was to fill. */
export class BodyTooLongError extends Error {}

/** What a body's bytes go into. */
interface BodySink {
  /** True while the sink takes no bytes (a stream whose reader is behind). */
  readonly paused: boolean;
  /** A buffer the next at most `max` body bytes may be read straight into, or null to go through scratch. */
  room(max: number): Buffer | null;
  /** Body bytes: `inPlace` when they were read into the last room() given. Throws to refuse them. */
  take(bytes: Buffer, inPlace: boolean): void;
  end(): void;
  fail(error: Error): void;
}

/** What an https connection trusts and presents, beyond Node's defaults. */
export interface HttpTlsOptions {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly rejectUnauthorized?: boolean;
}

export interface ConnectionOptions {
  /** A connection that moves no byte for this long while a request is under way (or connecting) is closed. */
  idleTimeoutMs: number;
  tls?: HttpTlsOptions;
  /** Closes the connection (a request under way fails with the signal's reason). */
  signal: AbortSignal;
  /** Called when a reply has been read to its end and the connection can carry another request. */
  onReusable(connection: HttpConnection): void;
  /** Called with the size of every piece of body received. */
  onBodyBytes(bytes: number): void;
}

type State = "idle" | "head" | "reply" | "body" | "closed";

export class HttpConnection {
  /** Requests sent on this connection. */
  requests = 0;
  private readonly socket: Socket;
  private readonly scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  /** The bytes received and not yet used: scratch[start, end). */
  private start = 0;
  private end = 0;
  /** The region of a sink's buffer handed to the socket for its next read, if any. */
  private direct: Buffer | null = null;
  private state: State = "idle";
  private method = "GET";
  private head: ResponseHead | undefined;
  private headWaiter: { resolve(head: ResponseHead): void; reject(error: Error): void } | undefined;
  private sink: BodySink | undefined;
  /** Bytes of the current reply received so far (head included). */
  private replyBytes = 0;
  /** Body bytes still to come: of the whole body (a length) or of the current chunk. */
  private left = 0;
  private chunkPhase: "size" | "data" | "data-end" | "trailer" = "size";
  private trailerBytes = 0;
  private readonly onAbort = () => this.fail(this.options.signal.reason as Error);

  private constructor(
    socket: (onread: OnReadOpts) => Socket,
    private readonly options: ConnectionOptions,
  ) {
    this.socket = socket({
      buffer: () => this.nextReadBuffer(),
      callback: (n: number, buf: Buffer) => this.onRead(n, buf),
    });
    this.socket.setNoDelay(true);
    this.socket.setTimeout(options.idleTimeoutMs, () => {
      this.socket.destroy(new Error(`no data for ${options.idleTimeoutMs / 1000} s`));
    });
    this.socket.on("error", (e) => this.fail(e));
    this.socket.on("end", () => this.onEnd());
    this.socket.on("close", () => this.onEnd());
    options.signal.addEventListener("abort", this.onAbort, { once: true });
  }

  /** Connects to `url`'s host (TLS for https, checked against `tls.ca`, else Node's CAs and NODE_EXTRA_CA_CERTS). */
  static open(url: URL, options: ConnectionOptions): Promise<HttpConnection> {
    options.signal.throwIfAborted();
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const tls = url.protocol === "https:";
    const port = Number(url.port) || (tls ? 443 : 80);
    const connection = new HttpConnection(
      (onread) =>
        tls
          ? // Node's TLS sockets take onread (documented for tls.connect) though its types omit it.
            tlsConnect({
              ...options.tls,
              host,
              port,
              servername: isIP(host) ? undefined : host,
              ALPNProtocols: ["http/1.1"],
              onread,
            } as TlsOptions)
          : netConnect({ host, port, onread }),
      options,
    );
    return new Promise<HttpConnection>((resolve, reject) => {
      connection.headWaiter = { resolve: () => resolve(connection), reject };
      connection.socket.once(tls ? "secureConnect" : "connect", () => {
        connection.headWaiter = undefined;
        resolve(connection);
      });
    });
  }

  /** Open and not carrying a request: may be given one. */
  get available(): boolean {
    return this.state === "idle" && !this.socket.destroyed;
  }

  /**
   * Sends a request (with `body`, whose Content-Length the caller gives in `headers`) and resolves with the
   * reply's head; its body must then be read, discarded or streamed before the connection serves again.
   * Rejects with the socket's error, or a MalformedHeadError.
   */
  request(
    method: string,
    target: string,
    headers: ReadonlyArray<readonly [string, string]>,
    body?: Uint8Array,
  ): Promise<ResponseHead> {
    if (this.state !== "idle") throw new Error(`the connection is ${this.state}, not idle`);
    let text = `${method} ${target} HTTP/1.1\r\n`;
    for (const [name, value] of headers) {
      checkRequestField(name, value);
      text += `${name}: ${value}\r\n`;
    }
    this.requests++;
    this.method = method;
    this.state = "head";
    this.replyBytes = 0;
    this.socket.ref();
    const head = new Promise<ResponseHead>((resolve, reject) => (this.headWaiter = { resolve, reject }));
    this.socket.write(`${text}\r\n`, "latin1");
    if (body?.length) this.socket.write(body);
    this.socket.resume();
    return head;
  }

  /**
   * True when the connection failed after it had served an earlier request and before any byte of the current
   * reply: a kept-alive connection the server had closed meanwhile. Such a request can be sent again at once.
   */
  get failedStale(): boolean {
    return this.state === "closed" && this.requests > 1 && this.replyBytes === 0;
  }

  /**
   * Fills `into` with the body, which must be exactly that long: a longer one is a BodyTooLongError, a shorter
   * one (or a connection that ends first) an Error. `onPiece` sees each piece once it is in `into`, while it
   * is still in the CPU's cache (a checksum computed as the bytes come reads them from there).
   */
  readBodyInto(into: Buffer, onPiece?: (piece: Buffer) => void): Promise<void> {
    const framing = this.replyFraming();
    if (framing.kind === "length" && framing.length > into.length) {
      const error = new BodyTooLongError(`the reply holds ${framing.length} bytes, ${into.length} were asked for`);
      this.fail(error);
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      let filled = 0;
      this.startBody({
        paused: false,
        room: (max) => into.subarray(filled, filled + Math.min(max, into.length - filled)),
        take: (bytes, inPlace) => {
          if (filled + bytes.length > into.length) {
            throw new BodyTooLongError(`the reply holds more than the ${into.length} bytes asked for`);
          }
          if (!inPlace) bytes.copy(into, filled);
          onPiece?.(into.subarray(filled, filled + bytes.length));
          filled += bytes.length;
        },
        end: () =>
          filled === into.length
            ? resolve()
            : reject(new Error(`the reply ended after ${filled} of ${into.length} bytes`)),
        fail: reject,
      });
    });
  }

  /**
   * Lets go of an unwanted body: one of at most `limit` bytes is read and dropped, so that the connection
   * serves again; a longer one (or one of unknown length) closes the connection.
   */
  discardBody(limit: number): void {
    const framing = this.replyFraming();
    if (framing.kind !== "none" && (framing.kind !== "length" || framing.length > limit)) {
      this.close();
      return;
    }
    this.startBody({ paused: false, room: () => null, take: () => {}, end: () => {}, fail: () => {} });
  }

  /** The body as a stream of Buffers (copies), read as fast as the stream's reader takes them. */
  bodyStream(): Readable {
    let paused = false;
    const stream = new Readable({
      highWaterMark: 4 * SCRATCH_BYTES,
      read: () => {
        if (!paused) return;
        paused = false;
        this.pump();
        if (this.state === "body") this.socket.resume();
      },
      destroy: (error, callback) => {
        if (this.state === "reply" || this.state === "body") this.close();
        callback(error);
      },
    });
    this.startBody({
      get paused() {
        return paused;
      },
      room: () => null,
      take: (bytes) => {
        if (!stream.push(Buffer.from(bytes))) paused = true;
      },
      end: () => stream.push(null),
      fail: (error) => stream.destroy(error),
    });
    return stream;
  }

  /** Closes the connection; a request under way fails. */
  close(): void {
    this.fail(new Error("the connection was closed"));
  }

  private replyFraming() {
    if (this.state !== "reply" || !this.head) throw new Error(`no reply head to read a body after (${this.state})`);
    return this.head.framing;
  }

  private startBody(sink: BodySink): void {
    const framing = this.replyFraming();
    this.sink = sink;
    this.state = "body";
    this.left = framing.kind === "length" ? framing.length : 0;
    this.chunkPhase = "size";
    this.trailerBytes = 0;
    if (framing.kind === "none" || (framing.kind === "length" && framing.length === 0)) {
      this.finishBody();
      return;
    }
    this.pump();
    if (this.state === "body") this.socket.resume();
  }

  /** The buffer the socket reads into next: a sink's own buffer when a body's bytes come and none wait. */
  private nextReadBuffer(): Buffer {
    this.direct = null;
    if (this.state === "body" && this.start === this.end && this.sink && !this.sink.paused) {
      const framing = this.head!.framing;
      const max =
        framing.kind === "length" || (framing.kind === "chunked" && this.chunkPhase === "data")
          ? this.left
          : framing.kind === "close"
            ? Number.MAX_SAFE_INTEGER
            : 0;
      const room = max > 0 ? this.sink.room(max) : null;
      if (room && room.length > 0) return (this.direct = room);
    }
    if (this.start === this.end) this.start = this.end = 0;
    else if (this.start > 0) {
      this.scratch.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    return this.scratch.subarray(this.end);
  }

  /** Returns false to stop reading until something waits for bytes again. */
  private onRead(n: number, buf: Buffer): boolean {
    if (this.state === "closed") return false;
    this.replyBytes += n;
    if (buf === this.direct) {
      this.direct = null;
      this.left -= n;
      this.options.onBodyBytes(n);
      if (!this.give(buf.subarray(0, n), true)) return false;
      if (this.left === 0) this.endOfData();
    } else {
      // A region handed out before the waiting bytes moved to the front of scratch: put these after them.
      const at = buf.byteOffset - this.scratch.byteOffset;
      if (at !== this.end) this.scratch.copyWithin(this.end, at, at + n);
      this.end += n;
      if (this.state === "idle") {
        this.fail(new MalformedHeadError("the server sent bytes nobody asked for"));
        return false;
      }
    }
    this.pump();
    // An idle connection keeps reading, so that a server closing it is noticed before it is given a request.
    return this.state === "head" || this.state === "idle" || (this.state === "body" && !this.sink!.paused);
  }

  /** Uses the bytes waiting in scratch: a head, then a body's pieces. */
  private pump(): void {
    for (;;) {
      if (this.state === "head") {
        if (!this.parseHead()) return;
      } else if (this.state === "body" && !this.sink!.paused && this.start < this.end) {
        if (!this.decodeWaiting()) return;
      } else return;
    }
  }

  private parseHead(): boolean {
    const at = this.scratch.subarray(this.start, this.end).indexOf("\r\n\r\n");
    if (at < 0) {
      if (this.end - this.start >= SCRATCH_BYTES - 1) {
        this.fail(new MalformedHeadError(`a reply head longer than ${SCRATCH_BYTES / 1024} KiB`));
      }
      return false;
    }
    let head: ResponseHead;
    try {
      head = parseResponseHead(this.scratch.toString("latin1", this.start, this.start + at), this.method);
    } catch (e) {
      this.fail(e as Error);
      return false;
    }
    this.start += at + 4;
    if (head.status < 200) return true; // 100 Continue and the like: the real head follows
    this.head = head;
    this.state = "reply";
    const waiter = this.headWaiter;
    this.headWaiter = undefined;
    waiter?.resolve(head);
    return false;
  }

  /** Decodes what waits in scratch as far as it goes; false when more bytes are needed. */
  private decodeWaiting(): boolean {
    const framing = this.head!.framing;
    const waiting = this.end - this.start;
    if (framing.kind === "length" || framing.kind === "close" || this.chunkPhase === "data") {
      const n = framing.kind === "close" ? waiting : Math.min(waiting, this.left);
      const bytes = this.scratch.subarray(this.start, this.start + n);
      this.start += n;
      this.left -= n;
      this.options.onBodyBytes(n);
      if (!this.give(bytes, false)) return false;
      if (this.left === 0 && framing.kind !== "close") this.endOfData();
      return true;
    }
    if (this.chunkPhase === "data-end") {
      if (waiting < 2) return false;
      if (this.scratch[this.start] !== 0x0d || this.scratch[this.start + 1] !== 0x0a) {
        return this.failed(new MalformedHeadError("a chunk not followed by CRLF"));
      }
      this.start += 2;
      this.chunkPhase = "size";
      return true;
    }
    const lineEnd = this.scratch.subarray(this.start, this.end).indexOf("\r\n");
    if (lineEnd < 0) {
      return waiting > MAX_LINE_BYTES ? this.failed(new MalformedHeadError("a chunk line too long")) : false;
    }
    const line = this.scratch.toString("latin1", this.start, this.start + lineEnd);
    this.start += lineEnd + 2;
    if (this.chunkPhase === "trailer") {
      this.trailerBytes += lineEnd + 2;
      if (this.trailerBytes > MAX_TRAILER_BYTES) return this.failed(new MalformedHeadError("trailers too long"));
      if (line === "") this.finishBody();
      return this.state === "body";
    }
    const size = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;.*)?$/.exec(line);
    if (!size)
      return this.failed(new MalformedHeadError(`a malformed chunk size: ${JSON.stringify(line.slice(0, 40))}`));
    this.left = parseInt(size[1]!, 16);
    this.chunkPhase = this.left === 0 ? "trailer" : "data";
    return true;
  }

  /** The end of a length's bytes or of a chunk's data. */
  private endOfData(): void {
    if (this.head!.framing.kind === "length") this.finishBody();
    else this.chunkPhase = "data-end";
  }

  private give(bytes: Buffer, inPlace: boolean): boolean {
    try {
      this.sink!.take(bytes, inPlace);
      return true;
    } catch (e) {
      return this.failed(e as Error);
    }
  }

  private failed(error: Error): false {
    this.fail(error);
    return false;
  }

  private finishBody(): void {
    const sink = this.sink!;
    const reusable = this.head!.keepAlive && this.head!.framing.kind !== "close" && this.start === this.end;
    this.sink = undefined;
    this.head = undefined;
    this.state = "idle";
    if (reusable) {
      this.socket.unref();
      this.options.onReusable(this);
    } else this.close();
    sink.end();
  }

  private onEnd(): void {
    if (this.state === "body" && this.head?.framing.kind === "close") {
      this.pump();
      if (this.state === "body") this.finishBody();
      return;
    }
    const where = this.state === "head" ? "before replying" : "in the middle of a reply";
    this.fail(new Error(`the server closed the connection ${where}`));
  }

  private fail(error: Error): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.options.signal.removeEventListener("abort", this.onAbort);
    this.socket.destroy();
    const waiter = this.headWaiter;
    const sink = this.sink;
    this.headWaiter = undefined;
    this.sink = undefined;
    waiter?.reject(error);
    sink?.fail(error);
  }
}
