/**
 * A home directory with the AWS shared files a test writes (~/.aws/config, ~/.aws/credentials, an SSO token
 * cache entry), and the environment that names them, so that no test reads the real user's files.
 */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface AwsHome {
  readonly home: string;
  readonly configFile: string;
  readonly credentialsFile: string;
  /** HOME, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE, and PATH (for the CLI). */
  readonly env: Record<string, string>;
}

export async function awsHome(dir: string, files: { config?: string; credentials?: string }): Promise<AwsHome> {
  const home = join(dir, "home");
  await mkdir(join(home, ".aws"), { recursive: true });
  const configFile = join(home, ".aws", "config");
  const credentialsFile = join(home, ".aws", "credentials");
  if (files.config !== undefined) await writeFile(configFile, files.config);
  if (files.credentials !== undefined) await writeFile(credentialsFile, files.credentials);
  return {
    home,
    configFile,
    credentialsFile,
    env: {
      HOME: home,
      AWS_CONFIG_FILE: configFile,
      AWS_SHARED_CREDENTIALS_FILE: credentialsFile,
      PATH: process.env.PATH ?? "/usr/bin:/bin",
    },
  };
}

/**
 * The token `aws sso login` caches for an sso-session (the file is named by the SHA-1 of the session name; of
 * the start URL for a legacy profile without one), as the AWS CLI writes it.
 */
export async function cacheSsoToken(
  home: string,
  key: string,
  token: { accessToken: string; expiresAt: Date; region: string; startUrl: string },
): Promise<string> {
  const dir = join(home, ".aws", "sso", "cache");
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${createHash("sha1").update(key).digest("hex")}.json`);
  await writeFile(path, JSON.stringify({ ...token, expiresAt: token.expiresAt.toISOString() }));
  return path;
}

/**
 * The environment a CLI test of an `aws` cloud runs with: its keys in the AWS_* variables, its own home, temporary
 * and state folders under `dir`, and shared files that do not exist; the caller adds the endpoints.
 */
export function awsCliEnv(
  dir: string,
  key: { readonly accessKeyId: string; readonly secretAccessKey: string },
  region: string,
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    TMPDIR: dir,
    CHROMOGENIC_STATE_DIR: join(dir, "state"),
    AWS_CONFIG_FILE: join(dir, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, "no-aws-credentials"),
    AWS_ACCESS_KEY_ID: key.accessKeyId,
    AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
    AWS_REGION: region,
  };
}
