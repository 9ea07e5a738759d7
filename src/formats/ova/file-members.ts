/**
 * Which tar member(s) hold a file the OVF descriptor references. An href names a member of the archive:
 * written with forward slashes by most producers, with backslashes by some Windows tools ("disks\disk1.vmdk",
 * matched to the member "disks/disk1.vmdk"); either way it must stay inside the archive (no "..", no absolute
 * or drive-letter path, no URL).
 *
 * A file split into chunks is stored as members href.000000000, href.000000001, … (DSP0243's ovf:chunkSize;
 * VMware writes 9 digits, 3 are seen too) and read as their concatenation. Some VMware exports drop
 * ovf:chunkSize and keep the chunks: when the href itself is absent but a numbered series is present, the
 * series is read as one file too. Either way the numbering must be exact — one width, starting at 0, no gap,
 * no number twice — and every chunk but the last the same size, so a missing or stray member is an error and
 * never a silently shorter or reordered disk. Without a declared chunk size, a later member that starts with
 * a VMDK header is a whole disk of its own (virt-v2v meets such series as snapshots), not a chunk: refused
 * rather than guessed at.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../errors.js";
import type { OvfFileRef } from "./ovf-descriptor-reader.js";
import { normaliseName, type TarMember } from "./tar-index.js";

/** The chunk number widths producers write. */
const CHUNK_DIGITS = [9, 3];
/** Magic of a hosted sparse or streamOptimized VMDK ("KDMV"). */
export const VMDK_MAGIC = Buffer.from("KDMV", "latin1");

/** The first `length` bytes of a member's data (a chunk's, to see whether it is a disk of its own). */
export type MemberHeadReader = (member: TarMember, length: number) => Promise<Buffer>;

/** The member name an href designates, or an error when it would leave the archive. */
export function hrefToMemberName(f: OvfFileRef, where: string): string {
  if (/^[a-z]:[\\/]/i.test(f.href)) {
    throw new CorruptImageError(`${where}: file ${f.id} has an absolute Windows path (${f.href}); refused`);
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(f.href)) {
    throw new UnsupportedFeatureError(
      `${where}: file ${f.id} is a URL (${f.href}); only files inside the OVA are read`,
    );
  }
  return normaliseName(f.href.replace(/\\/g, "/"), where);
}

interface Numbered {
  readonly member: TarMember;
  readonly digits: string;
}

/** The archive's members by name, and the numbered ones (`base.<digits>`) grouped by base, built once. */
export class MemberIndex {
  readonly byName: ReadonlyMap<string, TarMember>;
  private readonly numbered = new Map<string, Numbered[]>();
  private readonly resolved = new Map<string, Promise<TarMember[]>>();

  constructor(members: readonly TarMember[]) {
    this.byName = new Map(members.map((m) => [m.name, m]));
    for (const member of members) {
      const m = /^(.+)\.(\d+)$/.exec(member.name);
      if (!m) continue;
      const group = this.numbered.get(m[1]!) ?? [];
      group.push({ member, digits: m[2]! });
      this.numbered.set(m[1]!, group);
    }
  }

  /**
   * The member(s) holding `f`, in order. Files naming the same member(s) share one answer, so a descriptor
   * that lists one href many times costs no more than listing it once.
   */
  membersOf(f: OvfFileRef, readHead: MemberHeadReader, where: string): Promise<TarMember[]> {
    const key = `${f.href}\0${f.chunkSize ?? ""}`;
    let members = this.resolved.get(key);
    if (!members) {
      members = this.resolve(f, readHead, where);
      this.resolved.set(key, members);
    }
    return members;
  }

  private async resolve(f: OvfFileRef, readHead: MemberHeadReader, where: string): Promise<TarMember[]> {
    const name = hrefToMemberName(f, where);
    const whole = this.byName.get(name);
    if (f.chunkSize === undefined && whole) return [whole];
    const chunks = this.series(name, where);
    if (chunks.length === 0) {
      throw new CorruptImageError(
        f.chunkSize === undefined
          ? `${where}: the descriptor names file "${f.href}", which is not in the archive`
          : `${where}: chunked file "${f.href}" has no chunk members (${name}.000000000, …)`,
      );
    }
    const chunkSize = f.chunkSize ?? chunks[0]!.size;
    const what = f.chunkSize === undefined ? "the first chunk's size" : "ovf:chunkSize";
    chunks.forEach((c, i) => {
      if (i < chunks.length - 1 ? c.size !== chunkSize : c.size > chunkSize) {
        throw new CorruptImageError(
          `${where}: chunk ${c.name} of "${f.href}" is ${c.size} bytes; ${what} is ${chunkSize}` +
            (i < chunks.length - 1 ? " and only the last chunk may be shorter" : ""),
        );
      }
    });
    if (f.chunkSize === undefined) await refuseWholeDisksAsChunks(chunks, readHead, f.href, where);
    return chunks;
  }

  /** Members `name.<digits>`, in number order, checked to be exactly 0, 1, 2, … in one width. */
  private series(name: string, where: string): TarMember[] {
    const found = [...(this.numbered.get(name) ?? [])];
    if (found.length === 0) return [];
    const widths = new Set(found.map((x) => x.digits.length));
    const width = found[0]!.digits.length;
    if (widths.size > 1 || !CHUNK_DIGITS.includes(width)) {
      throw new CorruptImageError(
        `${where}: the chunks of "${name}" are numbered with ${[...widths].join(" and ")} digits; ` +
          `one series of ${CHUNK_DIGITS.join(" or ")}-digit numbers is expected`,
      );
    }
    found.sort((a, b) => (a.digits < b.digits ? -1 : 1));
    found.forEach((x, i) => {
      const expected = `${name}.${String(i).padStart(width, "0")}`;
      if (x.member.name !== expected) {
        throw new CorruptImageError(
          `${where}: chunk ${expected} of "${name}" is missing (the next member is ${x.member.name}); ` +
            "the chunks must be numbered from 0 without gaps",
        );
      }
    });
    return found.map((x) => x.member);
  }
}

async function refuseWholeDisksAsChunks(
  chunks: readonly TarMember[],
  readHead: MemberHeadReader,
  href: string,
  where: string,
): Promise<void> {
  for (const c of chunks.slice(1)) {
    if (c.size < VMDK_MAGIC.length) continue;
    const head = await readHead(c, VMDK_MAGIC.length);
    if (head.equals(VMDK_MAGIC)) {
      throw new CorruptImageError(
        `${where}: ${c.name} starts with a VMDK header of its own, so the members ${href}.NNN are separate ` +
          `disks (snapshots?), not chunks of one file; without ovf:chunkSize there is no telling which to read`,
      );
    }
  }
}
