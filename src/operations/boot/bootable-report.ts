import type { BootLoaderKind, DiskLayout, PlannedPartition } from "./disk-layout.js";
import type { ExistingBoot } from "./existing-boot.js";
import type { GuestEditChange } from "./guest-edits.js";

/** What `bootable` did (or, in a dry run, would do): the result the CLI prints and --report writes. */
export interface BootableReport {
  readonly input: string;
  readonly output?: string;
  readonly outputFormat: string;
  readonly dryRun: boolean;
  /** The input already boots: it was copied unchanged (converted to the output's format only). */
  readonly alreadyBootable?: ExistingBoot;
  readonly layout?: {
    readonly mode: DiskLayout["mode"];
    readonly table: DiskLayout["table"];
    readonly diskSize: number;
    readonly partitions: readonly PlannedPartition[];
  };
  readonly loader?: {
    readonly name: BootLoaderKind;
    /** The loader's configuration, as the guest sees it. */
    readonly config: string;
    /** GRUB's core image: where it is written, its size, its modules, the prefix it loads the rest from. */
    readonly coreLba?: number;
    readonly coreBytes?: number;
    readonly modules?: readonly string[];
    readonly prefix?: string;
  };
  readonly filesystems?: {
    readonly root: { readonly type: string; readonly uuid: string };
    readonly boot?: { readonly type: string; readonly uuid: string };
    /** Filesystems grown into larger partitions: the partition's number, its size before and after. */
    readonly grown: readonly {
      readonly partition: number;
      readonly type: string;
      readonly from: number;
      readonly to: number;
    }[];
  };
  readonly kernel?: {
    readonly version: string;
    readonly kernel: string;
    readonly initramfs: string | null;
    readonly arguments: readonly string[];
  };
  /** Files changed in the guest, by the boot loader's step and the guest edits. */
  readonly changes: readonly GuestEditChange[];
  readonly warnings: readonly string[];
  readonly timingsMs: Readonly<Record<string, number>>;
}
