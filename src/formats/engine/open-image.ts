/**
 * Opening an image: where its bytes are (an input: a path, a device, a URL, `-`, or an input already open) is
 * settled first, then which format lays them out (named, or detected from the content), then the driver reads
 * through the input. Files the image names are opened through a ReferenceOpener bound to the caller's policy.
 */
import type { FormatDriver, ImageSource, OpenOptions } from "../types.js";
import { UsageError } from "../errors.js";
import { detectFormat, getDriver } from "../registry.js";
import type { ImageInput } from "../inputs/image-input.js";
import { openInput, type InputOptions } from "../inputs/open-input.js";
import { PolicyReferenceOpener } from "./reference-opener.js";

export interface OpenedImage {
  readonly driver: FormatDriver;
  readonly source: ImageSource;
}

/** Where an image is: a local path or device, an http(s) URL, "-" for standard input, or an open input. */
export type ImageLocation = string | ImageInput;

export interface OpenImageOptions extends OpenOptions, InputOptions {}

/**
 * Opens an image, detecting its format from its content unless `options.format` names one. The source owns
 * the input (one given open included): closing the source closes it, and so does a failed open.
 */
export async function openImage(location: ImageLocation, options: OpenImageOptions = {}): Promise<OpenedImage> {
  const input = typeof location === "string" ? await openInput(location, options) : location;
  return openImageOn(input, options, new PolicyReferenceOpener(options.references, [], openImageOn));
}

async function openImageOn(
  input: ImageInput,
  options: OpenOptions,
  references: PolicyReferenceOpener,
): Promise<OpenedImage> {
  let driver: FormatDriver;
  let driverOptions: Readonly<Record<string, string>>;
  try {
    driver = options.format ? getDriver(options.format) : await detectFormat(input);
    driverOptions = checkOpenOptions(driver, options.driverOptions ?? {});
  } catch (e) {
    await input.close().catch(() => undefined);
    throw e;
  }
  return { driver, source: await driver.open(input, { driverOptions, references }) };
}

/** Refuses, before the driver reads anything, an open option its driver does not document. */
function checkOpenOptions(
  driver: FormatDriver,
  given: Readonly<Record<string, string>>,
): Readonly<Record<string, string>> {
  const known = (driver.openOptions ?? []).map((o) => o.name);
  const unknown = Object.keys(given).filter((key) => !known.includes(key));
  if (unknown.length) {
    const accepted = known.length ? `known: ${known.join(", ")}` : `${driver.name} takes none`;
    throw new UsageError(`${driver.name}: unknown open option(s) ${unknown.join(", ")} (${accepted})`);
  }
  return given;
}
