/**
 * euca2ools 3's configuration, read as euca2ools (through requestbuilder) reads it:
 *
 * - the files: `EUCA_CONFIG_PATH` (globs separated by ":") when set, else `/etc/euca2ools/euca2ools.ini`,
 *   `/etc/euca2ools/conf.d/*.ini` and `~/.euca/*.ini`, each glob's files in name order, later files overriding
 *   earlier ones option by option;
 * - the sections: `[global]` (e.g. `default-region`), `[region NAME]` (ec2-url, s3-url, certificate, user,
 *   verify-ssl, name) and `[user NAME]` (key-id, secret-key, account-id, certificate, private-key). NAME may be
 *   namespaced with ":" (`aws:us-east-1`), never with an empty part nor an "@";
 * - a lookup of an option in a region or user tries the name with each of its ":" parts replaced by "*", most
 *   specific first (`aws:*` holds what every AWS region shares); follows `use OTHER [OPTION]` redirections; then
 *   takes a unique longer name ending in the asked one (`us-east-1` finds `aws:us-east-1`); then the `*` section.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { interpolate, MAX_INI_BYTES, parseIni, type IniSection } from "./ini-file.js";
import { ChromogenicError } from "../../util/errors.js";

type Env = Readonly<Record<string, string | undefined>>;

/** Files read at most (a glob over a big folder is a mistake, not a configuration). */
const MAX_FILES = 256;

export const DEFAULT_CONFIG_GLOBS = ["/etc/euca2ools/euca2ools.ini", "/etc/euca2ools/conf.d/*.ini", "~/.euca/*.ini"];

export interface Euca2oolsSection {
  readonly options: ReadonlyMap<string, string>;
  /** "FILE:LINE" of each header that contributed, for messages. */
  readonly origins: readonly string[];
}

export interface Euca2oolsConfig {
  readonly files: readonly string[];
  readonly globals: ReadonlyMap<string, string>;
  readonly regions: ReadonlyMap<string, Euca2oolsSection>;
  readonly users: ReadonlyMap<string, Euca2oolsSection>;
}

/** The files euca2ools would read, in order. */
export function euca2oolsConfigFiles(env: Env): string[] {
  const globs = env.EUCA_CONFIG_PATH ? env.EUCA_CONFIG_PATH.split(":").filter(Boolean) : DEFAULT_CONFIG_GLOBS;
  const home = env.HOME || homedir();
  const files: string[] = [];
  for (const glob of globs) {
    const expanded = glob
      .replace(/^~(?=\/|$)/, home)
      .replace(/\$(?:\{(\w+)\}|(\w+))/g, (m, a: string | undefined, b: string | undefined) => env[a ?? b ?? ""] ?? m);
    files.push(...expandGlob(expanded));
    if (files.length > MAX_FILES) {
      throw new ChromogenicError(
        `euca2ools configuration: more than ${MAX_FILES} files match ${globs.join(":")}`,
        "ECONFIG",
      );
    }
  }
  return files;
}

/** A path whose last part may hold `*` and `?` (as the configuration paths do), matched in name order. */
function expandGlob(pattern: string): string[] {
  const name = basename(pattern);
  if (!/[*?[]/.test(name)) return isFile(pattern) ? [pattern] : [];
  const dir = dirname(pattern);
  if (/[*?[]/.test(dir)) {
    throw new ChromogenicError(
      `euca2ools configuration path ${pattern}: only its file name may hold a wildcard`,
      "ECONFIG",
    );
  }
  const re = new RegExp(
    `^${name
      .replace(/[.+^${}()|\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  // Python's glob leaves out hidden files unless the pattern starts with a dot.
  return entries
    .filter((e) => re.test(e) && (name.startsWith(".") || !e.startsWith(".")))
    .sort()
    .map((e) => join(dir, e))
    .filter(isFile);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Reads and merges every file euca2ools would read. */
export function readEuca2oolsConfig(env: Env): Euca2oolsConfig {
  const files = euca2oolsConfigFiles(env);
  const merged = new Map<string, { options: Map<string, string>; origins: string[] }>();
  for (const file of files) {
    if (statSync(file).size > MAX_INI_BYTES) {
      throw new ChromogenicError(`${file} is larger than ${MAX_INI_BYTES} bytes: not a configuration file`, "ECONFIG");
    }
    for (const section of parseIni(readFileSync(file, "utf8"), file)) mergeSection(merged, section);
  }
  const defaults = merged.get("DEFAULT")?.options ?? new Map<string, string>();
  const globals = new Map<string, string>();
  const regions = new Map<string, Euca2oolsSection>();
  const users = new Map<string, Euca2oolsSection>();
  for (const [header, section] of merged) {
    if (header === "DEFAULT") continue;
    const options = resolved(section.options, defaults, section.origins[0] ?? header);
    const kind = /^(region|user)\s+(\S+)$/.exec(header);
    if (header === "global") for (const [k, v] of options) globals.set(k, v);
    else if (kind) {
      const name = kind[2]!;
      if (name.split(":").some((part) => part === "") || name.includes("@")) {
        throw new ChromogenicError(
          `${section.origins[0]}: ${kind[1]} name "${name}" must have no empty ":" part and no "@"`,
          "ECONFIG",
        );
      }
      if (kind[1] === "region") {
        if (!options.has("name")) options.set("name", name.split(":").at(-1)!);
        regions.set(name, { options, origins: section.origins });
      } else {
        users.set(name, { options, origins: section.origins });
      }
    }
    // Other sections are left alone, as euca2ools leaves them, for options of newer versions.
  }
  return { files, globals, regions, users };
}

function mergeSection(
  merged: Map<string, { options: Map<string, string>; origins: string[] }>,
  section: IniSection,
): void {
  const into = merged.get(section.name) ?? { options: new Map<string, string>(), origins: [] };
  for (const [k, v] of section.options) into.options.set(k, v);
  into.origins.push(section.origin);
  merged.set(section.name, into);
}

/** A section's options with [DEFAULT]'s beneath them, interpolated. */
function resolved(
  options: ReadonlyMap<string, string>,
  defaults: ReadonlyMap<string, string>,
  where: string,
): Map<string, string> {
  const all = new Map([...defaults, ...options]);
  const lookup = (key: string) => all.get(key);
  return new Map([...all].map(([k, v]) => [k, interpolate(v, lookup, `${where} option "${k}"`)]));
}

/** An option of a region or user with euca2ools' rules (see the header); also which section gave it. */
export function lookupOption(
  sections: ReadonlyMap<string, Euca2oolsSection>,
  name: string,
  option: string,
  seen: readonly string[] = [],
): { value: string; section: string } | undefined {
  const bits = name.split(":");
  // Every combination of "keep this part" / "replace it by *", most specific first; "*" alone comes last.
  for (let mask = 0; mask < 2 ** bits.length; mask++) {
    const candidate = bits.map((b, i) => ((mask >> (bits.length - 1 - i)) & 1 ? "*" : b)).join(":");
    if (candidate === "*") continue;
    const value = sections.get(candidate)?.options.get(option);
    if (value === undefined) continue;
    const use = /^use\s+(\S+)(?:\s+(\S+))?/.exec(value);
    if (use && !seen.includes(use[1]!)) return lookupOption(sections, use[1]!, use[2] ?? option, [...seen, name]);
    if (value.startsWith("use ") && !use) {
      throw new ChromogenicError(`something must follow "use" in option ${option} of ${candidate}`, "ECONFIG");
    }
    return { value, section: candidate };
  }
  const longer = [...sections.keys()].filter((s) => {
    const sb = s.split(":");
    return sb.length > bits.length && sb.slice(-bits.length).join(":") === name;
  });
  if (longer.length > 0) {
    const shortest = Math.min(...longer.map((s) => s.split(":").length));
    const closest = longer.filter((s) => s.split(":").length === shortest);
    if (closest.length > 1) {
      throw new ChromogenicError(`"${name}" is ambiguous; closest matches are ${closest.join(", ")}`, "ECONFIG");
    }
    if (!seen.includes(closest[0]!)) return lookupOption(sections, closest[0]!, option, [...seen, name]);
  }
  const star = sections.get("*")?.options.get(option);
  return star === undefined ? undefined : { value: star, section: "*" };
}
