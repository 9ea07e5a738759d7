import { UsageError } from "../../formats/errors.js";
import type { CleaningOperation } from "./cleaning-operation.js";
import abrtData from "./operations/abrt-data.js";
import atmosphereAccounts from "./operations/atmosphere-accounts.js";
import atmosphereBlocks from "./operations/atmosphere-blocks.js";
import atmosphereFiles from "./operations/atmosphere-files.js";
import backupFiles from "./operations/backup-files.js";
import bashHistory from "./operations/bash-history.js";
import blkidTab from "./operations/blkid-tab.js";
import caCertificates from "./operations/ca-certificates.js";
import cloudInitConfig from "./operations/cloud-init-config.js";
import cloudInitState from "./operations/cloud-init-state.js";
import crashData from "./operations/crash-data.js";
import cronSpool from "./operations/cron-spool.js";
import customize from "./operations/customize.js";
import dhcpClientState from "./operations/dhcp-client-state.js";
import dhcpServerState from "./operations/dhcp-server-state.js";
import dovecotData from "./operations/dovecot-data.js";
import firewallRules from "./operations/firewall-rules.js";
import flagReconfiguration from "./operations/flag-reconfiguration.js";
import fstabExtraVolumes from "./operations/fstab-extra-volumes.js";
import fsUuids from "./operations/fs-uuids.js";
import ipaClient from "./operations/ipa-client.js";
import kerberosData from "./operations/kerberos-data.js";
import kerberosHostkeytab from "./operations/kerberos-hostkeytab.js";
import logfiles from "./operations/logfiles.js";
import lvmSystemDevices from "./operations/lvm-system-devices.js";
import lvmUuids from "./operations/lvm-uuids.js";
import machineId from "./operations/machine-id.js";
import mailSpool from "./operations/mail-spool.js";
import netHostname from "./operations/net-hostname.js";
import netHwaddr from "./operations/net-hwaddr.js";
import netNmconn from "./operations/net-nmconn.js";
import pacctLog from "./operations/pacct-log.js";
import packageManagerCache from "./operations/package-manager-cache.js";
import pamData from "./operations/pam-data.js";
import passwdBackups from "./operations/passwd-backups.js";
import puppetDataLog from "./operations/puppet-data-log.js";
import rhSubscriptionManager from "./operations/rh-subscription-manager.js";
import rhnSystemid from "./operations/rhn-systemid.js";
import rpmDb from "./operations/rpm-db.js";
import sambaDbLog from "./operations/samba-db-log.js";
import script from "./operations/script.js";
import shellHistory from "./operations/shell-history.js";
import smoltUuid from "./operations/smolt-uuid.js";
import sshHostkeys from "./operations/ssh-hostkeys.js";
import sshUserdir from "./operations/ssh-userdir.js";
import sssdDbLog from "./operations/sssd-db-log.js";
import tmpFiles from "./operations/tmp-files.js";
import udevPersistentNet from "./operations/udev-persistent-net.js";
import userAccount from "./operations/user-account.js";
import utmp from "./operations/utmp.js";
import yumUuid from "./operations/yum-uuid.js";
import zeroFreeSpace from "./operations/zero-free-space.js";
import zshHistory from "./operations/zsh-history.js";

/**
 * Every cleaning operation, in the order a run performs them: accounts first (so nothing later reports files
 * inside a home that is going anyway), then deployment files and edits, cloud-init, the temporary folders,
 * the rest by name, and trimming free space last, once everything else is gone. (fs-uuids edits the files that
 * name the UUIDs in its turn; the UUIDs themselves change after every operation, once the guest is unmounted.)
 */
export const CLEANING_OPERATIONS: readonly CleaningOperation[] = [
  userAccount,
  atmosphereFiles,
  atmosphereBlocks,
  atmosphereAccounts,
  cloudInitConfig,
  fstabExtraVolumes,
  cloudInitState,
  tmpFiles,
  abrtData,
  backupFiles,
  bashHistory,
  blkidTab,
  caCertificates,
  crashData,
  cronSpool,
  customize,
  dhcpClientState,
  dhcpServerState,
  dovecotData,
  firewallRules,
  flagReconfiguration,
  fsUuids,
  ipaClient,
  kerberosData,
  kerberosHostkeytab,
  logfiles,
  lvmSystemDevices,
  lvmUuids,
  machineId,
  mailSpool,
  netHostname,
  netHwaddr,
  netNmconn,
  pacctLog,
  packageManagerCache,
  pamData,
  passwdBackups,
  puppetDataLog,
  rhSubscriptionManager,
  rhnSystemid,
  rpmDb,
  sambaDbLog,
  script,
  shellHistory,
  smoltUuid,
  sshHostkeys,
  sshUserdir,
  sssdDbLog,
  udevPersistentNet,
  utmp,
  yumUuid,
  zshHistory,
  zeroFreeSpace,
];

const BY_NAME = new Map(CLEANING_OPERATIONS.map((op) => [op.name, op]));

export function findOperation(name: string): CleaningOperation | undefined {
  return BY_NAME.get(name);
}

export function getOperation(name: string): CleaningOperation {
  const op = BY_NAME.get(name);
  if (!op) throw new UsageError(`unknown cleaning operation "${name}" (see clean --list-operations)`);
  return op;
}
