import { BoundedInput } from "./image-input.js";
import type { HttpInputStats, HttpRequester } from "./http-request.js";

/** What both HTTP inputs (with Range, and read once in order) share: their requests, counts and name. */
export abstract class HttpInputBase extends BoundedInput {
  readonly path: string;

  constructor(
    protected readonly requester: HttpRequester,
    readonly size: number,
  ) {
    super();
    this.path = requester.name;
  }

  get stats(): Readonly<HttpInputStats> {
    return this.requester.stats;
  }

  /** Not on this host: the remote bytes' length stands in. */
  get allocatedSize(): number {
    return this.size;
  }

  /** Cancels the requests in flight; later reads fail. */
  async close(): Promise<void> {
    this.requester.close();
    this.release();
  }

  /** Lets go of what the input holds besides its requests (cached blocks, a reply's body). */
  protected abstract release(): void;
}
