/**
 * A provider whose code is loaded on its first call. The cloud names of a job are resolved when it starts, but
 * most jobs never touch an EC2-family cloud: its provider pulls in the AWS SDK and ssh2, which would cost every
 * command their start-up. Only the methods every provider has are forwarded; the optional ones
 * (openImageInput, localImagePath, shareImage) are forwarded when the loaded provider has them.
 */
import type {
  CreateImageFromInstanceRequest,
  DownloadOptions,
  ImageProvider,
  OpenImageInputOptions,
  ProviderCapabilities,
  ProviderImage,
  UploadImageRequest,
  UploadOptions,
} from "./provider.js";
import { UsageError } from "../util/errors.js";
import type { ImageInput } from "../formats/inputs/image-input.js";

export class LazyProvider implements ImageProvider {
  private loaded: Promise<ImageProvider> | undefined;

  constructor(
    readonly label: string,
    private readonly load: () => Promise<ImageProvider>,
  ) {}

  private provider(): Promise<ImageProvider> {
    this.loaded ??= this.load();
    return this.loaded;
  }

  async capabilities(): Promise<ProviderCapabilities> {
    return (await this.provider()).capabilities();
  }

  async *listImages(): AsyncIterable<ProviderImage> {
    yield* (await this.provider()).listImages();
  }

  async getImage(idOrName: string): Promise<ProviderImage | undefined> {
    return (await this.provider()).getImage(idOrName);
  }

  async *downloadImage(id: string, options?: DownloadOptions): AsyncIterable<Uint8Array> {
    yield* (await this.provider()).downloadImage(id, options);
  }

  async uploadImage(
    request: UploadImageRequest,
    data: AsyncIterable<Uint8Array>,
    options?: UploadOptions,
  ): Promise<ProviderImage> {
    return (await this.provider()).uploadImage(request, data, options);
  }

  async openImageInput(id: string, options?: OpenImageInputOptions): Promise<ImageInput> {
    const provider = await this.provider();
    if (!provider.openImageInput) throw new UsageError(`${this.label} cannot read an image in place`);
    return provider.openImageInput(id, options);
  }

  async shareImage(id: string, member: string): Promise<void> {
    const provider = await this.provider();
    if (!provider.shareImage) throw new UsageError(`${this.label} cannot share images`);
    await provider.shareImage(id, member);
  }

  async deleteImage(id: string): Promise<void> {
    await (await this.provider()).deleteImage(id);
  }

  async instanceImageReadable(instance: string, signal?: AbortSignal): Promise<boolean> {
    const provider = await this.provider();
    return provider.instanceImageReadable ? provider.instanceImageReadable(instance, signal) : true;
  }

  async createImageFromInstance(request: CreateImageFromInstanceRequest): Promise<ProviderImage> {
    return (await this.provider()).createImageFromInstance(request);
  }
}
