import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "blkid-tab",
  description: "Remove blkid's device cache (blkid.tab), which names the old host's devices",
  defaultEnabled: true,
  remove: [
    "/var/run/blkid.tab",
    "/var/run/blkid.tab.old",
    "/etc/blkid/blkid.tab",
    "/etc/blkid/blkid.tab.old",
    "/etc/blkid.tab",
    "/etc/blkid.tab.old",
    "/dev/.blkid.tab",
    "/dev/.blkid.tab.old",
  ],
});
