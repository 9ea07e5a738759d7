/**
 * The local provider on real files: uploads are sparse, hashed and atomic; downloads verify; positional reads;
 * names and ids; what an interrupted upload leaves is invisible and removable; hostile ids and instance
 * snapshots are clear errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LocalProvider } from "../../src/providers/local/local-provider.js";
import { UnsupportedFeatureError } from "../../src/formats/errors.js";
import { collect, chunksOf } from "../helpers/openstack-stack.js";
import { pattern, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;

/** 8 MiB: 1 MiB of data, 6 MiB of zeros, 1 MiB of data. */
function sampleBytes(): Buffer {
  return Buffer.concat([pattern(MiB, 7), Buffer.alloc(6 * MiB), pattern(MiB, 9)]);
}

test("upload → list → get by name → download: same bytes, sha256 recorded, zeros left as holes", async (t) => {
  const dir = await scratch(t);
  const store = new LocalProvider(join(dir, "store"));
  const data = sampleBytes();
  let created: string | undefined;
  const image = await store.uploadImage(
    { name: "disk one", diskFormat: "raw", sizeBytes: data.length, properties: { os_distro: "debian" } },
    chunksOf(data, 300_000),
    { onCreated: (id) => void (created = id) },
  );
  assert.equal(created, image.id, "onCreated reports the id before the data flows");
  assert.equal(image.visibility, "private");
  assert.equal(image.sizeBytes, data.length);
  assert.equal(image.hash?.value, createHash("sha256").update(data).digest("hex"));
  const file = join(dir, "store", `${image.id}.img`);
  assert.ok((await stat(file)).blocks * 512 <= 2 * MiB + 64 * 1024, "the 6 MiB of zeros are holes");
  const listed = [];
  for await (const i of store.listImages()) listed.push(i);
  assert.deepEqual(
    listed.map((i) => [i.name, i.properties.os_distro]),
    [["disk one", "debian"]],
  );
  assert.equal((await store.getImage("disk one"))?.id, image.id);
  assert.deepEqual(await collect(store.downloadImage(image.id)), data);
  // A resumed download from an offset gives the rest.
  assert.deepEqual(await collect(store.downloadImage(image.id, { offset: 7 * MiB })), data.subarray(7 * MiB));
  const input = await store.openImageInput(image.id);
  assert.equal(input.size, data.length);
  assert.deepEqual(await input.readExact(MiB - 2048, 4096), data.subarray(MiB - 2048, MiB + 2048));
  assert.deepEqual(
    await input.readPadded(data.length - 100, 4096),
    Buffer.concat([data.subarray(-100), Buffer.alloc(3996)]),
  );
  await assert.rejects(input.readExact(data.length - 100, 4096), /beyond the end/, "no silent short read");
  await input.close();
  assert.equal(await store.localImagePath(image.id), file);
});

test("a download whose stored bytes changed fails at the end; a size mismatch on upload leaves nothing", async (t) => {
  const dir = await scratch(t);
  const store = new LocalProvider(dir);
  const data = pattern(2 * MiB, 3);
  const image = await store.uploadImage({ name: "x", diskFormat: "qcow2" }, chunksOf(data));
  const file = join(dir, `${image.id}.img`);
  const tampered = Buffer.from(data);
  tampered[12345] = tampered[12345]! ^ 1;
  await writeFile(file, tampered);
  await assert.rejects(collect(store.downloadImage(image.id)), /no longer matches its recorded SHA-256/);
  await assert.rejects(
    store.uploadImage({ name: "short", diskFormat: "raw", sizeBytes: 10 * MiB }, chunksOf(data)),
    /2097152 bytes, 10485760 were announced/,
  );
  assert.deepEqual((await readdir(dir)).sort(), [`${image.id}.img`, `${image.id}.json`].sort());
});

test("an interrupted upload is invisible, and deleting its id removes what it left", async (t) => {
  const dir = await scratch(t);
  const store = new LocalProvider(dir);
  let id = "";
  const abort = new AbortController();
  async function* stalls() {
    yield pattern(MiB, 1);
    abort.abort(new Error("killed"));
    yield pattern(MiB, 2);
  }
  await assert.rejects(
    store.uploadImage({ name: "half", diskFormat: "raw" }, stalls(), {
      signal: abort.signal,
      onCreated: (i) => void (id = i),
    }),
  );
  // A crash (no cleanup at all) leaves a partial file: simulate it by hand.
  await writeFile(join(dir, `.${id}.img.partial`), "partial");
  const listed = [];
  for await (const i of store.listImages()) listed.push(i);
  assert.equal(listed.length, 0);
  assert.equal(await store.getImage(id), undefined);
  await store.deleteImage(id);
  assert.deepEqual(await readdir(dir), []);
});

test("hostile ids, unknown formats, two images of one name and instance snapshots are clear errors", async (t) => {
  const dir = await scratch(t);
  const store = new LocalProvider(dir);
  await assert.rejects(store.deleteImage("../../etc/passwd"), /is not a local image id/);
  await assert.rejects(collect(store.downloadImage("../x")), /no image/);
  await assert.rejects(store.uploadImage({ name: "i", diskFormat: "iso" }, chunksOf(Buffer.alloc(10))), /not "iso"/);
  await store.uploadImage({ name: "twin", diskFormat: "raw" }, chunksOf(Buffer.alloc(512, 1)));
  await store.uploadImage({ name: "twin", diskFormat: "raw" }, chunksOf(Buffer.alloc(512, 2)));
  await assert.rejects(store.getImage("twin"), /2 images .* are named "twin"/);
  await assert.rejects(
    store.createImageFromInstance({ instance: "vm1", imageName: "x" }),
    (e: unknown) => e instanceof UnsupportedFeatureError && /has no instances: cannot snapshot "vm1"/.test(String(e)),
  );
  assert.equal((await store.capabilities()).canCreateImageFromInstance, false);
  const record = JSON.parse(
    await readFile(
      join(
        dir,
        (await readdir(dir)).find((f) => f.endsWith(".json"))!,
      ),
      "utf8",
    ),
  );
  assert.equal(record.visibility, "private");
});
