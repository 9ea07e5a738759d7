import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "package-manager-cache",
  description: "Remove downloaded packages and caches of apt, dnf, yum, zypper, apk and pacman (their folders stay)",
  defaultEnabled: true,
  remove: [
    "/var/cache/apt/archives/*.deb",
    "/var/cache/apt/archives/partial/*",
    "/var/cache/apt/*.bin",
    "/var/cache/dnf/*",
    "/var/cache/yum/*",
    "/var/cache/zypp/*",
    "/var/cache/apk/*",
    "/var/cache/pacman/pkg/*",
  ],
});
