import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "pam-data",
  description: "Remove PAM's runtime data (console locks, faillock and sepermit records)",
  defaultEnabled: true,
  remove: ["/var/run/console/*", "/var/run/faillock/*", "/var/run/sepermit/*"],
});
