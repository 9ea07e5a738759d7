/**
 * AWS credentials as the SDK's providers (@aws-sdk/credential-providers) obtain them, with our own refresh
 * policy on top.
 *
 * Where they come from (the SDK does the work; this file picks the provider and points its inner clients at
 * the cloud's endpoints):
 * - the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_CREDENTIAL_EXPIRATION;
 * - a profile (fromIni): static keys, `role_arn` with `source_profile` or `credential_source`, `external_id`,
 *   `role_session_name` and `duration_seconds` (STS AssumeRole), `credential_process`;
 * - an IAM Identity Center profile (fromSSO): the token `aws sso login` cached, exchanged for role
 *   credentials by the portal's GetRoleCredentials;
 * - the instance's role through IMDSv2 (fromInstanceMetadata; the SDK itself reads the endpoint override
 *   AWS_EC2_METADATA_SERVICE_ENDPOINT / `ec2_metadata_service_endpoint` from process.env and the config file).
 *
 * The refresh policy: credentials with an expiry are fetched again before it — 5 minutes before, or at half
 * their life for shorter sessions — so that a long transfer never signs with a key about to lapse; the SDK's
 * own cache (which would refresh only 5 minutes before) is bypassed by marking ours `memoized`. A call AWS
 * refuses with ExpiredToken / ExpiredTokenException / RequestExpired forces one refresh and one retry
 * (`expiredTokenRetry`, a middleware on each client); a second refusal in a row is an error saying so.
 *
 * Every failure is one sentence naming the cloud and the profile and what is missing; secrets are scrubbed.
 *
 * The files and endpoints are given to the SDK explicitly; a few things it still reads from process.env
 * whatever `env` the cloud was loaded from: HOME for the SSO token cache (~/.aws/sso/cache), the metadata
 * endpoint, AWS_PROFILE for settings of its inner clients. The CLI loads clouds from process.env, so the two
 * agree there. An assume-role profile whose source is an SSO profile sends the SSO call to the STS override
 * too (the SDK takes one endpoint for its inner clients); without overrides, as on AWS, this does not arise.
 */
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider, Pluggable } from "@smithy/types";
import { ChromogenicError } from "../../util/errors.js";
import { requestHandlerOptions, type Ec2TlsSettings } from "../ec2/aws-http.js";
import type { AwsEndpoints } from "./aws-endpoints.js";
import type { AwsAuthKind } from "./aws-profiles.js";

type Env = Readonly<Record<string, string | undefined>>;

/** Refresh this long before expiry at the latest. */
export const REFRESH_MARGIN_MS = 5 * 60 * 1000;

export interface CredentialSourceSettings {
  /** The cloud's name ("aws:dev"), for messages. */
  readonly cloud: string;
  /** The profile; undefined for the environment's keys and the instance's role. */
  readonly profile?: string;
  readonly kind: AwsAuthKind;
  /** The region STS is called in (and SSO's, unless the profile names its own). */
  readonly region: string;
  readonly configFile: string;
  readonly credentialsFile: string;
  readonly endpoints: AwsEndpoints;
  /** The cloud's TLS trust, for the SDK's own STS and SSO clients too. */
  readonly tls: Ec2TlsSettings;
  readonly env: Env;
  /** Values scrubbed from any message. */
  readonly secrets: readonly string[];
}

/** A provider that refreshes by our policy; `invalidate` makes the next call fetch new credentials. */
export interface RefreshingCredentials extends AwsCredentialIdentityProvider {
  /**
   * Forgets the credentials, unless `refused` (the ones a refused call was signed with) is given and newer ones
   * were fetched since: many calls in flight refused together then cause one refresh, not one each.
   */
  invalidate(refused?: AwsCredentialIdentity): void;
  /** Tells the SDK clients not to wrap this provider in their own cache. */
  readonly memoized: true;
}

/** The SDK provider for `settings`, its failures turned into our sentences. No request is made until called. */
export function awsCredentialSource(settings: CredentialSourceSettings): AwsCredentialIdentityProvider {
  let source: AwsCredentialIdentityProvider | undefined;
  return async (options) => {
    try {
      // The SDK's providers load only when a cloud of AWS is used (they weigh on every command's start).
      source ??= sdkProvider(settings, commonJsExports(await import("@aws-sdk/credential-providers")));
      return await source(options);
    } catch (e) {
      throw credentialError(e, settings);
    }
  };
}

type CredentialProviders = typeof import("@aws-sdk/credential-providers");

/**
 * The package's functions whether `import()` gave them as named exports (Node.js reading the CommonJS package
 * from node_modules) or only as the default export (the CLI's esbuild bundle, which puts the package in a chunk
 * of its own that exports `module.exports` as default): without this every profile failed in the CLI with
 * "sdk.fromIni is not a function".
 */
function commonJsExports(module: CredentialProviders | { default: CredentialProviders }): CredentialProviders {
  return "fromIni" in module ? module : module.default;
}

function sdkProvider(settings: CredentialSourceSettings, sdk: CredentialProviders): AwsCredentialIdentityProvider {
  const files = { filepath: settings.credentialsFile, configFilepath: settings.configFile, ignoreCache: true };
  const handler = () => ({ requestHandler: requestHandlerOptions(settings.cloud, settings.tls) });
  switch (settings.kind) {
    case "environment":
      return async () => environmentCredentials(settings);
    case "instance-metadata":
      return sdk.fromInstanceMetadata({ timeout: 2000, maxRetries: 2, ec2MetadataV1Disabled: true });
    case "sso":
      return sdk.fromSSO({
        profile: settings.profile,
        ...files,
        clientConfig: { ...handler(), ...(settings.endpoints.sso ? { endpoint: settings.endpoints.sso } : {}) },
      });
    default:
      // static, assume-role, process, web-identity: fromIni follows the profile (and its source profiles).
      return sdk.fromIni({
        profile: settings.profile,
        ...files,
        clientConfig: {
          region: settings.region,
          ...handler(),
          ...(settings.endpoints.sts ? { endpoint: settings.endpoints.sts } : {}),
        },
      });
  }
}

function environmentCredentials(settings: CredentialSourceSettings): AwsCredentialIdentity {
  const { env } = settings;
  if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
    throw new ChromogenicError(
      `cloud "${settings.cloud}": ${env.AWS_ACCESS_KEY_ID ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID"} is not set`,
      "ECONFIG",
    );
  }
  const expiration = env.AWS_CREDENTIAL_EXPIRATION ? new Date(env.AWS_CREDENTIAL_EXPIRATION) : undefined;
  if (expiration && Number.isNaN(expiration.getTime())) {
    throw new ChromogenicError(
      `cloud "${settings.cloud}": AWS_CREDENTIAL_EXPIRATION "${env.AWS_CREDENTIAL_EXPIRATION}" is not a date`,
      "ECONFIG",
    );
  }
  return {
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    ...(expiration ? { expiration } : {}),
  };
}

/** Whose credentials, for messages: "profile dev", "the AWS_* variables", "the instance's role (IMDSv2)". */
function whose(settings: CredentialSourceSettings): string {
  if (settings.profile !== undefined) return `profile ${settings.profile}`;
  return settings.kind === "environment" ? "the AWS_* variables" : "the instance's role (IMDSv2)";
}

/** One sentence for a failure of the SDK's providers (CredentialsProviderError, an STS or SSO refusal). */
export function credentialError(e: unknown, settings: CredentialSourceSettings): ChromogenicError {
  if (e instanceof ChromogenicError) return e;
  const err = (e ?? {}) as { name?: string; message?: string; Code?: string };
  const raw = typeof err.message === "string" ? err.message.split("\n")[0]! : String(e);
  const code = err.Code ?? (err.name && !/ProviderError$|^Error$/.test(err.name) ? err.name : undefined);
  const scrub = (text: string) =>
    settings.secrets.filter((s) => s.length >= 4).reduce((t, s) => t.split(s).join("***"), text);
  const head = `cloud "${settings.cloud}": the credentials of ${whose(settings)} could not be obtained`;
  let detail: string;
  if (settings.kind === "sso" && /sso|token/i.test(raw) && /expired|invalid|not found|refresh/i.test(raw)) {
    detail = `the IAM Identity Center (SSO) login has expired or is missing: run aws sso login --profile ${settings.profile}`;
  } else if (/could not be found|not found or parsed|Could not resolve credentials using profile/i.test(raw)) {
    // The SDK names the profile it could not use: ours, or a source_profile it leads to.
    const named = /profile:? \[?([^\]\s]+)\]?/i.exec(raw)?.[1];
    const which = named && named !== settings.profile ? `its source profile ${named} is` : "it is";
    detail = `${which} not defined or has no credentials in ${settings.configFile} or ${settings.credentialsFile}`;
  } else if (settings.kind === "process" && /^Command failed/.test(raw)) {
    // The SDK's message quotes the command line, which may carry secrets of its own.
    detail = "its credential_process command failed (run it by hand to see why)";
  } else if (settings.kind === "instance-metadata") {
    detail = `the instance metadata service (IMDSv2) did not give them (not on an EC2 instance, or no role attached): ${raw}`;
  } else {
    detail = code && !raw.includes(code) ? `${code}: ${raw}` : raw;
  }
  return new ChromogenicError(scrub(`${head}: ${detail}`), "EAUTH", { cause: e });
}

/** How long before expiry credentials whose life is `lifeMs` are fetched again. */
export function refreshMargin(lifeMs: number): number {
  return Math.min(REFRESH_MARGIN_MS, Math.max(0, lifeMs / 2));
}

/**
 * `source` behind our refresh policy. Concurrent callers share one fetch. `now` is the clock (tests move it).
 * Credentials that come back already expired are an error, not a loop.
 */
export function refreshingCredentials(
  source: AwsCredentialIdentityProvider,
  options: { readonly cloud: string; readonly now?: () => number } = { cloud: "aws" },
): RefreshingCredentials {
  const now = options.now ?? Date.now;
  let current: AwsCredentialIdentity | undefined;
  let refreshAt = Infinity;
  let pending: Promise<AwsCredentialIdentity> | undefined;
  const fetch = (callOptions?: Parameters<AwsCredentialIdentityProvider>[0]) => {
    pending ??= (async () => {
      try {
        const fresh = await source(callOptions);
        const fetchedAt = now();
        const expires = fresh.expiration?.getTime();
        if (expires !== undefined && expires <= fetchedAt) {
          throw new ChromogenicError(
            `cloud "${options.cloud}": the credentials obtained expired already (at ${fresh.expiration!.toISOString()})`,
            "EAUTH",
          );
        }
        current = fresh;
        refreshAt = expires === undefined ? Infinity : expires - refreshMargin(expires - fetchedAt);
        return fresh;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };
  const provider = async (callOptions?: Parameters<AwsCredentialIdentityProvider>[0]) => {
    const forced = (callOptions as { forceRefresh?: boolean } | undefined)?.forceRefresh;
    if (current && !forced && now() < refreshAt) return current;
    return fetch(callOptions);
  };
  return Object.assign(provider, {
    invalidate: (refused?: AwsCredentialIdentity) => {
      if (refused === undefined || refused === current) current = undefined;
    },
    memoized: true as const,
  });
}

/** The codes AWS refuses an expired session or an expired signature with. */
const EXPIRED_CODES = new Set(["ExpiredToken", "ExpiredTokenException", "RequestExpired"]);

export function isExpiredTokenError(e: unknown): boolean {
  const err = (e ?? {}) as { name?: unknown; Code?: unknown; code?: unknown };
  return [err.name, err.Code, err.code].some((c) => typeof c === "string" && EXPIRED_CODES.has(c));
}

/** The error of a call refused as expired twice in a row, the second time with credentials just fetched. */
export class ExpiredCredentialsError extends ChromogenicError {}

/**
 * A client plugin: a call refused with an expired-token code makes `credentials` fetch anew and is sent once
 * more; refused again, it fails with a sentence saying the fresh credentials were refused too. A call whose
 * body is a stream is not sent again (the stream is spent): its error goes to the caller, whose own retry
 * (a multipart part's, a block's) then signs with the fresh credentials.
 */
export function expiredTokenRetry<Input extends object, Output extends object>(
  credentials: RefreshingCredentials,
  cloud: string,
): Pluggable<Input, Output> {
  return {
    applyToStack(stack) {
      stack.add(
        (next, context) => async (args) => {
          try {
            return await next(args);
          } catch (first) {
            if (!isExpiredTokenError(first)) throw first;
            credentials.invalidate(signedWith(context));
            if (!replayable((args as { input?: { Body?: unknown } }).input?.Body)) throw first;
            try {
              return await next(args);
            } catch (second) {
              if (!isExpiredTokenError(second)) throw second;
              const code = (second as { name?: string }).name ?? "ExpiredToken";
              throw new ExpiredCredentialsError(
                `cloud "${cloud}": AWS refused the credentials as expired (${code}) twice in a row, the second ` +
                  "time with credentials fetched again just before: check the clock of this machine and the " +
                  "session length the credentials are issued with",
                "EAUTH",
                { cause: second },
              );
            }
          }
        },
        { step: "initialize", name: "chromogenicExpiredTokenRetry", override: true },
      );
    },
  };
}

/**
 * The credentials a call was signed with: the SDK's auth-scheme middleware keeps the identity it chose in the
 * call's context under "__smithy_context" (@smithy/types' SMITHY_CONTEXT_KEY).
 */
function signedWith(context: object): AwsCredentialIdentity | undefined {
  const smithy = (context as Record<string, unknown>)["__smithy_context"] as
    { selectedHttpAuthScheme?: { identity?: AwsCredentialIdentity } } | undefined;
  return smithy?.selectedHttpAuthScheme?.identity;
}

/** Whether a request body can be sent a second time: absent, a string or bytes (not a stream). */
function replayable(body: unknown): boolean {
  return body === undefined || typeof body === "string" || body instanceof Uint8Array;
}
