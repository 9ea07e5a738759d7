/**
 * Adding a token to the tokens file (api-tokens.ts): `chromogenic token create`, and `serve`'s first start
 * without one. The file holds hashes only; it is rewritten whole under a temporary name and renamed, readable
 * by its owner alone, so a crash never leaves half a file and a new entry never loses the others.
 */
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { z } from "zod";
import { newApiToken, TokensFileSchema, type TokenEntry } from "./api-tokens.js";

export interface TokenRights {
  readonly clouds?: string[];
  readonly kinds?: string[];
  readonly admin?: boolean;
}

/** Makes a token named `name` with `rights`, adds its entry to `file` (made when missing); the token. */
export async function addToken(file: string, name: string, rights: TokenRights): Promise<string> {
  const entries = await readEntries(file);
  if (entries.some((e) => e.name === name)) throw new Error(`${file} already has a token named "${name}"`);
  let made: ReturnType<typeof newApiToken>;
  try {
    made = newApiToken(name, rights);
  } catch (e) {
    throw e instanceof z.ZodError ? new Error(`token "${name}": ${z.prettifyError(e)}`) : e;
  }
  const { token, entry } = made;
  const temporary = `${file}.${process.pid}.new`;
  // A failure names the tokens file, not our temporary name beside it.
  const cannotWrite = (e: unknown): never => {
    const why = (e as NodeJS.ErrnoException).code === "EROFS" ? "read-only file system" : (e as Error).message;
    throw new Error(`cannot write the tokens file ${file}: ${why}`, { cause: e });
  };
  await mkdir(dirname(file), { recursive: true, mode: 0o700 }).catch(cannotWrite);
  const handle = await open(temporary, "wx", 0o600).catch(cannotWrite);
  try {
    await handle.writeFile(stringifyYaml({ tokens: [...entries, entry] }));
    await handle.sync();
  } catch (e) {
    await handle.close();
    await rm(temporary, { force: true });
    throw e;
  }
  await handle.close();
  await rename(temporary, file);
  return token;
}

async function readEntries(file: string): Promise<TokenEntry[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const parsed = TokensFileSchema.safeParse(parseYaml(text) ?? { tokens: [] });
  if (!parsed.success) throw new Error(`${file}: ${z.prettifyError(parsed.error)}`);
  return parsed.data.tokens;
}
