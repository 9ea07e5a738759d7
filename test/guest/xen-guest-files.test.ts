/**
 * The file-level Xen guest fixtures (test/helpers/xen-guest-files.ts) are consistent: every line they call
 * Xen-specific or the site's own is in the planted file, and every link stays inside the guest.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, realpath } from "node:fs/promises";
import { join } from "node:path";
import { scratch } from "../helpers/tools.js";
import { ATMO_BOOT_BLOCK, plantXenGuestFiles, type XenEra } from "../helpers/xen-guest-files.js";

for (const era of ["centos5", "centos6", "ubuntu-upstart"] as const satisfies readonly XenEra[]) {
  test(`${era}: the planted files hold the lines they name, and links stay in the guest`, async (t) => {
    const root = await realpath(await scratch(t, `chromo-xen-files-${era}-`));
    const files = await plantXenGuestFiles(root, era);
    const rcLocal = files.find((f) => f.path.endsWith("rc.local") && f.content !== undefined);
    assert.deepEqual(rcLocal?.xen, [...ATMO_BOOT_BLOCK], "every era has the Atmosphere rc.local block");
    for (const f of files) {
      const host = join(root, f.path);
      const resolved = await realpath(host);
      assert.ok(resolved.startsWith(`${root}/`), `${f.path} resolves inside the guest (${resolved})`);
      const lines = (await readFile(host, "utf8")).split("\n");
      for (const line of [...(f.xen ?? []), ...(f.keep ?? [])])
        assert.ok(lines.includes(line), `${f.path} has the line ${JSON.stringify(line)}`);
    }
  });
}
