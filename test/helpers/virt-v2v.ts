/**
 * Runs Debian's virt-v2v (2.2) the way it works on this kind of machine: libguestfs's direct backend under TCG
 * with the appliance kernel of test/infra/libguestfs-kernel.sh (see virt-sysprep.ts), plus the helpers virt-v2v
 * starts but no package it depends on brings: nbdkit (its output side) and nbdcopy (libnbd-bin, the copy).
 */
import { spawn } from "node:child_process";
import { hasTool } from "./guest-images.js";
import { libguestfsEnv } from "./virt-sysprep.js";

/** The programs a local import needs, each with the Debian package that brings it. */
const NEEDED = [
  { tool: "virt-v2v", pkg: "virt-v2v" },
  { tool: "nbdkit", pkg: "nbdkit" },
  { tool: "nbdcopy", pkg: "libnbd-bin" },
  { tool: "qemu-nbd", pkg: "qemu-utils" },
] as const;

/** Throws naming every missing program and its package (scripts/setup.sh --test installs them). */
export async function requireVirtV2v(): Promise<void> {
  const missing: string[] = [];
  for (const { tool, pkg } of NEEDED) if (!(await hasTool(tool))) missing.push(`${tool} (Debian package ${pkg})`);
  if (missing.length > 0)
    throw new Error(`virt-v2v cannot run here: missing ${missing.join(", ")}; run scripts/setup.sh --test as root`);
}

export interface VirtV2vRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** `virt-v2v ARGS` with the libguestfs environment; never throws for a non-zero exit (the caller asserts). */
export async function runVirtV2v(args: readonly string[], timeoutMs = 600_000): Promise<VirtV2vRun> {
  const env = await libguestfsEnv();
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn("virt-v2v", args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`virt-v2v could not run: ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/**
 * The warnings in virt-v2v's output, one string each with its wrapped lines joined: a warning starts at
 * "virt-v2v: warning:" and runs until a blank line, a progress line ("[  12.3] ...") or another message.
 */
export function virtV2vWarnings(output: string): string[] {
  const warnings: string[] = [];
  let current: string[] | null = null;
  for (const line of output.split("\n")) {
    const start = /^virt-v2v: warning: (.*)$/.exec(line);
    if (start) {
      if (current) warnings.push(current.join(" "));
      current = [start[1]!.trim()];
    } else if (current && line.trim() !== "" && !/^(virt-v2v:|\[\s*[\d.]+\])/.test(line)) {
      current.push(line.trim());
    } else if (current) {
      warnings.push(current.join(" "));
      current = null;
    }
  }
  if (current) warnings.push(current.join(" "));
  return warnings;
}
