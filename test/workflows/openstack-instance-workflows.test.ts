/**
 * Workflows that start from a running server, against the real stack (Nova on libvirt/qemu TCG, `aio.sh start
 * all`): image create (temporary snapshot deleted, new image private with its properties), export --instance
 * to qcow2 and OVA checked by qemu-img against the snapshot, and a migrate --instance killed mid-upload then
 * resumed (one image in the destination, no snapshot left in the source). Three snapshots in all: TCG is slow.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { OpenStackProvider } from "../../src/providers/openstack/openstack-provider.js";
import { requireStack, stackCloud } from "../helpers/openstack-stack.js";
import { bootTinyServer, deleteServer } from "../helpers/openstack-servers.js";
import { jsonLines, startThrottleProxy, writeCloudsYaml, type ThrottleProxy } from "./helpers/workflow-stack.js";
import {
  assertOneWholeCopy,
  assertSameDisk,
  cliOk,
  doneEvent as done,
  downloadTo,
  exportArgs,
  killDuringUpload,
  migrateArgs,
  ovaDisk,
  resumeJob,
  scratchDir,
  startJob,
  type WorkflowEnv,
} from "./helpers/workflow-steps.js";

const MiB = 2 ** 20;
const tag = randomUUID().slice(0, 8);
const a1 = new OpenStackProvider(stackCloud("user-a", "RegionOne"));
const a2 = new OpenStackProvider(stackCloud("user-a", "RegionTwo"));
let dir: string;
let env: WorkflowEnv;
let serverId = "";
const serverName = `chromo-wf-vm-${tag}`;
let slowDestination: ThrottleProxy;
const made: [OpenStackProvider, string][] = [];

before(async () => {
  await requireStack();
  dir = await scratchDir("chromo-wfi-");
  slowDestination = await startThrottleProxy({ host: "127.0.0.1", port: 9293 }, 512 * 1024);
  env = {
    state: join(dir, "state"),
    clouds: await writeCloudsYaml(dir, {
      a1: { user: "user-a", region: "RegionOne" },
      a2slow: { user: "user-a", region: "RegionTwo", imageEndpoint: slowDestination.url },
    }),
  };
  serverId = await bootTinyServer(a1, serverName);
});

after(async () => {
  await slowDestination?.close();
  if (serverId) await deleteServer(a1.nova, serverId);
  for (const [p, id] of made) await p.deleteImage(id).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function snapshotsLeft(): Promise<string[]> {
  const out: string[] = [];
  for await (const i of a1.listImages()) if (i.name.startsWith("chromogenic-snapshot-")) out.push(`${i.name} ${i.id}`);
  return out;
}

test(
  "image create from a running server: temporary snapshot deleted, new image private with its properties",
  { timeout: 10 * 60_000 },
  async () => {
    const name = `chromo-wf-created-${tag}`;
    const r = await cliOk(env, [
      "image",
      "create",
      "--cloud",
      "a1",
      serverName,
      name,
      "--property",
      "purpose=wf-test",
      "--json",
    ]);
    const result = done(r.stdout);
    made.push([a1, result.image.id]);
    assert.ok(jsonLines(r.stdout).some((e) => e.event === "progress" && e.phase === "snapshot-wait"));
    assert.equal(result.snapshotDeleted, true);
    assert.equal(await a1.getImage(result.snapshot!.id), undefined, "the temporary snapshot is gone");
    const image = (await a1.getImage(result.image.id))!;
    assert.equal(image.visibility, "private");
    assert.equal(image.properties.purpose, "wf-test");
    assert.equal(image.properties.image_type, undefined, "not marked as a snapshot");
    assert.equal(image.properties.instance_uuid, undefined);
    assert.equal(image.state, "ready");
    assert.deepEqual(await snapshotsLeft(), []);
  },
);

test(
  "export --instance to qcow2 and to OVA: both pass qemu-img check and compare with the snapshot",
  { timeout: 10 * 60_000 },
  async () => {
    const q = await cliOk(
      env,
      exportArgs(
        { cloud: "a1", instance: serverId, format: "qcow2" },
        "--keep-snapshot",
        "--json",
        join(dir, "vm.qcow2"),
      ),
    );
    const snapshot = done(q.stdout).snapshot!;
    made.push([a1, snapshot.id]);
    const snapFile = await downloadTo(a1, snapshot.id, join(dir, "snapshot.img"));
    await assertSameDisk(snapFile, join(dir, "vm.qcow2"));

    await cliOk(
      env,
      exportArgs({ cloud: "a1", image: snapshot.id, format: "ova" }, "--target", "virtualbox", join(dir, "vm.ova")),
    );
    await assertSameDisk(snapFile, await ovaDisk(join(dir, "vm.ova"), dir));
    await a1.deleteImage(snapshot.id);
  },
);

test(
  "migrate --instance killed during the upload, then resume: one image in the destination, no snapshot left",
  { timeout: 10 * 60_000 },
  async () => {
    const name = `chromo-wf-vm-copy-${tag}`;
    const run = await startJob(
      env,
      migrateArgs({ from: "a1", to: "a2slow", instance: serverName, name, format: "qcow2" }, "--json"),
    );
    const { job, firstId } = await killDuringUpload(env, run, a2, { waitMs: 8 * 60_000, settleMs: 1000 });
    assert.match(job, /^migrate-/);
    assert.equal((await snapshotsLeft()).length, 1, "the killed job left its snapshot (resume needs it)");

    slowDestination.rate = 200 * MiB;
    const { result: r } = await resumeJob(env, job);
    made.push([a2, r.image.id]);
    await assertOneWholeCopy(a2, name, r.image.id, firstId);
    assert.deepEqual(await snapshotsLeft(), [], "no temporary snapshot remains in the source");
  },
);
