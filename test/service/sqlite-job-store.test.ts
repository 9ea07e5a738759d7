import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { SqliteJobStore } from "../../src/service/sqlite-job-store.js";
import { jobStoreContract } from "./job-store-contract.js";

const dir = mkdtempSync(join(tmpdir(), "chromogenic-sqlite-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

jobStoreContract("SQLite job store", () => SqliteJobStore.open(join(dir, `jobs-${++n}.sqlite`)));
