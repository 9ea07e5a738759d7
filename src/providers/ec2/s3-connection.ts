/**
 * One S3 endpoint with one set of credentials: the SDK client configured for the servers the EC2 family
 * brings (Eucalyptus' object storage gateway, Swift's s3api, radosgw) rather than for AWS alone:
 *
 * - path-style addressing (`http://host:port/bucket/key`): those servers have no wildcard DNS per bucket;
 * - SigV4, with the region the server expects (Swift checks it against its `location`);
 * - checksums only when an operation requires them: the SDK's default sends PutObject bodies `aws-chunked`
 *   with a trailing CRC, which Swift answers with 501 Not Implemented. Integrity comes from Content-MD5 instead,
 *   which every S3 server checks;
 * - the endpoint exactly as configured, a path included (Eucalyptus serves S3 under /services/objectstorage).
 *
 * `send` runs a command and turns any failure into one sentence (aws-errors.ts).
 */
import { S3Client } from "@aws-sdk/client-s3";
import type { Ec2CloudConfig } from "./ec2-cloud-config.js";
import type { AwsCloudConfig } from "../aws/aws-cloud-config.js";
import { awsClientConfig, resolvedEndpoint } from "../aws/aws-client-config.js";
import { expiredTokenRetry } from "../aws/aws-credentials.js";
import { awsError } from "./aws-errors.js";
import { requestHandlerOptions, type Ec2TlsSettings } from "./aws-http.js";
import { ChromogenicError } from "../../util/errors.js";

export interface S3Settings {
  /** The cloud's name, for messages and the insecure-TLS warning. */
  readonly cloud: string;
  /** The S3 endpoint (s3Url), e.g. http://127.0.0.1:8773/services/objectstorage. */
  readonly endpoint: string;
  /** The SigV4 signing region. */
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly tls?: Ec2TlsSettings;
  /**
   * A canned ACL given to buckets this client creates and objects it writes. Unset by default. Eucalyptus wants
   * `aws-exec-read` on bundle buckets and parts (its node controllers read them); Swift and radosgw refuse it.
   */
  readonly cannedAcl?: string;
  /** Secret values to scrub from messages besides the keys above (AWS clouds). */
  readonly secrets?: readonly string[];
  /** Attempts per call, the SDK's retry policy included (default 3). */
  readonly maxAttempts?: number;
}

/** What a command is about, for its error sentence. */
export interface S3CallContext {
  readonly call: string;
  readonly subject?: string;
  readonly hints?: Readonly<Record<string, string>>;
}

/** The hint a refused canned ACL gets: the servers that refuse it are named. */
export function aclHints(acl: string | undefined): Record<string, string> {
  if (!acl) return {};
  const hint =
    `The canned ACL "${acl}" was asked for: Swift's s3api and Ceph's radosgw do not accept ` +
    `${acl === "aws-exec-read" ? "aws-exec-read (only Eucalyptus does)" : "every canned ACL"}; ` +
    "leave the ACL unset for them";
  return { InvalidArgument: hint, NotImplemented: hint, InvalidRequest: hint, MalformedACLError: hint };
}

export class S3Connection {
  readonly client: S3Client;
  readonly settings: S3Settings;

  /** `client`, when given, is used as built (forAws); otherwise one is built for the settings' URL and keys. */
  constructor(settings: S3Settings, client?: S3Client) {
    let url: URL;
    try {
      url = new URL(settings.endpoint);
    } catch {
      throw new ChromogenicError(
        `cloud "${settings.cloud}": the S3 URL "${settings.endpoint}" is not a URL`,
        "ECONFIG",
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ChromogenicError(
        `cloud "${settings.cloud}": the S3 URL "${settings.endpoint}" is not http or https`,
        "ECONFIG",
      );
    }
    this.settings = settings;
    this.client =
      client ??
      new S3Client({
        endpoint: settings.endpoint,
        region: settings.region,
        forcePathStyle: true,
        credentials: {
          accessKeyId: settings.accessKeyId,
          secretAccessKey: settings.secretAccessKey,
          ...(settings.sessionToken ? { sessionToken: settings.sessionToken } : {}),
        },
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        maxAttempts: settings.maxAttempts ?? 3,
        requestHandler: requestHandlerOptions(settings.cloud, settings.tls ?? { verify: true }),
      });
  }

  /** An S3 connection for a configured cloud; its s3Url must be set. */
  static forCloud(
    config: Ec2CloudConfig,
    options: { readonly cannedAcl?: string; readonly region?: string } = {},
  ): S3Connection {
    if (!config.s3Url) {
      throw new ChromogenicError(
        `cloud "${config.name}" has no S3 URL (S3_URL, or s3-url in its euca2ools region; ${config.source})`,
        "ECONFIG",
      );
    }
    return new S3Connection({
      cloud: config.name,
      endpoint: config.s3Url,
      region: options.region ?? config.region,
      accessKeyId: config.accessKeyId,
      secretAccessKey: config.secretAccessKey,
      sessionToken: config.sessionToken,
      tls: config.tls,
      cannedAcl: options.cannedAcl,
    });
  }

  /**
   * AWS's S3 for a cloud of aws-cloud-config.ts. Addressing is virtual-hosted (bucket.s3.REGION.amazonaws.com,
   * what AWS recommends and new regions require), with the SDK's own fallback to path style for bucket names
   * that are not DNS labels; path style when the profile says `addressing_style = path`, and when an endpoint
   * override names a host outside amazonaws.com (an S3-compatible server has no wildcard DNS per bucket). A
   * VPC interface endpoint (https://vpce-….s3.REGION.vpce.amazonaws.com) keeps virtual-hosted addressing
   * (BUCKET.vpce-…, on the endpoint's wildcard name).
   * Checksums stay WHEN_REQUIRED as for every S3 here: integrity comes from Content-MD5 (s3-objects.ts).
   */
  static forAws(config: AwsCloudConfig, options: { readonly cannedAcl?: string } = {}): S3Connection {
    const settings = awsClientConfig(config, "s3");
    let foreignHost = false;
    if (settings.endpoint) foreignHost = !/(^|\.)amazonaws\.com(\.cn)?$/.test(new URL(settings.endpoint).hostname);
    const client = new S3Client({
      ...settings,
      forcePathStyle: config.s3AddressingStyle === "path" || (config.s3AddressingStyle === "auto" && foreignHost),
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    client.middlewareStack.use(expiredTokenRetry(config.credentials, config.name));
    const endpoint = resolvedEndpoint(settings, client.config.endpointProvider as never);
    const { name: cloud, region, tls } = config;
    const view = { cloud, endpoint, region, accessKeyId: "", secretAccessKey: "", tls, secrets: config.secrets };
    return new S3Connection({ ...view, ...(options.cannedAcl ? { cannedAcl: options.cannedAcl } : {}) }, client);
  }

  /** Runs `command`; a failure is an AwsServiceError (or AbortedError) naming the call and its subject. */
  async send<Output = unknown>(
    command: { readonly input: unknown },
    context: S3CallContext,
    signal?: AbortSignal,
  ): Promise<Output> {
    try {
      // Every command of this client is accepted; the caller names the output type it reads.
      return (await this.client.send(command as never, signal ? { abortSignal: signal } : {})) as Output;
    } catch (e) {
      throw this.error(e, context, signal);
    }
  }

  /** `e` as the sentence `send` would throw. */
  error(e: unknown, context: S3CallContext, signal?: AbortSignal): ChromogenicError {
    const secrets = [this.settings.secretAccessKey, this.settings.sessionToken ?? "", ...(this.settings.secrets ?? [])];
    return awsError(e, { service: "S3", endpoint: this.settings.endpoint, ...context, secrets }, signal);
  }

  /** "s3://bucket/key" for messages. */
  static location(bucket: string, key?: string): string {
    return key === undefined ? `bucket ${bucket}` : `s3://${bucket}/${key}`;
  }

  destroy(): void {
    this.client.destroy();
  }
}
