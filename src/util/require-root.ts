import { UsageError } from "./errors.js";

/**
 * Refuses, before anything is touched, a command that attaches loop devices and mounts filesystems when not
 * run as root: one line saying so, rather than a permission error on whatever it happened to touch first.
 */
export function requireRoot(command: string): void {
  if (process.getuid?.() !== 0) {
    throw new UsageError(`${command} needs root: it attaches loop devices and mounts the guest's filesystems`);
  }
}
