import { Command, CommanderError } from "commander";
import { UsageError } from "../util/errors.js";
import { reportError } from "./error-report.js";
import { showProcessWarnings } from "./process-warnings.js";
import { releaseReplacedFilesAfterExit } from "../formats/io/old-output-release.js";

type Register = (program: Command) => void;

/**
 * Each top-level command and the module that defines it. Only the command being run is loaded: the others
 * pull in the OpenStack client, the cleaning operations, zod and yaml, and loading everything cost ~0.1 s of
 * start-up on every run, as much as a whole uncompressed conversion of a small disk.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Register>>> = {
  info: async () => (await import("./commands/info.js")).registerInfo,
  convert: async () => (await import("./commands/convert.js")).registerConvert,
  export: async () => (await import("./commands/export.js")).registerExport,
  formats: async () => (await import("./commands/formats.js")).registerFormats,
  demo: async () => (await import("./commands/demo.js")).registerDemo,
  guest: async () => (await import("./commands/guest.js")).registerGuest,
  inspect: async () => (await import("./commands/guest.js")).registerGuest,
  clean: async () => (await import("./commands/clean.js")).registerClean,
  bootable: async () => (await import("./commands/bootable.js")).registerBootable,
  image: async () => (await import("./commands/image.js")).registerImage,
  migrate: async () => (await import("./commands/migrate.js")).registerMigrate,
  resume: async () => (await import("./commands/resume.js")).registerResume,
  jobs: async () => (await import("./commands/resume.js")).registerResume,
  clouds: async () => (await import("./commands/clouds.js")).registerClouds,
  bundle: async () => (await import("./commands/bundle.js")).registerBundle,
  unbundle: async () => (await import("./commands/unbundle.js")).registerUnbundle,
  serve: async () => (await import("./commands/serve.js")).registerServe,
  worker: async () => (await import("./commands/worker.js")).registerWorker,
  token: async () => (await import("./commands/token.js")).registerToken,
};

/**
 * The program with the commands `argv` can reach: the one it names, or all of them when it names none
 * (help, version, a typo: commander then lists or suggests every command).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command("chromogenic")
    .description("cloud imaging in one command: convert, export, migrate and clean disk images")
    .version("0.5.0")
    // Options after a command are that command's: `jobs prune --json` is prune's --json, not jobs'.
    .enablePositionalOptions()
    .exitOverride();
  const named = argv[2] !== undefined ? COMMANDS[argv[2]] : undefined;
  const loaders = named ? [named] : [...new Set(Object.values(COMMANDS))];
  const registers = await Promise.all(loaders.map((load) => load()));
  for (const register of new Set(registers)) register(program);
  hintAfterUsageErrors(program);
  return program;
}

/**
 * A usage error is one line and a pointer to the help of the command it concerns, as qemu-img and git do, not
 * the whole help text (40 lines, the error scrolled out of sight above it).
 */
function hintAfterUsageErrors(command: Command, path = "chromogenic"): void {
  command.showHelpAfterError(`(see '${path} --help')`);
  for (const sub of command.commands) hintAfterUsageErrors(sub, `${path} ${sub.name()}`);
}

/**
 * Output into a pipe whose reader has gone (`chromogenic formats | head -1`) ends the program quietly, with
 * the status a process killed by SIGPIPE has (128 + 13), as C programs end there; Node ignores SIGPIPE and
 * would otherwise report the EPIPE write error with a stack trace.
 */
function endQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EPIPE") throw e;
      process.exit(141);
    });
  }
}

/**
 * Runs the CLI. A failure is one clear line on stderr, an `error` event with --json, and an exit status by its
 * code (docs/ERRORS.md: 1 failure, 2 usage, 130 cancelled). Commands that run work report their own failures
 * (run-command.ts); this reports the rest: bad arguments, and failures before or outside the work.
 */
export async function main(argv: readonly string[]): Promise<void> {
  showProcessWarnings();
  endQuietlyOnClosedPipe();
  // The CLI exits once its command is done: a file an output replaced is freed after that, not before.
  releaseReplacedFilesAfterExit();
  // Whether the command runs with --json, as commander parsed it; a guess from the words while it has not.
  let json = argv.includes("--json");
  try {
    const program = await buildProgram(argv);
    program.hook("preAction", (_program, action) => {
      json = action.opts().json === true;
    });
    await program.parseAsync([...argv]);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version end with 0. Commander already told what was wrong with the arguments on stderr.
      if (e.exitCode === 0) return;
      const usage = new UsageError(e.message.replace(/^error: /, ""));
      process.exitCode = reportError(usage, { json, toldOnStderr: true });
      return;
    }
    process.exitCode = reportError(e, { json });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv);
