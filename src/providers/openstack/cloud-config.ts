/**
 * Cloud configuration read the way openstacksdk reads it, so a user's existing setup works unchanged:
 * `clouds.yaml` and `secure.yaml` (secrets kept apart, merged over the cloud of the same name) from the
 * current directory, `$XDG_CONFIG_HOME/openstack` (default `~/.config/openstack`) and `/etc/openstack`, the
 * first file found winning; `OS_CLIENT_CONFIG_FILE` / `OS_CLIENT_SECURE_FILE` name the files directly;
 * `OS_CLOUD` picks the cloud; without a cloud name, plain `OS_*` variables describe one ("envvars").
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { OpenStackConfigError } from "./errors.js";

export type AuthType = "password" | "v3applicationcredential" | "token";

/** Keystone v3 credentials and scope; field names as in clouds.yaml's `auth:` section. */
export interface AuthSettings {
  readonly auth_url: string;
  readonly username?: string;
  readonly user_id?: string;
  readonly password?: string;
  readonly user_domain_name?: string;
  readonly user_domain_id?: string;
  readonly project_name?: string;
  readonly project_id?: string;
  readonly project_domain_name?: string;
  readonly project_domain_id?: string;
  /** Domain scope (instead of a project). */
  readonly domain_name?: string;
  readonly domain_id?: string;
  readonly application_credential_id?: string;
  readonly application_credential_name?: string;
  readonly application_credential_secret?: string;
  readonly token?: string;
}

export interface CloudConfig {
  /** The name it was found under; "envvars" for OS_* variables. Used in every error message. */
  readonly name: string;
  readonly authType: AuthType;
  readonly auth: AuthSettings;
  readonly regionName?: string;
  /** Which catalog interface to use: public (default), internal or admin. */
  readonly interface: "public" | "internal" | "admin";
  /** `<service-type>_endpoint_override` entries, e.g. { image: "http://127.0.0.1:9999" }. */
  readonly endpointOverrides: Readonly<Record<string, string>>;
}

export interface LoadCloudConfigOptions {
  /** The cloud name; defaults to OS_CLOUD, then to the OS_* variables. */
  readonly cloud?: string;
  /** The environment to read (default process.env); tests pass their own. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Folders searched for clouds.yaml / secure.yaml, in order (default: openstacksdk's). */
  readonly searchDirs?: readonly string[];
  /** Settings applied over what was found, e.g. a region chosen on the command line. */
  readonly overrides?: { readonly regionName?: string; readonly interface?: CloudConfig["interface"] };
}

export function defaultSearchDirs(env: Readonly<Record<string, string | undefined>>): string[] {
  const xdg = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return [process.cwd(), join(xdg, "openstack"), "/etc/openstack"];
}

export function loadCloudConfig(options: LoadCloudConfigOptions = {}): CloudConfig {
  const env = options.env ?? process.env;
  const dirs = options.searchDirs ?? defaultSearchDirs(env);
  const cloudName = options.cloud ?? env.OS_CLOUD;
  let config: CloudConfig;
  if (cloudName) {
    const clouds = readCloudsFile(env.OS_CLIENT_CONFIG_FILE, dirs, "clouds");
    const secure = readCloudsFile(env.OS_CLIENT_SECURE_FILE, dirs, "secure");
    const entry = clouds.clouds[cloudName];
    if (!entry) {
      const known = Object.keys(clouds.clouds);
      const where = clouds.path ? `in ${clouds.path}` : `(no clouds.yaml in ${dirs.join(", ")})`;
      throw new OpenStackConfigError(
        `cloud "${cloudName}" is not defined ${where}` + (known.length ? `; known clouds: ${known.join(", ")}` : ""),
      );
    }
    config = fromCloudsEntry(cloudName, deepMerge(entry, secure.clouds[cloudName] ?? {}));
  } else if (env.OS_AUTH_URL) {
    config = fromEnvironment(env);
  } else {
    throw new OpenStackConfigError(
      "no cloud named: set OS_CLOUD (clouds.yaml) or OS_AUTH_URL and the other OS_* variables",
    );
  }
  return {
    ...config,
    regionName: options.overrides?.regionName ?? config.regionName,
    interface: options.overrides?.interface ?? config.interface,
  };
}

interface CloudsFile {
  readonly path?: string;
  readonly clouds: Record<string, Record<string, unknown>>;
}

function readCloudsFile(explicit: string | undefined, dirs: readonly string[], base: string): CloudsFile {
  const candidates = explicit
    ? [explicit]
    : dirs.flatMap((d) => [`${base}.yaml`, `${base}.yml`].map((f) => join(d, f)));
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(path, "utf8"));
    } catch (e) {
      throw new OpenStackConfigError(`${path} is not valid YAML: ${(e as Error).message}`);
    }
    const clouds = (parsed as { clouds?: unknown } | null)?.clouds;
    if (clouds !== undefined && (typeof clouds !== "object" || clouds === null)) {
      throw new OpenStackConfigError(`${path}: "clouds" must be a mapping`);
    }
    return { path, clouds: (clouds ?? {}) as CloudsFile["clouds"] };
  }
  return { clouds: {} };
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fromCloudsEntry(name: string, entry: Record<string, unknown>): CloudConfig {
  const auth = isPlainObject(entry.auth) ? entry.auth : {};
  const strings = Object.fromEntries(
    Object.entries(auth)
      .filter(([, v]) => typeof v === "string" || typeof v === "number")
      .map(([k, v]) => [k, String(v)]),
  ) as Record<string, string>;
  const overrides: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry)) {
    const m = /^(.+)_endpoint_override$/.exec(k);
    if (m && typeof v === "string") overrides[m[1]!.replace(/_/g, "-")] = v;
  }
  return build(name, {
    authType: typeof entry.auth_type === "string" ? entry.auth_type : undefined,
    auth: strings,
    regionName: typeof entry.region_name === "string" ? entry.region_name : undefined,
    interface: typeof entry.interface === "string" ? entry.interface : undefined,
    endpointOverrides: overrides,
  });
}

const ENV_AUTH_KEYS = [
  "auth_url",
  "username",
  "user_id",
  "password",
  "user_domain_name",
  "user_domain_id",
  "project_name",
  "project_id",
  "project_domain_name",
  "project_domain_id",
  "domain_name",
  "domain_id",
  "application_credential_id",
  "application_credential_name",
  "application_credential_secret",
  "token",
] as const;

function fromEnvironment(env: Readonly<Record<string, string | undefined>>): CloudConfig {
  const auth: Record<string, string> = {};
  for (const key of ENV_AUTH_KEYS) {
    const value = env[`OS_${key.toUpperCase()}`];
    if (value) auth[key] = value;
  }
  // OS_TENANT_NAME / OS_TENANT_ID are the Keystone v2 names that openrc files still carry.
  if (!auth.project_name && env.OS_TENANT_NAME) auth.project_name = env.OS_TENANT_NAME;
  if (!auth.project_id && env.OS_TENANT_ID) auth.project_id = env.OS_TENANT_ID;
  const overrides: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    const m = /^OS_(.+)_ENDPOINT_OVERRIDE$/.exec(k);
    if (m && v) overrides[m[1]!.toLowerCase().replace(/_/g, "-")] = v;
  }
  return build("envvars", {
    authType: env.OS_AUTH_TYPE,
    auth,
    regionName: env.OS_REGION_NAME,
    interface: env.OS_INTERFACE,
    endpointOverrides: overrides,
  });
}

function build(
  name: string,
  raw: {
    authType: string | undefined;
    auth: Record<string, string>;
    regionName: string | undefined;
    interface: string | undefined;
    endpointOverrides: Record<string, string>;
  },
): CloudConfig {
  if (!raw.auth.auth_url) throw new OpenStackConfigError(`cloud "${name}": no auth_url`);
  const authType = normaliseAuthType(name, raw.authType, raw.auth);
  const iface = (raw.interface ?? "public").replace(/URL$/, "");
  if (iface !== "public" && iface !== "internal" && iface !== "admin") {
    throw new OpenStackConfigError(`cloud "${name}": interface "${iface}" is not public, internal or admin`);
  }
  const auth = raw.auth as unknown as AuthSettings;
  if (authType === "password" && (!auth.password || !(auth.username || auth.user_id))) {
    throw new OpenStackConfigError(
      `cloud "${name}": password authentication needs a username (or user_id) and password`,
    );
  }
  if (authType === "v3applicationcredential" && !auth.application_credential_secret) {
    throw new OpenStackConfigError(`cloud "${name}": application credential authentication needs a secret`);
  }
  if (authType === "token" && !auth.token)
    throw new OpenStackConfigError(`cloud "${name}": token authentication needs a token`);
  return {
    name,
    authType,
    auth,
    regionName: raw.regionName || undefined,
    interface: iface,
    endpointOverrides: raw.endpointOverrides,
  };
}

function normaliseAuthType(name: string, given: string | undefined, auth: Record<string, string>): AuthType {
  switch (given) {
    case undefined:
    case "":
      if (auth.application_credential_secret) return "v3applicationcredential";
      if (auth.token && !auth.password) return "token";
      return "password";
    case "password":
    case "v3password":
      return "password";
    case "v3applicationcredential":
    case "applicationcredential":
      return "v3applicationcredential";
    case "token":
    case "v3token":
      return "token";
    default:
      throw new OpenStackConfigError(
        `cloud "${name}": auth_type "${given}" is not supported (password, v3applicationcredential, token)`,
      );
  }
}
