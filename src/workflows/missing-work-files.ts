/**
 * Before a resume: the steps recorded as done whose files are not on this host are forgotten, so that they are
 * redone instead of read from nothing. A job resumed on another host (a service worker taking over from one that
 * died) finds none of its predecessor's temporary files; one resumed here may find some removed by hand. Only
 * files are concerned: what a job made in a cloud is found again through its state (the half-made image is
 * deleted and uploaded again by store-image.ts), so a redone leg never leaves a second image behind.
 *
 * The local steps make one file each from the one before — a download, the working copy (cleaned in place), the
 * disk made bootable, the converted file — and each step removes the file it was made from once it is done. So
 * the walk goes from the last step back: as soon as a done step's file is here, everything before it is no
 * longer needed; each one whose file is missing is forgotten, and the one before it is looked at in turn. A
 * file counts only in the work folder this run uses: the steps name their files after it, so one recorded in
 * another folder (another worker's state directory) would not be the file they read.
 */
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { jobWorkDir } from "./job-run.js";
import type { JobState } from "./job-state.js";

const DOWNLOAD = "download:";

/** Forgets the done steps whose files are missing here; returns them (empty when nothing is to be redone). */
export async function forgetMissingWorkFiles(state: JobState): Promise<string[]> {
  const forgotten: string[] = [];
  const forget = (step: string) => {
    if (!state.done.includes(step)) return;
    state.done = state.done.filter((s) => s !== step);
    forgotten.push(step);
  };
  const files = state.files;
  const workDir = jobWorkDir(state);
  const present = async (path: string | undefined) => dirname(path ?? "") === workDir && (await isFile(path!));
  const done = (step: string) => state.done.includes(step);

  if (done("converted")) {
    if (await present(files.converted)) return forgotten;
    forget("converted");
    files.converted = undefined;
  }
  // Without a file of its own the bootable step found the disk booting already: what it passed on comes before.
  if (done("bootable") && files.bootable !== undefined) {
    if (await present(files.bootable)) return forgotten;
    forget("bootable");
    files.bootable = undefined;
  }
  if (!done("bootable")) {
    for (const role of ["kernel", "ramdisk"] as const) {
      if (done(`fetch-${role}`) && !(await present(files[role]))) {
        forget(`fetch-${role}`);
        files[role] = undefined;
      }
    }
  }
  if (done("working-copy")) {
    if (await present(files.work)) return forgotten;
    // The cleaning changed the working copy in place: a new copy is cleaned again.
    forget("clean");
    forget("working-copy");
    files.work = undefined;
  }
  for (const step of state.done.filter((s) => s.startsWith(DOWNLOAD))) {
    // A download's step names its file (in the work folder, or beside a file output): found wherever it is.
    if (await isFile(step.slice(DOWNLOAD.length))) continue;
    forget(step);
    if (files.download === step.slice(DOWNLOAD.length)) files.download = undefined;
  }
  return forgotten;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}
