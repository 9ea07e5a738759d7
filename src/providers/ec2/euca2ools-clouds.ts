/**
 * Clouds from euca2ools' .ini files (euca2ools-config.ts reads them): `euca:REGION` is the region's endpoints
 * with the user its `user` option names, `euca:USER@REGION` the same region as another user (euca2ools'
 * `--region USER@REGION`), and `euca` alone the region euca2ools would pick by default (EUCA_DEFAULT_REGION,
 * then AWS_DEFAULT_REGION, then `default-region` in `[global]`). The signing region is the region's `name`
 * option, else the last ":" part of its section's name, as euca2ools signs.
 */
import { homedir } from "node:os";
import { lookupOption, readEuca2oolsConfig, type Euca2oolsConfig } from "./euca2ools-config.js";
import { checkedConfig, cloudKind, tlsFromEnvironment, type Ec2CloudConfig } from "./ec2-cloud-config.js";
import { ChromogenicError } from "../../util/errors.js";

type Env = Readonly<Record<string, string | undefined>>;

export const EUCA_INI_PREFIX = "euca";

/** What `chromogenic clouds` shows of a region: no secret, no key. */
export interface IniCloudSummary {
  readonly name: string;
  readonly kind: Ec2CloudConfig["kind"];
  readonly source: string;
  readonly ec2Url: string;
  readonly s3Url?: string;
  readonly region: string;
  readonly user?: string;
}

/** The cloud `euca:SPEC` names, SPEC being "", "REGION" or "USER@REGION". */
export function iniCloud(spec: string, env: Env): Ec2CloudConfig {
  const config = readEuca2oolsConfig(env);
  const chosen =
    spec || env.EUCA_DEFAULT_REGION || env.AWS_DEFAULT_REGION || config.globals.get("default-region") || "";
  const at = chosen.indexOf("@");
  const region = at < 0 ? chosen : chosen.slice(at + 1);
  const name = `${EUCA_INI_PREFIX}:${chosen}`;
  const files = config.files.length ? config.files.join(", ") : "no euca2ools configuration file found";
  if (!region) {
    throw new ChromogenicError(
      `cloud "${EUCA_INI_PREFIX}${spec ? `:${spec}` : ""}" names no region: give euca:REGION, or set default-region ` +
        `in [global] (${files})`,
      "ECONFIG",
    );
  }
  const summary = summarise(config, region, name);
  if (!summary) {
    const known = listIniClouds(env).map((c) => c.name);
    throw new ChromogenicError(
      `cloud "${name}": no region "${region}" with an ec2-url (${files})` +
        (known.length ? `; configured: ${known.join(", ")}` : ""),
      "ECONFIG",
    );
  }
  const user = (at < 0 ? undefined : chosen.slice(0, at)) || summary.user;
  if (!user) {
    throw new ChromogenicError(
      `cloud "${name}": no user for region ${region}: add "user = NAME" to its [region] section or name one as ` +
        `euca:USER@${region} (${files})`,
      "ECONFIG",
    );
  }
  const option = (key: string) => lookupOption(config.users, user, key)?.value;
  if (option("key-id") === undefined && option("secret-key") === undefined) {
    throw new ChromogenicError(
      `cloud "${name}": no [user ${user}] section with key-id and secret-key (${files})`,
      "ECONFIG",
    );
  }
  const path = (value: string | undefined) => value?.replace(/^~(?=\/|$)/, env.HOME || homedir());
  const verifySsl = lookupOption(config.regions, region, "verify-ssl");
  return checkedConfig({
    name,
    kind: summary.kind,
    source: `${summary.source}; user ${user} from ${config.users.get(user)?.origins.join(", ") ?? files}`,
    ec2Url: summary.ec2Url,
    ...(summary.s3Url ? { s3Url: summary.s3Url } : {}),
    region: summary.region,
    accessKeyId: option("key-id") ?? "",
    secretAccessKey: option("secret-key") ?? "",
    userId: option("account-id"),
    certPath: path(option("certificate")),
    privateKeyPath: path(option("private-key")),
    cloudCertPath: path(lookupOption(config.regions, region, "certificate")?.value),
    tls: tlsFromEnvironment(
      name,
      env,
      verifySsl && { value: verifySsl.value, from: `verify-ssl of [region ${verifySsl.section}]` },
    ),
  });
}

/** Every region with an ec2-url, as `euca:REGION` (wildcard sections such as `aws:*` are not regions). */
export function listIniClouds(env: Env): IniCloudSummary[] {
  const config = readEuca2oolsConfig(env);
  return [...config.regions.keys()]
    .filter((r) => !r.includes("*"))
    .map((r) => summarise(config, r, `${EUCA_INI_PREFIX}:${r}`))
    .filter((c): c is IniCloudSummary => c !== undefined);
}

function summarise(config: Euca2oolsConfig, region: string, name: string): IniCloudSummary | undefined {
  const ec2 = lookupOption(config.regions, region, "ec2-url");
  if (!ec2) return undefined;
  const s3Url = lookupOption(config.regions, region, "s3-url")?.value;
  const user = lookupOption(config.regions, region, "user")?.value;
  const signing = lookupOption(config.regions, ec2.section, "name")?.value ?? ec2.section.split(":").at(-1)!;
  const origins = config.regions.get(ec2.section)?.origins ?? [];
  return {
    name,
    kind: cloudKind(ec2.value),
    source: origins.join(", "),
    ec2Url: ec2.value,
    ...(s3Url ? { s3Url } : {}),
    region: signing,
    ...(user ? { user } : {}),
  };
}
