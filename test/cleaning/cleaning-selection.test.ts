import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { UsageError } from "../../src/formats/errors.js";
import { loadProfile, parseProfile } from "../../src/operations/cleaning/cleaning-profile.js";
import { CLEANING_OPERATIONS } from "../../src/operations/cleaning/operation-registry.js";
import { applySelection } from "../../src/operations/cleaning/operation-selection.js";
import { planCleaning } from "../../src/operations/cleaning/run-cleaning.js";
import { run } from "../helpers/tools.js";
import { doneOf } from "../helpers/event-lines.js";
import { scratch } from "../helpers/tools.js";

const DEFAULTS = CLEANING_OPERATIONS.filter((o) => o.defaultEnabled).map((o) => o.name);

test("the registry: every virt-sysprep default operation is here and on by default; names unique", () => {
  const sysprepDefaults = [
    "abrt-data",
    "backup-files",
    "bash-history",
    "blkid-tab",
    "crash-data",
    "cron-spool",
    "customize",
    "dhcp-client-state",
    "dhcp-server-state",
    "dovecot-data",
    "ipa-client",
    "kerberos-hostkeytab",
    "logfiles",
    "lvm-system-devices",
    "lvm-uuids",
    "machine-id",
    "mail-spool",
    "net-hostname",
    "net-hwaddr",
    "net-nmconn",
    "pacct-log",
    "package-manager-cache",
    "pam-data",
    "passwd-backups",
    "puppet-data-log",
    "rh-subscription-manager",
    "rhn-systemid",
    "rpm-db",
    "samba-db-log",
    "script",
    "smolt-uuid",
    "ssh-hostkeys",
    "ssh-userdir",
    "sssd-db-log",
    "tmp-files",
    "udev-persistent-net",
    "utmp",
    "yum-uuid",
    "zsh-history",
  ];
  assert.equal(sysprepDefaults.length, 39);
  for (const name of sysprepDefaults) assert.ok(DEFAULTS.includes(name), name);
  for (const name of ["cloud-init-state", "shell-history"]) assert.ok(DEFAULTS.includes(name), name);
  for (const name of ["user-account", "kerberos-data", "zero-free-space", "atmosphere-blocks", "cloud-init-config"])
    assert.ok(!DEFAULTS.includes(name), name);
  assert.equal(new Set(CLEANING_OPERATIONS.map((o) => o.name)).size, CLEANING_OPERATIONS.length);
  for (const op of CLEANING_OPERATIONS)
    assert.ok(op.description.length > 10 && !op.description.includes("\n"), op.name);
});

test("selection: defaults, all, additions and removals left to right", () => {
  assert.deepEqual([...applySelection("defaults")].sort(), [...DEFAULTS].sort());
  const s = applySelection("defaults,-ssh-hostkeys,user-account");
  assert.ok(s.has("user-account") && !s.has("ssh-hostkeys") && s.has("machine-id"));
  assert.deepEqual([...applySelection("machine-id,logfiles")].sort(), ["logfiles", "machine-id"]);
  assert.equal(applySelection("all,-defaults").has("machine-id"), false);
  assert.equal(applySelection("all,-defaults").has("user-account"), true);
  assert.deepEqual([...applySelection(" machine-id , ")], ["machine-id"]);
  assert.equal(applySelection("-machine-id", new Set(["machine-id", "utmp"])).has("machine-id"), false);
});

test("selection: unknown names and empty lists are usage errors naming them", () => {
  assert.throws(
    () => applySelection("defaults,frobnicate,-nope"),
    (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match((e as Error).message, /unknown cleaning operations "frobnicate", "nope"/);
      return true;
    },
  );
  assert.throws(() => applySelection(""), /empty operation list/);
});

test("plans: default is defaults; a profile is the start --operations adjusts; keep users add to the profile's", async () => {
  const plain = await planCleaning({});
  assert.deepEqual(plain.operations.map((o) => o.name).sort(), [...DEFAULTS].sort());
  const atmo = await planCleaning({ profile: "atmosphere", operations: "-zero-free-space", keepUsers: ["ubuntu"] });
  const names = atmo.operations.map((o) => o.name);
  assert.ok(
    names.includes("atmosphere-blocks") && names.includes("user-account") && !names.includes("zero-free-space"),
  );
  assert.deepEqual(atmo.parameters["user-account"], { keep: ["ubuntu"] });
  assert.deepEqual(atmo.parameters["atmosphere-blocks"], { "remove-after-includedir": true });
  // run order is the registry's: accounts first, trimming last
  assert.equal(names[0], "user-account");
  const withTrim = await planCleaning({ profile: "atmosphere" });
  assert.equal(withTrim.operations.at(-1)?.name, "zero-free-space");
});

test("profiles: built-ins load; bad YAML, unknown keys, unknown operations and bad parameters are clear errors", async (t) => {
  const dflt = await loadProfile("default");
  assert.deepEqual([...dflt.selection].sort(), [...DEFAULTS].sort());
  const dir = await scratch(t, "chromo-profile-");
  const file = async (name: string, text: string) => {
    const p = join(dir, name);
    await writeFile(p, text);
    return p;
  };
  const good = await loadProfile(
    await file("mine.yaml", "operations: [defaults, user-account]\nparameters:\n  user-account:\n    keep: [alice]\n"),
  );
  assert.ok(good.selection.has("user-account"));
  assert.deepEqual(good.parameters["user-account"], { keep: ["alice"] });

  await assert.rejects(
    loadProfile(await file("bad.yaml", "operations: [defaults\nparameters: :\n")),
    /bad\.yaml: not valid YAML/,
  );
  await assert.rejects(
    loadProfile(await file("extra.yaml", "operations: defaults\nwhatever: 1\n")),
    /extra\.yaml: .*whatever/,
  );
  await assert.rejects(loadProfile(await file("noops.yaml", "description: x\n")), /noops\.yaml: .*operations/);
  await assert.rejects(
    loadProfile(await file("unknown.yaml", "operations: defaults,bogus\n")),
    /unknown\.yaml: unknown cleaning operation "bogus"/,
  );
  await assert.rejects(
    loadProfile(await file("params.yaml", "operations: defaults\nparameters:\n  user-account:\n    keep: alice\n")),
    /params\.yaml: parameters of user-account/,
  );
  await assert.rejects(
    loadProfile(await file("noparams.yaml", "operations: defaults\nparameters:\n  machine-id:\n    x: 1\n")),
    /operation "machine-id" takes no parameters/,
  );
  await assert.rejects(
    loadProfile("no-such-profile"),
    (e: unknown) =>
      e instanceof UsageError && /neither a built-in profile \(atmosphere, default\)/.test((e as Error).message),
  );
  assert.throws(() => parseProfile("- a\n- b\n", "list.yaml", "list"), /list\.yaml/);
});

test("CLI: --list-operations (text and JSON) needs no root; unknown operations exit 2", async () => {
  const text = await run(process.execPath, ["bin/chromogenic.js", "clean", "--list-operations"]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /^machine-id\s+\*\s+all\s+Empty \/etc\/machine-id/m);
  assert.match(text.stdout, /^user-account\s{2,}all/m);
  const json = await run(process.execPath, ["bin/chromogenic.js", "clean", "--list-operations", "--json"]);
  const list = doneOf(json.stdout, "clean").operations as Array<{ name: string; default: boolean; families: string[] }>;
  assert.equal(list.length, CLEANING_OPERATIONS.length);
  assert.deepEqual(list.find((o) => o.name === "net-hwaddr")?.families, ["redhat", "suse"]);
  const bad = await run(process.execPath, [
    "bin/chromogenic.js",
    "clean",
    "--operations",
    "defaults,nope",
    "--dry-run",
    "x.qcow2",
  ]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown cleaning operation "nope"/);
});
