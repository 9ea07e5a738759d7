/**
 * `chromogenic bootable`: a disk that boots on a BIOS PC (KVM, qemu, VirtualBox, VMware) from an image whose root
 * filesystem has a kernel and an initramfs but nothing to start them. The steps, in order:
 *   open the input through the engine (any format it reads; a bare filesystem or a partitioned disk)
 *   ─► already boots? (a recognised loader in its MBR whose configuration names an existing kernel): copied
 *      unchanged, in the output's format
 *   ─► plan the layout (operations/boot/disk-layout.ts); a dry run mounts the input read-only and reports
 *   ─► build the disk in a raw working file (operations/boot/build-bootable-disk.ts)
 *   ─► write it out as OUTPUT in the chosen format under a temporary name, renamed when complete.
 * The working file, loop devices and mounts are in one guest journal, undone on every exit path (a kill -9
 * leaves the journal for `chromogenic guest cleanup`). The input is only read.
 */
import { chmod, mkdir, realpath } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { convertFile } from "../formats/engine/convert.js";
import { openImage } from "../formats/engine/open-image.js";
import { recogniseInput } from "../formats/engine/recognise-input.js";
import { TemporaryOutputFile } from "../formats/io/replacing-output.js";
import { outputModeFor } from "../formats/io/output-mode.js";
import type { ImageSource, ReferencePolicy } from "../formats/types.js";
import { openGuest } from "../guest/guest-session.js";
import { filesystemMagic } from "../guest/inspect/filesystem-magic.js";
import { GuestJournal, stateDir } from "../guest/journal/guest-journal.js";
import { readPartitionTable } from "../guest/partitions/read-partition-table.js";
import { NotBootableError } from "../operations/boot/boot-errors.js";
import { planBootLoader } from "../operations/boot/boot-loader-plan.js";
import type { BootableReport } from "../operations/boot/bootable-report.js";
import { buildBootableDisk, describePlan } from "../operations/boot/build-bootable-disk.js";
import { planLayout, type DiskLayout, type InputDiskFacts, type TableKind } from "../operations/boot/disk-layout.js";
import { findExistingBoot, type ExistingBoot } from "../operations/boot/existing-boot.js";
import { recogniseBootCode } from "../operations/boot/grub-boot-sectors.js";
import { buildCoreImage, grubFilesystemModule, type GrubFilesystemModule } from "../operations/boot/grub-core-image.js";
import { runGuestEdits, type GuestEdits } from "../operations/boot/guest-edits.js";
import { installLoaderFiles } from "../operations/boot/install-loader-files.js";
import { AbortedError, UsageError } from "../util/errors.js";
import type { WorkListener } from "../util/events.js";

export type { BootableReport } from "../operations/boot/bootable-report.js";
export type { GuestEdits } from "../operations/boot/guest-edits.js";

export interface BootableRequest {
  readonly input: string;
  /** Required unless dryRun; written under a temporary name and renamed once complete. */
  readonly output?: string;
  /** Default: the input's format. */
  readonly outputFormat?: string;
  readonly inputFormat?: string;
  readonly references?: ReferencePolicy;
  /** The new disk's size in bytes (default: the input's plus what the layout needs). */
  readonly size?: number;
  /** For a bare filesystem: the new table (default mbr). A partitioned input keeps its own. */
  readonly table?: TableKind;
  readonly dryRun?: boolean;
  /** Folder for the raw working disk (default: the output's folder). */
  readonly workDir?: string;
  /** Edits made in the guest while the new disk is mounted (the Xen → KVM conversion's). */
  readonly guestEdits?: GuestEdits;
  /**
   * Runs on the built working disk once it is unmounted and before it is written out (the Xen conversion's
   * initramfs rebuild in the libguestfs appliance). Not in a dry run.
   */
  readonly afterBuild?: (disk: { readonly path: string; readonly format: string }) => Promise<void>;
  /**
   * false: a disk that already boots is only reported, not copied to OUTPUT (a job then delivers its input as it
   * is, sparing a copy). Default true.
   */
  readonly copyIfBootable?: boolean;
  readonly signal?: AbortSignal;
  /** Phases copy, attach, boot, commit, with the copy's and commit's progress. */
  readonly onEvent?: WorkListener;
}

const SECTOR = 512;

interface InputFacts extends InputDiskFacts {
  readonly format: string;
  readonly bootCode: ReturnType<typeof recogniseBootCode>;
  /** GRUB modules of the filesystems found by their magic, and whether LVM is there. */
  readonly filesystems: ReadonlySet<GrubFilesystemModule>;
  readonly lvm: boolean;
}

async function describeInput(where: string, source: ImageSource, format: string): Promise<InputFacts> {
  const table = await readPartitionTable(source, where);
  const sector0 = source.virtualSize >= SECTOR ? await source.read(0, SECTOR) : Buffer.alloc(SECTOR);
  const areas = table
    ? table.partitions.filter((p) => p.role !== "swap" && p.role !== "bios-boot" && p.role !== "efi")
    : [{ offset: 0, size: source.virtualSize }];
  const filesystems = new Set<GrubFilesystemModule>();
  let lvm = false;
  for (const area of areas) {
    const magic = await filesystemMagic(source, area.offset, area.size);
    if (magic === "lvm") lvm = true;
    const module = magic && grubFilesystemModule(magic === "ext" ? "ext4" : magic);
    if (module) filesystems.add(module);
  }
  // A guest in LVM may hold any of them; the core image is sized for the largest.
  if (lvm) for (const m of ["ext2", "xfs", "btrfs"] as const) filesystems.add(m);
  if (filesystems.size === 0)
    throw new NotBootableError(`${where} holds no ext2/3/4, XFS or btrfs filesystem (nor LVM) to boot from`);
  return {
    where,
    format,
    size: source.virtualSize,
    table,
    sector0,
    bootCode: table ? recogniseBootCode(sector0) : "none",
    filesystems,
    lvm,
  };
}

/** Sectors of the largest core image this input may need (its size varies with the filesystem module). */
async function coreSectorsFor(input: InputFacts, table: TableKind): Promise<number> {
  let most = 0;
  for (const filesystem of input.filesystems) {
    const core = await buildCoreImage({
      table,
      filesystem,
      filesystemUuid: "00000000-0000-0000-0000-000000000000",
      prefix: "/boot/grub",
      lvm: input.lvm,
    });
    most = Math.max(most, Math.ceil(core.length / SECTOR));
  }
  return most;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const ra = await realpath(a).catch(() => resolve(a));
  const rb = await realpath(b).catch(() => resolve(b));
  return ra === rb;
}

function layoutSummary(layout: DiskLayout): NonNullable<BootableReport["layout"]> {
  return { mode: layout.mode, table: layout.table, diskSize: layout.diskSize, partitions: layout.partitions };
}

/** The input's guest mounted read-only (a format other than raw through a working copy in `workDir`). */
function openInputReadOnly(request: BootableRequest, input: InputFacts, workDir: string) {
  return openGuest(request.input, {
    readOnly: true,
    format: input.format,
    references: request.references,
    workDir,
    signal: request.signal,
  });
}

/** Whether the input boots as it is: its loader's configuration, read on the input mounted read-only. */
async function existingBoot(
  request: BootableRequest,
  input: InputFacts,
  workDir: string,
): Promise<ExistingBoot | null> {
  if (input.bootCode !== "grub" && input.bootCode !== "syslinux") return null;
  const session = await openInputReadOnly(request, input, workDir);
  try {
    return await findExistingBoot(session.mounted.root, input.bootCode);
  } finally {
    await session.close();
  }
}

/** The dry run: the input mounted read-only, the guest edits and the boot loader's files planned, not made. */
async function dryRun(request: BootableRequest, layout: DiskLayout, input: InputFacts, workDir: string) {
  const session = await openInputReadOnly(request, input, workDir);
  try {
    const { mounted } = session;
    const edits = await runGuestEdits(request.guestEdits, mounted, true, request.signal);
    const plan = await planBootLoader(mounted, layout, edits);
    const changes = [...(edits?.changes ?? []), ...(await installLoaderFiles(mounted.root, plan, true))];
    const core = plan.loader === "grub" ? await buildCoreImage(plan.core) : undefined;
    return {
      ...describePlan(plan, layout, core?.length),
      changes,
      warnings: [...plan.warnings, ...(edits?.warnings ?? [])],
    };
  } finally {
    await session.close();
  }
}

export async function makeBootable(request: BootableRequest): Promise<BootableReport> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  const dry = request.dryRun ?? false;
  const { output, signal, onEvent } = request;
  if (!dry && !output) throw new UsageError("bootable needs an OUTPUT (or --dry-run)");
  if (dry && output) throw new UsageError("--dry-run writes nothing: leave out OUTPUT");
  if (output && (await sameFile(output, request.input)))
    throw new UsageError(`output ${output} is the input itself: the input is never changed`);
  if (request.size !== undefined && (!Number.isSafeInteger(request.size) || request.size <= 0))
    throw new UsageError(`--size ${request.size} is not a size in bytes`);
  const workDir = request.workDir ?? (output ? dirname(resolve(output)) : tmpdir());

  const recognised = await recogniseInput(request.input, { format: request.inputFormat, signal });
  if (recognised.kind === "appliance") {
    if (typeof recognised.ova !== "string") await recognised.ova.close();
    throw new UsageError(
      `${request.input} is an OVA (an appliance), not a disk image: convert one of its disks first ` +
        `(chromogenic convert --disk N -O raw ${request.input} disk.raw)`,
    );
  }
  const { driver, source } = await openImage(recognised.input, {
    format: request.inputFormat,
    references: request.references,
    signal,
  });
  try {
    const input = await describeInput(request.input, source, driver.name);
    const outputFormat = request.outputFormat ?? driver.name;
    const base = { input: request.input, ...(output ? { output } : {}), outputFormat, dryRun: dry };

    const existing = await existingBoot(request, input, workDir);
    timings.inspect = performance.now() - started;
    if (existing) {
      if (!dry && request.copyIfBootable !== false) {
        onEvent?.({ event: "phase", phase: "commit", state: "start", detail: `${output} (copied unchanged)` });
        await convertFile({
          input: request.input,
          inputFormat: driver.name,
          output: output!,
          outputFormat,
          references: request.references,
          signal,
          onProgress: onEvent && ((e) => onEvent({ ...e, phase: "commit" })),
        });
        onEvent?.({ event: "phase", phase: "commit", state: "end" });
      }
      return { ...base, alreadyBootable: existing, changes: [], warnings: [], timingsMs: roundAll(timings) };
    }
    const warnings: string[] = [];
    if (input.bootCode === "unknown")
      warnings.push(`${request.input}'s MBR holds boot code no loader here recognises: the output gets GRUB's`);

    const table = request.table ?? input.table?.scheme ?? "mbr";
    const layout = planLayout(input, {
      table: request.table,
      size: request.size,
      coreSectors: await coreSectorsFor(input, table),
    });
    if (dry) {
      const planned = await dryRun(request, layout, input, workDir);
      timings.total = performance.now() - started;
      return {
        ...base,
        layout: layoutSummary(layout),
        ...planned,
        warnings: [...warnings, ...planned.warnings],
        timingsMs: roundAll(timings),
      };
    }

    await mkdir(workDir, { recursive: true });
    const journal = await GuestJournal.create();
    try {
      const workRaw = join(workDir, `.${basename(output!)}.chromogenic-bootable-${process.pid}.raw`);
      await journal.record({ kind: "file", path: workRaw });
      const mountBase = join(stateDir(), "mnt");
      await mkdir(mountBase, { recursive: true, mode: 0o700 });
      let t = performance.now();
      const built = await buildBootableDisk({
        source,
        layout,
        workRaw,
        journal,
        mountBase,
        guestEdits: request.guestEdits,
        signal,
        onEvent,
      });
      timings.build = performance.now() - t;
      if (signal?.aborted) throw new AbortedError();
      if (request.afterBuild) {
        t = performance.now();
        await request.afterBuild({ path: workRaw, format: "raw" });
        timings.afterBuild = performance.now() - t;
        if (signal?.aborted) throw new AbortedError();
      }

      t = performance.now();
      // The working disk is private (0600) while built; the output takes the input's mode, as convert's would.
      await chmod(workRaw, await outputModeFor(request.input));
      onEvent?.({ event: "phase", phase: "commit", state: "start", detail: `${output} (${outputFormat})` });
      const temporaryPath = TemporaryOutputFile.temporaryPathFor(output!);
      await journal.record({ kind: "file", path: temporaryPath });
      await convertFile({
        input: workRaw,
        inputFormat: "raw",
        output: output!,
        temporaryPath,
        outputFormat,
        signal,
        onProgress: onEvent && ((e) => onEvent({ ...e, phase: "commit" })),
      });
      onEvent?.({ event: "phase", phase: "commit", state: "end" });
      timings.commit = performance.now() - t;
      timings.total = performance.now() - started;
      return {
        ...base,
        layout: layoutSummary(layout),
        ...built,
        warnings: [...warnings, ...built.warnings],
        timingsMs: roundAll(timings),
      };
    } finally {
      await journal.undoAll();
    }
  } finally {
    await source.close();
  }
}

function roundAll(timings: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)]));
}
