import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "pacct-log",
  description: "Empty the process-accounting log in place (pacct) and remove its rotated copies",
  defaultEnabled: true,
  remove: ["/var/account/pacct?*", "/var/log/account/pacct?*"],
  truncate: ["/var/account/pacct", "/var/log/account/pacct"],
});
