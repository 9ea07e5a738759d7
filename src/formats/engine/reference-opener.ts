/**
 * The one place where files an image names are opened: a qcow2 backing or external data file, a VMDK
 * descriptor's extents. An image is hostile until proven otherwise, so a name in its metadata never makes
 * chromogenic read something the caller did not choose (io/reference-paths has the rule), a backing chain
 * never loops or grows past MAX_BACKING_CHAIN_DEPTH, and only an image read from a local file can name any:
 * for one inside an archive, behind a URL or on a pipe there is no folder to look in, and resolving its names
 * on this host would be a way to leak local files.
 */
import { realpath } from "node:fs/promises";
import { CorruptImageError, ReferenceRefusedError, UnsupportedFeatureError } from "../errors.js";
import { FileInput } from "../inputs/file-input.js";
import type { ImageInput } from "../inputs/image-input.js";
import { resolveReferencePath } from "../io/reference-paths.js";
import { findDriver } from "../registry.js";
import { UnopenedParent } from "./unopened-parent.js";
import type { FormatDriver, ImageSource, OpenOptions, ReferenceOpener, ReferencePolicy } from "../types.js";

/** qemu's own limit on backing chains is far deeper; 16 is plenty for real images and stops runaway chains. */
export const MAX_BACKING_CHAIN_DEPTH = 16;

type OpenOn = (
  input: ImageInput,
  options: OpenOptions,
  references: PolicyReferenceOpener,
) => Promise<{ readonly driver: FormatDriver; readonly source: ImageSource }>;

export class PolicyReferenceOpener implements ReferenceOpener {
  constructor(
    private readonly policy: ReferencePolicy | undefined,
    /** Real paths of the images that led to this one, outermost first. */
    private readonly chain: readonly string[],
    /** How a parent image is opened: the engine's own open, passed in so this file needs no cycle. */
    private readonly openOn: OpenOn,
  ) {}

  async openFile(
    from: ImageInput,
    name: string,
    role: string,
    rules: { readonly sameFolder?: boolean } = {},
  ): Promise<ImageInput> {
    return FileInput.open(await this.resolve(from, name, role, rules));
  }

  async openImage(from: ImageInput, name: string, format: string | undefined, role: string): Promise<ImageSource> {
    if (this.policy?.parents === "name-only") return new UnopenedParent(from.path, name, role);
    const path = await this.resolve(from, name, role, {});
    const chain = [...this.chain, await realpath(from.localPath!)];
    if (chain.includes(path)) throw new CorruptImageError(`${from.path}: the backing chain loops back to ${path}`);
    if (chain.length >= MAX_BACKING_CHAIN_DEPTH) {
      throw new CorruptImageError(
        `${from.path}: the backing chain is deeper than ${MAX_BACKING_CHAIN_DEPTH} images; refusing to follow it further`,
      );
    }
    let driverName: string | undefined;
    if (format !== undefined) {
      driverName = findDriver(format)?.name;
      if (driverName === undefined) {
        throw new UnsupportedFeatureError(
          `${from.path}: its ${role} ${path} has format "${format}", which chromogenic cannot read`,
        );
      }
    }
    const input = await FileInput.open(path);
    const child = new PolicyReferenceOpener(this.policy, chain, this.openOn);
    return (await this.openOn(input, { references: this.policy, format: driverName }, child)).source;
  }

  private async resolve(
    from: ImageInput,
    name: string,
    role: string,
    rules: { readonly sameFolder?: boolean },
  ): Promise<string> {
    if (from.localPath === undefined) {
      throw new ReferenceRefusedError(
        `${from.path}: the image names its ${role} "${name}", which cannot be opened: an image read from an ` +
          "archive, a URL or a pipe has no folder its files could be in; flatten it first (qemu-img convert) " +
          "or read it from a local file",
      );
    }
    return resolveReferencePath(from.localPath, name, role, this.policy, rules);
  }
}
