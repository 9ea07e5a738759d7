/**
 * The real OpenStack the OpenStack suites run against: test/infra/openstack/aio.sh (`start` for Keystone and
 * both Glance regions). Its users and passwords are fixed there. The suites fail, never skip, when it is not
 * running: `requireStack` says how to start it.
 */
import { createServer, connect, type Socket } from "node:net";
import { loadCloudConfig, type CloudConfig } from "../../src/providers/openstack/cloud-config.js";

export const AUTH_URL = "http://127.0.0.1:5000/v3";
export const GLANCE_REGION_ONE = "http://127.0.0.1:9292";

export type StackUser = "admin" | "user-a" | "user-b";

const CREDENTIALS: Record<StackUser, { password: string; project: string }> = {
  admin: { password: process.env.ADMIN_PASS ?? "admin-secret", project: "admin" },
  "user-a": { password: "pass-a", project: "proj-a" },
  "user-b": { password: "pass-b", project: "proj-b" },
};

/** The OS_* variables of a stack user, as its openrc file sets them. */
export function stackEnv(user: StackUser, region = "RegionOne"): Record<string, string> {
  const c = CREDENTIALS[user];
  return {
    OS_AUTH_URL: AUTH_URL,
    OS_USERNAME: user,
    OS_PASSWORD: c.password,
    OS_PROJECT_NAME: c.project,
    OS_USER_DOMAIN_NAME: "Default",
    OS_PROJECT_DOMAIN_NAME: "Default",
    OS_REGION_NAME: region,
    OS_INTERFACE: "public",
  };
}

export function stackCloud(user: StackUser, region = "RegionOne", extraEnv: Record<string, string> = {}): CloudConfig {
  return loadCloudConfig({ env: { ...stackEnv(user, region), ...extraEnv }, searchDirs: [] });
}

/** Fails with instructions when Keystone does not answer. */
export async function requireStack(): Promise<void> {
  try {
    const r = await fetch(AUTH_URL);
    if (r.status >= 500) throw new Error(`HTTP ${r.status}`);
    await r.body?.cancel();
  } catch (e) {
    throw new Error(
      `the OpenStack test stack is not running at ${AUTH_URL} (${(e as Error).message}): ` +
        "start it with `bash test/infra/openstack/aio.sh start` (as root)",
    );
  }
}

export interface TcpProxy {
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Ends every open connection now, as a network failure would. */
  dropAll(): void;
  close(): Promise<void>;
}

/**
 * A local TCP proxy to `target` (host:port). When `dropOnceAfterBytes` is set, the first connection that has
 * carried that many bytes from the server to the client is cut (both sides destroyed): a dropped download.
 */
export async function startTcpProxy(
  target: { host: string; port: number },
  opts: { dropOnceAfterBytes?: number } = {},
): Promise<TcpProxy> {
  let connections = 0;
  let dropped = false;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    connections++;
    const upstream = connect(target.port, target.host);
    open.add(client);
    open.add(upstream);
    let forwarded = 0;
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on("data", (chunk: Buffer) => {
      const limit = dropped ? undefined : opts.dropOnceAfterBytes;
      if (limit !== undefined && forwarded + chunk.length >= limit) {
        dropped = true;
        client.write(chunk.subarray(0, limit - forwarded), cut);
        forwarded = limit;
        upstream.pause();
        return;
      }
      forwarded += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on("drain", () => upstream.resume());
    client.on("data", (chunk: Buffer) => upstream.write(chunk));
    client.on("close", () => {
      open.delete(client);
      upstream.destroy();
    });
    upstream.on("close", () => {
      open.delete(upstream);
      client.end();
    });
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    dropAll() {
      for (const s of open) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Collects an async iterable of chunks into one buffer. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

/** Yields a buffer in pieces, like a file stream would. */
export async function* chunksOf(data: Buffer, size = 256 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(i + size, data.length));
}
