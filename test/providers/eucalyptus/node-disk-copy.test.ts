/**
 * The node-controller copy against a real OpenSSH server (test/helpers/openssh-server.ts) on loopback holding
 * a node-controller-shaped tree: Eucalyptus 4.4's <instances>/work/<account>/<instance>/disk and the original's
 * /usr/local/eucalyptus/<owner>/<instance>/root layout, a sparse 96 MiB disk with data scattered in it, and the
 * hostile cases: a symlink out of the tree, a FIFO, a wrong host key, a missing instance, an abort mid-copy.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, open, rm, symlink, writeFile, readdir } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  copyInstanceDiskFromNode,
  type NodeDiskCopyOptions,
} from "../../../src/providers/eucalyptus/node-disk-copy.js";
import type { ProgressEvent } from "../../../src/util/events.js";
import { startOpenSshServer, type OpenSshServer } from "../../helpers/openssh-server.js";

const ACCOUNT = "123456789012";
const SIZE = 96 * 1024 * 1024;
let sshd: OpenSshServer;
let work: string;
let out: string;
let diskSha1: string;

async function sha1(path: string): Promise<string> {
  const hash = createHash("sha1");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** A sparse disk of SIZE bytes with 1 MiB of random data at a few offsets (and in its last bytes). */
async function sparseDisk(path: string): Promise<void> {
  const file = await open(path, "w");
  await file.truncate(SIZE);
  for (const at of [0, 5 * 1024 * 1024 + 123, 40 * 1024 * 1024, SIZE - 1024 * 1024]) {
    await file.write(randomBytes(1024 * 1024), 0, 1024 * 1024, at);
  }
  await file.close();
}

before(async () => {
  sshd = await startOpenSshServer();
  work = join(sshd.dir, "node", "instances", "work");
  const inst = (id: string) => join(work, ACCOUNT, id);
  await mkdir(inst("i-00000001"), { recursive: true });
  await sparseDisk(join(inst("i-00000001"), "disk"));
  diskSha1 = await sha1(join(inst("i-00000001"), "disk"));
  await mkdir(inst("i-00000002"), { recursive: true });
  await symlink("/etc/passwd", join(inst("i-00000002"), "disk"));
  await mkdir(inst("i-00000003"), { recursive: true });
  execFileSync("mkfifo", [join(inst("i-00000003"), "disk")]);
  await mkdir(inst("i-00000004"), { recursive: true });
  await writeFile(join(inst("i-00000004"), "disk.img"), randomBytes(300_000));
  await symlink("disk.img", join(inst("i-00000004"), "disk"));
  const legacy = join(sshd.dir, "node", "usr-local-eucalyptus", ACCOUNT, "i-0000000a");
  await mkdir(legacy, { recursive: true });
  await writeFile(join(legacy, "root"), randomBytes(200_000));
  out = await mkdtemp(join(tmpdir(), "chromogenic-nc-copy-"));
});
after(async () => {
  await sshd?.stop();
  if (out) await rm(out, { recursive: true, force: true });
});

const base = (over: Partial<NodeDiskCopyOptions> = {}): NodeDiskCopyOptions => ({
  host: sshd.host,
  port: sshd.port,
  username: sshd.username,
  privateKey: sshd.clientKey,
  hostKey: { knownHostsPath: sshd.knownHostsPath },
  owner: ACCOUNT,
  instanceId: "i-00000001",
  layout: { instancesDir: work },
  output: join(out, "copy.img"),
  ...over,
});

test("a sparse 96 MiB root disk is copied identically, stays sparse, with progress reported", async () => {
  const events: ProgressEvent[] = [];
  const output = join(out, "whole.img");
  const result = await copyInstanceDiskFromNode(base({ output, onProgress: (e) => events.push(e) }));
  assert.deepEqual(result, {
    output,
    remotePath: join(work, ACCOUNT, "i-00000001", "disk"),
    size: SIZE,
    resumedFrom: 0,
  });
  assert.equal(statSync(output).size, SIZE);
  assert.equal(await sha1(output), diskSha1);
  assert.ok(statSync(output).blocks * 512 < 16 * 1024 * 1024, "the zero ranges were left as holes");
  assert.equal(events.at(-1)?.bytes, SIZE);
  assert.equal(events.at(-1)?.phase, "download");
  assert.deepEqual(
    (await readdir(out)).filter((n) => n.startsWith(".")),
    [],
    "no temporary file left",
  );
});

test("the host key is checked: a matching fingerprint passes, a wrong one is refused before logging in", async () => {
  const output = join(out, "fp.img");
  const byFingerprint = await copyInstanceDiskFromNode(
    base({ output, hostKey: { fingerprint: sshd.hostKeyFingerprint }, instanceId: "i-00000004" }),
  );
  assert.equal(byFingerprint.size, 300_000);
  const wrong = `SHA256:${createHash("sha256").update("another key").digest("base64").replace(/=+$/, "")}`;
  const refusedOut = join(out, "refused.img");
  await assert.rejects(
    copyInstanceDiskFromNode(base({ output: refusedOut, hostKey: { fingerprint: wrong } })),
    (error: unknown) => {
      assert.equal((error as { code?: string }).code, "EREFUSED");
      assert.equal(
        (error as Error).message,
        `refusing node controller 127.0.0.1:${sshd.port}: its host key ${sshd.hostKeyFingerprint} does not match the given fingerprint ${wrong}`,
      );
      return true;
    },
  );
  const emptyKnownHosts = join(out, "known_hosts_other");
  await writeFile(
    emptyKnownHosts,
    `[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`,
  );
  await assert.rejects(
    copyInstanceDiskFromNode(base({ output: refusedOut, hostKey: { knownHostsPath: emptyKnownHosts } })),
    /refusing node controller .*: its host key SHA256:\S+ does not match .*known_hosts_other, which has no key for \[127\.0\.0\.1\]:\d+/,
  );
  await assert.rejects(
    copyInstanceDiskFromNode(base({ output: refusedOut, hostKey: {} })),
    /keys are never accepted unchecked/,
  );
  // A known_hosts file hashed by OpenSSH's own ssh-keygen -H is read too.
  const hashed = join(out, "known_hosts_hashed");
  await writeFile(hashed, readFileSync(sshd.knownHostsPath));
  execFileSync("ssh-keygen", ["-q", "-H", "-f", hashed], { stdio: "ignore" });
  assert.match(readFileSync(hashed, "utf8"), /^\|1\|/);
  const viaHashed = await copyInstanceDiskFromNode(
    base({ output: join(out, "hashed.img"), hostKey: { knownHostsPath: hashed }, instanceId: "i-00000004" }),
  );
  assert.equal(viaHashed.size, 300_000);
  assert.equal(existsSync(refusedOut), false);
});

test("a passphrase-protected key logs in; a wrong passphrase is a clear error that does not show it", async () => {
  const output = join(out, "enc.img");
  const opts = { output, instanceId: "i-00000004", privateKey: sshd.encryptedClientKey };
  assert.equal((await copyInstanceDiskFromNode(base({ ...opts, passphrase: sshd.passphrase }))).size, 300_000);
  await assert.rejects(
    copyInstanceDiskFromNode(base({ ...opts, output: join(out, "x.img"), passphrase: "hunter2-wrong" })),
    (error: unknown) => {
      assert.equal((error as { code?: string }).code, "EUSAGE");
      assert.match((error as Error).message, /^the private key for node controller 127\.0\.0\.1:\d+ cannot be used: /);
      assert.doesNotMatch((error as Error).message, /hunter2|horse/);
      return true;
    },
  );
});

test("the original's layout (<base>/<owner>/<instance>/root) is found with its base directory", async () => {
  const output = join(out, "legacy.img");
  const result = await copyInstanceDiskFromNode(
    base({
      output,
      instanceId: "i-0000000a",
      layout: { instancesDir: join(sshd.dir, "node", "usr-local-eucalyptus") },
    }),
  );
  assert.equal(result.remotePath, join(sshd.dir, "node", "usr-local-eucalyptus", ACCOUNT, "i-0000000a", "root"));
  assert.equal(result.size, 200_000);
});

test("a symlink out of the instance directory, a FIFO, a missing instance and a '..' owner are refused", async () => {
  const output = join(out, "bad.img");
  await assert.rejects(copyInstanceDiskFromNode(base({ output, instanceId: "i-00000002" })), (error: unknown) => {
    assert.equal((error as { code?: string }).code, "EREFUSED");
    assert.match(
      (error as Error).message,
      /i-00000002\/disk is a symlink to \/etc\/passwd, outside the instance's directory .*; refused/,
    );
    return true;
  });
  await assert.rejects(
    copyInstanceDiskFromNode(base({ output, instanceId: "i-00000003" })),
    /i-00000003\/disk is a FIFO \(named pipe\), not a disk file; refused/,
  );
  await assert.rejects(copyInstanceDiskFromNode(base({ output, instanceId: "i-0badc0de" })), (error: unknown) => {
    assert.equal((error as { code?: string }).code, "ENOENT");
    assert.match(
      (error as Error).message,
      /node controller 127\.0\.0\.1:\d+ has no directory .*\/work\/123456789012\/i-0badc0de: instance i-0badc0de of 123456789012 is not on this node/,
    );
    return true;
  });
  await assert.rejects(
    copyInstanceDiskFromNode(base({ output, owner: ".." })),
    /instance owner "\.\." is not an account or user id/,
  );
  await assert.rejects(
    copyInstanceDiskFromNode(base({ output, layout: { instancesDir: work, rootFileNames: ["../x"] } })),
    /must be a plain file name/,
  );
  assert.equal(existsSync(output), false);
});

test("an abort mid-copy closes the connection and leaves nothing under the output name; the next run resumes", async () => {
  const output = join(out, "aborted.img");
  const controller = new AbortController();
  let abortedAt = 0;
  const slow = base({
    output,
    chunkSize: 64 * 1024,
    concurrency: 1,
    checkpointBytes: 1024 * 1024,
    signal: controller.signal,
    onProgress: (e) => {
      if (!abortedAt && e.bytes >= 8 * 1024 * 1024) {
        abortedAt = e.bytes;
        controller.abort();
      }
    },
  });
  await assert.rejects(
    copyInstanceDiskFromNode(slow),
    (error: unknown) => (error as { code?: string }).code === "EABORTED",
  );
  assert.ok(abortedAt > 0 && abortedAt < SIZE, "the abort came mid-copy");
  assert.equal(existsSync(output), false);
  for (let i = 0; i < 50 && sshd.establishedConnections() > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(sshd.establishedConnections(), 0, "the SSH connection was closed");
  const resumed = await copyInstanceDiskFromNode(base({ output }));
  assert.ok(
    resumed.resumedFrom >= 1024 * 1024 && resumed.resumedFrom <= abortedAt,
    `resumed from ${resumed.resumedFrom}`,
  );
  assert.equal(await sha1(output), diskSha1);
  assert.deepEqual(
    (await readdir(out)).filter((n) => n.includes("aborted.img.partial")),
    [],
  );
});
