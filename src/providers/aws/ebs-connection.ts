/**
 * The EBS direct APIs of one region with one set of credentials, through @aws-sdk/client-ebs: what reads a
 * snapshot's blocks (ebs-snapshot-input.ts) and writes new snapshots (ebs-snapshot-writer.ts) send their calls
 * through.
 *
 * `send` runs a command and turns any failure into one sentence (aws-errors.ts): "EBS at URL refused
 * GetSnapshotBlock of snapshot snap-… block 12: ValidationException: … (HTTP 400, request …)".
 *
 * Retries are ours, not the SDK's: the EBS direct APIs throttle per snapshot as well as per account, and a
 * conversion keeps many requests in flight, so throttling (ThrottlingException, RequestThrottledException,
 * HTTP 429 / 503 SlowDown), server errors and dropped connections are retried here with exponential backoff
 * and full jitter (every waiter picks a random delay below the ceiling, so a storm does not come back in
 * step), a bounded number of times; `stats` counts them so a caller can say how hard the service pushed back.
 * A session the server calls expired is asked of a refreshing credential provider again, once per call, so a
 * long transfer outlives the credentials it started with.
 *
 * GetSnapshotBlock and PutSnapshotBlock, one per block, go through `blocks` (ebs-block-transport.ts: signed
 * requests on our own connections, the SDK's per-request cost being most of a transfer's CPU); they are sent
 * through `send` as functions, so that they are retried, refreshed and worded like every other call.
 */
import { EBSClient } from "@aws-sdk/client-ebs";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";
import { setTimeout as sleep } from "node:timers/promises";
import { AwsServiceError, awsError, isAbort } from "../ec2/aws-errors.js";
import { requestHandlerOptions, type AwsRequestHandlerOptions, type Ec2TlsSettings } from "../ec2/aws-http.js";
import { AbortedError, ChromogenicError } from "../../util/errors.js";
import type { AwsCloudConfig } from "./aws-cloud-config.js";
import { EbsBlockTransport } from "./ebs-block-transport.js";

export interface EbsSettings {
  /** The cloud's name, for messages. */
  readonly cloud: string;
  readonly region: string;
  /** The EBS endpoint; undefined for AWS's own (ebs.REGION.amazonaws.com, resolved by the SDK). */
  readonly endpoint?: string;
  readonly credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  readonly tls?: Ec2TlsSettings;
  /** AWS's FIPS or dual-stack endpoints for the region (the SDK's endpoint rules), when no endpoint is given. */
  readonly useFipsEndpoint?: boolean;
  readonly useDualstackEndpoint?: boolean;
  /** Attempts per call, the first included, before a retryable failure is final (default 10). */
  readonly maxAttempts?: number;
  /** The first retry's backoff ceiling in milliseconds, doubled per attempt up to 20 s (default 200). */
  readonly retryBaseDelayMs?: number;
}

/** What the connection has done so far; the counters only grow. */
export interface EbsStats {
  /** Requests sent, retries included. */
  requests: number;
  /** Requests sent again after a retryable failure. */
  retries: number;
  /** Of those, the ones answered with throttling. */
  throttled: number;
  /** Times expired credentials were asked of the provider again. */
  refreshes: number;
  /** Requests under way now, and the most there ever were. */
  inFlight: number;
  maxInFlight: number;
}

const DEFAULT_MAX_ATTEMPTS = 10;
const DEFAULT_BASE_DELAY_MS = 200;
const MAX_DELAY_MS = 20_000;

/** The codes the EBS direct APIs (and the SDK's HTTP layer) use for "too many requests, slow down". */
const THROTTLING_CODES = new Set([
  "ThrottlingException",
  "RequestThrottledException",
  "RequestThrottled",
  "TooManyRequestsException",
  "SlowDown",
  "ConcurrentLimitExceededException",
]);

/** Codes meaning the credentials' session ended: a refreshing provider is asked again, once per call. */
const EXPIRED_CODES = new Set(["ExpiredToken", "ExpiredTokenException", "RequestExpired"]);

export class EbsConnection {
  private sdk: EBSClient;
  /** The endpoint for messages: the configured one, or AWS's for the region. */
  readonly endpoint: string;
  readonly stats: EbsStats = {
    requests: 0,
    retries: 0,
    throttled: 0,
    refreshes: 0,
    inFlight: 0,
    maxInFlight: 0,
  };
  private secrets: string[] = [];
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  /** The HTTP agents and timeouts, shared by the SDK clients this connection makes. */
  private readonly handler: AwsRequestHandlerOptions;
  private transport: EbsBlockTransport | undefined;

  constructor(readonly settings: EbsSettings) {
    if (settings.endpoint !== undefined) {
      let protocol = "";
      try {
        protocol = new URL(settings.endpoint).protocol;
      } catch {
        // refused below
      }
      if (protocol !== "http:" && protocol !== "https:") {
        throw new ChromogenicError(
          `cloud "${settings.cloud}": the EBS URL "${settings.endpoint}" is not an http(s) URL`,
          "ECONFIG",
        );
      }
    }
    this.endpoint = settings.endpoint ?? `https://ebs.${settings.region}.amazonaws.com`;
    this.maxAttempts = Math.max(1, settings.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    this.baseDelayMs = Math.max(0, settings.retryBaseDelayMs ?? DEFAULT_BASE_DELAY_MS);
    if (typeof settings.credentials !== "function") this.remember(settings.credentials);
    this.handler = requestHandlerOptions(settings.cloud, settings.tls ?? { verify: true });
    this.sdk = this.newClient();
  }

  /** The EBS direct APIs of an AWS cloud: its region, endpoint rules, refreshing credentials and TLS trust. */
  static forAws(config: AwsCloudConfig): EbsConnection {
    return new EbsConnection({
      cloud: config.name,
      region: config.region,
      ...(config.endpoints.ebs ? { endpoint: config.endpoints.ebs } : {}),
      credentials: config.credentials,
      tls: config.tls,
      useFipsEndpoint: config.useFipsEndpoint,
      useDualstackEndpoint: config.useDualstackEndpoint,
    });
  }

  /** The SDK client (replaced when expired credentials are refreshed). */
  get client(): EBSClient {
    return this.sdk;
  }

  private newClient(): EBSClient {
    const { settings } = this;
    const given = settings.credentials;
    // The secrets are known only once a provider has answered: each answer is remembered for scrubbing.
    const credentials =
      typeof given === "function"
        ? async () => {
            const identity = await given();
            this.remember(identity);
            return identity;
          }
        : given;
    return new EBSClient({
      ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint } : {}),
      region: settings.region,
      credentials,
      ...(settings.useFipsEndpoint ? { useFipsEndpoint: true } : {}),
      ...(settings.useDualstackEndpoint ? { useDualstackEndpoint: true } : {}),
      maxAttempts: 1,
      requestHandler: this.handler,
    });
  }

  /**
   * GetSnapshotBlock and PutSnapshotBlock without the SDK's client, at the endpoint the SDK resolves (the
   * configured one, or its rules' for the region, FIPS and dual-stack), signed with the current SDK client's
   * credentials (so a refresh reaches them too) and trusting what the SDK's agents trust.
   */
  get blocks(): EbsBlockTransport {
    if (!this.transport) {
      const { settings } = this;
      const endpoint =
        settings.endpoint !== undefined
          ? new URL(settings.endpoint)
          : new URL(
              this.sdk.config.endpointProvider({
                Region: settings.region,
                UseFIPS: settings.useFipsEndpoint ?? false,
                UseDualStack: settings.useDualstackEndpoint ?? false,
              }).url.href,
            );
      const ca = this.handler.httpsAgent.options.ca;
      this.transport = new EbsBlockTransport({
        endpoint,
        region: settings.region,
        credentials: () => this.sdk.config.credentials(),
        tls: { rejectUnauthorized: settings.tls?.verify ?? true, ...(typeof ca === "string" ? { ca } : {}) },
      });
    }
    return this.transport;
  }

  /**
   * The server says the session expired before the SDK thought it would (a clock apart, a session revoked):
   * a new SDK client asks the provider again, since the SDK keeps an identity until its announced expiry.
   */
  private refreshCredentials(failed: EBSClient): boolean {
    if (typeof this.settings.credentials !== "function") return false;
    if (failed !== this.sdk) return true; // another call refreshed them meanwhile
    // A provider that memoizes (aws-credentials.ts' RefreshingCredentials) must forget what the server refused.
    (this.settings.credentials as { invalidate?: () => void }).invalidate?.();
    const old = this.sdk;
    this.sdk = this.newClient();
    this.stats.refreshes++;
    // Requests in flight on the old client finish on their own (they time out within 5 minutes); then it goes.
    setTimeout(() => old.destroy(), 300_000).unref();
    return true;
  }

  /**
   * Runs `command` (an SDK command, or a function sending a request through `blocks`), retrying throttling and
   * transient failures; a final failure is an AwsServiceError (or AbortedError) naming the call and its
   * subject, and how many attempts it took.
   */
  async send<Output = unknown>(
    command: { readonly input: unknown } | ((signal?: AbortSignal) => Promise<Output>),
    context: { readonly call: string; readonly subject?: string },
    signal?: AbortSignal,
  ): Promise<Output> {
    const started = Date.now();
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw this.error(new AbortedError("cancelled"), context, signal);
      this.stats.requests++;
      this.stats.maxInFlight = Math.max(this.stats.maxInFlight, ++this.stats.inFlight);
      try {
        // Every command of this client is accepted; the caller names the output type it reads.
        const client = this.sdk;
        try {
          if (typeof command === "function") return await command(signal);
          return (await client.send(command as never, signal ? { abortSignal: signal } : {})) as Output;
        } catch (e) {
          const name = (e as { name?: unknown } | null)?.name;
          if (!refreshed && typeof name === "string" && EXPIRED_CODES.has(name) && !isAbort(e, signal)) {
            refreshed = true;
            if (this.refreshCredentials(client)) {
              attempt--;
              continue;
            }
          }
          throw e;
        }
      } catch (e) {
        const kind = isAbort(e, signal) ? "final" : retryKind(e);
        if (kind === "final" || attempt >= this.maxAttempts) {
          const error = this.error(e, context, signal);
          if (attempt === 1 || !(error instanceof AwsServiceError)) throw error;
          const seconds = ((Date.now() - started) / 1000).toFixed(1);
          throw new AwsServiceError(
            `${error.message}; gave up after ${attempt} attempts in ${seconds} s`,
            error.code,
            {
              service: "EBS",
              call: error.call,
              ...(error.awsCode ? { awsCode: error.awsCode } : {}),
              ...(error.status !== undefined ? { status: error.status } : {}),
              ...(error.requestId ? { requestId: error.requestId } : {}),
            },
            { cause: e },
          );
        }
        this.stats.retries++;
        if (kind === "throttled") this.stats.throttled++;
        const ceiling = Math.min(MAX_DELAY_MS, this.baseDelayMs * 2 ** (attempt - 1));
        try {
          await sleep(Math.random() * ceiling, undefined, signal ? { signal } : {});
        } catch (abort) {
          throw this.error(abort, context, signal);
        }
      } finally {
        this.stats.inFlight--;
      }
    }
  }

  /** `error` as the sentence of a failed call. */
  error(error: unknown, context: { readonly call: string; readonly subject?: string }, signal?: AbortSignal) {
    return awsError(error, { service: "EBS", endpoint: this.endpoint, ...context, secrets: this.secrets }, signal);
  }

  destroy(): void {
    this.transport?.destroy();
    this.sdk.destroy();
  }

  private remember(identity: AwsCredentialIdentity): void {
    for (const secret of [identity.secretAccessKey, identity.sessionToken ?? ""]) {
      if (secret && !this.secrets.includes(secret)) this.secrets.push(secret);
    }
  }
}

interface SdkFailure {
  name?: unknown;
  Reason?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
}

/** Whether a failure is worth another attempt: throttling, a server error, a dropped connection. */
function retryKind(error: unknown): "throttled" | "transient" | "final" {
  if (error instanceof ChromogenicError) return "final";
  const e = (error ?? {}) as SdkFailure;
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  const name = typeof e.name === "string" ? e.name : "";
  if (THROTTLING_CODES.has(name) || status === 429 || (status === 503 && name === "SlowDown")) return "throttled";
  if (status === undefined) return "transient"; // no answer: reset, refused, timed out
  if (status >= 500) return "transient";
  // The one 4xx the reference calls retryable: PutSnapshotBlock's "Failed to read block data".
  if (name === "ValidationException" && typeof e.message === "string" && /failed to read block data/i.test(e.message))
    return "transient";
  return "final";
}
