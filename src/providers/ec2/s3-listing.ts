/**
 * Listing a bucket's keys under a prefix, page by page, against a server that may be wrong or hostile: a
 * listing that says "more" but hands back a continuation token (or marker) it gave before, or none, or keys
 * that do not move forward, would page forever. Each of those is an error naming the bucket, as is a listing
 * longer than the caller's bound on pages.
 *
 * ListObjectsV2 (continuation tokens) by default; ListObjects (markers, the original API) for servers older
 * than V2, such as Eucalyptus' object storage gateway.
 */
import {
  ListObjectsCommand,
  ListObjectsV2Command,
  type ListObjectsCommandOutput,
  type ListObjectsV2CommandOutput,
} from "@aws-sdk/client-s3";
import { S3Connection } from "./s3-connection.js";
import { ChromogenicError } from "../../util/errors.js";

export interface S3ListedObject {
  readonly key: string;
  readonly size: number;
  readonly etag: string | undefined;
}

export interface ListObjectsOptions {
  /** "v2" (default) or "v1" for servers without ListObjectsV2. */
  readonly api?: "v1" | "v2";
  /** Pages of up to 1000 keys read at most before the listing is an error (default 10,000). */
  readonly maxPages?: number;
  /** Keys per page asked for (MaxKeys, 1 to 1000; default the server's, 1000). */
  readonly pageSize?: number;
  readonly signal?: AbortSignal;
}

export const DEFAULT_MAX_PAGES = 10_000;

/** Keeps a paginated listing honest: every page's token is new and its keys come after the last page's. */
export class PageGuard {
  private readonly seen = new Set<string>();
  private pages = 0;
  private lastKey: string | undefined;

  constructor(
    private readonly what: string,
    private readonly maxPages: number,
  ) {}

  /** Called with each page's keys (in the server's order) before they are used. */
  page(keys: readonly string[]): void {
    if (++this.pages > this.maxPages) {
      throw new ChromogenicError(`${this.what}: more than ${this.maxPages} pages; refusing to read further`, "ECLOUD");
    }
    for (const key of keys) {
      if (this.lastKey !== undefined && key <= this.lastKey) {
        throw new ChromogenicError(
          `${this.what}: the server listed "${key}" after "${this.lastKey}"; a listing must move forward`,
          "ECLOUD",
        );
      }
      this.lastKey = key;
    }
  }

  /** Called with the token (or marker) for the next page when the server says the listing is truncated. */
  next(token: string | undefined): string {
    if (!token) {
      throw new ChromogenicError(`${this.what}: the server says there is more but gives no token to go on`, "ECLOUD");
    }
    if (this.seen.has(token)) {
      throw new ChromogenicError(
        `${this.what}: the server gave the continuation token "${token.slice(0, 80)}" a second time; the listing ` +
          "would never end",
        "ECLOUD",
      );
    }
    this.seen.add(token);
    return token;
  }
}

/** Every object under `prefix`, in key order. */
export async function* listObjects(
  s3: S3Connection,
  bucket: string,
  prefix: string,
  options: ListObjectsOptions = {},
): AsyncGenerator<S3ListedObject> {
  const api = options.api ?? "v2";
  const call = api === "v2" ? "ListObjectsV2" : "ListObjects";
  const subject = `${S3Connection.location(bucket)} under "${prefix}"`;
  const guard = new PageGuard(
    `S3 at ${s3.settings.endpoint}: ${call} of ${subject}`,
    options.maxPages ?? DEFAULT_MAX_PAGES,
  );
  let token: string | undefined;
  for (;;) {
    const page =
      api === "v2"
        ? await s3.send<ListObjectsV2CommandOutput>(
            new ListObjectsV2Command({
              Bucket: bucket,
              Prefix: prefix,
              ContinuationToken: token,
              MaxKeys: options.pageSize,
            }),
            { call, subject },
            options.signal,
          )
        : await s3.send<ListObjectsCommandOutput>(
            new ListObjectsCommand({ Bucket: bucket, Prefix: prefix, Marker: token, MaxKeys: options.pageSize }),
            { call, subject },
            options.signal,
          );
    const objects = (page.Contents ?? []).map((o) => ({
      key: o.Key ?? "",
      size: o.Size ?? 0,
      etag: o.ETag?.replace(/"/g, ""),
    }));
    guard.page(objects.map((o) => o.key));
    yield* objects;
    if (!page.IsTruncated) return;
    // V1 without a delimiter gives no NextMarker: the last key is the marker, as S3 documents.
    token = guard.next(
      api === "v2"
        ? (page as ListObjectsV2CommandOutput).NextContinuationToken
        : ((page as ListObjectsCommandOutput).NextMarker ?? objects.at(-1)?.key),
    );
  }
}
