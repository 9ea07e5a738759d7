/**
 * How a workflow names an image store on the command line and in a job's saved state:
 *
 *   local                 the default local store, `<state dir>/images`
 *   local:/some/dir       a local store in that directory
 *   NAME  or  NAME/REGION a cloud from clouds.yaml (openstacksdk's search rule), optionally in another region
 *   env   or  env/REGION  the cloud the OS_* variables describe (an openrc file)
 *   openstack:NAME[/REGION]  the same, spelled out
 *   env-euca              an EC2-family cloud (Eucalyptus, AWS) from the eucarc variables (EC2_URL, S3_URL,
 *                         EC2_ACCESS_KEY, …)
 *   euca:REGION           a region of euca2ools' .ini files (~/.euca/*.ini, /etc/euca2ools/…) as its `user`
 *   euca:USER@REGION      the same region as another [user NAME] of those files
 *   euca                  their default region (EUCA_DEFAULT_REGION, AWS_DEFAULT_REGION, [global] default-region)
 *                         The EC2-family names (providers/ec2/ec2-cloud-names.ts) are listed by `chromogenic
 *                         clouds`; no workflow takes them yet.
 *   aws, aws:PROFILE[/REGION], aws/REGION   AWS from the AWS_* variables and ~/.aws/config and credentials
 *                         (providers/aws/aws-cloud-config.ts); listed by `chromogenic clouds`.
 *
 * Only the name is ever saved; credentials are read again from clouds.yaml / OS_* when a job resumes.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { UsageError } from "../formats/errors.js";
import { workflowStateDir } from "./job-state.js";
import type { ImageProvider } from "../providers/provider.js";
import { LocalProvider } from "../providers/local/local-provider.js";
import { OpenStackProvider } from "../providers/openstack/openstack-provider.js";
import { configFileCandidates, defaultSearchDirs, loadCloudConfig } from "../providers/openstack/cloud-config.js";
import { isEc2CloudName, listEc2Clouds, loadEc2CloudConfig } from "../providers/ec2/ec2-cloud-names.js";
import { isAwsCloudName, listAwsClouds, loadAwsCloudConfig } from "../providers/aws/aws-cloud-config.js";
import { awsSettings } from "../providers/aws/aws-settings.js";
import { LazyProvider } from "../providers/lazy-provider.js";
import { eucalyptusSettings } from "../providers/eucalyptus/eucalyptus-settings.js";

export interface CloudNameOptions {
  /** The environment to read (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function defaultLocalStore(): string {
  return join(workflowStateDir(), "images");
}

/** The provider a cloud name stands for (no network call is made here). */
export function resolveCloud(spec: string, options: CloudNameOptions = {}): ImageProvider {
  const env = options.env ?? process.env;
  if (spec === "local") return new LocalProvider(defaultLocalStore());
  if (spec.startsWith("local:")) {
    const dir = spec.slice("local:".length);
    if (!dir) throw new UsageError(`cloud "${spec}": local: needs a directory, e.g. local:/srv/images`);
    return new LocalProvider(resolve(dir));
  }
  if (isAwsCloudName(spec)) {
    const config = loadAwsCloudConfig(spec, env);
    const settings = awsSettings(env);
    return new LazyProvider(`aws:${config.name}`, async () => {
      const { AwsProvider } = await import("../providers/aws/aws-provider.js");
      return new AwsProvider(config, settings);
    });
  }
  if (isEc2CloudName(spec)) {
    const config = loadEc2CloudConfig(spec, env);
    const settings = eucalyptusSettings(env, config.userId);
    return new LazyProvider(`${config.kind}:${config.name}`, async () => {
      const { EucalyptusProvider } = await import("../providers/eucalyptus/eucalyptus-provider.js");
      return new EucalyptusProvider(config, settings);
    });
  }
  const name = spec.startsWith("openstack:") ? spec.slice("openstack:".length) : spec;
  const slash = name.indexOf("/");
  const cloud = slash < 0 ? name : name.slice(0, slash);
  const region = slash < 0 ? undefined : name.slice(slash + 1);
  if (!cloud) throw new UsageError(`cloud "${spec}" names no cloud`);
  const overrides = region ? { regionName: region } : undefined;
  if (cloud === "env" || cloud === "envvars") {
    const { OS_CLOUD: _ignored, ...rest } = env;
    return new OpenStackProvider(loadCloudConfig({ env: rest, overrides }));
  }
  return new OpenStackProvider(loadCloudConfig({ env, cloud, overrides }));
}

export interface ConfiguredCloud {
  /** What to pass as --cloud/--from/--to. */
  readonly name: string;
  readonly kind: "local" | "openstack" | "eucalyptus" | "ec2" | "aws";
  /** Where it is defined: a clouds.yaml path, "OS_* variables", or the store's directory. */
  readonly source: string;
  readonly authUrl?: string;
  readonly region?: string;
  readonly project?: string;
  readonly user?: string;
  readonly directory?: string;
  /** EC2-family clouds: their endpoints. */
  readonly ec2Url?: string;
  readonly s3Url?: string;
  /** AWS clouds: how they authenticate, in words (never a secret). */
  readonly auth?: string;
}

/**
 * Every store a name can reach right now: the default local store, clouds.yaml entries, OS_* variables, the
 * euca2ools regions, the eucarc variables, the AWS profiles and the AWS_* variables.
 */
export function listClouds(options: CloudNameOptions = {}): ConfiguredCloud[] {
  const env = options.env ?? process.env;
  const out: ConfiguredCloud[] = [
    { name: "local", kind: "local", source: "default local store", directory: defaultLocalStore() },
  ];
  const candidates = configFileCandidates(env.OS_CLIENT_CONFIG_FILE, defaultSearchDirs(env), "clouds");
  const file = candidates.find((p) => existsSync(p));
  if (file) {
    const parsed = parseYaml(readFileSync(file, "utf8")) as { clouds?: Record<string, unknown> } | null;
    for (const [name, entry] of Object.entries(parsed?.clouds ?? {})) {
      const e = (entry ?? {}) as { auth?: Record<string, unknown>; region_name?: unknown };
      const auth = e.auth ?? {};
      out.push({
        name,
        kind: "openstack",
        source: file,
        authUrl: str(auth.auth_url),
        region: str(e.region_name),
        project: str(auth.project_name) ?? str(auth.project_id),
        user: str(auth.username) ?? str(auth.user_id) ?? str(auth.application_credential_name),
      });
    }
  }
  if (env.OS_AUTH_URL) {
    out.push({
      name: "env",
      kind: "openstack",
      source: "OS_* variables",
      authUrl: env.OS_AUTH_URL,
      region: env.OS_REGION_NAME,
      project: env.OS_PROJECT_NAME ?? env.OS_PROJECT_ID ?? env.OS_TENANT_NAME,
      user: env.OS_USERNAME ?? env.OS_USER_ID,
    });
  }
  out.push(...listEc2Clouds(env));
  out.push(...listAwsClouds(env));
  return out;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" || typeof v === "number" ? String(v) : undefined;
}
