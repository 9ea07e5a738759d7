/**
 * qemu-img's -U (--force-share): read images even while another process writes them, taking no lock. The choice
 * is made once per operation (a conversion, an `info`) and holds for every file that operation opens, the files an
 * image names and an OVA's members included, which are opened deep inside drivers; so it travels with the
 * operation's asynchronous context rather than through every call in between.
 */
import { AsyncLocalStorage } from "node:async_hooks";

const forcingShare = new AsyncLocalStorage<boolean>();

/** Runs `operation` with its inputs read unlocked when `force` is true; as usual otherwise. */
export function withForceShare<T>(force: boolean | undefined, operation: () => Promise<T>): Promise<T> {
  return force ? forcingShare.run(true, operation) : operation();
}

/** True inside an operation run with force-share: inputs are then opened without their reader locks. */
export function sharingForced(): boolean {
  return forcingShare.getStore() === true;
}
