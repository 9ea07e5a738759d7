/**
 * Which processes hold a lock on a file, to name them when they are in the way. The locks qemu and chromogenic
 * take belong to open files, not processes, so the kernel's own answer (F_OFD_GETLK, /proc/locks) gives no
 * process id. Each process's /proc/PID/fdinfo/FD lists the locks held through that descriptor, though: the
 * holders are the processes with a descriptor of the same file whose fdinfo lists a lock covering the byte.
 * Only asked once a conflict is found, so the walk over /proc costs nothing in the usual case.
 */
import { readdir, readFile, stat, type FileHandle } from "node:fs/promises";
import { basename } from "node:path";

export interface LockHolder {
  readonly pid: number;
  /** What the process runs ("qemu-img", "node chromogenic.js"), when readable. */
  readonly command?: string;
  /** The bytes of the file the holder has locked, as [start, end] pairs (end inclusive). */
  readonly ranges: readonly (readonly [number, number])[];
}

/**
 * The processes other than the open file `handle` itself holding a lock that covers `byte` of the same file.
 * Processes this one may not look into (another user's, without root) are not listed.
 */
export async function lockHolders(handle: FileHandle, byte: number): Promise<LockHolder[]> {
  const target = await handle.stat();
  const pids = (await readdir("/proc").catch(() => [] as string[])).filter((name) => /^\d+$/.test(name));
  const perProcess = await Promise.all(
    pids.map(async (pid) => {
      const found: LockHolder[] = [];
      for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
        if (Number(pid) === process.pid && Number(fd) === handle.fd) continue;
        const st = await stat(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
        if (!st || st.ino !== target.ino || st.dev !== target.dev) continue;
        const ranges = lockedRanges(await readFile(`/proc/${pid}/fdinfo/${fd}`, "utf8").catch(() => ""));
        if (!ranges.some(([start, end]) => start <= byte && byte <= end)) continue;
        found.push({ pid: Number(pid), command: await commandOf(pid), ranges });
      }
      return found;
    }),
  );
  return perProcess.flat();
}

/**
 * The program a process runs, from its command line: "qemu-img", or "node chromogenic.js" for a script run by an
 * interpreter (whose own name says little). Not /proc/PID/comm: Node.js names its main thread "MainThread" there.
 */
async function commandOf(pid: string): Promise<string | undefined> {
  const args = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0").filter(Boolean);
  if (args.length === 0) return undefined;
  const program = basename(args[0]!);
  const script = args.slice(1).find((arg) => !arg.startsWith("-"));
  const interpreted = script !== undefined && /^(node|python[\d.]*|perl|ruby|sh|bash)$/.test(program);
  return interpreted ? `${program} ${basename(script)}` : program;
}

/** The ranges of the `lock:` lines of an fdinfo file ("lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:123 100 101"). */
function lockedRanges(fdinfo: string): [number, number][] {
  const ranges: [number, number][] = [];
  for (const line of fdinfo.split("\n")) {
    const m = /^lock:\s.*\s(\d+)\s+(\d+|EOF)\s*$/.exec(line);
    if (m) ranges.push([Number(m[1]), m[2] === "EOF" ? Number.MAX_SAFE_INTEGER : Number(m[2])]);
  }
  return ranges;
}

/** "PID 1234 (qemu-img)", "PIDs 1234 (qemu-img) and 99 (node)", or what to say when none can be seen. */
export function describeHolders(holders: readonly LockHolder[]): string {
  if (holders.length === 0) return "another process (one this user cannot see, or in another PID namespace)";
  const named = holders.map((h) => (h.command ? `${h.pid} (${h.command})` : String(h.pid)));
  const unique = [...new Set(named)];
  if (unique.length === 1) return `PID ${unique[0]}`;
  return `PIDs ${unique.slice(0, -1).join(", ")} and ${unique.at(-1)}`;
}
