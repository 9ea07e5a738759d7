import { z } from "zod";
import { defineOperation } from "../cleaning-operation.js";
import type { CleaningContext } from "../cleaning-context.js";
import { removeLines, splitLines, bare } from "../line-edits.js";

const Params = z.strictObject({
  /** Accounts to keep (by name); a kept account is never removed. */
  keep: z.array(z.string().min(1)).optional(),
  /** When given, the only accounts removed (by name; still only ordinary ones): virt-sysprep's --remove-user-accounts. */
  remove: z.array(z.string().min(1)).optional(),
});

interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: string;
  readonly home: string;
}

/** Folders under which a removed account's home is removed; a home elsewhere (/srv/x, /var/lib/x) is kept. */
const HOME_PARENTS = ["/home/", "/var/home/", "/export/home/", "/usr/home/"];

async function loginRange(ctx: CleaningContext): Promise<{ min: number; max: number }> {
  const defs = (await ctx.readText("/etc/login.defs")) ?? "";
  const min = Number(/^\s*UID_MIN\s+(\d+)/m.exec(defs)?.[1] ?? 1000);
  const max = Number(/^\s*UID_MAX\s+(\d+)/m.exec(defs)?.[1] ?? 60000);
  return { min, max };
}

/** Removes `names` from a comma-separated member list field; returns the new line or the same one. */
function withoutMembers(line: string, fields: readonly number[], names: ReadonlySet<string>): string {
  const f = line.split(":");
  let changed = false;
  for (const i of fields) {
    if (f[i] === undefined || f[i] === "") continue;
    const members = f[i]!.split(",");
    const kept = members.filter((m) => !names.has(m));
    if (kept.length !== members.length) {
      f[i] = kept.join(",");
      changed = true;
    }
  }
  return changed ? f.join(":") : line;
}

/** Edits an account file: drops lines whose first field is in `drop`, strips `names` from member fields. */
async function editAccountFile(
  ctx: CleaningContext,
  path: string,
  drop: (first: string, fields: string[]) => boolean,
  memberFields: readonly number[],
  names: ReadonlySet<string>,
): Promise<void> {
  await ctx.editText(path, (text) => {
    const removed: string[] = [];
    let stripped = 0;
    const out: string[] = [];
    for (const line of splitLines(text)) {
      const b = bare(line);
      const f = b.split(":");
      if (b.trim() !== "" && !b.startsWith("#") && drop(f[0]!, f)) {
        removed.push(f[0]!);
        continue;
      }
      const next = withoutMembers(b, memberFields, names);
      if (next !== b) stripped++;
      out.push(next + line.slice(b.length));
    }
    if (!removed.length && !stripped) return null;
    const parts = [];
    if (removed.length) parts.push(`removed ${removed.join(", ")}`);
    if (stripped) parts.push(`removed them from ${stripped} member list(s)`);
    return { text: out.join(""), detail: parts.join("; ") };
  });
}

export default defineOperation({
  name: "user-account",
  description:
    "Remove ordinary accounts (UID_MIN..UID_MAX; all, or only a remove list, never a keep list) from passwd, shadow, group, gshadow, subuid, subgid, and their homes and mail",
  defaultEnabled: false,
  families: "all",
  parameters: Params,
  async perform(ctx) {
    const params = Params.parse(ctx.params);
    const keep = new Set(params.keep ?? []);
    const only = params.remove?.length ? new Set(params.remove) : null;
    const { min, max } = await loginRange(ctx);
    const accounts: Account[] = [];
    const kept: Account[] = [];
    for (const line of ((await ctx.readText("/etc/passwd")) ?? "").split("\n")) {
      const f = line.split(":");
      if (f.length < 7) continue;
      const uid = Number(f[2]);
      const account = { name: f[0]!, uid, gid: f[3]!, home: f[5]! };
      const chosen = !keep.has(account.name) && (!only || only.has(account.name));
      if (Number.isInteger(uid) && uid >= min && uid <= max && uid !== 0 && chosen) accounts.push(account);
      else kept.push(account);
    }
    if (!accounts.length) return;
    const names = new Set(accounts.map((a) => a.name));
    const uids = new Set(accounts.map((a) => String(a.uid)));
    const keptGids = new Set(kept.map((a) => a.gid));
    // A removed account's own group goes (same name, and no remaining account has it as primary group).
    const dropGroup = (name: string, f: string[]) => names.has(name) && !keptGids.has(f[2] ?? "");
    await editAccountFile(ctx, "/etc/passwd", (name) => names.has(name), [], names);
    await editAccountFile(ctx, "/etc/shadow", (name) => names.has(name), [], names);
    const droppedGroups = new Set<string>();
    await editAccountFile(
      ctx,
      "/etc/group",
      (name, f) => {
        const drop = dropGroup(name, f);
        if (drop) droppedGroups.add(name);
        return drop;
      },
      [3],
      names,
    );
    // gshadow has no GID: it follows what happened to /etc/group.
    await editAccountFile(ctx, "/etc/gshadow", (name) => droppedGroups.has(name), [2, 3], names);
    for (const path of ["/etc/subuid", "/etc/subgid"])
      await ctx.editText(path, (text) => {
        const r = removeLines(text, (line) => {
          const owner = line.split(":")[0] ?? "";
          return names.has(owner) || uids.has(owner);
        });
        return r && { text: r.text, detail: `removed ${r.count} range(s) of removed accounts` };
      });
    const keptHomes = new Set(kept.map((a) => a.home.replace(/\/+$/, "")));
    for (const account of accounts) {
      const home = account.home.replace(/\/+$/, "");
      if (keptHomes.has(home)) continue;
      if (HOME_PARENTS.some((p) => home.startsWith(p) && home.length > p.length))
        await ctx.remove(home, `home of ${account.name}`);
      else if (home !== "" && home !== "/nonexistent")
        ctx.warn(`home ${home} of ${account.name} is not under /home; kept`);
      for (const spool of ["/var/mail", "/var/spool/mail"]) await ctx.remove(`${spool}/${account.name}`);
    }
  },
});
