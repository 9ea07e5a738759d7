// Writes docs/events.schema.json, the JSON Schema (draft 2020-12) of chromogenic's events, from their one
// definition (src/util/events.ts, compiled into dist/), formatted as the repository's prettier settings say.
// Run after `npm run build`; the tests fail while the file in docs/ differs from what this writes.
import { writeFile } from "node:fs/promises";
import prettier from "prettier";
import { eventJsonSchema } from "../dist/src/util/events.js";

const path = "docs/events.schema.json";
const options = { ...(await prettier.resolveConfig(path)), filepath: path };
await writeFile(path, await prettier.format(JSON.stringify(eventJsonSchema(), null, 2), options));
