/**
 * What the workflow suites share: a clouds.yaml naming the real test stack's users and regions (and, for the
 * kill tests, a Glance reached through a throttling proxy so a job can be caught mid-transfer), the CLI run
 * as a child process with that configuration, and a sample guest image stored in Glance.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { createServer, connect, type Socket } from "node:net";
import { join } from "node:path";
import { convertFile } from "../../../src/formats/engine/convert.js";
import { OpenStackProvider } from "../../../src/providers/openstack/openstack-provider.js";
import type { ProviderImage } from "../../../src/providers/provider.js";
import { makeSampleImage } from "../../../src/workflows/sample-image.js";
import { AUTH_URL, stackCloud, type StackUser } from "../../helpers/openstack-stack.js";
import { eventLines } from "../../helpers/event-lines.js";

const USERS: Record<StackUser, { password: string; project: string }> = {
  admin: { password: process.env.ADMIN_PASS ?? "admin-secret", project: "admin" },
  "user-a": { password: "pass-a", project: "proj-a" },
  "user-b": { password: "pass-b", project: "proj-b" },
};

export interface CloudEntry {
  readonly user: StackUser;
  readonly region: string;
  /** Reach Glance at this URL instead of the catalog's (a proxy). */
  readonly imageEndpoint?: string;
}

/** Writes a clouds.yaml with the given clouds; returns its path (for OS_CLIENT_CONFIG_FILE). */
export async function writeCloudsYaml(dir: string, clouds: Record<string, CloudEntry>): Promise<string> {
  const lines = ["clouds:"];
  for (const [name, c] of Object.entries(clouds)) {
    const u = USERS[c.user];
    lines.push(
      `  ${name}:`,
      `    region_name: ${c.region}`,
      ...(c.imageEndpoint ? [`    image_endpoint_override: ${c.imageEndpoint}`] : []),
      "    auth:",
      `      auth_url: ${AUTH_URL}`,
      `      username: ${c.user}`,
      `      password: ${u.password}`,
      `      project_name: ${u.project}`,
      "      user_domain_name: Default",
      "      project_domain_name: Default",
    );
  }
  const path = join(dir, "clouds.yaml");
  await writeFile(path, lines.join("\n") + "\n", { mode: 0o600 });
  return path;
}

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliProcess {
  readonly child: ChildProcess;
  readonly done: Promise<CliRun>;
}

/** Starts `chromogenic ARGS` with the given clouds.yaml and state directory (no OS_* from the parent). */
export function startCli(env: { clouds: string; state: string }, args: readonly string[]): CliProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("OS_")));
  const child = spawn(process.execPath, ["bin/chromogenic.js", ...args], {
    env: { ...clean, OS_CLIENT_CONFIG_FILE: env.clouds, CHROMOGENIC_STATE_DIR: env.state },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<CliRun>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

export function cli(env: { clouds: string; state: string }, ...args: string[]): Promise<CliRun> {
  return startCli(env, args).done;
}

/** The events of a --json run, each checked against the event schema (test/helpers/event-lines.ts). */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return eventLines(stdout) as Record<string, unknown>[];
}

export interface ThrottleProxy {
  readonly url: string;
  /** Bytes per second each connection may carry, each way; change it at any time. */
  rate: number;
  close(): Promise<void>;
}

/** A TCP proxy to `target` that paces every connection to `rate` bytes per second in each direction. */
export async function startThrottleProxy(target: { host: string; port: number }, rate: number): Promise<ThrottleProxy> {
  const open = new Set<Socket>();
  const state = { rate };
  const pace = (from: Socket, to: Socket) => {
    from.on("data", (chunk: Buffer) => {
      to.write(chunk);
      from.pause();
      setTimeout(() => from.resume(), (chunk.length / state.rate) * 1000);
    });
  };
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on("close", () => open.delete(s));
      s.on("error", () => undefined);
    }
    pace(upstream, client);
    pace(client, upstream);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get rate() {
      return state.rate;
    },
    set rate(r: number) {
      state.rate = r;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface SampleInGlance {
  readonly raw: string;
  readonly qcow2: string;
  readonly image: ProviderImage;
  readonly provider: OpenStackProvider;
}

/**
 * The sample guest disk (256 MiB, ext4) as an image of user-a in RegionOne (qcow2 by default; VDI for a source
 * the jobs cannot read in place and so download first), removed after the suite.
 */
export async function sampleInGlance(
  dir: string,
  name: string,
  format: "qcow2" | "raw" | "vdi" = "qcow2",
): Promise<SampleInGlance> {
  const raw = join(dir, `${name}.raw`);
  await makeSampleImage(raw);
  const qcow2 = join(dir, `${name}.qcow2`);
  await convertFile({ input: raw, output: qcow2, outputFormat: "qcow2" });
  let file = format === "qcow2" ? qcow2 : raw;
  if (format === "vdi") {
    file = join(dir, `${name}.vdi`);
    await convertFile({ input: raw, output: file, outputFormat: "vdi" });
  }
  const provider = new OpenStackProvider(stackCloud("user-a"));
  const { size } = await stat(file);
  const image = await provider.uploadImage(
    { name, diskFormat: format, sizeBytes: size },
    createReadStream(file, { highWaterMark: 2 ** 20 }),
  );
  return { raw, qcow2, image, provider };
}

/** Every image of that name the provider lists. */
export async function imagesNamed(provider: OpenStackProvider, name: string): Promise<ProviderImage[]> {
  const out: ProviderImage[] = [];
  for await (const i of provider.listImages()) if (i.name === name) out.push(i);
  return out;
}

/** Deletes every image of that name (test cleanup). */
export async function deleteImagesNamed(provider: OpenStackProvider, name: string): Promise<void> {
  for (const i of await imagesNamed(provider, name)) await provider.deleteImage(i.id).catch(() => undefined);
}
