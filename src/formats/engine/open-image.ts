import type { FormatDriver, ImageSource, OpenOptions } from "../types.js";
import { detectFormat, getDriver } from "../registry.js";

export interface OpenedImage {
  readonly driver: FormatDriver;
  readonly source: ImageSource;
}

/** Opens an image, detecting its format from its content unless `options.format` names one. */
export async function openImage(path: string, options: OpenOptions = {}): Promise<OpenedImage> {
  const driver = options.format ? getDriver(options.format) : await detectFormat(path);
  return { driver, source: await driver.open(path, options) };
}
