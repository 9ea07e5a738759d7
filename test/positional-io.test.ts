import { test } from "node:test";
import assert from "node:assert/strict";
import { open, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  closeHandle,
  dropCleanCache,
  largeRequestsAreSplit,
  readAt,
  writeAt,
  zeroAt,
} from "../src/formats/io/positional-io.js";
import { makeRaw, mixedRegions, pattern, qemuCompare, runCli, scratch } from "./helpers/tools.js";

const MiB = 2 ** 20;

/** Runs `body` with the block-io addon switched on or off (positional-io reads the switch on every request). */
async function withNativeIo<T>(mode: "on" | "off", body: () => Promise<T>): Promise<T> {
  const before = process.env.CHROMOGENIC_NATIVE_IO;
  process.env.CHROMOGENIC_NATIVE_IO = mode;
  try {
    return await body();
  } finally {
    if (before === undefined) delete process.env.CHROMOGENIC_NATIVE_IO;
    else process.env.CHROMOGENIC_NATIVE_IO = before;
  }
}

test("block-io: the addon is built here (scripts/build-native.sh), so large requests are split", () => {
  // Without it conversions still work, more slowly; this machine must not silently test only the fallback.
  assert.ok(largeRequestsAreSplit(), "native/block-io.node is not built");
});

for (const mode of ["on", "off"] as const) {
  test(`positional reads and writes (block-io ${mode}): whole multi-MiB buffers, short reads only at the end`, async (t) => {
    const dir = await scratch(t);
    const path = join(dir, "f.bin");
    // Several 1 MiB steps plus an odd tail, written at an odd position: every step's offset must be right.
    const data = pattern(5 * MiB + 4099, 7);
    await withNativeIo(mode, async () => {
      const out = await open(path, "w+");
      try {
        await writeAt(out, data, 3);
        const back = Buffer.alloc(data.length + 3 + 100);
        const got = await readAt(out, back, back.length, 0);
        assert.equal(got, data.length + 3, "a read past the end returns what is there");
        assert.deepEqual(back.subarray(3, 3 + data.length), data);
        const tail = Buffer.alloc(10);
        assert.equal(await readAt(out, tail, 10, data.length + 3), 0, "a read at the end returns nothing");
      } finally {
        await closeHandle(out);
      }
    });
    const onDisk = await readFile(path);
    assert.deepEqual(onDisk.subarray(3), data);
    assert.equal(onDisk.subarray(0, 3).toString("hex"), "000000");
  });

  test(`positional I/O errors carry node:fs's code and syscall (block-io ${mode})`, async (t) => {
    const dir = await scratch(t);
    const path = join(dir, "ro.bin");
    await writeFile(path, pattern(MiB));
    await withNativeIo(mode, async () => {
      const ro = await open(path, "r");
      try {
        await assert.rejects(writeAt(ro, pattern(2 * MiB), 0), (e: NodeJS.ErrnoException) => {
          assert.equal(e.code, "EBADF");
          assert.equal(e.syscall, "write");
          return true;
        });
      } finally {
        await closeHandle(ro);
      }
      const wo = await open(path, "a");
      try {
        await assert.rejects(readAt(wo, Buffer.alloc(MiB), MiB, 0), (e: NodeJS.ErrnoException) => {
          assert.equal(e.code, "EBADF");
          assert.equal(e.syscall, "read");
          return true;
        });
      } finally {
        await closeHandle(wo);
      }
    });
  });
}

test("block-io: closing a handle waits for the requests still running on its descriptor", async (t) => {
  // node:fs does not know about the addon's requests: a close that did not wait would pull the descriptor
  // from under a running read (EBADF, or worse, a reused descriptor belonging to another file).
  const dir = await scratch(t);
  const path = join(dir, "big.bin");
  const data = pattern(64 * MiB, 3);
  await writeFile(path, data);
  const handle = await open(path, "r");
  const into = Buffer.alloc(data.length);
  const reading = readAt(handle, into, into.length, 0);
  await closeHandle(handle);
  assert.equal(await reading, data.length);
  assert.ok(into.equals(data), "the read completed with the file's bytes");
});

test("block-io: positions that are not safe non-negative integers are refused before any I/O", async (t) => {
  const dir = await scratch(t);
  const handle = await open(join(dir, "x.bin"), "w+");
  try {
    for (const position of [-1, 0.5, 2 ** 53 + 2]) {
      await assert.rejects(async () => writeAt(handle, Buffer.alloc(16), position), TypeError, String(position));
    }
  } finally {
    await closeHandle(handle);
  }
});

test("convert through the CLI with and without block-io: 4 MiB and 1 MiB pieces give identical, clean images", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  const size = 23 * MiB + 4096 + 512;
  // Besides the standard mix, a data run longer than two 4 MiB pieces that starts just before a piece boundary.
  await makeRaw(input, size, [...mixedRegions(size), { offset: 8 * MiB - 100, data: pattern(9 * MiB + 13, 5) }]);
  for (const mode of ["on", "off"]) {
    for (const format of ["qcow2", "vdi", "raw"]) {
      const output = join(dir, `out-${mode}.${format}`);
      // The addon and the pipeline's piece size are chosen per process: each run is a process of its own.
      const r = await runCli(["convert", "-q", "-O", format, input, output], {
        ...process.env,
        CHROMOGENIC_NATIVE_IO: mode,
      });
      assert.equal(r.code, 0, r.stderr);
      const compare = await qemuCompare(input, output);
      assert.equal(compare.code, 0, `${mode} ${format}: ${compare.stdout}${compare.stderr}`);
    }
  }
});

test("block-io: zeroAt makes a range read as zeros, punching a hole in a file (addon on and off)", async (t) => {
  const dir = await scratch(t);
  for (const mode of ["on", "off"] as const) {
    const path = join(dir, `zero-${mode}.bin`);
    await writeFile(path, pattern(4 * MiB, 3));
    const handle = await open(path, "r+");
    await withNativeIo(mode, () => zeroAt(handle, MiB + 100, 2 * MiB));
    await closeHandle(handle);
    const expected = pattern(4 * MiB, 3);
    expected.fill(0, MiB + 100, 3 * MiB + 100);
    assert.ok(
      (await readFile(path)).equals(expected),
      `zeroAt (${mode}) left other bytes than zeros, or touched others`,
    );
    const allocated = (await stat(path)).blocks * 512;
    if (mode === "on") assert.ok(allocated <= 3 * MiB, `no hole was punched: ${allocated} bytes allocated`);
  }
});

test("block-io: dropCleanCache drops a clean file's pages and leaves a dirty one's alone", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "cached.bin");
  const handle = await open(path, "w+");
  try {
    await writeAt(handle, pattern(8 * MiB, 5), 0);
    assert.equal(await dropCleanCache(handle), -1, "pages not yet written out were dropped");
    await handle.sync();
    assert.ok((await dropCleanCache(handle)) > 0, "a clean file's pages were not dropped");
    assert.ok((await readFile(path)).equals(pattern(8 * MiB, 5)), "dropping the cache changed the file");
  } finally {
    await closeHandle(handle);
  }
});
