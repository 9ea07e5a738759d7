import { parse } from "yaml";
import { defineOperation } from "../cleaning-operation.js";
import type { CleaningContext } from "../cleaning-context.js";

/** The unit we install when nothing else in the guest would make host keys at boot. */
export const KEYGEN_UNIT = "/etc/systemd/system/chromogenic-ssh-hostkeys.service";
const KEYGEN_WANTS = "/etc/systemd/system/multi-user.target.wants/chromogenic-ssh-hostkeys.service";
export const KEYGEN_UNIT_TEXT = `# Installed by chromogenic clean: the image's SSH host keys were removed, and this guest had nothing
# that would make new ones at boot. ssh-keygen -A creates only the missing key types.
[Unit]
Description=Generate missing SSH host keys
Before=ssh.service sshd.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`;

const UNIT_DIRS = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

/** Units that make host keys at boot: Fedora/RHEL's sshd-keygen, Arch's sshdgenkeys, ours. */
const KEYGEN_UNITS = ["sshd-keygen@.service", "sshd-keygen.service", "sshd-keygen.target", "sshdgenkeys.service"];

/** cloud-init's merged configuration: cloud.cfg, then cloud.cfg.d/*.cfg in order (later top-level keys win). */
async function cloudConfig(ctx: CleaningContext): Promise<Record<string, unknown> | null> {
  const texts = [await ctx.readText("/etc/cloud/cloud.cfg")];
  for (const name of await ctx.list("/etc/cloud/cloud.cfg.d"))
    if (name.endsWith(".cfg")) texts.push(await ctx.readText(`/etc/cloud/cloud.cfg.d/${name}`));
  let merged: Record<string, unknown> | null = null;
  for (const text of texts) {
    if (text === null) continue;
    try {
      const doc: unknown = parse(text);
      if (doc && typeof doc === "object" && !Array.isArray(doc))
        merged = { ...(merged ?? {}), ...(doc as Record<string, unknown>) };
    } catch {
      ctx.warn("cloud-init configuration is not valid YAML; not counted on to make SSH host keys");
      return null;
    }
  }
  return merged;
}

function modulesInclude(modules: unknown, name: string): boolean {
  if (!Array.isArray(modules)) return false;
  return modules.some((m) => m === name || (Array.isArray(m) && m[0] === name));
}

/** Why the guest will make new host keys at boot, or null when nothing would. */
export async function hostKeyRegeneration(ctx: CleaningContext): Promise<string | null> {
  if (await ctx.exists(KEYGEN_UNIT)) return "regenerated at boot by chromogenic's ssh-keygen unit";
  const cloudInstalled =
    (await ctx.exists("/usr/bin/cloud-init")) && !(await ctx.exists("/etc/cloud/cloud-init.disabled"));
  if (cloudInstalled) {
    const config = await cloudConfig(ctx);
    const types = config?.ssh_genkeytypes;
    if (config && modulesInclude(config.cloud_init_modules, "ssh") && !(Array.isArray(types) && types.length === 0))
      return "regenerated at boot by cloud-init's ssh module";
  }
  for (const dir of UNIT_DIRS)
    for (const unit of KEYGEN_UNITS) if (await ctx.exists(`${dir}/${unit}`)) return `regenerated at boot by ${unit}`;
  if (await ctx.exists("/usr/libexec/openssh/sshd-keygen")) return "regenerated at boot by sshd-keygen";
  for (const script of ["/etc/init.d/sshd", "/etc/init.d/ssh"])
    if ((await ctx.readText(script))?.includes("ssh-keygen")) return `regenerated at boot by ${script}`;
  return null;
}

export default defineOperation({
  name: "ssh-hostkeys",
  description:
    "Remove SSH host keys where the image will make new ones at boot (cloud-init, sshd-keygen), else install a systemd unit that does",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    const keys = await ctx.glob("/etc/ssh/*_host_*");
    if (!keys.length) return;
    let why = await hostKeyRegeneration(ctx);
    if (!why) {
      // Debian and Ubuntu's ssh.service does not make keys: removing them bricks SSH access (the bug
      // vagrant-libvirt and others hit). On systemd we arrange it with a oneshot unit; nothing is run now.
      const sshUnit = await anyExists(
        ctx,
        UNIT_DIRS.flatMap((d) => [`${d}/ssh.service`, `${d}/sshd.service`]),
      );
      if (ctx.inspection.initSystem === "systemd" && sshUnit && (await ctx.exists("/usr/bin/ssh-keygen"))) {
        await ctx.createFile(KEYGEN_UNIT, KEYGEN_UNIT_TEXT, 0o644, "oneshot unit running ssh-keygen -A before sshd");
        await ctx.createSymlink(KEYGEN_WANTS, KEYGEN_UNIT, "enables chromogenic-ssh-hostkeys.service");
        // Files we create carry no SELinux label; on a guest with SELinux on, the first boot relabels them
        // (/.autorelabel, what virt-customize's --selinux-relabel relies on too) so systemd may read the unit.
        if (/^\s*SELINUX\s*=\s*(enforcing|permissive)\s*$/m.test((await ctx.readText("/etc/selinux/config")) ?? ""))
          await ctx.createFile("/.autorelabel", "", 0o644, "SELinux relabel at first boot (the new unit has no label)");
        why = "regenerated at boot by chromogenic's ssh-keygen unit";
      } else {
        ctx.warn(
          "SSH host keys kept: nothing in this guest would make new ones at boot (no cloud-init ssh module, no sshd-keygen, no systemd ssh unit)",
        );
        return;
      }
    }
    for (const key of keys) await ctx.remove(key, why);
  },
});

async function anyExists(ctx: CleaningContext, paths: readonly string[]): Promise<boolean> {
  for (const p of paths) if (await ctx.exists(p)) return true;
  return false;
}
