/**
 * The event stream over real HTTP: a client listens while events are appended through the store (as a worker
 * does), drops the connection, reconnects with Last-Event-ID and receives exactly the rest, then the end.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { ChromogenicEvent } from "../../../src/util/events.js";
import type { ServiceJob } from "../../../src/service/service-job.js";
import { postJson, startApi, type ApiFixture } from "./api-fixture.js";

let api: ApiFixture;
before(async () => (api = await startApi({ heartbeatSeconds: 0.1 })));
after(() => api.close());

interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** Reads SSE messages from a fetch response as they come. */
async function* sse(response: Response): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message: SseMessage = {};
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) message.comment = line.slice(1).trim();
        const m = /^(id|event|data): ?(.*)$/.exec(line);
        if (m) message[m[1] as "id" | "event" | "data"] = m[2];
      }
      yield message;
    }
  }
}

const message = (text: string): ChromogenicEvent => ({ event: "message", level: "info", text });

async function submit(): Promise<ServiceJob> {
  const spec = {
    kind: "convert",
    input: join(api.inDir, "a.raw"),
    output: join(api.outDir, `${Math.random()}.qcow2`),
    format: "qcow2",
  };
  const answer = await api.request("/v1/jobs", postJson(spec));
  assert.equal(answer.status, 201);
  return (await answer.json()) as ServiceJob;
}

/** Claims `job` for a test worker (finishing any older queued job first). */
async function hold(job: ServiceJob): Promise<void> {
  let held: ServiceJob | undefined;
  while ((held = await api.store.claim("w-test", 60_000)) && held.id !== job.id)
    await api.store.finish(held.id, "w-test", { state: "failed" });
  assert.equal(held?.id, job.id);
}

test("events stream as they are appended; Last-Event-ID resumes with exactly the rest; the end closes it", async () => {
  const job = await submit();
  await hold(job);
  for (let i = 1; i <= 3; i++) await api.store.appendEvent(job.id, message(`m${i}`));

  const first = new AbortController();
  const response = await api.request(`/v1/jobs/${job.id}/events`, { signal: first.signal });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const received: SseMessage[] = [];
  let comments = 0;
  for await (const m of sse(response)) {
    if (m.comment) comments++;
    if (!m.id) continue;
    received.push(m);
    if (received.length === 3) {
      await new Promise((r) => setTimeout(r, 300)); // idle: keep-alive comments
      await api.store.appendEvent(job.id, message("m4"));
    }
    if (received.length === 4) break;
  }
  first.abort();
  assert.deepEqual(
    received.map((m) => m.id),
    ["1", "2", "3", "4"],
  );
  assert.deepEqual(JSON.parse(received[3]!.data!), message("m4"));

  // Appended while no client listens.
  for (let i = 5; i <= 7; i++) await api.store.appendEvent(job.id, message(`m${i}`));
  const resumed = await api.request(`/v1/jobs/${job.id}/events`, { headers: { "last-event-id": "4" } });
  const rest: SseMessage[] = [];
  let end: SseMessage | undefined;
  for await (const m of sse(resumed)) {
    if (m.comment) comments++;
    if (m.id) {
      rest.push(m);
      if (rest.length === 3) {
        await api.store.appendEvent(job.id, { event: "done", command: "convert", result: {} } as ChromogenicEvent);
        await api.store.finish(job.id, "w-test", { state: "succeeded", result: { bytes: 4096 } });
      }
    }
    if (m.event === "end") end = m;
  }
  assert.deepEqual(
    rest.map((m) => m.id),
    ["5", "6", "7", "8"],
  );
  assert.deepEqual(
    rest.slice(0, 3).map((m) => (JSON.parse(m.data!) as { text: string }).text),
    ["m5", "m6", "m7"],
  );
  assert.ok(end, "the stream ends with an end event");
  assert.equal((JSON.parse(end.data!) as ServiceJob).state, "succeeded");
  assert.ok(comments > 0, "an idle stream sends keep-alive comments");

  const again = await api.request(`/v1/jobs/${job.id}/events?after=6`);
  const tail: string[] = [];
  for await (const m of sse(again)) tail.push(m.id ?? m.event ?? "");
  assert.deepEqual(tail.filter(Boolean), ["7", "8", "end"]);
});

test("another owner's job's events are 404; a bad Last-Event-ID is 400", async () => {
  const job = await submit();
  const other = await api.request(`/v1/jobs/${job.id}/events`, { token: api.tokens.bob });
  assert.equal(other.status, 404);
  const bad = await api.request(`/v1/jobs/${job.id}/events`, { headers: { "last-event-id": "x" } });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { error: { code: string } }).error.code, "bad-request");
});

test("a client that goes away stops its stream; a cancelled queued job's stream ends at once", async () => {
  const job = await submit();
  const gone = new AbortController();
  const response = await api.request(`/v1/jobs/${job.id}/events`, { signal: gone.signal });
  assert.equal(response.status, 200);
  gone.abort();
  await api.request(`/v1/jobs/${job.id}`, { method: "DELETE" });
  const ended = await api.request(`/v1/jobs/${job.id}/events`);
  const messages: SseMessage[] = [];
  for await (const m of sse(ended)) messages.push(m);
  assert.equal(messages.at(-1)?.event, "end");
  assert.equal((JSON.parse(messages.at(-1)!.data!) as ServiceJob).state, "cancelled");
});

test("closing the server ends the open event streams", async () => {
  const own = await startApi();
  try {
    const spec = {
      kind: "convert",
      input: join(own.inDir, "a.raw"),
      output: join(own.outDir, "a.qcow2"),
      format: "qcow2",
    };
    const job = (await (await own.request("/v1/jobs", postJson(spec))).json()) as ServiceJob;
    const response = await own.request(`/v1/jobs/${job.id}/events`);
    assert.equal(response.status, 200);
    const reading = (async () => {
      const messages: SseMessage[] = [];
      for await (const m of sse(response)) messages.push(m);
      return messages;
    })();
    const started = Date.now();
    await own.server.close();
    await reading;
    assert.ok(Date.now() - started < 5000, "close did not wait for the stream's client");
  } finally {
    await own.store.close();
    rmSync(own.dir, { recursive: true, force: true });
  }
});
