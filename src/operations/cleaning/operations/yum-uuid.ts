import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "yum-uuid",
  description: "Remove yum's per-installation UUID",
  defaultEnabled: true,
  families: ["redhat"],
  remove: ["/var/lib/yum/uuid"],
});
