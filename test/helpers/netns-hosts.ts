/**
 * Two (or more) "hosts" for the distributed tests: network namespaces on the bridge of
 * test/infra/network/hosts.sh, each with one address on it and nothing else (its own loopback, no default
 * route). A process started on a host (`ip netns exec`) shares the filesystem with the test but not the
 * network: it reaches Redis and PostgreSQL only by the bridge address they also listen on. The namespaces are
 * removed by `close`, and by a process exit handler if a test never gets there.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { packageRoot } from "../../src/util/package-files.js";
import { runOk } from "./tools.js";

const SCRIPT = "test/infra/network/hosts.sh";

export interface NetnsHost {
  readonly name: string;
  /** Its address on the bridge. */
  readonly address: string;
  /** Starts `command` inside the namespace. */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
}

export interface NetnsHosts {
  /** The machine's address on the bridge: where Redis and PostgreSQL listen for the hosts. */
  readonly bridge: string;
  readonly hosts: readonly NetnsHost[];
  close(): Promise<void>;
}

export async function makeNetnsHosts(count: number): Promise<NetnsHosts> {
  if (process.getuid?.() !== 0) throw new Error("network namespaces need root: run the distributed tests as root");
  const script = `${packageRoot()}/${SCRIPT}`;
  const bridge = (await runOk("bash", [script, "bridge"])).trim();
  const names: string[] = [];
  const removeAll = () => {
    for (const name of names.splice(0)) {
      try {
        execFileSync("bash", [script, "del", name], { stdio: "ignore" });
      } catch {
        // already gone
      }
    }
  };
  process.once("exit", removeAll);
  const hosts: NetnsHost[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const name = `chromo-${process.pid}-${randomBytes(3).toString("hex")}`;
      names.push(name);
      const address = (await runOk("bash", [script, "add", name])).trim();
      hosts.push({
        name,
        address,
        spawn: (command, args, options = {}) => spawn("ip", ["netns", "exec", name, command, ...args], options),
      });
    }
  } catch (e) {
    removeAll();
    throw e;
  }
  return {
    bridge,
    hosts,
    close: async () => {
      removeAll();
      process.off("exit", removeAll);
    },
  };
}
