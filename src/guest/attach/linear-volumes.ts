/**
 * Logical volumes reached without device-mapper: on a host whose kernel has none (some microVM kernels), a
 * volume that is one linear run of extents on one physical volume — what an installer's root volume usually
 * is — is the byte range `pe_start + first extent × extent size` of that PV, so a loop device over that range
 * of our PV's loop device is the volume, read and written in place. Anything else (striped, mirrored, thin,
 * several segments) needs device-mapper and is refused with the reason.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { GuestJournal } from "../journal/guest-journal.js";
import { attachLoop } from "./loop-device.js";
import { LVM_ENV } from "./lvm-config.js";

const execFileP = promisify(execFile);

/** One row of an LVM JSON report (`--reportformat json`): every value a string. */
type ReportRow = Record<string, string>;

async function report(command: string, config: string, fields: string, extra: readonly string[]) {
  const args = ["--config", config, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields, ...extra];
  const { stdout } = await execFileP(command, args, { env: LVM_ENV });
  const parsed = JSON.parse(stdout) as { report?: Record<string, ReportRow[]>[] };
  return Object.values(parsed.report?.[0] ?? {})[0] ?? [];
}

export interface LinearVolume {
  readonly name: string;
  readonly device: string;
}

/**
 * Loop devices over the logical volumes of `vg` (seen through `config`, our loop devices only); a string
 * saying why when one of them is not a single linear run of extents.
 */
export async function linearVolumesAsLoops(
  journal: GuestJournal,
  config: string,
  vg: string,
  readOnly: boolean,
): Promise<LinearVolume[] | string> {
  const segments = await report("lvs", config, "lv_name,segtype,seg_pe_ranges,vg_extent_size", ["--segments", vg]);
  const pvStart = new Map(
    (await report("pvs", config, "pv_name,pe_start", [])).map((r) => [r.pv_name!, Number(r.pe_start)]),
  );
  const perVolume = new Map<string, ReportRow[]>();
  for (const s of segments) perVolume.set(s.lv_name!, [...(perVolume.get(s.lv_name!) ?? []), s]);
  const planned: { name: string; pv: string; offset: number; size: number }[] = [];
  for (const [name, rows] of perVolume) {
    const range = /^(.+):(\d+)-(\d+)$/.exec(rows[0]!.seg_pe_ranges ?? "");
    const extent = Number(rows[0]!.vg_extent_size);
    const start = range ? pvStart.get(range[1]!) : undefined;
    if (rows.length !== 1 || rows[0]!.segtype !== "linear" || !range || start === undefined || !(extent > 0)) {
      const kinds = rows.map((r) => r.segtype).join(", ");
      return `volume ${vg}/${name} is ${rows.length} segment(s) of ${kinds}, not one linear run of extents`;
    }
    const first = Number(range[2]);
    const last = Number(range[3]);
    planned.push({ name, pv: range[1]!, offset: start + first * extent, size: (last - first + 1) * extent });
  }
  const volumes: LinearVolume[] = [];
  for (const p of planned)
    volumes.push({ name: p.name, device: await attachLoop(journal, p.pv, p.offset, p.size, readOnly) });
  return volumes;
}
