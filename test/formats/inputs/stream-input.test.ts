/**
 * StreamInput, the input read once in order (standard input as `-`): reads in increasing order with the bytes
 * between skipped, going back into the kept head (probes and headers), refusing to go back past it, and the
 * stream's end: its size known from then on, reads beyond it refused or padded.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough, Readable } from "node:stream";
import { HEAD_KEPT, StreamInput } from "../../../src/formats/inputs/stream-input.js";
import { pattern } from "../../helpers/tools.js";

const KiB = 1024;

/** `bytes` arriving in chunks of `chunk` bytes, as a pipe delivers them. */
function streamOf(bytes: Buffer, chunk: number): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunk) pieces.push(bytes.subarray(at, at + chunk));
  return Readable.from(pieces);
}

test("reads in increasing order get their bytes, across chunks, with the bytes between skipped", async () => {
  const bytes = pattern(3 * HEAD_KEPT, 3);
  const input = new StreamInput(streamOf(bytes, 7 * KiB + 3), "-");
  assert.equal(input.sequential, true);
  assert.equal(input.size, Number.MAX_SAFE_INTEGER, "a pipe's size is unknown until it ends");
  for (const [at, length] of [
    [0, 100],
    [100, 20 * KiB], // straight after the previous read
    [50 * KiB, 3], // a gap skipped
    [HEAD_KEPT - 10, 20], // across the end of the kept head
    [2 * HEAD_KEPT + 5, 64 * KiB + 1], // far past it
  ] as const) {
    assert.ok((await input.readExact(at, length)).equals(bytes.subarray(at, at + length)), `${at}+${length}`);
  }
  assert.equal(input.allocatedSize > 2 * HEAD_KEPT, true, "allocatedSize counts the bytes taken from the stream");
  await input.close();
});

test("reads may go back into the kept head, and no further", async () => {
  const bytes = pattern(2 * HEAD_KEPT + 4 * KiB, 5);
  const input = new StreamInput(streamOf(bytes, 64 * KiB), "-");
  // A probe, then a driver reading its header again and a table beyond it.
  assert.ok((await input.readPadded(0, 4 * KiB)).equals(bytes.subarray(0, 4 * KiB)));
  assert.ok((await input.readExact(512, 100 * KiB)).equals(bytes.subarray(512, 512 + 100 * KiB)));
  assert.ok((await input.readExact(0, 512)).equals(bytes.subarray(0, 512)));
  // A read that starts in the head and ends past what was read so far.
  assert.ok((await input.readExact(HEAD_KEPT - KiB, 2 * KiB)).equals(bytes.subarray(HEAD_KEPT - KiB, HEAD_KEPT + KiB)));
  assert.ok((await input.readExact(HEAD_KEPT / 2, KiB)).equals(bytes.subarray(HEAD_KEPT / 2, HEAD_KEPT / 2 + KiB)));
  await input.readExact(2 * HEAD_KEPT, KiB);
  await assert.rejects(
    input.readExact(HEAD_KEPT + 10, 10, undefined, "grain table 3"),
    /-: grain table 3 at offset \d+ lies behind what was already read from an input that can only be read once in order/,
  );
  // A refused read leaves the input usable for reads in order.
  assert.ok(
    (await input.readExact(2 * HEAD_KEPT + KiB, KiB)).equals(
      bytes.subarray(2 * HEAD_KEPT + KiB, 2 * HEAD_KEPT + 2 * KiB),
    ),
  );
  await input.close();
});

test("reads issued together are served in the order they were made", async () => {
  const bytes = pattern(512 * KiB, 9);
  const input = new StreamInput(streamOf(bytes, 5000), "-");
  const reads = [0, 64, 128, 300].map((k) => input.readExact(k * KiB, 64 * KiB));
  const got = await Promise.all(reads);
  [0, 64, 128, 300].forEach((k, i) => assert.ok(got[i]!.equals(bytes.subarray(k * KiB, (k + 64) * KiB))));
  await input.close();
});

test("at the end of the stream the size is known, short reads fail and padded reads fill zeros", async () => {
  const bytes = pattern(10 * KiB + 7, 11);
  const input = new StreamInput(streamOf(bytes, 4 * KiB), "-");
  const padded = await input.readPadded(8 * KiB, 4 * KiB);
  assert.ok(padded.subarray(0, 2 * KiB + 7).equals(bytes.subarray(8 * KiB)));
  assert.ok(padded.subarray(2 * KiB + 7).equals(Buffer.alloc(4 * KiB - (2 * KiB + 7))));
  assert.equal(input.size, bytes.length);
  assert.equal(input.allocatedSize, bytes.length);
  await assert.rejects(
    input.readExact(10 * KiB, 100, undefined, "a footer"),
    /a footer at offset 10240 \(\+100 bytes\) lies beyond the end of the file \(10247 bytes\)/,
  );
  // Before the end is known, a read past it says how long the input was.
  const early = new StreamInput(streamOf(bytes, 4 * KiB), "-");
  await assert.rejects(
    early.readExact(9 * KiB, 2 * KiB, undefined, "grain data"),
    /-: the input ended after 10247 bytes, before grain data at offset 9216/,
  );
  await early.close();
  // An empty stream: a probe reads zeros.
  const empty = new StreamInput(streamOf(Buffer.alloc(0), 1), "-");
  assert.ok((await empty.readPadded(0, 512)).equals(Buffer.alloc(512)));
  assert.equal(empty.size, 0);
  await input.close();
});

test("closing an input mid-stream stops the stream", async () => {
  const pipe = new PassThrough();
  pipe.write(pattern(8 * KiB, 13));
  const input = new StreamInput(pipe, "-");
  await input.readExact(0, 4 * KiB);
  await input.close();
  assert.equal(pipe.destroyed, true);
});
