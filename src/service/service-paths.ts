/**
 * Where a service job may read and write: the service's configuration lists folders, and every path a job names
 * (a file job's input and output, an export's destination file, a bootable step's kernel and ramdisk, a work
 * folder, a local store `local:/dir` named as a cloud) must lie inside one of them. A client could otherwise
 * read /etc/shadow into an image or write over the service's own files. The API checks a job before storing it,
 * and a worker can check again before running it (a link may have been planted since).
 *
 * A path is judged by where it really leads: the longest part of it that exists is resolved with realpath (so a
 * symbolic link pointing out of an allowed folder is refused wherever it sits), the rest is appended as written,
 * and `..` is refused outright so that no part still to be created can climb back out.
 */
import { lstat, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, sep } from "node:path";
import { z } from "zod";
import type { JobSpec } from "./job-spec.js";

export const AllowedFoldersSchema = z
  .object({
    read: z
      .array(z.string().min(1))
      .default([])
      .describe("folders jobs may read from (write folders are readable too)"),
    write: z.array(z.string().min(1)).default([]).describe("folders jobs may write into"),
  })
  .strict();

export type AllowedFoldersConfig = z.infer<typeof AllowedFoldersSchema>;

/** The allowed folders, resolved once (the configuration's paths may themselves be links). */
export interface AllowedFolders {
  readonly read: readonly string[];
  readonly write: readonly string[];
}

export type PathAccess = "read" | "write";

/** A path a job names, with what the job does there and the field that names it (for the message). */
export interface JobPath {
  readonly field: string;
  readonly path: string;
  readonly access: PathAccess;
}

export class PathNotAllowedError extends Error {
  constructor(
    readonly field: string,
    readonly path: string,
    reason: string,
  ) {
    super(`${field}: ${JSON.stringify(path)} ${reason}`);
    this.name = "PathNotAllowedError";
  }
}

/** Resolves the configured folders; a folder that does not exist is refused (a typo would allow nothing). */
export async function resolveAllowedFolders(config: AllowedFoldersConfig): Promise<AllowedFolders> {
  const resolveAll = (folders: readonly string[]) =>
    Promise.all(
      folders.map(async (folder) => {
        if (!isAbsolute(folder)) throw new Error(`allowed folder ${JSON.stringify(folder)} is not an absolute path`);
        try {
          return await realpath(folder);
        } catch (e) {
          throw new Error(`allowed folder ${JSON.stringify(folder)}: ${(e as Error).message}`, { cause: e });
        }
      }),
    );
  return { read: await resolveAll(config.read), write: await resolveAll(config.write) };
}

/** Every path `spec` names. Cloud names other than `local:/dir` name no path on this host. */
export function jobPaths(spec: JobSpec): JobPath[] {
  if (spec.kind === "convert" || spec.kind === "clean") {
    return [
      { field: "input", path: spec.input, access: "read" },
      { field: "output", path: spec.output, access: "write" },
    ];
  }
  const paths: JobPath[] = [];
  const store = (field: string, cloud: string, access: PathAccess) => {
    if (cloud.startsWith("local:")) paths.push({ field, path: cloud.slice("local:".length), access });
  };
  store("source.cloud", spec.source.cloud, "read");
  if (spec.destination.kind === "cloud") store("destination.cloud", spec.destination.cloud, "write");
  else paths.push({ field: "destination.path", path: spec.destination.path, access: "write" });
  if (spec.bootable?.kernel !== undefined)
    paths.push({ field: "bootable.kernel", path: spec.bootable.kernel, access: "read" });
  if (spec.bootable?.ramdisk !== undefined)
    paths.push({ field: "bootable.ramdisk", path: spec.bootable.ramdisk, access: "read" });
  if (spec.workDir !== undefined) paths.push({ field: "workDir", path: spec.workDir, access: "write" });
  return paths;
}

/** Throws PathNotAllowedError for the first path of `spec` that leads outside the folders its access allows. */
export async function checkJobPaths(spec: JobSpec, folders: AllowedFolders): Promise<void> {
  for (const entry of jobPaths(spec)) await checkPath(entry, folders);
}

export async function checkPath(entry: JobPath, folders: AllowedFolders): Promise<string> {
  const { field, path, access } = entry;
  if (path.includes("\0")) throw new PathNotAllowedError(field, path, "holds a NUL byte");
  if (!isAbsolute(path)) throw new PathNotAllowedError(field, path, "is not an absolute path");
  if (path.split(/[\\/]/).includes("..")) throw new PathNotAllowedError(field, path, "climbs with `..`");
  const real = await realPathOfExistingPart(entry);
  const allowed = access === "write" ? folders.write : [...folders.read, ...folders.write];
  if (!allowed.some((folder) => isInside(real, folder))) {
    const where = real === path ? "" : ` (it leads to ${JSON.stringify(real)})`;
    const list = allowed.length ? allowed.join(", ") : "none configured";
    throw new PathNotAllowedError(field, path, `is outside the folders jobs may ${access}${where}: ${list}`);
  }
  return real;
}

/**
 * realpath of the longest existing prefix of the path, with the parts that do not exist yet appended. A link
 * whose target is missing is refused: writing through it would create its target, wherever that is.
 */
async function realPathOfExistingPart({ field, path }: JobPath): Promise<string> {
  const missing: string[] = [];
  let current = path;
  for (;;) {
    try {
      return join(await realpath(current), ...missing.reverse());
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
      if (await isLink(current)) throw new PathNotAllowedError(field, path, "goes through a link to nothing");
      const parent = dirname(current);
      if (parent === current) return path;
      missing.push(basename(current));
      current = parent;
    }
  }
}

async function isLink(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSymbolicLink();
  } catch {
    return false;
  }
}

function isInside(path: string, folder: string): boolean {
  if (path === folder) return true;
  const rel = relative(folder, path);
  return rel !== "" && !rel.startsWith(".." + sep) && rel !== ".." && !isAbsolute(rel);
}
