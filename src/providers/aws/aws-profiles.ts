/**
 * The AWS shared files as the AWS CLI and SDKs read them (AWS SDKs and Tools Reference Guide, "Shared config
 * and credentials files"): `~/.aws/config` (AWS_CONFIG_FILE) with `[default]`, `[profile NAME]`,
 * `[sso-session NAME]` and `[services NAME]` sections, and `~/.aws/credentials` (AWS_SHARED_CREDENTIALS_FILE)
 * with `[NAME]` sections whose keys win over the config file's for the same profile. Nested settings (an
 * `ec2 =` line followed by indented `endpoint_url = …` lines) are kept as "ec2.endpoint_url".
 *
 * The files are read with the strict reader of ini-file.ts (bounded size, file and line in every error), the
 * same dialect as the AWS CLI's configparser; nothing here makes a request. What a profile authenticates with
 * is described in words for `chromogenic clouds`, never with a secret.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseIni } from "../ec2/ini-file.js";
import { ChromogenicError } from "../../util/errors.js";
import type { ProfileOptions } from "./aws-endpoints.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface AwsProfile {
  readonly name: string;
  readonly options: ProfileOptions;
  /** "FILE:LINE" of each section that defines it. */
  readonly origins: readonly string[];
}

export interface AwsSharedFiles {
  readonly configFile: string;
  readonly credentialsFile: string;
  readonly profiles: ReadonlyMap<string, AwsProfile>;
  readonly ssoSessions: ReadonlyMap<string, ProfileOptions>;
  readonly services: ReadonlyMap<string, ProfileOptions>;
}

/** How a profile (or the environment) gets its credentials. */
export type AwsAuthKind =
  "environment" | "static" | "assume-role" | "sso" | "process" | "web-identity" | "instance-metadata" | "none";

export interface AwsAuthDescription {
  readonly kind: AwsAuthKind;
  /** For people: e.g. "assume role arn:aws:iam::…:role/x from profile base, with an external id". */
  readonly text: string;
}

/** The options whose values are secrets (or may hold some, as a command line may): never shown, scrubbed. */
const SECRET_OPTIONS = ["aws_secret_access_key", "aws_session_token", "credential_process", "external_id"];

export function sharedFilePaths(env: Env): { configFile: string; credentialsFile: string } {
  const home = env.HOME || homedir();
  const expand = (p: string) => p.replace(/^~(?=\/|$)/, home);
  return {
    configFile: expand(env.AWS_CONFIG_FILE || join(home, ".aws", "config")),
    credentialsFile: expand(env.AWS_SHARED_CREDENTIALS_FILE || join(home, ".aws", "credentials")),
  };
}

/** Both files, merged by profile; a file that does not exist is an empty one. */
export function readAwsSharedFiles(env: Env): AwsSharedFiles {
  const { configFile, credentialsFile } = sharedFilePaths(env);
  const profiles = new Map<string, { options: Map<string, string>; origins: string[] }>();
  const ssoSessions = new Map<string, ProfileOptions>();
  const services = new Map<string, ProfileOptions>();
  const profile = (name: string) => {
    let p = profiles.get(name);
    if (!p) profiles.set(name, (p = { options: new Map(), origins: [] }));
    return p;
  };
  for (const section of readSections(configFile)) {
    const [kind, ...rest] = section.name.split(/\s+/);
    const name = rest.join(" ");
    if (section.name === "default" || (kind === "profile" && name)) {
      const p = profile(section.name === "default" ? "default" : name);
      for (const [k, v] of section.options) p.options.set(k, v);
      p.origins.push(section.origin);
    } else if (kind === "sso-session" && name) {
      ssoSessions.set(name, section.options);
    } else if (kind === "services" && name) {
      services.set(name, section.options);
    }
    // Other sections (`[plugins]`, `[preview]`, a `[NAME]` without "profile") are not profiles to the AWS CLI.
  }
  for (const section of readSections(credentialsFile)) {
    const p = profile(section.name);
    for (const [k, v] of section.options) p.options.set(k, v);
    p.origins.push(section.origin);
  }
  return {
    configFile,
    credentialsFile,
    profiles: new Map([...profiles].map(([name, p]) => [name, { name, ...p }])),
    ssoSessions,
    services,
  };
}

function readSections(path: string): { name: string; options: Map<string, string>; origin: string }[] {
  if (!existsSync(path)) return [];
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ChromogenicError(`${path} cannot be read: ${(e as Error).message}`, "ECONFIG");
  }
  return parseIni(text, path).map((s) => ({ ...s, options: withNested(s.options) }));
}

/** `key =` followed by indented `sub = value` lines: kept as "key.sub" besides the raw value. */
function withNested(options: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map(options);
  for (const [key, value] of options) {
    if (!value.includes("\n")) continue;
    for (const line of value.split("\n")) {
      const m = /^([^=]+?)\s*=\s*(.*)$/.exec(line.trim());
      if (m) out.set(`${key}.${m[1]!.toLowerCase()}`, m[2]!);
    }
  }
  return out;
}

/** Every secret value the files hold, for scrubbing messages. */
export function secretsOf(files: AwsSharedFiles, env: Env): string[] {
  const out = [env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN];
  for (const p of files.profiles.values()) for (const k of SECRET_OPTIONS) out.push(p.options.get(k));
  return out.filter((s): s is string => !!s && s.length >= 4);
}

/** The last four characters of an access key id, as `aws configure list` shows it. */
export function maskedKeyId(id: string): string {
  return `****${id.slice(-4)}`;
}

/** What `name` authenticates with, in the order the SDK's profile resolution tries (fromIni). */
export function describeProfileAuth(files: AwsSharedFiles, name: string, depth = 0): AwsAuthDescription {
  const p = files.profiles.get(name)?.options;
  if (!p) return { kind: "none", text: `profile ${name} is not defined` };
  const role = p.get("role_arn");
  if (role) {
    const source = p.get("source_profile");
    const credentialSource = p.get("credential_source");
    const from =
      source && depth < 5 && source !== name
        ? ` from profile ${source} (${describeProfileAuth(files, source, depth + 1).text})`
        : source
          ? ` from profile ${source}`
          : credentialSource
            ? ` from ${credentialSource}`
            : p.get("web_identity_token_file")
              ? " with a web identity token"
              : "";
    const extras = [p.get("external_id") && "an external id", p.get("mfa_serial") && "MFA"].filter(Boolean);
    return {
      kind: p.get("web_identity_token_file") && !source ? "web-identity" : "assume-role",
      text: `assume role ${role}${from}${extras.length ? `, with ${extras.join(" and ")}` : ""}`,
    };
  }
  const keyId = p.get("aws_access_key_id");
  if (keyId) {
    const session = p.get("aws_session_token") ? " and a session token" : "";
    return { kind: "static", text: `access key ${maskedKeyId(keyId)}${session}` };
  }
  if (p.get("credential_process")) {
    // The command line may carry secrets of its own: it is not shown.
    return { kind: "process", text: "an external command (credential_process)" };
  }
  const ssoSession = p.get("sso_session");
  if (ssoSession || p.get("sso_start_url")) {
    const account = p.get("sso_account_id");
    const roleName = p.get("sso_role_name");
    const parts = [
      ssoSession ? `session ${ssoSession}` : `start URL ${p.get("sso_start_url")}`,
      account && `account ${account}`,
      roleName && `role ${roleName}`,
    ].filter(Boolean);
    return { kind: "sso", text: `IAM Identity Center (SSO), ${parts.join(", ")}` };
  }
  return { kind: "none", text: "no credentials in the profile" };
}
