/**
 * Interoperability with the real euca2ools 3.4, both ways: euca-unbundle rebuilds our bundles identically with
 * the user's key and with the cloud's; ours rebuilds euca-bundle-image's (multi-part, fixed key and IV)
 * identically; the tar stream inside ours is euca2ools' own byte for byte (same digest); our manifest has
 * euca2ools' exact shape; `openssl dgst -sha1 -verify` accepts our signature over the bytes it covers. A qcow2
 * given with --format raw is bundled as its raw disk.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createDecipheriv, createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { euca, makeBundleKeys, type BundleKeys } from "../../helpers/euca2ools.js";
import { makeRaw, mixedRegions, pattern, qemuImg, run, runCli, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;
const KEY = "00112233445566778899aabbccddeeff";
const IV = "ffeeddccbbaa99887766554433221100";

/**
 * An image of 23 MiB + `tail` bytes: data that does not compress (21 MiB, so three 10 MiB parts), data that does,
 * holes, an odd tail.
 */
async function makeImage(path: string, tail = 1234): Promise<Buffer> {
  const size = 23 * MiB + tail;
  await makeRaw(path, size, [...mixedRegions(size), { offset: MiB, data: pattern(21 * MiB, 9) }]);
  return readFile(path);
}

function sha1(data: Buffer): string {
  return createHash("sha1").update(data).digest("hex");
}

function bundleArgs(keys: BundleKeys, image: string, out: string, extra: string[] = []): string[] {
  return [
    "-i", image, "-r", "x86_64", "-k", keys.userKey, "-c", keys.userCert, "--ec2cert", keys.cloudCert,
    "-u", "123456789012", "-d", out, ...extra,
  ]; // prettier-ignore
}

/** The tar stream inside a bundle, decrypted with the key and IV it was made with. */
async function tarInside(dir: string, prefix: string, parts: number): Promise<Buffer> {
  const encrypted = Buffer.concat(
    await Promise.all(
      Array.from({ length: parts }, (_, i) => readFile(join(dir, `${prefix}.part.${String(i).padStart(2, "0")}`))),
    ),
  );
  const decipher = createDecipheriv("aes-128-cbc", Buffer.from(KEY, "hex"), Buffer.from(IV, "hex"));
  return gunzipSync(Buffer.concat([decipher.update(encrypted), decipher.final()]));
}

test("euca-unbundle rebuilds our bundle identically, with the user's key and with the cloud's", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const image = join(dir, "disk.img");
  const original = await makeImage(image);
  const ours = join(dir, "ours");
  const r = await runCli(
    ["bundle", ...bundleArgs(keys, image, ours, ["-B", "ami=sda1,root=/dev/sda1", "--kernel", "eki-12345678"]), "-q"],
    process.env,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await readdir(ours)).sort(), [
    "disk.img.manifest.xml",
    "disk.img.part.00",
    "disk.img.part.01",
    "disk.img.part.02",
  ]);
  for (const [key, name] of [
    [keys.userKey, "user"],
    [keys.cloudKey, "cloud"],
  ] as const) {
    const back = join(dir, `back-${name}`);
    await mkdir(back);
    await euca("euca-unbundle", ["-m", join(ours, "disk.img.manifest.xml"), "-s", ours, "-d", back, "-k", key]);
    assert.ok((await readFile(join(back, "disk.img"))).equals(original), `euca-unbundle -k ${name}.key: identical`);
  }
});

test("ours rebuilds euca-bundle-image's multi-part bundle identically; same tar, same manifest shape", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const image = join(dir, "disk.img");
  const original = await makeImage(image);
  const theirs = join(dir, "theirs");
  const ours = join(dir, "ours");
  const fixed = ["--enc-key", KEY, "--enc-iv", IV, "--part-size", String(3 * MiB), "-B", "ami=sda1,root=/dev/sda1"];
  await euca("euca-bundle-image", bundleArgs(keys, image, theirs, fixed));
  const r = await runCli(["bundle", ...bundleArgs(keys, image, ours, fixed), "-q"], process.env);
  assert.equal(r.code, 0, r.stderr);
  const theirManifest = await readFile(join(theirs, "disk.img.manifest.xml"), "latin1");
  const ourManifest = await readFile(join(ours, "disk.img.manifest.xml"), "latin1");
  const parts = Number(/<parts count="(\d+)"/.exec(theirManifest)![1]);
  assert.ok(parts >= 7, `euca2ools made ${parts} parts`);

  for (const [key, cert] of [
    [keys.userKey, []],
    [keys.cloudKey, ["-c", keys.userCert]],
  ] as const) {
    const back = join(dir, `back-${parts}-${cert.length}`);
    const u = await runCli(
      ["unbundle", "-m", join(theirs, "disk.img.manifest.xml"), "-s", theirs, "-d", back, "-k", key, ...cert, "-q"],
      process.env,
    );
    assert.equal(u.code, 0, u.stderr);
    assert.ok((await readFile(join(back, "disk.img"))).equals(original), "identical image");
  }
  const asQcow2 = join(dir, "as-qcow2");
  const q = await runCli(
    [
      "unbundle",
      "-m",
      join(theirs, "disk.img.manifest.xml"),
      "-s",
      theirs,
      "-d",
      asQcow2,
      "-k",
      keys.userKey,
      "-O",
      "qcow2",
      "-q",
    ],
    process.env,
  );
  assert.equal(q.code, 0, q.stderr);
  const compare = await run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", join(asQcow2, "disk.img"), image]);
  assert.equal(compare.code, 0, `unbundle -O qcow2: ${compare.stdout}${compare.stderr}`);

  // Our gzip members differ from gzip's single stream, so the parts differ; the tar inside is the same bytes.
  const digest = (xml: string) => /<digest algorithm="SHA1">([0-9a-f]{40})<\/digest><size>/.exec(xml)![1];
  assert.equal(digest(ourManifest), digest(theirManifest), "same tar digest");
  const ourParts = Number(/<parts count="(\d+)"/.exec(ourManifest)![1]);
  const ourTar = await tarInside(ours, "disk.img", ourParts);
  assert.ok(ourTar.equals(await tarInside(theirs, "disk.img", parts)), "same tar stream");
  assert.equal(sha1(ourTar), digest(ourManifest));

  // The manifest's shape is euca2ools': the same text once the random RSA output, sizes, digests and parts go.
  const shape = (xml: string) =>
    xml
      .replace(/<parts count.*<\/parts>/, "<parts/>")
      .replace(/>[0-9a-f]{40,}</g, ">HEX<")
      .replace(/<bundled_size>\d+/, "<bundled_size>N")
      .replace(/<bundler>.*<\/bundler>/, "<bundler/>");
  assert.equal(shape(ourManifest), shape(theirManifest));
});

test("openssl verifies our manifest's signature over <machine_configuration><image>", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const image = join(dir, "small.img");
  await writeFile(image, pattern(100_000, 3));
  const out = join(dir, "out");
  const r = await runCli(["bundle", ...bundleArgs(keys, image, out), "-q"], process.env);
  assert.equal(r.code, 0, r.stderr);
  const xml = await readFile(join(out, "small.img.manifest.xml"), "latin1");
  const signed = /<machine_configuration>.*<\/image>/.exec(xml)![0];
  await writeFile(join(dir, "signed"), signed, "latin1");
  await writeFile(join(dir, "sig"), Buffer.from(/<signature>([0-9a-f]+)<\/signature>/.exec(xml)![1]!, "hex"));
  const pub = await run("openssl", ["x509", "-pubkey", "-noout", "-in", keys.userCert]);
  await writeFile(join(dir, "user.pub"), pub.stdout);
  const verify = (file: string) =>
    run("openssl", ["dgst", "-sha1", "-verify", join(dir, "user.pub"), "-signature", join(dir, "sig"), file]);
  const good = await verify(join(dir, "signed"));
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /Verified OK/);
  await writeFile(join(dir, "altered"), signed.replace("x86_64", "i386"), "latin1");
  assert.notEqual((await verify(join(dir, "altered"))).code, 0, "a changed byte fails");
});

test("bundle --format raw bundles a qcow2's raw disk; euca-unbundle gives that disk", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const raw = join(dir, "disk.raw");
  // A whole number of sectors: qemu-img rounds a disk's size up to one.
  const original = await makeImage(raw, 0);
  const qcow2 = join(dir, "disk.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", raw, qcow2);
  const out = join(dir, "out");
  const r = await runCli(
    ["bundle", ...bundleArgs(keys, qcow2, out, ["--format", "raw", "-p", "disk.raw"]), "-q"],
    process.env,
  );
  assert.equal(r.code, 0, r.stderr);
  const back = join(dir, "back");
  await mkdir(back);
  await euca("euca-unbundle", ["-m", join(out, "disk.raw.manifest.xml"), "-s", out, "-d", back, "-k", keys.userKey]);
  assert.ok((await readFile(join(back, "disk.raw"))).equals(original));
});
