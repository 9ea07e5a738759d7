/**
 * Interrupting `chromogenic clean` on the real Debian guest: SIGINT and SIGTERM cancel it, kill -9 is followed
 * by `chromogenic guest cleanup`. Afterwards: no mount under the state dir, no loop device over our files, no
 * output under its final name, the source unchanged (and, for the catchable signals, no stray file at all).
 *
 * To interrupt while the guest is attached and mounted, the run is frozen with SIGSTOP as soon as a mount of
 * its own appears, then sent the signal and resumed: wherever it stopped, it held mounts and loop devices at
 * that moment. (A CHROMOGENIC_TEST_PAUSE hook in the engine would pin the phase; this needs none.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { guestScratch, leftovers, runCli, sha256File } from "../helpers/clean-proof.js";
import { interruptWhen, whileMounted, type Interrupted } from "../helpers/interrupt-run.js";
import { debianGuest } from "../helpers/debian-guest.js";
import { isRoot } from "../helpers/guest-images.js";
import { runOk } from "../helpers/tools.js";

const skip = !(await isRoot()) ? "needs root (loop devices and mounts)" : false;

/**
 * The output being written, unnamed until complete (the process holds `DIR/#N (deleted)` open, an O_TMPFILE in
 * the output's folder): the commit phase.
 */
const whileCommitting = (dir: string) => async (pid: number) => {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")));
  return targets.some((t) => t.startsWith(`${dir}/#`));
};

for (const [phase, ready] of [
  ["with the guest mounted", whileMounted],
  ["while the output is written", whileCommitting],
] as const) {
  test(
    `SIGINT, SIGTERM, and kill -9 + \`guest cleanup\` ${phase}: no mount, loop device or output left`,
    { skip, timeout: 600_000 },
    async (t) => {
      const s = await guestScratch(t);
      const guest = await debianGuest("planted");
      const input = join(s.dir, "debian.qcow2");
      await runOk("qemu-img", ["convert", "-O", "qcow2", guest.raw, input]);
      const sourceHash = await sha256File(input);
      const output = join(s.dir, "cleaned.qcow2");

      for (const signal of ["SIGINT", "SIGTERM", "SIGKILL"] as const) {
        let run: Interrupted | null = null;
        for (let attempt = 0; attempt < 5 && !run; attempt++) {
          run = await interruptWhen(s.dir, s.env, ["clean", input, output], signal, ready(s.dir));
          if (!run) await runOk("rm", ["-f", output]); // it finished first: try again
        }
        assert.ok(run, `${signal}: the run was never caught ${phase}`);
        t.diagnostic(`${signal} ${phase}: caught holding ${run.heldAtStop} mounts/loop devices`);
        if (signal === "SIGKILL") {
          assert.equal(run.signal, "SIGKILL");
          // The run's mounts lived in its own mount namespace, which died with it: even before `guest
          // cleanup`, nothing of the guest is mounted on the host (only loop devices remain to detach).
          const hostMounts = (await leftovers(s.dir)).filter((l) => !l.startsWith("/dev/loop"));
          assert.deepEqual(hostMounts, [], "kill -9 left a guest mounted on the host");
          const cleanup = await runCli(["guest", "cleanup"], s.env);
          assert.equal(cleanup.code, 0, cleanup.stderr);
        } else {
          assert.equal(run.code, 130, `${signal}: exit code (stderr: ${run.stderr})`);
          assert.match(run.stderr, /cancel/i);
        }
        assert.deepEqual(await leftovers(s.dir), [], `${signal}: mounts or loop devices left`);
        const loops = await runOk("losetup", ["--all"]);
        assert.ok(!loops.includes(s.dir), `${signal}: a loop device over our files: ${loops}`);
        const files = (await readdir(s.dir)).filter((f) => f !== "state");
        assert.ok(!files.includes("cleaned.qcow2"), `${signal}: an output under the final name`);
        // After kill -9 too: the working copy and the half-written output are in the journal, which
        // `guest cleanup` replayed.
        assert.deepEqual(files, ["debian.qcow2"], `${signal}: stray files`);
        assert.equal(await sha256File(input), sourceHash, `${signal}: the source changed`);
      }
    },
  );
}
