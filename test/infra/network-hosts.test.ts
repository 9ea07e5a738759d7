/**
 * The two "hosts" of the distributed tests (test/helpers/netns-hosts.ts, test/infra/network/hosts.sh): a Node
 * process on each reaches Redis and PostgreSQL by the bridge address, and is seen there from its own address;
 * the same services on the machine's loopback are out of its reach.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { makeNetnsHosts, type NetnsHosts } from "../helpers/netns-hosts.js";
import { onHost, postgresUrl, redisUrl, requirePostgres, requireRedis } from "../helpers/service-infra.js";

// Connects with the clients the service uses; prints what each service saw as the client's address, or the error.
const PROBE = `
import { Redis } from "ioredis";
import pg from "pg";
const [redisUrl, postgresUrl] = process.argv.slice(1);
const out = {};
const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
let refused;
redis.on("error", (e) => (refused = e));
try {
  await redis.connect();
  out.redis = (await redis.client("INFO")).match(/addr=([0-9.]+):/)[1];
} catch (e) { out.redis = "error: " + (refused?.code ?? e.code ?? e.message); }
redis.disconnect();
const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 3000 });
try {
  await client.connect();
  out.postgres = (await client.query("SELECT host(inet_client_addr()) AS a")).rows[0].a;
} catch (e) { out.postgres = "error: " + (e.code ?? e.message); }
await client.end().catch(() => {});
console.log(JSON.stringify(out));
`;

let net: NetnsHosts;
before(async () => {
  await requireRedis();
  await requirePostgres();
  net = await makeNetnsHosts(2);
});
after(() => net?.close());

function probe(hostIndex: number, redis: string, postgres: string): Promise<{ redis: string; postgres: string }> {
  const child = net.hosts[hostIndex]!.spawn(process.execPath, ["--input-type=module", "-e", PROBE, redis, postgres], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let stdout = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  return new Promise((resolve, reject) =>
    child.on("close", (code) =>
      code === 0
        ? resolve(JSON.parse(stdout) as { redis: string; postgres: string })
        : reject(new Error(`probe exited ${code}`)),
    ),
  );
}

test("network hosts: each namespace reaches Redis and PostgreSQL on the bridge, from its own address", async () => {
  assert.equal(net.hosts.length, 2);
  assert.notEqual(net.hosts[0]!.address, net.hosts[1]!.address);
  for (const [i, host] of net.hosts.entries()) {
    const seen = await probe(i, onHost(redisUrl, net.bridge), onHost(postgresUrl, net.bridge));
    assert.deepEqual(seen, { redis: host.address, postgres: host.address }, `host ${host.name}`);
  }
});

test("network hosts: the machine's loopback services are out of a namespace's reach", async () => {
  const seen = await probe(0, redisUrl, postgresUrl);
  assert.match(seen.redis, /^error: ECONNREFUSED/);
  assert.match(seen.postgres, /^error: ECONNREFUSED/);
});
