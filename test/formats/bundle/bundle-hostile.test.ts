/**
 * Bundles that must be refused by `chromogenic unbundle`: each refusal is one clear line, and nothing appears
 * under the output's name (nor any temporary file) in the destination. Most are made from a good bundle of
 * ours, changed and, where the change is not the signature's to catch, signed again with the user's key.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { appendFile, mkdir, readFile, readdir, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeBundleKeys, type BundleKeys } from "../../helpers/euca2ools.js";
import { craftBundle, resign, tarHeader, tarOf } from "../../helpers/bundle-crafting.js";
import { assertRefusedInOneLine } from "../../helpers/cli-refusal.js";
import { pattern, runCli, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;

interface Fixture {
  readonly dir: string;
  readonly keys: BundleKeys;
  readonly bundle: string;
  readonly manifest: string;
  readonly dest: string;
}

/** A good bundle of a 3 MiB image in 1 MiB parts (four of them), and an empty destination. */
async function fixture(t: TestContext): Promise<Fixture> {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const image = join(dir, "disk.img");
  await writeFile(image, pattern(3 * MiB, 5));
  const bundle = join(dir, "bundle");
  const r = await runCli(
    ["bundle", "-i", image, "-k", keys.userKey, "-c", keys.userCert, "--ec2cert", keys.cloudCert,
      "-u", "123456789012", "-d", bundle, "--part-size", String(MiB), "-q"],
    process.env,
  ); // prettier-ignore
  assert.equal(r.code, 0, r.stderr);
  const dest = join(dir, "dest");
  await mkdir(dest);
  return { dir, keys, bundle, manifest: join(bundle, "disk.img.manifest.xml"), dest };
}

async function assertRefused(
  f: Fixture,
  message: RegExp,
  what: string,
  manifest = f.manifest,
  key = f.keys.userKey,
  extra: string[] = [],
) {
  const r = await runCli(
    ["unbundle", "-m", manifest, "-s", join(manifest, ".."), "-d", f.dest, "-k", key, "-c", f.keys.userCert, ...extra],
    process.env,
  );
  assertRefusedInOneLine(r, message, what);
  assert.deepEqual(await readdir(f.dest), [], `${what}: nothing left in the destination`);
}

test("the good bundle unbundles (the fixtures below differ from it by one thing)", async (t) => {
  const f = await fixture(t);
  const r = await runCli(
    ["unbundle", "-m", f.manifest, "-s", f.bundle, "-d", f.dest, "-k", f.keys.userKey],
    process.env,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(f.dest, "disk.img"))).equals(pattern(3 * MiB, 5)));
});

test("a tampered, truncated or missing part", async (t) => {
  const f = await fixture(t);
  const part = join(f.bundle, "disk.img.part.01");
  const good = await readFile(part);
  const flipped = Buffer.from(good);
  flipped[1000]! ^= 1;
  await writeFile(part, flipped);
  await assertRefused(f, /part disk\.img\.part\.01 does not match its digest/, "tampered part");
  await truncate(part, good.length - 16);
  await assertRefused(f, /part disk\.img\.part\.01 does not match its digest/, "truncated part");
  await rm(part);
  await assertRefused(f, /disk\.img\.part\.01 is missing from the bundle/, "missing part");
});

test("a manifest whose signature does not match, or signed by another key", async (t) => {
  const f = await fixture(t);
  const xml = await readFile(f.manifest, "latin1");
  await writeFile(f.manifest, xml.replace("<architecture>x86_64", "<architecture>i386"), "latin1");
  await assertRefused(f, /signature does not match/, "altered manifest");
  await writeFile(f.manifest, xml, "latin1");
  const r = await runCli(
    ["unbundle", "-m", f.manifest, "-s", f.bundle, "-d", f.dest, "-k", f.keys.userKey, "-c", f.keys.otherCert],
    process.env,
  );
  assertRefusedInOneLine(r, /signature does not match/, "another signer");
});

test("a wrong key", async (t) => {
  const f = await fixture(t);
  await assertRefused(f, /this key does not open the bundle/, "wrong key", f.manifest, f.keys.otherKey);
});

test("an image digest that does not match", async (t) => {
  const f = await fixture(t);
  await resign(f.manifest, f.keys, (m) => ({ ...m, image: { ...m.image, digest: "0".repeat(40) } }));
  await assertRefused(f, /image's digest [0-9a-f]{40} is not the manifest's 0{40}/, "digest mismatch");
  // Streamed into the converter, the image is not completed either: the last bytes wait for the digest.
  const qcow2 = ["-O", "qcow2"];
  await assertRefused(
    f,
    /image's digest [0-9a-f]{40} is not the manifest's 0{40}/,
    "as qcow2",
    f.manifest,
    f.keys.userKey,
    qcow2,
  );
});

test("a part count that lies", async (t) => {
  const f = await fixture(t);
  const xml = await readFile(f.manifest, "latin1");
  await writeFile(f.manifest, xml.replace('<parts count="4">', '<parts count="5">'), "latin1");
  await assertRefused(f, /says count="5" but lists 4 parts/, "count attribute");
  await writeFile(f.manifest, xml, "latin1");
  await resign(f.manifest, f.keys, (m) => ({ ...m, image: { ...m.image, parts: m.image.parts.slice(0, 3) } }));
  await assertRefused(f, /the parts hold \d+ bytes, the manifest says \d+/, "a part left out");
  await writeFile(f.manifest, xml, "latin1");
  await resign(f.manifest, f.keys, (m) => ({ ...m, image: { ...m.image, bundledSize: 50 * MiB } }));
  await assertRefused(f, /bundled_size 52428800 is far more than an image of 3145728 bytes can make/, "bundled_size");
  await writeFile(f.manifest, xml, "latin1");
  await resign(f.manifest, f.keys, (m) => ({ ...m, image: { ...m.image, bundledSize: 45 * MiB, size: 45 * MiB } }));
  await assertRefused(f, /lists 4 parts, too few for 47185920 bundled bytes/, "parts too few for bundled_size");
});

test("tar members that are not one plain regular file", async (t) => {
  const f = await fixture(t);
  const data = pattern(5000, 2);
  const cases: [string, Buffer, RegExp][] = [
    [
      "../ name",
      tarOf(tarHeader("../evil.img", data.length), data),
      /member "\.\.\/evil\.img" is not a plain file name/,
    ],
    [
      "absolute name",
      tarOf(tarHeader("/etc/evil", data.length), data),
      /member "\/etc\/evil" is not a plain file name/,
    ],
    ["symlink", tarOf(tarHeader("evil.img", 0, "2", "/etc/passwd"), Buffer.alloc(0)), /holds a symlink/],
    ["hard link", tarOf(tarHeader("evil.img", 0, "1", "x"), Buffer.alloc(0)), /holds a hardlink/],
    ["device", tarOf(tarHeader("evil.img", 0, "4"), Buffer.alloc(0)), /holds a blockdev/],
    [
      "GNU long name",
      tarOf(tarHeader("././@LongLink", 20, "L"), Buffer.from("../../etc/passwd\0\0\0\0")),
      /gnu-longname/,
    ],
    [
      "second member",
      Buffer.concat([
        tarHeader("evil.img", data.length),
        data,
        Buffer.alloc(512 - (data.length % 512)),
        tarOf(tarHeader("two", 1), Buffer.from("x")),
      ]),
      /more than its one image member/,
    ],
  ];
  for (const [what, tar, message] of cases) {
    const dir = join(f.dir, what.replace(/\W/g, "-"));
    await mkdir(dir);
    await assertRefused(f, message, what, await craftBundle(dir, f.keys, tar, data.length));
  }
});

/** A PAX extended header carrying `records` ("key=value" each), as Python's tarfile writes above 8 GiB. */
function paxHeader(records: string[]): Buffer {
  const body = records
    .map((record) => {
      // A record's length counts its own digits: grow until it is consistent.
      let length = record.length + 3;
      while (`${length} ${record}\n`.length !== length) length = `${length} ${record}\n`.length;
      return `${length} ${record}\n`;
    })
    .join("");
  const data = Buffer.from(body);
  return Buffer.concat([
    tarHeader("././@PaxHeader", data.length, "x"),
    data,
    Buffer.alloc((512 - (data.length % 512)) % 512),
  ]);
}

test("PAX headers: size and path honoured as Python writes them, other records and renames refused", async (t) => {
  const f = await fixture(t);
  const data = pattern(5000, 6);
  const good = join(f.dir, "pax-good");
  await mkdir(good);
  // The header's own size field 0, as tarfile leaves a field that does not fit: only the PAX record says 5000.
  const tar = Buffer.concat([paxHeader(["size=5000", "mtime=0"]), tarOf(tarHeader("evil.img", 0), data)]);
  const manifest = await craftBundle(good, f.keys, tar, data.length);
  const r = await runCli(["unbundle", "-m", manifest, "-d", f.dest, "-k", f.keys.userKey], process.env);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(f.dest, "evil.img"))).equals(data), "PAX size honoured");
  await rm(join(f.dest, "evil.img"));
  const cases: [string, string[], RegExp][] = [
    ["path", ["path=../../etc/cron.d/x"], /member "\.\.\/\.\.\/etc\/cron\.d\/x" is not a plain file name/],
    ["linkpath", ["linkpath=/etc/passwd"], /PAX record "linkpath"; refused/],
    ["GNU sparse", ["GNU.sparse.map=0,10"], /PAX record "GNU\.sparse\.map"; refused/],
  ];
  for (const [what, records, message] of cases) {
    const dir = join(f.dir, `pax-${what.replace(/\W/g, "-")}`);
    await mkdir(dir);
    const hostile = Buffer.concat([paxHeader(records), tarOf(tarHeader("evil.img", 5000), data)]);
    await assertRefused(f, message, `PAX ${what}`, await craftBundle(dir, f.keys, hostile, data.length));
  }
});

test("gzip that inflates past the declared size", async (t) => {
  const f = await fixture(t);
  const data = pattern(4096, 3);
  const dir = join(f.dir, "bomb");
  await mkdir(dir);
  // A proper one-member tar of 4 KiB followed by 32 MiB of zeros: gzip shrinks them to 32 KiB.
  const bomb = await craftBundle(dir, f.keys, tarOf(tarHeader("evil.img", data.length), data, 32 * MiB), data.length);
  await assertRefused(f, /inflates past the 4096 bytes its manifest declares/, "gzip bomb", bomb);
  // A member larger than declared is refused at its header.
  const big = join(f.dir, "big");
  await mkdir(big);
  const liar = await craftBundle(big, f.keys, tarOf(tarHeader("evil.img", data.length), data), 100);
  await assertRefused(f, /tar member is 4096 bytes, more than the manifest declares/, "member larger", liar);
});

test("manifests with a DTD or entities, and a huge manifest", async (t) => {
  const f = await fixture(t);
  const xml = await readFile(f.manifest, "latin1");
  const withDtd = xml.replace(
    "<manifest>",
    '<!DOCTYPE manifest [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><manifest>',
  );
  await writeFile(f.manifest, withDtd, "latin1");
  await assertRefused(f, /declares a DTD or entities/, "DTD");
  await writeFile(f.manifest, xml.replace("<manifest>", '<!ENTITY x SYSTEM "file:///etc/passwd"><manifest>'), "latin1");
  await assertRefused(f, /declares a DTD or entities/, "external entity");
  await writeFile(f.manifest, xml);
  await appendFile(f.manifest, Buffer.alloc(17 * MiB, 0x20));
  await assertRefused(f, /disk\.img\.manifest\.xml is \d+ bytes, more than the 16777216 allowed/, "huge manifest");
});
