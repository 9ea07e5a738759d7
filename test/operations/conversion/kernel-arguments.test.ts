import { test } from "node:test";
import assert from "node:assert/strict";
import { convertKernelArguments } from "../../../src/operations/conversion/kernel-arguments.js";

const U = "3f1c2b9e-8d4a-4e6f-9a7b-1c2d3e4f5a6b";

test("the Xen console becomes tty0 and ttyS0 in its place; xencons goes; root by UUID", () => {
  const cases: [string, Parameters<typeof convertKernelArguments>[1], string][] = [
    ["ro root=/dev/xvda1 console=hvc0", { rootUuid: U }, `ro root=UUID=${U} console=tty0 console=ttyS0,115200`],
    ["console=xvc0 xencons=tty0 ro", {}, "console=tty0 console=ttyS0,115200 ro"],
    ["console=hvc0 console=tty0", {}, "console=ttyS0,115200 console=tty0"],
    ["console=hvc0 console=hvc1", {}, "console=tty0 console=ttyS0,115200"],
    ["root=LABEL=cloudimg-rootfs ro", { rootUuid: U }, `root=UUID=${U} ro`],
    ["root=UUID=0000-1111 ro", { rootUuid: U }, `root=UUID=${U} ro`],
    // LVM and device-mapper roots stay: they do not depend on the hypervisor's bus.
    ["root=/dev/mapper/vg-root ro", { rootUuid: U }, "root=/dev/mapper/vg-root ro"],
    ["ro quiet", { rootUuid: U, addRoot: true }, `root=UUID=${U} ro quiet`],
    ["ro quiet", { rootUuid: U }, "ro quiet"],
    ["ro", { addConsole: true }, "ro console=tty0 console=ttyS0,115200"],
    ['ro dyndbg="file foo.c +p" console=hvc0', {}, 'ro dyndbg="file foo.c +p" console=tty0 console=ttyS0,115200'],
    ["", { rootUuid: U, addRoot: true }, `root=UUID=${U}`],
  ];
  for (const [args, options, expected] of cases) assert.equal(convertKernelArguments(args, options), expected, args);
});

test("a line with nothing to convert comes back as it was, spacing and all", () => {
  for (const args of ["ro  quiet   splash", `root=UUID=${U}  ro console=ttyS0,115200`, ""])
    assert.equal(convertKernelArguments(args, { rootUuid: U }), args);
  const once = convertKernelArguments("ro root=/dev/sda1 console=hvc0", { rootUuid: U, addRoot: true });
  assert.equal(convertKernelArguments(once, { rootUuid: U, addRoot: true, addConsole: true }), once);
});
