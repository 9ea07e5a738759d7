import { test } from "node:test";
import assert from "node:assert/strict";
import { lstat, readFile, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { planCleaning, runCleaning } from "../../src/operations/cleaning/run-cleaning.js";
import { KEYGEN_UNIT_TEXT } from "../../src/operations/cleaning/operations/ssh-hostkeys.js";
import { scratch } from "../helpers/tools.js";
import { debianTree, exists, rhelTree, writeTree, type TreeSpec } from "./guest-trees.js";

async function clean(root: string, operations: string, extra: { keepUsers?: string[]; profile?: string } = {}) {
  const plan = await planCleaning({ operations, ...extra });
  return runCleaning(root, plan, { dryRun: false });
}

async function tree(t: Parameters<typeof scratch>[0], spec: TreeSpec): Promise<string> {
  const root = join(await scratch(t, "chromo-clean-"), "root");
  await writeTree(root, spec);
  return root;
}

const text = (root: string, path: string) => readFile(join(root, path), "utf8");
/** Each path is absent (after a clean). */
async function gone(root: string, ...paths: string[]): Promise<void> {
  for (const p of paths) assert.equal(await exists(join(root, p)), false, `${p} should be gone`);
}
/** Each path is still there. */
async function kept(root: string, ...paths: string[]): Promise<void> {
  for (const p of paths) assert.equal(await exists(join(root, p)), true, `${p} should be kept`);
}
/** Each path is a file emptied in place (still there, size 0). */
async function emptied(root: string, ...paths: string[]): Promise<void> {
  for (const p of paths) assert.equal((await stat(join(root, p))).size, 0, `${p} should be emptied`);
}
const mode = async (root: string, path: string) => (await stat(join(root, path))).mode & 0o777;

test("Debian tree, defaults: identity, histories, logs, cloud-init state, caches cleaned; the rest kept", async (t) => {
  const root = await tree(t, debianTree());
  const run = await clean(root, "defaults");
  assert.deepEqual(
    run.operations.filter((o) => o.skipped).map((o) => o.name),
    ["net-hostname", "net-hwaddr", "rh-subscription-manager", "rhn-systemid", "rpm-db", "yum-uuid"],
  );
  // machine-id emptied, not removed; dbus's symlink left alone
  await emptied(root, "etc/machine-id");
  assert.equal(await readlink(join(root, "var/lib/dbus/machine-id")), "/etc/machine-id");
  // histories of every shell and user, root included
  await gone(
    root,
    "root/.bash_history",
    "root/.python_history",
    "home/alice/.bash_history",
    "home/alice/.local/share/fish/fish_history",
    "home/bob/.zsh_history",
    "home/bob/.lesshst",
    "home/carol/.ash_history",
    "home/carol/.viminfo",
    "var/lib/postgresql/.psql_history",
  );
  // a service account's ~/.ssh is its own configuration (virt-sysprep too only clears /root and /home/*)
  await kept(root, "var/lib/postgresql/.ssh/authorized_keys");
  // ssh: user dirs gone; host keys gone and a keygen unit arranged (Debian has nothing that makes them)
  await gone(root, "root/.ssh", "home/alice/.ssh", "etc/ssh/ssh_host_rsa_key", "etc/ssh/ssh_host_ed25519_key.pub");
  assert.equal(await text(root, "etc/systemd/system/chromogenic-ssh-hostkeys.service"), KEYGEN_UNIT_TEXT);
  await gone(root, ".autorelabel"); // no SELinux in this guest: no relabel asked for
  assert.equal(
    await readlink(join(root, "etc/systemd/system/multi-user.target.wants/chromogenic-ssh-hostkeys.service")),
    "/etc/systemd/system/chromogenic-ssh-hostkeys.service",
  );
  // logs: emptied in place, rotated/compressed and journal files removed, folders kept
  await emptied(
    root,
    "var/log/syslog",
    "var/log/auth.log",
    "var/log/wtmp",
    "var/log/myapp/app.log",
    "var/log/apt/history.log",
  );
  assert.equal(await mode(root, "var/log/syslog"), 0o640);
  assert.equal(await mode(root, "var/log/wtmp"), 0o664);
  await gone(
    root,
    "var/log/syslog.1",
    "var/log/syslog.2.gz",
    "var/log/apt/history.log.1.gz",
    "var/log/journal/0123/system.journal",
  );
  await kept(root, "var/log/journal/0123");
  // cloud-init: everything but seed/, scripts included (cloud-init clean), logs emptied
  for (const p of ["instance", "instances", "data", "sem", "scripts"]) await gone(root, `var/lib/cloud/${p}`);
  await kept(root, "var/lib/cloud/seed/nocloud/user-data");
  await emptied(root, "var/log/cloud-init.log");
  // tmp folders emptied but kept
  assert.deepEqual(await import("node:fs/promises").then((f) => f.readdir(join(root, "tmp"))), []);
  await kept(root, "var/tmp");
  await gone(root, "var/tmp/big.tmp");
  // udev: generated rules emptied, the generator untouched
  await emptied(root, "etc/udev/rules.d/70-persistent-net.rules");
  assert.equal(await text(root, "lib/udev/rules.d/75-persistent-net-generator.rules"), '# generator\nACTION=="add"\n');
  // cron: jobs gone, the crontabs folder and at's counter kept
  await gone(root, "var/spool/cron/crontabs/alice");
  await kept(root, "var/spool/cron/crontabs");
  await gone(root, "var/spool/cron/atjobs/a0001");
  await kept(root, "var/spool/cron/atjobs/.SEQ");
  // misc default operations
  await gone(
    root,
    "etc/passwd-",
    "etc/shadow-",
    "etc/krb5.keytab",
    "var/mail/alice",
    "var/lib/dhcp/dhclient.eth0.leases",
    "var/lib/systemd/random-seed",
    "var/cache/apt/archives/vim_9.0_amd64.deb",
    "var/cache/apt/archives/partial/curl.deb",
    "var/cache/apt/pkgcache.bin",
    "var/backups/passwd.bak",
    "etc/default/grub~",
    "etc/NetworkManager/system-connections/Wired.nmconnection",
    "etc/lvm/devices/system.devices",
  );
  await kept(root, "var/cache/apt/archives/partial");
  await emptied(root, "run/utmp");
  // not selected by defaults: accounts, Atmosphere blocks, user documents
  assert.match(await text(root, "etc/passwd"), /^alice:/m);
  assert.match(await text(root, "etc/sudoers"), /## Atmosphere System/);
  assert.equal(await text(root, "home/alice/documents/notes.txt"), "private notes\n");
  assert.equal(await text(root, "srv/www/index.html"), "<html>kept</html>\n");
  assert.equal(await text(root, "etc/hostname"), "guest\n");
});

test("user-account: ordinary accounts out of every account file, homes and mail; keep list and system accounts kept", async (t) => {
  const root = await tree(t, debianTree());
  await clean(root, "user-account", { keepUsers: ["carol"] });
  assert.equal(
    await text(root, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\npostgres:x:110:118::/var/lib/postgresql:/bin/bash\ncarol:x:1002:1002::/home/carol:/bin/sh\n",
  );
  assert.equal(
    await text(root, "etc/shadow"),
    "root:*:19000:0:99999:7:::\ndaemon:*:19000::::::\nnobody:*:19000::::::\ncarol:!:19000::::::\n",
  );
  assert.equal(await text(root, "etc/group"), "root:x:0:\nsudo:x:27:carol\nusers:x:100:\ncarol:x:1002:\n");
  assert.equal(await text(root, "etc/gshadow"), "root:*::\nsudo:*::carol\nusers:*::\ncarol:!::\n");
  assert.equal(await text(root, "etc/subuid"), "carol:231072:65536\n");
  assert.equal(await text(root, "etc/subgid"), "carol:231072:65536\n");
  await gone(root, "home/alice", "home/bob");
  await kept(root, "home/carol/.ash_history");
  await gone(root, "var/mail/alice");
  // modes of the edited files are kept (same inode)
  assert.equal(await mode(root, "etc/shadow"), 0o640);
});

test("RHEL tree, defaults: HWADDR/MACADDR/HOSTNAME lines, rpm __db, dnf/yum caches, subscription, keys via sshd-keygen", async (t) => {
  const root = await tree(t, rhelTree());
  const run = await clean(root, "defaults,user-account");
  assert.equal(run.inspection.distribution.family, "redhat");
  assert.deepEqual(
    run.operations.filter((o) => o.skipped),
    [],
  );
  assert.equal(
    await text(root, "etc/sysconfig/network-scripts/ifcfg-eth0"),
    "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\n",
  );
  assert.equal(await text(root, "etc/sysconfig/network-scripts/ifcfg-lo"), "DEVICE=lo\nIPADDR=127.0.0.1\n");
  await gone(root, "var/lib/rpm/__db.001", "var/lib/rpm/__db.002");
  await kept(root, "var/lib/rpm/rpmdb.sqlite");
  await gone(root, "var/cache/dnf/baseos-1234", "var/cache/yum/x86_64");
  await kept(root, "var/cache/dnf");
  await gone(
    root,
    "var/lib/yum/uuid",
    "etc/sysconfig/rhn/systemid",
    "etc/pki/consumer/cert.pem",
    "etc/pki/entitlement/123.pem",
  );
  // sshd-keygen@.service makes the keys: removed, and no unit of ours is needed
  await gone(root, "etc/ssh/ssh_host_ecdsa_key", "etc/systemd/system/chromogenic-ssh-hostkeys.service");
  const keyChange = run.changes.find((c) => c.path === "/etc/ssh/ssh_host_ecdsa_key");
  assert.equal(keyChange?.detail, "regenerated at boot by sshd-keygen@.service");
  // logs (rotated by date removed), anaconda kickstart, pacct emptied in place
  await emptied(root, "var/log/messages");
  assert.equal(await mode(root, "var/log/audit/audit.log"), 0o600);
  await gone(root, "var/log/messages-20240101", "root/anaconda-ks.cfg");
  await emptied(root, "var/account/pacct");
  // mail through the /var/mail -> spool/mail symlink: the link stays, the mail goes (once)
  assert.equal(await readlink(join(root, "var/mail")), "spool/mail");
  await gone(root, "var/spool/mail/rocky");
  assert.equal(run.changes.filter((c) => c.path === "/var/spool/mail/rocky").length, 1);
  await gone(root, "var/spool/cron/rocky");
  // user-account on RHEL: rocky gone, wheel's member list emptied
  assert.equal(await text(root, "etc/group"), "root:x:0:\nwheel:x:10:\n");
  await gone(root, "home/rocky");
});

test("ssh-hostkeys: cloud-init's ssh module makes keys (no unit); without systemd and regeneration, keys are kept", async (t) => {
  const withCloud = await tree(t, {
    ...debianTree(),
    "usr/bin/cloud-init": "",
    "etc/cloud/cloud.cfg": "cloud_init_modules:\n - bootcmd\n - ssh\n",
  });
  const run = await clean(withCloud, "ssh-hostkeys");
  await gone(withCloud, "etc/ssh/ssh_host_rsa_key", "etc/systemd/system/chromogenic-ssh-hostkeys.service");
  assert.ok(run.changes.every((c) => c.detail === "regenerated at boot by cloud-init's ssh module"));

  const selinux = await tree(t, { ...debianTree(), "etc/selinux/config": "SELINUX=enforcing\n" });
  await clean(selinux, "ssh-hostkeys");
  await kept(selinux, "etc/systemd/system/chromogenic-ssh-hostkeys.service", ".autorelabel");

  const spec: Record<string, unknown> = { ...debianTree() };
  delete spec["sbin/init"];
  delete spec["lib/systemd/systemd"];
  spec["etc/inittab"] = "id:2:initdefault:\n";
  const sysv = await tree(t, spec as TreeSpec);
  const kept2 = await clean(sysv, "ssh-hostkeys");
  await kept(sysv, "etc/ssh/ssh_host_rsa_key");
  assert.equal(kept2.changes.length, 0);
  assert.match(kept2.warnings.join("\n"), /SSH host keys kept/);
});

test("Atmosphere profile: blocks, includedir, cloud.cfg, fstab, deployment files, groups; no root password, SELinux untouched", async (t) => {
  const root = await tree(t, {
    ...rhelTree(),
    "etc/sudoers": {
      content: `Defaults env_reset\n## Read drop-in files from /etc/sudoers.d\n#includedir /etc/sudoers.d\natmo-user ALL=(ALL) ALL\n`,
      mode: 0o440,
    },
    "etc/ssh/sshd_config": "Port 22\nAllowGroups users root atmo\nUsePAM yes\n",
    "etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
    "etc/cloud/cloud.cfg":
      "users:\n - default\n - name: admin\n   groups: wheel\ndisable_root: 1\nssh_deletekeys: true\n# disable_root: true in a comment\n",
    "etc/fstab":
      "UUID=0f0f0000-1111-4222-8333-444455556666 / xfs defaults 0 0\n/dev/vdb /mnt/ephemeral auto defaults 0 0\n/dev/sda1 /boot ext4 defaults 0 0\n/dev/sda2 /vol ext4 defaults 0 0\n# /dev/vdb was the ephemeral disk\nUUID=1234 /data ext4 defaults,comment=/dev/vdc 0 0\n",
    "etc/group": "root:x:0:\nusers:x:100:rocky,atmo\nrocky:x:1000:\natmo-old:x:1500:\natmo-shared:x:1501:someone\n",
    "var/log/atmo/deploy.log": "deploy\n",
    "etc/rc.local.atmo": "#!/bin/sh\n",
    "opt/cyverse/bin/tool": "tool\n",
    "usr/sbin/atmo_boot.py": "print()\n",
    "mnt/old-volume/file": "data\n",
  });
  const run = await clean(root, "-zero-free-space", { profile: "atmosphere", keepUsers: ["rocky"] });
  assert.equal(
    await text(root, "etc/sudoers"),
    "Defaults env_reset\n## Read drop-in files from /etc/sudoers.d\n#includedir /etc/sudoers.d\n",
  );
  assert.equal(await text(root, "etc/ssh/sshd_config"), "Port 22\nUsePAM yes\n");
  assert.equal(
    await text(root, "etc/cloud/cloud.cfg"),
    "#users:\n# - default\n# - name: admin\n#   groups: wheel\ndisable_root: 0\nssh_deletekeys: false\n# disable_root: true in a comment\n",
  );
  assert.equal(
    await text(root, "etc/fstab"),
    "UUID=0f0f0000-1111-4222-8333-444455556666 / xfs defaults 0 0\n/dev/sda1 /boot ext4 defaults 0 0\n# /dev/vdb was the ephemeral disk\nUUID=1234 /data ext4 defaults,comment=/dev/vdc 0 0\n",
  );
  // users group emptied; a member-less 1xxx group dropped unless it is a kept account's primary group
  assert.equal(await text(root, "etc/group"), "root:x:0:\nusers:x:100:\nrocky:x:1000:\natmo-shared:x:1501:someone\n");
  await gone(root, "var/log/atmo", "etc/rc.local.atmo", "opt/cyverse", "usr/sbin/atmo_boot.py", "mnt/old-volume");
  await kept(root, "mnt");
  assert.equal(await text(root, "etc/selinux/config"), "SELINUX=enforcing\nSELINUXTYPE=targeted\n");
  await gone(root, "etc/syslinux");
  assert.equal(await text(root, "etc/shadow"), "root:*:19000:0:99999:7:::\nrocky:!!:19000::::::\n");
  assert.ok(run.operations.some((o) => o.name === "kerberos-data"));
  assert.ok(!run.operations.some((o) => o.name === "zero-free-space"));
});

test("zero-free-space on a plain folder trims nothing (only a session's guest mounts are trimmed)", async (t) => {
  const root = await tree(t, debianTree());
  const run = await clean(root, "zero-free-space");
  assert.equal(run.changes.length, 0);
  assert.match(run.warnings.join("\n"), /no guest filesystems mounted/);
});

test("every change names its operation and a guest path; the report lists each selected operation once", async (t) => {
  const root = await tree(t, debianTree());
  const run = await clean(root, "all,-zero-free-space");
  for (const c of run.changes) {
    assert.ok(c.path.startsWith("/") && !c.path.startsWith(root), c.path);
    assert.ok(run.operations.some((o) => o.name === c.operation));
  }
  assert.equal(new Set(run.operations.map((o) => o.name)).size, run.operations.length);
  assert.ok((await lstat(join(root, "etc"))).isDirectory());
});
