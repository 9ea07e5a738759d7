/**
 * Checking a node controller's SSH host key before anything is sent to it. The original chromogenic ran scp
 * with `StrictHostKeyChecking=no`, so anyone on the path could pose as the node and be handed the root login;
 * here the key must match either a fingerprint the caller gives (`SHA256:…`, as `ssh-keygen -lf` prints it)
 * or an entry of an OpenSSH known_hosts file for the host (and port), plain or hashed (`|1|salt|hash`, HMAC-SHA1
 * of the host name as OpenSSH's HashKnownHosts writes it). A `@revoked` entry refuses its key; `@cert-authority`
 * lines are not host keys and are skipped. With neither a fingerprint nor a file there is no check to make, so
 * nothing connects.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { UsageError } from "../../util/errors.js";

export interface HostKeyPolicy {
  /** The expected host key fingerprint, "SHA256:<base64>" (padding optional). */
  readonly fingerprint?: string;
  /** An OpenSSH known_hosts file listing the node's key. */
  readonly knownHostsPath?: string;
}

/** The SHA256 fingerprint of a raw public key blob, as ssh-keygen prints it. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** The names a known_hosts line uses for `host` on `port`: "host" on 22, "[host]:port" otherwise. */
function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function hostMatches(field: string, name: string): boolean {
  for (const entry of field.split(",")) {
    if (entry.startsWith("|1|")) {
      const [, , salt, hash] = entry.split("|");
      if (!salt || !hash) continue;
      const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest();
      const want = Buffer.from(hash, "base64");
      if (want.length === mac.length && timingSafeEqual(mac, want)) return true;
    } else if (entry === name) {
      return true;
    }
  }
  return false;
}

/** The accepted and revoked key blobs for `host`:`port` in a known_hosts text. */
export function knownHostKeys(text: string, host: string, port: number): { accepted: Buffer[]; revoked: Buffer[] } {
  const name = hostPattern(host, port);
  const accepted: Buffer[] = [];
  const revoked: Buffer[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith("@")) marker = fields.shift();
    const [hosts, , blob] = fields;
    if (!hosts || !blob || marker === "@cert-authority" || !hostMatches(hosts, name)) continue;
    (marker === "@revoked" ? revoked : accepted).push(Buffer.from(blob, "base64"));
  }
  return { accepted, revoked };
}

export interface HostKeyVerifier {
  /** For ssh2's `hostVerifier`: true to go on with this key. */
  readonly verify: (key: Buffer) => boolean;
  /** Why the last key offered was refused, for the error the connection then ends with. */
  refusal(): string | undefined;
}

/** A verifier for `host`:`port` under `policy`; throws a UsageError when the policy names no key at all. */
export async function hostKeyVerifier(policy: HostKeyPolicy, host: string, port: number): Promise<HostKeyVerifier> {
  if (!policy.fingerprint && !policy.knownHostsPath) {
    throw new UsageError(
      `no host key to check node controller ${host}:${port} against: give its fingerprint (--node-host-key ` +
        "SHA256:…) or a known_hosts file (--node-known-hosts); keys are never accepted unchecked",
    );
  }
  const wanted = policy.fingerprint?.replace(/=+$/, "");
  if (wanted !== undefined && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(wanted)) {
    throw new UsageError(
      `host key fingerprint "${policy.fingerprint}" is not of the form SHA256:<43 base64 characters>`,
    );
  }
  let known: { accepted: Buffer[]; revoked: Buffer[] } | undefined;
  if (policy.knownHostsPath) {
    let text: string;
    try {
      text = await readFile(policy.knownHostsPath, "utf8");
    } catch (error) {
      throw new UsageError(`cannot read known_hosts file ${policy.knownHostsPath}: ${(error as Error).message}`);
    }
    known = knownHostKeys(text, host, port);
  }
  let why: string | undefined;
  return {
    verify(key: Buffer): boolean {
      const offered = sshFingerprint(key);
      if (known?.revoked.some((k) => k.equals(key))) {
        why = `its host key ${offered} is marked @revoked in ${policy.knownHostsPath}`;
        return false;
      }
      if (wanted !== undefined && offered === wanted) return true;
      if (known?.accepted.some((k) => k.equals(key))) return true;
      const against = [
        wanted === undefined ? undefined : `the given fingerprint ${wanted}`,
        known === undefined
          ? undefined
          : known.accepted.length
            ? `the key${known.accepted.length > 1 ? "s" : ""} for ${hostPattern(host, port)} in ${policy.knownHostsPath}`
            : `${policy.knownHostsPath}, which has no key for ${hostPattern(host, port)}`,
      ].filter(Boolean);
      why = `its host key ${offered} does not match ${against.join(" or ")}`;
      return false;
    },
    refusal: () => why,
  };
}
