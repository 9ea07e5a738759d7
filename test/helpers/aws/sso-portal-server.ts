/**
 * The IAM Identity Center (SSO) portal's GetRoleCredentials, written from the AWS IAM Identity Center Portal
 * API Reference (https://docs.aws.amazon.com/singlesignon/latest/PortalAPIReference/API_GetRoleCredentials.html):
 * `GET /federation/credentials?account_id=…&role_name=…` with the access token `aws sso login` cached in the
 * `x-amz-sso_bearer_token` header (the call is not SigV4-signed); the reply is JSON
 * `{"roleCredentials": {accessKeyId, secretAccessKey, sessionToken, expiration (epoch milliseconds)}}`. An
 * unknown or expired token is 401 UnauthorizedException, a role not assigned to the user 403
 * ForbiddenException (rest-json errors: `x-amzn-ErrorType` header and a `message`).
 *
 * The SSO access tokens are the test's to grant (`grantToken`); the role credentials are registered in the
 * FakeAwsAccount.
 */
import type { FakeAwsAccount } from "./fake-aws-account.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { LocalServerOwner, startLocalServer, type LocalServer } from "./local-http.js";

export class SsoPortalServer extends LocalServerOwner {
  /** "ACCOUNT/ROLE" pairs the user is assigned. */
  readonly assignments = new Set<string>();
  /** How long role credentials last. */
  credentialLifetimeMs = 3600 * 1000;
  readonly issued: string[] = [];
  private readonly tokens = new Map<string, number>();

  private constructor(
    private readonly account: FakeAwsAccount,
    server: LocalServer,
  ) {
    super(server);
  }

  protected handle(req: IncomingMessage, _body: Buffer, res: ServerResponse): void {
    const reply = this.answer(req.method ?? "", req.url ?? "", req.headers["x-amz-sso_bearer_token"]);
    res.writeHead(reply.status, {
      "content-type": "application/json",
      ...(reply.errorType ? { "x-amzn-errortype": reply.errorType } : {}),
    });
    res.end(JSON.stringify(reply.body));
  }

  static async start(account: FakeAwsAccount): Promise<SsoPortalServer> {
    return new SsoPortalServer(account, await startLocalServer());
  }

  /** An access token valid until `expiresAt` (what `aws sso login` would have obtained). */
  grantToken(token: string, expiresAt: number): void {
    this.tokens.set(token, expiresAt);
  }

  private answer(
    method: string,
    url: string,
    token: string | string[] | undefined,
  ): { status: number; body: unknown; errorType?: string } {
    const target = new URL(url, "http://portal");
    if (method !== "GET" || target.pathname !== "/federation/credentials") {
      return { status: 404, errorType: "ResourceNotFoundException", body: { message: "No such operation" } };
    }
    const accountId = target.searchParams.get("account_id");
    const roleName = target.searchParams.get("role_name");
    if (!accountId || !roleName) {
      return {
        status: 400,
        errorType: "InvalidRequestException",
        body: { message: "account_id and role_name are required" },
      };
    }
    const expiresAt = typeof token === "string" ? this.tokens.get(token) : undefined;
    if (expiresAt === undefined || expiresAt <= this.account.now()) {
      return {
        status: 401,
        errorType: "UnauthorizedException",
        body: { message: "Session token not found or invalid" },
      };
    }
    if (!this.assignments.has(`${accountId}/${roleName}`)) {
      return { status: 403, errorType: "ForbiddenException", body: { message: "No access" } };
    }
    const expiration = this.account.now() + this.credentialLifetimeMs;
    const issued = this.account.addCredential({ sessionToken: true, expiresAt: expiration });
    this.issued.push(issued.accessKeyId);
    return {
      status: 200,
      body: {
        roleCredentials: {
          accessKeyId: issued.accessKeyId,
          secretAccessKey: issued.secretAccessKey,
          sessionToken: issued.sessionToken,
          expiration,
        },
      },
    };
  }
}
