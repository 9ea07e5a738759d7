import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "samba-db-log",
  description: "Remove Samba's databases and old logs (its current logs are emptied in place by logfiles)",
  defaultEnabled: true,
  remove: ["/var/lib/samba/*", "/var/log/samba/old/*"],
});
