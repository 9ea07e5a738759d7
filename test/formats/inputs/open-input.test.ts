/**
 * What a user names is read where it is: `chromogenic info` and `convert` of an http:// URL read every format in
 * place with Range requests (nothing written to the temporary folder, only ranged GETs sent), and an object that
 * changes while it is read stops the conversion with a clear error and no output.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RangeServer, servedBuffer } from "../../helpers/range-server.js";
import {
  makeRaw,
  mixedRegions,
  pattern,
  qemuCompare,
  qemuImg,
  qemuInfo,
  runCli,
  runOk,
  scratch,
} from "../../helpers/tools.js";
import { isLocalLocation, isRemoteLocation } from "../../../src/formats/inputs/open-input.js";

const MiB = 2 ** 20;
const SIZE = 24 * MiB;

const LAYOUTS: ReadonlyArray<{ name: string; qemu: string[]; format: string }> = [
  { name: "qcow2", qemu: ["-O", "qcow2", "-c"], format: "qcow2" },
  { name: "vmdk", qemu: ["-O", "vmdk"], format: "vmdk" },
  { name: "vmdk-stream", qemu: ["-O", "vmdk", "-o", "subformat=streamOptimized"], format: "vmdk" },
  { name: "vhd", qemu: ["-O", "vpc"], format: "vhd" },
  { name: "vhdx", qemu: ["-O", "vhdx"], format: "vhdx" },
  { name: "vdi", qemu: ["-O", "vdi"], format: "vdi" },
  { name: "raw", qemu: ["-O", "raw"], format: "raw" },
];

for (const layout of LAYOUTS) {
  test(`info and convert of a ${layout.name} image at an http:// URL: read in place, same disk`, async (t) => {
    const dir = await scratch(t);
    const raw = join(dir, "disk.raw");
    await makeRaw(raw, SIZE, mixedRegions(SIZE));
    const image = join(dir, `image.${layout.name}`);
    await qemuImg("convert", "-f", "raw", ...layout.qemu, raw, image);
    const server = await RangeServer.start(t, servedBuffer(await readFile(image), { etag: '"v1"' }));
    const tmp = join(dir, "tmp");
    await mkdir(tmp);
    const env = { ...process.env, TMPDIR: tmp };
    const url = server.url(`/images/disk.${layout.name}?X-Amz-Signature=secret`);

    const info = await runCli(["info", "--json", url], env);
    assert.equal(info.code, 0, info.stderr);
    const details = JSON.parse(info.stdout) as { format: string; virtualSize: number };
    assert.equal(details.format, layout.format);
    assert.equal(details.virtualSize, (await qemuInfo(image))["virtual-size"], "the size qemu-img reads");

    const out = join(dir, "out.qcow2");
    const r = await runCli(["convert", "-O", "qcow2", url, out], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await qemuCompare(raw, out)).code, 0, "the converted disk equals the source");
    // (Node keeps its compiled-code cache there; nothing else may be.)
    const written = (await readdir(tmp)).filter((f) => f !== "node-compile-cache");
    assert.deepEqual(written, [], "nothing was written to the temporary folder");
    assert.ok(server.received.length > 0);
    for (const req of server.received) {
      assert.equal(req.method, "GET");
      assert.match(req.headers.range ?? "", /^bytes=\d+-\d+$/, "every request asks for a range");
    }
    assert.ok(!`${info.stdout}${info.stderr}${r.stdout}${r.stderr}`.includes("secret"), "no query string shown");
  });
}

test("an object replaced while it is converted: a clear error naming the URL, no output", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "disk.raw");
  await makeRaw(raw, SIZE, [{ offset: 0, data: pattern(SIZE, 3) }]);
  const first = await readFile(raw);
  const second = Buffer.from(first).fill(0x42, 12 * MiB);
  const server = await RangeServer.start(t, servedBuffer(first, { etag: '"v1"' }));
  // The second request onwards sees the new version (new ETag); conditions ignored, as some servers do.
  server.conditions = false;
  server.handle = (_req, _res, index) => {
    if (index === 1) server.image = servedBuffer(second, { etag: '"v2"' });
    return false;
  };
  const out = join(dir, "out.raw");
  const r = await runCli(["convert", "-f", "raw", "-O", "raw", server.url("/disk.raw"), out], process.env);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /http:\/\/127\.0\.0\.1:\d+\/disk\.raw.*changed/i);
  assert.deepEqual(await readdir(dir), ["disk.raw"], "no output and no temporary file left");
});

test("locations: - and URLs are not local paths", () => {
  assert.ok(isRemoteLocation("https://example.invalid/disk.qcow2"));
  assert.ok(isRemoteLocation("HTTP://host/x"));
  assert.ok(!isRemoteLocation("./http:/x"));
  assert.ok(!isLocalLocation("-"));
  assert.ok(isLocalLocation("/dev/sdb"));
  assert.ok(isLocalLocation("disk.img"));
});

test("an https:// URL is read with the certificate checked: trusted CA works, an untrusted one is refused", async (t) => {
  const dir = await scratch(t);
  // A private CA and a server certificate for 127.0.0.1, as a private cloud has them.
  const ca = join(dir, "ca");
  await runOk("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=test CA",
    "-keyout",
    `${ca}.key`,
    "-out",
    `${ca}.pem`,
  ]);
  const server = join(dir, "server");
  await runOk("openssl", [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    `${server}.key`,
    "-out",
    `${server}.csr`,
  ]);
  await writeFile(`${server}.ext`, "subjectAltName=IP:127.0.0.1\n");
  await runOk("openssl", [
    "x509",
    "-req",
    "-in",
    `${server}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    `${server}.ext`,
    "-out",
    `${server}.pem`,
  ]);
  const raw = join(dir, "disk.raw");
  await makeRaw(raw, SIZE, mixedRegions(SIZE));
  const image = join(dir, "image.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", raw, image);
  const https = await RangeServer.start(t, servedBuffer(await readFile(image), { etag: '"tls"' }), {
    key: await readFile(`${server}.key`, "utf8"),
    cert: await readFile(`${server}.pem`, "utf8"),
  });
  const url = https.url("/image.qcow2");
  assert.match(url, /^https:/);
  const out = join(dir, "out.raw");
  const trusted = await runCli(["convert", "-O", "raw", url, out], {
    ...process.env,
    NODE_EXTRA_CA_CERTS: `${ca}.pem`,
  });
  assert.equal(trusted.code, 0, trusted.stderr);
  assert.equal((await qemuCompare(raw, out)).code, 0);
  const refused = await runCli(["info", url], process.env);
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stderr, /https:\/\/127\.0\.0\.1:\d+\/image\.qcow2.*(certificate|self.signed|issuer)/i);
});

test("a block device is read with its size from the kernel, not stat (which says 0)", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "disk.raw");
  await makeRaw(raw, SIZE, mixedRegions(SIZE));
  const loop = (await runOk("losetup", ["--find", "--show", "--read-only", raw])).trim();
  t.after(() => runOk("losetup", ["--detach", loop]).then(() => undefined));
  assert.equal((await stat(loop)).size, 0, "stat gives a block device no size");
  const info = await runCli(["info", "--json", loop], process.env);
  assert.equal(info.code, 0, info.stderr);
  assert.equal((JSON.parse(info.stdout) as { virtualSize: number }).virtualSize, SIZE);
  const out = join(dir, "from-device.qcow2");
  const r = await runCli(["convert", "-O", "qcow2", loop, out], process.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await qemuCompare(raw, out)).code, 0, "the device's disk, every byte");
});
