import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "dhcp-client-state",
  description: "Remove DHCP client leases (dhclient, dhcpcd, NetworkManager, systemd-networkd)",
  defaultEnabled: true,
  remove: [
    "/var/lib/dhclient/*",
    "/var/lib/dhcp/dhclient*",
    "/var/lib/dhcp3/dhclient*",
    "/var/lib/dhcpcd/*",
    "/var/lib/dhcpcd5/*",
    "/var/lib/NetworkManager/dhclient-*",
    "/var/lib/NetworkManager/internal-*",
    "/var/lib/NetworkManager/*.lease",
    "/var/lib/systemd/network/*",
  ],
});
