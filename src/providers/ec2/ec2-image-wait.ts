/**
 * Waiting for an image to become "available" after RegisterImage or CreateImage, within a time limit and
 * cancellable. An image the server does not know yet is waited for a little (EC2's reads are eventually
 * consistent: a new id can be unknown for seconds); "failed", "deregistered" or "invalid" end the wait at once,
 * with the server's reason when it gives one.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Ec2Connection } from "./ec2-connection.js";
import { describeImages } from "./ec2-images.js";
import type { Ec2Image } from "./ec2-records.js";
import { AbortedError, WaitFailedError } from "../../util/errors.js";

export interface WaitForImageOptions {
  /** Give up after this long (default 30 minutes: a bundle is decrypted and unpacked server-side). */
  readonly timeoutMs?: number;
  /** Between two DescribeImages (default 5 s). */
  readonly intervalMs?: number;
  /** How long an id the server does not know yet is waited for (default 60 s). */
  readonly unknownGraceMs?: number;
  readonly signal?: AbortSignal;
  /** Called with each state seen, for progress. */
  readonly onState?: (state: string) => void;
}

const ENDED = new Set(["failed", "deregistered", "invalid", "error"]);

export async function waitForImage(
  ec2: Ec2Connection,
  imageId: string,
  options: WaitForImageOptions = {},
): Promise<Ec2Image> {
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const intervalMs = options.intervalMs ?? 5000;
  const graceMs = options.unknownGraceMs ?? 60_000;
  const started = Date.now();
  const what = `image ${imageId} at EC2 ${ec2.endpoint}`;
  let last = "unknown";
  for (;;) {
    if (options.signal?.aborted) throw new AbortedError(`waiting for ${what} was cancelled`);
    const [image] = await describeImages(ec2, { imageIds: [imageId], signal: options.signal }).catch((e: unknown) => {
      // An id not known yet: the same as no image in the reply, within the grace period.
      if ((e as { code?: string }).code === "ENOENT") return [];
      throw e;
    });
    const elapsed = Date.now() - started;
    if (!image) {
      if (elapsed > graceMs)
        throw new WaitFailedError(`${what} is unknown to the server after ${Math.round(elapsed / 1000)} s`);
    } else {
      if (image.state !== last) options.onState?.(image.state);
      last = image.state;
      if (image.state === "available") return image;
      if (ENDED.has(image.state))
        throw new WaitFailedError(
          `${what} ended ${image.state} instead of becoming available${image.stateReason ? `: ${image.stateReason}` : ""}`,
        );
    }
    if (elapsed + intervalMs > timeoutMs) {
      throw new WaitFailedError(`${what} is still ${last} after ${Math.round(elapsed / 1000)} s (the limit)`);
    }
    await delay(intervalMs, undefined, { signal: options.signal }).catch(() => {
      throw new AbortedError(`waiting for ${what} was cancelled`);
    });
  }
}
