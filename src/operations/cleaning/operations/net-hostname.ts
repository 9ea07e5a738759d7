import { ifcfgKeyOperation } from "../ifcfg-key-operation.js";

export default ifcfgKeyOperation({
  name: "net-hostname",
  description: "Remove HOSTNAME= and DHCP_HOSTNAME= lines from ifcfg-* files",
  keys: ["HOSTNAME", "DHCP_HOSTNAME"],
});
