/**
 * A server of the EBS direct APIs written from their reference, over a FakeAwsAccount: there is no open
 * implementation of them anywhere, so the client is tested against what the reference says and nothing else.
 *
 * Reference pages (the facts used here: paths, headers, bodies, status codes, error codes and reasons):
 * - https://docs.aws.amazon.com/ebs/latest/APIReference/API_StartSnapshot.html (POST /snapshots, 201, ClientToken)
 * - https://docs.aws.amazon.com/ebs/latest/APIReference/API_PutSnapshotBlock.html
 *   (PUT /snapshots/{id}/blocks/{index}, x-amz-Data-Length, x-amz-Checksum, x-amz-Checksum-Algorithm,
 *   x-amz-Progress, 201)
 * - https://docs.aws.amazon.com/ebs/latest/APIReference/API_CompleteSnapshot.html (POST
 *   /snapshots/completion/{id}, x-amz-ChangedBlocksCount, the LINEAR aggregate, 202)
 * - https://docs.aws.amazon.com/ebs/latest/APIReference/API_ListSnapshotBlocks.html (GET /snapshots/{id}/blocks,
 *   maxResults 100–10000, pageToken, startingBlockIndex, ExpiryTime)
 * - https://docs.aws.amazon.com/ebs/latest/APIReference/API_GetSnapshotBlock.html (GET
 *   /snapshots/{id}/blocks/{index}?blockToken=…)
 * - https://docs.aws.amazon.com/ebs/latest/APIReference/CommonErrors.html and
 *   https://docs.aws.amazon.com/ebs/latest/userguide/error-retries.html (ValidationException with Reason,
 *   ResourceNotFoundException 404, AccessDeniedException 403, RequestThrottledException 400, ConflictException
 *   409, ServiceQuotaExceededException 402, InternalServerException 500)
 * - https://docs.aws.amazon.com/ebs/latest/userguide/ebsapi-elements.html (512 KiB blocks, temporary block tokens)
 *
 * Every request's SigV4 signature (service "ebs") is checked with verifySigV4. Errors are answered as the
 * restJson protocol has them: the code in x-amzn-ErrorType, {"Message", "Reason"} in the body.
 *
 * Knobs let a test make the service misbehave the ways the reference says it may: throttling (every Nth
 * request, or a storm of K), a block whose data or checksum is corrupted, a snapshot deleted mid-read, block
 * tokens that expire, a listing whose NextToken does not advance; and count what the client did.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { EBS_BLOCK_SIZE, GIB, type FakeAwsAccount, type FakeSnapshot } from "./fake-aws-account.js";
import { verifySigV4 } from "./sigv4-verify.js";

export interface EbsServerKnobs {
  /** Every Nth request (1-based count of all requests) is throttled. */
  throttleEvery?: number;
  /** The next K requests are throttled (decremented as they are). Infinity: an endless storm. */
  throttleStorm?: number;
  /** How throttling is answered (default RequestThrottledException, HTTP 400). */
  throttleAs?: "RequestThrottledException" | "ThrottlingException" | "SlowDown";
  /** "snap-…:index" → how many GetSnapshotBlock replies of that block carry flipped data. */
  corruptData?: Map<string, number>;
  /** "snap-…:index" → how many replies carry a wrong x-amz-Checksum. */
  corruptChecksum?: Map<string, number>;
  /** "snap-…:index" → how many replies break off half way (the connection closed mid-body). */
  cutBody?: Map<string, number>;
  /** Deletes the snapshot once this many GetSnapshotBlock requests for it have been answered. */
  deleteAfterGets?: { snapshotId: string; after: number };
  /** How long listed block tokens stay valid, by the account's clock (default 10 minutes). */
  tokenLifetimeMs?: number;
  /** ListSnapshotBlocks hands back the page token it was given (or its first) instead of a new one. */
  repeatNextToken?: boolean;
  /** Milliseconds each GetSnapshotBlock / PutSnapshotBlock takes, to make requests overlap. */
  blockLatencyMs?: number;
  /** The next `count` requests (after the signature check) fail with this documented error. */
  failWith?: {
    code: "AccessDeniedException" | "ServiceQuotaExceededException" | "InternalServerException";
    count: number;
    /** Only requests of this call fail, once `after` of them have been answered (default: every call, at once). */
    call?: "PutSnapshotBlock" | "GetSnapshotBlock";
    after?: number;
  };
}

/** The documented errors failWith answers with: status and a Reason the reference lists for each. */
const INJECTED: Record<NonNullable<EbsServerKnobs["failWith"]>["code"], EbsFault> = {
  AccessDeniedException: {
    status: 403,
    code: "AccessDeniedException",
    message: "User is not authorized to perform this action",
    reason: "UNAUTHORIZED_ACCOUNT",
  },
  ServiceQuotaExceededException: {
    status: 402,
    code: "ServiceQuotaExceededException",
    message: "Your current service quotas do not allow this request",
    reason: "DEPENDENCY_SERVICE_QUOTA_EXCEEDED",
  },
  InternalServerException: { status: 500, code: "InternalServerException", message: "An internal error occurred" },
};

export interface EbsServerStats {
  /** Requests by API call, throttled ones left out (refused signatures under "refused"). */
  calls: Record<string, number>;
  /** Requests answered with throttling. */
  throttled: number;
  inFlight: number;
  maxInFlight: number;
  /** Sum over requests of the requests in flight when each arrived (the average is this / requests). */
  inFlightSum: number;
  requests: number;
  /** TCP connections accepted: far fewer than requests when the client keeps them alive. */
  connections: number;
}

interface EbsFault {
  status: number;
  code: string;
  message: string;
  reason?: string;
}

const fault = (status: number, code: string, message: string, reason?: string): EbsFault => ({
  status,
  code,
  message,
  ...(reason ? { reason } : {}),
});
const invalid = (message: string, reason = "INVALID_PARAMETER_VALUE") =>
  fault(400, "ValidationException", message, reason);

/** Body bytes read at most: a block and a little more. */
const MAX_BODY = EBS_BLOCK_SIZE + 64 * 1024;

export class EbsDirectServer {
  readonly stats: EbsServerStats = {
    calls: {},
    throttled: 0,
    inFlight: 0,
    maxInFlight: 0,
    inFlightSum: 0,
    requests: 0,
    connections: 0,
  };
  /** Block tokens handed out: token → the block it names and when it expires. */
  private readonly blockTokens = new Map<string, { snapshotId: string; index: number; expiresAt: number }>();
  /** Page tokens handed out: token → where the next page starts. */
  private readonly pageTokens = new Map<string, { snapshotId: string; start: number }>();
  /** StartSnapshot's ClientToken → the request it came with and the snapshot it made. */
  private readonly clientTokens = new Map<string, { request: string; snapshotId: string }>();
  private readonly getsOf = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly account: FakeAwsAccount,
    readonly knobs: EbsServerKnobs,
  ) {}

  static async start(account: FakeAwsAccount, knobs: EbsServerKnobs = {}): Promise<EbsDirectServer> {
    const holder: { self?: EbsDirectServer } = {};
    const server = createServer((req, res) => {
      const self = holder.self!;
      self.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) self.reply(res, fault(500, "InternalServerException", String(e)));
        else res.destroy();
      });
    });
    server.on("connection", () => holder.self && holder.self.stats.connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    holder.self = new EbsDirectServer(server, `http://127.0.0.1:${port}`, account, knobs);
    return holder.self;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** GetSnapshotBlock requests answered so far. */
  get blockGets(): number {
    return this.stats.calls["GetSnapshotBlock"] ?? 0;
  }

  get blockPuts(): number {
    return this.stats.calls["PutSnapshotBlock"] ?? 0;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    this.stats.inFlightSum += this.stats.inFlight;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, ++this.stats.inFlight);
    try {
      const body = await readBody(req);
      if (body === undefined) return this.reply(res, invalid("The request body is too large"));
      const verdict = await verifySigV4(
        { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, body },
        "ebs",
        (key) => this.account.credentials.get(key),
        this.account.now(),
      );
      if (!verdict.ok) {
        this.count("refused");
        return this.reply(res, fault(verdict.status, verdict.code, verdict.message));
      }
      const url = new URL(req.url ?? "/", "http://placeholder");
      const route = routeOf(req.method ?? "", url.pathname);
      if (!route) return this.reply(res, fault(404, "UnknownOperationException", `No operation at ${url.pathname}`));
      const injected = this.knobs.failWith;
      const targeted =
        !injected?.call ||
        (route.call === injected.call && (this.stats.calls[injected.call] ?? 0) >= (injected.after ?? 0));
      if (injected && injected.count > 0 && targeted) {
        injected.count--;
        return this.reply(res, INJECTED[injected.code]);
      }
      const throttled = this.throttle();
      if (throttled) return this.reply(res, throttled);
      this.count(route.call);
      switch (route.call) {
        case "StartSnapshot":
          return this.startSnapshot(body, res);
        case "PutSnapshotBlock":
          return await this.putBlock(route.snapshotId!, route.index!, req, body, res);
        case "CompleteSnapshot":
          return this.completeSnapshot(route.snapshotId!, req, res);
        case "ListSnapshotBlocks":
          return this.listBlocks(route.snapshotId!, url.searchParams, res);
        case "GetSnapshotBlock":
          return await this.getBlock(route.snapshotId!, route.index!, url.searchParams, res);
      }
    } finally {
      this.stats.inFlight--;
    }
  }

  private count(call: string): void {
    this.stats.calls[call] = (this.stats.calls[call] ?? 0) + 1;
  }

  private throttle(): EbsFault | undefined {
    const { knobs } = this;
    const storm = (knobs.throttleStorm ?? 0) > 0;
    const every = knobs.throttleEvery && this.stats.requests % knobs.throttleEvery === 0;
    if (!storm && !every) return undefined;
    if (storm) knobs.throttleStorm! -= 1;
    this.stats.throttled++;
    const as = knobs.throttleAs ?? "RequestThrottledException";
    if (as === "SlowDown") return fault(503, "SlowDown", "Please reduce your request rate.");
    return as === "ThrottlingException"
      ? fault(400, "ThrottlingException", "Rate exceeded")
      : fault(400, "RequestThrottledException", "The request was throttled for the snapshot.", "SNAPSHOT_THROTTLED");
  }

  private startSnapshot(body: Buffer, res: ServerResponse): void {
    let input: {
      VolumeSize?: unknown;
      ClientToken?: unknown;
      Description?: unknown;
      Tags?: unknown;
      Timeout?: unknown;
      ParentSnapshotId?: unknown;
    };
    try {
      input = JSON.parse(body.toString() || "{}") as typeof input;
    } catch {
      return this.reply(res, invalid("The request body is not JSON"));
    }
    const size = input.VolumeSize;
    if (typeof size !== "number" || !Number.isInteger(size) || size < 1 || size > 65536) {
      return this.reply(res, invalid(`Invalid volume size: ${String(size)}`, "INVALID_VOLUME_SIZE"));
    }
    if (input.ParentSnapshotId !== undefined) {
      return this.reply(res, invalid("This server does not keep incremental snapshots", "INVALID_DEPENDENCY_REQUEST"));
    }
    const tags = Array.isArray(input.Tags) ? (input.Tags as { Key?: string; Value?: string }[]) : [];
    if (tags.some((t) => typeof t.Key !== "string" || !t.Key || t.Key.startsWith("aws:"))) {
      return this.reply(res, invalid("A tag key is invalid", "INVALID_TAG"));
    }
    const token = typeof input.ClientToken === "string" ? input.ClientToken : undefined;
    const fingerprint = JSON.stringify({ ...input, ClientToken: undefined });
    if (token) {
      const earlier = this.clientTokens.get(token);
      if (earlier && earlier.request !== fingerprint) {
        return this.reply(
          res,
          fault(409, "ConflictException", "The client token was used before with different parameters"),
        );
      }
      const again = earlier && this.account.snapshots.get(earlier.snapshotId);
      if (again) return this.json(res, 201, this.describe(again));
    }
    const snapshot: FakeSnapshot = {
      id: this.account.newId("snap"),
      volumeSizeGiB: size,
      status: "pending",
      blocks: new Map(),
      ...(typeof input.Description === "string" ? { description: input.Description } : {}),
      tags: Object.fromEntries(tags.map((t) => [t.Key!, t.Value ?? ""])),
      startTime: new Date(this.account.now()),
      ownerId: this.account.accountId,
    };
    this.account.snapshots.set(snapshot.id, snapshot);
    if (token) this.clientTokens.set(token, { request: fingerprint, snapshotId: snapshot.id });
    this.json(res, 201, this.describe(snapshot));
  }

  private describe(snapshot: FakeSnapshot): Record<string, unknown> {
    return {
      SnapshotId: snapshot.id,
      OwnerId: snapshot.ownerId,
      Status: snapshot.status,
      StartTime: snapshot.startTime.getTime() / 1000,
      VolumeSize: snapshot.volumeSizeGiB,
      BlockSize: EBS_BLOCK_SIZE,
      ...(snapshot.description !== undefined ? { Description: snapshot.description } : {}),
      Tags: Object.entries(snapshot.tags).map(([Key, Value]) => ({ Key, Value })),
    };
  }

  private snapshotOr404(id: string): FakeSnapshot | EbsFault {
    return (
      this.account.snapshots.get(id) ??
      fault(404, "ResourceNotFoundException", `The snapshot '${id}' does not exist.`, "SNAPSHOT_NOT_FOUND")
    );
  }

  private async putBlock(
    id: string,
    index: number,
    req: IncomingMessage,
    body: Buffer,
    res: ServerResponse,
  ): Promise<void> {
    const snapshot = this.snapshotOr404(id);
    if ("code" in snapshot) return this.reply(res, snapshot);
    if (snapshot.status !== "pending") {
      return this.reply(res, invalid(`The snapshot '${id}' is not pending`, "INVALID_SNAPSHOT_ID"));
    }
    if (index * EBS_BLOCK_SIZE >= snapshot.volumeSizeGiB * GIB) {
      return this.reply(res, invalid(`Block index ${index} is outside the volume`, "INVALID_BLOCK"));
    }
    const length = Number(req.headers["x-amz-data-length"]);
    if (length !== EBS_BLOCK_SIZE || body.length !== length) {
      return this.reply(res, invalid(`The data length must be ${EBS_BLOCK_SIZE}, was ${length} (${body.length} sent)`));
    }
    if (req.headers["x-amz-checksum-algorithm"] !== "SHA256") {
      return this.reply(res, invalid("The checksum algorithm must be SHA256"));
    }
    const checksum = createHash("sha256").update(body).digest("base64");
    if (req.headers["x-amz-checksum"] !== checksum) {
      return this.reply(res, invalid("The checksum of the data does not match the one sent", "INVALID_BLOCK"));
    }
    if (this.knobs.blockLatencyMs) await sleep(this.knobs.blockLatencyMs);
    snapshot.blocks.set(index, Buffer.from(body));
    res.writeHead(201, { "x-amz-Checksum": checksum, "x-amz-Checksum-Algorithm": "SHA256", ...this.requestId() });
    res.end();
  }

  private completeSnapshot(id: string, req: IncomingMessage, res: ServerResponse): void {
    const snapshot = this.snapshotOr404(id);
    if ("code" in snapshot) return this.reply(res, snapshot);
    if (snapshot.status === "completed") return this.json(res, 202, { Status: "completed" });
    const changed = Number(req.headers["x-amz-changedblockscount"]);
    if (!Number.isInteger(changed) || changed < 0) return this.reply(res, invalid("ChangedBlocksCount is required"));
    if (changed !== snapshot.blocks.size) {
      return this.reply(
        res,
        invalid(`ChangedBlocksCount is ${changed} but ${snapshot.blocks.size} blocks were written`),
      );
    }
    const checksum = req.headers["x-amz-checksum"];
    if (checksum !== undefined) {
      if (
        req.headers["x-amz-checksum-algorithm"] !== "SHA256" ||
        req.headers["x-amz-checksum-aggregation-method"] !== "LINEAR"
      ) {
        return this.reply(res, invalid("The aggregated checksum must be SHA256 with the LINEAR method"));
      }
      const linear = createHash("sha256");
      for (const index of [...snapshot.blocks.keys()].sort((a, b) => a - b)) {
        linear.update(createHash("sha256").update(snapshot.blocks.get(index)!).digest());
      }
      if (linear.digest("base64") !== checksum) {
        snapshot.status = "error";
        return this.reply(res, invalid("The aggregated checksum does not match the blocks written"));
      }
    }
    snapshot.status = "completed";
    this.json(res, 202, { Status: "completed" });
  }

  private listBlocks(id: string, query: URLSearchParams, res: ServerResponse): void {
    const snapshot = this.snapshotOr404(id);
    if ("code" in snapshot) return this.reply(res, snapshot);
    if (snapshot.status !== "completed") {
      return this.reply(res, invalid(`The snapshot '${id}' is not completed`, "INVALID_SNAPSHOT_ID"));
    }
    const max = query.has("maxResults") ? Number(query.get("maxResults")) : 10_000;
    if (!Number.isInteger(max) || max < 100 || max > 10_000) {
      return this.reply(res, invalid(`maxResults must be 100 to 10000, was ${query.get("maxResults")}`));
    }
    let start = Number(query.get("startingBlockIndex") ?? 0);
    const pageToken = query.get("pageToken");
    if (pageToken !== null) {
      const known = this.pageTokens.get(pageToken);
      if (!known || known.snapshotId !== id)
        return this.reply(res, invalid("The page token is not valid", "INVALID_PAGE_TOKEN"));
      start = known.start;
    }
    const indexes = [...snapshot.blocks.keys()].filter((i) => i >= start).sort((a, b) => a - b);
    const page = indexes.slice(0, max);
    const expiresAt = this.account.now() + (this.knobs.tokenLifetimeMs ?? 10 * 60_000);
    const blocks = page.map((index) => {
      const token = randomBytes(24).toString("base64");
      this.blockTokens.set(token, { snapshotId: id, index, expiresAt });
      return { BlockIndex: index, BlockToken: token };
    });
    let nextToken: string | undefined;
    if (indexes.length > page.length) {
      if (this.knobs.repeatNextToken && pageToken) nextToken = pageToken;
      else {
        nextToken = randomBytes(24).toString("base64");
        this.pageTokens.set(nextToken, { snapshotId: id, start: page.at(-1)! + 1 });
      }
    }
    this.json(res, 200, {
      Blocks: blocks,
      ExpiryTime: expiresAt / 1000,
      VolumeSize: snapshot.volumeSizeGiB,
      BlockSize: EBS_BLOCK_SIZE,
      ...(nextToken ? { NextToken: nextToken } : {}),
    });
  }

  private async getBlock(id: string, index: number, query: URLSearchParams, res: ServerResponse): Promise<void> {
    const snapshot = this.snapshotOr404(id);
    if ("code" in snapshot) return this.reply(res, snapshot);
    const token = this.blockTokens.get(query.get("blockToken") ?? "");
    if (!token || token.snapshotId !== id || token.index !== index || this.account.now() >= token.expiresAt) {
      return this.reply(res, invalid("The block token is not valid or has expired", "INVALID_BLOCK_TOKEN"));
    }
    const data = snapshot.blocks.get(index);
    if (!data) return this.reply(res, invalid(`Block ${index} is not in the snapshot`, "INVALID_BLOCK"));
    if (this.knobs.blockLatencyMs) await sleep(this.knobs.blockLatencyMs);
    const gets = (this.getsOf.get(id) ?? 0) + 1;
    this.getsOf.set(id, gets);
    const deletion = this.knobs.deleteAfterGets;
    if (deletion?.snapshotId === id && gets > deletion.after) {
      this.account.snapshots.delete(id);
      return this.reply(res, this.snapshotOr404(id) as EbsFault);
    }
    let checksum = createHash("sha256").update(data).digest("base64");
    let sent = data;
    const key = `${id}:${index}`;
    if (take(this.knobs.corruptData, key)) {
      sent = Buffer.from(data);
      sent[12345] = sent[12345]! ^ 0xff;
    }
    if (take(this.knobs.corruptChecksum, key)) checksum = createHash("sha256").update("not the block").digest("base64");
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": String(sent.length),
      "x-amz-Data-Length": String(sent.length),
      "x-amz-Checksum": checksum,
      "x-amz-Checksum-Algorithm": "SHA256",
      ...this.requestId(),
    });
    if (take(this.knobs.cutBody, key)) {
      res.write(sent.subarray(0, sent.length / 2), () => res.destroy());
      return;
    }
    res.end(sent);
  }

  private requestId(): Record<string, string> {
    return { "x-amzn-RequestId": randomBytes(16).toString("hex") };
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
      ...this.requestId(),
    });
    res.end(text);
  }

  private reply(res: ServerResponse, error: EbsFault): void {
    const text = JSON.stringify({ Message: error.message, ...(error.reason ? { Reason: error.reason } : {}) });
    res.writeHead(error.status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
      "x-amzn-ErrorType": error.code,
      ...this.requestId(),
    });
    res.end(text);
  }
}

/** One use of a "corrupt this block N times" knob: true while uses remain. */
function take(knob: Map<string, number> | undefined, key: string): boolean {
  const left = knob?.get(key) ?? 0;
  if (left <= 0) return false;
  knob!.set(key, left - 1);
  return true;
}

interface Route {
  readonly call: "StartSnapshot" | "PutSnapshotBlock" | "CompleteSnapshot" | "ListSnapshotBlocks" | "GetSnapshotBlock";
  readonly snapshotId?: string;
  readonly index?: number;
}

function routeOf(method: string, path: string): Route | undefined {
  if (method === "POST" && path === "/snapshots") return { call: "StartSnapshot" };
  let m = /^\/snapshots\/completion\/(snap-[0-9a-f]+)$/.exec(path);
  if (m && method === "POST") return { call: "CompleteSnapshot", snapshotId: m[1]! };
  m = /^\/snapshots\/(snap-[0-9a-f]+)\/blocks$/.exec(path);
  if (m && method === "GET") return { call: "ListSnapshotBlocks", snapshotId: m[1]! };
  m = /^\/snapshots\/(snap-[0-9a-f]+)\/blocks\/(\d{1,10})$/.exec(path);
  if (m && method === "GET") return { call: "GetSnapshotBlock", snapshotId: m[1]!, index: Number(m[2]) };
  if (m && method === "PUT") return { call: "PutSnapshotBlock", snapshotId: m[1]!, index: Number(m[2]) };
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
