/**
 * The service client against a real service (service-stack.ts): a retried submission with its idempotency key
 * is one job, a key reused for another job is refused; a job followed to its end yields its events numbered
 * from 1 without a gap, then its done event; following resumes after a given event, and after a connection cut
 * in the middle of the stream (a TCP front that drops the first stream part-way) without losing or repeating
 * one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { ServiceClient, type NumberedEvent } from "../../../src/service/client/service-client.js";
import { followJob } from "../../../src/service/client/follow-job.js";
import { startServiceStack } from "../../helpers/service-stack.js";
import type { JobSpec } from "../../../src/service/job-spec.js";

/** A TCP front to `port` that cuts its first connection after `cutAfter` bytes came back from the server. */
async function cuttingFront(
  port: number,
  cutAfter: number,
): Promise<{ url: string; cuts: () => number; close(): Promise<void> }> {
  let connections = 0;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    const cut = connections++ === 0;
    let back = 0;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      back += chunk.length;
      if (cut && back > cutAfter) {
        client.write(chunk.subarray(0, chunk.length - (back - cutAfter)));
        cuts++;
        client.destroy();
        upstream.destroy();
      } else client.write(chunk);
    });
    upstream.on("end", () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cuts: () => cuts,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

test("submit with a key, follow to the end, resume after an event and after a cut connection", async (t) => {
  const stack = await startServiceStack(t, { slots: 1 });
  await stack.addImage("disk", 16);
  const client = new ServiceClient({ server: stack.url, token: stack.tokens.root });
  const spec: JobSpec = {
    kind: "migrate",
    source: { cloud: stack.source, image: "disk" },
    destination: { kind: "cloud", cloud: stack.destination, format: "qcow2" },
  };
  const job = await client.submit(spec, "key-1");
  assert.equal((await client.submit(spec, "key-1")).id, job.id, "a retry with the same key is the same job");
  await assert.rejects(
    client.submit({ ...spec, destination: { ...spec.destination, format: "raw" } } as JobSpec, "key-1"),
    (e: Error & { code?: string }) => e.code === "EUSAGE" && /409/.test(e.message),
  );

  const shown: string[] = [];
  const followed = await followJob(client, job.id, (e) => shown.push(e.event), { command: "migrate" });
  assert.equal(followed.job.state, "succeeded");
  assert.equal(followed.done?.command, "migrate");
  assert.ok(shown.includes("progress") && shown.includes("phase"), shown.join(","));
  assert.ok(!shown.includes("done"), "the result is returned, not shown as a work event");

  const all: NumberedEvent[] = [];
  for await (const e of client.events(job.id)) all.push(e);
  assert.deepEqual(
    all.map((e) => e.seq),
    all.map((_, i) => i + 1),
    "numbered from 1 without a gap",
  );
  assert.equal(all.at(-1)?.event.event, "done");
  const later: number[] = [];
  for await (const e of client.events(job.id, { afterSeq: 3 })) later.push(e.seq);
  assert.deepEqual(
    later,
    all.slice(3).map((e) => e.seq),
    "following on after event 3",
  );

  // The same stream through a front that cuts the first connection part-way: resumed, nothing lost or doubled.
  const front = await cuttingFront(Number(new URL(stack.url).port), 1500);
  t.after(() => front.close());
  const through = new ServiceClient({ server: front.url, token: stack.tokens.root });
  const resumed: NumberedEvent[] = [];
  for await (const e of through.events(job.id)) resumed.push(e);
  assert.equal(front.cuts(), 1, "the first connection was cut");
  assert.deepEqual(resumed, all);
});

test("refusals: a bad token is EAUTH, an unknown job ENOENT, an invalid job EUSAGE with the service's sentence", async (t) => {
  const stack = await startServiceStack(t, { slots: 1 });
  const bad = new ServiceClient({ server: stack.url, token: "nope" });
  await assert.rejects(
    bad.get("x"),
    (e: Error & { code?: string }) => e.code === "EAUTH" && !e.message.includes("nope"),
  );
  const client = new ServiceClient({ server: stack.url, token: stack.tokens.root });
  await assert.rejects(client.get("no-such-job"), (e: Error & { code?: string }) => e.code === "ENOENT");
  await assert.rejects(
    client.submit({ kind: "convert", input: "/etc/passwd", output: "/tmp/x", format: "raw" }),
    (e: Error & { code?: string }) => e.code === "EUSAGE" && /passwd|allowed/.test(e.message),
  );
  assert.throws(() => new ServiceClient({ server: "ftp://x" }), /not an http or https URL/);
});
