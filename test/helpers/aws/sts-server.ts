/**
 * An STS endpoint written from the AWS Security Token Service API Reference, for the credential tests:
 *
 * - AssumeRole (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html): RoleArn,
 *   RoleSessionName (2-64 of [\w+=,.@-]), DurationSeconds (900 to the role's maximum, 3600 by default),
 *   ExternalId checked against the role's trust condition (a missing or different one is AccessDenied);
 * - GetCallerIdentity (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html);
 * - the Query protocol: a form-encoded POST with Action and Version=2011-06-15, XML replies, errors as
 *   `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`
 *   (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html).
 *
 * Every request is checked with verifySigV4 (service "sts") against the FakeAwsAccount's keys, so an expired
 * session is refused with ExpiredToken as AWS would. The keys AssumeRole hands out are registered in the
 * account; `sessionLifetimeMs` (a test's setting, not AWS's) shortens them below STS's 15-minute minimum so a
 * test can see sessions expire within seconds.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { verifySigV4 } from "./sigv4-verify.js";
import type { FakeAwsAccount } from "./fake-aws-account.js";
import { LocalServerOwner, sendXml, startLocalServer, xmlText, type LocalServer } from "./local-http.js";

const NS = "https://sts.amazonaws.com/doc/2011-06-15/";

export interface FakeRole {
  readonly arn: string;
  /** The external id the role's trust policy requires (sts:ExternalId), if any. */
  readonly externalId?: string;
  /** The role's MaxSessionDuration in seconds (3600 by default). */
  readonly maxSessionSeconds?: number;
}

export interface AssumeRoleRecord {
  readonly roleArn: string;
  readonly sessionName: string;
  readonly externalId?: string;
  readonly durationSeconds: number;
  /** The key that signed the request, and the key handed out. */
  readonly callerKey: string;
  readonly issuedKey: string;
}

export class StsServer extends LocalServerOwner {
  readonly roles = new Map<string, FakeRole>();
  readonly assumed: AssumeRoleRecord[] = [];
  /** The principal ARN of each key (assumed-role sessions; others are the account's user "tester"). */
  readonly principals = new Map<string, string>();
  /** When set, sessions last this long whatever DurationSeconds asked (a test's short sessions). */
  sessionLifetimeMs: number | undefined;

  private constructor(
    private readonly account: FakeAwsAccount,
    server: LocalServer,
  ) {
    super(server);
  }

  /** With `tls`, over HTTPS (as STS is), with that certificate. */
  static async start(account: FakeAwsAccount, tls?: { key: string; cert: string }): Promise<StsServer> {
    return new StsServer(account, await startLocalServer(tls));
  }

  addRole(role: FakeRole): void {
    this.roles.set(role.arn, role);
  }

  protected async handle(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const error = (status: number, code: string, message: string) =>
      sendXml(
        res,
        status,
        `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${code}</Code>` +
          `<Message>${xmlText(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
    if (req.method !== "POST") return error(400, "InvalidAction", "STS takes POST requests");
    const verdict = await verifySigV4(
      { method: req.method, url: req.url ?? "/", headers: req.headers, body },
      "sts",
      (key) => this.account.credentials.get(key),
      this.account.now(),
    );
    if (!verdict.ok) return error(verdict.status, verdict.code, verdict.message);
    const form = new URLSearchParams(body.toString());
    if (form.get("Version") !== "2011-06-15") return error(400, "InvalidParameterValue", "Version must be 2011-06-15");
    const action = form.get("Action");
    if (action === "GetCallerIdentity") {
      const arn = this.principals.get(verdict.accessKeyId) ?? `arn:aws:iam::${this.account.accountId}:user/tester`;
      return sendXml(
        res,
        200,
        `<GetCallerIdentityResponse xmlns="${NS}"><GetCallerIdentityResult><Arn>${xmlText(arn)}</Arn>` +
          `<UserId>${verdict.accessKeyId}</UserId><Account>${this.account.accountId}</Account>` +
          `</GetCallerIdentityResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata>` +
          `</GetCallerIdentityResponse>`,
      );
    }
    if (action !== "AssumeRole") return error(400, "InvalidAction", `Could not find operation ${action}`);
    const roleArn = form.get("RoleArn") ?? "";
    const sessionName = form.get("RoleSessionName") ?? "";
    const externalId = form.get("ExternalId") ?? undefined;
    if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) {
      return error(400, "ValidationError", "RoleSessionName must be 2 to 64 characters of [\\w+=,.@-]");
    }
    if (externalId !== undefined && !/^[\w+=,.@:/-]{2,1224}$/.test(externalId)) {
      return error(400, "ValidationError", "ExternalId must be 2 to 1224 characters of [\\w+=,.@:/-]");
    }
    const role = this.roles.get(roleArn);
    const caller = this.principals.get(verdict.accessKeyId) ?? `arn:aws:iam::${this.account.accountId}:user/tester`;
    if (!role || (role.externalId !== undefined && role.externalId !== externalId)) {
      return error(
        403,
        "AccessDenied",
        `User: ${caller} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
      );
    }
    const durationSeconds = Number(form.get("DurationSeconds") ?? "3600");
    const max = role.maxSessionSeconds ?? 3600;
    if (!Number.isInteger(durationSeconds) || durationSeconds < 900 || durationSeconds > 43200) {
      return error(400, "ValidationError", "DurationSeconds must be between 900 and 43200");
    }
    if (durationSeconds > max) {
      return error(
        400,
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
      );
    }
    const expiresAt = this.account.now() + (this.sessionLifetimeMs ?? durationSeconds * 1000);
    const issued = this.account.addCredential({ sessionToken: true, expiresAt });
    const roleName = roleArn.split("/").at(-1) ?? "role";
    const assumedArn = `arn:aws:sts::${this.account.accountId}:assumed-role/${roleName}/${sessionName}`;
    this.principals.set(issued.accessKeyId, assumedArn);
    this.assumed.push({
      roleArn,
      sessionName,
      ...(externalId !== undefined ? { externalId } : {}),
      durationSeconds,
      callerKey: verdict.accessKeyId,
      issuedKey: issued.accessKeyId,
    });
    sendXml(
      res,
      200,
      `<AssumeRoleResponse xmlns="${NS}"><AssumeRoleResult><Credentials>` +
        `<AccessKeyId>${issued.accessKeyId}</AccessKeyId><SecretAccessKey>${xmlText(issued.secretAccessKey)}</SecretAccessKey>` +
        `<SessionToken>${xmlText(issued.sessionToken!)}</SessionToken>` +
        `<Expiration>${new Date(expiresAt).toISOString()}</Expiration></Credentials>` +
        `<AssumedRoleUser><Arn>${xmlText(assumedArn)}</Arn><AssumedRoleId>AROA${issued.accessKeyId.slice(4)}:${xmlText(sessionName)}</AssumedRoleId></AssumedRoleUser>` +
        `</AssumeRoleResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
    );
  }
}
