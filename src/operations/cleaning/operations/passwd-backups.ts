import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "passwd-backups",
  description: "Remove the account files' backups (/etc/passwd-, shadow-, group-, gshadow-, subuid-, subgid-)",
  defaultEnabled: true,
  remove: ["/etc/passwd-", "/etc/shadow-", "/etc/group-", "/etc/gshadow-", "/etc/subuid-", "/etc/subgid-"],
});
