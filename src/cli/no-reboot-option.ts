import type { Command } from "commander";

/**
 * `--no-reboot`: an EC2-family instance is snapshotted while it runs (CreateImage's NoReboot) instead of being
 * stopped for a consistent copy. It travels as CHROMOGENIC_AWS_NO_REBOOT (providers/aws/aws-settings.ts), so
 * a job's worker and a resume see it.
 */
export function noRebootOption<T extends Command>(command: T): T {
  command.option(
    "--no-reboot",
    "AWS: snapshot a running instance without stopping it (no downtime; its filesystems may be caught mid-write)",
  );
  command.hook("preAction", (self) => {
    if (self.opts<{ reboot?: boolean }>().reboot === false) process.env.CHROMOGENIC_AWS_NO_REBOOT = "1";
  });
  return command;
}
