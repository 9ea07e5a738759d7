/**
 * Where an AWS client sends its requests, from the settings AWS users already keep (AWS SDKs and Tools
 * Reference Guide, "Service-specific endpoints", "Dual-stack and FIPS endpoints"):
 *
 * - an explicit endpoint URL per service: AWS_ENDPOINT_URL_<SERVICE> (EC2, S3, EBS, STS, SSO), then
 *   AWS_ENDPOINT_URL, then the profile's `services` section (`ec2 =` with an indented `endpoint_url = …`), then
 *   the profile's own `endpoint_url`; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS / `ignore_configured_endpoint_urls`
 *   turns them all off. This is how a VPC endpoint (https://vpce-….ec2.REGION.vpce.amazonaws.com) or a local
 *   test server is named;
 * - AWS_USE_FIPS_ENDPOINT / `use_fips_endpoint` and AWS_USE_DUALSTACK_ENDPOINT / `use_dualstack_endpoint`.
 *
 * The SDK clients resolve all of this by themselves, but only for the process's own profile (AWS_PROFILE or
 * "default") and from process.env: a cloud named `aws:PROFILE` on our command line is another profile, so the
 * same rules are applied here to that profile and the result is given to the clients explicitly. What is not
 * an explicit URL is left to the SDK's endpoint rules, which already know the partitions: us-gov-* regions
 * land on amazonaws.com hosts of the aws-us-gov partition, cn-* on .amazonaws.com.cn, FIPS and dual-stack
 * host names per service. The partition is computed here only to be shown and put in ARNs.
 */
import { ChromogenicError } from "../../util/errors.js";

type Env = Readonly<Record<string, string | undefined>>;

/** The services whose endpoint a cloud can override, as the SDKs spell their ids in AWS_ENDPOINT_URL_<ID>. */
export const AWS_ENDPOINT_SERVICES = ["ec2", "s3", "ebs", "sts", "sso"] as const;
export type AwsEndpointService = (typeof AWS_ENDPOINT_SERVICES)[number];

/** An explicit URL per service; absent: the SDK's own resolution for the region. */
export type AwsEndpoints = { readonly [S in AwsEndpointService]?: string };

export type AwsPartition = "aws" | "aws-us-gov" | "aws-cn" | "aws-iso" | "aws-iso-b" | "aws-iso-e" | "aws-iso-f";

/** A profile's settings as aws-profiles.ts reads them: options by name, sub-options as "parent.key". */
export type ProfileOptions = ReadonlyMap<string, string>;

export interface AwsEndpointSettings {
  readonly endpoints: AwsEndpoints;
  readonly useFipsEndpoint: boolean;
  readonly useDualstackEndpoint: boolean;
}

/** The partition a region belongs to, from its prefix (the partitions' published region patterns). */
export function partitionOf(region: string): AwsPartition {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  if (region.startsWith("us-isob-")) return "aws-iso-b";
  if (region.startsWith("us-isof-")) return "aws-iso-f";
  if (region.startsWith("us-iso-")) return "aws-iso";
  if (region.startsWith("eu-isoe-")) return "aws-iso-e";
  return "aws";
}

/** A region name as AWS writes them (us-east-1, us-gov-west-1, cn-north-1, eu-isoe-west-1). */
export function isRegionName(text: string): boolean {
  return /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(text);
}

/**
 * The endpoint settings of `profile` (undefined: no profile, the variables alone). `services` is the profile's
 * `[services NAME]` section when it names one; `where` names the profile in errors.
 */
export function resolveAwsEndpoints(
  env: Env,
  profile: ProfileOptions | undefined,
  services: ProfileOptions | undefined,
  where: string,
): AwsEndpointSettings {
  const ignore =
    booleanSetting(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", where) ??
    booleanSetting(profile?.get("ignore_configured_endpoint_urls"), "ignore_configured_endpoint_urls", where) ??
    false;
  const endpoints: Partial<Record<AwsEndpointService, string>> = {};
  if (!ignore) {
    for (const service of AWS_ENDPOINT_SERVICES) {
      const [url, from] = firstSet([
        [env[`AWS_ENDPOINT_URL_${service.toUpperCase()}`], `AWS_ENDPOINT_URL_${service.toUpperCase()}`],
        [env.AWS_ENDPOINT_URL, "AWS_ENDPOINT_URL"],
        [services?.get(`${service}.endpoint_url`), `${service} endpoint_url of the profile's services section`],
        [profile?.get("endpoint_url"), "endpoint_url of the profile"],
      ]);
      if (url !== undefined) endpoints[service] = checkedUrl(url, from, where);
    }
  }
  return {
    endpoints,
    useFipsEndpoint:
      booleanSetting(env.AWS_USE_FIPS_ENDPOINT, "AWS_USE_FIPS_ENDPOINT", where) ??
      booleanSetting(profile?.get("use_fips_endpoint"), "use_fips_endpoint", where) ??
      false,
    useDualstackEndpoint:
      booleanSetting(env.AWS_USE_DUALSTACK_ENDPOINT, "AWS_USE_DUALSTACK_ENDPOINT", where) ??
      booleanSetting(profile?.get("use_dualstack_endpoint"), "use_dualstack_endpoint", where) ??
      false,
  };
}

function firstSet(candidates: [string | undefined, string][]): [string | undefined, string] {
  return candidates.find(([v]) => v !== undefined && v.trim() !== "") ?? [undefined, ""];
}

function checkedUrl(url: string, from: string, where: string): string {
  const trimmed = url.trim();
  let protocol = "";
  try {
    protocol = new URL(trimmed).protocol;
  } catch {
    // refused below
  }
  if (protocol !== "http:" && protocol !== "https:") {
    throw new ChromogenicError(`${where}: ${from} "${trimmed}" is not an http(s) URL`, "ECONFIG");
  }
  return trimmed;
}

/** "true"/"false" as the SDKs accept them (case-insensitive); unset is undefined. */
function booleanSetting(value: string | undefined, what: string, where: string): boolean | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const v = value.trim().toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  throw new ChromogenicError(`${where}: ${what} must be true or false, not "${value}"`, "ECONFIG");
}
