import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "net-nmconn",
  description: "Remove system-local NetworkManager connection profiles (/etc/NetworkManager/system-connections)",
  defaultEnabled: true,
  remove: ["/etc/NetworkManager/system-connections/*"],
});
