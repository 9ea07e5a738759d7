/**
 * The settings every SDK client of an AWS cloud is built with (EC2, S3, EBS): the region, the explicit endpoint
 * when the user set one (else none, so the SDK's endpoint rules pick the regional, FIPS or dual-stack host of
 * the right partition), the refreshing credential provider and our TLS agents. Each client also gets
 * `expiredTokenRetry` (aws-credentials.ts) on its middleware stack: an expired-token refusal is answered with
 * one refresh and one retry.
 */
import { requestHandlerOptions, type AwsRequestHandlerOptions } from "../ec2/aws-http.js";
import type { AwsCloudConfig } from "./aws-cloud-config.js";
import type { RefreshingCredentials } from "./aws-credentials.js";
import type { AwsEndpointService } from "./aws-endpoints.js";

export interface AwsClientSettings {
  readonly region: string;
  readonly endpoint?: string;
  readonly credentials: RefreshingCredentials;
  readonly useFipsEndpoint: boolean;
  readonly useDualstackEndpoint: boolean;
  readonly maxAttempts: number;
  readonly requestHandler: AwsRequestHandlerOptions;
}

/** The constructor settings of `service`'s client. */
export function awsClientConfig(config: AwsCloudConfig, service: AwsEndpointService): AwsClientSettings {
  const endpoint = config.endpoints[service];
  return {
    region: config.region,
    ...(endpoint ? { endpoint } : {}),
    credentials: config.credentials,
    useFipsEndpoint: config.useFipsEndpoint,
    useDualstackEndpoint: config.useDualstackEndpoint,
    maxAttempts: 3,
    requestHandler: requestHandlerOptions(config.name, config.tls),
  };
}

/**
 * The URL a client built with `awsClientConfig` sends to, for messages: the explicit endpoint, else what the
 * SDK's endpoint rules give for the region (the client's own `endpointProvider`, no request made).
 */
export function resolvedEndpoint(
  settings: AwsClientSettings,
  endpointProvider: (params: Record<string, unknown>) => { url: URL },
): string {
  if (settings.endpoint) return settings.endpoint;
  const { url } = endpointProvider({
    Region: settings.region,
    UseFIPS: settings.useFipsEndpoint,
    UseDualStack: settings.useDualstackEndpoint,
  });
  return url.href.replace(/\/$/, "");
}
