import { globOperation } from "../glob-operation.js";

/** Not a default (as in virt-sysprep): without its rules a guest may boot with ports open that were closed. */
export default globOperation({
  name: "firewall-rules",
  description:
    "Remove custom firewall rules: /etc/sysconfig/iptables and firewalld's /etc/firewalld/services/* and zones/* (use with care)",
  defaultEnabled: false,
  remove: ["/etc/sysconfig/iptables", "/etc/firewalld/services/*", "/etc/firewalld/zones/*"],
});
