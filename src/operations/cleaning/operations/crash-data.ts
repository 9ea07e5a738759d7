import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "crash-data",
  description: "Remove kernel crash dumps (kexec-tools, kdump) in /var/crash and /var/log/dump",
  defaultEnabled: true,
  remove: ["/var/crash/*", "/var/log/dump/*"],
});
