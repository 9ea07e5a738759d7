import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "sssd-db-log",
  description: "Remove sssd's cache databases (its logs are emptied in place by logfiles)",
  defaultEnabled: true,
  remove: ["/var/lib/sss/db/*", "/var/lib/sss/mc/*"],
});
