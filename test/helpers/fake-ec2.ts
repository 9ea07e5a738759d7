/**
 * A tiny local server answering EC2 Query requests (form-encoded POSTs, XML replies) from a table of canned
 * replies by Action, recording every request's path, parameters and Authorization header. It checks nothing
 * but lets a test see exactly what the client sent and how it reads real-shaped replies and errors; the real
 * EC2 servers (OpenStack ec2-api) are for the integration tests.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import { Ec2Connection } from "../../src/providers/ec2/ec2-connection.js";

export interface Ec2Request {
  readonly path: string;
  readonly action: string;
  readonly params: URLSearchParams;
  readonly authorization: string;
}

export interface CannedReply {
  readonly status?: number;
  readonly body: string;
}

export const EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/";

/** An EC2 error reply as EC2 (and ec2-api, Eucalyptus) writes it. */
export function ec2ErrorReply(code: string, message: string, requestId = "req-err-1", status = 400): CannedReply {
  return {
    status,
    body:
      `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code>` +
      `<Message>${message}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
  };
}

/** A success reply: `<ACTIONResponse>` around `inner`. */
export function ec2Reply(action: string, inner: string): CannedReply {
  return {
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NS}"><requestId>req-ok</requestId>${inner}</${action}Response>`,
  };
}

export async function fakeEc2(
  t: { after(fn: () => Promise<void> | void): void },
  replies: (action: string, params: URLSearchParams, n: number) => CannedReply,
  path = "/services/compute",
): Promise<{ ec2: Ec2Connection; requests: Ec2Request[] }> {
  const requests: Ec2Request[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const params = new URLSearchParams(body);
      const action = params.get("Action") ?? "";
      requests.push({ path: req.url ?? "", action, params, authorization: String(req.headers.authorization ?? "") });
      const reply = replies(action, params, requests.filter((r) => r.action === action).length - 1);
      res.writeHead(reply.status ?? 200, { "content-type": "text/xml;charset=UTF-8" });
      res.end(reply.body);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  const ec2 = new Ec2Connection({
    name: "fake-euca",
    kind: "eucalyptus",
    source: "test",
    ec2Url: `http://127.0.0.1:${port}${path}`,
    region: "eucalyptus",
    accessKeyId: "AKIFAKE",
    secretAccessKey: "fake-secret-never-shown",
    tls: { verify: true },
  });
  t.after(() => ec2.destroy());
  return { ec2, requests };
}
