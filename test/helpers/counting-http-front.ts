/**
 * An HTTP server on loopback that forwards every request unchanged (method, path, headers, Host included, so a
 * SigV4 signature made for the front still verifies behind it) to a target server and records each request's
 * method and path: a test counts what a client really fetched, e.g. the GETs of a bundle's parts from Swift.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";

export interface CountingFront {
  readonly url: string;
  /** Every request forwarded so far, in order of arrival. */
  readonly requests: { readonly method: string; readonly path: string }[];
  close(): Promise<void>;
}

export async function startCountingFront(target: string): Promise<CountingFront> {
  const to = new URL(target);
  const requests: { method: string; path: string }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? "", path: decodeURIComponent(req.url ?? "") });
    const upstream = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.on("error", () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
