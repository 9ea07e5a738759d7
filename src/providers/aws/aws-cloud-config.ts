/**
 * AWS as a cloud name on our command line, from what AWS users already keep (aws-profiles.ts reads the files):
 *
 *   aws                   the SDK's default order: the AWS_* keys if set, else the profile AWS_PROFILE names
 *                         (or "default") if it exists, else the instance's role through IMDSv2; the region and
 *                         endpoints come from that profile whichever gives the keys
 *   aws:PROFILE           that profile of ~/.aws/config and ~/.aws/credentials (its keys, role, SSO or process)
 *   aws/REGION, aws:PROFILE/REGION   the same in another region
 *
 * The region is the name's, else AWS_REGION, AWS_DEFAULT_REGION, then the profile's `region` — the AWS CLI's
 * order. Endpoints, FIPS and dual-stack follow aws-endpoints.ts; TLS trust AWS_CA_BUNDLE or the profile's
 * `ca_bundle` (and --os-cacert / --insecure as for every cloud). Loading makes no request: the credentials are
 * a provider that fetches (and refreshes) them when a client first signs with them.
 */
import { tlsFromEnvironment } from "../ec2/ec2-cloud-config.js";
import type { Ec2TlsSettings } from "../ec2/aws-http.js";
import { ChromogenicError } from "../../util/errors.js";
import { awsCredentialSource, refreshingCredentials, type RefreshingCredentials } from "./aws-credentials.js";
import {
  isRegionName,
  partitionOf,
  resolveAwsEndpoints,
  type AwsEndpoints,
  type AwsPartition,
  type ProfileOptions,
} from "./aws-endpoints.js";
import {
  describeProfileAuth,
  maskedKeyId,
  readAwsSharedFiles,
  secretsOf,
  type AwsAuthDescription,
  type AwsSharedFiles,
} from "./aws-profiles.js";

type Env = Readonly<Record<string, string | undefined>>;

export const AWS_CLOUD_PREFIX = "aws";

export interface AwsCloudConfig {
  /** As given on the command line: "aws", "aws:PROFILE", "aws:PROFILE/REGION", "aws/REGION". */
  readonly name: string;
  readonly kind: "aws";
  /** Where it was found: "FILE:LINE, …" of the profile's sections, "AWS_* variables", "instance metadata". */
  readonly source: string;
  readonly profile?: string;
  readonly region: string;
  readonly partition: AwsPartition;
  /** How it authenticates, in words (never a secret). */
  readonly authentication: AwsAuthDescription;
  /** Fetches and refreshes the credentials (aws-credentials.ts); give it to every client of this cloud. */
  readonly credentials: RefreshingCredentials;
  /** Explicit endpoint URLs; a service absent here is left to the SDK's resolution for the region. */
  readonly endpoints: AwsEndpoints;
  readonly useFipsEndpoint: boolean;
  readonly useDualstackEndpoint: boolean;
  /** S3 addressing: path style when the profile says `s3 = addressing_style = path` (see S3Connection.forAws). */
  readonly s3AddressingStyle: "auto" | "path" | "virtual";
  readonly tls: Ec2TlsSettings;
  /** The account, when the profile names it (aws_account_id, sso_account_id). */
  readonly accountId?: string;
  /** Secret values known from the files and variables, scrubbed from messages. */
  readonly secrets: readonly string[];
}

/** What `chromogenic clouds` shows of an AWS cloud: no secret. */
export interface AwsCloudSummary {
  readonly name: string;
  readonly kind: "aws";
  readonly source: string;
  readonly region?: string;
  /** How it authenticates, e.g. "assume role arn:… from profile base, with an external id". */
  readonly auth: string;
  /** The EC2 endpoint when one is set explicitly. */
  readonly ec2Url?: string;
  readonly s3Url?: string;
}

/** Whether `name` is one of the names above. */
export function isAwsCloudName(name: string): boolean {
  return (
    name === AWS_CLOUD_PREFIX || name.startsWith(`${AWS_CLOUD_PREFIX}:`) || name.startsWith(`${AWS_CLOUD_PREFIX}/`)
  );
}

/** The profile (undefined: the default order) and region a name gives. */
export function parseAwsCloudName(name: string): { profile?: string; region?: string } {
  if (!isAwsCloudName(name)) {
    throw new ChromogenicError(`"${name}" is not an AWS cloud name (aws, aws:PROFILE, aws:PROFILE/REGION)`, "EUSAGE");
  }
  let rest = name.slice(AWS_CLOUD_PREFIX.length);
  let region: string | undefined;
  // Profile names may hold "/": only a last part shaped like a region is one.
  const slash = rest.lastIndexOf("/");
  if (slash >= 0 && isRegionName(rest.slice(slash + 1))) {
    region = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
  } else if (rest.startsWith("/")) {
    throw new ChromogenicError(`cloud "${name}": "${rest.slice(1)}" is not a region name (e.g. us-east-1)`, "EUSAGE");
  }
  if (rest === "") return region ? { region } : {};
  const profile = rest.slice(1);
  if (!profile) throw new ChromogenicError(`cloud "${name}" names no profile (aws:PROFILE)`, "EUSAGE");
  return region ? { profile, region } : { profile };
}

/** The cloud `name` stands for, from `env` and the shared files; no request is made. */
export function loadAwsCloudConfig(name: string, env: Env = process.env): AwsCloudConfig {
  const parsed = parseAwsCloudName(name);
  const files = readAwsSharedFiles(env);
  const filesText = `${files.configFile} or ${files.credentialsFile}`;
  let profile = parsed.profile;
  let authentication: AwsAuthDescription;
  let source: string;
  if (profile === undefined && env.AWS_ACCESS_KEY_ID) {
    authentication = environmentAuth(env);
    source = "AWS_* variables";
  } else {
    const chosen = profile ?? (env.AWS_PROFILE || "default");
    const defined = files.profiles.get(chosen);
    if (defined) {
      profile = chosen;
      authentication = describeProfileAuth(files, chosen);
      source = defined.origins.join(", ");
    } else if (profile !== undefined || env.AWS_PROFILE) {
      const known = [...files.profiles.keys()];
      throw new ChromogenicError(
        `cloud "${name}": no profile "${chosen}" in ${filesText}` +
          (known.length ? `; profiles there: ${known.join(", ")}` : ""),
        "ECONFIG",
      );
    } else {
      authentication = { kind: "instance-metadata", text: "the instance's role (IMDSv2)" };
      source = "instance metadata (no AWS_* keys, no default profile)";
    }
  }
  if (authentication.kind === "none") {
    throw new ChromogenicError(
      `cloud "${name}": profile ${profile} (${source}) has no credentials: no aws_access_key_id, role_arn, ` +
        "sso_session, sso_start_url nor credential_process",
      "ECONFIG",
    );
  }
  // The keys may come from the variables, the settings (region, endpoints) still come from the profile the
  // AWS CLI would read: the one named, else AWS_PROFILE or "default" when it exists.
  const options = files.profiles.get(profile ?? (env.AWS_PROFILE || "default"))?.options;
  const where = `cloud "${name}"${profile !== undefined ? ` (profile ${profile})` : ""}`;
  const region = parsed.region ?? regionOf(env, options);
  if (!region) {
    throw new ChromogenicError(
      `${where}: no region: set region in the profile (${profile !== undefined ? source : files.configFile}), ` +
        `AWS_REGION, or name one as ${name}/REGION`,
      "ECONFIG",
    );
  }
  const endpointSettings = resolveAwsEndpoints(env, options, servicesOf(files, options, where), where);
  const secrets = secretsOf(files, env);
  const caBundle = env.AWS_CA_BUNDLE ?? options?.get("ca_bundle");
  const addressing = options?.get("s3.addressing_style") ?? "auto";
  if (addressing !== "auto" && addressing !== "path" && addressing !== "virtual") {
    throw new ChromogenicError(
      `${where}: s3 addressing_style must be auto, path or virtual, not "${addressing}"`,
      "ECONFIG",
    );
  }
  const accountId = options?.get("aws_account_id") ?? options?.get("sso_account_id");
  const tls = tlsFromEnvironment(name, { ...env, ...(caBundle ? { AWS_CA_BUNDLE: caBundle } : {}) });
  return {
    name,
    kind: "aws",
    source,
    ...(profile !== undefined ? { profile } : {}),
    region,
    partition: partitionOf(region),
    authentication,
    credentials: refreshingCredentials(
      awsCredentialSource({
        cloud: name,
        ...(profile !== undefined ? { profile } : {}),
        kind: authentication.kind,
        region,
        configFile: files.configFile,
        credentialsFile: files.credentialsFile,
        endpoints: endpointSettings.endpoints,
        tls,
        env,
        secrets,
      }),
      { cloud: name },
    ),
    ...endpointSettings,
    s3AddressingStyle: addressing,
    tls,
    ...(accountId ? { accountId } : {}),
    secrets,
  };
}

/** Every AWS cloud configured: each profile as aws:NAME, and `aws` when the AWS_* keys are set. Never a secret. */
export function listAwsClouds(env: Env = process.env): AwsCloudSummary[] {
  const files = readAwsSharedFiles(env);
  const out: AwsCloudSummary[] = [];
  if (env.AWS_ACCESS_KEY_ID) {
    const settings = files.profiles.get(env.AWS_PROFILE || "default")?.options;
    out.push(summary(files, env, AWS_CLOUD_PREFIX, "AWS_* variables", settings, environmentAuth(env)));
  }
  for (const p of files.profiles.values()) {
    const name = `${AWS_CLOUD_PREFIX}:${p.name}`;
    out.push(summary(files, env, name, p.origins.join(", "), p.options, describeProfileAuth(files, p.name)));
  }
  return out;
}

function summary(
  files: AwsSharedFiles,
  env: Env,
  name: string,
  source: string,
  options: ProfileOptions | undefined,
  auth: AwsAuthDescription,
): AwsCloudSummary {
  const region = regionOf(env, options);
  let endpoints: AwsEndpoints = {};
  try {
    endpoints = resolveAwsEndpoints(env, options, servicesOf(files, options, name), `cloud "${name}"`).endpoints;
  } catch {
    // A bad setting is reported when the cloud is used; the list still shows it.
  }
  return {
    name,
    kind: "aws",
    source,
    ...(region ? { region } : {}),
    auth: auth.text,
    ...(endpoints.ec2 ? { ec2Url: endpoints.ec2 } : {}),
    ...(endpoints.s3 ? { s3Url: endpoints.s3 } : {}),
  };
}

function environmentAuth(env: Env): AwsAuthDescription {
  const session = env.AWS_SESSION_TOKEN ? " and a session token" : "";
  return {
    kind: "environment",
    text: `access key ${maskedKeyId(env.AWS_ACCESS_KEY_ID ?? "")}${session} (AWS_ACCESS_KEY_ID)`,
  };
}

function regionOf(env: Env, options: ProfileOptions | undefined): string | undefined {
  return env.AWS_REGION || env.AWS_DEFAULT_REGION || options?.get("region") || undefined;
}

/** The `[services NAME]` section a profile names, which must exist. */
function servicesOf(files: AwsSharedFiles, options: ProfileOptions | undefined, where: string) {
  const name = options?.get("services");
  if (name === undefined) return undefined;
  const section = files.services.get(name);
  if (!section) {
    throw new ChromogenicError(
      `${where}: the profile names services ${name}, which ${files.configFile} lacks`,
      "ECONFIG",
    );
  }
  return section;
}
