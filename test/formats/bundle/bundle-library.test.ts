/**
 * The bundle library without the CLI: writeBundle and readBundle through a DirectoryBundleStore, a kernel
 * image's manifest, Python's tarfile reading our gzip members, the header of an image above 8 GiB, the
 * directory store's refusals and the -B syntax.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createDecipheriv } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { openImage } from "../../../src/formats/engine/open-image.js";
import type { ImageSource } from "../../../src/formats/types.js";
import { DirectoryBundleStore } from "../../../src/formats/bundle/directory-bundle-store.js";
import { writeBundle } from "../../../src/formats/bundle/write-bundle.js";
import { readBundle } from "../../../src/formats/bundle/read-bundle.js";
import { imageTarLength, imageTarStream } from "../../../src/formats/bundle/image-tar-stream.js";
import { parseBlockDeviceMappings } from "../../../src/formats/bundle/block-device-mappings.js";
import { bundleSecretFromHex, readPrivateKey, readPublicKey } from "../../../src/formats/bundle/bundle-keys.js";
import type { ChromogenicEvent } from "../../../src/util/events.js";
import { makeBundleKeys, type BundleKeys } from "../../helpers/euca2ools.js";
import type { BundleStore } from "../../../src/formats/bundle/bundle-store.js";
import { pattern, scratch } from "../../helpers/tools.js";

const exec = promisify(execFile);
const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** The fields every bundle of these tests shares: its owner, keys and certificates. */
async function owner(keys: BundleKeys) {
  const [userKey, userCertificate, cloudCertificate] = await Promise.all([
    readPrivateKey(keys.userKey),
    readPublicKey(keys.userCert),
    readPublicKey(keys.cloudCert),
  ]);
  return { architecture: "x86_64", user: "123456789012", userKey, userCertificate, cloudCertificate };
}

/** A directory store whose put runs `put` (which calls the directory's own, or fails). */
function storeWithPut(directory: DirectoryBundleStore, put: BundleStore["put"]): BundleStore {
  return {
    label: directory.label,
    put,
    get: directory.get.bind(directory),
    stat: directory.stat.bind(directory),
    delete: directory.delete.bind(directory),
  };
}

test("writeBundle → readBundle through a directory store; a kernel image's manifest; progress", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const image = join(dir, "vmlinuz");
  const data = Buffer.concat([pattern(6 * MiB, 7), Buffer.alloc(9 * MiB), pattern(777, 8)]);
  await writeFile(image, data);
  const store = new DirectoryBundleStore(join(dir, "bundle"));
  await mkdir(store.label);
  const events: ChromogenicEvent[] = [];
  const { source } = await openImage(image, { format: "raw" });
  const written = await writeBundle({
    source,
    prefix: "vmlinuz",
    store,
    ...(await owner(keys)),
    imageType: "kernel",
    kernelId: "true",
    onProgress: (e) => events.push(e),
  }).finally(() => source.close());
  assert.equal(written.imageSize, data.length);
  assert.ok(events.length > 0 && events.every((e) => e.event === "progress"), "progress events");
  const xml = await readFile(join(store.label, "vmlinuz.manifest.xml"), "latin1");
  assert.match(
    xml,
    /<machine_configuration><architecture>x86_64<\/architecture><kernel_id>true<\/kernel_id><\/machine_configuration>/,
  );
  assert.match(xml, /<type>kernel<\/type>/);

  const dest = join(dir, "dest");
  await mkdir(dest);
  // With the cloud's key: the user's certificate verifies the signature.
  const read = await readBundle({
    store,
    manifestName: written.manifestName,
    privateKey: await readPrivateKey(keys.cloudKey),
    userCertificate: await readPublicKey(keys.userCert),
    destination: dest,
  });
  assert.equal(read.output, join(dest, "vmlinuz"));
  assert.ok((await readFile(read.output)).equals(data));
  assert.deepEqual(await readdir(dest), ["vmlinuz"]);
});

test("a bundle cancelled or failing half-way leaves no part behind", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const image = join(dir, "disk.img");
  await writeFile(image, pattern(8 * MiB, 11));
  const fields = await owner(keys);
  for (const how of ["cancelled", "store fails"] as const) {
    const out = join(dir, how.replace(" ", "-"));
    await mkdir(out);
    const controller = new AbortController();
    const directory = new DirectoryBundleStore(out);
    let puts = 0;
    const store = storeWithPut(directory, async (name, data, signal) => {
      await directory.put(name, data, signal);
      if (++puts === 3) {
        if (how === "cancelled") controller.abort();
        else throw new Error("disk full");
      }
    });
    const { source } = await openImage(image, { format: "raw" });
    await assert.rejects(
      writeBundle({
        source,
        prefix: "disk.img",
        store,
        ...fields,
        partSize: MiB,
        signal: controller.signal,
      }).finally(() => source.close()),
      how === "cancelled" ? /abort/i : /disk full/,
    );
    assert.ok(puts >= 3, how);
    assert.deepEqual(await readdir(out), [], `${how}: nothing left`);
  }
});

test("a resumable bundle stores again only the parts an interrupted run did not finish", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const image = join(dir, "disk.img");
  const data = pattern(6 * MiB, 12);
  await writeFile(image, data);
  const out = join(dir, "out");
  await mkdir(out);
  const directory = new DirectoryBundleStore(out);
  const stored: string[] = [];
  let failing: string | undefined = "disk.img.part.02";
  const store = storeWithPut(directory, async (name, bytes, signal) => {
    if (name === failing) throw new Error("connection reset");
    await directory.put(name, bytes, signal);
    stored.push(name);
  });
  const request = {
    prefix: "disk.img",
    store,
    ...(await owner(keys)),
    partSize: MiB,
    secret: bundleSecretFromHex("3".repeat(32), "4".repeat(32)),
    resumable: true,
  };
  const bundle = async () => {
    const { source } = await openImage(image, { format: "raw" });
    return writeBundle({ ...request, source }).finally(() => source.close());
  };
  await assert.rejects(bundle(), /connection reset/);
  // Parts 00 and 01 were stored before 02 failed (03 may have been, in flight beside it).
  const first = [...stored].sort();
  assert.deepEqual(first.slice(0, 2), ["disk.img.part.00", "disk.img.part.01"]);
  assert.ok(!first.includes("disk.img.part.02"));
  assert.deepEqual((await readdir(out)).sort(), first, "the parts stored are kept for the next run");

  failing = undefined;
  stored.length = 0;
  const written = await bundle();
  assert.ok(written.parts.length >= 6);
  assert.ok(!stored.some((name) => first.includes(name)), `stored again: ${stored.join(" ")}`);
  assert.equal(stored.length, written.parts.length - first.length + 1, "the manifest and the parts not stored before");
  const dest = join(dir, "dest");
  await mkdir(dest);
  await readBundle({
    store: directory,
    manifestName: written.manifestName,
    privateKey: request.userKey,
    destination: dest,
  });
  assert.ok((await readFile(join(dest, "disk.img"))).equals(data));
  const { source } = await openImage(image, { format: "raw" });
  await assert.rejects(
    writeBundle({ ...request, source, secret: undefined }).finally(() => source.close()),
    /a resumed bundle needs the AES key and IV/,
  );
});

test("our gzip is one member, which Python's tarfile reads as a stream ('r|gz', as ec2-api) and gzip -t checks", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const image = join(dir, "disk.img");
  const data = Buffer.concat([pattern(9 * MiB + 5, 3), Buffer.alloc(3 * MiB)]);
  await writeFile(image, data);
  const store = new DirectoryBundleStore(dir);
  const secret = bundleSecretFromHex("1".repeat(32), "2".repeat(32));
  const { source } = await openImage(image, { format: "raw" });
  const written = await writeBundle({
    source,
    prefix: "disk.img",
    store,
    ...(await owner(keys)),
    secret,
  }).finally(() => source.close());
  const decipher = createDecipheriv("aes-128-cbc", Buffer.from(secret.key, "hex"), Buffer.from(secret.iv, "hex"));
  const parts = await Promise.all(written.parts.map((p) => readFile(join(dir, p.filename))));
  await writeFile(join(dir, "disk.tar.gz"), Buffer.concat([decipher.update(Buffer.concat(parts)), decipher.final()]));
  const script =
    "import sys, tarfile\n" +
    "t = tarfile.open(sys.argv[1], 'r|gz'); m = t.next()\n" +
    "open(sys.argv[2], 'wb').write(t.extractfile(m).read())\n" +
    "print(m.name, m.size, m.isreg(), t.next())\n";
  const out = join(dir, "from-python");
  const { stdout } = await exec("/usr/bin/python3", ["-c", script, join(dir, "disk.tar.gz"), out]);
  assert.equal(stdout.trim(), `disk.img ${data.length} True None`);
  assert.ok((await readFile(out)).equals(data));
  // One member: zlib's gzip decoder ends exactly at the end of the file, nothing left over for a second.
  const single =
    "import sys, zlib\n" +
    "d = zlib.decompressobj(31); body = d.decompress(open(sys.argv[1], 'rb').read())\n" +
    "print(d.eof, len(d.unused_data), len(body))\n";
  const members = await exec("/usr/bin/python3", ["-c", single, join(dir, "disk.tar.gz")]);
  assert.equal(members.stdout.trim(), `True 0 ${imageTarLength(data.length)}`);
  await exec("gzip", ["-t", join(dir, "disk.tar.gz")]);
});

test("an image above 8 GiB gets a GNU header with a base-256 size that Python's tarfile reads", async (t) => {
  const dir = await scratch(t);
  const size = 9 * GiB + 512;
  const hole: ImageSource = {
    format: "raw",
    virtualSize: size,
    read: () => Promise.reject(new Error("a hole is never read")),
    async *extents() {
      yield { offset: 0, length: size, kind: "unallocated" };
    },
    details: () => Promise.reject(new Error("unused")),
    close: () => Promise.resolve(),
  };
  const stream = imageTarStream(hole, { name: "big.img", chunkSize: 4 * MiB });
  const header = (await stream.next()).value as Buffer;
  await stream.return(undefined);
  assert.equal(header.length, 512);
  assert.equal(header[124], 0x80, "base-256 marker");
  await writeFile(join(dir, "header"), header);
  const { stdout } = await exec("/usr/bin/python3", [
    "-c",
    "import sys, tarfile; i = tarfile.TarInfo.frombuf(open(sys.argv[1], 'rb').read(), 'utf-8', 'strict'); print(i.name, i.size)",
    join(dir, "header"),
  ]);
  assert.equal(stdout.trim(), `big.img ${size}`);
});

test("the directory store refuses names that are not plain, and files above the bound", async (t) => {
  const dir = await scratch(t);
  const store = new DirectoryBundleStore(dir);
  for (const name of ["../x", "a/b", "..", "/etc/passwd", "x\ny", ""]) {
    await assert.rejects(store.put(name, Buffer.from("x")), /is not a plain file name/, JSON.stringify(name));
    await assert.rejects(store.get(name, 10), /is not a plain file name/, JSON.stringify(name));
  }
  await store.put("part.00", Buffer.alloc(100));
  assert.deepEqual(await store.stat("part.00"), { size: 100 });
  assert.equal(await store.stat("part.01"), undefined);
  await assert.rejects(store.get("part.00", 99), /part\.00 is 100 bytes, more than the 99 allowed/);
  await assert.rejects(store.get("part.01", 99), /part\.01 is missing from the bundle/);
  assert.deepEqual(await readdir(dir), ["part.00"], "no temporary file left");
  await store.delete("part.00");
  await store.delete("part.00");
  assert.deepEqual(await readdir(dir), []);
});

test("-B mappings: VIRTUAL=DEVICE pairs sorted as euca2ools writes them; a malformed pair refused", () => {
  assert.deepEqual(parseBlockDeviceMappings("root=/dev/sda1, ami=sda1,,ephemeral0=sdb"), [
    ["ami", "sda1"],
    ["ephemeral0", "sdb"],
    ["root", "/dev/sda1"],
  ]);
  assert.throws(() => parseBlockDeviceMappings("ami=sda1,root"), /invalid device mapping "root"/);
});
