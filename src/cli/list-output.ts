/**
 * The openstack CLI's way of printing a list, for the commands that list things (`image list`, `jobs`,
 * `clouds`): `-f table|json|yaml|value|csv` and `-c COLUMN` (repeatable) to pick columns, the columns named as
 * in the table's header. Without -f the command prints its own summary; `--json` stays chromogenic's event.
 */
import type { Command } from "commander";
import { stringify as toYaml } from "yaml";
import { UsageError } from "../util/errors.js";
import { repeatable } from "./repeatable.js";
import { printResult, type ResultOutput } from "./run-command.js";

export type Cell = string | number | boolean | null;
/** Each column's title and how a row gives its value. */
export type Columns<R> = Readonly<Record<string, (row: R) => Cell>>;

const FORMATS = ["table", "json", "yaml", "value", "csv"] as const;
type ListFormat = (typeof FORMATS)[number];

export interface ListFlags {
  /** -f: set only when the user asked for an openstack-style list. */
  format?: string;
  column: string[];
}

/** Adds -f/--format and -c/--column to a listing command. */
export function listOptions<T extends Command>(command: T): T {
  return command
    .option("-f, --format <format>", `print the list as ${FORMATS.join(", ")}, like the openstack CLI`)
    .option(
      "-c, --column <column>",
      "print this column only (repeatable; names as in the table's header)",
      repeatable,
      [],
    ) as T;
}

/**
 * Prints a listing command's result: the openstack-style list of `rows` when -f or -c asks for one (not with
 * --json), else the command's own summary or `done` event.
 */
export function printListing<R extends object, Row>(
  output: ResultOutput<R>,
  result: R,
  rows: readonly Row[],
  columns: Columns<Row>,
  flags: ListFlags,
): void {
  const listed = output.json ? undefined : renderList(rows, columns, flags);
  if (listed !== undefined) process.stdout.write(listed);
  else printResult(output, result);
}

/** The list as asked by -f and -c, or undefined when -f was not given (the command prints its own summary). */
export function renderList<R>(rows: readonly R[], columns: Columns<R>, flags: ListFlags): string | undefined {
  const format = flags.format;
  if (format === undefined) {
    if (flags.column.length > 0) return render(rows, pick(columns, flags.column), "table");
    return undefined;
  }
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`-f ${format}: the formats are ${FORMATS.join(", ")}`);
  }
  return render(rows, pick(columns, flags.column), format as ListFormat);
}

function pick<R>(columns: Columns<R>, wanted: readonly string[]): [string, (row: R) => Cell][] {
  const all = Object.entries(columns);
  if (wanted.length === 0) return all;
  return wanted.map((name) => {
    const found = all.find(([title]) => title.toLowerCase() === name.toLowerCase());
    if (!found) throw new UsageError(`-c ${name}: the columns are ${all.map(([t]) => t).join(", ")}`);
    return found;
  });
}

function render<R>(rows: readonly R[], columns: [string, (row: R) => Cell][], format: ListFormat): string {
  const titles = columns.map(([title]) => title);
  const table = rows.map((row) => columns.map(([, get]) => get(row)));
  switch (format) {
    case "json":
      return (
        JSON.stringify(
          table.map((values) => Object.fromEntries(titles.map((t, i) => [t, values[i]]))),
          null,
          2,
        ) + "\n"
      );
    case "yaml":
      return table.length === 0
        ? "[]\n"
        : toYaml(table.map((values) => Object.fromEntries(titles.map((t, i) => [t, values[i]]))));
    case "value":
      return table.map((values) => values.map((v) => text(v)).join(" ") + "\n").join("");
    case "csv":
      return [titles, ...table].map((values) => values.map(csvCell).join(",") + "\n").join("");
    case "table":
      return boxed(
        titles,
        table.map((values) => values.map(text)),
      );
  }
}

function text(value: Cell): string {
  return value === null ? "" : String(value);
}

/** Strings quoted (quotes doubled), numbers and booleans bare, as the openstack CLI's csv. */
function csvCell(value: Cell): string {
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return `"${text(value).replace(/"/g, '""')}"`;
}

function boxed(titles: string[], rows: string[][]): string {
  const widths = titles.map((t, i) => Math.max(t.length, ...rows.map((r) => r[i]!.length)));
  const rule = "+" + widths.map((w) => "-".repeat(w + 2)).join("+") + "+\n";
  const line = (cells: string[]) => "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |\n";
  return rule + line(titles) + rule + rows.map(line).join("") + (rows.length ? rule : "");
}
