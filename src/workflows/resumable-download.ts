/**
 * A source image downloaded into a local file, resumable: a later run of the job continues with an HTTP Range
 * request where this one stopped, and the file is verified against the source's recorded hash. A store that reads
 * an image in pieces (a Eucalyptus bundle's parts, which gzip makes it read from the first every time) keeps the
 * verified pieces in the job's work folder, so that a later run fetches only those it had not got; they are
 * removed once the download is complete (--no-part-cache: not kept).
 */
import { open, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { hashFile, writeAll, writeSparse } from "./job-files.js";
import type { JobRun } from "./job-run.js";
import { TransferError, VerificationError } from "../util/errors.js";

/** How often (in bytes downloaded) the file is synced and its length saved in the state, for a resume. */
const CHECKPOINT_BYTES = 64 * 2 ** 20;

/**
 * Downloads the source's bytes into `path`, resuming where an earlier run stopped (Range), verified against
 * the source's recorded hash: as the bytes pass on a fresh download, by reading the file back after a resume.
 * `sparse` leaves zero blocks as holes (a raw disk); its progress is checkpointed in the state after a sync.
 */
export async function downloadToFile(run: JobRun, path: string, sparse: boolean, mode = 0o600): Promise<void> {
  const src = run.state.source!;
  if (run.state.done.includes(`download:${path}`)) return;
  run.state.files.download = path;
  let offset = 0;
  const present = await stat(path).catch(() => undefined);
  if (present) offset = sparse ? Math.min(run.state.bytes.download, present.size) : present.size;
  if (offset > src.size) offset = 0;
  if (!present) run.state.bytes.download = 0;
  await run.save();
  run.phase("download", "start", offset > 0 ? `resuming at byte ${offset}` : undefined);
  const meter = run.meter("download", src.size, offset);
  const handle = await open(path, present ? "r+" : "w", mode);
  try {
    let position = offset;
    let checkpoint = offset;
    const data = run.source.downloadImage(src.id, {
      signal: run.signal,
      offset,
      ...(run.request.partCache === false ? {} : { partCache: partCacheOf(run) }),
      onProgress: (b, t) => meter.set(b, t),
    });
    for await (const chunk of data) {
      const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (sparse) await writeSparse(handle, buf, position);
      else await writeAll(handle, buf, position);
      position += buf.length;
      if (position - checkpoint >= CHECKPOINT_BYTES) {
        await handle.datasync();
        checkpoint = position;
        run.state.bytes.download = position;
        await run.save();
      }
    }
    if (position !== src.size) throw new TransferError(`download ended at byte ${position} of ${src.size}`);
    await handle.truncate(src.size);
    await handle.sync();
  } finally {
    await handle.close();
  }
  meter.complete();
  run.phase("download", "end");
  if (offset > 0 && src.hash) {
    // The provider verified nothing of a resumed stream: check the assembled file as a whole.
    run.phase("verify", "start", `${src.hash.algorithm} of the resumed download`);
    const actual = await hashFile(path, src.hash.algorithm, run.meter("verify", src.size), run.signal);
    run.phase("verify", "end");
    if (actual !== src.hash.value.toLowerCase()) {
      await rm(path, { force: true });
      run.state.bytes.download = 0;
      await run.save();
      throw new VerificationError(
        `the resumed download's ${src.hash.algorithm} differs from the source's; it was removed`,
      );
    }
  }
  run.state.bytes.download = src.size;
  run.state.done.push(`download:${path}`);
  await run.save();
  await rm(partCacheOf(run), { recursive: true, force: true });
}

/** Where a download keeps the verified pieces of the source: in the job's work folder, removed with it. */
export function partCacheOf(run: JobRun): string {
  return join(run.workDir, "source-parts");
}
