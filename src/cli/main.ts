import { Command, CommanderError } from "commander";
import { ChromogenicError } from "../formats/errors.js";
import { registerInfo } from "./commands/info.js";
import { registerConvert } from "./commands/convert.js";
import { registerDemo } from "./commands/demo.js";
import { registerFormats } from "./commands/formats.js";
import { registerExport } from "./commands/export.js";
import { registerGuest } from "./commands/guest.js";
import { registerClean } from "./commands/clean.js";
import { registerImage } from "./commands/image.js";
import { registerMigrate } from "./commands/migrate.js";
import { registerResume } from "./commands/resume.js";
import { registerClouds } from "./commands/clouds.js";

export function buildProgram(): Command {
  const program = new Command("chromogenic")
    .description("cloud imaging in one command: convert, export, migrate and clean disk images")
    .version("0.5.0")
    .showHelpAfterError()
    .exitOverride();
  registerInfo(program);
  registerConvert(program);
  registerExport(program);
  registerFormats(program);
  registerDemo(program);
  registerGuest(program);
  registerClean(program);
  registerImage(program);
  registerMigrate(program);
  registerResume(program);
  registerClouds(program);
  return program;
}

/** Runs the CLI; maps errors to one clear line on stderr and an exit code (1 failure, 2 usage, 130 cancelled). */
export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    if (e instanceof ChromogenicError) {
      process.stderr.write(`chromogenic: ${e.message}\n`);
      process.exitCode = e.code === "EUSAGE" ? 2 : e.code === "EABORTED" ? 130 : 1;
      return;
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`chromogenic: ${err.message ?? String(e)}\n`);
    if (process.env.CHROMOGENIC_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv);
