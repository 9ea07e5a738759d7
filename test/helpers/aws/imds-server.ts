/**
 * An instance metadata service (IMDSv2 only) written from the Amazon EC2 User Guide:
 *
 * - "Use the Instance Metadata Service to access instance metadata" / IMDSv2
 *   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html): a session
 *   token from `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` between 1 and 21600 (400
 *   otherwise; 403 for a PUT carrying X-Forwarded-For), sent back as `X-aws-ec2-metadata-token` on every GET;
 *   a GET without a valid, unexpired token is 401 Unauthorized (an instance that requires IMDSv2);
 * - "Retrieve security credentials from instance metadata"
 *   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html):
 *   `GET /latest/meta-data/iam/security-credentials/` lists the role name, `…/ROLE` gives the JSON document
 *   (Code, LastUpdated, Type "AWS-HMAC", AccessKeyId, SecretAccessKey, Token, Expiration). New credentials
 *   are made available before the old ones expire; here, once less than half of their life is left.
 *
 * The keys are registered in the FakeAwsAccount, so every server of the account accepts them until they expire.
 */
import { randomBytes } from "node:crypto";
import type { FakeAwsAccount } from "./fake-aws-account.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { LocalServerOwner, startLocalServer, type LocalServer } from "./local-http.js";

const CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/";

export class ImdsServer extends LocalServerOwner {
  /** How long the role's credentials last (AWS: hours; tests shorten it). */
  credentialLifetimeMs = 6 * 3600 * 1000;
  /** Credentials documents handed out, by access key. */
  readonly issued: string[] = [];
  private readonly tokens = new Map<string, number>();
  private current:
    { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiresAt: number } | undefined;

  private constructor(
    private readonly account: FakeAwsAccount,
    readonly roleName: string,
    server: LocalServer,
  ) {
    super(server);
  }

  protected handle(req: IncomingMessage, _body: Buffer, res: ServerResponse): void {
    const reply = this.answer(req.method ?? "", req.url ?? "", req.headers);
    res.writeHead(reply.status, { "content-type": reply.json ? "application/json" : "text/plain" });
    res.end(reply.body);
  }

  static async start(account: FakeAwsAccount, roleName = "conversion-host"): Promise<ImdsServer> {
    return new ImdsServer(account, roleName, await startLocalServer());
  }

  private answer(
    method: string,
    url: string,
    headers: IncomingMessage["headers"],
  ): { status: number; body: string; json?: boolean } {
    const now = this.account.now();
    if (url === "/latest/api/token") {
      if (method !== "PUT") return { status: 405, body: "Method Not Allowed" };
      if (headers["x-forwarded-for"] !== undefined) return { status: 403, body: "Forbidden" };
      const ttl = Number(headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return { status: 400, body: "Bad Request" };
      const token = randomBytes(32).toString("base64");
      this.tokens.set(token, now + ttl * 1000);
      return { status: 200, body: token };
    }
    if (method !== "GET") return { status: 405, body: "Method Not Allowed" };
    const token = headers["x-aws-ec2-metadata-token"];
    const valid = typeof token === "string" ? this.tokens.get(token) : undefined;
    if (valid === undefined || valid <= now) return { status: 401, body: "Unauthorized" };
    if (url === CREDENTIALS_PATH) return { status: 200, body: this.roleName };
    if (url !== CREDENTIALS_PATH + this.roleName) return { status: 404, body: "Not Found" };
    if (!this.current || this.current.expiresAt - now < this.credentialLifetimeMs / 2) {
      const expiresAt = now + this.credentialLifetimeMs;
      this.current = { ...this.account.addCredential({ sessionToken: true, expiresAt }), expiresAt };
      this.issued.push(this.current.accessKeyId);
    }
    return {
      status: 200,
      json: true,
      body: JSON.stringify({
        Code: "Success",
        LastUpdated: new Date(now).toISOString(),
        Type: "AWS-HMAC",
        AccessKeyId: this.current.accessKeyId,
        SecretAccessKey: this.current.secretAccessKey,
        Token: this.current.sessionToken,
        Expiration: new Date(this.current.expiresAt).toISOString(),
      }),
    };
  }
}
