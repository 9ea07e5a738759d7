/**
 * The names EC2-family clouds go by on the command line, and the list `chromogenic clouds` shows:
 *
 *   env-euca            the cloud a sourced eucarc describes (EC2_URL, …; eucarc.ts)
 *   euca:REGION         a region of euca2ools' .ini files with the user its `user` option names
 *   euca:USER@REGION    the same region as another [user] of the files
 *   euca                the region euca2ools picks by default (EUCA_DEFAULT_REGION, AWS_DEFAULT_REGION,
 *                       [global] default-region)
 */
import { cloudKind, splitRegionUrl, type Ec2CloudConfig } from "./ec2-cloud-config.js";
import { DEFAULT_EUCALYPTUS_REGION, eucarcCloud, EUCARC_CLOUD } from "./eucarc.js";
import { EUCA_INI_PREFIX, iniCloud, listIniClouds, type IniCloudSummary } from "./euca2ools-clouds.js";
import { ChromogenicError } from "../../util/errors.js";

type Env = Readonly<Record<string, string | undefined>>;

export { EUCARC_CLOUD, EUCA_INI_PREFIX };

/** Whether `name` is one of the names above. */
export function isEc2CloudName(name: string): boolean {
  return name === EUCARC_CLOUD || name === EUCA_INI_PREFIX || name.startsWith(`${EUCA_INI_PREFIX}:`);
}

/** The cloud `name` stands for, read from `env` and the files; no request is made. */
export function loadEc2CloudConfig(name: string, env: Env = process.env): Ec2CloudConfig {
  if (name === EUCARC_CLOUD) {
    const config = eucarcCloud(env);
    if (!config) {
      throw new ChromogenicError(
        `cloud "${EUCARC_CLOUD}": EC2_URL is not set (source your eucarc, or name a euca2ools region as euca:REGION)`,
        "ECONFIG",
      );
    }
    return config;
  }
  if (name === EUCA_INI_PREFIX) return iniCloud("", env);
  if (name.startsWith(`${EUCA_INI_PREFIX}:`)) return iniCloud(name.slice(EUCA_INI_PREFIX.length + 1), env);
  throw new ChromogenicError(`"${name}" is not an EC2 cloud name (${EUCARC_CLOUD}, euca:REGION)`, "EUSAGE");
}

/** Every EC2-family cloud configured: the .ini regions, then the eucarc's when EC2_URL is set. Never a secret. */
export function listEc2Clouds(env: Env = process.env): IniCloudSummary[] {
  const out = listIniClouds(env);
  // Listed from the variables alone: a eucarc without its keys is shown (and refused only when used).
  if (env.EC2_URL) {
    const ec2 = splitRegionUrl(env.EC2_URL);
    out.push({
      name: EUCARC_CLOUD,
      kind: cloudKind(ec2.url),
      source: "eucarc variables (EC2_URL, …)",
      ec2Url: ec2.url,
      ...(env.S3_URL ? { s3Url: splitRegionUrl(env.S3_URL).url } : {}),
      region: ec2.region ?? env.AWS_AUTH_REGION ?? DEFAULT_EUCALYPTUS_REGION,
      ...(env.EC2_USER_ID ? { user: `account ${env.EC2_USER_ID}` } : {}),
    });
  }
  return out;
}
