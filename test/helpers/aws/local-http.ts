/**
 * The HTTP plumbing the AWS test servers share: a server on 127.0.0.1 (a free port) whose handler gets the
 * request with its whole body read (bounded), and a log of what was asked (method, URL, Host, the access key
 * that signed it when there was one) so a test can say where a request went and with which session.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";

/** Larger than any request these servers take (a Query-protocol form, a metadata GET). */
const MAX_BODY = 1024 * 1024;

export interface LoggedRequest {
  readonly method: string;
  readonly url: string;
  readonly host: string;
  /** The access key of a SigV4 Authorization header, if any. */
  readonly accessKeyId?: string;
}

export type BodyHandler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void | Promise<void>;

export interface LocalServer {
  readonly url: string;
  /** Answers every request; the owner sets it once it exists (until then requests get 503). */
  handler: BodyHandler | undefined;
  readonly requests: LoggedRequest[];
  close(): Promise<void>;
}

/** With `tls`, the server speaks HTTPS with that certificate (test/helpers/test-ca.ts makes one for 127.0.0.1). */
export async function startLocalServer(tls?: { readonly key: string; readonly cert: string }): Promise<LocalServer> {
  const requests: LoggedRequest[] = [];
  const out = { url: "", handler: undefined as BodyHandler | undefined, requests, close: async () => {} };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length > MAX_BODY) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      const accessKeyId = /Credential=([^/]+)\//.exec(req.headers.authorization ?? "")?.[1];
      requests.push({
        method: req.method ?? "",
        url: req.url ?? "",
        host: req.headers.host ?? "",
        ...(accessKeyId ? { accessKeyId } : {}),
      });
      const handler = out.handler;
      if (!handler) return void res.writeHead(503).end();
      Promise.resolve(handler(req, Buffer.concat(chunks), res)).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(e));
      });
    });
  };
  const server = tls ? createTlsServer(tls, listener) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  out.url = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
  out.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return out;
}

/** An XML document with the declaration AWS's Query and EC2 replies carry. */
export function sendXml(res: ServerResponse, status: number, xml: string): void {
  res.writeHead(status, { "content-type": "text/xml;charset=UTF-8" });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
}

/** Text escaped for an XML element. */
export function xmlText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A test server over one LocalServer: subclasses answer requests in `handle`. */
export abstract class LocalServerOwner {
  protected constructor(protected readonly server: LocalServer) {
    server.handler = (req, body, res) => this.handle(req, body, res);
  }

  protected abstract handle(req: IncomingMessage, body: Buffer, res: ServerResponse): void | Promise<void>;

  get url(): string {
    return this.server.url;
  }

  get requests(): readonly LoggedRequest[] {
    return this.server.requests;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
