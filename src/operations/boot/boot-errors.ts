import { ChromogenicError } from "../../util/errors.js";

/** A program or package the boot loader is made with is missing on this host (grub-pc-bin, grub-mkimage). */
export class MissingHostToolError extends ChromogenicError {
  constructor(message: string) {
    super(message, "EUNSUPPORTED");
  }
}

/**
 * The guest cannot be made to boot as asked: no kernel in /boot, a /boot/grub that is a link, a filesystem GRUB
 * cannot read, no room for the boot loader in a layout that must be kept. Nothing was written.
 */
export class NotBootableError extends ChromogenicError {
  constructor(message: string) {
    super(message, "ENOTBOOTABLE");
  }
}
