/**
 * Copies an instance-store instance's root disk file off its node controller over SFTP: the original
 * chromogenic's way of imaging such an instance (scp of /usr/local/eucalyptus/<owner>/<instance>/root), made
 * safe. The node's host key is checked before the key is offered (host-key-check.ts); the remote path is built
 * from checked components (node-instance-path.ts) and what it resolves to must stay inside the instance's
 * directory and be a regular file (a symlink out of it, a FIFO or a device is refused). The file is read with
 * many requests in flight, written under a temporary name beside the output (all-zero chunks left as holes, so a
 * sparse disk stays sparse) and renamed only once its size matches the remote file's and the remote file did
 * not change meanwhile. A run that stops keeps the temporary file and a small record of how far it got, durable
 * up to that point, so the next run with the same output resumes there when the remote file is the same size
 * and age. An AbortSignal destroys the SSH connection at once. The key's passphrase goes to ssh2 only and is
 * never part of a message.
 */
import { open, readFile, rename, rm, writeFile, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Client, type ConnectConfig, type SFTPWrapper, type Stats } from "ssh2";
import { AbortedError, ChromogenicError, TransferError, UsageError, VerificationError } from "../../util/errors.js";
import type { ProgressListener } from "../../util/events.js";
import { ProgressMeter } from "../../util/progress-meter.js";
import { hostKeyVerifier, type HostKeyPolicy } from "./host-key-check.js";
import { isWithin, nodeInstancePaths, type NodeInstanceLayout } from "./node-instance-path.js";

export interface NodeDiskCopyOptions {
  /** The node controller's host (findInstanceNode's nodeHost). */
  readonly host: string;
  readonly port?: number;
  /** "root" by default, as the original. */
  readonly username?: string;
  /** The private key's text (OpenSSH or PEM). */
  readonly privateKey: string | Buffer;
  /** The private key's passphrase, if it has one. */
  readonly passphrase?: string;
  /** How the node's host key is checked; one of the two is required. */
  readonly hostKey: HostKeyPolicy;
  /** The owning account (findInstanceNode's account): the instance directory's parent. */
  readonly owner: string;
  readonly instanceId: string;
  readonly layout?: NodeInstanceLayout;
  /** The local file to write; replaced only when the copy is whole. */
  readonly output: string;
  /** Keep an interrupted copy's temporary file and resume from it next time; true by default. */
  readonly resume?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
  /** Milliseconds to wait for the SSH handshake; 20 s by default. */
  readonly readyTimeoutMs?: number;
  /** Bytes per SFTP read; 256 KiB by default. */
  readonly chunkSize?: number;
  /** SFTP reads in flight; 16 by default. */
  readonly concurrency?: number;
  /** Contiguous bytes between two durable resume records; 32 MiB by default. */
  readonly checkpointBytes?: number;
}

export interface NodeDiskCopyResult {
  readonly output: string;
  /** The file actually read on the node, symlinks resolved. */
  readonly remotePath: string;
  readonly size: number;
  /** Where this run started: 0, or the offset an interrupted run had durably reached. */
  readonly resumedFrom: number;
}

/** What a resumable temporary file has durably received, and from which remote file. */
interface ResumeRecord {
  readonly remotePath: string;
  readonly size: number;
  readonly mtime: number;
  readonly done: number;
}

/** SFTP status code for a missing path (draft-ietf-secsh-filexfer-02 SSH_FX_NO_SUCH_FILE). */
const NO_SUCH_FILE = 2;

/** Runs an ssh2 callback-style call as a promise. */
function call<T>(fn: (cb: (err: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

function isMissing(error: unknown): boolean {
  return (error as { code?: unknown }).code === NO_SUCH_FILE;
}

/** Connects to the node with the key, checking its host key first. */
async function connect(options: NodeDiskCopyOptions, port: number): Promise<Client> {
  const where = `node controller ${options.host}:${port}`;
  const verifier = await hostKeyVerifier(options.hostKey, options.host, port);
  const client = new Client();
  const config: ConnectConfig = {
    host: options.host,
    port,
    username: options.username ?? "root",
    privateKey: options.privateKey,
    ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
    hostVerifier: verifier.verify,
    readyTimeout: options.readyTimeoutMs ?? 20_000,
    keepaliveInterval: 15_000,
  };
  const onAbort = (): void => void client.destroy();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let rejectOnAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      client.once("ready", resolve);
      client.once("error", reject);
      rejectOnAbort = () => reject(new AbortedError());
      options.signal?.addEventListener("abort", rejectOnAbort, { once: true });
      try {
        client.connect(config);
      } catch (error) {
        // ssh2 throws here for a key it cannot read (or decrypt): the message names the problem, not the secret.
        reject(new UsageError(`the private key for ${where} cannot be used: ${(error as Error).message}`));
      }
    });
  } catch (error) {
    client.destroy();
    if (options.signal?.aborted) throw new AbortedError(`copy from ${where} cancelled`);
    const refusal = verifier.refusal();
    if (refusal) throw new ChromogenicError(`refusing ${where}: ${refusal}`, "EREFUSED");
    if (error instanceof ChromogenicError) throw error;
    const message = (error as Error).message;
    if (/authentication methods failed/i.test(message)) {
      throw new ChromogenicError(`${where} refused the private key for user ${config.username}`, "EAUTH");
    }
    throw new TransferError(`cannot connect to ${where}: ${message}`, { cause: error });
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (rejectOnAbort) options.signal?.removeEventListener("abort", rejectOnAbort);
  }
  // Many small SFTP requests in flight: Nagle's delay would hold each of them back.
  client.setNoDelay(true);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  return client;
}

/** Finds the instance's root disk on the node: a regular file inside the instance's directory. */
async function findRootFile(
  sftp: SFTPWrapper,
  options: NodeDiskCopyOptions,
  where: string,
): Promise<{ path: string; stats: Stats }> {
  const paths = nodeInstancePaths(options.owner, options.instanceId, options.layout);
  let baseReal: string;
  let instanceReal: string;
  try {
    baseReal = await call<string>((cb) => sftp.realpath(paths.instancesDir, cb));
    instanceReal = await call<string>((cb) => sftp.realpath(paths.instanceDir, cb));
    // OpenSSH resolves a path whose last component is missing, so its existence is asked separately.
    const dir = await call<Stats>((cb) => sftp.stat(instanceReal, cb));
    if (!dir.isDirectory()) {
      throw new ChromogenicError(`${where}: ${paths.instanceDir} is not a directory; refused`, "EREFUSED");
    }
  } catch (error) {
    if (!isMissing(error)) throw error;
    throw new ChromogenicError(
      `${where} has no directory ${paths.instanceDir}: instance ${options.instanceId} of ${options.owner} is not on this node ` +
        "(or the node keeps its instances elsewhere: see the instances directory option)",
      "ENOENT",
    );
  }
  if (!isWithin(baseReal, instanceReal)) {
    throw new ChromogenicError(
      `${where}: ${paths.instanceDir} resolves to ${instanceReal}, outside ${baseReal}; refused`,
      "EREFUSED",
    );
  }
  for (const candidate of paths.candidates) {
    let link: Stats;
    try {
      link = await call<Stats>((cb) => sftp.lstat(candidate, cb));
    } catch (error) {
      if (isMissing(error)) continue;
      throw error;
    }
    let resolved = candidate;
    if (link.isSymbolicLink()) {
      try {
        resolved = await call<string>((cb) => sftp.realpath(candidate, cb));
      } catch (error) {
        if (!isMissing(error)) throw error;
        throw new ChromogenicError(`${where}: ${candidate} is a dangling symlink`, "EREFUSED");
      }
      if (!isWithin(instanceReal, resolved)) {
        throw new ChromogenicError(
          `${where}: ${candidate} is a symlink to ${resolved}, outside the instance's directory ${instanceReal}; refused`,
          "EREFUSED",
        );
      }
    }
    const stats = link.isSymbolicLink() ? await call<Stats>((cb) => sftp.stat(resolved, cb)) : link;
    if (stats.isFIFO())
      throw new ChromogenicError(`${where}: ${resolved} is a FIFO (named pipe), not a disk file; refused`, "EREFUSED");
    if (!stats.isFile()) throw new ChromogenicError(`${where}: ${resolved} is not a regular file; refused`, "EREFUSED");
    return { path: resolved, stats };
  }
  throw new ChromogenicError(
    `${where}: instance ${options.instanceId} has no root disk in ${paths.instanceDir} ` +
      `(looked for ${paths.candidates.map((c) => basename(c)).join(", ")})`,
    "ENOENT",
  );
}

async function readResumeRecord(path: string): Promise<ResumeRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(path, "utf8")) as Partial<ResumeRecord>;
    const counts = [r.size, r.mtime, r.done].every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
    return typeof r.remotePath === "string" && counts && r.done! <= r.size! ? (r as ResumeRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Copies the instance's root disk from its node controller to `options.output`. */
export async function copyInstanceDiskFromNode(options: NodeDiskCopyOptions): Promise<NodeDiskCopyResult> {
  const port = options.port ?? 22;
  const where = `node controller ${options.host}:${port}`;
  const chunkSize = options.chunkSize ?? 256 * 1024;
  const concurrency = options.concurrency ?? 16;
  const resume = options.resume ?? true;
  const checkpointBytes = options.checkpointBytes ?? 32 * 1024 * 1024;
  if (!(chunkSize >= 4096 && chunkSize <= 4 * 1024 * 1024) || !(concurrency >= 1 && concurrency <= 64)) {
    throw new UsageError("chunkSize must be 4 KiB … 4 MiB and concurrency 1 … 64");
  }
  nodeInstancePaths(options.owner, options.instanceId, options.layout); // refuse bad ids before connecting
  if (options.signal?.aborted) throw new AbortedError(`copy from ${where} cancelled`);
  const partial = join(dirname(options.output), `.${basename(options.output)}.partial`);
  const recordPath = `${partial}.json`;
  const client = await connect(options, port);
  let local: FileHandle | undefined;
  let remote: Buffer | undefined;
  let sftp: SFTPWrapper | undefined;
  let finished = false;
  try {
    sftp = await call<SFTPWrapper>((cb) => client.sftp(cb));
    const { path: remotePath, stats } = await findRootFile(sftp, options, where);
    const size = stats.size;
    const mtime = stats.mtime;
    remote = await call<Buffer>((cb) => sftp!.open(remotePath, "r", cb));
    const opened = await call<Stats>((cb) => sftp!.fstat(remote!, cb));
    if (!opened.isFile() || opened.size !== size) {
      throw new VerificationError(`${where}: ${remotePath} changed between being checked and opened; try again`);
    }

    const record = resume ? await readResumeRecord(recordPath) : undefined;
    let start = 0;
    if (record && record.remotePath === remotePath && record.size === size && record.mtime === mtime) {
      try {
        local = await open(partial, "r+");
        start = Math.min(record.done, size);
      } catch {
        start = 0;
      }
    }
    if (start === 0) {
      await local?.close();
      local = await open(partial, "w");
    }
    await local!.truncate(start); // what lies past the durable point is fetched again
    const file = local!;

    const meter = new ProgressMeter({
      phase: "download",
      total: size,
      listener: options.onProgress,
      startBytes: start,
    });
    const zero = Buffer.alloc(chunkSize);
    const finishedChunks = new Set<number>();
    let next = start;
    let contiguous = start;
    let checkpointed = start;
    let checkpoint: Promise<void> = Promise.resolve();
    let failed = false;

    const saveCheckpoint = (done: number): Promise<void> =>
      (checkpoint = checkpoint.then(async () => {
        await file.datasync();
        const data: ResumeRecord = { remotePath, size, mtime, done };
        await writeFile(recordPath, JSON.stringify(data));
      }));

    const worker = async (): Promise<void> => {
      const buffer = Buffer.allocUnsafe(chunkSize);
      while (!failed && next < size) {
        const position = next;
        const length = Math.min(chunkSize, size - position);
        next += length;
        let got = 0;
        while (got < length) {
          const n = await call<number>((cb) => sftp!.read(remote!, buffer, got, length - got, position + got, cb));
          if (n === 0) {
            throw new VerificationError(
              `${where}: ${remotePath} ended at byte ${position + got} of ${size}: it shrank while copied`,
            );
          }
          got += n;
        }
        if (!buffer.subarray(0, length).equals(zero.subarray(0, length))) {
          await file.write(buffer, 0, length, position);
        }
        meter.advance(length);
        finishedChunks.add(position);
        while (finishedChunks.delete(contiguous)) contiguous += Math.min(chunkSize, size - contiguous);
        if (resume && contiguous - checkpointed >= checkpointBytes) {
          checkpointed = contiguous;
          await saveCheckpoint(contiguous);
        }
      }
    };
    const workers = Array.from({ length: concurrency }, () =>
      worker().catch((error: unknown) => {
        failed = true;
        throw error;
      }),
    );
    const outcomes = await Promise.allSettled(workers);
    await checkpoint;
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failure) throw failure.reason;

    await file.truncate(size); // trailing holes
    await file.sync();
    const written = (await file.stat()).size;
    if (written !== size) throw new VerificationError(`${partial} holds ${written} bytes, the node's file ${size}`);
    const after = await call<Stats>((cb) => sftp!.stat(remotePath, cb));
    if (after.size !== size || after.mtime !== mtime) {
      throw new VerificationError(
        `${where}: ${remotePath} changed while it was copied (instance still running?); nothing kept`,
      );
    }
    await file.close();
    local = undefined;
    await rename(partial, options.output);
    await rm(recordPath, { force: true });
    meter.complete();
    finished = true;
    return { output: options.output, remotePath, size, resumedFrom: start };
  } catch (error) {
    if (options.signal?.aborted) throw new AbortedError(`copy from ${where} cancelled`);
    if (error instanceof ChromogenicError) throw error;
    throw new TransferError(`copy from ${where} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    await local?.close().catch(() => undefined);
    if (!finished && !resume) {
      await rm(partial, { force: true });
      await rm(recordPath, { force: true });
    }
    client.destroy();
  }
}
