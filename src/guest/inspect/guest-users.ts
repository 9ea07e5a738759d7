import { guestPathExists, readGuestText } from "../guest-files.js";

export interface GuestUser {
  readonly name: string;
  readonly uid: number;
  readonly home: string;
  readonly homeExists: boolean;
  readonly shell: string;
}

/** First uid of ordinary accounts where the guest's login.defs does not say otherwise. */
const DEFAULT_UID_MIN = 1000;

/** Ordinary accounts: passwd entries with UID_MIN ≤ uid < 65534 (nobody), with whether their home exists. */
export async function listUsers(root: string): Promise<GuestUser[]> {
  const passwd = await readGuestText(root, "/etc/passwd");
  if (!passwd) return [];
  const loginDefs = (await readGuestText(root, "/etc/login.defs")) ?? "";
  const uidMin = Number(/^\s*UID_MIN\s+(\d+)/m.exec(loginDefs)?.[1] ?? DEFAULT_UID_MIN);
  const users: GuestUser[] = [];
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f.length < 7) continue;
    const uid = Number(f[2]);
    if (!Number.isInteger(uid) || uid < uidMin || uid >= 65534) continue;
    const home = f[5]!;
    users.push({
      name: f[0]!,
      uid,
      home,
      homeExists: home.startsWith("/") && (await guestPathExists(root, home)),
      shell: f[6]!,
    });
  }
  return users;
}
