import type { Command } from "commander";
import { optionsToVariables } from "./cloud-options.js";

/** The node-controller options and the variables they set (read by providers/eucalyptus/eucalyptus-settings.ts). */
const NODE_OPTIONS = [
  ["nodeSshKey", "CHROMOGENIC_NODE_SSH_KEY"],
  ["nodeKnownHosts", "CHROMOGENIC_NODE_KNOWN_HOSTS"],
  ["nodeHostKey", "CHROMOGENIC_NODE_HOST_KEY"],
  ["nodeUser", "CHROMOGENIC_NODE_USER"],
  ["nodePort", "CHROMOGENIC_NODE_PORT"],
  ["nodeInstancesDir", "CHROMOGENIC_NODE_INSTANCES_DIR"],
] as const;

/**
 * Adds the options that image a Eucalyptus instance-store instance by copying its root disk off its node
 * controller over SFTP (as the original chromogenic did) instead of asking the cloud to bundle it. Like the
 * connection options they travel as variables, so a job's worker and a resume see them.
 */
export function nodeCopyOptions<T extends Command>(command: T): T {
  command.option(
    "--node-ssh-key <file>",
    "Eucalyptus instance-store: copy the root disk off the node controller with this SSH key (else BundleInstance)",
  );
  command.option("--node-known-hosts <file>", "check the node controller's host key against this known_hosts file");
  command.option("--node-host-key <fingerprint>", "or against this SHA256:… fingerprint");
  command.option("--node-user <user>", "the node controller's SSH user (default root)");
  command.option("--node-port <port>", "the node controller's SSH port (default 22)");
  command.option(
    "--node-instances-dir <dir>",
    "where the node keeps instances (default /var/lib/eucalyptus/instances/work; the original's /usr/local/eucalyptus)",
  );
  command.hook("preAction", (self) => optionsToVariables(self.opts(), NODE_OPTIONS));
  return command;
}
