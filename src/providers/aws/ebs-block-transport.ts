/**
 * GetSnapshotBlock and PutSnapshotBlock sent without the SDK's client: signed with @smithy/signature-v4 (the
 * SDK's own signer) and carried by the project's HTTP connection (formats/inputs/http-connection.ts), which
 * reads a block's body straight into the buffer it is wanted in.
 *
 * Why: these two calls are nearly all of a snapshot transfer (one per 512 KiB block), and through the SDK a
 * block cost ~2.5 ms of CPU where the SHA-256 the reference asks for costs 0.3 ms: the middleware stack
 * (serialising, endpoint rules, retries we do not use, deserialising), node:http's parser and streams, the
 * 64 KiB Buffers it allocates per socket read (the GC behind them, and most of the read's RSS), and on the
 * write the signer hashing the block a second time (docs/PERFORMANCE.md, "EBS direct APIs"). Every other EBS
 * call (listing, start, complete) stays with the SDK.
 *
 * What comes back is shaped like what the SDK gives, so EbsConnection's retries, credential refresh and error
 * sentences (aws-errors.ts) treat both paths alike: a refusal is an Error named after x-amzn-ErrorType with the
 * body's Message and Reason and $metadata.httpStatusCode; a connection that fails has no status (transient).
 */
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity, Checksum, SourceData } from "@smithy/types";
import { createHash, createHmac, createSecretKey, type Hash, type Hmac, type KeyObject } from "node:crypto";
import { HttpConnection, type HttpTlsOptions } from "../../formats/inputs/http-connection.js";
import type { ResponseHead } from "../../formats/inputs/http-head.js";

/** No byte moving for this long (connecting included) ends a request. */
const IDLE_TIMEOUT_MS = 300_000;
/** An error reply's body larger than this is not read (EBS's are a short JSON object). */
const MAX_ERROR_BODY = 64 * 1024;
/** Idle connections kept for the next requests; more than the requests in flight are closed. */
const MAX_IDLE = 64;
const NO_BODY = Buffer.alloc(0);

/** The signer's hash: node:crypto's SHA-256 (or HMAC-SHA-256 with a key), as the SDK's Checksum interface. */
class NodeSha256 implements Checksum {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash("sha256") : createHmac("sha256", keyOf(this.secret));
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

/** HMAC keys the signer gives as bytes (its cached signing key), made KeyObjects once. */
const hmacKeys = new WeakMap<object, KeyObject>();

/**
 * `secret` as an HMAC key: node:crypto takes a byte key at ~20 µs per HMAC, a KeyObject or a string at ~5 µs,
 * and the signer uses the same signing key object all day.
 */
function keyOf(secret: SourceData): KeyObject | string {
  if (typeof secret === "string") return secret;
  let key = hmacKeys.get(secret);
  if (!key) {
    const bytes = ArrayBuffer.isView(secret)
      ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength)
      : new Uint8Array(secret);
    key = createSecretKey(bytes);
    hmacKeys.set(secret, key);
  }
  return key;
}

/** An error reply, shaped as the SDK's service exceptions are. */
export class EbsReplyError extends Error {
  readonly $metadata: { httpStatusCode: number; requestId?: string };
  constructor(
    name: string,
    message: string,
    status: number,
    requestId: string | undefined,
    readonly Reason?: string,
  ) {
    super(message);
    this.name = name;
    this.$metadata = { httpStatusCode: status, ...(requestId ? { requestId } : {}) };
  }
}

/** A GetSnapshotBlock reply whose head has come: its fields, and its body still to read. */
export interface BlockReply {
  readonly dataLength: number | undefined;
  readonly checksum: string | undefined;
  readonly checksumAlgorithm: string | undefined;
  /**
   * Reads the body into `into`, which it must fill exactly (else rejects), giving `hash` each piece as it
   * arrives; the connection then serves again.
   */
  readInto(into: Buffer, hash?: Hash): Promise<void>;
  /** Lets go of the body unread (closes the connection). */
  discard(): void;
}

export interface BlockTransportSettings {
  /** The EBS endpoint, with any path prefix. */
  readonly endpoint: URL;
  readonly region: string;
  /** Asked at every signature: the SDK client's own (memoizing, refreshing) provider. */
  readonly credentials: () => Promise<AwsCredentialIdentity>;
  readonly tls: HttpTlsOptions;
}

export class EbsBlockTransport {
  private readonly signer: SignatureV4;
  private readonly idle: HttpConnection[] = [];
  private readonly closing = new AbortController();
  private readonly prefix: string;
  private readonly host: string;

  constructor(private readonly settings: BlockTransportSettings) {
    this.signer = new SignatureV4({
      service: "ebs",
      region: settings.region,
      credentials: settings.credentials,
      sha256: NodeSha256,
    });
    this.prefix = settings.endpoint.pathname.replace(/\/+$/, "");
    this.host = settings.endpoint.host;
  }

  /** GetSnapshotBlock up to its reply's head: a refusal rejects with an EbsReplyError. */
  async getBlock(snapshotId: string, index: number, token: string, signal?: AbortSignal): Promise<BlockReply> {
    const path = `/snapshots/${encodeURIComponent(snapshotId)}/blocks/${index}`;
    const { connection, head } = await this.exchange("GET", path, { blockToken: token }, {}, undefined, signal);
    const field = (name: string) => head.headers.get(name);
    const length = field("x-amz-data-length");
    return {
      dataLength: length === undefined ? undefined : Number(length),
      checksum: field("x-amz-checksum"),
      checksumAlgorithm: field("x-amz-checksum-algorithm"),
      readInto: (into, hash) =>
        this.whileOpen(connection, signal, () =>
          connection.readBodyInto(into, hash && ((piece) => hash.update(piece))),
        ),
      discard: () => connection.close(),
    };
  }

  /**
   * PutSnapshotBlock of `block` whose SHA-256 is `digest`; resolves with the checksum the reply states. The
   * digest is also the request's signed payload hash, so the block is not hashed a second time to sign it.
   */
  async putBlock(
    snapshotId: string,
    index: number,
    block: Buffer,
    digest: Buffer,
    progress: number,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const path = `/snapshots/${encodeURIComponent(snapshotId)}/blocks/${index}`;
    const headers = {
      "content-type": "application/octet-stream",
      "content-length": String(block.length),
      "x-amz-content-sha256": digest.toString("hex"),
      "x-amz-data-length": String(block.length),
      "x-amz-checksum": digest.toString("base64"),
      "x-amz-checksum-algorithm": "SHA256",
      "x-amz-progress": String(progress),
    };
    const { connection, head } = await this.exchange("PUT", path, {}, headers, block, signal);
    const checksum = head.headers.get("x-amz-checksum");
    // The reply has no body (the reference's, and the test server's empty chunked one): anything else closes the
    // connection rather than being read, and the block stands written all the same.
    await this.whileOpen(connection, signal, () => connection.readBodyInto(NO_BODY)).catch(() => undefined);
    return checksum;
  }

  /** Closes every connection; requests under way fail. */
  destroy(): void {
    this.closing.abort(new Error("the EBS connection was closed"));
    this.idle.length = 0;
  }

  /**
   * Signs and sends one request and waits for its reply's head; a 2xx resolves, anything else rejects with an
   * EbsReplyError. A kept-alive connection the server had closed meanwhile is replaced once, at once.
   */
  private async exchange(
    method: string,
    path: string,
    query: Record<string, string>,
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ connection: HttpConnection; head: ResponseHead }> {
    const signed = await this.signer.sign({
      method,
      protocol: this.settings.endpoint.protocol,
      hostname: this.settings.endpoint.hostname,
      path: `${this.prefix}${path}`,
      query,
      headers: { host: this.host, ...headers },
    });
    const search = Object.entries(signed.query as Record<string, string>)
      .map(([name, value]) => `${escapeUri(name)}=${escapeUri(value)}`)
      .join("&");
    const target = `${signed.path}${search ? `?${search}` : ""}`;
    const fields = Object.entries(signed.headers);
    for (let fresh = false; ; fresh = true) {
      signal?.throwIfAborted();
      const connection = await this.connection(fresh);
      let head: ResponseHead;
      try {
        head = await this.whileOpen(connection, signal, () => connection.request(method, target, fields, body));
      } catch (e) {
        if (!fresh && connection.failedStale && !signal?.aborted) continue;
        throw e;
      }
      if (head.status >= 200 && head.status < 300) return { connection, head };
      const refusal = await this.refusal(connection, head, signal);
      // The server may have answered before reading what was sent: the connection does not serve again.
      if (body) connection.close();
      throw refusal;
    }
  }

  /** An idle connection, or a new one (`fresh`: always a new one). */
  private async connection(fresh: boolean): Promise<HttpConnection> {
    while (!fresh && this.idle.length) {
      const connection = this.idle.pop()!;
      if (connection.available) return connection;
    }
    return HttpConnection.open(this.settings.endpoint, {
      idleTimeoutMs: IDLE_TIMEOUT_MS,
      tls: this.settings.tls,
      signal: this.closing.signal,
      onReusable: (connection) => {
        if (this.idle.length < MAX_IDLE && !this.closing.signal.aborted) this.idle.push(connection);
        else connection.close();
      },
      onBodyBytes: () => {},
    });
  }

  /** Runs `step` on `connection`, closing the connection (so the step fails) if `signal` aborts meanwhile. */
  private async whileOpen<T>(connection: HttpConnection, signal: AbortSignal | undefined, step: () => Promise<T>) {
    if (!signal) return step();
    const abort = () => connection.close();
    signal.addEventListener("abort", abort, { once: true });
    try {
      return await step();
    } catch (e) {
      signal.throwIfAborted();
      throw e;
    } finally {
      signal.removeEventListener("abort", abort);
    }
  }

  /** An error reply as the SDK would raise it: the code from x-amzn-ErrorType, Message and Reason from JSON. */
  private async refusal(connection: HttpConnection, head: ResponseHead, signal?: AbortSignal): Promise<Error> {
    const framing = head.framing;
    let text = "";
    if (framing.kind === "length" && framing.length <= MAX_ERROR_BODY) {
      const body = Buffer.allocUnsafe(framing.length);
      try {
        await this.whileOpen(connection, signal, () => connection.readBodyInto(body));
        text = body.toString("utf8");
      } catch {
        // the status and the head still say what happened
      }
    } else connection.close();
    let parsed: { Message?: unknown; message?: unknown; Reason?: unknown; __type?: unknown } = {};
    try {
      parsed = (text ? JSON.parse(text) : {}) as typeof parsed;
    } catch {
      // not JSON: a proxy's page
    }
    const typed = head.headers.get("x-amzn-errortype") ?? (typeof parsed.__type === "string" ? parsed.__type : "");
    // "Code:http://internal…" and "namespace#Code" both name Code.
    const name = typed.split(":")[0]!.split("#").at(-1) || `HTTP ${head.status}`;
    const message = parsed.Message ?? parsed.message;
    return new EbsReplyError(
      name,
      typeof message === "string" ? message : "",
      head.status,
      head.headers.get("x-amzn-requestid") ?? head.headers.get("x-amz-request-id"),
      typeof parsed.Reason === "string" ? parsed.Reason : undefined,
    );
  }
}

/**
 * A query name or value percent-encoded as RFC 3986 and SigV4 have it (what the SDK sends): a block token's
 * "+", "/" and "=" escaped, never a space written as "+".
 */
function escapeUri(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
