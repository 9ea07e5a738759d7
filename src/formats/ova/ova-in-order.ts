/**
 * An OVA read once, in order: from standard input (`chromogenic info -`, `convert --disk N - out.qcow2`), or
 * from any input read front to back. openOva indexes a file's members and then reads each where it lies; here
 * the members are met one after another, and what is needed of each must be taken as it passes. DSP0243
 * orders an OVA for this: the descriptor first, the manifest and certificate next (or last), then the files in
 * the order References lists them. So the descriptor is read first and tells the caller which member it wants
 * (next() hands over each member, take() reads one as an input of its own); the manifest and the first bytes
 * of possible chunks are kept as they pass; every member the manifest may list is hashed as it passes
 * (member-digests.ts), so the manifest is verified whether it comes before the files or after them. finish()
 * walks to the archive's end and assembles it (assembleOva) from the members met and the bytes kept, with the
 * same checks as for a file, then verifies the digests.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../errors.js";
import type { ImageInput } from "../inputs/image-input.js";
import { SliceInput } from "../inputs/slice-input.js";
import { VMDK_MAGIC } from "./file-members.js";
import { HashedMemberInput } from "./hashed-member-input.js";
import { parseManifest } from "./manifest.js";
import type { ManifestCheck } from "./manifest-check.js";
import { MemberDigests } from "./member-digests.js";
import { assembleOva, checkDescriptorSize, checkManifestSize, type OvaArchive } from "./ova-reader.js";
import { parseOvfDescriptor, type OvfDescriptor } from "./ovf-descriptor-reader.js";
import { TarWalker, type TarMember } from "./tar-index.js";

export interface InOrderOptions {
  /** Hash the members for the manifest (convert); info does not verify, as for a file. */
  readonly verify: boolean;
  readonly signal?: AbortSignal;
}

export class OvaInOrder {
  private readonly members: TarMember[] = [];
  /** Member bytes kept as they passed: the descriptor and manifest whole, the heads of possible chunks. */
  private readonly kept = new Map<TarMember, Buffer>();
  /** The member handed out by next(), and its reader once taken. */
  private current: { readonly member: TarMember; taken?: HashedMemberInput } | undefined;

  private constructor(
    readonly input: ImageInput,
    private readonly walker: TarWalker,
    readonly descriptor: OvfDescriptor,
    private readonly digests: MemberDigests | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Reads the archive's first member, which must be the .ovf descriptor. */
  static async open(input: ImageInput, options: InOrderOptions): Promise<OvaInOrder> {
    const walker = new TarWalker(input);
    const first = await walker.next();
    if (!first || !/\.ovf$/i.test(first.name)) {
      throw new UnsupportedFeatureError(
        `${input.path}: the archive's first member is ${first ? `"${first.name}"` : "missing"}, not the .ovf ` +
          "descriptor; an OVA read in order needs its descriptor first, as DSP0243 has it: save the OVA to a " +
          "file and read it from there",
      );
    }
    checkDescriptorSize(input.path, first);
    const bytes = await input.readExact(first.dataOffset, first.size, undefined, "OVF descriptor");
    const descriptor = parseOvfDescriptor(bytes, `${input.path}:${first.name}`);
    const ova = new OvaInOrder(
      input,
      walker,
      descriptor,
      options.verify ? new MemberDigests() : undefined,
      options.signal,
    );
    ova.members.push(first);
    ova.kept.set(first, bytes);
    const hash = ova.digests?.start(first);
    hash?.update(bytes);
    hash?.finish();
    return ova;
  }

  get path(): string {
    return this.input.path;
  }

  /** The next member, once the one before is done with (what was not read of it is hashed and skipped). */
  async next(): Promise<TarMember | undefined> {
    try {
      await this.settleCurrent();
      this.signal?.throwIfAborted();
      const member = await this.walker.next();
      if (!member) return undefined;
      this.members.push(member);
      this.current = { member };
      return member;
    } catch (e) {
      throw this.cutShort(e);
    }
  }

  /** The member next() just gave, as an input of its own read in order (hashed as it is read). */
  async take(member: TarMember): Promise<ImageInput> {
    const current = this.current;
    if (current?.member !== member || current.taken) throw new Error(`${this.path}: ${member.name} is not to be taken`);
    current.taken = await this.reader(member);
    return current.taken;
  }

  /**
   * `error`, or a clearer one when the input ended inside the current member (a download or pipe cut short):
   * for the caller reading a member it took, too.
   */
  cutShort(error: unknown): unknown {
    const member = this.current?.member ?? this.members[this.members.length - 1];
    if (!member || this.input.size >= member.dataOffset + member.size) return error;
    return new CorruptImageError(
      `${this.path}: the OVA ends after ${this.input.size} bytes, inside ${member.name} (which ends at ` +
        `${member.dataOffset + member.size}): it was cut short`,
      { cause: error },
    );
  }

  /** Walks to the end of the archive, assembles it and verifies the manifest (when verifying and it has one). */
  async finish(): Promise<{ archive: OvaArchive; manifest: ManifestCheck | undefined }> {
    while (await this.next());
    const archive = await assembleOva({
      path: this.path,
      members: this.members,
      read: async (member, length) => {
        const bytes = this.kept.get(member);
        if (!bytes || bytes.length < length) throw new Error(`${this.path}: ${member.name} was not kept`);
        return bytes.subarray(0, length);
      },
    });
    const manifest =
      this.digests && archive.manifest ? this.digests.verify(this.path, archive.members, archive.manifest) : undefined;
    return { archive, manifest };
  }

  /** Done with the current member: its reader drained, or its bytes kept, hashed or skipped as needed. */
  private async settleCurrent(): Promise<void> {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    const { member } = current;
    if (current.taken) {
      await current.taken.drain();
      return;
    }
    const manifest = /\.mf$/i.test(member.name);
    // The heads of numbered members tell chunks from whole disks (file-members.ts).
    const keepHead = /\.\d+$/.test(member.name);
    const reader = await this.reader(member);
    if (manifest) {
      checkManifestSize(this.path, member);
      const bytes = await reader.readExact(0, member.size, undefined, "manifest");
      this.kept.set(member, bytes);
      this.digests?.useManifest(parseManifest(bytes.toString("utf8"), `${this.path}:${member.name}`));
    } else if (keepHead) {
      this.kept.set(member, await reader.readExact(0, Math.min(VMDK_MAGIC.length, member.size)));
    }
    await reader.drain();
  }

  private async reader(member: TarMember): Promise<HashedMemberInput> {
    const slice = await SliceInput.of(
      this.input,
      [{ offset: member.dataOffset, length: member.size }],
      `${this.path}:${member.name}`,
      { closesParent: false },
    );
    return new HashedMemberInput(slice, this.digests?.start(member));
  }
}
