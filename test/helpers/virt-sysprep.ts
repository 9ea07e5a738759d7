/**
 * Runs Debian's virt-sysprep (libguestfs-tools) the way it works on this kind of machine: the direct backend
 * with TCG forced (libguestfs would otherwise see /dev/kvm, try KVM, and qemu would abort), and a kernel for the
 * supermin appliance unpacked by test/infra/libguestfs-kernel.sh (cached; no linux-image package installed).
 */
import { spawn } from "node:child_process";
import { runOk } from "./tools.js";

/** The environment virt-sysprep needs here: SUPERMIN_* for the appliance kernel, LIBGUESTFS_BACKEND(_SETTINGS). */
export async function libguestfsEnv(): Promise<NodeJS.ProcessEnv> {
  const out = await runOk("bash", ["test/infra/libguestfs-kernel.sh"]);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const line of out.split("\n")) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  if (!env.SUPERMIN_KERNEL || env.LIBGUESTFS_BACKEND_SETTINGS !== "force_tcg")
    throw new Error(`test/infra/libguestfs-kernel.sh printed no usable environment:\n${out}`);
  return env;
}

export interface VirtSysprepRun {
  readonly seconds: number;
  readonly output: string;
}

/**
 * `virt-sysprep --format FORMAT -a IMAGE --operations OPERATIONS` (changes IMAGE in place). Throws with its
 * output when it fails or is not installed (scripts/setup.sh --test installs libguestfs-tools).
 */
export async function runVirtSysprep(
  image: string,
  options: { format: string; operations?: string; extraArgs?: readonly string[]; env?: NodeJS.ProcessEnv },
): Promise<VirtSysprepRun> {
  const env = options.env ?? (await libguestfsEnv());
  const args = [
    "--format",
    options.format,
    "-a",
    image,
    "--operations",
    options.operations ?? "defaults",
    ...(options.extraArgs ?? []),
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn("virt-sysprep", args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (e) =>
      reject(new Error(`virt-sysprep could not run (is libguestfs-tools installed?): ${e.message}`)),
    );
    child.on("exit", (code) => {
      if (code === 0) resolve({ seconds: (Date.now() - started) / 1000, output });
      else reject(new Error(`virt-sysprep ${args.join(" ")} exited ${code}:\n${output}`));
    });
  });
}
