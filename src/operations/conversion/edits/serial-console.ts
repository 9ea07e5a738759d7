import type { ConversionContext } from "../conversion-context.js";
import { defineEdit } from "../conversion-edit.js";
import { commentOut, rewriteLines } from "../line-changes.js";
import {
  GETTY_COMMAND,
  isXenConsoleInittabLine,
  isXenConsoleUpstartJob,
  upstartExecs,
  XEN_GETTY_UNIT,
} from "../xen-names.js";

const SYSTEMD_UNIT_FOLDERS = ["/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"];
const GETTY_WANTS = "/etc/systemd/system/getty.target.wants";
const UPSTART_JOBS = "/etc/init";

/**
 * The guest's getty program: util-linux's getty (Debian, Ubuntu) or agetty (RHEL and CentOS have no
 * /sbin/getty); in a tree that has neither, its family's.
 */
async function gettyProgram(ctx: ConversionContext): Promise<string> {
  for (const path of ["/sbin/getty", "/sbin/agetty", "/usr/sbin/agetty", "/usr/sbin/getty"])
    if ((await ctx.tree.kind(path)) !== null) return path;
  return ctx.distribution.family === "redhat" ? "/sbin/agetty" : "/sbin/getty";
}

/** The getty's arguments: both getty and agetty accept port, then speed, then terminal type. */
const gettyCommand = (program: string) => `${program} -L ttyS0 115200 vt100`;

/** An upstart job for the serial getty: one `exec`, since upstart refuses a job with two. */
export function upstartSerialJob(program: string): string {
  return [
    "# ttyS0 - getty on the serial console",
    "#",
    "# Written by chromogenic when it converted this guest from Xen to KVM.",
    "",
    "start on stopped rc RUNLEVEL=[2345]",
    "stop on runlevel [!2345]",
    "",
    "respawn",
    `exec ${gettyCommand(program)}`,
    "",
  ].join("\n");
}

async function systemdGettys(ctx: ConversionContext, enable: boolean): Promise<void> {
  for (const folder of await ctx.tree.list("/etc/systemd/system")) {
    if (!folder.endsWith(".wants")) continue;
    for (const name of await ctx.tree.list(`/etc/systemd/system/${folder}`))
      if (XEN_GETTY_UNIT.test(name))
        await ctx.tree.remove(`/etc/systemd/system/${folder}/${name}`, "disabled the getty on the Xen console");
  }
  if (!enable || (await ctx.tree.kind(`${GETTY_WANTS}/serial-getty@ttyS0.service`)) !== null) return;
  let unit: string | null = null;
  for (const folder of SYSTEMD_UNIT_FOLDERS)
    if ((await ctx.tree.kind(`${folder}/serial-getty@.service`)) !== null) {
      unit = `${folder}/serial-getty@.service`;
      break;
    }
  if (!unit) {
    ctx.warn("the guest has no serial-getty@.service; no getty enabled on ttyS0");
    return;
  }
  await ctx.tree.createSymlink(`${GETTY_WANTS}/serial-getty@ttyS0.service`, unit, "enabled serial-getty@ttyS0.service");
}

async function inittab(ctx: ConversionContext, addSerial: boolean, program: string): Promise<void> {
  await ctx.editLines("/etc/inittab", (text) => {
    const active = text.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
    const ids = new Set(active.map((l) => l.split(":")[0]));
    const id = ["T0", "S0", "s0", "T9"].find((i) => !ids.has(i)) ?? "c9";
    const add =
      addSerial && !active.some((l) => /\bttyS0\b/.test(l)) ? [`${id}:2345:respawn:${gettyCommand(program)}`] : [];
    return rewriteLines(
      text,
      (line) =>
        isXenConsoleInittabLine(line) ? commentOut(line, "a getty on the Xen console, which KVM has not") : null,
      add,
    );
  });
}

async function upstartJobs(ctx: ConversionContext, addSerial: boolean, program: string): Promise<void> {
  let serialJob = false;
  for (const name of await ctx.tree.list(UPSTART_JOBS)) {
    if (!name.endsWith(".conf")) continue;
    const path = `${UPSTART_JOBS}/${name}`;
    const job = await ctx.tree.readText(path);
    const execs = job === null ? [] : upstartExecs(job);
    const gettys = execs.filter((e) => GETTY_COMMAND.test(e));
    if (isXenConsoleUpstartJob(name, job))
      await ctx.tree.remove(path, "an upstart job running a getty on the Xen console");
    else if (execs.length > 1 && gettys.length)
      // The original chromogenic wrote getty.conf with two exec stanzas, which upstart refuses to load.
      await ctx.tree.remove(path, `an upstart job with ${execs.length} exec stanzas, which upstart refuses`);
    // RHEL 6's serial.conf already runs a getty on the serial console the kernel command line names.
    else if (gettys.some((e) => /\bttyS0\b/.test(e)) || (gettys.length && /serial-console-available/.test(job!)))
      serialJob = true;
  }
  if (addSerial && !serialJob)
    await ctx.tree.createFile(
      `${UPSTART_JOBS}/ttyS0.conf`,
      upstartSerialJob(program),
      0o644,
      "an upstart job running a getty on ttyS0",
    );
}

export default defineEdit({
  name: "serial-console",
  description:
    "A getty on the serial console ttyS0 in place of the Xen console's (hvc0/xvc0): systemd serial-getty@ttyS0 enabled, inittab or upstart job written; root logins allowed there by /etc/securetty",
  defaultEnabled: true,
  async perform(ctx) {
    const init = ctx.init.init;
    const program = init === "sysvinit" || init === "upstart" ? await gettyProgram(ctx) : "/sbin/getty";
    // Xen console gettys go whatever the init (they are dead weight, and fail, on any); the serial getty is
    // added where the guest's init reads it.
    await systemdGettys(ctx, init === "systemd");
    await inittab(ctx, init === "sysvinit", program);
    await upstartJobs(ctx, init === "upstart", program);
    // pam_securetty (CentOS 5/6) refuses root on a terminal it does not list.
    await ctx.editLines("/etc/securetty", (text) =>
      text.split("\n").some((l) => l.trim() === "ttyS0") ? null : rewriteLines(text, () => null, ["ttyS0"]),
    );
    if (init === "unknown") return `the guest's init is unknown (${ctx.init.evidence}): no getty added on ttyS0`;
  },
});
