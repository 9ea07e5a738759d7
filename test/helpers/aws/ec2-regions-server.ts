/**
 * The smallest signed EC2 call, for the credential and endpoint tests: DescribeRegions, written from the
 * Amazon EC2 API Reference (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRegions.html),
 * with EC2's Query protocol (form-encoded POST, Version 2016-11-15) and its error document
 * `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html). Every request is checked with
 * verifySigV4 (service "ec2") against the FakeAwsAccount, so an expired session is refused with ExpiredToken.
 * `refuseAsExpired` makes the next N requests fail with ExpiredToken whatever their key (a clock AWS and we
 * disagree on), to see the client refresh and retry.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { verifySigV4 } from "./sigv4-verify.js";
import type { FakeAwsAccount } from "./fake-aws-account.js";
import { LocalServerOwner, sendXml, startLocalServer, xmlText, type LocalServer } from "./local-http.js";

export class Ec2RegionsServer extends LocalServerOwner {
  /** The next this many requests are refused with ExpiredToken. */
  refuseAsExpired = 0;
  /** Access keys of the requests answered with success, in order. */
  readonly acceptedKeys: string[] = [];

  private constructor(
    private readonly account: FakeAwsAccount,
    server: LocalServer,
  ) {
    super(server);
  }

  static async start(account: FakeAwsAccount): Promise<Ec2RegionsServer> {
    return new Ec2RegionsServer(account, await startLocalServer());
  }

  protected async handle(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const account = this.account;
    const requestId = randomUUID();
    const error = (status: number, code: string, message: string) =>
      sendXml(
        res,
        status,
        `<Response><Errors><Error><Code>${code}</Code><Message>${xmlText(message)}</Message></Error></Errors>` +
          `<RequestID>${requestId}</RequestID></Response>`,
      );
    const verdict = await verifySigV4(
      { method: req.method ?? "", url: req.url ?? "/", headers: req.headers, body },
      "ec2",
      (key) => account.credentials.get(key),
      account.now(),
    );
    if (!verdict.ok) return error(verdict.status, verdict.code, verdict.message);
    if (this.refuseAsExpired > 0) {
      this.refuseAsExpired--;
      return error(400, "ExpiredToken", "The security token included in the request is expired");
    }
    const form = new URLSearchParams(body.toString());
    if (form.get("Action") !== "DescribeRegions") {
      return error(400, "InvalidAction", `The action ${form.get("Action")} is not valid for this web service.`);
    }
    this.acceptedKeys.push(verdict.accessKeyId);
    sendXml(
      res,
      200,
      `<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${requestId}</requestId>` +
        `<regionInfo><item><regionName>${account.region}</regionName>` +
        `<regionEndpoint>ec2.${account.region}.amazonaws.com</regionEndpoint>` +
        `<optInStatus>opt-in-not-required</optInStatus></item></regionInfo></DescribeRegionsResponse>`,
    );
  }
}
