/**
 * The CLI with one libuv threadpool thread stuck for good, as a read of a hung device or NFS share leaves it:
 * `node stuck-thread-cli.js FIFO ARGS…` opens FIFO for reading without O_NONBLOCK (no writer ever comes, so
 * the open never returns), then runs `chromogenic ARGS…`. Nothing can interrupt that thread, and Node's
 * process.exit() waits for it: what test/cli/interrupts.test.ts proves the CLI still ends by a signal with.
 */
import { open } from "node:fs/promises";
import { main } from "../../src/cli/main.js";

const [fifo, ...args] = process.argv.slice(2);
if (fifo === undefined) throw new Error("usage: stuck-thread-cli FIFO ARGS…");
void open(fifo, "r").then((h) => h.close());
await main([process.argv[0]!, "chromogenic", ...args]);
