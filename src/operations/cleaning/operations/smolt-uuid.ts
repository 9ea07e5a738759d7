import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "smolt-uuid",
  description: "Remove the Smolt hardware UUID",
  defaultEnabled: true,
  remove: ["/etc/sysconfig/hw-uuid", "/etc/smolt/uuid", "/etc/smolt/hw-uuid"],
});
