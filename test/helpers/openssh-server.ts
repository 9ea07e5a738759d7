/**
 * A real OpenSSH server (Debian's openssh-server, /usr/sbin/sshd) for the tests, on 127.0.0.1 on a free port:
 * its own ed25519 host key, public key authentication only (AuthorizedKeysFile pointing at the test's keys),
 * SFTP through internal-sftp, everything in a temporary directory removed by `stop`. Run as the test's user
 * (root in CI, which the node-controller copy logs in as). A missing sshd or ssh-keygen fails with what to
 * install, never a skip.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type AddressInfo } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

const SSHD = "/usr/sbin/sshd";

export interface OpenSshServer {
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly username: string;
  /** A scratch directory the test may fill (the node-controller tree goes here). */
  readonly dir: string;
  /** The server's host key fingerprint, as `ssh-keygen -lf` prints it. */
  readonly hostKeyFingerprint: string;
  /** A known_hosts file with the server's key for [127.0.0.1]:port. */
  readonly knownHostsPath: string;
  /** An authorized client key without a passphrase, and one with `passphrase`. */
  readonly clientKey: string;
  readonly encryptedClientKey: string;
  readonly passphrase: string;
  /** Established TCP connections to the server's port right now (from /proc/net/tcp). */
  establishedConnections(): number;
  stop(): Promise<void>;
}

function requireTool(path: string, pkg: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: install Debian's ${pkg} (it is in scripts/setup.sh's test_pkgs)`);
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Resolves once the server sends its SSH banner; rejects after `ms`. */
async function waitForBanner(port: number, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited with status ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("data", (data) => {
        socket.destroy();
        resolve(data.toString().startsWith("SSH-2.0-"));
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on port ${port} within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function keygen(path: string, passphrase: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "chromogenic-test", "-f", path]);
}

export async function startOpenSshServer(): Promise<OpenSshServer> {
  requireTool(SSHD, "openssh-server");
  requireTool("/usr/bin/ssh-keygen", "openssh-client");
  const dir = await mkdtemp(join(tmpdir(), "chromogenic-sshd-"));
  try {
    // sshd running as root wants its privilege-separation directory; the Debian service makes it at start.
    if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const hostKey = join(dir, "ssh_host_ed25519_key");
    keygen(hostKey, "");
    keygen(join(dir, "client"), "");
    const passphrase = "correct horse battery staple";
    keygen(join(dir, "client-encrypted"), passphrase);
    await writeFile(
      join(dir, "authorized_keys"),
      readFileSync(join(dir, "client.pub"), "utf8") + readFileSync(join(dir, "client-encrypted.pub"), "utf8"),
      { mode: 0o600 },
    );
    const port = await freePort();
    const config = join(dir, "sshd_config");
    await writeFile(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "Subsystem sftp internal-sftp",
        "LogLevel ERROR",
        "",
      ].join("\n"),
    );
    const child = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const killOnExit = (): void => void child.kill("SIGKILL");
    process.once("exit", killOnExit);
    try {
      await waitForBanner(port, child, 10_000);
    } catch (error) {
      child.kill("SIGKILL");
      throw new Error(`${(error as Error).message}: ${stderr.trim()}`);
    }
    const publicKey = readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/);
    const blob = Buffer.from(publicKey[1]!, "base64");
    const knownHostsPath = join(dir, "known_hosts");
    await writeFile(knownHostsPath, `[127.0.0.1]:${port} ${publicKey[0]} ${publicKey[1]}\n`);
    const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
    return {
      host: "127.0.0.1",
      port,
      username: userInfo().username,
      dir,
      hostKeyFingerprint: `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`,
      knownHostsPath,
      clientKey: readFileSync(join(dir, "client"), "utf8"),
      encryptedClientKey: readFileSync(join(dir, "client-encrypted"), "utf8"),
      passphrase,
      establishedConnections: () =>
        readFileSync("/proc/net/tcp", "utf8")
          .split("\n")
          .slice(1)
          .filter((line) => {
            const f = line.trim().split(/\s+/);
            return f[1]?.endsWith(`:${hexPort}`) && f[3] === "01";
          }).length,
      async stop() {
        process.removeListener("exit", killOnExit);
        if (child.exitCode === null) {
          const exited = new Promise((resolve) => child.once("exit", resolve));
          child.kill("SIGTERM");
          await exited;
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
