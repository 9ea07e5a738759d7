/**
 * Image locks through the CLI, against real processes: a conversion held open (its input served over HTTP and
 * stalled) keeps a second writer out, naming its PID, and keeps readers out unless they force sharing; qemu-img
 * and qemu-io (which lock images the same way) are kept out by it and keep it out in turn. Without the lock addon
 * a warning says images are not locked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { RangeServer, servedBuffer } from "../../helpers/range-server.js";
import { CLI, makeRaw, mixedRegions, qemuCompare, run, runCli, runOk, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;
const SIZE = 8 * MiB;

/** A running process and how it ended. */
interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; stderr: string }>;
}

function start(command: string, args: readonly string[]): Running {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("exit", (code) => resolve({ code, stderr })),
  );
  return { child, exited };
}

/** Waits until process `pid` holds a lock (its /proc/PID/fdinfo lists one), for at most 20 s. */
async function holdsALock(pid: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    for (const fd of await readdir(`/proc/${pid}/fdinfo`).catch(() => [])) {
      const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, "utf8").catch(() => "");
      if (/^lock:/m.test(info)) return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`process ${pid} took no lock within 20 s`);
}

/**
 * A conversion of `input` (served over HTTP) into `output` that stays under way, its output opened and locked,
 * until `finish()` lets the server answer; then it must succeed.
 */
async function heldConversion(
  t: { after(fn: () => Promise<void>): void },
  input: string,
  output: string,
): Promise<{ pid: number; finish(): Promise<void> }> {
  const server = await RangeServer.start(t, servedBuffer(await readFile(input)));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  server.handle = async () => {
    await gate;
    return false;
  };
  const writer = start(process.execPath, [CLI, "convert", "-q", "-f", "raw", "-O", "qcow2", server.url(), output]);
  t.after(async () => {
    release();
    writer.child.kill("SIGKILL");
  });
  // The output is opened and locked before the input: once the server is asked, the locks are held.
  for (let i = 0; i < 400 && server.received.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(server.received.length > 0, "the held conversion never started");
  return {
    pid: writer.child.pid!,
    async finish() {
      release();
      const { code, stderr } = await writer.exited;
      assert.equal(code, 0, stderr);
      assert.equal((await qemuCompare(input, output)).code, 0);
    },
  };
}

test("a second job writing the same output is refused with the first one's PID", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, SIZE, mixedRegions(SIZE));
  const output = join(dir, "out.qcow2");
  const first = await heldConversion(t, input, output);
  const second = await runCli(["convert", "-q", "-O", "qcow2", input, output], process.env);
  assert.equal(second.code, 1, second.stderr);
  assert.match(
    second.stderr,
    new RegExp(`out\\.qcow2 is being written by PID ${first.pid} \\(node chromogenic\\.js\\)`),
  );
  await first.finish();
});

test("an image being written is refused to readers, ours and qemu-img's, unless they force sharing", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, SIZE, mixedRegions(SIZE));
  const output = join(dir, "out.qcow2");
  await runOk("qemu-img", ["convert", "-O", "qcow2", input, output]);
  const writer = await heldConversion(t, input, output);

  const info = await runCli(["info", output], process.env);
  assert.equal(info.code, 1, info.stderr);
  assert.match(info.stderr, new RegExp(`out\\.qcow2 is being written by PID ${writer.pid} .*-U \\(--force-share\\)`));
  const shared = await runCli(["info", "-U", output], process.env);
  assert.equal(shared.code, 0, shared.stderr);
  const copy = join(dir, "copy.raw");
  const read = await runCli(["convert", "-q", "-U", "-O", "raw", output, copy], process.env);
  assert.equal(read.code, 0, read.stderr);

  const qemuInfo = await run("qemu-img", ["info", output]);
  assert.notEqual(qemuInfo.code, 0, "qemu-img read an image we are writing");
  assert.match(qemuInfo.stderr, /Failed to get shared "write" lock/);
  assert.equal((await run("qemu-img", ["info", "-U", output])).code, 0);
  const qemuWrite = await run("qemu-img", ["convert", "-O", "qcow2", input, output]);
  assert.notEqual(qemuWrite.code, 0, "qemu-img wrote an image we are writing");
  assert.match(qemuWrite.stderr, /Failed to get "(write|resize)" lock/);

  await writer.finish();
});

test("qemu holding an image keeps our writers out, and our readers while it writes, by PID", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, SIZE, mixedRegions(SIZE));
  const image = join(dir, "held.qcow2");
  await runOk("qemu-img", ["convert", "-O", "qcow2", input, image]);
  for (const mode of ["write", "read"] as const) {
    const qemu = start("qemu-io", [...(mode === "read" ? ["-r"] : []), "-c", "sleep 600000", image]);
    t.after(() => void qemu.child.kill("SIGKILL"));
    await holdsALock(qemu.child.pid!);
    const doing = mode === "write" ? "being written" : "being read";
    const convert = await runCli(["convert", "-q", "-O", "qcow2", input, image], process.env);
    assert.equal(convert.code, 1, convert.stderr);
    assert.match(convert.stderr, new RegExp(`held\\.qcow2 is ${doing} by PID ${qemu.child.pid} \\(qemu-io\\)`));
    const info = await runCli(["info", image], process.env);
    if (mode === "write") {
      assert.equal(info.code, 1, info.stderr);
      assert.match(info.stderr, new RegExp(`held\\.qcow2 is being written by PID ${qemu.child.pid} \\(qemu-io\\)`));
      assert.equal((await runCli(["info", "-U", image], process.env)).code, 0);
    } else {
      assert.equal(info.code, 0, `a reader kept another reader out: ${info.stderr}`);
    }
    qemu.child.kill("SIGKILL");
    await qemu.exited;
  }
  assert.equal((await qemuCompare(input, image)).code, 0, "the refused writers changed the image");
});

test("without the lock addon, conversions go on and say that images are not locked", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, SIZE, mixedRegions(SIZE));
  const env = { ...process.env, CHROMOGENIC_NATIVE_LOCK: "off" };
  const plain = await runCli(["convert", "-q", "-O", "qcow2", input, join(dir, "a.qcow2")], env);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stderr, /^chromogenic: warning: images are not locked: the file-lock addon is not built/m);
  const json = await runCli(["convert", "--json", "-O", "qcow2", input, join(dir, "b.qcow2")], env);
  assert.equal(json.code, 0, json.stderr);
  const events = json.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { event: string; level?: string; text?: string });
  assert.ok(
    events.some((e) => e.event === "message" && e.level === "warning" && /images are not locked/.test(e.text ?? "")),
    json.stdout,
  );
});
