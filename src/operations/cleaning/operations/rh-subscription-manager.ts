import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "rh-subscription-manager",
  description: "Remove RH subscription-manager's consumer identity and entitlements",
  defaultEnabled: true,
  families: ["redhat"],
  remove: ["/etc/pki/consumer/*", "/etc/pki/entitlement/*"],
});
