/**
 * Whether another process is still alive: a job (or a guest session) it left marked as running must then not
 * be taken over. Our own process counts as gone (its earlier run is the one being resumed or cleaned up);
 * EPERM means the process exists but belongs to another user.
 */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
