import { ifcfgKeyOperation } from "../ifcfg-key-operation.js";

export default ifcfgKeyOperation({
  name: "net-hwaddr",
  description: "Remove HWADDR= and MACADDR= lines (hard-coded MAC addresses) from ifcfg-* files",
  keys: ["HWADDR", "MACADDR"],
});
