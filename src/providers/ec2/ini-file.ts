/**
 * A strict reader of the .ini dialect euca2ools reads (Python's configparser, strict mode, as requestbuilder
 * uses it): `[section]` headers, `key = value` or `key: value` options with keys folded to lower case, whole-line
 * comments starting with `#` or `;`, indented lines continuing the previous value. What configparser would
 * refuse is refused here with the file and line: an option before any section, a line that is neither, a
 * section or an option given twice in one file. Sizes are bounded so that a hostile file cannot take memory.
 * Interpolation (`%(key)s`, `%%`) is applied later, over the merged files, as configparser does.
 */
import { ChromogenicError } from "../../util/errors.js";

/** Larger than any real configuration (the AWS region file shipped with euca2ools is 9 KiB). */
export const MAX_INI_BYTES = 1024 * 1024;
const MAX_SECTIONS = 10_000;

export interface IniSection {
  readonly name: string;
  /** Keys in lower case, in file order. */
  readonly options: Map<string, string>;
  /** "FILE:LINE" of the header, for messages. */
  readonly origin: string;
}

export class IniSyntaxError extends ChromogenicError {
  constructor(path: string, line: number, problem: string) {
    super(`${path}:${line}: ${problem}`, "ECONFIG");
  }
}

/** The sections of one file, in order. `path` names it in errors. */
export function parseIni(text: string, path: string): IniSection[] {
  if (Buffer.byteLength(text) > MAX_INI_BYTES) {
    throw new ChromogenicError(`${path} is larger than ${MAX_INI_BYTES} bytes: not a configuration file`, "ECONFIG");
  }
  const sections: IniSection[] = [];
  const byName = new Set<string>();
  let current: IniSection | undefined;
  let lastKey: string | undefined;
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = raw.trim();
    const n = i + 1;
    if (line === "") {
      // An empty line ends a value (configparser would keep it in an indented value; no euca2ools key is multi-line).
      lastKey = undefined;
      continue;
    }
    if (line.startsWith("#") || line.startsWith(";")) continue;
    if (/^\s/.test(raw) && current && lastKey !== undefined) {
      current.options.set(lastKey, `${current.options.get(lastKey)}\n${line}`);
      continue;
    }
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      const name = header[1]!.trim();
      if (byName.has(name)) throw new IniSyntaxError(path, n, `section [${name}] appears twice`);
      if (sections.length >= MAX_SECTIONS) throw new IniSyntaxError(path, n, `more than ${MAX_SECTIONS} sections`);
      byName.add(name);
      current = { name, options: new Map(), origin: `${path}:${n}` };
      sections.push(current);
      lastKey = undefined;
      continue;
    }
    const option = /^([^=:]*?)\s*[=:]\s*(.*)$/.exec(line);
    if (!option || option[1] === "") {
      throw new IniSyntaxError(path, n, `"${line.slice(0, 60)}" is neither a [section], a key = value nor a comment`);
    }
    if (!current) throw new IniSyntaxError(path, n, "an option before any [section] header");
    const key = option[1]!.toLowerCase();
    if (current.options.has(key)) {
      throw new IniSyntaxError(path, n, `option "${key}" appears twice in section [${current.name}]`);
    }
    current.options.set(key, option[2]!);
    lastKey = key;
  }
  return sections;
}

/**
 * configparser's BasicInterpolation of one value: `%%` is a percent sign, `%(key)s` the value of `key` from
 * `lookup` (the same section, then DEFAULT), itself interpolated; anything else after `%` is an error.
 */
export function interpolate(
  value: string,
  lookup: (key: string) => string | undefined,
  where: string,
  depth = 0,
): string {
  if (!value.includes("%")) return value;
  if (depth > 10) throw new ChromogenicError(`${where}: interpolation nested more than 10 deep`, "ECONFIG");
  return value.replace(/%(%|\(([^)]*)\)s|.?)/g, (match, what: string, key: string | undefined) => {
    if (what === "%") return "%";
    if (key === undefined) {
      throw new ChromogenicError(`${where}: "%" must be followed by "%" or "(name)s", found "${match}"`, "ECONFIG");
    }
    const referenced = lookup(key.toLowerCase());
    if (referenced === undefined) {
      throw new ChromogenicError(`${where}: %(${key})s names no option of the section or of [DEFAULT]`, "ECONFIG");
    }
    return interpolate(referenced, lookup, where, depth + 1);
  });
}
