/**
 * The event-stream reader on streams cut at every byte: CRLF split between chunks, comments, multi-line
 * data, ids, a message the stream ended in the middle of, and an endless line refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { sseMessages, type SseMessage } from "../../../src/service/client/sse-messages.js";

async function read(chunks: readonly (string | Uint8Array)[]): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  async function* body() {
    for (const c of chunks) yield typeof c === "string" ? new TextEncoder().encode(c) : c;
  }
  for await (const m of sseMessages(body())) out.push(m);
  return out;
}

const STREAM =
  'retry: 1000\r\n\r\n: keep-alive\r\nid: 1\r\ndata: {"event":"job","job":"a"}\r\n\r\n' +
  'id: 2\ndata: line one\ndata:line two\n\nevent: end\ndata: {"state":"succeeded"}\r\rid: 3\ndata: cut';

const EXPECTED: SseMessage[] = [
  { id: "1", event: "message", data: '{"event":"job","job":"a"}' },
  { id: "2", event: "message", data: "line one\nline two" },
  { event: "end", data: '{"state":"succeeded"}' },
];

test("messages read the same whatever the chunking, every line ending and comment included", async () => {
  assert.deepEqual(await read([STREAM]), EXPECTED);
  const bytes = new TextEncoder().encode(STREAM);
  assert.deepEqual(await read([...bytes].map((b) => Uint8Array.of(b))), EXPECTED, "one byte per chunk");
  for (let cut = 1; cut < bytes.length; cut += 7) {
    assert.deepEqual(await read([bytes.subarray(0, cut), bytes.subarray(cut)]), EXPECTED, `cut at ${cut}`);
  }
});

test("multi-byte characters split between chunks stay whole", async () => {
  const bytes = new TextEncoder().encode("data: qcow2 → raw ✓\n\n");
  const arrow = bytes.indexOf(0xe2);
  assert.deepEqual(await read([bytes.subarray(0, arrow + 1), bytes.subarray(arrow + 1)]), [
    { event: "message", data: "qcow2 → raw ✓" },
  ]);
});

test("a line that never ends is refused, not buffered for ever", async () => {
  const chunk = "x".repeat(2 ** 20);
  await assert.rejects(read(["data: ", chunk, chunk, chunk, chunk, chunk]), /longer than/);
});
