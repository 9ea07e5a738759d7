import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "dhcp-server-state",
  description: "Remove DHCP server leases",
  defaultEnabled: true,
  remove: ["/var/lib/dhcpd/*", "/var/lib/dhcp/dhcpd.leases*", "/var/lib/dhcp3/dhcpd.leases*"],
});
