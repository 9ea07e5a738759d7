/**
 * A static file server for the benchmark's HTTP cases, run as its own process so that the benchmark's
 * synchronous runs of each tool cannot stall it: serves the files of one folder on 127.0.0.1 with what a
 * static server offers (single byte ranges, ETag, Last-Modified), and prints its port on stdout.
 *
 *   node dist/bench/http-file-server.js FOLDER
 */
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, join } from "node:path";

const folder = process.argv[2];
if (!folder) {
  console.error("usage: http-file-server FOLDER");
  process.exit(2);
}

const server = createServer((req, res) => {
  const name = basename(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
  let st;
  try {
    st = statSync(join(folder, name));
  } catch {
    res.writeHead(404).end();
    return;
  }
  if (req.method !== "GET" || !st.isFile()) {
    res.writeHead(405).end();
    return;
  }
  const validators = { etag: `"${st.size}-${st.mtimeMs}"`, "last-modified": st.mtime.toUTCString() };
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  const start = m ? Number(m[1]) : 0;
  const end = m && m[2] ? Math.min(st.size - 1, Number(m[2])) : st.size - 1;
  if (m && start >= st.size) {
    res.writeHead(416, { "content-range": `bytes */${st.size}`, ...validators }).end();
    return;
  }
  res.writeHead(m ? 206 : 200, {
    "content-length": end - start + 1,
    "accept-ranges": "bytes",
    ...(m ? { "content-range": `bytes ${start}-${end}/${st.size}` } : {}),
    ...validators,
  });
  createReadStream(join(folder, name), { start, end, highWaterMark: 1024 * 1024 }).pipe(res);
});

server.listen(0, "127.0.0.1", () => {
  console.log((server.address() as AddressInfo).port);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
