/**
 * known_hosts reading and fingerprints (src/providers/eucalyptus/host-key-check.ts), checked against OpenSSH's
 * own ssh-keygen: its -l fingerprint, its -H hashing, and the @revoked / @cert-authority markers of sshd(8)'s
 * SSH_KNOWN_HOSTS FILE FORMAT.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostKeyVerifier, knownHostKeys, sshFingerprint } from "../../../src/providers/eucalyptus/host-key-check.js";

function keyPair(dir: string, name: string): { type: string; base64: string; blob: Buffer } {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, name)]);
  const [type, base64] = readFileSync(join(dir, `${name}.pub`), "utf8")
    .trim()
    .split(/\s+/) as [string, string];
  return { type, base64, blob: Buffer.from(base64, "base64") };
}

test("fingerprints, plain and hashed entries, ports, @revoked and @cert-authority", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "chromogenic-hostkeys-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = keyPair(dir, "a");
  const b = keyPair(dir, "b");
  const printed = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", join(dir, "a.pub")])
    .toString()
    .split(/\s+/)[1];
  assert.equal(sshFingerprint(a.blob), printed);

  const file = join(dir, "known_hosts");
  writeFileSync(file, `node1.example ${a.type} ${a.base64}\n[node2.example]:2222 ${b.type} ${b.base64}\n`);
  execFileSync("ssh-keygen", ["-q", "-H", "-f", file], { stdio: "ignore" });
  const hashed = readFileSync(file, "utf8");
  assert.doesNotMatch(hashed, /node1|node2/);
  assert.deepEqual(knownHostKeys(hashed, "node1.example", 22).accepted, [a.blob]);
  assert.deepEqual(knownHostKeys(hashed, "node2.example", 2222).accepted, [b.blob]);
  assert.deepEqual(knownHostKeys(hashed, "node2.example", 22).accepted, []);

  const marked = `@revoked node1.example ${a.type} ${a.base64}\n@cert-authority node1.example ${b.type} ${b.base64}\nnode1.example,10.0.0.1 ${b.type} ${b.base64}\n`;
  assert.deepEqual(knownHostKeys(marked, "node1.example", 22), { accepted: [b.blob], revoked: [a.blob] });
  writeFileSync(file, marked);
  const verifier = await hostKeyVerifier({ knownHostsPath: file }, "node1.example", 22);
  assert.equal(verifier.verify(b.blob), true);
  assert.equal(verifier.verify(a.blob), false);
  assert.match(verifier.refusal()!, /is marked @revoked in /);
  await assert.rejects(hostKeyVerifier({ fingerprint: "MD5:aa:bb" }, "h", 22), /is not of the form SHA256:/);
});
