/**
 * Interrupting a CLI run at a chosen moment: the run is frozen with SIGSTOP as soon as `ready` says so (a mount
 * of its own appeared, its output is being written…), sent the signal, and resumed, so wherever it stopped it
 * held what `ready` looked for at that moment.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { CLI, leftovers } from "./clean-proof.js";

export interface Interrupted {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  /** Mounts and loop devices of the run at the moment it was frozen. */
  readonly heldAtStop: number;
}

/**
 * Starts the CLI with ARGS, freezes it (SIGSTOP) as soon as `ready()` says so, sends `signal`, resumes it and waits
 * for it to end. Returns null if the run finished before it could be caught.
 */
export async function interruptWhen(
  dir: string,
  env: NodeJS.ProcessEnv,
  args: readonly string[],
  signal: NodeJS.Signals,
  ready: (pid: number) => Promise<boolean>,
): Promise<Interrupted | null> {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, sig) => resolve({ code, signal: sig })),
  );
  let done = false;
  void exited.then(() => (done = true));
  let heldAtStop = 0;
  let stopped = false;
  while (!done) {
    if (await ready(child.pid!)) {
      child.kill("SIGSTOP");
      stopped = true;
      heldAtStop = (await leftovers(dir, child.pid)).length;
      child.kill(signal);
      child.kill("SIGCONT");
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const result = await exited;
  if (!stopped) return null;
  return { ...result, stderr, heldAtStop };
}

/**
 * The guest's root mounted under the run's state dir (in the run's own mount namespace, where the CLI puts
 * itself) and its loop device attached: the guest is open.
 */
export const whileMounted = (dir: string) => async (pid: number) => {
  const held = await leftovers(dir, pid);
  return held.some((m) => m.startsWith(join(dir, "state"))) && held.some((l) => l.startsWith("/dev/loop"));
};
