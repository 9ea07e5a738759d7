/**
 * Whether the boot proofs may use KVM: only when a probe shows it works, TCG otherwise (the project's rule).
 *
 * KVM on the machines this project is tested on fails on real-mode code — the code every BIOS boot runs first
 * (SeaBIOS, the MBR, GRUB's or syslinux's first stages) — while /dev/kvm is there and opens fine. So /dev/kvm
 * existing proves nothing: the probe boots a 512-byte real-mode boot sector under `-accel kvm` with SeaBIOS.
 * The sector writes a marker to the second serial port (the first is SeaBIOS's console, whose writes would
 * interleave) and ends qemu through its isa-debug-exit port. KVM is usable only when qemu ends that way, the
 * marker on its output, within PROBE_LIMIT_MS and faster than the same sector under TCG (a working KVM is
 * several times faster; the sick one here took 4 to 13 s where TCG takes a quarter of a second, and once
 * passed a 5 s limit only to hang a real boot at the kernel's real-mode EDD probe).
 *
 * The verdict is taken once per process. CHROMOGENIC_TEST_ACCEL=tcg skips the probe and keeps TCG.
 */
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type Accelerator = "tcg" | "kvm";

export interface KvmVerdict {
  readonly accel: Accelerator;
  /** Why: what the probe saw, for the test's diagnostics. */
  readonly reason: string;
}

export interface ProbeRun {
  /** qemu ended through the debug-exit port with the sector's code, the marker on the serial port. */
  readonly ran: boolean;
  readonly seconds: number;
  readonly detail: string;
}

const QEMU = "qemu-system-x86_64";
/** Eight times what the sector needs under TCG here; a working KVM needs less. */
export const PROBE_LIMIT_MS = 2_000;
export const PROBE_MARKER = "chromogenic-kvm-probe-ok";
/** The value the sector writes to the isa-debug-exit port; qemu then exits with (value << 1) | 1. */
const EXIT_VALUE = 0x20;
const EXIT_CODE = (EXIT_VALUE << 1) | 1;
const DEBUG_EXIT_PORT = 0xf4;
const COM2 = 0x2f8;
const LOAD_ADDRESS = 0x7c00;

/**
 * The boot sector, in 16-bit real mode as the BIOS starts it at 0:7C00: DS cleared, the NUL-terminated marker
 * written byte by byte to COM2's transmit register, then EXIT_VALUE out to the debug-exit port, then halt.
 */
export function probeBootSector(): Buffer {
  const messageOffset = 0x1c;
  const lo = (n: number) => n & 0xff;
  const hi = (n: number) => n >> 8;
  const message = LOAD_ADDRESS + messageOffset;
  // prettier-ignore
  const code = [
    0x31, 0xc0,                         // 00 xor ax, ax
    0x8e, 0xd8,                         // 02 mov ds, ax
    0xfc,                               // 04 cld
    0xbe, lo(message), hi(message),     // 05 mov si, message
    0xba, lo(COM2), hi(COM2),           // 08 mov dx, COM2
    0xac,                               // 0b next: lodsb
    0x84, 0xc0,                         // 0c test al, al
    0x74, 0x03,                         // 0e jz done
    0xee,                               // 10 out dx, al
    0xeb, 0xf8,                         // 11 jmp next
    0xba, DEBUG_EXIT_PORT, 0x00,        // 13 done: mov dx, DEBUG_EXIT_PORT
    0xb0, EXIT_VALUE,                   // 16 mov al, EXIT_VALUE
    0xee,                               // 18 out dx, al
    0xf4,                               // 19 halt: hlt
    0xeb, 0xfd,                         // 1a jmp halt
  ];
  if (code.length !== messageOffset) throw new Error("kvm-probe: the message offset no longer matches the code");
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector);
  sector.write(`${PROBE_MARKER}\n\0`, messageOffset, "latin1");
  sector.writeUInt16LE(0xaa55, 510);
  return sector;
}

/** Boots the probe sector under `accel`; never throws, never leaves qemu running. */
export async function runProbe(accel: Accelerator, limitMs = PROBE_LIMIT_MS): Promise<ProbeRun> {
  const dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-kvm-probe-"));
  try {
    const disk = join(dir, "probe.raw");
    await writeFile(disk, probeBootSector());
    const args = [
      ["-accel", accel, "-machine", "pc", "-m", "32", "-display", "none", "-monitor", "none"],
      ["-serial", "null", "-serial", "stdio", "-nic", "none", "-no-reboot"],
      ["-device", `isa-debug-exit,iobase=0x${DEBUG_EXIT_PORT.toString(16)},iosize=0x04`],
      ["-drive", `file=${disk.replaceAll(",", ",,")},format=raw,if=ide,snapshot=on`],
    ].flat();
    return await new Promise<ProbeRun>((resolve) => {
      const started = Date.now();
      const seconds = () => (Date.now() - started) / 1000;
      const child = spawn(QEMU, args, { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.setEncoding("latin1").on("data", (c: string) => (out = (out + c).slice(-4096)));
      child.stderr.setEncoding("utf8").on("data", (c: string) => (err = (err + c).slice(-4096)));
      const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
      child.on("error", (e) => {
        clearTimeout(timer);
        resolve({ ran: false, seconds: seconds(), detail: `${QEMU} did not start (${e.message})` });
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        const ran = code === EXIT_CODE && out.includes(PROBE_MARKER);
        const how = signal ? `killed after the ${limitMs / 1000} s limit` : `exit code ${code}`;
        const said = err.trim() ? `; qemu said: ${err.trim().split("\n").slice(-3).join(" | ")}` : "";
        resolve({
          ran,
          seconds: seconds(),
          detail: `${how}, marker ${out.includes(PROBE_MARKER) ? "" : "not "}seen${said}`,
        });
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function decide(): Promise<KvmVerdict> {
  if (process.env.CHROMOGENIC_TEST_ACCEL === "tcg") return { accel: "tcg", reason: "CHROMOGENIC_TEST_ACCEL=tcg" };
  try {
    await access("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return { accel: "tcg", reason: "/dev/kvm is missing or not usable by this user" };
  }
  const tcg = await runProbe("tcg");
  if (!tcg.ran) return { accel: "tcg", reason: `the real-mode probe fails even under TCG: ${tcg.detail}` };
  const kvm = await runProbe("kvm");
  const what =
    `the real-mode probe under KVM: ${kvm.detail} in ${kvm.seconds.toFixed(2)} s ` +
    `(under TCG: ${tcg.seconds.toFixed(2)} s)`;
  return kvm.ran && kvm.seconds < tcg.seconds ? { accel: "kvm", reason: what } : { accel: "tcg", reason: what };
}

let verdict: Promise<KvmVerdict> | null = null;

/** The accelerator the boot proofs use, probed once per process. */
export function chooseAccelerator(): Promise<KvmVerdict> {
  verdict ??= decide();
  return verdict;
}
