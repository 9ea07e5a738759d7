import { defineOperation } from "../cleaning-operation.js";
import { lineList, removeLines } from "../line-edits.js";

/** Device names Atmosphere gave attached volumes and ephemeral disks: sda2…sda19, vdb…vdz (and their partitions). */
export const EXTRA_VOLUME = /^\/dev\/(sda([2-9]|1[0-9])|vd[b-z][0-9]*)$/;

export default defineOperation({
  name: "fstab-extra-volumes",
  description:
    "Remove /etc/fstab entries for Atmosphere's extra volumes (/dev/sda2-19, /dev/vdb-vdz), matching the device field only",
  defaultEnabled: false,
  families: "all",
  async perform(ctx) {
    // The original's unanchored regexes matched anywhere in a line (a comment, an option) and removed the
    // line; here only an entry whose first field is such a device goes. Entries by UUID= or LABEL= cannot be
    // told apart from the image's own filesystems by name and are kept.
    await ctx.editText("/etc/fstab", (text) => {
      const r = removeLines(text, (line) => {
        const device = line.trim().split(/\s+/)[0] ?? "";
        return !line.trim().startsWith("#") && EXTRA_VOLUME.test(device);
      });
      return r && { text: r.text, detail: `removed extra-volume entries (${lineList(r.numbers)})` };
    });
  },
});
