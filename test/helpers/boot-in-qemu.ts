/**
 * The boot proof: a disk image started headless in `qemu-system-x86_64` until its serial console shows a login
 * prompt. Every disk the conversion and the bootable-disk writer produce is held to this.
 *
 * - TCG unless a probe shows KVM works (kvm-probe.ts): KVM on these machines fails on real-mode code (the BIOS
 *   boot path) though /dev/kvm is there, so the probe boots a real-mode sector under KVM first; the verdict is
 *   taken once per process and each result says which accelerator ran.
 * - The disk is opened with snapshot=on: the guest's writes go to a temporary overlay qemu deletes, so the
 *   image under test (often a cached test guest) is never modified.
 * - 1 GiB of memory, one CPU, no network, `-no-reboot` (a panic or a firmware giving up ends qemu instead of
 *   looping), the first serial port on qemu's stdout (where SeaBIOS, OVMF, the loaders and Linux all print),
 *   no display.
 * - Firmware: SeaBIOS (qemu's default) or OVMF from Debian's `ovmf` package with a fresh copy of its variable
 *   store per boot (the boot entries OVMF writes there must not leak from one boot into the next).
 * - Disk bus: virtio (what OpenStack/KVM gives), or what VirtualBox and VMware give: IDE (the PIIX controller
 *   of qemu's default PC) or SATA (an ICH9 AHCI controller).
 *
 * A boot that cannot succeed is reported as soon as the console says so (firmware with nothing to boot, a
 * kernel panic, the initramfs or systemd giving up), otherwise at the timeout; either way the error carries
 * the last 40 lines of the console, and qemu is killed (also when the test is aborted or the process exits).
 *
 * Measured here (2 cores, qemu 7.2, the Debian 12 Xen test guest with its 6.1 kernel and zstd initramfs, by
 * test/guest/boot-harness.test.ts), from qemu's start to the login prompt: 27 s on virtio, 30 s on SATA and on
 * IDE, 34 s under UEFI, 28 s for a direct kernel boot with the other core idle; 47 to 66 s with it busy. A disk
 * with nothing to boot is reported in under a second under SeaBIOS, in about 4 s under OVMF.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access, copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chooseAccelerator, type Accelerator } from "./kvm-probe.js";

export type DiskBus = "virtio" | "ide" | "sata";
export type Firmware = "bios" | "uefi";

export interface BootOptions {
  /** The disk's format as qemu names it (raw, qcow2, vmdk, vdi, vpc, vhdx…); default raw. */
  readonly format?: string;
  /** Default virtio. */
  readonly bus?: DiskBus;
  /** Default: what the KVM probe allows (chooseAccelerator), TCG when in doubt. */
  readonly accel?: Accelerator;
  /** Default bios (SeaBIOS). */
  readonly firmware?: Firmware;
  /** Default 240 s: four times the slowest Debian 12 boot under TCG seen here. */
  readonly timeoutMs?: number;
  /** Start this kernel directly (qemu's -kernel/-initrd/-append) instead of the disk's boot code. */
  readonly direct?: { readonly kernel: string; readonly initrd?: string; readonly append: string };
  /** Aborting kills qemu and rejects (pass the test's `t.signal`). */
  readonly signal?: AbortSignal;
  /** Also write the serial console here, whether the boot succeeds or not (for a CI artifact). */
  readonly serialLog?: string;
}

export interface BootResult {
  /** From qemu's start to the login prompt. */
  readonly seconds: number;
  /** The serial console up to the prompt (its tail, if it was longer than SERIAL_KEPT). */
  readonly serial: string;
  /** The accelerator qemu ran with. */
  readonly accel: Accelerator;
}

const QEMU = "qemu-system-x86_64";
const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const DEFAULT_TIMEOUT_MS = 240_000;
const TAIL_LINES = 40;
/** The console kept in memory: a guest that floods its serial port cannot grow the test's heap without bound. */
const SERIAL_KEPT = 4 * 2 ** 20;

/** `HOSTNAME login: ` at the start of a line, as agetty prints it. */
const LOGIN_PROMPT = /(?:^|\n)[A-Za-z0-9][A-Za-z0-9.-]* login: /;

/** Console output after which no login prompt can come, each with what it means. */
const HOPELESS: readonly { readonly text: RegExp; readonly meaning: string }[] = [
  { text: /No bootable device/, meaning: "SeaBIOS found nothing to boot" },
  { text: /UEFI Interactive Shell/, meaning: "OVMF found nothing to boot and started its shell" },
  { text: /Kernel panic - not syncing/, meaning: "the kernel panicked" },
  { text: /Dropping to a shell!/, meaning: "the initramfs gave up waiting for the root filesystem" },
  { text: /You are in emergency mode/, meaning: "systemd stopped in emergency mode" },
];

/** The terminal control sequences firmware and boot loaders draw with (cursor moves, colours, charsets). */
// eslint-disable-next-line no-control-regex -- matching ESC is the point
const ESCAPE_SEQUENCE = /\x1b(?:\[[0-9;?=>]*[A-Za-z]|[()][A-Z0-9])/g;

/** The console as a person reads it: no escape sequences, no carriage returns. */
export function readableConsole(serial: string): string {
  return serial.replace(ESCAPE_SEQUENCE, "").replace(/\r+\n/g, "\n").replace(/\r/g, "\n");
}

function tail(serial: string, lines = TAIL_LINES): string {
  const all = readableConsole(serial).trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}

/** qemu processes still running, killed if the test process exits without waiting for them. */
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});
// A test process ended by a signal (the runner's timeout, Ctrl-C) runs no exit handlers: its qemu would go on
// booting. Kill them, then die of the same signal (this listener is gone by then, so the default applies).
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
  process.once(signal, () => {
    for (const child of running) child.kill("SIGKILL");
    process.kill(process.pid, signal);
  });

async function requireFile(path: string, what: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch {
    throw new Error(`boot-in-qemu: ${what} is missing (${path}); scripts/setup.sh installs it`);
  }
}

function driveArgs(disk: string, format: string, bus: DiskBus): string[] {
  // The path goes into qemu's comma-separated option syntax, where a comma is written twice.
  const drive = `file=${disk.replaceAll(",", ",,")},format=${format},if=none,id=disk0,snapshot=on,cache=unsafe`;
  switch (bus) {
    case "virtio":
      return ["-drive", drive, "-device", "virtio-blk-pci,drive=disk0"];
    case "ide":
      return ["-drive", drive, "-device", "ide-hd,drive=disk0,bus=ide.0"];
    case "sata":
      return ["-drive", drive, "-device", "ich9-ahci,id=ahci", "-device", "ide-hd,drive=disk0,bus=ahci.0"];
  }
}

/**
 * Boots `disk` and resolves when its serial console shows a login prompt; rejects, with the console's last 40
 * lines, on a timeout, a hopeless console, qemu exiting, or an abort. qemu never outlives the call.
 */
export async function bootToLogin(disk: string, options: BootOptions = {}): Promise<BootResult> {
  const format = options.format ?? "raw";
  const bus = options.bus ?? "virtio";
  const firmware = options.firmware ?? "bios";
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!/^[a-z0-9]+$/.test(format)) throw new Error(`boot-in-qemu: ${JSON.stringify(format)} is not a qemu format name`);
  options.signal?.throwIfAborted();
  await requireFile(disk, "the disk to boot");
  const accel = options.accel ?? (await chooseAccelerator()).accel;
  const scratch = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-boot-"));
  try {
    const args = [
      "-accel",
      accel,
      "-machine",
      "pc",
      "-m",
      "1024",
      "-smp",
      "1",
      // Unlike -display none, -nographic also has qemu tell SeaBIOS to print on the serial port.
      "-nographic",
      "-monitor",
      "none",
      "-serial",
      "stdio",
      "-nic",
      "none",
      "-no-reboot",
      ...driveArgs(disk, format, bus),
    ];
    if (firmware === "uefi") {
      await requireFile(OVMF_CODE, "OVMF (Debian package ovmf)");
      await requireFile(OVMF_VARS, "OVMF's variable store template (Debian package ovmf)");
      const vars = join(scratch, "OVMF_VARS.fd");
      await copyFile(OVMF_VARS, vars);
      args.push(
        "-drive",
        `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
        "-drive",
        `if=pflash,format=raw,unit=1,file=${vars.replaceAll(",", ",,")}`,
      );
    }
    if (options.direct) {
      args.push("-kernel", options.direct.kernel, "-append", options.direct.append);
      if (options.direct.initrd) args.push("-initrd", options.direct.initrd);
    }
    const what = `${disk} (${format}, ${bus}, ${firmware}, ${accel}${options.direct ? ", direct kernel" : ""})`;
    return { ...(await watchConsole(args, what, timeoutMs, options)), accel };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Runs qemu until the console decides; settles only once qemu has exited, so no qemu outlives the promise. */
function watchConsole(
  args: string[],
  what: string,
  timeoutMs: number,
  { signal, serialLog }: Pick<BootOptions, "signal" | "serialLog">,
): Promise<Omit<BootResult, "accel">> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(QEMU, args, { stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    let serial = "";
    let stderr = "";
    let outcome: { readonly error: Error | null; readonly seconds: number } | null = null;
    let exited = false;
    const elapsed = () => (Date.now() - started) / 1000;

    const settle = () => {
      if (!outcome || !exited) return;
      running.delete(child);
      const { error, seconds } = outcome;
      const deliver = () => (error ? reject(error) : resolve({ seconds, serial }));
      // The console is kept as qemu wrote it: latin1 maps each byte to one character and back.
      if (serialLog) writeFile(serialLog, serial, "latin1").then(deliver, reject);
      else deliver();
    };
    const finish = (error: Error | null) => {
      if (outcome) return;
      outcome = { error, seconds: elapsed() };
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (!exited) child.kill("SIGKILL");
      settle();
    };
    const failure = (why: string) =>
      new Error(
        `boot-in-qemu: ${what}: no login prompt: ${why} after ${elapsed().toFixed(0)} s; ` +
          `last ${TAIL_LINES} lines of the serial console:\n${tail(serial)}` +
          (stderr.trim() ? `\nqemu's stderr:\n${stderr.trim().slice(-2000)}` : ""),
      );

    const timer = setTimeout(() => finish(failure(`timed out (limit ${timeoutMs / 1000} s)`)), timeoutMs);
    const onAbort = () => finish(failure("the test was aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    // An abort while the firmware files were being copied fires no event any more.
    if (signal?.aborted) onAbort();

    child.stdout!.setEncoding("latin1");
    child.stdout!.on("data", (chunk: string) => {
      if (outcome) return;
      serial += chunk;
      if (serial.length > SERIAL_KEPT) serial = serial.slice(-SERIAL_KEPT / 2);
      // Only the recent part can hold a prompt or a failure that was not there before.
      const recent = readableConsole(serial.slice(-(chunk.length + 4096)));
      if (LOGIN_PROMPT.test(recent)) return finish(null);
      const hopeless = HOPELESS.find((h) => h.text.test(recent));
      if (hopeless) finish(failure(hopeless.meaning));
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-64 * 1024);
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      // A failed spawn has no process to wait for (and may never emit "exit").
      if (child.pid === undefined) exited = true;
      finish(
        e.code === "ENOENT"
          ? new Error(`boot-in-qemu: ${QEMU} is not installed (Debian package qemu-system-x86; scripts/setup.sh)`)
          : e,
      );
      settle();
    });
    child.on("exit", (code, sig) => {
      exited = true;
      finish(failure(`qemu exited (${sig ?? `code ${code}`})`));
      settle();
    });
  });
}
