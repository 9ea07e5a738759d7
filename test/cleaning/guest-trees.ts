/**
 * Guest trees for the cleaning suites, laid out in a plain folder (no image, no mount): the cleaning runner
 * works on any folder shaped like a guest root, so each operation is tested on a real filesystem tree.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile, chmod } from "node:fs/promises";
import { dirname, join } from "node:path";

export type TreeEntry =
  | string
  | { readonly link: string }
  | { readonly dir: true }
  | { readonly fifo: true }
  | { readonly content: string; readonly mode: number };

export type TreeSpec = Readonly<Record<string, TreeEntry>>;

export async function writeTree(root: string, spec: TreeSpec): Promise<void> {
  for (const [path, entry] of Object.entries(spec)) {
    const host = join(root, path);
    await mkdir(dirname(host), { recursive: true });
    if (typeof entry === "string") await writeFile(host, entry);
    else if ("link" in entry) await symlink(entry.link, host);
    else if ("dir" in entry) await mkdir(host, { recursive: true });
    else if ("fifo" in entry) execFileSync("mkfifo", [host]);
    else {
      await writeFile(host, entry.content);
      await chmod(host, entry.mode);
    }
  }
}

const PASSWD = [
  "root:x:0:0:root:/root:/bin/bash",
  "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
  "postgres:x:110:118::/var/lib/postgresql:/bin/bash",
  "alice:x:1000:1000:Alice:/home/alice:/bin/bash",
  "bob:x:1001:1001::/home/bob:/usr/bin/zsh",
  "carol:x:1002:1002::/home/carol:/bin/sh",
  "",
].join("\n");
const SHADOW =
  "root:*:19000:0:99999:7:::\ndaemon:*:19000::::::\nnobody:*:19000::::::\nalice:$6$x$y:19000:0:99999:7:::\nbob:!:19000::::::\ncarol:!:19000::::::\n";
const GROUP = [
  "root:x:0:",
  "sudo:x:27:alice,carol",
  "users:x:100:alice,bob",
  "alice:x:1000:",
  "bob:x:1001:",
  "carol:x:1002:",
  "",
].join("\n");
const GSHADOW = "root:*::\nsudo:*::alice,carol\nusers:*::alice,bob\nalice:!::\nbob:!::\ncarol:!::\n";

export const SUDOERS_WITH_BLOCKS = [
  "## Atmosphere System",
  "atmo ALL=(ALL) NOPASSWD: ALL",
  "## End Atmosphere System",
  "Defaults\tenv_reset",
  "root\tALL=(ALL:ALL) ALL",
  "# Begin Nagios",
  "nagios ALL=(ALL) NOPASSWD: /usr/lib/nagios/plugins/",
  "# End Nagios",
  "%sudo\tALL=(ALL:ALL) ALL",
  "# Begin Sensu",
  "sensu ALL=(ALL) NOPASSWD: ALL",
  "# End Sensu",
  "## Read drop-in files from /etc/sudoers.d",
  "#includedir /etc/sudoers.d",
  "",
].join("\n");

/** A Debian bookworm-like root with everything the default operations and user-account act on. */
export function debianTree(): TreeSpec {
  return {
    "etc/os-release":
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    "etc/debian_version": "12.5\n",
    "etc/hostname": "guest\n",
    "etc/fstab": "UUID=0f0f0000-1111-4222-8333-444455556666 / ext4 errors=remount-ro 0 1\n",
    "etc/login.defs": "UID_MIN 1000\nUID_MAX 60000\n",
    "etc/passwd": PASSWD,
    "etc/shadow": { content: SHADOW, mode: 0o640 },
    "etc/group": GROUP,
    "etc/gshadow": { content: GSHADOW, mode: 0o640 },
    "etc/subuid": "alice:100000:65536\nbob:165536:65536\ncarol:231072:65536\n",
    "etc/subgid": "alice:100000:65536\nbob:165536:65536\ncarol:231072:65536\n",
    "etc/passwd-": PASSWD,
    "etc/shadow-": SHADOW,
    "etc/sudoers": { content: SUDOERS_WITH_BLOCKS, mode: 0o440 },
    "etc/ssh/sshd_config":
      "Port 22\n## Atmosphere System\nAllowGroups users root\n## End Atmosphere System\nUsePAM yes\n",
    "etc/ssh/ssh_host_rsa_key": { content: "PRIVATE RSA\n", mode: 0o600 },
    "etc/ssh/ssh_host_rsa_key.pub": "ssh-rsa AAAA root@guest\n",
    "etc/ssh/ssh_host_ed25519_key": { content: "PRIVATE ED25519\n", mode: 0o600 },
    "etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAA root@guest\n",
    "etc/skel/.bashrc":
      "# ~/.bashrc\n## Atmosphere System\nexport ATMO=1\n## End Atmosphere System\nalias ll='ls -l'\n",
    "etc/machine-id": { content: "0123456789abcdef0123456789abcdef\n", mode: 0o444 },
    "var/lib/dbus/machine-id": { link: "/etc/machine-id" },
    "etc/udev/rules.d/70-persistent-net.rules": 'SUBSYSTEM=="net", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"\n',
    "lib/udev/rules.d/75-persistent-net-generator.rules": '# generator\nACTION=="add"\n',
    "etc/krb5.keytab": "keytab\n",
    "etc/cloud/cloud.cfg":
      "users:\n - default\ndisable_root: true\nssh_deletekeys: 1\ncloud_init_modules:\n - bootcmd\n - users-groups\n",
    "etc/ssh/sshd_config.d/.keep": "",
    "lib/systemd/systemd": "#!/bin/false\n",
    "lib/systemd/system/ssh.service": "[Service]\nExecStart=/usr/sbin/sshd -D\n",
    "sbin/init": { link: "/lib/systemd/systemd" },
    "usr/bin/apt-get": "",
    "usr/bin/ssh-keygen": "",
    "var/lib/dpkg/status": "Package: base-files\n",
    "var/run": { link: "/run" },
    "run/utmp": "utmp-record\n",
    "root/.bash_history": "ls\nsudo secret\n",
    "root/.ssh/authorized_keys": "ssh-ed25519 AAAA admin\n",
    "root/.python_history": "import os\n",
    "home/alice/.bash_history": "mysql -p hunter2\n",
    "home/alice/.ssh/id_ed25519": "PRIVATE\n",
    "home/alice/.local/share/fish/fish_history": "- cmd: ls\n",
    "home/alice/documents/notes.txt": "private notes\n",
    "home/bob/.zsh_history": ": 1:0;ls\n",
    "home/bob/.lesshst": ".less-history-file:\n",
    "home/carol/.ash_history": "ls\n",
    "home/carol/.viminfo": "# viminfo\n",
    "var/lib/postgresql/.psql_history": "select * from secrets;\n",
    "var/lib/postgresql/.ssh/authorized_keys": "ssh-ed25519 AAAA replication\n",
    "var/log/syslog": { content: "Jan 1 host kernel: hello\n", mode: 0o640 },
    "var/log/auth.log": { content: "sshd: accepted\n", mode: 0o640 },
    "var/log/syslog.1": "older\n",
    "var/log/syslog.2.gz": "gzipped\n",
    "var/log/apt/history.log": "Start-Date: 2024\n",
    "var/log/apt/history.log.1.gz": "gz\n",
    "var/log/wtmp": { content: "wtmp-record\n", mode: 0o664 },
    "var/log/journal/0123/system.journal": "LPKSHHRH",
    "var/log/myapp/app.log": "app output\n",
    "var/log/puppet/puppet.log": "puppet run\n",
    "var/log/cloud-init.log": "cloud-init ran\n",
    "var/log/cloud-init-output.log": "output\n",
    "var/lib/cloud/instance": { link: "/var/lib/cloud/instances/i-0abc" },
    "var/lib/cloud/instances/i-0abc/user-data.txt": "#cloud-config\npassword: secret\n",
    "var/lib/cloud/instances/i-0abc/sem/config_ssh": "",
    "var/lib/cloud/data/instance-id": "i-0abc\n",
    "var/lib/cloud/sem/config_scripts_per_once.once": "",
    "var/lib/cloud/scripts/per-boot/hello.sh": "#!/bin/sh\n",
    "var/lib/cloud/seed/nocloud/user-data": "#cloud-config\n",
    "var/lib/dhcp/dhclient.eth0.leases": "lease {}\n",
    "var/lib/systemd/random-seed": "random",
    "var/spool/cron/crontabs/alice": "* * * * * /bin/true\n",
    "var/spool/cron/atjobs/.SEQ": "00007\n",
    "var/spool/cron/atjobs/a0001": "job\n",
    "var/mail/alice": "From: x\n",
    "var/cache/apt/archives/vim_9.0_amd64.deb": "deb",
    "var/cache/apt/archives/partial/curl.deb": "partial",
    "var/cache/apt/archives/lock": "",
    "var/cache/apt/pkgcache.bin": "cache",
    "var/backups/passwd.bak": PASSWD,
    "etc/default/grub~": "backup\n",
    "tmp/session-file": "tmp\n",
    "tmp/.X11-unix/X0": "",
    "var/tmp/big.tmp": "tmp\n",
    "etc/NetworkManager/system-connections/Wired.nmconnection": "[connection]\n",
    "etc/lvm/devices/system.devices": "IDTYPE=sys_wwid\n",
    "srv/www/index.html": "<html>kept</html>\n",
    "etc/blkid.tab": "<device/>\n",
    "var/crash/202401010000/dump.202401010000": "crash",
    "var/lib/dhcp/dhcpd.leases": "lease 10.0.0.5 {}\n",
    "var/lib/dovecot/instances": "/usr/sbin/dovecot\n",
    "var/log/account/pacct": "acct",
    "var/log/account/pacct.0": "old acct",
    "run/faillock/alice": "fail",
    "var/lib/samba/private/secrets.tdb": "secrets",
    "var/log/samba/old/log.smbd": "old samba log\n",
    "var/log/samba/log.smbd": "samba log\n",
    "var/log/atmo/deploy.log": "deploy\n",
    "etc/rc.local.atmo": "#!/bin/sh\n",
    "opt/cyverse/bin/tool": "tool\n",
    "usr/sbin/atmo_boot.py": "print()\n",
    "mnt/volume/file": "volume data\n",
    "usr/share/doc/readme": "kept\n",
    boot: { dir: true },
  };
}

/** A Rocky/RHEL 9-like root: ifcfg files, rpm database environment, dnf/yum caches, sshd-keygen units. */
export function rhelTree(): TreeSpec {
  return {
    "etc/os-release": 'NAME="Rocky Linux"\nVERSION_ID="9.3"\nID="rocky"\nID_LIKE="rhel centos fedora"\n',
    "etc/redhat-release": "Rocky Linux release 9.3 (Blue Onyx)\n",
    "etc/fstab":
      "UUID=0f0f0000-1111-4222-8333-444455556666 / xfs defaults 0 0\n/dev/vdb /mnt ext4 defaults,nofail 0 0\n",
    "etc/login.defs": "UID_MIN                  1000\nUID_MAX                 60000\n",
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nrocky:x:1000:1000::/home/rocky:/bin/bash\n",
    "etc/shadow": { content: "root:*:19000:0:99999:7:::\nrocky:!!:19000::::::\n", mode: 0 },
    "etc/group": "root:x:0:\nwheel:x:10:rocky\nrocky:x:1000:\n",
    "etc/gshadow": { content: "root:::\nwheel:::rocky\nrocky:!::\n", mode: 0 },
    "etc/sysconfig/network-scripts/ifcfg-eth0":
      'DEVICE=eth0\nBOOTPROTO=dhcp\nHWADDR=52:54:00:12:34:56\nMACADDR=52:54:00:ab:cd:ef\nONBOOT=yes\nHOSTNAME=old-host\nDHCP_HOSTNAME="old-host"\n',
    "etc/sysconfig/network-scripts/ifcfg-lo": "DEVICE=lo\nIPADDR=127.0.0.1\n",
    "etc/sysconfig/rhn/systemid": "<systemid/>\n",
    "etc/pki/consumer/cert.pem": "consumer\n",
    "etc/pki/entitlement/123.pem": "entitlement\n",
    "etc/pki/tls/certs/localhost.crt": "host certificate\n",
    "etc/pki/tls/certs/ca-bundle.crt": "distribution bundle\n",
    "etc/pki/tls/private/localhost.key": { content: "host key\n", mode: 0o600 },
    "etc/sysconfig/iptables": "*filter\nCOMMIT\n",
    "etc/firewalld/zones/public.xml": "<zone/>\n",
    "etc/firewalld/firewalld.conf": "DefaultZone=public\n",
    "etc/ssh/ssh_host_ecdsa_key": { content: "PRIVATE ECDSA\n", mode: 0o640 },
    "etc/ssh/ssh_host_ecdsa_key.pub": "ecdsa-sha2-nistp256 AAAA\n",
    "etc/machine-id": "fedcba9876543210fedcba9876543210\n",
    "usr/lib/systemd/systemd": "",
    "usr/lib/systemd/system/sshd.service": "[Service]\n",
    "usr/lib/systemd/system/sshd-keygen@.service": "[Service]\nExecStart=/usr/libexec/openssh/sshd-keygen %i\n",
    "sbin/init": { link: "../lib/systemd/systemd" },
    lib: { link: "usr/lib" },
    "usr/bin/dnf": "",
    "var/lib/rpm/__db.001": "env",
    "var/lib/rpm/__db.002": "env",
    "var/lib/rpm/rpmdb.sqlite": "the package database (kept)",
    "var/lib/yum/uuid": "0123\n",
    "var/cache/dnf/baseos-1234/repodata/primary.xml.zck": "metadata",
    "var/cache/yum/x86_64/9/base/packages/bash.rpm": "rpm",
    "var/log/messages": "Jan 1 kernel\n",
    "var/log/messages-20240101": "rotated\n",
    "var/log/secure": { content: "sshd\n", mode: 0o600 },
    "var/log/audit/audit.log": { content: "type=LOGIN\n", mode: 0o600 },
    "var/account/pacct": "acct",
    "var/mail": { link: "spool/mail" },
    "var/spool/mail/rocky": "mail\n",
    "var/spool/cron/rocky": "* * * * * true\n",
    "root/.bash_history": "dnf install\n",
    "root/anaconda-ks.cfg": "#version=RHEL9\nrootpw --iscrypted $6$x\n",
    "home/rocky/.bash_history": "ls\n",
    "home/rocky/.ssh/authorized_keys": "ssh-rsa AAAA\n",
    "var/run": { link: "../run" },
    "run/console/rocky": "",
    "var/spool/abrt/ccpp-2024-01-01/coredump": "core",
    "var/tmp/abrt/last-ccpp": "",
    "etc/blkid/blkid.tab": "<device/>\n",
    "var/crash/127.0.0.1-2024-01-01/vmcore": "core",
    "var/lib/dhcpd/dhcpd.leases": "lease {}\n",
    "etc/ipa/ca.crt": "CA\n",
    "etc/ipa/default.conf": "[global]\n",
    "var/lib/ipa-client/sysrestore/sysrestore.state": "state\n",
    "var/kerberos/krb5kdc/principal": "db",
    "var/kerberos/krb5kdc/kadm5.acl": "*/admin *\n",
    "var/kerberos/krb5kdc/kdc.conf": "[kdcdefaults]\n",
    "etc/sysconfig/hw-uuid": "uuid\n",
    "var/lib/sss/db/cache_default.ldb": "ldb",
    "var/log/sssd/sssd.log": "sssd\n",
    "tmp/yum.log": "tmp\n",
    "etc/ssh/sshd_config": "## Atmosphere System\nAllowGroups users root\n## End Atmosphere System\n",
    "etc/cloud/cloud.cfg": "users:\n - default\ndisable_root: 1\n",
    "usr/bin/cloud-init": "",
    "var/lib/cloud/instances/iid-1/obj.pkl": "pickle",
  };
}

/** Every path under `root` with its kind and (for files) content hash and mode: a fingerprint of the tree. */
export async function treeHash(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name);
      const r = `${rel}/${name}`;
      const st = await lstat(p);
      if (st.isDirectory()) {
        out.set(r, `dir ${st.mode.toString(8)}`);
        await walk(p, r);
      } else if (st.isSymbolicLink()) out.set(r, `link ${await readlink(p)}`);
      else if (st.isFile()) {
        const data = st.size > 2 ** 24 ? Buffer.from(`size ${st.size}`) : await readFile(p);
        out.set(r, `file ${st.mode.toString(8)} ${createHash("sha256").update(data).digest("hex")}`);
      } else out.set(r, `other ${st.mode.toString(8)}`);
    }
  };
  await walk(root, "");
  return out;
}

export async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
