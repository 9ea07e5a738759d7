import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "rpm-db",
  description: "Remove the host-specific RPM database environment files (__db.*); the database itself stays",
  defaultEnabled: true,
  families: ["redhat", "suse"],
  remove: ["/var/lib/rpm/__db.*", "/usr/lib/sysimage/rpm/__db.*"],
});
