import { defineEdit } from "../conversion-edit.js";
import type { ConversionContext } from "../conversion-context.js";
import {
  APPLIANCE_WRITTEN_FILES,
  defaultInitramfsPath,
  INITRAMFS_TOOLS,
  isSafeRelease,
  rebuildCommand,
  VIRTIO_DRIVERS,
  type InitramfsTool,
} from "../initramfs/rebuild-plan.js";
import { NOTE_PREFIX, rewriteLines } from "../line-changes.js";

const MODULES_FILE = "/etc/initramfs-tools/modules";
const DRACUT_FILE = "/etc/dracut.conf.d/virtio.conf";
const DRACUT_LINE = `add_drivers+=" ${VIRTIO_DRIVERS.join(" ")} "`;
const NOTE = `${NOTE_PREFIX} the virtio drivers a KVM machine boots from`;

const modName = (word: string) => word.replace(/-/g, "_");

async function findTool(ctx: ConversionContext): Promise<InitramfsTool | null> {
  for (const { tool, paths } of INITRAMFS_TOOLS)
    for (const path of paths) if ((await ctx.tree.kind(path)) !== null) return tool;
  return null;
}

/**
 * initramfs-tools' MODULES setting as update-initramfs will see it: initramfs.conf, then each conf.d file in
 * name order, the last assignment winning.
 */
async function initramfsToolsModules(ctx: ConversionContext): Promise<string> {
  const files = [
    "/etc/initramfs-tools/initramfs.conf",
    ...(await ctx.tree.list("/etc/initramfs-tools/conf.d")).sort().map((n) => `/etc/initramfs-tools/conf.d/${n}`),
  ];
  let value = "most"; // initramfs-tools' default
  for (const path of files)
    for (const line of ((await ctx.tree.readText(path)) ?? "").split("\n")) {
      const m = /^\s*MODULES\s*=\s*["']?([A-Za-z]+)["']?\s*(?:#.*)?$/.exec(line);
      if (m) value = m[1]!;
    }
  return value;
}

const MODULES_NOTES: Readonly<Record<string, string>> = {
  list: "MODULES=list: the initramfs holds only the modules listed there, so this list is what matters",
  most: "MODULES=most already takes most disk drivers; listing virtio makes sure",
  dep: "MODULES=dep picks drivers for the machine the tool runs on (the appliance), so virtio is listed outright",
  netboot: "MODULES=netboot leaves disk drivers out unless listed",
};

/** The modules a modules file lists: the first word of each line, comments left out, `-` read as `_`. */
function listedModules(text: string): Set<string> {
  return new Set(text.split("\n").flatMap((l) => l.replace(/#.*/, "").trim().split(/\s+/).slice(0, 1).map(modName)));
}

/** Debian/Ubuntu: the virtio drivers listed in /etc/initramfs-tools/modules. Whether the file now asks for them. */
async function askInitramfsTools(ctx: ConversionContext): Promise<boolean> {
  const setting = await initramfsToolsModules(ctx);
  const note = MODULES_NOTES[setting] ?? `MODULES=${setting}`;
  const before = ctx.state.changes.length;
  if ((await ctx.tree.kind(MODULES_FILE)) === null)
    // No modules file (or no /etc/initramfs-tools at all): the guest's tool still reads it.
    await ctx.tree.createFile(MODULES_FILE, [NOTE, ...VIRTIO_DRIVERS, ""].join("\n"), 0o644, `created (${note})`);
  else
    await ctx.editLines(MODULES_FILE, (text) => {
      const listed = listedModules(text);
      const edit = rewriteLines(text, () => null, [NOTE, ...VIRTIO_DRIVERS.filter((d) => !listed.has(d))]);
      return edit && edit.lines.length > 1 ? { ...edit, detail: `${edit.detail} (${note})` } : null;
    });
  const listed = listedModules((await ctx.tree.readText(MODULES_FILE)) ?? "");
  // A dry run's created file is not readable yet: that it would be created is enough.
  return VIRTIO_DRIVERS.every((d) => listed.has(d)) || (ctx.dryRun && ctx.state.changes.length > before);
}

/** RHEL 6 and later: a dracut.conf.d file adding the virtio drivers. Whether dracut will now be asked for them. */
async function askDracut(ctx: ConversionContext): Promise<boolean> {
  if ((await ctx.tree.kind(DRACUT_FILE)) === null)
    await ctx.tree.createFile(DRACUT_FILE, `${NOTE}\n${DRACUT_LINE}\n`, 0o644, "asks dracut for the virtio drivers");
  else
    await ctx.editLines(DRACUT_FILE, (text) =>
      text.split("\n").includes(DRACUT_LINE) ? null : rewriteLines(text, () => null, [NOTE, DRACUT_LINE]),
    );
  return ctx.dryRun || ((await ctx.tree.readText(DRACUT_FILE)) ?? "").split("\n").includes(DRACUT_LINE);
}

/** Which of the files virt-customize writes are empty or absent now, to be put back so after the rebuild. */
async function filesToRestore(ctx: ConversionContext): Promise<{ truncate: string[]; remove: string[] }> {
  const truncate: string[] = [];
  const remove: string[] = [];
  for (const path of APPLIANCE_WRITTEN_FILES) {
    const kind = await ctx.tree.kind(path);
    if (kind === null) remove.push(path);
    else if (kind === "file" && (await ctx.tree.readText(path)) === "") truncate.push(path);
  }
  return { truncate, remove };
}

export default defineEdit({
  name: "initramfs-modules",
  description:
    "When the initramfs lacks virtio, ask the guest's tool for the virtio drivers (initramfs-tools' modules file, a dracut.conf.d file, mkinitrd's --with arguments) and plan its rebuild, which rebuildConvertedInitramfs runs inside the libguestfs appliance",
  defaultEnabled: true,
  async perform(ctx) {
    const check = ctx.state.initramfs;
    const boot = ctx.state.boot;
    if (!check || !boot) return "no kernel to rebuild an initramfs for";
    if (check.verdict !== "must-rebuild") return `the initramfs needs no rebuild (${check.verdict})`;
    // A ramdisk the caller gave (an ERI/ARI) is rebuilt like the guest's own when the guest holds the modules
    // of that kernel, as a Eucalyptus guest made from the same distribution does; otherwise it must be replaced.
    if ((await ctx.tree.kind(`/lib/modules/${boot.version}`)) !== "directory") {
      ctx.block(
        boot.origin === "external"
          ? `the ramdisk given lacks virtio and the guest has no /lib/modules/${boot.version} to rebuild it from: ` +
              "give a ramdisk with virtio_blk and virtio_pci"
          : `the guest has no /lib/modules/${boot.version}, so its initramfs cannot be rebuilt with virtio`,
      );
      return "no modules for the kernel";
    }
    if (!isSafeRelease(boot.version)) {
      ctx.block(`kernel release "${boot.version}" is not a plain word; its initramfs is not rebuilt`);
      return "unsafe kernel release";
    }
    const tool = await findTool(ctx);
    if (!tool) {
      ctx.block("the guest has no update-initramfs, dracut or mkinitrd to rebuild its initramfs with virtio");
      return "no initramfs tool in the guest";
    }
    // initramfs-tools reads the kernel's build configuration to choose a compression it can unpack, and fails
    // without it: a kernel given from outside (EKI/AKI) comes without its /boot/config-VERSION.
    if (tool === "update-initramfs" && (await ctx.tree.kind(`/boot/config-${boot.version}`)) !== "file") {
      ctx.block(
        `the guest has no /boot/config-${boot.version}, which update-initramfs needs to rebuild the initramfs ` +
          "with virtio: give a ramdisk with virtio_blk and virtio_pci, or the kernel package's config file in /boot",
      );
      return "no kernel configuration for update-initramfs";
    }
    const asked =
      tool === "update-initramfs" ? await askInitramfsTools(ctx) : tool === "dracut" ? await askDracut(ctx) : true;
    if (!asked) {
      ctx.block(`the ${tool} configuration could not be written, so a rebuild would still lack virtio`);
      return "configuration not written";
    }
    const initramfs = boot.initramfs ?? defaultInitramfsPath(tool, boot.version);
    ctx.state.rebuild = {
      tool,
      version: boot.version,
      initramfs,
      command: rebuildCommand(tool, boot.version, initramfs, boot.initramfs !== null),
      restore: await filesToRestore(ctx),
    };
  },
});
