/**
 * PartCachingStore: a bundle read through it keeps each verified part, a second read takes them from the folder
 * and fetches none, a kept part damaged in between is fetched again and replaced, and a part that does not match
 * the manifest is never kept (the read still fails on its digest). The remote store is a directory store whose
 * reads are counted.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openImage } from "../../../src/formats/engine/open-image.js";
import { DirectoryBundleStore } from "../../../src/formats/bundle/directory-bundle-store.js";
import type { BundleStore } from "../../../src/formats/bundle/bundle-store.js";
import { writeBundle } from "../../../src/formats/bundle/write-bundle.js";
import { openBundleManifest } from "../../../src/formats/bundle/open-bundle-manifest.js";
import { verifiedImageBytes } from "../../../src/formats/bundle/bundle-image-stream.js";
import { PartCachingStore } from "../../../src/formats/bundle/part-caching-store.js";
import { readPrivateKey, readPublicKey } from "../../../src/formats/bundle/bundle-keys.js";
import { VerificationError } from "../../../src/util/errors.js";
import { makeBundleKeys } from "../../helpers/euca2ools.js";
import { pattern, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;

/** `directory`'s files, each read counted by name. */
function countingStore(directory: DirectoryBundleStore, reads: string[]): BundleStore {
  return {
    label: directory.label,
    put: directory.put.bind(directory),
    get: (name, max, signal) => {
      reads.push(name);
      return directory.get(name, max, signal);
    },
    stat: directory.stat.bind(directory),
    delete: directory.delete.bind(directory),
  };
}

test("parts kept once verified, read back from the folder, a damaged one fetched again, a bad one never kept", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const data = pattern(5 * MiB + 123, 9);
  await writeFile(join(dir, "disk"), data);
  const remote = new DirectoryBundleStore(join(dir, "bucket"));
  await mkdir(remote.label);
  const { source } = await openImage(join(dir, "disk"), { format: "raw" });
  const written = await writeBundle({
    source,
    prefix: "disk",
    store: remote,
    architecture: "x86_64",
    user: "123456789012",
    userKey: await readPrivateKey(keys.userKey),
    userCertificate: await readPublicKey(keys.userCert),
    cloudCertificate: await readPublicKey(keys.cloudCert),
    partSize: MiB,
  }).finally(() => source.close());
  const partNames = written.parts.map((p) => p.filename);
  assert.equal(partNames.length, 6);
  const reads: string[] = [];
  const opened = await openBundleManifest({
    store: remote,
    manifestName: written.manifestName,
    privateKey: await readPrivateKey(keys.userKey),
  });
  const folder = join(dir, "kept");
  const readAll = async () => {
    const store = await PartCachingStore.open(countingStore(remote, reads), opened.manifest, folder);
    const chunks: Buffer[] = [];
    for await (const chunk of verifiedImageBytes(opened, { store })) chunks.push(chunk);
    return { image: Buffer.concat(chunks), counts: store.counts };
  };

  const first = await readAll();
  assert.ok(first.image.equals(data));
  assert.deepEqual(first.counts, { kept: 0, fetched: 6 });
  assert.deepEqual((await readdir(folder)).sort(), partNames, "every part kept, no temporary file left");

  reads.length = 0;
  const second = await readAll();
  assert.ok(second.image.equals(data));
  assert.deepEqual(second.counts, { kept: 6, fetched: 0 });
  assert.deepEqual(reads, [], "nothing read from the bundle's store");

  // A kept part damaged between runs: fetched again, and the good copy replaces it.
  const damaged = join(folder, partNames[2]!);
  const good = await readFile(damaged);
  await writeFile(damaged, Buffer.concat([good.subarray(0, 100), Buffer.from([good[100]! ^ 1]), good.subarray(101)]));
  const third = await readAll();
  assert.ok(third.image.equals(data));
  assert.deepEqual(reads, [partNames[2]]);
  assert.ok((await readFile(damaged)).equals(good), "the damaged copy replaced");

  // A part altered in the bucket, and its kept copy damaged too: the read fails on its digest, and it is not kept.
  await writeFile(damaged, Buffer.alloc(good.length));
  await writeFile(join(remote.label, partNames[2]!), Buffer.alloc(good.length));
  await assert.rejects(
    readAll(),
    (e: unknown) => e instanceof VerificationError && /does not match its digest/.test(String(e)),
  );
  assert.ok(!(await readdir(folder)).includes(partNames[2]!), "a part that does not match is not kept");
});
