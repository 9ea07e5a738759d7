/**
 * The five defects of chromogenic 0.5's edits (inventory §2.1 "Verified defects"), each as a regression test
 * of the line-exact replacements, plus the other edits the atmosphere profile makes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DEPLOYMENT_BLOCKS, removeMarkedBlocks } from "../../src/operations/cleaning/line-edits.js";
import { removeAfterIncludedir } from "../../src/operations/cleaning/operations/atmosphere-blocks.js";
import { editCloudCfg } from "../../src/operations/cleaning/operations/cloud-init-config.js";
import { planCleaning, runCleaning } from "../../src/operations/cleaning/run-cleaning.js";
import { scratch } from "../helpers/tools.js";
import { SUDOERS_WITH_BLOCKS, writeTree } from "./guest-trees.js";

test("defect 1: #includedir /etc/sudoers.d is kept on its own line (not merged into the comment before it)", () => {
  const sudoers =
    "Defaults env_reset\n## Read drop-in files from /etc/sudoers.d (the # here means this isn't a comment)\n#includedir /etc/sudoers.d\natmo ALL=(ALL) ALL\n";
  assert.equal(
    removeAfterIncludedir(sudoers)?.text,
    "Defaults env_reset\n## Read drop-in files from /etc/sudoers.d (the # here means this isn't a comment)\n#includedir /etc/sudoers.d\n",
  );
  // nothing after it: no change at all; Debian 12's @includedir form is recognised too
  assert.equal(removeAfterIncludedir("a\n#includedir /etc/sudoers.d\n"), null);
  assert.equal(removeAfterIncludedir("a\n@includedir /etc/sudoers.d\nx\n")?.text, "a\n@includedir /etc/sudoers.d\n");
});

test("defect 2: the lines around a removed block are not joined", () => {
  const r = removeMarkedBlocks("x\n## Atmosphere System\nsecret\n## End Atmosphere System\ntail\n", DEPLOYMENT_BLOCKS);
  assert.equal(r.text, "x\ntail\n");
  assert.deepEqual(r.removed, [{ label: "Atmosphere System", first: 2, last: 4 }]);
});

test("defect 3: several blocks are removed separately (not everything from the first start to the last end)", () => {
  const text =
    "a\n## Atmosphere System\n1\n## End Atmosphere System\nkeep me\n## Atmosphere System\n2\n## End Atmosphere System\nz\n";
  const r = removeMarkedBlocks(text, DEPLOYMENT_BLOCKS);
  assert.equal(r.text, "a\nkeep me\nz\n");
  assert.equal(r.removed.length, 2);
  const all = removeMarkedBlocks(SUDOERS_WITH_BLOCKS, DEPLOYMENT_BLOCKS);
  assert.equal(
    all.text,
    "Defaults\tenv_reset\nroot\tALL=(ALL:ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n## Read drop-in files from /etc/sudoers.d\n#includedir /etc/sudoers.d\n",
  );
  assert.deepEqual(
    all.removed.map((b) => b.label),
    ["Atmosphere System", "Nagios", "Sensu"],
  );
});

test("defect 4: a block starting on line 1 is removed", () => {
  const r = removeMarkedBlocks("## Atmosphere System\nsecret\n## End Atmosphere System\nrest\n", DEPLOYMENT_BLOCKS);
  assert.equal(r.text, "rest\n");
});

test("an unterminated block is left in place and reported (never delete to the end of the file)", () => {
  const text = "a\n# Begin Nagios\nnagios ALL=(ALL) ALL\nroot ALL=(ALL) ALL\n";
  const r = removeMarkedBlocks(text, DEPLOYMENT_BLOCKS);
  assert.equal(r.text, text);
  assert.deepEqual(r.unterminated, [{ label: "Nagios", line: 2 }]);
});

test("bytes outside the blocks come back exactly: CRLF lines, no final newline, non-UTF-8 bytes", () => {
  const text = "caf\xe9\r\n## Atmosphere System\r\nx\r\n## End Atmosphere System\r\nlast line";
  assert.equal(removeMarkedBlocks(text, DEPLOYMENT_BLOCKS).text, "caf\xe9\r\nlast line");
});

test("defect 5: HWADDR=52:54:… and MACADDR lines are really removed, HWADDR-like text elsewhere kept", async (t) => {
  const root = join(await scratch(t, "chromo-clean-"), "root");
  await writeTree(root, {
    "etc/os-release": 'ID="centos"\nVERSION_ID="7"\n',
    "etc/sysconfig/network-scripts/ifcfg-eth0":
      "DEVICE=eth0\nHWADDR=52:54:00:12:34:56\n  MACADDR=52:54:00:ab:cd:ef\n# HWADDR=was here\nONBOOT=yes\n",
  });
  const run = await runCleaning(root, await planCleaning({ operations: "net-hwaddr" }), { dryRun: false });
  assert.equal(
    await readFile(join(root, "etc/sysconfig/network-scripts/ifcfg-eth0"), "utf8"),
    "DEVICE=eth0\n# HWADDR=was here\nONBOOT=yes\n",
  );
  assert.deepEqual(
    run.changes.map((c) => c.detail),
    ["removed HWADDR/MACADDR lines 2, 3"],
  );
});

test("cloud.cfg edits: whole users: block commented, only top-level disable_root/ssh_deletekeys lines changed", () => {
  const text =
    "users:\n  - default\n  - name: admin\nsystem_info:\n  default_user:\n    name: centos\n    disable_root: true\ndisable_root: true\nssh_deletekeys:   1\n";
  const r = editCloudCfg(text);
  assert.equal(
    r.text,
    "#users:\n#  - default\n#  - name: admin\nsystem_info:\n  default_user:\n    name: centos\n    disable_root: true\ndisable_root: false\nssh_deletekeys:   0\n",
  );
  assert.equal(editCloudCfg(r.text).numbers.length, 0, "a second pass changes nothing");
});
