import { readGuestText } from "../guest-files.js";
import { parseOsRelease } from "./os-release.js";

export type DistributionFamily = "debian" | "redhat" | "suse" | "arch" | "alpine" | "unknown";

export interface Distribution {
  /** os-release ID (debian, ubuntu, rocky, …) or "unknown". */
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly family: DistributionFamily;
}

const FAMILY_OF_ID: Readonly<Record<string, DistributionFamily>> = {
  debian: "debian",
  ubuntu: "debian",
  rhel: "redhat",
  centos: "redhat",
  rocky: "redhat",
  almalinux: "redhat",
  fedora: "redhat",
  ol: "redhat",
  amzn: "redhat",
  sles: "suse",
  "opensuse-leap": "suse",
  "opensuse-tumbleweed": "suse",
  opensuse: "suse",
  arch: "arch",
  alpine: "alpine",
};

function familyOf(id: string, idLike: string): DistributionFamily {
  for (const candidate of [id, ...idLike.split(/\s+/)]) {
    const family = FAMILY_OF_ID[candidate.toLowerCase()];
    if (family) return family;
  }
  return "unknown";
}

/**
 * Identifies the distribution from os-release (/etc, then /usr/lib), falling back on the older release files
 * (/etc/redhat-release, /etc/debian_version, /etc/SuSE-release) for guests from before os-release existed.
 */
export async function detectDistribution(root: string): Promise<Distribution> {
  const osRelease =
    (await readGuestText(root, "/etc/os-release")) ?? (await readGuestText(root, "/usr/lib/os-release"));
  if (osRelease) {
    const f = parseOsRelease(osRelease);
    const id = f.ID ?? "unknown";
    return {
      id,
      name: f.PRETTY_NAME ?? f.NAME ?? id,
      version: f.VERSION_ID ?? f.VERSION ?? "unknown",
      family: familyOf(id, f.ID_LIKE ?? ""),
    };
  }
  const redhat = await readGuestText(root, "/etc/redhat-release");
  if (redhat) {
    const line = redhat.split("\n")[0]!.trim();
    const id = /^centos/i.test(line)
      ? "centos"
      : /^fedora/i.test(line)
        ? "fedora"
        : /^red hat/i.test(line)
          ? "rhel"
          : "unknown";
    return { id, name: line, version: /release\s+([\d.]+)/.exec(line)?.[1] ?? "unknown", family: "redhat" };
  }
  const debian = await readGuestText(root, "/etc/debian_version");
  if (debian) return { id: "debian", name: "Debian", version: debian.trim(), family: "debian" };
  const suse = await readGuestText(root, "/etc/SuSE-release");
  if (suse) {
    const version = /VERSION\s*=\s*(\S+)/.exec(suse)?.[1] ?? "unknown";
    return { id: "suse", name: suse.split("\n")[0]!.trim(), version, family: "suse" };
  }
  return { id: "unknown", name: "unknown", version: "unknown", family: "unknown" };
}
