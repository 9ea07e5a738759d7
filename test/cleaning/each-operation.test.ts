/**
 * Each operation alone, on the Debian-layout and the RHEL-layout tree: exactly the changes listed here (action
 * and guest path, in order), a dry run that writes nothing and lists the same changes, and a second run with
 * no change at all. Operations with nothing to do on either tree are deliberate no-ops or need a session
 * (zero-free-space), and say so.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLEANING_OPERATIONS } from "../../src/operations/cleaning/operation-registry.js";
import { planCleaning, runCleaning } from "../../src/operations/cleaning/run-cleaning.js";
import { scratch } from "../helpers/tools.js";
import { debianTree, rhelTree, treeHash, writeTree } from "./guest-trees.js";

type Expected = readonly string[] | "skipped";

const EXPECTED: Readonly<Record<string, { debian: Expected; rhel: Expected }>> = {
  "user-account": {
    debian: [
      "edit /etc/passwd",
      "edit /etc/shadow",
      "edit /etc/group",
      "edit /etc/gshadow",
      "edit /etc/subuid",
      "edit /etc/subgid",
      "remove /home/alice",
      "remove /var/mail/alice",
      "remove /home/bob",
      "remove /home/carol",
    ],
    rhel: [
      "edit /etc/passwd",
      "edit /etc/shadow",
      "edit /etc/group",
      "edit /etc/gshadow",
      "remove /home/rocky",
      "remove /var/spool/mail/rocky",
    ],
  },
  "atmosphere-files": {
    debian: [
      "remove /var/log/atmo",
      "remove /etc/rc.local.atmo",
      "remove /opt/cyverse",
      "remove /usr/sbin/atmo_boot.py",
      "remove /mnt/volume",
    ],
    rhel: [],
  },
  "atmosphere-blocks": {
    debian: ["edit /etc/sudoers", "edit /etc/ssh/sshd_config", "edit /etc/skel/.bashrc"],
    rhel: ["edit /etc/ssh/sshd_config"],
  },
  "atmosphere-accounts": {
    debian: ["edit /etc/group", "edit /etc/ssh/sshd_config"],
    rhel: ["edit /etc/ssh/sshd_config"],
  },
  "cloud-init-config": {
    debian: ["edit /etc/cloud/cloud.cfg"],
    rhel: ["edit /etc/cloud/cloud.cfg"],
  },
  "fstab-extra-volumes": {
    debian: [],
    rhel: ["edit /etc/fstab"],
  },
  "cloud-init-state": {
    debian: [
      "remove /var/lib/cloud/data",
      "remove /var/lib/cloud/instance",
      "remove /var/lib/cloud/instances",
      "remove /var/lib/cloud/scripts",
      "remove /var/lib/cloud/sem",
      "truncate /var/log/cloud-init.log",
      "truncate /var/log/cloud-init-output.log",
    ],
    rhel: ["remove /var/lib/cloud/instances"],
  },
  "tmp-files": {
    debian: ["remove /tmp/.X11-unix", "remove /tmp/session-file", "remove /var/tmp/big.tmp"],
    rhel: ["remove /tmp/yum.log", "remove /var/tmp/abrt"],
  },
  "abrt-data": {
    debian: [],
    rhel: ["remove /var/spool/abrt/ccpp-2024-01-01", "remove /var/tmp/abrt/last-ccpp"],
  },
  "backup-files": {
    debian: ["remove /etc/default/grub~", "remove /var/backups/passwd.bak"],
    rhel: [],
  },
  "bash-history": {
    debian: ["remove /home/alice/.bash_history", "remove /root/.bash_history"],
    rhel: ["remove /home/rocky/.bash_history", "remove /root/.bash_history"],
  },
  "blkid-tab": {
    debian: ["remove /etc/blkid.tab"],
    rhel: ["remove /etc/blkid/blkid.tab"],
  },
  "ca-certificates": {
    debian: [],
    rhel: ["remove /etc/pki/tls/private/localhost.key", "remove /etc/pki/tls/certs/localhost.crt"],
  },
  "crash-data": {
    debian: ["remove /var/crash/202401010000"],
    rhel: ["remove /var/crash/127.0.0.1-2024-01-01"],
  },
  "cron-spool": {
    debian: ["remove /var/spool/cron/atjobs/a0001", "remove /var/spool/cron/crontabs/alice"],
    rhel: ["remove /var/spool/cron/rocky"],
  },
  customize: {
    debian: ["remove /var/lib/systemd/random-seed"],
    rhel: [],
  },
  "dhcp-client-state": {
    debian: ["remove /var/lib/dhcp/dhclient.eth0.leases"],
    rhel: [],
  },
  "dhcp-server-state": {
    debian: ["remove /var/lib/dhcp/dhcpd.leases"],
    rhel: ["remove /var/lib/dhcpd/dhcpd.leases"],
  },
  "dovecot-data": {
    debian: ["remove /var/lib/dovecot/instances"],
    rhel: [],
  },
  "firewall-rules": {
    debian: [],
    rhel: ["remove /etc/sysconfig/iptables", "remove /etc/firewalld/zones/public.xml"],
  },
  "flag-reconfiguration": {
    debian: ["create /.unconfigured"],
    rhel: ["create /.unconfigured"],
  },
  "fs-uuids": {
    debian: [],
    rhel: [],
  },
  "ipa-client": {
    debian: [],
    rhel: [
      "remove /etc/ipa/ca.crt",
      "remove /etc/ipa/default.conf",
      "remove /var/lib/ipa-client/sysrestore/sysrestore.state",
    ],
  },
  "kerberos-data": {
    debian: [],
    rhel: ["remove /var/kerberos/krb5kdc/principal"],
  },
  "kerberos-hostkeytab": {
    debian: ["remove /etc/krb5.keytab"],
    rhel: [],
  },
  logfiles: {
    debian: [
      "remove /var/log/account/pacct.0",
      "remove /var/log/apt/history.log.1.gz",
      "remove /var/log/journal/0123/system.journal",
      "remove /var/log/syslog.1",
      "remove /var/log/syslog.2.gz",
      "truncate /var/log/account/pacct",
      "truncate /var/log/apt/history.log",
      "truncate /var/log/atmo/deploy.log",
      "truncate /var/log/auth.log",
      "truncate /var/log/cloud-init-output.log",
      "truncate /var/log/cloud-init.log",
      "truncate /var/log/myapp/app.log",
      "truncate /var/log/puppet/puppet.log",
      "truncate /var/log/samba/log.smbd",
      "truncate /var/log/samba/old/log.smbd",
      "truncate /var/log/syslog",
      "truncate /var/log/wtmp",
    ],
    rhel: [
      "remove /var/log/messages-20240101",
      "truncate /var/log/audit/audit.log",
      "truncate /var/log/messages",
      "truncate /var/log/secure",
      "truncate /var/log/sssd/sssd.log",
      "remove /root/anaconda-ks.cfg",
    ],
  },
  "lvm-system-devices": {
    debian: ["remove /etc/lvm/devices/system.devices"],
    rhel: [],
  },
  "lvm-uuids": {
    debian: [],
    rhel: [],
  },
  "machine-id": {
    debian: ["truncate /etc/machine-id"],
    rhel: ["truncate /etc/machine-id"],
  },
  "mail-spool": {
    debian: ["remove /var/mail/alice"],
    rhel: ["remove /var/spool/mail/rocky"],
  },
  "net-hostname": {
    debian: "skipped",
    rhel: ["edit /etc/sysconfig/network-scripts/ifcfg-eth0"],
  },
  "net-hwaddr": {
    debian: "skipped",
    rhel: ["edit /etc/sysconfig/network-scripts/ifcfg-eth0"],
  },
  "net-nmconn": {
    debian: ["remove /etc/NetworkManager/system-connections/Wired.nmconnection"],
    rhel: [],
  },
  "pacct-log": {
    debian: ["remove /var/log/account/pacct.0", "truncate /var/log/account/pacct"],
    rhel: ["truncate /var/account/pacct"],
  },
  "package-manager-cache": {
    debian: [
      "remove /var/cache/apt/archives/vim_9.0_amd64.deb",
      "remove /var/cache/apt/archives/partial/curl.deb",
      "remove /var/cache/apt/pkgcache.bin",
    ],
    rhel: ["remove /var/cache/dnf/baseos-1234", "remove /var/cache/yum/x86_64"],
  },
  "pam-data": {
    debian: ["remove /run/faillock/alice"],
    rhel: ["remove /run/console/rocky"],
  },
  "passwd-backups": {
    debian: ["remove /etc/passwd-", "remove /etc/shadow-"],
    rhel: [],
  },
  "puppet-data-log": {
    debian: ["remove /var/log/puppet/puppet.log"],
    rhel: [],
  },
  "rh-subscription-manager": {
    debian: "skipped",
    rhel: ["remove /etc/pki/consumer/cert.pem", "remove /etc/pki/entitlement/123.pem"],
  },
  "rhn-systemid": {
    debian: "skipped",
    rhel: ["remove /etc/sysconfig/rhn/systemid"],
  },
  "rpm-db": {
    debian: "skipped",
    rhel: ["remove /var/lib/rpm/__db.001", "remove /var/lib/rpm/__db.002"],
  },
  "samba-db-log": {
    debian: ["remove /var/lib/samba/private", "remove /var/log/samba/old/log.smbd"],
    rhel: [],
  },
  script: {
    debian: [],
    rhel: [],
  },
  "shell-history": {
    debian: [
      "remove /home/alice/.local/share/fish/fish_history",
      "remove /home/bob/.lesshst",
      "remove /home/carol/.ash_history",
      "remove /home/carol/.viminfo",
      "remove /root/.python_history",
      "remove /var/lib/postgresql/.psql_history",
    ],
    rhel: [],
  },
  "smolt-uuid": {
    debian: [],
    rhel: ["remove /etc/sysconfig/hw-uuid"],
  },
  "ssh-hostkeys": {
    debian: [
      "create /etc/systemd/system/chromogenic-ssh-hostkeys.service",
      "create /etc/systemd/system/multi-user.target.wants/chromogenic-ssh-hostkeys.service",
      "remove /etc/ssh/ssh_host_ed25519_key",
      "remove /etc/ssh/ssh_host_ed25519_key.pub",
      "remove /etc/ssh/ssh_host_rsa_key",
      "remove /etc/ssh/ssh_host_rsa_key.pub",
    ],
    rhel: ["remove /etc/ssh/ssh_host_ecdsa_key", "remove /etc/ssh/ssh_host_ecdsa_key.pub"],
  },
  "ssh-userdir": {
    debian: ["remove /home/alice/.ssh", "remove /root/.ssh"],
    rhel: ["remove /home/rocky/.ssh"],
  },
  "sssd-db-log": {
    debian: [],
    rhel: ["remove /var/lib/sss/db/cache_default.ldb"],
  },
  "udev-persistent-net": {
    debian: ["truncate /etc/udev/rules.d/70-persistent-net.rules"],
    rhel: [],
  },
  utmp: {
    debian: ["truncate /run/utmp"],
    rhel: [],
  },
  "yum-uuid": {
    debian: "skipped",
    rhel: ["remove /var/lib/yum/uuid"],
  },
  "zsh-history": {
    debian: ["remove /home/bob/.zsh_history"],
    rhel: [],
  },
  "zero-free-space": {
    debian: [],
    rhel: [],
  },
};

/** Operations that change nothing on a folder by design (fs-uuids and zero-free-space work on a session's devices). */
const NO_OPS = new Set(["fs-uuids", "lvm-uuids", "script", "zero-free-space"]);

test("the table covers every operation, and every operation but the no-ops acts on one of the trees", () => {
  assert.deepEqual(Object.keys(EXPECTED).sort(), CLEANING_OPERATIONS.map((o) => o.name).sort());
  for (const [name, e] of Object.entries(EXPECTED)) {
    const acts = [e.debian, e.rhel].some((x) => x !== "skipped" && x.length > 0);
    assert.equal(acts, !NO_OPS.has(name), name);
  }
});

for (const op of CLEANING_OPERATIONS) {
  for (const [layout, spec] of [
    ["debian", debianTree()],
    ["rhel", rhelTree()],
  ] as const) {
    test(`${op.name} on the ${layout} tree`, async (t) => {
      const root = join(await scratch(t, "chromo-op-"), "root");
      await writeTree(root, spec);
      const plan = await planCleaning({ operations: op.name });
      const before = await treeHash(root);
      const dry = await runCleaning(root, plan, { dryRun: true });
      assert.deepEqual(await treeHash(root), before, "dry run wrote nothing");
      const real = await runCleaning(root, plan, { dryRun: false });
      const expected = EXPECTED[op.name]![layout];
      if (expected === "skipped") {
        assert.match(real.operations[0]?.skipped ?? "", /not for family/);
        assert.deepEqual(real.changes, []);
        return;
      }
      assert.deepEqual(
        real.changes.map((c) => `${c.action} ${c.path}`),
        expected,
      );
      assert.ok(real.changes.every((c) => c.operation === op.name));
      assert.deepEqual(real.changes, dry.changes, "the dry run listed exactly this");
      if (expected.length) assert.notDeepEqual(await treeHash(root), before);
      const after = await treeHash(root);
      const again = await runCleaning(root, plan, { dryRun: false });
      assert.deepEqual(again.changes, [], "idempotent");
      assert.deepEqual(await treeHash(root), after);
    });
  }
}
