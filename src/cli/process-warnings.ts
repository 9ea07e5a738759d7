/**
 * Process warnings (process.emitWarning: what the library says the user should know but is not an error, such as
 * images not being locked) shown as the CLI shows its own warnings: "chromogenic: warning: …" on stderr, or a
 * `message` event while a job writes JSON lines. Node's own printer ("(node:1234) Warning: …") is replaced.
 */

type Sink = (text: string) => void;

const toStderr: Sink = (text) => process.stderr.write(`chromogenic: warning: ${text}\n`);
let sink: Sink = toStderr;

/** Replaces Node's printing of process warnings by the CLI's; called once, at start-up. */
export function showProcessWarnings(): void {
  process.removeAllListeners("warning");
  process.on("warning", (warning) => sink(warning.message));
}

/** Sends process warnings to `job` (a job's own warning channel) until the returned function is called. */
export function sendProcessWarningsTo(job: Sink): () => void {
  sink = job;
  return () => {
    sink = toStderr;
  };
}
