/**
 * Opens a guest read-write and holds it until a signal arrives, through the CLI's own cancellation
 * (cancelOnSignals): the interruption tests kill this process in every way and then look for leftovers.
 */
import { cancelOnSignals } from "../../src/cli/interrupts.js";
import { openGuest } from "../../src/guest/guest-session.js";

const interrupts = cancelOnSignals();
try {
  const guest = await openGuest(process.argv[2]!, { readOnly: false, signal: interrupts.signal });
  try {
    process.stdout.write(`ready ${guest.mounted.root}\n`);
    // Signal handlers alone do not keep Node's event loop alive; a timer does until the signal arrives.
    const keepAlive = setInterval(() => undefined, 60_000);
    await new Promise((resolve) => interrupts.signal.addEventListener("abort", resolve));
    clearInterval(keepAlive);
  } finally {
    await guest.close();
  }
  process.exitCode = 130;
} finally {
  interrupts.dispose();
}
