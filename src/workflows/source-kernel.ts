/**
 * The external kernel and ramdisk an AMI-style source names (`kernel_id`/`ramdisk_id`: a Glance aki/ari, a
 * Eucalyptus EKI/ERI), fetched from the source store into the job's work dir so that the bootable step installs
 * them into a guest that has no kernel of its own. The original chromogenic discarded them and installed a new
 * kernel with the guest's package manager, which needs a network inside the guest and changes its software; the
 * kernel the image ran with is the one it is known to boot.
 *
 * Only when the user gave no --kernel. Each file is written under a temporary name and renamed when whole, is
 * bounded in size (a kernel or initramfs of more than 512 MiB is not one), and is a job file removed at the end.
 */
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { TransferError, UsageError } from "../util/errors.js";
import type { JobRun } from "./job-run.js";

const MAX_BOOT_FILE_BYTES = 512 * 2 ** 20;

export interface SourceBootFiles {
  readonly kernel?: string;
  readonly ramdisk?: string;
}

/** The source's own kernel and ramdisk as local files, when it names them; nothing when it names none. */
export async function fetchSourceBootFiles(run: JobRun): Promise<SourceBootFiles> {
  const properties = run.sourceProperties ?? {};
  const kernelId = properties.kernel_id;
  if (!kernelId) return {};
  const kernel = await fetchOnce(run, "kernel", kernelId);
  const ramdiskId = properties.ramdisk_id;
  const ramdisk = ramdiskId ? await fetchOnce(run, "ramdisk", ramdiskId) : undefined;
  return { kernel, ...(ramdisk ? { ramdisk } : {}) };
}

async function fetchOnce(run: JobRun, role: "kernel" | "ramdisk", id: string): Promise<string> {
  const path = join(run.workDir, `source-${role}`);
  const step = `fetch-${role}`;
  if (run.state.done.includes(step) && run.state.files[role] === path) return path;
  const image = await run.source.getImage(id);
  if (!image) {
    throw new UsageError(
      `${run.source.label}: the source names ${role} ${id}, which is not there (--kernel/--ramdisk give one)`,
    );
  }
  if (image.sizeBytes !== undefined && image.sizeBytes > MAX_BOOT_FILE_BYTES) {
    throw new UsageError(`${run.source.label}: ${role} ${id} is ${image.sizeBytes} bytes, too large for a ${role}`);
  }
  run.state.files[role] = path;
  await run.save();
  run.message(`fetching the source's ${role} ${id} (${image.name})`);
  const partial = `${path}.partial`;
  const handle = await open(partial, "w", 0o600);
  try {
    let size = 0;
    for await (const chunk of run.source.downloadImage(image.id, { signal: run.signal })) {
      size += chunk.byteLength;
      if (size > MAX_BOOT_FILE_BYTES) throw new TransferError(`${role} ${id} is larger than a ${role} can be`);
      await handle.write(chunk);
    }
    await handle.sync();
  } catch (e) {
    await handle.close();
    await rm(partial, { force: true });
    throw e;
  }
  await handle.close();
  await rename(partial, path);
  run.state.done.push(step);
  await run.save();
  return path;
}
