/**
 * Nova snapshot through the provider against the real test stack (`aio.sh start all`: Nova with libvirt/qemu
 * TCG): boot the public tiny image as user-a, snapshot it, wait, download and verify it, then upload it as
 * user-b into RegionTwo.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { OpenStackProvider } from "../src/providers/openstack/openstack-provider.js";
import { OpenStackError } from "../src/providers/openstack/errors.js";
import { requireStack, stackCloud } from "./helpers/openstack-stack.js";
import { bootTinyServer, deleteServer } from "./helpers/openstack-servers.js";
import { qemuInfo, scratch } from "./helpers/tools.js";

before(requireStack);

test(
  "snapshot a running server, download it verified, upload it as user B into RegionTwo",
  { timeout: 10 * 60_000 },
  async (t) => {
    const dir = await scratch(t);
    const providerA = new OpenStackProvider(stackCloud("user-a"));
    const name = `chromo-test-vm-${randomUUID().slice(0, 8)}`;
    const serverId = await bootTinyServer(providerA, name);
    t.after(() => deleteServer(providerA.nova, serverId));

    const snapshot = await providerA.createImageFromInstance({ instance: name, imageName: `${name}-snap` });
    t.after(() => providerA.deleteImage(snapshot.id).catch(() => undefined));
    assert.equal(snapshot.state, "ready");
    assert.equal(snapshot.visibility, "private");
    assert.equal(snapshot.properties.image_type, "snapshot");
    assert.equal(snapshot.properties.instance_uuid, serverId);
    assert.ok(snapshot.hash && snapshot.sizeBytes);

    const file = join(dir, "snap.qcow2");
    await pipeline(providerA.downloadImage(snapshot.id), createWriteStream(file));
    const info = await qemuInfo(file);
    assert.equal(info.format, snapshot.diskFormat);
    assert.equal(info["virtual-size"], 2 ** 30);

    const providerB = new OpenStackProvider(stackCloud("user-b", "RegionTwo"));
    const copy = await providerB.uploadImage(
      { name: `${name}-copy`, diskFormat: snapshot.diskFormat!, sizeBytes: snapshot.sizeBytes },
      createReadStream(file),
    );
    t.after(() => providerB.deleteImage(copy.id).catch(() => undefined));
    assert.equal(copy.hash?.value, snapshot.hash.value);
    assert.equal(copy.visibility, "private");
  },
);

test("snapshot of a server that does not exist is a clear error", async () => {
  const provider = new OpenStackProvider(stackCloud("user-a"));
  await assert.rejects(
    provider.createImageFromInstance({ instance: "no-such-server-here", imageName: "x" }),
    (e: unknown) =>
      e instanceof OpenStackError && /snapshot of server "no-such-server-here": no such server/.test(e.message),
  );
});
