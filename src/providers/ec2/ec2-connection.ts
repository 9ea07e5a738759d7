/**
 * One EC2 endpoint (Eucalyptus' compute service, OpenStack's ec2-api, AWS) with one set of credentials, through
 * @aws-sdk/client-ec2. The endpoint is used as configured, its path included: Eucalyptus serves EC2 under
 * /services/compute, and the SDK posts the Query request to that path (with a "/" added at its end, as
 * euca2ools' own URLs have it). Requests are signed with SigV4 for the cloud's region.
 *
 * `send` runs a command and turns any failure into one sentence (aws-errors.ts): "EC2 at URL refused
 * RegisterImage of …: InvalidManifest: … (HTTP 400, request …)". EC2 writes an error's request id only in the
 * XML body (`<RequestID>`), which the SDK does not keep; a small middleware below the SDK's deserializer copies
 * it into the header the SDK does read, so the sentence can name it.
 */
import { EC2Client } from "@aws-sdk/client-ec2";
import type { Ec2CloudConfig } from "./ec2-cloud-config.js";
import type { AwsCloudConfig } from "../aws/aws-cloud-config.js";
import { awsClientConfig, resolvedEndpoint } from "../aws/aws-client-config.js";
import { expiredTokenRetry } from "../aws/aws-credentials.js";
import { awsError } from "./aws-errors.js";
import { requestHandlerOptions } from "./aws-http.js";
import { ChromogenicError } from "../../util/errors.js";

export class Ec2Connection {
  readonly client: EC2Client;
  readonly endpoint: string;
  private secrets: readonly string[];

  /** `client`, when given, is used as built (forAws); otherwise one is built for the config's URL and keys. */
  constructor(
    readonly config: Ec2CloudConfig,
    client?: EC2Client,
  ) {
    let protocol = "";
    try {
      protocol = new URL(config.ec2Url).protocol;
    } catch {
      // refused below
    }
    if (protocol !== "http:" && protocol !== "https:") {
      throw new ChromogenicError(
        `cloud "${config.name}": the EC2 URL "${config.ec2Url}" is not an http(s) URL`,
        "ECONFIG",
      );
    }
    this.endpoint = config.ec2Url;
    this.secrets = [config.secretAccessKey, config.sessionToken ?? ""];
    this.client =
      client ??
      new EC2Client({
        endpoint: config.ec2Url,
        region: config.region,
        credentials: {
          accessKeyId: config.accessKeyId,
          secretAccessKey: config.secretAccessKey,
          ...(config.sessionToken ? { sessionToken: config.sessionToken } : {}),
        },
        maxAttempts: 3,
        requestHandler: requestHandlerOptions(config.name, config.tls),
      });
    this.client.middlewareStack.addRelativeTo(keepErrorRequestId as never, {
      relation: "after",
      toMiddleware: "deserializerMiddleware",
      name: "chromogenicEc2ErrorRequestId",
    });
  }

  /**
   * AWS's EC2 for a cloud of aws-cloud-config.ts: its region, its endpoint override or the SDK's resolution
   * (partition, FIPS, dual-stack), its refreshing credentials and the expired-token retry.
   */
  static forAws(config: AwsCloudConfig): Ec2Connection {
    const settings = awsClientConfig(config, "ec2");
    const client = new EC2Client(settings);
    client.middlewareStack.use(expiredTokenRetry(config.credentials, config.name));
    const ec2Url = resolvedEndpoint(settings, client.config.endpointProvider as never);
    const { name, source, region, tls, secrets } = config;
    const view = { name, kind: "ec2", source, ec2Url, region, accessKeyId: "", secretAccessKey: "", tls } as const;
    const connection = new Ec2Connection(view, client);
    connection.secrets = secrets;
    return connection;
  }

  /** Runs `command`; a failure is an AwsServiceError (or AbortedError) naming the call and its subject. */
  async send<Output = unknown>(
    command: { readonly input: unknown },
    context: { readonly call: string; readonly subject?: string },
    signal?: AbortSignal,
  ): Promise<Output> {
    try {
      // Every command of this client is accepted; the caller names the output type it reads.
      return (await this.client.send(command as never, signal ? { abortSignal: signal } : {})) as Output;
    } catch (e) {
      throw awsError(e, { service: "EC2", endpoint: this.endpoint, ...context, secrets: this.secrets }, signal);
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}

/** An error reply read beyond this is not an EC2 error document: its request id is not looked for. */
const MAX_ERROR_BODY = 256 * 1024;

interface RawResponse {
  statusCode?: number;
  headers: Record<string, string>;
  body: unknown;
}

/** The middleware: on an HTTP error, the body is read (bounded), its RequestID copied to x-amzn-requestid. */
function keepErrorRequestId(next: (args: unknown) => Promise<{ response: unknown }>) {
  return async (args: unknown) => {
    const out = await next(args);
    const response = out.response as RawResponse;
    if ((response.statusCode ?? 0) < 400 || response.headers["x-amzn-requestid"]) return out;
    const chunks: Uint8Array[] = [];
    let length = 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
      length += chunk.byteLength;
      if (length > MAX_ERROR_BODY) break;
    }
    const bytes = Buffer.concat(chunks);
    response.body = bytes; // the SDK's deserializer takes bytes as readily as a stream
    const id = /<Request(?:I[Dd])>\s*([^<\s]{1,200})\s*<\/Request(?:I[Dd])>/.exec(
      bytes.subarray(0, MAX_ERROR_BODY).toString(),
    )?.[1];
    if (id) response.headers["x-amzn-requestid"] = id;
    return out;
  };
}
