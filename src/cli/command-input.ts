/**
 * What a command's input argument holds, told before anything reads it for good: an OVA (an appliance, shown
 * and converted by the OVA reader) or a disk image. A path is looked at and left for the reader to open;
 * standard input ("-") can be read only once, so it is opened here, its first block looked at, and the open
 * input handed on: its head stays buffered for whichever reader takes it.
 */
import type { ImageInput } from "../formats/inputs/image-input.js";
import { openInput } from "../formats/inputs/open-input.js";
import { looksLikeOva, startsLikeOva } from "../formats/ova/ova-detect.js";

export interface CommandInput {
  /** The path as given, or standard input opened. */
  readonly input: string | ImageInput;
  readonly ova: boolean;
}

/** `formatGiven`: the user named the input's format, so it is no OVA. */
export async function commandInput(location: string, formatGiven: boolean): Promise<CommandInput> {
  if (location !== "-") return { input: location, ova: !formatGiven && (await looksLikeOva(location)) };
  const input = await openInput(location);
  if (formatGiven) return { input, ova: false };
  try {
    return { input, ova: await startsLikeOva(input) };
  } catch (e) {
    await input.close();
    throw e;
  }
}
