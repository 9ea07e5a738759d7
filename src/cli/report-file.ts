import { rename, writeFile } from "node:fs/promises";

/** A command's report as JSON, written under a temporary name and renamed: a reader never sees half a report. */
export async function writeReportFile(path: string, report: object): Promise<void> {
  const partial = `${path}.${process.pid}.partial`;
  await writeFile(partial, JSON.stringify(report, null, 2) + "\n");
  await rename(partial, path);
}
