/**
 * An EC2-family cloud (Eucalyptus, or AWS itself) as euca2ools users keep it: its endpoints, the signing region,
 * the access key and secret, and the files bundling needs (the user's certificate and key, the cloud's
 * certificate). Loaded by loadEc2CloudConfig from the eucarc variables or euca2ools' .ini files.
 */
import type { Ec2TlsSettings } from "./aws-http.js";
import { ChromogenicError } from "../../util/errors.js";

export interface Ec2CloudConfig {
  /** The name it is known by on the command line (`env-euca`, `euca:REGION`), used in every message. */
  readonly name: string;
  /** "eucalyptus", or "ec2" when the EC2 URL is AWS's own. */
  readonly kind: "eucalyptus" | "ec2";
  /** Where it was found: "eucarc variables (EC2_URL, …)", or the .ini files that define it. */
  readonly source: string;
  readonly ec2Url: string;
  readonly s3Url?: string;
  /** The SigV4 signing region. */
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** The account number (EC2_USER_ID, account-id): a bundle's manifest names it. */
  readonly userId?: string;
  /** The user's X.509 certificate and private key (EC2_CERT, EC2_PRIVATE_KEY): bundles are signed with them. */
  readonly certPath?: string;
  readonly privateKeyPath?: string;
  /** The cloud's certificate (EUCALYPTUS_CERT, the region's certificate): bundle keys are encrypted to it. */
  readonly cloudCertPath?: string;
  readonly tls: Ec2TlsSettings;
}

type Env = Readonly<Record<string, string | undefined>>;

/** "ec2" for AWS's own endpoints, "eucalyptus" for anything else that speaks EC2. */
export function cloudKind(ec2Url: string): Ec2CloudConfig["kind"] {
  let host = "";
  try {
    host = new URL(ec2Url).hostname;
  } catch {
    // checked where the URL is used
  }
  return /(^|\.)amazonaws\.com(\.cn)?$/.test(host) ? "ec2" : "eucalyptus";
}

/**
 * TLS trust for an EC2-family cloud: the CLI's --os-cacert / --insecure (through OS_CACERT / OS_INSECURE, as for
 * every cloud), else AWS_CA_BUNDLE (the AWS CLI's variable); a euca2ools region's `verify-ssl = false` turns
 * checking off. Unlike euca2ools, which checks certificates only when `verify-ssl` says so, checking is the
 * default here.
 */
export function tlsFromEnvironment(
  name: string,
  env: Env,
  verifySsl?: { value: string; from: string },
): Ec2TlsSettings {
  const caFile = env.OS_CACERT
    ? { path: env.OS_CACERT, from: "OS_CACERT (or --os-cacert)" }
    : env.AWS_CA_BUNDLE
      ? { path: env.AWS_CA_BUNDLE, from: "AWS_CA_BUNDLE" }
      : undefined;
  const insecure = env.OS_INSECURE ? flag(name, "OS_INSECURE (--insecure)", env.OS_INSECURE) : false;
  const verify = verifySsl ? flag(name, verifySsl.from, verifySsl.value) : true;
  return { ...(caFile ? { caFile } : {}), verify: verify && !insecure };
}

function flag(name: string, what: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(v)) return true;
  if (["false", "0", "no", "off"].includes(v)) return false;
  throw new ChromogenicError(`cloud "${name}": ${what} must be true or false, not "${value}"`, "ECONFIG");
}

/** `REGION::URL` (euca2ools' way to name the signing region in EC2_URL / S3_URL) split; plain URLs as they are. */
export function splitRegionUrl(value: string): { url: string; region?: string } {
  const at = value.indexOf("::");
  return at < 0 ? { url: value } : { url: value.slice(at + 2), region: value.slice(0, at) || undefined };
}

/** Checks what every config needs before it is returned: URLs that are http(s), both halves of the key. */
export function checkedConfig(config: Ec2CloudConfig): Ec2CloudConfig {
  for (const [what, url] of [
    ["EC2 URL", config.ec2Url],
    ["S3 URL", config.s3Url],
  ] as const) {
    if (url === undefined) continue;
    let ok = false;
    try {
      ok = ["http:", "https:"].includes(new URL(url).protocol);
    } catch {
      ok = false;
    }
    if (!ok)
      throw new ChromogenicError(
        `cloud "${config.name}": the ${what} "${url}" is not an http(s) URL (${config.source})`,
        "ECONFIG",
      );
  }
  if (!config.accessKeyId || !config.secretAccessKey) {
    throw new ChromogenicError(
      `cloud "${config.name}": no ${config.accessKeyId ? "secret key" : "access key id"} (${config.source})`,
      "ECONFIG",
    );
  }
  return config;
}
