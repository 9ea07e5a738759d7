/**
 * The KVM probe (test/helpers/kvm-probe.ts) the boot proofs consult: its real-mode sector is proved under TCG
 * first (so a failed KVM run means KVM failed, not the sector), then the verdict is checked against what a
 * second run under KVM does on this machine.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { PROBE_LIMIT_MS, PROBE_MARKER, chooseAccelerator, probeBootSector, runProbe } from "../helpers/kvm-probe.js";

test("the probe sector is a boot sector that prints its marker and ends qemu under TCG", async (t) => {
  const sector = probeBootSector();
  assert.equal(sector.length, 512);
  assert.equal(sector.readUInt16LE(510), 0xaa55);
  assert.ok(sector.includes(PROBE_MARKER));
  const tcg = await runProbe("tcg");
  t.diagnostic(`TCG: ${tcg.detail} in ${tcg.seconds.toFixed(2)} s`);
  assert.ok(tcg.ran, tcg.detail);
  assert.ok(tcg.seconds * 1000 < PROBE_LIMIT_MS / 2, `TCG took ${tcg.seconds} s`);
});

test("KVM is chosen only when /dev/kvm is usable and the real-mode sector runs under it faster than TCG", async (t) => {
  const verdict = await chooseAccelerator();
  t.diagnostic(`verdict: ${verdict.accel} (${verdict.reason})`);
  assert.equal(await chooseAccelerator(), verdict, "probed once per process");
  if (process.env.CHROMOGENIC_TEST_ACCEL === "tcg") return assert.equal(verdict.accel, "tcg");
  const usable = await access("/dev/kvm", constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  if (!usable)
    return assert.deepEqual(verdict, { accel: "tcg", reason: "/dev/kvm is missing or not usable by this user" });
  assert.match(verdict.reason, /^the real-mode probe under KVM: .* \(under TCG: [0-9.]+ s\)$/);
  // Second runs decide the same way, unless KVM lands near TCG's time or the limit (a busy machine).
  const tcg = await runProbe("tcg");
  const kvm = await runProbe("kvm", PROBE_LIMIT_MS + 15_000);
  t.diagnostic(`again: KVM ${kvm.detail} in ${kvm.seconds.toFixed(2)} s, TCG in ${tcg.seconds.toFixed(2)} s`);
  const clearCut = Math.abs(kvm.seconds - tcg.seconds) > 1 && Math.abs(kvm.seconds * 1000 - PROBE_LIMIT_MS) > 1000;
  if (clearCut) assert.equal(verdict.accel, kvm.ran && kvm.seconds < tcg.seconds ? "kvm" : "tcg");
});
