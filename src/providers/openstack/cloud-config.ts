/**
 * Cloud configuration read the way openstacksdk reads it, so a user's existing setup works unchanged:
 * `clouds.yaml` and `secure.yaml` (secrets kept apart, merged over the cloud of the same name; `.yml` and
 * `.json` too) from the current directory, `$XDG_CONFIG_HOME/openstack`, `~/.config/openstack`,
 * `$XDG_CONFIG_DIRS/openstack` (default `/etc/xdg`) and `/etc/openstack`, the first file found winning;
 * `OS_CLIENT_CONFIG_FILE` / `OS_CLIENT_SECURE_FILE` put a file in front of that list (one that does not exist
 * is passed over, as openstacksdk does);
 * `OS_CLOUD` picks the cloud; without a cloud name, plain `OS_*` variables describe one ("envvars").
 * The connection settings (`cacert`, `verify`, `cert`, `key`, `api_timeout`) are read from the cloud's entry,
 * and `OS_CACERT`, `OS_CERT`, `OS_KEY`, `OS_INSECURE`, `OS_API_TIMEOUT` override them, as the openstack CLI
 * lets its `--os-cacert`-style options (whose defaults those variables are) override clouds.yaml.
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
  /** How connections to this cloud are made: TLS trust, client certificate, timeouts. */
  readonly network: NetworkSettings;
}

/** Where each setting came from is kept, so that an error can say which file or variable to fix. */
export interface NetworkSettings {
  /** A PEM file of the CAs trusted instead of Node's bundled ones, and where it was named. */
  readonly cacert?: { readonly path: string; readonly from: string };
  /** False: certificates are not checked at all (`verify: false`, `insecure: true`, OS_INSECURE, --insecure). */
  readonly verify: boolean;
  /** A client certificate (PEM) and its key, for clouds whose TLS front asks for one. */
  readonly cert?: string;
  readonly key?: string;
  /** No byte moving for this long ends a request (`api_timeout`, OS_API_TIMEOUT, --api-timeout); seconds. */
  readonly apiTimeoutSeconds?: number;
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
  const home = join(env.SNAP_REAL_HOME || env.HOME || homedir(), ".config");
  const xdg = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  const site = (env.XDG_CONFIG_DIRS || "/etc/xdg").split(":")[0] || "/etc/xdg";
  const dirs = [
    process.cwd(),
    join(xdg, "openstack"),
    join(home, "openstack"),
    join(site, "openstack"),
    "/etc/openstack",
  ];
  return [...new Set(dirs)];
}

/** The files searched for `clouds` (or `secure`), in order: the variable's file first, then the folders'. */
export function configFileCandidates(
  explicit: string | undefined,
  dirs: readonly string[],
  base: "clouds" | "secure",
): string[] {
  const found = dirs.flatMap((d) => [".yaml", ".yml", ".json"].map((suffix) => join(d, base + suffix)));
  return explicit ? [explicit, ...found] : found;
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
    network: networkFromEnvironment(config.name, config.network, env),
    regionName: options.overrides?.regionName ?? config.regionName,
    interface: options.overrides?.interface ?? config.interface,
  };
}

interface CloudsFile {
  readonly path?: string;
  readonly clouds: Record<string, Record<string, unknown>>;
}

function readCloudsFile(explicit: string | undefined, dirs: readonly string[], base: "clouds" | "secure"): CloudsFile {
  for (const path of configFileCandidates(explicit, dirs, base)) {
    if (!existsSync(path)) continue;
    let parsed: unknown;
    try {
      // YAML is a superset of JSON: clouds.json parses the same way.
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
    network: networkFromEntry(name, entry),
  });
}

function networkFromEntry(name: string, entry: Record<string, unknown>): NetworkSettings {
  const path = (key: string): string | undefined => {
    const v = entry[key];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") throw new OpenStackConfigError(`cloud "${name}": ${key} must be a file path`);
    return v;
  };
  const cacert = path("cacert");
  const verify = entry.verify === undefined ? true : flag(name, "verify", entry.verify);
  const insecure = entry.insecure === undefined ? false : flag(name, "insecure", entry.insecure);
  return {
    ...(cacert ? { cacert: { path: cacert, from: `clouds.yaml "cacert" of cloud "${name}"` } } : {}),
    verify: verify && !insecure,
    cert: path("cert"),
    key: path("key"),
    apiTimeoutSeconds: seconds(name, "api_timeout", entry.api_timeout),
  };
}

/** The OS_* connection variables over what the cloud's entry says. */
function networkFromEnvironment(
  name: string,
  base: NetworkSettings,
  env: Readonly<Record<string, string | undefined>>,
): NetworkSettings {
  return {
    cacert: env.OS_CACERT ? { path: env.OS_CACERT, from: "OS_CACERT (or --os-cacert)" } : base.cacert,
    verify: env.OS_INSECURE && flag(name, "OS_INSECURE (--insecure)", env.OS_INSECURE) ? false : base.verify,
    cert: env.OS_CERT || base.cert,
    key: env.OS_KEY || base.key,
    apiTimeoutSeconds: seconds(name, "OS_API_TIMEOUT (--api-timeout)", env.OS_API_TIMEOUT) ?? base.apiTimeoutSeconds,
  };
}

/** A YAML boolean, or the strings an environment variable carries. */
function flag(name: string, key: string, v: unknown): boolean {
  if (typeof v === "boolean") return v;
  const s = String(v).toLowerCase();
  if (["true", "yes", "1", "on"].includes(s)) return true;
  if (["false", "no", "0", "off"].includes(s)) return false;
  throw new OpenStackConfigError(`cloud "${name}": ${key} must be true or false, not "${String(v)}"`);
}

function seconds(name: string, key: string, v: unknown): number | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 86_400) {
    throw new OpenStackConfigError(`cloud "${name}": ${key} must be a number of seconds (0 < n <= 86400)`);
  }
  return n;
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
    // The OS_* connection variables are applied to every cloud by loadCloudConfig.
    network: { verify: true },
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
    network: NetworkSettings;
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
    network: raw.network,
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
