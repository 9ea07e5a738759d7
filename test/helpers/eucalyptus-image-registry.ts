/**
 * The image half of the stand-in Eucalyptus compute service (test/helpers/eucalyptus-admin-server.ts): a
 * registry of instance-store images answering the EC2 image actions as the AWS EC2 API reference documents
 * them (request parameters as the Query API names them, reply elements as the 2014-10-01 schema Eucalyptus
 * 4.4 answers with), each checked by the action's comment:
 *  - RegisterImage (ImageLocation, Name, Architecture, KernelId, RamdiskId → imageId);
 *  - DescribeImages (ImageId.N, Owner.N with "self", Filter.N.Name "name" with * and ? wildcards →
 *    imagesSet; an unknown id is InvalidAMIID.NotFound);
 *  - DeregisterImage (ImageId → return true; the image is gone from later replies);
 *  - ModifyImageAttribute / DescribeImageAttribute for launchPermission (LaunchPermission.Add.N.UserId /
 *    .Group "all", and .Remove.N …; reply launchPermission items of userId or group).
 * euca2ools 3.4 sends the same parameters (euca2ools/commands/ec2/registerimage.py, describeimages.py,
 * deregisterimage.py, modifyimageattribute.py, describeimageattribute.py).
 */
import { randomBytes } from "node:crypto";

export interface RegistryKey {
  readonly account: string;
}

/** Query failures the server turns into EC2 error replies. */
export class RegistryFault extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RegisteredImage {
  readonly imageId: string;
  readonly location: string;
  readonly name: string;
  readonly owner: string;
  readonly architecture: string;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  state: "available" | "pending" | "failed";
  readonly launchUsers: Set<string>;
  isPublic: boolean;
}

export interface ImageRegistryOptions {
  /**
   * Whether the bundle's manifest is in its bucket (Eucalyptus reads it at registration, AWS too); RegisterImage
   * is refused with InvalidManifest when this answers false. Without it, every location is taken.
   */
  readonly manifestExists?: (bucket: string, key: string) => Promise<boolean>;
}

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const el = (name: string, value: string | undefined): string =>
  value === undefined ? "" : `<${name}>${esc(value)}</${name}>`;

/** Values of `Prefix.N` parameters in N order. */
export function listParam(params: URLSearchParams, prefix: string): string[] {
  return [...params.keys()]
    .filter((k) => new RegExp(`^${prefix.replace(/\./g, "\\.")}\\.\\d+$`).test(k))
    .sort((a, b) => Number(a.slice(prefix.length + 1)) - Number(b.slice(prefix.length + 1)))
    .map((k) => params.get(k)!);
}

/** An EC2 filter value with its wildcards (* any run, ? one character) as a whole-string pattern. */
function wildcard(value: string): RegExp {
  const body = value
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

export class ImageRegistry {
  readonly images = new Map<string, RegisteredImage>();

  constructor(
    private readonly options: ImageRegistryOptions,
    private readonly ns: string,
  ) {}

  private reply(action: string, inner: string): string {
    return `<${action}Response xmlns="${this.ns}"><requestId>${randomBytes(8).toString("hex")}</requestId>${inner}</${action}Response>`;
  }

  private mine(params: URLSearchParams, key: RegistryKey): RegisteredImage {
    const id = params.get("ImageId") ?? "";
    const image = this.images.get(id);
    if (!image || image.owner !== key.account) {
      throw new RegistryFault("InvalidAMIID.NotFound", `The image id '[${id}]' does not exist`);
    }
    return image;
  }

  /** RegisterImage (EC2 API reference): ImageLocation "bucket/key.manifest.xml", Name, kernel, ramdisk. */
  async register(params: URLSearchParams, key: RegistryKey): Promise<string> {
    const location = params.get("ImageLocation") ?? "";
    const name = params.get("Name") ?? "";
    const slash = location.indexOf("/");
    if (slash <= 0 || !location.endsWith(".manifest.xml")) {
      throw new RegistryFault("InvalidManifest", `ImageLocation "${location}" is not BUCKET/KEY.manifest.xml`);
    }
    if (!name) throw new RegistryFault("MissingParameter", "The request must contain the parameter Name");
    if ([...this.images.values()].some((i) => i.owner === key.account && i.name === name)) {
      throw new RegistryFault("InvalidAMIName.Duplicate", `AMI name ${name} is already in use by an image`);
    }
    const exists = this.options.manifestExists;
    if (exists && !(await exists(location.slice(0, slash), location.slice(slash + 1)))) {
      throw new RegistryFault("InvalidManifest", `the manifest ${location} cannot be read`);
    }
    const kind = (id: string | null, prefix: string) => {
      if (id && !id.startsWith(prefix)) throw new RegistryFault("InvalidParameterValue", `${id} is not an ${prefix}…`);
      return id ?? undefined;
    };
    const imageId = `emi-${randomBytes(4).toString("hex")}`;
    this.images.set(imageId, {
      imageId,
      location,
      name,
      owner: key.account,
      architecture: params.get("Architecture") ?? "i386",
      kernelId: kind(params.get("KernelId"), "eki-"),
      ramdiskId: kind(params.get("RamdiskId"), "eri-"),
      state: "available",
      launchUsers: new Set(),
      isPublic: false,
    });
    return this.reply("RegisterImage", el("imageId", imageId));
  }

  /** DescribeImages (EC2 API reference): by ImageId.N, Owner.N ("self" or an account), Filter "name". */
  describe(params: URLSearchParams, key: RegistryKey): string {
    const ids = listParam(params, "ImageId");
    const owners = listParam(params, "Owner").map((o) => (o === "self" ? key.account : o));
    const names: RegExp[] = [];
    for (let i = 1; params.has(`Filter.${i}.Name`); i++) {
      const filter = params.get(`Filter.${i}.Name`);
      if (filter !== "name") throw new RegistryFault("InvalidParameterValue", `filter ${filter} is not served here`);
      names.push(...listParam(params, `Filter.${i}.Value`).map(wildcard));
    }
    const missing = ids.filter((id) => !this.images.has(id));
    if (missing.length) {
      throw new RegistryFault("InvalidAMIID.NotFound", `The image id '[${missing.join(", ")}]' does not exist`);
    }
    const visible = [...this.images.values()].filter(
      (i) => i.owner === key.account || i.isPublic || i.launchUsers.has(key.account),
    );
    const chosen = visible.filter(
      (i) =>
        (ids.length === 0 || ids.includes(i.imageId)) &&
        (owners.length === 0 || owners.includes(i.owner)) &&
        (names.length === 0 || names.some((n) => n.test(i.name))),
    );
    const items = chosen.map(
      (i) =>
        `<item>${el("imageId", i.imageId)}${el("imageLocation", i.location)}${el("imageState", i.state)}` +
        `${el("imageOwnerId", i.owner)}${el("isPublic", String(i.isPublic))}${el("architecture", i.architecture)}` +
        `${el("imageType", "machine")}${el("kernelId", i.kernelId)}${el("ramdiskId", i.ramdiskId)}${el("name", i.name)}` +
        `${el("rootDeviceType", "instance-store")}${el("rootDeviceName", "/dev/sda1")}<blockDeviceMapping/>` +
        `${el("virtualizationType", "paravirtual")}</item>`,
    );
    return this.reply("DescribeImages", `<imagesSet>${items.join("")}</imagesSet>`);
  }

  /** DeregisterImage (EC2 API reference): the image leaves every later reply; its bundle stays in the bucket. */
  deregister(params: URLSearchParams, key: RegistryKey): string {
    this.images.delete(this.mine(params, key).imageId);
    return this.reply("DeregisterImage", "<return>true</return>");
  }

  /** ModifyImageAttribute (EC2 API reference), launchPermission only: Add / Remove of UserId or Group "all". */
  modifyAttribute(params: URLSearchParams, key: RegistryKey): string {
    const image = this.mine(params, key);
    const change = (verb: "Add" | "Remove") => {
      for (
        let i = 1;
        params.has(`LaunchPermission.${verb}.${i}.UserId`) || params.has(`LaunchPermission.${verb}.${i}.Group`);
        i++
      ) {
        const user = params.get(`LaunchPermission.${verb}.${i}.UserId`);
        const group = params.get(`LaunchPermission.${verb}.${i}.Group`);
        if (group !== null && group !== "all") throw new RegistryFault("InvalidParameterValue", `group ${group}`);
        if (group === "all") image.isPublic = verb === "Add";
        if (user) {
          if (verb === "Add") image.launchUsers.add(user);
          else image.launchUsers.delete(user);
        }
      }
    };
    change("Add");
    change("Remove");
    return this.reply("ModifyImageAttribute", "<return>true</return>");
  }

  /** DescribeImageAttribute (EC2 API reference), Attribute=launchPermission. */
  describeAttribute(params: URLSearchParams, key: RegistryKey): string {
    const image = this.mine(params, key);
    if (params.get("Attribute") !== "launchPermission") {
      throw new RegistryFault("InvalidParameterValue", `attribute ${params.get("Attribute")} is not served here`);
    }
    const items = [
      ...[...image.launchUsers].map((u) => `<item>${el("userId", u)}</item>`),
      ...(image.isPublic ? ["<item><group>all</group></item>"] : []),
    ];
    return this.reply(
      "DescribeImageAttribute",
      `${el("imageId", image.imageId)}<launchPermission>${items.join("")}</launchPermission>`,
    );
  }
}
