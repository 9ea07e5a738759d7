/**
 * Glance v2 through our client against the real test stack: upload and verified download, private by
 * default, sharing by members, a second user uploading into the other region, failed uploads cleaned up,
 * a refused format, pagination, properties and tags, a dropped download resumed with Range, and a corrupted
 * byte detected.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { open } from "node:fs/promises";
import { KeystoneSession } from "../src/providers/openstack/keystone-session.js";
import { GlanceClient } from "../src/providers/openstack/glance-client.js";
import { downloadImage } from "../src/providers/openstack/image-download.js";
import { ImageVerificationError, OpenStackError } from "../src/providers/openstack/errors.js";
import { OpenStackProvider } from "../src/providers/openstack/openstack-provider.js";
import { importImage, importMethods } from "../src/providers/openstack/glance-image-import.js";
import { chunksOf, collect, requireStack, stackCloud, startTcpProxy } from "./helpers/openstack-stack.js";
import { pattern } from "./helpers/tools.js";

before(requireStack);

const MiB = 2 ** 20;
const uniqueName = (what: string) => `chromo-test-${what}-${randomUUID().slice(0, 8)}`;

function glanceAs(user: "user-a" | "user-b" | "admin", region = "RegionOne", extraEnv: Record<string, string> = {}) {
  return new GlanceClient(new KeystoneSession(stackCloud(user, region, extraEnv)));
}

/** Uploads `data` as a raw image and deletes it after the test. */
async function uploaded(
  t: { after(fn: () => Promise<void>): void },
  glance: GlanceClient,
  data: Buffer,
  name = uniqueName("img"),
) {
  const image = await glance.uploadImage({ name, diskFormat: "raw" }, chunksOf(data), { size: data.length });
  t.after(() => glance.deleteImage(image.id, { ignoreMissing: true }));
  return image;
}

test("upload as a stream with progress, private by default, then a verified download", async (t) => {
  const glance = glanceAs("user-a");
  const data = pattern(9 * MiB + 333, 21);
  const progress: number[] = [];
  const name = uniqueName("roundtrip");
  const image = await glance.uploadImage({ name, diskFormat: "raw" }, chunksOf(data), {
    size: data.length,
    onProgress: (p) => progress.push(p.bytes),
  });
  t.after(() => glance.deleteImage(image.id, { ignoreMissing: true }));
  assert.equal(image.status, "active");
  assert.equal(image.visibility, "private");
  assert.equal(image.size, data.length);
  assert.equal(image.os_hash_algo, "sha512");
  assert.equal(image.os_hash_value, createHash("sha512").update(data).digest("hex"));
  assert.equal(progress.at(-1), data.length);
  assert.ok(progress.length > 3, "progress reported along the way");

  assert.equal((await glance.findImage(name))?.id, image.id);
  const downloaded = await collect(downloadImage(glance, image.id));
  assert.ok(downloaded.equals(data));

  // Another project does not see a private image, neither in lists nor by id.
  const other = glanceAs("user-b");
  assert.equal(await other.findImage(name), undefined);
  await assert.rejects(other.getImage(image.id), (e: unknown) => e instanceof OpenStackError && e.status === 404);
});

test("sharing by members: proj-b sees the image once it accepts, and can download it", async (t) => {
  const a = glanceAs("user-a");
  const b = glanceAs("user-b");
  const bProject = (await b.service.session.scope()).projectId!;
  const data = pattern(2 * MiB + 5, 22);
  const image = await uploaded(t, a, data);

  const member = await a.addMember(image.id, bProject);
  assert.equal(member.status, "pending");
  assert.equal((await a.getImage(image.id)).visibility, "shared");
  // Pending: visible by id, but not in B's default list.
  const listedBefore = [];
  for await (const i of b.listImages()) listedBefore.push(i.id);
  assert.ok(!listedBefore.includes(image.id));

  assert.equal((await b.setMemberStatus(image.id, bProject, "accepted")).status, "accepted");
  const listedAfter = [];
  for await (const i of b.listImages()) listedAfter.push(i.id);
  assert.ok(listedAfter.includes(image.id));
  assert.ok((await collect(downloadImage(b, image.id))).equals(data));
  assert.deepEqual(
    (await a.listMembers(image.id)).map((m) => [m.member_id, m.status]),
    [[bProject, "accepted"]],
  );
});

test("user B copies user A's image from RegionOne into RegionTwo, verified at both ends", async (t) => {
  const a = glanceAs("user-a");
  const bRegionTwo = glanceAs("user-b", "RegionTwo");
  const data = pattern(5 * MiB + 17, 23);
  const source = await uploaded(t, a, data);
  await a.addMember(source.id, (await bRegionTwo.service.session.scope()).projectId!);

  const b = glanceAs("user-b");
  const copy = await bRegionTwo.uploadImage(
    { name: uniqueName("region-two-copy"), diskFormat: "raw", properties: { source_image: source.id } },
    downloadImage(b, source.id),
    { size: source.size ?? undefined },
  );
  t.after(() => bRegionTwo.deleteImage(copy.id, { ignoreMissing: true }));
  assert.equal(copy.status, "active");
  assert.equal(copy.owner, (await bRegionTwo.service.session.scope()).projectId);
  assert.equal(copy.os_hash_value, source.os_hash_value);
  assert.equal(copy.visibility, "private");
  assert.equal(copy.source_image, source.id);
  // RegionTwo is a separate Glance: the source id does not exist there.
  await assert.rejects(bRegionTwo.getImage(source.id), /HTTP 404/);
});

test("a failed upload deletes its queued image", async () => {
  const glance = glanceAs("user-a");
  const name = uniqueName("failed-upload");
  async function* breaksHalfway() {
    yield pattern(MiB, 24);
    throw new Error("the source disk went away");
  }
  await assert.rejects(
    glance.uploadImage({ name, diskFormat: "raw" }, breaksHalfway()),
    /PUT \/v2\/images\/\{id\}\/file: reading the data to upload failed after 1048576 bytes: the source disk went away/,
  );
  assert.equal(await glance.findImage(name), undefined);

  // Fewer bytes than announced: Glance (Zed, file store) stores them anyway; the client refuses, deletes.
  const name2 = uniqueName("short-upload");
  await assert.rejects(
    glance.uploadImage({ name: name2, diskFormat: "raw" }, chunksOf(pattern(MiB, 25)), { size: 2 * MiB }),
    /the data had 1048576 bytes, 2097152 were announced/,
  );
  assert.equal(await glance.findImage(name2), undefined);
});

test("Glance refusing a disk format is a clear 400 and creates nothing", async () => {
  const glance = glanceAs("user-a");
  const name = uniqueName("bad-format");
  await assert.rejects(
    glance.uploadImage({ name, diskFormat: "floppy-tape" }, chunksOf(pattern(1024, 26))),
    (e: unknown) =>
      e instanceof OpenStackError &&
      e.status === 400 &&
      /cloud "envvars": glance POST \/v2\/images → HTTP 400: .*'floppy-tape' is not one of/.test(e.message),
  );
  assert.equal(await glance.findImage(name), undefined);
});

test("the paginator follows Glance's next links; properties and tags", async (t) => {
  const glance = glanceAs("user-a");
  const tag = uniqueName("tag");
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const image = await glance.createImage({
      name: uniqueName(`page-${i}`),
      diskFormat: "qcow2",
      tags: [tag],
      properties: { chromogenic_test: String(i) },
    });
    t.after(() => glance.deleteImage(image.id, { ignoreMissing: true }));
    ids.push(image.id);
  }
  const seen = [];
  for await (const image of glance.listImages({ tag, pageSize: 1 })) seen.push(image.id);
  assert.deepEqual(seen.sort(), [...ids].sort());

  const updated = await glance.updateImage(ids[0]!, { set: { os_distro: "debian", chromogenic_test: "x" } });
  assert.equal(updated.os_distro, "debian");
  assert.equal(updated.chromogenic_test, "x");
  const removed = await glance.updateImage(ids[0]!, { remove: ["os_distro"] });
  assert.equal(removed.os_distro, undefined);
  await glance.addTag(ids[0]!, "extra");
  assert.deepEqual([...(await glance.getImage(ids[0]!)).tags].sort(), ["extra", tag].sort());
  await glance.removeTag(ids[0]!, "extra");
  assert.deepEqual((await glance.getImage(ids[0]!)).tags, [tag]);
});

test("a download cut in the middle resumes with Range and ends verified", async (t) => {
  const owner = glanceAs("user-a");
  const data = pattern(12 * MiB + 99, 27);
  const image = await uploaded(t, owner, data);
  const proxy = await startTcpProxy({ host: "127.0.0.1", port: 9292 }, { dropOnceAfterBytes: 5 * MiB });
  t.after(() => proxy.close());
  const viaProxy = glanceAs("user-a", "RegionOne", { OS_IMAGE_ENDPOINT_OVERRIDE: proxy.url });
  const resumes: number[] = [];
  const downloaded = await collect(downloadImage(viaProxy, image.id, { onProgress: (p) => resumes.push(p.resumes) }));
  assert.ok(downloaded.equals(data));
  assert.ok(proxy.connections >= 2, "a second connection was needed");
  assert.ok((resumes.at(-1) ?? 0) >= 1, "the download reports a resume");
});

test("a corrupted byte in the stored image is detected", async (t) => {
  const glance = glanceAs("user-a");
  const data = pattern(3 * MiB, 28);
  const image = await uploaded(t, glance, data);
  // Corrupt the bytes at rest in RegionOne's file store (test/infra/openstack/aio.sh: /var/lib/glance/g1).
  const stored = await open(`/var/lib/glance/g1/images/${image.id}`, "r+");
  try {
    const b = Buffer.alloc(1);
    await stored.read(b, 0, 1, 2 * MiB + 7);
    b[0]! ^= 0x01;
    await stored.write(b, 0, 1, 2 * MiB + 7);
  } finally {
    await stored.close();
  }
  await assert.rejects(
    collect(downloadImage(glance, image.id)),
    (e: unknown) =>
      e instanceof ImageVerificationError &&
      /sha512 of the downloaded data is [0-9a-f]+, Glance records/.test(e.message),
  );
});

test("the provider interface over Glance: upload, get, list, download, delete", async () => {
  const provider = new OpenStackProvider(stackCloud("user-a"));
  assert.equal((await provider.capabilities()).diskFormats[0], "qcow2");
  const data = pattern(MiB + 1, 29);
  const name = uniqueName("provider");
  const image = await provider.uploadImage({ name, diskFormat: "raw", sizeBytes: data.length }, chunksOf(data));
  try {
    assert.equal(image.state, "ready");
    assert.equal(image.visibility, "private");
    assert.equal((await provider.getImage(name))?.id, image.id);
    let listed = false;
    for await (const i of provider.listImages()) listed ||= i.id === image.id;
    assert.ok(listed);
    assert.ok((await collect(provider.downloadImage(image.id))).equals(data));
  } finally {
    await provider.deleteImage(image.id);
  }
  assert.equal(await provider.getImage(name), undefined);
});

test("a disk whose only loader is UEFI's is marked hw_firmware_type=uefi; a property given wins", async (t) => {
  const provider = new OpenStackProvider(stackCloud("user-a"));
  const data = pattern(MiB, 31);
  const uefi = await provider.uploadImage(
    { name: uniqueName("uefi-only"), diskFormat: "raw", sizeBytes: data.length, guest: { firmware: "uefi" } },
    chunksOf(data),
  );
  t.after(() => provider.deleteImage(uefi.id));
  assert.equal(uefi.properties.hw_firmware_type, "uefi", "Nova would start it under BIOS otherwise");
  const both = await provider.uploadImage(
    { name: uniqueName("hybrid"), diskFormat: "raw", sizeBytes: data.length, guest: { firmware: "both" } },
    chunksOf(data),
  );
  t.after(() => provider.deleteImage(both.id));
  assert.equal(both.properties.hw_firmware_type, undefined, "a disk that boots either way is left to Nova's default");
  const said = await provider.uploadImage(
    {
      name: uniqueName("said-bios"),
      diskFormat: "raw",
      sizeBytes: data.length,
      guest: { firmware: "uefi" },
      properties: { hw_firmware_type: "bios" },
    },
    chunksOf(data),
  );
  t.after(() => provider.deleteImage(said.id));
  assert.equal(said.properties.hw_firmware_type, "bios");
});

test("interoperable import: glance-direct stages and imports, verified", async (t) => {
  const glance = glanceAs("user-a", "RegionTwo");
  assert.ok((await importMethods(glance)).includes("glance-direct"));
  const data = pattern(4 * MiB + 9, 30);
  const image = await importImage(
    glance,
    { name: uniqueName("import"), diskFormat: "raw" },
    { method: "glance-direct" },
    { data: chunksOf(data), size: data.length },
  );
  t.after(() => glance.deleteImage(image.id, { ignoreMissing: true }));
  assert.equal(image.status, "active");
  assert.equal(image.visibility, "private");
  assert.equal(image.os_hash_value, createHash("sha512").update(data).digest("hex"));
  assert.ok((await collect(downloadImage(glance, image.id))).equals(data));
});
