// Writes the manual page and the shell completions from the CLI's command definitions (src/cli/cli-reference.ts,
// compiled into dist/). Run after `npm run build`; the tests fail while the files differ from what this writes.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { bashCompletion, manPage, zshCompletion } from "../dist/src/cli/cli-reference.js";
import { buildProgram } from "../dist/src/cli/main.js";

const program = await buildProgram();
const { version } = JSON.parse(await readFile("package.json", "utf8"));
await mkdir("man", { recursive: true });
await mkdir("completions", { recursive: true });
await writeFile("man/chromogenic.1", manPage(program, version));
await writeFile("completions/chromogenic.bash", bashCompletion(program));
await writeFile("completions/_chromogenic", zshCompletion(program));
