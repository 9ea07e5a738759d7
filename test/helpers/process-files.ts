import { readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Resolves once process `pid` holds open a file in `dir` other than `except`: the job's output, made before it
 * reads (unnamed until complete, so it shows only among the process's open files, as "DIR/#N (deleted)").
 */
export async function outputOpenIn(pid: number, dir: string, except: readonly string[]): Promise<void> {
  const skip = new Set(except.map((n) => join(dir, n)));
  for (let i = 0; i < 200; i++) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")));
    if (targets.some((t) => t.startsWith(dir + "/") && !skip.has(t))) return;
    await sleep(50);
  }
  throw new Error(`the CLI opened no output in ${dir}`);
}
